//! The allow / deny matrix over the four seed policies: every suite principal (as a real
//! signed token) and an anonymous caller against a list of requests per policy, expected
//! outcomes from the native engine (`Policy::authorize_http`), plus a hand-written table of
//! pinned rows that does not consult the engine. Every response's status, `error` and `reason`
//! are checked, and the upstream must have received exactly the allowed requests, in order,
//! each with the principal and decision id the gateway added.

use rolescope_engine::{HttpRequest, Principal, Reason};

use crate::support::{self, Response, Stack, Upstream, tokens};

/// Send one request (method, target, headers); the response the client gets.
pub(crate) type Send<'a> = &'a dyn Fn(&str, &str, &[(&str, &str)]) -> Response;

/// Where the matrix's requests go: the gateway itself, a real proxy with rolescope as its
/// authorization service, or the authorization service alone.
pub(crate) struct Via<'a> {
    /// Send one request; the response the client gets.
    pub(crate) send: Send<'a>,
    /// The demo upstream behind it.
    pub(crate) upstream: &'a Upstream,
    /// `false`: the authorization service alone (an allow is its 200, nothing is forwarded).
    pub(crate) forwards: bool,
    /// Whether an allowed response carries `x-rolescope-revision` and `x-rolescope-decision-id`
    /// to the client (the gateway's do; a proxy passes the upstream's answer).
    pub(crate) ids_on_allow: bool,
}

