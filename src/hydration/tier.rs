//! The seam for a cache tier shared by several hydrant processes, under the in-memory one.
//!
//! A standalone hydrant has none. In a cluster (Redis), every entry any replica stores is also
//! written to the shared tier, an in-memory miss asks it before the upstream, one replica at a
//! time fills a key for all (a lease), and invalidations go through it to every replica. The
//! hydrator is the only caller; routes and handlers never see which tiers exist.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use crate::file_id::FileId;
use crate::hydration::entry::Entry;
use crate::hydration::store::Key;

/// What the shared tier says when a fill starts.
pub enum Claim {
    /// The tier cannot be used now (down, slow): fill as a standalone process would.
    Alone,
    /// A fresh entry some replica stored (newer than the one the caller has, for a refresh).
    Found(Arc<Entry>),
    /// This process fills the key for the whole cluster; store the result with the ticket.
    /// `stale` is the tier's older entry, servable while its URLs are valid.
    Lead {
        /// Fences the store of this fill.
        ticket: Ticket,
        /// The tier's previous entry, if any.
        stale: Option<Arc<Entry>>,
    },
    /// Another replica fills the key: wait for its result.
    Follow {
        /// The tier's previous entry, if any.
        stale: Option<Arc<Entry>>,
    },
}

/// Proof that this process leads one fill: the invalidation epoch it started at and the lease
/// token. A store carrying it is refused when either moved on, so a slow or stale leader never
/// overwrites a newer entry or brings back an invalidated one. Dropping it stops renewing the
/// lease.
pub struct Ticket {
    /// The key's invalidation epoch when the fill started.
    pub epoch: String,
    /// The lease token.
    pub token: String,
    /// Renews the lease while the fill runs; aborted on drop.
    pub renewal: Option<tokio::task::AbortHandle>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(r) = self.renewal.take() {
            r.abort();
        }
    }
}

/// A cache tier shared by every replica of a cluster.
///
/// Every method is best effort and bounded in time by the implementation (at most until
/// `deadline` where one is given): a shared tier that is slow or down makes the hydrator
/// behave as a standalone one, never fail a request.
pub trait SharedTier: Send + Sync + 'static {
    /// Look `key` up and, unless a fresh entry is there, try to lead its fill. For a refresh,
    /// `newer_than` is the creation time (Unix seconds) of the entry the caller holds: only a
    /// newer one counts as found.
    fn claim(
        &self,
        key: Key,
        newer_than: Option<f64>,
        deadline: Instant,
    ) -> BoxFuture<'static, Claim>;
    /// Wait until another replica stored a fresh entry for `key` (`Some`), or its lease lapsed
    /// without one, or `until` passed (`None`).
    fn wait(&self, key: Key, until: Instant) -> BoxFuture<'static, Option<Arc<Entry>>>;
    /// Store `entry` for every replica, fenced by `ticket` when this process led the fill.
    fn put(&self, key: Key, entry: Arc<Entry>, ticket: Option<Ticket>) -> BoxFuture<'static, ()>;
    /// The fill failed: give up the lease so another replica may try.
    fn release(&self, key: Key, ticket: Ticket) -> BoxFuture<'static, ()>;
    /// Drop `file` for every tenant, in the tier and in every other replica's memory.
    fn invalidate_file(&self, file: FileId) -> BoxFuture<'static, ()>;
    /// Drop one tenant's entry for a file, in the tier and in every other replica's memory.
    fn remove(&self, key: Key) -> BoxFuture<'static, ()>;
}
