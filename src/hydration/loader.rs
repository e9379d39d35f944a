//! The hydrator's upstream seam: one hydrate call, nothing else.
//!
//! The hydrator decides when to call (single flight, limiter, refresh ahead) and what the
//! answer means; a [`Loader`] only makes the call. The real one goes through the pooled
//! upstream client; tests script one, so every cache rule runs in-process on paused time.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::HeaderValue;

use crate::file_id::FileId;
use crate::headers::strip_hop_by_hop;
use crate::telemetry::{Metrics, RouteClass};
use crate::upstream::{request, Reply, UpstreamClient, UpstreamError};

/// Largest hydrate body hydrant buffers (a StorageFile is a few KiB).
const MAX_FILE_BODY: usize = 4 << 20;

/// Makes one upstream `POST /v1/files/{id}/hydrate`.
pub trait Loader: Send + Sync + 'static {
    /// Hydrate `file` with `authorization`; the whole answer, hop-by-hop fields removed.
    fn hydrate(
        &self,
        file: FileId,
        authorization: HeaderValue,
    ) -> BoxFuture<'static, Result<Reply, UpstreamError>>;
}

/// The [`Loader`] that calls the VideoGen API, counting each exchange.
pub(crate) struct UpstreamLoader {
    client: UpstreamClient,
    metrics: Arc<Metrics>,
}

impl UpstreamLoader {
    pub(crate) fn new(client: UpstreamClient, metrics: Arc<Metrics>) -> UpstreamLoader {
        UpstreamLoader { client, metrics }
    }
}

impl Loader for UpstreamLoader {
    fn hydrate(
        &self,
        file: FileId,
        authorization: HeaderValue,
    ) -> BoxFuture<'static, Result<Reply, UpstreamError>> {
        let client = self.client.clone();
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let req = request::hydrate(&client, file.as_str(), authorization)?;
            match client.send_buffered(req, MAX_FILE_BODY).await {
                Ok((buf, took)) => {
                    metrics.observe_upstream(RouteClass::hydrate, buf.head.status.as_u16(), took);
                    let mut headers = buf.head.headers;
                    strip_hop_by_hop(&mut headers);
                    Ok(Reply {
                        status: buf.head.status,
                        headers,
                        body: buf.body,
                    })
                }
                Err(e) => {
                    metrics.observe_upstream(RouteClass::hydrate, 0, Duration::ZERO);
                    Err(e)
                }
            }
        })
    }
}
