//! The admin address: `/livez`, `/readyz` (a policy is loaded and, when `readiness.health_path`
//! is set, the upstream answers `GET <health_path>` with 2xx), `/metrics` (Prometheus text).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Empty;
use hyper::body::Incoming;

use super::State;
use super::body::{Body, full};
use super::forward::upstream_uri;

/// How long `/readyz` waits for the upstream.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

fn text(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(full(body));
    *res.status_mut() = status;
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub(crate) async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n");
    }
    match req.uri().path() {
        "/livez" => text(StatusCode::OK, "text/plain", "ok\n"),
        "/readyz" => {
            let (ready, detail) = readiness(&state).await;
            let body = serde_json::json!({
                "ready": ready,
                "revision": state.current_revision(),
                "detail": detail,
            });
            let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
            text(status, "application/json", body.to_string())
        }
        "/metrics" => text(StatusCode::OK, "text/plain; version=0.0.4", state.metrics.render()),
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

/// Ready: a policy is loaded (when enforcing), the principal directory too (when configured),
/// and, with `readiness.health_path`, the upstream answers `GET <health_path>` with 2xx.
/// Without a health path the upstream is not asked: an API need not have a special path for
/// the gateway to be routed to.
async fn readiness(state: &State) -> (bool, &'static str) {
    if state.enforcer.is_some() && state.current_revision().is_none() {
        return (false, "no policy loaded");
    }
    if state.directory.as_ref().is_some_and(|d| !d.loaded()) {
        return (false, "no principal directory loaded");
    }
    // authorization only: there is no upstream to probe
    if state.config.mode == super::config::Mode::Authorize {
        return (true, "ok");
    }
    let Some(path) = state.config.health_path.as_deref() else { return (true, "ok") };
    let Ok(uri) = upstream_uri(&state.upstream, path) else { return (false, "upstream URL") };
    let mut req = Request::new(super::body::stream(Empty::<Bytes>::new()));
    *req.uri_mut() = uri;
    if let Some(host) = &state.config.upstream_host {
        req.headers_mut().insert(header::HOST, host.clone());
    }
    match tokio::time::timeout(HEALTH_TIMEOUT, state.client.request(req)).await {
        Ok(Ok(res)) if res.status().is_success() => (true, "ok"),
        Ok(Ok(_)) => (false, "upstream health check failed"),
        Ok(Err(e)) if super::tls::is_certificate_error(&e) => (false, "upstream certificate not accepted"),
        Ok(Err(_)) => (false, "upstream unreachable"),
        Err(_) => (false, "upstream health check timed out"),
    }
}
