//! Parsers for human-written configuration values: durations, byte sizes and rates.
//!
//! Kept free of any config plumbing so that flags, environment variables and the TOML file
//! all share one grammar and one set of error messages. Rules:
//!
//! * Durations: a non-negative decimal number and a unit `ms`, `s`, `m`, `h` or `d`
//!   (`500ms`, `30s`, `1.5s`, `5m`, `24h`); a bare number is seconds. Fractions are computed
//!   exactly in integer nanoseconds (digits beyond nanosecond precision are truncated).
//! * Sizes: a non-negative decimal number and an optional unit: `B`, binary `KiB`/`MiB`/`GiB`/
//!   `TiB` (powers of 1024) or decimal `KB`/`MB`/`GB`/`TB` (powers of 1000), case-insensitive
//!   (`b` is bytes, never bits); a bare number is bytes. A fractional size is rounded down
//!   to whole bytes (`1.5KiB` = 1536).
//! * Rates: `COUNT/PERIOD` where COUNT is a whole number ≥ 1 and PERIOD is a unit (`s`, `m`,
//!   `h`, `d`) or any duration (`100/10s`); a bare count is per second.
//!
//! Surrounding whitespace and whitespace between the number and its unit are allowed; signs,
//! exponents, `inf`/`nan`, empty values, zero rates and overflow are rejected.
//!
//! Why not `humantime::parse_duration` (2.4.0): it needs a unit (`60` is an error), takes
//! compound and long forms (`1h30m`, `1 h 2m`, `1sec`, `1hour`), refuses fractions it cannot
//! represent exactly instead of truncating (`0.0000000019s`, and `0.001h` because it keeps
//! fractions of hours in whole seconds), and its `format_duration` prints `1m 30s`, `1day`
//! and `1s 500ms`, which this grammar does not read back. Why not `bytesize`'s `FromStr`
//! (2.3.1): it takes `1k`, `1M` and `1Mi`, refuses surrounding whitespace (` 8 MiB `),
//! computes in `f64` (`9007199254740993B` is 9007199254740992, `16777216TiB` is silently
//! 2^64 - 1). A wrapper undoing all that would keep the whole tokenizer, unit table and
//! arithmetic below, so both crates are only the references the tests compare against where
//! they agree with this grammar.

use std::fmt;
use std::time::Duration;

/// Longest value echoed back in an error message, so a pasted blob cannot flood the log.
const MAX_ECHO: usize = 64;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Why a configuration value could not be parsed; the message quotes the offending value
/// (these values are never secrets) and says what was expected.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum UnitError {
    /// Not a duration.
    #[error("invalid duration {value:?}: {reason}")]
    Duration {
        /// The value as given (truncated).
        value: String,
        /// What was expected.
        reason: &'static str,
    },
    /// Not a byte size.
    #[error("invalid size {value:?}: {reason}")]
    Size {
        /// The value as given (truncated).
        value: String,
        /// What was expected.
        reason: &'static str,
    },
    /// Not a rate.
    #[error("invalid rate {value:?}: {reason}")]
    Rate {
        /// The value as given (truncated).
        value: String,
        /// What was expected.
        reason: &'static str,
    },
}

const DURATION_EXPECTED: &str =
    "expected a number followed by ms, s, m, h or d (e.g. 500ms, 30s, 5m, 7d)";
const DURATION_TOO_LARGE: &str = "too large";
const SIZE_EXPECTED: &str =
    "expected a number of bytes, optionally followed by B, KiB, MiB, GiB, TiB, KB, MB, GB or TB";
const SIZE_TOO_LARGE: &str = "too large (at most 2^64 - 1 bytes)";
const RATE_EXPECTED: &str =
    "expected COUNT/PERIOD such as 2500/h, 10/s, 100/m or 50/10s (a bare count is per second)";
const RATE_COUNT: &str = "the count must be a whole number from 1 to 4294967295";
const RATE_PERIOD: &str = "the period must be a positive duration such as s, m, h or 10s";

/// An allowed number of events per period, e.g. the upstream's 2,500 hydrate calls per hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Events allowed per `per` (≥ 1).
    pub count: u32,
    /// The period (> 0).
    pub per: Duration,
}

impl fmt::Display for Rate {
    /// Prints in the parser's own syntax (`2500/h`, `10/s`, `50/10s`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per = match self.per.as_secs() {
            1 if self.per.subsec_nanos() == 0 => "s".to_string(),
            60 if self.per.subsec_nanos() == 0 => "m".to_string(),
            3600 if self.per.subsec_nanos() == 0 => "h".to_string(),
            _ => format_duration(self.per),
        };
        write!(f, "{}/{}", self.count, per)
    }
}

