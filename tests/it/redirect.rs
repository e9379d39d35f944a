//! The frontend routes (DESIGN.md endpoint table): `/files/{id}/redirect` and `/files/{id}`,
//! signed links, and the invariant that hydrant never redirects to an unsafe or expired URL.

use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::Method;
use hydrant::config::ServeArgs;
use hydrant::sim::FaultKind;
use sha2::Sha256;
use tokio::time::{sleep_until, Instant};

use crate::common::fake_upstream::fixed_upstream;
use crate::common::*;

const PUBLIC_URL: &str = "https://cdn.hydrant.example";

/// `sig` for a signed link, computed independently of hydrant.
fn sign(key: &str, id: &str, exp: u64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{id}.{exp}").as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn redirects_to_each_renditions_current_url() {
    let s = Stack::with_client_token(ServeArgs::default()).await;
    let file = hydrated(&s, READY).await;
    for (query, key) in [
        ("", "downloadSource"),
        ("?rendition=download", "downloadSource"),
        ("?rendition=preview", "previewSource"),
        ("?rendition=thumbnail", "thumbnailSource"),
        ("?rendition=hls", "hlsSource"),
    ] {
        let r = redirect(&s, READY, query).await;
        assert_eq!(r.status, 302, "{query}");
        assert_eq!(r.header("location"), file[key]["url"].as_str(), "{query}");
        assert_eq!(r.header("x-cache"), Some("HIT"), "shares the token's entry");
        assert!(r.header("age").is_some());
    }
    let public = hydrated(&s, PUBLIC).await;
    let r = redirect(&s, PUBLIC, "?rendition=public").await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        public["staticPublicPreviewSource"]["url"].as_str()
    );
    assert_eq!(s.sim.stats().hydrate_calls, 2);
    s.stop().await;
}

#[tokio::test]
async fn cache_control_never_reaches_past_the_url_expiry() {
    let s = Stack::with_client_token(ServeArgs::default()).await;
    // Long-lived URLs: a long but bounded max-age.
    let file = hydrated(&s, READY).await;
    for (r, key) in [("download", "downloadSource"), ("preview", "previewSource")] {
        let before = wall_unix();
        let resp = redirect(&s, READY, &format!("?rendition={r}")).await;
        let exp = file[key]["expiresAt"].as_f64().unwrap();
        let n = max_age(&resp);
        assert!(n > 0, "{r}: {n}");
        assert!(n as f64 <= exp - 60.0 - before, "{r}: {n} vs {exp}");
    }
    // URLs valid for 62 s: at most ~2 s.
    s.sim.set_url_lifetime(Duration::from_secs(62));
    let id = "vg_file_alpha_0005";
    let before = wall_unix();
    let first = redirect(&s, id, "").await;
    assert_eq!(first.status, 302);
    assert_eq!(first.header("x-cache"), Some("MISS"));
    let file = hydrated(&s, id).await;
    let exp = file["downloadSource"]["expiresAt"].as_f64().unwrap();
    assert_eq!(
        first.header("location"),
        file["downloadSource"]["url"].as_str()
    );
    let n = max_age(&first);
    assert!(n <= 2, "{n}");
    assert!(n as f64 <= exp - 60.0 - before, "{n} vs {exp}");
    s.stop().await;
}

#[tokio::test]
async fn head_is_a_302_without_a_body() {
    let s = Stack::with_client_token(ServeArgs::default()).await;
    let file = hydrated(&s, READY).await;
    let r = s
        .client
        .send(
            Method::HEAD,
            &s.url(&format!("/files/{READY}/redirect?rendition=preview")),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 302);
    assert!(r.body.is_empty());
    assert_eq!(r.header("location"), file["previewSource"]["url"].as_str());
    s.stop().await;
}

#[tokio::test]
async fn pending_rendition_is_503_with_retry_after() {
    let s = Stack::with_client_token(ServeArgs::default()).await;
    let r = redirect(&s, PENDING, "?rendition=preview").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("x-hydrant-reason"), Some("pending"));
    let ra: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!((1..=5).contains(&ra), "within pending_ttl: {ra}");
    assert!(r.json()["message"].is_string());
    assert!(r.header("location").is_none());
    // The file's ready renditions still redirect.
    assert_eq!(
        redirect(&s, PENDING, "?rendition=download").await.status,
        302
    );
    assert_eq!(s.sim.hydrate_calls(PENDING), 1);
    s.stop().await;
}

