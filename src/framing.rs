//! HTTP/1.1 request framing (RFC 9112 §6) and request-target checks: the part hyper leaves to
//! the application, so that nothing ambiguous reaches the upstream.
//!
//! hyper 1.x (over httparse) already refuses, with its own bare `400` and a close, before
//! hydrant sees the request: differing or non-numeric `Content-Length`s, a
//! `Transfer-Encoding` whose final coding is not `chunked` (`chunked, gzip`, `identity`) or on
//! an HTTP/1.0 request, obs-fold, NUL / CR / control bytes in a value, and field names that are
//! not tokens. For a request with both `Content-Length` and `Transfer-Encoding: chunked` it
//! drops `Content-Length`, decodes the body as chunked and closes the connection after the
//! response (adding `connection: close`). Duplicate equal `Content-Length`s are merged into
//! one.
//!
//! What it accepts and hydrant must not pass on: a chunked coding preceded by another one
//! (`gzip, chunked`) or applied twice (`chunked, chunked`, or two `Transfer-Encoding` lines).
//! hydrant decodes no coding but `chunked`, and forwarding the decoded bytes without the
//! coding would change the body's meaning; these get a JSON `400` and a close ([`inspect`]).
//! The checks hyper makes are repeated here (cheaply) so that hydrant's guarantee does not
//! depend on one parser version. The forwarded request's framing is then set from the
//! [`Framing`] alone (`upstream::request`): exactly one of `Content-Length` or chunked.

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Uri};

/// How a request's body is delimited, once checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Neither field: no body on HTTP/1.1 (an HTTP/2 body is delimited by its stream).
    Unframed,
    /// One valid `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`. `with_length` when a `Content-Length` came too: it is
    /// ignored (RFC 9112 §6.3) and the connection is closed after the response.
    Chunked {
        /// A `Content-Length` was present as well.
        with_length: bool,
    },
}

impl Framing {
    /// Whether the connection must close after the response (RFC 9112 §6.1: a CL + TE
    /// request may be an attempt at smuggling).
    pub fn must_close(self) -> bool {
        matches!(self, Framing::Chunked { with_length: true })
    }
}

/// Why a request's framing or target is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A transfer coding other than one final `chunked`.
    #[error("unsupported transfer coding")]
    TransferCoding,
    /// A `Content-Length` that is not digits, or several that differ.
    #[error("invalid content-length")]
    ContentLength,
    /// `CONNECT`, or a target that is neither a path nor an absolute URL (authority-form).
    #[error("request target is not a path")]
    Target,
}

/// Check a request's target and framing fields.
///
/// The target: only origin-form (`/path`) and absolute-form (`http://h/path`, routed and
/// forwarded on its path alone) are served; `CONNECT` and authority-form are refused, since
/// hydrant is no forward proxy. `OPTIONS *` is left to routing (a 404).
pub fn inspect(method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<Framing, FramingError> {
    if method == Method::CONNECT {
        return Err(FramingError::Target);
    }
    let path = uri.path();
    if !(path.starts_with('/') || path == "*") {
        return Err(FramingError::Target);
    }
    let length = content_length(headers)?;
    if !headers.contains_key(TRANSFER_ENCODING) {
        return Ok(length.map_or(Framing::Unframed, Framing::Length));
    }
    // Every coding of every line, in order: it must be exactly one `chunked`.
    let mut codings = 0usize;
    for line in headers.get_all(TRANSFER_ENCODING) {
        let line = line.to_str().map_err(|_| FramingError::TransferCoding)?;
        for coding in line.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            codings += 1;
            if codings > 1 || !coding.eq_ignore_ascii_case("chunked") {
                return Err(FramingError::TransferCoding);
            }
        }
    }
    if codings == 0 {
        return Err(FramingError::TransferCoding);
    }
    Ok(Framing::Chunked {
        with_length: length.is_some(),
    })
}

/// The one `Content-Length` (every value of every line must be the same digits).
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, FramingError> {
    let mut found = None;
    for line in headers.get_all(CONTENT_LENGTH) {
        let line = line.to_str().map_err(|_| FramingError::ContentLength)?;
        for v in line.split(',').map(str::trim) {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(FramingError::ContentLength);
            }
            let n: u64 = v.parse().map_err(|_| FramingError::ContentLength)?;
            if found.is_some_and(|f| f != n) {
                return Err(FramingError::ContentLength);
            }
            found = Some(n);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn check(pairs: &[(&'static str, &'static str)]) -> Result<Framing, FramingError> {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        inspect(&Method::POST, &Uri::from_static("/v1/files"), &h)
    }

    #[test]
    fn one_framing_or_a_refusal() {
        assert_eq!(check(&[]), Ok(Framing::Unframed));
        assert_eq!(check(&[("content-length", "5")]), Ok(Framing::Length(5)));
        assert_eq!(
            check(&[("content-length", "5"), ("content-length", "5")]),
            Ok(Framing::Length(5))
        );
        assert_eq!(check(&[("content-length", "5, 5")]), Ok(Framing::Length(5)));
        for bad in ["5, 6", "+5", "-1", "", "0x10", "99999999999999999999"] {
            assert_eq!(
                check(&[("content-length", bad)]),
                Err(FramingError::ContentLength),
                "{bad:?}"
            );
        }
        assert_eq!(
            check(&[("content-length", "5"), ("content-length", "6")]),
            Err(FramingError::ContentLength)
        );
        assert_eq!(
            check(&[("transfer-encoding", "Chunked")]),
            Ok(Framing::Chunked { with_length: false })
        );
        let both = check(&[("content-length", "5"), ("transfer-encoding", "chunked")]);
        assert_eq!(both, Ok(Framing::Chunked { with_length: true }));
        assert!(both.unwrap().must_close());
        for bad in [
            "gzip, chunked",
            "chunked, gzip",
            "identity",
            "chunked, chunked",
            "",
            " , ",
        ] {
            assert_eq!(
                check(&[("transfer-encoding", bad)]),
                Err(FramingError::TransferCoding),
                "{bad:?}"
            );
        }
        assert_eq!(
            check(&[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked")
            ]),
            Err(FramingError::TransferCoding)
        );
    }

    #[test]
    fn targets() {
        let h = HeaderMap::new();
        let ok = |m: Method, u: &'static str| inspect(&m, &Uri::from_static(u), &h);
        assert!(ok(Method::GET, "/v1/files").is_ok());
        assert!(ok(Method::GET, "http://evil.example/v1/files").is_ok());
        assert!(ok(Method::OPTIONS, "*").is_ok());
        assert_eq!(
            ok(Method::CONNECT, "evil.example:443"),
            Err(FramingError::Target)
        );
        assert_eq!(
            ok(Method::GET, "evil.example:443"),
            Err(FramingError::Target)
        );
    }
}
