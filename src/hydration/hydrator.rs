//! Filling the cache: single flight, refresh ahead, stale-if-error, priming, invalidation.
//!
//! A lookup that finds a fresh entry in memory returns it (and, late in the entry's life,
//! starts one background refresh that never waits for a limiter permit). Otherwise the request
//! joins the one in-flight fill for its key, or starts it. A fill asks the shared tier first
//! (in a cluster), then takes a limiter permit and makes one upstream call through the
//! [`Loader`]. It runs in its own task, so a client that disconnects neither cancels nor
//! restarts it; waiters are woken by the shared future (no polling) and wait a bounded time.
//! When the upstream fails and the old entry's URLs are still genuinely valid, the old entry
//! is served as `STALE`.
//!
//! Invalidation wins over a fill in flight: every removal bumps the store's generation, and a
//! fill stores its answer only if no removal happened since it started (the answer still goes
//! to the requests that waited for it, as the upstream's word at that time). In a cluster the
//! shared tier fences its own copy the same way, with an epoch per key and the fill's lease.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt, Shared};
use http::{header, HeaderValue, StatusCode};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::clock;
use crate::file_id::FileId;
use crate::hydration::entry::Entry;
use crate::hydration::file::FileError;
use crate::hydration::loader::Loader;
use crate::hydration::policy::Policy;
use crate::hydration::store::{Key, Store};
use crate::hydration::tier::{Claim, SharedTier, Ticket};
use crate::telemetry::{CacheStatus, Lookup, Metrics};
use crate::tenant::Tenant;
use crate::upstream::limiter::{self, Limiter, Mode, Refused};
use crate::upstream::{Reply, UpstreamError};

/// What a lookup gives a route to render.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A cached (or just fetched and cached) entry.
    Cached {
        /// The entry.
        entry: Arc<Entry>,
        /// `HIT`, `MISS` or `STALE`.
        cache: CacheStatus,
    },
    /// An upstream answer that is not cached (401, 403, 429, 5xx, ...), passed on as it is.
    Upstream(Arc<Reply>),
}

/// Why a fill produced no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// Transport failure or timeout.
    #[error(transparent)]
    Upstream(Arc<UpstreamError>),
    /// The upstream's 200 was not a StorageFile.
    #[error("hydrate answer is not a file object")]
    Invalid(#[source] FileError),
    /// The limiter refused.
    #[error(transparent)]
    Refused(Refused),
}

type Flight = Shared<BoxFuture<'static, Result<Answer, LoadError>>>;

/// What the hydrator is built from.
pub struct Parts {
    /// The in-memory tier.
    pub store: Store,
    /// The tier shared with other replicas, in cluster mode.
    pub shared: Option<Arc<dyn SharedTier>>,
    /// Makes upstream hydrate calls.
    pub loader: Arc<dyn Loader>,
    /// Guards the upstream quota.
    pub limiter: Limiter,
    /// Freshness rules.
    pub policy: Policy,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Longest a request waits for a limiter permit.
    pub max_wait: Duration,
    /// Longest one upstream exchange takes.
    pub upstream_timeout: Duration,
    /// Whether plain `http://` URLs may be redirected to (a plain-http upstream: simulator).
    pub allow_http: bool,
    /// Longest a fill waits on the shared tier in all.
    pub shared_timeout: Duration,
}

/// The hydration cache's engine.
pub struct Hydrator {
    store: Store,
    shared: Option<Arc<dyn SharedTier>>,
    loader: Arc<dyn Loader>,
    limiter: Limiter,
    policy: Policy,
    metrics: Arc<Metrics>,
    flights: Mutex<HashMap<Key, Flight>>,
    allow_http: bool,
    /// Longest a fill waits on the shared tier in all, past which it goes on without it.
    shared_timeout: Duration,
    flight_wait: Duration,
}

