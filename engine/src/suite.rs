//! Policy test suites (`*_test.yaml`): fixtures and expected decisions, run against a compiled
//! policy. Pure: the caller reads the files. The same suites are the cross-host parity corpus.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::compile::{Source, parse_text};
use crate::decision::{AssignReason, Reason};
use crate::diag::{Diagnostic, SourceLocation, codes};
use crate::fixture::{RawPrincipal, RawResource, check_context, check_principal, check_resource};
use crate::model::{List, OrderedMap, S};
use crate::policy::{Effect, Policy};
use crate::request::{AssignRequest, Principal, PrincipalRef, Request, Resource};

#[derive(Debug, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSuite {
    #[serde(default)]
    pub(crate) suite: Option<String>,
    #[serde(default)]
    #[expect(dead_code, reason = "documentation for readers of the suite")]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) now: Option<String>,
    #[serde(default)]
    pub(crate) context: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub(crate) principals: OrderedMap<S<String>, RawPrincipal>,
    #[serde(default)]
    pub(crate) resources: OrderedMap<S<String>, RawResource>,
    #[serde(default)]
    pub(crate) contexts: OrderedMap<S<String>, serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub(crate) cases: Vec<S<RawCase>>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCase {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) principal: Option<S<serde_json::Value>>,
    #[serde(default)]
    pub(crate) action: Option<S<String>>,
    #[serde(default)]
    pub(crate) resource: Option<S<serde_json::Value>>,
    #[serde(default)]
    pub(crate) context: Option<S<serde_json::Value>>,
    #[serde(default)]
    pub(crate) expect: Option<S<String>>,
    #[serde(default)]
    pub(crate) reason: Option<S<String>>,
    #[serde(default)]
    pub(crate) matrix: Option<RawMatrixCase>,
    #[serde(default)]
    pub(crate) assign: Option<RawAssign>,
    #[serde(default)]
    pub(crate) invariants: Option<RawInvariantCase>,
    #[serde(default)]
    pub(crate) violations: Option<List<String>>,
    #[serde(default)]
    pub(crate) http: Option<RawHttpCase>,
}

/// An HTTP case: a request through the policy's route table.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpCase {
    /// Principal fixture (absent: an anonymous caller).
    #[serde(default)]
    pub(crate) principal: Option<S<serde_json::Value>>,
    /// `METHOD /raw/target?query`.
    pub(crate) request: S<String>,
    /// Request headers.
    #[serde(default)]
    pub(crate) headers: OrderedMap<String, String>,
}

/// An HTTP case of a suite, resolved (for replaying it in other hosts).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HttpCase {
    /// Case name.
    pub name: String,
    /// The principal: given in full, or the id of one filed with the policy (absent: anonymous).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<PrincipalRef>,
    /// Method.
    pub method: String,
    /// Raw request target.
    pub target: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Expected: allowed?
    pub expect_allowed: bool,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMatrixCase {
    pub(crate) actions: List<String>,
    #[serde(default)]
    pub(crate) context: Option<S<serde_json::Value>>,
    pub(crate) rows: Vec<S<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAssign {
    pub(crate) principal: S<serde_json::Value>,
    pub(crate) role: String,
    pub(crate) scope: String,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInvariantCase {
    pub(crate) principals: List<String>,
}

/// Expected and actual outcome of one case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CaseResult {
    /// Case name (matrix cells are named `name[principal resource action]`).
    pub name: String,
    /// `check`, `assign` or `invariants`.
    pub kind: String,
    /// Principal fixture name or id.
    pub principal: String,
    /// Action (or role, for `assign` cases).
    pub action: String,
    /// Resource fixture name, or the scope for `assign` cases.
    pub resource: String,
    /// Expected effect (`allow`/`deny`) or expected violations.
    pub expected: String,
    /// Actual effect or violations.
    pub got: String,
    /// Expected reason code, if the case names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_reason: Option<String>,
    /// Actual reason code.
    pub reason: String,
    /// Did the case pass?
    pub passed: bool,
    /// The decision's explanation.
    pub explanation: String,
    /// Where the case is written.
    pub source: String,
}

/// A rule the suite never exercised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Uncovered {
    /// `role`, `grant`, `deny` or `condition`.
    pub what: String,
    /// Role name, or a short description of the rule.
    pub name: String,
    /// Where it is defined.
    pub source: String,
}

