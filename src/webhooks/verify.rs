//! Standard Webhooks verification, mirroring the official VideoGen Python SDK 2.5.3
//! (`videogen/verify_webhook_signature.py`) so hydrant accepts exactly what the SDK accepts.
//!
//! * Headers `webhook-id`, `webhook-timestamp`, `webhook-signature` (first value of each);
//!   absent, empty or non-UTF-8 → [`VerifyError::MissingHeaders`].
//! * The timestamp is parsed like Python's `int()` (surrounding whitespace, an optional sign,
//!   single `_` between digits); it must be within 300 s of now in either direction (exactly
//!   300 s is accepted). A well-formed integer too large for `i64` is stale, as in Python.
//!   Divergence: non-ASCII Unicode digits, which `int()` accepts, are rejected here.
//! * The MAC is HMAC-SHA256 over `"{id}.{timestamp}." + body`, with the timestamp text *as
//!   sent* (not re-formatted). The header holds space-separated entries; only `v1,<sig>`
//!   entries count, and `<sig>` is compared as text (constant-time) with the standard padded
//!   base64 of the MAC, so unpadded or url-safe spellings do not match — as in the SDK.
//! * Secret: surrounding whitespace and an optional `whsec_` prefix are removed, then the rest
//!   is decoded like Python's non-strict `base64.b64decode`: characters outside the base64
//!   alphabet are skipped, decoding stops at the first complete padding, and a leftover partial
//!   quantum is an error. On error (or non-ASCII text) the raw UTF-8 bytes are the key. So
//!   `whsec_password` is base64 (6 bytes), while `hunter2` (7 data characters) is used raw.
//!   Divergence: a secret that is blank or decodes to zero bytes (e.g. `whsec_`) is ignored
//!   rather than used as an empty, publicly known key.
//! * Several secrets may be configured (rotation): any one verifies.
//!
//! Not the `standardwebhooks` crate (1.0.1), though it implements the same scheme, because
//! its `Webhook::verify`
//! * reads the system clock itself, so it cannot follow hydrant's clock (tokio time, paused
//!   in tests) nor check a delivery at a given `now_unix`;
//! * signs the timestamp re-printed from an `i64`: `+1614265330`, signed over that text as
//!   sent, fails; and its `str::parse::<i64>` calls ` 1614265330` or `1_614_265_330`
//!   malformed, where the SDK goes on to check the signature;
//! * takes an empty header as present and refuses a non-UTF-8 body before any MAC;
//!
//! and its `Webhook::new` decodes secrets strictly (`hunter2`, `whsec_YWI`, `whsec_Y-W_I-j`
//! are errors, not the SDK's keys), with an error that carries an offending secret byte.
//! Only its `sign` would fit, and verifying needs the MAC over the raw timestamp text anyway;
//! so the crate is the reference the tests check this module against.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The SDK's default tolerance between `webhook-timestamp` and now, either direction.
pub const TOLERANCE_SECS: i64 = 300;

/// Verifies VideoGen webhook deliveries against one or more secrets; keeps a keyed HMAC state
/// per secret so a delivery costs one clone + hash per secret.
#[derive(Clone)]
pub struct WebhookVerifier {
    keys: Vec<HmacSha256>,
}

impl fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the count: secrets must never reach logs.
        f.debug_struct("WebhookVerifier")
            .field("secrets", &self.keys.len())
            .finish()
    }
}

/// What a verified delivery established: its id (for de-duplication) and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDelivery {
    /// The `webhook-id` header, the sender's idempotency key.
    pub id: String,
    /// The `webhook-timestamp` header as Unix seconds.
    pub timestamp: i64,
}

