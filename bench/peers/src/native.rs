//! rolescope itself: the native engine (prepared principal and resources) and the gateway's
//! wasmtime host of the engine module (`target/wasm/rolescope.wasm`).

use rolescope_engine::{Policy, PreparedPrincipal, PreparedResource, Principal, Resource, Source};
use rolescope_gateway::{Config, Handle, Host, Query, WasmEngine};
use serde_json::{Map, Value};

use crate::scenario::{Case, Res, Scenario, User, Work};
use crate::{Error, Peer};

fn rs(e: impl std::fmt::Display) -> Error {
    Error::Rolescope(e.to_string())
}

/// The policy's role files, compiled.
fn sources(s: &Scenario) -> Vec<Source> {
    s.sources.iter().map(|(name, text)| Source::new(name.clone(), text.clone())).collect()
}

/// The engine's principal for a user.
pub fn principal(s: &Scenario, u: &User) -> Principal {
    let assignments = u
        .assignments
        .iter()
        .map(|a| rolescope_engine::Assignment { role: a.role.clone(), scope: s.tenant_scope(&a.tenant), tenants: None })
        .collect();
    Principal { id: u.id.clone(), status: None, attributes: Map::new(), assignments }
}

fn attributes(r: &Res) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(c) = &r.created_by {
        m.insert("created_by".into(), Value::String(c.clone()));
    }
    if r.modified_by_super_admin {
        m.insert("modified_by_super_admin".into(), Value::Bool(true));
    }
    m
}

/// The engine's resource.
pub fn resource(s: &Scenario, r: &Res) -> Resource {
    Resource { kind: r.kind.clone(), id: r.id.clone(), scope: s.scope(r), attributes: attributes(r) }
}

fn user(s: &Scenario, i: usize) -> Result<&User, Error> {
    s.users.get(i).ok_or_else(|| Error::Rolescope(format!("no user {i}")))
}

/// rolescope, native: `Policy::decide` on a prepared principal and resource,
/// `allowed_actions`, `check_batch`.
pub struct Native {
    policy: Policy,
}

/// A case for [`Native`] (`R` = [`PreparedResource`]) or [`NativeStrings`] (`R` =
/// [`Resource`]): the principal prepared, the resources in the engine's form `R`.
pub enum NativePrepared<R> {
    /// One decision.
    Decide(PreparedPrincipal, String, R),
    /// Allowed actions of one resource, and the actions asked about.
    Actions(PreparedPrincipal, R, Vec<String>),
    /// A batch.
    Batch(PreparedPrincipal, Vec<String>, Vec<R>),
}

/// Prepare the principal of `case`, and its resources with `resource`.
fn prepare_case<R>(
    policy: &Policy,
    s: &Scenario,
    case: &Case,
    resource: impl Fn(&Res) -> Result<R, Error>,
) -> Result<NativePrepared<R>, Error> {
    let p = policy.prepare_principal(&principal(s, user(s, case.work.user())?)).map_err(rs)?;
    Ok(match &case.work {
        Work::Decide { action, resource: r, .. } => NativePrepared::Decide(p, action.clone(), resource(r)?),
        Work::Actions { resource: r, actions, .. } => NativePrepared::Actions(p, resource(r)?, actions.clone()),
        Work::Batch { resources, actions, .. } => {
            NativePrepared::Batch(p, actions.clone(), resources.iter().map(resource).collect::<Result<_, _>>()?)
        }
    })
}

impl Native {
    /// Compile the scenario's policy.
    pub fn new(s: &Scenario) -> Result<Self, Error> {
        let policy = Policy::compile(&sources(s)).map_err(|e| rs(format!("{:?}", e.diagnostics())))?;
        Ok(Self { policy })
    }

    /// The compiled policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

impl Peer for Native {
    type Prepared = NativePrepared<PreparedResource>;
    const NAME: &'static str = crate::names::NATIVE;

    fn prepare(&mut self, s: &Scenario, case: &Case) -> Result<Self::Prepared, Error> {
        let policy = &self.policy;
        prepare_case(policy, s, case, |r| policy.prepare_resource(&resource(s, r)).map_err(rs))
    }

    fn run(&mut self, p: &Self::Prepared, out: &mut Vec<bool>) -> Result<(), Error> {
        out.clear();
        let ctx = self.policy.empty_context();
        match p {
            NativePrepared::Decide(p, action, r) => out.push(self.policy.decide(p, action, r, ctx).allowed()),
            NativePrepared::Actions(p, r, actions) => {
                let allowed = self.policy.allowed_actions(p, r, ctx).allowed;
                out.extend(actions.iter().map(|a| allowed.contains(a)));
            }
            NativePrepared::Batch(p, actions, resources) => {
                let names: Vec<&str> = actions.iter().map(String::as_str).collect();
                for mask in self.policy.check_batch(p, &names, resources, ctx) {
                    out.extend((0..names.len()).map(|i| mask & (1 << i) != 0));
                }
            }
        }
        Ok(())
    }
}

/// rolescope, native, from request data: the resource given as strings (kind, scope, id,
/// attributes) and prepared per call (`prepare_resource`, then `decide`, `allowed_actions` or
/// `check_batch`), as a host that receives a resource per request does; the principal is
/// prepared once.
pub struct NativeStrings {
    native: Native,
}

impl NativeStrings {
    /// Compile the scenario's policy.
    pub fn new(s: &Scenario) -> Result<Self, Error> {
        Ok(Self { native: Native::new(s)? })
    }
}

impl Peer for NativeStrings {
    type Prepared = NativePrepared<Resource>;
    const NAME: &'static str = crate::names::FROM_STRINGS;

