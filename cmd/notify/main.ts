import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { AuthServiceClient } from "../../api/gen/taskboard/auth/v1/auth.js";
import { TaskServiceClient } from "../../api/gen/taskboard/task/v1/task.js";
import { WorkspaceServiceClient } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import { loadNotifyConfig } from "../../internal/notify/config.js";
import { notifySubscriptions } from "../../internal/notify/consumers.js";
import { ServiceDirectory } from "../../internal/notify/directory.js";
import { SesMailer } from "../../internal/notify/mailer.js";
import { NotifyMetrics } from "../../internal/notify/metrics.js";
import { NotifyService } from "../../internal/notify/service.js";
import { DeliveryStore } from "../../internal/notify/store.js";
import { runService } from "../../internal/platform/bootstrap.js";

runService("notify", loadNotifyConfig, async (platform, config) => {
  if (config.NOTIFY_FAULT) platform.log.warn({ fault: config.NOTIFY_FAULT }, "NOTIFY_FAULT is set: this process will kill itself (test only)");
  const sql = await platform.postgres("notify");
  const { subjects } = await platform.nats();
  const auth = platform.client(AuthServiceClient, config.AUTH_ADDR);
  const memberships = await platform.memberships(platform.client(WorkspaceServiceClient, config.WORKSPACE_ADDR));
  const tasks = platform.client(TaskServiceClient, config.TASK_ADDR);
  const mailer = new SesMailer({
    endpoint: config.SES_ENDPOINT,
    region: config.SES_REGION,
    from: config.SES_FROM,
    timeoutMs: config.SES_TIMEOUT_MS,
    credentialsFromEnvironment: config.awsCredentialsFromEnvironment,
  });
  platform.onStop("clients", "ses", () => mailer.close());
  const replica = `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const service = new NotifyService(
    new DeliveryStore(sql),
    await platform.outbox(sql, "notify"),
    new ServiceDirectory(auth, memberships, tasks),
    mailer,
    new NotifyMetrics(platform.registry),
    platform.log,
    {
      appUrl: config.APP_URL,
      replica,
      claimTtlMs: config.NOTIFY_CLAIM_TTL_MS,
      sendAttempts: config.NOTIFY_SEND_ATTEMPTS,
      retryBaseMs: config.NOTIFY_RETRY_BASE_MS,
      maxDeliver: config.NOTIFY_MAX_DELIVER,
      fault: config.NOTIFY_FAULT,
    },
  );
  const options = { maxDeliver: config.NOTIFY_MAX_DELIVER, ackWaitMs: config.NOTIFY_ACK_WAIT_MS, redeliveryMs: config.NOTIFY_REDELIVERY_MS };
  for (const subscription of notifySubscriptions(subjects, service, options)) await platform.consume(subscription);
  return platform.serve({ extra: { replica, ses_endpoint: config.SES_ENDPOINT } });
});
