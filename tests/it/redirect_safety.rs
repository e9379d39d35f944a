//! hydrant never redirects to an unsafe or expired URL: a URL that is not absolute `https`
//! (`http` only behind a plain-HTTP upstream), such as `javascript:`, `data:`, `ftp:`,
//! hostless, protocol-relative or one carrying CR/LF, is a 502 without `Location` and never
//! a JSON-view `url`, nor is an upstream's own redirect; an entry is not handed out past its
//! expiry; a URL's own expiry (`X-Amz-Date` + `X-Amz-Expires`, or `Expires=`) wins over a
//! later `expiresAt`; upstream failures without a stale entry are a 502 or 504 and cache
//! nothing; a stale redirect carries `max-age=0`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use hydrant::config::ServeArgs;
use hydrant::sim::FaultKind;
use tokio::time::{sleep_until, Instant};

use crate::common::fake_upstream::fixed_upstream;
use crate::common::*;

/// A StorageFile whose sources carry `urls` (download, preview, thumbnail, hls).
fn crafted_file(urls: [&str; 4]) -> String {
    let exp = wall_unix() + 3600.0;
    let src = |u: &str| format!(r#"{{"status":"ready","url":"{u}","expiresAt":{exp}}}"#);
    format!(
        r#"{{"fileId":"x","type":"VIDEO","downloadSource":{},"previewSource":{},"thumbnailSource":{},"hlsSource":{}}}"#,
        src(urls[0]),
        src(urls[1]),
        src(urls[2]),
        src(urls[3])
    )
}

#[tokio::test]
async fn never_redirects_to_an_unsafe_url() {
    let body = crafted_file([
        "javascript:alert(document.cookie)",
        "ftp://evil.example/x",
        "//evil.example/x",
        "https://cdn.example/ok?X-Amz-Signature=1",
    ]);
    let (base, served) = fixed_upstream(200, body).await;
    let s = Stack::start(ServeArgs {
        upstream: Some(base),
        ..Default::default()
    })
    .await;
    for r in ["download", "preview", "thumbnail"] {
        let resp = redirect(&s, "x", &format!("?rendition={r}")).await;
        assert_eq!(resp.status, 502, "{r}");
        assert!(resp.header("location").is_none(), "{r}");
        assert!(resp.json()["code"].is_string(), "{r}");
    }
    let ok = redirect(&s, "x", "?rendition=hls").await;
    assert_eq!(ok.status, 302);
    assert_eq!(
        ok.header("location"),
        Some("https://cdn.example/ok?X-Amz-Signature=1")
    );
    assert_eq!(served.load(Ordering::SeqCst), 1, "one hydrate, cached");
    s.stop().await;
}

#[tokio::test]
async fn poisoned_urls_never_become_a_location_or_a_json_url() {
    // CR/LF (JSON-escaped, so the upstream's JSON is valid), `data:`, hostless and
    // `javascript:`: each rendition is a 502 without `Location`, from the first answer and
    // from the cache alike, and the JSON view lists it with no `url`.
    let body = crafted_file([
        r"https://cdn.example/d\r\nSet-Cookie: stolen=1",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "https:///no-host/x",
        "javascript:alert(1)//https://cdn.example/",
    ]);
    let (base, served) = fixed_upstream(200, body.clone()).await;
    let s = Stack::start(ServeArgs {
        upstream: Some(base),
        ..Default::default()
    })
    .await;
    for round in ["MISS", "HIT"] {
        for r in ["download", "preview", "thumbnail", "hls"] {
            let resp = redirect(&s, "x", &format!("?rendition={r}")).await;
            assert_error(&resp, 502, "upstream_invalid");
            assert!(resp.header("location").is_none(), "{round} {r}");
            assert!(resp.header("set-cookie").is_none(), "{round} {r}");
        }
        let view = s.client.get(&s.url("/files/x"), None).await;
        assert_eq!(view.status, 200, "{round}");
        let v = view.json();
        for r in ["download", "preview", "thumbnail", "hls"] {
            assert_eq!(v["renditions"][r]["status"], "ready", "{round} {r}");
            assert!(v["renditions"][r].get("url").is_none(), "{round} {r}: {v}");
        }
        let text = String::from_utf8_lossy(&view.body);
        for poison in [
            "cdn.example",
            "base64",
            "javascript",
            "no-host",
            "Set-Cookie",
        ] {
            assert!(!text.contains(poison), "{round}: {text}");
        }
    }
    // The backend's hydrate is the upstream's body byte for byte (its own API answer), and
    // hydrant adds no redirect to it.
    let h = hydrate(&s, "x", ALPHA).await;
    assert_eq!(h.status, 200);
    assert_eq!(h.body, body.as_bytes());
    assert!(h.header("location").is_none());
    assert_eq!(served.load(Ordering::SeqCst), 1, "one hydrate, cached");
    s.stop().await;
}

#[tokio::test]
async fn an_upstream_redirect_never_becomes_a_location() {
    // A hydrate answered with a 302 to an attacker's page: the frontend routes cannot pass
    // an upstream answer on, so it is a 502 of hydrant's own, without `Location`.
    let (base, _) = crate::common::fake_upstream::fixed_upstream_with(
        302,
        &[("location", "https://evil.example/phish")],
        "{}".into(),
    )
    .await;
    let s = Stack::start(ServeArgs {
        upstream: Some(base),
        ..Default::default()
    })
    .await;
    let r = redirect(&s, "x", "").await;
    assert_error(&r, 502, "upstream_unavailable");
    assert!(r.header("location").is_none());
    let r = s.client.get(&s.url("/files/x"), None).await;
    assert_error(&r, 502, "upstream_unavailable");
    assert!(r.header("location").is_none());
    s.stop().await;
}

#[tokio::test]
async fn never_serves_a_redirect_past_its_expiry() {
    retry_if_stalled(|| async {
        let s = Stack::with_client_token(ServeArgs::default()).await;
        // expiresAt = now + 61.5 s, margin 60 s: the URL may be handed out for ~1.5 s.
        s.sim.set_url_lifetime(Duration::from_millis(61_500));
        let t0 = Instant::now();
        let first = redirect(&s, READY, "").await;
        let t1 = Instant::now();
        assert_eq!(first.status, 302);
        assert!(max_age(&first) <= 1);
        let l1 = first.header("location").unwrap().to_owned();
        sleep_until(t0 + Duration::from_millis(500)).await;
        let hit = redirect(&s, READY, "").await;
        before(t0 + Duration::from_millis(1150))?;
        assert_eq!(hit.header("x-cache"), Some("HIT"));
        assert_eq!(hit.header("location"), Some(l1.as_str()));
        assert!(max_age(&hit) <= 1);
        sleep_until(t1 + Duration::from_millis(1600)).await;
        let next = redirect(&s, READY, "").await;
        assert_eq!(next.status, 302);
        let l2 = next.header("location").unwrap();
        assert_ne!(l2, l1, "a fresh URL, not the old one");
        assert_eq!(next.header("x-cache"), Some("MISS"));
        assert_eq!(s.sim.hydrate_calls(READY), 2);
        s.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn upstream_failures_without_stale_are_502_or_504() {
    let s = Stack::with_client_token(ServeArgs {
        upstream_timeout: Some("300ms".into()),
        ..Default::default()
    })
    .await;
    for (kind, status, code) in [
        (FaultKind::Drop, 502, "upstream_unavailable"),
        (FaultKind::Status(503), 502, "upstream_unavailable"),
        (FaultKind::Hang, 504, "upstream_timeout"),
        (FaultKind::Malformed, 502, ""),
    ] {
        s.sim.push_fault(fault(kind.clone()));
        let r = redirect(&s, READY, "").await;
        assert_eq!(r.status, status, "{kind:?}");
        assert!(r.header("location").is_none(), "{kind:?}");
        let code_got = r.json()["code"].as_str().unwrap().to_owned();
        if !code.is_empty() {
            assert_eq!(code_got, code, "{kind:?}");
        }
    }
    // Nothing bad was cached: the next call succeeds.
    assert_eq!(redirect(&s, READY, "").await.status, 302);
    s.stop().await;
}

#[tokio::test]
async fn stale_redirect_has_zero_max_age() {
    retry_if_stalled(|| async {
        // margin 1 s, lifetime 2 s: fresh ~1 s, the URL itself valid ~2 s.
        let s = Stack::with_client_token(ServeArgs {
            expiry_margin: Some("1s".into()),
            ..Default::default()
        })
        .await;
        s.sim.set_url_lifetime(Duration::from_secs(2));
        let t0 = Instant::now();
        let first = redirect(&s, READY, "").await;
        let t1 = Instant::now();
        assert_eq!(first.status, 302);
        sleep_until(t1 + Duration::from_millis(1200)).await;
        s.sim.push_fault(fault(FaultKind::Drop));
        let stale = redirect(&s, READY, "").await;
        before(t0 + Duration::from_millis(1950))?;
        assert_eq!(stale.status, 302);
        assert_eq!(stale.header("x-cache"), Some("STALE"));
        assert_eq!(stale.header("location"), first.header("location"));
        assert_eq!(max_age(&stale), 0, "within the margin: no browser caching");
        s.stop().await;
        Ok(())
    })
    .await;
}

/// `X-Amz-Date` format of a Unix time.
fn amz_date(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[tokio::test]
async fn a_urls_own_expiry_wins_over_expires_at() {
    let now = wall_unix();
    let now_i = now.floor() as i64;
    let far = now + 3600.0;
    // X-Amz-Date + X-Amz-Expires ends in ~90 s although expiresAt says 1 h.
    let amz = format!(
        "https://cdn.example/d?X-Amz-Date={}&X-Amz-Expires=90&X-Amz-Signature=s",
        amz_date(now_i)
    );
    let body = format!(
        r#"{{"fileId":"x","downloadSource":{{"status":"ready","url":"{amz}","expiresAt":{far}}}}}"#
    );
    let (base, _) = fixed_upstream(200, body).await;
    let s = Stack::start(ServeArgs {
        upstream: Some(base),
        ..Default::default()
    })
    .await;
    let r = redirect(&s, "x", "").await;
    assert_eq!(r.status, 302);
    let n = max_age(&r);
    assert!(n <= 30, "bounded by X-Amz-Expires, not expiresAt: {n}");
    assert!(n >= 20, "{n}");
    s.stop().await;
}

#[tokio::test]
async fn an_expires_parameter_bounds_freshness() {
    retry_if_stalled(|| async {
        let t0 = Instant::now();
        let now = wall_unix();
        // `Expires=` ends 2..3 s from now (expiresAt says 1 h); margin 1 s: the entry is
        // fresh until between now + 1 s and now + 2 s.
        let body = format!(
            r#"{{"fileId":"x","downloadSource":{{"status":"ready","url":"https://cdn.example/d?Expires={}","expiresAt":{}}}}}"#,
            now.floor() as i64 + 3,
            now + 3600.0
        );
        let (base, served) = fixed_upstream(200, body).await;
        let s = Stack::start(ServeArgs {
            upstream: Some(base),
            expiry_margin: Some("1s".into()),
            ..Default::default()
        })
        .await;
        let h = || {
            let (c, url) = (s.client.clone(), s.url("/v1/files/x/hydrate"));
            async move { c.post(&url, Some(ALPHA), None).await }
        };
        let miss = h().await;
        let hit = h().await;
        before(t0 + Duration::from_millis(950))?;
        assert_eq!(miss.header("x-cache"), Some("MISS"));
        assert_eq!(hit.header("x-cache"), Some("HIT"));
        sleep_until(t0 + Duration::from_millis(2050)).await;
        assert_eq!(h().await.header("x-cache"), Some("MISS"), "expired by Expires=");
        assert_eq!(served.load(Ordering::SeqCst), 2);
        s.stop().await;
        Ok(())
    })
    .await;
}
