//! An in-process fake of the VideoGen REST API (`https://api.videogen.io`).
//!
//! hydrant's tests, benchmarks and `hydrant demo` need an upstream that behaves like VideoGen
//! (signed expiring URLs, hydrate vs. GET shapes, per-key rate limits, errors, webhooks) without
//! network access or an API key. The official Python SDK works against it directly
//! (`VideoGen(api_key="vg_sim_key_alpha", base_url=handle.base_url())`).
//!
//! # Routes
//!
//! | route | behaviour |
//! |---|---|
//! | `GET /v1/me`, `GET /v1/account` | account JSON |
//! | `GET /v1/files?limit&cursor` | `{files, hasMore, nextCursor}`, files hydrated |
//! | `POST /v1/files/search` | `{results: [{similarity, file}]}`, substring match on `displayName` |
//! | `GET /v1/files/{id}` | StorageFile without signed URLs |
//! | `POST /v1/files/{id}/hydrate` | StorageFile with fresh signed URLs |
//! | `POST /v1/files/{id}/archive`, `.../enable-public-preview`, `.../disable-public-preview` | state changes |
//! | `POST /v1/tools/{tool}` (the SDK's 13 tools) | `202 {toolExecutionId, status: "pending"}` |
//! | `GET /v1/tools/executions[/{id}]`, `POST .../{id}/cancel` | pending on the first poll, then succeeded |
//! | `GET/POST /v1/webhooks/endpoints`, `DELETE /v1/webhooks/endpoints/{id}` | in-memory registry |
//! | `GET /cdn/{fileId}/{rendition}?X-Amz-...` | signature + expiry checked (403), deterministic bytes |
//! | `GET /cdn/public/{fileId}` | public preview bytes, no signature |
//! | `/_sim/...` | control plane, no auth (table in `control.rs`) |
//!
//! # Seeded files
//!
//! Each account gets `seed_files` files with ids `vg_file_<short>_<nnnn>` (1-based, 4 digits),
//! where `<short>` is the API key without its `vg_sim_key_` prefix (`alpha`, `beta`):
//!
//! | n | type | download | preview | thumbnail | hls | public preview |
//! |---|---|---|---|---|---|---|
//! | 0001 | VIDEO | ready | ready | ready | ready | no |
//! | 0002 | VIDEO | ready | **pending** | ready | ready | no |
//! | 0003 | VIDEO | **failed** | ready | ready | **skipped** (`url ""`, `expiresAt 0`) | no |
//! | 0004 | IMAGE | ready | ready | ready | skipped | **yes** (permanent url, `expiresAt null`) |
//! | 0005+ | VIDEO | ready | ready | ready | ready | no |
//!
//! Default accounts: `vg_sim_key_alpha` ("Alpha Studio", 20 files) and `vg_sim_key_beta`
//! ("Beta Labs", 5 files). Display names cycle through a fixed list and end in ` #<n>`.

mod cli;
mod clock;
mod control;
mod faults;
mod files;
mod http;
mod routes;
mod server;
mod state;
mod webhook;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use cli::{run, SimArgs};

use state::Shared;

/// Webhook secret used when neither the call nor [`SimConfig::webhook_secret`] names one, so
/// a receiver can still verify deliveries (base64 of `hydrant-sim-webhook-secret`).
pub const DEFAULT_WEBHOOK_SECRET: &str = "whsec_aHlkcmFudC1zaW0td2ViaG9vay1zZWNyZXQ=";

/// Simulator settings; tests tweak quotas and URL lifetimes to exercise hydrant's edge cases.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Lifetime of the signed URLs minted per hydrate (default 1 h).
    pub url_lifetime: Duration,
    /// Hydrate calls allowed per API key per hour (default 2500, as VideoGen).
    pub hydrate_quota_per_hour: u32,
    /// Calls allowed per API key per hour for every other endpoint group (default 50 000).
    pub default_quota_per_hour: u32,
    /// Accounts (API keys) and their seeded files.
    pub accounts: Vec<SimAccount>,
    /// `whsec_...` secret used by [`SimHandle::deliver_webhook`] when the call passes `""`.
    pub webhook_secret: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            url_lifetime: Duration::from_secs(3600),
            hydrate_quota_per_hour: 2500,
            default_quota_per_hour: 50_000,
            accounts: vec![
                SimAccount {
                    api_key: "vg_sim_key_alpha".into(),
                    name: "Alpha Studio".into(),
                    seed_files: 20,
                },
                SimAccount {
                    api_key: "vg_sim_key_beta".into(),
                    name: "Beta Labs".into(),
                    seed_files: 5,
                },
            ],
            webhook_secret: None,
        }
    }
}

