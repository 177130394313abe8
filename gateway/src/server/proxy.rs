//! The gateway front: every request goes through the phases in order, each in one place:
//! framing (`frame.rs`), identity, lookups and decision (`pipeline.rs`), forwarding
//! (`forward.rs`). A refusal at any phase ends the request with the response `reject.rs` maps
//! it to; nothing is forwarded unless every phase passed.

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::HeaderValue;
use http::{Request, Response};
use hyper::body::Incoming;

use super::State;
use super::body::Body;
use super::forward::{DECISION_ID, REVISION};
use super::pipeline::{Exchange, Inbound};
use super::reject::{BadRequest, Rejection};
use super::{forward, frame, pipeline};

/// Handle one request: decide, then forward or refuse.
pub(crate) async fn handle(state: Arc<State>, req: Request<Incoming>, remote: SocketAddr) -> Response<Body> {
    let mut ex = Exchange::new();
    let mut res = match process(&state, req, remote, &mut ex).await {
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
    state.metrics.request(res.status().as_u16(), ex.start.elapsed());
    res
}

async fn process(
    state: &State,
    req: Request<Incoming>,
    remote: SocketAddr,
    ex: &mut Exchange,
) -> Result<Response<Body>, Rejection> {
    frame::check(&req, state.limits.max_body_bytes)?;
    let upgrade = frame::upgrade_request(&req)?;
    let inbound = Inbound {
        method: req.method().as_str(),
        target: req.uri().path_and_query().map_or("/", |p| p.as_str()),
        headers: req.headers(),
    };
    let principal = pipeline::decide(state, &inbound, ex)?;
    match upgrade {
        None => forward::forward(state, req, remote, ex, principal.as_deref()).await,
        // allowed; tunnelled only where the decided route declares the protocol
        Some(protocol) if ex.route.as_deref().is_some_and(|r| state.config.upgrade_declared(r, &protocol)) => {
            forward::upgrade(state, req, remote, ex, principal.as_deref(), &protocol).await
        }
        Some(_) => Err(Rejection::BadRequest(BadRequest::UpgradeRefused)),
    }
}
