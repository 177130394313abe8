// Type-checked (never run) by types.test.mjs: the `rolescope/web` and `rolescope/compiler/web`
// entries.

import init, { initSync, Policy, type Verdict } from "rolescope/web";
import initCompiler, { bundle } from "rolescope/compiler/web";

await init();
await init({ module_or_path: new URL("./rolescope_wasm_bg.wasm", import.meta.url) });
initSync({ module: new Uint8Array(8) });
await initCompiler();
const policy = Policy.fromBundle(bundle([{ name: "roles.yaml", text: "" }]));
const v: Verdict = policy.check({ principal: "ana", action: "view", resource: { kind: "device", scope: "msp:acme" } });
void v;
