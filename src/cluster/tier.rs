//! The shared tier on Redis: entries (a hash of the encoded entry, its creation and its
//! freshness end, with a TTL of the URLs' real expiry), per-key fill leases and invalidation
//! epochs, and the pub/sub messages that wake waiting replicas and drop other replicas'
//! in-memory copies.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::{scripts, Cluster};
use crate::clock;
use crate::file_id::FileId;
use crate::hydration::entry::Entry;
use crate::hydration::store::Key;
use crate::hydration::tier::{Claim, SharedTier, Ticket};
use crate::hydration::wire;
use crate::telemetry::OriginLabel;

/// A lease lives this long unless renewed: a holder that died blocks its key at most this long.
const LEASE_MS: u64 = 5_000;
/// The holder renews this often while its fill runs.
const RENEW_EVERY: Duration = Duration::from_millis(1_500);
/// A waiting replica re-checks at least this often, in case a wake-up was lost.
const RECHECK_EVERY: Duration = Duration::from_millis(100);
/// How long an invalidation epoch outlives its last move: longer than any fill.
const EPOCH_TTL_MS: u64 = 3_600_000;
/// How long the set of tenants with entries lives after its last write.
const TENANTS_TTL_MS: u64 = 86_400_000;

fn unix_ms(at: Instant) -> i64 {
    (clock::unix_at(at) * 1000.0) as i64
}

impl Cluster {
    /// An entry read from Redis, or None. Redis is not trusted with what reaches a browser:
    /// an entry whose `Location`s would not pass the checks of a fresh upstream answer (a
    /// value written by something other than hydrant) is dropped and counts as a miss.
    fn decode(&self, value: &[u8]) -> Option<Arc<Entry>> {
        if value.is_empty() {
            return None;
        }
        let entry = wire::decode(value, clock::now())?;
        if !entry.locations_are_safe(self.inner.allow_http) {
            tracing::warn!("dropped a shared entry whose redirect targets fail hydrant's checks");
            return None;
        }
        Some(Arc::new(entry))
    }

    /// Queue on `pipe` the commands that add `key`'s tenant to the set of tenants with
    /// entries (and keep the set alive).
    fn add_tenant(&self, pipe: &mut redis::Pipeline, key: &Key) {
        let tenants = self.global_key("tenants");
        pipe.cmd("SADD")
            .arg(&tenants)
            .arg(key.tenant.hex())
            .ignore()
            .cmd("PEXPIRE")
            .arg(&tenants)
            .arg(TENANTS_TTL_MS)
            .ignore();
    }

    /// Record that `tenant` has entries, before any fill of it starts: an invalidation that
    /// lists the tenants after this moves the fill's epoch on and so fences it, and one that
    /// listed them before started before the fill, which then fetches the new state.
    async fn register_tenant(&self, key: &Key, deadline: Instant) -> Option<()> {
        let mut pipe = redis::pipe();
        self.add_tenant(&mut pipe, key);
        let mut conn = self.conn();
        self.run("tenants", deadline, pipe.query_async::<()>(&mut conn))
            .await
    }

    async fn claim_now(&self, key: Key, newer_than: Option<f64>, deadline: Instant) -> Claim {
        let token = format!("{}:{:016x}", self.inner.replica, rand::random::<u64>());
        let mut conn = self.conn();
        let mut inv = scripts::CLAIM.key(self.key(&key.tenant, "e", &key.file));
        inv.key(self.key(&key.tenant, "l", &key.file))
            .key(self.key(&key.tenant, "g", &key.file))
            .arg(&token)
            .arg(LEASE_MS)
            .arg(unix_ms(clock::now()))
            .arg(newer_than.map_or(-1, |t| (t * 1000.0) as i64));
        let reply = self
            .run(
                "claim",
                deadline,
                Cluster::invoke::<(String, Vec<u8>, String)>(&inv, &mut conn),
            )
            .await;
        let Some((verdict, value, epoch)) = reply else {
            return Claim::Alone;
        };
        match verdict.as_str() {
            "found" => match self.decode(&value) {
                Some(entry) => Claim::Found(entry),
                None => Claim::Alone,
            },
            "lead" => {
                // Registered after the epoch was read and before the upstream call, so an
                // invalidation either lists this tenant (and moves the epoch on: the store is
                // refused) or finished upstream before the fetch (which then sees it).
                let _ = self.register_tenant(&key, deadline).await;
                let renewal = tokio::spawn(self.clone().renew(key, token.clone())).abort_handle();
                Claim::Lead {
                    ticket: Ticket {
                        epoch,
                        token,
                        renewal: Some(renewal),
                    },
                    stale: self.decode(&value),
                }
            }
            "follow" => Claim::Follow {
                stale: self.decode(&value),
            },
            _ => Claim::Alone,
        }
    }

