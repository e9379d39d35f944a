//! Time in tests: bounded polling, the wall clock, and timing windows.
//!
//! A scenario that depends on real time (an entry that must still be fresh, then expired)
//! checks with [`before`] that the machine kept to its window, and runs under
//! [`retry_if_stalled`], which starts it again (at most 3 times) when it did not. Its
//! assertions are judged only on a run that kept to its windows, and always apply there.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// A timing-sensitive scenario missed its window because the machine stalled.
#[derive(Debug)]
pub struct Stalled;

/// `Err(Stalled)` once `deadline` has passed; checked after a time-critical response, so
/// the assertions that follow are only judged on runs that kept to their timing window.
pub fn before(deadline: Instant) -> Result<(), Stalled> {
    if Instant::now() < deadline {
        Ok(())
    } else {
        Err(Stalled)
    }
}

/// Runs a timing-sensitive scenario (a fresh stack each time) up to 3 times until one run
/// keeps to its timing windows; panics if none does. Its assertions always apply.
pub async fn retry_if_stalled<F, Fut>(mut scenario: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Stalled>>,
{
    for attempt in 1..=3 {
        if scenario().await.is_ok() {
            return;
        }
        eprintln!("attempt {attempt}: timing window missed (machine stalled), retrying");
    }
    panic!("timing window missed 3 times in a row");
}

/// Polls `f` every 10 ms for at most `limit`; whether it became true.
pub async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

/// Unix seconds now, from the system clock (independently of hydrant's own clock).
pub fn wall_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}
