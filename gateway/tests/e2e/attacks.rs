//! The attack suite (issue 9): path tricks, request smuggling, header abuse and JWT attacks
//! against the real gateway. Each case asserts the status (and the reason where the contract
//! names one) and that the demo upstream received nothing. All cases run, then every failure
//! is reported at once with the observed and the expected answer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;

use crate::support::http::{self, Outcome};
use crate::support::{self, Stack, tokens};

const SEED: &str = "juniper-mist-msp";

/// One attack: raw bytes and the answer the contract requires.
struct Case {
    name: String,
    bytes: Vec<u8>,
    status: u16,
    /// The `reason` the body must carry; `None` when the contract names none.
    reasons: &'static [&'static str],
}

fn case(name: &str, bytes: Vec<u8>, status: u16, reasons: &'static [&'static str]) -> Case {
    Case { name: name.to_owned(), bytes, status, reasons }
}

fn get(target: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    http::request_bytes("GET", target, headers, None)
}

/// Run `cases` against `stack`; returns one line per failure.
fn run(stack: &Stack, cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    for c in cases {
        let outcome = http::exchange(stack.gateway.addr, &c.bytes, Duration::from_secs(20));
        let (status, reason, body) = match &outcome {
            Outcome::Response(r) => (r.status, r.reason(), String::from_utf8_lossy(&r.body).into_owned()),
            Outcome::Closed(b) => (0, String::new(), format!("connection closed: {:?}", String::from_utf8_lossy(b))),
        };
        let reason_ok = c.reasons.is_empty() || c.reasons.contains(&reason.as_str());
        if status != c.status || !reason_ok {
            failures.push(format!(
                "{}: observed {status} `{reason}`, expected {} {:?} ({body})",
                c.name, c.status, c.reasons
            ));
        }
        let log = stack.upstream.log();
        if !log.is_empty() {
            let seen: Vec<String> = log
                .iter()
                .map(|l| {
                    let framing: Vec<String> = l
                        .headers
                        .iter()
                        .filter(|(k, _)| k == "content-length" || k == "transfer-encoding")
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect();
                    format!("{} {} [{}]", l.method, l.target, framing.join(", "))
                })
                .collect();
            failures.push(format!("{}: the upstream received {seen:?}", c.name));
            stack.upstream.clear();
        }
    }
    failures
}

#[track_caller]
fn assert_no_failures(failures: &[String], total: usize) {
    assert!(failures.is_empty(), "{} of {total} attack cases failed:\n{}", failures.len(), failures.join("\n"));
}

