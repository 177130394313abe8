//! The one place that maps every refusal to its HTTP status and JSON body
//! `{"error", "reason", "decision_id"}`. Nothing else in the gateway picks a status for a
//! request it does not forward.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use rolescope_engine::Reason;

use super::body::{Body, full};

/// Why a bearer token is not accepted (HTTP 401).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// No `Authorization: Bearer` on a route that needs a principal.
    Missing,
    /// Not a JWT, a bad signature, an algorithm not pinned, claims that do not map to a
    /// principal, ...
    Invalid,
    /// `exp` is past.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `aud` does not name the configured audience.
    WrongAudience,
    /// No key of the key set has the token's `kid`.
    UnknownKey,
    // The precise causes below answer `invalid_token` like `Invalid`: a client learns no more
    // than before; the decision record, the metric and the debug log name the cause.
    /// `Authorization` is not `Bearer <token>`.
    NotBearer,
    /// Not a JWT (segments, base64, JSON of the header).
    Malformed,
    /// The header names an algorithm that is not pinned (`none`, HS256, one not configured).
    AlgorithmNotAllowed,
    /// The key of the `kid` is of another type or pinned to another algorithm.
    KeyMismatch,
    /// The signature does not verify (a tampered token, another signer).
    BadSignature,
    /// The claims do not describe a principal (no `exp`, no subject, assignments of another
    /// shape).
    Claims,
    /// The JOSE header has a parameter the gateway refuses (`crit`, `b64`).
    HeaderNotAllowed,
}

impl TokenError {
    /// The reason code of the response body.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TokenError::Missing => "missing_token",
            TokenError::Invalid
            | TokenError::NotBearer
            | TokenError::Malformed
            | TokenError::AlgorithmNotAllowed
            | TokenError::KeyMismatch
            | TokenError::BadSignature
            | TokenError::Claims
            | TokenError::HeaderNotAllowed => "invalid_token",
            TokenError::Expired => "expired_token",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::UnknownKey => "unknown_key",
        }
    }

    /// The precise cause (the decision record's `cause`, the `cause` label of
    /// `rolescope_token_failures_total`, the debug log): the body's code, or for an
    /// `invalid_token` what was wrong with it.
    pub(crate) fn cause(self) -> &'static str {
        match self {
            TokenError::NotBearer => "not_bearer",
            TokenError::Malformed => "malformed",
            TokenError::AlgorithmNotAllowed => "algorithm_not_allowed",
            TokenError::KeyMismatch => "key_mismatch",
            TokenError::BadSignature => "bad_signature",
            TokenError::Claims => "claims",
            TokenError::HeaderNotAllowed => "header_not_allowed",
            other => other.as_str(),
        }
    }

    /// Every token refusal.
    #[cfg(test)]
    pub(crate) const ALL: [TokenError; 14] = [
        TokenError::Missing,
        TokenError::Invalid,
        TokenError::Expired,
        TokenError::NotYetValid,
        TokenError::WrongIssuer,
        TokenError::WrongAudience,
        TokenError::UnknownKey,
        TokenError::NotBearer,
        TokenError::Malformed,
        TokenError::AlgorithmNotAllowed,
        TokenError::KeyMismatch,
        TokenError::BadSignature,
        TokenError::Claims,
        TokenError::HeaderNotAllowed,
    ];
}

/// A request the gateway refuses to read further or forward (HTTP 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadRequest {
    /// More than one `Host` header.
    DuplicateHost,
    /// More than one `Authorization` header.
    DuplicateAuthorization,
    /// An absolute-form target whose authority is not the `Host` header.
    HostMismatch,
    /// A token in the query string (`access_token=`): tokens go in `Authorization` only.
    TokenInQuery,
    /// `Content-Length` together with `Transfer-Encoding`, or several lengths.
    AmbiguousFraming,
    /// A line of the request head ends in a bare `\n`.
    BareLineFeed,
    /// The connection's bytes before this request could not be framed (a head or chunk line
    /// the gateway cannot parse): nothing more on the connection is read.
    Unframed,
    /// The request body is not valid framing (a bad chunk), or ended before its length.
    MalformedBody,
    /// An `Upgrade` (WebSocket, h2c, ...) on a route that does not declare it.
    UpgradeRefused,
    /// A request target that is neither origin-form nor absolute-form.
    InvalidTarget,
    /// A request the engine cannot be asked about (over 256 headers, a header name over
    /// 64 KiB, ...).
    Unrepresentable,
    /// Authorization only: the proxy's sub-request does not say which request to decide (no
    /// original method and URI, nor the Envoy path prefix).
    MissingOriginal,
    /// Authorization only: the original request is described twice (two header conventions,
    /// or one header repeated).
    AmbiguousOriginal,
}

