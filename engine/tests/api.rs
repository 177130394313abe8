//! Public-API tests: only `rolescope_engine::*` is used here. Examples of every entry point,
//! diagnostics as data, and property tests over generated policies and requests.

#![expect(clippy::expect_used, clippy::indexing_slicing, reason = "test helpers fail loudly")]

use proptest::prelude::*;
use rolescope_engine::{
    AssignReason, AssignRequest, Assignment, Policy, Principal, PrincipalRef, Reason, Request, Resource, Severity,
    Source, Tenants,
};

const POLICY: &str = r#"
policy: api-test
scopes:
  msp: {}
  org: { parent: msp, tenant: true }
  site: { parent: org }
attributes:
  principal: { groups: set<string> }
resources:
  device:
    actions: [view, update, delete]
    attributes: { created_by: string }
  admin: { actions: [view, assign_role], scopes: [msp, org] }
roles:
  boss: { rank: 10, held_at: [msp], grants: [{ resources: ["*"], actions: ["*"] }] }
  tech:
    rank: 5
    grants:
      - { resources: [device], actions: [view] }
      - { resources: [device], actions: [update, delete], when: resource.created_by == principal.id }
  owner: { rank: 99, assignable: false, held_at: [msp], includes: [boss] }
delegation: { resource: admin, action: assign_role }
"#;

fn policy() -> Policy {
    Policy::compile(&[Source::new("p.yaml", POLICY)]).expect("compiles")
}

fn principal(id: &str, assignments: &[(&str, &str)]) -> Principal {
    Principal {
        id: id.into(),
        status: None,
        attributes: Default::default(),
        assignments: assignments
            .iter()
            .map(|(r, s)| Assignment { role: (*r).into(), scope: (*s).into(), tenants: None })
            .collect(),
    }
}

fn request(p: Principal, action: &str, scope: &str, created_by: Option<&str>) -> Request {
    let mut attributes = serde_json::Map::new();
    if let Some(c) = created_by {
        attributes.insert("created_by".into(), c.into());
    }
    Request {
        principal: PrincipalRef::Inline(p),
        action: action.into(),
        resource: Resource { kind: "device".into(), id: "d".into(), scope: scope.into(), attributes },
        context: Default::default(),
    }
}

#[test]
fn check_report_and_explain_agree() {
    let pol = policy();
    let req = request(principal("t", &[("tech", "msp:a/org:o1")]), "update", "msp:a/org:o1/site:s", Some("t"));
    let d = pol.check(&req);
    assert!(d.allowed());
    let report = pol.check_report(&req);
    assert!(report.allowed && report.reason == Reason::Allowed);
    assert_eq!(report.matched.len(), 1);
    assert!(report.matched[0].source.starts_with("p.yaml:"), "{:?}", report.matched[0]);
    let ex = pol.explain(&req);
    assert_eq!(ex.decision, report);
    assert!(ex.steps.iter().any(|s| s.outcome == "condition_true"));
    assert!(ex.to_string().starts_with("ALLOW (allowed)"));
}

#[test]
fn explanations_name_no_resource_when_the_question_has_no_id() {
    let pol = policy();
    let mut req = request(principal("t", &[("tech", "msp:a/org:o1")]), "delete", "msp:a/org:o2", None);
    req.resource.id = String::new();
    let text = pol.check_report(&req).explanation;
    assert!(!text.contains("``"), "{text}");
    assert!(text.contains("`delete` on a device at `msp:a/org:o2`"), "{text}");
    req.resource.id = "d7".into();
    let text = pol.check_report(&req).explanation;
    assert!(text.contains("`delete` on device `d7` at `msp:a/org:o2`"), "{text}");
}

#[test]
fn prepared_fast_path_matches_check() {
    let pol = policy();
    let p = pol.prepare_principal(&principal("t", &[("tech", "msp:a/org:o1")])).expect("principal");
    let r = pol
        .prepare_resource(&Resource {
            kind: "device".into(),
            id: "d".into(),
            scope: "msp:a/org:o2".into(),
            ..Default::default()
        })
        .expect("resource");
    let d = pol.decide(&p, "view", &r, pol.empty_context());
    assert_eq!(d.reason(), Reason::OutOfScope);
    assert_eq!(pol.decide(&p, "fly", &r, pol.empty_context()).reason(), Reason::UnknownAction);
    let mine = pol
        .prepare_resource(&Resource {
            kind: "device".into(),
            id: "d".into(),
            scope: "msp:a/org:o1".into(),
            ..Default::default()
        })
        .expect("resource");
    assert_eq!(pol.allowed_actions(&p, &mine, pol.empty_context()).allowed, vec!["view".to_string()]);
    let masks = pol.check_batch(&p, &["view", "update", "nope"], &[mine, r], pol.empty_context());
    assert_eq!(masks, vec![0b001, 0b000]);
}

