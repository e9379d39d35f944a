//! `hydrant sim`: run the simulator as a standalone server for the Python SDK suite, shell
//! benchmarks and manual poking.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use super::{start, SimConfig};

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not `<number>[ms|s|m|h|d]`.
    #[error("invalid duration {0:?} (expected e.g. 500ms, 30s, 5m, 1h; a bare number is seconds)")]
    Invalid(String),
}

/// Parses `500ms`, `30s`, `5m`, `1h`, `2d` or bare seconds (fractions allowed), so the CLI
/// accepts the same duration syntax as hydrant's configuration.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let err = || DurationError::Invalid(s.to_string());
    let n: f64 = num.parse().map_err(|_| err())?;
    let mult = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return Err(err()),
    };
    let secs = n * mult;
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Flags of `hydrant sim`.
#[derive(clap::Args, Debug, Clone)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// Lifetime of signed URLs minted per hydrate (500ms, 30s, 5m, 1h; bare number = seconds).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
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
}

impl SimArgs {
    /// The simulator configuration these flags describe.
    pub fn config(&self) -> SimConfig {
        let mut cfg = SimConfig {
            url_lifetime: self.url_lifetime,
            hydrate_quota_per_hour: self.hydrate_quota,
            webhook_secret: self.webhook_secret.clone(),
            ..SimConfig::default()
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("1e400").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
