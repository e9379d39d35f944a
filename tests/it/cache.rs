//! The hydration cache through hydrant's HTTP surface (DESIGN.md "Cache semantics"):
//! hits and misses, tenants, TTLs from `expiresAt`, pending and negative entries, single
//! flight, stale-if-error, refresh ahead, invalidation, purge, priming and GET-from-cache.

use std::sync::atomic::Ordering;
use std::time::Duration;

use http::Method;
use hydrant::config::ServeArgs;
use hydrant::sim::FaultKind;
use serde_json::Value;
use tokio::time::{sleep_until, Instant};

use crate::common::fake_upstream::fixed_upstream;
use crate::common::*;

#[tokio::test]
async fn miss_then_hit_with_the_same_body_and_cache_headers() {
    let s = Stack::start(ServeArgs::default()).await;
    let miss = hydrate(&s, READY, ALPHA).await;
    assert_eq!(miss.status, 200);
    assert_eq!(miss.header("x-cache"), Some("MISS"));
    assert_eq!(miss.header("age"), None, "no age on MISS");
    let v = miss.json();
    assert_eq!(v["fileId"], READY);
    assert!(download_url(&miss).contains("X-Amz-Signature="));
    // Unknown fields are kept: the body is the upstream's.
    for k in [
        "scope",
        "fileAnalysisMetadata",
        "transcript",
        "publicPlaybackId",
    ] {
        assert!(v.get(k).is_some(), "field {k} kept");
    }
    for _ in 0..3 {
        let hit = hydrate(&s, READY, ALPHA).await;
        assert_eq!(hit.status, 200);
        assert_eq!(hit.header("x-cache"), Some("HIT"));
        assert_eq!(
            hit.body, miss.body,
            "HIT body is the MISS body byte for byte"
        );
        let age: u64 = hit.header("age").expect("age on HIT").parse().unwrap();
        assert!(age <= 1, "{age}");
        assert!(hit
            .header("content-type")
            .is_some_and(|c| c.contains("json")));
    }
    assert_eq!(s.sim.hydrate_calls(READY), 1);
    s.stop().await;
}

#[tokio::test]
async fn hydrate_body_is_the_upstream_bytes_exactly() {
    // Odd formatting, escapes and unknown fields that a re-serialisation would change.
    let exp = hydrant::clock::now_unix() + 3600.0;
    let body = format!(
        "{{ \"fileId\" : \"vg_file_x\",\n  \"zUnknown\": {{\"nested\": [1, 2.50, \"\\u00e9\"]}},\n  \
         \"downloadSource\": {{\"status\": \"ready\", \"url\": \"https://cdn.example/d?a=1&b=2\", \"expiresAt\": {exp}}}\n}}"
    );
    let (base, served) = fixed_upstream(200, body.clone()).await;
    let s = Stack::start(ServeArgs {
        upstream: Some(base),
        ..Default::default()
    })
    .await;
    let miss = hydrate(&s, "vg_file_x", ALPHA).await;
    assert_eq!(miss.status, 200);
    assert_eq!(miss.body, body.as_bytes(), "MISS is byte for byte");
    let hit = hydrate(&s, "vg_file_x", ALPHA).await;
    assert_eq!(hit.header("x-cache"), Some("HIT"));
    assert_eq!(hit.body, body.as_bytes(), "HIT is byte for byte");
    assert_eq!(served.load(Ordering::SeqCst), 1);
    s.stop().await;
}

