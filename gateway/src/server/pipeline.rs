//! Phases 2-4 of every request, whichever front received it (the proxy of `proxy.rs` today;
//! an authorization-only front answers a proxy's sub-request with the same function): who is
//! calling (identity), the facts the decision needs (lookups), the engine's decision, and its
//! record (decision log and metrics). Nothing here forwards or picks a status: the front does
//! the first, `reject.rs` the second.

use std::sync::Arc;
use std::time::Instant;

use http::HeaderMap;
use http::header;
use rolescope_engine::Reason;

use super::State;
use super::decision_log::{DecidedPrincipal, DecisionRecord};
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
    /// The engine's route template for the request (once decided; `None` for no route).
    pub(crate) route: Option<String>,
    pub(crate) start: Instant,
}

impl Exchange {
    pub(crate) fn new() -> Self {
        Self { decision_id: new_id(), revision: None, route: None, start: Instant::now() }
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
            tracing::debug!(cause = t.cause(), reason = t.as_str(), decision_id = %ex.decision_id, "token refused");
            let rejection = Rejection::Token(t);
            log_decision(state, ex, req, None, None, None, rejection);
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
                    log_decision(state, ex, req, Some(&subject), None, None, rejection);
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
    // the principal as the engine decided for it (with principals filed in the bundle: the
    // filed one, none when the subject is not filed)
    let decided = |v: Option<&Verdict>| match (&who, v) {
        (None, _) => None,
        (Some(_), Some(v)) if enforcer.principals_filed() => v.filed.clone().map(DecidedPrincipal::Filed),
        (Some(_), None) if enforcer.principals_filed() => None,
        (Some(w), _) => Some(DecidedPrincipal::Verified(Arc::clone(w))),
    };
    match verdict {
        Err(rejection) => {
            log_decision(state, ex, req, principal.as_deref(), None, decided(None), rejection);
            Err(rejection)
        }
        Ok(v) => {
            ex.revision = Some(v.http.revision().as_str().to_owned());
            ex.route = v.http.route().map(str::to_owned);
            let rejection = Rejection::Denied(v.reason);
            log_decision(state, ex, req, principal.as_deref(), Some(&v), decided(Some(&v)), rejection);
            if v.allowed { Ok(principal) } else { Err(rejection) }
        }
    }
}

/// The bearer token's principal (`None`: no `Authorization` header).
fn identify(state: &State, headers: &HeaderMap) -> Result<Option<Arc<Verified>>, TokenError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| TokenError::NotBearer)?;
    let (scheme, token) = value.split_once(' ').ok_or(TokenError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(TokenError::NotBearer);
    }
    // Without identity settings no token can be verified: a token is refused, never ignored.
    let identity = state.identity.as_ref().ok_or(TokenError::UnknownKey)?;
    identity.verify(token.trim(), unix_now()).map(Some)
}

/// The record step: the metrics, and (when the log is on) one decision record. `rejection` is
/// the refusal (or, for an allowed request, `Denied(Allowed)`, whose reason is `allowed`).
fn log_decision(
    state: &State,
    ex: &Exchange,
    req: &Inbound<'_>,
    principal: Option<&str>,
    v: Option<&Verdict>,
    decided: Option<DecidedPrincipal>,
    rejection: Rejection,
) {
    let allowed = v.is_some_and(|v| v.allowed);
    let reason = if allowed { Reason::Allowed.as_str() } else { rejection.reason() };
    let cause = match rejection {
        Rejection::Token(t) => Some(t.cause()),
        _ => None,
    };
    let took = ex.start.elapsed();
    let route = v.and_then(|v| v.http.route());
    state.metrics.decision(allowed, reason, cause, route, took);
    if !state.log.enabled() {
        return;
    }
    state.log.log(DecisionRecord::new(
        &ex.decision_id,
        req.method,
        req.target,
        principal,
        v.map(|v| &v.http),
        allowed,
        reason,
        cause,
        // refused before the engine (a token): the bundle in force
        ex.revision.clone().or_else(|| state.current_revision()).as_deref(),
        took,
        state.log.input(decided, req.headers),
    ));
}
