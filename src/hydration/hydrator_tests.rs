//! The hydrator's rules, in-process on tokio's paused time with a scripted loader: no
//! sockets, no sleeps, no retries. Each test states one rule of the cache.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::HeaderMap;

use super::*;
use crate::config::Rate;
use crate::upstream::limiter::Refusal;

/// What the scripted upstream answers next.
enum Step {
    Reply(StatusCode, HeaderMap, Bytes),
    Fail(fn() -> UpstreamError),
}

/// A [`Loader`] that answers from a script (then a fresh file), after `delay` of tokio time.
#[derive(Default)]
struct Scripted {
    steps: Mutex<VecDeque<Step>>,
    calls: AtomicUsize,
    delay: Duration,
}

impl Scripted {
    fn with_delay(delay: Duration) -> Arc<Scripted> {
        Arc::new(Scripted {
            delay,
            ..Default::default()
        })
    }

    fn then(&self, step: Step) -> &Self {
        self.steps.lock().push_back(step);
        self
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Loader for Scripted {
    fn hydrate(
        &self,
        _file: FileId,
        _authorization: HeaderValue,
    ) -> BoxFuture<'static, Result<Reply, UpstreamError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let step = self.steps.lock().pop_front();
        let delay = self.delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            match step {
                Some(Step::Fail(e)) => Err(e()),
                Some(Step::Reply(status, headers, body)) => Ok(Reply {
                    status,
                    headers,
                    body,
                }),
                None => Ok(ok(file(3600.0))),
            }
        })
    }
}

/// A StorageFile whose download URL expires `secs` from now (preview an hour later).
fn file(secs: f64) -> Bytes {
    let now = clock::now_unix();
    Bytes::from(format!(
        r#"{{"fileId":"vg_file_1","type":"VIDEO",
        "downloadSource":{{"status":"ready","url":"https://cdn.example/d?s=1","expiresAt":{}}},
        "previewSource":{{"status":"ready","url":"https://cdn.example/p?s=1","expiresAt":{}}}}}"#,
        now + secs,
        now + secs + 3600.0
    ))
}

fn pending_file() -> Bytes {
    Bytes::from_static(
        br#"{"fileId":"vg_file_1","type":"VIDEO","downloadSource":{"status":"pending"}}"#,
    )
}

fn ok(body: Bytes) -> Reply {
    Reply {
        status: StatusCode::OK,
        headers: HeaderMap::new(),
        body,
    }
}