#[test]
fn inputs_prepared_by_another_revision_deny() {
    let a = policy();
    let b = Policy::compile(&[Source::new("p.yaml", POLICY.replace("rank: 5", "rank: 6"))]).expect("compiles");
    let p = a.prepare_principal(&principal("t", &[("boss", "msp:a")])).expect("principal");
    let r = a
        .prepare_resource(&Resource {
            kind: "device".into(),
            id: "d".into(),
            scope: "msp:a/org:o1".into(),
            ..Default::default()
        })
        .expect("resource");
    assert!(a.decide(&p, "view", &r, a.empty_context()).allowed());
    let d = b.decide(&p, "view", &r, b.empty_context());
    assert_eq!(d.reason(), Reason::InvalidRequest);
    assert!(b.allowed_actions(&p, &r, b.empty_context()).allowed.is_empty());
}

#[test]
fn delegation_reasons() {
    let pol = policy();
    let ask = |p: Principal, role: &str, scope: &str| {
        pol.can_assign(&AssignRequest {
            principal: PrincipalRef::Inline(p),
            role: role.into(),
            scope: scope.into(),
            context: Default::default(),
        })
    };
    let boss = principal("b", &[("boss", "msp:a")]);
    assert_eq!(ask(boss.clone(), "tech", "msp:a/org:o1").reason, AssignReason::Allowed);
    assert_eq!(ask(boss.clone(), "owner", "msp:a").reason, AssignReason::NotAssignable);
    assert_eq!(ask(boss.clone(), "boss", "msp:a/org:o1").reason, AssignReason::LevelNotAllowed);
    assert_eq!(ask(boss.clone(), "tech", "msp:b").reason, AssignReason::NotPermitted);
    assert_eq!(ask(boss, "ghost", "msp:a").reason, AssignReason::UnknownRole);
    assert_eq!(ask(principal("t", &[("tech", "msp:a")]), "tech", "msp:a").reason, AssignReason::NotPermitted);
}

#[test]
fn diagnostics_are_data_with_positions() {
    let bad = "policy: x\nscopes: { msp: {} }\nresources:\n  device: { actions: [view] }\nroles:\n  r:\n    grants:\n      - { resources: [devise], actions: [view] }\n      - { resources: [device], actions: [view], when: \"principal.nope\" }\n";
    let err = Policy::compile(&[Source::new("bad.yaml", bad)]).expect_err("invalid");
    let d = err.diagnostics();
    assert_eq!(err.error_count(), 2, "{d:?}");
    let unknown = d.iter().find(|x| x.code() == "RS012").expect("RS012");
    assert_eq!((unknown.location().line(), unknown.location().column()), (8, 23));
    assert_eq!(unknown.help(), Some("did you mean `device`?"));
    let cond = d.iter().find(|x| x.code() == "RS031").expect("RS031");
    assert_eq!(cond.location().line(), 9);
    assert_eq!(cond.severity(), Severity::Error);
}

#[test]
fn bundles_round_trip_and_refuse_tampering() {
    let src = [Source::new("p.yaml", POLICY)];
    let (p, json) = Policy::bundle(&src).expect("bundle");
    let back = Policy::from_bundle(&json).expect("load");
    assert_eq!(back.revision(), p.revision());
    let tampered = json.replace("rank: 10", "rank: 11");
    assert!(Policy::from_bundle(&tampered).is_err());
}

#[test]
fn request_headers_are_those_the_routes_read() {
    assert!(policy().request_headers().is_empty(), "no route table, no headers");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/corpus/routes/policy.yaml"))
        .expect("routes corpus");
    let (p, json) = Policy::bundle(&[Source::new("policy.yaml", text)]).expect("bundle");
    assert_eq!(p.request_headers(), ["x-labels", "x-priority"]);
    // a bundle carries them too (the compiled route table)
    assert_eq!(Policy::from_bundle(&json).expect("load").request_headers(), ["x-labels", "x-priority"]);
}

// ---------------------------------------------------------------- properties

const ROLES: [&str; 3] = ["boss", "tech", "owner"];

fn arb_scope() -> impl Strategy<Value = String> {
    (0..2usize, 0..3usize, proptest::option::of(0..2usize)).prop_map(|(m, o, s)| {
        let mut path = format!("msp:m{m}/org:o{o}");
        if let Some(s) = s {
            path.push_str(&format!("/site:s{s}"));
        }
        path
    })
}