fn echo(s: &str) -> String {
    match s.char_indices().nth(MAX_ECHO) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// A parsed non-negative decimal: whole part and fractional digits, kept exact.
struct Decimal<'a> {
    whole: &'a str,
    frac: &'a str,
}

/// Splits `s` into a decimal number and the rest (its unit, leading whitespace removed).
/// `None` when there is no well-formed number at the start.
fn split_number(s: &str) -> Option<(Decimal<'_>, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(end);
    let (whole, frac) = match num.split_once('.') {
        Some((w, f)) => (w, f),
        None => (num, ""),
    };
    if whole.is_empty() || frac.contains('.') || (num.ends_with('.')) {
        return None;
    }
    Some((Decimal { whole, frac }, rest.trim_start()))
}

/// `dec * unit` truncated to an integer, or `None` on overflow of u128 (then of the target).
fn scale(dec: &Decimal<'_>, unit: u128) -> Option<u128> {
    let mut whole: u128 = 0;
    for b in dec.whole.bytes() {
        whole = whole.checked_mul(10)?.checked_add(u128::from(b - b'0'))?;
    }
    let mut total = whole.checked_mul(unit)?;
    // Fraction: only the digits that can matter (unit < 10^20 here), truncated.
    let frac = &dec.frac[..dec.frac.len().min(20)];
    if !frac.is_empty() {
        let mut num: u128 = 0;
        let mut den: u128 = 1;
        for b in frac.bytes() {
            num = num * 10 + u128::from(b - b'0');
            den *= 10;
        }
        total = total.checked_add(num.checked_mul(unit)? / den)?;
    }
    Some(total)
}

/// Parses a duration such as `500ms`, `30s`, `1.5s`, `5m`, `1h` or `1d`; a bare number is
/// seconds. Used for every timeout and TTL option.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let err = |reason| UnitError::Duration {
        value: echo(s),
        reason,
    };
    let (dec, unit) = split_number(s.trim()).ok_or_else(|| err(DURATION_EXPECTED))?;
    let unit_nanos: u128 = match unit {
        "ms" => 1_000_000,
        "" | "s" => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3_600 * NANOS_PER_SEC,
        "d" => 86_400 * NANOS_PER_SEC,
        _ => return Err(err(DURATION_EXPECTED)),
    };
    let nanos = scale(&dec, unit_nanos).ok_or_else(|| err(DURATION_TOO_LARGE))?;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).map_err(|_| err(DURATION_TOO_LARGE))?;
    let sub = u32::try_from(nanos % NANOS_PER_SEC).map_err(|_| err(DURATION_TOO_LARGE))?;
    Ok(Duration::new(secs, sub))
}

/// Parses a byte size such as `64MiB`, `1GiB`, `512KiB`, `10MB` or `1024`; used for cache
/// and body limits.
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let err = |reason| UnitError::Size {
        value: echo(s),
        reason,
    };
    let (dec, unit) = split_number(s.trim()).ok_or_else(|| err(SIZE_EXPECTED))?;
    let mult: u128 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(err(SIZE_EXPECTED)),
    };
    let bytes = scale(&dec, mult).ok_or_else(|| err(SIZE_TOO_LARGE))?;
    u64::try_from(bytes).map_err(|_| err(SIZE_TOO_LARGE))
}

/// Parses a rate such as `2500/h`, `10/s`, `100/m` or `50/10s`; a bare count is per second.
/// Used for the per-tenant upstream hydrate limit.
pub fn parse_rate(s: &str) -> Result<Rate, UnitError> {
    let err = |reason| UnitError::Rate {
        value: echo(s),
        reason,
    };
    let t = s.trim();
    let (count_s, per_s) = match t.split_once('/') {
        Some((c, p)) => (c.trim(), Some(p.trim())),
        None => (t, None),
    };
    if count_s.is_empty() {
        return Err(err(RATE_EXPECTED));
    }
    // `u32::from_str` takes digits and a leading `+`; only the digits are this grammar.
    let count = match count_s.parse::<u32>() {
        Ok(n) if n > 0 && !count_s.starts_with('+') => n,
        _ => return Err(err(RATE_COUNT)),
    };
    let per = match per_s {
        None => Duration::from_secs(1),
        Some("s" | "sec" | "second") => Duration::from_secs(1),
        Some("m" | "min" | "minute") => Duration::from_secs(60),
        Some("h" | "hour") => Duration::from_secs(3_600),
        Some("d" | "day") => Duration::from_secs(86_400),
        Some(p) => parse_duration(p).map_err(|_| err(RATE_PERIOD))?,
    };
    if per.is_zero() {
        return Err(err(RATE_PERIOD));
    }
    Ok(Rate { count, per })
}

