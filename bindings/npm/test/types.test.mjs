// The hand-written declarations type-check as users import them: tsc (strict) over
// test/types/*.ts in a project that depends on the package, with Node's module resolution
// (`node16`: the `node` entries) and a bundler's (`bundler`: the default and `web` entries), for
// the engine module (`rolescope`) and the compiler module (`rolescope/compiler`).
// Skipped when tools/node_modules has no TypeScript (`cargo xtask wasm` installs it).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, test } from "node:test";

import { pkgDir, root } from "../testing.mjs";

const tsc = join(root, "tools", "node_modules", "typescript", "bin", "tsc");
const skip = existsSync(tsc) ? false : `no TypeScript at ${tsc}: run \`cargo xtask wasm\``;
const here = dirname(fileURLToPath(import.meta.url));

const project = mkdtempSync(join(tmpdir(), "rolescope-types-"));
after(() => rmSync(project, { recursive: true, force: true }));

function check(mode, compilerOptions, files) {
  const dir = join(project, mode);
  mkdirSync(join(dir, "node_modules"), { recursive: true });
  symlinkSync(pkgDir, join(dir, "node_modules", "rolescope"), "dir");
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: `types-${mode}`, private: true, type: "module" }));
  for (const f of files) copyFileSync(join(here, "types", f), join(dir, f));
  const tsconfig = {
    compilerOptions: { strict: true, noEmit: true, skipLibCheck: false, noUnusedLocals: true, types: [], ...compilerOptions },
    files,
  };
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify(tsconfig, null, 2));
  try {
    execFileSync(process.execPath, [tsc, "-p", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    assert.fail(`tsc (${mode}) failed:\n${e.stdout}${e.stderr}`);
  }
}

test("declarations type-check with Node's resolution (node16)", { skip }, () => {
  check("node16", { module: "node16", moduleResolution: "node16", target: "es2022", lib: ["es2022"] }, ["usage.ts", "compiler.ts"]);
});

test("declarations type-check with a bundler's resolution, web entry included", { skip }, () => {
  check(
    "bundler",
    { module: "esnext", moduleResolution: "bundler", target: "es2022", lib: ["es2022", "dom"] },
    ["usage.ts", "compiler.ts", "web.ts"],
  );
});