    /// Keep the lease while the fill runs (aborted when the ticket drops).
    async fn renew(self, key: Key, token: String) {
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            let mut conn = self.conn();
            let mut inv = scripts::RENEW.key(self.key(&key.tenant, "l", &key.file));
            inv.arg(&token).arg(LEASE_MS);
            let kept = self
                .run(
                    "renew",
                    self.deadline(),
                    Cluster::invoke::<i64>(&inv, &mut conn),
                )
                .await;
            if kept != Some(1) {
                return; // lost, or Redis is down: the fence refuses a late store anyway
            }
        }
    }

    async fn wait_now(&self, key: Key, until: Instant) -> Option<Arc<Entry>> {
        let notify = self.waiter(key);
        let found = async {
            // Bounded: one round per re-check interval until `until`.
            while clock::now() < until {
                let woken = notify.notified();
                tokio::pin!(woken);
                let _ = tokio::time::timeout(RECHECK_EVERY, &mut woken).await;
                let mut conn = self.conn();
                let mut inv = scripts::PEEK.key(self.key(&key.tenant, "e", &key.file));
                inv.key(self.key(&key.tenant, "l", &key.file));
                let (value, fresh_until, leased) = self
                    .run(
                        "peek",
                        self.deadline(),
                        Cluster::invoke::<(Vec<u8>, i64, i64)>(&inv, &mut conn),
                    )
                    .await?;
                if fresh_until > unix_ms(clock::now()) {
                    if let Some(e) = self.decode(&value) {
                        return Some(e);
                    }
                }
                if leased == 0 {
                    return None; // the leader gave up or died: the caller claims again
                }
            }
            None
        }
        .await;
        self.forget_waiter(&key, &notify);
        found
    }

    async fn put_now(&self, key: Key, entry: Arc<Entry>, ticket: Option<Ticket>) {
        let now = clock::now();
        // The Redis TTL is the URLs' real expiry (already capped by max_ttl), or the
        // negative TTL for a remembered 404: nothing outlives its URLs in Redis.
        let until = if entry.status == http::StatusCode::NOT_FOUND {
            entry.fresh_until()
        } else {
            entry.stale_until()
        };
        let ttl_ms = until.saturating_duration_since(now).as_millis() as u64;
        if ttl_ms == 0 {
            return;
        }
        let deadline = self.deadline();
        let (epoch, token) = match &ticket {
            Some(t) => (t.epoch.clone(), t.token.clone()),
            None => (String::new(), String::new()),
        };
        let ticket_token_empty = token.is_empty();
        let mut conn = self.conn();
        let mut inv = scripts::PUT.key(self.key(&key.tenant, "e", &key.file));
        inv.key(self.key(&key.tenant, "l", &key.file))
            .key(self.key(&key.tenant, "g", &key.file))
            .arg(wire::encode(&entry))
            .arg(ttl_ms)
            .arg(unix_ms(entry.created))
            .arg(unix_ms(entry.fresh_until()))
            .arg(epoch)
            .arg(token);
        let stored = self
            .run("put", deadline, Cluster::invoke::<i64>(&inv, &mut conn))
            .await;
        drop(ticket);
        match stored {
            Some(1) => {}
            Some(other) => {
                tracing::debug!(file = %key.file, verdict = other, "shared store fenced off");
            }
            None => return,
        }
        let mut pipe = redis::pipe();
        if ticket_token_empty {
            // A priming store: no fill registered the tenant.
            self.add_tenant(&mut pipe, &key);
        }
        pipe.cmd("PUBLISH")
            .arg(self.channel("fill"))
            .arg(format!("{}|{}", key.tenant.hex(), key.file.as_str()))
            .ignore();
        let _ = self
            .run("announce", deadline, pipe.query_async::<()>(&mut conn))
            .await;
    }

    async fn release_now(&self, key: Key, ticket: Ticket) {
        let deadline = self.deadline();
        let mut conn = self.conn();
        let mut inv = scripts::RELEASE.key(self.key(&key.tenant, "l", &key.file));
        inv.arg(&ticket.token);
        let _ = self
            .run("release", deadline, Cluster::invoke::<i64>(&inv, &mut conn))
            .await;
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(self.channel("fill")).arg(format!(
            "{}|{}",
            key.tenant.hex(),
            key.file.as_str()
        ));
        let _ = self
            .run("announce", deadline, publish.query_async::<()>(&mut conn))
            .await;
    }

    async fn invalidate_key(&self, key: Key, deadline: Instant) {
        let mut conn = self.conn();
        let mut inv = scripts::INVALIDATE.key(self.key(&key.tenant, "e", &key.file));
        inv.key(self.key(&key.tenant, "g", &key.file))
            .arg(EPOCH_TTL_MS);
        let _ = self
            .run(
                "invalidate",
                deadline,
                Cluster::invoke::<i64>(&inv, &mut conn),
            )
            .await;
    }

    async fn publish_invalidation(&self, message: String, deadline: Instant) {
        let mut conn = self.conn();
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(self.channel("inv")).arg(message);
        let _ = self
            .run("publish", deadline, publish.query_async::<()>(&mut conn))
            .await;
        self.inner
            .metrics
            .invalidations
            .get_or_create(&OriginLabel { origin: "local" })
            .inc();
    }

    async fn invalidate_file_now(&self, file: FileId) {
        let deadline = self.deadline();
        let mut conn = self.conn();
        let mut members = redis::cmd("SMEMBERS");
        members.arg(self.global_key("tenants"));
        let tenants = self
            .run(
                "tenants",
                deadline,
                members.query_async::<Vec<String>>(&mut conn),
            )
            .await
            .unwrap_or_default();
        for tenant in tenants
            .iter()
            .filter_map(|t| crate::tenant::Tenant::from_hex(t))
        {
            self.invalidate_key(Key { tenant, file }, deadline).await;
        }
        self.publish_invalidation(
            format!("{}|f|{}", self.inner.replica, file.as_str()),
            deadline,
        )
        .await;
    }

    async fn remove_now(&self, key: Key) {
        let deadline = self.deadline();
        self.invalidate_key(key, deadline).await;
        self.publish_invalidation(
            format!(
                "{}|k|{}|{}",
                self.inner.replica,
                key.tenant.hex(),
                key.file.as_str()
            ),
            deadline,
        )
        .await;
    }
}

