import { describe, expect, test } from "vitest";
import { fieldsOf, fromPatch, presenter, rowToMessage, toPatch } from "./shape.js";
import { Task, UpdateTask } from "./task.js";

describe("contract shapes", () => {
  test("toPatch: absent fields stay absent, a nullable field travels as {value} or {} (null), a list as {values}", () => {
    const body = UpdateTask.parse({ title: "T", assignee_id: null, due_date: "2030-01-01T00:00:00Z", labels: ["a", "a", "b"] });
    expect(toPatch(UpdateTask, body)).toEqual({ title: "T", assignee_id: {}, due_date: { value: "2030-01-01T00:00:00.000Z" }, labels: { values: ["a", "b"] } });
    expect(toPatch(UpdateTask, UpdateTask.parse({ labels: [] }))).toEqual({ labels: { values: [] } });
  });

  test("fromPatch reverses toPatch: what the gateway sent is what the service checks", () => {
    for (const body of [{ title: "T" }, { assignee_id: null }, { due_date: "2030-01-01T00:00:00.000Z", labels: [] }, { labels: ["x"], status: "completed" }]) {
      const parsed = UpdateTask.parse(body);
      expect(UpdateTask.parse(fromPatch(UpdateTask, toPatch(UpdateTask, parsed)))).toEqual(parsed);
    }
  });

  test("presenter: exactly the contract's fields, unset ones as null; rows become messages with RFC 3339 times", () => {
    const row = {
      id: "5f1c1d7e-9d3b-4c1a-8f1e-2b7a4c9d0e11",
      workspace_id: "0b6f4d1e-2c3a-4b5c-9d8e-7f6a5b4c3d21",
      title: "t",
      description: "",
      status: "pending",
      priority: "low",
      assignee_id: null,
      created_by: "0b6f4d1e-2c3a-4b5c-9d8e-7f6a5b4c3d22",
      due_date: null,
      labels: ["x"],
      watcher_ids: ["0b6f4d1e-2c3a-4b5c-9d8e-7f6a5b4c3d22"],
      created_at: new Date("2030-01-01T00:00:00Z"),
      updated_at: new Date("2030-01-02T00:00:00Z"),
      seq: "7",
      search: "'t'",
    };
    const message = rowToMessage<Record<string, unknown>>(Task)(row);
    expect(message).not.toHaveProperty("seq");
    expect(message["assignee_id"]).toBeUndefined();
    const resource = presenter(Task)(message);
    expect(Object.keys(resource)).toEqual(fieldsOf(Task));
    expect(resource).toMatchObject({ assignee_id: null, due_date: null, labels: ["x"], created_at: "2030-01-01T00:00:00.000Z" });
    expect(Task.safeParse(resource).success).toBe(true);
  });
});
