//! A cache entry: the upstream body plus everything derived from it, computed once at insert.
//!
//! The hit path reads only fields of this struct: the body is a `Bytes` (served by refcount),
//! each rendition's redirect target is kept as an offset into the body when the URL appears in
//! it verbatim (a `HeaderValue` slice of the body is made per redirect, a refcount and no
//! copy), or as its own unescaped copy otherwise, and the deadlines are `Instant`s.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, Uri};
use tokio::time::Instant;

use crate::clock;
use crate::hydration::file::{FileError, FileView, Rendition, Source, SourceStatus};
use crate::hydration::policy::{self, EntryKind, Policy};

/// A rendition's redirect target, as the hit path hands it out.
#[derive(Clone, Debug)]
pub enum Location {
    /// No url.
    None,
    /// A safe absolute URL, ready to send.
    Ready(HeaderValue),
    /// The upstream sent a url hydrant refuses to redirect to (scheme, shape): `502`.
    Unsafe,
}

/// Where a rendition's checked URL is kept. 16 bytes instead of a 40-byte `HeaderValue`:
/// with five per entry and 100,000s of entries, that is most of an entry's own size.
#[derive(Clone, Debug)]
pub(super) enum Place {
    None,
    /// Found verbatim in the body at `at..at + len` (no JSON escapes): served as a slice of it.
    InBody {
        at: u32,
        len: u32,
    },
    /// Written with JSON escapes in the body: unescaped once, kept on its own.
    Copied(Box<HeaderValue>),
    Unsafe,
}

/// What the hit path needs of one rendition: its state, where its URL is and when the URL
/// really expires. Nothing else is kept: the JSON view reads dimensions and names from the
/// stored body when it is asked for.
#[derive(Clone, Debug)]
pub struct RenditionEntry {
    /// Processing state.
    pub status: SourceStatus,
    pub(super) place: Place,
    /// Unix seconds, rounded down (so early, never late); 0 when there is none.
    pub(super) expiry: u32,
}

impl RenditionEntry {
    /// The URL's real expiry (min of `expiresAt` and what the URL itself states), in whole
    /// Unix seconds rounded down.
    pub fn expiry(&self) -> Option<f64> {
        (self.expiry != 0).then_some(f64::from(self.expiry))
    }

    /// Whether `/files/{id}/redirect` can send the browser somewhere for this rendition.
    pub fn has_location(&self) -> bool {
        matches!(self.place, Place::InBody { .. } | Place::Copied(_))
    }
}

/// Whether an entry is a file or a remembered 404.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A hydrated file.
    File(EntryKind),
    /// The upstream said 404.
    Negative,
}

/// One cached upstream answer for `(tenant, fileId)`.
#[derive(Debug)]
pub struct Entry {
    /// Status to answer with (200, or 404 for a negative entry).
    pub status: StatusCode,
    /// The upstream body, byte for byte.
    pub body: Bytes,
    /// The upstream's `Content-Type` when it is not plain `application/json` (see
    /// [`Entry::content_type`]): 8 bytes per entry instead of 40.
    pub(super) content_type: Option<Box<HeaderValue>>,
    /// When it was stored. The deadlines below are milliseconds after it: 4 bytes each
    /// instead of a 16-byte `Instant`, which keeps `Entry` (with its ready download
    /// `Location`) in one 256-byte allocator size class; see [`Entry::fresh_until`].
    pub created: Instant,
    /// Served as fresh (`HIT`) before `created` + this.
    fresh_ms: u32,
    /// Served as `STALE` on upstream failure before `created` + this: the URLs' real expiry.
    stale_ms: u32,
    /// Reads after `created` + this start one background refresh; [`NO_REFRESH`] for none.
    refresh_ms: u32,
    /// What kind of entry.
    pub kind: Kind,
    /// Per rendition, indexed by `Rendition::index`.
    pub renditions: [RenditionEntry; 5],
    /// The download rendition's `Location`, ready to send: the default of every redirect, so
    /// its ≈ 250 bytes are validated once here rather than on each hit (≈ 320 instructions a
    /// redirect, for 40 B per entry). `None` when it has no usable URL.
    pub(super) download: Option<HeaderValue>,
    pub(super) refreshing: AtomicBool,
    /// The last whole second of the entry's life (plus one; 0 = never) in which a read was
    /// reported to the store's eviction policy (see [`Entry::claim_touch`]).
    pub(super) touched: AtomicU32,
}

