import { AuthServiceClient } from "../../api/gen/taskboard/auth/v1/auth.js";
import { WorkspaceServiceService } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import { runService } from "../../internal/platform/bootstrap.js";
import { loadWorkspaceConfig } from "../../internal/workspace/config.js";
import { GroupStore } from "../../internal/workspace/group-store.js";
import { Groups } from "../../internal/workspace/groups.js";
import { NatsMembershipChanges } from "../../internal/workspace/membership-changes.js";
import { workspaceHandlers } from "../../internal/workspace/server.js";
import { WorkspaceService } from "../../internal/workspace/service.js";
import { WorkspaceStore } from "../../internal/workspace/store.js";
import { AuthUserDirectory } from "../../internal/workspace/user-directory.js";

runService("workspace", loadWorkspaceConfig, async (platform, config) => {
  const sql = await platform.postgres("workspace");
  const { nc, subjects } = await platform.nats();
  const auth = platform.client(AuthServiceClient, config.AUTH_ADDR);
  const store = new WorkspaceStore(sql);
  const outbox = await platform.outbox(sql, "workspace");
  const groups = new Groups(new GroupStore(sql), store, outbox);
  const service = new WorkspaceService(store, outbox, new AuthUserDirectory(auth), groups, new NatsMembershipChanges(nc, subjects, platform.log));
  for (const subscription of service.subscriptions(subjects)) await platform.consume(subscription);

  platform.tokens(auth);
  platform.grpc().add(WorkspaceServiceService, workspaceHandlers(service, groups));
  return platform.serve({ grpcPort: config.GRPC_PORT });
});
