// Writes api/client/operations.gen.ts (the SDK's typed REST operations) from the gateway's route table
// and the contracts. Usage: npm run client (also run by npm run openapi); api/client/operations.test.ts
// regenerates it and fails when the committed file differs.
import { readdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { z } from "zod";
import { pathParameters, type Route } from "../internal/gateway/router.js";
import { routeTable } from "../internal/gateway/routes/index.js";

/** How a route's successful answer reaches the caller. */
export type Answer = "json" | "none" | "text" | "blob" | "stream";

/** Where a contract schema is exported: `<module alias>.<export name>`. */
type SchemaIndex = Map<z.ZodType, string>;

/** Every exported zod schema of api/contracts, by object, as `alias.Name` (alias = module name in camel case). */
export async function contractIndex(contractsDir: URL): Promise<{ index: SchemaIndex; modules: Map<string, string> }> {
  const index: SchemaIndex = new Map();
  const modules = new Map<string, string>(); // alias → file name (.js)
  const files = readdirSync(contractsDir)
    .filter((f) => /\.(ts|js)$/.test(f) && !/\.(test|d)\.(ts|js)$/.test(f) && !f.endsWith(".map"))
    .map((f) => f.replace(/\.ts$/, ".js"))
    .sort();
  for (const file of new Set(files)) {
    const alias = file.replace(/\.js$/, "").replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const exported = (await import(new URL(file, contractsDir).href)) as Record<string, unknown>;
    for (const [name, value] of Object.entries(exported)) {
      if (isSchema(value) && !index.has(value)) {
        index.set(value, `${alias}.${name}`);
        modules.set(alias, file);
      }
    }
  }
  return { index, modules };
}

function isSchema(value: unknown): value is z.ZodType {
  return typeof value === "object" && value !== null && "_zod" in value && "safeParse" in value;
}

/** How a content type is handed to the caller: text it can read, a file (Blob), or an event stream. */
export function answerOf(route: Route): Answer {
  const { ok } = route.doc;
  if (ok.schema) return "json";
  if (!ok.contentType) return "none";
  if (ok.contentType.includes("text/event-stream")) return "stream";
  if (/^(text\/html|text\/plain|application\/yaml)/.test(ok.contentType) && !ok.contentType.includes(",")) return "text";
  return "blob";
}

/** The TypeScript text of api/client/operations.gen.ts. */
export function renderClientOperations(routes: readonly Route[], index: SchemaIndex, moduleFiles: Map<string, string>): string {
  const used = new Set<string>();
  const ref = (schema: z.ZodType, what: string) => {
    const name = index.get(schema);
    if (!name) return undefined;
    used.add(name.split(".")[0]!);
    return name;
  };
  /** A schema's type, or a loose one (and a note in the file) for a schema defined outside api/contracts. */
  const typeOf = (io: "input" | "output", schema: z.ZodType, what: string, loose: string) => {
    const name = ref(schema, what);
    if (name) return `z.${io}<typeof ${name}>`;
    console.warn(`client: ${what}: the schema is not an export of api/contracts; typed loosely (${loose})`);
    return `${loose} /* ${what}: not an export of api/contracts */`;
  };
  const seen = new Set<string>();
  const table: string[] = [];
  const types: string[] = [];
  const methods: string[] = [];
  for (const route of routes) {
    const { operationId } = route.doc;
    if (seen.has(operationId)) throw new Error(`operationId ${operationId} is used twice`);
    seen.add(operationId);
    const where = `${route.method.toUpperCase()} ${route.path}`;
    const params = pathParameters(route.path);
    const answer = answerOf(route);
    const body = route.body ? typeOf("input", route.body, `${where} body`, "Record<string, unknown>") : "undefined";
    const query = route.query ? `QueryInput<${typeOf("input", route.query, `${where} query`, "Record<string, unknown>")}>` : "undefined";
    const result =
      answer === "json"
        ? typeOf("output", route.doc.ok.schema!, `${where} answer`, "unknown")
        : { none: "void", text: "string", blob: "Blob", stream: "ReadableStream<Uint8Array>" }[answer];
    table.push(
      `  ${operationId}: { method: "${route.method.toUpperCase()}", path: "${route.path}", auth: "${route.auth}", params: [${params
        .map((p) => `"${p}"`)
        .join(", ")}], status: ${route.doc.ok.status}, answer: "${answer}"${route.body ? ", body: true" : ""}${route.query ? ", query: true" : ""} },`,
    );
    const paramsType = params.length > 0 ? `{ ${params.map((p) => `${p}: string`).join("; ")} }` : "Record<string, never>";
    types.push(`  ${operationId}: { params: ${paramsType}; body: ${body}; query: ${query}; result: ${result} };`);
    const args = [...params.map((p) => `${camel(p)}: string`)];
    const input: string[] = [];
    if (params.length > 0) input.push(`params: { ${params.map((p) => (camel(p) === p ? p : `${p}: ${camel(p)}`)).join(", ")} }`);
    if (route.body) {
      args.push(`body: OperationBody<"${operationId}">`);
      input.push("body");
    }
    if (route.query) {
      args.push(`query?: OperationQuery<"${operationId}">`);
      input.push("query");
    }
    args.push("options?: CallOptions");
    const summary = route.doc.summary.replace(/\*\//g, "*\\/");
    methods.push(
      `  /** ${summary}: \`${where}\` → ${route.doc.ok.status}${route.auth === "public" ? " (public)" : route.auth === "admin" ? " (system admin)" : ""}. */\n` +
        `  ${operationId}(${args.join(", ")}): Promise<OperationResult<"${operationId}">> {\n` +
        `    return this.call("${operationId}", { ${input.join(", ")} }, options);\n  }`,
    );
  }
  const imports = [...used].sort().map((alias) => `import type * as ${alias} from "../contracts/${moduleFiles.get(alias)}";`);
  return `// GENERATED by \`npm run client\` from the gateway's route table and api/contracts: do not edit.
// Type-only imports: they vanish from the compiled JavaScript, which has no runtime dependency.
import type { z } from "zod";
${imports.join("\n")}

/** A query's input as the client sends it: a number field may be given as a number (the server coerces it). */
export type QueryInput<Q> = { [K in keyof Q]?: unknown extends Q[K] ? number | string : Exclude<Q[K], undefined> };

/** Every REST operation of the gateway: method, path, who may call it, path parameters and how it answers. */
export const operations = {
${table.join("\n")}
} as const;

export type OperationId = keyof typeof operations;

/** The types of each operation: path parameters, body (input), query (input) and result (output). */
export interface OperationTypes {
${types.join("\n")}
}

export type OperationParams<K extends OperationId> = OperationTypes[K]["params"];
export type OperationBody<K extends OperationId> = OperationTypes[K]["body"];
export type OperationQuery<K extends OperationId> = OperationTypes[K]["query"];
export type OperationResult<K extends OperationId> = OperationTypes[K]["result"];

/** What a call sends: path parameters, the JSON body, the query (arrays are sent as repeated names). */
export interface OperationInput<K extends OperationId> {
  params?: OperationParams<K>;
  body?: OperationBody<K>;
  query?: OperationQuery<K>;
}

/** Per-call options. */
export interface CallOptions {
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

/** One typed method per operation, each a call of \`call(operationId, input)\`. */
export abstract class Operations {
  abstract call<K extends OperationId>(operationId: K, input: OperationInput<K>, options?: CallOptions): Promise<OperationResult<K>>;

${methods.join("\n\n")}
}
`;
}

const camel = (name: string) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** The generated file's text, from the compiled or source tree at `root` (contracts read from there). */
export async function renderClient(contractsDir: URL): Promise<string> {
  const { index, modules } = await contractIndex(contractsDir);
  return renderClientOperations(routeTable(), index, modules);
}

if (process.argv[1] && import.meta.url === `file://${process.argv[1]}`) {
  const here = new URL("./", import.meta.url); // dist/scripts
  const root = new URL("../../", import.meta.url); // dist/scripts → the repository
  const text = await renderClient(new URL("../api/contracts/", here));
  writeFileSync(new URL("api/client/operations.gen.ts", root), text);
  console.log(`client: wrote ${fileURLToPath(new URL("api/client/operations.gen.ts", root))}`);
}
