//! Configuration: every option is a flag, an environment variable and a TOML key.
//!
//! Precedence is flags > env > file > default ([`defaults`]). clap resolves flags and
//! env together (its `env` attribute), so each option is an `Option<String>` here and the file
//! fills only what both left empty. Every value is validated once, at start-up, and a bad one
//! stops hydrant with a single line naming the option.

pub mod defaults;
pub mod units;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::Uri;

pub use units::Rate;

/// A secret string: usable, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself, for the few places that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Raw options as given on the command line or in the environment.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// TOML file with the same keys as the flags (`listen`, `hydrate_rate`, ...).
    #[arg(long, env = "HYDRANT_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long, env = "HYDRANT_LISTEN", help = defaults::help("Address to listen on.", "listen"))]
    pub listen: Option<String>,
    #[arg(long, env = "HYDRANT_UPSTREAM", help = defaults::help("VideoGen API base URL (plain http:// allowed for simulators and sidecars).", "upstream"))]
    pub upstream: Option<String>,
    /// The proxy's own VideoGen API key (for /files/..., client tokens and webhooks).
    #[arg(long, env = "VIDEOGEN_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Comma-separated tokens that are swapped for the proxy's own key.
    #[arg(long, env = "HYDRANT_CLIENT_TOKENS", hide_env_values = true)]
    pub client_tokens: Option<String>,
    /// Comma-separated HMAC keys for signed /files URLs (the first one signs).
    #[arg(long, env = "HYDRANT_SIGNING_KEYS", hide_env_values = true)]
    pub signing_keys: Option<String>,
    /// Base of the absolute stable URLs hydrant returns (default http://{listen}).
    #[arg(long, env = "HYDRANT_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[arg(long, env = "HYDRANT_EXPIRY_MARGIN", help = defaults::help("How long before a signed URL's expiry hydrant stops handing it out.", "expiry-margin"))]
    pub expiry_margin: Option<String>,
    #[arg(long, env = "HYDRANT_PENDING_TTL", help = defaults::help("Longest life of an entry with pending sources.", "pending-ttl"))]
    pub pending_ttl: Option<String>,
    #[arg(long, env = "HYDRANT_NEGATIVE_TTL", help = defaults::help("Life of a cached upstream 404.", "negative-ttl"))]
    pub negative_ttl: Option<String>,
    #[arg(long, env = "HYDRANT_MAX_TTL", help = defaults::help("Cap on any entry's life.", "max-ttl"))]
    pub max_ttl: Option<String>,
    #[arg(long, env = "HYDRANT_CACHE_MAX_BYTES", help = defaults::help("Memory bound of the cache, by body bytes.", "cache-max-bytes"))]
    pub cache_max_bytes: Option<String>,
    #[arg(long, env = "HYDRANT_HYDRATE_RATE", help = defaults::help("Upstream hydrate calls per tenant: N/s, N/m, N/h.", "hydrate-rate"))]
    pub hydrate_rate: Option<String>,
    #[arg(long, env = "HYDRANT_HYDRATE_BURST", help = defaults::help("Burst of the hydrate limiter.", "hydrate-burst"))]
    pub hydrate_burst: Option<String>,
    #[arg(long, env = "HYDRANT_HYDRATE_MAX_WAIT", help = defaults::help("Longest wait for a limiter permit before stale or 429.", "hydrate-max-wait"))]
    pub hydrate_max_wait: Option<String>,
    /// Answer GET /v1/files/{id} from a fresh hydrated entry.
    #[arg(long, env = "HYDRANT_SERVE_GET_FROM_CACHE", num_args = 0..=1, default_missing_value = "true")]
    pub serve_get_from_cache: Option<String>,
    /// Standard Webhooks secret(s), comma-separated; enables /webhooks/videogen.
    #[arg(long, env = "HYDRANT_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// URL verified webhooks are relayed to, unchanged.
    #[arg(long, env = "HYDRANT_WEBHOOK_FORWARD")]
    pub webhook_forward: Option<String>,
    /// Token enabling /admin/... .
    #[arg(long, env = "HYDRANT_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    #[arg(long, env = "HYDRANT_DRAIN_TIMEOUT", help = defaults::help("How long in-flight requests may finish after SIGTERM.", "drain-timeout"))]
    pub drain_timeout: Option<String>,
    #[arg(long, env = "HYDRANT_CONNECT_TIMEOUT", help = defaults::help("Upstream TCP + TLS connect timeout.", "connect-timeout"))]
    pub connect_timeout: Option<String>,
    #[arg(long, env = "HYDRANT_UPSTREAM_TIMEOUT", help = defaults::help("One upstream request, until its response head.", "upstream-timeout"))]
    pub upstream_timeout: Option<String>,
    #[arg(long, env = "HYDRANT_LOG_FORMAT", help = defaults::help("Log format: text or json (level from RUST_LOG).", "log-format"))]
    pub log_format: Option<String>,
    /// Trust the OS root store instead of the bundled webpki roots.
    #[arg(long, env = "HYDRANT_NATIVE_ROOTS", num_args = 0..=1, default_missing_value = "true")]
    pub native_roots: Option<String>,
    /// Redis shared by the replicas of one cluster: `redis://[user:password@]host:port[/db]` or
    /// `rediss://...` (TLS). None: standalone.
    #[arg(long, env = "HYDRANT_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    #[arg(long, env = "HYDRANT_REDIS_PREFIX", help = defaults::help("Start of every Redis key and channel hydrant uses.", "redis-prefix"))]
    pub redis_prefix: Option<String>,
    #[arg(long, env = "HYDRANT_REDIS_TIMEOUT", help = defaults::help("The longest any request waits on Redis in all.", "redis-timeout"))]
    pub redis_timeout: Option<String>,
    /// Comma-separated origins (`https://app.example.com`) or `*` whose scripts may read
    /// `/files/...` answers. None: no CORS headers.
    #[arg(long, env = "HYDRANT_CORS_ORIGINS")]
    pub cors_origins: Option<String>,
    /// Tokio worker threads [default: the parallelism the process may use].
    #[arg(long, env = "HYDRANT_WORKERS")]
    pub workers: Option<String>,
    #[arg(long, env = "HYDRANT_MAX_CONNECTIONS", help = defaults::help("Open client connections; past it new ones wait in the listen backlog.", "max-connections"))]
    pub max_connections: Option<String>,
    /// PEM certificate chain: with --tls-key, the listener serves HTTPS only (re-read on SIGHUP).
    #[arg(long, env = "HYDRANT_TLS_CERT")]
    pub tls_cert: Option<String>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "HYDRANT_TLS_KEY")]
    pub tls_key: Option<String>,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// The upstream base, split once so requests are built without re-parsing.
