/** One Server-Sent Events message: its `event` name (default "message"), `data` lines joined by "\n", and `id`. */
export interface SseMessage {
  event: string;
  data: string;
  id: string | undefined;
}

/**
 * Parses a text/event-stream incrementally (the WHATWG rules): feed it text in chunks
 * split anywhere (inside a line, between CR and LF) and it returns the messages
 * completed so far. Comments (`: ping`) are skipped; `retry` is ignored.
 */
export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  private id: string | undefined;
  private lastId: string | undefined;
  /** A chunk ended in CR: an LF at the start of the next one belongs to that line end. */
  private pendingCr = false;
  private started = false;

  push(chunk: string): SseMessage[] {
    let text = chunk;
    if (!this.started) {
      this.started = text.length > 0;
      if (text.startsWith("\uFEFF")) text = text.slice(1);
    }
    if (this.pendingCr && text.startsWith("\n")) text = text.slice(1);
    this.pendingCr = false;
    this.buffer += text;
    const messages: SseMessage[] = [];
    let start = 0;
    for (;;) {
      const cr = this.buffer.indexOf("\r", start);
      const lf = this.buffer.indexOf("\n", start);
      if (cr === -1 && lf === -1) break;
      let end: number;
      let next: number;
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        end = cr;
        if (cr + 1 < this.buffer.length) next = this.buffer[cr + 1] === "\n" ? cr + 2 : cr + 1;
        else {
          next = cr + 1;
          this.pendingCr = true;
        }
      } else {
        end = lf;
        next = lf + 1;
      }
      const message = this.line(this.buffer.slice(start, end));
      if (message) messages.push(message);
      start = next;
    }
    this.buffer = this.buffer.slice(start);
    return messages;
  }

  /** The id of the last message (what a reconnect would send as Last-Event-ID). */
  get lastEventId(): string | undefined {
    return this.lastId;
  }

  private line(line: string): SseMessage | undefined {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "data") this.data.push(value);
    else if (name === "event") this.event = value;
    else if (name === "id" && !value.includes("\u0000")) this.id = value;
    return undefined;
  }

  private dispatch(): SseMessage | undefined {
    const id = this.id;
    if (id !== undefined) this.lastId = id;
    const hasData = this.data.length > 0;
    const message = hasData ? { event: this.event || "message", data: this.data.join("\n"), id: this.lastId } : undefined;
    this.data = [];
    this.event = "";
    this.id = undefined;
    return message;
  }
}
