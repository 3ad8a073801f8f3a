import { Comment } from "../../api/contracts/comment.js";
import { presenter } from "../../api/contracts/shape.js";
import { Task } from "../../api/contracts/task.js";

/**
 * The JSON shapes of API.md "Tasks" and "Comments", presented from their
 * contracts. The gateway presents them, and the task service puts the very
 * same objects in event `data`, so a browser sees one shape.
 */
export const taskResource = presenter(Task);
export const commentResource = presenter(Comment);
