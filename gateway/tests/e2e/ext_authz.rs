//! Envoy ext_authz over gRPC (`envoy.service.auth.v3.Authorization/Check`) against the real
//! binary, called with tonic's generated client from the published protos (`envoy-types`), as
//! Envoy or Istio would call it (no Envoy binary exists on these machines). The e2e matrix gives
//! the gateway's decisions (an `OkHttpResponse` with the principal, decision id and revision,
//! or a `DeniedHttpResponse` with the gateway's status, headers and JSON body), the gRPC status
//! follows the HTTP one, path attacks stay refused, untrusted peers are refused, and nothing
//! reaches the upstream.

use std::collections::HashMap;
use std::net::SocketAddr;

use envoy_types::pb::envoy::config::core::v3::{HeaderMap as PbHeaderMap, HeaderValue as PbHeaderValue};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse};

use crate::authz::authorize_mode;
use crate::matrix::{Via, run_via};
use crate::support::{self, Response, Stack, free_addr, tokens};

const SEED: &str = "juniper-mist-msp";

/// A blocking gRPC client (the e2e tests are synchronous).
struct Client {
    rt: tokio::runtime::Runtime,
    inner: AuthorizationClient<tonic::transport::Channel>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let inner = rt.block_on(AuthorizationClient::connect(format!("http://{addr}"))).expect("gRPC connect");
        Self { rt, inner }
    }

    fn check(&self, request: CheckRequest) -> CheckResponse {
        let mut c = self.inner.clone();
        self.rt.block_on(c.check(request)).expect("Check answers").into_inner()
    }
}

/// What Envoy puts in `attributes.request.http` for `method target` with `headers`
/// (lowercase names, joined when repeated, pseudo-headers included).
fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> CheckRequest {
    let mut map: HashMap<String, String> = HashMap::new();
    for (k, v) in headers {
        map.entry(k.to_ascii_lowercase()).and_modify(|e| *e = format!("{e},{v}")).or_insert_with(|| (*v).to_owned());
    }
    map.insert(":method".into(), method.into());
    map.insert(":path".into(), target.into());
    map.insert(":authority".into(), "portal.example".into());
    let http = HttpRequest {
        method: method.into(),
        path: target.into(),
        host: "portal.example".into(),
        scheme: "https".into(),
        headers: map,
        ..Default::default()
    };
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request { http: Some(http), ..Default::default() }),
            ..Default::default()
        }),
    }
}

/// The response Envoy would send the client (denied), or a 200 carrying the headers Envoy adds
/// upstream (allowed); plus the gRPC status code.
fn as_response(c: &CheckResponse) -> (i32, Response) {
    let code = c.status.as_ref().map_or(-1, |s| s.code);
    let pairs = |hs: &[envoy_types::pb::envoy::config::core::v3::HeaderValueOption]| -> Vec<(String, String)> {
        hs.iter().filter_map(|h| h.header.as_ref()).map(|h| (h.key.clone(), h.value.clone())).collect()
    };
    let r = match &c.http_response {
        Some(HttpResponse::OkResponse(ok)) => Response { status: 200, headers: pairs(&ok.headers), body: Vec::new() },
        Some(HttpResponse::DeniedResponse(d)) => Response {
            status: d.status.as_ref().map_or(403, |s| u16::try_from(s.code).unwrap_or(0)),
            headers: pairs(&d.headers),
            body: d.body.clone().into_bytes(),
        },
        _ => Response { status: 0, headers: Vec::new(), body: Vec::new() },
    };
    (code, r)
}

fn grpc_stack(policy: &str, trusted: &str) -> (Stack, SocketAddr) {
    let g = free_addr();
    (Stack::start_with(policy, |c| authorize_mode(c, trusted, Some(g))), g)
}

