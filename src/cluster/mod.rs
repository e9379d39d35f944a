//! Cluster mode: replicas that share one Redis keep every promise of one process.
//!
//! [`Cluster`] is the shared tier under the in-memory store (`tier.rs`), the cluster-wide
//! quota (`quota.rs`) and the webhook dedupe (`dedupe.rs`), all on one redis-rs connection
//! manager (it reconnects by itself), plus three background tasks: a probe and heartbeat
//! every second, and the pub/sub subscriber that applies other replicas' invalidations and
//! wakes replicas waiting for a fill.
//!
//! Redis trouble never fails a request. Every request-path command runs within what is left of
//! `redis_timeout`; the first one that fails or times out marks Redis down, and from then on
//! no request-path command is sent (each replica acts as a standalone hydrant, its limiter at
//! its share of the quota) until the probe gets an answer again. A replica whose subscription
//! broke may have missed invalidations: it drops its whole in-memory cache on resubscribing.
//! Each change of state is logged once at `warn`; the URL, and so the password, never is.

mod dedupe;
mod quota;
mod scripts;
mod tier;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::clock;
use crate::config::RedisConfig;
use crate::file_id::FileId;
use crate::hydration::store::{Key, Store};
use crate::telemetry::{Metrics, OriginLabel, RedisLabel, RedisOpLabel};
use crate::tenant::Tenant;

/// How often the probe runs and the heartbeat is written while Redis is up.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How often the probe retries while Redis is down, so sharing resumes soon after it answers.
const PROBE_EVERY_WHILE_DOWN: Duration = Duration::from_millis(250);
/// A replica whose heartbeat is older than this counts as gone.
const REPLICA_ALIVE_MS: u64 = 5_000;
/// The longest a probe waits (it is not on any request's path).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// This replica's handle on the cluster. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    up: AtomicBool,
    /// Random per process: tells this replica's own pub/sub messages from its peers'.
    replica: String,
    replicas: AtomicU32,
    metrics: Arc<Metrics>,
    /// This replica's in-memory tier, for invalidations other replicas publish.
    store: Store,
    /// Whether `http://` redirect targets are allowed (a plain-http upstream only).
    allow_http: bool,
    /// Replicas waiting here for another one's fill, woken by `fill` messages.
    waiters: Mutex<HashMap<Key, Arc<Notify>>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("prefix", &self.inner.prefix)
            .field("up", &self.is_up())
            .finish()
    }
}

