//! hydrant's clock seam: monotonic `Instant`s and Unix seconds from one source.
//!
//! Freshness compares `expiresAt` (Unix seconds) with "now". Deriving Unix time from tokio's
//! `Instant` (anchored to the wall clock once) means tests that pause or advance tokio's clock
//! move both together, and no code path reads two clocks that could disagree. Every freshness,
//! limiter and timeout decision reads this module; `.clippy.toml` bans the std clocks
//! elsewhere. The one exception is [`stopwatch`], for latency that is only measured.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

static ANCHOR: OnceLock<(Instant, f64)> = OnceLock::new();

fn anchor() -> (Instant, f64) {
    *ANCHOR.get_or_init(|| {
        // The one read of the wall clock: Unix time is derived from tokio's clock after it.
        #[allow(clippy::disallowed_methods)]
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        (Instant::now(), unix)
    })
}

/// Monotonic now (tokio's, so paused time in tests applies).
pub fn now() -> Instant {
    Instant::now()
}

/// A start point for measuring latency (metrics, access log), in real time even when tokio's
/// clock is paused: a duration measured for humans, never one a decision depends on.
#[allow(clippy::disallowed_methods)]
pub fn stopwatch() -> std::time::Instant {
    std::time::Instant::now()
}

/// Unix seconds at `at`.
pub fn unix_at(at: Instant) -> f64 {
    let (base, unix) = anchor();
    if at >= base {
        unix + (at - base).as_secs_f64()
    } else {
        unix - (base - at).as_secs_f64()
    }
}

/// Unix seconds now.
pub fn now_unix() -> f64 {
    unix_at(now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn unix_time_follows_tokio_time() {
        let a = now_unix();
        tokio::time::advance(Duration::from_secs(100)).await;
        let b = now_unix();
        assert!((b - a - 100.0).abs() < 0.01, "{a} {b}");
    }
}
