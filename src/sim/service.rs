//! The hyper service: one request's way through the simulator. `/_sim` goes to the control
//! plane; everything else is counted, may meet a queued fault, then the CDN (no auth) or
//! bearer auth, the per-key rate limit, the body read and the `/v1` handler of its route.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::{HeaderMap, Request};
use hyper::body::Incoming;
use std::sync::Arc;

use super::faults::{FaultKind, Target, HANG_MAX, MAX_LATENCY};
use super::files::View;
use super::http::{
    check_id, error_resp, json_resp, raw_resp, read_body, valid_id, ApiError, ApiResult, Resp,
};
use super::route::Route;
use super::state::{Inner, RateInfo, Shared};
use super::{account, cdn, clock, control, file_routes, listing, tools, webhook_endpoints};

/// Marks a response whose body the accept loop trickles over this long
/// ([`FaultKind::SlowBody`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct SlowBody(pub(super) std::time::Duration);

/// Returned by the service to make hyper close the connection without a response.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
pub(super) struct DropConnection;

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

fn count(inner: &mut Inner, route: &Route, key: String, account: Option<&str>) {
    let s = &mut inner.stats;
    s.total_requests += 1;
    *s.by_route.entry(key).or_insert(0) += 1;
    match route {
        Route::Hydrate(id) => {
            s.hydrate_calls += 1;
            if let Some(short) = account {
                *s.hydrate_by_account.entry(short.to_string()).or_insert(0) += 1;
            }
            if valid_id(id) {
                inner.count_file_hydrate(id);
            }
        }
        Route::GetFile(_) => s.get_file_calls += 1,
        Route::ListFiles => s.list_files_calls += 1,
        Route::SearchFiles => s.search_calls += 1,
        Route::Tool(_) => s.tool_calls += 1,
        Route::GetExecution(_) => s.execution_get_calls += 1,
        Route::Cdn(..) | Route::CdnSegment(..) | Route::CdnPublic(_) | Route::CdnPreflight => {
            s.cdn_calls += 1
        }
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
pub(super) async fn handle(
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
    // Counted before faults and auth, so tests see every call hydrant made, refused ones too.
    let fault = {
        let mut inner = shared.lock();
        let short = known_key
            .as_deref()
            .and_then(|k| shared.account(k))
            .map(|a| a.short.as_str());
        count(&mut inner, &route, route.stats_key(&method), short);
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
    let mut slow_body = None;
    if let Some((kind, rate)) = fault {
        match kind {
            FaultKind::Latency(d) => tokio::time::sleep(d.min(MAX_LATENCY)).await,
            FaultKind::SlowBody(d) => slow_body = Some(SlowBody(d.min(MAX_LATENCY))),
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

    let mut resp = answer(&shared, &route, token, known_key, &query, req, now).await;
    if let Some(slow) = slow_body {
        resp.extensions_mut().insert(slow);
    }
    Ok(resp)
}

/// The answer of a request that met no fault (or a [`FaultKind::SlowBody`] one).
async fn answer(
    shared: &Shared,
    route: &Route,
    token: Option<String>,
    known_key: Option<String>,
    query: &str,
    req: Request<Incoming>,
    now: u64,
) -> Resp {
    let cdn_req = cdn::CdnRequest {
        method: req.method(),
        query,
        headers: req.headers(),
    };
    match route {
        Route::Cdn(id, rendition) => return cdn::signed(shared, id, rendition, &cdn_req),
        Route::CdnSegment(id, name) => return cdn::segment(shared, id, name, &cdn_req),
        Route::CdnPublic(id) => return cdn::public(shared, id, &cdn_req),
        Route::CdnPreflight => return cdn::preflight(shared, req.headers()),
        _ => {}
    }

    let api_key = match (token, known_key) {
        (None, _) => return error_resp(&ApiError::new(401, "missing_api_key", "Missing API key.")),
        (Some(_), None) => {
            return error_resp(&ApiError::new(401, "invalid_api_key", "Invalid API key."))
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
        return resp;
    }
    let result = match read_body(req.into_body()).await {
        Ok(body) => dispatch(shared, route, &api_key, query, &body),
        Err(e) => Err(e),
    };
    let mut resp = match result {
        Ok((status, v)) => json_resp(status, &v),
        Err(e) => error_resp(&e),
    };
    add_rate(&mut resp, &rate);
    resp
}

/// The `/v1` handler of each route.
fn dispatch(shared: &Shared, route: &Route, key: &str, query: &str, body: &[u8]) -> ApiResult {
    match route {
        Route::Me => account::me(shared, key),
        Route::ListFiles => listing::list_files(shared, key, query),
        Route::SearchFiles => listing::search(shared, key, body),
        Route::GetFile(id) => {
            check_id(id)?;
            file_routes::render(shared, key, id, View::Plain)
        }
        Route::Hydrate(id) => {
            check_id(id)?;
            file_routes::render(shared, key, id, View::Hydrated)
        }
        Route::Archive(id) => {
            check_id(id)?;
            file_routes::archive(shared, key, id)
        }
        Route::EnablePreview(id) | Route::DisablePreview(id) => {
            check_id(id)?;
            let on = matches!(route, Route::EnablePreview(_));
            file_routes::set_public_preview(shared, key, id, on)
        }
        Route::Tool(tool) => tools::start_tool(shared, key, tool, body),
        Route::ListExecutions => tools::list_executions(shared, key, query),
        Route::GetExecution(id) => {
            check_id(id)?;
            tools::get_execution(shared, key, id)
        }
        Route::CancelExecution(id) => {
            check_id(id)?;
            tools::cancel_execution(shared, key, id)
        }
        Route::ListWebhooks => webhook_endpoints::list(shared, key),
        Route::CreateWebhook => webhook_endpoints::create(shared, key, body),
        Route::DeleteWebhook(id) => {
            check_id(id)?;
            webhook_endpoints::delete(shared, key, id)
        }
        // The CDN routes are answered before auth, in `handle`.
        Route::Cdn(..)
        | Route::CdnSegment(..)
        | Route::CdnPublic(_)
        | Route::CdnPreflight
        | Route::NotFound => Err(ApiError::new(404, "not_found", "Route not found.")),
    }
}
