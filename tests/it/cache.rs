//! The hydration cache through hydrant's HTTP surface, hits and misses: a HIT answers with the
//! MISS's body byte for byte (the upstream's own bytes) plus `X-Cache` and `Age`; tenants
//! (API keys) never share an entry, while a client token shares the proxy key's; concurrent
//! misses for one file make a single upstream call (single flight), for hydrate as for the
//! browser redirect route.

use std::sync::atomic::Ordering;
use std::time::Duration;

use hydrant::config::ServeArgs;
use hydrant::sim::FaultKind;

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
