//! The webhook endpoint registry, `/v1/webhooks/endpoints`: list, create, delete, per account
//! and in memory only. Deliveries are made through the control plane or the handle, never by
//! these routes.

use serde_json::{json, Value};

use super::clock;
use super::http::{json_object, ApiError, ApiResult};
use super::state::{Endpoint, Shared};

/// Most webhook endpoints kept overall.
const MAX_ENDPOINTS: usize = 1000;

/// `GET /v1/webhooks/endpoints`: all of `key`'s endpoints on one page.
pub(super) fn list(shared: &Shared, key: &str) -> ApiResult {
    let inner = shared.lock();
    let list: Vec<Value> = inner
        .endpoints
        .iter()
        .filter(|e| e.owner == key)
        .map(|e| e.json.clone())
        .collect();
    Ok((
        200,
        json!({"endpoints": list, "hasMore": false, "nextCursor": null}),
    ))
}

/// `POST /v1/webhooks/endpoints {url, events, description}`: `201` with the endpoint and the
/// signing secret deliveries will use.
pub(super) fn create(shared: &Shared, key: &str, body: &[u8]) -> ApiResult {
    let b = json_object(body)?;
    let url = match b.get("url").and_then(Value::as_str) {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => u.to_string(),
        _ => return Err(ApiError::invalid("url must be an http(s) URL.")),
    };
    let events = match b.get("events") {
        None | Some(Value::Null) => json!([]),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => Value::Array(a.clone()),
        Some(_) => return Err(ApiError::invalid("events must be an array of strings.")),
    };
    let endpoint = json!({
        "endpointId": format!("vg_whep_{:016x}", rand::random::<u64>()),
        "url": url,
        "events": events,
        "description": b.get("description").cloned().unwrap_or(Value::Null),
        "secret": shared.webhook_secret_or(""),
        "createdAt": clock::iso8601(clock::now_secs()),
    });
    let mut inner = shared.lock();
    if inner.endpoints.len() >= MAX_ENDPOINTS {
        return Err(ApiError::new(
            409,
            "conflict",
            "Too many webhook endpoints.",
        ));
    }
    inner.endpoints.push(Endpoint {
        owner: key.to_string(),
        json: endpoint.clone(),
    });
    Ok((201, endpoint))
}

/// `DELETE /v1/webhooks/endpoints/{id}`: `404` unless `key` owns it.
pub(super) fn delete(shared: &Shared, key: &str, id: &str) -> ApiResult {
    let mut inner = shared.lock();
    let before = inner.endpoints.len();
    inner
        .endpoints
        .retain(|e| !(e.owner == key && e.json.get("endpointId") == Some(&json!(id))));
    if inner.endpoints.len() == before {
        return Err(ApiError::not_found("Webhook endpoint"));
    }
    Ok((200, json!({"endpointId": id, "deleted": true})))
}
