// Shared by test/ and bench/ (kept outside test/ so `node --test` does not run it as a test):
// where the built package and the corpus are, and how a policy folder is read.

import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Cargo's target folder (`CARGO_TARGET_DIR` when set), where `target/wasm/` is written. */
export const targetDir = process.env.CARGO_TARGET_DIR ? resolve(root, process.env.CARGO_TARGET_DIR) : join(root, "target");

/** The package `cargo xtask wasm` builds. */
export const pkgDir = join(root, "bindings", "pkg");

/** Loads the package's Node entry (`main`; test/entries.test.mjs checks resolution by name). */
export function loadPackage() {
  if (!existsSync(join(pkgDir, "package.json"))) {
    throw new Error(`${pkgDir} is missing: run \`cargo xtask wasm\` first`);
  }
  return createRequire(import.meta.url)(pkgDir);
}

/** Loads the package's compiler module (`rolescope/compiler`, its `node` entry). */
export function loadCompiler() {
  loadPackage();
  return createRequire(import.meta.url)(join(pkgDir, "compiler", "node", "rolescope_wasm.js"));
}

/**
 * Role files -> a policy of the engine module (`rolescope`), as an application gets one: a
 * bundle written by the compiler module, loaded by `Policy.fromBundle`.
 */
export function loadPolicy(files) {
  return loadPackage().Policy.fromBundle(loadCompiler().bundle(files));
}

const isSuite = (n) => /_test\.(ya?ml|json)$/.test(n);
const isRoleFile = (n) => /\.(ya?ml|json)$/.test(n) && !isSuite(n) && !n.endsWith(".schema.json");

/** Files of `dir` matching `want`, sorted, as `{name, text}` (named relative to the root). */
function read(dir, want) {
  return readdirSync(dir)
    .filter((n) => want(n) && statSync(join(dir, n)).isFile())
    .sort()
    .map((n) => ({ name: relative(root, join(dir, n)), text: readFileSync(join(dir, n), "utf8") }));
}

/**
 * The corpus every host runs: each folder under `policies/` and `tests/corpus/` with role files,
 * as `{dir, files, suites}` (`dir` relative to the root, e.g. `policies/msp-panel`).
 */
export function corpusFolders() {
  const out = [];
  for (const base of ["policies", "tests/corpus"]) {
    const abs = join(root, base);
    if (!existsSync(abs)) continue;
    for (const name of readdirSync(abs).sort()) {
      const dir = join(abs, name);
      if (name === "schema" || !statSync(dir).isDirectory()) continue;
      const files = read(dir, isRoleFile);
      if (files.length > 0) out.push({ dir: relative(root, dir), files, suites: read(dir, isSuite) });
    }
  }
  return out;
}