#[derive(Clone, Debug)]
pub struct UpstreamBase {
    /// `http` or `https`.
    pub scheme: http::uri::Scheme,
    /// `host[:port]`.
    pub authority: http::uri::Authority,
    /// Path prefix without trailing slash (usually empty).
    pub path_prefix: String,
}

impl UpstreamBase {
    /// Whether the upstream is plain http (simulator, tests): then `http` Locations are allowed.
    pub fn is_plain_http(&self) -> bool {
        self.scheme == http::uri::Scheme::HTTP
    }
}

/// Validated configuration: each field is the parsed form of the option of the same name
/// (README's configuration table says what each does).
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub upstream: UpstreamBase,
    pub api_key: Option<Secret>,
    pub client_tokens: Vec<Secret>,
    pub signing_keys: Vec<Secret>,
    pub public_url: String,
    pub expiry_margin: Duration,
    pub pending_ttl: Duration,
    pub negative_ttl: Duration,
    pub max_ttl: Duration,
    pub cache_max_bytes: u64,
    pub hydrate_rate: Rate,
    pub hydrate_burst: u32,
    pub hydrate_max_wait: Duration,
    pub serve_get_from_cache: bool,
    pub webhook_secrets: Vec<Secret>,
    pub webhook_forward: Option<Uri>,
    pub admin_token: Option<Secret>,
    pub drain_timeout: Duration,
    pub connect_timeout: Duration,
    pub upstream_timeout: Duration,
    pub log_format: LogFormat,
    pub native_roots: bool,
    /// Cluster mode, when set.
    pub redis: Option<RedisConfig>,
    /// Origins whose scripts may read `/files/...` answers; None: no CORS headers.
    pub cors_origins: Option<CorsOrigins>,
    /// Tokio worker threads (at least 1).
    pub workers: usize,
    /// Open client connections at most (at least 1; start-up may lower it to fit the
    /// descriptor limit, see `server::fds`).
    pub max_connections: usize,
    /// HTTPS, when set: the files are read at start-up and on every `SIGHUP`.
    pub tls: Option<TlsFiles>,
}

