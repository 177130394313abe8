// CASL (@casl/ability) as a CASL user models the two policies: each role is a list of rules
// (actions on subject types) written once, and a user's ability is built at sign-in from their
// assignments: one rule per grant of the role, conditioned on the tenant (`orgId` /
// `customerId`) and, for ownership, on `createdBy`. Subjects are plain objects typed by `kind`.

import { createMongoAbility } from "@casl/ability";

import { MSP_ROLES, SITE24X7_ROLES } from "./roles.mjs";

/**
 * The MSP user's raw rules: `combine: highest_rank`, so per org only the highest-ranked role
 * held there counts; every rule is conditioned on that org.
 */
export function mspRules(user) {
  const best = new Map();
  for (const a of user.assignments) {
    const role = MSP_ROLES[a.role];
    if (role === undefined) continue; // an unknown role grants nothing
    const held = best.get(a.org);
    if (held === undefined || MSP_ROLES[held].rank < role.rank) best.set(a.org, a.role);
  }
  const rules = [];
  for (const [org, name] of best) {
    for (const g of MSP_ROLES[name].grants) {
      const conditions = g.subject === "all" ? { orgId: org } : { orgId: org, ...(g.own ? { createdBy: user.id } : {}) };
      rules.push({ action: g.action, subject: g.subject, conditions });
    }
  }
  return rules;
}

/** The Site24x7 user's raw rules for a session on `channel` (roles limited to a channel give none elsewhere). */
export function site24x7Rules(user, channel) {
  const rules = [];
  for (const a of user.assignments) {
    const role = SITE24X7_ROLES[a.role];
    if (role === undefined || role.channel !== channel) continue;
    for (const g of role.grants) {
      const conditions = {
        customerId: a.customer,
        ...(g.own ? { createdBy: user.id } : {}),
        ...(g.unmodified ? { modifiedBySuperAdmin: { $ne: true } } : {}),
      };
      rules.push({ action: g.action, subject: g.subject, conditions });
    }
  }
  return rules;
}

/** CASL's subject for a scenario resource. */
export function caslSubject(r) {
  if (r.kind === "device") return { kind: r.kind, id: r.id, orgId: r.org, siteId: r.site };
  return { kind: r.kind, id: r.id, customerId: r.customer, createdBy: r.createdBy, modifiedBySuperAdmin: r.modifiedBySuperAdmin };
}

const options = { detectSubjectType: (o) => o.kind };

/** The timed paths per case (abilities built once per user, like a prepared principal). */
export function caslPeer(sc, { rules = { msp: mspRules, site24x7: (u) => site24x7Rules(u, "web_client") } } = {}) {
  const abilities = {
    ana: createMongoAbility(rules.msp(sc.principals.ana), options),
    op: createMongoAbility(rules.site24x7(sc.principals.op), options),
  };
  const ops = {};
  for (const c of sc.cases) {
    const ability = abilities[c.principal];
    if (c.kind === "decision") {
      const s = caslSubject(c.resource);
      ops[c.id] = [{ path: "ability.can (ability per user, subject object)", fn: () => ability.can(c.action, s) }];
    } else if (c.kind === "actions") {
      const s = caslSubject(c.resource);
      ops[c.id] = [{ path: "ability.can per action", fn: () => c.actions.filter((a) => ability.can(a, s)) }];
    } else {
      const subjects = c.resources.map(caslSubject);
      ops[c.id] = [{ path: "ability.can per resource and action", fn: () => subjects.map((s) => c.actions.filter((a) => ability.can(a, s))) }];
    }
  }
  return { name: "CASL", ops };
}

export const CASL_MODEL =
  "a role table (the grants of msp.yaml / the Site24x7 Operator); a user's raw rules built from their assignments (per org only the highest-ranked role, `combine: highest_rank`), each rule conditioned on `orgId`/`customerId` and, for ownership, `createdBy`; `createMongoAbility` once per user; subjects are plain objects typed by `kind`";