/// What a set of suites exercised of one policy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Coverage {
    /// Policy name.
    pub policy: String,
    /// Roles in the policy / roles some case's covering assignment used.
    pub roles_total: usize,
    /// Roles exercised.
    pub roles_covered: usize,
    /// Grant and deny rules in the policy.
    pub rules_total: usize,
    /// Rules that decided some case or whose condition was evaluated.
    pub rules_covered: usize,
    /// Conditional rules whose condition came out both true and false.
    pub conditions_total: usize,
    /// Conditions seen both ways.
    pub conditions_both_ways: usize,
    /// (roles + rules covered) / (roles + rules), in percent.
    pub percent: f64,
    /// What was never exercised.
    pub uncovered: Vec<Uncovered>,
}

/// Tracks coverage across cases (and across suites of one policy).
#[derive(Clone, Debug, Default)]
pub struct CoverageTracker {
    roles: BTreeSet<String>,
    rules: BTreeSet<u32>,
    cond_true: BTreeSet<u32>,
    cond_false: BTreeSet<u32>,
}

/// The outcome of running one suite.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SuiteReport {
    /// Suite name (defaults to the file name).
    pub suite: String,
    /// File name as given.
    pub file: String,
    /// One result per case (matrix rows expand to one per cell).
    pub cases: Vec<CaseResult>,
}

impl SuiteReport {
    /// Number of passing cases.
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed).count()
    }
    /// Number of failing cases.
    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }
}

fn loc<T>(file: &str, s: &S<T>) -> SourceLocation {
    SourceLocation::from_saphyr(file, &s.referenced)
}

struct Runner<'a> {
    policy: &'a Policy,
    suite: &'a RawSuite,
    file: &'a str,
    diags: Vec<Diagnostic>,
    results: Vec<CaseResult>,
    cov: &'a mut CoverageTracker,
    /// When set, every check case's concrete request is recorded here.
    collect: Option<Vec<(String, Request)>>,
    /// Resolved HTTP cases, recorded alongside.
    http_cases: Vec<HttpCase>,
}