impl Cluster {
    /// Connect lazily (hydrant starts without Redis) and start the background tasks on the
    /// current tokio runtime.
    pub(crate) fn start(
        cfg: &RedisConfig,
        store: Store,
        metrics: Arc<Metrics>,
        allow_http: bool,
    ) -> Result<Cluster, redis::RedisError> {
        // The background tasks need a runtime; without one, refuse instead of panicking.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "cluster mode needs a tokio runtime",
            )));
        }
        let client = redis::Client::open(cfg.url.expose())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(PROBE_TIMEOUT))
            .set_response_timeout(Some(PROBE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        let cluster = Cluster {
            inner: Arc::new(Inner {
                client,
                conn,
                prefix: cfg.prefix.clone(),
                timeout: cfg.timeout,
                up: AtomicBool::new(false),
                replica: format!("{:016x}", rand::random::<u64>()),
                replicas: AtomicU32::new(1),
                metrics,
                store,
                allow_http,
                waiters: Mutex::new(HashMap::new()),
            }),
        };
        cluster.inner.metrics.redis_up.set(0);
        cluster.inner.metrics.cluster_replicas.set(1);
        tokio::spawn(cluster.clone().probe_loop());
        tokio::spawn(cluster.clone().subscribe_loop());
        Ok(cluster)
    }

    pub(crate) fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Acquire)
    }

    /// Replicas last seen alive (at least 1: this one).
    pub(crate) fn replicas(&self) -> u32 {
        self.inner.replicas.load(Ordering::Relaxed).max(1)
    }

    /// The per-request Redis budget starting now.
    pub(crate) fn deadline(&self) -> Instant {
        clock::now() + self.inner.timeout
    }

    fn mark(&self, up: bool, why: &str) {
        let was = self.inner.up.swap(up, Ordering::AcqRel);
        if was != up {
            self.inner.metrics.redis_up.set(i64::from(up));
            if up {
                tracing::warn!("redis reachable again: sharing cache, quota and dedupe");
            } else {
                tracing::warn!(
                    reason = why,
                    "redis unavailable: serving standalone until it answers"
                );
            }
        }
    }

    /// Run one request-path command within `deadline`, counting it; `None` when Redis is
    /// down, slow or failing (which marks it down).
    async fn run<T, F>(&self, op: &'static str, deadline: Instant, command: F) -> Option<T>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        if !self.is_up() {
            return None;
        }
        let left = deadline.saturating_duration_since(clock::now());
        let started = clock::stopwatch();
        let outcome = tokio::time::timeout(left, command).await;
        let m = &self.inner.metrics;
        m.redis_duration
            .get_or_create(&RedisOpLabel { op })
            .observe(started.elapsed());
        let (label, value) = match outcome {
            Ok(Ok(v)) => ("ok", Some(v)),
            Ok(Err(e)) => {
                let why = if e.is_timeout() {
                    "timeout"
                } else if e.is_connection_refusal() || e.is_io_error() {
                    "connection"
                } else {
                    "error"
                };
                tracing::debug!(op, kind = ?e.kind(), "redis command failed");
                self.mark(false, why);
                ("error", None)
            }
            Err(_) => {
                self.mark(false, "timeout");
                ("timeout", None)
            }
        };
        m.redis_commands
            .get_or_create(&RedisLabel { op, outcome: label })
            .inc();
        value
    }

    /// `EVALSHA`, loading the script and retrying once when Redis does not know it (restarted
    /// empty or `SCRIPT FLUSH`ed). redis-rs does this itself too, but not on every path.
    async fn invoke<T: redis::FromRedisValue>(
        inv: &redis::ScriptInvocation<'_>,
        conn: &mut ConnectionManager,
    ) -> redis::RedisResult<T> {
        match inv.invoke_async::<T>(conn).await {
            Err(e) if e.code() == Some("NOSCRIPT") => {
                inv.load_async(conn).await?;
                inv.invoke_async::<T>(conn).await
            }
            other => other,
        }
    }

    fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    /// `{prefix}{<tenant>}:<kind>:<file>`: one tenant's keys share a hash tag (one slot).
    fn key(&self, tenant: &Tenant, kind: &str, file: &FileId) -> String {
        format!(
            "{}{{{}}}:{kind}:{}",
            self.inner.prefix,
            tenant.hex(),
            file.as_str()
        )
    }

    fn tenant_key(&self, tenant: &Tenant, kind: &str) -> String {
        format!("{}{{{}}}:{kind}", self.inner.prefix, tenant.hex())
    }

    fn global_key(&self, name: &str) -> String {
        format!("{}{name}", self.inner.prefix)
    }

    fn channel(&self, name: &str) -> String {
        format!("{}{name}", self.inner.prefix)
    }

    /// Probe every second: notice an outage without traffic, come back when Redis does, and
    /// keep this replica's heartbeat (and the count of live ones) current.
    async fn probe_loop(self) {
        loop {
            self.probe().await;
            let pause = if self.is_up() {
                PROBE_EVERY
            } else {
                PROBE_EVERY_WHILE_DOWN
            };
            tokio::time::sleep(pause).await;
        }
    }

    /// One probe: the heartbeat script, which also counts the live replicas.
    async fn probe(&self) {
        {
            let mut conn = self.conn();
            let beat = async {
                let mut inv = scripts::HEARTBEAT.key(self.global_key("replicas"));
                inv.arg(&self.inner.replica).arg(REPLICA_ALIVE_MS);
                Cluster::invoke::<u32>(&inv, &mut conn).await
            };
            match tokio::time::timeout(PROBE_TIMEOUT, beat).await {
                Ok(Ok(n)) => {
                    self.inner.replicas.store(n.max(1), Ordering::Relaxed);
                    self.inner.metrics.cluster_replicas.set(i64::from(n.max(1)));
                    self.mark(true, "");
                }
                Ok(Err(e)) => {
                    let why = if e.kind() == redis::ErrorKind::AuthenticationFailed {
                        "credentials rejected"
                    } else {
                        "probe failed"
                    };
                    self.mark(false, why);
                }
                Err(_) => self.mark(false, "probe timed out"),
            }
        }
    }

    /// Hold a subscription to the invalidation and fill channels; after any interruption,
    /// resubscribe and drop the in-memory cache, which may have missed invalidations.
    async fn subscribe_loop(self) {
        let inv = self.channel("inv");
        let fill = self.channel("fill");
        let mut interrupted = false;
        loop {
            let subscribed = async {
                let mut pubsub = self.inner.client.get_async_pubsub().await?;
                pubsub.subscribe(&inv).await?;
                pubsub.subscribe(&fill).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            let pubsub = match tokio::time::timeout(PROBE_TIMEOUT, subscribed).await {
                Ok(Ok(p)) => p,
                _ => {
                    interrupted = true;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if interrupted {
                // Share again before dropping memory: the misses that follow then fill
                // through Redis (one upstream call per file for the cluster) instead of each
                // replica refilling alone until the next probe.
                // Bounded: at most 20 probes, 250 ms apart.
                for _ in 0..20 {
                    self.probe().await;
                    if self.is_up() {
                        break;
                    }
                    tokio::time::sleep(PROBE_EVERY_WHILE_DOWN).await;
                }
                self.inner.store.clear();
                tracing::warn!(
                    "redis subscription restored: dropped the in-memory cache (invalidations may have been missed)"
                );
            }
            let mut messages = pubsub.into_on_message();
            while let Some(msg) = messages.next().await {
                let Ok(payload) = msg.get_payload::<String>() else {
                    continue;
                };
                if msg.get_channel_name() == inv {
                    self.apply_invalidation(&payload);
                } else {
                    self.wake(&payload);
                }
            }
            interrupted = true;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `<origin>|f|<file>` or `<origin>|k|<tenant hex>|<file>`, published by `tier.rs`.
    fn apply_invalidation(&self, payload: &str) {
        let mut parts = payload.split('|');
        let (Some(origin), Some(kind)) = (parts.next(), parts.next()) else {
            return;
        };
        if origin == self.inner.replica {
            return;
        }
        match (kind, parts.next(), parts.next()) {
            ("f", Some(file), None) => {
                if let Some(file) = FileId::parse(file) {
                    self.inner.store.invalidate_file(file);
                }
            }
            ("k", Some(tenant), Some(file)) => {
                if let (Some(tenant), Some(file)) = (Tenant::from_hex(tenant), FileId::parse(file))
                {
                    self.inner.store.remove(&Key { tenant, file });
                }
            }
            _ => return,
        }
        self.inner
            .metrics
            .invalidations
            .get_or_create(&OriginLabel { origin: "peer" })
            .inc();
    }

    /// `<tenant hex>|<file>`: some replica stored (or gave up) that key.
    fn wake(&self, payload: &str) {
        let Some((tenant, file)) = payload.split_once('|') else {
            return;
        };
        let (Some(tenant), Some(file)) = (Tenant::from_hex(tenant), FileId::parse(file)) else {
            return;
        };
        if let Some(n) = self.inner.waiters.lock().get(&Key { tenant, file }) {
            n.notify_waiters();
        }
    }

    fn waiter(&self, key: Key) -> Arc<Notify> {
        self.inner
            .waiters
            .lock()
            .entry(key)
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    fn forget_waiter(&self, key: &Key, n: &Arc<Notify>) {
        let mut w = self.inner.waiters.lock();
        // Only the map and this caller hold it: nobody else waits on this key now.
        if w.get(key).is_some_and(|cur| Arc::ptr_eq(cur, n)) && Arc::strong_count(n) <= 2 {
            w.remove(key);
        }
    }
}
