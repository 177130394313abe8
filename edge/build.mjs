// Prepares the edge worker's module imports in <out>/dist/: the npm package's `web` build
// (rolescope_wasm.js + rolescope_wasm_bg.wasm, the bytes the gateway runs) and the policy
// bundle (`rolescope build`). With --out other than edge/, the worker's sources and the
// workerd config are copied there too (a private copy for a test run).
//
//   node edge/build.mjs --policy policies/juniper-mist-msp [--out DIR] [--pkg bindings/pkg]
//   node edge/build.mjs --bundle path/bundle.json [--out DIR]
//
// The bundle is built with $ROLESCOPE_CLI when set (the `rolescope` binary), else
// `cargo run -q -p rolescope-cli --`. bindings/pkg comes from `cargo xtask wasm`.

import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");
const { values } = parseArgs({
  options: {
    policy: { type: "string" },
    bundle: { type: "string" },
    out: { type: "string", default: here },
    pkg: { type: "string", default: join(root, "bindings", "pkg") },
  },
});
if (!values.policy === !values.bundle) {
  console.error("usage: node edge/build.mjs (--policy DIR | --bundle FILE) [--out DIR] [--pkg DIR]");
  process.exit(2);
}
const out = resolve(values.out);
const dist = join(out, "dist");
mkdirSync(dist, { recursive: true });

const web = join(resolve(values.pkg), "web");
for (const f of ["rolescope_wasm.js", "rolescope_wasm_bg.wasm"]) {
  if (!existsSync(join(web, f))) {
    console.error(`edge/build.mjs: ${join(web, f)} is missing: run \`cargo xtask wasm\` first`);
    process.exit(1);
  }
  copyFileSync(join(web, f), join(dist, f));
}

const bundle = join(dist, "bundle.json");
if (values.bundle) {
  copyFileSync(resolve(values.bundle), bundle);
} else {
  const [cmd, args] = process.env.ROLESCOPE_CLI
    ? [process.env.ROLESCOPE_CLI, []]
    : ["cargo", ["run", "-q", "-p", "rolescope-cli", "--"]];
  execFileSync(cmd, [...args, "build", resolve(values.policy), "-o", bundle], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
}

if (out !== here) {
  for (const f of ["worker.mjs", "jwt.mjs", "config.capnp"]) copyFileSync(join(here, f), join(out, f));
}
console.log(`edge/build.mjs: ${dist}`);
