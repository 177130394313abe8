// The UI gate (bindings/npm/gate/): createGate over the Node entry, and the React binding
// rendered with react-dom/server. Every gate answer is compared with the policy's own `check`
// on the seed policy juniper-mist-msp. React comes from tests/browser/node_modules (a test
// package; React is only a peer dependency of the published package): without it the React
// tests are skipped. The type test needs tools/node_modules/typescript (`cargo xtask wasm`).
// ROLESCOPE_PKG_DIR selects another build of the package than bindings/pkg.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, describe, test } from "node:test";

import { corpusFolders, loadCompiler, loadPackage, pkgDir, root } from "../testing.mjs";
import { createGate } from "../gate/index.js";

const pkg = process.env.ROLESCOPE_PKG_DIR;
const { Policy } = pkg ? createRequire(import.meta.url)(pkg) : loadPackage();
// Role files -> a policy of the engine module, through a bundle of the compiler module.
const { bundle } = pkg ? createRequire(import.meta.url)(join(pkg, "compiler", "node", "rolescope_wasm.js")) : loadCompiler();
const compile = (files) => Policy.fromBundle(bundle(files));
const folder = corpusFolders().find((f) => f.dir === "policies/juniper-mist-msp");
const policy = compile(folder.files);

// Principals of the seed suite (policies/juniper-mist-msp/mist_msp_test.yaml).
const principals = {
  su: { id: "su", assignments: [{ role: "super_user", scope: "msp:mist" }] },
  su_suspended: { id: "su", status: "suspended", assignments: [{ role: "super_user", scope: "msp:mist" }] },
  na_o1: { id: "na_o1", assignments: [{ role: "network_admin", scope: "msp:mist", tenants: ["org:o1"] }] },
  obs_o1_o2: { id: "obs_o1_o2", assignments: [{ role: "observer", scope: "msp:mist", tenants: ["org:o1", "org:o2"] }] },
  inst_o2: { id: "inst_o2", assignments: [{ role: "installer", scope: "msp:mist", tenants: ["msp:mist/org:o2"] }] },
  hd_o1: { id: "hd_o1", assignments: [{ role: "helpdesk", scope: "msp:mist", tenants: ["org:o1"] }] },
  org_su_o1: { id: "org_su_o1", assignments: [{ role: "super_user", scope: "msp:mist/org:o1" }] },
};
const resources = [
  { kind: "organization", id: "", scope: "msp:mist" },
  { kind: "msp_settings", id: "mist", scope: "msp:mist" },
  { kind: "administrator", id: "", scope: "msp:mist" },
  { kind: "administrator", id: "", scope: "msp:mist/org:o1" },
  { kind: "device", id: "ap-11", scope: "msp:mist/org:o1/site:s1" },
  { kind: "device", id: "ap-23", scope: "msp:mist/org:o2/site:s3" },
  { kind: "wlan", id: "corp", scope: "msp:mist/org:o2" },
  { kind: "monitoring", id: "sle", scope: "msp:mist/org:o1/site:s1" },
];
const actions = ["view", "list", "create", "update", "delete", "invite", "claim", "install", "reboot", "upgrade", "release", "troubleshoot"];

/** The policy, with a count of calls per method (to see what the gate asks the module). */
function counting(p) {
  const calls = {};
  const proxy = new Proxy(p, {
    get(target, name) {
      const v = Reflect.get(target, name, target);
      if (typeof v !== "function") return v;
      return (...args) => {
        calls[name] = (calls[name] ?? 0) + 1;
        return v.apply(target, args);
      };
    },
  });
  return { proxy, calls };
}

