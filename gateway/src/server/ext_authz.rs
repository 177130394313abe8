//! Envoy's external authorization over gRPC (`envoy.service.auth.v3.Authorization/Check`, the
//! published protos of the `envoy-types` crate served with tonic), on its own listener
//! (`authorize.grpc_listen`), for Envoy and Istio. The same decision as the HTTP front
//! (`authz.rs`): the original method, raw `:path` and headers from `attributes.request.http`,
//! framing and `pipeline::decide`; the answer is an `OkHttpResponse` with the headers for the
//! upstream, or a `DeniedHttpResponse` with the status, headers and JSON body `reject.rs` maps
//! the refusal to. Only peers in `trusted_proxies` are answered with a decision.

use std::net::SocketAddr;
use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse, HttpResponse, HttpStatusCode,
    OkHttpResponse,
};
use envoy_types::ext_authz::v3::{CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::State;
use super::authz::{self, REASON};
use super::pipeline::Exchange;
use super::reject::{BadRequest, Rejection};

/// Serve `Check` on `listener` until `stop`.
pub(crate) async fn serve(listener: TcpListener, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let service = AuthorizationServer::new(Service { state });
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let result = tonic::transport::Server::builder()
        .serve_with_incoming_shutdown(service, incoming, async move {
            let _ = stop.changed().await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "ext_authz gRPC listener stopped");
    }
}

struct Service {
    state: Arc<State>,
}

#[tonic::async_trait]
impl Authorization for Service {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let remote = request.remote_addr();
        Ok(tonic::Response::new(check(&self.state, remote, &request.into_inner())))
    }
}

/// One `Check`: decide, then the answer Envoy applies.
fn check(state: &State, remote: Option<SocketAddr>, request: &CheckRequest) -> CheckResponse {
    let mut ex = Exchange::new();
    let decided = if remote.is_none_or(|r| !state.config.is_trusted_proxy(r.ip())) {
        Err(Rejection::UntrustedProxy)
    } else {
        let http = request.attributes.as_ref().and_then(|a| a.request.as_ref()).and_then(|r| r.http.as_ref());
        match http {
            None => Err(Rejection::BadRequest(BadRequest::MissingOriginal)),
            Some(http) => {
                headers(http).and_then(|h| authz::decide_original(state, &http.method, target(http), &h, &mut ex))
            }
        }
    };
    let mut response = CheckResponse::new();
    let status = match decided {
        Ok(principal) => {
            let mut ok = OkHttpResponseBuilder::new();
            // a client-sent principal never reaches the upstream, with or without a principal now
            ok.remove_header(super::forward::PRINCIPAL.as_str());
            for (name, value) in authz::upstream_headers(principal.as_deref(), &ex, state) {
                ok.add_header(name.as_str(), value, None, false);
            }
            let ok: OkHttpResponse = ok.build();
            response.set_http_response(HttpResponse::OkResponse(ok));
            state.metrics.request(200, ex.start.elapsed());
            tonic::Status::ok("allowed")
        }
        Err(rejection) => {
            let (status, _, reason) = rejection.parts();
            let mut denied = DeniedHttpResponseBuilder::new();
            denied.set_http_status(
                HttpStatusCode::try_from(i32::from(status.as_u16())).unwrap_or(HttpStatusCode::Forbidden),
            );
            denied.add_header(header::CONTENT_TYPE.as_str(), "application/json", None, false);
            denied.add_header(header::CACHE_CONTROL.as_str(), "no-store", None, false);
            denied.add_header(REASON.as_str(), reason, None, false);
            if let Some(challenge) = rejection.challenge() {
                denied.add_header(header::WWW_AUTHENTICATE.as_str(), challenge, None, false);
            }
            for (name, value) in authz::upstream_headers(None, &ex, state) {
                denied.add_header(name.as_str(), value, None, false);
            }
            denied.set_body(rejection.body(&ex.decision_id));
            let denied: DeniedHttpResponse = denied.build();
            response.set_http_response(HttpResponse::DeniedResponse(denied));
            state.metrics.request(status.as_u16(), ex.start.elapsed());
            tonic::Status::new(rejection.grpc_code(), reason)
        }
    };
    response.set_status(status);
    response
}

/// The raw target: `path` is the request line's target (path and query, undecoded).
fn target(http: &HttpRequest) -> &str {
    &http.path
}

/// The original headers: `header_map` when Envoy sends it (`encode_raw_headers`; repeated
/// headers kept apart), else `headers` (repeated headers joined by Envoy). Pseudo-headers
/// are dropped; `Host` is the original authority. A name or value that is not a header
/// refuses the request.
fn headers(http: &HttpRequest) -> Result<HeaderMap, Rejection> {
    let bad = || Rejection::BadRequest(BadRequest::Unrepresentable);
    let mut out = HeaderMap::new();
    let mut add = |k: &str, v: &[u8]| -> Result<(), Rejection> {
        if k.starts_with(':') {
            return Ok(());
        }
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad())?;
        let value = HeaderValue::from_bytes(v).map_err(|_| bad())?;
        out.append(name, value);
        Ok(())
    };
    match &http.header_map {
        Some(map) => {
            for h in &map.headers {
                let v = if h.raw_value.is_empty() { h.value.as_bytes() } else { h.raw_value.as_slice() };
                add(&h.key, v)?;
            }
        }
        None => {
            for (k, v) in &http.headers {
                add(k, v.as_bytes())?;
            }
        }
    }
    if !http.host.is_empty() {
        out.insert(header::HOST, HeaderValue::from_str(&http.host).map_err(|_| bad())?);
    }
    Ok(out)
}
