//! What every fuzz target checks, as plain functions over the raw input bytes. The fuzz
//! targets call them; `engine/tests/fuzz_regressions.rs` includes this file and replays every
//! input under `fuzz/regressions/<target>/` through the same function, so a crash found once
//! stays a failing test until it is fixed. Only `rolescope_engine` and `serde_json` are used.
//!
//! Each function panics (an assertion) when an invariant breaks; any other outcome is a pass.

use std::sync::OnceLock;

use rolescope_engine::{CompileError, HttpRequest, Policy, Principal, PrincipalRef, Reason, Request, Source, Status};

/// The seed policies: folder name, `roles.yaml`, `routes.yaml`.
pub const SEEDS: [(&str, &str, &str); 4] = [
    (
        "jumpcloud-mtp",
        include_str!("../../policies/jumpcloud-mtp/roles.yaml"),
        include_str!("../../policies/jumpcloud-mtp/routes.yaml"),
    ),
    (
        "juniper-mist-msp",
        include_str!("../../policies/juniper-mist-msp/roles.yaml"),
        include_str!("../../policies/juniper-mist-msp/routes.yaml"),
    ),
    (
        "msp-panel",
        include_str!("../../policies/msp-panel/roles.yaml"),
        include_str!("../../policies/msp-panel/routes.yaml"),
    ),
    (
        "site24x7-msp",
        include_str!("../../policies/site24x7-msp/roles.yaml"),
        include_str!("../../policies/site24x7-msp/routes.yaml"),
    ),
];

/// The seed policies, compiled once (with their route tables).
pub fn seed_policies() -> &'static [Policy] {
    static POLICIES: OnceLock<Vec<Policy>> = OnceLock::new();
    POLICIES.get_or_init(|| {
        SEEDS
            .iter()
            .map(|(name, roles, routes)| {
                Policy::compile(&[
                    Source::new(format!("{name}/roles.yaml"), *roles),
                    Source::new(format!("{name}/routes.yaml"), *routes),
                ])
                .expect("a seed policy compiles")
            })
            .collect()
    })
}

/// Per seed policy, a principal holding every role that may be held at the route table's
/// base scope (`routes.base`, the MSP), there.
pub fn superusers() -> &'static [rolescope_engine::PreparedPrincipal] {
    static SUPERUSERS: OnceLock<Vec<rolescope_engine::PreparedPrincipal>> = OnceLock::new();
    SUPERUSERS.get_or_init(|| {
        seed_policies()
            .iter()
            .zip(SEEDS)
            .map(|(policy, (_, _, routes))| {
                let base = routes
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("base:"))
                    .map(|b| b.trim().trim_matches('"').to_owned())
                    .expect("a seed route table has a base");
                let holds = |role: &str| Principal {
                    id: "root".into(),
                    assignments: vec![rolescope_engine::Assignment {
                        role: role.into(),
                        scope: base.clone(),
                        tenants: None,
                    }],
                    ..Principal::default()
                };
                let roles: Vec<&str> =
                    policy.role_names().filter(|r| policy.prepare_principal(&holds(r)).is_ok()).collect();
                let mut p = holds("");
                // attributes some seed policies' denies ask for, where the policy declares them
                for (name, value) in [("api_access_enabled", true), ("mfa_configured", true)] {
                    let mut q = holds(roles.first().copied().unwrap_or(""));
                    q.attributes.insert(name.into(), value.into());
                    if policy.prepare_principal(&q).is_ok() {
                        p.attributes.insert(name.into(), value.into());
                    }
                }
                p.assignments = roles
                    .iter()
                    .map(|r| rolescope_engine::Assignment { role: (*r).into(), scope: base.clone(), tenants: None })
                    .collect();
                policy.prepare_principal(&p).expect("a superuser prepares")
            })
            .collect()
    })
}

// ---------------------------------------------------------------- parse_policy

/// Every diagnostic names one of the sources and points inside it: a line that exists, a
/// column within that line (or just past its end), a byte span inside the text.
pub fn assert_locations(sources: &[Source], err: &CompileError) {
    assert!(!err.diagnostics().is_empty(), "a compile error without diagnostics");
    for d in err.diagnostics() {
        let loc = d.location();
        let src = sources.iter().find(|s| s.name() == loc.file());
        let Some(src) = src else {
            unreachable!("diagnostic {} names `{}`, not one of the sources", d.code(), loc.file())
        };
        let text = src.text();
        if let Some(offset) = loc.offset() {
            assert!(
                offset.checked_add(loc.length()).is_some_and(|end| end <= text.len()),
                "{}: span {offset}+{} outside the {}-byte input ({})",
                d.code(),
                loc.length(),
                text.len(),
                d.message()
            );
        }
        if loc.line() == 0 {
            continue; // unknown position
        }
        // YAML breaks lines at `\r\n`, `\r` and `\n`, JSON at `\n` only; columns may count
        // bytes or characters: the position must exist under one of these readings.
        let (line, column) = (loc.line() as usize, loc.column() as usize);
        let fits = |lines: Vec<&str>| lines.get(line - 1).is_some_and(|l| column <= l.len() + 1);
        let yaml_lines: Vec<&str> = text.split("\r\n").flat_map(|l| l.split(['\r', '\n'])).collect();
        assert!(
            fits(text.split('\n').collect()) || fits(yaml_lines),
            "{}: line {line}, column {column} is outside the input ({})",
            d.code(),
            d.message()
        );
    }
}

