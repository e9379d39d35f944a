//! Streamed pass-through of `/v1/...` calls to the VideoGen API.
//!
//! Method, path, query, headers and body go upstream unchanged but for what a proxy must not
//! forward (hop-by-hop fields), `Host` (rewritten to the upstream), `Authorization` (the
//! resolved upstream credentials) and the framing fields, which are set from the checked
//! [`Framing`] alone; see `upstream::request`. Bodies stream both ways; nothing is buffered
//! here.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{request, Response};
use http_body::{Frame, SizeHint};

use crate::auth::UpstreamAuth;
use crate::body::{self, Body, BoxError};
use crate::framing::Framing;
use crate::headers::strip_hop_by_hop;
use crate::telemetry::{Metrics, RouteClass};
use crate::upstream::{request as upstream_request, UpstreamClient, UpstreamError};

/// Forward a request upstream and stream the response back, counting the exchange.
///
/// A client body that breaks off or is malformed (a bad chunk size, a connection closed
/// before `Content-Length` bytes) aborts the upstream request, which then never looks
/// complete to the upstream; the client gets a `400`, not a `502`, since the fault is its own.
pub(crate) async fn forward(
    client: &UpstreamClient,
    metrics: &Metrics,
    parts: request::Parts,
    body: Body,
    framing: Framing,
    auth: &UpstreamAuth,
    route: RouteClass,
) -> Result<(Response<Body>, Duration), UpstreamError> {
    let broke = Arc::new(AtomicBool::new(false));
    let body = body::boxed(Watched {
        inner: body,
        broke: broke.clone(),
    });
    let req = upstream_request::forwarded(client, parts, body, framing, auth.header.clone())?;
    match client.send(req).await {
        Ok((resp, took)) => {
            metrics.observe_upstream(route, resp.status().as_u16(), took);
            let (mut head, body) = resp.into_parts();
            strip_hop_by_hop(&mut head.headers);
            Ok((Response::from_parts(head, body::boxed(body)), took))
        }
        Err(UpstreamError::Connect(cause)) if broke.load(Ordering::Acquire) => {
            Err(UpstreamError::RequestBody(cause))
        }
        Err(e) => {
            metrics.observe_upstream(route, 0, Duration::ZERO);
            Err(e)
        }
    }
}

/// A request body that remembers whether it failed, so a failed exchange can be blamed on
/// the right side.
struct Watched {
    inner: Body,
    broke: Arc<AtomicBool>,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Err(_))) = &polled {
            self.broke.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
