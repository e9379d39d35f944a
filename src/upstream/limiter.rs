//! Upstream protection: a governor limiter per tenant for hydrate calls, and pauses that
//! follow the upstream's own signals (`429`, `Retry-After`, `X-RateLimit-*`).
//!
//! A caller waits for a permit at most `hydrate_max_wait`; a paused tenant waits only if the
//! pause ends within it. Otherwise the caller is told how long to wait, and the hydrator
//! serves stale or answers `429` with that `Retry-After`. Background refreshes never wait.
//!
//! governor reads time from `TokioClock`, so permits, pauses and waits all follow the one
//! clock of `crate::clock`, and tests on tokio's paused time drive the limiter too.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use http::HeaderMap;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::clock;
use crate::config::Rate;
use crate::telemetry::{Limit, Metrics};
use crate::tenant::Tenant;

/// governor's clock, read from tokio's: time since a fixed origin.
#[derive(Clone, Debug)]
struct TokioClock {
    origin: Instant,
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        clock::now().saturating_duration_since(self.origin)
    }
}

type Governor =
    RateLimiter<Tenant, DashMapStateStore<Tenant>, TokioClock, NoOpMiddleware<Duration>>;

/// Which limit refused a hydrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The per-tenant governor limiter had no permit within `hydrate_max_wait`.
    LimiterSaturated,
    /// The tenant is paused after an upstream 429 or `X-RateLimit-Remaining: 0`.
    UpstreamPaused,
}

impl Refusal {
    /// Header and metric spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::LimiterSaturated => "limiter_saturated",
            Refusal::UpstreamPaused => "upstream_paused",
        }
    }
}

/// Whether a caller may wait for a permit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A client is waiting: wait up to `max_wait`.
    Wait,
    /// Background refresh: take a permit only if one is free now.
    TryNow,
}

/// A refusal: how long until a retry can succeed, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("hydrate refused ({}) for {retry_after:?}", reason.as_str())]
pub struct Refused {
    /// Time until a permit (or the pause's end).
    pub retry_after: Duration,
    /// Which limit refused.
    pub reason: Refusal,
}

#[derive(Clone, Copy, Debug)]
struct Pause {
    until: Instant,
    /// Next backoff when the upstream sends a bare 429.
    backoff: Duration,
}

/// Longest pause hydrant applies on its own (backoff) or accepts from headers.
const MAX_PAUSE: Duration = Duration::from_secs(3600);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// A quota shared by every replica of a cluster (GCRA on Redis). Best effort: `None` means
/// "not available now", and the limiter falls back to its own share of the quota.
pub trait SharedQuota: Send + Sync + 'static {
    /// Spend one permit of `tenant`'s cluster-wide quota now, or say how long until one.
    fn take(
        &self,
        tenant: Tenant,
        interval: Duration,
        burst: u32,
        deadline: Instant,
    ) -> BoxFuture<'static, Option<Result<(), (Duration, Refusal)>>>;
    /// Pause `tenant`'s hydrates on every replica for `pause`.
    fn pause(&self, tenant: Tenant, pause: Duration) -> BoxFuture<'static, ()>;
    /// Replicas last seen alive: while the quota is unavailable each takes this share.
    fn replicas(&self) -> u32;
    /// The per-request budget for the shared quota, from now.
    fn deadline(&self) -> Instant;
}

/// The per-tenant hydrate limiter.
pub struct Limiter {
    governor: Governor,
    clock: TokioClock,
    /// The cluster-wide quota, in cluster mode.
    shared: Option<Arc<dyn SharedQuota>>,
    /// This replica's share of the quota while the shared one is unavailable: rebuilt when
    /// the number of replicas changes.
    fallback: Mutex<Option<(u32, Arc<Governor>)>>,
    rate: Rate,
    burst: u32,
    /// Permits this replica's share granted while the shared quota was unavailable, per
    /// tenant: each is paid back from the shared quota before it grants this replica anything
    /// else, so the cluster's total stays within the quota over time (without it, a Redis
    /// that keeps timing out lets every replica spend its share *and* the shared bucket).
    owed: Mutex<HashMap<Tenant, u32>>,
    pauses: Mutex<HashMap<Tenant, Pause>>,
    max_wait: Duration,
    metrics: Arc<Metrics>,
    last_gc: Mutex<Instant>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("max_wait", &self.max_wait)
            .finish()
    }
}

