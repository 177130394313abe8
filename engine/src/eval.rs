//! The evaluator: preparation of inputs, decisions, explanations, delegation and invariants.
//!
//! One code path decides; explanations run the same function with a recording tracer.

use std::fmt;

#[cfg(feature = "compiler")]
use rustc_hash::FxHashMap;

#[cfg(feature = "compiler")]
use crate::decision::InvariantViolation;
use crate::decision::{
    AssignDecision, AssignReason, Decision, DecisionReport, ExplainStep, Explanation, MatchedRule, Reason,
    source_string,
};
use crate::expr::Env;
use crate::policy::{
    ActionSet, Combine, Effect, KindId, Policy, PreparedAssignment, PreparedContext, PreparedPrincipal,
    PreparedResource, ScopeKey, Status, TenantAccess, bit,
};
use crate::request::{AssignRequest, Principal, PrincipalRef, Request, Resource, Tenants};
use crate::value::Value;

/// Most assignments one principal may carry.
const MAX_ASSIGNMENTS: usize = 4096;

/// A request that cannot be decided as given: it denies with [`RequestError::reason`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "compiler", derive(miette::Diagnostic), diagnostic(code(rolescope::invalid_request)))]
#[error("{message}")]
pub struct RequestError {
    reason: Reason,
    message: String,
}

impl RequestError {
    pub(crate) fn new(reason: Reason, message: String) -> Self {
        Self { reason, message }
    }
    /// The reason code a decision on this request carries.
    pub fn reason(&self) -> Reason {
        self.reason
    }
    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
    pub(crate) fn into_decision(self) -> Decision {
        Decision::deny_with(self.reason, self.message)
    }
}

/// The actions a principal may take on one resource.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AllowedActions {
    /// Allowed action names, in the kind's declaration order.
    pub allowed: Vec<String>,
}

fn is_within(prefix: &str, path: &str) -> bool {
    let (p, q) = (prefix.as_bytes(), path.as_bytes());
    q.starts_with(p) && (q.len() == p.len() || q.get(p.len()) == Some(&b'/'))
}

/// Most assignments a default deny names ([`Policy::nearest_assignments`]).
pub(crate) const NEAREST: usize = 3;

#[inline]
fn covers(a: &PreparedAssignment, scope: &ScopeKey) -> bool {
    if !scope.within(&a.scope) {
        return false;
    }
    match &a.tenants {
        None => true,
        Some(ts) => scope.depth() == a.scope.depth() || ts.iter().any(|t| scope.within(t)),
    }
}

