//! HMAC-signed public URLs (`docs/CONTRACT.md`, "Signed public URLs").
//!
//! A stable link `/files/{fileId}/...` may carry `exp` (integer Unix seconds) and
//! `sig` = base64url without padding of HMAC-SHA256(key, `"{fileId}.{exp}"`). The key is the
//! UTF-8 bytes of a configured string. Several keys may be configured so they can be rotated:
//! the first one signs, any one verifies.
//!
//! `sig` is decoded strictly: padded base64 (`...=`), standard-alphabet characters (`+`, `/`)
//! and non-canonical trailing bits are all rejected as [`SignError::Malformed`], so exactly one
//! textual form of each signature is valid (no malleability); likewise `exp` must be plain
//! digits without a leading zero. The signature is checked before
//! the expiry, so [`SignError::Expired`] is only reported for a link that was genuinely signed.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest accepted `exp` text: `u64::MAX` has 20 digits.
const MAX_EXP_LEN: usize = 20;
/// base64url-no-pad of a 32-byte MAC is exactly 43 characters.
const SIG_LEN: usize = 43;

/// Signs and verifies public links; holds one precomputed HMAC state per key so each
/// signature only clones a keyed state instead of re-deriving it.
#[derive(Clone)]
pub struct Signer {
    keys: Vec<HmacSha256>,
}

/// Why a signed link was refused. Messages never include the signature or keys.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum SignError {
    /// `exp` or `sig` is absent (or empty): the link was not signed.
    #[error("missing link signature or expiry")]
    Missing,
    /// `exp` is not a plain integer or `sig` is not canonical base64url of a SHA-256 MAC.
    #[error("malformed link signature or expiry")]
    Malformed,
    /// Well-formed, but no configured key produced this signature.
    #[error("invalid link signature")]
    Bad,
    /// Validly signed, but `exp` is not in the future.
    #[error("signed link has expired")]
    Expired,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the count: key material must never reach logs.
        f.debug_struct("Signer")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Signer {
    /// Builds a signer from the configured key strings (first signs); `None` when the list is
    /// empty, which means signing is off.
    pub fn new(keys: Vec<String>) -> Option<Signer> {
        if keys.is_empty() {
            return None;
        }
        let keys = keys
            .iter()
            .filter_map(|k| HmacSha256::new_from_slice(k.as_bytes()).ok())
            .collect::<Vec<_>>();
        if keys.is_empty() {
            None
        } else {
            Some(Signer { keys })
        }
    }

    /// Returns the `sig` value for `file_id` valid until `exp`, made with the first key.
    pub fn sign(&self, file_id: &str, exp: u64) -> String {
        match self.keys.first() {
            Some(key) => URL_SAFE_NO_PAD.encode(mac(key, file_id, exp).finalize().into_bytes()),
            // Unreachable by construction (`new` refuses an empty list).
            None => String::new(),
        }
    }

    /// Checks the raw `exp` and `sig` query values of a request for `file_id` at `now_unix`.
    /// Any configured key is accepted; the comparison is constant-time.
    pub fn verify(
        &self,
        file_id: &str,
        exp: Option<&str>,
        sig: Option<&str>,
        now_unix: u64,
    ) -> Result<(), SignError> {
        let (exp, sig) = match (exp, sig) {
            (Some(e), Some(s)) if !e.is_empty() && !s.is_empty() => (e, s),
            _ => return Err(SignError::Missing),
        };
        let exp = parse_exp(exp).ok_or(SignError::Malformed)?;
        if sig.len() != SIG_LEN {
            return Err(SignError::Malformed);
        }
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| SignError::Malformed)?;
        let valid = self
            .keys
            .iter()
            .any(|key| mac(key, file_id, exp).verify_slice(&sig).is_ok());
        if !valid {
            return Err(SignError::Bad);
        }
        if now_unix >= exp {
            return Err(SignError::Expired);
        }
        Ok(())
    }

    /// Builds the absolute stable link
    /// `{public_url}/files/{file_id}/redirect?rendition={r}&exp={exp}&sig={sig}` that hydrant
    /// prints (`hydrant sign`) and returns in the JSON view; `rendition` is omitted when `None`.
    /// `file_id` is expected to be a validated id; other bytes are percent-encoded anyway.
    pub fn redirect_url(
        &self,
        public_url: &str,
        file_id: &str,
        rendition: Option<&str>,
        exp: u64,
    ) -> String {
        let base = public_url.trim_end_matches('/');
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(r) = rendition {
            query.append_pair("rendition", r);
        }
        query.append_pair("exp", &exp.to_string());
        query.append_pair("sig", &self.sign(file_id, exp));
        format!(
            "{base}/files/{}/redirect?{}",
            encode_path_segment(file_id),
            query.finish()
        )
    }
}

