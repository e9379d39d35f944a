//! Tenants: who a cache entry belongs to, without ever storing the key.
//!
//! A tenant is the truncated SHA-256 of the API key used *upstream* for a request. Two keys
//! never share a cache entry or a rate-limit bucket, and the key itself is never kept.
//!
//! Every `/v1/...` request names its tenant, so each worker thread remembers the tenants of
//! the last few keys it saw, found by a SipHash-128 of the key under a secret drawn at
//! start-up: a cache hit then costs one short keyed hash instead of a SHA-256 (about 3,500
//! instructions, a fifth of the whole hit; see benches/README.md). The memo holds that hash
//! and the tenant, never the key.

use std::cell::RefCell;
use std::fmt;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};
use siphasher::sip128::Hasher128;

/// 128 bits of SHA-256 over the upstream API key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant([u8; 16]);

impl Tenant {
    /// The tenant of requests made upstream with `api_key`.
    pub fn of_key(api_key: &[u8]) -> Tenant {
        let tag = memo_tag(api_key);
        MEMO.try_with(|m| {
            let mut m = m.borrow_mut();
            if let Some(i) = m.tags.iter().position(|t| *t == tag) {
                return m.tenants[i];
            }
            let tenant = Tenant::digest(api_key);
            let i = m.next;
            m.tags[i] = tag;
            m.tenants[i] = tenant;
            m.next = (i + 1) % MEMO_SLOTS;
            tenant
        })
        // A thread being torn down has no memo left: compute.
        .unwrap_or_else(|_| Tenant::digest(api_key))
    }

    fn digest(api_key: &[u8]) -> Tenant {
        let digest = Sha256::digest(api_key);
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        Tenant(out)
    }

    /// All 128 bits as lowercase hex: how the tenant appears in Redis keys and messages (a
    /// hash of the key, never the key).
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The inverse of [`Tenant::hex`].
    pub fn from_hex(s: &str) -> Option<Tenant> {
        let bytes = s.as_bytes();
        if bytes.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).ok()?;
            out[i] = u8::from_str_radix(text, 16).ok()?;
        }
        Some(Tenant(out))
    }

    /// Raw bytes (for keys of fixed size).
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

/// Keys remembered per thread: a process serves a handful of API keys at most, and a miss
/// only costs the SHA-256 it would have cost anyway.
const MEMO_SLOTS: usize = 4;

/// The last few keys' tenants on this thread, by [`memo_tag`]; tag 0 is an empty slot.
struct Memo {
    tags: [u128; MEMO_SLOTS],
    tenants: [Tenant; MEMO_SLOTS],
    next: usize,
}

thread_local! {
    static MEMO: RefCell<Memo> = const {
        RefCell::new(Memo {
            tags: [0; MEMO_SLOTS],
            tenants: [Tenant([0; 16]); MEMO_SLOTS],
            next: 0,
        })
    };
}

/// A keyed 128-bit SipHash of the key (a PRF under this process's secret, so two keys share a
/// tag with probability 2^-127), never 0.
fn memo_tag(api_key: &[u8]) -> u128 {
    static KEYS: OnceLock<(u64, u64)> = OnceLock::new();
    let (k0, k1) = *KEYS.get_or_init(|| (rand::random(), rand::random()));
    let mut h = siphasher::sip128::SipHasher13::new_with_keys(k0, k1);
    std::hash::Hasher::write(&mut h, api_key);
    h.finish128().as_u128() | 1
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tenant({self})")
    }
}

impl fmt::Display for Tenant {
    /// Short hex prefix: enough to tell tenants apart in logs, useless for recovering a key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn different_keys_different_tenants() {
        assert_ne!(Tenant::of_key(b"a"), Tenant::of_key(b"b"));
        assert_eq!(Tenant::of_key(b"a"), Tenant::of_key(b"a"));
    }

    #[test]
    fn the_memo_gives_the_digest_of_each_key() {
        // More keys than slots, asked twice over, in a cycle that evicts each before its
        // next use: every answer must still be the SHA-256 of its own key.
        let keys: Vec<Vec<u8>> = (0..(MEMO_SLOTS * 2 + 1))
            .map(|i| format!("vg_key_{i}").into_bytes())
            .collect();
        for _ in 0..3 {
            for k in &keys {
                assert_eq!(Tenant::of_key(k), Tenant::digest(k));
                assert_eq!(Tenant::of_key(k), Tenant::digest(k));
            }
        }
        assert_ne!(Tenant::of_key(b""), Tenant::of_key(b"\0"));
    }

    #[test]
    fn display_never_shows_key() {
        let t = Tenant::of_key(b"vg_live_secret_key");
        let s = format!("{t} {t:?}");
        assert!(!s.contains("secret"));
        assert_eq!(format!("{t}").len(), 8);
    }
}
