//! The shared state of a running hydrant: configuration, clients, cache, metrics.
//!
//! Built once at start-up and shared by `Arc` with every connection; nothing in it is
//! per-request, and everything in it is safe to use concurrently.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::auth::Auth;
use crate::config::Config;
use crate::telemetry::Metrics;
use crate::upstream::UpstreamClient;

/// Everything a request handler may need.
pub struct App {
    /// Validated configuration.
    pub config: Config,
    /// Credentials and tenants.
    pub auth: Auth,
    /// The VideoGen API client.
    pub upstream: UpstreamClient,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    draining: AtomicBool,
}

impl App {
    /// Build the application state from a validated configuration.
    pub fn new(config: Config) -> std::io::Result<Arc<App>> {
        let metrics = Arc::new(Metrics::new());
        let upstream = UpstreamClient::new(&config)?;
        Ok(Arc::new(App {
            auth: Auth::new(&config),
            upstream,
            metrics,
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
