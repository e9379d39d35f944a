//! URL shapes: which route a request is, decided from its method and path alone. File ids
//! are validated here, where hydrant interprets them (`[A-Za-z0-9_-]{1,128}`).

use http::Method;

use crate::file_id::FileId;
use crate::telemetry::RouteClass;

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
    /// `OPTIONS /files/{id}` or `/files/{id}/redirect`: a CORS preflight, counted as the
    /// route it asks about.
    Preflight(RouteClass),
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
            Route::Preflight(class) => *class,
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

/// `s` up to its first `/`, and what follows that `/` (if there is one). `memchr`, not
/// `split('/')` or `split_once('/')`: their char searcher cost ~200 instructions per segment
/// on every cache hit, and a byte-at-a-time scan ~4 per byte (benches/README.md, "Cost per
/// request").
fn split_slash(s: &str) -> (&str, Option<&str>) {
    match memchr::memchr(b'/', s.as_bytes()) {
        Some(i) => {
            let (head, tail) = s.split_at(i);
            (head, tail.get(1..))
        }
        None => (s, None),
    }
}

/// The first four `/`-separated segments, as `split('/')` would give them.
fn segments(s: &str) -> (Option<&str>, Option<&str>, Option<&str>, Option<&str>) {
    fn next(r: Option<&str>) -> (Option<&str>, Option<&str>) {
        match r {
            Some(r) => {
                let (seg, rest) = split_slash(r);
                (Some(seg), rest)
            }
            None => (None, None),
        }
    }
    let (a, rest) = split_slash(s);
    let (b, rest) = next(rest);
    let (c, rest) = next(rest);
    let (d, _) = next(rest);
    (Some(a), b, c, d)
}

/// Classify a request by method and path.
pub fn classify(method: &Method, path: &str) -> Route {
    let get_or_head = method == Method::GET || method == Method::HEAD;
    if let Some(rest) = path.strip_prefix("/v1/") {
        return match segments(rest) {
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
        let (id, tail) = split_slash(rest);
        let (route, class): (fn(FileId) -> Route, _) = match tail {
            None => (Route::FileJson, RouteClass::file_json),
            Some("redirect") => (Route::Redirect, RouteClass::redirect),
            Some(_) => return Route::NotFound,
        };
        if method == Method::OPTIONS {
            return match FileId::parse(id) {
                Some(_) => Route::Preflight(class),
                None => Route::InvalidId,
            };
        }
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
        assert_eq!(
            classify(&Method::OPTIONS, "/files/vg_file_1/redirect"),
            Route::Preflight(RouteClass::redirect)
        );
        assert_eq!(
            classify(&Method::OPTIONS, "/files/vg_file_1"),
            Route::Preflight(RouteClass::file_json)
        );
        assert_eq!(
            classify(&Method::OPTIONS, "/files/bad.id"),
            Route::InvalidId
        );
        assert_eq!(classify(&g, "/files//redirect"), Route::InvalidId);
        assert_eq!(classify(&g, "/files/a/other"), Route::NotFound);
        assert_eq!(classify(&g, "/files/a/b/redirect"), Route::NotFound);
        assert_eq!(classify(&g, "/files/a/redirect/"), Route::NotFound);
        assert_eq!(classify(&g, "/files/"), Route::InvalidId);
        assert_eq!(classify(&g, "/files/a/"), Route::NotFound);
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

    #[test]
    fn segments_are_those_of_split() {
        for s in [
            "",
            "a",
            "a/",
            "/a",
            "a//b",
            "files/x/hydrate",
            "a/b/c/d/e",
            "files/",
            "é/ü/x",
        ] {
            let mut seg = s.split('/');
            let want = (seg.next(), seg.next(), seg.next(), seg.next());
            assert_eq!(segments(s), want, "{s:?}");
        }
    }

    fn id(s: &str) -> FileId {
        FileId::parse(s).unwrap()
    }
}
