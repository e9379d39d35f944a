//! The shared state of a running hydrant: configuration, clients, cache, metrics.
//!
//! Built once at start-up and shared by `Arc` with every connection; nothing in it is
//! per-request, and everything in it is safe to use concurrently.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::auth::Auth;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::cors::Cors;
use crate::hydration::hydrator::{self, Hydrator};
use crate::hydration::loader::UpstreamLoader;
use crate::hydration::policy::Policy;
use crate::hydration::store::Store;
use crate::json_view::Views;
use crate::signing::Signer;
use crate::telemetry::Metrics;
use crate::upstream::limiter::Limiter;
use crate::upstream::UpstreamClient;
use crate::webhooks::Webhooks;

/// Everything a request handler may need.
pub struct App {
    /// Validated configuration.
    pub(crate) config: Config,
    /// Credentials and tenants.
    pub(crate) auth: Auth,
    /// The VideoGen API client.
    pub(crate) upstream: UpstreamClient,
    /// Metrics registry.
    pub(crate) metrics: Arc<Metrics>,
    /// The hydration cache.
    pub(crate) hydrator: Arc<Hydrator>,
    /// Signed-URL keys, when signing is on.
    pub(crate) signer: Option<Signer>,
    /// The webhook endpoint, when a webhook secret is configured.
    pub(crate) webhooks: Option<Webhooks>,
    /// CORS on `/files/...`, when `--cors-origins` is set.
    pub(crate) cors: Option<Cors>,
    /// Rendered JSON views of `GET /files/{id}`, per entry.
    pub(crate) views: Views,
    draining: AtomicBool,
}

impl App {
    /// Build the application state from a validated configuration.
    pub fn new(config: Config) -> std::io::Result<Arc<App>> {
        let metrics = Arc::new(Metrics::new());
        let upstream = UpstreamClient::new(&config)?;
        let policy = Policy {
            margin: config.expiry_margin,
            pending_ttl: config.pending_ttl,
            negative_ttl: config.negative_ttl,
            max_ttl: config.max_ttl,
        };
        let store = Store::new(config.cache_max_bytes);
        // Cluster mode: one Redis handle is the shared tier, the quota and the dedupe.
        let cluster = match &config.redis {
            Some(redis) => Some(
                Cluster::start(
                    redis,
                    store.clone(),
                    metrics.clone(),
                    config.upstream.is_plain_http(),
                )
                .map_err(|e| std::io::Error::other(format!("redis client: {:?}", e.kind())))?,
            ),
            None => None,
        };
        let limiter = Limiter::with_shared(
            config.hydrate_rate,
            config.hydrate_burst,
            config.hydrate_max_wait,
            metrics.clone(),
            cluster
                .clone()
                .map(|c| Arc::new(c) as Arc<dyn crate::upstream::limiter::SharedQuota>),
        );
        let hydrator = Arc::new(Hydrator::new(hydrator::Parts {
            store,
            shared: cluster
                .clone()
                .map(|c| Arc::new(c) as Arc<dyn crate::hydration::tier::SharedTier>),
            loader: Arc::new(UpstreamLoader::new(upstream.clone(), metrics.clone())),
            limiter,
            policy,
            metrics: metrics.clone(),
            max_wait: config.hydrate_max_wait,
            upstream_timeout: config.upstream_timeout,
            allow_http: upstream.base().is_plain_http(),
            shared_timeout: config
                .redis
                .as_ref()
                .map_or(crate::config::defaults::REDIS_TIMEOUT, |r| r.timeout),
        }));
        let signer = Signer::new(
            config
                .signing_keys
                .iter()
                .map(|k| k.expose().to_string())
                .collect(),
        );
        let webhooks = Webhooks::new(
            &config,
            metrics.clone(),
            cluster.map(|c| Arc::new(c) as Arc<dyn crate::webhooks::SharedDedupe>),
        )?;
        let cors = config.cors_origins.clone().map(Cors::new);
        Ok(Arc::new(App {
            webhooks,
            cors,
            views: Views::default(),
            auth: Auth::new(&config),
            upstream,
            metrics,
            hydrator,
            signer,
            config,
            draining: AtomicBool::new(false),
        }))
    }

    /// Whether shutdown has begun (`/readyz` answers 503).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Mark the start of shutdown.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
}