impl BadRequest {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BadRequest::DuplicateHost => "duplicate_host",
            BadRequest::DuplicateAuthorization => "duplicate_authorization",
            BadRequest::HostMismatch => "host_mismatch",
            BadRequest::TokenInQuery => "token_in_query",
            BadRequest::AmbiguousFraming => "ambiguous_framing",
            BadRequest::BareLineFeed => "bare_line_feed",
            BadRequest::Unframed => "unframed_request",
            BadRequest::MalformedBody => "malformed_body",
            BadRequest::UpgradeRefused => "upgrade_refused",
            BadRequest::InvalidTarget => "invalid_target",
            BadRequest::Unrepresentable => "invalid_request",
            BadRequest::MissingOriginal => "missing_original_request",
            BadRequest::AmbiguousOriginal => "ambiguous_original_request",
        }
    }
}

/// Why the engine could not answer (HTTP 503).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// No policy bundle is loaded.
    NoPolicy,
    /// The engine failed: a trap, a timeout, out of memory, an answer out of contract.
    EngineFault,
    /// A principal directory is configured and none has loaded yet.
    NoDirectory,
}

/// Every way a request ends without being forwarded (or when forwarding fails).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// The engine denied the request (its reason code). `invalid_path` and `unauthenticated`
    /// map to 400 and 401; every other reason to 403.
    Denied(Reason),
    /// The token is missing or not accepted.
    Token(TokenError),
    /// The request is malformed or ambiguous.
    BadRequest(BadRequest),
    /// The body is larger than `limits.max_body_bytes`.
    BodyTooLarge,
    /// The engine cannot answer.
    Unavailable(Unavailable),
    /// The upstream cannot be reached or failed before answering.
    UpstreamUnavailable,
    /// A certificate was not accepted on the TLS connection to the upstream (the upstream's
    /// does not verify for its name, or the upstream refused the gateway's client certificate):
    /// nothing was sent.
    UpstreamCertificate,
    /// The upstream did not answer within `limits.upstream_timeout`.
    UpstreamTimeout,
    /// The request head did not arrive within `limits.header_timeout` (written on the raw
    /// connection, which is then closed).
    HeaderTimeout,
    /// Authorization only: a peer that is not in `trusted_proxies` asked for a decision.
    UntrustedProxy,
}

