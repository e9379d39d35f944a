//! URL shapes: which handler a request goes to, decided from its method and path alone.
//!
//! This is the only module that knows hydrant's routes. It validates file ids where hydrant
//! interprets them (`[A-Za-z0-9_-]{1,128}`, else `400 invalid_id` with no upstream call),
//! refuses oversized heads, and turns every handler error into the one JSON error shape.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};

use crate::app::App;
use crate::auth::UpstreamAuth;
use crate::body::{self, Body};
use crate::clock;
use crate::error::Error;
use crate::file_id::FileId;
use crate::gateway;
use crate::header_arena;
use crate::headers::X_REQUEST_ID;
use crate::hydration::hydrator::Answer;
use crate::hydration::prime;
use crate::hydration::store::Key;
use crate::redirect;
use crate::respond;
use crate::telemetry::{CacheStatus, RouteClass};
use crate::webhooks;

/// Largest request head (request line + header fields) hydrant accepts.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// What a request is, by URL shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /healthz`
    Healthz,
    /// `GET /readyz`
    Readyz,
    /// `GET /metrics`
    Metrics,
    /// `GET|HEAD /files/{id}/redirect`
    Redirect(FileId),
    /// `GET|HEAD /files/{id}`
    FileJson(FileId),
    /// `POST /v1/files/{id}/hydrate`
    Hydrate(FileId),
    /// `GET /v1/files/{id}`
    GetFile(FileId),
    /// `POST /v1/files/{id}/{archive|enable-public-preview|disable-public-preview}`: a call
    /// that changes what the file's hydrated form says.
    FileMutation(FileId),
    /// `GET /v1/files`, `POST /v1/files/search`, `GET /v1/tools/executions/{id}`: answers
    /// that carry hydrated file objects.
    FileListing,
    /// Any other `/v1/...` call.
    PassThrough,
    /// `POST /webhooks/videogen`
    Webhook,
    /// `DELETE /admin/files/{id}`
    AdminPurge(FileId),
    /// An id hydrant must interpret is malformed.
    InvalidId,
    /// Known path, wrong method (with the methods it allows).
    MethodNotAllowed(&'static str),
    /// Nothing here.
    NotFound,
}

impl Route {
    /// Metric/log class.
    pub fn class(&self) -> RouteClass {
        match self {
            Route::Healthz | Route::Readyz | Route::Metrics => RouteClass::ops,
            Route::Redirect(_) => RouteClass::redirect,
            Route::FileJson(_) => RouteClass::file_json,
            Route::Hydrate(_) => RouteClass::hydrate,
            Route::GetFile(_) => RouteClass::get_file,
            Route::FileMutation(_) | Route::FileListing | Route::PassThrough => {
                RouteClass::passthrough
            }
            Route::Webhook => RouteClass::webhook,
            Route::AdminPurge(_) => RouteClass::admin,
            Route::InvalidId | Route::MethodNotAllowed(_) | Route::NotFound => RouteClass::unknown,
        }
    }
}

fn id_route(id: &str, route: fn(FileId) -> Route) -> Route {
    match FileId::parse(id) {
        Some(id) => route(id),
        None => Route::InvalidId,
    }
}

/// Classify a request by method and path.
pub fn classify(method: &Method, path: &str) -> Route {
    let get_or_head = method == Method::GET || method == Method::HEAD;
    if let Some(rest) = path.strip_prefix("/v1/") {
        let mut seg = rest.split('/');
        return match (seg.next(), seg.next(), seg.next(), seg.next()) {
            (Some("files"), None, ..) if method == Method::GET => Route::FileListing,
            (Some("files"), Some("search"), None, _) if method == Method::POST => {
                Route::FileListing
            }
            (Some("tools"), Some("executions"), Some(_), None) if method == Method::GET => {
                Route::FileListing
            }
            (Some("files"), Some(id), Some("hydrate"), None) if method == Method::POST => {
                id_route(id, Route::Hydrate)
            }
            (
                Some("files"),
                Some(id),
                Some("archive" | "enable-public-preview" | "disable-public-preview"),
                None,
            ) if method == Method::POST => id_route(id, Route::FileMutation),
            (Some("files"), Some(id), None, _) if method == Method::GET => {
                id_route(id, Route::GetFile)
            }
            _ => Route::PassThrough,
        };
    }
    match path {
        "/healthz" if get_or_head => return Route::Healthz,
        "/readyz" if get_or_head => return Route::Readyz,
        "/metrics" if get_or_head => return Route::Metrics,
        "/healthz" | "/readyz" | "/metrics" => return Route::MethodNotAllowed("GET, HEAD"),
        "/webhooks/videogen" if method == Method::POST => return Route::Webhook,
        "/webhooks/videogen" => return Route::MethodNotAllowed("POST"),
        "/v1" => return Route::PassThrough,
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/files/") {
        let (id, tail) = match rest.split_once('/') {
            Some((id, tail)) => (id, Some(tail)),
            None => (rest, None),
        };
        let route: fn(FileId) -> Route = match tail {
            None => Route::FileJson,
            Some("redirect") => Route::Redirect,
            Some(_) => return Route::NotFound,
        };
        if !get_or_head {
            return Route::MethodNotAllowed("GET, HEAD");
        }
        return id_route(id, route);
    }
    if let Some(id) = path.strip_prefix("/admin/files/") {
        if method != Method::DELETE {
            return Route::MethodNotAllowed("DELETE");
        }
        return id_route(id, Route::AdminPurge);
    }
    Route::NotFound
}

