//! What a simulator starts with and what tests stage: settings, accounts, file specs and the
//! default webhook secret. Plain data, no behaviour beyond defaults.

use std::time::Duration;

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
    /// `whsec_...` secret used by
    /// [`SimHandle::deliver_webhook`](super::SimHandle::deliver_webhook) when the call passes
    /// `""`.
    pub webhook_secret: Option<String>,
    /// Origins the fake CDN allows to read its answers from scripts, as a bucket's CORS
    /// configuration: `*` (the default) or exact origins (`http://127.0.0.1:3000`; `null`
    /// for requests whose origin a cross-origin redirect made opaque).
    pub cdn_cors_origins: Vec<String>,
    /// Renditions (`download`, `preview`, `thumbnail`, `hls`) that seeded files from the
    /// fifth on have `skipped`, so their hydrated bodies carry fewer signed URLs (default
    /// none). `benches/memory.sh` uses it to measure entries with a smaller body.
    pub seed_skipped: Vec<String>,
    /// Length of the `description` seeded files from the fifth on carry (default 0: null).
    /// With `seed_skipped`, it lets `benches/memory.sh` set the body size to the byte.
    pub seed_description_bytes: usize,
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
            cdn_cors_origins: vec!["*".into()],
            seed_skipped: Vec::new(),
            seed_description_bytes: 0,
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
    /// Number of deterministic files seeded at start (see the seed table in the [`sim`](super) docs).
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

/// What [`SimHandle::create_file`](super::SimHandle::create_file) creates; tests use it to
/// stage files in specific states.
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
    /// `description` (null when `None`).
    pub description: Option<String>,
}

impl Default for FileSpec {
    fn default() -> Self {
        Self {
            file_type: "VIDEO".into(),
            display_name: "Untitled".into(),
            duration_seconds: Some(12.5),
            statuses: SourceStatuses::default(),
            public_preview: false,
            description: None,
        }
    }
}
