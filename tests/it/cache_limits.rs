//! Upstream protection and the cache's bounds: the per-tenant limiter (burst, bounded wait,
//! stale instead of a 429, never a wait for a background refresh), pauses after an upstream
//! 429 and after `X-RateLimit-Remaining: 0`, an exhausted credit balance passed through
//! without a pause, the byte bound `cache_max_bytes`, the `max_ttl` cap, and the metrics
//! that report all of it.

use std::time::Duration;

use hydrant::config::ServeArgs;
use hydrant::sim::{FaultKind, FileSpec};
use tokio::time::{sleep_until, Instant};

use crate::common::*;

/// A `429` hydrant produced itself: JSON `rate_limited`, an integer `Retry-After`, a reason.
fn assert_own_429(r: &Resp, reason: &str) -> u64 {
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["code"], "rate_limited");
    assert_eq!(r.header("x-hydrant-reason"), Some(reason));
    let ra: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!(ra >= 1);
    ra
}

#[tokio::test]
async fn limiter_refuses_beyond_burst_but_hits_still_served() {
    let s = Stack::start(ServeArgs {
        hydrate_rate: Some("1/h".into()),
        hydrate_burst: Some("2".into()),
        hydrate_max_wait: Some("100ms".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(hydrate(&s, READY, ALPHA).await.status, 200);
    assert_eq!(hydrate(&s, READY5, ALPHA).await.status, 200);
    let started = Instant::now();
    let r = hydrate(&s, READY6, ALPHA).await;
    let ra = assert_own_429(&r, "limiter_saturated");
    assert!(ra > 60, "next permit is far away: {ra}");
    assert!(started.elapsed() < Duration::from_secs(2), "bounded wait");
    assert_eq!(s.sim.hydrate_calls(READY6), 0, "no upstream call");
    let hit = hydrate(&s, READY, ALPHA).await;
    assert_eq!(hit.status, 200);
    assert_eq!(hit.header("x-cache"), Some("HIT"));
    // The limiter is per tenant.
    assert_eq!(hydrate(&s, "vg_file_beta_0001", BETA).await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn limiter_serves_stale_instead_of_429() {
    retry_if_stalled(|| async {
        // margin 1 s, lifetime 2.5 s: fresh ~1.5 s, URLs valid ~2.5 s.
        let s = Stack::start(ServeArgs {
            expiry_margin: Some("1s".into()),
            hydrate_rate: Some("1/h".into()),
            hydrate_burst: Some("2".into()),
            hydrate_max_wait: Some("100ms".into()),
            ..Default::default()
        })
        .await;
        s.sim.set_url_lifetime(Duration::from_millis(2500));
        let t0 = Instant::now();
        let first = hydrate(&s, READY, ALPHA).await;
        let t1 = Instant::now();
        assert_eq!(hydrate(&s, READY5, ALPHA).await.status, 200);
        sleep_until(t1 + Duration::from_millis(1600)).await;
        let stale = hydrate(&s, READY, ALPHA).await;
        before(t0 + Duration::from_millis(2450))?;
        assert_eq!(stale.status, 200);
        assert_eq!(stale.header("x-cache"), Some("STALE"));
        assert_eq!(stale.body, first.body);
        assert_eq!(
            s.sim.hydrate_calls(READY),
            1,
            "the limiter refused the call"
        );
        assert_own_429(&hydrate(&s, READY6, ALPHA).await, "limiter_saturated");
        s.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn upstream_429_passes_through_and_pauses_the_tenant() {
    let s = Stack::start(ServeArgs::default()).await;
    assert_eq!(hydrate(&s, READY, ALPHA).await.status, 200);
    s.sim.push_fault(fault(FaultKind::RateLimited {
        retry_after: Some(30),
    }));
    let up = hydrate(&s, READY5, ALPHA).await;
    assert_eq!(up.status, 429);
    assert_eq!(up.header("retry-after"), Some("30"), "upstream's header");
    assert_eq!(
        up.header("x-hydrant-reason"),
        None,
        "the upstream's own answer"
    );
    assert_eq!(up.json()["code"], "rate_limited");
    assert_eq!(s.sim.hydrate_calls(READY5), 1);

    let own = hydrate(&s, READY6, ALPHA).await;
    let ra = assert_own_429(&own, "upstream_paused");
    assert!((25..=30).contains(&ra), "Retry-After = pause left: {ra}");
    assert_eq!(
        s.sim.hydrate_calls(READY6),
        0,
        "no upstream call while paused"
    );
    // Cached files are still served.
    assert_eq!(
        hydrate(&s, READY, ALPHA).await.header("x-cache"),
        Some("HIT")
    );
    // Another tenant is not paused.
    let b = hydrate(&s, "vg_file_beta_0001", BETA).await;
    assert_eq!(b.status, 200);
    assert_eq!(s.sim.hydrate_calls("vg_file_beta_0001"), 1);

    let m = metrics(&s).await;
    assert!(metric(&m, "hydrant_ratelimit_total", &[("outcome", "paused")]).unwrap() >= 1.0);
    assert!(metric(&m, "hydrant_ratelimit_total", &[("outcome", "rejected")]).unwrap() >= 1.0);
    assert_eq!(
        metric(
            &m,
            "hydrant_upstream_requests_total",
            &[("route", "hydrate"), ("status", "429")]
        ),
        Some(1.0)
    );
    s.stop().await;
}

#[tokio::test]
async fn insufficient_credits_passes_through_and_pauses_nothing() {
    let s = Stack::start(ServeArgs::default()).await;
    s.sim.push_fault(fault(FaultKind::InsufficientCredits));
    let r = hydrate(&s, READY, ALPHA).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["code"], "insufficient_credits");
    assert_eq!(r.header("x-hydrant-reason"), None);
    let next = hydrate(&s, READY5, ALPHA).await;
    assert_eq!(next.status, 200);
    assert_eq!(s.sim.hydrate_calls(READY5), 1, "went upstream");
    // Not cached either.
    assert_eq!(hydrate(&s, READY, ALPHA).await.status, 200);
    assert_eq!(s.sim.hydrate_calls(READY), 2);
    let m = metrics(&s).await;
    assert_eq!(
        metric(&m, "hydrant_ratelimit_total", &[("outcome", "paused")]).unwrap_or(0.0),
        0.0
    );
    s.stop().await;
}

#[tokio::test]
async fn ratelimit_remaining_zero_pauses_until_reset() {
    let s = Stack::start(ServeArgs {
        hydrate_max_wait: Some("10ms".into()),
        ..Default::default()
    })
    .await;
    s.sim.set_quotas(2, 50_000);
    assert_eq!(hydrate(&s, READY, ALPHA).await.status, 200);
    // The upstream answers this one with X-RateLimit-Remaining: 0.
    assert_eq!(hydrate(&s, READY5, ALPHA).await.status, 200);
    let r = hydrate(&s, READY6, ALPHA).await;
    let ra = assert_own_429(&r, "upstream_paused");
    assert!(ra <= 3600, "{ra}");
    assert_eq!(
        s.sim.stats().hydrate_calls,
        2,
        "refused without an upstream call"
    );
    // BETA's quota is its own.
    assert_eq!(hydrate(&s, "vg_file_beta_0001", BETA).await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn memory_is_bounded_by_cache_max_bytes() {
    let s = Stack::start(ServeArgs {
        cache_max_bytes: Some("64KiB".into()),
        hydrate_burst: Some("1000".into()),
        ..Default::default()
    })
    .await;
    let ids: Vec<String> = (0..100)
        .map(|i| {
            s.sim.create_file(
                ALPHA,
                FileSpec {
                    display_name: format!("Bulk {i}"),
                    ..FileSpec::default()
                },
            )
        })
        .collect();
    assert!(ids.iter().all(|id| !id.is_empty()));
    let mut total = 0usize;
    for chunk in ids.chunks(10) {
        let mut tasks = Vec::new();
        for id in chunk {
            let (c, url) = (s.client.clone(), s.url(&format!("/v1/files/{id}/hydrate")));
            tasks.push(tokio::spawn(async move {
                c.post(&url, Some(ALPHA), None).await
            }));
        }
        for t in tasks {
            let r = t.await.unwrap();
            assert_eq!(r.status, 200);
            total += r.body.len();
        }
    }
    assert!(total > 65_536, "the bodies alone exceed the bound: {total}");
    let m = metrics(&s).await;
    let bytes = metric(&m, "hydrant_cache_bytes", &[]).expect("hydrant_cache_bytes");
    let entries = metric(&m, "hydrant_cache_entries", &[]).expect("hydrant_cache_entries");
    assert!(bytes <= 65_536.0, "{bytes}");
    assert!(bytes > 0.0);
    assert!((1.0..100.0).contains(&entries), "{entries}");
    s.stop().await;
}

#[tokio::test]
async fn metrics_report_every_cache_and_limiter_outcome() {
    retry_if_stalled(|| async {
        // margin 1 s, lifetime 2.5 s: fresh ~1.5 s, refresh window ~0.3 s before that.
        let s = Stack::start(ServeArgs {
            expiry_margin: Some("1s".into()),
            hydrate_rate: Some("1/h".into()),
            hydrate_burst: Some("5".into()),
            hydrate_max_wait: Some("50ms".into()),
            ..Default::default()
        })
        .await;
        s.sim.set_url_lifetime(Duration::from_millis(2500));
        let t0 = Instant::now();
        // miss + hit (permit 1)
        let a = hydrate(&s, READY, ALPHA).await;
        let t1 = Instant::now();
        assert_eq!(a.header("x-cache"), Some("MISS"));
        assert_eq!(
            hydrate(&s, READY, ALPHA).await.header("x-cache"),
            Some("HIT")
        );
        // upstream 404, then negative (permit 2)
        assert_eq!(hydrate(&s, "vg_file_alpha_9999", ALPHA).await.status, 404);
        assert_eq!(hydrate(&s, "vg_file_alpha_9999", ALPHA).await.status, 404);
        // coalesced (permit 3)
        s.sim
            .push_fault(fault(FaultKind::Latency(Duration::from_millis(300))));
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (c, url) = (
                s.client.clone(),
                s.url(&format!("/v1/files/{READY5}/hydrate")),
            );
            tasks.push(tokio::spawn(async move {
                c.post(&url, Some(ALPHA), None).await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().status, 200);
        }
        let t_b = Instant::now();
        assert_eq!(s.sim.hydrate_calls(READY5), 1);
        // refresh ahead of READY (permit 4): read in the last 20 % of its life
        sleep_until(t1 + Duration::from_millis(1300)).await;
        let hot = hydrate(&s, READY, ALPHA).await;
        before(t0 + Duration::from_millis(1480))?;
        assert_eq!(hot.header("x-cache"), Some("HIT"));
        assert!(
            eventually(Duration::from_secs(1), || s.sim.hydrate_calls(READY) == 2).await,
            "background refresh ran"
        );
        // stale: READY5 past fresh, upstream 503 (permit 5); its URLs were minted after
        // t0 + 300 ms, so they stay valid until after t0 + 2.8 s.
        sleep_until(t_b + Duration::from_millis(1600)).await;
        s.sim.push_fault(fault(FaultKind::Status(503)));
        let stale = hydrate(&s, READY5, ALPHA).await;
        before(t0 + Duration::from_millis(2750))?;
        assert_eq!(stale.header("x-cache"), Some("STALE"));
        // limiter rejection
        assert_own_429(&hydrate(&s, READY6, ALPHA).await, "limiter_saturated");
        assert_eq!(s.sim.hydrate_calls(READY6), 0);

        let m = metrics(&s).await;
        let lookups = |o: &str| metric(&m, "hydrant_cache_lookups_total", &[("outcome", o)]);
        assert!(lookups("hit").unwrap() >= 2.0, "{m}");
        assert!(lookups("miss").unwrap() >= 3.0, "{m}");
        assert!(lookups("negative").unwrap() >= 1.0, "{m}");
        assert!(lookups("coalesced").unwrap() >= 1.0, "{m}");
        assert!(lookups("stale").unwrap() >= 1.0, "{m}");
        let up = |st: &str| {
            metric(
                &m,
                "hydrant_upstream_requests_total",
                &[("route", "hydrate"), ("status", st)],
            )
        };
        assert_eq!(up("200"), Some(3.0), "{m}");
        assert_eq!(up("404"), Some(1.0), "{m}");
        assert_eq!(up("503"), Some(1.0), "{m}");
        assert!(metric(&m, "hydrant_hydrate_refreshes_total", &[]).unwrap() >= 1.0);
        assert!(metric(&m, "hydrant_ratelimit_total", &[("outcome", "rejected")]).unwrap() >= 1.0);
        assert!(metric(&m, "hydrant_cache_entries", &[]).unwrap() >= 2.0);
        assert!(metric(&m, "hydrant_cache_bytes", &[]).unwrap() > 0.0);
        s.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn upstream_429_serves_stale_when_available() {
    retry_if_stalled(|| async {
        // margin 1 s, lifetime 2.5 s: fresh ~1.5 s, URLs valid ~2.5 s.
        let s = Stack::start(ServeArgs {
            expiry_margin: Some("1s".into()),
            ..Default::default()
        })
        .await;
        s.sim.set_url_lifetime(Duration::from_millis(2500));
        let t0 = Instant::now();
        let first = hydrate(&s, READY, ALPHA).await;
        let t1 = Instant::now();
        sleep_until(t1 + Duration::from_millis(1600)).await;
        s.sim.push_fault(fault(FaultKind::RateLimited {
            retry_after: Some(30),
        }));
        let stale = hydrate(&s, READY, ALPHA).await;
        // Now paused: still stale, without an upstream call.
        let again = hydrate(&s, READY, ALPHA).await;
        before(t0 + Duration::from_millis(2450))?;
        assert_eq!(stale.status, 200);
        assert_eq!(stale.header("x-cache"), Some("STALE"));
        assert_eq!(stale.body, first.body);
        assert_eq!(again.header("x-cache"), Some("STALE"));
        assert_eq!(s.sim.hydrate_calls(READY), 2);
        s.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn refresh_ahead_never_waits_for_a_permit() {
    retry_if_stalled(|| async {
        // margin 1 s, lifetime 2.5 s: fresh ~1.5 s, refresh window from ~1.2 s; one permit.
        let s = Stack::start(ServeArgs {
            expiry_margin: Some("1s".into()),
            hydrate_rate: Some("1/h".into()),
            hydrate_burst: Some("1".into()),
            hydrate_max_wait: Some("2s".into()),
            ..Default::default()
        })
        .await;
        s.sim.set_url_lifetime(Duration::from_millis(2500));
        let t0 = Instant::now();
        let first = hydrate(&s, READY, ALPHA).await;
        let t1 = Instant::now();
        sleep_until(t1 + Duration::from_millis(1300)).await;
        let hot = hydrate(&s, READY, ALPHA).await;
        // A refresh that waited for the permit would blow this window every time.
        before(t0 + Duration::from_millis(1480))?;
        assert_eq!(hot.header("x-cache"), Some("HIT"));
        assert_eq!(hot.body, first.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(s.sim.hydrate_calls(READY), 1, "no permit, no refresh");
        s.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn max_ttl_caps_every_entry() {
    retry_if_stalled(|| async {
        let s = Stack::start(ServeArgs {
            max_ttl: Some("1s".into()),
            ..Default::default()
        })
        .await;
        // URLs valid for an hour, but no entry lives longer than max_ttl.
        let t0 = Instant::now();
        let first = hydrate(&s, READY, ALPHA).await;
        let t1 = Instant::now();
        assert_eq!(first.header("x-cache"), Some("MISS"));
        let hit = hydrate(&s, READY, ALPHA).await;
        before(t0 + Duration::from_millis(950))?;
        assert_eq!(hit.header("x-cache"), Some("HIT"));
        sleep_until(t1 + Duration::from_millis(1100)).await;
        assert_eq!(
            hydrate(&s, READY, ALPHA).await.header("x-cache"),
            Some("MISS")
        );
        assert_eq!(s.sim.hydrate_calls(READY), 2);
        s.stop().await;
        Ok(())
    })
    .await;
}
