//! The JS API's decision cost in Node, on the same policy, principal and resources as the
//! engine's criterion group `decide/msp` (engine/benches/decide.rs), so the two read side by side:
//! the difference is the JS <-> wasm boundary and the conversion of JS objects.
//!
//! Run: `cargo xtask bench-node` (builds the package first if needed), or
//! `node bindings/npm/bench/check.mjs [--quick]` after `cargo xtask wasm`.
//! Prints ns/op (median of 5 rounds) and writes target/bench/node-api.json. Not a test: no goal
//! failing here fails anything.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { loadCompiler, loadPackage, pkgDir, targetDir } from "../testing.mjs";

const quick = process.argv.includes("--quick");
const ROUND_MS = quick ? 100 : 400;
const ROUNDS = 5;

// The same policy file as the native benchmark (engine/benches/decide.rs).
const MSP_POLICY = readFileSync(new URL("../../../engine/benches/msp.yaml", import.meta.url), "utf8");

// A principal holding 10 assignments spread over 100 orgs (as `principal(&roles, 100, 10)`).
const roles = ["network_admin", "observer", "installer", "helpdesk", "network_admin"];
const principal = {
  id: "ana",
  assignments: Array.from({ length: 10 }, (_, i) => ({ role: roles[i % roles.length], scope: `msp:acme/org:o${(i * 100) / 10}` })),
};
const resource = (kind, org, createdBy) => ({
  kind,
  id: "r1",
  scope: `msp:acme/org:o${org}/site:s1`,
  ...(createdBy ? { attributes: { created_by: createdBy } } : {}),
});

// The engine module (`rolescope`) with the bundle the compiler module writes, as an app runs it.
const { Policy } = loadPackage();
const bundle = loadCompiler().bundle([{ name: "msp.yaml", text: MSP_POLICY }]);
const policy = Policy.fromBundle(bundle);
const p = policy.preparePrincipal(principal);
const allowedRes = resource("device", 50);
const otherRes = resource("device", 61);
const owned = resource("maintenance_window", 0, "ana");
const preparedAllowed = policy.prepareResource(allowedRes);
const request = { principal, action: "update", resource: allowedRes };
const page = Array.from({ length: 100 }, (_, i) => resource("device", i));
const pageActions = ["view", "update", "delete", "reboot"];

// The same answers as the native benchmark asserts.
const expect = (cond, what) => {
  if (!cond) throw new Error(`bench set-up: ${what}`);
};
expect(policy.can(p, "update", "device", allowedRes.scope), "update allowed in org 50");
expect(!policy.can(p, "update", "device", otherRes.scope), "update denied in org 61");
expect(policy.decide(p, "delete", owned).allowed, "owner may delete");
expect(policy.check(request).allowed, "check allows");
expect(policy.allowedActionsBatch(p, page, pageActions).length === 100, "a row per resource");
// The fast batch: the page's scopes (100 orgs), one bitmask per scope. It must answer as the
// row batch does.
const pageScopes = page.map((r) => r.scope);
{
  const masks = policy.allowedMask(p, "device", pageScopes, pageActions);
  const rows = policy.allowedActionsBatch(p, page, pageActions);
  const same = rows.every((row, i) => pageActions.every((a, j) => row.includes(a) === (((masks[i] >>> j) & 1) === 1)));
  expect(same && rows.some((row) => row.length > 0), "allowedMask answers as allowedActionsBatch");
}

/** Median ns per call of `fn` over ROUNDS rounds of ~ROUND_MS each. */
function measure(fn) {
  let n = 1;
  for (;;) {
    // calibrate: enough calls for a round of ROUND_MS
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    if (ms >= ROUND_MS / 4) {
      n = Math.max(1, Math.round((n * ROUND_MS) / ms));
      break;
    }
    n *= 4;
  }
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    rounds.push(Number(process.hrtime.bigint() - t) / n);
  }
  rounds.sort((a, b) => a - b);
  return rounds[Math.floor(ROUNDS / 2)];
}

// `can` prepares the resource (scope parsing, prefix hashes) on every call; a page asks about
// few distinct (kind, scope) pairs, so a cache of prepared resources makes it `allowed`.
const cache = new Map();
const canCached = (principal, action, kind, scope) => {
  const key = `${kind}\u0000${scope}`;
  let r = cache.get(key);
  if (r === undefined) {
    try {
      r = policy.prepareResource({ kind, scope });
    } catch {
      r = null;
    }
    cache.set(key, r);
  }
  return r !== null && policy.allowed(principal, action, r);
};
expect(canCached(p, "update", "device", allowedRes.scope), "cached can allows");

