//! regorus (Rego): the policy text of `bench/scenarios`, the roles and assignments as the
//! `data` document (indexed by role and by user and scope), the input built once per case.
//! A decision is one rule evaluation (`allow`); allowed actions and batches are one
//! evaluation each (`allowed_actions`, `batch`).

use regorus::{Engine, Value};
use serde_json::{Map, Value as Json, json};

use crate::scenario::{Case, Condition, Family, Res, Scenario, Work, msp_texts, site24x7_texts};
use crate::{Error, Peer};

fn re(e: impl std::fmt::Display) -> Error {
    Error::Rego(e.to_string())
}

/// The regorus peer.
pub struct Regorus {
    engine: Engine,
    package: &'static str,
}

/// A case for [`Regorus`]: the rule, the input, and how to read the answer.
pub struct RegoPrepared {
    rule: String,
    input: Value,
    read: Read,
}

enum Read {
    /// `allow`: a boolean.
    Bool,
    /// `allowed_actions`: a set of action names; answer each of these.
    Actions(Vec<Value>),
    /// `batch`: a set of `[id, action]`; answer each of these pairs.
    Pairs(Vec<Value>),
}

/// The `data` document of a scenario.
pub fn data(s: &Scenario) -> Json {
    let mut roles = Map::new();
    for r in &s.roles {
        let v = match s.family {
            Family::Msp => {
                let mut kinds: Map<String, Json> = Map::new();
                for g in &r.grants {
                    let e = kinds.entry(g.kind.clone()).or_insert_with(|| json!([]));
                    if let Json::Array(a) = e {
                        a.extend(g.actions.iter().map(|x| json!(x)));
                    }
                }
                Json::Object(kinds)
            }
            Family::Site24x7 => {
                let grants: Vec<Json> = r
                    .grants
                    .iter()
                    .map(|g| {
                        let mut o = json!({ "kinds": [g.kind], "actions": g.actions });
                        if let (Some(Condition::OwnUnmodified), Json::Object(m)) = (g.when, &mut o) {
                            m.insert("when".into(), json!("own_unmodified"));
                        }
                        o
                    })
                    .collect();
                json!({ "web_client_only": r.web_client_only, "grants": grants })
            }
        };
        roles.insert(r.name.clone(), v);
    }
    let mut assignments = Map::new();
    for u in &s.users {
        let mut by_scope: Map<String, Json> = Map::new();
        for a in &u.assignments {
            if let Json::Array(v) = by_scope.entry(s.tenant_scope(&a.tenant)).or_insert_with(|| json!([])) {
                v.push(json!(a.role));
            }
        }
        assignments.insert(u.id.clone(), Json::Object(by_scope));
    }
    json!({ "roles": roles, "assignments": assignments })
}

fn to_value(j: &Json) -> Result<Value, Error> {
    Value::from_json_str(&j.to_string()).map_err(re)
}

impl Regorus {
    /// Load the scenario's Rego and its generated data.
    pub fn new(s: &Scenario) -> Result<Self, Error> {
        let (text, package) = match s.family {
            Family::Msp => (msp_texts::REGO, "data.rolescope.msp"),
            Family::Site24x7 => (site24x7_texts::REGO, "data.rolescope.site24x7"),
        };
        let mut engine = Engine::new();
        engine.add_policy("policy.rego".into(), text.into()).map_err(re)?;
        engine.add_data(to_value(&data(s))?).map_err(re)?;
        Ok(Self { engine, package })
    }
}

impl Peer for Regorus {
    type Prepared = RegoPrepared;
    const NAME: &'static str = crate::names::REGORUS;

    fn prepare(&mut self, s: &Scenario, case: &Case) -> Result<RegoPrepared, Error> {
        let user = s.users.get(case.work.user()).ok_or_else(|| Error::Rego("no such user".into()))?;
        let resource = |r: &Res| {
            let mut attributes = Map::new();
            if let Some(c) = &r.created_by {
                attributes.insert("created_by".into(), json!(c));
            }
            attributes.insert("modified_by_super_admin".into(), json!(r.modified_by_super_admin));
            json!({ "kind": r.kind, "id": r.id, "scopes": s.scope_chain(r), "attributes": attributes })
        };
        let principal = match s.family {
            Family::Msp => json!(user.id),
            Family::Site24x7 => json!({ "id": user.id }),
        };
        let (rule, input, read) = match &case.work {
            Work::Decide { action, resource: r, .. } => (
                "allow",
                json!({ "principal": principal, "action": action, "resource": resource(r),
                        "context": { "channel": "web_client" } }),
                Read::Bool,
            ),
            Work::Actions { resource: r, actions, .. } => (
                "allowed_actions",
                json!({ "principal": principal, "resource": resource(r) }),
                Read::Actions(actions.iter().map(|a| Value::from(a.as_str())).collect()),
            ),
            Work::Batch { resources, actions, .. } => {
                let pairs = resources
                    .iter()
                    .flat_map(|r| actions.iter().map(move |a| (r, a)))
                    .map(|(r, a)| to_value(&json!([r.id, a])))
                    .collect::<Result<_, _>>()?;
                (
                    "batch",
                    json!({ "principal": principal, "actions": actions,
                            "resources": resources.iter().map(resource).collect::<Vec<_>>() }),
                    Read::Pairs(pairs),
                )
            }
        };
        Ok(RegoPrepared { rule: format!("{}.{rule}", self.package), input: to_value(&input)?, read })
    }

    fn run(&mut self, p: &RegoPrepared, out: &mut Vec<bool>) -> Result<(), Error> {
        out.clear();
        self.engine.set_input(p.input.clone());
        let v = self.engine.eval_rule(p.rule.clone()).map_err(re)?;
        match &p.read {
            Read::Bool => out.push(v.as_bool().map_err(re)? == &true),
            Read::Actions(want) | Read::Pairs(want) => {
                // an undefined set rule is empty
                let set = if v == Value::Undefined { None } else { Some(v.as_set().map_err(re)?) };
                out.extend(want.iter().map(|w| set.is_some_and(|s| s.contains(w))));
            }
        }
        Ok(())
    }
}
