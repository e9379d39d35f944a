//! Collection reads over an account's files: `GET /v1/files` (cursor paging) and
//! `POST /v1/files/search` (substring match on `displayName`). Both answer hydrated files and
//! skip archived ones.

use serde_json::{json, Value};

use super::files::{SimFile, View};
use super::http::{json_object, parse_limit, query_get, query_map, ApiError, ApiResult};
use super::state::Shared;

/// `GET /v1/files?limit&cursor`; the cursor is `cur_<last id of the previous page>`.
pub(super) fn list_files(shared: &Shared, key: &str, query: &str) -> ApiResult {
    let q = query_map(query);
    let limit = parse_limit(query_get(&q, "limit"), 50, 200)?;
    let cursor = query_get(&q, "cursor").filter(|c| !c.is_empty());
    let (page, has_more, lifetime) = {
        let inner = shared.lock();
        let empty = Vec::new();
        let order = inner.order.get(key).unwrap_or(&empty);
        let start = match cursor {
            None => 0,
            Some(c) => {
                let id = c
                    .strip_prefix("cur_")
                    .ok_or_else(|| ApiError::invalid("Invalid cursor."))?;
                order
                    .iter()
                    .position(|x| x == id)
                    .map(|p| p + 1)
                    .ok_or_else(|| ApiError::invalid("Invalid cursor."))?
            }
        };
        let mut live = order
            .iter()
            .skip(start)
            .filter_map(|id| inner.files.get(id))
            .filter(|f| !f.archived);
        let page: Vec<SimFile> = live.by_ref().take(limit).cloned().collect();
        let has_more = live.next().is_some();
        (page, has_more, inner.url_lifetime)
    };
    // URLs are signed after the lock is released, so the critical section stays short.
    let next = match (has_more, page.last()) {
        (true, Some(last)) => json!(format!("cur_{}", last.id)),
        _ => Value::Null,
    };
    let files: Vec<Value> = page
        .iter()
        .map(|f| shared.render(f, View::Hydrated, lifetime))
        .collect();
    Ok((
        200,
        json!({"files": files, "hasMore": has_more, "nextCursor": next}),
    ))
}

/// `POST /v1/files/search {query, numResults}`; `similarity` is synthetic, falling with rank
/// from 0.95 to a floor of 0.5.
pub(super) fn search(shared: &Shared, key: &str, body: &[u8]) -> ApiResult {
    let b = json_object(body)?;
    let query = match b.get("query") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.to_lowercase(),
        Some(_) => return Err(ApiError::invalid("query must be a string.")),
    };
    let n = match b.get("numResults") {
        None | Some(Value::Null) => 10,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=100).contains(&n) => n as usize,
            _ => return Err(ApiError::invalid("numResults must be between 1 and 100.")),
        },
    };
    let (hits, lifetime) = {
        let inner = shared.lock();
        let empty = Vec::new();
        let hits: Vec<SimFile> = inner
            .order
            .get(key)
            .unwrap_or(&empty)
            .iter()
            .filter_map(|id| inner.files.get(id))
            .filter(|f| !f.archived && f.display_name.to_lowercase().contains(&query))
            .take(n)
            .cloned()
            .collect();
        (hits, inner.url_lifetime)
    };
    let results: Vec<Value> = hits
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let sim = ((0.95 - 0.01 * i as f64).max(0.5) * 100.0).round() / 100.0;
            json!({"similarity": sim, "file": shared.render(f, View::Hydrated, lifetime)})
        })
        .collect();
    Ok((200, json!({"results": results})))
}