/// The stored form of a `Content-Type`: nothing for `application/json` (nearly always), else
/// a copy that owns its bytes (values parsed by hyper are slices of its read buffer and would
/// pin that whole buffer, 8 KiB or more, for the entry's life).
fn own_content_type(v: &HeaderValue) -> Option<Box<HeaderValue>> {
    if v.as_bytes() == b"application/json" {
        return None;
    }
    HeaderValue::from_bytes(v.as_bytes()).ok().map(Box::new)
}

/// Whether `url` is a URL hydrant may redirect a browser to.
fn safe_location(url: &str, allow_http: bool) -> bool {
    let Ok(uri) = url.parse::<Uri>() else {
        return false;
    };
    let scheme_ok = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => allow_http,
        _ => false,
    };
    scheme_ok && uri.authority().is_some()
}

/// Where the `Location` for `url` is kept: its place in `body` when the URL appears there
/// verbatim (no JSON escapes), else a copy. Checked here once, so the hit path cannot fail.
fn place(url: &str, body: &Bytes, allow_http: bool) -> Place {
    if !safe_location(url, allow_http) || HeaderValue::from_str(url).is_err() {
        return Place::Unsafe;
    }
    let found = memchr::memmem::find(body, url.as_bytes())
        .and_then(|at| Some((u32::try_from(at).ok()?, u32::try_from(url.len()).ok()?)));
    match found {
        Some((at, len)) => Place::InBody { at, len },
        None => HeaderValue::from_str(url)
            .map(|v| Place::Copied(Box::new(v)))
            .unwrap_or(Place::Unsafe),
    }
}

fn rendition(src: &Source, body: &Bytes, allow_http: bool) -> RenditionEntry {
    let place = match (&src.url, src.status) {
        (Some(url), SourceStatus::Ready) => place(url, body, allow_http),
        _ => Place::None,
    };
    let expiry = policy::source_expiry(src)
        .filter(|e| *e >= 1.0)
        // `as` saturates: an expiry past 2106 is kept as the largest u32.
        .map(|e| e.floor() as u32)
        .unwrap_or(0);
    RenditionEntry {
        status: src.status,
        place,
        expiry,
    }
}

/// From `now_unix` to `unix` (zero when it is past, or not a number).
fn until(now_unix: f64, unix: f64) -> Duration {
    Duration::try_from_secs_f64(unix - now_unix).unwrap_or(Duration::ZERO)
}

/// The longest life anything in an entry is given, ≈ 49.7 days: its deadlines are kept as
/// `u32` milliseconds after `created`. The config takes any duration for the TTLs
/// (`max-ttl = 1000000000000d` parses); signed URLs live 7 days at most.
pub const LONGEST: Duration = Duration::from_millis(MAX_MS as u64);
const MAX_MS: u32 = u32::MAX - 1;
/// `refresh_ms` of an entry that is never refreshed ahead.
const NO_REFRESH: u32 = u32::MAX;

/// `d` in whole milliseconds (rounded down: a deadline is early, never late), at most
/// [`LONGEST`].
fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).map_or(MAX_MS, |m| m.min(MAX_MS))
}

/// The offset of `at` after `created`, for entries whose deadlines arrive as `Instant`s (the
/// shared tier's wire form); a deadline before `created` is `created` itself.
pub(super) fn offset(created: Instant, at: Instant) -> u32 {
    ms(at.saturating_duration_since(created))
}

/// The `Location` a rendition's place gives, made from the body (see [`Entry::location`]).
fn location_at(place: &Place, body: &Bytes) -> Location {
    match place {
        Place::None => Location::None,
        Place::Unsafe => Location::Unsafe,
        Place::Copied(v) => Location::Ready((**v).clone()),
        Place::InBody { at, len } => {
            let (at, len) = (*at as usize, *len as usize);
            body.get(at..at + len)
                .map(|_| body.slice(at..at + len))
                .and_then(|b| HeaderValue::from_maybe_shared(b).ok())
                .map_or(Location::Unsafe, Location::Ready)
        }
    }
}

