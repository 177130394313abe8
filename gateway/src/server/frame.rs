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
        Some(HeadFinding::BareLineFeed) => return bad(BadRequest::BareLineFeed),
        Some(HeadFinding::Unframed) => return bad(BadRequest::Unframed),
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

/// A protocol upgrade the request asks for (`Upgrade`, `Connection: upgrade`, a WebSocket
/// handshake header, `HTTP2-Settings`). `Ok(None)`: none. `Ok(Some(protocol))`: a well-formed
/// HTTP/1.1 upgrade (`Upgrade` naming one protocol, lowercased, with `Connection: upgrade`;
/// not `h2c`), which the front tunnels only on a route that declares it (`upgrades`), after the
/// decision. Anything else that asks for an upgrade is refused here, never forwarded as a
/// plain request.
pub(crate) fn upgrade_request<B>(req: &Request<B>) -> Result<Option<String>, Rejection> {
    let h = req.headers();
    if !asks_upgrade(h) {
        return Ok(None);
    }
    let refused = Err(Rejection::BadRequest(BadRequest::UpgradeRefused));
    // HTTP/1.1 only, one protocol, and no body (the bytes after the head are the tunnel's)
    let body = h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes().iter().any(|b| *b != b'0'));
    if req.version() != http::Version::HTTP_11 || body || h.get_all(header::UPGRADE).iter().count() != 1 {
        return refused;
    }
    let connection_upgrade = h
        .get_all(header::CONNECTION)
        .iter()
        .any(|v| v.as_bytes().split(|b| *b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade")));
    let protocol = h.get(header::UPGRADE).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_ascii_lowercase());
    match protocol {
        Some(p)
            if connection_upgrade
                && !p.is_empty()
                && !p.contains([',', ' ', '\t'])
                && p != "h2c"
                && !h.contains_key("http2-settings") =>
        {
            Ok(Some(p))
        }
        _ => refused,
    }
}

fn asks_upgrade(h: &http::HeaderMap) -> bool {
    h.contains_key(header::UPGRADE)
        || h.get_all(header::CONNECTION)
            .iter()
            .any(|v| v.as_bytes().split(|b| *b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade")))
        || h.keys().any(|k| k.as_str().starts_with("sec-websocket-"))
        || h.contains_key("http2-settings")
}

/// A token in the query string: tokens go in `Authorization` only. Parameter names are
/// compared the way servers and frameworks read them, so no spelling slips past: split at `&`
/// and `;`, `+` as a space, percent-decoded (again while that changes it: some stacks decode
/// twice), surrounding whitespace dropped, a bracket suffix (`access_token[]`) dropped, `.` and
/// spaces read as `_` (PHP), any letter case.
pub(crate) fn check_query(q: &str) -> Result<(), Rejection> {
    if q.split(['&', ';']).any(|kv| is_token_parameter(kv.split('=').next().unwrap_or_default())) {
        return Err(Rejection::BadRequest(BadRequest::TokenInQuery));
    }
    Ok(())
}

/// Whether a raw query parameter name reads as `access_token` or `id_token`.
fn is_token_parameter(raw: &str) -> bool {
    let mut name = raw.replace('+', " ").into_bytes();
    for _ in 0..4 {
        let decoded = percent_decode(&name);
        if decoded == name {
            break;
        }
        name = decoded;
    }
    let name = String::from_utf8_lossy(&name);
    let name = name.split('[').next().unwrap_or_default().trim();
    let name: String = name.chars().map(|c| if c == '.' || c == ' ' { '_' } else { c.to_ascii_lowercase() }).collect();
    name == "access_token" || name == "id_token"
}

/// `%XX` decoded (anything else, an invalid escape included, kept as it is).
fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) = (s.get(i + 1).copied().and_then(hex), s.get(i + 2).copied().and_then(hex))
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_parameters_in_every_spelling() {
        for q in [
            "access_token=x",
            "a=1&ACCESS_TOKEN=x",
            "access%5Ftoken=x",
            "%61ccess_token=x",
            "%2561ccess_token=x",
            "a=1;access_token=x",
            "access_token[]=x",
            "access_token[0]=x",
            "access.token=x",
            "access+token=x",
            "+access_token=x",
            "id_token",
            "Id%5FToken=x",
        ] {
            assert!(check_query(q).is_err(), "{q}");
        }
        for q in ["a=access_token", "my_access_token=x", "access_tokens=x", "x=1&y=%zz", "token=x"] {
            assert!(check_query(q).is_ok(), "{q}");
        }
    }
}
