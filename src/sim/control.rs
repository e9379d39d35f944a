//! The `/_sim` control plane (no auth): lets the Python SDK suite and shell benchmarks read
//! counters and stage faults, files and webhooks from outside the process.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `GET /_sim/stats` | | [`SimStats`](super::SimStats) JSON (camelCase) plus `byFile` |
//! | `POST /_sim/reset` | | zeroes counters, clears faults and rate-limit windows |
//! | `POST /_sim/faults` | `{"route":"hydrate\|get_file\|any\|/prefix","kind":"latency\|status\|rate_limited\|insufficient_credits\|malformed\|drop\|hang\|slow_body","ms","status","retryAfter","count"}` | `{"queued": n}` |
//! | `DELETE /_sim/faults` | | clears the queue |
//! | `POST /_sim/files` | `{"apiKey","type","displayName","durationSeconds","statuses":{"download",..},"publicPreview"}` | `201` + the file (GET shape) |
//! | `POST /_sim/status` | `{"fileId","rendition","status"}` | `{"ok": true}` |
//! | `POST /_sim/url-lifetime` | `{"seconds": N}` (fractional allowed) | `{"ok": true}` |
//! | `POST /_sim/quota` | `{"hydrate": N, "default": N}` (either) | `{"ok": true}` |
//! | `POST /_sim/webhooks` | `{"url","secret","event","fileId","apiKey","maxAttempts","firstBackoffMs"}` (`event` a name, or an object sent as is) | [`DeliveryReport`](super::DeliveryReport) JSON |
//! | `GET /_sim/accounts` | | `[{"name","apiKey","files"}]` |

use http::Method;
use hyper::body::Incoming;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

use super::config::{FileSpec, SourceStatuses};
use super::faults;
use super::files::{View, STATUSES};
use super::http::{error_resp, json_object, json_resp, read_body, ApiError, Resp};
use super::state::Shared;
use super::webhook;

/// Serves one control-plane request.
pub(super) async fn handle(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    req: http::Request<Incoming>,
) -> Resp {
    let body = match read_body(req.into_body()).await {
        Ok(b) => b,
        Err(e) => return error_resp(&e),
    };
    let result = match (method.as_str(), path) {
        ("GET", "/_sim/stats") => Ok(stats(shared)),
        ("POST", "/_sim/reset") => {
            let mut inner = shared.lock();
            inner.reset_stats();
            inner.faults.clear();
            inner.windows.clear();
            Ok(json!({"ok": true}))
        }
        ("POST", "/_sim/faults") => push_fault(shared, &body),
        ("DELETE", "/_sim/faults") => {
            shared.lock().faults.clear();
            Ok(json!({"ok": true}))
        }
        ("POST", "/_sim/files") => create_file(shared, &body),
        ("POST", "/_sim/status") => set_status(shared, &body),
        ("POST", "/_sim/url-lifetime") => url_lifetime(shared, &body),
        ("POST", "/_sim/quota") => quota(shared, &body),
        ("POST", "/_sim/webhooks") => deliver(shared, &body).await,
        ("GET", "/_sim/accounts") => Ok(accounts(shared)),
        _ => Err(ApiError::new(404, "not_found", "Route not found.")),
    };
    match result {
        Ok(v) => {
            let status = if path == "/_sim/files" { 201 } else { 200 };
            json_resp(status, &v)
        }
        Err(e) => error_resp(&e),
    }
}

fn stats(shared: &Shared) -> Value {
    let inner = shared.lock();
    let mut v = serde_json::to_value(&inner.stats).unwrap_or_else(|_| json!({}));
    let by_file: Map<String, Value> = inner
        .by_file
        .iter()
        .map(|(k, n)| (k.clone(), json!(n)))
        .collect();
    if let Some(m) = v.as_object_mut() {
        m.insert("byFile".into(), Value::Object(by_file));
    }
    v
}

fn accounts(shared: &Shared) -> Value {
    let inner = shared.lock();
    Value::Array(
        shared
            .accounts
            .iter()
            .map(|a| {
                json!({
                    "name": a.name,
                    "apiKey": a.api_key,
                    "files": inner.order.get(&a.api_key).map_or(0, Vec::len),
                })
            })
            .collect(),
    )
}

fn push_fault(shared: &Shared, body: &[u8]) -> Result<Value, ApiError> {
    let v = Value::Object(json_object(body)?);
    let fault = faults::parse(&v).map_err(|e| ApiError::invalid(e.to_string()))?;
    let mut inner = shared.lock();
    inner.faults.push(fault);
    Ok(json!({"queued": inner.faults.len()}))
}

fn str_field<'a>(b: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    b.get(key).and_then(Value::as_str)
}

