// Parity with the native engine: every case of target/parity/requests.jsonl (written by
// `cargo run -p rolescope-parity`: each suite's check cases plus generated requests over the seed
// policies, each with the native decision) decided by the npm package from the same bundle.
// `cargo xtask parity` writes the corpus and runs this file; without the corpus it is skipped.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { loadPackage, root } from "../testing.mjs";

const dir = join(root, "target", "parity");
const corpus = join(dir, "requests.jsonl");
const missing = existsSync(corpus)
  ? false
  : `no parity corpus at ${corpus}: run \`cargo xtask parity\` (or \`cargo run -p rolescope-parity\`)`;

// `decide` prepares the resource before it looks at the principal, so for a suspended principal
// and a malformed resource it names the resource's problem where `check` (and the native engine)
// says principal_inactive. Both deny; only the reason's precedence differs.
const RESOURCE_ERRORS = new Set(["unknown_resource_kind", "invalid_scope", "invalid_attribute", "invalid_request"]);
const precedenceOnly = (got, expected) =>
  got.allowed === expected.allowed && expected.reason === "principal_inactive" && RESOURCE_ERRORS.has(got.reason);

function decideAll() {
  const { Policy } = loadPackage();
  const cases = readFileSync(corpus, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const policies = new Map();
  const policyOf = (folder) => {
    if (!policies.has(folder)) {
      const bundle = readFileSync(join(dir, "bundles", `${folder.replaceAll("/", "__")}.json`), "utf8");
      policies.set(folder, Policy.fromBundle(bundle));
    }
    return policies.get(folder);
  };
  const out = { cases: cases.length, check: [], decide: [], precedence: [], prepared: 0 };
  const show = (c, how, got) =>
    `${c.policy} ${c.name}: ${how} gave ${got.allowed}/${got.reason}, native ${c.expected.allowed}/${c.expected.reason}`;
  for (const c of cases) {
    const policy = policyOf(c.policy);
    const got = policy.check(c.request);
    if (got.allowed !== c.expected.allowed || got.reason !== c.expected.reason) out.check.push(show(c, "check", got));
    // The prepared path (what a page uses) must agree too, for inline principals it accepts.
    const { principal, action, resource, context } = c.request;
    if (typeof principal !== "object") continue;
    let p;
    try {
      p = policy.preparePrincipal(principal);
    } catch {
      continue; // rejected up front, as `check` rejects it
    }
    const fast = policy.decide(p, action, resource, context ?? null);
    p.free();
    out.prepared += 1;
    if (fast.allowed === c.expected.allowed && fast.reason === c.expected.reason) continue;
    (precedenceOnly(fast, c.expected) ? out.precedence : out.decide).push(show(c, "decide", fast));
  }
  out.policies = policies.size;
  for (const p of policies.values()) p.free();
  return out;
}

const result = missing ? null : decideAll();

test("check decides every parity case as the native engine", { skip: missing }, (t) => {
  assert.ok(result.cases > 0, "the parity corpus is empty");
  t.diagnostic(`${result.cases} cases over ${result.policies} policies`);
  assert.deepEqual(result.check, [], `${result.check.length} of ${result.cases} cases differ`);
});

test("preparePrincipal + decide allow and deny exactly as the native engine", { skip: missing }, (t) => {
  t.diagnostic(`${result.prepared} cases through preparePrincipal + decide`);
  assert.deepEqual(result.decide, [], `${result.decide.length} of ${result.prepared} cases differ`);
});

test("preparePrincipal + decide give the native reason when the principal is inactive", { skip: missing }, () => {
  assert.deepEqual(result.precedence, [], `${result.precedence.length} cases name the resource's problem instead`);
});

// The fast batch (`allowedMask`: one kind, scopes, a bitmask of actions per scope) against
// `check` and `allowedActionsBatch` on every parity case: the case's resource as the batch sees
// it (`{kind, scope}`: no id, the kind's attribute defaults), grouped by policy, principal, kind
// and context, each group asked at once (all its scopes, all its actions).
test("allowedMask decides every parity case as check and allowedActionsBatch", { skip: missing }, (t) => {
  const { Policy } = loadPackage();
  const cases = readFileSync(corpus, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const groups = new Map();
  for (const c of cases) {
    const { principal, action, resource, context } = c.request;
    if (typeof principal !== "object" || typeof resource?.kind !== "string" || typeof resource?.scope !== "string") continue;
    const key = JSON.stringify([c.policy, principal, resource.kind, context ?? null]);
    if (!groups.has(key)) groups.set(key, { policy: c.policy, principal, kind: resource.kind, context: context ?? null, scopes: new Set(), actions: new Set() });
    const g = groups.get(key);
    g.scopes.add(resource.scope);
    if (g.actions.size < 32) g.actions.add(action);
  }
  const policies = new Map();
  const diffs = [];
  let decisions = 0;
  let allowed = 0;
  for (const g of groups.values()) {
    if (!policies.has(g.policy)) {
      const bundle = readFileSync(join(dir, "bundles", `${g.policy.replaceAll("/", "__")}.json`), "utf8");
      policies.set(g.policy, Policy.fromBundle(bundle));
    }
    const policy = policies.get(g.policy);
    let p;
    try {
      p = policy.preparePrincipal(g.principal);
    } catch {
      continue;
    }
    const scopes = [...g.scopes];
    const actions = [...g.actions];
    const masks = policy.allowedMask(p, g.kind, scopes, actions, g.context);
    assert.ok(masks instanceof Uint32Array && masks.length === scopes.length);
    const rows = scopes.map((scope) => ({ kind: g.kind, scope }));
    const batch = policy.allowedActionsBatch(p, rows, actions, g.context);
    scopes.forEach((scope, i) => {
      actions.forEach((action, j) => {
        const request = { principal: g.principal, action, resource: { kind: g.kind, scope }, ...(g.context ? { context: g.context } : {}) };
        const expected = policy.check(request).allowed;
        const got = (masks[i] >>> j) & 1;
        decisions += 1;
        allowed += expected ? 1 : 0;
        if (got !== (expected ? 1 : 0) || batch[i].includes(action) !== expected) {
          diffs.push(`${g.policy} ${JSON.stringify(request)}: mask ${got}, batch ${batch[i].includes(action)}, check ${expected}`);
        }
      });
    });
    p.free();
  }
  for (const p of policies.values()) p.free();
  t.diagnostic(`${decisions} decisions in ${groups.size} groups, ${allowed} allowed`);
  assert.ok(decisions > 1000 && allowed > 0, "the parity corpus gave the batch nothing to decide");
  assert.deepEqual(diffs.slice(0, 20), [], `${diffs.length} of ${decisions} decisions differ`);
});

// HTTP: every case of target/parity/http.jsonl (each suite's `http` cases plus generated, partly
// hostile, requests over the seed policies' route tables) through `authorizeHttp`, which must
// map and decide exactly as the native engine: verdict, reason, route, action, kind, scope,
// tenant, resource id, the rule that decided (and its assignment), a default deny's nearest
// assignments.
const httpCorpus = join(dir, "http.jsonl");
const httpMissing = existsSync(httpCorpus) ? false : `no HTTP parity corpus at ${httpCorpus}: run \`cargo run -p rolescope-parity\``;

test("authorizeHttp maps and decides every HTTP parity case as the native engine", { skip: httpMissing }, (t) => {
  const { Policy } = loadPackage();
  const cases = readFileSync(httpCorpus, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const policies = new Map();
  const differ = [];
  const fields = ["allowed", "reason", "public", "route", "action", "kind", "scope", "tenant", "resourceId", "rule", "assignment", "nearest"];
  for (const c of cases) {
    if (!policies.has(c.policy)) {
      const bundle = readFileSync(join(dir, "bundles", `${c.policy.replaceAll("/", "__")}.json`), "utf8");
      policies.set(c.policy, Policy.fromBundle(bundle));
    }
    const policy = policies.get(c.policy);
    const req = { method: c.method, target: c.target, headers: c.headers };
    let got;
    if (c.principal === undefined) {
      got = policy.authorizeHttpAnonymous(req);
    } else {
      let p;
      try {
        p = policy.preparePrincipal(c.principal);
      } catch (e) {
        differ.push(`${c.policy} ${c.name}: principal refused: ${e}`);
        continue;
      }
      got = policy.authorizeHttp(p, req);
      p.free();
    }
    const a = Object.fromEntries(fields.map((f) => [f, got[f] ?? null]));
    const b = Object.fromEntries(fields.map((f) => [f, c.expected[f] ?? null]));
    if (JSON.stringify(a) !== JSON.stringify(b)) differ.push(`${c.policy} ${c.name} ${c.method} ${c.target}: ${JSON.stringify(a)} vs native ${JSON.stringify(b)}`);
  }
  for (const p of policies.values()) p.free();
  t.diagnostic(`${cases.length} HTTP cases over ${policies.size} policies`);
  assert.ok(cases.length >= 2000, `only ${cases.length} HTTP cases`);
  assert.deepEqual(differ, [], `${differ.length} of ${cases.length} HTTP cases differ`);
});
