//! Streamed pass-through of `/v1/...` calls to the VideoGen API.
//!
//! Method, path, query, headers and body go upstream unchanged but for what a proxy must not
//! forward (hop-by-hop fields), `Host` (rewritten to the upstream) and `Authorization` (the
//! resolved upstream credentials); see `upstream::request`. Bodies stream both ways; nothing
//! is buffered here.

use std::time::Duration;

use http::{request, Response};

use crate::auth::UpstreamAuth;
use crate::body::{self, Body};
use crate::headers::strip_hop_by_hop;
use crate::telemetry::{Metrics, RouteClass};
use crate::upstream::{request as upstream_request, UpstreamClient, UpstreamError};

/// Forward a request upstream and stream the response back, counting the exchange.
pub(crate) async fn forward(
    client: &UpstreamClient,
    metrics: &Metrics,
    parts: request::Parts,
    body: Body,
    auth: &UpstreamAuth,
    route: RouteClass,
) -> Result<(Response<Body>, Duration), UpstreamError> {
    let req = upstream_request::forwarded(client, parts, body, auth.header.clone())?;
    match client.send(req).await {
        Ok((resp, took)) => {
            metrics.observe_upstream(route, resp.status().as_u16(), took);
            let (mut head, body) = resp.into_parts();
            strip_hop_by_hop(&mut head.headers);
            Ok((Response::from_parts(head, body::boxed(body)), took))
        }
        Err(e) => {
            metrics.observe_upstream(route, 0, Duration::ZERO);
            Err(e)
        }
    }
}