/// The certificate chain and private key files of `--tls-cert` / `--tls-key` (paths only: the
/// key itself is read by `server::tls` and never kept in the configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The origins `--cors-origins` lets read `/files/...` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorsOrigins {
    /// `*`: any origin (answered with `Access-Control-Allow-Origin: *`).
    Any,
    /// These serialized origins (`scheme://host[:port]`, lower-case), compared byte for byte
    /// with the request's `Origin`, as browsers send it.
    List(Vec<String>),
}

impl CorsOrigins {
    /// Parse the option's value: `*`, or a comma-separated list of origins.
    fn parse(s: &str) -> Result<Option<CorsOrigins>, ConfigError> {
        let items: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .collect();
        if items.is_empty() {
            return Ok(None);
        }
        if items.contains(&"*") {
            if items.len() > 1 {
                return Err(err("cors-origins", "`*` cannot be combined with origins"));
            }
            return Ok(Some(CorsOrigins::Any));
        }
        let mut list = Vec::with_capacity(items.len());
        for item in items {
            list.push(parse_origin(item)?);
        }
        Ok(Some(CorsOrigins::List(list)))
    }
}

/// One origin as a browser serializes it: `http`/`https`, a host, an optional port, and
/// nothing else (no path, no trailing slash, no credentials). A path or a trailing slash is
/// refused rather than trimmed: it would never match a browser's `Origin`, and silently
/// fixing it hides a typo.
fn parse_origin(item: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| err("cors-origins", format!("{item:?}: {why}"));
    let uri: Uri = item
        .parse()
        .map_err(|_| bad("expected scheme://host[:port]"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("expected an http:// or https:// origin")),
    }
    let Some(authority) = uri.authority() else {
        return Err(bad("expected scheme://host[:port]"));
    };
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(bad("expected scheme://host[:port]"));
    }
    if item.len() != format!("{}://{}", uri.scheme_str().unwrap_or(""), authority).len() {
        return Err(bad("an origin has no path, query or trailing slash"));
    }
    Ok(item.to_ascii_lowercase())
}

/// How to reach the cluster's Redis. The URL may carry a password: it is a [`Secret`].
#[derive(Clone, Debug)]
pub struct RedisConfig {
    pub url: Secret,
    pub prefix: String,
    pub timeout: Duration,
}

/// A configuration error: names the option and the problem in one line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {option}: {problem}")]
pub struct ConfigError {
    /// The option, spelled as its flag.
    pub option: String,
    /// What is wrong (never the value of a secret).
    pub problem: String,
}

fn err(option: &str, problem: impl fmt::Display) -> ConfigError {
    ConfigError {
        option: format!("--{option}"),
        problem: problem.to_string(),
    }
}