#[tokio::test]
async fn tenants_never_share_an_entry() {
    let s = Stack::start(ServeArgs {
        client_tokens: Some(CLIENT_TOKEN.into()),
        ..Default::default()
    })
    .await;
    let a = hydrate(&s, READY, ALPHA).await;
    assert_eq!(a.status, 200);
    // BETA asks for ALPHA's file: its own upstream call, the upstream's 404, no leak.
    let b = hydrate(&s, READY, BETA).await;
    assert_eq!(b.status, 404);
    assert_eq!(s.sim.hydrate_calls(READY), 2, "BETA made its own call");
    assert_eq!(b.json()["code"], "not_found");
    assert!(!String::from_utf8_lossy(&b.body).contains("downloadSource"));
    // An unknown key is a tenant of its own too: the upstream's 401 passes through.
    let g = hydrate(&s, READY, "vg_sim_key_gamma").await;
    assert_eq!(g.status, 401);
    assert_eq!(s.sim.hydrate_calls(READY), 3);
    // The other way round: BETA's file, then ALPHA asks.
    let beta_file = "vg_file_beta_0001";
    assert_eq!(hydrate(&s, beta_file, BETA).await.status, 200);
    assert_eq!(hydrate(&s, beta_file, ALPHA).await.status, 404);
    assert_eq!(s.sim.hydrate_calls(beta_file), 2);
    // A client token uses the proxy key, so it shares the proxy key's entry.
    let t = hydrate(&s, READY, CLIENT_TOKEN).await;
    assert_eq!(t.header("x-cache"), Some("HIT"));
    assert_eq!(t.body, a.body);
    assert_eq!(s.sim.hydrate_calls(READY), 3);
    s.stop().await;
}

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
async fn long_lived_urls_make_exactly_one_upstream_call() {
    let s = Stack::start(ServeArgs::default()).await;
    s.sim.set_url_lifetime(Duration::from_secs(3600));
    for i in 0..25 {
        let r = hydrate(&s, READY, ALPHA).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("x-cache"),
            Some(if i == 0 { "MISS" } else { "HIT" })
        );
    }
    assert_eq!(s.sim.hydrate_calls(READY), 1);
    s.stop().await;
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
async fn single_flight_for_300_concurrent_misses() {
    let s = Stack::start(ServeArgs::default()).await;
    s.sim
        .push_fault(fault(FaultKind::Latency(Duration::from_millis(300))));
    let url = s.url(&format!("/v1/files/{READY}/hydrate"));
    let mut tasks = Vec::new();
    for _ in 0..300 {
        let (c, url) = (s.client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            c.post(&url, Some(ALPHA), None).await
        }));
    }
    let mut bodies = Vec::new();
    let mut misses = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200);
        if r.header("x-cache") == Some("MISS") {
            misses += 1;
        }
        bodies.push(r.body);
    }
    assert_eq!(
        s.sim.hydrate_calls(READY),
        1,
        "exactly one upstream hydrate"
    );
    assert!(bodies.iter().all(|b| *b == bodies[0]), "identical bodies");
    assert!(
        misses >= 2,
        "requests overlapped the flight ({misses} MISS)"
    );
    s.stop().await;
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
async fn archive_invalidates_the_file_for_every_tenant() {
    let s = Stack::start(ServeArgs {
        client_tokens: Some(CLIENT_TOKEN.into()),
        ..Default::default()
    })
    .await;
    assert_eq!(hydrate(&s, READY, CLIENT_TOKEN).await.status, 200);
    assert_eq!(hydrate(&s, READY, BETA).await.status, 404);
    assert_eq!(
        s.client
            .get(&s.url(&format!("/files/{READY}/redirect")), None)
            .await
            .header("x-cache"),
        Some("HIT"),
        "/files shares the client token's (proxy) tenant"
    );
    assert_eq!(
        hydrate(&s, READY, CLIENT_TOKEN).await.header("x-cache"),
        Some("HIT")
    );
    assert_eq!(hydrate(&s, READY, BETA).await.status, 404);
    assert_eq!(s.sim.hydrate_calls(READY), 2);

    let r = s
        .client
        .post(
            &s.url(&format!("/v1/files/{READY}/archive")),
            Some(CLIENT_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    // The next read of every tenant goes upstream.
    let t = hydrate(&s, READY, CLIENT_TOKEN).await;
    assert_eq!(t.status, 404, "archived upstream");
    assert_eq!(s.sim.hydrate_calls(READY), 3);
    assert_eq!(hydrate(&s, READY, BETA).await.status, 404);
    assert_eq!(s.sim.hydrate_calls(READY), 4);
    let redirect = s
        .client
        .get(&s.url(&format!("/files/{READY}/redirect")), None)
        .await;
    assert_eq!(redirect.status, 404);
    s.stop().await;
}

#[tokio::test]
async fn public_preview_toggles_invalidate_and_failed_calls_do_not() {
    let s = Stack::start(ServeArgs::default()).await;
    let first = hydrate(&s, READY, ALPHA).await;
    assert_eq!(first.json()["staticPublicPreviewSource"], Value::Null);
    // A failed call (BETA does not own the file) changes nothing.
    let failed = s
        .client
        .post(
            &s.url(&format!("/v1/files/{READY}/archive")),
            Some(BETA),
            None,
        )
        .await;
    assert_eq!(failed.status, 404);
    assert_eq!(
        hydrate(&s, READY, ALPHA).await.header("x-cache"),
        Some("HIT")
    );
    assert_eq!(s.sim.hydrate_calls(READY), 1);

    let on = s
        .client
        .post(
            &s.url(&format!("/v1/files/{READY}/enable-public-preview")),
            Some(ALPHA),
            None,
        )
        .await;
    assert_eq!(on.status, 200);
    let after = hydrate(&s, READY, ALPHA).await;
    assert_eq!(after.header("x-cache"), Some("MISS"));
    assert_eq!(after.json()["staticPublicPreviewSource"]["status"], "ready");
    assert_eq!(s.sim.hydrate_calls(READY), 2);
    let public = s
        .client
        .get(
            &s.url(&format!("/files/{READY}/redirect?rendition=public")),
            None,
        )
        .await;
    assert_eq!(public.status, 302);

    let off = s
        .client
        .post(
            &s.url(&format!("/v1/files/{READY}/disable-public-preview")),
            Some(ALPHA),
            None,
        )
        .await;
    assert_eq!(off.status, 200);
    let public = s
        .client
        .get(
            &s.url(&format!("/files/{READY}/redirect?rendition=public")),
            None,
        )
        .await;
    assert_eq!(public.status, 404, "the preview is gone");
    assert_eq!(s.sim.hydrate_calls(READY), 3);
    s.stop().await;
}

#[tokio::test]
async fn admin_purge_drops_entries() {
    let s = Stack::start(ServeArgs {
        admin_token: Some("adm_secret_1".into()),
        ..Default::default()
    })
    .await;
    let purge = |bearer: Option<&'static str>| {
        let (c, url) = (s.client.clone(), s.url(&format!("/admin/files/{READY}")));
        async move { c.send(Method::DELETE, &url, bearer, None).await }
    };
    assert_eq!(hydrate(&s, READY, ALPHA).await.status, 200);
    let wrong = purge(Some("nope")).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(purge(None).await.status, 401);
    assert_eq!(
        hydrate(&s, READY, ALPHA).await.header("x-cache"),
        Some("HIT")
    );
    let ok = purge(Some("adm_secret_1")).await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        hydrate(&s, READY, ALPHA).await.header("x-cache"),
        Some("MISS")
    );
    assert_eq!(s.sim.hydrate_calls(READY), 2);
    // Never an upstream call for the purge itself.
    assert_eq!(s.sim.stats().total_requests, 2);
    s.stop().await;
}