/// Formats a duration in the parser's syntax using the largest exact unit (`30s`, `500ms`,
/// `1h`, `90s` → `90s`, `0s`), so printed configuration can be pasted back verbatim.
/// Sub-millisecond values are printed as fractional seconds (`0.000001s`).
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    for (unit, n) in [
        ("h", 3_600 * NANOS_PER_SEC),
        ("m", 60 * NANOS_PER_SEC),
        ("s", NANOS_PER_SEC),
        ("ms", 1_000_000),
    ] {
        if nanos.is_multiple_of(n) {
            return format!("{}{unit}", nanos / n);
        }
    }
    let frac = format!("{:09}", d.subsec_nanos());
    format!("{}.{}s", d.as_secs(), frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations() {
        let ok: &[(&str, Duration)] = &[
            ("500ms", ms(500)),
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
            ("24h", Duration::from_secs(86_400)),
            ("1d", Duration::from_secs(86_400)),
            ("60", Duration::from_secs(60)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("1.5s", ms(1500)),
            ("0.25h", Duration::from_secs(900)),
            ("1.5ms", Duration::from_micros(1500)),
            ("0.1s", ms(100)),
            ("0.000000001s", Duration::from_nanos(1)),
            ("0.0000000019s", Duration::from_nanos(1)),
            (" 30s ", Duration::from_secs(30)),
            ("30 s", Duration::from_secs(30)),
            ("007s", Duration::from_secs(7)),
            ("18446744073709551615s", Duration::from_secs(u64::MAX)),
        ];
        for (s, d) in ok {
            assert_eq!(parse_duration(s), Ok(*d), "{s}");
        }
        for s in [
            "", " ", "5x", "-1s", "+1s", "s", "1.s", ".5s", "1..5s", "1.2.3s", "1e3s", "inf",
            "NaN", "1 h 2m", "1S", "1sec", "5mm", "1h30m", "１s",
        ] {
            assert!(
                matches!(parse_duration(s), Err(UnitError::Duration { .. })),
                "{s}"
            );
        }
        for s in [
            "18446744073709551616s",
            "99999999999999999999999999999999999999999h",
        ] {
            assert_eq!(
                parse_duration(s),
                Err(UnitError::Duration {
                    value: s.into(),
                    reason: DURATION_TOO_LARGE
                })
            );
        }
    }

    #[test]
    fn duration_error_message() {
        let e = parse_duration("5x").unwrap_err().to_string();
        assert!(
            e.starts_with(
                r#"invalid duration "5x": expected a number followed by ms, s, m, h or d"#
            ),
            "{e}"
        );
        let long = "9".repeat(200) + "x";
        let e = parse_duration(&long).unwrap_err().to_string();
        assert!(e.len() < 200, "{e}");
    }

    #[test]
    fn sizes() {
        let ok: &[(&str, u64)] = &[
            ("64MiB", 64 << 20),
            ("1GiB", 1 << 30),
            ("512KiB", 512 << 10),
            ("2TiB", 2 << 40),
            ("10MB", 10_000_000),
            ("1KB", 1_000),
            ("3GB", 3_000_000_000),
            ("1TB", 1_000_000_000_000),
            ("1024", 1024),
            ("1024B", 1024),
            ("0", 0),
            ("256mib", 256 << 20),
            ("1.5KiB", 1536),
            ("0.5B", 0),
            (" 8 MiB ", 8 << 20),
            ("18446744073709551615", u64::MAX),
            ("16777215.5TiB", (16_777_215u64 << 40) + (1u64 << 39)),
        ];
        for (s, n) in ok {
            assert_eq!(parse_size(s), Ok(*n), "{s}");
        }
        for s in [
            "", "MiB", "-1", "1Mi", "1M", "1k", "1 bytes", "1e6", "0x10", "1iB",
        ] {
            assert!(matches!(parse_size(s), Err(UnitError::Size { .. })), "{s}");
        }
        for s in ["18446744073709551616", "16777216TiB"] {
            assert_eq!(
                parse_size(s),
                Err(UnitError::Size {
                    value: s.into(),
                    reason: SIZE_TOO_LARGE
                })
            );
        }
        assert!(parse_size("12XB")
            .unwrap_err()
            .to_string()
            .starts_with(r#"invalid size "12XB": expected"#));
    }

    #[test]
    fn rates() {
        let h = Duration::from_secs(3600);
        let ok: &[(&str, u32, Duration)] = &[
            ("2500/h", 2500, h),
            ("10/s", 10, Duration::from_secs(1)),
            ("100/m", 100, Duration::from_secs(60)),
            ("7/d", 7, Duration::from_secs(86_400)),
            ("5", 5, Duration::from_secs(1)),
            ("50/10s", 50, Duration::from_secs(10)),
            ("1/500ms", 1, ms(500)),
            (" 2500 / h ", 2500, h),
            ("3/hour", 3, h),
            ("4294967295/s", u32::MAX, Duration::from_secs(1)),
        ];
        for (s, count, per) in ok {
            assert_eq!(
                parse_rate(s),
                Ok(Rate {
                    count: *count,
                    per: *per
                }),
                "{s}"
            );
        }
        for s in [
            "",
            "/h",
            "0/h",
            "0",
            "-1/s",
            "+5/s",
            "1.5/s",
            "10/",
            "10/x",
            "10/0s",
            "10/-1s",
            "4294967296/s",
            "10/s/s",
            "abc",
        ] {
            assert!(matches!(parse_rate(s), Err(UnitError::Rate { .. })), "{s}");
        }
        assert_eq!(
            parse_rate("0/h").unwrap_err().to_string(),
            format!(r#"invalid rate "0/h": {RATE_COUNT}"#)
        );
    }

    #[test]
    fn formatting() {
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(ms(500)), "500ms");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_secs(86_400)), "24h");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(ms(1500)), "1500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_nanos(1)), "0.000000001s");
        assert_eq!(
            format_duration(Duration::from_micros(1_500_250)),
            "1.50025s"
        );
        let r = Rate {
            count: 2500,
            per: Duration::from_secs(3600),
        };
        assert_eq!(r.to_string(), "2500/h");
        assert_eq!(
            Rate {
                count: 50,
                per: Duration::from_secs(10)
            }
            .to_string(),
            "50/10s"
        );
    }

    proptest! {
        #[test]
        fn duration_round_trip(secs in 0u64..=u64::MAX, nanos in 0u32..1_000_000_000) {
            let d = Duration::new(secs, nanos);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn duration_round_trip_small(millis in 0u64..10_000_000_000) {
            let d = Duration::from_millis(millis);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn rate_round_trip(count in 1u32..=u32::MAX, per_ms in 1u64..100_000_000) {
            let r = Rate { count, per: Duration::from_millis(per_ms) };
            prop_assert_eq!(parse_rate(&r.to_string()), Ok(r));
        }

        #[test]
        fn size_plain_and_binary(n in 0u64..(1 << 24)) {
            prop_assert_eq!(parse_size(&n.to_string()), Ok(n));
            prop_assert_eq!(parse_size(&format!("{n}MiB")), Ok(n << 20));
            prop_assert_eq!(parse_size(&format!("{n}KB")), Ok(n * 1000));
        }

        /// Where humantime accepts a value of this grammar (one number, one unit), it agrees.
        #[test]
        fn durations_agree_with_humantime(
            whole in prop_oneof![0u64..100_000, any::<u64>()],
            frac in proptest::option::of("[0-9]{1,9}"),
            unit in prop::sample::select(vec!["ms", "s", "m", "h", "d"]),
        ) {
            let s = match frac {
                Some(f) => format!("{whole}.{f}{unit}"),
                None => format!("{whole}{unit}"),
            };
            // Not the converse: humantime also refuses inexact fractions and `ms` values past
            // 2^64 ns (about 584 years), which this parser takes.
            if let Ok(d) = humantime::parse_duration(&s) {
                prop_assert_eq!(parse_duration(&s), Ok(d));
            }
        }

        /// Where bytesize's `f64` arithmetic is exact (under 2^20 of any unit here), it agrees.
        #[test]
        fn sizes_agree_with_bytesize(
            n in 0u64..(1 << 20),
            unit in prop::sample::select(vec![
                "", "B", "KiB", "MiB", "GiB", "TiB", "KB", "MB", "GB", "TB", "mib", "kb",
            ]),
        ) {
            let s = format!("{n}{unit}");
            let reference = s.parse::<bytesize::ByteSize>().map(|b| b.as_u64());
            prop_assert_eq!(parse_size(&s).ok(), reference.ok());
        }

        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = parse_duration(&s);
            let _ = parse_size(&s);
            let _ = parse_rate(&s);
        }
    }
}
