//! Wall-clock helpers: the simulated API speaks Unix seconds, ISO 8601 and `X-Amz-Date`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in fractional seconds.
pub(super) fn now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Unix time in whole seconds.
pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn parts(secs: u64) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()
}

/// `2025-11-23T12:00:00.000Z`.
pub(super) fn iso8601(secs: u64) -> String {
    match parts(secs) {
        Some(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        None => "1970-01-01T00:00:00.000Z".into(),
    }
}

/// `20251123T120000Z`, the `X-Amz-Date` format.
pub(super) fn amz_date(secs: u64) -> String {
    match parts(secs) {
        Some(t) => format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        None => "19700101T000000Z".into(),
    }
}

/// Parses an `X-Amz-Date` back to Unix seconds.
pub(super) fn parse_amz_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let day = u8::try_from(num(6..8)?).ok()?;
    let hour = u8::try_from(num(9..11)?).ok()?;
    let minute = u8::try_from(num(11..13)?).ok()?;
    let second = u8::try_from(num(13..15)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let dt = date.with_hms(hour, minute, second).ok()?.assume_utc();
    u64::try_from(dt.unix_timestamp()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        assert_eq!(iso8601(1_763_900_000), "2025-11-23T12:13:20.000Z");
        assert_eq!(amz_date(1_763_900_000), "20251123T121320Z");
        assert_eq!(parse_amz_date("20251123T121320Z"), Some(1_763_900_000));
        assert_eq!(parse_amz_date("2025112XT121320Z"), None);
        assert_eq!(parse_amz_date("20251323T121320Z"), None);
        assert_eq!(parse_amz_date("é"), None);
    }
}
