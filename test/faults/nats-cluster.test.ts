import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, expect, test } from "vitest";
import { NatsCluster } from "../support/fault-servers.js";
import { Mesh } from "../support/mesh.js";
import { waitFor } from "../support/wait.js";
import { FAULT_ENV, runScenario, sleep, TIMING } from "./harness.js";

// A three-node NATS cluster of this file's own, the stream replicated three times: its
// leader is killed (-9) mid-load; writes go on once a new leader is elected, and nothing is
// lost, doubled or delivered out of order. Postgres and Redis are the run's shared servers.

let cluster: NatsCluster;
let mesh: Mesh;
let nc: NatsConnection;

beforeAll(async () => {
  cluster = await NatsCluster.start();
  mesh = await Mesh.start({
    gateways: 2,
    servers: { natsUrl: cluster.url },
    env: { ...FAULT_ENV, NATS_STREAM_REPLICAS: "3" },
  });
  nc = await connect({ servers: cluster.url.split(","), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
}, 180_000);

afterAll(async () => {
  await nc?.close();
  await mesh?.stop();
  await cluster?.destroy();
}, 60_000);

async function leader(): Promise<string | undefined> {
  const jsm = await nc.jetstreamManager({ timeout: 2_000 });
  const info = await jsm.streams.info(mesh.streamName);
  return info.cluster?.leader;
}

test("faults: the stream leader of a three-node NATS cluster killed (-9) under load: writes continue on the new leader, nothing lost or doubled, every client gap-free", async () => {
  const jsm = await nc.jetstreamManager();
  expect((await jsm.streams.info(mesh.streamName)).config.num_replicas).toBe(3);
  let killed = "";
  const result = await runScenario({
    mesh,
    name: "nats-cluster-leader-kill",
    fault: async () => {
      const old = await leader();
      expect(old, "the stream has a leader").toBeTruthy();
      killed = old!;
      const downAt = Date.now();
      await cluster.node(old!).kill();
      const elected = await waitFor("a new stream leader", async () => {
        const now = await leader().catch(() => undefined);
        return now && now !== old ? now : undefined;
      }, 30_000, 100);
      expect(elected).not.toBe(old);
      const upAt = Date.now();
      // The killed node comes back (as an orchestrator would restart it) after the outage.
      await sleep(TIMING.outageMs);
      await cluster.node(old!).start();
      return { downAt, upAt };
    },
  });
  console.log(JSON.stringify({ ...result, killedLeader: killed }));
  expect(result.ok).toBeGreaterThan(0);
}, 300_000);
