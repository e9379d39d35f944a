//! Cluster mode against a real `redis-server`: several hydrant replicas (in-process, each its
//! own `App` and listener) share one Redis and one simulator, and every promise of one
//! process holds for all of them: one upstream hydrate per file, single flight across
//! replicas, the quota, invalidation fan-out, webhook exactly-once, and no request failing
//! when Redis is refusing, stopped, restarted empty or its subscription is killed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hydrant::app::App;
use hydrant::config::{Config, ServeArgs};
use hydrant::server::Running;
use hydrant::sim::{self, SimConfig, SimHandle, DEFAULT_WEBHOOK_SECRET};
use hydrant::webhooks::verify::sign;

use crate::common::redis::RedisServer;
use crate::common::*;

/// Several replicas on one Redis and one simulator.
struct Replicas {
    sim: SimHandle,
    redis: RedisServer,
    nodes: Vec<(Arc<App>, Running)>,
    client: HttpClient,
}

impl Replicas {
    async fn start(n: usize, args: ServeArgs) -> Replicas {
        let redis = RedisServer::start();
        let sim = sim::start(SimConfig::default(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut nodes = Vec::new();
        for _ in 0..n {
            let config = Config::resolve(ServeArgs {
                listen: Some("127.0.0.1:0".into()),
                upstream: Some(sim.base_url()),
                api_key: Some(ALPHA.into()),
                redis_url: Some(redis.url()),
                redis_prefix: Some("it:".into()),
                ..args.clone()
            })
            .unwrap();
            let app = App::new(config).unwrap();
            let running = Running::start(app.clone(), "127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            nodes.push((app, running));
        }
        let r = Replicas {
            sim,
            redis,
            nodes,
            client: HttpClient::new(),
        };
        r.wait_redis_up(true).await;
        r
    }

    fn url(&self, i: usize, path: &str) -> String {
        format!("{}{}", self.nodes[i].1.url(), path)
    }

    async fn metric(&self, i: usize, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let text = self.client.get(&self.url(i, "/metrics"), None).await;
        metric(&String::from_utf8_lossy(&text.body), name, labels)
    }

    /// Every replica reports `hydrant_redis_up` as `up` (within 5 s).
    async fn wait_redis_up(&self, up: bool) {
        let want = if up { 1.0 } else { 0.0 };
        let end = Instant::now() + Duration::from_secs(6);
        for i in 0..self.nodes.len() {
            loop {
                if self.metric(i, "hydrant_redis_up", &[]).await == Some(want) {
                    break;
                }
                assert!(
                    Instant::now() < end,
                    "replica {i}: hydrant_redis_up never became {want}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    async fn redirect(&self, i: usize, id: &str) -> Resp {
        self.client
            .get(&self.url(i, &format!("/files/{id}/redirect")), None)
            .await
    }

    /// `POST /v1/files/{id}/hydrate` on replica `i` with `key`.
    async fn hydrate(&self, i: usize, id: &str, key: &str) -> Resp {
        self.client
            .post(
                &self.url(i, &format!("/v1/files/{id}/hydrate")),
                Some(key),
                None,
            )
            .await
    }

    /// Redirects on replica `i` until one is a `HIT` (the shared write is asynchronous and
    /// lands within moments; a Redis that was just marked down takes up to a probe interval),
    /// at most 3 s; every answer must be a 302. Returns the hit.
    async fn until_hit(&self, i: usize, id: &str) -> Resp {
        for _ in 0..60 {
            let r = self.redirect(i, id).await;
            assert_eq!(r.status, 302);
            if r.header("x-cache") == Some("HIT") {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("replica {i} never answered {id} from cache");
    }

    /// A signed delivery of `body` as `webhook-id: id` to replica `i`.
    async fn deliver(&self, i: usize, id: &str, body: &[u8]) -> Resp {
        let ts = (wall_unix() as i64).to_string();
        let sig = sign(DEFAULT_WEBHOOK_SECRET, id, ts.parse().unwrap(), body);
        self.client
            .send_with(
                http::Method::POST,
                &self.url(i, "/webhooks/videogen"),
                None,
                Some(body),
                &[
                    ("webhook-id", id),
                    ("webhook-timestamp", &ts),
                    ("webhook-signature", &sig),
                ],
            )
            .await
    }
}

#[tokio::test]
async fn a_file_hydrated_by_one_replica_is_a_hit_on_the_others() {
    let c = Replicas::start(3, ServeArgs::default()).await;
    assert_eq!(c.redirect(0, READY).await.header("x-cache"), Some("MISS"));
    for i in [1, 2] {
        let r = c.until_hit(i, READY).await;
        assert!(r.header("age").is_some(), "age from the original fetch");
    }
    assert_eq!(
        c.sim.hydrate_calls(READY),
        1,
        "one upstream hydrate for the cluster"
    );
}

#[tokio::test]
async fn concurrent_misses_on_three_replicas_make_one_upstream_call() {
    let c = Replicas::start(3, ServeArgs::default()).await;
    let c = Arc::new(c);
    let mut tasks = Vec::new();
    for n in 0..60usize {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.redirect(n % 3, READY5).await.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 302);
    }
    assert_eq!(c.sim.hydrate_calls(READY5), 1);
}

#[tokio::test]
async fn an_archive_through_one_replica_drops_the_file_on_every_replica() {
    let c = Replicas::start(2, ServeArgs::default()).await;
    assert_eq!(c.redirect(0, READY).await.status, 302);
    assert_eq!(c.redirect(0, READY).await.header("x-cache"), Some("HIT"));
    let r = c
        .client
        .post(
            &c.url(1, &format!("/v1/files/{READY}/archive")),
            Some(ALPHA),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    // Replica 0 learns of it through pub/sub within 250 ms: no HIT on the old state.
    let end = Instant::now() + Duration::from_millis(250);
    let mut dropped = false;
    while Instant::now() < end {
        let e = c.app_entries(0).await;
        if e == Some(0.0) {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        dropped,
        "replica 0 still holds the archived file after 250 ms"
    );
    let after = c.redirect(0, READY).await;
    assert_ne!(after.header("x-cache"), Some("HIT"));
}

impl Replicas {
    async fn app_entries(&self, i: usize) -> Option<f64> {
        self.metric(i, "hydrant_cache_entries", &[]).await
    }
}

#[tokio::test]
async fn the_hydrate_quota_is_for_the_whole_cluster() {
    let c = Replicas::start(
        3,
        ServeArgs {
            hydrate_rate: Some("3/h".into()),
            hydrate_burst: Some("3".into()),
            hydrate_max_wait: Some("100ms".into()),
            ..Default::default()
        },
    )
    .await;
    let files = [READY, READY5, READY6, PENDING];
    let mut statuses = Vec::new();
    for (i, id) in files.iter().enumerate() {
        let r = c.hydrate(i % 3, id, ALPHA).await;
        statuses.push(r.status);
        if r.status == 429 {
            assert_error(&r, 429, "rate_limited");
            assert_eq!(r.header("x-hydrant-reason"), Some("limiter_saturated"));
        }
    }
    assert_eq!(
        statuses,
        vec![200, 200, 200, 429],
        "3 per hour for the cluster"
    );
    assert_eq!(c.sim.stats().hydrate_calls, 3);
}

#[tokio::test]
async fn a_webhook_redelivered_to_another_replica_is_relayed_once() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let forward = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = webhook_receiver::start(listener).await;
    let c = Replicas::start(
        2,
        ServeArgs {
            webhook_secret: Some(DEFAULT_WEBHOOK_SECRET.into()),
            webhook_forward: Some(forward),
            ..Default::default()
        },
    )
    .await;
    let body = br#"{"event":"tool_execution.succeeded","executionId":"vg_exec_1"}"#;
    let mut answers = Vec::new();
    for i in [0, 1, 1, 0] {
        let r = c.deliver(i, "msg_cluster_1", body).await;
        answers.push((
            r.status.as_u16(),
            r.json()["duplicate"].as_bool().unwrap_or(false),
        ));
    }
    assert_eq!(
        answers,
        vec![(200, false), (200, true), (200, true), (200, true)]
    );
    assert_eq!(seen.acked.lock().unwrap().len(), 1, "relayed exactly once");
}

#[tokio::test]
async fn no_secret_is_ever_written_to_redis() {
    let c = Replicas::start(
        2,
        ServeArgs {
            webhook_secret: Some(DEFAULT_WEBHOOK_SECRET.into()),
            signing_keys: None,
            admin_token: Some("adm_very_secret_token".into()),
            client_tokens: Some(CLIENT_TOKEN.into()),
            ..Default::default()
        },
    )
    .await;
    for (i, id) in [READY, READY5, PENDING].iter().enumerate() {
        c.redirect(i % 2, id).await;
        c.hydrate(i % 2, id, CLIENT_TOKEN).await;
    }
    c.client
        .send_with(
            http::Method::DELETE,
            &c.url(0, &format!("/admin/files/{READY}")),
            Some("adm_very_secret_token"),
            None,
            &[],
        )
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dump = c.redis.dump_all();
    assert!(!dump.is_empty(), "cluster mode wrote nothing to Redis");
    for (key, value) in &dump {
        let value = String::from_utf8_lossy(value);
        assert!(key.starts_with("it:"), "key outside the prefix: {key}");
        for secret in [
            ALPHA,
            CLIENT_TOKEN,
            "adm_very_secret_token",
            DEFAULT_WEBHOOK_SECRET,
            "aHlkcmFudC1zaW0td2ViaG9vay1zZWNyZXQ",
        ] {
            assert!(
                !key.contains(secret) && !value.contains(secret),
                "{key} holds a secret"
            );
        }
    }
}

#[tokio::test]
async fn redis_down_fails_no_request_and_sharing_resumes() {
    let mut c = Replicas::start(2, ServeArgs::default()).await;
    assert_eq!(c.redirect(0, READY).await.status, 302);
    c.redis.kill();
    for i in 0..2 {
        for id in [READY, READY5] {
            assert_eq!(c.redirect(i, id).await.status, 302, "replica {i} {id}");
        }
        let h = c.client.get(&c.url(i, "/healthz"), None).await;
        assert_eq!(h.status, 200);
        let r = c.client.get(&c.url(i, "/readyz"), None).await;
        assert_eq!(r.status, 200);
    }
    c.wait_redis_up(false).await;
    c.redis.restart();
    c.wait_redis_up(true).await;
    // Sharing again: a file first hydrated by replica 1 now is a hit on replica 0.
    assert_eq!(c.redirect(1, READY6).await.header("x-cache"), Some("MISS"));
    c.until_hit(0, READY6).await;
    assert_eq!(c.sim.hydrate_calls(READY6), 1);
}

#[tokio::test]
async fn a_stopped_redis_costs_a_request_at_most_the_timeout() {
    let mut c = Replicas::start(1, ServeArgs::default()).await;
    c.redis.pause();
    let t = Instant::now();
    let r = c.redirect(0, READY).await;
    let took = t.elapsed();
    assert_eq!(r.status, 302);
    // 100 ms of Redis budget plus the simulator's own hydrate; far below a second.
    assert!(took < Duration::from_millis(900), "took {took:?}");
    // Once marked down, later requests do not wait on Redis at all.
    let t = Instant::now();
    assert_eq!(c.redirect(0, READY5).await.status, 302);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    c.redis.resume();
    c.wait_redis_up(true).await;
}

#[tokio::test]
async fn a_killed_subscription_drops_the_replicas_memory() {
    let c = Replicas::start(1, ServeArgs::default()).await;
    assert_eq!(c.redirect(0, READY).await.status, 302);
    assert_eq!(c.app_entries(0).await, Some(1.0));
    assert!(c.redis.client_kill_pubsub() >= 1);
    let end = Instant::now() + Duration::from_secs(5);
    while c.app_entries(0).await != Some(0.0) {
        assert!(
            Instant::now() < end,
            "memory kept after a lost subscription"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Served again, from the shared tier: no new upstream call.
    let r = c.redirect(0, READY).await;
    assert_eq!(r.status, 302);
    assert_eq!(c.sim.hydrate_calls(READY), 1);
}

#[tokio::test]
async fn a_script_flush_is_survived() {
    let c = Replicas::start(2, ServeArgs::default()).await;
    assert_eq!(c.redirect(0, READY).await.status, 302);
    c.redis.script_flush();
    assert_eq!(c.redirect(1, READY5).await.status, 302);
    assert_eq!(c.redirect(0, READY6).await.status, 302);
    // Sharing goes on: the scripts are reloaded on NOSCRIPT.
    c.until_hit(1, READY6).await;
    assert_eq!(c.sim.hydrate_calls(READY6), 1);
}

/// The hash tag hydrant uses for `ALPHA`'s keys: 128 bits of SHA-256 of the key, in hex.
fn alpha_tag() -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(ALPHA.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_dead_holders_lease_lapses_and_another_replica_takes_over() {
    let c = Replicas::start(1, ServeArgs::default()).await;
    // A replica that took the lease and died: nobody renews it.
    let lease = format!("it:{{{}}}:l:{READY}", alpha_tag());
    c.redis
        .command(&["SET", &lease, "dead:replica", "PX", "5000"]);
    assert!(c.redis.get(&lease).is_some());
    let t = Instant::now();
    let r = c.redirect(0, READY).await;
    let took = t.elapsed();
    assert_eq!(r.status, 302);
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(7),
        "waited {took:?} for the lease to lapse"
    );
    assert_eq!(c.sim.hydrate_calls(READY), 1);
}

#[tokio::test]
async fn a_slow_fill_keeps_its_lease_and_the_others_wait_for_it() {
    let c = Replicas::start(2, ServeArgs::default()).await;
    // The upstream takes 6.5 s: longer than a lease lives unless renewed.
    c.sim.push_fault(hydrant::sim::Fault {
        route: hydrant::sim::FaultRoute::Hydrate,
        kind: hydrant::sim::FaultKind::Latency(Duration::from_millis(6500)),
        count: 1,
    });
    let c = Arc::new(c);
    let first = {
        let c = c.clone();
        tokio::spawn(async move { c.redirect(0, READY).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = c.redirect(1, READY).await;
    assert_eq!(first.await.unwrap().status, 302);
    assert_eq!(second.status, 302);
    assert_eq!(
        c.sim.hydrate_calls(READY),
        1,
        "the lease was renewed: no second fill"
    );
}

#[tokio::test]
async fn hits_from_the_shared_tier_are_counted_as_l2() {
    let c = Replicas::start(2, ServeArgs::default()).await;
    assert_eq!(c.redirect(0, READY).await.status, 302);
    // Until replica 0's write lands, replica 1 would wait on its lease (a coalesced MISS).
    let end = Instant::now() + Duration::from_secs(2);
    while c.redis.keys("it:{*}:e:*").is_empty() {
        assert!(Instant::now() < end, "replica 0 never wrote to Redis");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(c.redirect(1, READY).await.header("x-cache"), Some("HIT"));
    assert_eq!(c.redirect(1, READY).await.header("x-cache"), Some("HIT"));
    let l2 = c
        .metric(
            1,
            "hydrant_cache_lookups_total",
            &[("outcome", "hit"), ("tier", "l2")],
        )
        .await;
    let l1 = c
        .metric(
            1,
            "hydrant_cache_lookups_total",
            &[("outcome", "hit"), ("tier", "l1")],
        )
        .await;
    assert_eq!(l2, Some(1.0));
    assert!(l1.unwrap_or(0.0) >= 1.0);
}

#[tokio::test]
async fn an_upstream_429_on_one_replica_pauses_the_tenant_on_all() {
    let c = Replicas::start(2, ServeArgs::default()).await;
    c.sim.push_fault(hydrant::sim::Fault {
        route: hydrant::sim::FaultRoute::Hydrate,
        kind: hydrant::sim::FaultKind::RateLimited {
            retry_after: Some(30),
        },
        count: 1,
    });
    let r = c.hydrate(0, READY, ALPHA).await;
    assert_eq!(r.status, 429, "the upstream's own 429 passes");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = c.sim.stats().hydrate_calls;
    let r = c.hydrate(1, READY5, ALPHA).await;
    assert_own_paused(&r);
    assert_eq!(
        c.sim.stats().hydrate_calls,
        before,
        "replica 1 made no upstream call"
    );
}

fn assert_own_paused(r: &Resp) {
    assert_error(r, 429, "rate_limited");
    assert_eq!(r.header("x-hydrant-reason"), Some("upstream_paused"));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((25..=30).contains(&retry), "{retry}");
}

#[tokio::test]
async fn an_admin_purge_through_one_replica_drops_the_file_everywhere() {
    let c = Replicas::start(
        2,
        ServeArgs {
            admin_token: Some("adm_tok".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(c.redirect(0, READY).await.status, 302);
    assert_eq!(c.redirect(0, READY).await.header("x-cache"), Some("HIT"));
    let r = c
        .client
        .send_with(
            http::Method::DELETE,
            &c.url(1, &format!("/admin/files/{READY}")),
            Some("adm_tok"),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    let end = Instant::now() + Duration::from_millis(250);
    while c.app_entries(0).await != Some(0.0) {
        assert!(Instant::now() < end, "replica 0 kept the purged file");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Gone from Redis too: the next read anywhere goes upstream once.
    assert_eq!(c.redirect(1, READY).await.header("x-cache"), Some("MISS"));
    assert_eq!(c.sim.hydrate_calls(READY), 2);
}

#[tokio::test]
async fn stale_from_the_shared_tier_is_served_on_upstream_failure() {
    let c = Replicas::start(2, ServeArgs::default()).await;
    // URLs live 65 s: fresh for 5 s (60 s margin), servable stale until they expire.
    c.sim.set_url_lifetime(Duration::from_secs(65));
    assert_eq!(c.redirect(0, READY).await.status, 302);
    tokio::time::sleep(Duration::from_millis(5_300)).await;
    c.sim.push_fault(hydrant::sim::Fault {
        route: hydrant::sim::FaultRoute::Hydrate,
        kind: hydrant::sim::FaultKind::Status(503),
        count: 5,
    });
    // Replica 1 never held the file: the stale copy comes from Redis.
    let r = c.redirect(1, READY).await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("x-cache"), Some("STALE"));
}

#[tokio::test]
async fn one_refresh_for_the_cluster_and_the_others_take_its_result() {
    let c = Replicas::start(2, ServeArgs::default()).await;
    // Fresh for 5 s; reads in the last second refresh ahead.
    c.sim.set_url_lifetime(Duration::from_secs(65));
    assert_eq!(c.redirect(0, READY).await.status, 302);
    c.until_hit(1, READY).await;
    tokio::time::sleep(Duration::from_millis(4_200)).await;
    assert_eq!(c.redirect(0, READY).await.status, 302); // starts the refresh
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(c.redirect(1, READY).await.status, 302); // finds the refreshed entry
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        c.sim.hydrate_calls(READY),
        2,
        "one fetch, one refresh, cluster-wide"
    );
    // Past the first entry's freshness, both replicas still hit without upstream calls.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    for i in 0..2 {
        assert_eq!(c.redirect(i, READY).await.header("x-cache"), Some("HIT"));
    }
    assert_eq!(c.sim.hydrate_calls(READY), 2);
}

#[tokio::test]
async fn without_redis_each_replica_takes_its_share_of_the_quota() {
    let mut c = Replicas::start(
        2,
        ServeArgs {
            hydrate_rate: Some("4/h".into()),
            hydrate_burst: Some("4".into()),
            hydrate_max_wait: Some("100ms".into()),
            ..Default::default()
        },
    )
    .await;
    // Both replicas have seen each other alive.
    let end = Instant::now() + Duration::from_secs(5);
    while c.metric(0, "hydrant_cluster_replicas", &[]).await != Some(2.0) {
        assert!(Instant::now() < end);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.redis.kill();
    c.wait_redis_up(false).await;
    let mut statuses = Vec::new();
    for id in [READY, READY5, READY6] {
        let r = c.hydrate(0, id, ALPHA).await;
        statuses.push(r.status.as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 429], "4/h ÷ 2 replicas = 2 here");
}

#[tokio::test]
async fn rejected_credentials_count_as_an_unreachable_redis() {
    let redis = RedisServer::start_with_password("right-password");
    let sim = sim::start(SimConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let wrong = format!("redis://:wrong-password@127.0.0.1:{}/0", redis.port());
    let config = Config::resolve(ServeArgs {
        listen: Some("127.0.0.1:0".into()),
        upstream: Some(sim.base_url()),
        api_key: Some(ALPHA.into()),
        redis_url: Some(wrong),
        ..Default::default()
    })
    .unwrap();
    let app = App::new(config).unwrap();
    let running = Running::start(app, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = HttpClient::new();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let r = client
        .get(&format!("{}/files/{READY}/redirect", running.url()), None)
        .await;
    assert_eq!(r.status, 302, "served standalone");
    let m = client
        .get(&format!("{}/metrics", running.url()), None)
        .await;
    let text = String::from_utf8_lossy(&m.body).to_string();
    assert_eq!(metric(&text, "hydrant_redis_up", &[]), Some(0.0));
    assert!(!text.contains("wrong-password"));
    let _ = running.stop().await;
}

#[tokio::test]
async fn l1_hits_make_no_redis_command() {
    let c = Replicas::start(1, ServeArgs::default()).await;
    assert_eq!(c.redirect(0, READY).await.status, 302);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = c.metric(0, "hydrant_redis_commands_total", &[]).await;
    for _ in 0..200 {
        assert_eq!(c.redirect(0, READY).await.header("x-cache"), Some("HIT"));
    }
    let after = c.metric(0, "hydrant_redis_commands_total", &[]).await;
    assert_eq!(before, after, "an in-memory hit touched Redis");
    assert!(before.unwrap_or(0.0) > 0.0, "the miss did use Redis");
}

#[tokio::test]
async fn a_copy_in_flight_on_another_replica_gets_503() {
    // A receiver that takes a while to acknowledge, so the first delivery stays in flight.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let forward = format!("http://{}/hook", listener.local_addr().unwrap());
    let relayed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = relayed.clone();
    crate::common::fake_upstream::serve_http1(listener, move |_req| {
        let count = count.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(1_000)).await;
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            http::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"ok")))
        }
    });
    let c = Arc::new(
        Replicas::start(
            2,
            ServeArgs {
                webhook_secret: Some(DEFAULT_WEBHOOK_SECRET.into()),
                webhook_forward: Some(forward),
                ..Default::default()
            },
        )
        .await,
    );
    let body: &'static [u8] = br#"{"event":"tool_execution.succeeded","executionId":"vg_exec_2"}"#;
    let deliver = |i: usize| {
        let c = c.clone();
        async move { c.deliver(i, "msg_cluster_2", body).await }
    };
    let first = tokio::spawn(deliver(0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let copy = deliver(1).await;
    assert_eq!(copy.status, 503);
    assert!(copy.header("retry-after").is_some());
    assert_eq!(first.await.unwrap().status, 200);
    let again = deliver(1).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["duplicate"], true);
    assert_eq!(relayed.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn redis_holds_the_body_byte_for_byte_until_the_urls_expire() {
    let c = Replicas::start(1, ServeArgs::default()).await;
    c.sim.set_url_lifetime(Duration::from_secs(120));
    let r = c.hydrate(0, READY, ALPHA).await;
    assert_eq!(r.status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let key = format!("it:{{{}}}:e:{READY}", alpha_tag());
    let pttl = match c.redis.command(&["PTTL", &key]) {
        crate::common::redis::Reply::Int(n) => n,
        other => panic!("PTTL {other:?}"),
    };
    assert!(
        (100_000..=120_000).contains(&pttl),
        "TTL follows the URLs' real expiry: {pttl} ms"
    );
    let value = match c.redis.command(&["HGET", &key, "v"]) {
        crate::common::redis::Reply::Bulk(Some(v)) => v,
        other => panic!("HGET {other:?}"),
    };
    assert!(
        value.windows(r.body.len()).any(|w| w == &r.body[..]),
        "the stored value carries the upstream body verbatim"
    );
}

#[tokio::test]
async fn tenants_never_share_entries_across_replicas() {
    let c = Replicas::start(2, ServeArgs::default()).await;
    let alpha = c.hydrate(0, READY, ALPHA).await;
    assert_eq!(alpha.status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Another key asks replica 1 for the same id: its own upstream answer, not alpha's entry.
    let beta = c.hydrate(1, READY, BETA).await;
    assert_ne!(beta.status, 200, "beta must not see alpha's file");
    assert_eq!(c.sim.hydrate_calls(READY), 2);
    let tags: std::collections::BTreeSet<String> = c
        .redis
        .keys("it:{*}:e:*")
        .into_iter()
        .filter_map(|k| Some(k.split_once('{')?.1.split_once('}')?.0.to_string()))
        .collect();
    assert_eq!(tags.len(), 2, "one hash tag per tenant: {tags:?}");
}

/// Rewrite every `from` in the stored value of `key` to `to` (same length), inside Redis.
fn tamper(c: &Replicas, key: &str, from: &str, to: &str) -> i64 {
    const SCRIPT: &str = "local v = redis.call('HGET', KEYS[1], 'v') \
        if not v then return -1 end \
        local n = 0 \
        while true do \
          local i = string.find(v, ARGV[1], 1, true) \
          if not i then break end \
          v = string.sub(v, 1, i - 1) .. ARGV[2] .. string.sub(v, i + #ARGV[1]) \
          n = n + 1 \
        end \
        redis.call('HSET', KEYS[1], 'v', v) \
        return n";
    assert_eq!(from.len(), to.len());
    match c.redis.command(&["EVAL", SCRIPT, "1", key, from, to]) {
        crate::common::redis::Reply::Int(n) => n,
        other => panic!("EVAL {other:?}"),
    }
}

#[tokio::test]
async fn a_tampered_shared_entry_never_becomes_a_redirect() {
    let c = Replicas::start(2, ServeArgs::default()).await;
    assert_eq!(c.redirect(0, READY).await.status, 302);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let key = format!("it:{{{}}}:e:{READY}", alpha_tag());
    // Someone with write access to Redis points the file's URLs at script.
    assert!(tamper(&c, &key, "http://127.0.0.1", "javascript:alert") > 0);
    let r = c.redirect(1, READY).await;
    let location = r.header("location").unwrap_or("");
    assert!(
        !location.starts_with("javascript:"),
        "a tampered shared entry must not reach a browser: {location}"
    );
    assert_eq!(r.status, 302, "{r:?}");
    assert!(location.starts_with("http://127.0.0.1"), "{location}");
    assert_eq!(
        c.sim.hydrate_calls(READY),
        2,
        "the tampered entry counts as a miss and is fetched again"
    );
}
