//! Request handling for the simulated API: routing, counting, faults, auth, rate limits, the
//! `/v1` endpoints and the fake CDN.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::{HeaderMap, Method, Request};
use hyper::body::Incoming;
use serde_json::{json, Value};
use std::sync::Arc;

use super::clock;
use super::config::{FileSpec, SourceStatuses};
use super::control;
use super::faults::FaultKind;
use super::faults::{Target, HANG_MAX, MAX_LATENCY};
use super::files::{self, View, RENDITIONS};
use super::http::{
    check_id, error_resp, json_object, json_resp, parse_limit, query_get, query_map, raw_resp,
    read_body, valid_id, ApiError, Resp,
};
use super::state::{Execution, Group, Inner, RateInfo, Shared, MAX_EXECUTIONS};

/// Most webhook endpoints kept overall.
const MAX_ENDPOINTS: usize = 1000;

/// The tool paths the SDK calls (`POST /v1/tools/{name}`).
const TOOLS: [&str; 13] = [
    "generate-image",
    "generate-video-clip",
    "generate-motion-graphic",
    "text-to-speech",
    "generate-sound-effect",
    "generate-music",
    "generate-avatar",
    "vectorize-image",
    "remove-image-background",
    "remove-video-background",
    "upscale-image",
    "upscale-video",
    "image-3d-effect",
];

/// Returned by the service to make hyper close the connection without a response.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
pub(crate) struct DropConnection;

/// Routes of the simulated API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Me,
    ListFiles,
    SearchFiles,
    GetFile(String),
    Hydrate(String),
    Archive(String),
    EnablePreview(String),
    DisablePreview(String),
    Tool(&'static str),
    ListExecutions,
    GetExecution(String),
    CancelExecution(String),
    ListWebhooks,
    CreateWebhook,
    DeleteWebhook(String),
    Cdn(String, String),
    CdnPublic(String),
    NotFound,
}

impl Route {
    /// Matches method and path.
    pub(crate) fn parse(method: &Method, path: &str) -> Route {
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        if trimmed.len() > 1024 {
            return Route::NotFound;
        }
        let segs: Vec<&str> = trimmed.splitn(8, '/').collect();
        let s = |x: &&str| x.to_string();
        match (method.as_str(), segs.as_slice()) {
            ("GET", ["v1", "me"]) | ("GET", ["v1", "account"]) => Route::Me,
            ("GET", ["v1", "files"]) => Route::ListFiles,
            ("POST", ["v1", "files", "search"]) => Route::SearchFiles,
            ("GET", ["v1", "files", id]) => Route::GetFile(s(id)),
            ("POST", ["v1", "files", id, "hydrate"]) => Route::Hydrate(s(id)),
            ("POST", ["v1", "files", id, "archive"]) => Route::Archive(s(id)),
            ("POST", ["v1", "files", id, "enable-public-preview"]) => Route::EnablePreview(s(id)),
            ("POST", ["v1", "files", id, "disable-public-preview"]) => Route::DisablePreview(s(id)),
            ("GET", ["v1", "tools", "executions"]) => Route::ListExecutions,
            ("GET", ["v1", "tools", "executions", id]) => Route::GetExecution(s(id)),
            ("POST", ["v1", "tools", "executions", id, "cancel"]) => Route::CancelExecution(s(id)),
            ("POST", ["v1", "tools", tool]) => match TOOLS.iter().find(|t| *t == tool) {
                Some(t) => Route::Tool(t),
                None => Route::NotFound,
            },
            ("GET", ["v1", "webhooks", "endpoints"]) => Route::ListWebhooks,
            ("POST", ["v1", "webhooks", "endpoints"]) => Route::CreateWebhook,
            ("DELETE", ["v1", "webhooks", "endpoints", id]) => Route::DeleteWebhook(s(id)),
            ("GET" | "HEAD", ["cdn", "public", id]) => Route::CdnPublic(s(id)),
            ("GET" | "HEAD", ["cdn", id, rendition]) => Route::Cdn(s(id), s(rendition)),
            _ => Route::NotFound,
        }
    }