/// One simulated VideoGen account: files are private to the API key that owns them.
#[derive(Clone, Debug)]
pub struct SimAccount {
    /// Bearer token accepted for this account.
    pub api_key: String,
    /// Display name returned by `GET /v1/me`.
    pub name: String,
    /// Number of deterministic files seeded at start (see the module docs' seed table).
    pub seed_files: usize,
}

/// Per-rendition statuses of a file (`pending | ready | failed | skipped`), so tests can build
/// any mix of sources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceStatuses {
    /// `downloadSource` status.
    pub download: String,
    /// `previewSource` status.
    pub preview: String,
    /// `thumbnailSource` status.
    pub thumbnail: String,
    /// `hlsSource` status.
    pub hls: String,
}

impl Default for SourceStatuses {
    fn default() -> Self {
        Self {
            download: "ready".into(),
            preview: "ready".into(),
            thumbnail: "ready".into(),
            hls: "ready".into(),
        }
    }
}

/// What [`SimHandle::create_file`] creates; tests use it to stage files in specific states.
#[derive(Clone, Debug)]
pub struct FileSpec {
    /// `VIDEO`, `IMAGE`, `AUDIO`, ...
    pub file_type: String,
    /// `displayName` (also what search matches).
    pub display_name: String,
    /// `durationSeconds` (null when `None`).
    pub duration_seconds: Option<f64>,
    /// Status of each rendition.
    pub statuses: SourceStatuses,
    /// Whether `staticPublicPreviewSource` is enabled.
    pub public_preview: bool,
}

impl Default for FileSpec {
    fn default() -> Self {
        Self {
            file_type: "VIDEO".into(),
            display_name: "Untitled".into(),
            duration_seconds: Some(12.5),
            statuses: SourceStatuses::default(),
            public_preview: false,
        }
    }
}

/// Which requests a queued [`Fault`] applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultRoute {
    /// Every request except the `/_sim` control plane.
    Any,
    /// `POST /v1/files/{id}/hydrate`.
    Hydrate,
    /// `GET /v1/files/{id}`.
    GetFile,
    /// Any request whose path starts with this prefix.
    Other(String),
}

/// What a queued fault does to a matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Delay, then answer normally.
    Latency(Duration),
    /// Answer this status with a `{"message","code"}` body.
    Status(u16),
    /// `429` with code `rate_limited` and, when set, `Retry-After`.
    RateLimited {
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
    },
    /// `429` with code `insufficient_credits`.
    InsufficientCredits,
    /// `200` with a body that is not valid JSON.
    Malformed,
    /// Close the connection without any response.
    Drop,
    /// Never answer (until the simulator shuts down or a 5-minute bound).
    Hang,
}

/// A fault applied to the next `count` matching requests (queue order, first match wins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Which requests it matches.
    pub route: FaultRoute,
    /// What it does.
    pub kind: FaultKind,
    /// How many matching requests it affects; `0` queues nothing.
    pub count: u32,
}

/// Outcome of [`SimHandle::deliver_webhook`], so tests can assert on retries.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryReport {
    /// Attempts made (1-based count).
    pub attempts: u32,
    /// Whether some attempt got a 2xx.
    pub delivered: bool,
    /// Status of the last attempt that got an answer.
    pub last_status: Option<u16>,
}

/// Request counters, so tests can assert how many upstream calls hydrant made.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimStats {
    /// Every request except the `/_sim` control plane.
    pub total_requests: u64,
    /// `POST /v1/files/{id}/hydrate`.
    pub hydrate_calls: u64,
    /// `GET /v1/files/{id}`.
    pub get_file_calls: u64,
    /// `GET /v1/files`.
    pub list_files_calls: u64,
    /// `POST /v1/files/search`.
    pub search_calls: u64,
    /// `POST /v1/tools/{tool}`.
    pub tool_calls: u64,
    /// `GET /v1/tools/executions/{id}`.
    pub execution_get_calls: u64,
    /// `GET /cdn/...`.
    pub cdn_calls: u64,
    /// Per route, keyed like `"POST /v1/files/{id}/hydrate"`.
    pub by_route: BTreeMap<String, u64>,
}

/// A running simulator; cheap to clone, every clone controls the same instance.
#[derive(Clone)]
pub struct SimHandle {
    shared: Arc<Shared>,
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
    /// [`DEFAULT_WEBHOOK_SECRET`].
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