impl Runner<'_> {
    fn principal(&mut self, v: &S<serde_json::Value>) -> Option<(String, PrincipalRef)> {
        match &v.value {
            serde_json::Value::String(name) => {
                if let Some((_, p)) = self.suite.principals.0.iter().find(|(k, _)| k.value == *name) {
                    return Some((name.clone(), PrincipalRef::Inline(p.to_principal(name))));
                }
                if self.policy.principal(name).is_some() {
                    return Some((name.clone(), PrincipalRef::Id(name.clone())));
                }
                let known = self
                    .suite
                    .principals
                    .0
                    .iter()
                    .map(|(k, _)| k.value.as_str())
                    .chain(self.policy.principal_ids())
                    .collect::<Vec<_>>();
                self.diags.push(
                    Diagnostic::error(
                        codes::UNKNOWN_ROLE,
                        loc(self.file, v),
                        format!("unknown principal fixture `{name}`"),
                    )
                    .hint(
                        crate::compile::suggest(name, known.into_iter())
                            .unwrap_or_else(|| "declare it under `principals:` in the suite or the policy".into()),
                    ),
                );
                None
            }
            other => match serde_json::from_value::<Principal>(other.clone()) {
                Ok(p) => Some((p.id.clone(), PrincipalRef::Inline(p))),
                Err(e) => {
                    self.diags.push(Diagnostic::error(
                        codes::SHAPE,
                        loc(self.file, v),
                        format!("invalid principal: {e}"),
                    ));
                    None
                }
            },
        }
    }

    fn resource(&mut self, v: &S<serde_json::Value>) -> Option<(String, Resource)> {
        match &v.value {
            serde_json::Value::String(name) => match self.suite.resources.0.iter().find(|(k, _)| k.value == *name) {
                Some((_, r)) => Some((name.clone(), r.to_resource())),
                None => {
                    let hint =
                        crate::compile::suggest(name, self.suite.resources.0.iter().map(|(k, _)| k.value.as_str()))
                            .unwrap_or_else(|| "declare it under `resources:` in the suite".into());
                    self.diags.push(
                        Diagnostic::error(
                            codes::UNKNOWN_RESOURCE,
                            loc(self.file, v),
                            format!("unknown resource fixture `{name}`"),
                        )
                        .hint(hint),
                    );
                    None
                }
            },
            other => match serde_json::from_value::<Resource>(other.clone()) {
                Ok(r) => Some((r.id.clone(), r)),
                Err(e) => {
                    self.diags.push(Diagnostic::error(
                        codes::SHAPE,
                        loc(self.file, v),
                        format!("invalid resource: {e}"),
                    ));
                    None
                }
            },
        }
    }

    fn context(&mut self, v: Option<&S<serde_json::Value>>) -> Option<serde_json::Map<String, serde_json::Value>> {
        let mut ctx = self.suite.context.clone();
        if let Some(v) = v {
            let extra = match &v.value {
                serde_json::Value::String(name) => match self.suite.contexts.0.iter().find(|(k, _)| k.value == *name) {
                    Some((_, c)) => c.clone(),
                    None => {
                        self.diags.push(Diagnostic::error(
                            codes::SHAPE,
                            loc(self.file, v),
                            format!("unknown context fixture `{name}`"),
                        ));
                        return None;
                    }
                },
                serde_json::Value::Object(m) => m.clone(),
                _ => {
                    self.diags.push(Diagnostic::error(
                        codes::SHAPE,
                        loc(self.file, v),
                        "a context is a name or a mapping".into(),
                    ));
                    return None;
                }
            };
            ctx.extend(extra);
        }
        if let Some(now) = &self.suite.now
            && !ctx.contains_key("now")
            && self.policy.context_attr_index.contains_key("now")
        {
            ctx.insert("now".into(), serde_json::Value::String(now.clone()));
        }
        Some(ctx)
    }

    fn effect(&mut self, s: &S<String>) -> Option<bool> {
        match s.value.as_str() {
            "allow" => Some(true),
            "deny" => Some(false),
            other => {
                self.diags.push(Diagnostic::error(
                    codes::BAD_VALUE,
                    loc(self.file, s),
                    format!("expected `allow` or `deny`, found `{other}`"),
                ));
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments, reason = "one call site per case shape")]
    fn run_check(
        &mut self,
        name: String,
        pname: &str,
        p: &PrincipalRef,
        action: &str,
        rname: &str,
        r: &Resource,
        ctx: &serde_json::Map<String, serde_json::Value>,
        expect: bool,
        reason: Option<&S<String>>,
        at: &SourceLocation,
    ) {
        let req =
            Request { principal: p.clone(), action: action.to_owned(), resource: r.clone(), context: ctx.clone() };
        if let Some(c) = &mut self.collect {
            c.push((name.clone(), req.clone()));
        }
        let ex = self.policy.explain(&req);
        self.cov.record(&ex);
        let want_reason = reason.map(|r| r.value.clone());
        if let Some(r) = reason
            && Reason::parse(&r.value).is_none()
        {
            self.diags.push(
                Diagnostic::error(codes::BAD_VALUE, loc(self.file, r), format!("unknown reason `{}`", r.value))
                    .hint("see the reason codes in policies/README.md"),
            );
        }
        let wrong_reason = !expect && want_reason.is_none() && invalid_request_reason(ex.decision.reason);
        let passed = ex.decision.allowed == expect
            && want_reason.as_deref().is_none_or(|w| w == ex.decision.reason.as_str())
            && !wrong_reason;
        let explanation = if wrong_reason {
            wrong_reason_note(ex.decision.reason, &ex.decision.explanation)
        } else {
            ex.decision.explanation
        };
        self.results.push(CaseResult {
            name,
            kind: "check".into(),
            principal: pname.to_owned(),
            action: action.to_owned(),
            resource: rname.to_owned(),
            expected: effect_word(expect).into(),
            got: effect_word(ex.decision.allowed).into(),
            expected_reason: want_reason,
            reason: ex.decision.reason.as_str().into(),
            passed,
            explanation,
            source: at.to_string(),
        });
    }

    fn case(&mut self, idx: usize, c: &S<RawCase>) {
        let at = loc(self.file, c);
        let raw = &c.value;
        let name = raw.name.clone().unwrap_or_else(|| format!("case {}", idx + 1));
        if let Some(m) = &raw.matrix {
            let Some(ctx) = self.context(m.context.as_ref().or(raw.context.as_ref())) else { return };
            for row in &m.rows {
                let rat = loc(self.file, row);
                let cells = &row.value;
                if cells.len() != m.actions.0.len() + 2 {
                    self.diags.push(Diagnostic::error(
                        codes::SHAPE,
                        rat,
                        format!(
                            "matrix row has {} cells; expected principal, resource and {} effects",
                            cells.len(),
                            m.actions.0.len()
                        ),
                    ));
                    continue;
                }
                let (Some(pn), Some(rn)) = (cells.first(), cells.get(1)) else { continue };
                let pv = S {
                    value: serde_json::Value::String(pn.clone()),
                    referenced: row.referenced,
                    defined: row.defined,
                };
                let rv = S {
                    value: serde_json::Value::String(rn.clone()),
                    referenced: row.referenced,
                    defined: row.defined,
                };
                let (Some((pname, p)), Some((rname, r))) = (self.principal(&pv), self.resource(&rv)) else { continue };
                for action in &m.actions.0 {
                    if let Some(d) = self.unknown_action(&r, action, rat.clone()) {
                        self.diags.push(d);
                    }
                }
                for (action, eff) in m.actions.0.iter().zip(cells.iter().skip(2)) {
                    let es = S { value: eff.clone(), referenced: row.referenced, defined: row.defined };
                    let Some(expect) = self.effect(&es) else { continue };
                    self.run_check(
                        format!("{name} [{pname} {action} {rname}]"),
                        &pname,
                        &p,
                        action,
                        &rname,
                        &r,
                        &ctx,
                        expect,
                        None,
                        &rat,
                    );
                }
            }
            return;
        }
        if let Some(a) = &raw.assign {
            let Some((pname, p)) = self.principal(&a.principal) else { return };
            let Some(exp) = raw.expect.as_ref() else {
                self.diags.push(Diagnostic::error(
                    codes::SHAPE,
                    at,
                    "an `assign` case needs `expect: allow|deny`".into(),
                ));
                return;
            };
            let Some(expect) = self.effect(exp) else { return };
            let Some(ctx) = self.context(raw.context.as_ref()) else { return };
            let d = self.policy.can_assign(&AssignRequest {
                principal: p,
                role: a.role.clone(),
                scope: a.scope.clone(),
                context: ctx,
            });
            let want_reason = raw.reason.as_ref().map(|r| r.value.clone());
            if let Some(r) = &raw.reason
                && !ASSIGN_REASONS.iter().any(|x| x.as_str() == r.value)
            {
                self.diags.push(Diagnostic::error(
                    codes::BAD_VALUE,
                    loc(self.file, r),
                    format!("unknown delegation reason `{}`", r.value),
                ));
            }
            let passed = d.allowed == expect && want_reason.as_deref().is_none_or(|w| w == d.reason.as_str());
            self.results.push(CaseResult {
                name,
                kind: "assign".into(),
                principal: pname,
                action: a.role.clone(),
                resource: a.scope.clone(),
                expected: effect_word(expect).into(),
                got: effect_word(d.allowed).into(),
                expected_reason: want_reason,
                reason: d.reason.as_str().into(),
                passed,
                explanation: d.explanation,
                source: at.to_string(),
            });
            return;
        }
        if let Some(inv) = &raw.invariants {
            let mut set = Vec::new();
            for n in &inv.principals.0 {
                let v = S { value: serde_json::Value::String(n.clone()), referenced: c.referenced, defined: c.defined };
                match self.principal(&v) {
                    Some((_, PrincipalRef::Inline(p))) => set.push(p),
                    Some((_, PrincipalRef::Id(id))) => {
                        if let Some(pp) = self.policy.principal(&id) {
                            set.push(Principal {
                                id: id.clone(),
                                status: Some(pp.status().as_str().into()),
                                attributes: Default::default(),
                                assignments: pp.source.clone(),
                            });
                        }
                    }
                    None => return,
                }
            }
            let got = match self.policy.check_invariants(&set) {
                Ok(got) => got,
                Err(e) => {
                    self.diags.push(
                        Diagnostic::error(codes::BAD_ASSIGNMENT, at, format!("case `{name}`: {}", e.message()))
                            .hint("an invariant check reads every principal or fails; fix the fixture"),
                    );
                    return;
                }
            };
            let mut got_names: Vec<String> = got.iter().map(|v| v.invariant.clone()).collect();
            got_names.sort();
            got_names.dedup();
            let mut want: Vec<String> = raw.violations.as_ref().map(|v| v.0.clone()).unwrap_or_default();
            want.sort();
            want.dedup();
            let passed = got_names == want;
            self.results.push(CaseResult {
                name,
                kind: "invariants".into(),
                principal: inv.principals.0.join(","),
                action: String::new(),
                resource: String::new(),
                expected: format!("[{}]", want.join(", ")),
                got: format!("[{}]", got_names.join(", ")),
                expected_reason: None,
                reason: String::new(),
                passed,
                explanation: got.iter().map(|v| v.message.clone()).collect::<Vec<_>>().join("; "),
                source: at.to_string(),
            });
            return;
        }
        if let Some(h) = &raw.http {
            self.http_case(name, h, raw.expect.as_ref(), raw.reason.as_ref(), at);
            return;
        }
        // a single check
        let (Some(pv), Some(action), Some(rv), Some(exp)) = (&raw.principal, &raw.action, &raw.resource, &raw.expect)
        else {
            self.diags.push(Diagnostic::error(
                codes::SHAPE,
                at,
                format!(
                    "case `{name}` needs principal, action, resource and expect (or `matrix`, `assign`, `invariants`)"
                ),
            ));
            return;
        };
        let Some(expect) = self.effect(exp) else { return };
        let (Some((pname, p)), Some((rname, r))) = (self.principal(pv), self.resource(rv)) else { return };
        let Some(ctx) = self.context(raw.context.as_ref()) else { return };
        if raw.reason.is_none() {
            // A case that pins no reason tests the policy: the request must be one it can read.
            self.validate_request(
                pv,
                &p,
                rv,
                &r,
                action,
                raw.context.as_ref().map(loc_of(self.file)).unwrap_or(at.clone()),
                &ctx,
            );
        }
        self.run_check(name, &pname, &p, &action.value, &rname, &r, &ctx, expect, raw.reason.as_ref(), &at);
    }
}