    /// The `by_route` key, e.g. `"POST /v1/files/{id}/hydrate"`.
    pub(crate) fn stats_key(&self, method: &Method) -> String {
        let path = match self {
            Route::Me => "/v1/me",
            Route::ListFiles => "/v1/files",
            Route::SearchFiles => "/v1/files/search",
            Route::GetFile(_) => "/v1/files/{id}",
            Route::Hydrate(_) => "/v1/files/{id}/hydrate",
            Route::Archive(_) => "/v1/files/{id}/archive",
            Route::EnablePreview(_) => "/v1/files/{id}/enable-public-preview",
            Route::DisablePreview(_) => "/v1/files/{id}/disable-public-preview",
            Route::Tool(t) => return format!("POST /v1/tools/{t}"),
            Route::ListExecutions => "/v1/tools/executions",
            Route::GetExecution(_) => "/v1/tools/executions/{id}",
            Route::CancelExecution(_) => "/v1/tools/executions/{id}/cancel",
            Route::ListWebhooks | Route::CreateWebhook => "/v1/webhooks/endpoints",
            Route::DeleteWebhook(_) => "/v1/webhooks/endpoints/{id}",
            Route::Cdn(..) => "/cdn/{id}/{rendition}",
            Route::CdnPublic(_) => "/cdn/public/{id}",
            Route::NotFound => "(unmatched)",
        };
        let m = match *method {
            Method::GET
            | Method::POST
            | Method::PUT
            | Method::DELETE
            | Method::PATCH
            | Method::HEAD
            | Method::OPTIONS => method.as_str(),
            _ => "OTHER",
        };
        format!("{m} {path}")
    }

    fn group(&self) -> Group {
        match self {
            Route::Hydrate(_) => Group::Hydrate,
            _ => Group::Default,
        }
    }
}

fn add_rate(resp: &mut Resp, rate: &RateInfo) {
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static("x-ratelimit-limit"),
        HeaderValue::from(rate.limit),
    );
    h.insert(
        HeaderName::from_static("x-ratelimit-remaining"),
        HeaderValue::from(rate.remaining),
    );
    h.insert(
        HeaderName::from_static("x-ratelimit-reset"),
        HeaderValue::from(rate.reset),
    );
}

/// The bearer token, if any.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, token) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_string())
}

fn count(inner: &mut Inner, route: &Route, key: String) {
    let s = &mut inner.stats;
    s.total_requests += 1;
    *s.by_route.entry(key).or_insert(0) += 1;
    match route {
        Route::Hydrate(id) => {
            s.hydrate_calls += 1;
            if valid_id(id) {
                inner.count_file_hydrate(id);
            }
        }
        Route::GetFile(_) => s.get_file_calls += 1,
        Route::ListFiles => s.list_files_calls += 1,
        Route::SearchFiles => s.search_calls += 1,
        Route::Tool(_) => s.tool_calls += 1,
        Route::GetExecution(_) => s.execution_get_calls += 1,
        Route::Cdn(..) | Route::CdnPublic(_) => s.cdn_calls += 1,
        _ => {}
    }
}

fn status_code_name(status: u16) -> &'static str {
    match status {
        400 => "invalid_request",
        401 => "invalid_api_key",
        403 => "not_authorized",
        404 => "not_found",
        409 => "conflict",
        429 => "rate_limited",
        502 => "bad_gateway",
        503 => "service_unavailable",
        504 => "gateway_timeout",
        _ => "internal_error",
    }
}

fn fault_resp(kind: &FaultKind, rate: Option<RateInfo>) -> Resp {
    let mut resp = match kind {
        FaultKind::Status(code) => error_resp(&ApiError::new(
            *code,
            status_code_name(*code),
            format!("Simulated upstream error ({code})."),
        )),
        FaultKind::RateLimited { retry_after } => {
            let mut r = error_resp(&ApiError::new(
                429,
                "rate_limited",
                "Rate limit exceeded. Please retry later.",
            ));
            if let Some(secs) = retry_after {
                r.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(*secs));
            }
            r
        }
        FaultKind::InsufficientCredits => error_resp(&ApiError::new(
            429,
            "insufficient_credits",
            "Insufficient credits for this request.",
        )),
        _ => raw_resp(
            200,
            "application/json",
            Bytes::from_static(b"{\"fileId\": \"vg_file_\", \"downloadSource\": {\"url\": "),
        ),
    };
    if let Some(mut rate) = rate {
        if matches!(kind, FaultKind::RateLimited { .. }) {
            rate.remaining = 0;
        }
        add_rate(&mut resp, &rate);
    }
    resp
}

