//! The TTL/freshness rules, as pure functions of a [`FileView`] and `now`.
//!
//! One place decides how long a hydrated file may be served: nothing here reads a clock
//! (callers pass `now` as Unix seconds), so every rule is testable with plain numbers.
//! The invariant all of it protects: hydrant never hands out a signed URL past its real
//! expiry minus the margin.

use std::time::Duration;

use crate::config::defaults;
use crate::hydration::file::{FileView, Rendition, Source, SourceStatus};

/// Tunables for freshness; the defaults are `config::defaults`.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Served URLs must stay valid at least this long after being handed out.
    pub margin: Duration,
    /// Longest life of an entry with a pending source or no ready url.
    pub pending_ttl: Duration,
    /// Life of a cached upstream 404.
    pub negative_ttl: Duration,
    /// Cap on every entry's life.
    pub max_ttl: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            margin: defaults::EXPIRY_MARGIN,
            pending_ttl: defaults::PENDING_TTL,
            negative_ttl: defaults::NEGATIVE_TTL,
            max_ttl: defaults::MAX_TTL,
        }
    }
}

/// End of life a URL states itself: `X-Amz-Date` + `X-Amz-Expires` (also the GCS V4
/// `X-Goog-` pair), or `Expires=` (Unix seconds, CloudFront/S3 V2 style).
///
/// Presigned URLs can die before the file's `expiresAt` (e.g. when signing credentials
/// expire), so the URL's own bound must be honoured too. Parameter names are matched
/// case-insensitively; with several candidates the earliest wins; `None` if absent or garbage.
pub fn url_stated_expiry(url: &str) -> Option<f64> {
    let url = url.split_once('#').map_or(url, |(u, _)| u);
    let query = url.split_once('?')?.1;
    let mut date: Option<f64> = None;
    let mut expires_in: Option<f64> = None;
    let mut expires_at: Option<f64> = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k.eq_ignore_ascii_case("x-amz-date") || k.eq_ignore_ascii_case("x-goog-date") {
            date = min_opt(date, parse_amz_date(&v));
        } else if k.eq_ignore_ascii_case("x-amz-expires")
            || k.eq_ignore_ascii_case("x-goog-expires")
        {
            expires_in = min_opt(expires_in, parse_uint(&v));
        } else if k.eq_ignore_ascii_case("expires") {
            expires_at = min_opt(expires_at, parse_uint(&v).filter(|t| *t > 0.0));
        }
    }
    let signed = match (date, expires_in) {
        (Some(d), Some(e)) => Some(d + e),
        _ => None,
    };
    min_opt(signed, expires_at)
}

/// Real end of a ready source's URL: the earlier of `expiresAt` and the URL's own bound.
///
/// `None` when the source is not ready, has no url, or no expiry is known at all.
pub fn source_expiry(src: &Source) -> Option<f64> {
    if src.status != SourceStatus::Ready {
        return None;
    }
    let url = src.url.as_deref()?;
    // A NaN (only possible for a hand-built Source) is no information; ±inf is kept.
    let stated = src.expires_at.filter(|e| !e.is_nan());
    min_opt(stated, url_stated_expiry(url))
}

/// What kind of entry a file makes, which decides how long it may live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// Every signed source is settled; life is bounded by the URLs' expiries.
    Fresh,
    /// Some signed source is pending or ready without url: re-hydrate soon.
    Pending,
    /// No ready url at all (the static public preview does not count): re-hydrate soon.
    NoReadyUrl,
}

/// The freshness verdict for a file at insert time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Freshness {
    /// The entry's kind.
    pub kind: EntryKind,
    /// How long from `now` the entry may be served as fresh (zero: do not serve from cache).
    pub ttl: Duration,
    /// Earliest real expiry (Unix s) over all ready expiring urls (the four signed sources and
    /// the root urls, not the static preview): stale may be served only before this.
    pub hard_expiry: Option<f64>,
}

