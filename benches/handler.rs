//! Micro-benchmarks of hydrant's hot paths (criterion).
//!
//! * `redirect_hit` / `hydrate_hit`: `routes::handle` from `Request` to `Response` for a cached
//!   file (the simulator fills the cache once, before measuring).
//! * `ttl_derivation`: parsing a realistic StorageFile and deriving its freshness and entry.
//! * `signed_url_verify`, `webhook_verify`: the two HMAC checks on request paths.

// A benchmark harness, not a request path: failing loudly on a broken set-up is right.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue, Method, Request};
use hydrant::app::App;
use hydrant::body;
use hydrant::config::{Config, ServeArgs};
use hydrant::hydration::entry::Entry;
use hydrant::hydration::file::FileView;
use hydrant::hydration::policy::{self, Policy};
use hydrant::routes;

const FILE: &str = "vg_file_alpha_0001";

fn setup(rt: &tokio::runtime::Runtime) -> (Arc<App>, hydrant::sim::SimHandle) {
    rt.block_on(async {
        let sim = hydrant::sim::start(Default::default(), "127.0.0.1:0".parse().unwrap())
            .await
            .expect("simulator");
        let config = Config::resolve(ServeArgs {
            listen: Some("127.0.0.1:0".into()),
            upstream: Some(sim.base_url()),
            api_key: Some("vg_sim_key_alpha".into()),
            ..Default::default()
        })
        .expect("config");
        let app = App::new(config).expect("app");
        (app, sim)
    })
}

fn redirect_req() -> Request<body::Body> {
    Request::builder()
        .method(Method::GET)
        .uri(format!("/files/{FILE}/redirect?rendition=preview"))
        .body(body::empty())
        .expect("request")
}

fn hydrate_req() -> Request<body::Body> {
    Request::builder()
        .method(Method::POST)
        .uri(format!("/v1/files/{FILE}/hydrate"))
        .header("authorization", "Bearer vg_sim_key_alpha")
        .body(body::empty())
        .expect("request")
}

fn hot_paths(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (app, _sim) = setup(&rt);
    // Warm: one miss fills the entry.
    let warm = rt.block_on(routes::handle(&app, redirect_req()));
    assert_eq!(warm.response.status(), 302);
    let warm = rt.block_on(routes::handle(&app, hydrate_req()));
    assert_eq!(warm.response.status(), 200);

    c.bench_function("redirect_hit", |b| {
        b.to_async(&rt).iter_batched(
            redirect_req,
            |req| {
                let app = app.clone();
                async move { black_box(routes::handle(&app, req).await) }
            },
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("hydrate_hit", |b| {
        b.to_async(&rt).iter_batched(
            hydrate_req,
            |req| {
                let app = app.clone();
                async move { black_box(routes::handle(&app, req).await) }
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

/// A realistic ~1.5 KB StorageFile as the upstream sends it.
pub fn storage_file(now: f64) -> Bytes {
    let url = |r: &str| {
        format!("https://media.videogen.example/vg_file_abc/{r}.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261123%2Fauto%2Fs3%2Faws4_request&X-Amz-Date=20261123T120000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    };
    Bytes::from(format!(
        r#"{{"fileId":"vg_file_abc","type":"VIDEO","scope":"GLOBAL","displayName":"Intro","description":null,"durationSeconds":12.5,"transcript":null,"isPublicPreviewEnabled":false,"staticPublicPreviewSource":null,"publicPlaybackId":null,"sourceToolType":null,"sourceToolExecutionId":null,"fileAnalysisMetadata":null,
"thumbnailSource":{{"status":"ready","url":"{}","expiresAt":{e},"width":640,"height":360,"fileBytes":20480}},
"previewSource":{{"status":"ready","url":"{}","expiresAt":{e},"width":1280,"height":720,"fileBytes":2048000}},
"downloadSource":{{"status":"ready","url":"{}","expiresAt":{e},"width":1920,"height":1080,"fileBytes":9048000}},
"hlsSource":{{"status":"skipped","url":"","expiresAt":0}}}}"#,
        url("thumbnail"),
        url("preview"),
        url("download"),
        e = now + 3600.0
    ))
}

fn pure(c: &mut Criterion) {
    let now = 1_795_000_000.0;
    let body = storage_file(now);
    let p = Policy::default();
    c.bench_function("ttl_derivation", |b| {
        b.iter(|| {
            let view = FileView::parse(black_box(&body)).expect("parses");
            black_box(policy::freshness(&view, now, &p))
        })
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _enter = rt.enter();
    c.bench_function("entry_build", |b| {
        b.iter(|| {
            black_box(Entry::hydrated(
                &body,
                HeaderValue::from_static("application/json"),
                tokio::time::Instant::now(),
                &p,
                false,
            ))
        })
    });

    let signer =
        hydrant::signing::Signer::new(vec!["k-new".into(), "k-old".into()]).expect("signer");
    let exp = 4_000_000_000u64;
    let sig = signer.sign(FILE, exp);
    let exp_s = exp.to_string();
    c.bench_function("signed_url_verify", |b| {
        b.iter(|| black_box(signer.verify(FILE, Some(&exp_s), Some(&sig), 1_795_000_000)))
    });

    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let verifier =
        hydrant::webhooks::verify::WebhookVerifier::new(&[secret.to_string()]).expect("verifier");
    let payload = format!(
        r#"{{"event":"file.download_ready","fileId":"vg_file_abc","occurredAt":"2026-11-23T12:00:00Z","file":{}}}"#,
        String::from_utf8_lossy(&body)
    );
    let ts = 1_795_000_000i64;
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", HeaderValue::from_static("msg_2Kc8Wq"));
    headers.insert(
        "webhook-timestamp",
        HeaderValue::from_str(&ts.to_string()).expect("ts"),
    );
    headers.insert(
        "webhook-signature",
        HeaderValue::from_str(&hydrant::webhooks::verify::sign(
            secret,
            "msg_2Kc8Wq",
            ts,
            payload.as_bytes(),
        ))
        .expect("sig"),
    );
    c.bench_function("webhook_verify", |b| {
        b.iter(|| black_box(verifier.verify(&headers, payload.as_bytes(), ts)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = hot_paths, pure
}
criterion_main!(benches);
