import { expect, test } from "vitest";
import { isSdkModuleName, StaticFiles } from "./static-files.js";

test("static files: /sdk/ serves only compiled SDK module names (no tests, maps, other files or paths)", async () => {
  for (const name of ["index.js", "client.js", "operations.gen.js", "realtime.js"]) expect(isSdkModuleName(name), name).toBe(true);
  for (const name of ["client.test.js", "index.js.map", "package.json", "README.md", "", ".js", "../index.js", "..%2Findex.js", "a/b.js", "a\\b.js", "Index.js", ".hidden.js", "index.js?x", "index.mjs"]) {
    expect(isSdkModuleName(name), name).toBe(false);
  }
  // Run from the sources, the directory holds .ts files: nothing is served, whatever the name.
  expect(await new StaticFiles().sdkModule("index.js")).toBeUndefined();
  expect(await new StaticFiles().sdkModule("../../package.json")).toBeUndefined();
});
