//! The label vocabulary of metrics and logs: closed enums and status codes, never ids, keys
//! or URLs, so cardinality is bounded and no secret can reach a scrape.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};

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

/// Which cache tier answered a hit or stale lookup.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Tier {
    /// This replica's memory.
    l1,
    /// The tier shared by the cluster (Redis).
    l2,
}

impl Lookup {
    /// The tier label of a lookup counted from this replica's memory.
    pub(crate) fn tier_of(outcome: Lookup) -> Option<Tier> {
        matches!(outcome, Lookup::hit | Lookup::stale).then_some(Tier::l1)
    }
}

/// `{outcome, tier}` for cache lookups; `tier` only on hits and stale answers.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct LookupLabel {
    pub outcome: Lookup,
    pub tier: Option<Tier>,
}

impl prometheus_client::encoding::EncodeLabelSet for LookupLabel {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::LabelSetEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeLabel;
        ("outcome", self.outcome).encode(encoder.encode_label())?;
        if let Some(tier) = self.tier {
            ("tier", tier).encode(encoder.encode_label())?;
        }
        Ok(())
    }
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

/// `{op, outcome}` for Redis commands: `op` is hydrant's name for the command (a closed set),
/// `outcome` one of `ok`, `error`, `timeout`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RedisLabel {
    pub op: &'static str,
    pub outcome: &'static str,
}

/// `{op}` for Redis command latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RedisOpLabel {
    pub op: &'static str,
}

/// `{origin}` of a cache invalidation: `local` (this replica caused it) or `peer`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OriginLabel {
    pub origin: &'static str,
}
