//! Phase 1, framing: requests the gateway will not read further, whatever front received them
//! (ambiguous or smuggling-prone framing, a target that is not origin-form, a token in the
//! query string). What hyper hides about the bytes of a head is seen by `conn.rs` and arrives
//! here as a [`HeadFinding`] extension.

use http::{Request, header};

use super::conn::HeadFinding;
use super::reject::{BadRequest, Rejection};

/// Refuse a request whose head is ambiguous, or whose declared body is over `max_body_bytes`.
pub(crate) fn check<B>(req: &Request<B>, max_body_bytes: u64) -> Result<(), Rejection> {
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
    if let Some(q) = uri.query() {
        check_query(q)?;
    }
    let declared = h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body_bytes) {
        return Err(Rejection::BodyTooLarge);
    }
    Ok(())
}

/// A token in the query string: tokens go in `Authorization` only.
pub(crate) fn check_query(q: &str) -> Result<(), Rejection> {
    if q.split('&').any(|kv| {
        let name = kv.split('=').next().unwrap_or_default();
        name.eq_ignore_ascii_case("access_token") || name.eq_ignore_ascii_case("id_token")
    }) {
        return Err(Rejection::BadRequest(BadRequest::TokenInQuery));
    }
    Ok(())
}