#[tokio::test]
async fn admin_purge_is_404_without_an_admin_token() {
    let s = Stack::start(ServeArgs::default()).await;
    assert_eq!(hydrate(&s, READY, ALPHA).await.status, 200);
    let r = s
        .client
        .send(
            Method::DELETE,
            &s.url(&format!("/admin/files/{READY}")),
            Some("anything"),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        hydrate(&s, READY, ALPHA).await.header("x-cache"),
        Some("HIT")
    );
    s.stop().await;
}

/// The hydrate answer is a HIT, made no upstream hydrate, and is the primed object's bytes.
async fn assert_primed(s: &Stack, id: &str, source_body: &[u8]) {
    let r = hydrate(s, id, ALPHA).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-cache"), Some("HIT"), "{id} primed");
    assert_eq!(s.sim.hydrate_calls(id), 0);
    assert_eq!(r.json()["fileId"], id);
    assert!(
        source_body.windows(r.body.len()).any(|w| w == r.body),
        "served the embedded object verbatim"
    );
}

#[tokio::test]
async fn list_responses_prime_the_cache() {
    let s = Stack::start(ServeArgs::default()).await;
    let list = s
        .client
        .get(&s.url("/v1/files?limit=10"), Some(ALPHA))
        .await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["files"].as_array().unwrap().len(), 10);
    assert_primed(&s, READY, &list.body).await;
    assert_primed(&s, PUBLIC, &list.body).await;
    // Not listed: a miss.
    assert_eq!(
        hydrate(&s, "vg_file_alpha_0015", ALPHA)
            .await
            .header("x-cache"),
        Some("MISS")
    );
    // Primed for the requesting tenant only.
    assert_eq!(hydrate(&s, READY, BETA).await.status, 404);
    s.stop().await;
}

#[tokio::test]
async fn search_responses_prime_the_cache() {
    let s = Stack::start(ServeArgs::default()).await;
    let found = s
        .client
        .post(
            &s.url("/v1/files/search"),
            Some(ALPHA),
            Some(br#"{"query":" #7"}"#),
        )
        .await;
    assert_eq!(found.status, 200);
    let results = found.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["file"]["fileId"], "vg_file_alpha_0007");
    assert_primed(&s, "vg_file_alpha_0007", &found.body).await;
    assert_eq!(
        hydrate(&s, "vg_file_alpha_0008", ALPHA)
            .await
            .header("x-cache"),
        Some("MISS")
    );
    s.stop().await;
}

