//! hydrant: a caching hydration proxy and reverse gateway for the VideoGen media API.
//!
//! VideoGen files carry signed URLs that expire. hydrant hydrates each file once for
//! everyone, keeps the result in memory until its earliest URL expiry (minus a margin),
//! coalesces and rate-limits upstream calls, and gives browsers stable URLs that redirect to
//! fresh signed ones. Every other `/v1/...` call streams through unchanged. The architecture
//! is in `docs/ARCHITECTURE.md`, the interface contract in `docs/CONTRACT.md`.
//!
//! # Layout
//! Data walks one way, and nothing below calls back up (the unit test `layering` checks it):
//!
//! ```text
//! server → routes → gateway | redirect | webhooks | hydration → store, tier | limiter, loader → upstream
//! ```
//!
//! | module | its one job |
//! |---|---|
//! | [`server`] | accept loop within the connection limit, hyper-util auto (HTTP/1.1 + h2, plain or HTTPS), head deadline, access log, graceful shutdown |
//! | [`routes`] | URL shapes: method + path → route; id validation; where errors become responses |
//! | `cors` | CORS headers and preflights on `/files/...` for `--cors-origins` (never on `/v1/...`) |
//! | `gateway` | streamed `/v1/...` pass-through with the resolved credentials |
//! | `redirect` | `/files/{id}/redirect` and `GET /files/{id}` for frontends |
//! | `json_view` | `GET /files/{id}`'s JSON rendered once per entry (a bounded moka cache of views) |
//! | `respond` | rendering cache answers (`x-cache`, `age`, byte-for-byte bodies) |
//! | [`webhooks`] | `/webhooks/videogen`: verify, dedupe, relay, prime or drop |
//! | [`hydration`] | the cache: hydrator (single flight, refresh, stale, invalidation), the store and tier seams, the loader seam, entries, pure TTL policy, StorageFile view, priming |
//! | `upstream` | the VideoGen client (hyper-util + rustls, timeouts), request shapes, the per-tenant limiter |
//! | `auth` | bearer extraction, client-token swap, admin token |
//! | `tenant` | `Tenant` = keyed hash of the upstream key |
//! | [`file_id`] | validated inline file ids (`[A-Za-z0-9_-]{1,128}`) |
//! | [`signing`] | HMAC-signed public URLs (`exp`, `sig`), key rotation |
//! | [`config`] | flags = env = TOML, every default once ([`config::defaults`]), validation, units |
//! | `error` | every error → status + `{"message","code"}`, in one table; causes kept |
//! | [`telemetry`] | Prometheus metrics, label vocabulary, tracing set-up |
//! | `cluster` | cluster mode on Redis: the shared tier (entries, leases, fences), the cluster-wide quota, webhook dedupe, probe, heartbeat and pub/sub |
//! | [`clock`] | the one clock seam (tokio `Instant` + Unix seconds) |
//! | `framing` | HTTP/1.1 request framing and target checks hyper leaves to hydrant (RFC 9112 §6) |
//! | `headers` | header names hydrant sets, hop-by-hop removal (a leaf) |
//! | `header_arena` | allocation-free per-response header values |
//! | [`body`] | the one boxed body type, bounded body collection |
//! | [`app`] | shared state of a running proxy, built once at start-up |
//! | [`demo`] | `hydrant demo`: simulator + proxy + webhook receiver + gallery page on loopback |
//! | [`sim`] | the built-in VideoGen simulator (tests, benchmarks, `hydrant demo`) |
//!
//! Modules shown without a link are internal (`pub(crate)`); the public ones are what the
//! binary, the integration tests and the benchmarks use.
#![forbid(unsafe_code)]

pub mod app;
pub(crate) mod auth;
pub mod body;
pub mod clock;
pub(crate) mod cluster;
pub mod config;
pub(crate) mod cors;
pub mod demo;
pub(crate) mod error;
pub mod file_id;
pub(crate) mod framing;
// Entry points for the fuzz targets (fuzz/) and their corpus replay test; not an API.
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod gateway;
pub(crate) mod header_arena;
pub(crate) mod headers;
pub mod hydration;
pub(crate) mod json_view;
pub(crate) mod redirect;
pub(crate) mod respond;
pub mod routes;
pub mod server;
pub mod signing;
// The simulator plays VideoGen and its CDN: it runs on real wall-clock time, not on hydrant's
// clock seam, and is not held to hydrant's lock policy.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
pub mod sim;
pub mod telemetry;
pub(crate) mod tenant;
pub(crate) mod upstream;
pub mod webhooks;

#[cfg(test)]
mod layering;
