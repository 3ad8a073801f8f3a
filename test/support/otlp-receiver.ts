import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One span as an OTLP/HTTP JSON export carries it, with its process's `service.name`. */
export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  status?: { code?: number; message?: string };
}

interface KeyValue {
  key: string;
  value: Record<string, unknown>;
}
interface ExportRequest {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: { spans?: (Omit<ReceivedSpan, "service" | "attributes"> & { attributes?: KeyValue[] })[] }[];
  }[];
}

/**
 * An in-process OTLP/HTTP receiver (JSON encoding, `POST /v1/traces`): what a
 * collector would get from processes run with OTEL_EXPORTER_OTLP_ENDPOINT set
 * to `url` and OTEL_EXPORTER_OTLP_PROTOCOL=http/json.
 */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly contentTypes = new Set<string>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<OtlpReceiver> {
    let receiver: OtlpReceiver | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        receiver!.contentTypes.add(req.headers["content-type"] ?? "");
        if (req.method !== "POST" || req.url !== "/v1/traces") {
          res.writeHead(404).end();
          return;
        }
        receiver!.take(JSON.parse(Buffer.concat(chunks).toString("utf8")) as ExportRequest);
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    receiver = new OtlpReceiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return receiver;
  }

  /** Every span of one trace. */
  trace(traceId: string): ReceivedSpan[] {
    return this.spans.filter((span) => span.traceId === traceId);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private take(request: ExportRequest): void {
    for (const resourceSpans of request.resourceSpans ?? []) {
      const service = String(valueOf(resourceSpans.resource?.attributes?.find((a) => a.key === "service.name")?.value) ?? "");
      for (const scope of resourceSpans.scopeSpans ?? []) {
        for (const span of scope.spans ?? []) {
          const attributes = Object.fromEntries((span.attributes ?? []).map((a) => [a.key, valueOf(a.value)]));
          this.spans.push({ ...span, service, attributes, parentSpanId: span.parentSpanId ?? "" });
        }
      }
    }
  }
}

function valueOf(value: Record<string, unknown> | undefined): unknown {
  if (!value) return undefined;
  // int64 values travel as JSON strings or numbers.
  if (value["intValue"] !== undefined) return Number(value["intValue"]);
  return value["stringValue"] ?? value["doubleValue"] ?? value["boolValue"];
}

/** The trace as an indented tree: `service: name` per span, children under their parent, in start order. */
export function spanTree(spans: ReceivedSpan[]): string {
  const ids = new Set(spans.map((s) => s.spanId));
  const children = (parent: string) =>
    spans.filter((s) => (parent ? s.parentSpanId === parent : !ids.has(s.parentSpanId))).sort((a, b) => startOf(a) - startOf(b));
  const lines: string[] = [];
  const walk = (span: ReceivedSpan, depth: number) => {
    lines.push(`${"  ".repeat(depth)}${span.service}: ${span.name}`);
    for (const child of children(span.spanId)) walk(child, depth + 1);
  };
  for (const root of children("")) walk(root, 0);
  return lines.join("\n");
}

function startOf(span: ReceivedSpan): number {
  return Number((span as unknown as { startTimeUnixNano?: string | number }).startTimeUnixNano ?? 0);
}
