//! Filling the cache: single flight, refresh ahead, stale-if-error, priming, invalidation.
//!
//! A lookup that finds a fresh entry returns it (and, late in the entry's life, starts one
//! background refresh that never waits for a limiter permit). Otherwise the request joins the
//! one in-flight upstream call for its key, or starts it. The call runs in its own task, so a
//! client that disconnects neither cancels nor restarts it; waiters are woken by the shared
//! future (no polling) and wait a bounded time. When the upstream fails and the old entry's
//! URLs are still genuinely valid, the old entry is served as `STALE`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use tokio::time::Instant;

use crate::auth::UpstreamAuth;
use crate::body;
use crate::clock;
use crate::error::Error;
use crate::file_id::FileId;
use crate::gateway::strip_hop_by_hop;
use crate::hydration::entry::Entry;
use crate::hydration::policy::retry_after_secs;
use crate::hydration::policy::Policy;
use crate::hydration::store::{Key, Store};
use crate::telemetry::{CacheStatus, Lookup, Metrics, RouteClass};
use crate::tenant::Tenant;
use crate::upstream::limiter::{self, Limiter, Mode, Refused};
use crate::upstream::{UpstreamClient, UpstreamError};

/// Largest hydrate body hydrant buffers (a StorageFile is a few KiB).
const MAX_FILE_BODY: usize = 4 << 20;

/// An upstream answer that is not cached (401, 403, 429, 5xx, ...): passed on as it is.
#[derive(Debug)]
pub struct Reply {
    /// Upstream status.
    pub status: StatusCode,
    /// Upstream headers, hop-by-hop fields removed.
    pub headers: HeaderMap,
    /// Upstream body.
    pub body: Bytes,
}

/// What one upstream hydrate produced.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// A cacheable answer (200 file or 404), already stored.
    Entry(Arc<Entry>),
    /// Anything else.
    Reply(Arc<Reply>),
}

/// Why an upstream hydrate produced no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadError {
    /// Transport failure or timeout.
    Upstream(UpstreamError),
    /// The upstream's 200 was not a StorageFile.
    Invalid,
    /// The limiter refused.
    Refused(Refused),
}

impl From<LoadError> for Error {
    fn from(e: LoadError) -> Error {
        match e {
            LoadError::Upstream(u) => u.into(),
            LoadError::Invalid => Error::UpstreamInvalid("hydrate answer is not a file object"),
            LoadError::Refused(r) => Error::RateLimited {
                retry_after: retry_after_secs(r.retry_after),
                reason: r.reason,
            },
        }
    }
}

type Loaded = Result<Fetched, LoadError>;
type Flight = Shared<BoxFuture<'static, Loaded>>;

/// The result of a lookup, ready to be rendered by a route.
#[derive(Debug)]
pub enum Served {
    /// From cache (or freshly fetched into it).
    Entry {
        /// The entry.
        entry: Arc<Entry>,
        /// HIT, MISS or STALE.
        cache: CacheStatus,
    },
    /// An upstream answer to pass on as it is.
    Reply(Arc<Reply>),
}

/// The hydration cache's engine.
pub struct Hydrator {
    store: Store,
    upstream: UpstreamClient,
    limiter: Limiter,
    policy: Policy,
    metrics: Arc<Metrics>,
    flights: Mutex<HashMap<Key, Flight>>,
    allow_http: bool,
    flight_wait: Duration,
}

impl std::fmt::Debug for Hydrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hydrator")
            .field("store", &self.store)
            .finish()
    }
}

impl Hydrator {
    /// Assemble the engine.
    pub fn new(
        store: Store,
        upstream: UpstreamClient,
        limiter: Limiter,
        policy: Policy,
        metrics: Arc<Metrics>,
        max_wait: Duration,
        upstream_timeout: Duration,
    ) -> Hydrator {
        let allow_http = upstream.base().is_plain_http();
        Hydrator {
            store,
            upstream,
            limiter,
            policy,
            metrics,
            flights: Mutex::new(HashMap::new()),
            allow_http,
            // A flight lasts at most a limiter wait plus one upstream exchange.
            flight_wait: max_wait + upstream_timeout + Duration::from_secs(1),
        }
    }

