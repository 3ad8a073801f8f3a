import { STATUS_CODES } from "node:http";
import { z } from "zod";
import "../../api/contracts/system.js"; // the Error body every route may answer
import { DEFAULT_PAGE_SIZE } from "../../api/contracts/fields.js";
import { errorCatalogue } from "../platform/errors.js";
import { pathParameters, type Route } from "./router.js";

/**
 * The OpenAPI 3.1 document, generated: the paths from the gateway's route
 * table (method, path, auth, body and query contracts, docs), the schemas
 * from the contracts (api/contracts: every schema with a `meta({ id })`,
 * converted by zod's own JSON Schema output), the error responses from the
 * error catalogue. The prose and the WebSocket description come from `base`.
 * scripts/openapi.ts writes it to api/openapi.yaml; a test fails on drift.
 */
export function openApiDocument(base: Record<string, unknown>, routes: readonly Route[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const parameterNames = new Set<string>();
  for (const route of routes) {
    const names = pathParameters(route.path);
    names.forEach((name) => parameterNames.add(name));
    const item = (paths[route.path] ??= names.length > 0 ? { parameters: names.map((name) => ref("parameters", parameterName(name))) } : {});
    item[route.method] = operation(route, names.length > 0);
  }
  const { components: baseComponents, ...prose } = base;
  return {
    ...prose,
    paths,
    components: {
      ...(baseComponents as Record<string, unknown>),
      parameters: Object.fromEntries(
        [...parameterNames].sort().map((name) => [
          parameterName(name),
          { name, in: "path", required: true, schema: { type: "string", ...(name.endsWith("_id") ? { format: "uuid" } : {}) } },
        ]),
      ),
      headers: { RetryAfter: { description: "Seconds to wait before retrying.", required: true, schema: { type: "integer", minimum: 0 } } },
      responses: errorResponses(),
      schemas: contractSchemas(),
    },
  };
}

function operation(route: Route, hasPathParameters: boolean): Record<string, unknown> {
  const { doc } = route;
  const op: Record<string, unknown> = {
    operationId: doc.operationId,
    summary: doc.summary,
    ...(doc.description ? { description: doc.description } : {}),
    tags: [doc.tag],
  };
  if (route.auth === "public") op["security"] = [];
  if (route.query) op["parameters"] = queryParameters(route.query);
  if (route.body) {
    op["requestBody"] = { required: true, content: { "application/json": { schema: schemaRef(route.body, `${route.method} ${route.path} body`) } } };
  }
  const ok: Record<string, unknown> = { description: doc.ok.description };
  if (doc.ok.schema) ok["content"] = { "application/json": { schema: schemaRef(doc.ok.schema, `${route.method} ${route.path} answer`) } };
  else if (doc.ok.contentType) {
    const { contentSchemas = {} } = doc.ok;
    const types = doc.ok.contentType.split(", ");
    for (const type of Object.keys(contentSchemas)) if (!types.includes(type)) throw new Error(`${route.method} ${route.path}: contentSchemas names ${type}, not one of its content types`);
    ok["content"] = Object.fromEntries(
      types.map((type) => [type, { schema: contentSchemas[type] ? schemaRef(contentSchemas[type], `${route.method} ${route.path} ${type} answer`) : { type: "string" } }]),
    );
  }
  const errors = new Set<number>(doc.errors ?? []);
  if (hasPathParameters || route.body || route.query) errors.add(400);
  // Every authenticated request counts against its user's rate limit (RATE_LIMIT_API_PER_USER).
  if (route.auth !== "public") [401, 403, 429, 503].forEach((s) => errors.add(s));
  if (hasPathParameters) errors.add(404);
  errors.add(500); // `internal`: any route's unexpected failure (never for bad input)
  if (route.body) [413, 415].forEach((s) => errors.add(s));
  const responses: Record<string, unknown> = { [String(doc.ok.status)]: ok };
  for (const status of [...errors].sort()) responses[String(status)] = ref("responses", responseName(status));
  op["responses"] = responses;
  return op;
}

/** A query object's fields as OpenAPI parameters; a field that takes a list takes the parameter repeated. */
function queryParameters(query: z.ZodType): unknown[] {
  if (!(query instanceof z.ZodObject)) throw new Error("a route's query must be an object schema");
  return Object.entries(query.shape as Record<string, z.ZodType>).map(([name, type]) => {
    const schema = jsonSchema(type);
    const description = typeof schema["description"] === "string" ? schema["description"] : undefined;
    delete schema["description"];
    if (name === "limit") schema["default"] = DEFAULT_PAGE_SIZE;
    const list = Array.isArray(schema["anyOf"]) && (schema["anyOf"] as { type?: string }[]).some((s) => s.type === "array");
    return {
      name,
      in: "query",
      required: !type.safeParse(undefined).success,
      ...(description ? { description } : {}),
      ...(list ? { style: "form", explode: true, schema: (schema["anyOf"] as { type?: string }[]).find((s) => s.type === "array") } : { schema }),
    };
  });
}

/** `$ref` to a registered contract schema; a body or answer must be one (the document names every shape). */
function schemaRef(schema: z.ZodType, what: string): unknown {
  const id = z.globalRegistry.get(schema)?.id;
  if (!id) throw new Error(`${what}: its schema has no meta({ id }) in api/contracts`);
  return ref("schemas", id);
}

const toJsonSchemaOptions = {
  io: "input",
  unrepresentable: "any",
  target: "draft-2020-12",
} as const;

/** Every contract schema with an id, by id, with references between them. */
function contractSchemas(): Record<string, unknown> {
  const { schemas } = z.toJSONSchema(z.globalRegistry, { ...toJsonSchemaOptions, uri: (id) => `#/components/schemas/${id}` });
  return Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b)).map(([id, schema]) => [id, tidy(schema)]));
}

/** One schema inline; registered parts become references. */
function jsonSchema(type: z.ZodType): Record<string, unknown> {
  const schema = tidy(z.toJSONSchema(type, toJsonSchemaOptions)) as Record<string, unknown>;
  delete schema["$defs"];
  return schema;
}

/**
 * Drops what OpenAPI readers do not need: `$schema`, `$id`, and the long
 * regular expressions zod writes beside `format: uuid` / `date-time`; points
 * `$defs` references at the components.
 */
function tidy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(tidy);
  if (typeof value !== "object" || value === null) return value;
  const source = value as Record<string, unknown>;
  const result: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(source)) {
    if (key === "$schema" || key === "$id") continue;
    if (key === "pattern" && typeof source["format"] === "string") continue;
    if (key === "$ref" && typeof item === "string") result[key] = item.replace(/^#\/\$defs\//, "#/components/schemas/");
    else result[key] = tidy(item);
  }
  return result;
}

function errorResponses(): Record<string, unknown> {
  const byStatus = new Map<number, string[]>();
  for (const [code, { http }] of Object.entries(errorCatalogue)) byStatus.set(http, [...(byStatus.get(http) ?? []), code]);
  return Object.fromEntries(
    [...byStatus].map(([status, codes]) => [
      responseName(status),
      {
        description: `${STATUS_CODES[status]}: ${codes.map((c) => `\`${c}\``).join(", ")}.`,
        ...(status === 429 ? { headers: { "Retry-After": ref("headers", "RetryAfter") } } : {}),
        content: { "application/json": { schema: ref("schemas", "Error") } },
      },
    ]),
  );
}

const ref = (kind: string, name: string) => ({ $ref: `#/components/${kind}/${name}` });
const responseName = (status: number) => (STATUS_CODES[status] ?? String(status)).replace(/[^A-Za-z]/g, "");
const parameterName = (name: string) => name.replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase());
