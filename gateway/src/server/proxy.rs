//! The request path: framing checks, identity, one engine decision, and the forward to the
//! upstream (pooled client, streamed bodies, hop-by-hop and internal headers stripped).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::State;
use super::body::{Body, stream};
use super::conn::HeadFinding;
use super::decision_log::{DecisionRecord, now_rfc3339};
use super::enforce::{HttpQuery, Verdict};
use super::identity::Verified;
use super::reject::{BadRequest, Rejection, TokenError};

/// The upstream client: pooled keep-alive connections.
pub(crate) type UpstreamClient = Client<HttpConnector, Body>;

pub(crate) fn client() -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(1024)
        .build(connector)
}

/// The prefix of every internal header; clients may not send any.
const INTERNAL_PREFIX: &str = "x-rolescope-";
static PRINCIPAL: HeaderName = HeaderName::from_static("x-rolescope-principal");
static DECISION_ID: HeaderName = HeaderName::from_static("x-rolescope-decision-id");
static REVISION: HeaderName = HeaderName::from_static("x-rolescope-revision");
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Hop-by-hop headers (RFC 9110 7.6.1, plus the legacy ones proxies drop).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Remove hop-by-hop headers, every header the `Connection` header names, and (from a client)
/// every `x-rolescope-*` header.
pub(crate) fn strip_headers(headers: &mut HeaderMap, internal_too: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in HOP_BY_HOP {
        headers.remove(*n);
    }
    if internal_too {
        let internal: Vec<HeaderName> =
            headers.keys().filter(|k| k.as_str().starts_with(INTERNAL_PREFIX)).cloned().collect();
        for n in internal {
            headers.remove(n);
        }
    }
}

/// A random id of 16 bytes, as 32 lowercase hex digits.
pub(crate) fn new_id() -> String {
    format!("{:032x}", fastrand::u128(1..))
}

/// A W3C `traceparent` to send upstream: the client's when well-formed, else a new one.
pub(crate) fn traceparent(incoming: Option<&HeaderValue>) -> HeaderValue {
    if let Some(v) = incoming
        && let Ok(s) = v.to_str()
        && valid_traceparent(s)
    {
        return v.clone();
    }
    let span = fastrand::u64(1..);
    HeaderValue::from_str(&format!("00-{}-{span:016x}-01", new_id())).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn valid_traceparent(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    match parts.as_slice() {
        [version, trace, span, flags] => {
            hex(version, 2)
                && *version != "ff"
                && hex(trace, 32)
                && trace.bytes().any(|b| b != b'0')
                && hex(span, 16)
                && span.bytes().any(|b| b != b'0')
                && hex(flags, 2)
        }
        _ => false,
    }
}

/// Requests the gateway will not read further: ambiguous or smuggling-prone framing, a token
/// in the query string.
pub(crate) fn check_framing(req: &Request<Incoming>) -> Result<(), Rejection> {
    let h = req.headers();
    let bad = |b| Err(Rejection::BadRequest(b));
    if h.get_all(header::HOST).iter().count() > 1 {
        return bad(BadRequest::DuplicateHost);
    }
    if h.get_all(header::AUTHORIZATION).iter().count() > 1 {
        return bad(BadRequest::DuplicateAuthorization);
    }
    // What hyper does not pass on; the connection saw it in the head.
    match req.extensions().get::<HeadFinding>() {
        Some(HeadFinding::AmbiguousFraming) => return bad(BadRequest::AmbiguousFraming),
        // the engine refuses a `#` in a target; the `http` crate has dropped it by now
        Some(HeadFinding::Fragment) => return Err(Rejection::Denied(rolescope_engine::Reason::InvalidPath)),
        None => {}
    }
    if h.contains_key(header::TRANSFER_ENCODING) && h.contains_key(header::CONTENT_LENGTH) {
        return bad(BadRequest::AmbiguousFraming);
    }
    if h.get_all(header::CONTENT_LENGTH).iter().count() > 1 {
        return bad(BadRequest::AmbiguousFraming);
    }
    let uri = req.uri();
    if !uri.path().starts_with('/') || req.method() == http::Method::CONNECT {
        return bad(BadRequest::InvalidTarget);
    }
    if let Some(authority) = uri.authority() {
        let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
        if host.is_none_or(|host| !host.eq_ignore_ascii_case(authority.as_str())) {
            return bad(BadRequest::HostMismatch);
        }
    }
    if let Some(q) = uri.query()
        && q.split('&').any(|kv| {
            let name = kv.split('=').next().unwrap_or_default();
            name.eq_ignore_ascii_case("access_token") || name.eq_ignore_ascii_case("id_token")
        })
    {
        return bad(BadRequest::TokenInQuery);
    }
    Ok(())
}

/// What one request came to (for the response headers, the metrics and the log).
pub(crate) struct Exchange {
    pub(crate) decision_id: String,
    pub(crate) revision: Option<String>,
}

/// Seconds since the epoch.
fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Handle one request: decide, then forward or refuse.
pub(crate) async fn handle(state: Arc<State>, req: Request<Incoming>, remote: SocketAddr) -> Response<Body> {
    let start = Instant::now();
    let mut ex = Exchange { decision_id: new_id(), revision: None };
    let mut res = match process(&state, req, remote, &mut ex, start).await {
        Ok(res) => res,
        Err(rejection) => rejection.response(&ex.decision_id),
    };
    let revision = ex.revision.or_else(|| state.current_revision());
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&ex.decision_id) {
        h.insert(DECISION_ID.clone(), v);
    }
    h.insert(
        REVISION.clone(),
        revision.as_deref().and_then(|r| HeaderValue::from_str(r).ok()).unwrap_or(HeaderValue::from_static("none")),
    );
    state.metrics.request(res.status().as_u16(), start.elapsed());
    res
}