    /// The store (for purge, metrics).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// (entries, weighted bytes) held now.
    pub fn usage(&self) -> (u64, u64) {
        self.store.usage()
    }

    /// The freshness policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// A fresh entry for `key`, if there is one (no upstream call, ever).
    pub fn fresh(&self, key: &Key) -> Option<Arc<Entry>> {
        let now = clock::now();
        self.store.get(key, now).filter(|e| e.is_fresh(now))
    }

    /// The fresh entry for `key`, if there is one: a cache hit, counted, with no upstream call
    /// and nothing to await (late in the entry's life it starts one background refresh).
    /// Routes answer hits from this synchronously and only build a future for the rest.
    pub fn hit(
        self: &Arc<Self>,
        key: &Key,
        auth: &UpstreamAuth,
        now: Instant,
    ) -> Option<Arc<Entry>> {
        let entry = self.store.get(key, now).filter(|e| e.is_fresh(now))?;
        self.count_hit(key, auth, &entry, now);
        Some(entry)
    }

    fn count_hit(
        self: &Arc<Self>,
        key: &Key,
        auth: &UpstreamAuth,
        entry: &Arc<Entry>,
        now: Instant,
    ) {
        if entry.status == StatusCode::NOT_FOUND {
            self.metrics.lookup(Lookup::negative);
        } else {
            self.metrics.lookup(Lookup::hit);
        }
        if entry.claim_refresh(now) {
            self.refresh(*key, auth, entry.clone());
        }
    }

    /// Look `key` up, hydrating from upstream when needed.
    pub async fn get(self: &Arc<Self>, key: Key, auth: &UpstreamAuth) -> Result<Served, Error> {
        let now = clock::now();
        let cached = self.store.get(&key, now);
        if let Some(entry) = &cached {
            if entry.is_fresh(now) {
                self.count_hit(&key, auth, entry, now);
                return Ok(Served::Entry {
                    entry: entry.clone(),
                    cache: CacheStatus::Hit,
                });
            }
        }
        // The miss path is boxed: its future is large, and the hit path's future is moved on
        // every request, so it should carry only what a hit needs.
        Box::pin(self.fill(key, auth, cached)).await
    }

    /// Miss (or stale) path: join or lead the flight, then decide between the new answer and
    /// the old entry.
    async fn fill(
        self: &Arc<Self>,
        key: Key,
        auth: &UpstreamAuth,
        cached: Option<Arc<Entry>>,
    ) -> Result<Served, Error> {
        let (flight, led) = self.join(key, auth, Mode::Wait);
        self.metrics
            .lookup(if led { Lookup::miss } else { Lookup::coalesced });
        let loaded = match tokio::time::timeout(self.flight_wait, flight).await {
            Ok(r) => r,
            Err(_) => Err(LoadError::Upstream(UpstreamError::Timeout)),
        };
        let stale = || {
            let now = clock::now();
            cached
                .as_ref()
                .filter(|e| e.is_servable_stale(now))
                .map(|e| {
                    self.metrics.lookup(Lookup::stale);
                    Served::Entry {
                        entry: e.clone(),
                        cache: CacheStatus::Stale,
                    }
                })
        };
        match loaded {
            Ok(Fetched::Entry(entry)) => Ok(Served::Entry {
                entry,
                cache: CacheStatus::Miss,
            }),
            Ok(Fetched::Reply(reply)) => {
                let upstream_trouble = reply.status.is_server_error()
                    || (reply.status == StatusCode::TOO_MANY_REQUESTS
                        && !limiter::is_insufficient_credits(&reply.body));
                if upstream_trouble {
                    if let Some(s) = stale() {
                        return Ok(s);
                    }
                }
                Ok(Served::Reply(reply))
            }
            Err(e) => match stale() {
                Some(s) => Ok(s),
                None => Err(e.into()),
            },
        }
    }

