// The package as users get it: resolution by name through `exports` (Node `require` and
// `import`, `rolescope/web`, `rolescope/bundler`, `rolescope/compiler`), one engine module byte
// for byte in every main entry and in target/wasm/rolescope.wasm (what the gateway loads), and
// what `npm pack` would publish.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { loadCompiler, pkgDir, root, targetDir } from "../testing.mjs";

// A project that depends on the package: node_modules/rolescope -> bindings/pkg.
const project = mkdtempSync(join(tmpdir(), "rolescope-npm-"));
mkdirSync(join(project, "node_modules"));
symlinkSync(pkgDir, join(project, "node_modules", "rolescope"), "dir");
after(() => rmSync(project, { recursive: true, force: true }));

const policy = readFileSync(join(root, "tests/corpus/core/policy.yaml"), "utf8");
const files = [{ name: "policy.yaml", text: policy }];
const bundle = loadCompiler().bundle(files);
const request = {
  principal: { id: "ana", assignments: [{ role: "admin", scope: "msp:acme" }] },
  action: "view",
  resource: { kind: "device", id: "d1", scope: "msp:acme/org:o1", attributes: { tier: 2 } },
};
const expected = { allowed: true, reason: "allowed" };

/** Runs `script` with node in the consumer project; returns its last stdout line, parsed. */
function inProject(args, script) {
  const out = execFileSync(process.execPath, [...args, "-e", script], {
    cwd: project,
    encoding: "utf8",
    env: { ...process.env, FILES: JSON.stringify(files), BUNDLE: bundle, REQ: JSON.stringify(request) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return JSON.parse(out.trim().split("\n").pop());
}

const decideCjs = `const { BUNDLE, REQ } = process.env;
const print = (m) => console.log(JSON.stringify(m.Policy.fromBundle(BUNDLE).check(JSON.parse(REQ))));`;

test("require('rolescope') in Node (CommonJS)", () => {
  assert.deepEqual(inProject([], `${decideCjs} print(require("rolescope"));`), expected);
  assert.deepEqual(inProject([], `${decideCjs} print(require("rolescope/node"));`), expected);
});

test("import 'rolescope' in Node (ES module)", () => {
  const script = `${decideCjs} import("rolescope").then(print);`;
  assert.deepEqual(inProject(["--input-type=commonjs"], script), expected);
  const named = `import { Policy } from "rolescope"; const { BUNDLE, REQ } = process.env;
console.log(JSON.stringify(Policy.fromBundle(BUNDLE).check(JSON.parse(REQ))));`;
  assert.deepEqual(inProject(["--input-type=module"], named), expected);
});

test("rolescope/web after init() with the bytes", () => {
  const script = `import init, { Policy } from "rolescope/web"; import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
const wasm = createRequire(import.meta.url).resolve("rolescope/rolescope_wasm_bg.wasm");
await init({ module_or_path: readFileSync(wasm) });
const { BUNDLE, REQ } = process.env;
console.log(JSON.stringify(Policy.fromBundle(BUNDLE).check(JSON.parse(REQ))));`;
  assert.deepEqual(inProject(["--input-type=module"], script), expected);
});

test("rolescope/bundler through ES module integration (what bundlers do)", () => {
  const script = `import { Policy } from "rolescope/bundler"; const { BUNDLE, REQ } = process.env;
console.log(JSON.stringify(Policy.fromBundle(BUNDLE).check(JSON.parse(REQ))));`;
  assert.deepEqual(inProject(["--experimental-wasm-modules", "--no-warnings", "--input-type=module"], script), expected);
});

test("rolescope/compiler: require, import and web; its bundle loads in rolescope", () => {
  const compileCjs = `const { FILES, REQ } = process.env;
const print = (m) => console.log(JSON.stringify(m.Policy.compile(JSON.parse(FILES)).check(JSON.parse(REQ))));`;
  assert.deepEqual(inProject([], `${compileCjs} print(require("rolescope/compiler"));`), expected);
  assert.deepEqual(inProject(["--input-type=commonjs"], `${compileCjs} import("rolescope/compiler").then(print);`), expected);
  const web = `import init, { Policy } from "rolescope/compiler/web"; import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
const wasm = createRequire(import.meta.url).resolve("rolescope/compiler/web").replace(/rolescope_wasm\.js$/, "rolescope_wasm_bg.wasm");
await init({ module_or_path: readFileSync(wasm) });
const { FILES, REQ } = process.env;
console.log(JSON.stringify(Policy.compile(JSON.parse(FILES)).check(JSON.parse(REQ))));`;
  assert.deepEqual(inProject(["--input-type=module"], web), expected);
  const roundTrip = `const { FILES, REQ } = process.env;
const json = require("rolescope/compiler").bundle(JSON.parse(FILES));
console.log(JSON.stringify(require("rolescope").Policy.fromBundle(json).check(JSON.parse(REQ))));`;
  assert.deepEqual(inProject([], roundTrip), expected);
  // The engine entries carry no compiler.
  assert.deepEqual(inProject([], `console.log(JSON.stringify(typeof require("rolescope").Policy.compile));`), "undefined");
});

test("one module, byte for byte: every entry and target/wasm/rolescope.wasm", () => {
  const sha = (p) => createHash("sha256").update(readFileSync(p)).digest("hex");
  const gateway = sha(join(targetDir, "wasm/rolescope.wasm"));
  for (const entry of ["node", "web", "bundler"]) {
    assert.equal(sha(join(pkgDir, entry, "rolescope_wasm_bg.wasm")), gateway, `${entry}/rolescope_wasm_bg.wasm differs`);
  }
  const compiler = sha(join(targetDir, "wasm/rolescope-compiler.wasm"));
  assert.notEqual(compiler, gateway);
  for (const entry of ["node", "web", "bundler"]) {
    assert.equal(sha(join(pkgDir, "compiler", entry, "rolescope_wasm_bg.wasm")), compiler, `compiler/${entry} differs`);
  }
  const recorded = readFileSync(join(targetDir, "wasm/rolescope.wasm.sha256"), "utf8").split(/\s+/)[0];
  assert.equal(recorded, gateway);
  const size = JSON.parse(readFileSync(join(targetDir, "wasm/size.json"), "utf8"));
  assert.equal(size.sha256, gateway);
  assert.equal(size.raw_bytes, readFileSync(join(targetDir, "wasm/rolescope.wasm")).length);
  assert.ok(size.gzip9_bytes > 0 && size.gzip9_bytes < size.raw_bytes);
  assert.equal(size.budget_gzip_bytes, 120_000); // the "120 KB" under either reading of a KB
  assert.equal(size.within_budget, size.gzip9_bytes <= size.budget_gzip_bytes, JSON.stringify(size));
});

test("the module exports the plain ABI (bindings/ABI.md) next to the JS API", () => {
  const module = new WebAssembly.Module(readFileSync(join(targetDir, "wasm/rolescope.wasm")));
  const names = WebAssembly.Module.exports(module).map((e) => e.name);
  for (const e of ["rs_abi_version", "rs_input", "rs_output_ptr", "rs_output_len", "rs_load_bundle",
    "rs_principal", "rs_principal_free", "rs_decide", "rs_check_json"]) {
    assert.ok(names.includes(e), `missing export ${e}`);
  }
});

test("npm pack: what would be published", () => {
  const [packed] = JSON.parse(
    execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
      cwd: pkgDir,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }),
  );
  assert.equal(packed.name, "rolescope");
  const files = packed.files.map((f) => f.path).sort();
  for (const f of ["README.md", "index.d.ts", "package.json", "web.d.ts", "node/rolescope_wasm.js",
    "node/rolescope_wasm_bg.wasm", "web/rolescope_wasm.js", "web/rolescope_wasm_bg.wasm", "bundler/rolescope_wasm.js",
    "bundler/rolescope_wasm_bg.js", "bundler/rolescope_wasm_bg.wasm", "compiler.d.ts", "compiler-web.d.ts",
    "compiler/node/rolescope_wasm.js", "compiler/node/rolescope_wasm_bg.wasm", "compiler/web/rolescope_wasm.js",
    "compiler/web/rolescope_wasm_bg.wasm", "compiler/bundler/rolescope_wasm.js", "compiler/bundler/rolescope_wasm_bg.wasm"]) {
    assert.ok(files.includes(f), `${f} is not packed: ${files.join(", ")}`);
  }
  const manifest = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
  assert.equal(manifest.license, "Apache-2.0");
  assert.equal(manifest.version, "0.1.0");
});
