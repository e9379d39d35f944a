//! `hydrant sim`: run the simulator as a standalone server for the Python SDK suite, shell
//! benchmarks and manual poking.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use super::config::{SimAccount, SimConfig};
use super::handle::start;

/// Flags of `hydrant sim`.
#[derive(clap::Args, Debug, Clone)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// Lifetime of signed URLs minted per hydrate (500ms, 30s, 5m, 1h; bare number = seconds).
    #[arg(long, default_value = "1h", value_parser = crate::config::units::parse_duration)]
    pub url_lifetime: Duration,
    /// Hydrate calls allowed per API key per hour.
    #[arg(long, default_value_t = 2500)]
    pub hydrate_quota: u32,
    /// Files seeded per account (default: 20 for alpha, 5 for beta).
    #[arg(long)]
    pub seed_files: Option<usize>,
    /// `whsec_...` secret for webhook deliveries made through `/_sim/webhooks`.
    #[arg(long)]
    pub webhook_secret: Option<String>,
    /// Origins the fake CDN allows in CORS (comma-separated, or `*`).
    #[arg(long, default_value = "*", value_delimiter = ',')]
    pub cdn_cors_origins: Vec<String>,
    /// One more account with this API key (repeatable; `vg_sim_key_gamma` is account
    /// `gamma`), seeded like beta, so load tests can drive more tenants.
    #[arg(long = "extra-account")]
    pub extra_accounts: Vec<String>,
    /// Renditions seeded files (from the fifth on) have `skipped` instead of `ready`
    /// (comma-separated: download, preview, thumbnail, hls): smaller hydrated bodies.
    #[arg(long, value_delimiter = ',', value_parser = ["download", "preview", "thumbnail", "hls"])]
    pub seed_skipped: Vec<String>,
    /// Length in bytes of the `description` seeded files (from the fifth on) carry
    /// (default: none, null): with `--seed-skipped` it sets the hydrated body's size.
    #[arg(long, default_value_t = 0)]
    pub seed_description_bytes: usize,
}

impl SimArgs {
    /// The simulator configuration these flags describe.
    pub fn config(&self) -> SimConfig {
        let mut cfg = SimConfig {
            url_lifetime: self.url_lifetime,
            hydrate_quota_per_hour: self.hydrate_quota,
            webhook_secret: self.webhook_secret.clone(),
            cdn_cors_origins: self.cdn_cors_origins.clone(),
            seed_skipped: self.seed_skipped.clone(),
            seed_description_bytes: self.seed_description_bytes,
            ..SimConfig::default()
        };
        let seed = cfg.accounts.last().map_or(5, |a| a.seed_files);
        for key in &self.extra_accounts {
            let name = key.strip_prefix("vg_sim_key_").unwrap_or(key).to_string();
            cfg.accounts.push(SimAccount {
                api_key: key.clone(),
                name,
                seed_files: seed,
            });
        }
        if let Some(n) = self.seed_files {
            for a in &mut cfg.accounts {
                a.seed_files = n;
            }
        }
        cfg
    }
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Starts the simulator, prints `hydrant-sim listening on http://ADDR` and one
/// `account <name> key <api_key>` line per account, then serves until SIGTERM/SIGINT.
pub async fn run(args: SimArgs) -> std::io::Result<()> {
    let cfg = args.config();
    let accounts = cfg.accounts.clone();
    let handle = start(cfg, args.listen).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "hydrant-sim listening on {}", handle.base_url())?;
        for a in &accounts {
            writeln!(out, "account {} key {}", a.name, a.api_key)?;
        }
        out.flush()?;
    }
    terminated().await;
    handle.shutdown();
    // Let connections see the shutdown and close.
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}
