import fc from "fast-check";
import type { z } from "zod";
import { pathParameters, type Route } from "../../internal/gateway/router.js";

/**
 * Hostile requests for any route of the gateway's route table, as fast-check
 * arbitraries: paths with valid, foreign and malformed ids; queries and JSON
 * bodies built around the route's own contract fields with values of every
 * wrong kind (types, sizes, unicode and NUL, prototype-pollution keys, deep
 * nesting, out-of-range numbers and dates); raw bodies and content types that
 * are not JSON at all; missing, forged and valid credentials.
 */

export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
  /** The path used a resource of the fuzzing user (a write there may succeed). */
  own: boolean;
}

/** encodeURIComponent that survives lone surrogates (as a browser would send them: U+FFFD). */
export function encode(value: string): string {
  return encodeURIComponent(value.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD"));
}

/** Ids of the fuzzing user's own resources, by path parameter name. */
export type OwnIds = Record<string, string>;

const POLLUTION_KEYS = ["__proto__", "constructor", "prototype", "__defineGetter__", "hasOwnProperty"];

/** Strings of every awkward kind, short enough for a URL or a header. */
const nastyString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom("", " ", "\u0000", "a\u0000b", "\uFFFF", "\uD800", "𝕏😀", "<script>alert(1)</script>", "' OR 1=1 --", "../../etc/passwd", "%00", "\r\n", "null", "undefined", "NaN", "-0"),
  fc.constantFrom("0000-00-00T00:00:00Z", "10000-01-01T00:00:00Z", "-000001-01-01T00:00:00Z", "2030-02-30T10:00:00Z", "1970-01-01T00:00:00+99:99", "2030-01-01"),
  fc.integer({ min: 200, max: 600 }).map((n) => "x".repeat(n)),
);

/** The same, and now and then far longer than any field allows (bodies only: URLs and headers have their own limits). */
const bodyString = fc.oneof({ weight: 8, arbitrary: nastyString }, { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 70_000 }).map((n) => "x".repeat(n)) });

const nastyNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -1, 2 ** 31, 2 ** 53, -(2 ** 53) - 1, Number.MAX_VALUE, 1e308, 5e-324),
);

/** A JSON value of any kind, nested up to `depth`. */
const jsonValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    bodyString,
    nastyNumber,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom(...POLLUTION_KEYS)), tie("value"), { maxKeys: 4 }),
  ),
})).value;

/** Deep nesting: arrays or objects inside each other, thousands of levels down. */
const deepJson = fc.integer({ min: 100, max: 5_000 }).chain((depth) =>
  fc.constantFrom("[", '{"a":').map((open) => open.repeat(depth) + "1" + (open === "[" ? "]" : "}").repeat(depth)),
);

function fieldsOf(schema: z.ZodType | undefined): string[] {
  const shape = (schema as unknown as { shape?: Record<string, unknown> } | undefined)?.shape;
  return shape ? Object.keys(shape) : [];
}

/** A JSON object around the contract's fields: some right-ish, some wrong, some extra or poisonous. */
function bodyObject(fields: string[]): fc.Arbitrary<Record<string, unknown>> {
  const key = fields.length > 0 ? fc.oneof(fc.constantFrom(...fields), fc.constantFrom(...POLLUTION_KEYS), fc.string({ maxLength: 12 })) : fc.string({ maxLength: 12 });
  return fc.dictionary(key, jsonValue, { maxKeys: Math.max(3, fields.length + 2) });
}

const rawBody = fc.oneof(
  bodyObject([]).map((o) => JSON.stringify(o)),
  deepJson,
  fc.constantFrom("", "{", "[]", "null", "1", '"text"', '{"a":1}{"b":2}', "\u0000", '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"x":1}}}'),
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.integer({ min: 100_000, max: 1_200_000 }).map((n) => `{"title":"${"y".repeat(n)}"}`),
);

const contentType = fc.constantFrom("application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/json; charset=latin1", "APPLICATION/JSON");

function idFor(name: string, own: OwnIds): fc.Arbitrary<{ value: string; own: boolean }> {
  const malformed = fc.oneof(nastyString, fc.uuid().map((u) => u.toUpperCase() + "0"), fc.constantFrom("00000000-0000-0000-0000-000000000000", "..", "%2e%2e%2f", "me"));
  const options: fc.Arbitrary<{ value: string; own: boolean }>[] = [
    fc.uuid().map((value) => ({ value, own: false })),
    malformed.map((value) => ({ value, own: false })),
  ];
  if (own[name]) options.push(fc.constant({ value: own[name]!, own: true }));
  return fc.oneof(...options);
}

