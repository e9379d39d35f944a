//! Everything hydrant answers by itself when a request cannot be served, mapped to HTTP in
//! one table.
//!
//! Lower layers report their own error types (an upstream failure, a limiter refusal, a bad
//! link signature, a rejected webhook); this module alone turns any of them into a status, a
//! machine-readable `code` and a message, and every error becomes the upstream's own ApiError
//! shape, `{"message": "...", "code": "..."}`, so that SDKs parse hydrant's errors exactly like
//! VideoGen's. The cause stays attached (`source()`) for logs; messages never carry secrets,
//! ids of other tenants or signed URLs.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use crate::body::{self, Body, CollectError};
use crate::framing::FramingError;
use crate::headers::{X_HYDRANT_REASON, X_REQUEST_ID};
use crate::hydration::hydrator::LoadError;
use crate::hydration::policy::retry_after_secs;
use crate::signing::SignError;
use crate::upstream::limiter::{Refusal, Refused};
use crate::upstream::{Reply, UpstreamError};
use crate::webhooks::verify::VerifyError;

/// Everything that can go wrong in a request that hydrant answers itself.
#[derive(Debug)]
pub enum Error {
    /// No `Authorization: Bearer` on a `/v1/...` call.
    MissingApiKey,
    /// A route needs the proxy's own key and none is configured.
    NoProxyKey,
    /// A file id outside `[A-Za-z0-9_-]{1,128}`.
    InvalidId,
    /// `?rendition=` names no known rendition.
    UnknownRendition,
    /// A malformed request; the message says what.
    BadRequest(&'static str),
    /// The request body broke off before its end.
    BodyInterrupted(CollectError),
    /// Ambiguous framing (`Transfer-Encoding` other than one `chunked`, bad `Content-Length`)
    /// or a target hydrant does not serve (`CONNECT`, authority-form); answered with a close.
    Framing(FramingError),
    /// A signed link is missing, malformed, wrong or expired.
    Signature(SignError),
    /// The admin bearer is wrong.
    AdminToken,
    /// A webhook delivery failed verification.
    Webhook(VerifyError),
    /// Nothing here; the message says what is missing.
    NotFound(&'static str),
    /// Known path, wrong method; holds the `Allow` value.
    MethodNotAllowed(&'static str),
    /// Body over the route's limit.
    PayloadTooLarge,
    /// Request head over the limit.
    HeadersTooLarge,
    /// hydrant refuses to call upstream for this tenant right now.
    RateLimited {
        /// Whole seconds until a retry can succeed.
        retry_after: u64,
        /// Which limit.
        reason: Refusal,
    },
    /// The rendition is still being processed upstream.
    Pending {
        /// Whole seconds for `Retry-After`.
        retry_after: u64,
    },
    /// The same webhook delivery is being handled right now.
    DeliveryInProgress,
    /// The upstream could not be reached, timed out, or its body broke off.
    Upstream(Arc<UpstreamError>),
    /// The upstream answered with an error on a route that cannot pass it on.
    UpstreamRefused(StatusCode),
    /// The upstream answered something hydrant cannot use safely (not a file, unsafe URL).
    UpstreamInvalid(&'static str),
    /// The webhook receiver did not acknowledge the relay.
    RelayFailed,
}

impl From<UpstreamError> for Error {
    fn from(e: UpstreamError) -> Error {
        Error::Upstream(Arc::new(e))
    }
}

impl From<FramingError> for Error {
    fn from(e: FramingError) -> Error {
        Error::Framing(e)
    }
}

impl From<SignError> for Error {
    fn from(e: SignError) -> Error {
        Error::Signature(e)
    }
}

impl From<VerifyError> for Error {
    fn from(e: VerifyError) -> Error {
        Error::Webhook(e)
    }
}

impl From<Refused> for Error {
    fn from(r: Refused) -> Error {
        Error::RateLimited {
            retry_after: retry_after_secs(r.retry_after),
            reason: r.reason,
        }
    }
}

impl From<LoadError> for Error {
    fn from(e: LoadError) -> Error {
        match e {
            LoadError::Upstream(u) => Error::Upstream(u),
            LoadError::Invalid(_) => Error::UpstreamInvalid("hydrate answer is not a file object"),
            LoadError::Refused(r) => r.into(),
        }
    }
}

impl Error {
    /// What an upstream answer that was not cached means on a frontend route, where the
    /// upstream's own error cannot be passed on (a browser asked for a redirect).
    pub(crate) fn from_upstream_reply(r: &Reply) -> Error {
        match r.status.as_u16() {
            404 => Error::NotFound("File not found."),
            429 => Error::RateLimited {
                retry_after: r
                    .headers
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(1)
                    .max(1),
                reason: Refusal::UpstreamPaused,
            },
            _ => Error::UpstreamRefused(r.status),
        }
    }

    /// Status, code and message: the one table.
    fn describe(&self) -> (StatusCode, &'static str, Cow<'static, str>) {
        use StatusCode as S;
        let fixed = |s, code, msg: &'static str| (s, code, Cow::Borrowed(msg));
        match self {
            Error::MissingApiKey => fixed(
                S::UNAUTHORIZED,
                "missing_api_key",
                "Missing API key: send Authorization: Bearer <key>.",
            ),
            Error::NoProxyKey => fixed(
                S::BAD_GATEWAY,
                "proxy_key_missing",
                "hydrant has no API key configured (--api-key / VIDEOGEN_API_KEY).",
            ),
            Error::InvalidId => fixed(
                S::BAD_REQUEST,
                "invalid_id",
                "Invalid file id: expected 1 to 128 characters of A-Z, a-z, 0-9, '_' or '-'.",
            ),
            Error::UnknownRendition => fixed(
                S::BAD_REQUEST,
                "invalid_parameters",
                "Unknown rendition: expected download, preview, thumbnail, hls or public.",
            ),
            Error::BadRequest(m) => fixed(S::BAD_REQUEST, "invalid_request", m),
            Error::BodyInterrupted(_) => fixed(
                S::BAD_REQUEST,
                "invalid_request",
                "Request body interrupted.",
            ),
            Error::Framing(e) => fixed(
                S::BAD_REQUEST,
                "invalid_request",
                match e {
                    FramingError::TransferCoding => {
                        "Unsupported Transfer-Encoding: only a single chunked coding is accepted."
                    }
                    FramingError::ContentLength => "Invalid Content-Length.",
                    FramingError::Target => {
                        "Unsupported request target: hydrant is not a forward proxy (no CONNECT or authority-form)."
                    }
                },
            ),
            Error::Signature(e) => fixed(
                S::FORBIDDEN,
                "forbidden",
                match e {
                    SignError::Missing => "Signature required: exp and sig.",
                    SignError::Malformed | SignError::Bad => "Invalid signature.",
                    SignError::Expired => "Signature expired.",
                },
            ),
            Error::AdminToken => fixed(S::UNAUTHORIZED, "invalid_api_key", "Invalid admin token."),
            Error::Webhook(e) => fixed(
                S::UNAUTHORIZED,
                e.reason(),
                match e {
                    VerifyError::MissingHeaders => {
                        "Missing webhook-id, webhook-timestamp or webhook-signature."
                    }
                    VerifyError::BadTimestamp => "Invalid webhook-timestamp.",
                    VerifyError::StaleTimestamp => "Webhook timestamp outside tolerance.",
                    VerifyError::BadSignature => "Invalid webhook signature.",
                },
            ),
            Error::NotFound(m) => fixed(S::NOT_FOUND, "not_found", m),
            Error::MethodNotAllowed(allow) => (
                S::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                Cow::Owned(format!("Method not allowed; use {allow}.")),
            ),
            Error::PayloadTooLarge => fixed(
                S::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Request body too large.",
            ),
            Error::HeadersTooLarge => fixed(
                S::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                "Request header fields too large.",
            ),
            Error::RateLimited {
                retry_after,
                reason,
            } => (
                S::TOO_MANY_REQUESTS,
                "rate_limited",
                Cow::Owned(format!(
                    "Rate limited by hydrant ({}); retry after {retry_after}s.",
                    reason.as_str()
                )),
            ),
            Error::Pending { .. } => fixed(
                S::SERVICE_UNAVAILABLE,
                "pending",
                "This rendition is still being processed; retry shortly.",
            ),
            Error::DeliveryInProgress => fixed(
                S::SERVICE_UNAVAILABLE,
                "pending",
                "This delivery is being processed; retry later.",
            ),
            Error::Upstream(e) => match &**e {
                UpstreamError::Timeout => fixed(
                    S::GATEWAY_TIMEOUT,
                    "upstream_timeout",
                    "Upstream timed out.",
                ),
                UpstreamError::Connect(_) => fixed(
                    S::BAD_GATEWAY,
                    "upstream_unavailable",
                    "Upstream unavailable: connection failed.",
                ),
                UpstreamError::TooLarge => fixed(
                    S::BAD_GATEWAY,
                    "upstream_invalid",
                    "Upstream sent an invalid response: response too large.",
                ),
                UpstreamError::HeadTooLarge => fixed(
                    S::BAD_GATEWAY,
                    "upstream_invalid",
                    "Upstream sent an invalid response: response head too large.",
                ),
                UpstreamError::InvalidPath => {
                    fixed(S::BAD_REQUEST, "invalid_request", "Invalid request path.")
                }
                UpstreamError::RequestBody(_) => fixed(
                    S::BAD_REQUEST,
                    "invalid_request",
                    "Request body malformed or interrupted.",
                ),
            },
            Error::UpstreamRefused(status) => fixed(
                S::BAD_GATEWAY,
                "upstream_unavailable",
                match status.as_u16() {
                    401 | 403 => "Upstream unavailable: upstream rejected hydrant's API key.",
                    _ => "Upstream unavailable: upstream error.",
                },
            ),
            Error::UpstreamInvalid(what) => (
                S::BAD_GATEWAY,
                "upstream_invalid",
                Cow::Owned(format!("Upstream sent an invalid response: {what}.")),
            ),
            Error::RelayFailed => fixed(
                S::BAD_GATEWAY,
                "upstream_unavailable",
                "Upstream unavailable: webhook receiver did not acknowledge.",
            ),
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        self.describe().0
    }

    /// The machine-readable `code`, in VideoGen's vocabulary where one exists.
    #[cfg(test)]
    fn code(&self) -> &'static str {
        self.describe().1
    }

    /// Whether the connection must not be reused after this answer: the request's framing
    /// was ambiguous or its body broke off, so what follows on the connection cannot be
    /// trusted to start a new request.
    fn must_close(&self) -> bool {
        matches!(self, Error::Framing(_) | Error::BodyInterrupted(_))
            || matches!(self, Error::Upstream(e) if matches!(**e, UpstreamError::RequestBody(_)))
    }

    /// `Retry-After` seconds and `x-hydrant-reason`, where they apply.
    fn retry(&self) -> Option<(u64, &'static str)> {
        match self {
            Error::RateLimited {
                retry_after,
                reason,
            } => Some((*retry_after, reason.as_str())),
            Error::Pending { retry_after } => Some((*retry_after, "pending")),
            // A redelivery a few seconds later finds the first copy finished.
            Error::DeliveryInProgress => Some((5, "pending")),
            _ => None,
        }
    }

    /// Build the JSON response, with hydrant's own request id, `Retry-After` and
    /// `x-hydrant-reason` where they apply.
    pub fn into_response(self) -> Response<Body> {
        let (status, code, message) = self.describe();
        let json = serde_json::json!({ "message": message, "code": code });
        let mut resp = Response::new(body::full(Bytes::from(json.to_string())));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(X_REQUEST_ID, crate::header_arena::request_id());
        if let Some((secs, reason)) = self.retry() {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            h.insert(X_HYDRANT_REASON, HeaderValue::from_static(reason));
        }
        if let Error::MethodNotAllowed(allow) = self {
            h.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if self.must_close() {
            // On HTTP/1.1 hyper then closes after this response; on HTTP/2 it drops the field.
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe().2)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Upstream(e) => Some(&**e),
            Error::BodyInterrupted(e) => Some(e),
            Error::Signature(e) => Some(e),
            Error::Webhook(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::error::Error as _;

    #[tokio::test]
    async fn errors_are_json_with_code_and_reason() {
        let resp = Error::RateLimited {
            retry_after: 7,
            reason: Refusal::UpstreamPaused,
        }
        .into_response();
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "7");
        assert_eq!(resp.headers()["x-hydrant-reason"], "upstream_paused");
        assert!(resp.headers().contains_key("x-request-id"));
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "rate_limited");
        assert!(v["message"].as_str().unwrap().contains("retry after 7s"));
    }

    #[test]
    fn statuses() {
        assert_eq!(Error::from(UpstreamError::Timeout).status(), 504);
        assert_eq!(Error::UpstreamInvalid("x").status(), 502);
        assert_eq!(Error::InvalidId.status(), 400);
        assert_eq!(Error::InvalidId.code(), "invalid_id");
        assert_eq!(Error::HeadersTooLarge.status(), 431);
        assert_eq!(Error::from(FramingError::TransferCoding).status(), 400);
        assert_eq!(Error::from(FramingError::Target).code(), "invalid_request");
        let cause: crate::body::BoxError = "invalid chunk size".into();
        assert_eq!(Error::from(UpstreamError::RequestBody(cause)).status(), 400);
        assert_eq!(Error::from(SignError::Expired).status(), 403);
        assert_eq!(Error::from(VerifyError::BadSignature).status(), 401);
        assert_eq!(
            Error::from(VerifyError::BadSignature).code(),
            "bad_signature"
        );
    }

    #[test]
    fn causes_are_kept() {
        let cause: crate::body::BoxError = "connection reset by peer".into();
        let e = Error::from(UpstreamError::Connect(cause));
        assert_eq!(e.status(), 502);
        let upstream = e.source().unwrap();
        assert_eq!(upstream.to_string(), "upstream connection failed");
        assert_eq!(
            upstream.source().unwrap().to_string(),
            "connection reset by peer"
        );
        // The client-facing message names no cause.
        assert!(!e.to_string().contains("reset"));
    }
}