fn create_file(shared: &Shared, body: &[u8]) -> Result<Value, ApiError> {
    let b = json_object(body)?;
    let api_key = match str_field(&b, "apiKey") {
        Some(k) => k.to_string(),
        None => shared
            .accounts
            .first()
            .map(|a| a.api_key.clone())
            .unwrap_or_default(),
    };
    let mut spec = FileSpec::default();
    if let Some(t) = str_field(&b, "type") {
        spec.file_type = t.chars().take(32).collect();
    }
    if let Some(n) = str_field(&b, "displayName") {
        spec.display_name = n.chars().take(256).collect();
    }
    match b.get("durationSeconds") {
        None => {}
        Some(Value::Null) => spec.duration_seconds = None,
        Some(v) => {
            spec.duration_seconds = Some(
                v.as_f64()
                    .ok_or_else(|| ApiError::invalid("durationSeconds must be a number."))?,
            )
        }
    }
    let statuses = b.get("statuses").and_then(Value::as_object).unwrap_or(&b);
    let mut st = SourceStatuses::default();
    for (name, slot) in [
        ("download", &mut st.download),
        ("preview", &mut st.preview),
        ("thumbnail", &mut st.thumbnail),
        ("hls", &mut st.hls),
    ] {
        if let Some(s) = statuses.get(name).and_then(Value::as_str) {
            if !STATUSES.contains(&s) {
                return Err(ApiError::invalid(format!("Invalid status for {name}.")));
            }
            *slot = s.to_string();
        }
    }
    spec.statuses = st;
    spec.public_preview = b
        .get("publicPreview")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let id = shared
        .create_file(&api_key, spec, None)
        .ok_or_else(|| ApiError::invalid("Unknown apiKey (or file limit reached)."))?;
    shared
        .render_file(&id, None, View::Plain)
        .ok_or_else(|| ApiError::new(500, "internal_error", "File vanished."))
}

fn set_status(shared: &Shared, body: &[u8]) -> Result<Value, ApiError> {
    let b = json_object(body)?;
    let (Some(id), Some(r), Some(s)) = (
        str_field(&b, "fileId"),
        str_field(&b, "rendition"),
        str_field(&b, "status"),
    ) else {
        return Err(ApiError::invalid(
            "fileId, rendition and status are required.",
        ));
    };
    if shared.lock().set_status(id, r, s) {
        Ok(json!({"ok": true}))
    } else {
        Err(ApiError::invalid("Unknown file, rendition or status."))
    }
}

fn url_lifetime(shared: &Shared, body: &[u8]) -> Result<Value, ApiError> {
    let b = json_object(body)?;
    let secs = b
        .get("seconds")
        .and_then(Value::as_f64)
        .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 400.0 * 86_400.0)
        .ok_or_else(|| ApiError::invalid("seconds must be a number between 0 and 400 days."))?;
    shared.lock().url_lifetime = Duration::from_secs_f64(secs);
    Ok(json!({"ok": true}))
}

fn quota(shared: &Shared, body: &[u8]) -> Result<Value, ApiError> {
    let b = json_object(body)?;
    let get = |k: &str| -> Result<Option<u32>, ApiError> {
        match b.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| ApiError::invalid(format!("{k} must be a non-negative integer."))),
        }
    };
    let (h, d) = (get("hydrate")?, get("default")?);
    let mut inner = shared.lock();
    if let Some(h) = h {
        inner.hydrate_quota = h;
    }
    if let Some(d) = d {
        inner.default_quota = d;
    }
    Ok(json!({"ok": true}))
}

async fn deliver(shared: &Shared, body: &[u8]) -> Result<Value, ApiError> {
    let b = json_object(body)?;
    let url = str_field(&b, "url").ok_or_else(|| ApiError::invalid("url is required."))?;
    let event = match b.get("event") {
        Some(Value::Object(o)) => Value::Object(o.clone()),
        other => {
            let name = other
                .and_then(Value::as_str)
                .unwrap_or("file.playback_ready");
            let file_id =
                str_field(&b, "fileId").ok_or_else(|| ApiError::invalid("fileId is required."))?;
            if let Some(key) = str_field(&b, "apiKey") {
                let owned = shared
                    .lock()
                    .files
                    .get(file_id)
                    .is_some_and(|f| f.owner == key);
                if !owned {
                    return Err(ApiError::new(404, "not_found", "File not found."));
                }
            }
            shared
                .file_event(name, file_id)
                .ok_or_else(|| ApiError::new(404, "not_found", "File not found."))?
        }
    };
    let secret = shared.webhook_secret_or(str_field(&b, "secret").unwrap_or(""));
    let attempts = b
        .get("maxAttempts")
        .and_then(Value::as_u64)
        .map_or(3, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let backoff = b
        .get("firstBackoffMs")
        .and_then(Value::as_u64)
        .map_or(Duration::from_millis(200), Duration::from_millis);
    let report = webhook::deliver(
        url,
        &secret,
        &event,
        attempts,
        backoff.min(Duration::from_secs(60)),
        webhook::ATTEMPT_TIMEOUT,
    )
    .await;
    serde_json::to_value(report).map_err(|_| ApiError::new(500, "internal_error", "Report failed."))
}
