//! Where entries live: a moka cache keyed by `(tenant, fileId)`, bounded by bytes.
//!
//! moka decides nothing about freshness (its clock cannot be driven by tests); it only holds
//! entries until their URLs' real expiry (plus a second) so that stale-if-error has something
//! to serve, and evicts by weight when `cache_max_bytes` is reached.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use moka::Expiry;

use crate::clock;
use crate::file_id::FileId;
use crate::hydration::entry::Entry;
use crate::tenant::Tenant;

/// A cache key: whose view of which file. Fixed size, so building one never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// Hash of the upstream key the entry was fetched with.
    pub tenant: Tenant,
    /// The file.
    pub file: FileId,
}

/// Longest encoded key: tenant bytes plus the longest id.
const KEY_BYTES: usize = 16 + crate::file_id::MAX_LEN;

impl Key {
    /// The bytes moka stores the key as: tenant, then the id. Stored boxed at its exact length
    /// (about 40 bytes instead of the 145-byte inline `Key`); looked up by slice, on the stack.
    fn encode<'b>(&self, buf: &'b mut [u8; KEY_BYTES]) -> &'b [u8] {
        let id = self.file.as_str().as_bytes();
        buf[..16].copy_from_slice(self.tenant.as_bytes());
        buf[16..16 + id.len()].copy_from_slice(id);
        &buf[..16 + id.len()]
    }
}

/// The key as moka holds it (see [`Key::encode`]).
type Stored = Box<[u8]>;

struct KeepUntilStale;

impl Expiry<Stored, Arc<Entry>> for KeepUntilStale {
    fn expire_after_create(
        &self,
        _key: &Stored,
        value: &Arc<Entry>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.keep_for(clock::now()))
    }

    fn expire_after_update(
        &self,
        _key: &Stored,
        value: &Arc<Entry>,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.keep_for(clock::now()))
    }
}

/// The in-memory store.
#[derive(Clone)]
pub struct Store {
    cache: Cache<Stored, Arc<Entry>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl Store {
    /// A store holding at most `max_bytes` of weighted entries.
    pub fn new(max_bytes: u64) -> Store {
        Store {
            cache: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_k: &Stored, v: &Arc<Entry>| v.weight())
                .expire_after(KeepUntilStale)
                .support_invalidation_closures()
                .build(),
        }
    }

    /// The entry for `key`, fresh or not.
    pub async fn get(&self, key: &Key) -> Option<Arc<Entry>> {
        let mut buf = [0u8; KEY_BYTES];
        self.cache.get(key.encode(&mut buf)).await
    }

    /// Store (or replace) an entry.
    pub async fn insert(&self, key: Key, entry: Arc<Entry>) {
        let mut buf = [0u8; KEY_BYTES];
        self.cache.insert(key.encode(&mut buf).into(), entry).await;
    }

    /// Drop one entry.
    pub async fn remove(&self, key: &Key) {
        let mut buf = [0u8; KEY_BYTES];
        self.cache.invalidate(key.encode(&mut buf)).await;
    }

    /// Drop a file's entries for every tenant. Takes effect for lookups immediately.
    pub fn invalidate_file(&self, file: FileId) {
        // Only fails when closures are not supported, which `new` enables.
        let _ = self
            .cache
            .invalidate_entries_if(move |k, _| k.get(16..) == Some(file.as_str().as_bytes()));
    }

    /// (entries, weighted bytes), after running moka's pending maintenance.
    pub async fn usage(&self) -> (u64, u64) {
        self.cache.run_pending_tasks().await;
        (self.cache.entry_count(), self.cache.weighted_size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hydration::policy::Policy;
    use http::HeaderValue;

    fn key(t: &[u8], f: &str) -> Key {
        Key {
            tenant: Tenant::of_key(t),
            file: FileId::parse(f).unwrap(),
        }
    }

    fn neg() -> Arc<Entry> {
        Arc::new(Entry::negative(
            b"{}",
            HeaderValue::from_static("application/json"),
            clock::now(),
            &Policy::default(),
        ))
    }

    #[tokio::test]
    async fn tenants_never_share() {
        let s = Store::new(1 << 20);
        s.insert(key(b"a", "f1"), neg()).await;
        assert!(s.get(&key(b"a", "f1")).await.is_some());
        assert!(s.get(&key(b"b", "f1")).await.is_none());
    }

    #[tokio::test]
    async fn invalidate_file_drops_every_tenant() {
        let s = Store::new(1 << 20);
        s.insert(key(b"a", "f1"), neg()).await;
        s.insert(key(b"b", "f1"), neg()).await;
        s.insert(key(b"a", "f2"), neg()).await;
        s.invalidate_file(FileId::parse("f1").unwrap());
        assert!(s.get(&key(b"a", "f1")).await.is_none());
        assert!(s.get(&key(b"b", "f1")).await.is_none());
        assert!(s.get(&key(b"a", "f2")).await.is_some());
    }

    #[tokio::test]
    async fn ids_that_share_a_prefix_stay_apart() {
        let s = Store::new(1 << 20);
        s.insert(key(b"a", "f1"), neg()).await;
        s.insert(key(b"a", "f10"), neg()).await;
        assert!(s.get(&key(b"a", "f"),).await.is_none());
        s.invalidate_file(FileId::parse("f1").unwrap());
        assert!(s.get(&key(b"a", "f1")).await.is_none());
        assert!(s.get(&key(b"a", "f10")).await.is_some());
        s.remove(&key(b"a", "f10")).await;
        assert!(s.get(&key(b"a", "f10")).await.is_none());
    }

    #[tokio::test]
    async fn bounded_by_bytes() {
        let one = neg().weight() as u64;
        let s = Store::new(one * 10);
        for i in 0..100 {
            s.insert(key(b"a", &format!("f{i}")), neg()).await;
        }
        let (n, bytes) = s.usage().await;
        assert!(bytes <= one * 10, "{bytes}");
        assert!(n <= 10, "{n}");
    }
}