/// Decides how long a hydrated file may be served from cache (the rules are in docs/ARCHITECTURE.md, "Cache semantics").
///
/// `valid_until = min(source_expiry) − margin` over ready urls of the four signed sources and
/// the root urls; `ttl = clamp(valid_until − now, 0, max_ttl)`. A pending (or ready but
/// url-less) signed source caps the ttl at `pending_ttl`; with no ready url at all the kind is
/// `NoReadyUrl` and the ttl is `min(pending_ttl, max_ttl)`. `staticPublicPreviewSource`
/// plays no part: it never expires.
pub fn freshness(view: &FileView, now: f64, p: &Policy) -> Freshness {
    let mut any_ready_url = false;
    let mut pending = false;
    let mut earliest: Option<f64> = None;
    let signed = Rendition::SIGNED.iter().map(|r| view.source(*r));
    for src in signed.chain(view.root_urls.iter()) {
        match (src.status, &src.url) {
            (SourceStatus::Pending, _) | (SourceStatus::Ready, None) => pending = true,
            (SourceStatus::Ready, Some(_)) => {
                any_ready_url = true;
                earliest = min_opt(earliest, source_expiry(src));
            }
            _ => {}
        }
    }
    if !any_ready_url {
        return Freshness {
            kind: EntryKind::NoReadyUrl,
            ttl: p.pending_ttl.min(p.max_ttl),
            hard_expiry: None,
        };
    }
    let mut ttl = match earliest {
        Some(exp) => secs_floor_ms(exp - p.margin.as_secs_f64() - now).min(p.max_ttl),
        None => p.max_ttl,
    };
    let kind = if pending {
        ttl = ttl.min(p.pending_ttl);
        EntryKind::Pending
    } else {
        EntryKind::Fresh
    };
    Freshness {
        kind,
        ttl,
        hard_expiry: earliest,
    }
}

/// Seconds a browser may cache a `302` to this rendition (`Cache-Control: private, max-age`).
///
/// `floor(source_expiry − margin − now)`, at least 0, and never longer than the entry's
/// remaining fresh life `entry_ttl_left` (so a browser does not outlive a pending entry either).
/// A ready url without any known expiry (the static public preview) gets `entry_ttl_left`;
/// a source that is not ready with a url gets 0.
pub fn redirect_max_age(src: &Source, now: f64, entry_ttl_left: Duration, p: &Policy) -> u64 {
    if src.status != SourceStatus::Ready || src.url.is_none() {
        return 0;
    }
    max_age_for_expiry(source_expiry(src), now, entry_ttl_left, p)
}

/// The arithmetic of [`redirect_max_age`] for a ready url whose real expiry (`source_expiry`)
/// was computed once at insert time; the cache-hit path calls this directly.
pub fn max_age_for_expiry(
    expiry: Option<f64>,
    now: f64,
    entry_ttl_left: Duration,
    p: &Policy,
) -> u64 {
    let cap = entry_ttl_left.as_secs();
    match expiry {
        Some(exp) => {
            let left = (exp - p.margin.as_secs_f64() - now).floor();
            // `>` is false for NaN; `as` saturates for huge values.
            let secs = if left > 0.0 { left as u64 } else { 0 };
            secs.min(cap)
        }
        None => cap,
    }
}

/// Offset from insert at which a read should start a background refresh:
/// `life − min(20 % of life, 5 min)`, so hot files are re-hydrated before they expire.
pub fn refresh_ahead_offset(life: Duration) -> Duration {
    let window = (life / 5).min(Duration::from_secs(5 * 60));
    life.saturating_sub(window)
}

/// Whole seconds for a `Retry-After` header: rounded up, at least 1 (0 would invite a
/// tight retry loop).
pub fn retry_after_secs(d: Duration) -> u64 {
    let up = u64::from(d.subsec_nanos() > 0);
    d.as_secs().saturating_add(up).max(1)
}

/// `min` over optional values where `None` means "no bound".
fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y < x { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Non-negative seconds to a `Duration`, floored to whole milliseconds so `now + ttl` never
/// passes the bound; NaN and negatives give zero, absurdly large values saturate.
fn secs_floor_ms(secs: f64) -> Duration {
    if secs > 0.0 {
        // `as` saturates (and 0 for NaN, excluded above); from_millis cannot overflow.
        Duration::from_millis((secs * 1000.0).floor() as u64)
    } else {
        Duration::ZERO
    }
}

/// An unsigned decimal integer parameter (seconds), as f64; `None` for anything else.
fn parse_uint(s: &str) -> Option<f64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().map(|n| n as f64)
}