async fn process(
    state: &State,
    req: Request<Incoming>,
    remote: SocketAddr,
    ex: &mut Exchange,
    start: Instant,
) -> Result<Response<Body>, Rejection> {
    check_framing(&req)?;
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.limits.max_body_bytes) {
        return Err(Rejection::BodyTooLarge);
    }
    let mut principal = None;
    if let Some(enforcer) = &state.enforcer {
        let verdict = authorize(state, enforcer, &req, ex, start)?;
        principal = verdict;
    }
    forward(state, req, remote, ex, principal.as_deref()).await
}

/// Identity and the engine's decision; `Ok` with the principal id (if any) when allowed.
fn authorize(
    state: &State,
    enforcer: &super::enforce::Enforcer,
    req: &Request<Incoming>,
    ex: &mut Exchange,
    start: Instant,
) -> Result<Option<String>, Rejection> {
    let who = identify(state, req);
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let method = req.method().as_str();
    let who = match who {
        Ok(who) => who,
        Err(t) => {
            let rejection = Rejection::Token(t);
            log_decision(state, ex, method, None, None, rejection.reason(), start);
            return Err(rejection);
        }
    };
    let headers: Vec<(&str, &str)> =
        req.headers().iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v))).collect();
    let query = HttpQuery { method, target, headers: &headers };
    let verdict = enforcer.authorize(who.as_deref(), &query);
    let principal = who.as_ref().map(|w| w.principal.id.clone());
    match verdict {
        Err(rejection) => {
            log_decision(state, ex, method, principal.as_deref(), None, rejection.reason(), start);
            Err(rejection)
        }
        Ok(v) => {
            ex.revision = Some(v.http.revision().as_str().to_owned());
            let rejection = (!v.allowed).then_some(Rejection::Denied(v.reason));
            let reason = rejection.map_or(v.reason.as_str(), Rejection::reason);
            log_decision(state, ex, method, principal.as_deref(), Some(&v), reason, start);
            match rejection {
                Some(r) => Err(r),
                None => Ok(principal),
            }
        }
    }
}

/// The bearer token's principal (`None`: no `Authorization` header).
fn identify(state: &State, req: &Request<Incoming>) -> Result<Option<Arc<Verified>>, TokenError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| TokenError::Invalid)?;
    let (scheme, token) = value.split_once(' ').ok_or(TokenError::Invalid)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(TokenError::Invalid);
    }
    // Without identity settings no token can be verified: a token is refused, never ignored.
    let identity = state.identity.as_ref().ok_or(TokenError::UnknownKey)?;
    identity.verify(token.trim(), unix_now()).map(Some)
}

