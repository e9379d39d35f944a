//! Logs and metrics: the Prometheus registry with hot handles resolved once, the label
//! vocabulary ([`labels`]), an atomic latency histogram (`histogram`) and tracing set-up
//! (`logging`).

mod histogram;
pub mod labels;
mod logging;

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use histogram::LatencyHistogram;
pub use labels::*;
pub use logging::init_tracing;

/// Every metric hydrant exports.
pub struct Metrics {
    registry: Registry,
    /// `hydrant_http_requests_total{route,status}`
    pub http_requests: Family<RouteStatus, Counter>,
    /// `hydrant_http_request_duration_seconds{route}`
    pub http_duration: Family<RouteLabel, LatencyHistogram, fn() -> LatencyHistogram>,
    /// `hydrant_cache_lookups_total{outcome,tier}` (`tier` on hits and stale answers)
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
    /// `hydrant_redis_up` (1 while this replica shares state through Redis)
    pub redis_up: Gauge,
    /// `hydrant_redis_commands_total{op,outcome}`
    pub redis_commands: Family<RedisLabel, Counter>,
    /// `hydrant_redis_command_duration_seconds{op}`
    pub redis_duration: Family<RedisOpLabel, LatencyHistogram, fn() -> LatencyHistogram>,
    /// `hydrant_cluster_replicas` (replicas seen alive, this one included)
    pub cluster_replicas: Gauge,
    /// `hydrant_cache_invalidations_total{origin}`
    pub invalidations: Family<OriginLabel, Counter>,
    /// `hydrant_runtime_tasks`: tokio tasks alive, read when `/metrics` is encoded (a leak of
    /// spawned tasks shows as growth; the soak test watches it).
    pub runtime_tasks: Gauge,
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
        let redis_up = Gauge::default();
        let redis_commands = Family::<RedisLabel, Counter>::default();
        let redis_duration =
            Family::new_with_constructor(latency_histogram as fn() -> LatencyHistogram);
        let cluster_replicas = Gauge::default();
        let invalidations = Family::<OriginLabel, Counter>::default();
        let runtime_tasks = Gauge::default();
        registry.register(
            "runtime_tasks",
            "Tokio tasks alive in this process",
            runtime_tasks.clone(),
        );
        registry.register(
            "redis_up",
            "1 while this replica shares state through Redis (cluster mode)",
            redis_up.clone(),
        );
        registry.register(
            "redis_commands",
            "Redis commands by operation and outcome",
            redis_commands.clone(),
        );
        registry.register(
            "redis_command_duration_seconds",
            "Redis command latency by operation",
            redis_duration.clone(),
        );
        registry.register(
            "cluster_replicas",
            "Replicas seen alive in the cluster, this one included",
            cluster_replicas.clone(),
        );
        registry.register(
            "cache_invalidations",
            "Cache invalidations applied, by origin (local or peer)",
            invalidations.clone(),
        );
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
                    .get_or_create(&LookupLabel {
                        outcome: *outcome,
                        tier: Lookup::tier_of(*outcome),
                    })
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
            redis_up,
            redis_commands,
            redis_duration,
            cluster_replicas,
            invalidations,
            runtime_tasks,
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

    /// Count one cache lookup (a hit or stale answer from this replica's memory).
    pub fn lookup(&self, outcome: Lookup) {
        match self.lookup_counters.get(outcome as usize) {
            Some(c) => {
                c.inc();
            }
            None => {
                self.cache_lookups
                    .get_or_create(&LookupLabel {
                        outcome,
                        tier: Lookup::tier_of(outcome),
                    })
                    .inc();
            }
        }
    }

    /// Count one hit answered by the tier shared with other replicas.
    pub fn shared_hit(&self) {
        self.cache_lookups
            .get_or_create(&LookupLabel {
                outcome: Lookup::hit,
                tier: Some(Tier::l2),
            })
            .inc();
    }

    /// Count one limiter outcome.
    pub fn limit(&self, outcome: Limit) {
        self.ratelimit.get_or_create(&LimitLabel { outcome }).inc();
    }

    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let alive = rt.metrics().num_alive_tasks();
            self.runtime_tasks
                .set(i64::try_from(alive).unwrap_or(i64::MAX));
        }
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
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
            "hydrant_cache_lookups_total{outcome=\"hit\",tier=\"l1\"} 1",
            "hydrant_cache_entries",
            "hydrant_cache_bytes",
            "hydrant_runtime_tasks",
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
