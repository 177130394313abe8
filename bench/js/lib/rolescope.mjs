// rolescope through its npm package (bindings/pkg, built by `cargo xtask wasm`), used as an
// application does: role files -> a bundle (the compiler module) -> `Policy.fromBundle` (the
// engine module), a principal prepared once, decisions through the public API of index.d.ts.

import { readFileSync } from "node:fs";
import { join } from "node:path";

import { loadCompiler, loadPackage, pkgDir } from "../../../bindings/npm/testing.mjs";
import { MSP, MSP_FILE, SITE24X7_FILE, readRepoFile } from "./scenarios.mjs";

/** The package's version and where it was loaded from. */
export function rolescopeVersion() {
  const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
  return pkg.version;
}

/** Compiles the two policies and reads the `device` kind's actions from the MSP policy. */
export function loadRolescope() {
  const { Policy } = loadPackage();
  const { bundle } = loadCompiler();
  const compile = (file) => Policy.fromBundle(bundle([{ name: file, text: readRepoFile(file) }]));
  const policies = { msp: compile(MSP_FILE), site24x7: compile(SITE24X7_FILE) };
  // every action of `device`: what a super_user (`*` on `*`) may do to one
  const su = policies.msp.preparePrincipal({ id: "su", assignments: [{ role: "super_user", scope: `msp:${MSP}` }] });
  const deviceActions = policies.msp.allowedActions(su, { kind: "device", id: "d0", scope: `msp:${MSP}/org:o0/site:s1` });
  su.free();
  if (deviceActions.length === 0) throw new Error(`${MSP_FILE}: no action of \`device\` is allowed to super_user`);
  return { Policy, policies, deviceActions };
}

/** rolescope's principal from the scenario data. */
export function rolescopePrincipal(p) {
  return {
    id: p.id,
    assignments: p.assignments.map((a) =>
      a.org !== undefined ? { role: a.role, scope: `msp:${MSP}/org:${a.org}` } : { role: a.role, scope: `msp:zylker/customer:${a.customer}` },
    ),
  };
}

/** rolescope's resource from the scenario data. */
export function rolescopeResource(r) {
  if (r.kind === "device") return { kind: r.kind, id: r.id, scope: `msp:${MSP}/org:${r.org}/site:${r.site}` };
  return { kind: r.kind, id: r.id, scope: `msp:${r.msp}/customer:${r.customer}`, attributes: { created_by: r.createdBy, modified_by_super_admin: r.modifiedBySuperAdmin } };
}

/** Action lists from `allowedMask`'s bitmasks (bit `i` = `actions[i]`), for the agreement check. */
export const decodeMasks = (masks, actions) => Array.from(masks, (m) => actions.filter((_, i) => (m >>> i) & 1));

/**
 * The timed paths per case. The first path of each case is the comparator: its answer is the
 * expected answer every peer is checked against, and its time the denominator of every ratio.
 * For the batches that is `allowedMask` when the package has it (the batch entry for listing
 * pages), else `allowedActionsBatch`. A path's `decode` turns its answer into action lists.
 */
export function rolescopePeer(loaded, sc) {
  const { policies } = loaded;
  const prepared = {
    ana: policies.msp.preparePrincipal(rolescopePrincipal(sc.principals.ana)),
    op: policies.site24x7.preparePrincipal(rolescopePrincipal(sc.principals.op)),
  };
  const ops = {};
  for (const c of sc.cases) {
    const policy = policies[c.policy];
    const p = prepared[c.principal];
    if (c.kind === "decision") {
      const res = rolescopeResource(c.resource);
      const pr = policy.prepareResource(res);
      const paths = [
        { path: "allowed (prepared principal + prepared resource)", fn: () => policy.allowed(p, c.action, pr) },
        { path: "decide (prepared principal, resource object; a Verdict back)", fn: () => policy.decide(p, c.action, res).allowed },
      ];
      if (!res.attributes) paths.push({ path: "can (prepared principal, kind + scope strings)", fn: () => policy.can(p, c.action, res.kind, res.scope) });
      if (c.id === "a.allowed") {
        const request = { principal: rolescopePrincipal(sc.principals[c.principal]), action: c.action, resource: res };
        paths.push({ path: "check (request object, principal inline: prepared every call)", fn: () => policy.check(request).allowed });
      }
      ops[c.id] = paths;
    } else if (c.kind === "actions") {
      const res = rolescopeResource(c.resource);
      const pr = policy.prepareResource(res);
      ops[c.id] = [
        { path: "allowedActions (prepared principal, resource object)", fn: () => policy.allowedActions(p, res) },
        { path: "allowed per action (prepared resource)", fn: () => c.actions.filter((a) => policy.allowed(p, a, pr)) },
      ];
    } else {
      const resources = c.resources.map(rolescopeResource);
      const kinds = new Set(resources.map((r) => r.kind));
      const paths = [];
      if (typeof policy.allowedMask === "function" && kinds.size === 1 && resources.every((r) => !r.attributes)) {
        const kind = resources[0].kind;
        const scopes = resources.map((r) => r.scope);
        paths.push({
          path: "allowedMask (kind + scope strings, a bitmask per resource)",
          fn: () => policy.allowedMask(p, kind, scopes, c.actions),
          decode: (m) => decodeMasks(m, c.actions),
        });
      }
      const pr = resources.map((r) => policy.prepareResource(r));
      paths.push(
        { path: "allowedActionsBatch (prepared principal, resource objects)", fn: () => policy.allowedActionsBatch(p, resources, c.actions) },
        { path: "allowed per resource and action (prepared resources)", fn: () => pr.map((r) => c.actions.filter((a) => policy.allowed(p, a, r))) },
      );
      ops[c.id] = paths;
    }
  }
  return { name: "rolescope", ops };
}
