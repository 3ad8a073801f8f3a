import type { CreateTaskItem, GetTaskItem, Task, TaskResult, TaskServiceClient } from "../../api/gen/taskboard/task/v1/task.js";
import { CallBatcher, fromItemError } from "../platform/batch.js";
import type { ServiceClient } from "../platform/grpc-client.js";

/**
 * The hot task calls, coalesced: concurrent creates and reads of any users go
 * to the task service as one internal call each turn of the event loop (see
 * CallBatcher), each item with its user's token.
 */
export class TaskBatches {
  readonly create: CallBatcher<CreateTaskItem, Task>;
  readonly get: CallBatcher<GetTaskItem, Task>;

  constructor(task: ServiceClient<TaskServiceClient>) {
    this.create = new CallBatcher(async (items) => outcomes((await task.call("createTasks", { items }, { internal: true })).results));
    this.get = new CallBatcher(async (items) => outcomes((await task.call("getTasks", { items }, { internal: true })).results));
  }
}

function outcomes(results: TaskResult[]): (Task | Error)[] {
  return results.map((result) =>
    result.outcome?.$case === "task" ? result.outcome.value : fromItemError(result.outcome?.value ?? { code: "internal", message: "", details_json: "" }),
  );
}
