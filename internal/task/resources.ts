import type { Comment, Task } from "../../api/gen/taskboard/task/v1/task.js";

/**
 * The JSON shapes of API.md "Tasks" and "Comments", built field by field from
 * the service messages. The gateway presents them, and the task service puts
 * the very same objects in event `data`, so a browser sees one shape.
 */

export const taskResource = (t: Task) => ({
  id: t.id,
  workspace_id: t.workspace_id,
  title: t.title,
  description: t.description,
  status: t.status,
  priority: t.priority,
  assignee_id: t.assignee_id ?? null,
  created_by: t.created_by,
  due_date: t.due_date ?? null,
  created_at: t.created_at,
  updated_at: t.updated_at,
});

export const commentResource = (c: Comment) => ({
  id: c.id,
  workspace_id: c.workspace_id,
  task_id: c.task_id,
  author_id: c.author_id,
  content: c.content,
  created_at: c.created_at,
  updated_at: c.updated_at,
});
