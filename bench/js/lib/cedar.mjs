// cedar-wasm (@cedar-policy/cedar-wasm, its Node entry) on the shared Cedar texts of
// bench/scenarios (the same schema and templates as the native cedar-policy peer): an entity
// hierarchy `User in RoleInTenant` (one group per role held in one tenant, `<role>@<tenant>`),
// resources in their site/org/MSP (or customer/MSP); one template per role rule, linked once
// per role-in-tenant group. The policy set is validated against the schema once and preparsed
// (`preparsePolicySet`); each decision is `statefulIsAuthorized` with the request's entities
// (principal, its groups, the resource and its ancestors) built once per request in advance.

import * as cedar from "@cedar-policy/cedar-wasm/nodejs";

import { MSP, readRepoFile } from "./scenarios.mjs";

/** The texts and namespaces of the two policies in bench/scenarios. */
const POLICIES = {
  msp: { ns: "Msp", dir: "bench/scenarios/msp" },
  site24x7: { ns: "Site24x7", dir: "bench/scenarios/site24x7" },
};

const ok = (answer, what) => {
  if (answer.type !== "success") throw new Error(`cedar-wasm: ${what}: ${JSON.stringify(answer.errors ?? answer)}`);
  return answer;
};

/** The role-in-tenant groups of a user: `[role, tenant type, tenant id]`. */
const groupsOf = (user) =>
  user.assignments.map((a) => (a.org !== undefined ? [a.role, "Org", a.org] : [a.role, "Customer", a.customer]));

/**
 * Validates and preparses one policy set: every template of the shared text, linked for each
 * role-in-tenant group of `users` (templates are named by their `@id`, the role).
 */
function preparse(name, users) {
  const { ns, dir } = POLICIES[name];
  const schema = readRepoFile(`${dir}/schema.cedarschema`);
  const parts = ok(cedar.policySetTextToParts(readRepoFile(`${dir}/policies.cedar`)), `${dir}/policies.cedar`);
  const templates = {};
  const byRole = new Map();
  parts.policy_templates.forEach((text, i) => {
    const role = ok(cedar.templateToJson(text), `template ${i}`).json.annotations?.id;
    if (role === undefined) throw new Error(`${dir}/policies.cedar: template ${i} has no @id (the role it belongs to)`);
    const id = `${role}#${i}`;
    templates[id] = text;
    byRole.set(role, [...(byRole.get(role) ?? []), id]);
  });
  const templateLinks = [];
  const linked = new Set();
  for (const u of users) {
    for (const [role, type, tenant] of groupsOf(u)) {
      const group = `${role}@${tenant}`;
      if (linked.has(group)) continue;
      linked.add(group);
      for (const templateId of byRole.get(role) ?? []) {
        templateLinks.push({
          templateId,
          newId: `${templateId}:${group}`,
          values: { "?principal": { type: `${ns}::RoleInTenant`, id: group }, "?resource": { type: `${ns}::${type}`, id: tenant } },
        });
      }
    }
  }
  const policies = { staticPolicies: parts.policies, templates, templateLinks };
  const v = ok(cedar.validate({ schema, policies, validationSettings: { mode: "strict" } }), `${dir}: validation`);
  if (v.validationErrors.length > 0) throw new Error(`cedar-wasm: ${dir} does not validate: ${JSON.stringify(v.validationErrors)}`);
  const id = `bench-${name}`;
  ok(cedar.preparsePolicySet(id, policies), `${dir}: preparse`);
  return id;
}

const uid = (type, id) => ({ type, id });

/** The principal's entities: the user in its role-in-tenant groups, and the groups. */
function userEntities(ns, user) {
  const groups = groupsOf(user).map(([role, , tenant]) => uid(`${ns}::RoleInTenant`, `${role}@${tenant}`));
  return [
    { uid: uid(`${ns}::User`, user.id), attrs: {}, parents: groups },
    ...groups.map((g) => ({ uid: g, attrs: {}, parents: [] })),
  ];
}

/** The resource's entities: the resource and its ancestors up to the MSP. */
function resourceEntities(r) {
  if (r.kind === "device") {
    const msp = uid("Msp::Msp", MSP);
    const org = uid("Msp::Org", r.org);
    const site = uid("Msp::Site", `${r.org}/${r.site}`);
    return {
      resource: uid("Msp::Device", r.id),
      entities: [
        { uid: uid("Msp::Device", r.id), attrs: {}, parents: [site] },
        { uid: site, attrs: {}, parents: [org] },
        { uid: org, attrs: {}, parents: [msp] },
        { uid: msp, attrs: {}, parents: [] },
      ],
    };
  }
  const msp = uid("Site24x7::Msp", r.msp);
  const customer = uid("Site24x7::Customer", r.customer);
  const attrs = { created_by: { __entity: uid("Site24x7::User", r.createdBy) }, modified_by_super_admin: r.modifiedBySuperAdmin };
  return {
    resource: uid("Site24x7::MaintenanceWindow", r.id),
    entities: [
      { uid: uid("Site24x7::MaintenanceWindow", r.id), attrs, parents: [customer] },
      { uid: customer, attrs: {}, parents: [msp] },
      { uid: msp, attrs: {}, parents: [] },
    ],
  };
}

/** The timed paths per case. */
export function cedarPeer(sc) {
  const users = Object.values(sc.principals);
  const sets = { msp: preparse("msp", users), site24x7: preparse("site24x7", users) };
  const context = { msp: {}, site24x7: { channel: "web_client" } };
  /** One prepared call: everything but the decision built in advance. */
  const call = (c, action, r) => {
    const ns = POLICIES[c.policy].ns;
    const { resource, entities } = resourceEntities(r);
    const req = {
      principal: uid(`${ns}::User`, sc.principals[c.principal].id),
      action: uid(`${ns}::Action`, action),
      resource,
      context: context[c.policy],
      preparsedPolicySetId: sets[c.policy],
      validateRequest: false,
      entities: [...userEntities(ns, sc.principals[c.principal]), ...entities],
    };
    return () => {
      const a = cedar.statefulIsAuthorized(req);
      if (a.type !== "success") throw new Error(`cedar-wasm: ${JSON.stringify(a.errors)}`);
      return a.response.decision === "allow";
    };
  };
  const ops = {};
  for (const c of sc.cases) {
    if (c.kind === "decision") {
      ops[c.id] = [{ path: "statefulIsAuthorized (preparsed policy set, request entities)", fn: call(c, c.action, c.resource) }];
    } else if (c.kind === "actions") {
      const calls = c.actions.map((a) => [a, call(c, a, c.resource)]);
      ops[c.id] = [{ path: "statefulIsAuthorized per action", fn: () => calls.filter(([, f]) => f()).map(([a]) => a) }];
    } else {
      const rows = c.resources.map((r) => c.actions.map((a) => [a, call(c, a, r)]));
      ops[c.id] = [{ path: "statefulIsAuthorized per resource and action", fn: () => rows.map((calls) => calls.filter(([, f]) => f()).map(([a]) => a)) }];
    }
  }
  return { name: "cedar-wasm", ops };
}

export const CEDAR_MODEL =
  "the shared texts of `bench/scenarios/{msp,site24x7}` (schema + one template per role rule): `User in RoleInTenant` (`<role>@<tenant>`), `Device in Site in Org in Msp` / `MaintenanceWindow in Customer in Msp`; templates linked per role-in-tenant group (`?principal` = the group, `?resource` = the tenant); validated against the schema once, `preparsePolicySet` once; each decision `statefulIsAuthorized` with the request's entities (user, its groups, the resource and its ancestors) built in advance, `validateRequest: false`";