fn arb_assignment() -> impl Strategy<Value = Assignment> {
    (0..ROLES.len(), arb_scope(), any::<bool>()).prop_map(|(r, s, at_msp)| {
        let scope = if at_msp { s.split('/').next().unwrap_or("msp:m0").to_string() } else { s };
        Assignment { role: ROLES[r].into(), scope, tenants: None }
    })
}

fn arb_principal() -> impl Strategy<Value = Principal> {
    proptest::collection::vec(arb_assignment(), 0..5).prop_map(|assignments| Principal {
        id: "p".into(),
        status: None,
        attributes: Default::default(),
        assignments,
    })
}

fn tenant_of(scope: &str) -> String {
    scope.split('/').take(2).collect::<Vec<_>>().join("/")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn hostile_role_files_never_panic(text in ".{0,400}") {
        let _ = Policy::compile(&[Source::new("x.yaml", text.clone())]);
        let _ = Policy::compile(&[Source::new("x.json", text)]);
    }

    #[test]
    fn truncated_policies_never_panic(cut in 0..POLICY.len()) {
        if let Some(prefix) = POLICY.get(..cut) {
            let _ = Policy::compile(&[Source::new("x.yaml", prefix)]);
        }
    }

    #[test]
    fn hostile_requests_never_panic(action in ".{0,12}", scope in ".{0,30}", kind in "[a-z]{0,8}") {
        let pol = policy();
        let req = Request {
            principal: PrincipalRef::Inline(principal("p", &[("boss", "msp:m0")])),
            action,
            resource: Resource { kind, id: String::new(), scope, attributes: Default::default() },
            context: Default::default(),
        };
        let _ = pol.explain(&req);
    }

    #[test]
    fn default_deny(scope in arb_scope(), action in prop::sample::select(vec!["view", "update", "delete"])) {
        let d = policy().check(&request(principal("p", &[]), action, &scope, Some("p")));
        prop_assert!(!d.allowed());
        prop_assert_eq!(d.reason(), Reason::OutOfScope);
    }

    #[test]
    fn inactive_principals_are_denied_everything(mut p in arb_principal(), scope in arb_scope(), deleted in any::<bool>()) {
        p.status = Some(if deleted { "deleted" } else { "suspended" }.into());
        let d = policy().check(&request(p, "view", &scope, Some("p")));
        prop_assert_eq!(d.reason(), Reason::PrincipalInactive);
    }

    #[test]
    fn assignments_in_one_tenant_never_change_another(p in arb_principal(), extra in arb_assignment(), scope in arb_scope()) {
        // an org-level (or deeper) assignment in another tenant changes nothing here
        prop_assume!(extra.scope.contains('/'));
        prop_assume!(tenant_of(&extra.scope) != tenant_of(&scope));
        let pol = policy();
        for action in ["view", "update", "delete"] {
            let before = pol.check(&request(p.clone(), action, &scope, Some("p")));
            let mut q = p.clone();
            q.assignments.push(extra.clone());
            let after = pol.check(&request(q, action, &scope, Some("p")));
            prop_assert_eq!(before.allowed(), after.allowed());
        }
    }

    #[test]
    fn adding_a_grant_never_removes_access_and_a_deny_never_adds_it(
        p in arb_principal(), scope in arb_scope(), action in prop::sample::select(vec!["view", "update", "delete"])
    ) {
        let base = policy();
        let more = Policy::compile(&[Source::new("p.yaml", POLICY.replace(
            "      - { resources: [device], actions: [view] }",
            "      - { resources: [device], actions: [view] }\n      - { resources: [device], actions: [delete] }"))]).expect("compiles");
        let less = Policy::compile(&[Source::new("p.yaml", POLICY.replace("delegation:", "denies:\n  - { resources: [device], actions: [update] }\ndelegation:"))]).expect("compiles");
        let req = request(p, action, &scope, Some("p"));
        let b = base.check(&req).allowed();
        prop_assert!(!b || more.check(&req).allowed());
        prop_assert!(!less.check(&req).allowed() || b);
    }

    #[test]
    fn file_order_never_matters(p in arb_principal(), scope in arb_scope(), action in prop::sample::select(vec!["view", "update", "delete"])) {
        let (head, tail) = POLICY.split_at(POLICY.find("roles:").unwrap_or(0));
        let a = Policy::compile(&[Source::new("a.yaml", head), Source::new("b.yaml", tail)]).expect("a");
        let b = Policy::compile(&[Source::new("b.yaml", tail), Source::new("a.yaml", head)]).expect("b");
        let req = request(p, action, &scope, Some("p"));
        let (x, y) = (a.check(&req), b.check(&req));
        prop_assert_eq!(x.allowed(), y.allowed());
        prop_assert_eq!(x.reason(), y.reason());
    }
}

