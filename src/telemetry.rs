//! Logs and metrics: tracing set-up, the Prometheus registry, and the label vocabulary.
//!
//! Labels are closed enums (route class, outcome) and status codes: never ids, keys or URLs,
//! so cardinality is bounded and no secret can reach a scrape.

use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::{
    EncodeLabelSet, EncodeLabelValue, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The coarse kind of a request: a metric label and a log field.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum RouteClass {
    /// `/files/{id}/redirect`
    redirect,
    /// `GET /files/{id}`
    file_json,
    /// `POST /v1/files/{id}/hydrate`
    hydrate,
    /// `GET /v1/files/{id}`
    get_file,
    /// Every other `/v1/...` call.
    passthrough,
    /// `/webhooks/videogen`
    webhook,
    /// `/admin/...`
    admin,
    /// `/healthz`, `/readyz`, `/metrics`
    ops,
    /// Anything else.
    unknown,
}

impl RouteClass {
    /// Log spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteClass::redirect => "redirect",
            RouteClass::file_json => "file_json",
            RouteClass::hydrate => "hydrate",
            RouteClass::get_file => "get_file",
            RouteClass::passthrough => "passthrough",
            RouteClass::webhook => "webhook",
            RouteClass::admin => "admin",
            RouteClass::ops => "ops",
            RouteClass::unknown => "unknown",
        }
    }
}

/// Cache outcome of one request, as sent in `x-cache` (Pingora's `as_str` idea).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from a fresh entry.
    Hit,
    /// Fetched upstream (or waited on another request's fetch).
    Miss,
    /// Served from an entry past its freshness but before its URLs' real expiry.
    Stale,
}

impl CacheStatus {
    /// Header spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Stale => "STALE",
        }
    }
}

/// `{route, status}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteStatus {
    /// Route class.
    pub route: RouteClass,
    /// HTTP status code.
    pub status: u16,
}

/// `{route}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    /// Route class.
    pub route: RouteClass,
}

/// Cache lookup outcomes.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Lookup {
    /// Fresh entry.
    hit,
    /// No usable entry; this request led the upstream call.
    miss,
    /// Stale served.
    stale,
    /// Cached upstream 404.
    negative,
    /// Waited on another request's upstream call.
    coalesced,
}

/// `{outcome}` for cache lookups.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LookupLabel {
    /// Outcome.
    pub outcome: Lookup,
}

/// Rate-limit outcomes.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Limit {
    /// Waited for a permit.
    waited,
    /// Refused (stale or 429).
    rejected,
    /// Tenant paused after an upstream signal.
    paused,
}

/// `{outcome}` for the limiter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabel {
    /// Outcome.
    pub outcome: Limit,
}

/// `{event, outcome}` for webhook deliveries.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabel {
    /// Event type, or `unknown` for events hydrant does not know (bounded vocabulary).
    pub event: &'static str,
    /// Outcome.
    pub outcome: &'static str,
}

/// Every metric hydrant exports.
pub struct Metrics {
    registry: Registry,
    /// `hydrant_http_requests_total{route,status}`
    pub http_requests: Family<RouteStatus, Counter>,
    /// `hydrant_http_request_duration_seconds{route}`
    pub http_duration: Family<RouteLabel, LatencyHistogram, fn() -> LatencyHistogram>,
    /// `hydrant_cache_lookups_total{outcome}`
    pub cache_lookups: Family<LookupLabel, Counter>,
    /// `hydrant_cache_entries`
    pub cache_entries: Gauge,
    /// `hydrant_cache_bytes`
    pub cache_bytes: Gauge,
    /// `hydrant_upstream_requests_total{route,status}` (status 0 = no response)
    pub upstream_requests: Family<RouteStatus, Counter>,
    /// `hydrant_upstream_request_duration_seconds{route}`
    pub upstream_duration: Family<RouteLabel, LatencyHistogram, fn() -> LatencyHistogram>,
    /// `hydrant_hydrate_refreshes_total`
    pub refreshes: Counter,
    /// `hydrant_ratelimit_total{outcome}`
    pub ratelimit: Family<LimitLabel, Counter>,
    /// `hydrant_webhook_deliveries_total{event,outcome}`
    pub webhook_deliveries: Family<WebhookLabel, Counter>,
    /// Hot-path handles resolved once, so a request takes no family lock for them:
    /// the duration histogram per route class and the counter per lookup outcome.
    route_durations: Vec<LatencyHistogram>,
    lookup_counters: Vec<Counter>,
    /// Request counters for the statuses hits answer with, per route class, resolved on first
    /// use (a series appears only once it has counted something): reading a `OnceLock` is a
    /// plain load, where `Family::get_or_create` takes a lock shared by every core.
    hot_requests: [[OnceLock<Counter>; HOT_STATUSES.len()]; ROUTE_CLASSES.len()],
}