/// Who calls.
#[derive(Clone, Debug)]
enum Caller {
    /// A suite principal fixture, with a valid token.
    Fixture(&'static str),
    /// No `Authorization` header.
    Anonymous,
    /// A token for the fixture signed with a key the gateway does not trust (same `kid`).
    BadSignature(&'static str),
}

/// What the gateway must answer.
#[derive(Clone, Debug, PartialEq)]
enum Expect {
    /// Forwarded: the upstream's answer (with this status), and the upstream logged it.
    Forwarded(u16),
    /// Refused by the gateway with this status and reason; the upstream never sees it.
    Refused(u16, String),
}

/// One pinned row: written by hand from the policies' READMEs and route tables.
struct Pinned {
    caller: Caller,
    method: &'static str,
    target: &'static str,
    expect: Expect,
    why: &'static str,
}

fn fwd(status: u16) -> Expect {
    Expect::Forwarded(status)
}

fn refused(status: u16, reason: &str) -> Expect {
    Expect::Refused(status, reason.to_owned())
}

fn row(caller: Caller, method: &'static str, target: &'static str, expect: Expect, why: &'static str) -> Pinned {
    Pinned { caller, method, target, expect, why }
}

use Caller::{Anonymous, BadSignature, Fixture};

fn pinned(policy: &str) -> Vec<Pinned> {
    match policy {
        "juniper-mist-msp" => vec![
            row(Fixture("su"), "GET", "/api/v1/orgs/o1/devices/ap-11", fwd(200), "Super User views a device"),
            row(
                Fixture("su"),
                "DELETE",
                "/api/v1/orgs/o9/devices/ap-90",
                fwd(404),
                "Super User reaches an org created later (upstream has no such device)",
            ),
            row(
                Fixture("rival_su"),
                "GET",
                "/api/v1/orgs/o1/devices/ap-11",
                refused(403, "out_of_scope"),
                "another MSP's Super User: cross-tenant",
            ),
            row(
                Fixture("su_suspended"),
                "GET",
                "/api/v1/orgs/o1",
                refused(403, "principal_inactive"),
                "suspended Super User",
            ),
            row(
                Fixture("su_deleted"),
                "GET",
                "/api/v1/msp/orgs",
                refused(403, "principal_inactive"),
                "deleted Super User",
            ),
            row(Fixture("na_o1"), "GET", "/api/v1/orgs/o1/devices/ap-11", fwd(200), "listed organization"),
            row(
                Fixture("na_o1"),
                "GET",
                "/api/v1/orgs/o2/devices/ap-21",
                refused(403, "out_of_scope"),
                "organization not in the list",
            ),
            row(Fixture("obs_o1_o2"), "GET", "/api/v1/orgs/o2/wlans", fwd(200), "observer lists WLANs of a listed org"),
            row(
                Fixture("obs_all"),
                "PUT",
                "/api/v1/msp/settings",
                refused(403, "no_matching_grant"),
                "observer is view-only",
            ),
            row(Fixture("na_all"), "GET", "/api/v1/msp/settings", fwd(200), "Network Admin reads MSP settings"),
            row(
                Fixture("org_obs_o1"),
                "GET",
                "/api/v1/msp/orgs",
                refused(403, "out_of_scope"),
                "an Org role never reaches the MSP portal",
            ),
            row(
                Fixture("inst_o2"),
                "DELETE",
                "/api/v1/orgs/o2/devices/ap-21",
                refused(403, "no_matching_grant"),
                "installer cannot release",
            ),
            row(Fixture("hd_o1"), "POST", "/api/v1/orgs/o1/devices/ap-11/reboot", fwd(201), "helpdesk reboots"),
            row(Fixture("su"), "POST", "/api/v1/msp/admins", fwd(201), "only Super User invites administrators"),
            row(
                Fixture("na_all"),
                "POST",
                "/api/v1/msp/admins",
                refused(403, "no_matching_grant"),
                "Network Admin cannot invite",
            ),
            row(Anonymous, "GET", "/api/v1/orgs/o1", refused(401, "missing_token"), "no token"),
            row(
                BadSignature("su"),
                "GET",
                "/api/v1/orgs/o1",
                refused(401, "invalid_token"),
                "token signed by an untrusted key",
            ),
            row(Anonymous, "GET", "/api/v1/status", fwd(200), "public route"),
            row(
                Fixture("su"),
                "GET",
                "/api/v1/orgs/o1/devices/ap-11/",
                refused(403, "no_route"),
                "trailing slash is another route",
            ),
            row(Fixture("su"), "GET", "/api/v1/orgs/o1/../o2", refused(400, "invalid_path"), "dot-dot segment"),
            row(
                Fixture("su"),
                "GET",
                "/api/v1/orgs/o1/devices%2Fap-11",
                refused(400, "invalid_path"),
                "encoded slash in a segment",
            ),
            row(Fixture("su"), "PATCH", "/api/v1/orgs/o1", refused(403, "no_route"), "no PATCH route"),
            row(Fixture("su"), "GET", "/api/v1/Orgs/o1", refused(403, "no_route"), "paths are case-sensitive"),
            row(Fixture("su"), "GET", "/api/v2/anything", refused(403, "no_route"), "unmatched route"),
        ],
        "jumpcloud-mtp" => vec![
            row(
                Fixture("awb_api"),
                "GET",
                "/api/orgs/o2/users",
                fwd(200),
                "Admin with Billing, API enabled, listed org",
            ),
            row(
                Fixture("awb_api"),
                "GET",
                "/api/orgs/o3/users",
                refused(403, "out_of_scope"),
                "org not in the access list",
            ),
            row(
                Fixture("awb"),
                "GET",
                "/api/orgs/o1/users",
                refused(403, "explicit_deny"),
                "API access is off by default",
            ),
            row(
                Fixture("awb_suspended"),
                "GET",
                "/api/mtp/billing",
                refused(403, "principal_inactive"),
                "suspended admin",
            ),
            row(
                Fixture("admin_api"),
                "GET",
                "/api/orgs/o2/devices",
                refused(403, "out_of_scope"),
                "administrator listed for o1 only",
            ),
            row(Anonymous, "GET", "/api/status", fwd(200), "public route"),
            row(Anonymous, "GET", "/api/mtp/orgs", refused(401, "missing_token"), "no token"),
        ],
        "msp-panel" => vec![
            row(Fixture("owner"), "GET", "/api/clients/c2", fwd(200), "Owner reaches every client"),
            row(Fixture("user_c1"), "GET", "/api/clients/c1/devices", fwd(200), "MSP User on its assigned client"),
            row(
                Fixture("user_c1"),
                "GET",
                "/api/clients/c2/devices",
                refused(403, "out_of_scope"),
                "client not assigned",
            ),
            row(
                Fixture("owner_suspended"),
                "GET",
                "/api/billing",
                refused(403, "principal_inactive"),
                "suspended Owner",
            ),
            row(
                Fixture("globex_owner"),
                "GET",
                "/api/clients/c1",
                refused(403, "out_of_scope"),
                "another MSP's Owner: cross-tenant",
            ),
            row(Fixture("billing"), "GET", "/api/billing", fwd(200), "Billing only views billing"),
            row(
                Fixture("billing"),
                "GET",
                "/api/clients",
                refused(403, "no_matching_grant"),
                "Billing only sees no clients",
            ),
            row(
                Fixture("owner"),
                "PUT",
                "/api/users/bob",
                refused(403, "no_route"),
                "user edits are not routed (fail closed)",
            ),
        ],
        "site24x7-msp" => vec![
            row(Fixture("super"), "GET", "/api/customers/c2/monitors", fwd(200), "MSP Super Admin everywhere"),
            row(
                Fixture("admin"),
                "GET",
                "/api/customers/c2/monitors",
                refused(403, "out_of_scope"),
                "customer admin in another customer",
            ),
            row(
                Fixture("admin_suspended"),
                "GET",
                "/api/customers/c1",
                refused(403, "principal_inactive"),
                "suspended admin",
            ),
            row(
                Fixture("op"),
                "PUT",
                "/api/customers/c1/maintenance_windows/w12",
                refused(403, "condition_false"),
                "operator: window created by another",
            ),
            row(
                Fixture("admin"),
                "PUT",
                "/api/customers/c1/maintenance_windows/w12",
                fwd(200),
                "admin edits any window",
            ),
            row(
                Fixture("other_admin"),
                "GET",
                "/api/customers/c1",
                refused(403, "out_of_scope"),
                "another MSP's admin",
            ),
            row(Fixture("msp_admin"), "GET", "/api/customers/c2", fwd(200), "MSP admin, listed customer"),
            row(
                Fixture("spk"),
                "GET",
                "/api/customers/c1/groups/web/monitors/m11",
                fwd(200),
                "spokesperson, its monitor group",
            ),
            row(
                Fixture("spk"),
                "GET",
                "/api/customers/c1/groups/db/monitors/m12",
                refused(403, "condition_false"),
                "spokesperson, another group",
            ),
        ],
        other => panic!("no pinned rows for {other}"),
    }
}

/// The generated part: requests each principal of the policy's suites sends.
fn requests(policy: &str) -> &'static [(&'static str, &'static str)] {
    match policy {
        "juniper-mist-msp" => &[
            ("GET", "/api/v1/msp/orgs"),
            ("GET", "/api/v1/msp/settings"),
            ("PUT", "/api/v1/msp/settings"),
            ("GET", "/api/v1/msp/admins"),
            ("GET", "/api/v1/orgs/o1"),
            ("GET", "/api/v1/orgs/o1/devices/ap-11"),
            ("GET", "/api/v1/orgs/o2/devices/ap-21"),
            ("GET", "/api/v1/orgs/o9/devices"),
            ("POST", "/api/v1/orgs/o1/devices/ap-12/upgrade"),
            ("PUT", "/api/v1/orgs/o2/wlans/corp"),
            ("GET", "/api/v1/orgs/o1/admins"),
            ("GET", "/api/v1/orgs/o1/sites/s1/insights"),
            ("POST", "/api/v1/orgs/o1/sites/s1/devices/ap-11/install"),
            ("GET", "/api/v1/status"),
            ("GET", "/api/v1/orgs/o1/devices/"),
            ("GET", "/api/v1/orgs/%2e%2e/devices"),
        ],
        "jumpcloud-mtp" => &[
            ("GET", "/api/mtp/orgs"),
            ("GET", "/api/mtp/admins"),
            ("GET", "/api/mtp/billing"),
            ("GET", "/api/mtp/billing/payments"),
            ("GET", "/api/orgs/o1"),
            ("GET", "/api/orgs/o2/users"),
            ("PUT", "/api/orgs/o1/users/u11"),
            ("POST", "/api/orgs/o1/users/u12/reset_password"),
            ("GET", "/api/orgs/o1/devices"),
            ("POST", "/api/orgs/o1/commands/cmd1/run"),
            ("POST", "/api/orgs/o1/commands/cmd2/run"),
            ("GET", "/api/orgs/o3/settings"),
            ("GET", "/api/status"),
            ("DELETE", "/api/mtp/orgs"),
        ],
        "msp-panel" => &[
            ("GET", "/api/clients"),
            ("POST", "/api/clients"),
            ("GET", "/api/clients/c1"),
            ("GET", "/api/clients/c2/departments"),
            ("PUT", "/api/clients/c1/departments/d1/devices/dev-11"),
            ("GET", "/api/clients/c3/devices"),
            ("GET", "/api/billing"),
            ("GET", "/api/users/bob"),
            ("GET", "/api/settings"),
            ("PUT", "/api/settings"),
            ("GET", "/api/status"),
            ("GET", "/api/clients/c1;x=1"),
        ],
        "site24x7-msp" => &[
            ("GET", "/api/customers"),
            ("GET", "/api/customers/c1"),
            ("PUT", "/api/customers/c1"),
            ("GET", "/api/customers/c1/users"),
            ("GET", "/api/customers/c1/monitors"),
            ("GET", "/api/customers/c1/groups/web/monitors/m11"),
            ("GET", "/api/customers/c1/groups/db/monitors"),
            ("POST", "/api/customers/c1/maintenance_windows"),
            ("PUT", "/api/customers/c1/maintenance_windows/w11"),
            ("GET", "/api/customers/c2/reports"),
            ("GET", "/api/status"),
        ],
        other => panic!("no requests for {other}"),
    }
}

/// The principal fixture keys of a seed's suites, in file order.
fn fixture_keys(policy: &str) -> Vec<&'static str> {
    let f = support::folder(policy);
    let mut keys = Vec::new();
    for s in &f.suites {
        let v: serde_json::Value = serde_saphyr::from_str(s.text()).expect("suite parses");
        if let Some(ps) = v.get("principals").and_then(|p| p.as_object()) {
            keys.extend(ps.keys().map(|k| &*Box::leak(k.clone().into_boxed_str())));
        }
    }
    keys
}

