//! The one response/request body type hydrant passes around.
//!
//! A boxed body lets streamed upstream bodies and in-memory `Bytes` share one type without
//! generics leaking into every handler. Boxing `Empty` is free (zero-sized), and `Full<Bytes>`
//! costs one small box; bodies themselves are never copied.

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};

/// Boxed error for bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Body used for every request sent upstream and every response sent to clients.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body holding `bytes` (a refcount bump, never a copy).
pub fn full(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Box any body whose error converts into [`BoxError`].
pub fn boxed<B>(b: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    b.map_err(Into::into).boxed_unsync()
}
