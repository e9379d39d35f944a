//! The frontend routes: `/files/{id}/redirect` (a `302` to the current signed URL) and
//! `GET /files/{id}` (stable JSON that never contains an expiring upstream URL).
//!
//! Both use the proxy's own key. With signing keys configured both require `exp` + `sig`
//! (checked before any lookup). A redirect's `Cache-Control` is `private` and its max-age never
//! reaches past that rendition's own URL expiry minus the margin.

use std::sync::Arc;

use http::{header, HeaderValue, Response, StatusCode};

use crate::app::App;
use crate::auth::UpstreamAuth;
use crate::body::{self, Body};
use crate::clock;
use crate::error::Error;
use crate::file_id::FileId;
use crate::header_arena;
use crate::hydration::entry::{Entry, Location};
use crate::hydration::file::{FileView, Rendition, SourceStatus};
use crate::hydration::hydrator::Answer;
use crate::hydration::policy;
use crate::hydration::policy::retry_after_secs;
use crate::hydration::store::Key;
use crate::json_view::Rendered;
use crate::respond;
use crate::telemetry::CacheStatus;

/// The query of a frontend route, parsed without allocating in the common case.
#[derive(Debug, Default)]
pub struct FrontQuery<'a> {
    /// `rendition=`, default download.
    pub rendition: Option<Rendition>,
    /// `exp=`.
    pub exp: Option<std::borrow::Cow<'a, str>>,
    /// `sig=`.
    pub sig: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> FrontQuery<'a> {
    /// Parse; the first occurrence of each parameter wins.
    pub fn parse(query: Option<&'a str>) -> Result<FrontQuery<'a>, Error> {
        let mut q = FrontQuery::default();
        let mut saw_rendition = false;
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*k {
                "rendition" if !saw_rendition => {
                    saw_rendition = true;
                    q.rendition = Some(Rendition::parse(&v).ok_or(Error::UnknownRendition)?);
                }
                "exp" if q.exp.is_none() => q.exp = Some(v),
                "sig" if q.sig.is_none() => q.sig = Some(v),
                _ => {}
            }
        }
        Ok(q)
    }
}

fn check_signature(app: &App, id: &FileId, q: &FrontQuery<'_>) -> Result<(), Error> {
    let Some(signer) = &app.signer else {
        return Ok(());
    };
    let now = clock::now_unix().max(0.0) as u64;
    Ok(signer.verify(id.as_str(), q.exp.as_deref(), q.sig.as_deref(), now)?)
}

/// A frontend lookup's result: a file (with the parsed query), or a finished response (a
/// remembered 404 answered with the upstream's stored body).
enum Found<'q> {
    File(FrontQuery<'q>, Arc<Entry>, CacheStatus, Key),
    Done(Response<Body>, CacheStatus),
}

/// What every frontend request checks before looking anything up: its query, its signature,
/// and the proxy's own credentials. The id is borrowed and the caller builds the key: a
/// `FileId` is 129 bytes, and each copy of it (or of a tuple holding it) is a `memcpy` on
/// every cache hit.
fn prologue<'a, 'q>(
    app: &'a App,
    id: &FileId,
    query: Option<&'q str>,
) -> Result<(FrontQuery<'q>, &'a UpstreamAuth), Error> {
    let q = FrontQuery::parse(query)?;
    check_signature(app, id, &q)?;
    let auth = app.auth.proxy()?;
    Ok((q, auth))
}

/// The shared lookup of both frontend routes.
async fn lookup<'q>(
    app: &Arc<App>,
    id: FileId,
    query: Option<&'q str>,
) -> Result<Found<'q>, Error> {
    let (q, auth) = prologue(app, &id, query)?;
    let key = Key {
        tenant: auth.tenant,
        file: id,
    };
    match app.hydrator.get(key, &auth.header).await? {
        Answer::Cached { entry, cache } if entry.status == StatusCode::NOT_FOUND => Ok(
            Found::Done(respond::entry_body(&entry, cache, clock::now()), cache),
        ),
        Answer::Cached { entry, cache } => Ok(Found::File(q, entry, cache, key)),
        Answer::Upstream(r) => Err(Error::from_upstream_reply(&r)),
    }
}

/// `/files/{id}/redirect` when the entry is fresh in cache: answered without awaiting
/// anything (no future is built for a hit). `Ok(None)` when it is not, and the caller takes
/// [`redirect`]. A bad query or signature is answered here: the full path would refuse it too.
pub fn redirect_hit(
    app: &Arc<App>,
    id: &FileId,
    query: Option<&str>,
    now: tokio::time::Instant,
) -> Result<Option<(Response<Body>, CacheStatus)>, Error> {
    let (q, auth) = prologue(app, id, query)?;
    let key = Key {
        tenant: auth.tenant,
        file: *id,
    };
    let Some(entry) = app.hydrator.hit(&key, &auth.header, now) else {
        return Ok(None);
    };
    let cache = CacheStatus::Hit;
    if entry.status == StatusCode::NOT_FOUND {
        return Ok(Some((respond::entry_body(&entry, cache, now), cache)));
    }
    let rendition = q.rendition.unwrap_or(Rendition::Download);
    let resp = redirect_response(&entry, rendition, cache, now, app)?;
    Ok(Some((resp, cache)))
}

/// `GET|HEAD /files/{id}/redirect?rendition=R`.
pub async fn redirect(
    app: &Arc<App>,
    id: FileId,
    query: Option<&str>,
) -> Result<(Response<Body>, CacheStatus), Error> {
    let (q, entry, cache) = match lookup(app, id, query).await? {
        Found::File(q, entry, cache, _) => (q, entry, cache),
        Found::Done(resp, cache) => return Ok((resp, cache)),
    };
    let now = clock::now();
    let resp = redirect_response(
        &entry,
        q.rendition.unwrap_or(Rendition::Download),
        cache,
        now,
        app,
    )?;
    Ok((resp, cache))
}

