//! The frontend routes, `/files/{id}/redirect` and `/files/{id}`: a redirect to the current
//! URL of each rendition with a `Cache-Control` that never outlives it, `HEAD` without a body,
//! a pending rendition as 503 with `Retry-After`, failed, skipped and absent renditions as
//! 404, bad ids and renditions as 400 before any upstream call, and a JSON view that names
//! hydrant's own URLs and never the upstream's. With signing keys, both routes need a valid
//! signed link (`exp`, `sig`), and any configured key verifies.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::Method;
use hydrant::config::ServeArgs;
use sha2::Sha256;

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
    // The view is rendered once per entry; each request still gets its own exp and sig, and
    // none of another request's.
    let sig1 = sign("k1", READY, exp + 60);
    let again = s
        .client
        .get(
            &s.url(&format!("/files/{READY}?exp={}&sig={sig1}", exp + 60)),
            None,
        )
        .await;
    assert_eq!(again.status, 200);
    let text = String::from_utf8_lossy(&again.body).to_string();
    assert!(!text.contains(&sig), "{text}");
    assert_eq!(text.matches(&format!("&sig={sig1}")).count(), 4, "{text}");
    let v2 = again.json();
    for name in ["download", "preview", "thumbnail", "hls"] {
        let url = v2["renditions"][name]["url"].as_str().unwrap();
        assert_eq!(
            url,
            format!(
                "{PUBLIC_URL}/files/{READY}/redirect?rendition={name}&exp={}&sig={sig1}",
                exp + 60
            )
        );
    }
    assert_eq!(v2["displayName"], v["displayName"]);
    s.stop().await;
}
