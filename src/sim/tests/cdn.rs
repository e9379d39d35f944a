//! The fake CDN: signatures, expiry, content types, public previews.

use http::Method;

use super::{assert_error, sim, ALPHA};
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

/// Hydrates a file and returns its JSON.
async fn hydrated(s: &super::Sim, id: &str) -> serde_json::Value {
    s.post(&format!("/v1/files/{id}/hydrate"), None)
        .await
        .json()
}

#[tokio::test]
async fn cdn_serves_real_media_with_matching_sizes_and_types() {
    let s = sim().await;
    let video = hydrated(&s, "vg_file_alpha_0001").await;
    let image = hydrated(&s, "vg_file_alpha_0004").await;
    for (v, rendition, ty, magic) in [
        (&video, "download", "video/mp4", &b"ftyp"[..]),
        (&video, "preview", "video/mp4", b"ftyp"),
        (&video, "thumbnail", "image/jpeg", b"\xff\xd8"),
        (&image, "download", "image/png", b"\x89PNG"),
        (&image, "preview", "image/webp", b"RIFF"),
        (&image, "thumbnail", "image/jpeg", b"\xff\xd8"),
    ] {
        let src = &v[format!("{rendition}Source")];
        let a = s
            .call(Method::GET, src["url"].as_str().unwrap(), None, None)
            .await;
        assert_eq!(a.status, 200, "{rendition}");
        assert_eq!(a.header("content-type"), Some(ty), "{rendition}");
        assert_eq!(a.header("accept-ranges"), Some("bytes"));
        assert_eq!(a.body.len() as u64, src["fileBytes"].as_u64().unwrap());
        assert_eq!(
            a.header("content-length"),
            Some(a.body.len().to_string().as_str())
        );
        let at = if magic == b"ftyp" { 4 } else { 0 };
        assert_eq!(&a.body[at..at + magic.len()], magic, "{rendition}");
    }
    assert_eq!(video["previewSource"]["width"], 1280);
    assert_eq!(video["thumbnailSource"]["height"], 360);
    assert_eq!(video["hlsSource"]["width"], 640);
    assert_eq!(image["thumbnailSource"]["width"], 256);
    // An audio file: MP3 download, Opus preview.
    let id = s.h.create_file(
        ALPHA,
        crate::sim::FileSpec {
            file_type: "AUDIO".into(),
            ..Default::default()
        },
    );
    let audio = hydrated(&s, &id).await;
    for (rendition, ty) in [("download", "audio/mpeg"), ("preview", "audio/ogg")] {
        let url = audio[format!("{rendition}Source")]["url"].as_str().unwrap();
        let a = s.call(Method::GET, url, None, None).await;
        assert_eq!(a.header("content-type"), Some(ty));
    }
}

#[tokio::test]
async fn cdn_answers_ranges() {
    let s = sim().await;
    let v = hydrated(&s, "vg_file_alpha_0001").await;
    let url = v["previewSource"]["url"].as_str().unwrap().to_string();
    let full = s.call(Method::GET, &url, None, None).await.body;
    let total = full.len();
    let get = |range: String| {
        let url = url.clone();
        let s = &s;
        async move {
            s.call_headers(Method::GET, &url, &[("range", range.as_str())])
                .await
        }
    };
    let a = get("bytes=100-199".into()).await;
    assert_eq!(a.status, 206);
    assert_eq!(a.body, full.slice(100..200));
    assert_eq!(
        a.header("content-range"),
        Some(format!("bytes 100-199/{total}").as_str())
    );
    assert_eq!(a.header("content-length"), Some("100"));
    assert_eq!(a.header("content-type"), Some("video/mp4"));
    // Open-ended and suffix ranges.
    let a = get(format!("bytes={}-", total - 10)).await;
    assert_eq!((a.status, a.body.len()), (206, 10));
    let a = get("bytes=-16".into()).await;
    assert_eq!(a.body, full.slice(total - 16..));
    // An end past the size is clamped to the last byte.
    let a = get(format!("bytes=0-{}", total * 2)).await;
    assert_eq!((a.status, a.body.len()), (206, total));
    // Starting past the end: 416 with the size.
    let a = get(format!("bytes={total}-")).await;
    assert_eq!(a.status, 416);
    assert_eq!(
        a.header("content-range"),
        Some(format!("bytes */{total}").as_str())
    );
    // Malformed or several ranges: ignored, the whole body.
    for r in ["pages=1-2", "bytes=5-1", "bytes=0-1,10-11"] {
        let a = get(r.into()).await;
        assert_eq!((a.status, a.body.len()), (200, total), "{r}");
    }
    // HEAD: the same head, no body.
    let a = s
        .call_headers(Method::HEAD, &url, &[("range", "bytes=0-9")])
        .await;
    assert_eq!(a.status, 206);
    assert_eq!(a.header("content-length"), Some("10"));
    assert!(a.body.is_empty());
    // A range never bypasses the signature.
    let expired = s.h.shared.signer.url(
        &s.h.base_url(),
        "vg_file_alpha_0001",
        "preview",
        "SIMTEST",
        clock::now_secs() - 7200,
        3600,
    );
    let a = s
        .call_headers(Method::GET, &expired, &[("range", "bytes=0-9")])
        .await;
    assert_eq!(a.status, 403);
}

