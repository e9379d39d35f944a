//! Accepting connections within the connection limit, and riding out descriptor exhaustion.
//!
//! A connection takes a permit of the `max_connections` semaphore *before* `accept` is called,
//! and holds it until it closes: at the limit hydrant stops accepting, so new connections wait
//! in the kernel's listen backlog instead of being accepted and starved.
//!
//! When `accept` itself fails for want of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM) it fails
//! again at once if retried, so hydrant backs off (100 ms doubling to 1 s) and logs the
//! condition once when it starts and once when it ends, with the number of failed accepts:
//! never one line per failure, which under load is a log flood.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The listen backlog: connections past `max_connections` wait here. std and mio use 128,
/// which under a connection surge drops SYNs (clients then retry after 1 s, 3 s, ...); the
/// kernel caps it at `net.core.somaxconn` (4096 by default since Linux 5.4).
const LISTEN_BACKLOG: u32 = 1024;

/// Bind `addr` for serving, with [`LISTEN_BACKLOG`].
pub(crate) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // As std and mio do: a restarted hydrant can bind while old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// First wait after a failed accept.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// Longest wait between retries.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The listener, the connection permits and the failure state.
pub(crate) struct Acceptor {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    failing: Failing,
}

/// An accepted connection and the permit it holds until it closes.
pub(crate) struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub permit: OwnedSemaphorePermit,
}

impl Acceptor {
    pub(crate) fn new(listener: TcpListener, max_connections: usize) -> Acceptor {
        Acceptor {
            listener,
            permits: Arc::new(Semaphore::new(
                max_connections.clamp(1, Semaphore::MAX_PERMITS),
            )),
            failing: Failing::default(),
        }
    }

    /// The next connection, once a permit is free. Cancel-safe: dropping the future loses no
    /// connection (tokio's `accept` and `acquire_owned` are both cancel-safe).
    pub(crate) async fn next(&mut self) -> Accepted {
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            // The semaphore is never closed.
            return std::future::pending().await;
        };
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    if let Some(failed) = self.failing.succeeded() {
                        tracing::info!(failed_accepts = failed, "accepting connections again");
                    }
                    return Accepted {
                        stream,
                        peer,
                        permit,
                    };
                }
                Err(e) if transient(&e) => {
                    // The peer gave up before we took it: nothing to wait for.
                    tracing::debug!(error = %e, "accept: connection lost before it was taken");
                }
                Err(e) => {
                    let (wait, first) = self.failing.failed();
                    if first {
                        tracing::warn!(
                            error = %e,
                            retry_ms = wait.as_millis() as u64,
                            "accept failing (out of file descriptors?); backing off, \
                             logged again once it recovers"
                        );
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// Errors of one connection (not of the listener): retry at once.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// The failure streak: how many accepts failed and how long to wait next.
#[derive(Debug, Default)]
struct Failing {
    failed: u64,
    next_wait: Duration,
}

impl Failing {
    /// One more failed accept: the wait before retrying, and whether the streak just began.
    fn failed(&mut self) -> (Duration, bool) {
        let first = self.failed == 0;
        self.failed += 1;
        let wait = if first { BACKOFF_FIRST } else { self.next_wait };
        self.next_wait = (wait * 2).min(BACKOFF_MAX);
        (wait, first)
    }

    /// An accept worked: the length of the streak that just ended, if there was one.
    fn succeeded(&mut self) -> Option<u64> {
        let failed = std::mem::take(&mut self.failed);
        self.next_wait = Duration::ZERO;
        (failed > 0).then_some(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streak_is_reported_once_at_each_end_and_backs_off_to_a_second() {
        let mut f = Failing::default();
        assert_eq!(f.succeeded(), None, "no streak, nothing to report");
        let waits: Vec<(Duration, bool)> = (0..8).map(|_| f.failed()).collect();
        assert_eq!(waits.iter().filter(|(_, first)| *first).count(), 1);
        assert!(waits[0].1);
        let ms: Vec<u128> = waits.iter().map(|(w, _)| w.as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000, 1000, 1000]);
        assert_eq!(f.succeeded(), Some(8));
        assert_eq!(f.succeeded(), None);
        // A new streak starts over.
        assert_eq!(f.failed(), (BACKOFF_FIRST, true));
    }

    #[test]
    fn only_per_connection_errors_are_retried_at_once() {
        assert!(transient(&io::Error::from(
            io::ErrorKind::ConnectionAborted
        )));
        // EMFILE (24) and ENFILE (23) are the listener's problem: back off.
        assert!(!transient(&io::Error::from_raw_os_error(24)));
        assert!(!transient(&io::Error::from_raw_os_error(23)));
    }

    #[tokio::test]
    async fn at_the_limit_no_accept_is_made_until_a_permit_returns() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut acceptor = Acceptor::new(listener, 1);
        let _c1 = TcpStream::connect(addr).await.unwrap();
        let first = acceptor.next().await;
        // The second client completes its TCP handshake (the kernel backlog), but hydrant
        // does not take it while the first holds the only permit.
        let _c2 = TcpStream::connect(addr).await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(300), acceptor.next()).await;
        assert!(waited.is_err(), "accepted past the limit");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), acceptor.next()).await;
        assert!(
            second.is_ok(),
            "a returned permit lets the waiting connection in"
        );
    }
}
