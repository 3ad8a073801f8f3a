import type { NatsConnection } from "nats";
import { describe, expect, it } from "vitest";
import type { WorkspaceServiceClient } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import { AppError } from "./errors.js";
import { Subjects } from "./events.js";
import type { OutgoingCall, ServiceClient } from "./grpc-client.js";
import { createLogger } from "./logger.js";
import { CachedMemberships } from "./memberships.js";

/** A workspace service that answers after `release()`, and records who asked. */
class FakeWorkspace {
  readonly calls: OutgoingCall[] = [];
  private waiting: (() => void)[] = [];

  constructor(private readonly roles: Record<string, string>) {}

  async call(_method: string, request: { workspace_id: string; user_id: string }, call: OutgoingCall) {
    this.calls.push(call);
    await new Promise<void>((resolve) => this.waiting.push(resolve));
    if (call.token === "expired") throw new AppError("unauthorized", "token expired");
    const role = this.roles[`${request.workspace_id}/${request.user_id}`];
    if (!role) throw new AppError("not_found", "membership not found");
    return { role };
  }

  release(): void {
    for (const resolve of this.waiting.splice(0)) resolve();
  }
}

/** A NATS connection good enough for the eviction feed: connected, silent. */
function quietNats(): NatsConnection {
  return {
    subscribe: () => ({ unsubscribe: () => undefined }),
    flush: async () => undefined,
    isClosed: () => false,
    status: () => ({ [Symbol.asyncIterator]: () => ({ next: () => new Promise(() => undefined) }) }),
  } as unknown as NatsConnection;
}

async function cache(roles: Record<string, string>) {
  const workspace = new FakeWorkspace(roles);
  const memberships = new CachedMemberships(workspace as unknown as ServiceClient<WorkspaceServiceClient>, createLogger("test", "silent"));
  await memberships.followChanges(quietNats(), new Subjects("t"));
  return { workspace, memberships };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe("membership cache", () => {
  it("membership cache: concurrent checks with the same credentials share one lookup, then the answer is cached", async () => {
    const { workspace, memberships } = await cache({ "w1/u1": "member" });
    const both = Promise.all([memberships.roleOf("w1", "u1", { token: "t" }), memberships.roleOf("w1", "u1", { token: "t" })]);
    await flush();
    workspace.release();
    expect(await both).toEqual(["member", "member"]);
    expect(await memberships.roleOf("w1", "u1", { token: "other" })).toBe("member");
    expect(workspace.calls).toHaveLength(1);
  });

  it("membership cache: a lookup with a bad token fails its caller only, not a concurrent internal check of the same membership", async () => {
    const { workspace, memberships } = await cache({ "w1/u1": "member" });
    const withExpired = memberships.roleOf("w1", "u1", { token: "expired" });
    const internal = memberships.roleOf("w1", "u1", { internal: true });
    await flush();
    workspace.release();
    await expect(withExpired).rejects.toMatchObject({ code: "unauthorized" });
    expect(await internal).toBe("member");
    expect(workspace.calls).toHaveLength(2);
  });

  it("membership cache: a non-member is not cached (a new member has access at once)", async () => {
    const roles: Record<string, string> = {};
    const { workspace, memberships } = await cache(roles);
    const first = memberships.roleOf("w1", "u2", { internal: true });
    await flush();
    workspace.release();
    expect(await first).toBeUndefined();
    roles["w1/u2"] = "admin";
    const second = memberships.roleOf("w1", "u2", { internal: true });
    await flush();
    workspace.release();
    expect(await second).toBe("admin");
  });

  it("membership cache: a change announced while a lookup is under way keeps that answer out of the cache", async () => {
    const { workspace, memberships } = await cache({ "w1/u1": "member" });
    const lookup = memberships.roleOf("w1", "u1", { internal: true });
    await flush();
    memberships.evict("w1", "u1");
    workspace.release();
    expect(await lookup).toBe("member");
    const again = memberships.roleOf("w1", "u1", { internal: true });
    await flush();
    expect(workspace.calls, "asked again: the answer predating the change was not kept").toHaveLength(2);
    workspace.release();
    await again;
  });
});