/// `YYYYMMDDTHHMMSSZ` (UTC) to Unix seconds.
fn parse_amz_date(s: &str) -> Option<f64> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let dt = time::PrimitiveDateTime::parse(s, &format).ok()?;
    Some(dt.assume_utc().unix_timestamp() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hydration::file::tests::FIXTURE;
    use proptest::prelude::*;
    use serde_json::json;

    const NOW: f64 = 1_704_067_200.0; // 2024-01-01T00:00:00Z

    fn ready(url: &str, exp: Option<f64>) -> Source {
        Source {
            status: SourceStatus::Ready,
            url: Some(url.to_owned()),
            expires_at: exp,
            ..Source::ABSENT
        }
    }

    fn status(s: SourceStatus) -> Source {
        Source {
            status: s,
            ..Source::ABSENT
        }
    }

    fn view(sources: [Source; 5], root_urls: Vec<Source>) -> FileView {
        FileView {
            file_id: Some("vg_file_x".into()),
            file_type: None,
            display_name: None,
            duration_seconds: None,
            sources,
            root_urls,
        }
    }

    fn view_json(v: serde_json::Value) -> FileView {
        FileView::from_value(&v).unwrap()
    }

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn defaults() {
        let p = Policy::default();
        assert_eq!(p.margin, Duration::from_secs(60));
        assert_eq!(p.pending_ttl, Duration::from_secs(5));
        assert_eq!(p.negative_ttl, Duration::from_secs(30));
        assert_eq!(p.max_ttl, Duration::from_secs(86_400));
    }

    #[test]
    fn url_expiry_amz() {
        let u = "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-Signature=ab";
        assert_eq!(url_stated_expiry(u), Some(NOW + 3600.0));
        // Case-insensitive names.
        let u = "https://h/k?x-amz-date=20240101T000000Z&X-AMZ-EXPIRES=10";
        assert_eq!(url_stated_expiry(u), Some(NOW + 10.0));
        // Leap day and end of day.
        let u = "https://h/k?X-Amz-Date=20240229T235959Z&X-Amz-Expires=1";
        assert_eq!(url_stated_expiry(u), Some(1_709_251_200.0));
        // GCS V4.
        let u =
            "https://storage.googleapis.com/b/o?X-Goog-Date=20240101T000000Z&X-Goog-Expires=600";
        assert_eq!(url_stated_expiry(u), Some(NOW + 600.0));
    }

    #[test]
    fn url_expiry_expires_param_and_earliest() {
        assert_eq!(
            url_stated_expiry("https://d.cloudfront.net/a?Expires=1704070000&Signature=x"),
            Some(1_704_070_000.0)
        );
        let u = "https://h/a?Expires=1704070000&X-Amz-Date=20240101T000000Z&X-Amz-Expires=60&expires=1704069000";
        assert_eq!(url_stated_expiry(u), Some(NOW + 60.0));
        let u = "https://h/a?Expires=1704070000&expires=1704069000";
        assert_eq!(url_stated_expiry(u), Some(1_704_069_000.0));
    }

    #[test]
    fn url_expiry_absent_or_garbage() {
        for u in [
            "https://h/a",
            "https://h/a?",
            "https://h/a?token=1",
            "https://h/a?X-Amz-Expires=60",
            "https://h/a?X-Amz-Date=20240101T000000Z",
            "https://h/a?X-Amz-Date=20241301T000000Z&X-Amz-Expires=60",
            "https://h/a?X-Amz-Date=2024-01-01&X-Amz-Expires=60",
            "https://h/a?X-Amz-Date=20240101T000000Z&X-Amz-Expires=-60",
            "https://h/a?X-Amz-Date=20240101T000000Z&X-Amz-Expires=6e1",
            "https://h/a?Expires=0",
            "https://h/a?Expires=abc",
            "https://h/a?Expires=99999999999999999999999",
            "https://h/a#?Expires=1704070000",
            "",
            "?&&=&==",
        ] {
            assert_eq!(url_stated_expiry(u), None, "{u}");
        }
        // A fragment is not part of the query.
        assert_eq!(
            url_stated_expiry("https://h/a?Expires=1704070000#x&Expires=1"),
            Some(1_704_070_000.0)
        );
    }

    #[test]
    fn source_expiry_rules() {
        assert_eq!(
            source_expiry(&ready("https://h/a", Some(NOW + 100.0))),
            Some(NOW + 100.0)
        );
        assert_eq!(source_expiry(&ready("https://h/a", None)), None);
        // The URL's own bound, earlier than expiresAt, wins.
        let u = "https://h/a?X-Amz-Date=20240101T000000Z&X-Amz-Expires=300";
        assert_eq!(
            source_expiry(&ready(u, Some(NOW + 7200.0))),
            Some(NOW + 300.0)
        );
        // A later URL bound does not extend expiresAt.
        let u = "https://h/a?Expires=1804067200";
        assert_eq!(
            source_expiry(&ready(u, Some(NOW + 7200.0))),
            Some(NOW + 7200.0)
        );
        // Not ready or no url: none.
        let mut s = ready("https://h/a", Some(NOW + 100.0));
        s.status = SourceStatus::Pending;
        assert_eq!(source_expiry(&s), None);
        let mut s = ready("https://h/a", Some(NOW + 100.0));
        s.url = None;
        assert_eq!(source_expiry(&s), None);
    }

    #[test]
    fn fixture_freshness() {
        let v = FileView::parse(FIXTURE.as_bytes()).unwrap();
        let p = Policy::default();
        // Earliest: preview url's Expires=1704110000 (before its expiresAt 1704120000).
        let f = freshness(&v, NOW, &p);
        assert_eq!(f.kind, EntryKind::Fresh);
        assert_eq!(f.hard_expiry, Some(1_704_110_000.0));
        assert_eq!(
            f.ttl,
            Duration::from_secs(1_704_110_000 - 60 - 1_704_067_200)
        );
    }

    #[test]
    fn empty_url_and_zero_expiry_count_as_absent() {
        let p = Policy::default();
        // A ready source whose url is "" is "ready without url": pending cap.
        let v = view_json(json!({
            "downloadSource": {"status": "ready", "url": "https://h/d", "expiresAt": NOW + 3600.0},
            "previewSource": {"status": "ready", "url": "", "expiresAt": NOW + 100.0},
        }));
        let f = freshness(&v, NOW, &p);
        assert_eq!(f.kind, EntryKind::Pending);
        assert_eq!(f.ttl, p.pending_ttl);
        // expiresAt 0 on a ready url is "no known expiry", not "expired in 1970".
        let v = view_json(json!({
            "downloadSource": {"status": "ready", "url": "https://h/d", "expiresAt": 0},
            "hlsSource": {"status": "skipped", "url": "", "expiresAt": 0},
        }));
        let f = freshness(&v, NOW, &p);
        assert_eq!(f.kind, EntryKind::Fresh);
        assert_eq!(f.ttl, p.max_ttl);
        assert_eq!(f.hard_expiry, None);
    }

    #[test]
    fn fractional_expiry() {
        let p = Policy::default();
        let v = view_json(json!({
            "downloadSource": {"status": "ready", "url": "https://h/d", "expiresAt": NOW + 60.0 + 10.75},
        }));
        let f = freshness(&v, NOW, &p);
        assert_eq!(f.ttl, Duration::from_millis(10_750));
        assert_eq!(f.hard_expiry, Some(NOW + 70.75));
    }

    #[test]
    fn amz_bound_earlier_than_expires_at() {
        let p = Policy::default();
        let u = "https://h/d?X-Amz-Date=20240101T000000Z&X-Amz-Expires=600&X-Amz-Signature=s";
        let v = view_json(json!({
            "downloadSource": {"status": "ready", "url": u, "expiresAt": NOW + 86_400.0},
        }));
        let f = freshness(&v, NOW, &p);
        assert_eq!(f.ttl, Duration::from_secs(540));
        assert_eq!(f.hard_expiry, Some(NOW + 600.0));
    }

    #[test]
    fn expires_param_bound() {
        let p = Policy::default();
        let u = format!(
            "https://d.cloudfront.net/d?Expires={}&Signature=s",
            NOW as u64 + 1000
        );
        let v = view_json(json!({
            "thumbnailSource": {"status": "ready", "url": u, "expiresAt": NOW + 86_400.0},
        }));
        assert_eq!(freshness(&v, NOW, &p).ttl, Duration::from_secs(940));
    }

    #[test]
    fn static_public_preview_ignored() {
        let p = Policy::default();
        let base = json!({
            "downloadSource": {"status": "ready", "url": "https://h/d", "expiresAt": NOW + 3600.0},
        });
        let f0 = freshness(&view_json(base.clone()), NOW, &p);
        let mut with = base.clone();
        with["staticPublicPreviewSource"] = json!({"status": "ready", "url": "https://h/p?Expires=1704067300", "expiresAt": NOW + 10.0});
        let f1 = freshness(&view_json(with), NOW, &p);
        assert_eq!(f0, f1);
        assert_eq!(f0.ttl, Duration::from_secs(3540));
        // A pending static preview does not make the entry pending either.
        let mut with = base;
        with["staticPublicPreviewSource"] = json!({"status": "pending"});
        assert_eq!(freshness(&view_json(with), NOW, &p), f0);
        // Only a static preview: no ready url.
        let v = view_json(
            json!({"staticPublicPreviewSource": {"status": "ready", "url": "https://h/p"}}),
        );
        assert_eq!(freshness(&v, NOW, &p).kind, EntryKind::NoReadyUrl);
    }

    #[test]
    fn pending_caps() {
        let p = Policy::default();
        let v = view_json(json!({
            "downloadSource": {"status": "ready", "url": "https://h/d", "expiresAt": NOW + 3600.0},
            "hlsSource": {"status": "pending"},
        }));
        let f = freshness(&v, NOW, &p);
        assert_eq!(f.kind, EntryKind::Pending);
        assert_eq!(f.ttl, Duration::from_secs(5));
        assert_eq!(f.hard_expiry, Some(NOW + 3600.0));
        // The pending cap never lengthens a shorter url-bound ttl.
        let v = view_json(json!({
            "downloadSource": {"status": "ready", "url": "https://h/d", "expiresAt": NOW + 62.0},
            "hlsSource": {"status": "pending"},
        }));
        assert_eq!(freshness(&v, NOW, &p).ttl, Duration::from_secs(2));
        // failed/skipped do not count as pending.
        let v = view_json(json!({
            "downloadSource": {"status": "ready", "url": "https://h/d", "expiresAt": NOW + 3600.0},
            "hlsSource": {"status": "failed"},
            "previewSource": {"status": "skipped"},
        }));
        assert_eq!(freshness(&v, NOW, &p).kind, EntryKind::Fresh);
    }

    #[test]
    fn no_ready_url() {
        let p = Policy::default();
        for v in [
            view_json(json!({})),
            view_json(
                json!({"downloadSource": {"status": "pending"}, "hlsSource": {"status": "failed"}}),
            ),
            view_json(json!({"downloadSource": {"status": "ready"}})),
        ] {
            let f = freshness(&v, NOW, &p);
            assert_eq!(f.kind, EntryKind::NoReadyUrl);
            assert_eq!(f.ttl, p.pending_ttl);
            assert_eq!(f.hard_expiry, None);
        }
        let small = Policy {
            max_ttl: Duration::from_secs(2),
            ..p
        };
        assert_eq!(
            freshness(&view_json(json!({})), NOW, &small).ttl,
            Duration::from_secs(2)
        );
    }

    #[test]
    fn max_ttl_caps() {
        let p = Policy::default();
        let v = view_json(json!({
            "downloadSource": {"status": "ready", "url": "https://h/d", "expiresAt": NOW + 7.0 * 86_400.0},
        }));
        assert_eq!(freshness(&v, NOW, &p).ttl, p.max_ttl);
        let v = view_json(json!({"downloadSource": {"status": "ready", "url": "https://h/d"}}));
        assert_eq!(freshness(&v, NOW, &p).ttl, p.max_ttl);
    }

    #[test]
    fn root_download_url_expiry_shortens() {
        let p = Policy::default();
        let base = json!({
            "downloadSource": {"status": "ready", "url": "https://h/d", "expiresAt": NOW + 3600.0},
        });
        assert_eq!(
            freshness(&view_json(base.clone()), NOW, &p).ttl,
            Duration::from_secs(3540)
        );
        let mut with = base;
        with["downloadUrl"] = json!("https://h/root");
        with["downloadUrlExpiresAt"] = json!(NOW + 600.0);
        let f = freshness(&view_json(with), NOW, &p);
        assert_eq!(f.ttl, Duration::from_secs(540));
        assert_eq!(f.hard_expiry, Some(NOW + 600.0));
        // Root thumbnailUrl's own Expires= bound counts too.
        let v = view_json(json!({"thumbnailUrl": "https://h/t?Expires=1704067500"}));
        let f = freshness(&v, NOW, &p);
        assert_eq!(
            (f.kind, f.ttl),
            (EntryKind::Fresh, Duration::from_secs(240))
        );
    }

    #[test]
    fn expired_and_absurd_values() {
        let p = Policy::default();
        for exp in [NOW, NOW + 59.9, NOW - 1e6, 1e300, -1e300, f64::INFINITY] {
            let v = view(
                [
                    ready("https://h/d", Some(exp)),
                    Source::ABSENT,
                    Source::ABSENT,
                    Source::ABSENT,
                    Source::ABSENT,
                ],
                vec![],
            );
            for now in [NOW, 1e300, -1e300, f64::NAN, 0.0] {
                let f = freshness(&v, now, &p);
                assert!(f.ttl <= p.max_ttl);
                let left = exp - 60.0 - now;
                if left.is_nan() || left <= 0.0 {
                    assert_eq!(f.ttl, Duration::ZERO, "{exp} {now}");
                }
            }
        }
        let huge = Policy {
            margin: Duration::MAX,
            pending_ttl: Duration::MAX,
            negative_ttl: Duration::MAX,
            max_ttl: Duration::MAX,
        };
        let v = view_json(
            json!({"downloadSource": {"status": "ready", "url": "https://h/d", "expiresAt": 1e300}}),
        );
        let _ = freshness(&v, NOW, &huge);
        let _ = freshness(&v, -1e300, &huge);
        let _ = redirect_max_age(v.source(Rendition::Download), -1e300, Duration::MAX, &huge);
    }

    #[test]
    fn redirect_max_age_rules() {
        let p = Policy::default();
        let day = Duration::from_secs(86_400);
        let s = ready("https://h/d", Some(NOW + 60.0 + 100.9));
        assert_eq!(redirect_max_age(&s, NOW, day, &p), 100);
        // Capped by the entry's remaining life.
        assert_eq!(
            redirect_max_age(&s, NOW, Duration::from_millis(4_999), &p),
            4
        );
        // Past the margin: 0.
        let s = ready("https://h/d", Some(NOW + 30.0));
        assert_eq!(redirect_max_age(&s, NOW, day, &p), 0);
        // The URL's own bound wins.
        let s = ready(
            "https://h/d?X-Amz-Date=20240101T000000Z&X-Amz-Expires=90",
            Some(NOW + 3600.0),
        );
        assert_eq!(redirect_max_age(&s, NOW, day, &p), 30);
        // No expiry (static preview): the entry's life.
        let s = ready("https://h/public", None);
        assert_eq!(redirect_max_age(&s, NOW, Duration::from_secs(77), &p), 77);
        // Not servable: 0.
        assert_eq!(
            redirect_max_age(&status(SourceStatus::Pending), NOW, day, &p),
            0
        );
        assert_eq!(redirect_max_age(&Source::ABSENT, NOW, day, &p), 0);
        assert_eq!(
            redirect_max_age(&ready("https://h", Some(NOW + 1e9)), f64::NAN, day, &p),
            0
        );
    }

    #[test]
    fn refresh_ahead() {
        assert_eq!(
            refresh_ahead_offset(Duration::from_secs(100)),
            Duration::from_secs(80)
        );
        assert_eq!(
            refresh_ahead_offset(Duration::from_secs(86_400)),
            Duration::from_secs(86_100)
        );
        assert_eq!(
            refresh_ahead_offset(Duration::from_secs(1500)),
            Duration::from_secs(1200)
        );
        assert_eq!(refresh_ahead_offset(Duration::ZERO), Duration::ZERO);
        assert_eq!(
            refresh_ahead_offset(Duration::MAX),
            Duration::MAX - Duration::from_secs(300)
        );
    }

    #[test]
    fn retry_after() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
        assert_eq!(retry_after_secs(Duration::MAX), u64::MAX);
    }

    // ---- properties ----------------------------------------------------------------------

    fn arb_source() -> impl Strategy<Value = Source> {
        let status = prop::sample::select(vec![
            SourceStatus::Pending,
            SourceStatus::Ready,
            SourceStatus::Ready,
            SourceStatus::Ready,
            SourceStatus::Failed,
            SourceStatus::Skipped,
            SourceStatus::Absent,
        ]);
        let url = prop_oneof![
            Just(None),
            Just(Some("https://h/plain".to_owned())),
            (0u64..20_000).prop_map(|d| Some(format!("https://h/a?Expires={}", NOW as u64 + d))),
            (0u64..20_000).prop_map(|d| Some(format!(
                "https://h/a?X-Amz-Date=20240101T000000Z&X-Amz-Expires={d}"
            ))),
        ];
        let exp = prop_oneof![
            Just(None),
            (-1000.0f64..20_000.0).prop_map(|d| Some(NOW + d))
        ];
        (status, url, exp).prop_map(|(status, url, expires_at)| Source {
            status,
            url,
            expires_at,
            ..Source::ABSENT
        })
    }

    fn arb_root() -> impl Strategy<Value = Source> {
        arb_source().prop_map(|mut s| {
            s.status = SourceStatus::Ready;
            s.url.get_or_insert_with(|| "https://h/root".to_owned());
            s
        })
    }

    fn arb_view() -> impl Strategy<Value = FileView> {
        (
            prop::array::uniform5(arb_source()),
            prop::collection::vec(arb_root(), 0..3),
        )
            .prop_map(|(sources, root_urls)| view(sources, root_urls))
    }

    fn arb_policy() -> impl Strategy<Value = Policy> {
        (0u64..300, 0u64..30, 1u64..100_000).prop_map(|(m, pend, max)| Policy {
            margin: Duration::from_secs(m),
            pending_ttl: Duration::from_secs(pend),
            negative_ttl: Duration::from_secs(30),
            max_ttl: Duration::from_secs(max),
        })
    }

    proptest! {
        #[test]
        fn never_serve_past_expiry(v in arb_view(), dt in -2000.0f64..20_000.0, p in arb_policy()) {
            let now = NOW + dt;
            let f = freshness(&v, now, &p);
            prop_assert!(f.ttl <= p.max_ttl);
            if f.ttl > Duration::ZERO {
                let signed = Rendition::SIGNED.iter().map(|r| v.source(*r));
                for s in signed.chain(v.root_urls.iter()) {
                    if let Some(e) = source_expiry(s) {
                        prop_assert!(now + secs(f.ttl) <= e - secs(p.margin) + 1e-6,
                            "ttl {:?} now {} exp {}", f.ttl, now, e);
                        prop_assert!(f.hard_expiry.unwrap() <= e);
                    }
                }
            }
        }

        #[test]
        fn static_preview_never_changes_ttl(v in arb_view(), other in arb_source(), dt in -2000.0f64..20_000.0) {
            let p = Policy::default();
            let mut w = v.clone();
            w.sources[Rendition::Public.index()] = other;
            prop_assert_eq!(freshness(&v, NOW + dt, &p), freshness(&w, NOW + dt, &p));
        }

        #[test]
        fn rendition_permutation_irrelevant(v in arb_view(), perm in Just([0usize, 1, 2, 3]).prop_shuffle(), dt in -2000.0f64..20_000.0) {
            let p = Policy::default();
            let mut w = v.clone();
            for (i, j) in perm.iter().enumerate() {
                w.sources[i] = v.sources[*j].clone();
            }
            w.root_urls.reverse();
            prop_assert_eq!(freshness(&v, NOW + dt, &p), freshness(&w, NOW + dt, &p));
        }

        #[test]
        fn redirect_within_expiry(s in arb_source(), dt in -2000.0f64..20_000.0, left in 0u64..100_000, p in arb_policy()) {
            let now = NOW + dt;
            let age = redirect_max_age(&s, now, Duration::from_secs(left), &p);
            prop_assert!(age <= left);
            if let Some(e) = source_expiry(&s) {
                prop_assert!(age as f64 <= (e - secs(p.margin) - now).max(0.0));
            }
        }

        #[test]
        fn url_expiry_never_panics(u in "\\PC{0,80}", q in "[A-Za-z=&?%0-9-]{0,60}") {
            let _ = url_stated_expiry(&u);
            let _ = url_stated_expiry(&format!("https://h/?{q}"));
        }
    }
}
