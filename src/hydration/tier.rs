//! The seam for a cache tier shared by several hydrant processes, under the in-memory one.
//!
//! A standalone hydrant has none. In a cluster, every entry any replica stores is also written
//! to the shared tier, an in-memory miss asks it before the upstream, and invalidations go
//! through it to every replica. The hydrator is the only caller; routes and handlers never
//! see which tiers exist.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::file_id::FileId;
use crate::hydration::entry::Entry;
use crate::hydration::store::Key;

/// A cache tier shared by every replica of a cluster.
///
/// Every method is best effort and bounded in time by the implementation: a shared tier that
/// is slow or down makes the hydrator behave as a standalone one, never fail a request.
pub trait SharedTier: Send + Sync + 'static {
    /// The entry another replica (or this one) stored for `key`, if the tier has one.
    fn get(&self, key: Key) -> BoxFuture<'static, Option<Arc<Entry>>>;
    /// Store `entry` for every replica to find.
    fn put(&self, key: Key, entry: Arc<Entry>) -> BoxFuture<'static, ()>;
    /// Drop `file` for every tenant, in the tier and in every other replica's memory.
    fn invalidate_file(&self, file: FileId) -> BoxFuture<'static, ()>;
    /// Drop one tenant's entry for a file, in the tier and in every other replica's memory.
    fn remove(&self, key: Key) -> BoxFuture<'static, ()>;
}
