//! cedar-policy: an entity hierarchy. `User in RoleInTenant` (one group per role held in one
//! tenant, id `<role>@<tenant>`), resources `in` their site (or monitor group), tenant and MSP;
//! one policy template per role (`@id`), linked once per role-in-tenant group (`?principal` =
//! the group, `?resource` = the tenant). Requests are built once; a decision is one
//! `Authorizer::is_authorized` over the whole policy set and entity store.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId, PolicySet, Request,
    RestrictedExpression, Schema, SlotId,
};

use crate::scenario::{Case, Family, Res, Scenario, Work, msp_texts, site24x7_texts};
use crate::{Error, Peer};

fn ce(e: impl std::fmt::Display) -> Error {
    Error::Cedar(e.to_string())
}

/// The Cedar peer.
pub struct Cedar {
    authorizer: Authorizer,
    policies: PolicySet,
    entities: Entities,
    ns: &'static str,
}

/// A case for [`Cedar`]: its requests, in answer order.
pub struct CedarPrepared(Vec<Request>);

fn uid(ns: &str, ty: &str, id: &str) -> Result<EntityUid, Error> {
    let t = EntityTypeName::from_str(&format!("{ns}::{ty}")).map_err(ce)?;
    Ok(EntityUid::from_type_name_and_id(t, EntityId::new(id)))
}

impl Cedar {
    /// Parse the scenario's schema and templates, link every role-in-tenant group, and build
    /// the entity store (users, groups, MSP, tenants, sites and every resource the cases name).
    pub fn new(s: &Scenario) -> Result<Self, Error> {
        let (ns, schema_text, policy_text, tenant_ty, group_ty) = match s.family {
            Family::Msp => ("Msp", msp_texts::CEDAR_SCHEMA, msp_texts::CEDAR_POLICIES, "Org", "Site"),
            Family::Site24x7 => {
                ("Site24x7", site24x7_texts::CEDAR_SCHEMA, site24x7_texts::CEDAR_POLICIES, "Customer", "MonitorGroup")
            }
        };
        let policy_text = s.cedar_templates.as_deref().unwrap_or(policy_text);
        let (schema, _) = Schema::from_cedarschema_str(schema_text).map_err(ce)?;
        let templates = PolicySet::from_str(policy_text).map_err(ce)?;
        // role name -> its templates
        let mut by_role: HashMap<String, Vec<PolicyId>> = HashMap::new();
        for t in templates.templates() {
            let role = t.annotation("id").ok_or_else(|| Error::Cedar(format!("template {} has no @id", t.id())))?;
            by_role.entry(role.to_owned()).or_default().push(t.id().clone());
        }
        let mut policies = templates;
        let msp = uid(ns, "Msp", &s.msp)?;
        let mut entities: Vec<Entity> = vec![Entity::with_uid(msp.clone())];
        for t in &s.tenants {
            entities.push(Entity::new_no_attrs(uid(ns, tenant_ty, t)?, HashSet::from([msp.clone()])));
        }
        let mut groups: HashSet<(String, String)> = HashSet::new();
        for u in &s.users {
            let mut parents = HashSet::new();
            for a in &u.assignments {
                let group = uid(ns, "RoleInTenant", &format!("{}@{}", a.role, a.tenant))?;
                parents.insert(group.clone());
                if !groups.insert((a.role.clone(), a.tenant.clone())) {
                    continue;
                }
                entities.push(Entity::with_uid(group.clone()));
                let tenant = uid(ns, tenant_ty, &a.tenant)?;
                for (i, t) in by_role.get(&a.role).into_iter().flatten().enumerate() {
                    let link = PolicyId::new(format!("{}@{}#{i}", a.role, a.tenant));
                    let vals =
                        HashMap::from([(SlotId::principal(), group.clone()), (SlotId::resource(), tenant.clone())]);
                    policies.link(t.clone(), link, vals).map_err(ce)?;
                }
            }
            entities.push(Entity::new_no_attrs(uid(ns, "User", &u.id)?, parents));
        }
        // the resources the cases name, and their sites
        let mut seen = HashSet::new();
        for r in s.cases.iter().flat_map(|c| c.work.resources()) {
            if !seen.insert((r.kind.clone(), r.id.clone())) {
                continue;
            }
            let tenant = uid(ns, tenant_ty, &r.tenant)?;
            let mut parents = HashSet::from([tenant.clone()]);
            if let Some(g) = &r.group {
                let site = uid(ns, group_ty, &format!("{}/{g}", r.tenant))?;
                if seen.insert((group_ty.to_owned(), format!("{}/{g}", r.tenant))) {
                    entities.push(Entity::new_no_attrs(site.clone(), HashSet::from([tenant])));
                }
                parents.insert(site);
            }
            let mut attrs = HashMap::new();
            if s.family == Family::Site24x7 {
                let by = r.created_by.as_deref().unwrap_or("");
                attrs.insert("created_by".to_owned(), RestrictedExpression::new_entity_uid(uid(ns, "User", by)?));
                attrs.insert(
                    "modified_by_super_admin".to_owned(),
                    RestrictedExpression::new_bool(r.modified_by_super_admin),
                );
            }
            entities.push(Entity::new(resource_uid(ns, r)?, attrs, parents).map_err(ce)?);
        }
        let entities = Entities::from_entities(entities, Some(&schema)).map_err(ce)?;
        Ok(Self { authorizer: Authorizer::new(), policies, entities, ns })
    }