/// [`Entry::download`] for an entry with these renditions and body.
pub(super) fn ready_download(
    renditions: &[RenditionEntry; 5],
    body: &Bytes,
) -> Option<HeaderValue> {
    match location_at(&renditions[Rendition::Download.index()].place, body) {
        Location::Ready(v) => Some(v),
        Location::None | Location::Unsafe => None,
    }
}

const EMPTY: RenditionEntry = RenditionEntry {
    status: SourceStatus::Absent,
    place: Place::None,
    expiry: 0,
};

impl Entry {
    /// Build from a `200` hydrate body (or a primed file object's bytes).
    pub fn hydrated(
        body: &[u8],
        content_type: HeaderValue,
        now: Instant,
        p: &Policy,
        allow_http: bool,
    ) -> Result<Entry, FileError> {
        // Own the bytes exactly: a body chunk read by hyper can share (and so pin) its whole
        // read buffer, several times the body's size, for as long as the entry lives.
        let body = Bytes::copy_from_slice(body);
        let content_type = own_content_type(&content_type);
        let view = FileView::parse(&body)?;
        let now_unix = clock::unix_at(now);
        let f = policy::freshness(&view, now_unix, p);
        let fresh_ms = ms(f.ttl);
        let stale_ms = f
            .hard_expiry
            .map(|exp| ms(until(now_unix, exp).min(p.max_ttl)))
            .unwrap_or(fresh_ms)
            .max(fresh_ms);
        let refresh_ms = if f.kind == EntryKind::Fresh && !f.ttl.is_zero() {
            ms(policy::refresh_ahead_offset(f.ttl))
        } else {
            NO_REFRESH
        };
        let renditions = Rendition::ALL.map(|r| rendition(view.source(r), &body, allow_http));
        let download = ready_download(&renditions, &body);
        Ok(Entry {
            status: StatusCode::OK,
            content_type,
            created: now,
            fresh_ms,
            stale_ms,
            refresh_ms,
            kind: Kind::File(f.kind),
            renditions,
            download,
            body,
            refreshing: AtomicBool::new(false),
            touched: AtomicU32::new(0),
        })
    }

    /// A remembered upstream `404`, served for `negative_ttl`.
    pub fn negative(body: &[u8], content_type: HeaderValue, now: Instant, p: &Policy) -> Entry {
        let body = Bytes::copy_from_slice(body);
        let content_type = own_content_type(&content_type);
        let until = ms(p.negative_ttl.min(p.max_ttl));
        Entry {
            status: StatusCode::NOT_FOUND,
            body,
            content_type,
            created: now,
            fresh_ms: until,
            stale_ms: until,
            refresh_ms: NO_REFRESH,
            kind: Kind::Negative,
            renditions: [EMPTY; 5],
            download: None,
            refreshing: AtomicBool::new(false),
            touched: AtomicU32::new(0),
        }
    }

