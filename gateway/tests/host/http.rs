//! HTTP authorization through wasmtime (`rs_authorize`) equals the native engine's
//! `authorize_http`: every `http` case of the seed policies' suites, and requests generated from
//! every route of their route tables (`policies/*/routes.yaml`), benign and hostile, for
//! anonymous callers and every principal fixture. Out-of-contract answers and traps deny.
#![expect(clippy::expect_used, clippy::panic, reason = "test helpers: a failure here is a test failure")]

use std::collections::BTreeSet;

use rolescope_engine::{HttpDecision, HttpRequest, MatchedRule, Policy, Principal, PrincipalRef, Reason};
use rolescope_gateway::{Config, Handle, Host, HttpVerdict};

use crate::support;

/// Every field of an HTTP decision, to compare the two hosts': the rule that decided as the
/// rule table names it (effect, role, `file:line:col`), the assignment it came through, the
/// nearest assignments of a default deny.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    allowed: bool,
    reason: Reason,
    public: bool,
    fields: [Option<String>; 7],
    rule: Option<(String, Option<String>, String)>,
    assignment: Option<String>,
    nearest: Vec<String>,
}

fn own(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

fn named(r: &MatchedRule) -> (String, Option<String>, String) {
    (r.effect.clone(), r.role.clone(), r.source.clone())
}

impl Seen {
    fn native(policy: &Policy, d: &HttpDecision) -> Self {
        let table = policy.rule_table();
        let rule = d.rule().map(|id| named(table.get(id as usize).expect("a rule id of the table")));
        Self {
            allowed: d.allowed(),
            reason: d.reason(),
            public: d.public(),
            fields: [d.route(), d.action(), d.kind(), d.scope(), d.tenant(), d.resource_id(), d.detail()].map(own),
            rule,
            assignment: own(d.assignment()),
            nearest: d.nearest().to_vec(),
        }
    }
}

impl From<&HttpVerdict> for Seen {
    fn from(d: &HttpVerdict) -> Self {
        Self {
            allowed: d.allowed(),
            reason: d.reason(),
            public: d.public(),
            fields: [d.route(), d.action(), d.kind(), d.scope(), d.tenant(), d.resource_id(), d.detail()].map(own),
            rule: d.rule().map(named),
            assignment: own(d.assignment()),
            nearest: d.nearest().to_vec(),
        }
    }
}

/// The native decision for an optional principal, as the policy suites define it (a principal
/// the engine refuses to prepare is refused whatever the request, every field absent).
fn native(policy: &Policy, principal: Option<&PrincipalRef>, req: &HttpRequest<'_>) -> Seen {
    let prepared = match principal {
        None => Ok(None),
        Some(PrincipalRef::Inline(p)) => policy.prepare_principal(p).map(Some),
        Some(PrincipalRef::Id(id)) => Ok(policy.principal(id).cloned()),
    };
    match prepared {
        Ok(pp) => Seen::native(policy, &policy.authorize_http(pp.as_ref(), req)),
        Err(e) => Seen {
            allowed: false,
            reason: e.reason(),
            public: false,
            fields: [None, None, None, None, None, None, Some(e.message().to_owned())],
            rule: None,
            assignment: None,
            nearest: Vec::new(),
        },
    }
}

/// The route templates of a policy folder's role files (`routes.yaml` in the seed policies):
/// `route: "..."` entries and the `public:` list, read as text.
fn templates(folder: &rolescope_parity::Folder) -> Vec<String> {
    let mut out = Vec::new();
    for source in &folder.sources {
        for line in source.text().lines() {
            let line = line.split(" #").next().unwrap_or("");
            if let Some(rest) = line.split("route: \"").nth(1) {
                out.extend(rest.split('"').next().map(str::to_owned));
            }
            if let Some(list) = line.trim_start().strip_prefix("public:") {
                out.extend(list.split('"').skip(1).step_by(2).map(str::to_owned));
            }
        }
    }
    out
}

/// A generated request: method, target, headers.
type Generated = (String, String, Vec<(String, String)>);

/// Parameter values: plain, case-changed, percent-encoded, and hostile.
const VALUES: [&str; 16] =
    ["o1", "s1", "ap-11", "c1", "O1", "%6f1", "a%2Fb", "..", "%2e%2e", ".", "a;b", "%C3%A9", "%", "%00", "a%5cb", "é"];

/// Requests generated from one route template: its own method and others, the path with
/// parameters filled in several ways, and hostile variants of the target.
fn generated(template: &str, seed: usize) -> Vec<Generated> {
    let (method, path) = template.split_once(' ').unwrap_or(("GET", template));
    let mut out = Vec::new();
    for (k, methods) in [[method, "HEAD"], ["POST", "get"], ["DELETE", "PATCH"]].into_iter().enumerate() {
        for v in 0..4 {
            let fill = |i: usize| VALUES.get((seed + i * 7 + v * 3 + k) % VALUES.len()).copied().unwrap_or("x");
            let mut i = 0;
            let filled: String = path
                .split('/')
                .map(|seg| {
                    if seg.starts_with('{') {
                        i += 1;
                        if v == 0 { Some("o1") } else { Some(fill(i)) }.unwrap_or("x").to_owned()
                    } else {
                        seg.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            for m in methods {
                for target in [
                    filled.clone(),
                    format!("{filled}/"),
                    format!("{filled}?site=s1"),
                    format!("{filled}?site=a&site=b&x=%ZZ"),
                    filled.replacen('/', "//", 2),
                    format!("{filled}#frag"),
                    format!("http://example.com{filled}"),
                    filled.replace("/api", "/API"),
                    format!("{filled}/.."),
                ] {
                    let headers = vec![
                        ("x-channel".to_owned(), "web".to_owned()),
                        ("X-Channel".to_owned(), if v == 3 { "api".to_owned() } else { "web".to_owned() }),
                    ];
                    let headers = if v % 2 == 0 { headers.into_iter().take(1).collect() } else { headers };
                    out.push((m.to_owned(), target, headers));
                }
            }
        }
    }
    out
}

/// Targets every policy is asked about.
fn hostile() -> Vec<Generated> {
    let long = format!("/{}", "a/".repeat(5_000));
    ["", "*", "/", "//", "/..", "/%2e%2e/", "/a\\b", "/\u{7f}", "/%", "/%zz", "/a?b#c", "api", &long]
        .into_iter()
        .flat_map(|t| ["GET", "OPTIONS", ""].map(|m| (m.to_owned(), t.to_owned(), Vec::new())))
        .collect()
}

/// Decide through the host: prepare the principal there (or none), authorize, release.
fn through_host(host: &mut Host, principal: Option<&PrincipalRef>, req: &HttpRequest<'_>) -> Seen {
    let handle: Option<Handle> = match principal {
        None => None,
        Some(PrincipalRef::Inline(p)) => Some(host.principal(p).expect("principal")),
        Some(PrincipalRef::Id(id)) => panic!("filed principal `{id}`: not generated here"),
    };
    let v = host.authorize(handle.as_ref(), req).expect("verdict");
    assert_eq!(Some(v.revision()), host.revision());
    if let Some(h) = handle {
        host.release(h);
    }
    Seen::from(&v)
}

#[test]
fn every_http_case_and_generated_request_is_authorized_as_natively() {
    let mut policies = 0;
    let (mut cases, mut generated_requests, mut by_id) = (0usize, 0usize, 0usize);
    let mut reasons = BTreeSet::new();
    let (mut with_rule, mut with_nearest) = (0usize, 0usize);
    let mut differences = Vec::new();
    for folder in support::folders().iter().filter(|f| f.policy.has_routes()) {
        policies += 1;
        let engine = support::loaded(&folder.dir, Config::default());
        let mut host = engine.host();
        let policy = &folder.policy;
        // the suites' own http cases
        let mut principals: Vec<Principal> = Vec::new();
        for suite in &folder.suites {
            for c in policy.suite_http_cases(suite).expect("http cases") {
                let headers: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let req = HttpRequest { method: &c.method, target: &c.target, headers: &headers };
                let want = native(policy, c.principal.as_ref(), &req);
                assert_eq!(
                    want.allowed, c.expect_allowed,
                    "{} {}: native disagrees with the suite",
                    folder.dir, c.name
                );
                // a principal filed with the policy is named by id, which the host cannot pass
                if let Some(PrincipalRef::Id(_)) = &c.principal {
                    by_id += 1;
                    continue;
                }
                let principal = c.principal.clone();
                let got = through_host(&mut host, principal.as_ref(), &req);
                cases += 1;
                reasons.insert(want.reason.as_str());
                if got != want {
                    differences.push(format!("{} {}: {got:?} vs native {want:?}", folder.dir, c.name));
                }
            }
            principals.extend(policy.suite_fixtures(suite).expect("fixtures").principals);
        }
        // generated requests from every route, for anonymous callers and every fixture
        let mut who: Vec<Option<PrincipalRef>> = vec![None];
        who.extend(principals.into_iter().map(|p| Some(PrincipalRef::Inline(p))));
        let mut requests = hostile();
        for (i, t) in templates(folder).iter().enumerate() {
            requests.extend(generated(t, i));
        }
        assert!(requests.len() > 100, "{}: route templates read", folder.dir);
        for (i, (method, target, headers)) in requests.iter().enumerate() {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let req = HttpRequest { method, target, headers: &headers };
            // every request anonymously, and for one principal fixture in turn
            for p in [None, who.get(1 + i % (who.len() - 1).max(1)).and_then(Option::as_ref)] {
                let want = native(policy, p, &req);
                let got = through_host(&mut host, p, &req);
                generated_requests += 1;
                with_rule += usize::from(want.rule.is_some());
                with_nearest += usize::from(!want.nearest.is_empty());
                reasons.insert(want.reason.as_str());
                if got != want {
                    differences.push(format!("{} {method} {target:?}: {got:?} vs native {want:?}", folder.dir));
                }
            }
        }
        assert_eq!(engine.instances_started(), 3, "{}: no failure replaced the instance", folder.dir);
    }
    eprintln!(
        "http parity: {policies} policies, {cases} suite cases ({by_id} by filed principal id skipped), {generated_requests} generated requests"
    );
    eprintln!("reasons seen: {reasons:?}; {with_rule} named the deciding rule, {with_nearest} the nearest assignments");
    assert!(with_rule > 100 && with_nearest > 100, "{with_rule} rules, {with_nearest} nearest: too few to compare");
    assert!(policies >= 4, "{policies} policies with route tables");
    for r in [Reason::Allowed, Reason::InvalidPath, Reason::NoRoute, Reason::Unauthenticated, Reason::OutOfScope] {
        assert!(reasons.contains(r.as_str()), "no request was answered `{r}`");
    }
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
}

const JUNIPER: &str = "policies/juniper-mist-msp";

/// A Network Admin of organization o1 (Juniper Mist MSP).
fn na_o1() -> Principal {
    serde_json::from_value(serde_json::json!({
        "id": "na",
        "assignments": [{ "role": "network_admin", "scope": "msp:mist", "tenants": ["org:o1"] }],
    }))
    .expect("principal")
}

/// Rebooting an access point of o1: allowed for `na_o1`.
const REBOOT: HttpRequest<'static> =
    HttpRequest { method: "POST", target: "/api/v1/orgs/o1/devices/ap-11/reboot", headers: &[] };

fn assert_allowed(host: &mut Host) {
    let h = host.principal(&na_o1()).expect("principal");
    let v = host.authorize(Some(&h), &REBOOT).expect("verdict");
    host.release(h);
    assert!(v.allowed() && v.reason() == Reason::Allowed, "{v:?}");
    assert_eq!((v.route(), v.tenant()), (Some("POST /api/v1/orgs/{org}/devices/{device}/reboot"), Some("org:o1")));
}

#[test]
fn http_failures_deny_and_the_next_call_works() {
    let engine = support::loaded(JUNIPER, Config::default());
    let mut host = engine.host();
    assert_allowed(&mut host);
    // out of contract: the guest's principal freed behind the host's back answers -1
    let handle = host.principal(&na_o1()).expect("principal");
    host.call_export("rs_principal_free", &[0]).expect("free");
    let e = host.authorize(Some(&handle), &REBOOT).expect_err("negative code");
    assert!(e.kind() == rolescope_gateway::ErrorKind::Protocol && e.is_guest_failure(), "{e:?}");
    assert_eq!(host.revision(), None, "instance discarded");
    // the handle died with its instance; anonymous calls get a fresh one
    assert!(host.authorize(Some(&handle), &REBOOT).expect_err("stale").is_stale_handle());
    let v = host.authorize(None, &REBOOT).expect("anonymous");
    assert!(!v.allowed() && v.reason() == Reason::Unauthenticated, "{v:?}");
    assert_allowed(&mut host);
    // a trap
    let before = engine.instances_started();
    let e = host.call_export("__wbindgen_start", &[]).expect_err("glue import traps");
    assert!(e.is_trap(), "{e:?}");
    assert_allowed(&mut host);
    assert_eq!(engine.instances_started(), before + 1);
    // input the ABI cannot carry: refused before the guest sees it, the instance stays
    let many = vec![("x-a", "b"); 300];
    let e = host.authorize(None, &HttpRequest { headers: &many, ..REBOOT }).expect_err("300 headers");
    assert!(e.is_invalid_input() && !e.is_guest_failure(), "{e:?}");
    assert_eq!(engine.instances_started(), before + 1);
}

#[test]
fn http_timeouts_memory_exhaustion_and_no_policy_deny() {
    let engine = support::loaded(JUNIPER, Config::default().call_deadline(std::time::Duration::ZERO));
    let mut host = engine.host();
    let e = host.authorize(None, &REBOOT).expect_err("deadline 0");
    assert!(e.is_timeout() && e.is_unavailable(), "{e:?}");

    let engine = support::loaded(JUNIPER, Config::default().memory_limit(4 << 20));
    let mut host = engine.host();
    assert_allowed(&mut host);
    let huge = format!("/api/v1/orgs/o1/devices?{}", "a".repeat(8 << 20));
    let e = host.authorize(None, &HttpRequest { target: &huge, ..REBOOT }).expect_err("8 MiB target in 4 MiB");
    assert!(e.is_out_of_memory() && e.is_guest_failure(), "{e:?}");
    assert_allowed(&mut host);

    let empty = support::engine(Config::default());
    let e = empty.host().authorize(None, &REBOOT).expect_err("no policy");
    assert!(e.is_no_policy(), "{e:?}");
    assert!(empty.authorize(Some(&na_o1()), &REBOOT).expect_err("no policy").is_no_policy());
}

#[test]
fn the_engine_level_call_prepares_decides_and_releases() {
    let engine = support::loaded(JUNIPER, Config::default());
    let revision = engine.revision().expect("loaded");
    let v = engine.authorize(Some(&na_o1()), &REBOOT).expect("verdict");
    assert!(v.allowed() && v.revision() == &revision, "{v:?}");
    let v = engine.authorize(None, &REBOOT).expect("verdict");
    assert_eq!(v.reason(), Reason::Unauthenticated);
    let status = HttpRequest { method: "GET", target: "/api/v1/status", headers: &[] };
    let v = engine.authorize(None, &status).expect("verdict");
    assert!(v.allowed() && v.public(), "{v:?}");
    // principals the engine denies everything: public routes pass for an inactive one only
    let mut suspended = na_o1();
    suspended.status = Some("suspended".into());
    let v = engine.authorize(Some(&suspended), &REBOOT).expect("verdict");
    assert_eq!((v.allowed(), v.reason(), v.route().is_some()), (false, Reason::PrincipalInactive, true));
    assert!(engine.authorize(Some(&suspended), &status).expect("verdict").allowed());
    let mut refused = na_o1();
    refused.status = Some("on-leave".into());
    for req in [REBOOT, status] {
        let v = engine.authorize(Some(&refused), &req).expect("verdict");
        assert_eq!((v.allowed(), v.reason(), v.route()), (false, Reason::InvalidRequest, None), "{v:?}");
    }
    // a reload: the next call decides on the new bundle
    let again = engine.load(&support::folder(JUNIPER).bundle).expect("reload");
    assert_eq!(engine.authorize(None, &status).expect("verdict").revision(), &again);
    // many calls on this thread's host: no instance churn
    let started = engine.instances_started();
    for _ in 0..50 {
        assert!(engine.authorize(Some(&na_o1()), &REBOOT).expect("verdict").allowed());
    }
    assert_eq!(engine.instances_started(), started);
}
