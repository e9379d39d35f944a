//! Where a cached entry's bytes go: RSS per entry of each structure the store keeps, added one
//! at a time, with the allocator hydrant ships (mimalloc) and the store's own moka settings.
//!
//! ```sh
//! cargo run --release --example entry_memory            # 100,000 entries, 1,500-byte bodies
//! cargo run --release --example entry_memory -- 100000 2429
//! ```
//!
//! Stages (each line: RSS added by the stage ÷ entries):
//! 1. the bodies alone (`Bytes` over an exact-size `Vec`, as `Entry::hydrated` copies them);
//! 2. the `Arc<Entry>` allocations: 240-byte stand-ins, the size `Entry` is kept to (its test
//!    checks that it and the `Arc` counters fit 256 bytes);
//! 3. the read index: `papaya::HashMap<u128, Arc<_>>` with the store's hasher;
//! 4. moka: `Cache<u128, Arc<_>>` with a weigher, per-entry expiry and an eviction listener,
//!    as `Store::new` builds it.
//!
//! `benches/memory.sh` measures the whole process with the real entries; this shows the split.
//! Nothing is freed between two readings (a freed page would be reused by the next stage and
//! hide its cost), and every vector the program itself keeps is written before the first one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
// The store's own hasher for its digest keys.
use hydrant::hydration::DigestHash;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An entry's own allocation: `Entry` is at most 240 bytes (`hydration::entry` tests it).
/// The array is never read: it is there for its size.
struct Stand(#[allow(dead_code)] [u8; 240], Bytes);

struct KeepFor;

impl moka::Expiry<u128, Arc<Stand>> for KeepFor {
    fn expire_after_create(&self, _: &u128, _: &Arc<Stand>, _: Instant) -> Option<Duration> {
        Some(Duration::from_secs(3600))
    }
}

/// Resident set size in bytes (`/proc/self/statm`, pages × 4 KiB).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn report(stage: &str, before: u64, n: usize) -> u64 {
    let now = rss();
    println!(
        "| {stage} | {:.0} |",
        now.saturating_sub(before) as f64 / n as f64
    );
    now
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let body_len: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_500);
    let digests: Vec<u128> = (0..n as u128)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835))
        .collect();
    println!("{n} entries, {body_len}-byte bodies, mimalloc\n");
    println!("| stage | RSS per entry (B) |\n|---|---:|");
    // Every vector is written before the first reading, so its pages are not counted.
    let template = vec![b'x'; body_len];
    let mut bodies = vec![Bytes::new(); n];
    let mut served = vec![Bytes::new(); n];
    let mut entries: Vec<Option<Arc<Stand>>> = vec![None; n];
    let start = rss();
    for b in &mut bodies {
        *b = Bytes::copy_from_slice(&template);
    }
    let t = report("bodies (exact-size copies)", start, n);
    // A served body is sliced or cloned: the first clone of a `Vec`-backed `Bytes` moves its
    // refcount into a shared header, once per entry.
    for (s, b) in served.iter_mut().zip(&bodies) {
        *s = b.slice(1..);
    }
    let t = report("the body's shared refcount (first hit)", t, n);
    for (e, b) in entries.iter_mut().zip(&bodies) {
        *e = Some(Arc::new(Stand([0; 240], b.clone())));
    }
    let t = report("`Arc<Entry>` (240 B + counters)", t, n);
    let index: papaya::HashMap<u128, Arc<Stand>, DigestHash> = papaya::HashMap::builder()
        .hasher(DigestHash::default())
        .build();
    for (d, e) in digests.iter().zip(entries.iter().flatten()) {
        index.pin().insert(*d, e.clone());
    }
    let t = report("read index (papaya)", t, n);
    let cache: moka::sync::Cache<u128, Arc<Stand>, DigestHash> = moka::sync::Cache::builder()
        .max_capacity(u64::MAX)
        .weigher(|_: &u128, v: &Arc<Stand>| (v.1.len() + 496) as u32)
        .expire_after(KeepFor)
        .eviction_listener(|_: Arc<u128>, _: Arc<Stand>, _| {})
        .build_with_hasher(DigestHash::default());
    for (d, e) in digests.iter().zip(entries.iter().flatten()) {
        cache.insert(*d, e.clone());
    }
    cache.run_pending_tasks();
    let t = report("moka (weigher, expiry, listener)", t, n);
    println!(
        "| **total** | **{:.0}** ({:.2} × the body) |",
        t.saturating_sub(start) as f64 / n as f64,
        t.saturating_sub(start) as f64 / n as f64 / body_len as f64
    );
    // Keep everything alive until measured.
    assert_eq!(
        (served.len(), bodies.len(), entries.iter().flatten().count()),
        (n, n, n)
    );
    assert_eq!(cache.entry_count() as usize, n);
    drop(index);
}