#[tokio::test]
async fn failed_skipped_and_absent_renditions_are_404() {
    let s = Stack::with_client_token(ServeArgs::default()).await;
    for (id, q) in [
        (PARTIAL, "?rendition=download"), // failed
        (PARTIAL, ""),                    // default is download
        (PARTIAL, "?rendition=hls"),      // skipped
        (READY, "?rendition=public"),     // no public preview
        (PUBLIC, "?rendition=hls"),       // skipped
    ] {
        let r = redirect(&s, id, q).await;
        assert_eq!(r.status, 404, "{id}{q}");
        assert_eq!(r.json()["code"], "not_found", "{id}{q}");
        assert!(r.header("location").is_none());
    }
    assert_eq!(
        redirect(&s, PARTIAL, "?rendition=preview").await.status,
        302
    );
    assert_eq!(
        redirect(&s, PARTIAL, "?rendition=thumbnail").await.status,
        302
    );
    // An unknown file.
    assert_eq!(redirect(&s, "vg_file_alpha_9999", "").await.status, 404);
    let j = s
        .client
        .get(&s.url("/files/vg_file_alpha_9999"), None)
        .await;
    assert_eq!(j.status, 404);
    s.stop().await;
}

#[tokio::test]
async fn unknown_rendition_and_bad_ids_are_400_without_upstream_calls() {
    let s = Stack::with_client_token(ServeArgs::default()).await;
    let r = redirect(&s, READY, "?rendition=poster").await;
    assert_eq!(r.status, 400);
    assert!(r.json()["code"].is_string());
    let long = "a".repeat(129);
    for path in [
        "/files/bad.id/redirect".to_owned(),
        "/files/%2e%2e/redirect".to_owned(),
        "/files/vg%20file/redirect".to_owned(),
        format!("/files/{long}/redirect"),
        "/files/bad.id".to_owned(),
    ] {
        let r = s.client.get(&s.url(&path), None).await;
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.json()["code"], "invalid_id", "{path}");
    }
    assert_eq!(s.sim.stats().total_requests, 0, "no upstream call");
    s.stop().await;
}

#[tokio::test]
async fn location_leads_to_the_cdn_bytes() {
    let s = Stack::with_client_token(ServeArgs::default()).await;
    for (id, q) in [
        (READY, ""),
        (READY, "?rendition=thumbnail"),
        (PUBLIC, "?rendition=public"),
    ] {
        let r = redirect(&s, id, q).await;
        assert_eq!(r.status, 302);
        let loc = r.header("location").unwrap().to_owned();
        assert!(loc.starts_with(&s.sim.base_url()), "{loc}");
        let cdn = s.client.get(&loc, None).await;
        assert_eq!(cdn.status, 200, "{loc}");
        assert!(!cdn.body.is_empty());
    }
    assert_eq!(s.sim.stats().cdn_calls, 3);
    s.stop().await;
}

#[tokio::test]
async fn file_json_is_stable_and_never_leaks_upstream_urls() {
    let s = Stack::with_client_token(ServeArgs {
        public_url: Some(PUBLIC_URL.into()),
        ..Default::default()
    })
    .await;
    let sim_addr = s.sim.addr().to_string();
    for id in [READY, PENDING, PARTIAL, PUBLIC] {
        let r = s.client.get(&s.url(&format!("/files/{id}")), None).await;
        assert_eq!(r.status, 200, "{id}");
        assert!(r.header("content-type").is_some_and(|c| c.contains("json")));
        let text = String::from_utf8_lossy(&r.body).to_string();
        assert!(!text.contains("X-Amz"), "{text}");
        assert!(!text.contains(&sim_addr), "{text}");
        assert!(!text.contains("/cdn/"), "{text}");
        let v = r.json();
        let file = hydrated(&s, id).await;
        assert_eq!(v["fileId"], id);
        assert_eq!(v["type"], file["type"]);
        assert_eq!(v["displayName"], file["displayName"]);
        assert_eq!(v["durationSeconds"], file["durationSeconds"]);
        for (name, key) in [
            ("download", "downloadSource"),
            ("preview", "previewSource"),
            ("thumbnail", "thumbnailSource"),
            ("hls", "hlsSource"),
        ] {
            let rend = &v["renditions"][name];
            let src = &file[key];
            assert_eq!(rend["status"], src["status"], "{id} {name}");
            if src["status"] == "ready" {
                assert_eq!(
                    rend["url"],
                    format!("{PUBLIC_URL}/files/{id}/redirect?rendition={name}"),
                    "{id} {name}"
                );
                assert_eq!(rend["width"], src["width"], "{id} {name}");
                assert_eq!(rend["height"], src["height"], "{id} {name}");
            } else {
                assert!(rend.get("url").is_none(), "{id} {name}: {rend}");
            }
        }
    }
    // Spot checks against the seed table.
    let partial = s
        .client
        .get(&s.url(&format!("/files/{PARTIAL}")), None)
        .await
        .json();
    assert_eq!(partial["renditions"]["download"]["status"], "failed");
    assert_eq!(partial["renditions"]["hls"]["status"], "skipped");
    let ready = s
        .client
        .get(&s.url(&format!("/files/{READY}")), None)
        .await
        .json();
    assert_eq!(ready["renditions"]["download"]["width"], 1920);
    assert_eq!(ready["renditions"]["download"]["height"], 1080);
    let public = s
        .client
        .get(&s.url(&format!("/files/{PUBLIC}")), None)
        .await
        .json();
    assert_eq!(
        public["renditions"]["public"]["url"],
        format!("{PUBLIC_URL}/files/{PUBLIC}/redirect?rendition=public")
    );
    let pending = s
        .client
        .get(&s.url(&format!("/files/{PENDING}")), None)
        .await
        .json();
    assert_eq!(pending["renditions"]["preview"]["status"], "pending");
    assert!(pending["renditions"]["preview"].get("url").is_none());
    s.stop().await;
}