fn loc_of<T>(file: &str) -> impl Fn(&S<T>) -> SourceLocation + '_ {
    move |s| loc(file, s)
}

impl Runner<'_> {
    /// Fixtures are checked once per suite, each problem at its line and column.
    fn check_fixtures(&mut self) {
        for (k, p) in &self.suite.principals.0 {
            self.diags.extend(check_principal(self.policy, self.file, k, p));
        }
        for (k, r) in &self.suite.resources.0 {
            self.diags.extend(check_resource(self.policy, self.file, &k.value, r));
        }
        for (k, c) in &self.suite.contexts.0 {
            let mut ctx = self.suite.context.clone();
            ctx.extend(c.clone());
            if let Some(d) = check_context(self.policy, &loc(self.file, k), &ctx) {
                self.diags.push(d);
            }
        }
    }

    /// An action the resource's kind does not declare: an error listing the ones it does.
    fn unknown_action(&self, r: &Resource, action: &str, at: SourceLocation) -> Option<Diagnostic> {
        let actions = self.policy.actions_of(&r.kind)?;
        if actions.iter().any(|a| a == action) {
            return None;
        }
        let hint = match crate::compile::suggest(action, actions.iter().map(String::as_str)) {
            Some(dym) => format!("{dym} the actions of `{}` are: {}", r.kind, actions.join(", ")),
            None => format!("the actions of `{}` are: {}", r.kind, actions.join(", ")),
        };
        Some(
            Diagnostic::error(
                codes::UNKNOWN_ACTION,
                at,
                format!("`{action}` is not an action of `{}`; the case would be denied `unknown_action`", r.kind),
            )
            .hint(hint),
        )
    }

    /// The parts of a check case given inline (fixtures are checked once) and its action.
    #[expect(clippy::too_many_arguments, reason = "each part of the request with its place")]
    fn validate_request(
        &mut self,
        pv: &S<serde_json::Value>,
        p: &PrincipalRef,
        rv: &S<serde_json::Value>,
        r: &Resource,
        action: &S<String>,
        ctx_at: SourceLocation,
        ctx: &serde_json::Map<String, serde_json::Value>,
    ) {
        if let (serde_json::Value::Object(_), PrincipalRef::Inline(p)) = (&pv.value, p) {
            let problem = match self.policy.prepare_principal(p) {
                Err(e) => Some(e.message().to_owned()),
                Ok(pp) => pp.ignored.first().map(|(_, why)| format!("{why}; the assignment would be ignored")),
            };
            if let Some(m) = problem {
                self.diags.push(
                    Diagnostic::error(codes::BAD_FIXTURE, loc(self.file, pv), format!("principal `{}`: {m}", p.id))
                        .hint("fix the principal, or pin the reason the case expects (`reason:`)"),
                );
            }
        }
        if let serde_json::Value::Object(_) = &rv.value
            && let Err(e) = self.policy.prepare_resource(r)
        {
            let hint = match e.reason() {
                Reason::UnknownResourceKind => Some(crate::fixture::kind_hint(self.policy, &r.kind)),
                Reason::InvalidScope => crate::fixture::scope_hint(self.policy, &r.scope),
                _ => None,
            }
            .unwrap_or_else(|| "fix the resource, or pin the reason the case expects (`reason:`)".into());
            self.diags.push(
                Diagnostic::error(codes::BAD_FIXTURE, loc(self.file, rv), format!("resource: {}", e.message()))
                    .hint(hint),
            );
        }
        if let Some(d) = self.unknown_action(r, &action.value, loc(self.file, action)) {
            self.diags.push(d);
        }
        if let Some(d) = check_context(self.policy, &ctx_at, ctx) {
            self.diags.push(d);
        }
    }

    fn http_case(
        &mut self,
        name: String,
        h: &RawHttpCase,
        expect: Option<&S<String>>,
        reason: Option<&S<String>>,
        at: SourceLocation,
    ) {
        let Some(exp) = expect else {
            self.diags.push(Diagnostic::error(codes::SHAPE, at, "an `http` case needs `expect: allow|deny`".into()));
            return;
        };
        let Some(expect) = self.effect(exp) else { return };
        let Some((method, target)) = h.request.value.split_once(' ') else {
            self.diags.push(Diagnostic::error(
                codes::SHAPE,
                loc(self.file, &h.request),
                format!("`{}` must be `METHOD /target`", h.request.value),
            ));
            return;
        };
        let principal = match &h.principal {
            None => None,
            Some(v) => match self.principal(v) {
                Some(p) => Some(p),
                None => return,
            },
        };
        if let Some(r) = reason
            && Reason::parse(&r.value).is_none()
        {
            self.diags.push(
                Diagnostic::error(codes::BAD_VALUE, loc(self.file, r), format!("unknown reason `{}`", r.value))
                    .hint("see the reason codes in policies/README.md"),
            );
        }
        let headers: Vec<(String, String)> = h.headers.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let header_refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let req = crate::route::HttpRequest { method, target: target.trim(), headers: &header_refs };
        let prepared = match principal.as_ref().map(|(_, p)| p) {
            None => Ok(None),
            Some(PrincipalRef::Inline(p)) => {
                self.policy.prepare_principal(p).map(|pp| Some(std::borrow::Cow::Owned(pp)))
            }
            Some(PrincipalRef::Id(id)) => Ok(self.policy.principal(id).map(std::borrow::Cow::Borrowed)),
        };
        let decision = match &prepared {
            Ok(pp) => self.policy.authorize_http(pp.as_deref(), &req),
            Err(e) => crate::route::HttpDecision::refused(e.reason(), e.message().to_owned()),
        };
        // coverage: the question the route asked, explained
        if let (Some((_, p)), Ok(routed)) = (&principal, self.policy.route(&req))
            && let (Some(action), Some(resource), Some(context)) =
                (routed.action(), routed.resource(), routed.context())
        {
            let q = Request {
                principal: p.clone(),
                action: action.to_owned(),
                resource: resource.clone(),
                context: context.clone(),
            };
            let ex = self.policy.explain(&q);
            self.cov.record(&ex);
        }
        let want_reason = reason.map(|r| r.value.clone());
        let wrong_reason = !expect && want_reason.is_none() && invalid_request_reason(decision.reason());
        let passed = decision.allowed() == expect
            && want_reason.as_deref().is_none_or(|w| w == decision.reason().as_str())
            && !wrong_reason;
        self.http_cases.push(HttpCase {
            name: name.clone(),
            principal: principal.as_ref().map(|(_, p)| p.clone()),
            method: method.to_owned(),
            target: target.trim().to_owned(),
            headers,
            expect_allowed: expect,
        });
        let pname = principal.map(|(n, _)| n).unwrap_or_else(|| "(anonymous)".into());
        self.results.push(CaseResult {
            name,
            kind: "http".into(),
            principal: pname,
            action: h.request.value.clone(),
            resource: decision.route().unwrap_or("").to_owned(),
            expected: effect_word(expect).into(),
            got: effect_word(decision.allowed()).into(),
            expected_reason: want_reason,
            reason: decision.reason().as_str().into(),
            passed,
            explanation: {
                let text = match (decision.action(), decision.kind(), decision.scope()) {
                    (Some(a), Some(k), Some(s)) => format!(
                        "{} -> {a} {k} at {s}: {}",
                        decision.route().unwrap_or(""),
                        decision.detail().unwrap_or(decision.reason().as_str())
                    ),
                    _ => decision.detail().unwrap_or(decision.reason().as_str()).to_owned(),
                };
                if wrong_reason { wrong_reason_note(decision.reason(), &text) } else { text }
            },
            source: at.to_string(),
        });
    }
}

