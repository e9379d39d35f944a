//! How long a cached hydration lives: fresh until its URLs' `expiresAt` minus the expiry
//! margin; a file with a pending rendition for `pending_ttl`; an upstream 404 as a negative
//! entry for `negative_ttl`; past fresh, an upstream failure (error status, timeout,
//! dropped connection) serves the stale body while its URLs are still valid, and never after;
//! an entry read near the end of its life is refreshed in the background; skipped sources and
//! a public preview without expiry do not shorten the entry's life.

use std::time::Duration;

use hydrant::config::ServeArgs;
use hydrant::sim::FaultKind;
use tokio::time::{sleep_until, Instant};

use crate::common::*;

#[tokio::test]
async fn ttl_is_expires_at_minus_margin() {
    retry_if_stalled(|| async {
        let s = Stack::start(ServeArgs::default()).await;
        // expiresAt = now + 62 s, margin 60 s: fresh for ~2 s.
        s.sim.set_url_lifetime(Duration::from_secs(62));
        let t0 = Instant::now();
        let first = hydrate(&s, READY, ALPHA).await;
        let t1 = Instant::now();
        assert_eq!(first.header("x-cache"), Some("MISS"));
        sleep_until(t1 + Duration::from_millis(1100)).await;
        let hit = hydrate(&s, READY, ALPHA).await;
        before(t0 + Duration::from_millis(1950))?;
        assert_eq!(hit.header("x-cache"), Some("HIT"));
        assert_eq!(hit.header("age"), Some("1"));
        assert_eq!(s.sim.hydrate_calls(READY), 1);
        sleep_until(t1 + Duration::from_millis(2150)).await;
        let again = hydrate(&s, READY, ALPHA).await;
        assert_eq!(again.header("x-cache"), Some("MISS"), "expired after ~2 s");
        assert_eq!(s.sim.hydrate_calls(READY), 2);
        assert_ne!(download_url(&again), download_url(&first), "a fresh URL");
        s.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn pending_file_rehydrates_after_pending_ttl() {
    retry_if_stalled(|| async {
        let s = Stack::start(ServeArgs {
            pending_ttl: Some("1s".into()),
            ..Default::default()
        })
        .await;
        let t0 = Instant::now();
        let first = hydrate(&s, PENDING, ALPHA).await;
        let t1 = Instant::now();
        assert_eq!(first.json()["previewSource"]["status"], "pending");
        let hit = hydrate(&s, PENDING, ALPHA).await;
        before(t0 + Duration::from_millis(950))?;
        assert_eq!(hit.header("x-cache"), Some("HIT"));
        assert_eq!(s.sim.hydrate_calls(PENDING), 1);
        assert_eq!(hydrate(&s, READY, ALPHA).await.status, 200);
        assert!(s.sim.set_status(PENDING, "preview", "ready"));
        sleep_until(t1 + Duration::from_millis(1150)).await;
        let again = hydrate(&s, PENDING, ALPHA).await;
        assert_eq!(again.header("x-cache"), Some("MISS"));
        assert_eq!(again.json()["previewSource"]["status"], "ready");
        assert_eq!(s.sim.hydrate_calls(PENDING), 2);
        // A settled file is not cut short by pending_ttl.
        assert_eq!(
            hydrate(&s, READY, ALPHA).await.header("x-cache"),
            Some("HIT")
        );
        assert_eq!(s.sim.hydrate_calls(READY), 1);
        s.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn upstream_404_is_a_negative_entry() {
    retry_if_stalled(|| async {
        let s = Stack::start(ServeArgs {
            negative_ttl: Some("1s".into()),
            ..Default::default()
        })
        .await;
        let missing = "vg_file_alpha_9999";
        let t0 = Instant::now();
        let first = hydrate(&s, missing, ALPHA).await;
        let t1 = Instant::now();
        assert_eq!(first.status, 404);
        assert_eq!(first.json()["code"], "not_found");
        let second = hydrate(&s, missing, ALPHA).await;
        before(t0 + Duration::from_millis(950))?;
        assert_eq!(second.status, 404);
        assert_eq!(second.header("x-cache"), Some("HIT"));
        assert_eq!(second.body, first.body, "the upstream's stored body");
        assert_eq!(
            s.sim.hydrate_calls(missing),
            1,
            "no upstream call within negative_ttl"
        );
        sleep_until(t1 + Duration::from_millis(1150)).await;
        assert_eq!(hydrate(&s, missing, ALPHA).await.status, 404);
        assert_eq!(
            s.sim.hydrate_calls(missing),
            2,
            "asked again after negative_ttl"
        );
        s.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn stale_if_error_serves_the_old_body_while_urls_are_valid() {
    let s = Stack::start(ServeArgs {
        upstream_timeout: Some("300ms".into()),
        ..Default::default()
    })
    .await;
    s.sim.set_url_lifetime(Duration::from_secs(62));
    let first = hydrate(&s, READY, ALPHA).await;
    let t1 = Instant::now();
    sleep_until(t1 + Duration::from_millis(2150)).await;
    s.sim.push_fault(fault(FaultKind::Status(503)));
    let stale = hydrate(&s, READY, ALPHA).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.header("x-cache"), Some("STALE"));
    assert_eq!(stale.body, first.body);
    let age: u64 = stale.header("age").expect("age on STALE").parse().unwrap();
    assert!(age >= 2, "{age}");
    assert_eq!(s.sim.hydrate_calls(READY), 2, "the upstream was asked");
    // A timeout and a dropped connection are failures too.
    for kind in [FaultKind::Hang, FaultKind::Drop] {
        s.sim.push_fault(fault(kind.clone()));
        let r = hydrate(&s, READY, ALPHA).await;
        assert_eq!(r.header("x-cache"), Some("STALE"), "{kind:?}");
        assert_eq!(r.body, first.body, "{kind:?}");
    }
    // Once the upstream recovers, a fresh file.
    let fresh = hydrate(&s, READY, ALPHA).await;
    assert_eq!(fresh.header("x-cache"), Some("MISS"));
    assert_ne!(fresh.body, first.body);
    s.stop().await;
}

#[tokio::test]
async fn no_stale_once_the_urls_really_expired() {
    retry_if_stalled(|| async {
        // margin 1 s, lifetime 2 s: fresh for ~1 s, URLs valid for ~2 s.
        let s = Stack::start(ServeArgs {
            expiry_margin: Some("1s".into()),
            ..Default::default()
        })
        .await;
        s.sim.set_url_lifetime(Duration::from_secs(2));
        let t0 = Instant::now();
        let first = hydrate(&s, READY, ALPHA).await;
        let t1 = Instant::now();
        assert_eq!(first.status, 200);
        // Past fresh, before the real expiry: stale.
        sleep_until(t1 + Duration::from_millis(1200)).await;
        s.sim.push_fault(fault(FaultKind::Status(503)));
        let stale = hydrate(&s, READY, ALPHA).await;
        before(t0 + Duration::from_millis(1950))?;
        assert_eq!(stale.header("x-cache"), Some("STALE"));
        assert_eq!(stale.body, first.body);
        // Past the real expiry: the error passes through.
        sleep_until(t1 + Duration::from_millis(2300)).await;
        s.sim.push_fault(fault(FaultKind::Status(503)));
        let err = hydrate(&s, READY, ALPHA).await;
        assert_eq!(err.status, 503);
        assert_ne!(err.header("x-cache"), Some("STALE"));
        assert_eq!(err.json()["code"], "service_unavailable");
        assert_eq!(s.sim.hydrate_calls(READY), 3);
        s.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn refresh_ahead_rehydrates_a_hot_entry_in_the_background() {
    retry_if_stalled(|| async {
        // margin 1 s, lifetime 4 s: fresh for ~3 s, refresh window its last 20 % (~0.6 s).
        let s = Stack::start(ServeArgs {
            expiry_margin: Some("1s".into()),
            ..Default::default()
        })
        .await;
        s.sim.set_url_lifetime(Duration::from_secs(4));
        let t0 = Instant::now();
        let first = hydrate(&s, READY, ALPHA).await;
        let t1 = Instant::now();
        sleep_until(t0 + Duration::from_millis(1000)).await;
        let early = hydrate(&s, READY, ALPHA).await;
        before(t0 + Duration::from_millis(2300))?;
        assert_eq!(early.header("x-cache"), Some("HIT"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(s.sim.hydrate_calls(READY), 1, "no refresh early in life");
        sleep_until(t1 + Duration::from_millis(2550)).await;
        let hot = hydrate(&s, READY, ALPHA).await;
        let hot2 = hydrate(&s, READY, ALPHA).await;
        before(t0 + Duration::from_millis(2950))?;
        assert_eq!(
            hot.header("x-cache"),
            Some("HIT"),
            "the reader is not delayed"
        );
        assert_eq!(hot.body, first.body);
        assert_eq!(hot2.status, 200);
        assert!(
            eventually(Duration::from_secs(1), || s.sim.hydrate_calls(READY) == 2).await,
            "one background hydrate"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(s.sim.hydrate_calls(READY), 2, "only one refresh");
        let after = hydrate(&s, READY, ALPHA).await;
        assert_eq!(after.header("x-cache"), Some("HIT"));
        assert_ne!(after.body, first.body, "the refreshed file is served");
        s.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn skipped_and_public_sources_do_not_shorten_the_ttl() {
    // PARTIAL: hls skipped (url "", expiresAt 0), download failed. PUBLIC: a public preview
    // with expiresAt null. Neither may make the entry expire at once.
    let s = Stack::start(ServeArgs::default()).await;
    for id in [PARTIAL, PUBLIC] {
        let first = hydrate(&s, id, ALPHA).await;
        assert_eq!(first.status, 200);
        let again = hydrate(&s, id, ALPHA).await;
        assert_eq!(again.header("x-cache"), Some("HIT"), "{id}");
        assert_eq!(s.sim.hydrate_calls(id), 1, "{id}");
    }
    s.stop().await;
}
