// Copies what tsc does not emit (SQL migrations, static pages, the OpenAPI file, the client SDK's package.json and README) into dist/.
import { cp, readdir } from "node:fs/promises";
import { join } from "node:path";

const assets = [/\/migrations\/[^/]+\.sql$/, /^internal\/gateway\/public\//, /^api\/openapi\.yaml$/, /^api\/client\/(package\.json|README\.md)$/];

async function* walk(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else yield path;
  }
}

let copied = 0;
for (const root of ["internal", "api"]) {
  for await (const path of walk(root)) {
    if (assets.some((pattern) => pattern.test(path))) {
      await cp(path, join("dist", path));
      copied++;
    }
  }
}
console.log(`copy-assets: ${copied} files`);