/// The e2e matrix of every seed through `Check`; the gRPC code agrees with the status.
#[test]
fn matrix_through_check() {
    for policy in support::SEEDS {
        let (stack, g) = grpc_stack(policy, "127.0.0.1");
        let client = Client::connect(g);
        let send = |m: &str, t: &str, h: &[(&str, &str)]| {
            let (code, r) = as_response(&client.check(request(m, t, h)));
            let want = match r.status {
                200 => 0,  // OK
                401 => 16, // UNAUTHENTICATED
                403 => 7,  // PERMISSION_DENIED
                503 => 14, // UNAVAILABLE
                _ => 3,    // INVALID_ARGUMENT
            };
            assert_eq!(code, want, "{m} {t}: gRPC code for {}", r.summary());
            r
        };
        let via = Via { send: &send, upstream: &stack.upstream, forwards: false, ids_on_allow: true };
        assert!(run_via(policy, &via) >= 100);
    }
}

#[test]
fn path_attacks_stay_refused() {
    let (stack, g) = grpc_stack(SEED, "127.0.0.1");
    let client = Client::connect(g);
    let auth = tokens::bearer(&support::principal(SEED, "na_o1"));
    let mut failures = Vec::new();
    let attacks = crate::attacks::path_attacks();
    for (name, method, target, status, reasons) in &attacks {
        let (status, reasons) = crate::authz::expected(target, *status, reasons);
        let (_, r) = as_response(&client.check(request(method, target, &[("authorization", &auth)])));
        let reason_ok = reasons.is_empty() || reasons.contains(&r.reason().as_str());
        if r.status != status || !reason_ok {
            failures.push(format!("{name}: got {}, expected {status} {reasons:?}", r.summary()));
        }
    }
    stack.upstream.assert_untouched("ext_authz");
    assert!(failures.is_empty(), "{} of {}:\n{}", failures.len(), attacks.len(), failures.join("\n"));
}

/// Allowed: the headers Envoy adds upstream, and a client-sent principal removed; a repeated
/// `Authorization` in `header_map` (Envoy's raw headers) is refused.
#[test]
fn headers_for_the_upstream_and_raw_header_maps() {
    let (stack, g) = grpc_stack(SEED, "127.0.0.1");
    let client = Client::connect(g);
    let na = support::principal(SEED, "na_o1");
    let auth = tokens::bearer(&na);
    let c = client.check(request("GET", "/api/v1/orgs/o1/devices/ap-11", &[("authorization", &auth)]));
    let Some(HttpResponse::OkResponse(ok)) = &c.http_response else { panic!("not allowed: {c:?}") };
    let (_, r) = as_response(&c);
    assert_eq!(r.header("x-rolescope-principal"), Some(na.id.as_str()));
    assert_eq!(r.header("x-rolescope-revision"), Some(support::policy(SEED).revision()));
    assert_eq!(r.header("x-rolescope-decision-id").map(str::len), Some(32));
    assert_eq!(ok.headers_to_remove, vec!["x-rolescope-principal".to_owned()]);

    let mut twice = request("GET", "/api/v1/orgs/o1/devices/ap-11", &[]);
    let raw =
        |k: &str, v: &str| PbHeaderValue { key: k.into(), value: String::new(), raw_value: v.as_bytes().to_vec() };
    if let Some(http) = twice.attributes.as_mut().and_then(|a| a.request.as_mut()).and_then(|r| r.http.as_mut()) {
        http.header_map =
            Some(PbHeaderMap { headers: vec![raw("authorization", &auth), raw("authorization", "Bearer other")] });
    }
    let (code, r) = as_response(&client.check(twice));
    assert_eq!((code, r.status, r.reason().as_str()), (3, 400, "duplicate_authorization"), "{}", r.summary());
    stack.upstream.assert_untouched("ext_authz");
}

/// A peer outside `trusted_proxies` gets no decision.
#[test]
fn untrusted_peers_are_refused() {
    let (stack, g) = grpc_stack(SEED, "10.0.0.0/8");
    let client = Client::connect(g);
    let su = tokens::bearer(&support::principal(SEED, "su"));
    let (code, r) = as_response(&client.check(request("GET", "/api/v1/orgs/o1", &[("authorization", &su)])));
    assert_eq!((code, r.status, r.reason().as_str()), (7, 403, "untrusted_proxy"), "{}", r.summary());
    drop(stack);
}