fn reply(status: u16, headers: &[(&'static str, &str)], body: &'static str) -> Step {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    Step::Reply(
        StatusCode::from_u16(status).unwrap(),
        h,
        Bytes::from_static(body.as_bytes()),
    )
}

fn hydrator_with(loader: Arc<Scripted>, shared: Option<Arc<dyn SharedTier>>) -> Arc<Hydrator> {
    let metrics = Arc::new(Metrics::new());
    let limiter = Limiter::new(
        Rate {
            count: 100,
            per: Duration::from_secs(1),
        },
        10,
        Duration::from_secs(2),
        metrics.clone(),
    );
    Arc::new(Hydrator::new(Parts {
        store: Store::new(1 << 20),
        shared,
        loader,
        limiter,
        policy: Policy::default(),
        metrics,
        max_wait: Duration::from_secs(2),
        upstream_timeout: Duration::from_secs(30),
        allow_http: false,
        shared_timeout: Duration::from_millis(100),
    }))
}

fn hydrator(loader: Arc<Scripted>) -> Arc<Hydrator> {
    hydrator_with(loader, None)
}

fn key(file: &str) -> Key {
    Key {
        tenant: Tenant::of_key(b"key"),
        file: FileId::parse(file).unwrap(),
    }
}

fn auth() -> HeaderValue {
    HeaderValue::from_static("Bearer key")
}

/// The cache status of an answer, or what else it was.
fn outcome(a: &Result<Answer, LoadError>) -> String {
    match a {
        Ok(Answer::Cached { entry, cache }) => {
            format!("{} {}", entry.status.as_u16(), cache.as_str())
        }
        Ok(Answer::Upstream(r)) => format!("upstream {}", r.status.as_u16()),
        Err(e) => format!("error {e}"),
    }
}

async fn get(h: &Arc<Hydrator>, file: &str) -> String {
    outcome(&h.get(key(file), &auth()).await)
}

/// Let spawned tasks (refreshes, shared-tier writes) run to completion on paused time.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_make_one_upstream_call() {
    let loader = Scripted::with_delay(Duration::from_millis(200));
    let h = hydrator(loader.clone());
    let gets: Vec<_> = (0..50)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move { get(&h, "f").await })
        })
        .collect();
    for g in gets {
        assert_eq!(
            g.await.unwrap(),
            "200 MISS",
            "a coalesced waiter reports MISS"
        );
    }
    assert_eq!(loader.calls(), 1);
    assert_eq!(get(&h, "f").await, "200 HIT");
    assert_eq!(loader.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_goes_away_does_not_cancel_the_fill() {
    let loader = Scripted::with_delay(Duration::from_secs(1));
    let h = hydrator(loader.clone());
    let h2 = h.clone();
    let first = tokio::spawn(async move { get(&h2, "f").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    first.abort();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(get(&h, "f").await, "200 HIT");
    assert_eq!(loader.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn fresh_until_the_earliest_expiry_minus_the_margin() {
    let loader = Scripted::with_delay(Duration::ZERO);
    loader.then(Step::Reply(StatusCode::OK, HeaderMap::new(), file(600.0)));
    let h = hydrator(loader.clone());
    assert_eq!(get(&h, "f").await, "200 MISS");
    tokio::time::advance(Duration::from_secs(539)).await;
    assert!(h.hit(&key("f"), &auth(), clock::now()).is_some());
    assert_eq!(loader.calls(), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(
        h.hit(&key("f"), &auth(), clock::now()).is_none(),
        "past 600 s - 60 s"
    );
    assert_eq!(get(&h, "f").await, "200 MISS");
    assert_eq!(loader.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn pending_renditions_live_for_the_pending_ttl() {
    let loader = Scripted::with_delay(Duration::ZERO);
    loader.then(Step::Reply(
        StatusCode::OK,
        HeaderMap::new(),
        pending_file(),
    ));
    let h = hydrator(loader.clone());
    assert_eq!(get(&h, "f").await, "200 MISS");
    tokio::time::advance(Duration::from_secs(4)).await;
    assert_eq!(get(&h, "f").await, "200 HIT");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(get(&h, "f").await, "200 MISS");
    assert_eq!(loader.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_late_read_refreshes_once_in_the_background() {
    let loader = Scripted::with_delay(Duration::from_millis(50));
    // Fresh for 100 s (160 s - 60 s margin); refresh ahead in its last 20 %.
    loader.then(Step::Reply(StatusCode::OK, HeaderMap::new(), file(160.0)));
    let h = hydrator(loader.clone());
    assert_eq!(get(&h, "f").await, "200 MISS");
    tokio::time::advance(Duration::from_secs(79)).await;
    assert!(h.hit(&key("f"), &auth(), clock::now()).is_some());
    settle().await;
    assert_eq!(loader.calls(), 1, "no refresh before 80 % of the life");
    tokio::time::advance(Duration::from_secs(2)).await;
    for _ in 0..20 {
        // Every read is still a hit while the refresh runs; only one refresh starts.
        assert!(h.hit(&key("f"), &auth(), clock::now()).is_some());
        settle().await;
    }
    assert_eq!(loader.calls(), 2);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The refreshed entry (an hour of URL life) took over: well past the old entry's end.
    tokio::time::advance(Duration::from_secs(600)).await;
    assert_eq!(get(&h, "f").await, "200 HIT");
    assert_eq!(loader.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_is_retried_by_a_later_read() {
    let loader = Scripted::with_delay(Duration::ZERO);
    loader
        .then(Step::Reply(StatusCode::OK, HeaderMap::new(), file(160.0)))
        .then(Step::Fail(|| UpstreamError::Timeout));
    let h = hydrator(loader.clone());
    assert_eq!(get(&h, "f").await, "200 MISS");
    tokio::time::advance(Duration::from_secs(81)).await;
    assert!(h.hit(&key("f"), &auth(), clock::now()).is_some());
    settle().await;
    assert_eq!(loader.calls(), 2);
    assert!(h.hit(&key("f"), &auth(), clock::now()).is_some());
    settle().await;
    assert_eq!(loader.calls(), 3, "the second read tries again");
}

#[tokio::test(start_paused = true)]
async fn upstream_failure_serves_stale_while_urls_are_valid() {
    let loader = Scripted::with_delay(Duration::ZERO);
    loader
        .then(Step::Reply(StatusCode::OK, HeaderMap::new(), file(160.0)))
        .then(reply(503, &[], "{\"message\":\"down\"}"))
        .then(Step::Fail(|| UpstreamError::Timeout))
        .then(reply(503, &[], "{\"message\":\"down\"}"));
    let h = hydrator(loader.clone());
    assert_eq!(get(&h, "f").await, "200 MISS");
    tokio::time::advance(Duration::from_secs(101)).await;
    assert_eq!(get(&h, "f").await, "200 STALE", "5xx");
    assert_eq!(get(&h, "f").await, "200 STALE", "timeout");
    // Past the URLs' real expiry nothing is servable: the upstream's answer goes out.
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(get(&h, "f").await, "upstream 503");
    assert_eq!(loader.calls(), 4);
}

#[tokio::test(start_paused = true)]
async fn an_upstream_404_is_remembered_for_the_negative_ttl() {
    let loader = Scripted::with_delay(Duration::ZERO);
    loader.then(reply(404, &[], "{\"message\":\"File not found\"}"));
    let h = hydrator(loader.clone());
    assert_eq!(get(&h, "gone").await, "404 MISS");
    tokio::time::advance(Duration::from_secs(29)).await;
    assert_eq!(get(&h, "gone").await, "404 HIT");
    assert_eq!(loader.calls(), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(get(&h, "gone").await, "200 MISS");
    assert_eq!(loader.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_upstream_429_pauses_the_tenant_until_retry_after() {
    let loader = Scripted::with_delay(Duration::ZERO);
    loader.then(reply(
        429,
        &[("retry-after", "30")],
        "{\"code\":\"rate_limited\"}",
    ));
    let h = hydrator(loader.clone());
    assert_eq!(get(&h, "a").await, "upstream 429");
    // Another file of the same tenant: refused locally, no upstream call.
    match h.get(key("b"), &auth()).await {
        Err(LoadError::Refused(r)) => {
            assert_eq!(r.reason, Refusal::UpstreamPaused);
            assert_eq!(r.retry_after, Duration::from_secs(30));
        }
        other => panic!("expected a refusal, got {}", outcome(&other)),
    }
    assert_eq!(loader.calls(), 1);
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(get(&h, "b").await, "200 MISS");
    assert_eq!(loader.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_short_pause_is_waited_out() {
    let loader = Scripted::with_delay(Duration::ZERO);
    loader.then(reply(429, &[("retry-after", "1")], "{}"));
    let h = hydrator(loader.clone());
    assert_eq!(get(&h, "a").await, "upstream 429");
    let start = clock::now();
    assert_eq!(get(&h, "b").await, "200 MISS");
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "within hydrate_max_wait"
    );
}

#[tokio::test(start_paused = true)]
async fn out_of_credits_is_passed_on_and_pauses_nothing() {
    let loader = Scripted::with_delay(Duration::ZERO);
    loader.then(reply(
        429,
        &[("retry-after", "60")],
        "{\"code\":\"insufficient_credits\"}",
    ));
    let h = hydrator(loader.clone());
    assert_eq!(get(&h, "a").await, "upstream 429");
    assert_eq!(get(&h, "b").await, "200 MISS");
}

#[tokio::test(start_paused = true)]
async fn a_200_that_is_not_a_file_is_an_error_and_not_stored() {
    let loader = Scripted::with_delay(Duration::ZERO);
    loader.then(reply(200, &[], "[1,2,3]"));
    let h = hydrator(loader.clone());
    assert!(matches!(
        h.get(key("f"), &auth()).await,
        Err(LoadError::Invalid(FileError::NotObject))
    ));
    assert_eq!(get(&h, "f").await, "200 MISS");
    assert_eq!(loader.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn invalidation_drops_every_tenant_and_the_next_read_refetches() {
    let loader = Scripted::with_delay(Duration::ZERO);
    let h = hydrator(loader.clone());
    let other = Key {
        tenant: Tenant::of_key(b"other"),
        file: FileId::parse("f").unwrap(),
    };
    assert_eq!(get(&h, "f").await, "200 MISS");
    assert!(h.get(other, &auth()).await.is_ok());
    h.invalidate(FileId::parse("f").unwrap()).await;
    assert!(h.hit(&other, &auth(), clock::now()).is_none());
    assert_eq!(get(&h, "f").await, "200 MISS");
    assert_eq!(loader.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn an_invalidation_wins_over_a_fill_in_flight() {
    let loader = Scripted::with_delay(Duration::from_secs(1));
    let h = hydrator(loader.clone());
    let h2 = h.clone();
    let in_flight = tokio::spawn(async move { get(&h2, "f").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // An archive lands while the hydrate is under way: its pre-archive answer must not stick.
    h.invalidate(FileId::parse("f").unwrap()).await;
    assert_eq!(in_flight.await.unwrap(), "200 MISS");
    assert!(h.hit(&key("f"), &auth(), clock::now()).is_none());
    assert_eq!(get(&h, "f").await, "200 MISS");
    assert_eq!(loader.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn priming_stores_only_fresh_files_with_ready_urls() {
    let loader = Scripted::with_delay(Duration::ZERO);
    let h = hydrator(loader.clone());
    let f = FileId::parse("f").unwrap();
    let t = Tenant::of_key(b"key");
    assert!(!h.prime(t, f, &pending_file()));
    assert!(!h.prime(t, f, b"not json"));
    assert!(h.prime(t, f, &file(3600.0)));
    assert_eq!(get(&h, "f").await, "200 HIT");
    assert_eq!(loader.calls(), 0);
}

/// A shared tier held in memory, with a lease per key: what replicas on one Redis see.
#[derive(Default)]
struct MemoryTier {
    entries: Arc<Mutex<HashMap<Key, Arc<Entry>>>>,
    leases: Arc<Mutex<HashMap<Key, u64>>>,
    next_token: AtomicUsize,
}

impl SharedTier for MemoryTier {
    fn claim(
        &self,
        key: Key,
        newer_than: Option<f64>,
        _deadline: Instant,
    ) -> BoxFuture<'static, Claim> {
        let now = clock::now();
        let entry = self.entries.lock().get(&key).cloned();
        let claim = match entry {
            Some(e)
                if e.is_fresh(now) && newer_than.is_none_or(|t| clock::unix_at(e.created) > t) =>
            {
                Claim::Found(e)
            }
            stale => {
                let mut leases = self.leases.lock();
                if let std::collections::hash_map::Entry::Vacant(slot) = leases.entry(key) {
                    let token = self.next_token.fetch_add(1, Ordering::SeqCst) as u64;
                    slot.insert(token);
                    Claim::Lead {
                        ticket: Ticket {
                            epoch: String::new(),
                            token: token.to_string(),
                            renewal: None,
                        },
                        stale,
                    }
                } else {
                    Claim::Follow { stale }
                }
            }
        };
        Box::pin(async move { claim })
    }

    fn wait(&self, key: Key, until: Instant) -> BoxFuture<'static, Option<Arc<Entry>>> {
        // Polls what the fake holds; the Redis tier is woken through pub/sub instead.
        let (entries, leases) = (self.entries.clone(), self.leases.clone());
        Box::pin(async move {
            while clock::now() < until {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let found = entries.lock().get(&key).cloned();
                if let Some(e) = found.filter(|e| e.is_fresh(clock::now())) {
                    return Some(e);
                }
                if !leases.lock().contains_key(&key) {
                    return None;
                }
            }
            None
        })
    }

    fn put(&self, key: Key, entry: Arc<Entry>, ticket: Option<Ticket>) -> BoxFuture<'static, ()> {
        self.entries.lock().insert(key, entry);
        if let Some(t) = ticket {
            let mut leases = self.leases.lock();
            if leases.get(&key).map(|v| v.to_string()) == Some(t.token.clone()) {
                leases.remove(&key);
            }
        }
        Box::pin(async {})
    }

    fn release(&self, key: Key, _ticket: Ticket) -> BoxFuture<'static, ()> {
        self.leases.lock().remove(&key);
        Box::pin(async {})
    }

    fn invalidate_file(&self, file: FileId) -> BoxFuture<'static, ()> {
        self.entries.lock().retain(|k, _| k.file != file);
        Box::pin(async {})
    }

    fn remove(&self, key: Key) -> BoxFuture<'static, ()> {
        self.entries.lock().remove(&key);
        Box::pin(async {})
    }
}

#[tokio::test(start_paused = true)]
async fn a_shared_tier_serves_what_another_replica_fetched() {
    let shared = Arc::new(MemoryTier::default());
    let (la, lb) = (
        Scripted::with_delay(Duration::ZERO),
        Scripted::with_delay(Duration::ZERO),
    );
    let a = hydrator_with(la.clone(), Some(shared.clone()));
    let b = hydrator_with(lb.clone(), Some(shared.clone()));
    assert_eq!(get(&a, "f").await, "200 MISS");
    settle().await;
    assert_eq!(get(&b, "f").await, "200 HIT", "from the shared tier");
    assert_eq!(get(&b, "f").await, "200 HIT", "now from b's own memory");
    assert_eq!((la.calls(), lb.calls()), (1, 0));
    // An invalidation through b drops the shared copy: a's next miss goes upstream.
    b.invalidate(FileId::parse("f").unwrap()).await;
    assert!(shared.entries.lock().is_empty());
    assert_eq!(get(&b, "f").await, "200 MISS");
    assert_eq!(lb.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_on_two_replicas_make_one_upstream_call() {
    let shared = Arc::new(MemoryTier::default());
    let (la, lb) = (
        Scripted::with_delay(Duration::from_millis(300)),
        Scripted::with_delay(Duration::from_millis(300)),
    );
    let a = hydrator_with(la.clone(), Some(shared.clone()));
    let b = hydrator_with(lb.clone(), Some(shared.clone()));
    let mut gets = Vec::new();
    for h in [&a, &b, &a, &b] {
        let h = h.clone();
        gets.push(tokio::spawn(async move { get(&h, "f").await }));
    }
    for g in gets {
        assert_eq!(g.await.unwrap(), "200 MISS");
    }
    assert_eq!(
        la.calls() + lb.calls(),
        1,
        "one replica leads, the other waits"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_leader_lets_the_follower_take_over() {
    let shared = Arc::new(MemoryTier::default());
    let la = Scripted::with_delay(Duration::from_millis(300));
    la.then(Step::Fail(|| UpstreamError::Timeout));
    let lb = Scripted::with_delay(Duration::ZERO);
    let a = hydrator_with(la.clone(), Some(shared.clone()));
    let b = hydrator_with(lb.clone(), Some(shared.clone()));
    let a2 = a.clone();
    let first = tokio::spawn(async move { get(&a2, "f").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // b follows a's lease; a's fill fails and releases it; b leads and succeeds.
    assert_eq!(get(&b, "f").await, "200 MISS");
    assert!(first.await.unwrap().starts_with("error"));
    assert_eq!((la.calls(), lb.calls()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_refresh_on_one_replica_serves_the_others() {
    let shared = Arc::new(MemoryTier::default());
    let (la, lb) = (
        Scripted::with_delay(Duration::ZERO),
        Scripted::with_delay(Duration::ZERO),
    );
    la.then(Step::Reply(StatusCode::OK, HeaderMap::new(), file(160.0)));
    let a = hydrator_with(la.clone(), Some(shared.clone()));
    let b = hydrator_with(lb.clone(), Some(shared.clone()));
    assert_eq!(get(&a, "f").await, "200 MISS");
    settle().await;
    assert_eq!(get(&b, "f").await, "200 HIT");
    tokio::time::advance(Duration::from_secs(81)).await;
    // a refreshes (one upstream call); b's late read then finds a's newer entry.
    assert!(a.hit(&key("f"), &auth(), clock::now()).is_some());
    settle().await;
    assert_eq!(la.calls(), 2);
    assert!(b.hit(&key("f"), &auth(), clock::now()).is_some());
    settle().await;
    assert_eq!(
        lb.calls(),
        0,
        "b took the refreshed entry from the shared tier"
    );
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(get(&b, "f").await, "200 HIT");
    assert_eq!(lb.calls(), 0);
}