    /// Start a background refresh of a hot entry; it takes a permit only if one is free now.
    fn refresh(self: &Arc<Self>, key: Key, auth: &UpstreamAuth, entry: Arc<Entry>) {
        let (flight, led) = self.join(key, auth, Mode::TryNow);
        if !led {
            return; // a fetch for this key is already under way
        }
        self.metrics.refreshes.inc();
        tokio::spawn(async move {
            // The flight runs on its own; this only notes failure so a later read retries.
            if !matches!(flight.await, Ok(Fetched::Entry(_))) {
                entry.release_refresh();
            }
        });
    }

    /// Join the flight for `key`, or start it. Returns the flight and whether we started it.
    fn join(self: &Arc<Self>, key: Key, auth: &UpstreamAuth, mode: Mode) -> (Flight, bool) {
        let mut flights = match self.flights.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(f) = flights.get(&key) {
            return (f.clone(), false);
        }
        let this = self.clone();
        let header = auth.header.clone();
        let task = tokio::spawn(async move {
            let loaded = this.load(key, header, mode).await;
            match this.flights.lock() {
                Ok(mut f) => f.remove(&key),
                Err(poisoned) => poisoned.into_inner().remove(&key),
            };
            loaded
        });
        let flight = async move {
            task.await
                .unwrap_or(Err(LoadError::Upstream(UpstreamError::Connect)))
        }
        .boxed()
        .shared();
        flights.insert(key, flight.clone());
        (flight, true)
    }

    /// One upstream hydrate call, its result stored when cacheable.
    async fn load(&self, key: Key, auth: HeaderValue, mode: Mode) -> Loaded {
        self.limiter
            .acquire(&key.tenant, mode)
            .await
            .map_err(LoadError::Refused)?;
        let uri = self
            .upstream
            .uri(&format!("/v1/files/{}/hydrate", key.file))
            .map_err(|_| LoadError::Invalid)?;
        let mut req = Request::new(body::empty());
        *req.method_mut() = Method::POST;
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        h.insert(header::HOST, self.upstream.host());
        h.insert(header::AUTHORIZATION, auth);
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        h.insert("x-videogen-client", HeaderValue::from_static("hydrant"));
        let (buf, took) = match self.upstream.send_buffered(req, MAX_FILE_BODY).await {
            Ok(ok) => ok,
            Err(e) => {
                self.metrics
                    .observe_upstream(RouteClass::hydrate, 0, Duration::ZERO);
                tracing::warn!(file = %key.file, error = %e, "upstream hydrate failed");
                return Err(LoadError::Upstream(e));
            }
        };
        let status = buf.head.status;
        self.metrics
            .observe_upstream(RouteClass::hydrate, status.as_u16(), took);
        self.limiter
            .observe(&key.tenant, status.as_u16(), &buf.head.headers, &buf.body);
        let now = clock::now();
        let content_type = buf
            .head
            .headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("application/json"));
        match status {
            StatusCode::OK => {
                let entry = Entry::hydrated(&buf.body, content_type, now, &self.policy, self.allow_http)
                    .map_err(|e| {
                        tracing::warn!(file = %key.file, error = %e, "upstream hydrate answer unusable");
                        LoadError::Invalid
                    })?;
                let entry = Arc::new(entry);
                if entry.is_storable(now) {
                    self.store.insert(key, entry.clone());
                }
                Ok(Fetched::Entry(entry))
            }
            StatusCode::NOT_FOUND => {
                let entry = Arc::new(Entry::negative(&buf.body, content_type, now, &self.policy));
                self.store.insert(key, entry.clone());
                Ok(Fetched::Entry(entry))
            }
            _ => {
                let mut headers = buf.head.headers;
                strip_hop_by_hop(&mut headers);
                Ok(Fetched::Reply(Arc::new(Reply {
                    status,
                    headers,
                    body: buf.body,
                })))
            }
        }
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
        self.store.insert(Key { tenant, file }, Arc::new(entry));
        true
    }

    /// Drop a file's entries for every tenant.
    pub fn invalidate(&self, file: FileId) {
        self.store.invalidate_file(file);
    }

    /// Drop one tenant's entry for a file.
    pub fn remove(&self, key: &Key) {
        self.store.remove(key);
    }
}