/// `parse_policy`: arbitrary text as a YAML and as a JSON role file. Never panics; errors point
/// inside the input; a policy that compiles round-trips through a bundle.
pub fn parse_policy(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for name in ["fuzz.yaml", "fuzz.json"] {
        let sources = [Source::new(name, text.as_ref())];
        match Policy::compile(&sources) {
            Err(e) => assert_locations(&sources, &e),
            Ok(p) => {
                let (q, json) = Policy::bundle(&sources).expect("a compiled policy bundles");
                assert_eq!(p.revision(), q.revision());
                let back = Policy::from_bundle(&json).expect("a bundle loads");
                assert_eq!(back.revision(), p.revision());
            }
        }
    }
}

// ---------------------------------------------------------------- condition

/// The fixed policy of the `condition` target, as JSON so that any input is one string value.
fn condition_policy(when: &str, as_deny: bool) -> String {
    let rule = serde_json::json!({ "resources": ["device"], "actions": ["view"], "when": when });
    let plain = serde_json::json!({ "resources": ["device"], "actions": ["view"] });
    let (grants, denies) = if as_deny { (vec![plain], vec![rule]) } else { (vec![rule], vec![]) };
    serde_json::json!({
        "policy": "fuzz-condition",
        "scopes": { "msp": {}, "org": { "parent": "msp", "tenant": true } },
        "attributes": {
            "principal": { "groups": "set<string>", "clearance": "number", "mfa": "bool", "team": "string" },
            "context": { "channel": "string", "now": "time", "risk": "number" }
        },
        "resources": {
            "device": {
                "actions": ["view"],
                "attributes": { "created_by": "string", "tier": "number", "labels": "set<string>", "urgent": "bool", "ends_at": "time" }
            }
        },
        "roles": { "r": { "grants": grants, "denies": denies } }
    })
    .to_string()
}

/// The requests every compiled condition is evaluated on: attributes present and absent.
fn condition_requests() -> Vec<Request> {
    let principals = [
        serde_json::json!({ "id": "p", "assignments": [{ "role": "r", "scope": "msp:m" }] }),
        serde_json::json!({
            "id": "ana",
            "attributes": { "groups": ["senior", "ops"], "clearance": 3, "mfa": true, "team": "ops" },
            "assignments": [{ "role": "r", "scope": "msp:m/org:o" }]
        }),
    ];
    let resources = [
        serde_json::json!({ "kind": "device", "id": "d", "scope": "msp:m/org:o" }),
        serde_json::json!({
            "kind": "device", "id": "ops", "scope": "msp:m/org:o",
            "attributes": { "created_by": "ana", "tier": 2, "labels": ["vip"], "urgent": false, "ends_at": "2026-06-01T00:00:00Z" }
        }),
    ];
    let contexts =
        [serde_json::json!({}), serde_json::json!({ "channel": "api", "now": "2026-05-01T12:00:00Z", "risk": 7 })];
    let mut out = Vec::new();
    for p in &principals {
        for r in &resources {
            for c in &contexts {
                let req = serde_json::json!({ "principal": p, "action": "view", "resource": r, "context": c });
                out.push(serde_json::from_value(req).expect("a well-formed request"));
            }
        }
    }
    out
}

/// `condition`: the input is the `when:` of the one grant of a fixed policy. Never panics;
/// errors point inside the policy text; on every request `explain` agrees with `check`; and the
/// same condition as a deny under an unconditional grant never allows where the grant allowed
/// (a condition is never both true and not true; an evaluation error fails closed in both).
pub fn condition(data: &[u8]) {
    let when = String::from_utf8_lossy(data);
    let grant_src = [Source::new("cond.json", condition_policy(&when, false))];
    let deny_src = [Source::new("cond.json", condition_policy(&when, true))];
    let (grant, deny) = match (Policy::compile(&grant_src), Policy::compile(&deny_src)) {
        (Ok(g), Ok(d)) => (g, d),
        (Err(g), Err(d)) => {
            assert_locations(&grant_src, &g);
            assert_locations(&deny_src, &d);
            return;
        }
        (g, d) => unreachable!("a condition compiles as a grant but not as a deny (or back): {g:?} / {d:?}"),
    };
    for req in condition_requests() {
        let g = assert_check_explain_agree(&grant, &req);
        let d = assert_check_explain_agree(&deny, &req);
        assert!(!(g && d), "`{when}` both allows as a grant and fails to deny as a deny: {req:?}");
    }
}

/// `check`, `check_report` and `explain` give one answer; returns it.
fn assert_check_explain_agree(policy: &Policy, req: &Request) -> bool {
    let d = policy.check(req);
    let report = policy.check_report(req);
    assert_eq!((d.allowed(), d.reason()), (report.allowed, report.reason), "check vs check_report: {req:?}");
    let ex = policy.explain(req);
    assert_eq!(ex.decision, report, "explain vs check_report: {req:?}");
    assert!(!d.allowed() || d.reason() == Reason::Allowed);
    d.allowed()
}

