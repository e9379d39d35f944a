//! The head deadline: a connection whose next request head is not complete
//! [`HEAD_TIMEOUT`](crate::config::defaults::HEAD_TIMEOUT) after it opened, or after its last
//! response was sent, is closed without an answer (no 408). That bounds idle keep-alive
//! connections and slow heads (slowloris) alike, so neither can pin a connection slot.
//!
//! Who enforces what:
//! * From the accept to the first request head, for both protocols, this module's
//!   [`Activity::expired`] (the TLS handshake and hyper-util's protocol sniffing, which has no
//!   timeout of its own, run inside that window).
//! * HTTP/1.1 after the first request: hyper's `header_read_timeout`. Its timer starts each
//!   time hyper begins reading a head, which on a keep-alive connection is right after the
//!   previous response was written, and it runs whether or not any byte arrives, so it covers
//!   an idle connection as well as a slow head (hyper 1.x, `proto/h1/conn.rs`,
//!   `poll_read_head`). It closes without writing a response.
//! * HTTP/2 all along: here, too. h2 has no head timeout of its own, so a connection with no
//!   open stream for the timeout is closed; a stream counts as open from its request head
//!   until its response body has been sent (or the stream was reset).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Version;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::body::{Body, BoxError};

/// One connection's request activity, shared by its service and its watchdog.
pub(crate) struct Activity {
    /// Set by the first HTTP/1.x request: from then on hyper's own timer rules.
    http1: AtomicBool,
    /// HTTP/2 streams between request head and the end of their response.
    open_streams: AtomicUsize,
    /// When the connection opened, then when its last open stream ended.
    idle_since: Mutex<Instant>,
    changed: Notify,
}

impl Activity {
    /// A connection that opened at `opened`.
    pub(crate) fn new(opened: Instant) -> Arc<Activity> {
        Arc::new(Activity {
            http1: AtomicBool::new(false),
            open_streams: AtomicUsize::new(0),
            idle_since: Mutex::new(opened),
            changed: Notify::new(),
        })
    }

    /// A request head arrived. For HTTP/2 the returned guard holds the stream open until it
    /// is dropped (with the response body); HTTP/1.x needs none.
    pub(crate) fn request(self: &Arc<Self>, version: Version) -> Option<StreamGuard> {
        if version == Version::HTTP_2 {
            self.open_streams.fetch_add(1, Ordering::AcqRel);
            self.changed.notify_waiters();
            Some(StreamGuard(self.clone()))
        } else {
            // Checked first so the hot path of a keep-alive connection is one relaxed load.
            if !self.http1.load(Ordering::Relaxed) {
                self.http1.store(true, Ordering::Release);
                self.changed.notify_waiters();
            }
            None
        }
    }

    /// Resolves once the connection has gone `timeout` without a request head it owes (see
    /// the module docs); never resolves once hyper's HTTP/1.1 timer has taken over.
    pub(crate) async fn expired(&self, timeout: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the state is read, so no change slips between the two.
            changed.as_mut().enable();
            if self.http1.load(Ordering::Acquire) {
                return std::future::pending().await;
            }
            if self.open_streams.load(Ordering::Acquire) > 0 {
                changed.await;
                continue;
            }
            let deadline = *self.idle_since.lock() + timeout;
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    let idle = !self.http1.load(Ordering::Acquire)
                        && self.open_streams.load(Ordering::Acquire) == 0
                        && *self.idle_since.lock() + timeout <= crate::clock::now();
                    if idle {
                        return;
                    }
                }
                () = &mut changed => {}
            }
        }
    }
}

/// An open HTTP/2 stream; dropping it ends the stream for the watchdog.
pub(crate) struct StreamGuard(Arc<Activity>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        // The idle start is written before the count drops, so a watchdog that sees no open
        // stream also sees when the last one ended.
        *self.0.idle_since.lock() = crate::clock::now();
        if self.0.open_streams.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.changed.notify_waiters();
        }
    }
}

/// A response body that keeps its stream open until hyper has sent (or dropped) it.
pub(crate) fn track(body: Body, guard: StreamGuard) -> Body {
    crate::body::boxed(Tracked {
        inner: body,
        _guard: guard,
    })
}

struct Tracked {
    inner: Body,
    _guard: StreamGuard,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(30);

    /// Whether `expired` resolves within `within` of paused time.
    async fn expires_within(a: &Activity, within: Duration) -> bool {
        tokio::time::timeout(within, a.expired(T)).await.is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_with_no_head_expires_at_the_timeout() {
        let a = Activity::new(crate::clock::now());
        assert!(!expires_within(&a, T - Duration::from_millis(1)).await);
        assert!(expires_within(&a, Duration::from_millis(2)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn http1_hands_over_to_hyper_after_the_first_head() {
        let a = Activity::new(crate::clock::now());
        assert!(a.request(Version::HTTP_11).is_none());
        assert!(!expires_within(&a, 3 * T).await);
    }

    #[tokio::test(start_paused = true)]
    async fn h2_counts_from_the_end_of_the_last_stream() {
        let a = Activity::new(crate::clock::now());
        let s1 = a.request(Version::HTTP_2).unwrap();
        let s2 = a.request(Version::HTTP_2).unwrap();
        // Open streams hold the connection however long they take.
        assert!(!expires_within(&a, 2 * T).await);
        drop(s1);
        assert!(!expires_within(&a, 2 * T).await);
        drop(s2);
        assert!(!expires_within(&a, T - Duration::from_millis(1)).await);
        assert!(expires_within(&a, Duration::from_millis(2)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_stream_while_the_watchdog_sleeps_cancels_it() {
        let a = Activity::new(crate::clock::now());
        let watch = a.expired(T);
        tokio::pin!(watch);
        assert!(tokio::time::timeout(T / 2, &mut watch).await.is_err());
        let s = a.request(Version::HTTP_2).unwrap();
        assert!(tokio::time::timeout(T, &mut watch).await.is_err());
        drop(s);
        assert!(
            tokio::time::timeout(T + Duration::from_millis(1), &mut watch)
                .await
                .is_ok()
        );
    }
}