#[tokio::test]
async fn signed_links_are_required_and_rotate() {
    let s = Stack::with_client_token(ServeArgs {
        signing_keys: Some("k1,k2".into()),
        public_url: Some(PUBLIC_URL.into()),
        ..Default::default()
    })
    .await;
    let exp = wall_unix() as u64 + 600;
    let forbidden = |r: &Resp, what: &str| {
        assert_eq!(r.status, 403, "{what}");
        assert_eq!(r.json()["code"], "forbidden", "{what}");
        assert!(r.header("location").is_none());
    };
    forbidden(&redirect(&s, READY, "").await, "unsigned");
    forbidden(
        &s.client.get(&s.url(&format!("/files/{READY}")), None).await,
        "unsigned JSON",
    );
    let bad = sign("k3", READY, exp);
    forbidden(
        &redirect(&s, READY, &format!("?exp={exp}&sig={bad}")).await,
        "unknown key",
    );
    let other_file = sign("k1", PUBLIC, exp);
    forbidden(
        &redirect(&s, READY, &format!("?exp={exp}&sig={other_file}")).await,
        "signature of another file",
    );
    let longer = sign("k1", READY, exp);
    forbidden(
        &redirect(&s, READY, &format!("?exp={}&sig={longer}", exp + 1)).await,
        "exp changed",
    );
    let past = wall_unix() as u64 - 5;
    let expired = sign("k1", READY, past);
    forbidden(
        &redirect(&s, READY, &format!("?exp={past}&sig={expired}")).await,
        "expired",
    );
    assert_eq!(s.sim.stats().total_requests, 0, "refused before any lookup");

    // Either key verifies; one signature grants every rendition.
    for key in ["k1", "k2"] {
        let sig = sign(key, READY, exp);
        for q in ["", "&rendition=preview", "&rendition=thumbnail"] {
            let r = redirect(&s, READY, &format!("?exp={exp}&sig={sig}{q}")).await;
            assert_eq!(r.status, 302, "{key}{q}");
        }
    }
    // The JSON view's urls carry exp and sig, and they work.
    let sig = sign("k2", READY, exp);
    let view = s
        .client
        .get(&s.url(&format!("/files/{READY}?exp={exp}&sig={sig}")), None)
        .await;
    assert_eq!(view.status, 200);
    let v = view.json();
    let file = hydrated(&s, READY).await;
    for (name, key) in [("download", "downloadSource"), ("hls", "hlsSource")] {
        let url = v["renditions"][name]["url"].as_str().unwrap();
        assert!(url.starts_with(PUBLIC_URL), "{url}");
        assert!(url.contains(&format!("exp={exp}")), "{url}");
        assert!(url.contains("sig="), "{url}");
        let local = url.replacen(PUBLIC_URL, &s.hydrant.url(), 1);
        let r = s.client.get(&local, None).await;
        assert_eq!(r.status, 302, "{url}");
        assert_eq!(r.header("location"), file[key]["url"].as_str());
    }
    s.stop().await;
}

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