impl Limiter {
    /// A limiter allowing `rate` with `burst` per tenant, in this process alone.
    #[cfg(test)]
    pub fn new(rate: Rate, burst: u32, max_wait: Duration, metrics: Arc<Metrics>) -> Limiter {
        Limiter::with_shared(rate, burst, max_wait, metrics, None)
    }

    /// A limiter whose quota is `shared` by the cluster when it is available.
    pub fn with_shared(
        rate: Rate,
        burst: u32,
        max_wait: Duration,
        metrics: Arc<Metrics>,
        shared: Option<Arc<dyn SharedQuota>>,
    ) -> Limiter {
        let quota = quota_of(rate, burst, 1);
        let clock = TokioClock {
            origin: clock::now(),
        };
        Limiter {
            governor: RateLimiter::dashmap_with_clock(quota, clock.clone()),
            clock,
            shared,
            fallback: Mutex::new(None),
            rate,
            burst,
            owed: Mutex::new(HashMap::new()),
            pauses: Mutex::new(HashMap::new()),
            max_wait,
            metrics,
            last_gc: Mutex::new(clock::now()),
        }
    }

    fn pause_left(&self, tenant: &Tenant, now: Instant) -> Option<Duration> {
        let pauses = self.pauses.lock();
        let p = pauses.get(tenant)?;
        (p.until > now).then(|| p.until - now)
    }

    fn gc(&self, now: Instant) {
        if let Some(mut last) = self.last_gc.try_lock() {
            if now.duration_since(*last) >= Duration::from_secs(60) {
                *last = now;
                self.governor.retain_recent();
                self.governor.shrink_to_fit();
                self.pauses.lock().retain(|_, v| v.until > now);
            }
        }
    }