/// Why a delivery was refused; checked in the SDK's order. Messages carry no secret material.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum VerifyError {
    /// One of the three `webhook-*` headers is absent, empty or not UTF-8.
    #[error("missing webhook-id, webhook-timestamp or webhook-signature")]
    MissingHeaders,
    /// `webhook-timestamp` is not an integer.
    #[error("invalid webhook-timestamp")]
    BadTimestamp,
    /// `webhook-timestamp` is more than 300 s away from now (replay protection).
    #[error("webhook timestamp outside tolerance")]
    StaleTimestamp,
    /// No `v1` signature matches any configured secret.
    #[error("invalid webhook signature")]
    BadSignature,
}

impl VerifyError {
    /// A stable, low-cardinality label for the `outcome` of webhook delivery metrics.
    pub fn reason(self) -> &'static str {
        match self {
            VerifyError::MissingHeaders => "missing_headers",
            VerifyError::BadTimestamp => "bad_timestamp",
            VerifyError::StaleTimestamp => "stale_timestamp",
            VerifyError::BadSignature => "bad_signature",
        }
    }
}

impl WebhookVerifier {
    /// Builds a verifier from configured secrets (`whsec_...`); `None` when no usable secret
    /// remains (blank secrets and secrets decoding to an empty key are skipped).
    pub fn new(secrets: &[String]) -> Option<WebhookVerifier> {
        let keys: Vec<HmacSha256> = secrets
            .iter()
            .map(|s| decode_secret(s))
            .filter(|k| !k.is_empty())
            .filter_map(|k| HmacSha256::new_from_slice(&k).ok())
            .collect();
        if keys.is_empty() {
            None
        } else {
            Some(WebhookVerifier { keys })
        }
    }

    /// Verifies one delivery's headers and raw body at `now_unix` (Unix seconds).
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now_unix: i64,
    ) -> Result<VerifiedDelivery, VerifyError> {
        let id = header(headers, "webhook-id").ok_or(VerifyError::MissingHeaders)?;
        let ts_text = header(headers, "webhook-timestamp").ok_or(VerifyError::MissingHeaders)?;
        let signatures = header(headers, "webhook-signature").ok_or(VerifyError::MissingHeaders)?;

        let timestamp = match parse_py_int(ts_text) {
            PyInt::Invalid => return Err(VerifyError::BadTimestamp),
            PyInt::Overflow => return Err(VerifyError::StaleTimestamp),
            PyInt::Value(v) => v,
        };
        if (i128::from(now_unix) - i128::from(timestamp)).abs() > i128::from(TOLERANCE_SECS) {
            return Err(VerifyError::StaleTimestamp);
        }

        let candidates: Vec<&[u8]> = signatures
            .split(' ')
            .filter_map(|part| part.split_once(','))
            .filter(|(version, _)| *version == "v1")
            .map(|(_, sig)| sig.as_bytes())
            .collect();
        if candidates.is_empty() {
            return Err(VerifyError::BadSignature);
        }
        let matched = self.keys.iter().any(|key| {
            let expected = expected_signature(key, id, ts_text, body);
            // Non-short-circuiting over entries; length is not secret.
            candidates.iter().fold(false, |acc, sig| {
                acc | bool::from(sig.ct_eq(expected.as_bytes()))
            })
        });
        if !matched {
            return Err(VerifyError::BadSignature);
        }
        Ok(VerifiedDelivery {
            id: id.to_owned(),
            timestamp,
        })
    }
}

/// Signs a delivery the way VideoGen does, for the simulator and tests: returns the
/// `webhook-signature` header value `v1,<base64>`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = decode_secret(secret);
    match HmacSha256::new_from_slice(&key) {
        Ok(mac) => format!(
            "v1,{}",
            expected_signature(&mac, id, &timestamp.to_string(), body)
        ),
        // HMAC accepts keys of any length; this arm is never taken.
        Err(_) => String::from("v1,"),
    }
}