/// Path normalization, target forms, letter case, trailing slashes: Network Admin listed for
/// `o1` only tries to reach `o2` (or anything the table does not route). (name, method,
/// target, status, reasons). The authorization-only front and the real proxies in front of it
/// (`authz.rs`, `proxies.rs`) run the same list.
pub(crate) fn path_attacks() -> Vec<(&'static str, &'static str, &'static str, u16, &'static [&'static str])> {
    const BAD: &[&str] = &["invalid_path"];
    let bad = |name, target| (name, "GET", target, 400, BAD);
    vec![
        bad("dot-dot segment", "/api/v1/orgs/o1/../o2/devices"),
        bad("encoded dot-dot", "/api/v1/orgs/o1/%2e%2e/o2/devices"),
        bad("encoded dot-dot, mixed case", "/api/v1/orgs/o1/%2E%2e/o2/devices"),
        bad("dot segment", "/api/v1/orgs/o1/./devices"),
        bad("encoded slash in a segment", "/api/v1/orgs/o1%2F..%2Fo2/devices"),
        bad("encoded backslash in a segment", "/api/v1/orgs/o1%5C..%5Co2/devices"),
        ("raw backslash", "GET", "/api/v1/orgs/o1\\..\\o2/devices", 400, &[]),
        bad("empty segment (//)", "/api/v1//orgs/o2/devices"),
        bad("leading //", "//api/v1/orgs/o2/devices"),
        bad("; matrix parameter", "/api/v1/orgs/o2;o1/devices"),
        bad("; then dot-dot", "/api/v1/orgs/o1;/../o2/devices"),
        bad("# fragment", "/api/v1/orgs/o2/devices#/o1"),
        bad("double encoding (%252e)", "/api/v1/orgs/o1/%252e%252e/o2/devices"),
        bad("double-encoded slash (%252F)", "/api/v1/orgs/o1%252Fo2/devices"),
        bad("overlong UTF-8 dot (%c0%ae)", "/api/v1/orgs/o1/%c0%ae%c0%ae/o2/devices"),
        bad("encoded NUL", "/api/v1/orgs/o2%00/devices"),
        bad("invalid percent-encoding", "/api/v1/orgs/o%zz/devices"),
        ("raw NUL in the target", "GET", "/api/v1/orgs/o2\0/devices", 400, &[]),
        ("tenant id in another case", "GET", "/api/v1/orgs/O1/devices", 403, &["out_of_scope"]),
        ("path in another case", "GET", "/API/v1/orgs/o1/devices", 403, &["no_route"]),
        ("trailing slash", "GET", "/api/v1/orgs/o1/devices/", 403, &["no_route"]),
        ("percent-encoded tenant id (%6f2 = o2)", "GET", "/api/v1/orgs/%6f2/devices", 403, &["out_of_scope"]),
        ("a tenant the token does not hold", "GET", "/api/v1/orgs/o2/devices", 403, &["out_of_scope"]),
        ("absolute-form target naming another host", "GET", "http://evil.example/api/v1/orgs/o1/devices", 400, &[]),
        bad("absolute-form target with dot-dot", "http://localhost/api/v1/orgs/o1/../o2/devices"),
        ("asterisk-form target", "OPTIONS", "*", 400, &[]),
        ("CONNECT (authority form)", "CONNECT", "localhost:80", 400, &[]),
    ]
}

fn path_cases(auth: &str) -> Vec<Case> {
    let a = [("authorization", auth)];
    path_attacks()
        .into_iter()
        .map(|(name, method, target, status, reasons)| {
            case(name, http::request_bytes(method, target, &a, None), status, reasons)
        })
        .collect()
}

/// Framing and header abuse.
fn framing_cases(auth: &str, su: &str) -> Vec<Case> {
    let raw = |s: String| s.into_bytes();
    let smuggled = "GET /api/v1/orgs/o2/devices HTTP/1.1\r\nHost: localhost\r\n\r\n";
    vec![
        case(
            "two Authorization headers",
            get("/api/v1/orgs/o2/devices", &[("authorization", auth), ("authorization", su)]),
            400,
            &[],
        ),
        case(
            "two Host headers",
            get("/api/v1/orgs/o1/devices", &[("host", "localhost"), ("host", "evil.example"), ("authorization", auth)]),
            400,
            &[],
        ),
        case(
            "Content-Length with Transfer-Encoding (CL.TE smuggling)",
            raw(format!(
                "POST /api/v1/orgs/o1/devices HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}",
                5 + smuggled.len()
            )),
            400,
            &[],
        ),
        case(
            "Transfer-Encoding with Content-Length (TE.CL smuggling)",
            raw(format!(
                "POST /api/v1/orgs/o1/devices HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n{smuggled}"
            )),
            400,
            &[],
        ),
        case(
            "two different Content-Lengths",
            raw(format!(
                "POST /api/v1/orgs/o1/devices HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{{}}"
            )),
            400,
            &[],
        ),
        case(
            "obfuscated Transfer-Encoding (xchunked)",
            raw(format!(
                "POST /api/v1/orgs/o1/devices HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\nTransfer-Encoding: xchunked\r\nContent-Length: 2\r\n\r\n{{}}"
            )),
            400,
            &[],
        ),
        case(
            "obfuscated Transfer-Encoding (space before the colon)",
            raw(format!(
                "POST /api/v1/orgs/o1/devices HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"
            )),
            400,
            &[],
        ),
        case(
            "obfuscated Transfer-Encoding (chunked, identity)",
            raw(format!(
                "POST /api/v1/orgs/o1/devices HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"
            )),
            400,
            &[],
        ),
        case(
            "oversized header",
            get("/api/v1/orgs/o1/devices", &[("authorization", auth), ("x-padding", &"a".repeat(64 * 1024))]),
            431,
            &[],
        ),
        case(
            "client-sent x-rolescope-principal without a token",
            get("/api/v1/orgs/o1/devices", &[("x-rolescope-principal", "su")]),
            401,
            &["missing_token"],
        ),
        case(
            "spoofed X-Forwarded-For from loopback, no token",
            get("/api/v1/orgs/o1/devices", &[("x-forwarded-for", "127.0.0.1"), ("x-real-ip", "127.0.0.1")]),
            401,
            &["missing_token"],
        ),
        case(
            "token in the query string",
            get(&format!("/api/v1/orgs/o1/devices?access_token={}", &su[7..]), &[]),
            400,
            &[],
        ),
        case(
            "token in the query string and the header",
            get(&format!("/api/v1/orgs/o2/devices?access_token={}", &su[7..]), &[("authorization", auth)]),
            400,
            &[],
        ),
    ]
}

/// Forged, expired and misdirected tokens (the request itself would be allowed for `su`).
fn jwt_cases(su: &rolescope_engine::Principal) -> Vec<Case> {
    let target = "/api/v1/orgs/o1/devices";
    let claims = tokens::claims(su);
    let with = |name: &str, token: String, reasons: &'static [&'static str]| {
        case(name, get(target, &[("authorization", &format!("Bearer {token}"))]), 401, reasons)
    };
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims.clone();
        f(&mut c);
        c
    };
    let now = tokens::now();
    let valid = tokens::token(su);
    let tampered = {
        // the payload of a valid token swapped for one granting more; the signature kept
        let parts: Vec<&str> = valid.split('.').collect();
        let mut c = claims.clone();
        c["sub"] = json!("someone-else");
        c["assignments"] = json!([{ "role": "super_user", "scope": "msp:rival" }]);
        format!("{}.{}.{}", parts[0], tokens::b64url(c.to_string().as_bytes()), parts[2])
    };
    vec![
        with("alg none", tokens::alg_none(&claims), &["invalid_token"]),
        with("HS256 signed with the RSA public key", tokens::hs256_with_public_key(&claims), &["invalid_token"]),
        with(
            "expired",
            tokens::sign_rs256(&edit(&|c| c["exp"] = json!(now - 60)), Some(tokens::KID), false),
            &["expired_token"],
        ),
        with(
            "nbf in the future",
            tokens::sign_rs256(&edit(&|c| c["nbf"] = json!(now + 600)), Some(tokens::KID), false),
            &["token_not_yet_valid"],
        ),
        with(
            "wrong iss",
            tokens::sign_rs256(&edit(&|c| c["iss"] = json!("https://evil.example")), Some(tokens::KID), false),
            &["wrong_issuer"],
        ),
        with(
            "wrong aud",
            tokens::sign_rs256(&edit(&|c| c["aud"] = json!("someone-else")), Some(tokens::KID), false),
            &["wrong_audience"],
        ),
        with("unknown kid", tokens::sign_rs256(&claims, Some("no-such-key"), false), &["unknown_key"]),
        with(
            "signed by another key under the trusted kid",
            tokens::sign_rs256(&claims, Some(tokens::KID), true),
            &["invalid_token"],
        ),
        with("payload swapped, signature kept", tampered, &["invalid_token"]),
        with("garbage", "not.a.token".into(), &["invalid_token"]),
        with(
            "no exp",
            tokens::sign_rs256(&edit(&|c| drop(c.as_object_mut().unwrap().remove("exp"))), Some(tokens::KID), false),
            &["invalid_token", "expired_token"],
        ),
        case(
            "Basic credentials instead of a bearer token",
            get(target, &[("authorization", "Basic c3U6c3U=")]),
            401,
            &["missing_token", "invalid_token"],
        ),
    ]
}

