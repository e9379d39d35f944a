//! HTTP plumbing every simulated endpoint shares: the response type, VideoGen-shaped errors,
//! bounded body reading, JSON-object bodies, query strings and id validation.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Response type of every handler.
pub(super) type Resp = Response<Full<Bytes>>;

/// What a `/v1` endpoint handler answers: a status and a JSON body, or an error.
pub(super) type ApiResult = Result<(u16, Value), ApiError>;

/// Largest request body read.
const MAX_BODY: usize = 1024 * 1024;
/// How long reading a request body may take.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// A VideoGen-shaped error: `{"message", "code"}` with a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ApiError {
    pub(super) status: u16,
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl ApiError {
    pub(super) fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub(super) fn not_found(what: &str) -> Self {
        Self::new(404, "not_found", format!("{what} not found."))
    }

    pub(super) fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_parameters", message)
    }
}

/// Whether an id is acceptable (`[A-Za-z0-9_-]{1,128}`).
pub(super) fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// [`valid_id`] as a `400 invalid_parameters`.
pub(super) fn check_id(id: &str) -> Result<(), ApiError> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::invalid("Invalid id."))
    }
}

fn request_id() -> String {
    format!("req_{:024x}", rand::random::<u128>() >> 32)
}

/// A response with a fresh `x-request-id`.
pub(super) fn raw_resp(status: u16, content_type: &'static str, body: Bytes) -> Resp {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&request_id()) {
        h.insert(HeaderName::from_static("x-request-id"), v);
    }
    r
}

/// A JSON response.
pub(super) fn json_resp(status: u16, v: &Value) -> Resp {
    let body = serde_json::to_vec(v).unwrap_or_default();
    raw_resp(status, "application/json", Bytes::from(body))
}

/// A `{"message","code"}` error response.
pub(super) fn error_resp(e: &ApiError) -> Resp {
    json_resp(e.status, &json!({"message": e.message, "code": e.code}))
}

/// Reads a request body, bounded in size and time.
pub(super) async fn read_body(body: Incoming) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(ApiError::new(
            413,
            "payload_too_large",
            "Request body too large.",
        )),
        Ok(Err(_)) => Err(ApiError::new(
            400,
            "invalid_request",
            "Could not read the request body.",
        )),
        Err(_) => Err(ApiError::new(
            408,
            "request_timeout",
            "Timed out reading the request body.",
        )),
    }
}

/// Parses a body as a JSON object; an empty body is `{}`.
pub(super) fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::new(
            400,
            "invalid_request",
            "Request body must be a JSON object.",
        )),
    }
}

/// The decoded query pairs, at most 32 so a huge query string costs little.
pub(super) fn query_map(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .take(32)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The first value of `key`.
pub(super) fn query_get<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// A `limit` parameter: `default` when absent or empty, else it must be in `1..=max`.
pub(super) fn parse_limit(
    raw: Option<&str>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match raw {
        None | Some("") => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(format!(
                "limit must be between 1 and {max}."
            ))),
        },
    }
}