function queryString(fields: string[]): fc.Arbitrary<string> {
  const name = fields.length > 0 ? fc.oneof(fc.constantFrom(...fields), fc.string({ maxLength: 8 }), fc.constantFrom(...POLLUTION_KEYS)) : fc.string({ maxLength: 8 });
  const value = fc.oneof(nastyString, nastyNumber.map(String), fc.constantFrom("abc", "-1", "0", "1e3", "99999999999999999999", "2030-01-01T00:00:00Z", "task.created", "a.b.c"));
  return fc.array(fc.tuple(name, value), { maxLength: 6 }).map((pairs) => {
    const params = new URLSearchParams();
    for (const [k, v] of pairs) params.append(k, v);
    const text = params.toString();
    return text ? `?${text}` : "";
  });
}

/** Requests against one route. `token` is the fuzzing user's valid access token. */
export function requestFor(route: Route, own: OwnIds, token: string): fc.Arbitrary<FuzzRequest> {
  const names = pathParameters(route.path);
  // Never aim a deletion at the fuzzing user's own resources: the rest of the run needs them.
  const ids = names.map((name) => (route.method === "delete" ? idFor(name, {}) : idFor(name, own)));
  const auth = fc.oneof(
    { weight: 6, arbitrary: fc.constant(`Bearer ${token}`) },
    { weight: 1, arbitrary: fc.constantFrom("", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", `Bearer ${token}x`, `bearer ${token.split(".").slice(0, 2).join(".")}.`, "Bearer eyJhbGciOiJub25lIn0.e30.") },
    { weight: 1, arbitrary: nastyString.map((s) => `Bearer ${s}`) },
  );
  const body = route.body
    ? fc.oneof({ weight: 3, arbitrary: bodyObject(fieldsOf(route.body)).map((o) => JSON.stringify(o)) }, { weight: 1, arbitrary: rawBody }, { weight: 1, arbitrary: fc.constant(undefined) })
    : fc.option(rawBody, { nil: undefined, freq: 4 });
  return fc
    .record({
      ids: fc.tuple(...ids),
      query: queryString(fieldsOf(route.query)),
      auth,
      body,
      contentType: route.body ? fc.oneof({ weight: 4, arbitrary: fc.constant("application/json") }, { weight: 1, arbitrary: contentType }) : contentType,
      requestId: fc.option(nastyString.filter((s) => /^[\x20-\x7e]*$/.test(s)), { nil: undefined }),
      lastEventId: fc.option(fc.oneof(nastyString, nastyNumber.map(String)).filter((s) => /^[\x20-\x7e]*$/.test(s)), { nil: undefined }),
    })
    .map(({ ids: values, query, auth: authorization, body: text, contentType: type, requestId, lastEventId }) => {
      let path = route.path;
      names.forEach((name, i) => (path = path.replace(`{${name}}`, encode(values[i]!.value))));
      const headers: Record<string, string> = {};
      if (authorization) headers["authorization"] = authorization;
      if (type && text !== undefined) headers["content-type"] = type;
      if (requestId) headers["x-request-id"] = requestId;
      if (lastEventId) headers["last-event-id"] = lastEventId;
      return { method: route.method.toUpperCase(), path: path + query, headers, body: text, own: values.some((v) => v.own) };
    });
}

/** Frames a WebSocket client might send: the protocol's types with wrong data, and everything else. */
export const frame: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ type: fc.constantFrom("ping", "custom.message", "auth", "subscribe", "", "__proto__"), data: jsonValue, token: jsonValue, group_id: jsonValue }, { requiredKeys: ["type"] }).map((f) => JSON.stringify(f)) },
  { weight: 1, arbitrary: jsonValue.map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.oneof(deepJson, fc.string({ maxLength: 100 }), fc.constantFrom("", "{", "null", '{"type":"ping"}{"type":"ping"}')) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 300_000 }).map((n) => JSON.stringify({ type: "custom.message", data: { text: "z".repeat(n) } })) },
);

/** Query strings of the real-time endpoints' URLs (WebSocket upgrade and SSE). */
export const realtimeQuery: fc.Arbitrary<Record<string, string>> = fc.dictionary(
  fc.constantFrom("since", "epoch", "ticket", "token", "x"),
  fc.oneof(nastyString, nastyNumber.map(String), fc.constantFrom("0", "1", "-1", "18446744073709551616", "1e9", "")),
  { maxKeys: 4 },
);