    /// Take a permit for one upstream hydrate call of `tenant`.
    pub async fn acquire(&self, tenant: &Tenant, mode: Mode) -> Result<(), Refused> {
        let start = clock::now();
        self.gc(start);
        if let Some(left) = self.pause_left(tenant, start) {
            if mode == Mode::TryNow || left > self.max_wait {
                self.metrics.limit(Limit::rejected);
                return Err(Refused {
                    retry_after: left,
                    reason: Refusal::UpstreamPaused,
                });
            }
            self.metrics.limit(Limit::waited);
            tokio::time::sleep(left).await;
        }
        let local = match &self.shared {
            None => None,
            Some(shared) => match self.acquire_shared(&**shared, tenant, mode, start).await {
                Some(verdict) => return verdict,
                None => Some(self.share(shared.replicas())),
            },
        };
        let governor = local.as_deref().unwrap_or(&self.governor);
        // Bounded: each round either succeeds, sleeps toward the deadline, or refuses.
        for _ in 0..64 {
            match governor.check_key(tenant) {
                Ok(()) => {
                    if local.is_some() {
                        let mut owed = self.owed.lock();
                        let n = owed.entry(*tenant).or_insert(0);
                        *n = n.saturating_add(1);
                    }
                    return Ok(());
                }
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    let waited = clock::now().duration_since(start);
                    if mode == Mode::TryNow || waited + wait > self.max_wait {
                        self.metrics.limit(Limit::rejected);
                        return Err(Refused {
                            retry_after: wait.max(Duration::from_millis(1)),
                            reason: Refusal::LimiterSaturated,
                        });
                    }
                    self.metrics.limit(Limit::waited);
                    tokio::time::sleep(wait).await;
                }
            }
        }
        self.metrics.limit(Limit::rejected);
        Err(Refused {
            retry_after: Duration::from_secs(1),
            reason: Refusal::LimiterSaturated,
        })
    }

    /// The cluster-wide quota: `None` when it is unavailable (the caller uses its share).
    async fn acquire_shared(
        &self,
        shared: &dyn SharedQuota,
        tenant: &Tenant,
        mode: Mode,
        start: Instant,
    ) -> Option<Result<(), Refused>> {
        let interval = (self.rate.per / self.rate.count.max(1)).max(Duration::from_micros(1));
        // Bounded: each round either succeeds, sleeps toward the deadline, or refuses.
        for _ in 0..64 {
            match shared
                .take(*tenant, interval, self.burst.max(1), shared.deadline())
                .await?
            {
                Ok(()) => {
                    if !self.repay(tenant) {
                        return Some(Ok(()));
                    }
                }
                Err((wait, reason)) => {
                    let waited = clock::now().duration_since(start);
                    if mode == Mode::TryNow || waited + wait > self.max_wait {
                        self.metrics.limit(Limit::rejected);
                        return Some(Err(Refused {
                            retry_after: wait.max(Duration::from_millis(1)),
                            reason,
                        }));
                    }
                    self.metrics.limit(Limit::waited);
                    tokio::time::sleep(wait).await;
                }
            }
        }
        // Only paying back a large debt gets here: the quota is spent for now.
        self.metrics.limit(Limit::rejected);
        Some(Err(Refused {
            retry_after: interval,
            reason: Refusal::LimiterSaturated,
        }))
    }

    /// Counts a shared permit as paid back when `tenant` owes one; false when nothing is owed.
    fn repay(&self, tenant: &Tenant) -> bool {
        let mut owed = self.owed.lock();
        match owed.get_mut(tenant) {
            Some(n) if *n > 1 => {
                *n -= 1;
                true
            }
            Some(_) => {
                owed.remove(tenant);
                true
            }
            None => false,
        }
    }

    /// This replica's share of the quota among `replicas`.
    fn share(&self, replicas: u32) -> Arc<Governor> {
        let n = replicas.max(1);
        let mut fallback = self.fallback.lock();
        match &*fallback {
            Some((m, g)) if *m == n => g.clone(),
            _ => {
                let g = Arc::new(RateLimiter::dashmap_with_clock(
                    quota_of(self.rate, self.burst, n),
                    self.clock.clone(),
                ));
                *fallback = Some((n, g.clone()));
                g
            }
        }
    }

    fn share_pause(&self, tenant: &Tenant, pause: Duration) {
        if let Some(shared) = &self.shared {
            tokio::spawn(shared.pause(*tenant, pause));
        }
    }

    /// Learn from an upstream hydrate response: pause on `429` (unless the body's code is
    /// `insufficient_credits`) and on `X-RateLimit-Remaining: 0`; clear the backoff on success.
    pub fn observe(&self, tenant: &Tenant, status: u16, headers: &HeaderMap, body: &[u8]) {
        let now = clock::now();
        let now_unix = clock::unix_at(now);
        let reset_in = header_f64(headers, "x-ratelimit-reset")
            .map(|reset| reset - now_unix)
            .filter(|d| *d > 0.0)
            .and_then(|d| Duration::try_from_secs_f64(d).ok());
        let mut pauses = self.pauses.lock();
        if status == 429 {
            if is_insufficient_credits(body) {
                return;
            }
            let retry_after = header_f64(headers, "retry-after")
                .filter(|s| *s >= 0.0)
                .and_then(|s| Duration::try_from_secs_f64(s).ok());
            let entry = pauses.entry(*tenant).or_insert(Pause {
                until: now,
                backoff: FIRST_BACKOFF,
            });
            let wait = match retry_after.or(reset_in) {
                Some(d) => d,
                None => {
                    let d = entry.backoff;
                    entry.backoff = (entry.backoff * 2).min(MAX_PAUSE);
                    d
                }
            };
            entry.until = now + wait.min(MAX_PAUSE);
            drop(pauses);
            self.share_pause(tenant, wait.min(MAX_PAUSE));
            self.metrics.limit(Limit::paused);
            tracing::warn!(tenant = %tenant, pause_ms = wait.as_millis() as u64, "upstream 429: pausing tenant's hydrates");
            return;
        }
        let remaining_zero = headers
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "0");
        if remaining_zero {
            if let Some(d) = reset_in {
                pauses.insert(
                    *tenant,
                    Pause {
                        until: now + d.min(MAX_PAUSE),
                        backoff: FIRST_BACKOFF,
                    },
                );
                drop(pauses);
                self.share_pause(tenant, d.min(MAX_PAUSE));
                self.metrics.limit(Limit::paused);
                tracing::warn!(tenant = %tenant, pause_ms = d.as_millis() as u64, "upstream quota exhausted: pausing tenant's hydrates until reset");
            }
        } else if (200..300).contains(&status) {
            pauses.remove(tenant);
        }
    }
}