/// Serves one request (hyper service function).
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Resp, DropConnection> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if path == "/_sim" || path.starts_with("/_sim/") {
        return Ok(control::handle(&shared, &method, &path, req).await);
    }
    let query = req.uri().query().unwrap_or("").to_string();
    let route = Route::parse(&method, &path);
    let token = bearer(req.headers());
    let known_key = token
        .as_deref()
        .filter(|k| shared.account(k).is_some())
        .map(str::to_string);
    let now = clock::now_secs();
    let fault = {
        let mut inner = shared.lock();
        count(&mut inner, &route, route.stats_key(&method));
        let target = Target {
            path: &path,
            is_hydrate: matches!(route, Route::Hydrate(_)),
            is_get_file: matches!(route, Route::GetFile(_)),
        };
        inner.faults.take(&target).map(|kind| {
            let rate = known_key
                .as_deref()
                .map(|k| inner.peek_rate(k, route.group(), now));
            (kind, rate)
        })
    };
    if let Some((kind, rate)) = fault {
        match kind {
            FaultKind::Latency(d) => tokio::time::sleep(d.min(MAX_LATENCY)).await,
            FaultKind::Drop => return Err(DropConnection),
            FaultKind::Hang => {
                tokio::select! {
                    _ = tokio::time::sleep(HANG_MAX) => {}
                    _ = shared.wait_shutdown() => {}
                }
                return Err(DropConnection);
            }
            other => return Ok(fault_resp(&other, rate)),
        }
    }

    match &route {
        Route::Cdn(id, rendition) => return Ok(cdn(&shared, id, rendition, &query)),
        Route::CdnPublic(id) => return Ok(cdn_public(&shared, id)),
        _ => {}
    }

    let api_key = match (token, known_key) {
        (None, _) => {
            return Ok(error_resp(&ApiError::new(
                401,
                "missing_api_key",
                "Missing API key.",
            )))
        }
        (Some(_), None) => {
            return Ok(error_resp(&ApiError::new(
                401,
                "invalid_api_key",
                "Invalid API key.",
            )))
        }
        (Some(_), Some(k)) => k,
    };
    let rate = shared.lock().take_rate(&api_key, route.group(), now);
    if !rate.allowed {
        let mut resp = error_resp(&ApiError::new(
            429,
            "rate_limited",
            "Rate limit exceeded. Please retry later.",
        ));
        add_rate(&mut resp, &rate);
        let retry = rate.reset.saturating_sub(now).max(1);
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry));
        return Ok(resp);
    }
    let result = match read_body(req.into_body()).await {
        Ok(body) => dispatch(&shared, &route, &api_key, &query, &body),
        Err(e) => Err(e),
    };
    let mut resp = match result {
        Ok((status, v)) => json_resp(status, &v),
        Err(e) => error_resp(&e),
    };
    add_rate(&mut resp, &rate);
    Ok(resp)
}