/// Keys the TOML file may hold (the flag names with `_` for `-`).
const FILE_KEYS: &[&str] = &[
    "listen",
    "upstream",
    "api_key",
    "client_tokens",
    "signing_keys",
    "public_url",
    "expiry_margin",
    "pending_ttl",
    "negative_ttl",
    "max_ttl",
    "cache_max_bytes",
    "hydrate_rate",
    "hydrate_burst",
    "hydrate_max_wait",
    "serve_get_from_cache",
    "webhook_secret",
    "webhook_forward",
    "admin_token",
    "drain_timeout",
    "connect_timeout",
    "upstream_timeout",
    "log_format",
    "native_roots",
    "redis_url",
    "redis_prefix",
    "redis_timeout",
    "cors_origins",
    "workers",
    "max_connections",
    "tls_cert",
    "tls_key",
];

/// Read a TOML file into flat string values; arrays become comma-separated lists.
fn read_file(path: &std::path::Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err("config", format!("cannot read {}: {e}", path.display())))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        err("config", format!("{}: {}", path.display(), e.message()))
    })?;
    let mut out = BTreeMap::new();
    for (k, v) in table {
        if !FILE_KEYS.contains(&k.as_str()) {
            return Err(err(
                "config",
                format!("unknown key `{k}` in {}", path.display()),
            ));
        }
        let s = match v {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => Ok(s.clone()),
                    _ => Err(err(&k.replace('_', "-"), "array items must be strings")),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            _ => return Err(err(&k.replace('_', "-"), "unsupported TOML type")),
        };
        out.insert(k, s);
    }
    Ok(out)
}

fn list(s: Option<String>) -> Vec<Secret> {
    s.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Secret::new)
            .collect()
    })
    .unwrap_or_default()
}

fn parse_bool(option: &str, s: &str) -> Result<bool, ConfigError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(err(option, format!("expected true or false, got {s:?}"))),
    }
}

/// Parse and validate an upstream base URL.
pub fn parse_upstream(s: &str) -> Result<UpstreamBase, ConfigError> {
    let uri: Uri = s
        .parse()
        .map_err(|_| err("upstream", format!("not a URL: {s:?}")))?;
    let scheme = uri
        .scheme()
        .cloned()
        .ok_or_else(|| err("upstream", "needs a scheme, http:// or https://"))?;
    if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
        return Err(err("upstream", "scheme must be http or https"));
    }
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| err("upstream", "needs a host"))?;
    if uri.query().is_some() {
        return Err(err("upstream", "must not have a query string"));
    }
    Ok(UpstreamBase {
        scheme,
        authority,
        path_prefix: uri.path().trim_end_matches('/').to_string(),
    })
}

/// A `redis_url` must parse and name a host; whether that Redis answers is not configuration
/// (hydrant starts without it). The error never echoes the URL: it may hold a password.
fn check_redis_url(url: &str) -> Result<(), ConfigError> {
    let scheme_ok = url.starts_with("redis://") || url.starts_with("rediss://");
    let parsed = scheme_ok
        .then(|| redis::IntoConnectionInfo::into_connection_info(url).ok())
        .flatten();
    let has_host = url
        .split_once("://")
        .map(|(_, rest)| rest.rsplit_once('@').map_or(rest, |(_, host)| host))
        .is_some_and(|host| !host.is_empty() && !host.starts_with(['/', ':']));
    match parsed {
        Some(_) if has_host => Ok(()),
        _ => Err(err(
            "redis-url",
            "expected redis://[user:password@]host:port[/db] or rediss://... (value not shown)",
        )),
    }
}

impl Config {
    /// Resolve flags/env (already merged by clap) over the optional TOML file over defaults.
    pub fn resolve(args: ServeArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(p) => read_file(p)?,
            None => BTreeMap::new(),
        };
        let mut file = file;
        // flags/env win; the file fills the gaps.
        let mut pick = |v: Option<String>, key: &str| v.or_else(|| file.remove(key));

