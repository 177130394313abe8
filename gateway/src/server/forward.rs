//! Phase 5, forwarding: the upstream client (pooled, streamed bodies), the header hygiene
//! between client and upstream (hop-by-hop and internal headers stripped both ways), and the
//! headers the upstream is told (principal, decision id, revision, trace context).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::State;
use super::body::{Body, stream};
use super::config::UpstreamTls;
use super::pipeline::Exchange;
use super::reject::{BadRequest, Rejection};
use super::tls::TlsError;

/// The upstream client: pooled keep-alive connections, `http://` or `https://`.
pub(crate) type UpstreamClient = Client<HttpsConnector<HttpConnector>, Body>;

/// A client for `http://` and `https://` URLs: TLS verified against the platform's roots plus
/// `upstream_tls.ca_file`, SNI from the URL's host, HTTP/1.1; the client certificate is
/// presented when `with_client_cert` (the upstream client; document fetches go without it).
pub(crate) fn client(tls: &UpstreamTls, with_client_cert: bool) -> Result<UpstreamClient, TlsError> {
    let config = super::tls::client_config(tls, with_client_cert)?;
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    http.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(1024)
        .build(connector))
}

/// Why a request to the upstream failed: a certificate not accepted (either way) is told apart
/// from an upstream that cannot be reached.
pub(crate) fn upstream_failure(e: &hyper_util::client::legacy::Error) -> Rejection {
    if super::tls::is_certificate_error(e) {
        tracing::warn!(error = %e, "upstream TLS: certificate not accepted; nothing was sent");
        Rejection::UpstreamCertificate
    } else {
        tracing::warn!(error = %e, "upstream request failed");
        Rejection::UpstreamUnavailable
    }
}

/// The prefix of every internal header; clients may not send any.
const INTERNAL_PREFIX: &str = "x-rolescope-";
pub(crate) static PRINCIPAL: HeaderName = HeaderName::from_static("x-rolescope-principal");
pub(crate) static DECISION_ID: HeaderName = HeaderName::from_static("x-rolescope-decision-id");
pub(crate) static REVISION: HeaderName = HeaderName::from_static("x-rolescope-revision");
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static FORWARDED: HeaderName = HeaderName::from_static("forwarded");

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

/// The forwarding headers the upstream sees. From a peer in `trusted_proxies` the client's
/// `Forwarded` and `X-Forwarded-*` are kept and the peer is appended to `X-Forwarded-For` and
/// `Forwarded`; from anyone else every `Forwarded`, `X-Forwarded-*` and `X-Real-IP` header is
/// dropped and replaced by the gateway's own (`X-Forwarded-For`, `X-Forwarded-Host`,
/// `Forwarded: for=...;host=...`), never appended to.
fn forwarding_headers(h: &mut HeaderMap, peer: std::net::IpAddr, trusted: bool, host: Option<&HeaderValue>) {
    let node = match peer {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("\"[{v6}]\""),
    };
    let joined = |name: &HeaderName, h: &HeaderMap| -> Option<String> {
        let values: Vec<&str> = h.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
        (!values.is_empty()).then(|| values.join(", "))
    };
    let (xff, fwd) = if trusted {
        let xff = joined(&X_FORWARDED_FOR, h).map_or_else(|| peer.to_string(), |prev| format!("{prev}, {peer}"));
        let fwd = joined(&FORWARDED, h).map_or_else(|| format!("for={node}"), |prev| format!("{prev}, for={node}"));
        (xff, fwd)
    } else {
        let client: Vec<HeaderName> = h
            .keys()
            .filter(|k| k.as_str().starts_with("x-forwarded-") || *k == FORWARDED || k.as_str() == "x-real-ip")
            .cloned()
            .collect();
        for n in client {
            h.remove(n);
        }
        let host = host.and_then(|v| v.to_str().ok()).filter(|v| !v.contains(['"', '\\']));
        if let Some(v) = host.and_then(|v| HeaderValue::from_str(v).ok()) {
            h.insert(X_FORWARDED_HOST.clone(), v);
        }
        let fwd = match host {
            Some(host) => format!("for={node};host=\"{host}\""),
            None => format!("for={node}"),
        };
        (peer.to_string(), fwd)
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert(X_FORWARDED_FOR.clone(), v);
    }
    if let Ok(v) = HeaderValue::from_str(&fwd) {
        h.insert(FORWARDED.clone(), v);
    }
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
    HeaderValue::from_str(&format!("00-{}-{span:016x}-01", super::pipeline::new_id()))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
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

/// The head the upstream sees for a decided request: the target unchanged (below the
/// upstream's base path), hop-by-hop and internal headers stripped, the principal, decision
/// id, revision and trace context added. With `upgrade` (a declared, allowed upgrade) the
/// `Upgrade` and `Connection: upgrade` headers are sent again after the stripping.
fn upstream_head(
    state: &State,
    parts: &mut http::request::Parts,
    remote: SocketAddr,
    ex: &Exchange,
    principal: Option<&str>,
    upgrade: Option<&str>,
) -> Result<(), Rejection> {
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = upstream_uri(&state.upstream, target)?;
    parts.version = http::Version::HTTP_11;
    let trace = traceparent(parts.headers.get(&TRACEPARENT));
    let h = &mut parts.headers;
    let client_host = h.get(header::HOST).cloned();
    let chunked = h.contains_key(header::TRANSFER_ENCODING);
    strip_headers(h, true);
    if chunked {
        // hyper's client sends no body for a GET or HEAD of unknown length unless told: the
        // client's chunked body is forwarded as it came, not dropped.
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    }
    if let Some(protocol) = upgrade {
        let protocol =
            HeaderValue::from_str(protocol).map_err(|_| Rejection::BadRequest(BadRequest::UpgradeRefused))?;
        h.insert(header::UPGRADE, protocol);
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    if let Some(host) = &state.config.upstream_host {
        h.insert(header::HOST, host.clone());
    } else if let Some(authority) = state.upstream.authority()
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
    for name in &state.config.strip_headers {
        h.remove(name);
    }
    forwarding_headers(h, remote.ip(), state.config.is_trusted_proxy(remote.ip()), client_host.as_ref());
    Ok(())
}

/// Send the decided request upstream (its head as [`upstream_head`] makes it); the response
/// streamed back with its hop-by-hop headers stripped.
pub(crate) async fn forward(
    state: &State,
    req: Request<Incoming>,
    remote: SocketAddr,
    ex: &Exchange,
    principal: Option<&str>,
) -> Result<Response<Body>, Rejection> {
    let (mut parts, body) = req.into_parts();
    upstream_head(state, &mut parts, remote, ex, principal, None)?;
    let limit = usize::try_from(state.limits.max_body_bytes).unwrap_or(usize::MAX);
    // A failure of the client's own body (bad chunk framing, cut short) is the client's
    // error: 400, not an upstream failure.
    let client_fault = Arc::new(AtomicBool::new(false));
    let fault = Arc::clone(&client_fault);
    let body = Limited::new(body, limit).map_err(move |e| {
        if !e.is::<http_body_util::LengthLimitError>() {
            fault.store(true, Ordering::Relaxed);
        }
        e
    });
    let upstream_req = Request::from_parts(parts, stream(body));
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
            if client_fault.load(Ordering::Relaxed) {
                return Err(Rejection::BadRequest(BadRequest::MalformedBody));
            }
            return Err(upstream_failure(&e));
        }
        Ok(Ok(res)) => res,
    };
    let (mut parts, body) = res.into_parts();
    strip_headers(&mut parts.headers, false);
    Ok(Response::from_parts(parts, body.map_err(Into::into).boxed()))
}