fn log_decision(
    state: &State,
    ex: &Exchange,
    method: &str,
    principal: Option<&str>,
    v: Option<&Verdict>,
    reason: &'static str,
    start: Instant,
) {
    let allowed = v.is_some_and(|v| v.allowed);
    let took = start.elapsed();
    state.metrics.decision(allowed, took);
    if !state.log.enabled() {
        return;
    }
    state.log.log(DecisionRecord {
        decision_id: ex.decision_id.clone(),
        time: now_rfc3339(),
        principal: principal.map(str::to_owned),
        tenant: v.and_then(|v| v.http.tenant()).map(str::to_owned),
        action: v.and_then(|v| v.http.action()).map(str::to_owned),
        kind: v.and_then(|v| v.http.kind()).map(str::to_owned),
        resource: v.and_then(|v| v.http.resource_id()).map(str::to_owned),
        route: v.and_then(|v| v.http.route()).map(str::to_owned),
        method: method.to_owned(),
        allowed,
        reason,
        revision: ex.revision.clone(),
        latency_us: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
    });
}

/// The upstream URI for a request target.
pub(crate) fn upstream_uri(base: &Uri, target: &str) -> Result<Uri, Rejection> {
    let prefix = base.path().trim_end_matches('/');
    let mut parts = http::uri::Parts::default();
    parts.scheme = base.scheme().cloned();
    parts.authority = base.authority().cloned();
    parts.path_and_query =
        Some(format!("{prefix}{target}").parse().map_err(|_| Rejection::BadRequest(BadRequest::InvalidTarget))?);
    Uri::from_parts(parts).map_err(|_| Rejection::BadRequest(BadRequest::InvalidTarget))
}

async fn forward(
    state: &State,
    req: Request<Incoming>,
    remote: SocketAddr,
    ex: &Exchange,
    principal: Option<&str>,
) -> Result<Response<Body>, Rejection> {
    let (mut parts, body) = req.into_parts();
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = upstream_uri(&state.upstream, target)?;
    parts.version = http::Version::HTTP_11;
    let trace = traceparent(parts.headers.get(&TRACEPARENT));
    let h = &mut parts.headers;
    strip_headers(h, true);
    if let Some(authority) = state.upstream.authority()
        && let Ok(v) = HeaderValue::from_str(authority.as_str())
    {
        h.insert(header::HOST, v);
    }
    if let Some(p) = principal.and_then(|p| HeaderValue::from_str(p).ok()) {
        h.insert(PRINCIPAL.clone(), p);
    }
    if let Ok(v) = HeaderValue::from_str(&ex.decision_id) {
        h.insert(DECISION_ID.clone(), v);
    }
    if let Some(r) = ex.revision.as_deref().and_then(|r| HeaderValue::from_str(r).ok()) {
        h.insert(REVISION.clone(), r);
    }
    h.insert(TRACEPARENT.clone(), trace);
    let forwarded = match h.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {}", remote.ip()),
        None => remote.ip().to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&forwarded) {
        h.insert(X_FORWARDED_FOR.clone(), v);
    }
    let limit = usize::try_from(state.limits.max_body_bytes).unwrap_or(usize::MAX);
    let upstream_req = Request::from_parts(parts, stream(Limited::new(body, limit)));
    let sent = tokio::time::timeout(state.limits.upstream_timeout, state.client.request(upstream_req)).await;
    let res = match sent {
        Err(_) => return Err(Rejection::UpstreamTimeout),
        Ok(Err(e)) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(s) = source {
                if s.is::<http_body_util::LengthLimitError>() {
                    return Err(Rejection::BodyTooLarge);
                }
                source = s.source();
            }
            tracing::warn!(error = %e, "upstream request failed");
            return Err(Rejection::UpstreamUnavailable);
        }
        Ok(Ok(res)) => res,
    };
    let (mut parts, body) = res.into_parts();
    strip_headers(&mut parts.headers, false);
    Ok(Response::from_parts(parts, body.map_err(Into::into).boxed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents() {
        assert!(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert!(!valid_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
        assert!(!valid_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
        assert!(!valid_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert!(!valid_traceparent("garbage"));
        let made = traceparent(None);
        assert!(valid_traceparent(made.to_str().unwrap_or_default()));
    }

    #[test]
    fn upstream_uris_keep_the_base_path() {
        let base: Uri = "http://127.0.0.1:8081/base/".parse().unwrap_or_default();
        assert_eq!(
            upstream_uri(&base, "/api/x?a=1").map(|u| u.to_string()).ok().as_deref(),
            Some("http://127.0.0.1:8081/base/api/x?a=1")
        );
    }
}