#[test]
fn invariant_checks_fail_closed_naming_the_principal() {
    let src = format!("{POLICY}invariants:\n  - {{ name: boss_remains, roles: [boss], level: msp }}\n");
    let policy = Policy::compile(&[Source::new("p.yaml", src)]).expect("compiles");
    let boss = principal("bo", &[("boss", "msp:acme")]);
    assert_eq!(policy.check_invariants(std::slice::from_ref(&boss)).expect("readable"), vec![]);
    // the last boss with an unknown status: an error naming it, not "0 violations"
    let removed = Principal { status: Some("removed".into()), ..boss.clone() };
    let e = policy.check_invariants(&[removed]).expect_err("fails closed");
    assert!(e.message().contains("principal `bo`") && e.message().contains("removed"), "{e}");
    // a lone boss with a wrongly typed attribute: an error, not a false violation
    let mut typed = boss.clone();
    typed.attributes.insert("groups".into(), 5.into());
    let e = policy.check_invariants(&[typed]).expect_err("fails closed");
    assert!(e.message().contains("principal `bo`") && e.message().contains("groups"), "{e}");
    // an assignment that cannot take effect is an error too
    let e = policy.check_invariants(&[principal("x", &[("bos", "msp:acme")])]).expect_err("fails closed");
    assert!(e.message().contains("principal `x`") && e.message().contains("unknown role `bos`"), "{e}");
}