/// The engine's answer, mapped to the gateway contract (spec section 2).
fn native(policy: &str, who: Option<&Principal>, method: &str, target: &str) -> Expect {
    let p = support::policy(policy);
    let prepared = who.map(|w| p.prepare_principal(w).expect("fixture principals are valid"));
    let d = p.authorize_http(prepared.as_ref(), &HttpRequest { method, target, headers: &[] });
    if d.allowed() {
        // the upstream decides the status; the matrix checks the forward, not the store
        return Expect::Forwarded(0);
    }
    match d.reason() {
        Reason::InvalidPath => refused(400, "invalid_path"),
        Reason::Unauthenticated => refused(401, "missing_token"),
        r => refused(403, r.as_str()),
    }
}

/// One request of a run and what came back.
struct Sent {
    what: String,
    method: String,
    target: String,
    principal: Option<String>,
    decision_id: String,
}

/// `Err(message)` unless `cond`.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Send one request and check the answer; returns what the upstream should have logged, or
/// what is wrong with the answer.
fn check(
    via: &Via<'_>,
    policy: &str,
    caller: &Caller,
    method: &str,
    target: &str,
    expect: &Expect,
    what: &str,
) -> Result<Option<Sent>, String> {
    let auth = match caller {
        Caller::Fixture(k) => Some(tokens::bearer(&support::principal(policy, k))),
        Caller::BadSignature(k) => {
            let claims = tokens::claims(&support::principal(policy, k));
            Some(format!("Bearer {}", tokens::sign_rs256(&claims, Some(tokens::KID), true)))
        }
        Caller::Anonymous => None,
    };
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let r = (via.send)(method, target, &headers);
    let revision = support::policy(policy).revision();
    let refused = matches!(expect, Expect::Refused(..));
    if refused || via.ids_on_allow || !via.forwards {
        ensure!(
            r.header("x-rolescope-revision") == Some(revision),
            "{what}: revision header {:?} ({})",
            r.header("x-rolescope-revision"),
            r.summary()
        );
        ensure!(r.header("x-rolescope-decision-id").is_some_and(|d| !d.is_empty()), "{what}: no decision id");
    }
    let decision_id = r.header("x-rolescope-decision-id").unwrap_or_default().to_owned();
    match expect {
        Expect::Forwarded(_) if !via.forwards => {
            ensure!(r.status == 200 && r.body.is_empty(), "{what}: not allowed: {}", r.summary());
            let principal = match caller {
                Caller::Fixture(k) => Some(support::principal(policy, k).id),
                _ => None,
            };
            ensure!(
                r.header("x-rolescope-principal").filter(|p| !p.is_empty()).map(str::to_owned) == principal,
                "{what}: principal header {:?}",
                r.header("x-rolescope-principal")
            );
            Ok(None)
        }
        Expect::Forwarded(status) => {
            ensure!(r.json().get("decision_id").is_none(), "{what}: refused by the gateway: {}", r.summary());
            if *status != 0 {
                ensure!(r.status == *status, "{what}: expected {status}, got {}", r.summary());
            } else {
                ensure!(matches!(r.status, 200 | 201 | 404), "{what}: not the upstream's answer: {}", r.summary());
            }
            let principal = match caller {
                Caller::Fixture(k) => Some(support::principal(policy, k).id),
                _ => None,
            };
            Ok(Some(Sent {
                what: what.to_owned(),
                method: method.to_owned(),
                target: target.to_owned(),
                principal,
                decision_id,
            }))
        }
        Expect::Refused(status, reason) => {
            ensure!((r.status, r.reason()) == (*status, reason.clone()), "{what}: got {}", r.summary());
            let body = r.json();
            let error = match status {
                400 => "bad_request",
                401 => "unauthenticated",
                403 => "forbidden",
                _ => "unavailable",
            };
            ensure!(body["error"] == error, "{what}: error field: {}", r.summary());
            ensure!(
                body["decision_id"].as_str() == Some(decision_id.as_str()),
                "{what}: body and header decision ids differ"
            );
            if *status == 401 {
                ensure!(
                    r.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")),
                    "{what}: no WWW-Authenticate: Bearer"
                );
            }
            Ok(None)
        }
    }
}

