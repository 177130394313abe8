//! The authorization-only front (`mode: authorize`): rolescope as the external authorization
//! service of a proxy the user already runs (nginx `auth_request`, ingress-nginx `auth-url`,
//! Caddy `forward_auth`, Traefik `ForwardAuth`, Envoy `ext_authz` in HTTP mode). It answers
//! the proxy's sub-request instead of forwarding: 200 with the headers the proxy copies
//! upstream, or the refusal `reject.rs` maps. Same phases as the gateway: framing (`frame.rs`,
//! on the sub-request and on the original target), identity, lookups, decision and record
//! (`pipeline.rs`).
//!
//! The original request comes from the proxy's headers, one convention per sub-request:
//! - nginx: `X-Original-Method` + `X-Original-URI` (set by the documented snippet from
//!   `$request_method` and `$request_uri`, the raw target), or + `X-Original-URL`
//!   (`$scheme://$http_host$request_uri`, what ingress-nginx's `auth-url` sends; its host
//!   becomes `Host`);
//! - Caddy and Traefik: `X-Forwarded-Method` + `X-Forwarded-Uri` (+ `X-Forwarded-Host`);
//! - Envoy's HTTP ext_authz service: the sub-request's own method, and its target after
//!   `authorize.path_prefix`.
//!
//! They are believed only from `trusted_proxies`: any other peer is refused (403
//! `untrusted_proxy`). Two conventions in one sub-request, or one of these headers repeated,
//! is refused (400 `ambiguous_original_request`): a proxy that copies the client's headers
//! into its sub-request (nginx and Caddy do) must never let a client-sent description win.

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use rolescope_engine::Reason;

use super::State;
use super::body::{Body, full};
use super::forward::{DECISION_ID, PRINCIPAL, REVISION};
use super::frame;
use super::pipeline::{self, Exchange, Inbound};
use super::reject::{BadRequest, Rejection};

static X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
static X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
static X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
static X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
static X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// On a refusal: the reason code, for proxies that drop the sub-request's body (nginx).
pub(crate) static REASON: HeaderName = HeaderName::from_static("x-rolescope-reason");

/// The headers that describe the original request (never passed on to the engine).
const DESCRIPTIVE: [&HeaderName; 6] =
    [&X_ORIGINAL_METHOD, &X_ORIGINAL_URI, &X_ORIGINAL_URL, &X_FORWARDED_METHOD, &X_FORWARDED_URI, &X_FORWARDED_HOST];

/// Answer one sub-request.
pub(crate) async fn handle(state: Arc<State>, req: Request<Incoming>, remote: SocketAddr) -> Response<Body> {
    let mut ex = Exchange::new();
    let res = match process(&state, &req, remote, &mut ex) {
        Ok(principal) => allowed(principal.as_deref()),
        Err(rejection) => refused(rejection, &ex.decision_id),
    };
    finish(&state, res, &ex)
}

fn process(
    state: &State,
    req: &Request<Incoming>,
    remote: SocketAddr,
    ex: &mut Exchange,
) -> Result<Option<String>, Rejection> {
    if !state.config.is_trusted_proxy(remote.ip()) {
        return Err(Rejection::UntrustedProxy);
    }
    // the sub-request itself: two `Authorization` headers, smuggling-prone framing, ...
    frame::check(req, state.limits.max_body_bytes)?;
    let raw_target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let (method, target) = original(state, req.method(), raw_target, req.headers())?;
    let headers = original_headers(req.headers());
    decide_original(state, &method, &target, &headers, ex)
}

/// The original method and raw target, from exactly one convention.
fn original(state: &State, method: &Method, raw_target: &str, h: &HeaderMap) -> Result<(String, String), Rejection> {
    for name in DESCRIPTIVE {
        if h.get_all(name).iter().count() > 1 {
            return Err(Rejection::BadRequest(BadRequest::AmbiguousOriginal));
        }
    }
    let value = |name: &HeaderName| -> Result<Option<String>, Rejection> {
        match h.get(name) {
            None => Ok(None),
            // bytes that are not visible ASCII in the target: the engine's answer to bad UTF-8
            Some(v) => v.to_str().map(|s| Some(s.to_owned())).map_err(|_| Rejection::Denied(Reason::InvalidPath)),
        }
    };
    let url = value(&X_ORIGINAL_URL)?.map(|u| split_url(&u)).transpose()?;
    let uri = match (value(&X_ORIGINAL_URI)?, url) {
        (Some(uri), Some((_, path))) if uri != path => {
            return Err(Rejection::BadRequest(BadRequest::AmbiguousOriginal));
        }
        (Some(uri), _) => Some(uri),
        (None, url) => url.map(|(_, path)| path),
    };
    let nginx = (value(&X_ORIGINAL_METHOD)?, uri);
    let forwarded = (value(&X_FORWARDED_METHOD)?, value(&X_FORWARDED_URI)?);
    let envoy = state
        .config
        .authorize
        .path_prefix
        .as_deref()
        .and_then(|p| raw_target.strip_prefix(p))
        .filter(|rest| rest.starts_with('/'));
    let described = [nginx.0.is_some() || nginx.1.is_some(), forwarded.0.is_some() || forwarded.1.is_some()];
    match (described, envoy) {
        ([true, false], None) => both(nginx),
        ([false, true], None) => both(forwarded),
        ([false, false], Some(rest)) => Ok((method.as_str().to_owned(), rest.to_owned())),
        ([false, false], None) => Err(Rejection::BadRequest(BadRequest::MissingOriginal)),
        _ => Err(Rejection::BadRequest(BadRequest::AmbiguousOriginal)),
    }
}

