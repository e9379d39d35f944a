//! One error type for everything hydrant answers by itself, mapped to HTTP in one table.
//!
//! Every error becomes the upstream's own ApiError shape, `{"message": "...", "code": "..."}`,
//! so that SDKs parse hydrant's errors exactly like VideoGen's. Messages never carry secrets,
//! ids of other tenants or signed URLs.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use crate::body::{self, Body};

/// Why hydrant itself answered `429`/`503` (sent as `x-hydrant-reason`, Envoy-style).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The per-tenant governor limiter had no permit within `hydrate_max_wait`.
    LimiterSaturated,
    /// The tenant is paused after an upstream 429 or `X-RateLimit-Remaining: 0`.
    UpstreamPaused,
    /// The rendition is still being processed upstream (or the delivery is in progress).
    Pending,
}

impl Reason {
    /// Header/metric-friendly spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::LimiterSaturated => "limiter_saturated",
            Reason::UpstreamPaused => "upstream_paused",
            Reason::Pending => "pending",
        }
    }
}

/// Everything that can go wrong in a request that hydrant answers itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `Authorization: Bearer` on a `/v1/...` call.
    #[error("Missing API key: send Authorization: Bearer <key>.")]
    MissingApiKey,
    /// A route needs the proxy's own key and none is configured.
    #[error("hydrant has no API key configured (--api-key / VIDEOGEN_API_KEY).")]
    NoProxyKey,
    /// A file id outside `[A-Za-z0-9_-]{1,128}`.
    #[error("Invalid file id: expected 1 to 128 characters of A-Z, a-z, 0-9, '_' or '-'.")]
    InvalidId,
    /// `?rendition=` names no known rendition.
    #[error("Unknown rendition: expected download, preview, thumbnail, hls or public.")]
    UnknownRendition,
    /// A malformed request (bad query, bad body).
    #[error("{0}")]
    BadRequest(&'static str),
    /// Signed URL missing, bad or expired.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Wrong admin token, or a rejected webhook signature.
    #[error("{message}")]
    Unauthorized {
        /// Human-readable reason.
        message: &'static str,
        /// Machine-readable code.
        code: &'static str,
    },
    /// Nothing here (unknown route, failed/skipped/absent rendition, unknown file).
    #[error("{0}")]
    NotFound(&'static str),
    /// Known path, wrong method; holds the `Allow` value.
    #[error("Method not allowed; use {0}.")]
    MethodNotAllowed(&'static str),
    /// Body over the route's limit.
    #[error("Request body too large.")]
    PayloadTooLarge,
    /// Request head over 16 KiB.
    #[error("Request header fields too large.")]
    HeadersTooLarge,
    /// hydrant refuses to call upstream for this tenant right now.
    #[error("Rate limited by hydrant ({}); retry after {retry_after}s.", reason.as_str())]
    RateLimited {
        /// Whole seconds until a retry can succeed.
        retry_after: u64,
        /// Which limit.
        reason: Reason,
    },
    /// The rendition is not ready yet.
    #[error("{message}")]
    Unavailable {
        /// Human-readable reason.
        message: &'static str,
        /// Whole seconds for `Retry-After`.
        retry_after: u64,
        /// Why.
        reason: Reason,
    },
    /// The upstream could not be reached or spoke garbage.
    #[error("Upstream unavailable: {0}.")]
    UpstreamUnavailable(&'static str),
    /// The upstream did not answer within `upstream_timeout`.
    #[error("Upstream timed out.")]
    UpstreamTimeout,
    /// The upstream answered something hydrant cannot use safely (bad JSON, unsafe URL).
    #[error("Upstream sent an invalid response: {0}.")]
    UpstreamInvalid(&'static str),
}

impl Error {
    /// The HTTP status for this error: the one table.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::MissingApiKey | Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Error::InvalidId | Error::UnknownRendition | Error::BadRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::NoProxyKey | Error::UpstreamUnavailable(_) | Error::UpstreamInvalid(_) => {
                StatusCode::BAD_GATEWAY
            }
            Error::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The machine-readable `code`, in VideoGen's vocabulary where one exists.
    pub fn code(&self) -> &'static str {
        match self {
            Error::MissingApiKey => "missing_api_key",
            Error::NoProxyKey => "proxy_key_missing",
            Error::InvalidId => "invalid_id",
            Error::UnknownRendition => "invalid_parameters",
            Error::BadRequest(_) => "invalid_request",
            Error::Forbidden(_) => "forbidden",
            Error::Unauthorized { code, .. } => code,
            Error::NotFound(_) => "not_found",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::PayloadTooLarge => "payload_too_large",
            Error::HeadersTooLarge => "headers_too_large",
            Error::RateLimited { .. } => "rate_limited",
            Error::Unavailable { reason, .. } => match reason {
                Reason::Pending => "pending",
                _ => "unavailable",
            },
            Error::UpstreamUnavailable(_) => "upstream_unavailable",
            Error::UpstreamTimeout => "upstream_timeout",
            Error::UpstreamInvalid(_) => "upstream_invalid",
        }
    }

    /// Build the JSON response, with `Retry-After` and `x-hydrant-reason` where they apply.
    pub fn into_response(self) -> Response<Body> {
        let json = serde_json::json!({ "message": self.to_string(), "code": self.code() });
        let mut resp = Response::new(body::full(Bytes::from(json.to_string())));
        *resp.status_mut() = self.status();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            Error::RateLimited {
                retry_after,
                reason,
            }
            | Error::Unavailable {
                retry_after,
                reason,
                ..
            } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
                h.insert(REASON_HEADER, HeaderValue::from_static(reason.as_str()));
            }
            Error::MethodNotAllowed(allow) => {
                h.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            _ => {}
        }
        resp
    }
}

/// Header naming why hydrant itself refused (`429`/`503`).
pub const REASON_HEADER: header::HeaderName = header::HeaderName::from_static("x-hydrant-reason");

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn errors_are_json_with_code_and_reason() {
        let resp = Error::RateLimited {
            retry_after: 7,
            reason: Reason::UpstreamPaused,
        }
        .into_response();
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "7");
        assert_eq!(resp.headers()["x-hydrant-reason"], "upstream_paused");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "rate_limited");
        assert!(v["message"].as_str().unwrap().contains("retry after 7s"));
    }

    #[test]
    fn statuses() {
        assert_eq!(Error::UpstreamTimeout.status(), 504);
        assert_eq!(Error::UpstreamUnavailable("x").status(), 502);
        assert_eq!(Error::InvalidId.status(), 400);
        assert_eq!(Error::InvalidId.code(), "invalid_id");
        assert_eq!(Error::HeadersTooLarge.status(), 431);
    }
}