impl SharedTier for Cluster {
    fn claim(
        &self,
        key: Key,
        newer_than: Option<f64>,
        deadline: Instant,
    ) -> BoxFuture<'static, Claim> {
        let this = self.clone();
        Box::pin(async move { this.claim_now(key, newer_than, deadline).await })
    }

    fn wait(&self, key: Key, until: Instant) -> BoxFuture<'static, Option<Arc<Entry>>> {
        let this = self.clone();
        Box::pin(async move { this.wait_now(key, until).await })
    }

    fn put(&self, key: Key, entry: Arc<Entry>, ticket: Option<Ticket>) -> BoxFuture<'static, ()> {
        let this = self.clone();
        Box::pin(async move { this.put_now(key, entry, ticket).await })
    }

    fn release(&self, key: Key, ticket: Ticket) -> BoxFuture<'static, ()> {
        let this = self.clone();
        Box::pin(async move { this.release_now(key, ticket).await })
    }

    fn invalidate_file(&self, file: FileId) -> BoxFuture<'static, ()> {
        let this = self.clone();
        Box::pin(async move { this.invalidate_file_now(file).await })
    }

    fn remove(&self, key: Key) -> BoxFuture<'static, ()> {
        let this = self.clone();
        Box::pin(async move { this.remove_now(key).await })
    }
}
