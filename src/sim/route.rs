//! The URL table of the simulated API: method + path → [`Route`], the `by_route` counter key
//! and the rate-limit group of each route.

use http::Method;

use super::state::Group;
use super::tools::TOOLS;

/// Routes of the simulated API (the `/_sim` control plane is matched before this table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
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
    CdnSegment(String, String),
    CdnPublic(String),
    CdnPreflight,
    NotFound,
}

impl Route {
    /// Matches method and path.
    pub(super) fn parse(method: &Method, path: &str) -> Route {
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
            ("GET" | "HEAD", ["cdn", id, "hls", segment]) => Route::CdnSegment(s(id), s(segment)),
            ("OPTIONS", ["cdn", ..]) => Route::CdnPreflight,
            ("GET" | "HEAD", ["cdn", id, rendition]) => Route::Cdn(s(id), s(rendition)),
            _ => Route::NotFound,
        }
    }

    /// The `by_route` key, e.g. `"POST /v1/files/{id}/hydrate"`.
    pub(super) fn stats_key(&self, method: &Method) -> String {
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
            Route::CdnSegment(..) => "/cdn/{id}/hls/{segment}",
            Route::CdnPublic(_) => "/cdn/public/{id}",
            Route::CdnPreflight => "/cdn/...",
            Route::NotFound => "(unmatched)",
        };
        // Unusual methods share one key, so a client cannot grow the map without bound.
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

    /// The rate-limit window this route draws from (hydrate has its own, smaller quota).
    pub(super) fn group(&self) -> Group {
        match self {
            Route::Hydrate(_) => Group::Hydrate,
            _ => Group::Default,
        }
    }
}