/// Send a decided upgrade (an allowed request on a route that declares `protocol`; HTTP/1.1)
/// upstream with its `Upgrade`, `Connection: upgrade` and `Sec-WebSocket-*` headers and no
/// body. When the upstream switches protocols (101 naming the same protocol) the 101 goes back
/// to the client and, once both sides have switched, the two connections are joined byte for
/// byte until either closes. Any other answer goes back as an ordinary response.
pub(crate) async fn upgrade(
    state: &State,
    mut req: Request<Incoming>,
    remote: SocketAddr,
    ex: &Exchange,
    principal: Option<&str>,
    protocol: &str,
) -> Result<Response<Body>, Rejection> {
    let client_side = hyper::upgrade::on(&mut req);
    let (mut parts, _) = req.into_parts();
    upstream_head(state, &mut parts, remote, ex, principal, Some(protocol))?;
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts.headers.remove(header::CONTENT_LENGTH);
    let upstream_req = Request::from_parts(parts, super::body::full(bytes::Bytes::new()));
    let sent = tokio::time::timeout(state.limits.upstream_timeout, state.client.request(upstream_req)).await;
    let mut res = match sent {
        Err(_) => return Err(Rejection::UpstreamTimeout),
        Ok(Err(e)) => return Err(upstream_failure(&e)),
        Ok(Ok(res)) => res,
    };
    let switched = res.status() == http::StatusCode::SWITCHING_PROTOCOLS;
    if !switched {
        let (mut parts, body) = res.into_parts();
        strip_headers(&mut parts.headers, false);
        return Ok(Response::from_parts(parts, body.map_err(Into::into).boxed()));
    }
    let answered = res.headers().get(header::UPGRADE).and_then(|v| v.to_str().ok()).map(str::trim);
    if !answered.is_some_and(|a| a.eq_ignore_ascii_case(protocol)) {
        tracing::warn!(protocol, ?answered, "upstream switched to another protocol than asked; not tunnelled");
        return Err(Rejection::UpstreamUnavailable);
    }
    let upstream_side = hyper::upgrade::on(&mut res);
    let (mut parts, _) = res.into_parts();
    strip_headers(&mut parts.headers, false);
    let h = &mut parts.headers;
    h.insert(header::UPGRADE, HeaderValue::from_str(protocol).unwrap_or(HeaderValue::from_static("websocket")));
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    let decision_id = ex.decision_id.clone();
    tokio::spawn(async move {
        let (client, upstream) = match tokio::try_join!(client_side, upstream_side) {
            Ok(both) => both,
            Err(e) => {
                tracing::debug!(error = %e, %decision_id, "upgrade not completed");
                return;
            }
        };
        let mut client = hyper_util::rt::TokioIo::new(client);
        let mut upstream = hyper_util::rt::TokioIo::new(upstream);
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((up, down)) => tracing::debug!(up, down, %decision_id, "tunnel closed"),
            Err(e) => tracing::debug!(error = %e, %decision_id, "tunnel ended with an error"),
        }
    });
    Ok(Response::from_parts(parts, super::body::full(bytes::Bytes::new())))
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
