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