    /// The number of policies (templates and links) in the set.
    pub fn policy_count(&self) -> usize {
        self.policies.policies().count() + self.policies.templates().count()
    }
}

fn resource_uid(ns: &str, r: &Res) -> Result<EntityUid, Error> {
    let ty = match r.kind.as_str() {
        "device" => "Device",
        "maintenance_window" => "MaintenanceWindow",
        other => return Err(Error::Cedar(format!("no entity type for kind `{other}`"))),
    };
    uid(ns, ty, &r.id)
}

impl Peer for Cedar {
    type Prepared = CedarPrepared;
    const NAME: &'static str = crate::names::CEDAR;

    fn prepare(&mut self, s: &Scenario, case: &Case) -> Result<CedarPrepared, Error> {
        let ns = self.ns;
        let user = s.users.get(case.work.user()).ok_or_else(|| Error::Cedar("no such user".into()))?;
        let principal = uid(ns, "User", &user.id)?;
        let context = || match s.family {
            Family::Msp => Ok(Context::empty()),
            Family::Site24x7 => {
                Context::from_pairs([("channel".to_owned(), RestrictedExpression::new_string("web_client".to_owned()))])
                    .map_err(ce)
            }
        };
        let request = |r: &Res, a: &str| -> Result<Request, Error> {
            let action = EntityUid::from_str(&format!("{ns}::Action::\"{a}\"")).map_err(ce)?;
            Request::new(principal.clone(), action, resource_uid(ns, r)?, context()?, None).map_err(ce)
        };
        let requests = match &case.work {
            Work::Decide { action, resource, .. } => vec![request(resource, action)?],
            Work::Actions { resource, actions, .. } => {
                actions.iter().map(|a| request(resource, a)).collect::<Result<_, _>>()?
            }
            Work::Batch { resources, actions, .. } => resources
                .iter()
                .flat_map(|r| actions.iter().map(move |a| (r, a)))
                .map(|(r, a)| request(r, a))
                .collect::<Result<_, _>>()?,
        };
        Ok(CedarPrepared(requests))
    }

    fn run(&mut self, p: &CedarPrepared, out: &mut Vec<bool>) -> Result<(), Error> {
        out.clear();
        for r in &p.0 {
            let response = self.authorizer.is_authorized(r, &self.policies, &self.entities);
            if let Some(e) = response.diagnostics().errors().next() {
                return Err(Error::Cedar(e.to_string()));
            }
            out.push(response.decision() == Decision::Allow);
        }
        Ok(())
    }
}
