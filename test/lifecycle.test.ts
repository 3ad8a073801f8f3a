import { spawnSync } from "node:child_process";
import { connect } from "node:net";
import { networkInterfaces } from "node:os";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createLogger } from "../internal/platform/logger.js";
import { Shutdown } from "../internal/platform/shutdown.js";
import { Mesh } from "./support/mesh.js";

const root = new URL("../", import.meta.url).pathname;
let mesh: Mesh;

beforeAll(async () => {
  mesh = await Mesh.start();
});

afterAll(() => mesh?.stop());

describe("admin port", () => {
  test.each(["auth", "workspace", "task", "gateway-1"])("lifecycle: %s serves /healthz, /readyz and /metrics", async (label) => {
    const port = mesh.processes.get(label)!.ports["admin"];
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { status: string }).status).toBe("ok");
    await mesh.api.get("/health");
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain("process_resident_memory_bytes");
    expect(metrics).toMatch(label.startsWith("gateway") ? /taskboard_http_requests_total/ : /taskboard_grpc_server_duration_seconds/);
  });
});

describe("listening addresses", () => {
  // An address of this machine other than loopback, when it has one (CI machines do).
  const external = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === "IPv4" && !a.internal)?.address;

  test.runIf(external)("lifecycle: the gRPC and admin ports listen on loopback only (LISTEN_HOST), the gateway's HTTP port on every address", async () => {
    const reach = async (host: string, port: unknown) =>
      new Promise<boolean>((resolve) => {
        const socket = connect(Number(port), host, () => {
          socket.destroy();
          resolve(true);
        });
        socket.on("error", () => resolve(false));
      });
    for (const label of ["auth", "workspace", "task", "gateway-1"]) {
      const { ports } = mesh.processes.get(label)!;
      expect(await reach("127.0.0.1", ports["admin"]), `${label} admin on loopback`).toBe(true);
      expect(await reach(external!, ports["admin"]), `${label} admin on ${external}`).toBe(false);
      if (ports["grpc"]) expect(await reach(external!, ports["grpc"]), `${label} grpc on ${external}`).toBe(false);
    }
    expect(await reach(external!, new URL(mesh.url).port), "gateway http").toBe(true);
  });
});

describe("shutdown and configuration", () => {
  test("lifecycle: SIGTERM stops a process gracefully (exit 0: every shutdown step finished within its time limit)", async () => {
    const gateway = await mesh.startGateway();
    const code = await gateway.process.stop("SIGTERM");
    expect(code).toBe(0);
  });

  test("lifecycle: shutdown runs its steps in order, goes on after a failed step, and gives up at its time limit", async () => {
    const log = createLogger("test", "silent");
    const ran: string[] = [];
    const ordered = new Shutdown(log, 5_000)
      .add("first", () => ran.push("first"))
      .add("failing", () => Promise.reject(new Error("broken")))
      .add("last", () => ran.push("last"));
    await ordered.run("test");
    expect(ran).toEqual(["first", "last"]);

    let release: () => void = () => undefined;
    const stuck = new Shutdown(log, 50).add("stuck", () => new Promise<void>((resolve) => (release = resolve)));
    await expect(stuck.run("test")).rejects.toThrow("shutdown took longer than 50 ms");
    release();
  });

  test.each([
    ["auth", { GRPC_PORT: "abc" }, /^auth: config: GRPC_PORT="abc" is invalid/],
    ["gateway", { NATS_URL: "nats://x", INTERNAL_SECRET: "short" }, /^gateway: config: INTERNAL_SECRET=\(hidden\) is invalid/],
    ["workspace", { INTERNAL_SECRET: "" }, /^workspace: config: INTERNAL_SECRET is required/],
    ["task", { INTERNAL_CALLERS: `robot:${"0".repeat(64)}` }, /^task: config: INTERNAL_CALLERS="robot:0+" is invalid: unknown caller "robot"/],
    ["export", { INTERNAL_CALLERS: "gateway:abc" }, /^export: config: INTERNAL_CALLERS="gateway:abc" is invalid: the entry of gateway must be gateway:<64 hex digits>/],
    ["task", { WORKSPACE_ADDR: "nowhere" }, /^task: config: WORKSPACE_ADDR="nowhere" is invalid/],
    ["auth", { NODE_ENV: "production", JWT_PRIVATE_KEY: "" }, /^auth: config: JWT_PRIVATE_KEY is required when NODE_ENV=production/],
    ["task", { DATABASE_URL: "postgres://app:s3cret-pw@db:notaport/x" }, /^task: config: DATABASE_URL="postgres:\/\/app:\*\*\*@db:notaport\/x" is invalid/],
    ["gateway", { REDIS_URL: "redis://:s3cret-pw@cache:99999" }, /^gateway: config: REDIS_URL="redis:\/\/:\*\*\*@cache:99999" is invalid/],
    ["workspace", { NATS_URL: "nats://tb:s3cret-pw@nats:port" }, /^workspace: config: NATS_URL="nats:\/\/tb:\*\*\*@nats:port" is invalid/],
  ])("lifecycle: %s with bad configuration %j stops with one line naming the variable", (name, env, line) => {
    const result = spawnSync(process.execPath, [`${root}dist/cmd/${name}/main.js`], {
      env: { PATH: process.env["PATH"], ...mesh.env, ...mesh.credentials.env(name), ...env },
      encoding: "utf8",
      timeout: 20_000,
    });
    expect(result.status).toBe(1);
    const lines = result.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(line);
    expect(result.stdout + result.stderr, "no secret in the output").not.toContain("s3cret");
  });
});