/// Standard padded base64 of HMAC-SHA256(key, `"{id}.{ts}." + body`).
fn expected_signature(key: &HmacSha256, id: &str, ts_text: &str, body: &[u8]) -> String {
    let mut mac = key.clone();
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(ts_text.as_bytes());
    mac.update(b".");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// First value of a header as UTF-8, `None` when absent, empty or not UTF-8.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let v = headers.get(name)?;
    let s = std::str::from_utf8(v.as_bytes()).ok()?;
    (!s.is_empty()).then_some(s)
}

/// Python's `str.isspace()` for the characters a config string may contain.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

enum PyInt {
    Value(i64),
    Overflow,
    Invalid,
}

/// Parses like Python's `int(str)` for ASCII digits: whitespace around, optional sign, and
/// single underscores between digits.
fn parse_py_int(s: &str) -> PyInt {
    let s = s.trim_matches(is_py_space);
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    // Splitting at `_` leaves an empty group for a leading, trailing or doubled underscore.
    let well_formed = digits
        .split('_')
        .all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()));
    if !well_formed {
        return PyInt::Invalid;
    }
    // A sign and digits are all that is left, so the only way to fail is overflow.
    s.replace('_', "")
        .parse::<i64>()
        .map_or(PyInt::Overflow, PyInt::Value)
}

/// The SDK's `_decode_secret`: strip, drop `whsec_`, non-strict base64 or raw UTF-8 bytes.
fn decode_secret(secret: &str) -> Vec<u8> {
    let value = secret.trim_matches(is_py_space);
    let value = value.strip_prefix("whsec_").unwrap_or(value);
    if !value.is_ascii() {
        // `base64.b64decode(str)` raises ValueError on non-ASCII text.
        return value.as_bytes().to_vec();
    }
    py_b64decode_lenient(value.as_bytes()).unwrap_or_else(|| value.as_bytes().to_vec())
}

