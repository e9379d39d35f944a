//! Every default, once. Configuration resolution, clap's `--help`, the freshness policy and
//! the docs tables all read these; a test checks README's and `deploy/`'s tables against them.

use std::time::Duration;

use super::units::{format_duration, Rate};

/// `--listen`.
pub const LISTEN: &str = "127.0.0.1:8080";
/// `--upstream`.
pub const UPSTREAM: &str = "https://api.videogen.io";
/// `--expiry-margin`: the official SDKs re-hydrate 60 s before a URL expires, and so does hydrant.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// `--pending-ttl`.
pub const PENDING_TTL: Duration = Duration::from_secs(5);
/// `--negative-ttl`.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(30);
/// `--max-ttl`.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// `--cache-max-bytes`.
pub const CACHE_MAX_BYTES: u64 = 256 << 20;
/// `--hydrate-rate`: the upstream's own hydrate quota per API key.
pub const HYDRATE_RATE: Rate = Rate {
    count: 2500,
    per: Duration::from_secs(3600),
};
/// `--hydrate-burst`.
pub const HYDRATE_BURST: u32 = 50;
/// `--hydrate-max-wait`.
pub const HYDRATE_MAX_WAIT: Duration = Duration::from_secs(2);
/// `--drain-timeout`: below the 35 s `TimeoutStopSec` of the shipped systemd unit.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// `--connect-timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// `--upstream-timeout`.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// `--redis-prefix`.
pub const REDIS_PREFIX: &str = "hydrant:";
/// `--redis-timeout`: the most a request waits on Redis in all, past which it goes on without.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(100);

/// `--max-connections`: open client connections.
pub const MAX_CONNECTIONS: usize = 10_000;
/// How long a client connection may take to complete its next request head, counted from
/// when it opened (TLS handshake included) or from when its last response was sent; past it
/// the connection is closed without an answer. Not an option: 30 s is what slow mobile
/// clients need and what bounds a slowloris; tests shorten it through `server::ServeOptions`.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// File descriptors kept free of client connections (upstream and Redis connections, the log
/// file, the listener): start-up lowers the connection limit to fit `RLIMIT_NOFILE` minus this
/// (minus half the limit when that is smaller).
pub const FD_RESERVE: u64 = 256;

/// `--workers`: the parallelism the process may use (CPU affinity and cgroup quota), or 1
/// when the OS does not say.
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// A size in the parser's syntax, with the largest exact binary unit (`256MiB`).
pub fn format_size(n: u64) -> String {
    for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n != 0 && n.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

/// A default duration as the docs spell it: whole hours as `Nh`, else whole seconds (`60s`
/// rather than `1m`, as the SDK's margin is usually written).
fn show(d: Duration) -> String {
    match (d.as_secs(), d.subsec_nanos()) {
        (s, 0) if s != 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        (s, 0) => format!("{s}s"),
        _ => format_duration(d),
    }
}

/// `(flag, default)` for every option with a default, spelled as users write them.
pub fn table() -> Vec<(&'static str, String)> {
    vec![
        ("listen", LISTEN.to_string()),
        ("upstream", UPSTREAM.to_string()),
        ("expiry-margin", show(EXPIRY_MARGIN)),
        ("pending-ttl", show(PENDING_TTL)),
        ("negative-ttl", show(NEGATIVE_TTL)),
        ("max-ttl", show(MAX_TTL)),
        ("cache-max-bytes", format_size(CACHE_MAX_BYTES)),
        ("hydrate-rate", HYDRATE_RATE.to_string()),
        ("hydrate-burst", HYDRATE_BURST.to_string()),
        ("hydrate-max-wait", show(HYDRATE_MAX_WAIT)),
        ("serve-get-from-cache", "false".to_string()),
        ("drain-timeout", show(DRAIN_TIMEOUT)),
        ("connect-timeout", show(CONNECT_TIMEOUT)),
        ("upstream-timeout", show(UPSTREAM_TIMEOUT)),
        ("log-format", "text".to_string()),
        ("native-roots", "false".to_string()),
        ("redis-prefix", REDIS_PREFIX.to_string()),
        ("redis-timeout", show(REDIS_TIMEOUT)),
        ("max-connections", MAX_CONNECTIONS.to_string()),
    ]
}

/// `--help` text for `flag`: `what`, then its default.
pub(crate) fn help(what: &str, flag: &str) -> String {
    match table().into_iter().find(|(f, _)| *f == flag) {
        Some((_, d)) => format!("{what} [default: {d}]"),
        None => what.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_in_the_largest_exact_unit() {
        assert_eq!(format_size(CACHE_MAX_BYTES), "256MiB");
        assert_eq!(format_size(1 << 30), "1GiB");
        assert_eq!(format_size(1536), "1536");
        assert_eq!(format_size(0), "0");
    }

    #[test]
    fn every_default_parses_back_to_itself() {
        use super::super::units::{parse_duration, parse_rate, parse_size};
        for (flag, value) in table() {
            let ok = match flag {
                "cache-max-bytes" => parse_size(&value).is_ok_and(|n| n == CACHE_MAX_BYTES),
                "hydrate-rate" => parse_rate(&value).is_ok_and(|r| r == HYDRATE_RATE),
                f if f.ends_with("-ttl") || f.ends_with("-timeout") || f.ends_with("-wait") => {
                    parse_duration(&value).is_ok()
                }
                _ => true,
            };
            assert!(ok, "{flag} = {value}");
        }
        assert_eq!(parse_duration("60s").unwrap(), EXPIRY_MARGIN);
    }

    /// README's configuration table and `deploy/hydrant.env.example` (where defaults are shown
    /// commented out) say what the code does.
    #[test]
    fn the_docs_tables_agree_with_the_code() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        let env_example = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/hydrant.env.example"
        ));
        for (flag, value) in table() {
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `--{flag}` |")))
                .unwrap_or_else(|| panic!("README has no row for --{flag}"));
            let cell = row.split('|').nth(3).unwrap_or("").trim();
            assert_eq!(cell, format!("`{value}`"), "README's default for --{flag}");
            let var = format!("HYDRANT_{}=", flag.to_uppercase().replace('-', "_"));
            if let Some(line) = env_example
                .lines()
                .find(|l| l.trim_start_matches('#').starts_with(&var))
            {
                if line.starts_with('#') {
                    assert_eq!(
                        line.trim_start_matches('#'),
                        format!("{var}{value}"),
                        "deploy/hydrant.env.example's default for --{flag}"
                    );
                }
            }
        }
    }
}
