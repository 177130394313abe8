//! The authorization-only mode (`mode: authorize`) of the real binary, asked the way a proxy
//! asks it: the nginx headers (`X-Original-Method` / `X-Original-URI`), the Caddy / Traefik
//! headers (`X-Forwarded-Method` / `X-Forwarded-Uri` / `X-Forwarded-Host`) and Envoy's HTTP
//! path prefix. The e2e matrix gives the gateway's decisions (200 + principal, or the same
//! status, error and reason), the path attacks stay refused, the descriptive headers are
//! refused from untrusted peers and when ambiguous, no policy is 503, every decision is
//! recorded, and nothing ever reaches the upstream (this mode forwards nothing).

use std::time::Duration;

use crate::matrix::{Via, run_via};
use crate::support::http::{self, Outcome};
use crate::support::{self, Gateway, GatewayConfig, Response, Source, Stack, free_addr, tokens};

const SEED: &str = "juniper-mist-msp";

/// How a proxy describes the original request.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Convention {
    /// nginx's `auth_request` with the documented snippet.
    Nginx,
    /// ingress-nginx's `auth-url`: `X-Original-URL` (scheme, host, raw target) and friends.
    IngressNginx,
    /// Caddy's `forward_auth`, Traefik's `ForwardAuth`.
    Forwarded,
    /// Envoy's ext_authz HTTP service with `path_prefix: /envoy`.
    EnvoyPrefix,
}

/// The authorization-only configuration these tests use (loopback trusted, Envoy prefix
/// `/envoy`, a gRPC listener when `grpc` is set).
pub(crate) fn authorize_mode(c: &mut GatewayConfig, trusted: &str, grpc: Option<std::net::SocketAddr>) {
    c.extra.push_str(&format!("mode: authorize\ntrusted_proxies: [{trusted}]\nauthorize:\n  path_prefix: /envoy\n"));
    if let Some(g) = grpc {
        c.extra.push_str(&format!("  grpc_listen: {g}\n"));
    }
}

/// The sub-request bytes a proxy following `conv` sends for `method target`, carrying the
/// client's `headers`.
pub(crate) fn sub_request(conv: Convention, method: &str, target: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut h: Vec<(&str, &str)> = headers.to_vec();
    match conv {
        Convention::Nginx => {
            h.push(("X-Original-Method", method));
            h.push(("X-Original-URI", target));
            http::request_bytes("GET", "/authorize", &h, None)
        }
        Convention::IngressNginx => {
            let url = format!("https://portal.example{target}");
            h.extend([
                ("X-Original-URL", url.as_str()),
                ("X-Original-Method", method),
                ("X-Sent-From", "nginx-ingress-controller"),
                ("X-Real-IP", "203.0.113.7"),
                ("X-Auth-Request-Redirect", target),
            ]);
            http::request_bytes("GET", "/authorize", &h, None)
        }
        Convention::Forwarded => {
            h.push(("X-Forwarded-Method", method));
            h.push(("X-Forwarded-Uri", target));
            h.push(("X-Forwarded-Host", "portal.example"));
            h.push(("X-Forwarded-Proto", "https"));
            http::request_bytes("GET", "/authorize", &h, None)
        }
        Convention::EnvoyPrefix => http::request_bytes(method, &format!("/envoy{target}"), &h, None),
    }
}

fn ask(gw: &Gateway, conv: Convention, method: &str, target: &str, headers: &[(&str, &str)]) -> Response {
    match http::exchange(gw.addr, &sub_request(conv, method, target, headers), Duration::from_secs(20)) {
        Outcome::Response(r) => r,
        // hyper closes on some malformed heads without an answer: a refusal all the same
        Outcome::Closed(_) => Response { status: 0, headers: Vec::new(), body: Vec::new() },
    }
}

fn authz_stack(policy: &str) -> Stack {
    Stack::start_with(policy, |c| authorize_mode(c, "127.0.0.1", None))
}

/// The e2e matrix of every seed through the nginx convention: the gateway's decisions.
#[test]
fn matrix_nginx_convention() {
    for policy in support::SEEDS {
        let stack = authz_stack(policy);
        let send = |m: &str, t: &str, h: &[(&str, &str)]| ask(&stack.gateway, Convention::Nginx, m, t, h);
        let via = Via { send: &send, upstream: &stack.upstream, forwards: false, ids_on_allow: true };
        assert!(run_via(policy, &via) >= 100);
    }
}

/// The same matrix through ingress-nginx's, Caddy's / Traefik's headers and Envoy's path prefix.
#[test]
fn matrix_forwarded_and_envoy_conventions() {
    let stack = authz_stack(SEED);
    for conv in [Convention::IngressNginx, Convention::Forwarded, Convention::EnvoyPrefix] {
        let send = |m: &str, t: &str, h: &[(&str, &str)]| ask(&stack.gateway, conv, m, t, h);
        let via = Via { send: &send, upstream: &stack.upstream, forwards: false, ids_on_allow: true };
        assert!(run_via(SEED, &via) >= 100, "{conv:?}");
    }
}