/// Decodes what the Python rules below keep: any length, no `=` and, as in Python, non-zero
/// bits after the last full byte are ignored (`YWJ=` is `ab`).
const PY_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// CPython's `binascii.a2b_base64(data, strict_mode=False)`: skips bytes outside the
/// standard alphabet, stops at the first padding that completes a quantum, and fails when a
/// partial quantum is left over. The base64 crate has no such mode, so only the selection of
/// characters is done here.
fn py_b64decode_lenient(data: &[u8]) -> Option<Vec<u8>> {
    let mut kept = Vec::with_capacity(data.len());
    let mut pads = 0;
    for &c in data {
        if c.is_ascii_alphanumeric() || c == b'+' || c == b'/' {
            kept.push(c);
            pads = 0;
        } else if c == b'=' {
            // `=` counts only after the second character of a quantum; before, it is junk.
            let pos = kept.len() % 4;
            if pos >= 2 {
                pads += 1;
                if pos + pads >= 4 {
                    return PY_LENIENT.decode(&kept).ok();
                }
            }
        }
    }
    if kept.len() % 4 == 0 {
        PY_LENIENT.decode(&kept).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const SDK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SDK_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SDK_TS: i64 = 1_614_265_330;
    const SDK_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SDK_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(id: &str, ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("webhook-id", HeaderValue::from_str(id).unwrap());
        h.insert("webhook-timestamp", HeaderValue::from_str(ts).unwrap());
        h.insert("webhook-signature", HeaderValue::from_str(sig).unwrap());
        h
    }

    fn verifier(secrets: &[&str]) -> WebhookVerifier {
        let s: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        WebhookVerifier::new(&s).unwrap()
    }

    fn sdk_headers() -> HeaderMap {
        headers(SDK_ID, &SDK_TS.to_string(), SDK_SIG)
    }

    /// Vectors signed with the SDK's `_decode_secret` + hmac and accepted by the real
    /// `verify_webhook_signature` of videogen 2.5.3.
    #[test]
    fn sdk_vectors() {
        let cases: [(&str, &str, i64, &[u8], &str); 4] = [
            (SDK_SECRET, SDK_ID, SDK_TS, SDK_BODY, SDK_SIG),
            (
                "whsec_dGVzdC1zZWNyZXQtZm9yLWh5ZHJhbnQ=",
                "msg_2abc",
                1_700_000_000,
                br#"{"event":"file.playback_ready","fileId":"vg_file_abc"}"#,
                "v1,0JvNgAuVzUoVrpnv03qImrq+gkMXs6/6FWgSWAjyDGk=",
            ),
            (
                "hunter2",
                "msg_raw",
                1_700_000_000,
                br#"{"event":"x"}"#,
                "v1,eiF1CJF41p1Mu/OoruXJkrz9TwBiDbiGy2G4GJufMH4=",
            ),
            (
                "whsec_password",
                "msg_pw",
                1_700_000_000,
                b"{}",
                "v1,R9+jvGZEoqQlgvs7vNjdrvD+bgWNqIHtE2BLBFpuNGQ=",
            ),
        ];
        for (secret, id, ts, body, sig) in cases {
            assert_eq!(sign(secret, id, ts, body), sig, "{secret}");
            let v = verifier(&[secret]);
            let got = v
                .verify(&headers(id, &ts.to_string(), sig), body, ts + 10)
                .unwrap();
            assert_eq!(
                got,
                VerifiedDelivery {
                    id: id.into(),
                    timestamp: ts
                }
            );
        }
    }

    #[test]
    fn secret_decoding_matches_python() {
        // Expected keys from the SDK's `_decode_secret(...).hex()` on Python 3.11.
        let cases: &[(&str, &str)] = &[
            (
                SDK_SECRET,
                "31f290f6bf06298aab4f08d43c3f082cf648a362da2da4b0",
            ),
            ("hunter2", "68756e74657232"),
            ("whsec_password", "a5ab2cc28add"),
        ];
        for (secret, hex) in cases {
            assert_eq!(&to_hex(&decode_secret(secret)), hex, "{secret}");
        }
        for (input, expected) in B64_TABLE {
            let got = decode_secret(input);
            assert_eq!(&to_hex(&got), expected, "{input:?}");
        }
    }

    // Generated with Python 3.11.7: `_decode_secret(s).hex()` for each s.
    const B64_TABLE: &[(&str, &str)] = &[
        ("", ""),
        ("whsec_", ""),
        ("  whsec_YWJj  ", "616263"),
        ("YWJj", "616263"),
        ("YWI=", "6162"),
        ("YWI", "595749"),
        ("YQ==", "61"),
        ("YQ=", "59513d"),
        ("YQ", "5951"),
        ("Y", "59"),
        ("YQ==YWJj", "61"),
        ("YWI=YWJj", "6162"),
        ("Y=Q==", "61"),
        ("YW=I=", "6162"),
        ("YW==I", "61"),
        ("Y-W_I-j", "616223"),
        ("YW Jj", "616263"),
        ("YWJj\n", "616263"),
        ("\u{001c}YWJj\u{001f}", "616263"),
        ("whsec_YW\u{00e9}Jj", "5957c3a94a6a"),
        ("h\u{00e9}llo", "68c3a96c6c6f"),
        ("=YWJj", "616263"),
        ("====", ""),
        ("YW=", "59573d"),
        ("YWJ=", "6162"),
        ("YWJ==", "6162"),
        ("YWJjZA", "59574a6a5a41"),
        ("YWJjZA=", "59574a6a5a413d"),
        ("YWJjZA==", "61626364"),
        ("YWJjZA===x", "61626364"),
        ("a=b=c=d", "69b7"),
        ("ab=c=d", "69b7"),
        ("whsec_whsec_YWJj", "77687365635f59574a6a"),
        ("secret", "736563726574"),
        ("my secret key", "6d7920736563726574206b6579"),
        ("a!b@c#d$", "69b71d"),
        ("abcd====efgh", "69b71d79f821"),
        ("ab==cd", "69"),
        ("abc=d", "69b7"),
        ("abc==d", "69b7"),
        ("ab=", "61623d"),
        ("ab=x=", "69bc"),
        ("\u{00a0}YWJj\u{3000}", "616263"),
        ("a+BC D", "612b42432044"),
        ("!B_cBC", "05c042"),
        ("/CdC /B", "2f436443202f42"),
        ("Dd!B!!+BdB", "4464214221212b426442"),
        ("a1/a D!1 ", "61312f6120442131"),
        ("bD!!c9D C!B", "6244212163394420432142"),
        ("c- /8=!=91", "73ff"),
        ("bdC!", "62644321"),
        ("_-8=1", "5f2d383d31"),
        ("CD_/b8a-/B", "083fdbf1afc1"),
        ("C !889.-!=C", "4320213838392e2d213d43"),
        ("0-", "302d"),
        ("CB1!=1+9A=9", "081d"),
        (".D-", "2e442d"),
        ("c", "63"),
        ("ad++-", "69dfbe"),
        ("b=", "623d"),
        (" 0a/ 0/", "30612f20302f"),
        ("+daCba", "2b6461436261"),
        ("dA-!", "64412d21"),
        ("01A", "303141"),
        ("/ 9", "2f2039"),
        ("!8a_.B= ++", "f1a0"),
        ("+D-+BcC", "2b442d2b426343"),
        ("=bD8", "3d624438"),
        ("BDA!a D9.A", "42444121612044392e41"),
        ("c.", "632e"),
        ("a09.9-D", "6130392e392d44"),
        ("-=", ""),
        ("-1CaD80-", "2d3143614438302d"),
        ("_Ac", "5f4163"),
        ("9a A_1C0_", "396120415f3143305f"),
        ("b9d  _", "62396420205f"),
        ("d.cd+d", "642e63642b64"),
        ("_-9A", "5f2d3941"),
        ("0", "30"),
        ("0c.9=99C", "d1cf"),
        ("Dd-c", "44642d63"),
        ("c-..A-", "632d2e2e412d"),
        ("9CD+c-b/8C+", "3943442b632d622f38432b"),
        ("+CbbaAa!", "2b43626261416121"),
        ("a..-9a  ", "612e2e2d3961"),
        ("AAD", "414144"),
        ("a/ccA0c1_", "6bf71c034735"),
        ("!80 ", "213830"),
        ("aB9=!_/", "681f"),
        ("a a__A=b.", "69a0"),
        ("a", "61"),
        ("a-.", "612d2e"),
        (" B", "42"),
        ("__ -D ", "5f5f202d44"),
        ("d", "64"),
        ("0BD_", "3042445f"),
        (" AC=8._.", "41433d382e5f2e"),
        ("c0=_ -_d_", "63303d5f202d5f645f"),
        (" c=a/", "633d612f"),
        ("+=", "2b3d"),
        ("Cd/Cc1", "43642f436331"),
        ("a9", "6139"),
        ("0a=", "30613d"),
    ];

    fn to_hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn missing_headers() {
        let v = verifier(&[SDK_SECRET]);
        for drop in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            let mut h = sdk_headers();
            h.remove(drop);
            assert_eq!(
                v.verify(&h, SDK_BODY, SDK_TS),
                Err(VerifyError::MissingHeaders)
            );
            let mut h = sdk_headers();
            h.insert(drop, HeaderValue::from_static(""));
            assert_eq!(
                v.verify(&h, SDK_BODY, SDK_TS),
                Err(VerifyError::MissingHeaders)
            );
        }
        let mut h = sdk_headers();
        h.insert("webhook-id", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        assert_eq!(
            v.verify(&h, SDK_BODY, SDK_TS),
            Err(VerifyError::MissingHeaders)
        );
    }

    #[test]
    fn bad_timestamp() {
        let v = verifier(&[SDK_SECRET]);
        for ts in ["abc", "1.5", "1e9", "_1", "1__0", "1_", "--1", "+", "0x10"] {
            assert_eq!(
                v.verify(&headers(SDK_ID, ts, SDK_SIG), SDK_BODY, SDK_TS),
                Err(VerifyError::BadTimestamp),
                "{ts}"
            );
        }
        // Python int() accepts these; they only then fail on the signature (raw text signed).
        for ts in ["1_614_265_330", "+1614265330", " 1614265330"] {
            assert_eq!(
                v.verify(&headers(SDK_ID, ts, SDK_SIG), SDK_BODY, SDK_TS),
                Err(VerifyError::BadSignature),
                "{ts}"
            );
        }
        // A huge integer is stale (Python: big int far from now), not malformed.
        assert_eq!(
            v.verify(
                &headers(SDK_ID, "99999999999999999999999", SDK_SIG),
                SDK_BODY,
                SDK_TS
            ),
            Err(VerifyError::StaleTimestamp)
        );
    }

    #[test]
    fn tolerance_both_directions() {
        let v = verifier(&[SDK_SECRET]);
        let h = sdk_headers();
        assert!(v.verify(&h, SDK_BODY, SDK_TS + 300).is_ok());
        assert!(v.verify(&h, SDK_BODY, SDK_TS - 300).is_ok());
        assert_eq!(
            v.verify(&h, SDK_BODY, SDK_TS + 301),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            v.verify(&h, SDK_BODY, SDK_TS - 301),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            v.verify(&h, SDK_BODY, i64::MIN),
            Err(VerifyError::StaleTimestamp)
        );
    }

    #[test]
    fn timestamp_text_is_signed_as_sent() {
        let v = verifier(&[SDK_SECRET]);
        let ts = "+1614265330";
        let sig = {
            let key = HmacSha256::new_from_slice(&decode_secret(SDK_SECRET)).unwrap();
            format!("v1,{}", expected_signature(&key, SDK_ID, ts, SDK_BODY))
        };
        let got = v
            .verify(&headers(SDK_ID, ts, &sig), SDK_BODY, SDK_TS)
            .unwrap();
        assert_eq!(got.timestamp, SDK_TS);
    }

    #[test]
    fn signature_list_handling() {
        let v = verifier(&[SDK_SECRET]);
        let sig_only = &SDK_SIG[3..];
        let ok = [
            format!("v1,AAAA v1,bogus= {SDK_SIG}"),
            format!("{SDK_SIG} v1,AAAA"),
            format!("junk v2,{sig_only} {SDK_SIG}"),
            format!("v1a,x  {SDK_SIG}"),
        ];
        for s in ok {
            assert!(
                v.verify(&headers(SDK_ID, "1614265330", &s), SDK_BODY, SDK_TS)
                    .is_ok(),
                "{s}"
            );
        }
        let bad = [
            format!("v2,{sig_only}"),
            format!("V1,{sig_only}"),
            sig_only.to_string(),
            format!("v1,{}", sig_only.trim_end_matches('=')),
            format!("v1, {sig_only}"),
            format!("v1,{sig_only}\t"),
            "v1,".to_string(),
            format!("{SDK_SIG},"),
        ];
        for s in bad {
            assert_eq!(
                v.verify(&headers(SDK_ID, "1614265330", &s), SDK_BODY, SDK_TS),
                Err(VerifyError::BadSignature),
                "{s}"
            );
        }
    }

    #[test]
    fn rotation() {
        let new = "whsec_bmV3LXNlY3JldC1rZXk=";
        let v = verifier(&[new, SDK_SECRET]);
        assert!(v.verify(&sdk_headers(), SDK_BODY, SDK_TS).is_ok());
        let sig = sign(new, SDK_ID, SDK_TS, SDK_BODY);
        assert!(v
            .verify(&headers(SDK_ID, "1614265330", &sig), SDK_BODY, SDK_TS)
            .is_ok());
        let only_new = verifier(&[new]);
        assert_eq!(
            only_new.verify(&sdk_headers(), SDK_BODY, SDK_TS),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn raw_secret_and_tampering() {
        let v = verifier(&["hunter2"]);
        let sig = sign("hunter2", "msg_1", 1_700_000_000, b"{}");
        let h = headers("msg_1", "1700000000", &sig);
        assert!(v.verify(&h, b"{}", 1_700_000_000).is_ok());
        assert_eq!(
            v.verify(&h, b"{ }", 1_700_000_000),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            v.verify(&headers("msg_2", "1700000000", &sig), b"{}", 1_700_000_000),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            v.verify(&headers("msg_1", "1700000001", &sig), b"{}", 1_700_000_000),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verifier(&["hunter3"]).verify(&h, b"{}", 1_700_000_000),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn non_utf8_body_is_signed_as_bytes() {
        // The MAC covers raw bytes; whether the body is JSON is decided after verification.
        let body = b"\xff\xfe{}";
        let sig = sign(SDK_SECRET, SDK_ID, SDK_TS, body);
        let v = verifier(&[SDK_SECRET]);
        assert!(v
            .verify(&headers(SDK_ID, "1614265330", &sig), body, SDK_TS)
            .is_ok());
    }

    proptest::proptest! {
        /// Where the standardwebhooks 1.0.1 crate applies (a strict base64 secret, a UTF-8
        /// body, the timestamp printed from an `i64`), it and hydrant agree both ways.
        #[test]
        fn agrees_with_standardwebhooks(
            key in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..48),
            id in "[A-Za-z0-9_]{1,32}",
            ts in proptest::prelude::any::<i64>(),
            body in "\\PC{0,64}",
        ) {
            let secret = format!("whsec_{}", STANDARD.encode(&key));
            let reference = standardwebhooks::Webhook::new(&secret)
                .unwrap()
                .sign(&id, ts, body.as_bytes())
                .unwrap();
            proptest::prop_assert_eq!(&sign(&secret, &id, ts, body.as_bytes()), &reference);
            let got = verifier(&[&secret]).verify(
                &headers(&id, &ts.to_string(), &reference),
                body.as_bytes(),
                ts,
            );
            proptest::prop_assert_eq!(got.map(|d| d.timestamp), Ok(ts));
            // And the other way: the crate accepts hydrant's signature (at the real now, which
            // the crate reads itself; hydrant's clock is the wall clock outside paused tests).
            let now = crate::clock::now_unix() as i64;
            let h = headers(&id, &now.to_string(), &sign(&secret, &id, now, body.as_bytes()));
            let wh = standardwebhooks::Webhook::new(&secret).unwrap();
            proptest::prop_assert!(wh.verify(body.as_bytes(), &h).is_ok());
        }
    }

    #[test]
    fn construction_and_debug() {
        assert!(WebhookVerifier::new(&[]).is_none());
        assert!(WebhookVerifier::new(&["  ".into(), "whsec_".into(), "!!!!".into()]).is_none());
        let v = verifier(&[SDK_SECRET, "hunter2"]);
        let dbg = format!("{v:?}");
        assert_eq!(dbg, "WebhookVerifier { secrets: 2 }");
        for e in [
            VerifyError::MissingHeaders,
            VerifyError::BadTimestamp,
            VerifyError::StaleTimestamp,
            VerifyError::BadSignature,
        ] {
            assert!(!e.reason().is_empty());
            assert!(!e.to_string().contains("whsec"));
        }
        assert_eq!(VerifyError::BadSignature.reason(), "bad_signature");
        assert_eq!(VerifyError::MissingHeaders.reason(), "missing_headers");
        assert_eq!(VerifyError::BadTimestamp.reason(), "bad_timestamp");
        assert_eq!(VerifyError::StaleTimestamp.reason(), "stale_timestamp");
    }
}