describe("createGate", () => {
  test("can() equals the policy's check for every principal, resource and action", (t) => {
    let compared = 0;
    let allowed = 0;
    for (const [name, principal] of Object.entries(principals)) {
      const gate = createGate(policy, principal);
      for (const resource of resources) {
        for (const action of actions) {
          const want = policy.check({ principal, action, resource });
          assert.equal(gate.can(action, resource), want.allowed, `${name} ${action} ${JSON.stringify(resource)}`);
          assert.deepEqual(gate.decide(action, resource), want, `${name} ${action} ${resource.kind}`);
          compared += 1;
          allowed += want.allowed ? 1 : 0;
        }
      }
      gate.free();
    }
    t.diagnostic(`${compared} decisions compared, ${allowed} allowed`);
    assert.ok(allowed > 50 && allowed < compared - 50, "the matrix must have both answers");
  });

  test("the principal is prepared once for any number of questions", () => {
    const { proxy, calls } = counting(policy);
    const gate = createGate(proxy, principals.na_o1);
    for (const r of resources) for (const a of actions) gate.can(a, r);
    gate.allowedActions(resources);
    assert.equal(calls.preparePrincipal, 1);
    assert.equal(calls.decide, resources.length * actions.length);
    gate.free();
  });

  test("allowedActions() is one batch call and equals the per-resource answers", () => {
    for (const principal of Object.values(principals)) {
      const { proxy, calls } = counting(policy);
      const gate = createGate(proxy, principal);
      const rows = gate.allowedActions(resources);
      assert.equal(calls.allowedActionsBatch, 1);
      assert.equal(calls.allowedActions, undefined);
      assert.equal(rows.length, resources.length);
      const prepared = policy.preparePrincipal(principal);
      resources.forEach((r, i) => {
        assert.deepEqual([...rows[i]].sort(), [...policy.allowedActions(prepared, r)].sort(), `${principal.id} ${r.kind}`);
        for (const a of actions) assert.equal(rows[i].includes(a), gate.can(a, r), `${principal.id} ${a} ${r.kind}`);
      });
      prepared.free();
      const limited = gate.allowedActions(resources, ["reboot", "view"]);
      limited.forEach((row, i) => assert.deepEqual([...row].sort(), rows[i].filter((a) => a === "reboot" || a === "view").sort()));
      gate.free();
    }
  });

  test("malformed input denies; the rows stay aligned", () => {
    const gate = createGate(policy, principals.su);
    assert.equal(gate.can("view", { kind: "no_such_kind", scope: "msp:mist" }), false);
    assert.equal(gate.can("no_such_action", resources[4]), false);
    assert.equal(gate.can("view", { kind: "device", scope: "not a scope" }), false);
    assert.equal(gate.can("view", { kind: "device", scope: "msp:mist/org:o1", extra: 1 }), false);
    assert.equal(gate.decide("view", { kind: "no_such_kind", scope: "msp:mist" }).reason, "unknown_resource_kind");
    const rows = gate.allowedActions([resources[4], { kind: "no_such_kind", scope: "msp:mist" }, resources[5]]);
    assert.equal(rows.length, 3);
    assert.deepEqual(rows[1], []);
    assert.ok(rows[0].includes("reboot") && rows[2].includes("reboot"));
    assert.throws(() => gate.allowedActions("not a list"), TypeError);
    gate.free();
  });

  test("an inactive principal may do nothing, and explain() says why", () => {
    const gate = createGate(policy, principals.su_suspended);
    for (const r of resources) assert.deepEqual(gate.allowedActions([r]), [[]]);
    assert.equal(gate.can("view", resources[4]), false);
    const e = gate.explain("view", resources[4]);
    assert.equal(e.decision.allowed, false);
    assert.equal(e.decision.reason, "principal_inactive");
    gate.free();
  });

  test("explain() gives the decision of check() with its steps", () => {
    const gate = createGate(policy, principals.obs_o1_o2);
    for (const r of resources) {
      for (const a of ["view", "update", "reboot"]) {
        const e = gate.explain(a, r);
        const want = policy.check({ principal: principals.obs_o1_o2, action: a, resource: r });
        if (want.reason === "invalid_request" || want.reason === "unknown_action") continue;
        assert.equal(e.decision.allowed, want.allowed);
        assert.equal(e.decision.reason, want.reason);
        assert.ok(Array.isArray(e.steps) && e.steps.length > 0);
      }
    }
    gate.free();
  });

  test("a context given to the gate reaches every decision", () => {
    const jc = corpusFolders().find((f) => f.dir === "policies/jumpcloud-mtp");
    const p = compile(jc.files);
    const admin = { id: "admin", assignments: [{ role: "administrator", scope: "msp:acme", tenants: ["org:o1"] }] };
    const resource = { kind: "administrator", id: "bob", scope: "msp:acme", attributes: { status: "active" } };
    for (const context of [{ channel: "console", console: "mtp" }, { channel: "api", console: "mtp" }]) {
      const gate = createGate(p, admin, { context });
      const want = p.check({ principal: admin, action: "view", resource, context });
      assert.deepEqual(gate.decide("view", resource), want);
      assert.equal(gate.explain("view", resource).decision.reason, want.reason);
      gate.free();
    }
    p.free();
  });

  test("bad arguments throw; a freed gate throws", () => {
    assert.throws(() => createGate(null, principals.su), TypeError);
    assert.throws(() => createGate(policy, "su"), TypeError);
    assert.throws(() => createGate(policy, policy.preparePrincipal(principals.su)), TypeError);
    assert.throws(() => createGate(policy, { id: "x", assignments: "nope" }));
    const gate = createGate(policy, principals.su);
    assert.equal(gate.id, "su");
    gate.free();
    gate.free();
    assert.throws(() => gate.can("view", resources[4]), /freed/);
  });

  const hasHttp = typeof policy.authorizeHttp === "function";
  test(
    "authorizeHttp() maps requests through the route table with the prepared principal",
    { skip: hasHttp ? false : "this module has no authorizeHttp yet" },
    () => {
      const gate = createGate(policy, principals.na_o1);
      const ok = gate.authorizeHttp({ method: "GET", target: "/api/v1/orgs/o1/devices" });
      assert.equal(ok.allowed, true);
      assert.equal(ok.route, "GET /api/v1/orgs/{org}/devices");
      assert.equal(ok.action, "list");
      const other = gate.authorizeHttp({ method: "GET", target: "/api/v1/orgs/o2/devices", headers: [] });
      assert.deepEqual([other.allowed, other.reason], [false, "out_of_scope"]);
      const dots = gate.authorizeHttp({ method: "GET", target: "/api/v1/orgs/o1/../o2/devices" });
      assert.deepEqual([dots.allowed, dots.reason], [false, "invalid_path"]);
      gate.free();
    },
  );
});