// ---------------------------------------------------------------- decide

/// `decide`: the first byte picks a seed policy, the rest is a request as JSON. Whatever it
/// holds, `explain(req).decision` equals `check_report(req)` and `check(req)`; when the inputs
/// prepare, the prepared fast path (`decide`) gives the same answer too.
pub fn decide(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    let policies = seed_policies();
    let Some(policy) = policies.get(usize::from(first.wrapping_sub(b'0')) % policies.len()) else { return };
    let Ok(req) = serde_json::from_slice::<Request>(rest) else { return };
    let allowed = assert_check_explain_agree(policy, &req);
    let d = policy.check(&req);
    if let PrincipalRef::Inline(p) = &req.principal
        && let (Ok(pp), Ok(r), Ok(c)) =
            (policy.prepare_principal(p), policy.prepare_resource(&req.resource), policy.prepare_context(&req.context))
    {
        let fast = policy.decide(&pp, &req.action, &r, &c);
        let expect_reason = if pp.status() == Status::Active { fast.reason() } else { d.reason() };
        assert_eq!((fast.allowed(), expect_reason), (allowed, d.reason()), "decide vs check: {req:?}");
    }
}

// ---------------------------------------------------------------- http_route

/// Strict, independent percent-decoding (for the invariant, not shared with the engine).
fn decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Some(out)
}

/// An accepted target's path: no `.`/`..`/empty segment (but a trailing slash), and no
/// decoded `/`, `\`, `%`, `;` or NUL inside a segment.
fn assert_clean_path(target: &str) {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    assert!(path.starts_with('/'), "accepted a target not in origin form: {target:?}");
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, seg) in segments.iter().enumerate() {
        if seg.is_empty() {
            assert!(i + 1 == segments.len(), "accepted an empty segment: {target:?}");
            continue;
        }
        let decoded = decode(seg);
        let Some(decoded) = decoded else { unreachable!("accepted bad percent-encoding: {target:?}") };
        assert!(decoded != b"." && decoded != b"..", "accepted a dot segment: {target:?}");
        assert!(
            !decoded.iter().any(|b| matches!(b, b'/' | b'\\' | b'%' | b';' | 0)),
            "a segment decodes to a forbidden byte: {target:?}"
        );
        assert!(std::str::from_utf8(&decoded).is_ok(), "accepted a segment that is not UTF-8: {target:?}");
    }
}

/// `http_route`: line 1 the method, line 2 the raw target, then `name: value` header lines,
/// through every seed policy's route table. Never panics; an accepted target is clean; an
/// anonymous caller or a principal with no roles is allowed only on public routes; `route`
/// and `authorize_http` agree.
pub fn http_route(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let method = lines.next().unwrap_or("");
    let target = lines.next().unwrap_or("");
    let headers: Vec<(&str, &str)> = lines.filter_map(|l| l.split_once(':')).collect();
    let req = HttpRequest { method, target, headers: &headers };
    let nobody = Principal { id: "nobody".into(), ..Principal::default() };
    for (policy, superuser) in seed_policies().iter().zip(superusers()) {
        let routed = policy.route(&req);
        let anonymous = policy.authorize_http(None, &req);
        let prepared = policy.prepare_principal(&nobody).expect("a principal without roles prepares");
        let no_roles = policy.authorize_http(Some(&prepared), &req);
        match &routed {
            Err(e) => {
                assert!(!anonymous.allowed() && !no_roles.allowed(), "allowed a request that does not route");
                assert_eq!(anonymous.reason(), e.reason());
                assert!(matches!(e.reason(), Reason::InvalidPath | Reason::NoRoute | Reason::InvalidRequest));
            }
            Ok(r) => {
                assert_clean_path(target);
                assert_eq!(anonymous.public(), r.is_public());
                assert_eq!(anonymous.route(), Some(r.route()));
                if !r.is_public() {
                    assert_eq!(anonymous.reason(), Reason::Unauthenticated);
                    let res = r.resource().expect("a protected route has a resource");
                    assert_eq!(anonymous.scope(), Some(res.scope.as_str()));
                    assert_eq!(no_roles.scope(), Some(res.scope.as_str()));
                }
            }
        }
        // every role at the route table's base: allowed only where the request routes
        let d = policy.authorize_http(Some(superuser), &req);
        assert_eq!(d.route(), anonymous.route());
        assert_eq!(d.scope(), anonymous.scope());
        assert!(!d.allowed() || routed.is_ok(), "superuser allowed on a request that does not route");
        assert_eq!(d.allowed(), d.reason() == Reason::Allowed);
        assert_eq!(anonymous.allowed(), anonymous.public(), "anonymous: {anonymous:?}");
        assert_eq!(no_roles.allowed(), no_roles.public(), "no roles: {no_roles:?}");
        assert!(!anonymous.allowed() || anonymous.reason() == Reason::Allowed);
    }
}
