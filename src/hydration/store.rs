//! Where entries live: moka holds them, bounded by bytes; a read-optimised index serves hits.
//!
//! moka is the authority: every entry is inserted there, and moka alone decides what is
//! evicted (by weight, TinyLFU) and garbage-collects entries whose URLs have really expired.
//! It decides nothing about freshness (its clock cannot be driven by tests).
//!
//! Reads go to a lock-free index (papaya) holding the same `Arc<Entry>`s. moka's own read path
//! chases several pointers and queues an access record per read for its LRU and frequency
//! sketch, which on a 10,000-file working set cost more than the rest of a cache hit together
//! (see benches/README.md). The index is kept a mirror of moka: inserts and removals go to
//! both, and moka's eviction listener drops what moka evicts. A hit reports itself to moka at
//! most once per second per entry ([`Entry::claim_touch`]), enough for moka to know which
//! entries are hot.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::notification::RemovalCause;
use moka::sync::Cache;
use moka::Expiry;
use parking_lot::Mutex;
use tokio::time::Instant;

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

/// What the store keys on: a 128-bit SipHash of `(tenant, fileId)` under a secret key drawn
/// at start-up. Fixed size and inline, so a lookup compares 16 bytes instead of chasing a
/// pointer to the key's bytes, and an entry costs no key allocation. SipHash is a keyed PRF:
/// two distinct keys share a digest with probability 2^-128 whatever the ids are (Varnish
/// identifies its objects by a SHA-256 digest alone, on the same reasoning).
type Digest = u128;

/// Computes [`Digest`]s under this process's secret key.
#[derive(Clone)]
struct Digester {
    k0: u64,
    k1: u64,
}

impl Digester {
    fn random() -> Digester {
        Digester {
            k0: rand::random(),
            k1: rand::random(),
        }
    }

    fn digest(&self, key: &Key) -> Digest {
        use siphasher::sip128::Hasher128;
        use std::hash::Hasher;
        let mut h = siphasher::sip128::SipHasher13::new_with_keys(self.k0, self.k1);
        // The tenant is fixed-size, so tenant ++ id is unambiguous.
        h.write(key.tenant.as_bytes());
        h.write(key.file.as_str().as_bytes());
        h.finish128().as_u128()
    }
}

/// Hashes a [`Digest`] for the hash tables by taking its low bits: it is already uniform.
#[derive(Default)]
pub struct LowBits(u64);

impl std::hash::Hasher for LowBits {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only digests are hashed here; fold anything else so nothing is lost.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

pub type DigestHash = std::hash::BuildHasherDefault<LowBits>;

/// The read side: digest → entry.
type Index = papaya::HashMap<Digest, Arc<Entry>, DigestHash>;

struct KeepUntilStale;

impl Expiry<Digest, Arc<Entry>> for KeepUntilStale {
    fn expire_after_create(
        &self,
        _key: &Digest,
        value: &Arc<Entry>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.keep_for(clock::now()))
    }

