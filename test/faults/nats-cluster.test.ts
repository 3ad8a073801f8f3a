import { connect } from "nats";
import { expect, test } from "vitest";
import { NatsCluster } from "../support/fault-servers.js";
import { Mesh } from "../support/mesh.js";
import { waitFor } from "../support/wait.js";
import { FAULT_ENV, ReplicasDiverged, runScenario, sleep, TIMING, type ScenarioFigures } from "./harness.js";

// A three-node NATS cluster of this file's own, the stream replicated three times: its
// leader is killed (-9) mid-load; writes go on once a new leader is elected, and nothing is
// lost, doubled or delivered out of order. Postgres and Redis are the run's shared servers.

/** One run of the scenario on a fresh cluster and mesh. */
async function leaderKill(): Promise<ScenarioFigures & { killedLeader: string }> {
  const cluster = await NatsCluster.start();
  const mesh = await Mesh.start({
    gateways: 2,
    servers: { natsUrl: cluster.url },
    env: { ...FAULT_ENV, NATS_STREAM_REPLICAS: "3" },
  }).catch(async (error: unknown) => {
    await cluster.destroy();
    throw error;
  });
  const nc = await connect({ servers: cluster.url.split(","), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  try {
    const jsm = await nc.jetstreamManager();
    const leader = async () => (await jsm.streams.info(mesh.streamName)).cluster?.leader;
    expect((await jsm.streams.info(mesh.streamName)).config.num_replicas).toBe(3);
    let killed = "";
    const result = await runScenario({
      mesh,
      name: "nats-cluster-leader-kill",
      replicated: true,
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
    return { ...result, killedLeader: killed };
  } finally {
    await nc.close();
    await mesh.stop();
    await cluster.destroy();
  }
}

test("faults: the stream leader of a three-node NATS cluster killed (-9) under load: writes continue on the new leader, nothing lost or doubled, every client gap-free", async () => {
  let result;
  try {
    result = await leaderKill();
  } catch (error) {
    // NATS 2.9 (this machine's server) can leave the replicas of an R3 stream with different
    // copies after a leader kill; the mesh is then checked against no single truth. Said
    // loudly, and run once more on fresh servers; a mesh fault fails at once, as does a
    // second divergence.
    if (!(error instanceof ReplicasDiverged)) throw error;
    console.warn(`NATS replicas diverged (a server defect, not the mesh's): ${error.message}; running the scenario again on fresh servers`);
    result = await leaderKill();
  }
  console.log(JSON.stringify(result));
  expect(result.ok).toBeGreaterThan(0);
  expect(result.replicasCompared, "every replica's copy read and found the same").toBe(3);
}, 600_000);
