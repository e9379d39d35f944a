//! Tenants: who a cache entry belongs to, without ever storing the key.
//!
//! A tenant is the truncated SHA-256 of the API key used *upstream* for a request. Two keys
//! never share a cache entry or a rate-limit bucket, and the key itself is never kept.

use std::fmt;

use sha2::{Digest, Sha256};

/// 128 bits of SHA-256 over the upstream API key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant([u8; 16]);

impl Tenant {
    /// The tenant of requests made upstream with `api_key`.
    pub fn of_key(api_key: &[u8]) -> Tenant {
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
    fn display_never_shows_key() {
        let t = Tenant::of_key(b"vg_live_secret_key");
        let s = format!("{t} {t:?}");
        assert!(!s.contains("secret"));
        assert_eq!(format!("{t}").len(), 8);
    }
}
