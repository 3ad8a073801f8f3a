import type { Caller } from "../platform/principal.js";

/**
 * The processes of the mesh, declared once: their names, the ports they listen
 * on in `npm run dev`, the variable by which others find their gRPC address,
 * and whom they call. The dev runner, the test mesh and the deployment checks
 * read it; start order follows `calls` (a process starts after those it calls).
 */
export interface ProcessSpec {
  name: Caller;
  /** Local ports in `npm run dev`, by the kind its ready line reports ("grpc", "admin", "http"). */
  ports: { grpc?: number; admin: number; http?: number };
  /** The variable that gives callers this process's gRPC address (host:port). */
  addressVar?: string;
  /** Processes it calls over gRPC. */
  calls: Caller[];
}

export const TOPOLOGY: readonly ProcessSpec[] = [
  { name: "auth", ports: { grpc: 50051, admin: 9091 }, addressVar: "AUTH_ADDR", calls: [] },
  { name: "workspace", ports: { grpc: 50052, admin: 9092 }, addressVar: "WORKSPACE_ADDR", calls: ["auth"] },
  { name: "task", ports: { grpc: 50053, admin: 9093 }, addressVar: "TASK_ADDR", calls: ["auth", "workspace"] },
  { name: "export", ports: { grpc: 50054, admin: 9094 }, addressVar: "EXPORT_ADDR", calls: ["auth", "workspace", "task"] },
  { name: "notify", ports: { admin: 9095 }, calls: ["auth", "workspace", "task"] },
  { name: "webhooks", ports: { grpc: 50055, admin: 9096 }, addressVar: "WEBHOOKS_ADDR", calls: ["auth", "workspace"] },
  { name: "gateway", ports: { http: 8080, admin: 9090 }, calls: ["auth", "workspace", "task", "export", "webhooks"] },
];

/** The port variables each kind of port is configured by. */
export const PORT_VARS = { grpc: "GRPC_PORT", admin: "ADMIN_PORT", http: "GATEWAY_PORT" } as const;

/** The processes in an order where each comes after every process it calls. */
export function startOrder(processes: readonly ProcessSpec[] = TOPOLOGY): ProcessSpec[][] {
  const placed = new Set<string>();
  const waves: ProcessSpec[][] = [];
  let left = [...processes];
  while (left.length > 0) {
    const wave = left.filter((p) => p.calls.every((callee) => placed.has(callee)));
    if (wave.length === 0) throw new Error(`the topology has a cycle among ${left.map((p) => p.name).join(", ")}`);
    for (const p of wave) placed.add(p.name);
    waves.push(wave);
    left = left.filter((p) => !wave.includes(p));
  }
  return waves;
}
