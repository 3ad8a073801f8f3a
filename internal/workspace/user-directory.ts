import type { AuthServiceClient, User } from "../../api/gen/taskboard/auth/v1/auth.js";
import type { OutgoingCall, ServiceClient } from "../platform/grpc-client.js";
import type { UserDirectory } from "./service.js";

/** Users as the auth service knows them. */
export class AuthUserDirectory implements UserDirectory {
  constructor(private readonly auth: ServiceClient<AuthServiceClient>) {}

  async lookup(query: { user_ids?: string[]; emails?: string[] }, call: OutgoingCall): Promise<User[]> {
    const list = await this.auth.call("lookupUsers", { user_ids: query.user_ids ?? [], emails: query.emails ?? [] }, call);
    return list.items;
  }
}
