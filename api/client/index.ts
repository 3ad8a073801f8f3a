// @taskboard/client: the Taskboard API's TypeScript client (REST and realtime), with no runtime dependencies.
export { TaskboardClient, type TaskboardClientOptions, type RequestOptions } from "./client.js";
export { TaskboardError, RealtimeClosedError, parseRetryAfter } from "./errors.js";
export {
  RealtimeSubscription,
  RealtimeFrameError,
  type RealtimeOptions,
  type RealtimeStatus,
  type RealtimeState,
  type RealtimeListeners,
  type RealtimeEnd,
  type ResetInfo,
  type Transport,
  type TransportChoice,
  type WebSocketConstructor,
} from "./realtime.js";
export { isEventOf, type ConnectedFrame, type EventDataMap, type EventOf, type KnownEventType, type RealtimeEvent, type Deleted } from "./events.js";
export {
  operations,
  type CallOptions,
  type OperationBody,
  type OperationId,
  type OperationInput,
  type OperationParams,
  type OperationQuery,
  type OperationResult,
  type OperationTypes,
} from "./operations.gen.js";
export { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from "./backoff.js";
export { SseParser, type SseMessage } from "./sse.js";
export { tokenTimes, refreshDueAt, type Tokens } from "./tokens.js";
export { expandPath, queryString, websocketUrl } from "./url.js";
