import { readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";

const publicDir = new URL("./public/", import.meta.url);
const openApiFile = new URL("../../api/openapi.yaml", import.meta.url);
const swaggerDir = new URL("./", `file://${createRequire(import.meta.url).resolve("swagger-ui-dist/package.json")}`);
/** The compiled client SDK (dist/api/client beside dist/internal/gateway): ES modules with only relative imports. */
const sdkDir = new URL("../../api/client/", import.meta.url);

const javascript = "text/javascript; charset=utf-8";

/** Swagger UI files the /docs page loads. */
export const docsAssets: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": javascript,
  "swagger-ui-standalone-preset.js": javascript,
};

/** A name the SDK's directory may serve: a compiled module of its own (`client.js`), never a test, a map or a path. */
export function isSdkModuleName(name: string): boolean {
  return /^[a-z][a-z0-9-]*(\.[a-z0-9]+)*\.js$/.test(name) && !name.endsWith(".test.js");
}

/** A static file: its body (read once, kept in memory) and its content type. */
export interface Asset {
  body: Promise<Buffer>;
  contentType: string;
  /** `cache-control` of the answer. */
  cacheControl: string;
}

/** Versioned with the image (docs assets, the SDK): a day. */
const cacheADay = "public, max-age=86400";

/** Static files the gateway serves, read once and kept in memory. */
export class StaticFiles {
  private readonly cache = new Map<string, Promise<Buffer>>();
  /** The SDK modules that exist at startup (dist/api/client/*.js, tests excluded): the allowlist of /sdk/<file>.js. */
  private readonly sdkModules: Promise<ReadonlySet<string>>;

  constructor() {
    this.sdkModules = readdir(sdkDir).then(
      (names) => new Set(names.filter(isSdkModuleName)),
      () => new Set<string>(), // not built (a run from the sources): nothing to serve
    );
  }

  testPage(): Promise<Buffer> {
    return this.read(new URL("index.html", publicDir));
  }

  /** The test page's script (a module; the page has no inline script). */
  testPageScript(): Asset {
    // Revalidated: it changes with the page, which browsers do not cache either.
    return { body: this.read(new URL("app.js", publicDir)), contentType: javascript, cacheControl: "no-cache" };
  }

  /** The test page's stylesheet (the page has no inline style either). */
  testPageStyles(): Asset {
    return { body: this.read(new URL("app.css", publicDir)), contentType: "text/css; charset=utf-8", cacheControl: "no-cache" };
  }

  docsPage(): Promise<Buffer> {
    return this.read(new URL("docs.html", publicDir));
  }

  /** The docs page's start-up script (it has no inline script). */
  docsScript(): Asset {
    return { body: this.read(new URL("docs.js", publicDir)), contentType: javascript, cacheControl: "no-cache" };
  }

  openApi(): Promise<Buffer> {
    return this.read(openApiFile);
  }

  docsAsset(name: string): Asset | undefined {
    return Object.hasOwn(docsAssets, name) ? { body: this.read(new URL(name, swaggerDir)), contentType: docsAssets[name]!, cacheControl: cacheADay } : undefined;
  }

  /** A module of the compiled client SDK, for browsers (`import … from "/sdk/index.js"`); undefined unless it is on the allowlist. */
  async sdkModule(name: string): Promise<Asset | undefined> {
    if (!isSdkModuleName(name) || !(await this.sdkModules).has(name)) return undefined;
    return { body: this.read(new URL(name, sdkDir)), contentType: javascript, cacheControl: cacheADay };
  }

  private read(url: URL): Promise<Buffer> {
    let file = this.cache.get(url.href);
    if (!file) {
      file = readFile(url);
      file.catch(() => this.cache.delete(url.href));
      this.cache.set(url.href, file);
    }
    return file;
  }
}
