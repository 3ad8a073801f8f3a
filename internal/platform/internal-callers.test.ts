import { describe, expect, test } from "vitest";
import { credentialDigest, formatCallers, parseCallers } from "./internal-callers.js";
import { admits } from "./principal.js";

describe("internal callers", () => {
  test("INTERNAL_CALLERS: digests map to the processes they name, two entries of one name are allowed (rotation)", () => {
    const value = `${formatCallers({ gateway: "g".repeat(32), notify: "n".repeat(32) })}, notify:${credentialDigest("old".repeat(11))}`;
    const callers = parseCallers(value);
    expect(callers.get(credentialDigest("g".repeat(32)))).toBe("gateway");
    expect(callers.get(credentialDigest("n".repeat(32)))).toBe("notify");
    expect(callers.get(credentialDigest("old".repeat(11)))).toBe("notify");
    expect(callers.size).toBe(3);
    expect(parseCallers("").size).toBe(0);
  });

  test("INTERNAL_CALLERS: unknown names, malformed digests and shared secrets are refused", () => {
    const digest = credentialDigest("x".repeat(32));
    expect(() => parseCallers(`robot:${digest}`)).toThrow('unknown caller "robot"');
    expect(() => parseCallers("gateway:1234")).toThrow("gateway:<64 hex digits>");
    expect(() => parseCallers(`gateway:${digest}:extra`)).toThrow("gateway:<64 hex digits>");
    expect(() => parseCallers(`gateway:${digest},task:${digest}`)).toThrow("task shares its secret with gateway");
  });

  test("access: a method admits only what it declares", () => {
    const user = { kind: "user", userId: "u", role: "user", token: "t" } as const;
    const notify = { kind: "internal", caller: "notify" } as const;
    const gateway = { kind: "internal", caller: "gateway" } as const;
    const anonymous = { kind: "anonymous" } as const;
    expect([user, notify, anonymous].map((p) => admits("public", p))).toEqual([true, true, true]);
    expect([user, notify, anonymous].map((p) => admits("user", p))).toEqual([true, false, false]);
    expect([user, notify, gateway, anonymous].map((p) => admits({ callers: ["notify"] }, p))).toEqual([false, true, false, false]);
    expect([user, notify, gateway, anonymous].map((p) => admits({ callers: ["notify"], user: true }, p))).toEqual([true, true, false, false]);
  });
});