        let listen_s = pick(args.listen, "listen").unwrap_or_else(|| defaults::LISTEN.into());
        let listen: SocketAddr = listen_s
            .trim()
            .parse()
            .map_err(|_| err("listen", format!("not a socket address: {listen_s:?}")))?;
        let upstream = parse_upstream(
            &pick(args.upstream, "upstream").unwrap_or_else(|| defaults::UPSTREAM.into()),
        )?;
        let api_key = pick(args.api_key, "api_key")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .map(Secret::new);
        if let Some(k) = &api_key {
            if http::HeaderValue::from_str(&format!("Bearer {}", k.expose())).is_err() {
                return Err(err(
                    "api-key",
                    "contains characters not allowed in a header",
                ));
            }
        }
        let client_tokens = list(pick(args.client_tokens, "client_tokens"));
        if !client_tokens.is_empty() && api_key.is_none() {
            return Err(err(
                "client-tokens",
                "client tokens need the proxy's own key (--api-key / VIDEOGEN_API_KEY)",
            ));
        }
        let signing_keys = list(pick(args.signing_keys, "signing_keys"));
        let public_url = pick(args.public_url, "public_url")
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_string();
        match public_url.parse::<Uri>() {
            Ok(u) if u.scheme().is_some() && u.authority().is_some() && u.query().is_none() => {}
            _ => {
                return Err(err(
                    "public-url",
                    format!("expected an absolute http(s) URL, got {public_url:?}"),
                ))
            }
        }

        let dur = |v: Option<String>, opt: &str, default: Duration| match v {
            Some(s) => units::parse_duration(&s).map_err(|e| err(opt, e)),
            None => Ok(default),
        };
        let expiry_margin = dur(
            pick(args.expiry_margin, "expiry_margin"),
            "expiry-margin",
            defaults::EXPIRY_MARGIN,
        )?;
        let pending_ttl = dur(
            pick(args.pending_ttl, "pending_ttl"),
            "pending-ttl",
            defaults::PENDING_TTL,
        )?;
        let negative_ttl = dur(
            pick(args.negative_ttl, "negative_ttl"),
            "negative-ttl",
            defaults::NEGATIVE_TTL,
        )?;
        let max_ttl = dur(pick(args.max_ttl, "max_ttl"), "max-ttl", defaults::MAX_TTL)?;
        let hydrate_max_wait = dur(
            pick(args.hydrate_max_wait, "hydrate_max_wait"),
            "hydrate-max-wait",
            defaults::HYDRATE_MAX_WAIT,
        )?;
        let drain_timeout = dur(
            pick(args.drain_timeout, "drain_timeout"),
            "drain-timeout",
            defaults::DRAIN_TIMEOUT,
        )?;
        let connect_timeout = dur(
            pick(args.connect_timeout, "connect_timeout"),
            "connect-timeout",
            defaults::CONNECT_TIMEOUT,
        )?;
        let upstream_timeout = dur(
            pick(args.upstream_timeout, "upstream_timeout"),
            "upstream-timeout",
            defaults::UPSTREAM_TIMEOUT,
        )?;
        for (opt, d) in [
            ("connect-timeout", connect_timeout),
            ("upstream-timeout", upstream_timeout),
            ("max-ttl", max_ttl),
        ] {
            if d.is_zero() {
                return Err(err(opt, "must be greater than zero"));
            }
        }

