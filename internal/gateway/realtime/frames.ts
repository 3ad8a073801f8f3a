/** Server → client frames of API.md "WebSocket", as JSON text. */

const CLOSING_BRACE = 0x7d;

/**
 * An event frame: the stored envelope with `seq` added, built from the bytes
 * JetStream delivered without parsing them (once per replica for live events).
 */
export function eventFrame(envelope: Uint8Array, seq: number): Buffer | undefined {
  let end = envelope.length - 1;
  while (end > 0 && envelope[end] !== CLOSING_BRACE) end--;
  if (end <= 0) return undefined;
  const tail = Buffer.from(`,"seq":${seq}}`);
  return Buffer.concat([envelope.subarray(0, end), tail]);
}

/**
 * The first frame: the latest event of the workspace now (`seq`), the history
 * it belongs to (`epoch`), its oldest retained event (`first_seq`, 0 if none),
 * and, for a client that sent `since`, whether every event after it follows.
 */
export function connectedFrame(fields: {
  workspaceId: string;
  connectionId: string;
  seq: number;
  epoch: string;
  firstSeq: number;
  recovered: boolean | undefined;
}): string {
  return JSON.stringify({
    type: "connected",
    workspace_id: fields.workspaceId,
    connection_id: fields.connectionId,
    seq: fields.seq,
    epoch: fields.epoch,
    first_seq: fields.firstSeq,
    ...(fields.recovered === undefined ? {} : { recovered: fields.recovered }),
  });
}

export const pongFrame = JSON.stringify({ type: "pong" });

export function errorFrame(code: string, message: string): string {
  return JSON.stringify({ type: "error", code, message });
}

/** Close codes the gateway uses. */
export const CloseCode = {
  /** Policy violation: flooding. */
  flooding: 1008,
  /** The server is restarting (shutdown): reconnect, with `since`. */
  restarting: 1012,
  /** The client could not keep up: reconnect with `since`. */
  slowConsumer: 1013,
  tokenExpired: 4001,
  removedFromWorkspace: 4003,
  workspaceDeleted: 4004,
} as const;
