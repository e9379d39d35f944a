//! The hydration cache: what a StorageFile says, how long it may be served, where it is kept,
//! and how misses are filled.
//!
//! * [`file`](mod@file) — a parsed view of a StorageFile (sources, expiries), built once per insert.
//! * [`policy`] — pure freshness rules: TTL from `expiresAt`, margins, caps.
//! * [`entry`] — what is derived once per insert (Locations, deadlines).
//! * `store` — moka (bounded by bytes, decides evictions) behind a lock-free read index, keyed by
//!   a keyed digest of `(tenant, fileId)`.
//! * `lenient` — serde plumbing that reads mistyped fields as absent.
//! * `tier` — the seam for a tier shared by replicas, under the in-memory store.
//! * `loader` — the seam for the upstream hydrate call.
//! * `hydrator` — single flight, refresh ahead, stale-if-error, invalidation, priming.
//! * `prime` — finding hydrated file objects inside other responses.
//!
//! Inside, data walks `hydrator → store | tier | loader → entry → policy → file`.

pub mod entry;
pub mod file;
pub(crate) mod hydrator;
mod lenient;
pub(crate) mod loader;
pub mod policy;
pub(crate) mod prime;
pub(crate) mod store;
/// The hasher of the store's maps, for `benches/entry_memory.rs` (which builds the same maps to
/// measure them); not an API.
#[doc(hidden)]
pub use store::DigestHash;
pub(crate) mod tier;
pub(crate) mod wire;