/// governor's quota for `rate` and `burst`, divided among `share` replicas (each at least 1).
fn quota_of(rate: Rate, burst: u32, share: u32) -> Quota {
    let share = share.max(1);
    let period = (rate.per * share / rate.count.max(1)).max(Duration::from_nanos(1));
    let burst = NonZeroU32::new((burst / share).max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

fn header_f64(headers: &HeaderMap, name: &str) -> Option<f64> {
    headers
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

/// Whether a 429 body says "out of credits" (passed on as is, pauses nothing).
pub fn is_insufficient_credits(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Code<'a> {
        #[serde(borrow)]
        code: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Code>(body)
        .ok()
        .and_then(|c| c.code)
        .is_some_and(|c| c == "insufficient_credits")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn limiter(rate: &str, burst: u32, max_wait_ms: u64) -> Limiter {
        Limiter::new(
            crate::config::units::parse_rate(rate).unwrap(),
            burst,
            Duration::from_millis(max_wait_ms),
            Arc::new(Metrics::new()),
        )
    }

    /// A shared quota that grants every take while `up`, and counts the takes.
    struct FakeShared {
        up: std::sync::atomic::AtomicBool,
        takes: std::sync::atomic::AtomicU32,
    }

    impl SharedQuota for FakeShared {
        fn take(
            &self,
            _: Tenant,
            _: Duration,
            _: u32,
            _: Instant,
        ) -> BoxFuture<'static, Option<Result<(), (Duration, Refusal)>>> {
            use std::sync::atomic::Ordering::SeqCst;
            let up = self.up.load(SeqCst);
            if up {
                self.takes.fetch_add(1, SeqCst);
            }
            Box::pin(async move { up.then_some(Ok(())) })
        }
        fn pause(&self, _: Tenant, _: Duration) -> BoxFuture<'static, ()> {
            Box::pin(async {})
        }
        fn replicas(&self) -> u32 {
            2
        }
        fn deadline(&self) -> Instant {
            clock::now() + Duration::from_millis(100)
        }
    }

    /// Attack: Redis that keeps timing out, so each replica spends its share and then the
    /// shared bucket too. Defence: what the share granted is paid back from the shared quota
    /// before this replica gets another shared permit.
    #[tokio::test(start_paused = true)]
    async fn permits_granted_while_redis_was_away_are_paid_back() {
        use std::sync::atomic::Ordering::SeqCst;
        let shared = Arc::new(FakeShared {
            up: false.into(),
            takes: 0.into(),
        });
        let l = Limiter::with_shared(
            crate::config::units::parse_rate("10/s").unwrap(),
            10,
            Duration::ZERO,
            Arc::new(Metrics::new()),
            Some(shared.clone()),
        );
        let t = Tenant::of_key(b"k");
        // Redis away: the share (burst 10 / 2 replicas) grants 5 and refuses the 6th.
        for _ in 0..5 {
            assert!(l.acquire(&t, Mode::TryNow).await.is_ok());
        }
        assert!(l.acquire(&t, Mode::TryNow).await.is_err());
        // Redis back: the next permit costs the shared quota the 5 owed plus itself.
        shared.up.store(true, SeqCst);
        assert!(l.acquire(&t, Mode::TryNow).await.is_ok());
        assert_eq!(shared.takes.load(SeqCst), 6);
        // Paid off: one take per permit again.
        assert!(l.acquire(&t, Mode::TryNow).await.is_ok());
        assert_eq!(shared.takes.load(SeqCst), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn permits_come_back_with_paused_time() {
        let l = limiter("1/s", 2, 0);
        let t = Tenant::of_key(b"k");
        assert!(l.acquire(&t, Mode::TryNow).await.is_ok());
        assert!(l.acquire(&t, Mode::TryNow).await.is_ok());
        let r = l.acquire(&t, Mode::TryNow).await.unwrap_err();
        assert_eq!(r.retry_after, Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(l.acquire(&t, Mode::TryNow).await.is_ok());
        assert!(l.acquire(&t, Mode::TryNow).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_ends_on_tokio_time() {
        let l = limiter("100/s", 10, 0);
        let t = Tenant::of_key(b"k");
        l.observe(&t, 429, &headers(&[("retry-after", "30".into())]), b"{}");
        assert!(l.acquire(&t, Mode::Wait).await.is_err());
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(l.acquire(&t, Mode::Wait).await.is_ok());
    }

    #[tokio::test]
    async fn burst_then_refuse_with_retry_after() {
        let l = limiter("1/h", 3, 0);
        let t = Tenant::of_key(b"k");
        for _ in 0..3 {
            assert!(l.acquire(&t, Mode::Wait).await.is_ok());
        }
        let r = l.acquire(&t, Mode::Wait).await.unwrap_err();
        assert_eq!(r.reason, Refusal::LimiterSaturated);
        assert!(r.retry_after > Duration::from_secs(3000), "{r:?}");
        // another tenant is unaffected
        assert!(l
            .acquire(&Tenant::of_key(b"other"), Mode::Wait)
            .await
            .is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn waits_within_max_wait() {
        let l = limiter("20/s", 1, 500);
        let t = Tenant::of_key(b"k");
        assert!(l.acquire(&t, Mode::Wait).await.is_ok());
        let start = clock::now();
        assert!(l.acquire(&t, Mode::Wait).await.is_ok());
        // One permit every 50 ms, waited for on tokio's clock.
        assert_eq!(start.elapsed(), Duration::from_millis(50));
        assert!(
            l.acquire(&t, Mode::TryNow).await.is_err(),
            "TryNow never waits"
        );
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[tokio::test]
    async fn upstream_429_pauses_for_retry_after() {
        let l = limiter("100/s", 10, 100);
        let t = Tenant::of_key(b"k");
        l.observe(
            &t,
            429,
            &headers(&[("retry-after", "30".into())]),
            b"{\"code\":\"rate_limited\"}",
        );
        let r = l.acquire(&t, Mode::Wait).await.unwrap_err();
        assert_eq!(r.reason, Refusal::UpstreamPaused);
        assert!(
            r.retry_after > Duration::from_secs(29) && r.retry_after <= Duration::from_secs(30)
        );
        assert!(l.acquire(&Tenant::of_key(b"x"), Mode::Wait).await.is_ok());
    }

    #[tokio::test]
    async fn upstream_429_uses_reset_then_backoff() {
        let l = limiter("100/s", 10, 0);
        let t = Tenant::of_key(b"k");
        let reset = (clock::now_unix() + 120.0).floor() as u64;
        l.observe(
            &t,
            429,
            &headers(&[("x-ratelimit-reset", reset.to_string())]),
            b"{}",
        );
        let r = l.acquire(&t, Mode::Wait).await.unwrap_err();
        assert!(r.retry_after > Duration::from_secs(100), "{r:?}");
        let t2 = Tenant::of_key(b"k2");
        l.observe(&t2, 429, &HeaderMap::new(), b"");
        let r1 = l.acquire(&t2, Mode::Wait).await.unwrap_err().retry_after;
        assert!(
            r1 <= Duration::from_secs(1) && r1 > Duration::from_millis(900),
            "{r1:?}"
        );
        l.observe(&t2, 429, &HeaderMap::new(), b"");
        let r2 = l.acquire(&t2, Mode::Wait).await.unwrap_err().retry_after;
        assert!(r2 > Duration::from_millis(1900), "exponential: {r2:?}");
    }

    #[tokio::test]
    async fn insufficient_credits_pauses_nothing() {
        let l = limiter("100/s", 10, 0);
        let t = Tenant::of_key(b"k");
        l.observe(
            &t,
            429,
            &headers(&[("retry-after", "60".into())]),
            br#"{"message":"no","code":"insufficient_credits"}"#,
        );
        assert!(l.acquire(&t, Mode::Wait).await.is_ok());
    }

    #[tokio::test]
    async fn remaining_zero_pauses_until_reset() {
        let l = limiter("100/s", 10, 0);
        let t = Tenant::of_key(b"k");
        let reset = (clock::now_unix() + 60.0).floor() as u64;
        l.observe(
            &t,
            200,
            &headers(&[
                ("x-ratelimit-remaining", "0".into()),
                ("x-ratelimit-reset", reset.to_string()),
            ]),
            b"{}",
        );
        let r = l.acquire(&t, Mode::Wait).await.unwrap_err();
        assert_eq!(r.reason, Refusal::UpstreamPaused);
        // a short pause within max_wait is waited out
        let l = limiter("100/s", 10, 3000);
        let reset = clock::now_unix() + 0.3;
        l.observe(
            &t,
            200,
            &headers(&[
                ("x-ratelimit-remaining", "0".into()),
                ("x-ratelimit-reset", format!("{reset}")),
            ]),
            b"{}",
        );
        assert!(l.acquire(&t, Mode::Wait).await.is_ok());
    }
}
