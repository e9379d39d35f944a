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

/// Why [`collect_limited`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// More than the limit.
    #[error("body larger than the limit")]
    TooLarge,
    /// The body stream failed; the cause is kept for logs.
    #[error("body stream failed")]
    Broken(#[source] BoxError),
}

/// Read a whole body of at most `limit` bytes. (Hand-rolled rather than `http_body_util::Limited`,
/// whose boxed-error conversion trips rustc's higher-ranked `Send` check inside hyper services.)
pub async fn collect_limited<B>(mut body: B, limit: usize) -> Result<Bytes, CollectError>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let mut first: Option<Bytes> = None;
    let mut rest: Option<bytes::BytesMut> = None;
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| CollectError::Broken(e.into()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        len += data.len();
        if len > limit {
            return Err(CollectError::TooLarge);
        }
        match (&mut first, &mut rest) {
            (None, _) => first = Some(data),
            (Some(f), None) => {
                let mut buf = bytes::BytesMut::with_capacity(f.len() + data.len());
                buf.extend_from_slice(f);
                buf.extend_from_slice(&data);
                rest = Some(buf);
            }
            (Some(_), Some(buf)) => buf.extend_from_slice(&data),
        }
    }
    // One chunk (the common case for small JSON): no copy at all.
    Ok(match rest {
        Some(buf) => buf.freeze(),
        None => first.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn collect_limited_counts_and_stops() {
        let b = full(Bytes::from_static(b"hello"));
        assert_eq!(collect_limited(b, 5).await.unwrap(), "hello");
        let b = full(Bytes::from_static(b"hello!"));
        assert!(matches!(
            collect_limited(b, 5).await,
            Err(CollectError::TooLarge)
        ));
        let chunks = futures_util::stream::iter(vec![
            Ok::<_, BoxError>(http_body::Frame::data(Bytes::from_static(b"ab"))),
            Ok(http_body::Frame::data(Bytes::from_static(b"cd"))),
        ]);
        let b = http_body_util::StreamBody::new(chunks);
        assert_eq!(collect_limited(b, 10).await.unwrap(), "abcd");
    }
}