        let cache_max_bytes = match pick(args.cache_max_bytes, "cache_max_bytes") {
            Some(s) => units::parse_size(&s).map_err(|e| err("cache-max-bytes", e))?,
            None => defaults::CACHE_MAX_BYTES,
        };
        if cache_max_bytes == 0 {
            return Err(err("cache-max-bytes", "must be greater than zero"));
        }
        let hydrate_rate = match pick(args.hydrate_rate, "hydrate_rate") {
            Some(s) => units::parse_rate(&s).map_err(|e| err("hydrate-rate", e))?,
            None => defaults::HYDRATE_RATE,
        };
        let burst_s = pick(args.hydrate_burst, "hydrate_burst")
            .unwrap_or_else(|| defaults::HYDRATE_BURST.to_string());
        let hydrate_burst: u32 =
            burst_s
                .trim()
                .parse()
                .ok()
                .filter(|b| *b >= 1)
                .ok_or_else(|| {
                    err(
                        "hydrate-burst",
                        format!("expected an integer >= 1, got {burst_s:?}"),
                    )
                })?;
        let serve_get_from_cache = match pick(args.serve_get_from_cache, "serve_get_from_cache") {
            Some(s) => parse_bool("serve-get-from-cache", &s)?,
            None => false,
        };
        let native_roots = match pick(args.native_roots, "native_roots") {
            Some(s) => parse_bool("native-roots", &s)?,
            None => false,
        };
        let webhook_secrets = list(pick(args.webhook_secret, "webhook_secret"));
        let webhook_forward = match pick(args.webhook_forward, "webhook_forward") {
            Some(s) => {
                let u: Uri = s
                    .trim()
                    .parse()
                    .map_err(|_| err("webhook-forward", format!("not a URL: {s:?}")))?;
                match u.scheme_str() {
                    Some("http") | Some("https") if u.authority().is_some() => Some(u),
                    _ => return Err(err("webhook-forward", "expected an absolute http(s) URL")),
                }
            }
            None => None,
        };
        if webhook_forward.is_some() && webhook_secrets.is_empty() {
            return Err(err(
                "webhook-forward",
                "needs --webhook-secret (only verified deliveries are relayed)",
            ));
        }
        let admin_token = pick(args.admin_token, "admin_token")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .map(Secret::new);
        let log_format = match pick(args.log_format, "log_format")
            .as_deref()
            .map(str::trim)
        {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(err(
                    "log-format",
                    format!("expected text or json, got {other:?}"),
                ))
            }
        };
        let redis_timeout = dur(
            pick(args.redis_timeout, "redis_timeout"),
            "redis-timeout",
            defaults::REDIS_TIMEOUT,
        )?;
        if redis_timeout.is_zero() {
            return Err(err("redis-timeout", "must be greater than zero"));
        }
        let redis_prefix = pick(args.redis_prefix, "redis_prefix")
            .unwrap_or_else(|| defaults::REDIS_PREFIX.to_string());
        if redis_prefix.is_empty() || redis_prefix.len() > 64 || redis_prefix.contains(['{', '}']) {
            return Err(err(
                "redis-prefix",
                "expected 1 to 64 characters without { or } (they are Redis hash-tag braces)",
            ));
        }
        let redis = match pick(args.redis_url, "redis_url") {
            Some(url) if !url.trim().is_empty() => {
                check_redis_url(url.trim())?;
                Some(RedisConfig {
                    url: Secret::new(url.trim()),
                    prefix: redis_prefix,
                    timeout: redis_timeout,
                })
            }
            _ => None,
        };
        let cors_origins = match pick(args.cors_origins, "cors_origins") {
            Some(s) => CorsOrigins::parse(&s)?,
            None => None,
        };
        let workers = match pick(args.workers, "workers") {
            Some(s) => positive("workers", &s)?,
            None => defaults::workers(),
        };
        let max_connections = match pick(args.max_connections, "max_connections") {
            Some(s) => positive("max-connections", &s)?,
            None => defaults::MAX_CONNECTIONS,
        };
        let tls = tls_files(
            pick(args.tls_cert, "tls_cert"),
            pick(args.tls_key, "tls_key"),
        )?;
        Ok(Config {
            listen,
            upstream,
            api_key,
            client_tokens,
            signing_keys,
            public_url,
            expiry_margin,
            pending_ttl,
            negative_ttl,
            max_ttl,
            cache_max_bytes,
            hydrate_rate,
            hydrate_burst,
            hydrate_max_wait,
            serve_get_from_cache,
            webhook_secrets,
            webhook_forward,
            admin_token,
            drain_timeout,
            connect_timeout,
            upstream_timeout,
            log_format,
            native_roots,
            redis,
            cors_origins,
            workers,
            max_connections,
            tls,
        })
    }
}

