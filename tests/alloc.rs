//! Heap allocations on the cache-hit path, counted with dhat's testing profiler.
//!
//! Budget: a cache-hit redirect inside hydrant's handler makes at most 4 allocations from
//! `Request` to `Response` (median and mean over 2,000 hits), a cache-hit hydrate at most 6
//! (median). The request is built before counting starts; the response is dropped after
//! counting stops.
//!
//! This is a test binary of its own, not a module of `tests/it`, because it installs a
//! `#[global_allocator]`: there is one per process, so in `tests/it` dhat would be the
//! allocator of every test there, and under `cargo test` (tests as threads of one process)
//! the allocations of tests running beside this one would be counted in its budget. dhat's
//! profiler is also one per process.

// Test code: a failed set-up should fail the test loudly, and these tests time real
// servers and processes on the wall clock (hydrant's paused-time rules are unit tests).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]
use std::sync::Arc;

use http::{Method, Request};
use hydrant::app::App;
use hydrant::body;
use hydrant::config::{Config, ServeArgs};
use hydrant::routes;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const FILE: &str = "vg_file_alpha_0001";

fn req(method: Method, uri: &str, bearer: bool) -> Request<body::Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if bearer {
        b = b.header("authorization", "Bearer vg_sim_key_alpha");
    }
    b.body(body::empty()).unwrap()
}

fn count(rt: &tokio::runtime::Runtime, app: &Arc<App>, r: Request<body::Body>) -> (u64, u16) {
    let before = dhat::HeapStats::get().total_blocks;
    let handled = rt.block_on(routes::handle(app, r));
    let after = dhat::HeapStats::get().total_blocks;
    let status = handled.response.status().as_u16();
    drop(handled);
    (after - before, status)
}

#[test]
fn cache_hit_allocations_are_bounded() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (app, _sim) = rt.block_on(async {
        let sim = hydrant::sim::start(Default::default(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let config = Config::resolve(ServeArgs {
            listen: Some("127.0.0.1:0".into()),
            upstream: Some(sim.base_url()),
            api_key: Some("vg_sim_key_alpha".into()),
            ..Default::default()
        })
        .unwrap();
        (App::new(config).unwrap(), sim)
    });
    let redirect_uri = format!("/files/{FILE}/redirect?rendition=preview");
    let hydrate_uri = format!("/v1/files/{FILE}/hydrate");
    // Warm the entry, the metric families and the per-thread header arena.
    for _ in 0..3 {
        count(&rt, &app, req(Method::GET, &redirect_uri, false));
        count(&rt, &app, req(Method::POST, &hydrate_uri, true));
    }
    // Steady state: most hits allocate a fixed handful; moka's amortised housekeeping runs
    // inline on an occasional read (no background threads) and allocates then.
    let rounds = 2000u64;
    let mut redirect = Vec::new();
    let mut hydrate = Vec::new();
    for _ in 0..rounds {
        let (n, status) = count(&rt, &app, req(Method::GET, &redirect_uri, false));
        assert_eq!(status, 302);
        redirect.push(n);
        let (n, status) = count(&rt, &app, req(Method::POST, &hydrate_uri, true));
        assert_eq!(status, 200);
        hydrate.push(n);
    }
    redirect.sort_unstable();
    hydrate.sort_unstable();
    let median = |v: &[u64]| v[v.len() / 2];
    let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len() as f64;
    println!(
        "allocations per hit: redirect median {} mean {:.2} max {}; hydrate median {} mean {:.2} max {}",
        median(&redirect),
        mean(&redirect),
        redirect[redirect.len() - 1],
        median(&hydrate),
        mean(&hydrate),
        hydrate[hydrate.len() - 1]
    );
    assert!(median(&redirect) <= 4, "redirect hit: {redirect:?}");
    assert!(
        mean(&redirect) <= 4.0,
        "redirect hit mean: {}",
        mean(&redirect)
    );
    assert!(median(&hydrate) <= 6, "hydrate hit: {hydrate:?}");
}