/// The upstream saw exactly `sent`, in order, each with the gateway's headers.
fn assert_upstream_saw(via: &Via<'_>, sent: &[Sent]) {
    let log = via.upstream.log();
    let got: Vec<(&str, &str)> = log.iter().map(|l| (l.method.as_str(), l.target.as_str())).collect();
    let want: Vec<(&str, &str)> = sent.iter().map(|s| (s.method.as_str(), s.target.as_str())).collect();
    let unexpected: Vec<_> = got.iter().filter(|g| !want.contains(g)).collect();
    assert!(unexpected.is_empty(), "the upstream received requests the gateway should have refused: {unexpected:?}");
    assert_eq!(got, want, "the upstream received exactly the allowed requests");
    for (l, s) in log.iter().zip(sent) {
        let ids = l.header_values("x-rolescope-decision-id");
        if s.decision_id.is_empty() {
            // through a proxy the client does not see the id: one well-formed id upstream
            assert!(
                ids.len() == 1 && ids[0].len() == 32 && ids[0].bytes().all(|b| b.is_ascii_hexdigit()),
                "{}: decision id upstream {ids:?}",
                s.what
            );
        } else {
            assert_eq!(ids, vec![s.decision_id.as_str()], "{}: decision id upstream", s.what);
        }
        match &s.principal {
            Some(p) => {
                assert_eq!(l.header_values("x-rolescope-principal"), vec![p.as_str()], "{}: principal upstream", s.what)
            }
            None => assert!(
                l.header_values("x-rolescope-principal").iter().all(|v| v.is_empty()),
                "{}: anonymous requests carry no principal",
                s.what
            ),
        }
        if via.ids_on_allow {
            assert_eq!(l.header_values("traceparent").len(), 1, "{}: one traceparent upstream", s.what);
        }
    }
}

