//! Entries made without a hydrate call: file objects embedded in list, search and succeeded
//! tool-execution responses prime the cache for the requesting tenant, served verbatim on the
//! next hydrate; with `serve_get_from_cache`, `GET /v1/files/{id}` is answered from a fresh
//! entry of the same tenant, and passes through otherwise.

use hydrant::config::ServeArgs;

use crate::common::*;

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
