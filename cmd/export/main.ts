import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { setDefaultHighWaterMark } from "node:stream";
import { AuthServiceClient } from "../../api/gen/taskboard/auth/v1/auth.js";
import { ExportServiceService } from "../../api/gen/taskboard/export/v1/export.js";
import { TaskServiceClient } from "../../api/gen/taskboard/task/v1/task.js";
import { WorkspaceServiceClient } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import { ExpiredExportsCleanup } from "../../internal/export/cleanup.js";
import { loadExportConfig } from "../../internal/export/config.js";
import { ExportMetrics } from "../../internal/export/metrics.js";
import { exportQueue } from "../../internal/export/queue.js";
import { ExportRunner } from "../../internal/export/runner.js";
import { exportHandlers } from "../../internal/export/server.js";
import { ExportService } from "../../internal/export/service.js";
import { ExportStore } from "../../internal/export/store.js";
import { runService } from "../../internal/platform/bootstrap.js";

runService("export", loadExportConfig, async (platform, config) => {
  // grpc-js reads 16 messages ahead on a stream (an object-mode highWaterMark it has no option
  // for); decoded rows queued that long outlive V8's young generation and pile up until a full
  // GC. Two keep the row stream busy: the same rows/s, a much lower peak RSS (bench:export).
  setDefaultHighWaterMark(true, 2);
  // Nagle off: file chunks are written with COPY (see ExportStore.writeChunk).
  const sql = await platform.postgres("export", { noDelay: true });
  const { subjects } = await platform.nats();
  const auth = platform.client(AuthServiceClient, config.AUTH_ADDR);
  const memberships = await platform.memberships(platform.client(WorkspaceServiceClient, config.WORKSPACE_ADDR));
  // A larger HTTP/2 window for the row streams (1 MiB, not 64 KiB in flight): about 10 % more rows/s.
  const tasks = platform.client(TaskServiceClient, config.TASK_ADDR, { channel: { "grpc-node.flow_control_window": 1024 * 1024 } });
  const store = new ExportStore(sql);
  const outbox = await platform.outbox(sql, "export");
  const service = new ExportService(store, outbox, memberships, { retentionHours: config.EXPORT_RETENTION_HOURS, maxActivePerWorkspace: config.EXPORT_MAX_ACTIVE_PER_WORKSPACE });

  const workerId = `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const runner = new ExportRunner(store, outbox, tasks, new ExportMetrics(platform.registry), platform.log, {
    workerId,
    staleAfterMs: config.EXPORT_ACK_WAIT_MS,
    heartbeatMs: Math.floor(config.EXPORT_ACK_WAIT_MS / 3),
    maxAttempts: config.EXPORT_MAX_ATTEMPTS,
    chunkBytes: config.EXPORT_CHUNK_BYTES,
    jobTimeoutMs: config.EXPORT_JOB_TIMEOUT_MS,
  });
  const queue = exportQueue(
    { filterSubject: subjects.allOf("export.created"), ackWaitMs: config.EXPORT_ACK_WAIT_MS, concurrency: config.EXPORT_CONCURRENCY },
    (ref, delivery, stopping) => runner.run(ref, delivery, stopping),
    platform.log,
  );
  // Running jobs are handed back (pending) and their messages nak'ed, so another replica takes them at once.
  platform.onStop("consumers", "hand running export jobs back", queue.stop);
  for (const subscription of [queue.subscription, ...service.subscriptions(subjects, platform.log)]) await platform.consume(subscription);
  const cleanup = new ExpiredExportsCleanup(store, config.EXPORT_CLEANUP_INTERVAL_MS, platform.log);
  cleanup.start();
  platform.onStop("consumers", "cleanup", () => cleanup.close());

  platform.tokens(auth);
  platform.grpc().add(ExportServiceService, exportHandlers(service));
  return platform.serve({ grpcPort: config.GRPC_PORT, extra: { worker_id: workerId, pid: process.pid } });
});
