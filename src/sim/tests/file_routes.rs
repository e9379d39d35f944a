//! Per-file routes: GET vs. hydrate shapes, seeded statuses, runtime changes through the
//! handle.

use serde_json::{json, Value};
use std::time::Duration;

use super::{sim, ALPHA};
use crate::sim::{clock, FileSpec};

#[tokio::test]
async fn get_has_no_urls_hydrate_has_fresh_ones() {
    let s = sim().await;
    let g = s.get("/v1/files/vg_file_alpha_0001").await;
    assert_eq!(g.status, 200);
    assert_eq!(g.header("content-type"), Some("application/json"));
    let v = g.json();
    for r in ["download", "preview", "thumbnail", "hls"] {
        let src = &v[format!("{r}Source")];
        assert_eq!(src["status"], "ready");
        assert!(src.get("url").is_none() && src.get("expiresAt").is_none());
    }
    assert!(v.get("downloadUrl").is_none() && v.get("thumbnailUrl").is_none());
    assert_eq!(v["scope"], "GLOBAL");
    assert_eq!(v["staticPublicPreviewSource"], Value::Null);

    let before = clock::now_f64();
    let h1 = s.post("/v1/files/vg_file_alpha_0001/hydrate", None).await;
    let h2 = s.post("/v1/files/vg_file_alpha_0001/hydrate", None).await;
    assert_eq!(h1.status, 200);
    assert!(
        (1000..2600).contains(&h1.body.len()),
        "hydrated body is {} bytes",
        h1.body.len()
    );
    assert_ne!(h1.header("x-request-id"), h2.header("x-request-id"));
    let (v1, v2) = (h1.json(), h2.json());
    for r in ["download", "preview", "thumbnail", "hls"] {
        let (a, b) = (&v1[format!("{r}Source")], &v2[format!("{r}Source")]);
        let url = a["url"].as_str().unwrap();
        assert!(url.starts_with(&format!(
            "{}/cdn/vg_file_alpha_0001/{r}?X-Amz-Algorithm=AWS4-HMAC-SHA256",
            s.h.base_url()
        )));
        assert!(
            url.contains("&X-Amz-Date=")
                && url.contains("&X-Amz-Expires=")
                && url.contains("&X-Amz-Signature=")
        );
        assert_ne!(a["url"], b["url"]);
        let exp = a["expiresAt"].as_f64().unwrap();
        assert!(exp >= before + 3599.0 && exp <= clock::now_f64() + 3601.0);
    }
    assert_eq!(v1["downloadUrl"], v1["downloadSource"]["url"]);
    assert_eq!(
        v1["thumbnailUrlExpiresAt"],
        v1["thumbnailSource"]["expiresAt"]
    );
    assert_eq!(v1["downloadSource"]["width"], 1920);
    assert_eq!(s.h.hydrate_calls("vg_file_alpha_0001"), 2);
    assert_eq!(s.h.stats().hydrate_calls, 2);
    assert_eq!(s.h.stats().get_file_calls, 1);
    assert_eq!(s.h.stats().by_route["POST /v1/files/{id}/hydrate"], 2);

    let p = s
        .post("/v1/files/vg_file_alpha_0002/hydrate", None)
        .await
        .json();
    assert_eq!(p["previewSource"], json!({"status": "pending"}));
    let f = s
        .post("/v1/files/vg_file_alpha_0003/hydrate", None)
        .await
        .json();
    assert_eq!(
        f["hlsSource"],
        json!({"status": "skipped", "url": "", "expiresAt": 0})
    );
    assert_eq!(f["downloadSource"], json!({"status": "failed"}));
    assert_eq!(f["downloadUrl"], Value::Null);
    let i = s.get("/v1/files/vg_file_alpha_0004").await.json();
    assert_eq!(i["type"], "IMAGE");
    assert_eq!(i["isPublicPreviewEnabled"], true);
    assert_eq!(i["staticPublicPreviewSource"]["status"], "ready");
    assert_eq!(i["staticPublicPreviewSource"]["expiresAt"], Value::Null);
    assert!(i["staticPublicPreviewSource"]["url"]
        .as_str()
        .unwrap()
        .ends_with("/cdn/public/vg_file_alpha_0004"));

    // Runtime changes.
    assert!(s.h.set_status("vg_file_alpha_0002", "preview", "ready"));
    assert!(!s.h.set_status("vg_file_alpha_0002", "preview", "bogus"));
    s.h.set_url_lifetime(Duration::from_secs(60));
    let p = s
        .post("/v1/files/vg_file_alpha_0002/hydrate", None)
        .await
        .json();
    let exp = p["previewSource"]["expiresAt"].as_f64().unwrap();
    assert!(exp < clock::now_f64() + 61.0);
    let id = s.h.create_file(
        ALPHA,
        FileSpec {
            file_type: "AUDIO".into(),
            display_name: "Podcast".into(),
            ..FileSpec::default()
        },
    );
    assert_eq!(id, "vg_file_alpha_0021");
    assert_eq!(
        s.get(&format!("/v1/files/{id}")).await.json()["type"],
        "AUDIO"
    );
    assert_eq!(s.h.create_file("vg_unknown", FileSpec::default()), "");
}

#[tokio::test]
async fn seed_skipped_shrinks_seeded_bodies_from_the_fifth_file() {
    let s = super::sim_with(crate::sim::SimConfig {
        seed_skipped: vec!["preview".into(), "hls".into()],
        seed_description_bytes: 40,
        ..crate::sim::SimConfig::default()
    })
    .await;
    let full = s.post("/v1/files/vg_file_alpha_0001/hydrate", None).await;
    let lean = s.post("/v1/files/vg_file_alpha_0005/hydrate", None).await;
    assert_eq!((full.status, lean.status), (200, 200));
    let (f, l) = (full.json(), lean.json());
    assert_eq!(f["previewSource"]["status"], "ready");
    for r in ["preview", "hls"] {
        assert_eq!(l[format!("{r}Source")]["status"], "skipped");
        assert_eq!(l[format!("{r}Source")]["url"], "");
    }
    for r in ["download", "thumbnail"] {
        assert_eq!(l[format!("{r}Source")]["status"], "ready");
    }
    assert_eq!(f["description"], serde_json::Value::Null);
    assert_eq!(l["description"].as_str().map(str::len), Some(40));
    assert!(
        lean.body.len() + 400 < full.body.len(),
        "{} vs {} bytes",
        lean.body.len(),
        full.body.len()
    );
}