/// `scheme://authority/target` -> (authority, raw target). nginx refuses a `Host` with a `/`,
/// so the first `/` after the authority starts the target it received.
fn split_url(url: &str) -> Result<(String, String), Rejection> {
    let bad = || Rejection::BadRequest(BadRequest::InvalidTarget);
    let (_, rest) = url.split_once("://").ok_or_else(bad)?;
    let slash = rest.find('/').ok_or_else(bad)?;
    let (authority, target) = rest.split_at(slash);
    Ok((authority.to_owned(), target.to_owned()))
}

fn both(pair: (Option<String>, Option<String>)) -> Result<(String, String), Rejection> {
    match pair {
        (Some(m), Some(t)) => Ok((m, t)),
        _ => Err(Rejection::BadRequest(BadRequest::MissingOriginal)),
    }
}

/// The headers the engine and identity read: the sub-request's (proxies copy the client's
/// headers into it) without the descriptive ones; `Host` is the original host when the proxy
/// names it.
fn original_headers(h: &HeaderMap) -> HeaderMap {
    let mut out = h.clone();
    let url_host = h
        .get(&X_ORIGINAL_URL)
        .and_then(|u| u.to_str().ok())
        .and_then(|u| split_url(u).ok())
        .and_then(|(authority, _)| HeaderValue::from_str(&authority).ok());
    if let Some(host) = h.get(&X_FORWARDED_HOST).cloned().or(url_host) {
        out.insert(header::HOST, host);
    }
    for name in DESCRIPTIVE {
        out.remove(name);
    }
    out
}

/// Framing of the original request line (what `frame.rs` checks on a request the gateway
/// receives itself), then identity, decision and record (`pipeline.rs`). Shared with the gRPC
/// front (`ext_authz.rs`).
pub(crate) fn decide_original(
    state: &State,
    method: &str,
    target: &str,
    headers: &HeaderMap,
    ex: &mut Exchange,
) -> Result<Option<String>, Rejection> {
    let m = Method::from_bytes(method.as_bytes()).map_err(|_| Rejection::BadRequest(BadRequest::InvalidTarget))?;
    if m == Method::CONNECT || !target.starts_with('/') {
        return Err(Rejection::BadRequest(BadRequest::InvalidTarget));
    }
    if headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        return Err(Rejection::BadRequest(BadRequest::DuplicateAuthorization));
    }
    if let Some((_, q)) = target.split_once('?') {
        frame::check_query(q.split('#').next().unwrap_or_default())?;
    }
    pipeline::decide(state, &Inbound { method: m.as_str(), target, headers }, ex)
}

/// The headers a proxy copies upstream on an allow: principal (when there is one), decision
/// id, revision.
pub(crate) fn upstream_headers<'a>(
    principal: Option<&'a str>,
    ex: &'a Exchange,
    state: &State,
) -> Vec<(&'static HeaderName, String)> {
    let mut out = Vec::with_capacity(3);
    if let Some(p) = principal {
        out.push((&PRINCIPAL, p.to_owned()));
    }
    out.push((&DECISION_ID, ex.decision_id.clone()));
    let revision = ex.revision.clone().or_else(|| state.current_revision()).unwrap_or_else(|| "none".to_owned());
    out.push((&REVISION, revision));
    out
}

/// 200 with the principal; an anonymous caller (a public route) gets an empty one, so a proxy
/// that copies the header never keeps a client-sent value or a placeholder of its own (Caddy
/// 2.6 copies its unresolved placeholder text when the header is absent).
fn allowed(principal: Option<&str>) -> Response<Body> {
    let mut res = Response::new(full(bytes::Bytes::new()));
    *res.status_mut() = StatusCode::OK;
    let p = principal.and_then(|p| HeaderValue::from_str(p).ok()).unwrap_or(HeaderValue::from_static(""));
    res.headers_mut().insert(PRINCIPAL.clone(), p);
    res
}

fn refused(rejection: Rejection, decision_id: &str) -> Response<Body> {
    let mut res = rejection.response(decision_id);
    res.headers_mut().insert(REASON.clone(), HeaderValue::from_static(rejection.reason()));
    res
}

/// Decision id and revision on every answer, `Cache-Control: no-store`, the metrics.
fn finish(state: &State, mut res: Response<Body>, ex: &Exchange) -> Response<Body> {
    let h = res.headers_mut();
    for (name, value) in upstream_headers(None, ex, state) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name.clone(), v);
        }
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    state.metrics.request(res.status().as_u16(), ex.start.elapsed());
    res
}