impl Rejection {
    /// The HTTP status, the `error` and the `reason` of the body.
    pub(crate) fn parts(self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Rejection::Denied(Reason::InvalidPath) => {
                (StatusCode::BAD_REQUEST, "bad_request", Reason::InvalidPath.as_str())
            }
            Rejection::Denied(Reason::Unauthenticated) => {
                (StatusCode::UNAUTHORIZED, "unauthenticated", TokenError::Missing.as_str())
            }
            Rejection::Denied(reason) => (StatusCode::FORBIDDEN, "forbidden", reason.as_str()),
            Rejection::Token(t) => (StatusCode::UNAUTHORIZED, "unauthenticated", t.as_str()),
            Rejection::BadRequest(b) => (StatusCode::BAD_REQUEST, "bad_request", b.as_str()),
            Rejection::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "body_too_large"),
            Rejection::Unavailable(Unavailable::NoPolicy) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "no_policy")
            }
            Rejection::Unavailable(Unavailable::EngineFault) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "engine_fault")
            }
            Rejection::Unavailable(Unavailable::NoDirectory) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "no_directory")
            }
            Rejection::UpstreamUnavailable => (StatusCode::BAD_GATEWAY, "bad_gateway", "upstream_unavailable"),
            Rejection::UpstreamCertificate => (StatusCode::BAD_GATEWAY, "bad_gateway", "upstream_certificate"),
            Rejection::UpstreamTimeout => (StatusCode::GATEWAY_TIMEOUT, "gateway_timeout", "upstream_timeout"),
            Rejection::HeaderTimeout => (StatusCode::REQUEST_TIMEOUT, "bad_request", "header_timeout"),
            Rejection::UntrustedProxy => (StatusCode::FORBIDDEN, "forbidden", "untrusted_proxy"),
        }
    }

    /// The gRPC status code of Envoy's `CheckResponse` for this refusal (ext_authz over gRPC;
    /// the HTTP status of the denied response is [`Rejection::parts`]'s).
    pub(crate) fn grpc_code(self) -> tonic::Code {
        match self.parts().0 {
            StatusCode::UNAUTHORIZED => tonic::Code::Unauthenticated,
            StatusCode::FORBIDDEN => tonic::Code::PermissionDenied,
            StatusCode::SERVICE_UNAVAILABLE => tonic::Code::Unavailable,
            StatusCode::PAYLOAD_TOO_LARGE => tonic::Code::ResourceExhausted,
            _ => tonic::Code::InvalidArgument,
        }
    }

    /// The JSON body `{"error", "reason", "decision_id"}`.
    pub(crate) fn body(self, decision_id: &str) -> String {
        let (_, error, reason) = self.parts();
        serde_json::json!({ "error": error, "reason": reason, "decision_id": decision_id }).to_string()
    }

    /// `WWW-Authenticate` for a 401 (`None` for every other status).
    pub(crate) fn challenge(self) -> Option<&'static str> {
        if self.parts().0 != StatusCode::UNAUTHORIZED {
            return None;
        }
        Some(match self {
            Rejection::Token(TokenError::Missing) | Rejection::Denied(_) => "Bearer",
            _ => "Bearer error=\"invalid_token\"",
        })
    }

    /// Whether the connection must close after this response: the request stream can no
    /// longer be trusted to say where the next request starts.
    pub(crate) fn closes_connection(self) -> bool {
        matches!(
            self,
            Rejection::BadRequest(
                BadRequest::AmbiguousFraming
                    | BadRequest::BareLineFeed
                    | BadRequest::Unframed
                    | BadRequest::MalformedBody
                    | BadRequest::UpgradeRefused
            ) | Rejection::BodyTooLarge
        )
    }

    /// The reason code (as logged).
    pub(crate) fn reason(self) -> &'static str {
        self.parts().2
    }

    /// The response as bytes on the wire (for a connection hyper has given up on), with
    /// `Connection: close`.
    pub(crate) fn raw(self, decision_id: &str) -> Vec<u8> {
        let status = self.parts().0;
        let body = self.body(decision_id);
        format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncache-control: no-store\r\n\
             x-rolescope-decision-id: {decision_id}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len()
        )
        .into_bytes()
    }

    /// The response: status, JSON body, `WWW-Authenticate: Bearer` on 401. The caller adds the
    /// decision id and revision headers every response carries.
    pub(crate) fn response(self, decision_id: &str) -> Response<Body> {
        let mut res = Response::new(full(Bytes::from(self.body(decision_id))));
        *res.status_mut() = self.parts().0;
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.challenge() {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if self.closes_connection() {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[test]
    fn the_mapping_table() {
        let rows: &[(Rejection, u16, &str, &str)] = &[
            (Rejection::Denied(Reason::OutOfScope), 403, "forbidden", "out_of_scope"),
            (Rejection::Denied(Reason::NoRoute), 403, "forbidden", "no_route"),
            (Rejection::Denied(Reason::PrincipalInactive), 403, "forbidden", "principal_inactive"),
            (Rejection::Denied(Reason::InvalidPath), 400, "bad_request", "invalid_path"),
            (Rejection::Denied(Reason::Unauthenticated), 401, "unauthenticated", "missing_token"),
            (Rejection::Token(TokenError::Expired), 401, "unauthenticated", "expired_token"),
            (Rejection::Token(TokenError::UnknownKey), 401, "unauthenticated", "unknown_key"),
            (Rejection::BadRequest(BadRequest::TokenInQuery), 400, "bad_request", "token_in_query"),
            (Rejection::BadRequest(BadRequest::BareLineFeed), 400, "bad_request", "bare_line_feed"),
            (Rejection::BadRequest(BadRequest::Unframed), 400, "bad_request", "unframed_request"),
            (Rejection::BadRequest(BadRequest::MalformedBody), 400, "bad_request", "malformed_body"),
            (Rejection::BadRequest(BadRequest::UpgradeRefused), 400, "bad_request", "upgrade_refused"),
            (Rejection::BodyTooLarge, 413, "payload_too_large", "body_too_large"),
            (Rejection::Unavailable(Unavailable::NoPolicy), 503, "unavailable", "no_policy"),
            (Rejection::Unavailable(Unavailable::EngineFault), 503, "unavailable", "engine_fault"),
            (Rejection::Unavailable(Unavailable::NoDirectory), 503, "unavailable", "no_directory"),
            (Rejection::UpstreamUnavailable, 502, "bad_gateway", "upstream_unavailable"),
            (Rejection::UpstreamCertificate, 502, "bad_gateway", "upstream_certificate"),
            (Rejection::UpstreamTimeout, 504, "gateway_timeout", "upstream_timeout"),
            (Rejection::UntrustedProxy, 403, "forbidden", "untrusted_proxy"),
            (Rejection::BadRequest(BadRequest::MissingOriginal), 400, "bad_request", "missing_original_request"),
            (Rejection::BadRequest(BadRequest::AmbiguousOriginal), 400, "bad_request", "ambiguous_original_request"),
        ];
        for (r, status, error, reason) in rows {
            assert_eq!(r.parts(), (StatusCode::from_u16(*status).unwrap_or_default(), *error, *reason), "{r:?}");
        }
        // every engine reason but the two with their own status is a 403 with its own code
        for reason in Reason::ALL {
            let (status, _, code) = Rejection::Denied(reason).parts();
            match reason {
                Reason::InvalidPath => assert_eq!(status, StatusCode::BAD_REQUEST),
                Reason::Unauthenticated => assert_eq!(status, StatusCode::UNAUTHORIZED),
                _ => assert_eq!((status, code), (StatusCode::FORBIDDEN, reason.as_str())),
            }
        }
    }

    #[test]
    fn precise_token_causes_answer_invalid_token() {
        let mut causes = std::collections::BTreeSet::new();
        for t in TokenError::ALL {
            let (status, error, reason) = Rejection::Token(t).parts();
            assert_eq!((status, error), (StatusCode::UNAUTHORIZED, "unauthenticated"), "{t:?}");
            assert!(causes.insert(t.cause()), "{t:?}: cause {} twice", t.cause());
            match t {
                TokenError::Missing
                | TokenError::Expired
                | TokenError::NotYetValid
                | TokenError::WrongIssuer
                | TokenError::WrongAudience
                | TokenError::UnknownKey => assert_eq!(t.cause(), reason),
                _ => assert_eq!(reason, "invalid_token", "{t:?}"),
            }
        }
        assert_eq!(TokenError::BadSignature.cause(), "bad_signature");
        assert_eq!(TokenError::AlgorithmNotAllowed.cause(), "algorithm_not_allowed");
    }

    #[tokio::test]
    async fn the_body_and_headers() {
        let res = Rejection::Token(TokenError::WrongAudience).response("d1");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.headers().get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()),
            Some("Bearer error=\"invalid_token\"")
        );
        let body = res.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(v, serde_json::json!({"error": "unauthenticated", "reason": "wrong_audience", "decision_id": "d1"}));
        let res = Rejection::Denied(Reason::Unauthenticated).response("d2");
        assert_eq!(res.headers().get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()), Some("Bearer"));
        assert!(Rejection::Denied(Reason::OutOfScope).response("d3").headers().get(header::WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn grpc_codes_follow_the_http_status() {
        let rows = [
            (Rejection::Denied(Reason::OutOfScope), tonic::Code::PermissionDenied),
            (Rejection::UntrustedProxy, tonic::Code::PermissionDenied),
            (Rejection::Token(TokenError::Missing), tonic::Code::Unauthenticated),
            (Rejection::Denied(Reason::Unauthenticated), tonic::Code::Unauthenticated),
            (Rejection::Denied(Reason::InvalidPath), tonic::Code::InvalidArgument),
            (Rejection::BadRequest(BadRequest::TokenInQuery), tonic::Code::InvalidArgument),
            (Rejection::Unavailable(Unavailable::EngineFault), tonic::Code::Unavailable),
            (Rejection::Unavailable(Unavailable::NoPolicy), tonic::Code::Unavailable),
        ];
        for (r, code) in rows {
            assert_eq!(r.grpc_code(), code, "{r:?}");
        }
    }
}