const benches = [
  ["can: prepared principal, allowed (kind + scope strings)", () => policy.can(p, "update", "device", allowedRes.scope), 400, "decide/msp/allowed_org"],
  ["can: prepared principal, other org denied", () => policy.can(p, "update", "device", otherRes.scope), 400, "decide/msp/other_org_denied"],
  ["can through a JS cache of prepared resources (Map)", () => canCached(p, "update", "device", allowedRes.scope), 400, "decide/msp/allowed_org"],
  ["allowed: prepared principal + prepared resource", () => policy.allowed(p, "update", preparedAllowed), 400, "decide/msp/allowed_org"],
  ["decide: prepared principal, resource object", () => policy.decide(p, "update", allowedRes), 400, "decide/msp/allowed_org"],
  ["decide: ownership condition (attributes)", () => policy.decide(p, "delete", owned), 400, "decide/msp/ownership_condition"],
  ["check(request): inline principal, 10 assignments", () => policy.check(request), null, "decide/msp/from_request_data"],
  ["allowedActions: one resource, all actions", () => policy.allowedActions(p, allowedRes), null, "batch/allowed_actions_one_resource"],
  ["allowedActionsBatch: 100 resources x 4 actions", () => policy.allowedActionsBatch(p, page, pageActions), 50_000, "batch/100_resources_x_4_actions"],
  ["allowedMask: 100 scopes x 4 actions, bitmasks", () => policy.allowedMask(p, "device", pageScopes, pageActions), 50_000, "batch/100_resources_x_4_actions"],
  ["allowedMask: 100 scopes from their rows (map + call)", () => policy.allowedMask(p, "device", page.map((r) => r.scope), pageActions), 50_000, "batch/100_resources_x_4_actions"],
];

// For comparison, the same questions through the plain ABI (bindings/ABI.md) of the same
// module, instantiated on its own with every JS import a trap: strings and JSON text cross the
// boundary instead of JS objects walked field by field, and a number comes back.
const abi = (() => {
  const module = new WebAssembly.Module(readFileSync(join(pkgDir, "node", "rolescope_wasm_bg.wasm")));
  const imports = {};
  for (const i of WebAssembly.Module.imports(module)) {
    imports[i.module] ??= {};
    imports[i.module][i.name] = () => {
      throw new Error(`trap: ${i.module}.${i.name}`);
    };
  }
  const x = new WebAssembly.Instance(module, imports).exports;
  const enc = new TextEncoder();
  const put = (bytes) => {
    const ptr = x.rs_input(bytes.length);
    new Uint8Array(x.memory.buffer, ptr, bytes.length).set(bytes);
    return bytes.length;
  };
  expect(x.rs_load_bundle(put(enc.encode(bundle))) === 0, "plain ABI loads the bundle");
  const handle = x.rs_principal(put(enc.encode(JSON.stringify(principal))));
  expect(handle >= 0, "plain ABI prepares the principal");
  // The compact request: u32 handle, u16-prefixed kind, action, scope, id, u32 attrs, u32 ctx.
  const scratch = new Uint8Array(1024);
  const view = new DataView(scratch.buffer);
  const compact = (action, r) => {
    let at = 0;
    view.setUint32(at, handle, true);
    at += 4;
    for (const str of [r.kind, action, r.scope, r.id]) {
      const { written } = enc.encodeInto(str, scratch.subarray(at + 2));
      view.setUint16(at, written, true);
      at += 2 + written;
    }
    const attrs = r.attributes ? enc.encode(JSON.stringify(r.attributes)) : new Uint8Array(0);
    view.setUint32(at, attrs.length, true);
    scratch.set(attrs, at + 4);
    at += 4 + attrs.length;
    view.setUint32(at, 0, true);
    return put(scratch.subarray(0, at + 4));
  };
  const decide = (action, r) => x.rs_decide(compact(action, r));
  const checkJson = (req) => x.rs_check_json(put(enc.encode(JSON.stringify(req))));
  expect(decide("update", allowedRes) === 1, "plain ABI allows");
  expect((checkJson(request) & 1) === 1, "plain ABI check allows");
  return { decide, checkJson };
})();
benches.push(
  ["plain ABI rs_decide: compact request (strings), a number back", () => abi.decide("update", allowedRes), null, "decide/msp/allowed_org"],
  ["plain ABI rs_decide: with attributes (JSON text)", () => abi.decide("delete", owned), null, "decide/msp/ownership_condition"],
  ["plain ABI rs_check_json: JSON.stringify + serde_json, report out", () => abi.checkJson(request), null, "decide/msp/from_request_data"],
);

const fmt = (ns) => (ns >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : `${ns.toFixed(0)} ns`);
console.log(`rolescope in Node ${process.version} (${quick ? "quick" : "full"} run; median of ${ROUNDS} rounds)\n`);
console.log(`${"what".padEnd(58)} ${"per call".padStart(10)} ${"goal".padStart(10)}  native group`);
const results = [];
for (const [name, fn, goal, native] of benches) {
  const ns = measure(fn);
  const verdict = goal == null ? "" : ns <= goal ? " ok" : " over";
  console.log(`${name.padEnd(58)} ${fmt(ns).padStart(10)} ${(goal == null ? "-" : `≤ ${fmt(goal)}`).padStart(10)}${verdict.padEnd(5)} ${native}`);
  results.push({ name, ns_per_op: Math.round(ns), goal_ns: goal, native });
}

const out = join(targetDir, "bench");
mkdirSync(out, { recursive: true });
writeFileSync(join(out, "node-api.json"), `${JSON.stringify({ node: process.version, quick, results }, null, 2)}\n`);
console.log(`\nwritten: ${join(out, "node-api.json")}`);