/// The expected answer to a path attack carried in a header: the gateway's, except that a
/// target that is not origin-form is `invalid_target` (the gateway's framing refuses it
/// before the engine).
pub(crate) fn expected(target: &str, status: u16, reasons: &'static [&'static str]) -> (u16, &'static [&'static str]) {
    if !target.starts_with('/') { (400, &["invalid_target"]) } else { (status, reasons) }
}

#[test]
fn path_attacks_stay_refused() {
    let stack = authz_stack(SEED);
    let auth = tokens::bearer(&support::principal(SEED, "na_o1"));
    let mut failures = Vec::new();
    let mut n = 0;
    for conv in [Convention::Nginx, Convention::IngressNginx, Convention::Forwarded, Convention::EnvoyPrefix] {
        for (name, method, target, status, reasons) in crate::attacks::path_attacks() {
            // a NUL cannot be written into a header value; the request line carries it for Envoy
            if target.contains('\0') && !matches!(conv, Convention::EnvoyPrefix) {
                continue;
            }
            // Envoy's prefix: the request line is the original one (absolute form is no prefix)
            let (status, reasons) = match conv {
                // (ingress-nginx: the URL's authority swallows the scheme of such a target)
                Convention::EnvoyPrefix | Convention::IngressNginx if !target.starts_with('/') => (400, &[][..]),
                _ => expected(target, status, reasons),
            };
            n += 1;
            let r = ask(&stack.gateway, conv, method, target, &[("authorization", &auth)]);
            let reason_ok = reasons.is_empty() || reasons.contains(&r.reason().as_str());
            // hyper's own refusal of a malformed line: 400 with an empty body, or a close
            let hyper_ok = reasons.is_empty() && (r.status == 0 || r.status == 400);
            if !(hyper_ok || (r.status == status && reason_ok)) {
                failures.push(format!("{conv:?} {name}: got {}, expected {status} {reasons:?}", r.summary()));
            }
        }
    }
    stack.upstream.assert_untouched("authorization only");
    assert!(failures.is_empty(), "{} of {n}:\n{}", failures.len(), failures.join("\n"));
}

/// The descriptive headers from a peer not in `trusted_proxies`: refused, whatever they say.
#[test]
fn untrusted_peers_are_refused() {
    let stack = Stack::start_with(SEED, |c| authorize_mode(c, "10.0.0.0/8", None));
    let su = tokens::bearer(&support::principal(SEED, "su"));
    for conv in [Convention::Nginx, Convention::Forwarded, Convention::EnvoyPrefix] {
        let r = ask(&stack.gateway, conv, "GET", "/api/v1/orgs/o1/devices/ap-11", &[("authorization", &su)]);
        assert_eq!((r.status, r.reason().as_str()), (403, "untrusted_proxy"), "{conv:?}: {}", r.summary());
        assert_eq!(r.json()["error"], "forbidden");
        assert!(r.header("x-rolescope-principal").is_none());
    }
}

/// Two conventions at once, a repeated descriptive header, half a description, none: refused.
#[test]
fn ambiguous_or_missing_descriptions_are_refused() {
    let stack = authz_stack(SEED);
    let su = tokens::bearer(&support::principal(SEED, "su"));
    let target = "/api/v1/orgs/o1/devices/ap-11";
    let a = ("authorization", su.as_str());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            // a client-sent X-Forwarded-Uri copied by nginx next to nginx's own X-Original-URI
            "nginx and forwarded headers",
            http::request_bytes(
                "GET",
                "/authorize",
                &[a, ("x-original-method", "GET"), ("x-original-uri", "/api/v1/status"), ("x-forwarded-uri", target)],
                None,
            ),
            "ambiguous_original_request",
        ),
        (
            "X-Original-URI twice",
            http::request_bytes(
                "GET",
                "/authorize",
                &[a, ("x-original-method", "GET"), ("x-original-uri", target), ("x-original-uri", "/api/v1/status")],
                None,
            ),
            "ambiguous_original_request",
        ),
        (
            "Envoy prefix and nginx headers",
            http::request_bytes(
                "GET",
                &format!("/envoy{target}"),
                &[a, ("x-original-method", "GET"), ("x-original-uri", "/api/v1/status")],
                None,
            ),
            "ambiguous_original_request",
        ),
        (
            "X-Original-URI and X-Original-URL disagree",
            http::request_bytes(
                "GET",
                "/authorize",
                &[
                    a,
                    ("x-original-method", "GET"),
                    ("x-original-uri", "/api/v1/status"),
                    ("x-original-url", &format!("https://portal.example{target}")),
                ],
                None,
            ),
            "ambiguous_original_request",
        ),
        (
            "method without URI",
            http::request_bytes("GET", "/authorize", &[a, ("x-forwarded-method", "GET")], None),
            "missing_original_request",
        ),
        ("no description", http::request_bytes("GET", target, &[a], None), "missing_original_request"),
        (
            "token in the original query",
            http::request_bytes(
                "GET",
                "/authorize",
                &[("x-original-method", "GET"), ("x-original-uri", &format!("{target}?access_token={}", &su[7..]))],
                None,
            ),
            "token_in_query",
        ),
        (
            "CONNECT as the original method",
            http::request_bytes(
                "GET",
                "/authorize",
                &[a, ("x-original-method", "CONNECT"), ("x-original-uri", target)],
                None,
            ),
            "invalid_target",
        ),
    ];
    for (name, bytes, reason) in cases {
        let r = http::exchange(stack.gateway.addr, &bytes, Duration::from_secs(20)).response(name);
        assert_eq!((r.status, r.reason().as_str()), (400, reason), "{name}: {}", r.summary());
        assert_eq!(r.header("x-rolescope-reason"), Some(reason), "{name}");
    }
    stack.upstream.assert_untouched("authorization only");
}

