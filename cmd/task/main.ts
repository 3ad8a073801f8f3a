import { AuthServiceClient } from "../../api/gen/taskboard/auth/v1/auth.js";
import { TaskServiceService } from "../../api/gen/taskboard/task/v1/task.js";
import { WorkspaceServiceClient } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import { runService } from "../../internal/platform/bootstrap.js";
import { loadTaskConfig } from "../../internal/task/config.js";
import { taskHandlers } from "../../internal/task/server.js";
import { TaskService } from "../../internal/task/service.js";
import { DueDateReminders } from "../../internal/task/reminders.js";
import { TaskStore } from "../../internal/task/store.js";

runService("task", loadTaskConfig, async (platform, config) => {
  const sql = await platform.postgres("task");
  const { subjects } = await platform.nats();
  const auth = platform.client(AuthServiceClient, config.AUTH_ADDR);
  const memberships = await platform.memberships(platform.client(WorkspaceServiceClient, config.WORKSPACE_ADDR));
  const store = new TaskStore(sql);
  const outbox = await platform.outbox(sql, "task");
  const service = new TaskService(store, outbox, memberships);
  for (const subscription of service.subscriptions(subjects, platform.log)) await platform.consume(subscription);
  const reminders = new DueDateReminders(store, outbox, config.REMINDER_LEAD_MINUTES * 60_000, config.REMINDER_POLL_MS, platform.log);
  reminders.start();
  platform.onStop("consumers", "reminders", () => reminders.close());

  const verifier = platform.tokens(auth);
  platform.grpc().add(TaskServiceService, taskHandlers(service, (token) => verifier.verify(token)));
  return platform.serve({ grpcPort: config.GRPC_PORT });
});