const ASSIGN_REASONS: [AssignReason; 11] = [
    AssignReason::Allowed,
    AssignReason::PrincipalInactive,
    AssignReason::UnknownPrincipal,
    AssignReason::InvalidRequest,
    AssignReason::UnknownRole,
    AssignReason::NotAssignable,
    AssignReason::InvalidScope,
    AssignReason::LevelNotAllowed,
    AssignReason::NoDelegationRule,
    AssignReason::NotPermitted,
    AssignReason::RankExceedsOwn,
];

/// Reasons that say the request itself is wrong (a misspelled action, kind, attribute or
/// scope; an unreadable principal), not that the policy denies it. A case expecting `deny`
/// that is denied for one of them passes only when it pins that reason: otherwise a typo in
/// the test would make it pass for the wrong reason.
fn invalid_request_reason(r: Reason) -> bool {
    matches!(
        r,
        Reason::UnknownAction
            | Reason::UnknownResourceKind
            | Reason::UnknownPrincipal
            | Reason::InvalidScope
            | Reason::InvalidAttribute
            | Reason::InvalidRequest
    )
}

fn wrong_reason_note(r: Reason, explanation: &str) -> String {
    format!(
        "denied because the request is invalid (`{r}`), not by the policy: {explanation}; if that is what the case tests, pin it with `reason: {r}`",
        r = r.as_str()
    )
}