/// Run the generated matrix and the pinned rows of one seed on a fresh stack; returns the
/// number of requests sent.
fn run(policy: &str) -> usize {
    let stack = Stack::start(policy);
    let send = |m: &str, t: &str, h: &[(&str, &str)]| stack.gateway.send(m, t, h);
    let via = Via { send: &send, upstream: &stack.upstream, forwards: true, ids_on_allow: true };
    let count = run_via(policy, &via);
    if count == 0 {
        eprintln!("{}", stack.gateway.warnings());
    }
    count
}

/// The matrix of one seed through `via`; returns the number of requests sent.
pub(crate) fn run_via(policy: &str, via: &Via<'_>) -> usize {
    via.upstream.clear();
    let mut allows = 0;
    let mut sent = Vec::new();
    let mut count = 0;
    let mut failures = Vec::new();
    for p in pinned(policy) {
        let what = format!("{policy} pinned `{}` ({:?} {} {})", p.why, p.caller, p.method, p.target);
        allows += usize::from(matches!(p.expect, Expect::Forwarded(_)));
        match check(via, policy, &p.caller, p.method, p.target, &p.expect, &what) {
            Ok(s) => sent.extend(s),
            Err(e) => failures.push(e),
        }
        count += 1;
    }
    let callers: Vec<Caller> =
        fixture_keys(policy).into_iter().map(Caller::Fixture).chain(std::iter::once(Caller::Anonymous)).collect();
    for caller in &callers {
        let who = match caller {
            Caller::Fixture(k) => Some(support::principal(policy, k)),
            _ => None,
        };
        for (method, target) in requests(policy) {
            let expect = native(policy, who.as_ref(), method, target);
            let what = format!("{policy} {caller:?} {method} {target} (engine: {expect:?})");
            allows += usize::from(matches!(expect, Expect::Forwarded(_)));
            match check(via, policy, caller, method, target, &expect, &what) {
                Ok(s) => sent.extend(s),
                Err(e) => failures.push(e),
            }
            count += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} requests answered wrongly (first 40):\n{}",
        failures.len(),
        failures.iter().take(40).cloned().collect::<Vec<_>>().join("\n"),
    );
    assert_upstream_saw(via, &sent);
    let allowed = allows;
    assert!(allowed > 0 && allowed < count, "{policy}: the matrix has both allows ({allowed}) and denies");
    eprintln!("{policy}: {count} requests, {allowed} allowed, {} refused", count - allowed);
    count
}