#[tokio::test]
async fn succeeded_tool_executions_prime_the_cache() {
    let s = Stack::start(ServeArgs::default()).await;
    let started = s
        .client
        .post(
            &s.url("/v1/tools/generate-image"),
            Some(ALPHA),
            Some(br#"{"prompt":"a lighthouse"}"#),
        )
        .await;
    assert_eq!(started.status, 202);
    let exec = started.json()["toolExecutionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = s.url(&format!("/v1/tools/executions/{exec}"));
    let mut done = None;
    for _ in 0..5 {
        let r = s.client.get(&url, Some(ALPHA)).await;
        assert_eq!(r.status, 200);
        if r.json()["status"] == "succeeded" {
            done = Some(r);
            break;
        }
    }
    let done = done.expect("execution succeeded within 5 polls");
    let file_id = done.json()["results"][0]["file"]["fileId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_primed(&s, &file_id, &done.body).await;
    s.stop().await;
}

#[tokio::test]
async fn get_file_is_served_from_cache_with_the_flag() {
    let s = Stack::start(ServeArgs {
        serve_get_from_cache: Some("true".into()),
        ..Default::default()
    })
    .await;
    let h = hydrate(&s, READY, ALPHA).await;
    let g = s
        .client
        .get(&s.url(&format!("/v1/files/{READY}")), Some(ALPHA))
        .await;
    assert_eq!(g.status, 200);
    assert_eq!(g.header("x-cache"), Some("HIT"));
    assert_eq!(g.body, h.body);
    assert_eq!(s.sim.stats().get_file_calls, 0);
    // Without a fresh entry it still passes through.
    let other = s
        .client
        .get(&s.url(&format!("/v1/files/{READY5}")), Some(ALPHA))
        .await;
    assert_eq!(other.status, 200);
    assert_eq!(s.sim.stats().get_file_calls, 1);
    // Another tenant never gets ALPHA's entry.
    let b = s
        .client
        .get(&s.url(&format!("/v1/files/{READY}")), Some(BETA))
        .await;
    assert_eq!(b.status, 404);
    assert_eq!(s.sim.stats().get_file_calls, 2);
    s.stop().await;
}

#[tokio::test]
async fn get_file_passes_through_without_the_flag() {
    let s = Stack::start(ServeArgs::default()).await;
    assert_eq!(hydrate(&s, READY, ALPHA).await.status, 200);
    let g = s
        .client
        .get(&s.url(&format!("/v1/files/{READY}")), Some(ALPHA))
        .await;
    assert_eq!(g.status, 200);
    assert_ne!(g.header("x-cache"), Some("HIT"));
    assert!(
        g.json()["downloadSource"].get("url").is_none(),
        "plain view"
    );
    assert_eq!(s.sim.stats().get_file_calls, 1);
    s.stop().await;
}

#[tokio::test]
async fn sdk_access_pattern_makes_one_upstream_hydrate() {
    // The SDK's getHydratedFile: GET the file, then hydrate (its urls are absent).
    let s = Stack::start(ServeArgs::default()).await;
    let mut bodies = Vec::new();
    for _ in 0..20 {
        let g = s
            .client
            .get(&s.url(&format!("/v1/files/{READY}")), Some(ALPHA))
            .await;
        assert_eq!(g.status, 200);
        let h = hydrate(&s, READY, ALPHA).await;
        assert_eq!(h.status, 200);
        bodies.push(h.body);
    }
    assert_eq!(s.sim.hydrate_calls(READY), 1);
    assert_eq!(s.sim.stats().get_file_calls, 20);
    assert!(bodies.iter().all(|b| *b == bodies[0]));
    s.stop().await;
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

/// 1,000 concurrent first requests for one file through the
/// browser route make one upstream call between them.
#[tokio::test]
async fn cold_burst_of_1000_redirects_makes_one_upstream_call() {
    let s = Stack::start(ServeArgs::default()).await;
    s.sim
        .push_fault(fault(FaultKind::Latency(Duration::from_millis(300))));
    let url = s.url(&format!("/files/{READY}/redirect"));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (c, url) = (s.client.clone(), url.clone());
            tokio::spawn(async move { c.get(&url, None).await })
        })
        .collect();
    let mut locations = std::collections::HashSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 302);
        locations.insert(r.header("location").unwrap().to_string());
    }
    assert_eq!(
        s.sim.hydrate_calls(READY),
        1,
        "one upstream hydrate for 1,000 requests"
    );
    assert_eq!(locations.len(), 1, "everyone got the same URL");
    s.stop().await;
}
