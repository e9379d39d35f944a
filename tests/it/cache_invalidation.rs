//! What drops cached hydrations: a successful archive drops the file for every tenant, a
//! public preview toggle drops it so the next read shows the change, and a failed call
//! changes nothing; `DELETE /admin/files/{id}` with the admin token purges an entry, and is
//! a 404 when no admin token is configured.

use http::Method;
use hydrant::config::ServeArgs;
use serde_json::Value;

use crate::common::*;

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