#[tokio::test]
async fn hls_playlist_signs_each_segment() {
    let s = sim().await;
    let v = hydrated(&s, "vg_file_alpha_0001").await;
    let url = v["hlsSource"]["url"].as_str().unwrap().to_string();
    let p = s.call(Method::GET, &url, None, None).await;
    assert_eq!(p.status, 200);
    assert_eq!(
        p.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    let text = String::from_utf8(p.body.to_vec()).unwrap();
    assert!(text.starts_with("#EXTM3U\n") && text.ends_with("#EXT-X-ENDLIST\n"));
    let uris: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(uris.len(), 2);
    // Resolve as a browser does: against the playlist's URL without its query.
    let base = url.split_once('?').unwrap().0;
    let dir = &base[..base.rfind('/').unwrap() + 1];
    let (_, playlist_query) = url.split_once('?').unwrap();
    let expires = |q: &str| {
        q.split('&')
            .find(|kv| kv.starts_with("X-Amz-Expires="))
            .map(str::to_string)
    };
    for uri in &uris {
        assert!(uri.starts_with("hls/seg") && uri.contains("X-Amz-Signature="));
        let (_, q) = uri.split_once('?').unwrap();
        assert_ne!(q, playlist_query, "a segment carries its own signature");
        assert_eq!(
            expires(q),
            expires(playlist_query),
            "dies with its playlist"
        );
        let seg = s
            .call(Method::GET, &format!("{dir}{uri}"), None, None)
            .await;
        assert_eq!(seg.status, 200, "{uri}");
        assert_eq!(seg.header("content-type"), Some("video/mp2t"));
        assert_eq!(seg.body[0], 0x47);
        // Without its own query (what a playlist listing bare names would get): 403.
        let bare = format!("{dir}{}", uri.split_once('?').unwrap().0);
        assert_eq!(s.call(Method::GET, &bare, None, None).await.status, 403);
        // The playlist's signature does not open a segment.
        let borrowed = format!("{bare}?{playlist_query}");
        assert_eq!(s.call(Method::GET, &borrowed, None, None).await.status, 403);
    }
    // One segment's signature does not open the other.
    let q0 = uris[0].split_once('?').unwrap().1;
    let other = format!("{dir}hls/seg1.ts?{q0}");
    assert_eq!(s.call(Method::GET, &other, None, None).await.status, 403);
    let unknown = format!("{dir}hls/seg9.ts?{q0}");
    assert_eq!(s.call(Method::GET, &unknown, None, None).await.status, 404);
    // An expired playlist is refused and signs nothing.
    let expired = s.h.shared.signer.url(
        &s.h.base_url(),
        "vg_file_alpha_0001",
        "hls",
        "SIMTEST",
        clock::now_secs() - 7200,
        3600,
    );
    assert_eq!(s.call(Method::GET, &expired, None, None).await.status, 403);
}

#[tokio::test]
async fn cdn_answers_cors_like_a_bucket() {
    let s = sim().await;
    let v = hydrated(&s, "vg_file_alpha_0001").await;
    let url = v["hlsSource"]["url"].as_str().unwrap().to_string();
    let page = [("origin", "http://127.0.0.1:1")];
    let a = s.call_headers(Method::GET, &url, &page).await;
    assert_eq!(a.header("access-control-allow-origin"), Some("*"));
    let exposed = a.header("access-control-expose-headers").unwrap();
    for h in ["Content-Range", "Content-Length", "Accept-Ranges"] {
        assert!(exposed.contains(h), "{exposed}");
    }
    // Errors carry CORS too, so a player can read the 403.
    let a = s
        .call_headers(Method::GET, &url.replace("/hls?", "/preview?"), &page)
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(a.header("access-control-allow-origin"), Some("*"));
    // No Origin, no CORS headers.
    let a = s.call_headers(Method::GET, &url, &[]).await;
    assert_eq!(a.header("access-control-allow-origin"), None);
    // A preflight for a Range request.
    let a = s
        .call_headers(
            Method::OPTIONS,
            &url,
            &[
                ("origin", "http://127.0.0.1:1"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "range"),
            ],
        )
        .await;
    assert_eq!(a.status, 204);
    assert_eq!(a.header("access-control-allow-headers"), Some("range"));
    assert_eq!(a.header("access-control-allow-methods"), Some("GET, HEAD"));
    assert_eq!(a.header("access-control-allow-origin"), Some("*"));

    // A bucket allowing listed origins only: echoes a listed one, ignores others.
    let s = super::sim_with(crate::sim::SimConfig {
        cdn_cors_origins: vec!["http://app.test".into()],
        ..Default::default()
    })
    .await;
    let v = hydrated(&s, "vg_file_alpha_0001").await;
    let url = v["thumbnailSource"]["url"].as_str().unwrap().to_string();
    let a = s
        .call_headers(Method::GET, &url, &[("origin", "http://app.test")])
        .await;
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("http://app.test")
    );
    assert_eq!(a.header("vary"), Some("Origin"));
    let a = s
        .call_headers(Method::GET, &url, &[("origin", "http://evil.test")])
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("access-control-allow-origin"), None);
    let a = s
        .call_headers(
            Method::OPTIONS,
            &url,
            &[
                ("origin", "http://evil.test"),
                ("access-control-request-headers", "range"),
            ],
        )
        .await;
    assert_eq!(a.header("access-control-allow-methods"), None);
}