// ---------------------------------------------------------------------------------------------
// React

const browserModules = join(root, "tests", "browser", "node_modules");
const noReact = existsSync(join(browserModules, "react-dom", "server.js"))
  ? false
  : `no React at ${browserModules}: run \`npm ci\` in tests/browser (scripts/test-web.sh does)`;

/** A project with the gate's files and node_modules/{react,react-dom} (as a user would have). */
function reactProject() {
  const dir = mkdtempSync(join(tmpdir(), "rolescope-gate-react-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(root, "bindings", "npm", "gate"), join(dir, "gate"), { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "gate-react-test", private: true, type: "module" }));
  mkdirSync(join(dir, "node_modules"));
  for (const m of ["react", "react-dom"]) symlinkSync(join(browserModules, m), join(dir, "node_modules", m), "dir");
  return dir;
}

describe("rolescope/react", { skip: noReact }, async () => {
  const dir = noReact ? null : reactProject();
  const mod = (p) => import(pathToFileURL(join(dir, p)).href);
  const { Can, GateProvider, useCan, useGate } = noReact ? {} : await mod("gate/react.js");
  const req = noReact ? null : createRequire(join(dir, "package.json"));
  const React = noReact ? null : req("react");
  const { renderToString } = noReact ? {} : req("react-dom/server");
  const h = React?.createElement;
  const device = resources[4];
  const orgAdmins = resources[3];

  /** Renders the buttons of a small toolbar for `principal`. */
  function toolbar(principal) {
    const gate = createGate(policy, principal);
    const html = renderToString(
      h(GateProvider, { gate }, [
        h(Can, { key: "r", action: "reboot", resource: device }, h("button", null, "Reboot")),
        h(Can, { key: "i", action: "invite", resource: orgAdmins, fallback: h("i", null, "no invite") }, h("button", null, "Invite")),
        h(Can, { key: "u", action: "update", resource: device, passThrough: true }, (allowed, v) =>
          h("button", { disabled: !allowed, title: v.reason }, "Edit"),
        ),
      ]),
    );
    gate.free();
    return html;
  }

  test("<Can> renders children when allowed, the fallback otherwise", () => {
    for (const [name, principal] of Object.entries(principals)) {
      const html = toolbar(principal);
      const reboot = policy.check({ principal, action: "reboot", resource: device }).allowed;
      const invite = policy.check({ principal, action: "invite", resource: orgAdmins }).allowed;
      assert.equal(html.includes(">Reboot</button>"), reboot, `${name}: ${html}`);
      assert.equal(html.includes(">Invite</button>"), invite, `${name}: ${html}`);
      assert.equal(html.includes("no invite"), !invite, `${name}: ${html}`);
    }
    // Both answers occur over these principals.
    assert.ok(toolbar(principals.su).includes(">Invite<") && !toolbar(principals.obs_o1_o2).includes(">Invite<"));
  });

  test("passThrough renders a function child with the verdict either way", () => {
    const yes = toolbar(principals.su);
    assert.match(yes, /<button title="allowed">Edit<\/button>/);
    const no = toolbar(principals.hd_o1);
    assert.match(no, /<button disabled="" title="no_matching_grant">Edit<\/button>/);
  });

  test("useCan and a provider made from a policy and a principal", () => {
    function Probe({ action }) {
      const gate = useGate();
      return h("span", null, `${gate.id}:${action}=${useCan(action, device)}`);
    }
    const html = renderToString(
      h(GateProvider, { policy, principal: principals.hd_o1 }, [
        h(Probe, { key: 1, action: "reboot" }),
        h(Probe, { key: 2, action: "release" }),
      ]),
    );
    assert.equal(html, "<span>hd_o1:reboot=true</span><span>hd_o1:release=false</span>");
  });

  test("the hooks refuse to run outside a provider", () => {
    function Probe() {
      return h("span", null, String(useCan("view", device)));
    }
    assert.throws(() => renderToString(h(Probe)), /outside a <GateProvider>/);
    assert.throws(() => renderToString(h(Can, { action: "view", resource: device }, "x")), /outside a <GateProvider>/);
  });
});

// ---------------------------------------------------------------------------------------------
// Types

const tsc = join(root, "tools", "node_modules", "typescript", "bin", "tsc");
const noTypes = existsSync(tsc)
  ? noReact
  : `no TypeScript at ${tsc}: run \`cargo xtask wasm\``;

test("the gate's declarations type-check (strict) as a user imports them", { skip: noTypes }, () => {
  const dir = mkdtempSync(join(tmpdir(), "rolescope-gate-types-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  // The package as it would ship: its files plus gate/.
  const pkg = join(dir, "node_modules", "rolescope");
  mkdirSync(pkg, { recursive: true });
  for (const f of ["index.d.ts", "web.d.ts"]) cpSync(join(pkgDir, f), join(pkg, f));
  cpSync(join(root, "bindings", "npm", "gate"), join(pkg, "gate"), { recursive: true });
  writeFileSync(
    join(pkg, "package.json"),
    JSON.stringify({
      name: "rolescope",
      type: "module",
      exports: {
        ".": { types: "./index.d.ts" },
        "./gate": { types: "./gate/index.d.ts", default: "./gate/index.js" },
        "./react": { types: "./gate/react.d.ts", default: "./gate/react.js" },
      },
    }),
  );
  mkdirSync(join(dir, "node_modules", "@types"));
  symlinkSync(join(browserModules, "@types", "react"), join(dir, "node_modules", "@types", "react"), "dir");
  symlinkSync(join(browserModules, "csstype"), join(dir, "node_modules", "csstype"), "dir");
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "gate-types", private: true, type: "module" }));
  writeFileSync(
    join(dir, "usage.ts"),
    `import type { Policy, Principal, Resource } from "rolescope";
import { createGate, type Gate, type GateHttpDecision } from "rolescope/gate";
import { Can, GateProvider, useCan, useGate } from "rolescope/react";
import { createElement, type ReactNode } from "react";

export function page(policy: Policy, principal: Principal, rows: Resource[]): ReactNode {
  const gate: Gate = createGate(policy, principal, { context: { channel: "console" } });
  const allowed: string[][] = gate.allowedActions(rows, ["view"]);
  const ok: boolean = gate.can("reboot", { kind: "device", scope: "msp:mist/org:o1" });
  const d: GateHttpDecision = gate.authorizeHttp({ method: "GET", target: "/api/v1/status", headers: [["x-a", "b"]] });
  const reason: string = d.reason;
  const e = gate.explain("view", rows[0]);
  const steps: number = "steps" in e ? e.steps.length : 0;
  function Probe(): ReactNode {
    const g: Gate = useGate();
    return createElement("i", null, String(useCan("view", rows[0])) + g.id);
  }
  return createElement(GateProvider, { gate }, [
    createElement(Can, { action: "view", resource: rows[0], fallback: "no", children: "yes" }),
    createElement(Can, {
      action: "update",
      resource: rows[0],
      passThrough: true,
      children: (a: boolean, v) => createElement("button", { disabled: !a, title: v.reason }, "Edit"),
    }),
    createElement(GateProvider, { policy, principal }, createElement(Probe)),
    String(allowed.length + steps) + String(ok) + reason,
  ]);
}
`,
  );
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        noUnusedLocals: true,
        module: "esnext",
        moduleResolution: "bundler",
        target: "es2022",
        lib: ["es2022", "dom"],
        types: [],
      },
      files: ["usage.ts"],
    }),
  );
  try {
    execFileSync(process.execPath, [tsc, "-p", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`);
  }
});
