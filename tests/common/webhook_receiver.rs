//! A webhook receiver for `--webhook-forward`: it records every delivery it acknowledged and
//! answers 500 instead while [`Seen::fail`] is set.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::net::TcpListener;

use super::fake_upstream::serve_http1;

/// What the receiver saw.
#[derive(Default)]
pub struct Seen {
    /// The deliveries it acknowledged (200): their headers and bodies.
    pub acked: Mutex<Vec<(http::HeaderMap, Bytes)>>,
    /// Every request it answered, acknowledged or not.
    pub attempts: AtomicUsize,
    /// While set, every delivery is answered 500 and not recorded.
    pub fail: AtomicBool,
}

/// Serves the receiver on `listener` (bound by the test, so it can pick the moment the
/// receiver comes up), until the test's runtime ends.
pub async fn start(listener: TcpListener) -> Arc<Seen> {
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    serve_http1(listener, move |req| {
        let s = s.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            s.attempts.fetch_add(1, Ordering::SeqCst);
            let status = if s.fail.load(Ordering::SeqCst) {
                500
            } else {
                s.acked.lock().unwrap().push((parts.headers, body));
                200
            };
            hyper::Response::builder()
                .status(status)
                .body(Full::new(Bytes::from_static(b"{}")))
                .unwrap()
        }
    });
    seen
}