    fn prepare(&mut self, s: &Scenario, case: &Case) -> Result<Self::Prepared, Error> {
        prepare_case(&self.native.policy, s, case, |r| Ok(resource(s, r)))
    }

    fn run(&mut self, p: &Self::Prepared, out: &mut Vec<bool>) -> Result<(), Error> {
        out.clear();
        let policy = &self.native.policy;
        let ctx = policy.empty_context();
        match p {
            NativePrepared::Decide(p, action, r) => {
                out.push(policy.decide(p, action, &policy.prepare_resource(r).map_err(rs)?, ctx).allowed());
            }
            NativePrepared::Actions(p, r, actions) => {
                let allowed = policy.allowed_actions(p, &policy.prepare_resource(r).map_err(rs)?, ctx).allowed;
                out.extend(actions.iter().map(|a| allowed.contains(a)));
            }
            NativePrepared::Batch(p, actions, resources) => {
                let prepared = resources.iter().map(|r| policy.prepare_resource(r)).collect::<Result<Vec<_>, _>>();
                let names: Vec<&str> = actions.iter().map(String::as_str).collect();
                for mask in policy.check_batch(p, &names, &prepared.map_err(rs)?, ctx) {
                    out.extend((0..names.len()).map(|i| mask & (1 << i) != 0));
                }
            }
        }
        Ok(())
    }
}

/// rolescope through the gateway's wasmtime host (the npm package's engine module, plain
/// ABI): one `Host::decide` per question (the host has no allowed-actions or batch call).
pub struct Wasmtime {
    /// Keeps the module and the bundle alive.
    _engine: WasmEngine,
    host: Host,
    handles: Vec<Handle>,
}

/// One question for [`Wasmtime`] (owned; the host's [`Query`] borrows it).
pub struct WasmQuestion {
    action: String,
    kind: String,
    scope: String,
    id: String,
    attributes: Map<String, Value>,
}

/// A case for [`Wasmtime`]: the principal's handle index and its questions.
pub struct WasmPrepared {
    handle: usize,
    questions: Vec<WasmQuestion>,
}

impl Wasmtime {
    /// Start the host on `module` (the engine module's bytes) with the scenario's policy
    /// bundle loaded and a handle for every user.
    pub fn new(s: &Scenario, module: &[u8]) -> Result<Self, Error> {
        let wt = |e: rolescope_gateway::Error| Error::Wasmtime(e.to_string());
        let (_, bundle) = Policy::bundle(&sources(s)).map_err(|e| rs(format!("{:?}", e.diagnostics())))?;
        // a long deadline: on a loaded machine a descheduled thread must not abort the run
        let engine =
            WasmEngine::new(module, Config::default().call_deadline(std::time::Duration::from_secs(10))).map_err(wt)?;
        engine.load(&bundle).map_err(wt)?;
        let mut host = engine.host();
        let handles = s.users.iter().map(|u| host.principal(&principal(s, u))).collect::<Result<_, _>>().map_err(wt)?;
        Ok(Self { _engine: engine, host, handles })
    }
}

impl Peer for Wasmtime {
    type Prepared = WasmPrepared;
    const NAME: &'static str = crate::names::WASMTIME;

    fn prepare(&mut self, s: &Scenario, case: &Case) -> Result<WasmPrepared, Error> {
        let q = |r: &Res, action: &str| WasmQuestion {
            action: action.into(),
            kind: r.kind.clone(),
            scope: s.scope(r),
            id: r.id.clone(),
            attributes: attributes(r),
        };
        let questions = match &case.work {
            Work::Decide { action, resource, .. } => vec![q(resource, action)],
            Work::Actions { resource, actions, .. } => actions.iter().map(|a| q(resource, a)).collect(),
            Work::Batch { resources, actions, .. } => {
                resources.iter().flat_map(|r| actions.iter().map(move |a| (r, a))).map(|(r, a)| q(r, a)).collect()
            }
        };
        Ok(WasmPrepared { handle: case.work.user(), questions })
    }

    fn run(&mut self, p: &WasmPrepared, out: &mut Vec<bool>) -> Result<(), Error> {
        out.clear();
        let handle = self.handles.get(p.handle).ok_or_else(|| Error::Wasmtime(format!("no handle {}", p.handle)))?;
        for q in &p.questions {
            let query = Query::new(&q.action, &q.kind, &q.scope).id(&q.id).attributes(&q.attributes);
            let d = self.host.decide(handle, &query).map_err(|e| Error::Wasmtime(e.to_string()))?;
            out.push(d.allowed());
        }
        Ok(())
    }
}
