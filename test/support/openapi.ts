import { readFileSync } from "node:fs";
import { Ajv2020, type AnySchemaObject, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import YAML from "yaml";

/**
 * Checks an HTTP response against the OpenAPI document (api/openapi.yaml): the
 * request's method and path must be an operation of the document, the status one
 * of its declared responses, the content type one of that response's, its
 * required headers present, and the body valid against that content's schema.
 * The test HTTP client (http.ts) checks every response it receives, so a test
 * fails when the gateway and the document drift apart.
 *
 * Objects are read closed: where a schema lists an object's properties and says
 * nothing of others, a property it does not list fails (the contracts' schemas are
 * generated for input, where JSON Schema leaves other properties open; an answer
 * with a field the document does not name has drifted from it just the same).
 */

const DOCUMENT_ID = "https://taskboard.invalid/api/openapi.yaml";
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

/** What the test client saw (the body as it came: a JSON one is parsed here, by its content type). */
export interface SeenResponse {
  method: string;
  /** The request's path, with its query string if any. */
  path: string;
  status: number;
  headers: Headers;
  text: string;
}

interface Operation {
  method: string;
  template: string;
  operationId: string;
  pattern: RegExp;
  /** How many path parameters: literal segments win over parameters (`/users/me` over `/users/{user_id}`). */
  parameters: number;
  /** JSON pointer of the operation in the document. */
  pointer: string;
}

type Json = Record<string, unknown>;

export class OpenApiDocument {
  private readonly operations: Operation[] = [];
  private readonly ajv: Ajv2020;
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(private readonly document: Json) {
    this.ajv = new Ajv2020({ allErrors: true, strict: true, validateFormats: true });
    // OpenAPI's own keywords beside JSON Schema's (the document's top level is not a schema).
    this.ajv.addVocabulary(["openapi", "info", "servers", "paths", "components", "tags", "security", "webhooks", "externalDocs", "x-websocket"]);
    addFormats.default(this.ajv);
    this.ajv.addSchema(closed(document) as AnySchemaObject, DOCUMENT_ID);
    for (const [template, item] of Object.entries((document["paths"] ?? {}) as Record<string, Json>)) {
      const source = template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+");
      for (const method of METHODS) {
        const operation = item[method] as Json | undefined;
        if (!operation) continue;
        this.operations.push({
          method,
          template,
          operationId: String(operation["operationId"] ?? `${method} ${template}`),
          pattern: new RegExp(`^${source}$`),
          parameters: template.split("{").length - 1,
          pointer: `/paths/${escapePointer(template)}/${method}`,
        });
      }
    }
    this.operations.sort((a, b) => a.parameters - b.parameters);
  }

  static load(file = new URL("../../api/openapi.yaml", import.meta.url)): OpenApiDocument {
    return new OpenApiDocument(YAML.parse(readFileSync(file, "utf8")) as Json);
  }

  /** Throws an Error naming the operation, the status and every mismatch (with its JSON pointer) when the response is not what the document declares. */
  check(response: SeenResponse): void {
    const problems = this.problems(response);
    if (problems.length > 0) throw new Error(problems.join("\n  "));
  }

  /** Whether the document has an operation for this method and path (with or without a query string). */
  documents(method: string, path: string): boolean {
    return this.operationsOn(path).some((op) => op.method === method.toLowerCase());
  }

  /** The operations whose path template matches `path`, literal segments first. */
  private operationsOn(path: string): Operation[] {
    const bare = wirePath(path);
    return this.operations.filter((op) => op.pattern.test(bare));
  }

  /** Every mismatch, the first line saying which request and operation; none when the response is documented. */
  problems(response: SeenResponse): string[] {
    const method = response.method.toLowerCase();
    const path = wirePath(response.path);
    const request = `${response.method.toUpperCase()} ${response.path} → ${response.status}`;
    const onPath = this.operationsOn(path);
    const operation = onPath.find((op) => op.method === method);
    if (!operation) {
      return [
        onPath.length > 0
          ? `OpenAPI: ${request}: the document has no ${method.toUpperCase()} operation for ${path} (it has ${onPath.map((op) => `${op.method.toUpperCase()} ${op.template}`).join(", ")})`
          : `OpenAPI: ${request}: no path of the document matches ${path}`,
      ];
    }
    const heading = `OpenAPI: ${request} does not match operation ${operation.operationId} (${method.toUpperCase()} ${operation.template})`;
    const responses = this.at(`${operation.pointer}/responses`) as Json;
    const key = [String(response.status), `${String(response.status)[0]}XX`, "default"].find((k) => k in responses);
    if (!key) return [heading, `status ${response.status} is not declared (declared: ${Object.keys(responses).join(", ")}); body: ${response.text.slice(0, 300)}`];
    let declared = responses[key] as Json;
    let pointer = `${operation.pointer}/responses/${key}`;
    if (typeof declared["$ref"] === "string") {
      pointer = (declared["$ref"] as string).slice(1);
      declared = this.at(pointer) as Json;
    }
    const problems: string[] = [];
    for (const [name, header] of Object.entries((declared["headers"] ?? {}) as Record<string, Json>)) {
      const resolved = typeof header["$ref"] === "string" ? (this.at((header["$ref"] as string).slice(1)) as Json) : header;
      if (resolved["required"] === true && !response.headers.has(name)) problems.push(`status ${response.status}: required header ${name} is missing`);
    }
    const content = declared["content"] as Record<string, Json> | undefined;
    if (!content) {
      if (response.text !== "") problems.push(`status ${response.status} is declared without a body, but one came: ${response.text.slice(0, 300)}`);
    } else {
      const mediaType = (response.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
      if (!(mediaType in content)) {
        problems.push(`status ${response.status}: content type "${mediaType}" is not declared (declared: ${Object.keys(content).join(", ")})`);
      } else if (content[mediaType]!["schema"] !== undefined) {
        const schemaPointer = `${pointer}/content/${escapePointer(mediaType)}/schema`;
        const validate = this.validator(schemaPointer);
        const body = bodyOf(mediaType, response.text);
        if (body instanceof SyntaxError) problems.push(`status ${response.status} ${mediaType} body does not parse: ${body.message}`);
        else if (!validate(body)) {
          problems.push(...(validate.errors ?? []).map((error) => `status ${response.status} ${mediaType} body at ${error.instancePath || "/"}: ${describe(error)} (schema ${error.schemaPath})`));
        }
      }
    }
    return problems.length > 0 ? [heading, ...problems] : [];
  }

  private validator(pointer: string): ValidateFunction {
    let validate = this.validators.get(pointer);
    if (!validate) {
      // The schema where it stands in the document, so that its references resolve there.
      validate = this.ajv.compile({ $ref: `${DOCUMENT_ID}#${encodeURI(pointer)}` });
      this.validators.set(pointer, validate);
    }
    return validate;
  }

  /** The value at a JSON pointer of the document. */
  private at(pointer: string): unknown {
    let value: unknown = this.document;
    for (const token of pointer.split("/").slice(1)) {
      value = (value as Json | undefined)?.[token.replace(/~1/g, "/").replace(/~0/g, "~")];
      if (value === undefined) throw new Error(`OpenAPI: the document has nothing at ${pointer}`);
    }
    return value;
  }
}

/** A body as its media type reads it: JSON parsed (a SyntaxError when it does not parse), anything else as text. */
function bodyOf(mediaType: string, text: string): unknown {
  if (mediaType !== "application/json" || text === "") return text;
  try {
    return JSON.parse(text);
  } catch (error) {
    return error as SyntaxError;
  }
}

/** A copy of `value` where every object schema that lists its properties and says nothing of others admits no others. */
function closed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(closed);
  if (typeof value !== "object" || value === null) return value;
  const copy = Object.fromEntries(Object.entries(value).map(([key, item]) => [key, closed(item)]));
  if (copy["type"] === "object" && typeof copy["properties"] === "object" && !("additionalProperties" in copy)) copy["additionalProperties"] = false;
  return copy;
}

/** The path a request goes out with, as fetch resolves it (`/tasks/..` is `/`), without its query. */
function wirePath(path: string): string {
  return new URL(path, "http://openapi.invalid").pathname;
}

function escapePointer(token: string): string {
  return token.replace(/~/g, "~0").replace(/\//g, "~1");
}

function describe(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  if (error.keyword === "additionalProperties") return `has the undeclared property "${String(params["additionalProperty"])}"`;
  if (error.keyword === "enum") return `${error.message} (${(params["allowedValues"] as unknown[]).map((v) => JSON.stringify(v)).join(", ")})`;
  return error.message ?? error.keyword;
}

/**
 * A fetch that checks every answer against the document, as the test HTTP client does,
 * for clients that take a fetch (the SDK): mismatches go to `drift`, for the test to
 * assert on (a throw inside the SDK's fetch would reach the test as a network error).
 * An event stream's body is not read (it does not end); its status and type are checked.
 */
export function checkedFetch(drift: string[], base: typeof fetch = fetch): typeof fetch {
  return async (input, init) => {
    const response = await base(input, init);
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = init?.method ?? (input instanceof Request ? input.method : "GET");
    const text = (response.headers.get("content-type") ?? "").startsWith("text/event-stream") ? "" : await response.clone().text();
    drift.push(...openApiDocument().problems({ method, path: url.pathname + url.search, status: response.status, headers: response.headers, text }));
    return response;
  };
}

let loaded: OpenApiDocument | undefined;

/** api/openapi.yaml, read once per test file. */
export function openApiDocument(): OpenApiDocument {
  return (loaded ??= OpenApiDocument.load());
}