/// An integer option that must be at least 1.
fn positive(option: &str, s: &str) -> Result<usize, ConfigError> {
    s.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| err(option, format!("expected an integer >= 1, got {s:?}")))
}

/// Both files or neither: half a pair names the missing option. Whether the files load is
/// checked when the listener is set up (`server::tls`), which names the failing one.
fn tls_files(cert: Option<String>, key: Option<String>) -> Result<Option<TlsFiles>, ConfigError> {
    let given = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    match (given(cert), given(key)) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: cert.into(),
            key: key.into(),
        })),
        (Some(_), None) => Err(err("tls-key", "required with --tls-cert (both or neither)")),
        (None, Some(_)) => Err(err("tls-cert", "required with --tls-key (both or neither)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_are_star_or_exact_origins() {
        assert_eq!(CorsOrigins::parse("*").unwrap(), Some(CorsOrigins::Any));
        assert_eq!(CorsOrigins::parse(" , ").unwrap(), None);
        assert_eq!(
            CorsOrigins::parse("https://App.example.com, http://127.0.0.1:5173").unwrap(),
            Some(CorsOrigins::List(vec![
                "https://app.example.com".into(),
                "http://127.0.0.1:5173".into()
            ]))
        );
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://app.example.com?x=1",
            "ftp://app.example.com",
            "https://user@app.example.com",
            "*, https://app.example.com",
            "https://",
        ] {
            let e = CorsOrigins::parse(bad).unwrap_err();
            assert_eq!(e.option, "--cors-origins", "{bad}");
        }
    }

    #[test]
    fn a_bad_redis_url_names_the_option_and_not_the_value() {
        for bad in [
            "banana",
            "http://h:1",
            "redis://",
            "redis://:s3cret@",
            "redis://:s3cret@/0",
        ] {
            let e = Config::resolve(ServeArgs {
                redis_url: Some(bad.into()),
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
            assert!(e.starts_with("invalid configuration: --redis-url: "), "{e}");
            assert!(!e.contains("s3cret") && !e.contains("banana"), "{e}");
            assert_eq!(e.lines().count(), 1);
        }
        let ok = Config::resolve(ServeArgs {
            redis_url: Some("rediss://u:p@redis.internal:6380/2".into()),
            ..Default::default()
        })
        .unwrap();
        let redis = ok.redis.unwrap();
        assert_eq!(redis.prefix, "hydrant:");
        assert_eq!(redis.timeout, Duration::from_millis(100));
        assert!(!format!("{redis:?}").contains(":p@"), "the URL is redacted");
        assert!(Config::resolve(ServeArgs::default())
            .unwrap()
            .redis
            .is_none());
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::resolve(ServeArgs::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.upstream.authority.as_str(), "api.videogen.io");
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert_eq!(c.expiry_margin, Duration::from_secs(60));
        assert_eq!(c.pending_ttl, Duration::from_secs(5));
        assert_eq!(c.negative_ttl, Duration::from_secs(30));
        assert_eq!(c.max_ttl, Duration::from_secs(86400));
        assert_eq!(c.cache_max_bytes, 256 << 20);
        assert_eq!(c.hydrate_rate.count, 2500);
        assert_eq!(c.hydrate_rate.per, Duration::from_secs(3600));
        assert_eq!(c.hydrate_burst, 50);
        assert_eq!(c.hydrate_max_wait, Duration::from_secs(2));
        assert!(!c.serve_get_from_cache);
        assert_eq!(c.drain_timeout, Duration::from_secs(30));
        assert_eq!(c.connect_timeout, Duration::from_secs(5));
        assert_eq!(c.upstream_timeout, Duration::from_secs(30));
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn flags_beat_file() {
        let dir = std::env::temp_dir().join(format!("hydrant-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9999\"\nhydrate_rate = \"10/s\"\nhydrate_burst = 7\nclient_tokens = [\"a\", \"b\"]\napi_key = \"k\"\nserve_get_from_cache = true\n",
        )
        .unwrap();
        let c = Config::resolve(ServeArgs {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:1234".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.listen.port(), 1234);
        assert_eq!(c.hydrate_rate.count, 10);
        assert_eq!(c.hydrate_burst, 7);
        assert_eq!(c.client_tokens.len(), 2);
        assert!(c.serve_get_from_cache);
        std::fs::write(&path, "nope = 1\n").unwrap();
        let e = Config::resolve(ServeArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("unknown key `nope`"), "{e}");
    }

    #[test]
    fn bad_values_name_the_option() {
        let cases: Vec<(ServeArgs, &str)> = vec![
            (
                ServeArgs {
                    listen: Some("nope".into()),
                    ..Default::default()
                },
                "--listen",
            ),
            (
                ServeArgs {
                    upstream: Some("ftp://x".into()),
                    ..Default::default()
                },
                "--upstream",
            ),
            (
                ServeArgs {
                    hydrate_rate: Some("fast".into()),
                    ..Default::default()
                },
                "--hydrate-rate",
            ),
            (
                ServeArgs {
                    cache_max_bytes: Some("lots".into()),
                    ..Default::default()
                },
                "--cache-max-bytes",
            ),
            (
                ServeArgs {
                    max_ttl: Some("5x".into()),
                    ..Default::default()
                },
                "--max-ttl",
            ),
            (
                ServeArgs {
                    hydrate_burst: Some("0".into()),
                    ..Default::default()
                },
                "--hydrate-burst",
            ),
            (
                ServeArgs {
                    log_format: Some("xml".into()),
                    ..Default::default()
                },
                "--log-format",
            ),
            (
                ServeArgs {
                    client_tokens: Some("t".into()),
                    ..Default::default()
                },
                "--client-tokens",
            ),
        ];
        for (args, opt) in cases {
            let e = Config::resolve(args).unwrap_err().to_string();
            assert!(e.contains(opt), "{e} should name {opt}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn serving_options_are_validated() {
        let c = Config::resolve(ServeArgs::default()).unwrap();
        assert_eq!(c.max_connections, 10_000);
        assert_eq!(c.workers, defaults::workers());
        assert!(c.workers >= 1);
        assert!(c.tls.is_none());
        let c = Config::resolve(ServeArgs {
            workers: Some("3".into()),
            max_connections: Some("2".into()),
            tls_cert: Some("/c.pem".into()),
            tls_key: Some("/k.pem".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((c.workers, c.max_connections), (3, 2));
        assert_eq!(c.tls.unwrap().key, PathBuf::from("/k.pem"));
        let bad = |args: ServeArgs| Config::resolve(args).unwrap_err().to_string();
        for (args, opt) in [
            (
                ServeArgs {
                    workers: Some("0".into()),
                    ..Default::default()
                },
                "--workers: ",
            ),
            (
                ServeArgs {
                    max_connections: Some("many".into()),
                    ..Default::default()
                },
                "--max-connections: ",
            ),
            (
                ServeArgs {
                    tls_cert: Some("/c.pem".into()),
                    ..Default::default()
                },
                "--tls-key: required",
            ),
            (
                ServeArgs {
                    tls_key: Some("/k.pem".into()),
                    ..Default::default()
                },
                "--tls-cert: required",
            ),
        ] {
            let e = bad(args);
            assert!(
                e.starts_with(&format!("invalid configuration: {opt}")),
                "{e}"
            );
            assert_eq!(e.lines().count(), 1);
        }
    }

    #[test]
    fn secrets_are_not_printed() {
        let c = Config::resolve(ServeArgs {
            api_key: Some("vg_supersecret".into()),
            admin_token: Some("adm_supersecret".into()),
            ..Default::default()
        })
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("supersecret"));
    }
}