    fn expire_after_update(
        &self,
        _key: &Digest,
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
    cache: Cache<Digest, Arc<Entry>, DigestHash>,
    index: Arc<Index>,
    digester: Digester,
    /// Every tenant that ever stored an entry, so a file can be dropped for all of them with
    /// exact removals (a handful of API keys in practice).
    tenants: Arc<Mutex<HashSet<Tenant>>>,
    /// Bumped by every removal, so a fill that started before one can tell it must not store
    /// (an invalidation wins over a fill in flight).
    generation: Arc<AtomicU64>,
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
        let index: Arc<Index> = Arc::new(
            papaya::HashMap::builder()
                .hasher(Default::default())
                .build(),
        );
        let mirror = index.clone();
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_k: &Digest, v: &Arc<Entry>| v.weight())
            .expire_after(KeepUntilStale)
            .eviction_listener(move |key: Arc<Digest>, gone: Arc<Entry>, cause| {
                // A replaced entry's successor is already in the index; anything else moka
                // dropped leaves the index too, unless a newer entry took its place meanwhile.
                if cause != RemovalCause::Replaced {
                    let _ = mirror
                        .pin()
                        .remove_if(&*key, |_, current| Arc::ptr_eq(current, &gone));
                }
            })
            .build_with_hasher(DigestHash::default());
        Store {
            cache,
            index,
            digester: Digester::random(),
            tenants: Arc::default(),
            generation: Arc::default(),
        }
    }

    /// The entry for `key`, fresh or not, as of `now`.
    pub fn get(&self, key: &Key, now: Instant) -> Option<Arc<Entry>> {
        let d = self.digester.digest(key);
        let entry = self.index.pin().get(&d)?.clone();
        if entry.claim_touch(now) {
            // Recency and frequency for moka's eviction; the value is the same entry.
            let _ = self.cache.get(&d);
        }
        Some(entry)
    }

    /// Store (or replace) an entry.
    pub fn insert(&self, key: Key, entry: Arc<Entry>) {
        self.tenants.lock().insert(key.tenant);
        let d = self.digester.digest(&key);
        // Index first: were moka to evict the entry at once (no room), its listener must find
        // it there to remove it.
        self.index.pin().insert(d, entry.clone());
        self.cache.insert(d, entry);
    }

    /// The removal generation now (see [`Store::insert_if_current`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Store `entry` unless something was removed since `generation` was read: a fill that
    /// raced an invalidation must not bring the old state back.
    pub fn insert_if_current(&self, key: Key, entry: Arc<Entry>, generation: u64) -> bool {
        if self.generation() != generation {
            return false;
        }
        self.insert(key, entry);
        true
    }

    /// Drop everything (a replica that may have missed invalidations).
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.index.pin().clear();
        self.cache.invalidate_all();
    }

    /// Drop one entry. Takes effect for lookups immediately.
    pub fn remove(&self, key: &Key) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let d = self.digester.digest(key);
        self.index.pin().remove(&d);
        self.cache.invalidate(&d);
    }

    /// Drop a file's entries for every tenant. Takes effect for lookups immediately.
    pub fn invalidate_file(&self, file: FileId) {
        let tenants: Vec<Tenant> = self.tenants.lock().iter().copied().collect();
        self.generation.fetch_add(1, Ordering::AcqRel);
        for tenant in tenants {
            self.remove(&Key { tenant, file });
        }
    }

    /// (entries, weighted bytes), after running moka's pending maintenance.
    pub fn usage(&self) -> (u64, u64) {
        self.cache.run_pending_tasks();
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

    #[test]
    fn tenants_never_share() {
        let s = Store::new(1 << 20);
        s.insert(key(b"a", "f1"), neg());
        assert!(s.get(&key(b"a", "f1"), clock::now()).is_some());
        assert!(s.get(&key(b"b", "f1"), clock::now()).is_none());
    }

    #[test]
    fn invalidate_file_drops_every_tenant() {
        let s = Store::new(1 << 20);
        s.insert(key(b"a", "f1"), neg());
        s.insert(key(b"b", "f1"), neg());
        s.insert(key(b"a", "f2"), neg());
        s.invalidate_file(FileId::parse("f1").unwrap());
        assert!(s.get(&key(b"a", "f1"), clock::now()).is_none());
        assert!(s.get(&key(b"b", "f1"), clock::now()).is_none());
        assert!(s.get(&key(b"a", "f2"), clock::now()).is_some());
    }

    #[test]
    fn ids_that_share_a_prefix_stay_apart() {
        let s = Store::new(1 << 20);
        s.insert(key(b"a", "f1"), neg());
        s.insert(key(b"a", "f10"), neg());
        assert!(s.get(&key(b"a", "f"), clock::now()).is_none());
        s.invalidate_file(FileId::parse("f1").unwrap());
        assert!(s.get(&key(b"a", "f1"), clock::now()).is_none());
        assert!(s.get(&key(b"a", "f10"), clock::now()).is_some());
        s.remove(&key(b"a", "f10"));
        assert!(s.get(&key(b"a", "f10"), clock::now()).is_none());
    }

    #[test]
    fn bounded_by_bytes() {
        let one = neg().weight() as u64;
        let s = Store::new(one * 10);
        for i in 0..100 {
            s.insert(key(b"a", &format!("f{i}")), neg());
        }
        let (n, bytes) = s.usage();
        assert!(bytes <= one * 10, "{bytes}");
        assert!(n <= 10, "{n}");
        // What moka evicted left the index too: lookups find exactly what moka holds.
        let found = (0..100)
            .filter(|i| s.get(&key(b"a", &format!("f{i}")), clock::now()).is_some())
            .count() as u64;
        assert_eq!(found, n);
        assert_eq!(s.index.len() as u64, n);
    }

    #[test]
    fn replacing_keeps_the_newest() {
        let s = Store::new(1 << 20);
        let (a, b) = (neg(), neg());
        s.insert(key(b"a", "f1"), a);
        s.insert(key(b"a", "f1"), b.clone());
        s.usage(); // runs moka's listener for the replaced entry
        let got = s.get(&key(b"a", "f1"), clock::now()).unwrap();
        assert!(Arc::ptr_eq(&got, &b));
        assert_eq!(s.usage().0, 1);
    }

    #[test]
    fn removal_is_immediate_on_both_sides() {
        let s = Store::new(1 << 20);
        s.insert(key(b"a", "f1"), neg());
        s.remove(&key(b"a", "f1"));
        assert!(s.get(&key(b"a", "f1"), clock::now()).is_none());
        assert_eq!(s.index.len(), 0);
        assert_eq!(s.usage().0, 0);
    }

    #[test]
    fn a_hot_entry_survives_a_scan_of_cold_ones() {
        // Hits reach moka only once per second per entry; a hot entry must still outlive a scan
        // of entries written once or twice, with the byte bound kept. (moka's admission keeps
        // it here even without the reports; this guards the property, not the mechanism.)
        let one = neg().weight() as u64;
        let s = Store::new(one * 10);
        let hot = key(b"a", "hot");
        s.insert(hot, neg());
        let t0 = clock::now();
        for sec in 0..20 {
            for _ in 0..50 {
                assert!(s.get(&hot, t0 + Duration::from_secs(sec)).is_some());
            }
        }
        // Each cold key is written twice, as a refresh would.
        for i in 0..200 {
            s.insert(key(b"a", &format!("cold{i}")), neg());
            s.insert(key(b"a", &format!("cold{i}")), neg());
        }
        s.usage();
        assert!(s.get(&hot, t0).is_some(), "the hot entry was evicted");
        let (n, bytes) = s.usage();
        assert!(n <= 10 && bytes <= one * 10, "{n} entries, {bytes} bytes");
    }

    #[test]
    fn hits_report_to_moka_once_per_second() {
        let e = neg();
        let t0 = e.created;
        assert!(e.claim_touch(t0));
        assert!(!e.claim_touch(t0 + Duration::from_millis(999)));
        assert!(e.claim_touch(t0 + Duration::from_secs(1)));
        assert!(!e.claim_touch(t0 + Duration::from_millis(1500)));
        assert!(e.claim_touch(t0 + Duration::from_secs(5)));
    }
}
