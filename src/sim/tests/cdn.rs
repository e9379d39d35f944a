//! The fake CDN: signatures, expiry, content types, public previews.

use http::Method;

use super::{assert_error, sim};
use crate::sim::clock;

#[tokio::test]
async fn cdn_checks_signatures_and_expiry() {
    let s = sim().await;
    let v = s
        .post("/v1/files/vg_file_alpha_0001/hydrate", None)
        .await
        .json();
    let url = v["downloadSource"]["url"].as_str().unwrap().to_string();
    let ok = s.call(Method::GET, &url, None, None).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("content-type"), Some("video/mp4"));
    assert_eq!(
        ok.body.len() as u64,
        v["downloadSource"]["fileBytes"].as_u64().unwrap()
    );
    assert_eq!(ok.body, s.call(Method::GET, &url, None, None).await.body);
    let thumb = v["thumbnailSource"]["url"].as_str().unwrap();
    assert_eq!(
        s.call(Method::GET, thumb, None, None)
            .await
            .header("content-type"),
        Some("image/jpeg")
    );

    // Tampered: flip one hex digit of the signature.
    let mut bad = url.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == '0' { '1' } else { '0' });
    assert_error(
        &s.call(Method::GET, &bad, None, None).await,
        403,
        "forbidden",
    );
    // Signed for another rendition.
    let swapped = url.replace("/download?", "/preview?");
    assert_eq!(s.call(Method::GET, &swapped, None, None).await.status, 403);
    // Expired: a correctly signed URL whose window ended.
    let expired = s.h.shared.signer.url(
        &s.h.base_url(),
        "vg_file_alpha_0001",
        "download",
        "SIMTEST",
        clock::now_secs() - 7200,
        3600,
    );
    assert_error(
        &s.call(Method::GET, &expired, None, None).await,
        403,
        "forbidden",
    );
    // Missing parameters.
    let bare = format!("{}/cdn/vg_file_alpha_0001/download", s.h.base_url());
    assert_eq!(s.call(Method::GET, &bare, None, None).await.status, 403);

    // Public preview: no signature needed, only where enabled.
    let p = s.get("/cdn/public/vg_file_alpha_0004").await;
    assert_eq!(p.status, 200);
    assert_eq!(p.header("content-type"), Some("image/webp"));
    assert_eq!(s.get("/cdn/public/vg_file_alpha_0001").await.status, 404);
    assert_eq!(
        s.post("/v1/files/vg_file_alpha_0001/enable-public-preview", None)
            .await
            .json()["isPublicPreviewEnabled"],
        true
    );
    assert_eq!(s.get("/cdn/public/vg_file_alpha_0001").await.status, 200);
    s.post("/v1/files/vg_file_alpha_0001/disable-public-preview", None)
        .await;
    assert_eq!(s.get("/cdn/public/vg_file_alpha_0001").await.status, 404);
    assert_eq!(s.h.stats().cdn_calls, 11);
}