    /// Built from the shared tier's wire form: the deadlines as `Instant`s.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn decoded(
        status: StatusCode,
        body: Bytes,
        content_type: Option<Box<HeaderValue>>,
        kind: Kind,
        renditions: [RenditionEntry; 5],
        created: Instant,
        (fresh_until, stale_until, refresh_at): (Instant, Instant, Option<Instant>),
    ) -> Entry {
        let download = ready_download(&renditions, &body);
        Entry {
            status,
            body,
            content_type,
            created,
            fresh_ms: offset(created, fresh_until),
            stale_ms: offset(created, stale_until),
            refresh_ms: refresh_at.map_or(NO_REFRESH, |at| offset(created, at)),
            kind,
            renditions,
            download,
            refreshing: AtomicBool::new(false),
            touched: AtomicU32::new(0),
        }
    }

    /// `created` + `ms` milliseconds (`created` itself if that would overflow the clock).
    fn at(&self, ms: u32) -> Instant {
        self.created
            .checked_add(Duration::from_millis(u64::from(ms)))
            .unwrap_or(self.created)
    }

    /// Served as fresh (`HIT`) before this.
    pub fn fresh_until(&self) -> Instant {
        self.at(self.fresh_ms)
    }

    /// Served as `STALE` on upstream failure before this: the URLs' real expiry.
    pub fn stale_until(&self) -> Instant {
        self.at(self.stale_ms)
    }

    /// Reads after this start one background refresh.
    pub fn refresh_at(&self) -> Option<Instant> {
        (self.refresh_ms != NO_REFRESH).then(|| self.at(self.refresh_ms))
    }

    /// Fresh at `now`.
    pub fn is_fresh(&self, now: Instant) -> bool {
        now < self.fresh_until()
    }

    /// May be served as `STALE` at `now` (its URLs are still genuinely valid).
    pub fn is_servable_stale(&self, now: Instant) -> bool {
        self.kind != Kind::Negative && now < self.stale_until()
    }

    /// Worth keeping at all.
    pub fn is_storable(&self, now: Instant) -> bool {
        now < self.stale_until()
    }

    /// Whether a file entry has at least one ready url (priming stores only those).
    pub fn has_ready_url(&self) -> bool {
        matches!(self.kind, Kind::File(EntryKind::Fresh | EntryKind::Pending))
    }

    /// True once per entry when a read at `now` should start a background refresh.
    pub fn claim_refresh(&self, now: Instant) -> bool {
        match self.refresh_at() {
            Some(at) if now >= at => !self.refreshing.swap(true, Ordering::Relaxed),
            _ => false,
        }
    }

    /// True for the first read in each second of the entry's life: the store reports only
    /// those reads to moka, so a hot entry costs moka one access record per second instead of
    /// one per request (Varnish's `lru_interval` does the same for its LRU list). Racing
    /// readers may both get `true`; reporting twice is harmless.
    pub fn claim_touch(&self, now: Instant) -> bool {
        let second = now.saturating_duration_since(self.created).as_secs();
        let second = u32::try_from(second).unwrap_or(u32::MAX - 1) + 1;
        if self.touched.load(Ordering::Relaxed) == second {
            return false;
        }
        self.touched.store(second, Ordering::Relaxed);
        true
    }

    /// Let a later read try the refresh again (the last one failed).
    pub fn release_refresh(&self) {
        self.refreshing.store(false, Ordering::Relaxed);
    }

    /// Whole seconds since insert (`age`).
    pub fn age(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.created).as_secs()
    }

    /// Remaining fresh life at `now`.
    pub fn fresh_left(&self, now: Instant) -> Duration {
        self.fresh_until().saturating_duration_since(now)
    }

    /// One rendition.
    pub fn rendition(&self, r: Rendition) -> &RenditionEntry {
        &self.renditions[r.index()]
    }

    /// Where `/files/{id}/redirect?rendition=r` sends the browser: the download rendition's
    /// ready value, or a verbatim URL as a slice of the body (a refcount, no copy); their
    /// bytes were checked when the entry was built.
    pub fn location(&self, r: Rendition) -> Location {
        match (r, &self.download) {
            (Rendition::Download, Some(v)) => Location::Ready(v.clone()),
            _ => location_at(&self.renditions[r.index()].place, &self.body),
        }
    }

    /// Whether every redirect target passes the checks an upstream answer's URLs pass when
    /// the entry is built (scheme, authority, header bytes). For entries from outside this
    /// process (the shared tier), which hydrant does not take on trust.
    pub fn locations_are_safe(&self, allow_http: bool) -> bool {
        Rendition::ALL.iter().all(|&r| match self.location(r) {
            Location::Ready(v) => v.to_str().is_ok_and(|url| safe_location(url, allow_http)),
            Location::None | Location::Unsafe => true,
        })
    }

    /// The `Content-Type` to serve the body with.
    pub fn content_type(&self) -> HeaderValue {
        match &self.content_type {
            None => HeaderValue::from_static("application/json"),
            Some(v) => (**v).clone(),
        }
    }

    /// Weight for the byte-bounded store: the body plus a fixed estimate of the rest.
    pub fn weight(&self) -> u32 {
        let overhead = std::mem::size_of::<Entry>() + 256;
        u32::try_from(self.body.len() + overhead).unwrap_or(u32::MAX)
    }

    /// How long the store should keep it (garbage collection only; freshness is decided here).
    pub fn keep_for(&self, now: Instant) -> Duration {
        self.stale_until().saturating_duration_since(now) + Duration::from_secs(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(now_unix: f64, url: &str) -> Bytes {
        Bytes::from(format!(
            r#"{{"fileId":"vg_file_1","type":"VIDEO","displayName":"Intro","durationSeconds":12.5,
            "downloadSource":{{"status":"ready","url":"{url}","expiresAt":{exp},"width":1920,"height":1080,"fileBytes":99}},
            "previewSource":{{"status":"ready","url":"https://cdn.example/p?a=1&amp;b=2","expiresAt":{exp2}}},
            "thumbnailSource":{{"status":"failed"}},
            "hlsSource":{{"status":"skipped","url":"","expiresAt":0}}}}"#,
            exp = now_unix + 3600.0,
            exp2 = now_unix + 7200.0
        ))
    }

    /// An entry for the test body with `url` as its download URL, built now.
    fn entry_with(url: &str) -> Entry {
        let now = clock::now();
        Entry::hydrated(
            &body(clock::unix_at(now), url),
            HeaderValue::from_static("application/json"),
            now,
            &Policy::default(),
            false,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn builds_locations_and_deadlines_once() {
        let now = clock::now();
        let b = body(
            clock::unix_at(now),
            "https://cdn.example/d?X-Amz-Signature=abc",
        );
        let e = Entry::hydrated(
            &b,
            HeaderValue::from_static("application/json"),
            now,
            &Policy::default(),
            false,
        )
        .unwrap();
        let d = e.rendition(Rendition::Download);
        match e.location(Rendition::Download) {
            Location::Ready(v) => {
                assert_eq!(v, "https://cdn.example/d?X-Amz-Signature=abc");
                // zero-copy: the header value points into the body
                let vp = v.as_bytes().as_ptr() as usize;
                let bp = e.body.as_ptr() as usize;
                assert!(vp >= bp && vp < bp + e.body.len());
            }
            other => panic!("{other:?}"),
        }
        assert!(d.expiry().is_some());
        assert!(e.rendition(Rendition::Thumbnail).expiry().is_none());
        let ttl = e.fresh_until() - now;
        assert!(
            ttl <= Duration::from_secs(3540) && ttl > Duration::from_secs(3530),
            "{ttl:?}"
        );
        assert!(e.stale_until() - now >= Duration::from_secs(3599));
        assert_eq!(
            e.rendition(Rendition::Thumbnail).status,
            SourceStatus::Failed
        );
        assert!(matches!(e.location(Rendition::Hls), Location::None));
        assert!(!e.rendition(Rendition::Hls).has_location());
        assert!(d.has_location());
        assert!(e.refresh_at().unwrap() > now + Duration::from_secs(3000));
    }

    #[tokio::test]
    async fn unsafe_locations_are_marked() {
        let now = clock::now();
        let p = Policy::default();
        for url in [
            "javascript:alert(1)",
            "http://cdn.example/x",
            "//evil.example/x",
            "ftp://x/y",
        ] {
            let e = Entry::hydrated(
                &body(clock::unix_at(now), url),
                HeaderValue::from_static("application/json"),
                now,
                &p,
                false,
            )
            .unwrap();
            assert!(
                matches!(e.location(Rendition::Download), Location::Unsafe),
                "{url}"
            );
        }
        let e = Entry::hydrated(
            &body(clock::unix_at(now), "http://127.0.0.1:9/x"),
            HeaderValue::from_static("application/json"),
            now,
            &p,
            true,
        )
        .unwrap();
        assert!(matches!(
            e.location(Rendition::Download),
            Location::Ready(_)
        ));
    }

    #[tokio::test]
    async fn escaped_urls_are_copied_unescaped() {
        let now = clock::now();
        // JSON may escape `/` and `&`: the URL is then not in the body verbatim.
        let raw =
            String::from_utf8(body(clock::unix_at(now), "https://c.example/x?a=1&b=2").to_vec())
                .unwrap()
                .replace(
                    "https://c.example/x?a=1&b=2",
                    r"https:\/\/c.example\/x?a=1\u0026b=2",
                );
        let e = Entry::hydrated(
            raw.as_bytes(),
            HeaderValue::from_static("application/json"),
            now,
            &Policy::default(),
            false,
        )
        .unwrap();
        match e.location(Rendition::Download) {
            Location::Ready(v) => assert_eq!(v, "https://c.example/x?a=1&b=2"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn expiry_is_kept_in_whole_seconds_rounded_down() {
        let e = entry_with("https://c/x");
        let exp = e.rendition(Rendition::Download).expiry().unwrap();
        let real = (clock::unix_at(e.created) + 3600.0).floor();
        assert!(exp == real || exp == real - 1.0, "{exp} vs {real}");
        assert_eq!(exp.fract(), 0.0);
    }

    #[test]
    fn entries_stay_small() {
        // Five renditions and the deadlines in under 256 bytes (with Arc's two counters, one
        // 256-byte allocator size class): see benches/README.md, memory.
        assert!(
            std::mem::size_of::<Entry>() + 16 <= 256,
            "{}",
            std::mem::size_of::<Entry>()
        );
    }

    #[tokio::test]
    async fn content_type_is_kept_only_when_unusual() {
        let now = clock::now();
        let b = body(clock::unix_at(now), "https://c/x");
        let p = Policy::default();
        let json = Entry::hydrated(
            &b,
            HeaderValue::from_static("application/json"),
            now,
            &p,
            false,
        )
        .unwrap();
        assert!(json.content_type.is_none());
        assert_eq!(json.content_type(), "application/json");
        let other = HeaderValue::from_static("application/json; charset=utf-8");
        let e = Entry::hydrated(&b, other, now, &p, false).unwrap();
        assert_eq!(e.content_type(), "application/json; charset=utf-8");
    }

    /// Any TTL the config accepts builds an entry (an overflowing `Instant + Duration` used to
    /// panic on the first hydrate); lives are capped at [`LONGEST`].
    #[test]
    fn huge_ttls_do_not_overflow() {
        let now = clock::now();
        let p = Policy {
            margin: Duration::ZERO,
            pending_ttl: Duration::MAX,
            negative_ttl: Duration::MAX,
            max_ttl: Duration::MAX,
        };
        let far = r#"{"downloadSource":{"status":"ready","url":"https://h/d","expiresAt":1e300}}"#;
        for body in [
            far,
            "{}",
            r#"{"downloadSource":{"status":"ready","url":"https://h/d"}}"#,
        ] {
            let ct = HeaderValue::from_static("application/json");
            let e = Entry::hydrated(body.as_bytes(), ct, now, &p, false).unwrap();
            assert!(e.is_fresh(now));
            assert_eq!(e.fresh_until() - now, LONGEST, "{body}");
            assert!(e.stale_until() >= e.fresh_until());
        }
        let n = Entry::negative(b"{}", HeaderValue::from_static("application/json"), now, &p);
        assert_eq!(n.fresh_until() - now, LONGEST);
    }

    #[test]
    fn an_entry_and_its_arc_counters_fit_one_256_byte_size_class() {
        // 100,000s of entries: one size class up (320 B) would cost 64 B each.
        let size = std::mem::size_of::<Entry>();
        assert!(size + 2 * std::mem::size_of::<usize>() <= 256, "{size}");
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_are_whole_milliseconds_after_created_rounded_down() {
        let now = clock::now();
        let p = Policy {
            max_ttl: Duration::from_micros(2_500_999),
            ..Policy::default()
        };
        let n = Entry::negative(b"{}", HeaderValue::from_static("application/json"), now, &p);
        assert_eq!(n.fresh_until() - now, Duration::from_millis(2_500));
        assert!(n.is_fresh(now + Duration::from_micros(2_499_999)));
        assert!(!n.is_fresh(now + Duration::from_millis(2_500)));
        assert_eq!(n.refresh_at(), None);
        assert_eq!(offset(now, now - Duration::from_secs(1)), 0);
        assert_eq!(offset(now, now + Duration::from_secs(86_400 * 365)), MAX_MS);
    }

    #[tokio::test]
    async fn refresh_is_claimed_once() {
        let e = entry_with("https://c/x");
        let now = e.created;
        assert!(!e.claim_refresh(now));
        let late = e.refresh_at().unwrap();
        assert!(e.claim_refresh(late));
        assert!(!e.claim_refresh(late));
        e.release_refresh();
        assert!(e.claim_refresh(late));
    }

    #[tokio::test]
    async fn negative_entries() {
        let now = clock::now();
        let e = Entry::negative(
            b"{}",
            HeaderValue::from_static("application/json"),
            now,
            &Policy::default(),
        );
        assert!(e.is_fresh(now + Duration::from_secs(29)));
        assert!(!e.is_fresh(now + Duration::from_secs(30)));
        assert!(!e.is_servable_stale(now));
    }
}
