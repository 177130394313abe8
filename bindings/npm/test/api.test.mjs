// The JS API through the package: error paths (diagnostics with line and column; malformed
// input denies, never throws), the fast paths agreeing with `check`, the result shapes of
// index.d.ts, and the README example.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { corpusFolders, loadCompiler, loadPackage, loadPolicy, pkgDir } from "../testing.mjs";

const rolescope = loadPackage();
const compiler = loadCompiler();
const { Policy } = rolescope;
const { validate } = compiler;
const core = corpusFolders().find((f) => f.dir === "tests/corpus/core");
const policy = loadPolicy(core.files);

const admin = { id: "ana", assignments: [{ role: "admin", scope: "msp:acme" }] };
const device = (scope, extra = {}) => ({ kind: "device", id: "d1", scope, ...extra });
const REASONS = [
  "allowed", "no_matching_grant", "explicit_deny", "principal_inactive", "out_of_scope", "condition_false",
  "unknown_action", "unknown_resource_kind", "unknown_principal", "invalid_scope", "invalid_attribute",
  "invalid_request",
];

/** A `Verdict` exactly: `{allowed, reason, detail?}` and nothing else. */
function assertVerdict(v) {
  assert.equal(typeof v.allowed, "boolean");
  assert.ok(REASONS.includes(v.reason), `unknown reason ${v.reason}`);
  assert.deepEqual(Object.keys(v).filter((k) => !["allowed", "reason", "detail"].includes(k)), []);
  if ("detail" in v) assert.equal(typeof v.detail, "string");
}

// -- loading ------------------------------------------------------------------------------------

const broken = [
  {
    name: "roles.yaml",
    text: "policy: broken\nscopes:\n  msp: {}\nroles:\n  a:\n    grants:\n      - { resources: [nope], actions: [view] }\n",
  },
];

test("a broken role file: compile throws diagnostics with file, line and column", () => {
  let thrown;
  assert.throws(() => compiler.Policy.compile(broken), (e) => ((thrown = e), true));
  assert.equal(thrown.valid, false);
  assert.ok(thrown.diagnostics.length > 0);
  const [d] = thrown.diagnostics;
  assert.equal(d.severity, "error");
  assert.match(d.code, /^RS\d{3}$/);
  assert.match(d.message, /`nope`/);
  assert.equal(d.location.file, "roles.yaml");
  assert.equal(d.location.line, 7);
  assert.equal(d.location.column, 23);
});

test("validate returns the same diagnostics without throwing", () => {
  const v = validate(broken);
  assert.equal(v.valid, false);
  assert.equal(v.diagnostics[0].location.line, 7);
  // valid: no errors (lints are warnings; the core corpus keeps a deny that fails closed on purpose)
  const ok = validate(core.files);
  assert.equal(ok.valid, true);
  assert.deepEqual(ok.diagnostics.filter((d) => d.severity !== "warning"), []);
  assert.deepEqual(ok.diagnostics.map((d) => d.code), ["RS071"]);
});

test("YAML syntax errors and bad bundles are diagnostics too", () => {
  assert.throws(
    () => compiler.Policy.compile([{ name: "a.yaml", text: "policy: [\n" }]),
    (e) => e.valid === false && e.diagnostics[0].location.file === "a.yaml" && e.diagnostics[0].location.line >= 1,
  );
  assert.throws(() => Policy.fromBundle("{"), (e) => e.valid === false && e.diagnostics[0].code === "RS001");
  assert.throws(() => compiler.bundle(broken), (e) => e.valid === false && e.diagnostics[0].location.line === 7);
});

test("a bundle is refused when edited, and loads in both modules under one revision", () => {
  const json = compiler.bundle(core.files);
  assert.equal(Policy.fromBundle(json).revision, policy.revision);
  assert.equal(compiler.Policy.fromBundle(json).revision, compiler.Policy.compile(core.files).revision);
  const doc = JSON.parse(json);
  const edits = [
    json.replace('"compiled":"', '"compiled":"A'),
    JSON.stringify({ ...doc, files: [] }),
    JSON.stringify(doc, null, 2),
    JSON.stringify({ ...doc, format: "rolescope-bundle/9" }),
  ];
  for (const edited of edits) {
    assert.throws(() => Policy.fromBundle(edited), (e) => e.valid === false && e.diagnostics[0].code === "RS001");
  }
});