#[test]
fn attack_suite() {
    let stack =
        Stack::start_with(SEED, |c| c.extra.push_str("limits: { header_timeout: 1s, max_header_bytes: 16384 }\n"));
    let na_o1 = tokens::bearer(&support::principal(SEED, "na_o1"));
    let su_p = support::principal(SEED, "su");
    let su = tokens::bearer(&su_p);
    let mut cases = path_cases(&na_o1);
    cases.extend(framing_cases(&na_o1, &su));
    cases.extend(jwt_cases(&su_p));
    let total = cases.len() + 1;
    assert!(total >= 40, "{total} cases");
    let mut failures = run(&stack, &cases);

    // a client that sends its headers too slowly is cut off (408), nothing forwarded
    let mut s = TcpStream::connect(stack.gateway.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        format!("GET /api/v1/orgs/o1/devices HTTP/1.1\r\nHost: localhost\r\nAuthorization: {na_o1}\r\n").as_bytes(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let _ = s.write_all(b"X-Late: 1\r\n\r\n");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let head = String::from_utf8_lossy(&buf);
    let status: u16 = head.split(' ').nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    if status != 408 {
        failures.push(format!("slow headers: observed {status} ({head:?}), expected 408"));
    }
    if !stack.upstream.log().is_empty() {
        failures.push("slow headers: the upstream received the request".into());
    }
    assert_no_failures(&failures, total);
}

/// Headers the gateway adds or strips, on requests that are allowed (so the upstream sees
/// exactly one request each, with the gateway's values only).
#[test]
fn client_cannot_inject_gateway_headers() {
    let stack = Stack::start(SEED);
    let na = support::principal(SEED, "na_o1");
    let auth = tokens::bearer(&na);
    let r = stack.gateway.send(
        "GET",
        "/api/v1/orgs/o1/devices",
        &[
            ("authorization", &auth),
            ("x-rolescope-principal", "su"),
            ("x-rolescope-decision-id", "forged"),
            ("x-rolescope-revision", "forged"),
            ("x-rolescope-anything", "forged"),
            ("connection", "close, x-rolescope-principal, x-hop"),
            ("x-hop", "must not pass"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("proxy-authorization", "Basic eDp4"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.summary());
    let log = stack.upstream.log();
    assert_eq!(log.len(), 1, "{log:#?}");
    let l = &log[0];
    assert_eq!(l.header_values("x-rolescope-principal"), vec![na.id.as_str()], "the principal is the gateway's");
    assert_eq!(l.header_values("x-rolescope-decision-id"), vec![r.header("x-rolescope-decision-id").unwrap()]);
    assert_eq!(l.header_values("x-rolescope-revision"), vec![support::policy(SEED).revision()]);
    assert!(l.header_values("x-rolescope-anything").is_empty(), "client-sent x-rolescope-* stripped");
    for h in ["x-hop", "keep-alive", "te", "proxy-authorization"] {
        assert!(l.header_values(h).is_empty(), "hop-by-hop `{h}` stripped: {:?}", l.headers);
    }
}

/// A route that reads a query parameter or a header refuses a request that repeats it.
#[test]
fn repeated_parameters_read_by_a_route_are_refused() {
    const POLICY: &str = "jumpcloud-mtp";
    let (_, bundle) = support::variant(POLICY, |name, text| {
        if name.ends_with("routes.yaml") {
            format!(
                "{text}    - {{ route: \"GET /api/orgs/{{org}}/groups\", action: list, resource: group, scope: \"org:{{org}}\", context: {{ channel: api, console: \"query.console\" }} }}\n    \
                 - {{ route: \"GET /api/orgs/{{org}}/auth_policies\", action: list, resource: auth_policy, scope: \"org:{{org}}\", context: {{ channel: api, console: \"header.x-console\" }} }}\n"
            )
        } else {
            text.to_owned()
        }
    });
    let stack = Stack::from_bundle(&bundle, |_| {});
    let auth = tokens::bearer(&support::principal(POLICY, "awb_api"));
    let a = [("authorization", auth.as_str())];
    let cases = vec![
        case(
            "repeated query parameter read by the route",
            get("/api/orgs/o1/groups?console=mtp&console=admin_portal", &a),
            403,
            &["invalid_request"],
        ),
        case(
            "repeated header read by the route",
            get(
                "/api/orgs/o1/auth_policies",
                &[("authorization", &auth), ("x-console", "mtp"), ("x-console", "admin_portal")],
            ),
            403,
            &["invalid_request"],
        ),
        case(
            "tenant from the query does not override the path",
            get("/api/orgs/o3/groups?org=o1", &a),
            403,
            &["out_of_scope"],
        ),
    ];
    let failures = run(&stack, &cases);
    // the same routes with one value each are allowed: the refusals above are about repetition
    let ok = stack.gateway.send("GET", "/api/orgs/o1/groups?console=mtp", &a);
    assert_eq!(ok.status, 404, "forwarded (the demo has no groups): {}", ok.summary());
    assert_no_failures(&failures, cases.len());
}