/// A keyed HMAC already fed with `"{file_id}.{exp}"`.
fn mac(key: &HmacSha256, file_id: &str, exp: u64) -> HmacSha256 {
    let mut m = key.clone();
    m.update(file_id.as_bytes());
    m.update(b".");
    m.update(exp.to_string().as_bytes());
    m
}

/// `exp` must be 1..=20 ASCII digits fitting a u64, without sign, spaces, fraction or
/// leading zero, so each expiry has exactly one accepted spelling.
fn parse_exp(s: &str) -> Option<u64> {
    if s.is_empty()
        || s.len() > MAX_EXP_LEN
        || !s.bytes().all(|b| b.is_ascii_digit())
        || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// Percent-encodes everything except RFC 3986 unreserved characters.
fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn signer(keys: &[&str]) -> Signer {
        Signer::new(keys.iter().map(|k| k.to_string()).collect()).unwrap()
    }

    #[test]
    fn known_vector_from_python() {
        // python3 -c "import hmac,hashlib,base64; d=hmac.new(b'test-key-1',
        //   b'vg_file_abc.1700000000', hashlib.sha256).digest();
        //   print(base64.urlsafe_b64encode(d).rstrip(b'=').decode())"
        let s = signer(&["test-key-1"]);
        assert_eq!(
            s.sign("vg_file_abc", 1_700_000_000),
            "We5HKYRQV6Kl_vDRP0zat1f-q4r6yb38POlUk31_iLc"
        );
    }

    #[test]
    fn round_trip() {
        let s = signer(&["k"]);
        let sig = s.sign("vg_file_abc", NOW + 60);
        assert_eq!(
            s.verify(
                "vg_file_abc",
                Some(&(NOW + 60).to_string()),
                Some(&sig),
                NOW
            ),
            Ok(())
        );
    }

    #[test]
    fn rotation_old_key_verifies_new_key_signs() {
        let old = signer(&["old"]);
        let rotated = signer(&["new", "old"]);
        let exp = (NOW + 10).to_string();
        let old_sig = old.sign("f", NOW + 10);
        assert_eq!(rotated.verify("f", Some(&exp), Some(&old_sig), NOW), Ok(()));
        let new_sig = rotated.sign("f", NOW + 10);
        assert_ne!(new_sig, old_sig);
        assert_eq!(signer(&["new"]).sign("f", NOW + 10), new_sig);
        assert_eq!(
            old.verify("f", Some(&exp), Some(&new_sig), NOW),
            Err(SignError::Bad)
        );
    }

    #[test]
    fn tampering_is_rejected() {
        let s = signer(&["k"]);
        let exp = NOW + 100;
        let sig = s.sign("vg_file_abc", exp);
        let e = exp.to_string();
        // Other file id.
        assert_eq!(
            s.verify("vg_file_abd", Some(&e), Some(&sig), NOW),
            Err(SignError::Bad)
        );
        // Other exp.
        let e2 = (exp + 1).to_string();
        assert_eq!(
            s.verify("vg_file_abc", Some(&e2), Some(&sig), NOW),
            Err(SignError::Bad)
        );
        // One character of the signature changed (still canonical base64url).
        let mut bad = sig.clone().into_bytes();
        bad[0] = if bad[0] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap();
        assert_eq!(
            s.verify("vg_file_abc", Some(&e), Some(&bad), NOW),
            Err(SignError::Bad)
        );
        // A leading zero would be a second spelling of the same exp: refused.
        let e0 = format!("0{e}");
        assert_eq!(
            s.verify("vg_file_abc", Some(&e0), Some(&sig), NOW),
            Err(SignError::Malformed)
        );
    }

    #[test]
    fn expired() {
        let s = signer(&["k"]);
        let sig = s.sign("f", NOW);
        let e = NOW.to_string();
        assert_eq!(
            s.verify("f", Some(&e), Some(&sig), NOW),
            Err(SignError::Expired)
        );
        assert_eq!(s.verify("f", Some(&e), Some(&sig), NOW - 1), Ok(()));
        // A forged signature on an expired link is Bad, not Expired.
        let other = signer(&["x"]).sign("f", NOW);
        assert_eq!(
            s.verify("f", Some(&e), Some(&other), NOW + 5),
            Err(SignError::Bad)
        );
    }

    #[test]
    fn missing() {
        let s = signer(&["k"]);
        let sig = s.sign("f", NOW + 1);
        let e = (NOW + 1).to_string();
        assert_eq!(
            s.verify("f", None, Some(&sig), NOW),
            Err(SignError::Missing)
        );
        assert_eq!(s.verify("f", Some(&e), None, NOW), Err(SignError::Missing));
        assert_eq!(s.verify("f", None, None, NOW), Err(SignError::Missing));
        assert_eq!(
            s.verify("f", Some(""), Some(&sig), NOW),
            Err(SignError::Missing)
        );
        assert_eq!(
            s.verify("f", Some(&e), Some(""), NOW),
            Err(SignError::Missing)
        );
    }

    #[test]
    fn malformed() {
        let s = signer(&["k"]);
        let sig = s.sign("f", NOW + 1);
        let e = (NOW + 1).to_string();
        for bad_exp in [
            "-1",
            "+1700000001",
            " 1700000001",
            "1700000001 ",
            "1.5",
            "abc",
            "1e9",
            "01700000001",
            "123456789012345678901",
            "99999999999999999999", // 20 digits but > u64::MAX
        ] {
            assert_eq!(
                s.verify("f", Some(bad_exp), Some(&sig), NOW),
                Err(SignError::Malformed),
                "{bad_exp}"
            );
        }
        let padded = format!("{sig}=");
        let std_alphabet = sig.replace('-', "+").replace('_', "/");
        let bad_sigs = [
            "not base64!".to_string(),
            padded,
            sig[..42].to_string(),
            format!("{sig}A"),
            "!".repeat(43),
        ];
        for bad in bad_sigs.iter() {
            assert_eq!(
                s.verify("f", Some(&e), Some(bad), NOW),
                Err(SignError::Malformed),
                "{bad}"
            );
        }
        if std_alphabet != sig {
            assert_eq!(
                s.verify("f", Some(&e), Some(&std_alphabet), NOW),
                Err(SignError::Malformed)
            );
        }
    }

    #[test]
    fn non_canonical_trailing_bits_rejected() {
        // 43 chars encode 258 bits; the last char carries 2 unused bits that must be zero.
        let s = signer(&["k"]);
        let sig = s.sign("f", NOW + 1);
        let e = (NOW + 1).to_string();
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let last = sig.as_bytes()[42];
        let idx = alphabet.iter().position(|&c| c == last).unwrap();
        let mut variant = sig.clone().into_bytes();
        variant[42] = alphabet[idx ^ 1];
        let variant = String::from_utf8(variant).unwrap();
        assert_eq!(
            s.verify("f", Some(&e), Some(&variant), NOW),
            Err(SignError::Malformed)
        );
    }

    #[test]
    fn empty_key_list_is_none_and_debug_hides_keys() {
        assert!(Signer::new(vec![]).is_none());
        let s = signer(&["super-secret-1", "super-secret-2"]);
        let dbg = format!("{s:?}");
        assert_eq!(dbg, "Signer { keys: 2 }");
        assert!(!dbg.contains("secret"));
        assert!(!SignError::Bad.to_string().contains("secret"));
    }

    #[test]
    fn redirect_url_shape_and_verification() {
        let s = signer(&["k"]);
        let url = s.redirect_url(
            "https://h.example/",
            "vg_file_abc",
            Some("preview"),
            NOW + 5,
        );
        let sig = s.sign("vg_file_abc", NOW + 5);
        assert_eq!(
            url,
            format!(
                "https://h.example/files/vg_file_abc/redirect?rendition=preview&exp={}&sig={sig}",
                NOW + 5
            )
        );
        let query = url.split_once('?').map(|(_, q)| q).unwrap();
        let params: std::collections::HashMap<String, String> =
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
        assert_eq!(
            s.verify(
                "vg_file_abc",
                params.get("exp").map(String::as_str),
                params.get("sig").map(String::as_str),
                NOW
            ),
            Ok(())
        );
        let no_r = s.redirect_url("http://127.0.0.1:8080", "f", None, 7);
        assert!(no_r.starts_with("http://127.0.0.1:8080/files/f/redirect?exp=7&sig="));
    }
}
