import { describe, expect, it } from "vitest";
import { parseAckSubject } from "./room-feed.js";

describe("room feed", () => {
  it("room feed: reads stream sequence, delivery number and storage time from a NATS 2.9 reply subject", () => {
    expect(parseAckSubject("$JS.ACK.TASKBOARD.abc123.1.4321.7.1733140000000000000.12")).toEqual({ seq: 4321, delivery: 7, storedAt: 1733140000000 });
  });

  it("room feed: reads the newer layout with a domain and an account hash", () => {
    expect(parseAckSubject("$JS.ACK.hub.ACCHASH.TASKBOARD.abc123.1.99.3.1733140000000000000.0.rand")).toEqual({ seq: 99, delivery: 3, storedAt: 1733140000000 });
  });

  it("room feed: anything else is not a delivery", () => {
    for (const reply of [undefined, "", "_INBOX.x", "$JS.ACK.TOO.SHORT", "$JS.ACK.S.C.1.x.y.z.0"]) expect(parseAckSubject(reply), String(reply)).toBeUndefined();
  });
});