/// Render a redirect from an entry (the cache-hit path: no JSON, no body copy).
pub fn redirect_response(
    entry: &Entry,
    rendition: Rendition,
    cache: CacheStatus,
    now: tokio::time::Instant,
    app: &App,
) -> Result<Response<Body>, Error> {
    let r = entry.rendition(rendition);
    match (r.status, entry.location(rendition)) {
        (SourceStatus::Ready, Location::Ready(location)) => {
            let max_age = policy::max_age_for_expiry(
                r.expiry(),
                clock::unix_at(now),
                entry.fresh_left(now),
                app.hydrator.policy(),
            );
            let mut resp = Response::new(body::empty());
            *resp.status_mut() = StatusCode::FOUND;
            let h = resp.headers_mut();
            h.reserve(6);
            h.insert(header::LOCATION, location);
            h.insert(
                header::CACHE_CONTROL,
                header_arena::private_max_age(max_age),
            );
            respond::cache_headers(&mut resp, entry, cache, now);
            Ok(resp)
        }
        (SourceStatus::Ready, Location::Unsafe) => Err(Error::UpstreamInvalid(
            "refusing to redirect to a non-https URL",
        )),
        (SourceStatus::Ready | SourceStatus::Pending, _) => Err(Error::Pending {
            retry_after: retry_after_secs(
                entry.fresh_left(now).max(std::time::Duration::from_secs(1)),
            ),
        }),
        (SourceStatus::Failed, _) => Err(Error::NotFound("This rendition failed to process.")),
        (SourceStatus::Skipped, _) => Err(Error::NotFound("This rendition was not produced.")),
        (SourceStatus::Absent, _) => Err(Error::NotFound("This file has no such rendition.")),
    }
}

/// `GET|HEAD /files/{id}`: stable JSON for frontends. Rendered once per entry (see
/// `json_view`); a signed request gets its own `exp` and `sig` after each
/// rendition URL.
pub async fn file_json(
    app: &Arc<App>,
    id: FileId,
    query: Option<&str>,
) -> Result<(Response<Body>, CacheStatus), Error> {
    let (q, entry, cache, key) = match lookup(app, id, query).await? {
        Found::File(q, entry, cache, key) => (q, entry, cache, key),
        Found::Done(resp, cache) => return Ok((resp, cache)),
    };
    let now = clock::now();
    let signed = match (&app.signer, &q.exp, &q.sig) {
        (Some(_), Some(exp), Some(sig)) => {
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            format!("&exp={}&sig={}", enc(exp), enc(sig))
        }
        _ => String::new(),
    };
    let view = app
        .views
        .get_or_render(&key, &entry, || render_view(app, id, &entry))?;
    let mut resp = Response::new(body::full(view.body(&signed)));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let max_age = entry.fresh_left(now).as_secs().min(300);
    h.insert(
        header::CACHE_CONTROL,
        header_arena::private_max_age(max_age),
    );
    respond::cache_headers(&mut resp, &entry, cache, now);
    Ok((resp, cache))
}

/// The JSON view of `entry`, unsigned: the one place the stored body is parsed after the
/// entry was built (names and dimensions are read from it, so entries stay small).
fn render_view(app: &App, id: FileId, entry: &Arc<Entry>) -> Result<Rendered, Error> {
    let base = format!("{}/files/{}/redirect?rendition=", app.config.public_url, id);
    let view = FileView::parse(&entry.body)
        .map_err(|_| Error::UpstreamInvalid("stored file is not a file object"))?;
    let mut renditions = serde_json::Map::new();
    let mut urls = Vec::new();
    for r in Rendition::ALL {
        let e = entry.rendition(r);
        let src = view.source(r);
        if e.status == SourceStatus::Absent && r == Rendition::Public {
            continue;
        }
        let mut o = serde_json::Map::new();
        o.insert("status".into(), e.status.as_str().into());
        if let Some(w) = src.width {
            o.insert("width".into(), w.into());
        }
        if let Some(h) = src.height {
            o.insert("height".into(), h.into());
        }
        if let Some(b) = src.file_bytes {
            o.insert("fileBytes".into(), b.into());
        }
        if e.status == SourceStatus::Ready && e.has_location() {
            let url = format!("{base}{}", r.as_str());
            o.insert("url".into(), url.clone().into());
            urls.push(url);
        }
        renditions.insert(r.as_str().into(), o.into());
    }
    let json = serde_json::json!({
        "fileId": id.as_str(),
        "type": view.file_type,
        "displayName": view.display_name,
        "durationSeconds": view.duration_seconds,
        "renditions": renditions,
    });
    Ok(Rendered::new(entry, json.to_string(), &urls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let q = FrontQuery::parse(Some("rendition=preview&exp=12&sig=abc&rendition=hls")).unwrap();
        assert_eq!(q.rendition, Some(Rendition::Preview));
        assert_eq!(q.exp.as_deref(), Some("12"));
        assert_eq!(q.sig.as_deref(), Some("abc"));
        assert!(matches!(
            FrontQuery::parse(Some("rendition=poster")),
            Err(Error::UnknownRendition)
        ));
        assert!(FrontQuery::parse(None).unwrap().rendition.is_none());
        // Percent-decoded; the first of each wins; a name merely ending in "sig" is not "sig".
        let q = FrontQuery::parse(Some("xsig=1&sig=a%2Db&exp=12&exp=13&sig=zz")).unwrap();
        assert_eq!(q.sig.as_deref(), Some("a-b"));
        assert_eq!(q.exp.as_deref(), Some("12"));
    }
}