#[test]
fn juniper_mist_msp() {
    assert!(run("juniper-mist-msp") >= 100);
}

#[test]
fn jumpcloud_mtp() {
    assert!(run("jumpcloud-mtp") >= 100);
}

#[test]
fn msp_panel() {
    assert!(run("msp-panel") >= 100);
}

#[test]
fn site24x7_msp() {
    assert!(run("site24x7-msp") >= 100);
}

/// The pinned table and the engine agree (a disagreement is a bug in one of them); no
/// gateway needed.
#[test]
fn pinned_rows_agree_with_the_engine() {
    let mut rows = 0;
    let mut disagreements = Vec::new();
    for policy in support::SEEDS {
        for p in pinned(policy) {
            rows += 1;
            let who = match &p.caller {
                Caller::Fixture(k) => Some(support::principal(policy, k)),
                // the engine never sees a bad signature: identity refuses it first
                Caller::BadSignature(_) => continue,
                Caller::Anonymous => None,
            };
            let n = native(policy, who.as_ref(), p.method, p.target);
            let agrees = match (&n, &p.expect) {
                (Expect::Forwarded(_), Expect::Forwarded(_)) => true,
                (a, b) => a == b,
            };
            if !agrees {
                disagreements.push(format!("{policy} `{}`: engine {n:?}, table {:?}", p.why, p.expect));
            }
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    assert!(rows >= 30, "{rows} pinned rows");
}
