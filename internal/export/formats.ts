import { stringify, type Options } from "csv-stringify/sync";
import type { Comment, Task } from "../../api/gen/taskboard/task/v1/task.js";
import { Comment as CommentContract } from "../../api/contracts/comment.js";
import type { ExportFormat, ExportType } from "../../api/contracts/export-job.js";
import { fieldsOf } from "../../api/contracts/shape.js";
import { Task as TaskContract } from "../../api/contracts/task.js";
import { commentResource, taskResource } from "../task/resources.js";

/** A row of an export as the API shows it (API.md "Tasks", "Comments"). */
type Resource = Record<string, unknown>;

const RESOURCES: Record<ExportType, (message: never) => Resource> = {
  tasks: (t: Task) => taskResource(t),
  comments: (c: Comment) => commentResource(c),
};

/** The CSV columns of each type: the contract's fields, in its order. */
export const CSV_COLUMNS: Record<ExportType, readonly string[]> = {
  tasks: fieldsOf(TaskContract),
  comments: fieldsOf(CommentContract),
};

/** Turns the task service's batches of messages into a file, piece by piece. */
export interface FileEncoding {
  /**
   * The text of a batch of rows, in order, in pieces of at most PIECE_ROWS rows
   * (the first call also writes what opens the file). Small pieces keep each
   * string short-lived and out of V8's large-object space.
   */
  batch(messages: readonly (Task | Comment)[]): string[];
  /** What closes the file, after the last batch (for an empty export, the whole file). */
  end(): string;
}

const PIECE_ROWS = 100;

/**
 * CSV (RFC 4180: a header row, CRLF line ends, fields with a comma, quote or
 * line break quoted, quotes doubled; cells that a spreadsheet would run as a
 * formula — starting with = + - @, tab or CR — prefixed with a single quote;
 * null is an empty cell; a list is one cell joined with ";") or a JSON array of the API's objects.
 */
export function fileEncoding(type: ExportType, format: ExportFormat): FileEncoding {
  const resource = RESOURCES[type] as (message: Task | Comment) => Resource;
  return format === "csv" ? new CsvEncoding(resource, CSV_COLUMNS[type]) : new JsonArrayEncoding(resource);
}

class CsvEncoding implements FileEncoding {
  private readonly options: Options;
  private started = false;

  constructor(
    private readonly resource: (message: Task | Comment) => Resource,
    columns: readonly string[],
  ) {
    this.options = {
      columns: [...columns],
      record_delimiter: "windows",
      quote_record_delimiter: true,
      escape_formulas: true,
      // A list (a task's labels) is one cell, its items joined with ";".
      cast: { object: (value) => (Array.isArray(value) ? value.join(";") : JSON.stringify(value)) },
    };
  }

  batch(messages: readonly (Task | Comment)[]): string[] {
    const pieces: string[] = [];
    for (let i = 0; i < messages.length; i += PIECE_ROWS) {
      const records = messages.slice(i, i + PIECE_ROWS).map((message) => Object.values(this.resource(message)));
      pieces.push(stringify(records, { ...this.options, header: !this.started }));
      this.started = true;
    }
    return pieces;
  }

  end(): string {
    return this.started ? "" : stringify([], { ...this.options, header: true });
  }
}

/** `[`, the objects separated by `,` and a line break, `]`. */
class JsonArrayEncoding implements FileEncoding {
  private started = false;

  constructor(private readonly resource: (message: Task | Comment) => Resource) {}

  batch(messages: readonly (Task | Comment)[]): string[] {
    const pieces: string[] = [];
    for (let i = 0; i < messages.length; i += PIECE_ROWS) {
      const objects = messages.slice(i, i + PIECE_ROWS).map((message) => JSON.stringify(this.resource(message)));
      pieces.push((this.started ? ",\n" : "[\n") + objects.join(",\n"));
      this.started = true;
    }
    return pieces;
  }

  end(): string {
    return this.started ? "\n]\n" : "[]\n";
  }
}