fn effect_word(b: bool) -> &'static str {
    if b { "allow" } else { "deny" }
}

/// Parse a test suite file (YAML, or JSON for names ending in `.json`).
pub(crate) fn parse_suite(src: &Source) -> Result<RawSuite, Box<Diagnostic>> {
    parse_text(src)
}

impl Policy {
    /// Run a test suite against this policy. Problems in the suite itself (unknown fixtures,
    /// malformed cases) are returned as diagnostics; the cases that could run still ran.
    pub fn run_suite(&self, suite: &Source, coverage: &mut CoverageTracker) -> (SuiteReport, Vec<Diagnostic>) {
        let raw = match parse_suite(suite) {
            Ok(r) => r,
            Err(d) => {
                return (
                    SuiteReport { suite: suite.name().to_owned(), file: suite.name().to_owned(), cases: Vec::new() },
                    vec![*d],
                );
            }
        };
        let (results, diags, _) = self.run_cases(&raw, suite.name(), coverage, false);
        (
            SuiteReport {
                suite: raw.suite.clone().unwrap_or_else(|| suite.name().to_owned()),
                file: suite.name().to_owned(),
                cases: results,
            },
            diags,
        )
    }
}

impl Policy {
    /// Check a test suite against this policy without reporting its results: every fixture
    /// (roles, levels, tenants, statuses, attributes, kinds, scopes) and every case (actions,
    /// fixture names, reasons, shape), each problem a diagnostic at its line and column.
    pub fn check_suite(&self, suite: &Source) -> Vec<Diagnostic> {
        match parse_suite(suite) {
            Ok(raw) => self.run_cases(&raw, suite.name(), &mut CoverageTracker::new(), false).1,
            Err(d) => vec![*d],
        }
    }

