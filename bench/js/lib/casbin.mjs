// casbin (npm) on the shared model.conf files of bench/scenarios (the same models as the
// native casbin peer): RBAC with domains, the tenant as the domain. `g, <user>, <role>,
// <tenant>` per assignment; `p` lines per role from the role table of roles.mjs on the kinds the
// cases ask about (as the native casbin peer, bench/peers/src/casbin_peer.rs; the msp model:
// `p, <role>, <kind>, <action>`; the Site24x7 model adds the condition `any` / `own_unmodified`
// and the channel). Decisions through `enforceSync`.

import { newEnforcer, newModelFromString } from "casbin";

import { readRepoFile } from "./scenarios.mjs";
import { MSP_ROLES, SITE24X7_ROLES } from "./roles.mjs";

const list = (x) => (Array.isArray(x) ? x : [x]);

/**
 * `p` lines of the msp model: every (kind, action) a role grants on the `kinds` the scenarios
 * ask about (as the native casbin peer); `manage all` = every device action.
 */
export function mspPolicyLines(deviceActions, kinds) {
  const lines = [];
  for (const [role, { grants }] of Object.entries(MSP_ROLES)) {
    for (const g of grants) {
      // the msp model has no condition: the ownership grants are left out (no scenario asks them)
      if (g.own) continue;
      const pairs = g.subject === "all" ? deviceActions.map((a) => ["device", a]) : list(g.subject).flatMap((k) => list(g.action).map((a) => [k, a]));
      for (const [kind, action] of pairs) if (kinds.has(kind)) lines.push([role, kind, action]);
    }
  }
  return lines;
}

/** `p` lines of the Site24x7 model on `kinds`: `role, kind, action, any | own_unmodified, channel`. */
export function site24x7PolicyLines(kinds) {
  const lines = [];
  for (const [role, { grants, channel }] of Object.entries(SITE24X7_ROLES)) {
    for (const g of grants) {
      // the model knows one condition: own and not modified by a Super Admin
      if (g.own && !g.unmodified) continue;
      const cond = g.own ? "own_unmodified" : "any";
      for (const kind of list(g.subject).filter((k) => kinds.has(k))) {
        for (const action of list(g.action)) lines.push([role, kind, action, cond, channel ?? "*"]);
      }
    }
  }
  return lines;
}

async function enforcer(dir, policyLines, users, domainOf) {
  const e = await newEnforcer(newModelFromString(readRepoFile(`${dir}/model.conf`)));
  await e.addPolicies(policyLines);
  const groupings = users.flatMap((u) => u.assignments.map((a) => [u.id, a.role, domainOf(a)]));
  await e.addGroupingPolicies(groupings);
  return e;
}

/** The timed paths per case (async: casbin's set-up is). */
export async function casbinPeer(sc) {
  // the resource kinds each policy's cases ask about
  const kinds = (policy) => new Set(sc.cases.filter((c) => c.policy === policy).flatMap((c) => (c.resources ?? [c.resource]).map((r) => r.kind)));
  const msp = await enforcer("bench/scenarios/msp", mspPolicyLines(sc.deviceActions, kinds("msp")), [sc.principals.ana], (a) => a.org);
  const site = await enforcer("bench/scenarios/site24x7", site24x7PolicyLines(kinds("site24x7")), [sc.principals.op], (a) => a.customer);
  /** One request's arguments, built in advance. */
  const args = (c, action, r) => {
    const sub = sc.principals[c.principal].id;
    if (c.policy === "msp") return [msp, [sub, r.org, r.kind, action]];
    return [site, [sub, r.customer, r.kind, action, r.createdBy, String(r.modifiedBySuperAdmin), "web_client"]];
  };
  const ops = {};
  for (const c of sc.cases) {
    if (c.kind === "decision") {
      const [e, a] = args(c, c.action, c.resource);
      ops[c.id] = [{ path: "enforceSync (RBAC with domains)", fn: () => e.enforceSync(...a) }];
    } else if (c.kind === "actions") {
      const calls = c.actions.map((act) => [act, ...args(c, act, c.resource)]);
      ops[c.id] = [{ path: "enforceSync per action", fn: () => calls.filter(([, e, a]) => e.enforceSync(...a)).map(([act]) => act) }];
    } else {
      const rows = c.resources.map((r) => c.actions.map((act) => [act, ...args(c, act, r)]));
      ops[c.id] = [
        {
          path: "enforceSync per resource and action",
          fn: () => rows.map((calls) => calls.filter(([, e, a]) => e.enforceSync(...a)).map(([act]) => act)),
        },
      ];
    }
  }
  return { name: "casbin", ops };
}

export const CASBIN_MODEL =
  "the shared `bench/scenarios/{msp,site24x7}/model.conf`: RBAC with domains, the tenant (org / customer account) as the domain; `g, <user>, <role>, <tenant>` per assignment, `p, <role>, <kind>, <action>` per grant on the kinds the cases ask about (`device`, `maintenance_window`, as the native casbin peer); the Site24x7 lines add `any`/`own_unmodified` and the channel; `enforceSync` with the request's arguments built in advance";
