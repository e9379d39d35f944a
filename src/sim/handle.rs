//! [`SimHandle`], the in-process remote control of a running simulator, and [`start`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::config::{FileSpec, SimConfig};
use super::faults::Fault;
use super::server;
use super::state::Shared;
use super::stats::SimStats;
use super::webhook::{self, DeliveryReport};

/// A running simulator; cheap to clone, every clone controls the same instance.
#[derive(Clone)]
pub struct SimHandle {
    pub(super) shared: Arc<Shared>,
}

/// Binds `listen` (use port 0 in tests), seeds the accounts and serves until
/// [`SimHandle::shutdown`].
pub async fn start(cfg: SimConfig, listen: SocketAddr) -> std::io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::new(cfg, addr));
    tokio::spawn(server::serve(listener, shared.clone()));
    Ok(SimHandle { shared })
}

impl SimHandle {
    /// The bound address (the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://IP:PORT`, the base URL to give an SDK or hydrant's `--upstream`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// A snapshot of the request counters.
    pub fn stats(&self) -> SimStats {
        self.shared.lock().stats.clone()
    }

    /// Zeroes every counter (including per-file hydrate counts).
    pub fn reset_stats(&self) {
        self.shared.lock().reset_stats();
    }

    /// Forgets the rate-limit windows, so every key has its full quota again.
    pub fn reset_rate_limits(&self) {
        self.shared.lock().windows.clear();
    }

    /// Changes the hourly quotas (hydrate group, every other group) at run time.
    pub fn set_quotas(&self, hydrate_per_hour: u32, default_per_hour: u32) {
        let mut inner = self.shared.lock();
        inner.hydrate_quota = hydrate_per_hour;
        inner.default_quota = default_per_hour;
    }

    /// How many hydrate calls this file id received (any account, any outcome).
    pub fn hydrate_calls(&self, file_id: &str) -> u64 {
        self.shared
            .lock()
            .by_file
            .get(file_id)
            .copied()
            .unwrap_or(0)
    }

    /// Queues a fault for the next `fault.count` matching requests.
    pub fn push_fault(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Creates a file owned by `api_key` and returns its id; returns `""` (and creates nothing)
    /// when `api_key` is not a configured account.
    pub fn create_file(&self, api_key: &str, spec: FileSpec) -> String {
        self.shared
            .create_file(api_key, spec, None)
            .unwrap_or_default()
    }

    /// Sets one rendition's status (`download|preview|thumbnail|hls` to
    /// `pending|ready|failed|skipped`); returns false when the file, rendition or status is
    /// unknown.
    pub fn set_status(&self, file_id: &str, rendition: &str, status: &str) -> bool {
        self.shared.lock().set_status(file_id, rendition, status)
    }

    /// Changes the lifetime of URLs minted from now on.
    pub fn set_url_lifetime(&self, d: Duration) {
        self.shared.lock().url_lifetime = d;
    }

    /// `{event, fileId, occurredAt, file}` with a freshly hydrated file, or `None` when the file
    /// does not exist; the payload VideoGen sends for file events.
    pub fn file_event(&self, event: &str, file_id: &str) -> Option<serde_json::Value> {
        self.shared.file_event(event, file_id)
    }

    /// Delivers `event` to `url` as VideoGen does (Standard Webhooks signature, retries with
    /// exponential backoff from `first_backoff`, same `webhook-id` on every attempt).
    /// `secret` `""` falls back to [`SimConfig::webhook_secret`], then
    /// [`DEFAULT_WEBHOOK_SECRET`](super::DEFAULT_WEBHOOK_SECRET).
    pub async fn deliver_webhook(
        &self,
        url: &str,
        secret: &str,
        event: serde_json::Value,
        max_attempts: u32,
        first_backoff: Duration,
    ) -> DeliveryReport {
        let secret = self.shared.webhook_secret_or(secret);
        webhook::deliver(
            url,
            &secret,
            &event,
            max_attempts,
            first_backoff,
            webhook::ATTEMPT_TIMEOUT,
        )
        .await
    }

    /// Stops accepting connections and closes open ones; idempotent.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }
}