    /// Run every case of a parsed suite: results, diagnostics, and (when `collect`) the check
    /// cases' concrete requests.
    fn run_cases(
        &self,
        raw: &RawSuite,
        file: &str,
        cov: &mut CoverageTracker,
        collect: bool,
    ) -> (Vec<CaseResult>, Vec<Diagnostic>, Vec<(String, Request)>) {
        let mut runner = Runner {
            policy: self,
            suite: raw,
            file,
            diags: Vec::new(),
            results: Vec::new(),
            cov,
            collect: collect.then(Vec::new),
            http_cases: Vec::new(),
        };
        runner.check_fixtures();
        for (i, c) in raw.cases.iter().enumerate() {
            runner.case(i, c);
        }
        (runner.results, runner.diags, runner.collect.unwrap_or_default())
    }

    /// The check cases of a suite as concrete requests (fixtures resolved, suite defaults and
    /// `now` applied), named like the suite's results. Hosts replay them for parity.
    pub fn suite_requests(&self, suite: &Source) -> Result<Vec<(String, Request)>, Vec<Diagnostic>> {
        let raw = parse_suite(suite).map_err(|d| vec![*d])?;
        let (_, diags, requests) = self.run_cases(&raw, suite.name(), &mut CoverageTracker::new(), true);
        if diags.iter().any(Diagnostic::is_error) {
            return Err(diags);
        }
        Ok(requests)
    }

    /// The `http` cases of a suite, resolved (principal fixtures inlined), for replaying them
    /// through other hosts (the gateway, the edge worker).
    pub fn suite_http_cases(&self, suite: &Source) -> Result<Vec<HttpCase>, Vec<Diagnostic>> {
        let raw = parse_suite(suite).map_err(|d| vec![*d])?;
        let mut cov = CoverageTracker::new();
        let mut runner = Runner {
            policy: self,
            suite: &raw,
            file: suite.name(),
            diags: Vec::new(),
            results: Vec::new(),
            cov: &mut cov,
            collect: None,
            http_cases: Vec::new(),
        };
        for (i, c) in raw.cases.iter().enumerate() {
            if c.value.http.is_some() {
                runner.case(i, c);
            }
        }
        if !runner.diags.is_empty() {
            return Err(runner.diags);
        }
        Ok(runner.http_cases)
    }

