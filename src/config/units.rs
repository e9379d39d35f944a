//! Temporary minimal unit parsers (replaced by the full module).
use std::time::Duration;
/// Unit parse error.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum UnitError {
    /// Bad value.
    #[error("invalid value {0:?}")]
    Invalid(String),
}
/// A rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Count.
    pub count: u32,
    /// Per.
    pub per: Duration,
}
/// Parse a duration.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let s = s.trim();
    let bad = || UnitError::Invalid(s.to_string());
    let (n, mul) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = n.parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(v * mul).map_err(|_| bad())
}
/// Parse a size.
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let s = s.trim();
    let bad = || UnitError::Invalid(s.to_string());
    let (n, mul) = if let Some(n) = s.strip_suffix("GiB") {
        (n, 1u64 << 30)
    } else if let Some(n) = s.strip_suffix("MiB") {
        (n, 1 << 20)
    } else if let Some(n) = s.strip_suffix("KiB") {
        (n, 1 << 10)
    } else {
        (s, 1)
    };
    n.parse::<u64>()
        .map_err(|_| bad())?
        .checked_mul(mul)
        .ok_or_else(bad)
}
/// Parse a rate.
pub fn parse_rate(s: &str) -> Result<Rate, UnitError> {
    let s = s.trim();
    let bad = || UnitError::Invalid(s.to_string());
    let (n, per) = match s.split_once('/') {
        Some((n, "s")) => (n, 1),
        Some((n, "m")) => (n, 60),
        Some((n, "h")) => (n, 3600),
        None => (s, 1),
        _ => return Err(bad()),
    };
    let count: u32 = n.parse().map_err(|_| bad())?;
    if count == 0 {
        return Err(bad());
    }
    Ok(Rate {
        count,
        per: Duration::from_secs(per),
    })
}
/// Format a duration.
pub fn format_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}