impl std::fmt::Debug for Hydrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hydrator")
            .field("store", &self.store)
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl Hydrator {
    /// Assemble the engine.
    pub fn new(p: Parts) -> Hydrator {
        Hydrator {
            store: p.store,
            shared: p.shared,
            loader: p.loader,
            limiter: p.limiter,
            policy: p.policy,
            metrics: p.metrics,
            flights: Mutex::new(HashMap::new()),
            allow_http: p.allow_http,
            shared_timeout: p.shared_timeout,
            // A flight lasts at most a limiter wait plus one upstream exchange.
            flight_wait: p.max_wait + p.upstream_timeout + Duration::from_secs(1),
        }
    }

    /// (entries, weighted bytes) held in memory now.
    pub fn usage(&self) -> (u64, u64) {
        self.store.usage()
    }

    /// The freshness policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The fresh in-memory entry for `key`, if there is one: a cache hit, counted, with no
    /// upstream call, no shared-tier call and nothing to await (late in the entry's life it
    /// starts one background refresh). Routes answer hits from this synchronously and build
    /// a future only for the rest.
    pub fn hit(
        self: &Arc<Self>,
        key: &Key,
        authorization: &HeaderValue,
        now: Instant,
    ) -> Option<Arc<Entry>> {
        let entry = self.store.get(key, now).filter(|e| e.is_fresh(now))?;
        self.count_hit(key, authorization, &entry, now);
        Some(entry)
    }

    fn count_hit(
        self: &Arc<Self>,
        key: &Key,
        authorization: &HeaderValue,
        entry: &Arc<Entry>,
        now: Instant,
    ) {
        if entry.status == StatusCode::NOT_FOUND {
            self.metrics.lookup(Lookup::negative);
        } else {
            self.metrics.lookup(Lookup::hit);
        }
        if entry.claim_refresh(now) {
            self.refresh(*key, authorization, entry.clone());
        }
    }

    /// Look `key` up, filling from the shared tier or the upstream when needed.
    pub async fn get(
        self: &Arc<Self>,
        key: Key,
        authorization: &HeaderValue,
    ) -> Result<Answer, LoadError> {
        let now = clock::now();
        let cached = self.store.get(&key, now);
        if let Some(entry) = &cached {
            if entry.is_fresh(now) {
                self.count_hit(&key, authorization, entry, now);
                return Ok(Answer::Cached {
                    entry: entry.clone(),
                    cache: CacheStatus::Hit,
                });
            }
        }
        // The miss path is boxed: its future is large, and the hit path's future is moved on
        // every request, so it should carry only what a hit needs.
        Box::pin(self.fill(key, authorization, cached)).await
    }

    /// Miss (or stale) path: join or lead the flight, then decide between the new answer and
    /// the old entry.
    async fn fill(
        self: &Arc<Self>,
        key: Key,
        authorization: &HeaderValue,
        cached: Option<Arc<Entry>>,
    ) -> Result<Answer, LoadError> {
        let (flight, led) = self.join(key, authorization, Mode::Wait);
        if !led {
            self.metrics.lookup(Lookup::coalesced);
        }
        let loaded = match tokio::time::timeout(self.flight_wait, flight).await {
            Ok(r) => r,
            Err(_) => Err(LoadError::Upstream(Arc::new(UpstreamError::Timeout))),
        };
        let stale = || {
            let now = clock::now();
            // The fill may have kept a shared tier's older entry in memory meanwhile.
            cached
                .clone()
                .or_else(|| self.store.get(&key, now))
                .filter(|e| e.is_servable_stale(now))
                .map(|e| {
                    self.metrics.lookup(Lookup::stale);
                    Answer::Cached {
                        entry: e.clone(),
                        cache: CacheStatus::Stale,
                    }
                })
        };
        match loaded {
            Ok(Answer::Upstream(reply)) => {
                let upstream_trouble = reply.status.is_server_error()
                    || (reply.status == StatusCode::TOO_MANY_REQUESTS
                        && !limiter::is_insufficient_credits(&reply.body));
                if upstream_trouble {
                    if let Some(s) = stale() {
                        return Ok(s);
                    }
                }
                Ok(Answer::Upstream(reply))
            }
            Ok(answer) => Ok(answer),
            Err(e) => stale().ok_or(e),
        }
    }

    /// Start a background refresh of a hot entry; it takes a permit only if one is free now.
    fn refresh(self: &Arc<Self>, key: Key, authorization: &HeaderValue, entry: Arc<Entry>) {
        let (flight, led) = self.join(key, authorization, Mode::TryNow);
        if !led {
            return; // a fill for this key is already under way
        }
        self.metrics.refreshes.inc();
        tokio::spawn(async move {
            // The flight runs on its own; this only notes failure so a later read retries.
            if !matches!(flight.await, Ok(Answer::Cached { .. })) {
                entry.release_refresh();
            }
        });
    }

    /// Join the flight for `key`, or start it. Returns the flight and whether we started it.
    fn join(self: &Arc<Self>, key: Key, authorization: &HeaderValue, mode: Mode) -> (Flight, bool) {
        let mut flights = self.flights.lock();
        if let Some(f) = flights.get(&key) {
            return (f.clone(), false);
        }
        let this = self.clone();
        let authorization = authorization.clone();
        // A refresh only counts a shared entry newer than the one it replaces.
        let newer_than = match mode {
            Mode::TryNow => self
                .store
                .get(&key, clock::now())
                .map(|e| clock::unix_at(e.created)),
            Mode::Wait => None,
        };
        let task = tokio::spawn(async move {
            let loaded = this.load(key, authorization, mode, newer_than).await;
            this.flights.lock().remove(&key);
            loaded
        });
        let flight = async move {
            match task.await {
                Ok(loaded) => loaded,
                // The fill task panicked or was cancelled at shutdown.
                Err(e) => Err(LoadError::Upstream(Arc::new(UpstreamError::Connect(
                    Box::new(e),
                )))),
            }
        }
        .boxed()
        .shared();
        flights.insert(key, flight.clone());
        (flight, true)
    }

    /// Keep a shared tier's older entry in memory when there is none, so stale-if-error can
    /// serve it (it is not fresh, so no hit serves it).
    fn keep_stale(&self, key: Key, stale: Option<Arc<Entry>>, generation: u64) {
        let now = clock::now();
        if let Some(e) = stale.filter(|e| e.is_servable_stale(now)) {
            if self.store.get(&key, now).is_none() {
                self.store.insert_if_current(key, e, generation);
            }
        }
    }

    /// Ask the shared tier first: a fresh entry from another replica, or this replica leads
    /// the fill (`Some(ticket)`), or it is alone (`None`), or it waits for the replica that
    /// leads. Returns `Err(answer)` when the answer is already known.
    async fn consult_shared(
        &self,
        shared: &dyn SharedTier,
        key: Key,
        mode: Mode,
        newer_than: Option<f64>,
        generation: u64,
    ) -> Result<Option<Ticket>, Result<Answer, LoadError>> {
        let start = clock::now();
        let deadline = start + self.shared_timeout;
        let until = start + self.flight_wait;
        // Each round either answers, leads, or waits for a lease that then lapsed.
        for _ in 0..16 {
            match shared.claim(key, newer_than, deadline).await {
                Claim::Alone => return Ok(None),
                Claim::Found(entry) => {
                    self.metrics.shared_hit();
                    self.store.insert_if_current(key, entry.clone(), generation);
                    return Err(Ok(Answer::Cached {
                        entry,
                        cache: CacheStatus::Hit,
                    }));
                }
                Claim::Lead { ticket, stale } => {
                    self.keep_stale(key, stale, generation);
                    return Ok(Some(ticket));
                }
                Claim::Follow { stale } => {
                    self.keep_stale(key, stale, generation);
                    if mode == Mode::TryNow {
                        // Another replica refreshes this entry; its result reaches us through
                        // the shared tier on a later read.
                        return Err(Err(LoadError::Upstream(Arc::new(UpstreamError::Timeout))));
                    }
                    if let Some(entry) = shared.wait(key, until).await {
                        self.metrics.lookup(Lookup::coalesced);
                        self.store.insert_if_current(key, entry.clone(), generation);
                        return Err(Ok(Answer::Cached {
                            entry,
                            cache: CacheStatus::Miss,
                        }));
                    }
                    if clock::now() >= until {
                        return Err(Err(LoadError::Upstream(Arc::new(UpstreamError::Timeout))));
                    }
                    // The leader's lease lapsed without an entry: claim again.
                }
            }
        }
        Ok(None)
    }

    /// One fill: the shared tier, else a permit and one upstream hydrate, the result stored
    /// when cacheable (and no invalidation happened meanwhile).
    async fn load(
        &self,
        key: Key,
        authorization: HeaderValue,
        mode: Mode,
        newer_than: Option<f64>,
    ) -> Result<Answer, LoadError> {
        let generation = self.store.generation();
        let ticket = match &self.shared {
            Some(shared) => {
                match self
                    .consult_shared(&**shared, key, mode, newer_than, generation)
                    .await
                {
                    Ok(ticket) => ticket,
                    Err(answer) => return answer,
                }
            }
            None => None,
        };
        if mode == Mode::Wait {
            // Counted here, not at the join: a fill the shared tier answered was a hit.
            self.metrics.lookup(Lookup::miss);
        }
        let fetched = self.fetch(key, authorization, mode, generation).await;
        if let Some(shared) = &self.shared {
            // The shared tier fences this store itself (per-key epoch, the lease).
            let stored = match &fetched {
                Ok(Answer::Cached {
                    entry,
                    cache: CacheStatus::Miss,
                }) if entry.is_storable(clock::now()) => Some(entry.clone()),
                _ => None,
            };
            match (stored, ticket) {
                (Some(entry), ticket) => {
                    tokio::spawn(shared.put(key, entry, ticket));
                }
                (None, Some(ticket)) => {
                    tokio::spawn(shared.release(key, ticket));
                }
                (None, None) => {}
            }
        }
        fetched
    }

    /// A permit and one upstream hydrate; the answer stored in memory when cacheable.
    async fn fetch(
        &self,
        key: Key,
        authorization: HeaderValue,
        mode: Mode,
        generation: u64,
    ) -> Result<Answer, LoadError> {
        self.limiter
            .acquire(&key.tenant, mode)
            .await
            .map_err(LoadError::Refused)?;
        let reply = match self.loader.hydrate(key.file, authorization).await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::warn!(file = %key.file, error = %e, "upstream hydrate failed");
                return Err(LoadError::Upstream(Arc::new(e)));
            }
        };
        self.limiter.observe(
            &key.tenant,
            reply.status.as_u16(),
            &reply.headers,
            &reply.body,
        );
        let now = clock::now();
        let content_type = reply
            .headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("application/json"));
        let entry = match reply.status {
            StatusCode::OK => Entry::hydrated(
                &reply.body,
                content_type,
                now,
                &self.policy,
                self.allow_http,
            )
            .map_err(|e| {
                tracing::warn!(file = %key.file, error = %e, "upstream hydrate answer unusable");
                LoadError::Invalid(e)
            })?,
            StatusCode::NOT_FOUND => Entry::negative(&reply.body, content_type, now, &self.policy),
            _ => return Ok(Answer::Upstream(Arc::new(reply))),
        };
        let entry = Arc::new(entry);
        if entry.is_storable(now) && !self.store.insert_if_current(key, entry.clone(), generation) {
            tracing::debug!(file = %key.file, "fill overtaken by an invalidation: not stored");
        }
        Ok(Answer::Cached {
            entry,
            cache: CacheStatus::Miss,
        })
    }

    /// Store a hydrated file object seen elsewhere (list, search, execution, webhook) for
    /// `tenant`, when it has ready urls. Returns whether it was stored.
    pub fn prime(&self, tenant: Tenant, file: FileId, object: &[u8]) -> bool {
        let now = clock::now();
        let Ok(entry) = Entry::hydrated(
            object,
            HeaderValue::from_static("application/json"),
            now,
            &self.policy,
            self.allow_http,
        ) else {
            return false;
        };
        if !entry.has_ready_url() || !entry.is_fresh(now) {
            return false;
        }
        let key = Key { tenant, file };
        let entry = Arc::new(entry);
        self.store.insert(key, entry.clone());
        if let Some(shared) = &self.shared {
            tokio::spawn(shared.put(key, entry, None));
        }
        true
    }

    /// Drop a file's entries for every tenant, in every tier. Done when this returns (the
    /// shared tier's part is bounded by its own timeout).
    pub async fn invalidate(&self, file: FileId) {
        self.store.invalidate_file(file);
        if let Some(shared) = &self.shared {
            shared.invalidate_file(file).await;
        }
    }

    /// Drop one tenant's entry for a file, in every tier.
    pub async fn remove(&self, key: Key) {
        self.store.remove(&key);
        if let Some(shared) = &self.shared {
            shared.remove(key).await;
        }
    }
}

#[cfg(test)]
#[path = "hydrator_tests.rs"]
mod tests;
