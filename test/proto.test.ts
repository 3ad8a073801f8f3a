import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { expect, test } from "vitest";

const root = new URL("../", import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

test("proto: the committed api/gen is exactly what `npm run proto` generates", () => {
  const protoc = spawnSync("protoc", ["--version"]);
  // Without protoc the check cannot run; fail and say so rather than pass.
  expect(protoc.error, "protoc is not installed: apt-get install -y protobuf-compiler").toBeUndefined();
  const out = mkdtempSync(join(tmpdir(), "taskboard-proto-"));
  try {
    execFileSync("bash", [join(root, "scripts/proto.sh"), out], { cwd: root, stdio: "pipe" });
    const committed = join(root, "api/gen");
    const fresh = files(out).map((f) => relative(out, f)).sort();
    expect(files(committed).map((f) => relative(committed, f)).sort()).toEqual(fresh);
    for (const file of fresh) {
      expect(readFileSync(join(committed, file), "utf8"), `api/gen/${file} differs: run npm run proto`).toBe(
        readFileSync(join(out, file), "utf8"),
      );
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
