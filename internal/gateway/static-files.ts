import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

const publicDir = new URL("./public/", import.meta.url);
const openApiFile = new URL("../../api/openapi.yaml", import.meta.url);
const swaggerDir = new URL("./", `file://${createRequire(import.meta.url).resolve("swagger-ui-dist/package.json")}`);

/** Swagger UI files the /docs page loads. */
export const docsAssets: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
};

/** Static files the gateway serves, read once and kept in memory. */
export class StaticFiles {
  private readonly cache = new Map<string, Promise<Buffer>>();

  testPage(): Promise<Buffer> {
    return this.read(new URL("index.html", publicDir));
  }

  docsPage(): Promise<Buffer> {
    return this.read(new URL("docs.html", publicDir));
  }

  openApi(): Promise<Buffer> {
    return this.read(openApiFile);
  }

  docsAsset(name: string): Promise<Buffer> | undefined {
    return Object.hasOwn(docsAssets, name) ? this.read(new URL(name, swaggerDir)) : undefined;
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
