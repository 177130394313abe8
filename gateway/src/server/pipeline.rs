//! Phases 2-4 of every request, whichever front received it (the proxy of `proxy.rs` today;
//! an authorization-only front answers a proxy's sub-request with the same function): who is
//! calling (identity), the facts the decision needs (lookups), the engine's decision, and its
//! record (decision log and metrics). Nothing here forwards or picks a status: the front does
//! the first, `reject.rs` the second.

use std::sync::Arc;
use std::time::Instant;

use http::HeaderMap;
use http::header;

use super::State;
use super::decision_log::{DecisionRecord, now_rfc3339};
use super::enforce::{Enforcer, HttpQuery, Verdict};
use super::identity::Verified;
use super::reject::{Rejection, TokenError};

/// The request to decide, as the front read it: the method and raw origin-form target the
/// upstream will see, and the headers the engine and identity read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Inbound<'a> {
    pub(crate) method: &'a str,
    /// The raw origin-form target (`path?query`), undecoded.
    pub(crate) target: &'a str,
    pub(crate) headers: &'a HeaderMap,
}

/// What one request came to (for the response headers, the metrics and the log).
#[derive(Debug)]
pub(crate) struct Exchange {
    pub(crate) decision_id: String,
    pub(crate) revision: Option<String>,
    pub(crate) start: Instant,
}

impl Exchange {
    pub(crate) fn new() -> Self {
        Self { decision_id: new_id(), revision: None, start: Instant::now() }
    }
}

/// A random id of 16 bytes, as 32 lowercase hex digits.
pub(crate) fn new_id() -> String {
    format!("{:032x}", fastrand::u128(1..))
}

/// Seconds since the epoch.
fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Identity, decision and record. `Ok` with the principal id (if any) when the request may
/// pass; `Err` never passes. Without enforcement (the benchmark baseline) everything passes.
pub(crate) fn decide(state: &State, req: &Inbound<'_>, ex: &mut Exchange) -> Result<Option<String>, Rejection> {
    let Some(enforcer) = &state.enforcer else { return Ok(None) };
    authorize(state, enforcer, req, ex)
}

fn authorize(
    state: &State,
    enforcer: &Enforcer,
    req: &Inbound<'_>,
    ex: &mut Exchange,
) -> Result<Option<String>, Rejection> {
    let who = match identify(state, req.headers) {
        Ok(who) => who,
        Err(t) => {
            let rejection = Rejection::Token(t);
            log_decision(state, ex, req.method, None, None, rejection.reason());
            return Err(rejection);
        }
    };
    // The principal directory (when configured) describes the subject the token names.
    let who = match (who, &state.directory) {
        (Some(w), Some(directory)) => {
            let subject = w.principal.id.clone();
            match directory.resolve(w) {
                Ok(w) => Some(w),
                Err(rejection) => {
                    log_decision(state, ex, req.method, Some(&subject), None, rejection.reason());
                    return Err(rejection);
                }
            }
        }
        (who, _) => who,
    };
    let headers: Vec<(&str, &str)> =
        req.headers.iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v))).collect();
    let query = HttpQuery { method: req.method, target: req.target, headers: &headers };
    let verdict = enforcer.authorize(who.as_deref(), &query);
    let principal = who.as_ref().map(|w| w.principal.id.clone());
    match verdict {
        Err(rejection) => {
            log_decision(state, ex, req.method, principal.as_deref(), None, rejection.reason());
            Err(rejection)
        }
        Ok(v) => {
            ex.revision = Some(v.http.revision().as_str().to_owned());
            let rejection = (!v.allowed).then_some(Rejection::Denied(v.reason));
            let reason = rejection.map_or(v.reason.as_str(), Rejection::reason);
            log_decision(state, ex, req.method, principal.as_deref(), Some(&v), reason);
            match rejection {
                Some(r) => Err(r),
                None => Ok(principal),
            }
        }
    }
}

/// The bearer token's principal (`None`: no `Authorization` header).
fn identify(state: &State, headers: &HeaderMap) -> Result<Option<Arc<Verified>>, TokenError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
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
) {
    let allowed = v.is_some_and(|v| v.allowed);
    let took = ex.start.elapsed();
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
