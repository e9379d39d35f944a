//! The hydration cache: what a StorageFile says, how long it may be served, where it is kept,
//! and how misses are filled.
//!
//! * [`file`] — a parsed view of a StorageFile (sources, expiries), built once per insert.
//! * [`policy`] — pure freshness rules: TTL from `expiresAt`, margins, caps.

pub mod entry;
pub mod file;
pub mod policy;
pub mod store;
