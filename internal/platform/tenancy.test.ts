import { describe, expect, test } from "vitest";
import { AppError } from "./errors.js";
import { MANAGERS, Tenancy, checkRole, userOf } from "./tenancy.js";
import type { Principal } from "./principal.js";

const ann: Principal = { kind: "user", userId: "ann", role: "user", token: "t-ann" };
const roles = new Map([["ws1:ann", "admin"], ["ws1:bob", "member"]] as const);
const asked: { workspaceId: string; userId: string; internal: boolean }[] = [];
const tenancy = new Tenancy({
  roleOf: async (workspaceId, userId, call) => {
    asked.push({ workspaceId, userId, internal: call.internal === true });
    return roles.get(`${workspaceId}:${userId}` as "ws1:ann");
  },
});

const codeOf = async (promise: Promise<unknown> | (() => unknown)) => {
  try {
    await (typeof promise === "function" ? promise() : promise);
    return "ok";
  } catch (error) {
    return error instanceof AppError ? `${error.httpStatus} ${error.message}` : String(error);
  }
};

describe("tenancy", () => {
  test("a member gets their role; a non-member is told the thing does not exist (404 naming it), never 403", async () => {
    expect(await tenancy.member(ann, "ws1")).toMatchObject({ caller: { userId: "ann" }, role: "admin" });
    expect(await codeOf(tenancy.member(ann, "ws2", { what: "task" }))).toBe("404 task not found");
  });

  test("a role outside `allowed` is 403; MANAGERS admits owners and admins", async () => {
    expect((await tenancy.member(ann, "ws1", { allowed: MANAGERS })).role).toBe("admin");
    expect(await codeOf(tenancy.member(ann, "ws1", { allowed: ["owner"] }))).toBe("403 requires the role owner");
    expect(checkRole("owner", "workspace", MANAGERS)).toBe("owner");
    expect(await codeOf(() => checkRole("member", "workspace", MANAGERS))).toBe("403 requires the role owner or admin");
  });

  test("only users pass; the caller's own token is what asks, and another user's membership is asked as this process", async () => {
    expect(await codeOf(() => userOf({ kind: "internal", caller: "notify" }))).toBe("403 a user is required");
    expect(await codeOf(tenancy.member({ kind: "anonymous" }, "ws1"))).toBe("403 a user is required");
    asked.length = 0;
    await tenancy.member(ann, "ws1");
    expect(await tenancy.isMember("ws1", "bob")).toBe(true);
    expect(await tenancy.isMember("ws1", "carl")).toBe(false);
    expect(asked).toEqual([
      { workspaceId: "ws1", userId: "ann", internal: false },
      { workspaceId: "ws1", userId: "bob", internal: true },
      { workspaceId: "ws1", userId: "carl", internal: true },
    ]);
  });
});