fn dispatch(
    shared: &Shared,
    route: &Route,
    key: &str,
    query: &str,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    match route {
        Route::Me => me(shared, key),
        Route::ListFiles => list_files(shared, key, query),
        Route::SearchFiles => search(shared, key, body),
        Route::GetFile(id) => {
            check_id(id)?;
            shared
                .render_file(id, Some(key), View::Plain)
                .map(|v| (200, v))
                .ok_or_else(|| ApiError::not_found("File"))
        }
        Route::Hydrate(id) => {
            check_id(id)?;
            shared
                .render_file(id, Some(key), View::Hydrated)
                .map(|v| (200, v))
                .ok_or_else(|| ApiError::not_found("File"))
        }
        Route::Archive(id) => {
            check_id(id)?;
            with_file(shared, key, id, |f| f.archived = true)?;
            Ok((200, json!({"fileId": id, "archived": true})))
        }
        Route::EnablePreview(id) | Route::DisablePreview(id) => {
            check_id(id)?;
            let on = matches!(route, Route::EnablePreview(_));
            with_file(shared, key, id, |f| f.public_preview = on)?;
            shared
                .render_file(id, Some(key), View::Plain)
                .map(|v| (200, v))
                .ok_or_else(|| ApiError::not_found("File"))
        }
        Route::Tool(tool) => start_tool(shared, key, tool, body),
        Route::ListExecutions => list_executions(shared, key, query),
        Route::GetExecution(id) => {
            check_id(id)?;
            get_execution(shared, key, id)
        }
        Route::CancelExecution(id) => {
            check_id(id)?;
            cancel_execution(shared, key, id)
        }
        Route::ListWebhooks => {
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
        Route::CreateWebhook => create_webhook(shared, key, body),
        Route::DeleteWebhook(id) => {
            check_id(id)?;
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
        Route::Cdn(..) | Route::CdnPublic(_) | Route::NotFound => {
            Err(ApiError::new(404, "not_found", "Route not found."))
        }
    }
}

fn with_file(
    shared: &Shared,
    key: &str,
    id: &str,
    f: impl FnOnce(&mut files::SimFile),
) -> Result<(), ApiError> {
    let mut inner = shared.lock();
    match inner.files.get_mut(id) {
        Some(file) if file.owner == key && !file.archived => {
            f(file);
            Ok(())
        }
        _ => Err(ApiError::not_found("File")),
    }
}

fn me(shared: &Shared, key: &str) -> Result<(u16, Value), ApiError> {
    let a = shared
        .account(key)
        .ok_or_else(|| ApiError::new(401, "invalid_api_key", "Invalid API key."))?;
    let files = shared.lock().order.get(key).map_or(0, Vec::len);
    Ok((
        200,
        json!({
            "accountId": format!("vg_acct_{}", a.short),
            "userId": format!("vg_user_{}", a.short),
            "name": a.name,
            "email": format!("{}@sim.videogen.invalid", a.short),
            "plan": "SIMULATED",
            "creditsRemaining": 100_000,
            "fileCount": files,
        }),
    ))
}

fn list_files(shared: &Shared, key: &str, query: &str) -> Result<(u16, Value), ApiError> {
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
        let page: Vec<files::SimFile> = live.by_ref().take(limit).cloned().collect();
        let has_more = live.next().is_some();
        (page, has_more, inner.url_lifetime)
    };
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

fn search(shared: &Shared, key: &str, body: &[u8]) -> Result<(u16, Value), ApiError> {
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
        let hits: Vec<files::SimFile> = inner
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

fn tool_type(tool: &str) -> String {
    tool.replace('-', "_").to_uppercase()
}

fn output_type(tool: &str) -> &'static str {
    match tool {
        "generate-image" | "vectorize-image" | "remove-image-background" | "upscale-image" => {
            "IMAGE"
        }
        "text-to-speech" | "generate-sound-effect" | "generate-music" => "AUDIO",
        _ => "VIDEO",
    }
}

fn execution_json(shared: &Shared, e: &Execution, with_results: bool) -> Value {
    let mut results = Vec::new();
    if with_results && e.status == "succeeded" {
        if let Some(file) = e
            .output_file
            .as_deref()
            .and_then(|id| shared.render_file(id, None, View::Hydrated))
        {
            let g = |k: &str| file.get(k).cloned().unwrap_or(Value::Null);
            results.push(json!({
                "fileId": g("fileId"),
                "type": g("type"),
                "downloadUrl": g("downloadUrl"),
                "downloadUrlExpiresAt": g("downloadUrlExpiresAt"),
                "thumbnailUrl": g("thumbnailUrl"),
                "thumbnailUrlExpiresAt": g("thumbnailUrlExpiresAt"),
                "file": file,
            }));
        }
    }
    json!({
        "toolExecutionId": e.id,
        "toolType": e.tool_type,
        "status": e.status,
        "createdAt": clock::iso8601(e.created_at),
        "completedAt": if e.status == "pending" { Value::Null } else { json!(clock::iso8601(e.created_at)) },
        "error": null,
        "results": results,
    })
}

fn start_tool(
    shared: &Shared,
    key: &str,
    tool: &str,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    let b = json_object(body)?;
    let prompt = b
        .get("prompt")
        .and_then(Value::as_str)
        .map(|p| p.chars().take(80).collect::<String>());
    let e = Execution {
        id: format!("vg_exec_{:016x}", rand::random::<u64>()),
        owner: key.to_string(),
        tool_type: tool_type(tool),
        output_type: output_type(tool),
        created_at: clock::now_secs(),
        polls: 0,
        status: "pending",
        output_file: None,
    };
    {
        let mut inner = shared.lock();
        if inner.executions.len() >= MAX_EXECUTIONS {
            return Err(ApiError::new(
                429,
                "rate_limited",
                "Too many tool executions.",
            ));
        }
        inner.exec_order.push(e.id.clone());
        inner.executions.insert(e.id.clone(), e.clone());
        // The prompt names the output file, created on the poll that succeeds.
        if let Some(p) = prompt {
            inner.prompts.insert(e.id.clone(), p);
        }
    }
    Ok((
        202,
        json!({
            "toolExecutionId": e.id,
            "toolType": e.tool_type,
            "status": "pending",
            "createdAt": clock::iso8601(e.created_at),
        }),
    ))
}

fn get_execution(shared: &Shared, key: &str, id: &str) -> Result<(u16, Value), ApiError> {
    let snapshot = {
        let mut inner = shared.lock();
        let inner = &mut *inner;
        let e = inner
            .executions
            .get_mut(id)
            .filter(|e| e.owner == key)
            .ok_or_else(|| ApiError::not_found("Tool execution"))?;
        e.polls = e.polls.saturating_add(1);
        if e.status == "pending" && e.polls >= 2 {
            let name = inner
                .prompts
                .remove(id)
                .unwrap_or_else(|| format!("{} output", e.tool_type.to_lowercase()));
            let spec = FileSpec {
                file_type: e.output_type.to_string(),
                display_name: name,
                duration_seconds: (e.output_type != "IMAGE").then_some(8.0),
                statuses: SourceStatuses {
                    hls: if e.output_type == "VIDEO" {
                        "ready"
                    } else {
                        "skipped"
                    }
                    .into(),
                    ..SourceStatuses::default()
                },
                public_preview: false,
            };
            let tool = e.tool_type.clone();
            let account = shared.account(key).cloned();
            let file_id = account.and_then(|a| inner.insert_file(&a, spec, Some((&tool, id))));
            if let Some(e) = inner.executions.get_mut(id) {
                e.output_file = file_id;
                e.status = "succeeded";
            }
        }
        inner.executions.get(id).cloned()
    };
    let e = snapshot.ok_or_else(|| ApiError::not_found("Tool execution"))?;
    Ok((200, execution_json(shared, &e, true)))
}

fn cancel_execution(shared: &Shared, key: &str, id: &str) -> Result<(u16, Value), ApiError> {
    let e = {
        let mut inner = shared.lock();
        let e = inner
            .executions
            .get_mut(id)
            .filter(|e| e.owner == key)
            .ok_or_else(|| ApiError::not_found("Tool execution"))?;
        if e.status == "pending" {
            e.status = "cancelled";
        }
        e.clone()
    };
    Ok((200, execution_json(shared, &e, false)))
}

fn list_executions(shared: &Shared, key: &str, query: &str) -> Result<(u16, Value), ApiError> {
    let q = query_map(query);
    let limit = parse_limit(query_get(&q, "limit"), 20, 100)?;
    let (list, has_more) = {
        let inner = shared.lock();
        let mut mine = inner
            .exec_order
            .iter()
            .rev()
            .filter_map(|id| inner.executions.get(id))
            .filter(|e| e.owner == key);
        let list: Vec<Execution> = mine.by_ref().take(limit).cloned().collect();
        (list, mine.next().is_some())
    };
    let items: Vec<Value> = list
        .iter()
        .map(|e| execution_json(shared, e, false))
        .collect();
    Ok((
        200,
        json!({"executions": items, "hasMore": has_more, "nextCursor": null}),
    ))
}

fn create_webhook(shared: &Shared, key: &str, body: &[u8]) -> Result<(u16, Value), ApiError> {
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
    inner.endpoints.push(super::state::Endpoint {
        owner: key.to_string(),
        json: endpoint.clone(),
    });
    Ok((201, endpoint))
}

fn cdn(shared: &Shared, id: &str, rendition: &str, query: &str) -> Resp {
    if !valid_id(id) || !RENDITIONS.contains(&rendition) {
        return error_resp(&ApiError::not_found("Object"));
    }
    if let Err(e) = shared.signer.verify(id, rendition, query, clock::now_f64()) {
        return error_resp(&ApiError::new(403, "forbidden", e.to_string()));
    }
    let file_type = shared
        .lock()
        .files
        .get(id)
        .map(|f| f.file_type.clone())
        .unwrap_or_default();
    raw_resp(
        200,
        files::content_type(&file_type, rendition),
        Bytes::from(files::cdn_bytes(id, rendition)),
    )
}

fn cdn_public(shared: &Shared, id: &str) -> Resp {
    let file_type = {
        let inner = shared.lock();
        match inner.files.get(id) {
            Some(f) if f.public_preview && !f.archived => f.file_type.clone(),
            _ => return error_resp(&ApiError::not_found("Object")),
        }
    };
    raw_resp(
        200,
        files::content_type(&file_type, "public"),
        Bytes::from(files::cdn_bytes(id, "public")),
    )
}