/// What the tracer records.
pub(crate) enum Step {
    Inactive(Status),
    Assignment { index: u16, covers: bool, note: Option<&'static str> },
    Rank(i64),
    Rule { rule: u32, assignment: Option<u16>, outcome: &'static str },
}

pub(crate) trait Tracer {
    const ON: bool;
    fn push(&mut self, s: Step);
}

pub(crate) struct NoTrace;
impl Tracer for NoTrace {
    const ON: bool = false;
    #[inline(always)]
    fn push(&mut self, _: Step) {}
}

pub(crate) struct Trace(pub(crate) Vec<Step>);
impl Tracer for Trace {
    const ON: bool = true;
    fn push(&mut self, s: Step) {
        self.0.push(s);
    }
}

impl Policy {
    // ------------------------------------------------------------ preparation

    /// Check a principal against the policy. Assignments that cannot take effect (unknown role,
    /// malformed scope, role not allowed at that level) are kept aside, never applied; see
    /// [`PreparedPrincipal::ignored_assignments`].
    pub fn prepare_principal(&self, p: &Principal) -> Result<PreparedPrincipal, RequestError> {
        let status = Status::parse(p.status.as_deref()).ok_or_else(|| {
            RequestError::new(Reason::InvalidRequest, format!("unknown status `{}`", p.status.as_deref().unwrap_or("")))
        })?;
        let mut attrs: Vec<Option<Value>> = self.principal_defaults.to_vec();
        for (k, v) in &p.attributes {
            let Some(&i) = self.principal_attr_index.get(k) else {
                return Err(RequestError::new(Reason::InvalidAttribute, format!("unknown principal attribute `{k}`")));
            };
            if v.is_null() {
                continue;
            }
            let ty = self.principal_attrs.get(usize::from(i)).map(|x| x.1);
            let Some(ty) = ty else { continue };
            let val = Value::from_json(ty, v).map_err(|m| {
                RequestError::new(
                    Reason::InvalidAttribute,
                    format!("principal attribute `{k}` must be a {}: {}", m.expected, m.detail),
                )
            })?;
            if let Some(slot) = attrs.get_mut(usize::from(i)) {
                *slot = Some(val);
            }
        }
        if p.assignments.len() > MAX_ASSIGNMENTS {
            return Err(RequestError::new(Reason::InvalidRequest, format!("more than {MAX_ASSIGNMENTS} assignments")));
        }
        let mut assignments = Vec::with_capacity(p.assignments.len());
        let mut ignored = Vec::new();
        for (i, a) in p.assignments.iter().enumerate() {
            let index = u16::try_from(i).unwrap_or(u16::MAX);
            match self.prepare_assignment(index, a) {
                Ok(pa) => assignments.push(pa),
                Err(why) => ignored.push((index, why)),
            }
        }
        Ok(PreparedPrincipal {
            stamp: self.stamp,
            id: p.id.as_str().into(),
            status,
            attrs: attrs.into_boxed_slice(),
            assignments,
            ignored,
            source: p.assignments.clone(),
        })
    }

    pub(crate) fn prepare_assignment(
        &self,
        index: u16,
        a: &crate::request::Assignment,
    ) -> Result<PreparedAssignment, String> {
        let Some(&role) = self.role_index.get(&a.role) else {
            return Err(format!("assignment {index}: unknown role `{}`", a.role));
        };
        let level = self.scope_level(&a.scope).map_err(|e| format!("assignment {index} (`{}`): {e}", a.role))?;
        let r = self.role(role).ok_or_else(|| "role table is inconsistent".to_string())?;
        if r.held_at & (1u64 << level) == 0 {
            let lname = self.level(level).map(|l| l.name.as_str()).unwrap_or("?");
            return Err(format!("assignment {index}: role `{}` may not be held at level `{lname}`", a.role));
        }
        // The list as given is validated whatever the role does with it: bad data fails closed.
        let given = match &a.tenants {
            None | Some(Tenants::All) => None,
            Some(Tenants::Only(list)) => {
                let mut out: Vec<ScopeKey> = Vec::with_capacity(list.len());
                for t in list {
                    let full = if is_within(&a.scope, t) { t.clone() } else { format!("{}/{t}", a.scope) };
                    if full.len() <= a.scope.len() {
                        return Err(format!("assignment {index}: tenant `{t}` is not below `{}`", a.scope));
                    }
                    let tl = self.scope_level(&full).map_err(|e| format!("assignment {index}: tenant `{t}`: {e}"))?;
                    if let Some(want) = self.tenant_level
                        && tl != want
                    {
                        let wname = self.level(want).map(|l| l.name.as_str()).unwrap_or("?");
                        return Err(format!(
                            "assignment {index}: `{t}` is not a whole tenant; list `{wname}` nodes (tenants are assigned in their entirety)"
                        ));
                    }
                    out.push(ScopeKey::new(&full));
                }
                Some(out.into_boxed_slice())
            }
        };
        // Roles may fix how far they reach below the tenant level, whatever the assignment says.
        let above_tenants = self.tenant_level.is_some_and(|t| self.level_above(level, t));
        if above_tenants && r.tenant_access == TenantAccess::Listed && a.tenants == Some(Tenants::All) {
            return Err(format!(
                "assignment {index}: role `{}` reaches only the tenants an assignment lists (`tenant_access: listed`); list them instead of `all`",
                a.role
            ));
        }
        let tenants = match r.tenant_access {
            TenantAccess::All => None,
            TenantAccess::Listed if above_tenants => Some(given.unwrap_or_default()),
            _ => given,
        };
        Ok(PreparedAssignment { index, role, rank: r.rank, level, scope: ScopeKey::new(&a.scope), tenants })
    }

    /// Check a resource against the policy: kind declared, scope well-formed and allowed for
    /// the kind, attributes declared and typed.
    pub fn prepare_resource(&self, r: &Resource) -> Result<PreparedResource, RequestError> {
        let Some(&kid) = self.kind_index.get(&r.kind) else {
            return Err(RequestError::new(Reason::UnknownResourceKind, format!("unknown resource kind `{}`", r.kind)));
        };
        self.prepare_resource_of(kid, &r.scope, &r.id, &r.attributes)
    }

    /// [`Policy::prepare_resource`] once the kind is known (by name or by id).
    pub(crate) fn prepare_resource_of(
        &self,
        kid: KindId,
        scope: &str,
        id: &str,
        attributes: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<PreparedResource, RequestError> {
        let kind = self.kind(kid).ok_or_else(|| RequestError::new(Reason::InvalidRequest, "bad kind id".into()))?;
        let level = self
            .scope_level(scope)
            .map_err(|e| RequestError::new(Reason::InvalidScope, format!("resource scope `{scope}`: {e}")))?;
        if kind.levels & (1u64 << level) == 0 {
            let lname = self.level(level).map(|l| l.name.as_str()).unwrap_or("?");
            return Err(RequestError::new(
                Reason::InvalidScope,
                format!("a `{}` does not live at scope level `{lname}`", kind.name),
            ));
        }
        let mut attrs: Vec<Option<Value>> = self.resource_slots(kind);
        for (k, v) in attributes {
            let Some(gid) = kind.attr_names.get(k) else {
                return Err(RequestError::new(
                    Reason::InvalidAttribute,
                    format!("resource kind `{}` has no attribute `{k}`", kind.name),
                ));
            };
            if v.is_null() {
                continue;
            }
            let Some(&ty) = kind.attrs.get(gid) else { continue };
            let val = Value::from_json(ty, v).map_err(|m| {
                RequestError::new(
                    Reason::InvalidAttribute,
                    format!("resource attribute `{k}` must be a {}: {}", m.expected, m.detail),
                )
            })?;
            if let Some(slot) = attrs.get_mut(usize::from(*gid)) {
                *slot = Some(val);
            }
        }
        Ok(PreparedResource {
            stamp: self.stamp,
            kind: kid,
            id: id.into(),
            scope: ScopeKey::new(scope),
            attrs: attrs.into_boxed_slice(),
        })
    }

    /// Check request context against the policy's `attributes.context`.
    pub fn prepare_context(
        &self,
        c: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<PreparedContext, RequestError> {
        let mut attrs: Vec<Option<Value>> = self.context_defaults.to_vec();
        for (k, v) in c {
            let Some(&i) = self.context_attr_index.get(k) else {
                return Err(RequestError::new(Reason::InvalidAttribute, format!("unknown context attribute `{k}`")));
            };
            if v.is_null() {
                continue;
            }
            let Some(ty) = self.context_attrs.get(usize::from(i)).map(|x| x.1) else { continue };
            let val = Value::from_json(ty, v).map_err(|m| {
                RequestError::new(
                    Reason::InvalidAttribute,
                    format!("context attribute `{k}` must be a {}: {}", m.expected, m.detail),
                )
            })?;
            if let Some(slot) = attrs.get_mut(usize::from(i)) {
                *slot = Some(val);
            }
        }
        Ok(PreparedContext { stamp: self.stamp, attrs: attrs.into_boxed_slice() })
    }

    fn resolve_principal<'a>(
        &'a self,
        p: &PrincipalRef,
        owned: &'a mut Option<PreparedPrincipal>,
    ) -> Result<&'a PreparedPrincipal, RequestError> {
        match p {
            PrincipalRef::Id(id) => self.principals.get(id).ok_or_else(|| {
                RequestError::new(
                    Reason::UnknownPrincipal,
                    format!("no principal `{id}` is filed with policy `{}`", self.name),
                )
            }),
            PrincipalRef::Inline(p) => Ok(owned.insert(self.prepare_principal(p)?)),
        }
    }

    // ------------------------------------------------------------ decisions

    /// Decide a request given as data. Never panics; malformed parts deny with a reason.
    pub fn check(&self, req: &Request) -> Decision {
        let mut owned = None;
        match self.prepare_request(req, &mut owned) {
            Ok((p, r, c)) => self.decide(p, &req.action, &r, &c),
            Err(d) => d,
        }
    }

    fn prepare_request<'a>(
        &'a self,
        req: &Request,
        owned: &'a mut Option<PreparedPrincipal>,
    ) -> Result<(&'a PreparedPrincipal, PreparedResource, PreparedContext), Decision> {
        let p = self.resolve_principal(&req.principal, owned).map_err(RequestError::into_decision)?;
        if p.status != Status::Active {
            return Err(Decision::deny(Reason::PrincipalInactive));
        }
        let r = self.prepare_resource(&req.resource).map_err(RequestError::into_decision)?;
        let c = self.prepare_context(&req.context).map_err(RequestError::into_decision)?;
        Ok((p, r, c))
    }

    /// Were these inputs prepared by this policy (same revision)?
    #[inline]
    fn same_policy(&self, p: &PreparedPrincipal, r: &PreparedResource, ctx: &PreparedContext) -> bool {
        (p.stamp ^ self.stamp) | (r.stamp ^ self.stamp) | (ctx.stamp ^ self.stamp) == 0
    }

    /// Decide on prepared inputs: the fast path (no allocation unless the action is unknown).
    /// Inputs prepared by another policy revision deny with `invalid_request`.
    pub fn decide(&self, p: &PreparedPrincipal, action: &str, r: &PreparedResource, ctx: &PreparedContext) -> Decision {
        if !self.same_policy(p, r, ctx) {
            return Decision::deny_with(
                Reason::InvalidRequest,
                "inputs were prepared by another policy revision; prepare them again".into(),
            );
        }
        if p.status != Status::Active {
            return Decision::deny(Reason::PrincipalInactive);
        }
        let Some(a) = self.kind(r.kind).and_then(|k| k.action_index.get(action).copied()) else {
            return self.unknown_action(r.kind, action);
        };
        self.decide_inner(p, a, r, ctx, &mut NoTrace)
    }

    fn unknown_action(&self, kind: KindId, action: &str) -> Decision {
        let kname = self.kind(kind).map(|k| k.name.as_str()).unwrap_or("?");
        Decision::deny_with(Reason::UnknownAction, format!("`{action}` is not an action of `{kname}`"))
    }

    pub(crate) fn decide_inner<T: Tracer>(
        &self,
        p: &PreparedPrincipal,
        action: u8,
        r: &PreparedResource,
        ctx: &PreparedContext,
        t: &mut T,
    ) -> Decision {
        if p.status != Status::Active {
            if T::ON {
                t.push(Step::Inactive(p.status));
            }
            return Decision::deny(Reason::PrincipalInactive);
        }
        let abit = bit(action);
        let kname = self.kind(r.kind).map(|k| k.name.as_str()).unwrap_or("");
        let env = Env {
            principal_id: &p.id,
            principal_attrs: &p.attrs,
            resource_id: &r.id,
            resource_kind: kname,
            resource_scope: &r.scope.path,
            resource_attrs: &r.attrs,
            context_attrs: &ctx.attrs,
        };
        // 1. policy-wide denies
        if let Some(kr) = self.global.get(r.kind)
            && kr.deny & abit != 0
            && let Some(d) = self.first_deny(&kr.denies, abit, &env, None, t)
        {
            return d;
        }
        // 2. which assignments cover the resource's scope
        let mut mask: u64 = 0;
        let mut max_rank = i64::MIN;
        let mut any = false;
        for (i, a) in p.assignments.iter().enumerate() {
            let c = covers(a, &r.scope);
            if T::ON {
                t.push(Step::Assignment { index: a.index, covers: c, note: None });
            }
            if c {
                any = true;
                if i < 64 {
                    mask |= 1 << i;
                }
                max_rank = max_rank.max(a.rank);
            }
        }
        if !any {
            return Decision::deny(Reason::OutOfScope);
        }
        let highest = self.combine == Combine::HighestRank;
        if highest && T::ON {
            t.push(Step::Rank(max_rank));
        }
        let contributing = |i: usize, a: &PreparedAssignment| -> bool {
            let c = if i < 64 { mask & (1 << i) != 0 } else { covers(a, &r.scope) };
            c && (!highest || a.rank == max_rank)
        };
        // 3. denies of contributing roles
        for (i, a) in p.assignments.iter().enumerate() {
            if !contributing(i, a) {
                continue;
            }
            let Some(kr) = self.role(a.role).and_then(|role| role.table.get(r.kind)) else { continue };
            if kr.deny & abit != 0
                && let Some(d) = self.first_deny(&kr.denies, abit, &env, Some(a.index), t)
            {
                return d;
            }
        }
        // 4. grants of contributing roles
        let mut saw_condition = false;
        for (i, a) in p.assignments.iter().enumerate() {
            if !contributing(i, a) {
                if T::ON && highest && (i >= 64 || mask & (1 << i) != 0) {
                    t.push(Step::Assignment { index: a.index, covers: true, note: Some("outranked") });
                }
                continue;
            }
            let Some(kr) = self.role(a.role).and_then(|role| role.table.get(r.kind)) else { continue };
            if kr.allow & abit != 0 {
                let rule = kr.grants.iter().find(|e| !e.conditional && e.actions & abit != 0).map(|e| e.rule);
                if T::ON
                    && let Some(rule) = rule
                {
                    t.push(Step::Rule { rule, assignment: Some(a.index), outcome: "matched" });
                }
                return Decision {
                    allowed: true,
                    reason: Reason::Allowed,
                    rule,
                    assignment: Some(a.index),
                    detail: None,
                };
            }
            for e in &kr.grants {
                if e.actions & abit == 0 || !e.conditional {
                    continue;
                }
                let res = self.rule(e.rule).and_then(|rl| rl.cond.as_ref()).map(|c| env.eval(c));
                let outcome = match res {
                    Some(Ok(true)) => "condition_true",
                    Some(Ok(false)) => "condition_false",
                    Some(Err(_)) | None => "condition_error",
                };
                if T::ON {
                    t.push(Step::Rule { rule: e.rule, assignment: Some(a.index), outcome });
                }
                if matches!(res, Some(Ok(true))) {
                    return Decision {
                        allowed: true,
                        reason: Reason::Allowed,
                        rule: Some(e.rule),
                        assignment: Some(a.index),
                        detail: None,
                    };
                }
                saw_condition = true;
            }
        }
        Decision::deny(if saw_condition { Reason::ConditionFalse } else { Reason::NoMatchingGrant })
    }

    /// The ids of every action `p` may take on `r` (bit `i`: action id `i` of the resource's
    /// kind, see [`Policy::action_id`]), in one pass: the answer [`Policy::decide_ids`] gives
    /// for each action, without deciding each one. The covering assignments do not depend on
    /// the action, nor does a condition: each rule's condition is evaluated at most once.
    /// Inputs prepared by another policy revision, an inactive principal: no action.
    pub fn allowed_action_ids(&self, p: &PreparedPrincipal, r: &PreparedResource, ctx: &PreparedContext) -> u128 {
        let Some(kind) = self.kind(r.kind) else { return 0 };
        if !self.same_policy(p, r, ctx) || p.status != Status::Active {
            return 0;
        }
        let all = if kind.actions.len() >= 128 { ActionSet::MAX } else { (1u128 << kind.actions.len()) - 1 };
        let env = Env {
            principal_id: &p.id,
            principal_attrs: &p.attrs,
            resource_id: &r.id,
            resource_kind: &kind.name,
            resource_scope: &r.scope.path,
            resource_attrs: &r.attrs,
            context_attrs: &ctx.attrs,
        };
        // A deny whose condition cannot be evaluated applies (fail closed), as in `first_deny`.
        let denied = |entries: &[crate::policy::Entry]| -> ActionSet {
            let mut set = 0;
            for e in entries {
                if e.actions & !set == 0 {
                    continue;
                }
                let fires = match self.rule(e.rule).and_then(|rl| rl.cond.as_ref()) {
                    None => true,
                    Some(c) => !matches!(env.eval(c), Ok(false)),
                };
                if fires {
                    set |= e.actions;
                }
            }
            set
        };
        let mut deny: ActionSet = match self.global.get(r.kind) {
            Some(kr) if kr.deny != 0 => denied(&kr.denies),
            _ => 0,
        };
        let mut max_rank = i64::MIN;
        let mut any = false;
        for a in &p.assignments {
            if covers(a, &r.scope) {
                any = true;
                max_rank = max_rank.max(a.rank);
            }
        }
        if !any {
            return 0;
        }
        let highest = self.combine == Combine::HighestRank;
        let contributing = || {
            p.assignments
                .iter()
                .filter(move |a| covers(a, &r.scope) && (!highest || a.rank == max_rank))
                .filter_map(|a| self.role(a.role).and_then(|role| role.table.get(r.kind)))
        };
        for kr in contributing() {
            if kr.deny & !deny != 0 {
                deny |= denied(&kr.denies);
            }
        }
        let mut allow: ActionSet = 0;
        for kr in contributing() {
            allow |= kr.allow;
            for e in &kr.grants {
                if !e.conditional || e.actions & !allow & !deny == 0 {
                    continue;
                }
                let holds = self.rule(e.rule).and_then(|rl| rl.cond.as_ref()).map(|c| env.eval(c));
                if matches!(holds, Some(Ok(true))) {
                    allow |= e.actions;
                }
            }
        }
        allow & !deny & all
    }

    fn first_deny<T: Tracer>(
        &self,
        denies: &[crate::policy::Entry],
        abit: u128,
        env: &Env<'_>,
        assignment: Option<u16>,
        t: &mut T,
    ) -> Option<Decision> {
        for e in denies {
            if e.actions & abit == 0 {
                continue;
            }
            // A deny whose condition cannot be evaluated applies (fail closed).
            let (fires, outcome) = match self.rule(e.rule).and_then(|rl| rl.cond.as_ref()) {
                None => (true, "matched"),
                Some(c) => match env.eval(c) {
                    Ok(true) => (true, "condition_true"),
                    Ok(false) => (false, "condition_false"),
                    Err(_) => (true, "condition_error"),
                },
            };
            if T::ON {
                t.push(Step::Rule { rule: e.rule, assignment, outcome });
            }
            if fires {
                return Some(Decision {
                    allowed: false,
                    reason: Reason::ExplicitDeny,
                    rule: Some(e.rule),
                    assignment,
                    detail: None,
                });
            }
        }
        None
    }

    /// The actions `p` may take on `r`, in the kind's declaration order.
    pub fn allowed_actions(
        &self,
        p: &PreparedPrincipal,
        r: &PreparedResource,
        ctx: &PreparedContext,
    ) -> AllowedActions {
        let set = self.allowed_action_ids(p, r, ctx);
        let names = self.kind(r.kind).map_or(&[][..], |k| k.actions.as_slice());
        let allowed = names.iter().zip(0..128).filter(|(_, i)| set >> i & 1 == 1).map(|(n, _)| n.clone()).collect();
        AllowedActions { allowed }
    }

    /// For each resource, which of `actions` `p` may take: one bitmask per resource, bit `i`
    /// set when `actions[i]` is allowed (at most 64 actions). Unknown actions are never set.
    pub fn check_batch(
        &self,
        p: &PreparedPrincipal,
        actions: &[&str],
        resources: &[PreparedResource],
        ctx: &PreparedContext,
    ) -> Vec<u64> {
        let mut out = Vec::with_capacity(resources.len());
        for r in resources {
            let mut m = 0u64;
            if p.status == Status::Active
                && self.same_policy(p, r, ctx)
                && let Some(kind) = self.kind(r.kind)
            {
                for (i, name) in actions.iter().take(64).enumerate() {
                    if let Some(&a) = kind.action_index.get(*name)
                        && self.decide_inner(p, a, r, ctx, &mut NoTrace).allowed
                    {
                        m |= 1 << i;
                    }
                }
            }
            out.push(m);
        }
        out
    }

    // ------------------------------------------------------------ reports and explanations

    /// Decide a request and describe the decision with names, locations and an explanation.
    pub fn check_report(&self, req: &Request) -> DecisionReport {
        self.explain(req).decision
    }

    /// Decide a request and record how: which assignments covered the scope, which rules
    /// were tried, which decided.
    pub fn explain(&self, req: &Request) -> Explanation {
        let mut owned = None;
        let mut trace = Trace(Vec::new());
        let mut steps = Vec::new();
        #[cfg_attr(not(feature = "compiler"), expect(unused_mut, reason = "filled under feature `compiler` only"))]
        let mut absent: Vec<(u32, String)> = Vec::new();
        let (decision, principal) = match self.prepare_request(req, &mut owned) {
            Err(d) => {
                if d.reason == Reason::PrincipalInactive {
                    let status = match &req.principal {
                        PrincipalRef::Id(id) => self.principals.get(id).map(|p| p.status),
                        PrincipalRef::Inline(p) => Status::parse(p.status.as_deref()),
                    };
                    if let Some(s) = status {
                        trace.push(Step::Inactive(s));
                    }
                }
                let p = owned.as_ref().or(match &req.principal {
                    PrincipalRef::Id(id) => self.principals.get(id),
                    PrincipalRef::Inline(_) => None,
                });
                (d, p)
            }
            Ok((p, r, c)) => {
                for (i, why) in &p.ignored {
                    steps.push(ExplainStep {
                        step: "assignment".into(),
                        message: format!("ignored: {why}"),
                        source: None,
                        rule: None,
                        role: p.source.get(usize::from(*i)).map(|a| a.role.clone()),
                        outcome: "ignored".into(),
                    });
                }
                let d = match self.kind(r.kind).and_then(|k| k.action_index.get(&req.action).copied()) {
                    Some(a) => self.decide_inner(p, a, &r, &c, &mut trace),
                    None => self.unknown_action(r.kind, &req.action),
                };
                // a condition that could not be evaluated: name the attributes it lacked (an
                // authoring aid: feature `compiler`, kept out of the engine module's budget)
                #[cfg(feature = "compiler")]
                self.name_absent(&trace.0, p, &r, &c, &mut absent);
                (d, Some(p))
            }
        };
        for s in &trace.0 {
            let mut step = self.describe_step(s, principal);
            if let Step::Rule { rule, outcome: "condition_error", .. } = s
                && let Some((_, names)) = absent.iter().find(|(r, _)| r == rule)
            {
                step.message.push_str(&format!(" (the request has no `{names}`)"));
            }
            steps.push(step);
        }
        let report = self.describe(&decision, principal, &req.action, &req.resource);
        Explanation { decision: report, steps }
    }

    /// For each rule whose condition could not be evaluated: the attributes it read that the
    /// request does not carry.
    #[cfg(feature = "compiler")]
    fn name_absent(
        &self,
        trace: &[Step],
        p: &PreparedPrincipal,
        r: &PreparedResource,
        c: &PreparedContext,
        absent: &mut Vec<(u32, String)>,
    ) {
        for s in trace {
            if let Step::Rule { rule, outcome: "condition_error", .. } = s
                && let Some(cond) = self.rule(*rule).and_then(|rl| rl.cond.as_ref())
            {
                let mut names: Vec<String> = Vec::new();
                cond.walk(|e| {
                    if let crate::expr::Expr::Var(v) = e
                        && let Some(n) = self.absent_attribute(*v, p, r, c)
                        && !names.contains(&n)
                    {
                        names.push(n);
                    }
                    true
                });
                if !names.is_empty() {
                    absent.push((*rule, names.join("`, `")));
                }
            }
        }
    }

    /// `principal.NAME` (or resource, context) when the request does not carry it.
    #[cfg(feature = "compiler")]
    fn absent_attribute(
        &self,
        v: crate::expr::Var,
        p: &PreparedPrincipal,
        r: &PreparedResource,
        c: &PreparedContext,
    ) -> Option<String> {
        use crate::expr::Var;
        let (root, name, slots, i) = match v {
            Var::PrincipalAttr(i) => ("principal", &self.principal_attrs.get(usize::from(i))?.0, &p.attrs, i),
            Var::ResourceAttr(i) => ("resource", self.resource_attr_names.get(usize::from(i))?, &r.attrs, i),
            Var::ContextAttr(i) => ("context", &self.context_attrs.get(usize::from(i))?.0, &c.attrs, i),
            _ => return None,
        };
        slots.get(usize::from(i)).is_some_and(Option::is_none).then(|| format!("{root}.{name}"))
    }

    /// `role@scope` of the principal's assignment `index` (as given), with its tenants list
    /// when it has one: `role@scope (tenants: org:o1, org:o2)`.
    pub(crate) fn assignment_label(&self, p: Option<&PreparedPrincipal>, index: u16) -> Option<String> {
        let a = p?.source.get(usize::from(index))?;
        Some(match &a.tenants {
            None => format!("{}@{}", a.role, a.scope),
            Some(Tenants::All) => format!("{}@{} (tenants: all)", a.role, a.scope),
            Some(Tenants::Only(ts)) => format!("{}@{} (tenants: {})", a.role, a.scope, ts.join(", ")),
        })
    }

    fn describe_step(&self, s: &Step, p: Option<&PreparedPrincipal>) -> ExplainStep {
        match s {
            Step::Inactive(st) => ExplainStep {
                step: "status".into(),
                message: format!("principal is {}; inactive principals are denied everything", st.as_str()),
                source: None,
                rule: None,
                role: None,
                outcome: "inactive".into(),
            },
            Step::Assignment { index, covers, note } => {
                let label = self.assignment_label(p, *index).unwrap_or_else(|| format!("assignment {index}"));
                let role_name = p.and_then(|p| p.source.get(usize::from(*index))).map(|a| a.role.clone());
                let src = role_name
                    .as_ref()
                    .and_then(|n| self.role_index.get(n))
                    .and_then(|r| self.role(*r))
                    .map(|r| source_string(&r.location));
                let (message, outcome) = match (covers, note) {
                    (true, Some(n)) => {
                        (format!("{label} covers the resource but is {n} by a higher-ranked role"), (*n).to_string())
                    }
                    (true, None) => (format!("{label} covers the resource's scope"), "covers".to_string()),
                    (false, _) => (format!("{label} does not cover the resource's scope"), "skipped".to_string()),
                };
                ExplainStep { step: "assignment".into(), message, source: src, rule: None, role: role_name, outcome }
            }
            Step::Rank(r) => ExplainStep {
                step: "rank".into(),
                message: format!("highest rank among covering roles is {r}; only roles of that rank apply"),
                source: None,
                rule: None,
                role: None,
                outcome: "selected".into(),
            },
            Step::Rule { rule, assignment, outcome } => {
                let rl = self.rule(*rule);
                let effect = rl.map(|r| if r.effect == Effect::Grant { "grant" } else { "deny" }).unwrap_or("rule");
                let role = rl.and_then(|r| r.role).and_then(|r| self.role(r)).map(|r| r.name.clone());
                let via = assignment
                    .and_then(|i| self.assignment_label(p, i))
                    .map(|l| format!(" via {l}"))
                    .unwrap_or_default();
                let cond = rl.and_then(|r| r.cond_text.as_deref()).map(|c| format!(" when `{c}`")).unwrap_or_default();
                let who = role.as_deref().map(|r| format!("`{r}`")).unwrap_or_else(|| "policy-wide".into());
                ExplainStep {
                    step: effect.into(),
                    message: format!("{effect} of {who}{cond}{via}: {}", outcome.replace('_', " ")),
                    source: rl.map(|r| source_string(&r.location)),
                    rule: Some(*rule),
                    role,
                    outcome: (*outcome).into(),
                }
            }
        }
    }

    /// A rule with names and its location, through `assignment` (a label) if given.
    fn matched_rule(&self, rl: &crate::policy::Rule, assignment: Option<String>) -> MatchedRule {
        MatchedRule {
            effect: if rl.effect == Effect::Grant { "grant" } else { "deny" }.into(),
            role: rl.role.and_then(|r| self.role(r)).map(|r| r.name.clone()),
            assignment,
            condition: rl.cond_text.clone(),
            description: rl.description.clone(),
            source: source_string(&rl.location),
        }
    }

    /// Every rule of the policy, by rule id (the position): its effect, role, condition,
    /// description and `file:line:col`, no assignment. The table an [`crate::HttpDecision`]'s
    /// [`rule`](crate::HttpDecision::rule) id is looked up in: a host reads it once per policy.
    pub fn rule_table(&self) -> Vec<MatchedRule> {
        self.rules.iter().map(|rl| self.matched_rule(rl, None)).collect()
    }

    /// For a default deny (no grant applied): at most [`NEAREST`] of `p`'s assignments, the
    /// nearest to `scope` first, labelled as [`Policy::assignment_label`] does. Nearest: those
    /// covering the scope before those that do not, then the more leading scope segments an
    /// assignment's scope shares with it, the nearer (so a covering assignment held lower
    /// down comes first); ties keep the principal's order. Assignments the policy ignored
    /// (unknown role, bad scope) are not among them.
    pub(crate) fn nearest_assignments(&self, p: &PreparedPrincipal, scope: &ScopeKey) -> Vec<String> {
        let closeness = |a: &PreparedAssignment| {
            let shared = a.scope.path.split('/').zip(scope.path.split('/')).take_while(|(x, y)| x == y).count();
            std::cmp::Reverse((covers(a, scope), shared))
        };
        let mut out: Vec<u16> = Vec::new();
        while out.len() < NEAREST {
            // `min_by_key` keeps the first of equals: the principal's order breaks ties.
            let Some(a) = p.assignments.iter().filter(|a| !out.contains(&a.index)).min_by_key(|a| closeness(a)) else {
                break;
            };
            out.push(a.index);
        }
        out.into_iter().filter_map(|i| self.assignment_label(Some(p), i)).collect()
    }

    fn describe(&self, d: &Decision, p: Option<&PreparedPrincipal>, action: &str, res: &Resource) -> DecisionReport {
        let mut matched = Vec::new();
        if let Some(rl) = d.rule.and_then(|r| self.rule(r)) {
            matched.push(self.matched_rule(rl, d.assignment.and_then(|i| self.assignment_label(p, i))));
        }
        let who = p.map(|p| p.id.to_string()).unwrap_or_else(|| "principal".into());
        // A question about a kind (no id, as the UI asks) names no resource.
        let what = if res.id.is_empty() {
            format!("`{action}` on a {} at `{}`", res.kind, res.scope)
        } else {
            format!("`{action}` on {} `{}` at `{}`", res.kind, res.id, res.scope)
        };
        let explanation = match d.reason {
            Reason::Allowed => match matched.first() {
                Some(m) => format!(
                    "{who} may take {what}: {} grants it ({})",
                    m.assignment.clone().or(m.role.clone()).unwrap_or_default(),
                    m.source
                ),
                None => format!("{who} may take {what}"),
            },
            Reason::ExplicitDeny => match matched.first() {
                Some(m) => format!(
                    "{who} may not take {what}: denied by {} rule at {}{}",
                    m.role.as_deref().map(|r| format!("a `{r}`")).unwrap_or_else(|| "a policy-wide".into()),
                    m.source,
                    m.condition.as_deref().map(|c| format!(" (when `{c}`)")).unwrap_or_default()
                ),
                None => format!("{who} may not take {what}: explicitly denied"),
            },
            Reason::PrincipalInactive => {
                format!("{who} is not active; suspended and deleted principals are denied everything")
            }
            Reason::OutOfScope => format!("{who} may not take {what}: no assignment covers `{}`", res.scope),
            Reason::NoMatchingGrant => {
                format!("{who} may not take {what}: the roles held there grant no `{action}` on `{}`", res.kind)
            }
            Reason::ConditionFalse => {
                format!("{who} may not take {what}: a grant exists but its condition does not hold")
            }
            _ => format!("request denied: {}", d.detail.as_deref().unwrap_or(d.reason.as_str())),
        };
        DecisionReport { allowed: d.allowed, reason: d.reason, matched, explanation, revision: self.revision.clone() }
    }

    // ------------------------------------------------------------ delegation

    /// The highest rank among `p`'s assignments covering `scope` (`None` when none does).
    fn effective_rank(&self, p: &PreparedPrincipal, scope: &str) -> Option<i64> {
        let key = ScopeKey::new(scope);
        p.assignments.iter().filter(|a| covers(a, &key)).map(|a| a.rank).max()
    }

    /// May the principal assign `role` at `scope`? Only if it is active, holds the policy's
    /// managing permission at `scope`, the role is assignable and allowed at the scope's level,
    /// and the role does not rank above the principal's own effective rank there.
    pub fn can_assign(&self, req: &AssignRequest) -> AssignDecision {
        let no = |reason: AssignReason, explanation: String| AssignDecision { allowed: false, reason, explanation };
        let mut owned = None;
        let p = match self.resolve_principal(&req.principal, &mut owned) {
            Ok(p) => p,
            Err(e) => {
                let reason = if e.reason() == Reason::UnknownPrincipal {
                    AssignReason::UnknownPrincipal
                } else {
                    AssignReason::InvalidRequest
                };
                return no(reason, e.message().to_string());
            }
        };
        if p.status != Status::Active {
            return no(
                AssignReason::PrincipalInactive,
                format!("`{}` is {} and may assign nothing", p.id, p.status.as_str()),
            );
        }
        let Some(rid) = self.role_index.get(&req.role).copied() else {
            return no(AssignReason::UnknownRole, format!("unknown role `{}`", req.role));
        };
        let Some(role) = self.role(rid) else { return no(AssignReason::UnknownRole, "bad role id".into()) };
        if !role.assignable {
            return no(AssignReason::NotAssignable, format!("role `{}` cannot be assigned", role.name));
        }
        let level = match self.scope_level(&req.scope) {
            Ok(l) => l,
            Err(e) => return no(AssignReason::InvalidScope, format!("scope `{}`: {e}", req.scope)),
        };
        if role.held_at & (1u64 << level) == 0 {
            let lname = self.level(level).map(|l| l.name.as_str()).unwrap_or("?");
            return no(
                AssignReason::LevelNotAllowed,
                format!("role `{}` may not be held at level `{lname}`", role.name),
            );
        }
        let Some(del) = &self.delegation else {
            return no(AssignReason::NoDelegationRule, "the policy declares no `delegation` rule".into());
        };
        let ctx = match self.prepare_context(&req.context) {
            Ok(c) => c,
            Err(e) => return no(AssignReason::InvalidRequest, e.message().to_string()),
        };
        let target = PreparedResource {
            stamp: self.stamp,
            kind: del.kind,
            id: req.role.as_str().into(),
            scope: ScopeKey::new(&req.scope),
            attrs: self.kind(del.kind).map(|k| self.resource_slots(k)).unwrap_or_default().into_boxed_slice(),
        };
        let d = self.decide_inner(p, del.action, &target, &ctx, &mut NoTrace);
        let kname = self.kind(del.kind).map(|k| k.name.as_str()).unwrap_or("?");
        let aname =
            self.kind(del.kind).and_then(|k| k.actions.get(usize::from(del.action))).map(String::as_str).unwrap_or("?");
        if !d.allowed {
            return no(
                AssignReason::NotPermitted,
                format!("`{}` may not `{aname}` `{kname}` at `{}` ({})", p.id, req.scope, d.reason),
            );
        }
        let own = self.effective_rank(p, &req.scope).unwrap_or(i64::MIN);
        let too_high = if del.strictly_below { role.rank >= own } else { role.rank > own };
        if too_high {
            let rel = if del.strictly_below { "at or above" } else { "above" };
            return no(
                AssignReason::RankExceedsOwn,
                format!(
                    "role `{}` (rank {}) ranks {rel} `{}`'s own rank {own} at `{}`",
                    role.name, role.rank, p.id, req.scope
                ),
            );
        }
        AssignDecision {
            allowed: true,
            reason: AssignReason::Allowed,
            explanation: format!("`{}` may assign `{}` at `{}`", p.id, role.name, req.scope),
        }
    }

    // ------------------------------------------------------------ invariants

    /// Which of the policy's invariants the given set of principals breaks (e.g. "at least one
    /// active principal holds `admin_with_billing` at each MSP"). Fails closed: a principal
    /// that cannot be read (unknown status, a wrongly typed attribute, an assignment that
    /// cannot take effect) is an error naming it, never a principal counted as holding nothing.
    /// (Feature `compiler`: an authoring and audit question, kept out of the WebAssembly engine
    /// module's size budget.)
    #[cfg(feature = "compiler")]
    pub fn check_invariants(&self, principals: &[Principal]) -> Result<Vec<InvariantViolation>, RequestError> {
        let mut prepared: Vec<PreparedPrincipal> = Vec::with_capacity(principals.len());
        for p in principals {
            let named = |e: &str| RequestError::new(Reason::InvalidRequest, format!("principal `{}`: {e}", p.id));
            let pp = self.prepare_principal(p).map_err(|e| named(e.message()))?;
            if let Some((_, why)) = pp.ignored.first() {
                return Err(named(why));
            }
            prepared.push(pp);
        }
        let mut out = Vec::new();
        for inv in &self.invariants {
            // nodes of the invariant's level mentioned by any assignment, in first-seen order
            let mut nodes: Vec<String> = Vec::new();
            let mut counts: FxHashMap<String, u32> = FxHashMap::default();
            for p in &prepared {
                for a in &p.assignments {
                    if let Some(node) = self.ancestor_at(&a.scope.path, inv.level)
                        && !counts.contains_key(&node)
                    {
                        counts.insert(node.clone(), 0);
                        nodes.push(node);
                    }
                }
            }
            for p in &prepared {
                if p.status != Status::Active {
                    continue;
                }
                let mut seen: Vec<&str> = Vec::new();
                for a in &p.assignments {
                    if a.level == inv.level && inv.roles.contains(&a.role) && !seen.contains(&&*a.scope.path) {
                        seen.push(&a.scope.path);
                        if let Some(c) = counts.get_mut(&*a.scope.path) {
                            *c += 1;
                        }
                    }
                }
            }
            let roles: Vec<&str> = inv.roles.iter().filter_map(|r| self.role(*r)).map(|r| r.name.as_str()).collect();
            let lname = self.level(inv.level).map(|l| l.name.as_str()).unwrap_or("?");
            if nodes.is_empty() {
                out.push(InvariantViolation {
                    invariant: inv.name.clone(),
                    scope: None,
                    found: 0,
                    required: inv.at_least,
                    message: inv.description.clone().unwrap_or_else(|| {
                        format!("no active principal holds {} at any `{lname}`", roles.join(" or "))
                    }),
                });
            }
            for n in nodes {
                let found = counts.get(&n).copied().unwrap_or(0);
                if found < inv.at_least {
                    out.push(InvariantViolation {
                        invariant: inv.name.clone(),
                        message: format!(
                            "`{n}` needs at least {} active principal(s) holding {}, found {found}",
                            inv.at_least,
                            roles.join(" or ")
                        ),
                        scope: Some(n),
                        found,
                        required: inv.at_least,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The prefix of `scope` that ends at a node of `level`, if the path passes through one.
    #[cfg(feature = "compiler")]
    fn ancestor_at(&self, scope: &str, level: u8) -> Option<String> {
        let lname = &self.level(level)?.name;
        let mut end = 0;
        for seg in scope.split('/') {
            end += seg.len();
            if seg.split_once(':').is_some_and(|(l, _)| l == lname) {
                return scope.get(..end).map(str::to_owned);
            }
            end += 1;
        }
        None
    }
}

impl fmt::Display for AllowedActions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.allowed.join(", "))
    }
}
