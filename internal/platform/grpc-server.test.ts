import { describe, expect, test } from "vitest";
import { peerAddress } from "./grpc-server.js";

describe("grpc server", () => {
  test("grpc: a peer's address without its port, IPv4 and IPv6", () => {
    expect(peerAddress("ipv4:10.0.0.5:41234")).toBe("10.0.0.5");
    expect(peerAddress("ipv6:[::1]:41234")).toBe("::1");
    expect(peerAddress("ipv6:[2001:db8::7]:50051")).toBe("2001:db8::7");
    expect(peerAddress("127.0.0.1:5000")).toBe("127.0.0.1");
    expect(peerAddress("unix:/tmp/sock")).toBe("/tmp/sock");
  });
});
