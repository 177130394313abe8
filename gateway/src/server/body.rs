//! The response body type: our own small bodies and the upstream's streamed ones.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};

/// Any error a body may fail with.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response (or forwarded request) body.
pub(crate) type Body = BoxBody<Bytes, BoxError>;

/// A body held in memory.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// A streamed body (the upstream's response, the client's request).
pub(crate) fn stream<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed()
}
