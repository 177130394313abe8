// Runs in the browser (loaded by console.test.mjs on the console's origin): the parity corpus
// through the npm package's `web` build. Every case of requests.jsonl with `check`, every case
// of http.jsonl with `authorizeHttp` (the route table), each against the native decision.

import init, { Policy } from "/pkg/rolescope_wasm.js";

const FIELDS = ["allowed", "reason", "public", "route", "action", "kind", "scope", "tenant", "resourceId", "rule", "assignment", "nearest"];

async function lines(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return (await res.text()).split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

export async function runParity() {
  await init({ module_or_path: "/pkg/rolescope_wasm_bg.wasm" });
  const policies = new Map();
  const policyOf = async (folder) => {
    if (!policies.has(folder)) {
      const text = await (await fetch(`/parity/bundles/${folder.replaceAll("/", "__")}.json`)).text();
      policies.set(folder, Policy.fromBundle(text));
    }
    return policies.get(folder);
  };
  const out = { userAgent: navigator.userAgent, checks: 0, http: 0, differ: [] };
  for (const c of await lines("/parity/requests.jsonl")) {
    const got = (await policyOf(c.policy)).check(c.request);
    out.checks += 1;
    if (got.allowed !== c.expected.allowed || got.reason !== c.expected.reason) {
      out.differ.push(`${c.policy} ${c.name}: browser ${got.allowed}/${got.reason}, native ${c.expected.allowed}/${c.expected.reason}`);
    }
  }
  for (const c of await lines("/parity/http.jsonl")) {
    const policy = await policyOf(c.policy);
    const req = { method: c.method, target: c.target, headers: c.headers };
    let got;
    if (c.principal === undefined) {
      got = policy.authorizeHttpAnonymous(req);
    } else {
      let p = null;
      try {
        p = policy.preparePrincipal(c.principal);
      } catch {
        p = null;
      }
      if (p !== null) {
        got = policy.authorizeHttp(p, req);
        p.free();
      } else {
        // A principal the engine refuses: the route's answer without a principal, denied with
        // the engine's reason for that principal (as the native corpus writer does).
        const probe = policy.check({ principal: c.principal, action: "", resource: { kind: "", scope: "" } });
        got = { ...policy.authorizeHttpAnonymous(req), allowed: false, reason: probe.reason };
      }
    }
    out.http += 1;
    const a = FIELDS.map((f) => got[f] ?? null);
    const b = FIELDS.map((f) => c.expected[f] ?? null);
    if (JSON.stringify(a) !== JSON.stringify(b)) {
      out.differ.push(`${c.policy} ${c.name}: ${c.method} ${c.target}: browser ${JSON.stringify(a)}, native ${JSON.stringify(b)}`);
    }
  }
  out.policies = policies.size;
  for (const p of policies.values()) p.free();
  return out;
}
