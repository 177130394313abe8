//! casbin (Rust): RBAC with domains, the tenant as the domain. `g, <user>, <role>, <tenant>`
//! for every assignment; `p, <role>, <kind>, <action>` for every granted action (Site24x7:
//! plus the ownership condition and the channel as columns the matcher reads). One
//! `enforce` per question.

use casbin::{CoreApi, DefaultModel, Enforcer, StringAdapter};
use std::fmt::Write as _;

use crate::scenario::{Case, Condition, Family, Res, Scenario, Work, msp_texts, site24x7_texts};
use crate::{Error, Peer, block_on};

fn ca(e: impl std::fmt::Display) -> Error {
    Error::Casbin(e.to_string())
}

/// The casbin peer.
pub struct Casbin {
    enforcer: Enforcer,
    family: Family,
}

/// One casbin request (`r = sub, dom, obj, act[, owner, super_modified, channel]`).
pub struct CasbinRequest {
    sub: String,
    dom: String,
    obj: String,
    act: String,
    owner: String,
    super_modified: &'static str,
}

/// A case for [`Casbin`]: its requests, in answer order.
pub struct CasbinPrepared(Vec<CasbinRequest>);

/// The policy lines (CSV) of a scenario.
pub fn policy_lines(s: &Scenario) -> String {
    let mut csv = String::new();
    for role in &s.roles {
        for g in &role.grants {
            for a in &g.actions {
                match s.family {
                    Family::Msp => {
                        let _ = writeln!(csv, "p, {}, {}, {a}", role.name, g.kind);
                    }
                    Family::Site24x7 => {
                        let cond = match g.when {
                            None => "any",
                            Some(Condition::OwnUnmodified) => "own_unmodified",
                        };
                        let channel = if role.web_client_only { "web_client" } else { "*" };
                        let _ = writeln!(csv, "p, {}, {}, {a}, {cond}, {channel}", role.name, g.kind);
                    }
                }
            }
        }
    }
    for u in &s.users {
        for a in &u.assignments {
            let _ = writeln!(csv, "g, {}, {}, {}", u.id, a.role, a.tenant);
        }
    }
    csv
}

impl Casbin {
    /// Load the scenario's model and its generated policy lines.
    pub fn new(s: &Scenario) -> Result<Self, Error> {
        let model_text = match s.family {
            Family::Msp => msp_texts::CASBIN_MODEL,
            Family::Site24x7 => site24x7_texts::CASBIN_MODEL,
        };
        let enforcer = block_on(async {
            let model = DefaultModel::from_str(model_text).await.map_err(ca)?;
            Enforcer::new(model, StringAdapter::new(policy_lines(s))).await.map_err(ca)
        })?;
        Ok(Self { enforcer, family: s.family })
    }
}

impl Peer for Casbin {
    type Prepared = CasbinPrepared;
    const NAME: &'static str = crate::names::CASBIN;

    fn prepare(&mut self, s: &Scenario, case: &Case) -> Result<CasbinPrepared, Error> {
        let user = s.users.get(case.work.user()).ok_or_else(|| Error::Casbin("no such user".into()))?;
        let req = |r: &Res, a: &str| CasbinRequest {
            sub: user.id.clone(),
            dom: r.tenant.clone(),
            obj: r.kind.clone(),
            act: a.into(),
            owner: r.created_by.clone().unwrap_or_default(),
            super_modified: if r.modified_by_super_admin { "true" } else { "false" },
        };
        Ok(CasbinPrepared(match &case.work {
            Work::Decide { action, resource, .. } => vec![req(resource, action)],
            Work::Actions { resource, actions, .. } => actions.iter().map(|a| req(resource, a)).collect(),
            Work::Batch { resources, actions, .. } => {
                resources.iter().flat_map(|r| actions.iter().map(move |a| (r, a))).map(|(r, a)| req(r, a)).collect()
            }
        }))
    }

    fn run(&mut self, p: &CasbinPrepared, out: &mut Vec<bool>) -> Result<(), Error> {
        out.clear();
        for r in &p.0 {
            let allowed = match self.family {
                Family::Msp => self.enforcer.enforce((&r.sub, &r.dom, &r.obj, &r.act)),
                Family::Site24x7 => {
                    self.enforcer.enforce((&r.sub, &r.dom, &r.obj, &r.act, &r.owner, r.super_modified, "web_client"))
                }
            }
            .map_err(ca)?;
            out.push(allowed);
        }
        Ok(())
    }
}