/// A response plus what the access log and metrics want to know about it.
pub struct Handled {
    /// The response.
    pub response: Response<Body>,
    /// Route class.
    pub route: RouteClass,
    /// Cache outcome, where the route has one.
    pub cache: Option<CacheStatus>,
    /// Upstream time, where an upstream call was made.
    pub upstream: Option<Duration>,
}

impl Handled {
    fn new(response: Response<Body>, route: RouteClass) -> Handled {
        Handled {
            response,
            route,
            cache: None,
            upstream: None,
        }
    }
}

fn head_size<B>(req: &Request<B>) -> usize {
    let uri = req.uri().path_and_query().map_or(1, |p| p.as_str().len());
    req.headers()
        .iter()
        .fold(uri + 16, |n, (k, v)| n + k.as_str().len() + v.len() + 4)
}

/// A small JSON response.
fn json_response(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(body::full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn text_response(
    status: StatusCode,
    body: &'static str,
    content_type: &'static str,
) -> Response<Body> {
    let mut resp = Response::new(body::full(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Dispatch one request. Never fails: errors become JSON responses here.
///
/// A cache hit on the redirect or hydrate route is answered synchronously; everything else
/// (misses, pass-through, webhooks, ...) goes through `handle_async`, boxed: its future is
/// large, and would otherwise be built and moved on every request.
pub async fn handle<B>(app: &Arc<App>, req: Request<B>) -> Handled
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<body::BoxError>,
{
    if let Some(handled) = handle_hit(app, &req) {
        return handled;
    }
    Box::pin(handle_async(app, req.map(body::boxed))).await
}

/// The synchronous hit path of [`handle`]: `None` when the request needs more.
fn handle_hit<B>(app: &Arc<App>, req: &Request<B>) -> Option<Handled> {
    let route = classify(req.method(), req.uri().path());
    let class = route.class();
    if head_size(req) > MAX_HEAD_BYTES {
        return None;
    }
    let result = match route {
        Route::Redirect(id) => redirect::redirect_hit(app, id, req.uri().query())
            .transpose()?
            .map(|(response, cache)| Handled {
                response,
                route: class,
                cache: Some(cache),
                upstream: None,
            }),
        Route::Hydrate(id) => {
            // Credential errors are left to the full path (same answer, one place).
            let auth = app.auth.for_request(req.headers()).ok()?;
            let key = Key {
                tenant: auth.tenant,
                file: id,
            };
            let now = clock::now();
            let entry = app.hydrator.hit(&key, &auth.header, now)?;
            Ok(Handled {
                response: respond::entry_body(&entry, CacheStatus::Hit, now),
                route: class,
                cache: Some(CacheStatus::Hit),
                upstream: None,
            })
        }
        _ => return None,
    };
    Some(result.unwrap_or_else(|e| error_handled(e, class)))
}

/// The one place an [`Error`] becomes a response; its cause chain goes to the debug log.
fn error_handled(e: Error, class: RouteClass) -> Handled {
    if e.status().is_server_error() {
        let cause = std::error::Error::source(&e).map(|c| c.to_string());
        tracing::debug!(error = %e, cause = cause.as_deref().unwrap_or("-"), "request failed");
    }
    Handled::new(e.into_response(), class)
}

/// Every request the hit path did not answer.
async fn handle_async(app: &Arc<App>, req: Request<Body>) -> Handled {
    let route = classify(req.method(), req.uri().path());
    let class = route.class();
    let result = if head_size(&req) > MAX_HEAD_BYTES {
        Err(Error::HeadersTooLarge)
    } else {
        dispatch(app, route, req).await
    };
    match result {
        Ok(h) => h,
        Err(e) => error_handled(e, class),
    }
}

async fn dispatch(app: &Arc<App>, route: Route, req: Request<Body>) -> Result<Handled, Error> {
    let class = route.class();
    let own = move |mut response: Response<Body>| {
        response
            .headers_mut()
            .insert(X_REQUEST_ID, header_arena::request_id());
        Handled::new(response, class)
    };
    match route {
        Route::Healthz => Ok(own(text_response(StatusCode::OK, "ok\n", "text/plain"))),
        Route::Readyz => Ok(own(if app.is_draining() {
            text_response(StatusCode::SERVICE_UNAVAILABLE, "draining\n", "text/plain")
        } else {
            text_response(StatusCode::OK, "ready\n", "text/plain")
        })),
        Route::Metrics => {
            let (entries, bytes) = app.hydrator.usage();
            app.metrics.cache_entries.set(entries as i64);
            app.metrics.cache_bytes.set(bytes as i64);
            let mut resp = Response::new(body::full(Bytes::from(app.metrics.encode())));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            Ok(own(resp))
        }
        Route::InvalidId => Err(Error::InvalidId),
        Route::MethodNotAllowed(allow) => Err(Error::MethodNotAllowed(allow)),
        Route::NotFound => Err(Error::NotFound("Not found.")),
        Route::Redirect(id) => {
            let (response, cache) = redirect::redirect(app, id, req.uri().query()).await?;
            Ok(Handled {
                response,
                route: class,
                cache: Some(cache),
                upstream: None,
            })
        }
        Route::FileJson(id) => {
            let (response, cache) =
                Box::pin(redirect::file_json(app, id, req.uri().query())).await?;
            Ok(Handled {
                response,
                route: class,
                cache: Some(cache),
                upstream: None,
            })
        }
        Route::Hydrate(id) => {
            let auth = app.auth.for_request(req.headers())?;
            let key = Key {
                tenant: auth.tenant,
                file: id,
            };
            let answer = app.hydrator.get(key, &auth.header).await?;
            let now = clock::now();
            Ok(match answer {
                Answer::Cached { entry, cache } => Handled {
                    response: respond::entry_body(&entry, cache, now),
                    route: class,
                    cache: Some(cache),
                    upstream: None,
                },
                Answer::Upstream(r) => Handled::new(respond::reply(&r), class),
            })
        }
        Route::GetFile(id) if app.config.serve_get_from_cache => {
            let auth = app.auth.for_request(req.headers())?;
            let key = Key {
                tenant: auth.tenant,
                file: id,
            };
            let now = clock::now();
            match app.hydrator.hit(&key, &auth.header, now) {
                Some(entry) if entry.status == StatusCode::OK => Ok(Handled {
                    response: respond::entry_body(&entry, CacheStatus::Hit, now),
                    route: class,
                    cache: Some(CacheStatus::Hit),
                    upstream: None,
                }),
                _ => Box::pin(pass_through(app, req, &auth, class)).await,
            }
        }
        Route::FileMutation(id) => {
            let auth = app.auth.for_request(req.headers())?;
            let handled = Box::pin(pass_through(app, req, &auth, class)).await?;
            if handled.response.status().is_success() {
                // Before the response leaves: the next read sees the new state.
                app.hydrator.invalidate(id).await;
            }
            Ok(handled)
        }
        Route::FileListing => {
            let auth = app.auth.for_request(req.headers())?;
            let mut handled = Box::pin(pass_through(app, req, &auth, class)).await?;
            handled.response = Box::pin(prime::prime_response(
                &app.hydrator,
                auth.tenant,
                handled.response,
            ))
            .await
            .map_err(|e| Error::from(crate::upstream::UpstreamError::Connect(Box::new(e))))?;
            Ok(handled)
        }
        Route::GetFile(_) | Route::PassThrough => {
            let auth = app.auth.for_request(req.headers())?;
            Box::pin(pass_through(app, req, &auth, class)).await
        }
        Route::AdminPurge(id) => {
            app.auth.check_admin(req.headers())?;
            app.hydrator.invalidate(id).await;
            tracing::info!(file = %id, "purged by admin");
            let body = serde_json::json!({ "fileId": id.as_str(), "purged": true });
            Ok(own(json_response(
                StatusCode::OK,
                Bytes::from(body.to_string()),
            )))
        }
        Route::Webhook => {
            let Some(hooks) = &app.webhooks else {
                return Err(Error::NotFound(
                    "Webhooks are not enabled (--webhook-secret).",
                ));
            };
            let tenant = app.auth.proxy_tenant();
            Ok(own(Box::pin(webhooks::handle(
                hooks,
                &app.hydrator,
                tenant,
                req,
            ))
            .await?))
        }
    }
}

async fn pass_through(
    app: &Arc<App>,
    req: Request<Body>,
    auth: &UpstreamAuth,
    class: RouteClass,
) -> Result<Handled, Error> {
    let (parts, body) = req.into_parts();
    // Boxed, like every rare branch: the handler future is moved on each request, so it is
    // kept to what the cache-hit routes need.
    let (response, took) = Box::pin(gateway::forward(
        &app.upstream,
        &app.metrics,
        parts,
        body,
        auth,
        class,
    ))
    .await?;
    Ok(Handled {
        response,
        route: class,
        cache: None,
        upstream: Some(took),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_routes() {
        let g = Method::GET;
        let p = Method::POST;
        assert_eq!(
            classify(&g, "/files/vg_file_1/redirect"),
            Route::Redirect(id("vg_file_1"))
        );
        assert_eq!(
            classify(&Method::HEAD, "/files/vg_file_1/redirect"),
            Route::Redirect(id("vg_file_1"))
        );
        assert_eq!(
            classify(&g, "/files/vg_file_1"),
            Route::FileJson(id("vg_file_1"))
        );
        assert_eq!(
            classify(&p, "/files/vg_file_1"),
            Route::MethodNotAllowed("GET, HEAD")
        );
        assert_eq!(classify(&g, "/files/bad.id/redirect"), Route::InvalidId);
        assert_eq!(classify(&g, "/files//redirect"), Route::InvalidId);
        assert_eq!(classify(&g, "/files/a/other"), Route::NotFound);
        assert_eq!(
            classify(&p, "/v1/files/vg_file_1/hydrate"),
            Route::Hydrate(id("vg_file_1"))
        );
        assert_eq!(classify(&p, "/v1/files/%2e%2e/hydrate"), Route::InvalidId);
        assert_eq!(
            classify(&g, "/v1/files/vg_file_1"),
            Route::GetFile(id("vg_file_1"))
        );
        assert_eq!(
            classify(&p, "/v1/files/x/archive"),
            Route::FileMutation(id("x"))
        );
        assert_eq!(
            classify(&p, "/v1/files/x/enable-public-preview"),
            Route::FileMutation(id("x"))
        );
        assert_eq!(classify(&g, "/v1/files"), Route::FileListing);
        assert_eq!(classify(&p, "/v1/files/search"), Route::FileListing);
        assert_eq!(
            classify(&g, "/v1/tools/executions/vg_exec_1"),
            Route::FileListing
        );
        assert_eq!(classify(&p, "/v1/tools/generate-image"), Route::PassThrough);
        assert_eq!(classify(&g, "/v1/me"), Route::PassThrough);
        assert_eq!(classify(&p, "/webhooks/videogen"), Route::Webhook);
        assert_eq!(
            classify(&g, "/webhooks/videogen"),
            Route::MethodNotAllowed("POST")
        );
        assert_eq!(
            classify(&Method::DELETE, "/admin/files/x"),
            Route::AdminPurge(id("x"))
        );
        assert_eq!(
            classify(&g, "/admin/files/x"),
            Route::MethodNotAllowed("DELETE")
        );
        assert_eq!(classify(&g, "/"), Route::NotFound);
        assert_eq!(classify(&g, "/healthz"), Route::Healthz);
        let long = "a".repeat(129);
        assert_eq!(classify(&g, &format!("/files/{long}")), Route::InvalidId);
        assert_eq!(
            classify(&g, &format!("/files/{}", &long[..128])),
            Route::FileJson(id(&long[..128]))
        );
    }

    fn id(s: &str) -> FileId {
        FileId::parse(s).unwrap()
    }
}
