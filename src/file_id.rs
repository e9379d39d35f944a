//! `FileId`: a validated VideoGen file id, stored inline.
//!
//! hydrant accepts only `[A-Za-z0-9_-]{1,128}` in the routes it interprets. Keeping the id
//! inline (no heap) lets the router hand it on after the request is consumed and lets cache
//! keys be built on the hit path without allocating.

use std::fmt;
use std::hash::{Hash, Hasher};

/// Longest accepted id.
pub const MAX_LEN: usize = 128;

/// The bytes an id may hold (`[A-Za-z0-9_-]`), one table load per byte: every routed request
/// validates its id, and the chain of range checks cost about three times as much.
const ID_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        table[i] = c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        i += 1;
    }
    table
};

/// A validated file id (`[A-Za-z0-9_-]{1,128}`).
#[derive(Clone, Copy)]
pub struct FileId {
    len: u8,
    bytes: [u8; MAX_LEN],
}

impl FileId {
    /// Validate and copy `s`; `None` when it is not an acceptable id.
    pub fn parse(s: &str) -> Option<FileId> {
        let b = s.as_bytes();
        if b.is_empty() || b.len() > MAX_LEN || !b.iter().all(|c| ID_BYTE[usize::from(*c)]) {
            return None;
        }
        let mut bytes = [0u8; MAX_LEN];
        bytes[..b.len()].copy_from_slice(b);
        Some(FileId {
            len: b.len() as u8,
            bytes,
        })
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        // Only ASCII was accepted, so this cannot fail; fall back to "" defensively.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl PartialEq for FileId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for FileId {}

impl Hash for FileId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileId({})", self.as_str())
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_contract_alphabet() {
        assert_eq!(
            FileId::parse("vg_file_A-1").unwrap().as_str(),
            "vg_file_A-1"
        );
        assert!(FileId::parse("").is_none());
        assert!(FileId::parse("a/b").is_none());
        assert!(FileId::parse("a%20").is_none());
        assert!(FileId::parse("é").is_none());
        assert!(FileId::parse(&"a".repeat(128)).is_some());
        assert!(FileId::parse(&"a".repeat(129)).is_none());
        // The table is the alphabet, byte for byte.
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
            assert_eq!(ID_BYTE[usize::from(b)], want, "{b}");
        }
    }

    #[test]
    fn eq_and_hash_use_the_id_only() {
        use std::collections::HashSet;
        let a = FileId::parse("abc").unwrap();
        let b = FileId::parse("abc").unwrap();
        let mut s = HashSet::new();
        s.insert(a);
        assert!(s.contains(&b));
        assert_ne!(a, FileId::parse("abd").unwrap());
    }
}