test("files that are not [{name, text}] throw a message", () => {
  for (const files of [undefined, "roles.yaml", 42, [{ name: 1 }]]) {
    assert.throws(() => compiler.Policy.compile(files), (e) => typeof e === "string" && e.startsWith("files: "));
  }
});

test("name, revision, warnings, roles", () => {
  assert.equal(policy.name, "corpus-core");
  assert.match(policy.revision, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(policy.warnings, []);
  const roles = policy.roles();
  assert.ok(roles.length > 3);
  for (const r of roles) {
    assert.deepEqual(Object.keys(r).sort(), ["assignable", "description", "held_at", "name", "rank", "source", "title"]);
    assert.equal(typeof r.rank, "number");
    assert.ok(Array.isArray(r.held_at));
    assert.match(r.source, /^tests\/corpus\/core\/policy\.yaml:\d+:\d+$/);
  }
});

// -- malformed requests deny, never throw -------------------------------------------------------

const malformed = [
  undefined,
  null,
  42,
  "ana",
  [],
  {},
  { principal: admin },
  { principal: admin, action: 1, resource: device("msp:acme/org:o1") },
  { principal: admin, action: "view", resource: { kind: "device" } },
  { principal: { ...admin, extra: 1 }, action: "view", resource: device("msp:acme/org:o1") },
  { principal: { ...admin, status: "weird" }, action: "view", resource: device("msp:acme/org:o1") },
  { principal: admin, action: "view", resource: device("msp:acme/org:o1"), context: "web" },
];

test("a malformed request denies with invalid_request and a detail", () => {
  for (const req of malformed) {
    const v = policy.check(req);
    assertVerdict(v);
    assert.equal(v.allowed, false, JSON.stringify(req));
    assert.equal(v.reason, "invalid_request", JSON.stringify(req));
    assert.equal(typeof v.detail, "string");
    for (const other of [policy.checkReport(req), policy.explain(req)]) {
      const d = other.decision ?? other;
      assert.equal(d.allowed, false);
      assert.equal(d.reason, "invalid_request");
    }
  }
});

// The wire types reject unknown fields (`deny_unknown_fields`): the native engine and the
// gateway (serde_json) deny such a request, and so must the JS API (it reads JS objects through
// a JSON value for exactly this reason).
test("unknown fields deny as in the native engine", () => {
  const ok = { principal: admin, action: "view", resource: device("msp:acme/org:o1") };
  assert.equal(policy.check(ok).allowed, true);
  for (const req of [
    { ...ok, unknown: true },
    { ...ok, resource: { ...ok.resource, owner: "x" } },
    { ...ok, principal: { ...admin, assignments: [{ ...admin.assignments[0], extra: 1 }] } },
  ]) {
    assert.equal(policy.check(req).reason, "invalid_request", JSON.stringify(req));
  }
});

test("unknown actions, kinds, principals and bad scopes deny with their own reason", () => {
  const cases = [
    [{ principal: admin, action: "fly", resource: device("msp:acme/org:o1") }, "unknown_action"],
    [{ principal: admin, action: "view", resource: { kind: "spaceship", scope: "msp:acme" } }, "unknown_resource_kind"],
    [{ principal: "nobody-filed", action: "view", resource: device("msp:acme/org:o1") }, "unknown_principal"],
    [{ principal: admin, action: "view", resource: device("msp:acme//org:o1") }, "invalid_scope"],
    [{ principal: admin, action: "view", resource: device("msp:acme/org:o1", { attributes: { tier: "x" } }) }, "invalid_attribute"],
    [{ principal: { ...admin, status: "suspended" }, action: "view", resource: device("msp:acme/org:o1") }, "principal_inactive"],
    [{ principal: admin, action: "view", resource: device("msp:globex/org:o1") }, "out_of_scope"],
  ];
  for (const [req, reason] of cases) {
    const v = policy.check(req);
    assertVerdict(v);
    assert.deepEqual([v.allowed, v.reason], [false, reason], JSON.stringify(req));
  }
});

test("the prepared paths never throw on malformed input either", () => {
  const p = policy.preparePrincipal(admin);
  assert.equal(p.id, "ana");
  assert.equal(policy.can(p, "view", "spaceship", "msp:acme/org:o1"), false);
  assert.equal(policy.can(p, "view", "device", "not a scope"), false);
  assert.equal(policy.can(p, "fly", "device", "msp:acme/org:o1"), false);
  for (const bad of [undefined, null, 5, { kind: "device" }]) {
    const v = policy.decide(p, "view", bad);
    assertVerdict(v);
    assert.equal(v.allowed, false);
    assert.deepEqual(policy.allowedActions(p, bad), []);
  }
  assert.equal(policy.decide(p, "view", device("msp:acme/org:o1"), "not an object").reason, "invalid_request");
  assert.deepEqual(policy.allowedActionsBatch(p, "not a list", ["view"]), []);
  const rows = [device("msp:acme/org:o1"), { kind: "spaceship", scope: "msp:acme" }];
  assert.deepEqual(policy.allowedActionsBatch(p, rows, ["view"]), [["view"], []]);
  // A row that is not a resource at all (no scope) gets no actions; the other rows still do.
  assert.deepEqual(policy.allowedActionsBatch(p, [device("msp:acme/org:o1"), { kind: "x" }], ["view"]), [["view"], []]);
  assert.equal(policy.canAssign(3).reason, "invalid_request");
  assert.throws(() => policy.preparePrincipal(5), (e) => typeof e === "string");
  assert.throws(
    () => policy.prepareResource({ kind: "spaceship", scope: "msp:acme" }),
    (e) => e.reason === "unknown_resource_kind" && typeof e.message === "string",
  );
  p.free();
});

// -- the fast paths agree with check --------------------------------------------------------------

test("can, allowed, decide, allowedActions and allowedActionsBatch agree with check", () => {
  const principals = [
    admin,
    { id: "t", assignments: [{ role: "technician", scope: "msp:acme", tenants: ["org:o1"] }] },
    { id: "o", assignments: [{ role: "observer", scope: "msp:acme/org:o1" }] },
    { id: "s", status: "suspended", assignments: [{ role: "admin", scope: "msp:acme" }] },
  ];
  const resources = [
    device("msp:acme/org:o1"),
    device("msp:acme/org:o1/site:s1"),
    device("msp:acme/org:o2"),
    device("msp:globex/org:o1"),
  ];
  const actions = ["view", "list", "create", "update", "delete"];
  let allowed = 0;
  for (const principal of principals) {
    const p = policy.preparePrincipal(principal);
    const batch = policy.allowedActionsBatch(p, resources, actions);
    resources.forEach((resource, i) => {
      const r = policy.prepareResource(resource);
      const expectedAllowed = [];
      for (const action of actions) {
        const v = policy.check({ principal, action, resource });
        if (v.allowed) expectedAllowed.push(action);
        allowed += v.allowed ? 1 : 0;
        assert.deepEqual(policy.decide(p, action, resource), v);
        assert.equal(policy.can(p, action, resource.kind, resource.scope), v.allowed);
        assert.equal(policy.allowed(p, action, r), v.allowed);
        const report = policy.checkReport({ principal, action, resource });
        assert.deepEqual([report.allowed, report.reason], [v.allowed, v.reason]);
        assert.deepEqual(policy.explain({ principal, action, resource }).decision, report);
      }
      assert.deepEqual(batch[i], expectedAllowed);
      assert.deepEqual(policy.allowedActions(p, resource).filter((a) => actions.includes(a)), expectedAllowed);
      r.free();
    });
    p.free();
  }
  assert.ok(allowed > 0, "nothing was allowed: the cases test nothing");
});

// xtask/src/wasm.rs empties core's `<f64 as Display>::fmt` in the module (serde_json writes the
// floats of its messages itself): such messages must still name the number.
test("a float where a string belongs: invalid_request naming the number", () => {
  for (const [request, text] of [
    [{ principal: admin, action: 1.5, resource: device("msp:acme") }, "floating point `1.5`"],
    [{ principal: admin, action: "view", resource: { kind: "device", scope: 2.5e-7 } }, "floating point `2.5e-7`"],
    [{ principal: admin, action: "view", resource: device("msp:acme"), context: 7.25 }, "7.25"],
  ]) {
    const v = policy.check(request);
    assert.equal(v.allowed, false);
    assert.equal(v.reason, "invalid_request");
    assert.ok(v.detail.includes(text), v.detail);
  }
});

test("allowedMask: a bitmask per scope, equal to check; malformed input sets no bit", () => {
  const principals = [
    admin,
    { id: "t", assignments: [{ role: "technician", scope: "msp:acme", tenants: ["org:o1"] }] },
    { id: "o", assignments: [{ role: "observer", scope: "msp:acme/org:o1" }] },
    { id: "s", status: "suspended", assignments: [{ role: "admin", scope: "msp:acme" }] },
  ];
  // (a quote or a backslash crosses escaped in the JSON text; the others unescaped)
  const scopes = ["msp:acme/org:o1", "msp:acme/org:o1/site:s1", "msp:acme/org:o2", "msp:globex/org:o1", "msp:acme", "not a scope", "", 'msp:acme/org:o"1', "msp:acme/org:o\\1/site:é"];
  const actions = ["view", "list", "create", "update", "delete", "no_such_action"];
  let allowed = 0;
  for (const principal of principals) {
    const p = policy.preparePrincipal(principal);
    const masks = policy.allowedMask(p, "device", scopes, actions);
    assert.ok(masks instanceof Uint32Array);
    assert.equal(masks.length, scopes.length);
    scopes.forEach((scope, i) => {
      actions.forEach((action, j) => {
        const v = policy.check({ principal, action, resource: { kind: "device", scope } });
        assert.equal((masks[i] >>> j) & 1, v.allowed ? 1 : 0, `${principal.id} ${action} ${scope}`);
        allowed += v.allowed ? 1 : 0;
      });
    });
    // a context object is read as in `decide`; a malformed one denies everything
    assert.deepEqual([...policy.allowedMask(p, "device", scopes, actions, {})], [...masks]);
    assert.deepEqual([...policy.allowedMask(p, "device", scopes, actions, { no_such: 1 })], scopes.map(() => 0));
    assert.deepEqual([...policy.allowedMask(p, "spaceship", scopes, actions)], scopes.map(() => 0));
    assert.deepEqual([...policy.allowedMask(p, "device", [], actions)], []);
    assert.deepEqual([...policy.allowedMask(p, "device", "msp:acme/org:o1", actions)], []);
    // an element that is not a string gets no bit; the others still do
    const mixed = policy.allowedMask(p, "device", [42, scopes[0], null], actions);
    assert.deepEqual([...mixed], [0, masks[0], 0]);
    // the 33rd action onwards has no bit
    const many = [...Array.from({ length: 32 }, () => "no_such_action"), "view"];
    assert.deepEqual([...policy.allowedMask(p, "device", scopes, many)], scopes.map(() => 0));
    p.free();
  }
  assert.ok(allowed > 0, "nothing was allowed: the cases test nothing");
});

// -- shapes ---------------------------------------------------------------------------------------

test("report, explanation, delegation and invariant shapes", () => {
  const req = { principal: admin, action: "view", resource: device("msp:acme/org:o1") };
  const report = policy.checkReport(req);
  assert.deepEqual(Object.keys(report).sort(), ["allowed", "explanation", "matched", "reason", "revision"]);
  assert.equal(report.revision, policy.revision);
  assert.equal(report.matched[0].effect, "grant");
  assert.match(report.matched[0].source, /:\d+:\d+$/);
  const explanation = policy.explain(req);
  assert.deepEqual(explanation.decision, report);
  for (const s of explanation.steps) {
    assert.equal(typeof s.step, "string");
    assert.equal(typeof s.message, "string");
    assert.equal(typeof s.outcome, "string");
  }
  const assign = policy.canAssign({ principal: admin, role: "technician", scope: "msp:acme/org:o1" });
  assert.deepEqual(Object.keys(assign).sort(), ["allowed", "explanation", "reason"]);
  assert.equal(typeof assign.allowed, "boolean");
  // An audit question of the compiler module (rolescope/compiler).
  assert.equal(typeof policy.checkInvariants, "undefined");
  const audit = compiler.Policy.compile(core.files);
  const violations = audit.checkInvariants([admin]);
  assert.ok(Array.isArray(violations));
  for (const v of violations) {
    assert.equal(typeof v.invariant, "string");
    assert.equal(typeof v.found, "number");
    assert.equal(typeof v.required, "number");
  }
  assert.throws(() => audit.checkInvariants(5), (e) => typeof e === "string");
});

// -- the declarations match the module ------------------------------------------------------------

const dts = readFileSync(join(pkgDir, "index.d.ts"), "utf8");
const code = (text) => text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");

test("index.d.ts and compiler.d.ts declare exactly the modules' JS APIs", () => {
  const declared = (text, cls) => {
    const body = code(text).match(new RegExp(`class ${cls} \\{([\\s\\S]*?)\\n\\}`))[1];
    // members are indented two spaces (parameters of multi-line signatures four)
    return [...body.matchAll(/^  (?:static )?(?:readonly )?(\w+)\s*[(:]/gm)].map((m) => m[1]).filter((n) => n !== "constructor").sort();
  };
  const actual = (cls) => {
    const proto = Object.getOwnPropertyNames(cls.prototype).filter((n) => n !== "constructor" && !n.startsWith("__"));
    const statics = Object.getOwnPropertyNames(cls).filter((n) => typeof cls[n] === "function" && !n.startsWith("__"));
    return [...proto, ...statics].sort();
  };
  const compilerDts = readFileSync(join(pkgDir, "compiler.d.ts"), "utf8");
  for (const [text, module, classes] of [
    [dts, rolescope, ["Policy", "PreparedPrincipal", "PreparedResource"]],
    [compilerDts, compiler, ["Policy"]],
  ]) {
    for (const name of classes) {
      assert.deepEqual(declared(text, name), actual(module[name]), `${name}: the declarations and the module differ`);
    }
  }
  // The compiler module's prepared inputs are the same classes (declared once, in index.d.ts).
  assert.deepEqual(actual(compiler.PreparedPrincipal), actual(rolescope.PreparedPrincipal));
  assert.deepEqual(actual(compiler.PreparedResource), actual(rolescope.PreparedResource));
  // Module-level exports; the rs_* functions are the plain ABI for non-JS hosts (bindings/ABI.md).
  const exports = (text) => [...code(text).matchAll(/^export (?:declare )?(?:class|function) (\w+)/gm)].map((m) => m[1]);
  const exported = (module) => Object.keys(module).filter((n) => !n.startsWith("rs_")).sort();
  assert.deepEqual(exports(dts).sort(), exported(rolescope));
  assert.deepEqual([...exports(dts), ...exports(compilerDts)].filter((n, i, all) => all.indexOf(n) === i).sort(), exported(compiler));
});

test("the published declarations contain no `any`", () => {
  for (const file of ["index.d.ts", "web.d.ts", "compiler.d.ts", "compiler-web.d.ts"]) {
    const text = code(readFileSync(join(pkgDir, file), "utf8"));
    assert.doesNotMatch(text, /\bany\b/, `${file} uses any`);
  }
});

// -- the README example -----------------------------------------------------------------------------

test("the README's five lines run and print what they say", () => {
  const readme = readFileSync(join(pkgDir, "README.md"), "utf8");
  const js = readme.match(/```js\n([\s\S]*?)```/)[1].trim().split("\n");
  const yaml = readme.match(/```yaml\n([\s\S]*?)```/)[1];
  assert.equal(js.length, 5, "the example is five lines");
  const printed = [];
  // `bundle.json` is what `rolescope build` writes for the README's roles.yaml.
  const json = compiler.bundle([{ name: "roles.yaml", text: yaml }]);
  const fakeRequire = (m) => (m === "rolescope" ? rolescope : { readFileSync: (f) => (f === "bundle.json" ? json : yaml) });
  const run = new Function("require", "console", js.join("\n"));
  run(fakeRequire, { log: (v) => printed.push(v) });
  const comments = js.filter((l) => l.includes("console.log")).map((l) => l.split("// ")[1]);
  assert.equal(printed.length, comments.length);
  printed.forEach((v, i) => {
    const expected = new Function(`return (${comments[i]});`)();
    assert.deepEqual(v, expected);
  });
});
