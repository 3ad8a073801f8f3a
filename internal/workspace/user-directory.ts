import type { AuthServiceClient, User } from "../../api/gen/taskboard/auth/v1/auth.js";
import type { ServiceClient } from "../platform/grpc-client.js";
import type { UserDirectory } from "./service.js";

/** Users as the auth service knows them, asked with the workspace service's own credential. */
export class AuthUserDirectory implements UserDirectory {
  constructor(private readonly auth: ServiceClient<AuthServiceClient>) {}

  async lookup(query: { user_ids?: string[]; emails?: string[] }): Promise<User[]> {
    const list = await this.auth.call("lookupUsers", { user_ids: query.user_ids ?? [], emails: query.emails ?? [] }, { internal: true });
    return list.items;
  }
}
