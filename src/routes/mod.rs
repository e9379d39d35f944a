//! Dispatch: each route (see `shape`, the only place that knows URL shapes) to its handler.
//!
//! Cache hits are answered synchronously; everything else goes through one boxed async path.
//! Oversized heads are refused here, and every handler error becomes its JSON response here
//! (the mapping itself is `error.rs`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{self, BoxFuture, Either, Ready};
use http::{header, HeaderValue, Request, Response, StatusCode};
use tokio::time::Instant;

use crate::app::App;
use crate::auth::UpstreamAuth;
use crate::body::{self, Body};
use crate::clock;
use crate::cors::{self, Cors};
use crate::error::Error;
use crate::framing::{self, Framing};
use crate::gateway;
use crate::header_arena;
use crate::headers::X_REQUEST_ID;
use crate::hydration::hydrator::Answer;
use crate::hydration::prime;
use crate::hydration::store::Key;
use crate::redirect;
use crate::respond;
use crate::telemetry::{CacheStatus, RouteClass};
use crate::upstream::UpstreamError;
use crate::webhooks;

mod shape;

pub use shape::{classify, Route};

/// Largest request head (request line + header fields) hydrant accepts.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

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

/// What [`handle`] gives back: a cache hit already answered (`Left`, ready), or the boxed
/// future of everything else (`Right`). Awaiting it gives the [`Handled`] either way; the
/// server takes a ready answer out with `into_inner` and builds no future for it.
/// The boxed future owns what it needs (its own handle on the `App`), so the server can hand
/// it to hyper without keeping anything of its own alive for it.
pub type Handling = Either<Ready<Handled>, BoxFuture<'static, Handled>>;

/// Dispatch one request. Never fails: errors become JSON responses here.
///
/// A cache hit on the redirect or hydrate route is answered synchronously, here, before
/// anything is awaited; everything else (misses, pass-through, webhooks, ...) goes through
/// `handle_async`, boxed: its future is large, and would otherwise be built and moved on
/// every request.
pub fn handle<B>(app: &Arc<App>, req: Request<B>) -> Handling
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<body::BoxError>,
{
    handle_at(app, req, clock::now())
}

/// [`handle`] for a request that arrived at `now` (the server reads the clock once per
/// request, for this and for the request's latency).
pub fn handle_at<B>(app: &Arc<App>, req: Request<B>, now: Instant) -> Handling
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<body::BoxError>,
{
    // Before any route, the hit path included: an ambiguous request is answered by no one.
    let framing = match framing::inspect(req.method(), req.uri(), req.headers()) {
        Ok(f) => f,
        Err(e) => {
            let class = classify(req.method(), req.uri().path()).class();
            return Either::Left(future::ready(error_handled(e.into(), class)));
        }
    };
    // CORS decorates every answer on the frontend routes, errors included (a player must
    // be able to read a `503`'s `Retry-After`).
    // `Some(origin)` when CORS applies to this path.
    let cors_origin = match &app.cors {
        Some(_) if cors::applies(req.uri().path()) => {
            Some(req.headers().get(header::ORIGIN).cloned())
        }
        _ => None,
    };
    match handle_hit(app, &req, now) {
        Some(mut handled) => {
            finish(&mut handled, app.cors.as_ref(), cors_origin, framing);
            Either::Left(future::ready(handled))
        }
        None => {
            let app = app.clone();
            Either::Right(Box::pin(async move {
                let mut handled = handle_async(&app, req.map(body::boxed), framing).await;
                finish(&mut handled, app.cors.as_ref(), cors_origin, framing);
                handled
            }))
        }
    }
}

/// What every answer gets on its way out: CORS headers on the frontend routes, and
/// `connection: close` after a request whose framing was suspect. In place: a hit's answer
/// is not moved once more for a step that usually does nothing.
fn finish(
    handled: &mut Handled,
    cors: Option<&Cors>,
    cors_origin: Option<Option<HeaderValue>>,
    framing: Framing,
) {
    if let (Some(cors), Some(origin)) = (cors, cors_origin) {
        cors.decorate(origin.as_ref(), handled.response.headers_mut());
    }
    if framing.must_close() {
        handled
            .response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
}

/// The synchronous hit path of [`handle`]: `None` when the request needs more.
fn handle_hit<B>(app: &Arc<App>, req: &Request<B>, now: Instant) -> Option<Handled> {
    let route = classify(req.method(), req.uri().path());
    let class = route.class();
    if head_size(req) > MAX_HEAD_BYTES {
        return None;
    }
    let result = match route {
        Route::Redirect(ref id) => redirect::redirect_hit(app, id, req.uri().query(), now)
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
async fn handle_async(app: &Arc<App>, req: Request<Body>, framing: Framing) -> Handled {
    let route = classify(req.method(), req.uri().path());
    let class = route.class();
    let result = if head_size(&req) > MAX_HEAD_BYTES {
        Err(Error::HeadersTooLarge)
    } else {
        dispatch(app, route, req, framing).await
    };
    match result {
        Ok(h) => h,
        Err(e) => error_handled(e, class),
    }
}

async fn dispatch(
    app: &Arc<App>,
    route: Route,
    req: Request<Body>,
    framing: Framing,
) -> Result<Handled, Error> {
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
        Route::Preflight(_) => match &app.cors {
            Some(cors) => Ok(own(cors.preflight(req.headers()))),
            None => Err(Error::MethodNotAllowed("GET, HEAD")),
        },
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
                _ => Box::pin(pass_through(app, req, framing, &auth, class)).await,
            }
        }
        Route::FileMutation(id) => {
            let auth = app.auth.for_request(req.headers())?;
            let handled = Box::pin(pass_through(app, req, framing, &auth, class)).await?;
            if handled.response.status().is_success() {
                // Before the response leaves: the next read sees the new state.
                app.hydrator.invalidate(id).await;
            }
            Ok(handled)
        }
        Route::FileListing => {
            let auth = app.auth.for_request(req.headers())?;
            let mut handled = Box::pin(pass_through(app, req, framing, &auth, class)).await?;
            // The head came within `upstream_timeout`; a body buffered for priming gets that
            // long again, so an upstream that sends a head and then stalls is a 504, not a
            // request that never ends.
            let primed = tokio::time::timeout(
                app.config.upstream_timeout,
                Box::pin(prime::prime_response(
                    &app.hydrator,
                    auth.tenant,
                    handled.response,
                )),
            )
            .await
            .map_err(|_| Error::from(UpstreamError::Timeout))?;
            handled.response =
                primed.map_err(|e| Error::from(UpstreamError::Connect(Box::new(e))))?;
            Ok(handled)
        }
        Route::GetFile(_) | Route::PassThrough => {
            let auth = app.auth.for_request(req.headers())?;
            Box::pin(pass_through(app, req, framing, &auth, class)).await
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
    framing: Framing,
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
        framing,
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
