import type { ItemError, OnBehalfOf } from "../../api/gen/taskboard/common/v1/batch.js";
import type { AccessClaims } from "./access-tokens.js";
import { AppError, badRequest, isErrorCode, unauthorized } from "./errors.js";
import { classifyError } from "./failures.js";
import type { Principal } from "./principal.js";
import { inSpan, isTracing, linkToCurrent, remoteContext, SpanKind } from "./tracing.js";

/**
 * Batched internal calls: the gateway coalesces concurrent requests of many
 * users into one gRPC call (fewer calls, fewer round trips, one SQL statement
 * for many rows). Each item carries its user's token, verified by the callee
 * as for a single call; each item fails or succeeds on its own.
 */

/** The most items of one batch: what the gateway sends, and what a callee accepts. */
export const MAX_BATCH_ITEMS = 128;

/** The items of a batch request, refused as a whole beyond MAX_BATCH_ITEMS. */
export function boundedItems<T>(items: T[]): T[] {
  if (items.length > MAX_BATCH_ITEMS) throw badRequest(`at most ${MAX_BATCH_ITEMS} items per batch`);
  return items;
}

/** The principal of one item, or the error that refuses it. */
export async function principalOf(
  caller: OnBehalfOf | undefined,
  verify: (token: string) => Promise<AccessClaims>,
): Promise<Principal | AppError> {
  if (!caller?.token) return unauthorized("missing credentials");
  try {
    const claims = await verify(caller.token);
    return { kind: "user", userId: claims.userId, role: claims.role, token: caller.token };
  } catch (error) {
    return classifyError(error);
  }
}

/**
 * Runs one item's share of a batch call in a span of the item's own trace (the
 * trace context it carries), linked to the batch call's span: what it does, and
 * the events it writes, belong to the request it came from. Off: `fn()`.
 */
export function inItemSpan<T>(method: string, caller: OnBehalfOf | undefined, fn: () => Promise<T>): Promise<T> {
  if (!isTracing() || !caller?.traceparent) return fn();
  const parent = remoteContext((key) => (key === "traceparent" ? caller.traceparent : caller.tracestate || undefined));
  return inSpan(`${method} item`, SpanKind.SERVER, { "taskboard.request_id": caller.request_id }, fn, parent, linkToCurrent());
}

export function toItemError(error: AppError): ItemError {
  return { code: error.code, message: error.message, details_json: error.details ? JSON.stringify(error.details) : "" };
}

export function fromItemError(error: ItemError): AppError {
  if (!isErrorCode(error.code)) return new AppError("internal", "internal error");
  let details: Record<string, unknown> | undefined;
  try {
    details = error.details_json ? (JSON.parse(error.details_json) as Record<string, unknown>) : undefined;
  } catch {
    details = undefined;
  }
  return new AppError(error.code, error.message, details);
}

/**
 * Coalesces the calls made during one turn of the event loop into one batch
 * (DataLoader-style): under light load a batch holds one call and waits for
 * nothing but the next turn; under load, many. `run` answers each item with a
 * result or an Error (that item's caller gets it thrown). If `run` fails as a
 * whole for a reason other than an outage (one item made the call itself fail),
 * each item is run again on its own, so that it fails alone; an outage
 * (`unavailable`) fails every item at once.
 */
export class CallBatcher<Item, Result> {
  private pending: Pending<Item, Result>[] = [];
  private scheduled = false;

  constructor(
    private readonly run: (items: Item[]) => Promise<(Result | Error)[]>,
    private readonly maxBatch = MAX_BATCH_ITEMS,
  ) {}

  call(item: Item): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.maxBatch) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length > 0) this.send(batch);
  }

  private send(batch: Pending<Item, Result>[]): void {
    this.run(batch.map((b) => b.item)).then(
      (results) =>
        batch.forEach((b, i) => {
          const result = results[i];
          if (result instanceof Error || result === undefined) b.reject(result ?? new AppError("internal", "no result for a batch item"));
          else b.resolve(result);
        }),
      (error: unknown) => {
        if (batch.length > 1 && classifyError(error).code !== "dependency_unavailable") for (const b of batch) this.send([b]);
        else for (const b of batch) b.reject(error);
      },
    );
  }
}

interface Pending<Item, Result> {
  item: Item;
  resolve: (result: Result) => void;
  reject: (error: unknown) => void;
}