/// The statuses whose request counters are cached in [`Metrics::hot_requests`].
const HOT_STATUSES: [u16; 3] = [200, 302, 404];

const ROUTE_CLASSES: [RouteClass; 9] = [
    RouteClass::redirect,
    RouteClass::file_json,
    RouteClass::hydrate,
    RouteClass::get_file,
    RouteClass::passthrough,
    RouteClass::webhook,
    RouteClass::admin,
    RouteClass::ops,
    RouteClass::unknown,
];

const LOOKUPS: [Lookup; 5] = [
    Lookup::hit,
    Lookup::miss,
    Lookup::stale,
    Lookup::negative,
    Lookup::coalesced,
];

/// Upper bounds (seconds) of the latency histograms.
const LATENCY_BOUNDS: [f64; 18] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A latency histogram made of atomics. prometheus-client's `Histogram` takes a write lock
/// on every observation, which every request on every worker would contend for.
#[derive(Debug, Clone, Default)]
pub struct LatencyHistogram {
    inner: Arc<LatencyInner>,
}

#[derive(Debug, Default)]
struct LatencyInner {
    sum_nanos: AtomicU64,
    count: AtomicU64,
    /// Per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; LATENCY_BOUNDS.len() + 1],
}

impl LatencyHistogram {
    /// Record one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BOUNDS.len());
        self.inner.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.inner.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.inner.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = LATENCY_BOUNDS
            .iter()
            .copied()
            .chain(std::iter::once(f64::MAX))
            .zip(self.inner.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect();
        let sum = self.inner.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let count = self.inner.count.load(Ordering::Relaxed);
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

fn latency_histogram() -> LatencyHistogram {
    LatencyHistogram::default()
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Create and register every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("hydrant");
        let http_requests = Family::<RouteStatus, Counter>::default();
        let http_duration =
            Family::new_with_constructor(latency_histogram as fn() -> LatencyHistogram);
        let cache_lookups = Family::<LookupLabel, Counter>::default();
        let cache_entries = Gauge::default();
        let cache_bytes = Gauge::default();
        let upstream_requests = Family::<RouteStatus, Counter>::default();
        let upstream_duration =
            Family::new_with_constructor(latency_histogram as fn() -> LatencyHistogram);
        let refreshes = Counter::default();
        let ratelimit = Family::<LimitLabel, Counter>::default();
        let webhook_deliveries = Family::<WebhookLabel, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, by route class and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from request head to response head",
            http_duration.clone(),
        );
        registry.register(
            "cache_lookups",
            "Hydration cache lookups by outcome",
            cache_lookups.clone(),
        );
        registry.register(
            "cache_entries",
            "Entries in the hydration cache",
            cache_entries.clone(),
        );
        registry.register(
            "cache_bytes",
            "Weighted bytes held by the hydration cache",
            cache_bytes.clone(),
        );
        registry.register(
            "upstream_requests",
            "Requests sent to the VideoGen API, by route class and status (0 = no response)",
            upstream_requests.clone(),
        );
        registry.register(
            "upstream_request_duration_seconds",
            "Upstream time until the response head",
            upstream_duration.clone(),
        );
        registry.register(
            "hydrate_refreshes",
            "Background refresh-ahead hydrates started",
            refreshes.clone(),
        );
        registry.register("ratelimit", "Hydrate limiter outcomes", ratelimit.clone());
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries by event and outcome",
            webhook_deliveries.clone(),
        );
        let route_durations = ROUTE_CLASSES
            .iter()
            .map(|route| {
                http_duration
                    .get_or_create(&RouteLabel { route: *route })
                    .clone()
            })
            .collect();
        let lookup_counters = LOOKUPS
            .iter()
            .map(|outcome| {
                cache_lookups
                    .get_or_create(&LookupLabel { outcome: *outcome })
                    .clone()
            })
            .collect();
        Metrics {
            route_durations,
            lookup_counters,
            hot_requests: Default::default(),
            registry,
            http_requests,
            http_duration,
            cache_lookups,
            cache_entries,
            cache_bytes,
            upstream_requests,
            upstream_duration,
            refreshes,
            ratelimit,
            webhook_deliveries,
        }
    }

    /// Count one answered request.
    pub fn observe_request(&self, route: RouteClass, status: u16, elapsed: Duration) {
        let hot = HOT_STATUSES
            .iter()
            .position(|s| *s == status)
            .and_then(|i| self.hot_requests.get(route as usize)?.get(i));
        match hot {
            Some(slot) => {
                slot.get_or_init(|| {
                    self.http_requests
                        .get_or_create(&RouteStatus { route, status })
                        .clone()
                })
                .inc();
            }
            None => {
                self.http_requests
                    .get_or_create(&RouteStatus { route, status })
                    .inc();
            }
        }
        match self.route_durations.get(route as usize) {
            Some(h) => h.observe(elapsed),
            None => self
                .http_duration
                .get_or_create(&RouteLabel { route })
                .observe(elapsed),
        }
    }

    /// Count one upstream exchange (`status` 0 when there was no response).
    pub fn observe_upstream(&self, route: RouteClass, status: u16, elapsed: Duration) {
        self.upstream_requests
            .get_or_create(&RouteStatus { route, status })
            .inc();
        self.upstream_duration
            .get_or_create(&RouteLabel { route })
            .observe(elapsed);
    }

    /// Count one cache lookup.
    pub fn lookup(&self, outcome: Lookup) {
        match self.lookup_counters.get(outcome as usize) {
            Some(c) => {
                c.inc();
            }
            None => {
                self.cache_lookups
                    .get_or_create(&LookupLabel { outcome })
                    .inc();
            }
        }
    }

    /// Count one limiter outcome.
    pub fn limit(&self, outcome: Limit) {
        self.ratelimit.get_or_create(&LimitLabel { outcome }).inc();
    }

    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Install the global tracing subscriber. Logs go to stderr through a non-blocking writer so a