    /// The principals, resources and contexts a suite declares as fixtures (with `id`s filled
    /// in), for generating requests over a policy.
    pub fn suite_fixtures(&self, suite: &Source) -> Result<SuiteFixtures, Vec<Diagnostic>> {
        let raw = parse_suite(suite).map_err(|d| vec![*d])?;
        let principals = raw.principals.0.iter().map(|(k, p)| p.to_principal(&k.value)).collect();
        let resources = raw.resources.0.iter().map(|(_, r)| r.to_resource()).collect();
        let mut contexts = vec![raw.context.clone()];
        for (_, c) in &raw.contexts.0 {
            let mut m = raw.context.clone();
            m.extend(c.clone());
            contexts.push(m);
        }
        if let Some(now) = &raw.now
            && self.context_attr_index.contains_key("now")
        {
            for c in &mut contexts {
                c.entry("now").or_insert_with(|| serde_json::Value::String(now.clone()));
            }
        }
        Ok(SuiteFixtures { principals, resources, contexts })
    }
}

/// Fixtures of a suite (see [`Policy::suite_fixtures`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SuiteFixtures {
    /// Principal fixtures.
    pub principals: Vec<Principal>,
    /// Resource fixtures.
    pub resources: Vec<Resource>,
    /// The default context, then each named context merged over it.
    pub contexts: Vec<serde_json::Map<String, serde_json::Value>>,
}

impl CoverageTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    fn record(&mut self, ex: &crate::decision::Explanation) {
        for s in &ex.steps {
            if s.step == "assignment"
                && s.outcome == "covers"
                && let Some(r) = &s.role
            {
                self.roles.insert(r.clone());
            }
            if let Some(rule) = s.rule {
                self.rules.insert(rule);
                match s.outcome.as_str() {
                    "condition_true" => {
                        self.cond_true.insert(rule);
                    }
                    "condition_false" | "condition_error" => {
                        self.cond_false.insert(rule);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Summarise what was exercised of `policy`.
    pub fn report(&self, policy: &Policy) -> Coverage {
        let mut uncovered = Vec::new();
        let mut roles_covered = 0;
        for r in &policy.roles {
            if self.roles.contains(&r.name) {
                roles_covered += 1;
            } else {
                uncovered.push(Uncovered { what: "role".into(), name: r.name.clone(), source: r.location.to_string() });
            }
        }
        let mut rules_covered = 0;
        let mut conditions_total = 0;
        let mut conditions_both_ways = 0;
        for (i, rule) in policy.rules.iter().enumerate() {
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            let role = rule.role.and_then(|r| policy.role(r)).map(|r| r.name.as_str()).unwrap_or("policy-wide");
            let what = if rule.effect == Effect::Grant { "grant" } else { "deny" };
            let kinds: Vec<&str> =
                rule.targets.iter().filter_map(|(k, _)| policy.kind(*k)).map(|k| k.name.as_str()).collect();
            let label = format!("{what} of `{role}` on {}", kinds.join(", "));
            if self.rules.contains(&id) {
                rules_covered += 1;
            } else {
                uncovered.push(Uncovered { what: what.into(), name: label.clone(), source: rule.location.to_string() });
            }
            if rule.cond.is_some() {
                conditions_total += 1;
                if self.cond_true.contains(&id) && self.cond_false.contains(&id) {
                    conditions_both_ways += 1;
                } else if self.rules.contains(&id) {
                    let missing = if self.cond_true.contains(&id) { "false" } else { "true" };
                    uncovered.push(Uncovered {
                        what: "condition".into(),
                        name: format!("{label}: never {missing}"),
                        source: rule.location.to_string(),
                    });
                }
            }
        }
        let total = policy.roles.len() + policy.rules.len();
        let covered = roles_covered + rules_covered;
        let percent = if total == 0 { 100.0 } else { (covered as f64) * 100.0 / (total as f64) };
        Coverage {
            policy: policy.name.clone(),
            roles_total: policy.roles.len(),
            roles_covered,
            rules_total: policy.rules.len(),
            rules_covered,
            conditions_total,
            conditions_both_ways,
            percent: (percent * 10.0).round() / 10.0,
            uncovered,
        }
    }
}