/// No policy loaded: 503 `no_policy` to the proxy (fail closed), and not ready.
#[test]
fn no_policy_fails_closed() {
    let upstream = support::Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"format\": \"rolescope-bundle/1\"}").unwrap();
    let mut config = GatewayConfig::new(&upstream, Source::File(broken, false));
    authorize_mode(&mut config, "127.0.0.1", None);
    let gw = Gateway::start(&config);
    let su = tokens::bearer(&support::principal(SEED, "su"));
    let r = ask(&gw, Convention::Nginx, "GET", "/api/v1/orgs/o1/devices/ap-11", &[("authorization", &su)]);
    assert_eq!((r.status, r.reason().as_str()), (503, "no_policy"), "{}", r.summary());
    assert_eq!(http::try_status(gw.admin, "/readyz"), 503);
    upstream.assert_untouched("no policy");
}

/// Every answer is a decision record with the original method; allowed ones name the
/// principal; the principal header is the verified one, never a client-sent one.
#[test]
fn decisions_are_recorded() {
    let stack = authz_stack(SEED);
    let na = support::principal(SEED, "na_o1");
    let auth = tokens::bearer(&na);
    let spoof = [("authorization", auth.as_str()), ("x-rolescope-principal", "su")];
    let ok = ask(&stack.gateway, Convention::Nginx, "POST", "/api/v1/orgs/o1/devices/ap-11/reboot", &spoof);
    assert_eq!(ok.status, 200, "{}", ok.summary());
    assert_eq!(ok.header("x-rolescope-principal"), Some(na.id.as_str()));
    assert_eq!(ok.header("x-rolescope-revision"), Some(support::policy(SEED).revision()));
    let no = ask(&stack.gateway, Convention::Forwarded, "DELETE", "/api/v1/orgs/o2/devices/ap-21", &spoof);
    assert_eq!((no.status, no.reason().as_str()), (403, "out_of_scope"), "{}", no.summary());
    let log_path = stack.gateway.dir.path().join("decisions.jsonl");
    let mut records = Vec::new();
    for _ in 0..200 {
        records = std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .collect();
        if records.len() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let find = |id: &str| records.iter().find(|r| r["decision_id"] == id).cloned().unwrap_or_default();
    let a = find(ok.header("x-rolescope-decision-id").unwrap());
    assert_eq!((a["allowed"].as_bool(), a["request"]["method"].as_str()), (Some(true), Some("POST")), "{records:?}");
    assert_eq!(a["principal"], na.id.as_str());
    let d = find(no.header("x-rolescope-decision-id").unwrap());
    assert_eq!((d["allowed"].as_bool(), d["request"]["method"].as_str()), (Some(false), Some("DELETE")), "{records:?}");
    assert_eq!(d["reason"], "out_of_scope");
    stack.upstream.assert_untouched("authorization only");
}

/// The gRPC listener is its own: the HTTP address does not speak gRPC and vice versa is the
/// ext_authz module's concern; here only that `check-config` reports the mode.
#[test]
fn check_config_names_the_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.yaml");
    let bundle = dir.path().join("b.json");
    std::fs::write(&bundle, &support::folder(SEED).bundle).unwrap();
    let g = free_addr();
    std::fs::write(
        &path,
        format!(
            "mode: authorize\nlisten: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\nmodule: {}\npolicy: {{ file: {} }}\ntrusted_proxies: [127.0.0.1]\nauthorize: {{ grpc_listen: {g} }}\n",
            crate::module::path().display(),
            bundle.display()
        ),
    )
    .unwrap();
    let (code, out) = support::run_gateway(&["check-config", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("authorize only: listen 127.0.0.1:0 admin 127.0.0.1:0 grpc {g}")), "{out}");
    // `authorize:` without the mode is refused, naming the field
    std::fs::write(&path, "upstream: http://127.0.0.1:1\nenforce: false\nauthorize: { path_prefix: /x }\n").unwrap();
    let (code, out) = support::run_gateway(&["check-config", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("authorize: only with `mode: authorize`"), "{out}");
}