/// slow terminal or pipe never stalls a request; keep the guard alive for the process's life.
pub fn init_tracing(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .finish(std::io::stderr());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    guard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_handle_tables_follow_the_enum_order() {
        for (i, r) in ROUTE_CLASSES.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        for (i, l) in LOOKUPS.iter().enumerate() {
            assert_eq!(*l as usize, i);
        }
    }

    #[test]
    fn cached_and_uncached_request_counters_are_the_same_series() {
        let m = Metrics::new();
        for _ in 0..3 {
            m.observe_request(RouteClass::redirect, 302, Duration::from_micros(5));
        }
        m.observe_request(RouteClass::redirect, 503, Duration::from_micros(5));
        // The slow path reaches the very counter the cached handle increments.
        m.http_requests
            .get_or_create(&RouteStatus {
                route: RouteClass::redirect,
                status: 302,
            })
            .inc();
        let text = m.encode();
        assert!(
            text.contains("hydrant_http_requests_total{route=\"redirect\",status=\"302\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("hydrant_http_requests_total{route=\"redirect\",status=\"503\"} 1"),
            "{text}"
        );
        // A series appears only once something was counted in it.
        assert!(!text.contains("status=\"404\""), "{text}");
    }

    #[test]
    fn latency_histogram_encodes_cumulative_buckets() {
        let m = Metrics::new();
        m.observe_request(RouteClass::hydrate, 200, Duration::from_micros(70));
        m.observe_request(RouteClass::hydrate, 200, Duration::from_secs(100));
        let text = m.encode();
        assert!(
            text.contains("hydrant_http_request_duration_seconds_count{route=\"hydrate\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "hydrant_http_request_duration_seconds_bucket{le=\"0.0001\",route=\"hydrate\"} 1"
            ) || text.contains(
                "hydrant_http_request_duration_seconds_bucket{route=\"hydrate\",le=\"0.0001\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("le=\"+Inf\"") && text.contains("} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("hydrant_http_request_duration_seconds_sum{route=\"hydrate\"} 100.00007"),
            "{text}"
        );
    }

    #[test]
    fn exposition_has_the_contract_names() {
        let m = Metrics::new();
        m.observe_request(RouteClass::redirect, 302, Duration::from_micros(20));
        m.observe_upstream(RouteClass::hydrate, 200, Duration::from_millis(3));
        m.lookup(Lookup::hit);
        m.limit(Limit::waited);
        m.refreshes.inc();
        m.webhook_deliveries
            .get_or_create(&WebhookLabel {
                event: "file.download_ready",
                outcome: "primed",
            })
            .inc();
        let text = m.encode();
        for name in [
            "hydrant_http_requests_total{route=\"redirect\",status=\"302\"} 1",
            "hydrant_http_request_duration_seconds_bucket",
            "hydrant_cache_lookups_total{outcome=\"hit\"} 1",
            "hydrant_cache_entries",
            "hydrant_cache_bytes",
            "hydrant_upstream_requests_total{route=\"hydrate\",status=\"200\"} 1",
            "hydrant_upstream_request_duration_seconds_bucket",
            "hydrant_hydrate_refreshes_total 1",
            "hydrant_ratelimit_total{outcome=\"waited\"} 1",
            "hydrant_webhook_deliveries_total{event=\"file.download_ready\",outcome=\"primed\"} 1",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
