import { openApiDocument } from "./openapi.js";
import { waitFor } from "./wait.js";

/** One Server-Sent Events message as the gateway writes it. */
export interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
}

/**
 * A plain HTTP client of `GET /workspaces/<id>/stream` (fetch, reading the body as it
 * comes), recording every message and comment, parsed as the SSE format says. Its
 * answer is checked against api/openapi.yaml, as the test HTTP client's are.
 */
export class SseClient {
  readonly messages: SseMessage[] = [];
  comments = 0;
  ended = false;
  /** The error body of a refused request. */
  body = "";

  private constructor(
    readonly status: number,
    readonly contentType: string,
    readonly headers: Headers,
    private readonly abort: AbortController,
  ) {}

  static async open(
    baseUrl: string,
    workspaceId: string,
    options: { ticket?: string; token?: string; since?: number; lastEventId?: string; epoch?: string },
  ): Promise<SseClient> {
    const query = new URLSearchParams();
    if (options.ticket) query.set("ticket", options.ticket);
    if (options.since !== undefined) query.set("since", String(options.since));
    if (options.epoch) query.set("epoch", options.epoch);
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.lastEventId) headers["last-event-id"] = options.lastEventId;
    const controller = new AbortController();
    const path = `/workspaces/${workspaceId}/stream?${query}`;
    const response = await fetch(`${baseUrl}${path}`, { headers, signal: controller.signal });
    const client = new SseClient(response.status, response.headers.get("content-type") ?? "", response.headers, controller);
    if (response.status !== 200) {
      client.body = await response.text();
      client.ended = true;
      openApiDocument().check({ method: "GET", path, status: response.status, headers: response.headers, text: client.body });
      return client;
    }
    // The stream's body never ends: its status, type and headers are what the document can say of it.
    openApiDocument().check({ method: "GET", path, status: response.status, headers: response.headers, text: "" });
    void client.read(response.body!);
    return client;
  }

  get connected(): Record<string, any> {
    const message = this.messages.find((m) => m.event === "connected");
    return message ? JSON.parse(message.data) : undefined!;
  }

  /** Event messages (those with an id, after `connected`), in arrival order. */
  get events(): (SseMessage & { envelope: Record<string, any> })[] {
    return this.messages.filter((m) => m.event !== "connected" && m.event !== "close" && m.id !== undefined).map((m) => ({ ...m, envelope: JSON.parse(m.data) }));
  }

  get closeMessage(): { code: number; reason: string } | undefined {
    const message = this.messages.find((m) => m.event === "close");
    return message ? JSON.parse(message.data) : undefined;
  }

  waitForConnected(timeoutMs = 10_000): Promise<Record<string, any>> {
    return waitFor("the connected event", () => this.connected, timeoutMs);
  }

  async waitForEvents(what: string, count: number, timeoutMs = 15_000) {
    await waitFor(`${count} × ${what} (have ${this.events.length})`, () => this.events.length >= count, timeoutMs);
    return this.events;
  }

  close(): void {
    this.abort.abort();
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          this.parse(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch {
      // aborted by close()
    }
    this.ended = true;
  }

  private parse(block: string): void {
    const fields: Record<string, string> = {};
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) {
        this.comments++;
        continue;
      }
      const colon = line.indexOf(":");
      fields[line.slice(0, colon)] = line.slice(colon + 1).replace(/^ /, "");
    }
    if (fields.event !== undefined || fields.data !== undefined) this.messages.push({ id: fields.id, event: fields.event ?? "message", data: fields.data ?? "" });
  }
}