#[test]
fn tenants_all_reaches_every_tenant_and_contradicts_listed_roles() {
    let src = POLICY.replace(
        "  owner: {",
        "  lister: { held_at: [msp], tenant_access: listed, grants: [{ resources: [device], actions: [view] }] }\n  owner: {",
    );
    let policy = Policy::compile(&[Source::new("p.yaml", src)]).expect("compiles");
    let held = |role: &str, tenants: Option<Tenants>| Principal {
        id: "p".into(),
        assignments: vec![Assignment { role: role.into(), scope: "msp:acme".into(), tenants }],
        ..Principal::default()
    };
    let view = |p: Principal| policy.check(&request(p, "view", "msp:acme/org:o7", None));
    assert!(view(held("boss", Some(Tenants::All))).allowed());
    assert!(!view(held("boss", Some(Tenants::Only(vec!["org:o1".into()])))).allowed());
    // a listed-only role: `all` cannot take effect (ignored), a missing list reaches no tenant
    assert_eq!(view(held("lister", Some(Tenants::All))).reason(), Reason::OutOfScope);
    assert!(!view(held("lister", None)).allowed());
    assert!(view(held("lister", Some(Tenants::Only(vec!["org:o7".into()])))).allowed());
    // the wire form: `"all"` or a list
    let p: Principal =
        serde_json::from_str(r#"{"id":"p","assignments":[{"role":"boss","scope":"msp:acme","tenants":"all"}]}"#)
            .expect("reads");
    assert_eq!(p.assignments[0].tenants, Some(Tenants::All));
    assert_eq!(Principal::from_json(serde_json::to_string(&p).expect("writes").as_bytes()).expect("reads"), p);
    assert!(
        serde_json::from_str::<Principal>(r#"{"assignments":[{"role":"b","scope":"s","tenants":"some"}]}"#).is_err()
    );
}

/// An HTTP decision names the rule that decided (an id in `rule_table`, and the assignment it
/// came through) or, for a default deny, the principal's nearest assignments: covering ones
/// first, then by shared leading scope segments, ties in the principal's order, at most 3.
#[test]
fn http_decisions_name_the_deciding_rule_or_the_nearest_assignments() {
    const ROUTED: &str = r#"
policy: nearest
scopes:
  msp: {}
  org: { parent: msp, tenant: true }
  site: { parent: org }
resources:
  device: { actions: [view, update, reboot, delete] }
roles:
  tech:
    grants:
      - { resources: [device], actions: [view] }
      - { resources: [device], actions: [update], when: resource.id == "other" }
    denies:
      - { resources: [device], actions: [reboot] }
  viewer: { grants: [{ resources: [device], actions: [view] }] }
denies:
  - { resources: [device], actions: [delete] }
routes:
  base: "msp:m"
  table:
    - { route: "GET /o/{org}/s/{site}/d/{d}", action: view, resource: device, scope: "org:{org}/site:{site}", id: "{d}" }
    - { route: "PUT /o/{org}/s/{site}/d/{d}", action: update, resource: device, scope: "org:{org}/site:{site}", id: "{d}" }
    - { route: "POST /o/{org}/s/{site}/d/{d}", action: reboot, resource: device, scope: "org:{org}/site:{site}", id: "{d}" }
    - { route: "DELETE /o/{org}/s/{site}/d/{d}", action: delete, resource: device, scope: "org:{org}/site:{site}", id: "{d}" }
"#;
    let policy = Policy::compile(&[Source::new("p.yaml", ROUTED)]).expect("compiles");
    let table = policy.rule_table();
    assert_eq!(table.len(), policy.rule_count());
    assert!(table.iter().all(|r| r.assignment.is_none() && r.source.starts_with("p.yaml:")));
    let p = principal(
        "p",
        &[
            ("viewer", "msp:m/org:o2"),
            ("tech", "msp:m/org:o1"),
            ("viewer", "msp:m/org:o1/site:s9"),
            ("viewer", "msp:m/org:o1/site:s1"),
            ("tech", "msp:m/org:o3"),
        ],
    );
    let p = policy.prepare_principal(&p).expect("prepared");
    let ask = |method: &str, target: &str| {
        policy.authorize_http(Some(&p), &rolescope_engine::HttpRequest { method, target, headers: &[] })
    };
    let rule = |d: &rolescope_engine::HttpDecision| {
        let r = &table[d.rule().expect("a rule") as usize];
        (r.effect.clone(), r.role.clone(), d.assignment().map(str::to_owned))
    };
    // an allow: the grant, through the first covering assignment that grants it
    let d = ask("GET", "/o/o1/s/s1/d/ap");
    assert_eq!(d.reason(), Reason::Allowed);
    assert_eq!(rule(&d), ("grant".into(), Some("tech".into()), Some("tech@msp:m/org:o1".into())));
    assert!(d.nearest().is_empty());
    // a role's deny, and a policy-wide one (no role, no assignment)
    let d = ask("POST", "/o/o1/s/s1/d/ap");
    assert_eq!(d.reason(), Reason::ExplicitDeny);
    assert_eq!(rule(&d), ("deny".into(), Some("tech".into()), Some("tech@msp:m/org:o1".into())));
    let d = ask("DELETE", "/o/o1/s/s1/d/ap");
    assert_eq!(d.reason(), Reason::ExplicitDeny);
    assert_eq!(rule(&d), ("deny".into(), None, None));
    assert!(d.nearest().is_empty());
    // a false condition: no rule; the covering assignments, the one held lowest first, then
    // the sibling site (two shared segments) before the other organizations
    let d = ask("PUT", "/o/o1/s/s1/d/ap");
    assert_eq!(d.reason(), Reason::ConditionFalse);
    assert_eq!((d.rule(), d.assignment()), (None, None));
    assert_eq!(d.nearest(), ["viewer@msp:m/org:o1/site:s1", "tech@msp:m/org:o1", "viewer@msp:m/org:o1/site:s9"]);
    // out of scope: none covers; most shared segments first, then the principal's order
    let d = ask("GET", "/o/o4/s/s1/d/ap");
    assert_eq!(d.reason(), Reason::OutOfScope);
    assert_eq!(d.nearest(), ["viewer@msp:m/org:o2", "tech@msp:m/org:o1", "viewer@msp:m/org:o1/site:s9"]);
    let d = ask("GET", "/o/o1/s/s2/d/ap");
    assert_eq!(d.reason(), Reason::Allowed, "tech@org:o1 covers every site of o1");
    let q = principal("q", &[("viewer", "msp:m/org:o2"), ("viewer", "msp:m/org:o1/site:s9")]);
    let q = policy.prepare_principal(&q).expect("prepared");
    let d = policy.authorize_http(
        Some(&q),
        &rolescope_engine::HttpRequest { method: "GET", target: "/o/o1/s/s1/d/ap", headers: &[] },
    );
    assert_eq!(d.reason(), Reason::OutOfScope);
    assert_eq!(d.nearest(), ["viewer@msp:m/org:o1/site:s9", "viewer@msp:m/org:o2"]);
    // no assignments at all: nothing to name
    let none = policy.prepare_principal(&principal("n", &[])).expect("prepared");
    let d = policy.authorize_http(
        Some(&none),
        &rolescope_engine::HttpRequest { method: "GET", target: "/o/o1/s/s1/d/ap", headers: &[] },
    );
    assert_eq!((d.reason(), d.nearest().len()), (Reason::OutOfScope, 0));
}
