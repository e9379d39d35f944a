//! A cache entry: the upstream body plus everything derived from it, computed once at insert.
//!
//! The hit path reads only fields of this struct: the body is a `Bytes` (served by refcount),
//! each rendition's `Location` is a ready `HeaderValue` (sliced from the body when the URL
//! appears in it verbatim, so it costs no extra memory), and the deadlines are `Instant`s.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, Uri};
use tokio::time::Instant;

use crate::clock;
use crate::hydration::file::{FileError, FileView, Rendition, Source, SourceStatus};
use crate::hydration::policy::{self, EntryKind, Policy};

/// A rendition's redirect target, checked once.
#[derive(Clone, Debug)]
pub enum Location {
    /// No url.
    None,
    /// A safe absolute URL, ready to send.
    Ready(HeaderValue),
    /// The upstream sent a url hydrant refuses to redirect to (scheme, shape): `502`.
    Unsafe,
}

/// What the hit path needs of one rendition: its state, its ready `Location` and its URL's
/// real expiry. Five per entry and 100,000s of entries, so nothing else is kept: the JSON view
/// reads dimensions and names from the stored body when it is asked for.
#[derive(Clone, Debug)]
pub struct RenditionEntry {
    /// Processing state.
    pub status: SourceStatus,
    /// Where `/files/{id}/redirect` sends the browser.
    pub location: Location,
    expiry: f64,
}

impl RenditionEntry {
    /// The URL's real expiry (min of `expiresAt` and what the URL itself states).
    pub fn expiry(&self) -> Option<f64> {
        (!self.expiry.is_nan()).then_some(self.expiry)
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
    /// The upstream's `Content-Type`.
    pub content_type: HeaderValue,
    /// When it was stored.
    pub created: Instant,
    /// Served as fresh (`HIT`) before this.
    pub fresh_until: Instant,
    /// Served as `STALE` on upstream failure before this: the URLs' real expiry.
    pub stale_until: Instant,
    /// Reads after this start one background refresh.
    pub refresh_at: Option<Instant>,
    /// What kind of entry.
    pub kind: Kind,
    /// Per rendition, indexed by `Rendition::index`.
    pub renditions: [RenditionEntry; 5],
    refreshing: AtomicBool,
    /// The last whole second of the entry's life (plus one; 0 = never) in which a read was
    /// reported to the store's eviction policy (see [`Entry::claim_touch`]).
    touched: AtomicU32,
}

/// A header value that owns its bytes. Values parsed by hyper are slices of its read buffer
/// and would pin that whole buffer (8 KiB or more) for the entry's life.
fn own_header(v: &HeaderValue) -> HeaderValue {
    if v.as_bytes() == b"application/json" {
        return HeaderValue::from_static("application/json");
    }
    HeaderValue::from_bytes(v.as_bytes())
        .unwrap_or_else(|_| HeaderValue::from_static("application/json"))
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

/// The `Location` value for `url`: a zero-copy slice of `body` when the URL appears there
/// verbatim (no JSON escapes), else a copy.
fn location(url: &str, body: &Bytes, allow_http: bool) -> Location {
    if !safe_location(url, allow_http) {
        return Location::Unsafe;
    }
    let value = match memchr::memmem::find(body, url.as_bytes()) {
        Some(at) => HeaderValue::from_maybe_shared(body.slice(at..at + url.len())),
        None => HeaderValue::from_str(url),
    };
    value.map(Location::Ready).unwrap_or(Location::Unsafe)
}

fn rendition(src: &Source, body: &Bytes, allow_http: bool) -> RenditionEntry {
    let location = match (&src.url, src.status) {
        (Some(url), SourceStatus::Ready) => location(url, body, allow_http),
        _ => Location::None,
    };
    RenditionEntry {
        status: src.status,
        location,
        expiry: policy::source_expiry(src).unwrap_or(f64::NAN),
    }
}

fn instant_at(now: Instant, now_unix: f64, unix: f64) -> Instant {
    match Duration::try_from_secs_f64(unix - now_unix) {
        Ok(d) => now
            .checked_add(d)
            .unwrap_or(now + Duration::from_secs(86400 * 365)),
        Err(_) => now,
    }
}

const EMPTY: RenditionEntry = RenditionEntry {
    status: SourceStatus::Absent,
    location: Location::None,
    expiry: f64::NAN,
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
        let content_type = own_header(&content_type);
        let view = FileView::parse(&body)?;
        let now_unix = clock::unix_at(now);
        let f = policy::freshness(&view, now_unix, p);
        let fresh_until = now + f.ttl;
        let stale_until = f
            .hard_expiry
            .map(|exp| instant_at(now, now_unix, exp).min(now + p.max_ttl))
            .unwrap_or(fresh_until)
            .max(fresh_until);
        let refresh_at = (f.kind == EntryKind::Fresh && !f.ttl.is_zero())
            .then(|| now + policy::refresh_ahead_offset(f.ttl));
        let renditions = Rendition::ALL.map(|r| rendition(view.source(r), &body, allow_http));
        Ok(Entry {
            status: StatusCode::OK,
            content_type,
            created: now,
            fresh_until,
            stale_until,
            refresh_at,
            kind: Kind::File(f.kind),
            renditions,
            body,
            refreshing: AtomicBool::new(false),
            touched: AtomicU32::new(0),
        })
    }

    /// A remembered upstream `404`, served for `negative_ttl`.
    pub fn negative(body: &[u8], content_type: HeaderValue, now: Instant, p: &Policy) -> Entry {
        let body = Bytes::copy_from_slice(body);
        let content_type = own_header(&content_type);
        let until = now + p.negative_ttl.min(p.max_ttl);
        Entry {
            status: StatusCode::NOT_FOUND,
            body,
            content_type,
            created: now,
            fresh_until: until,
            stale_until: until,
            refresh_at: None,
            kind: Kind::Negative,
            renditions: [EMPTY; 5],
            refreshing: AtomicBool::new(false),
            touched: AtomicU32::new(0),
        }
    }

    /// Fresh at `now`.
    pub fn is_fresh(&self, now: Instant) -> bool {
        now < self.fresh_until
    }

    /// May be served as `STALE` at `now` (its URLs are still genuinely valid).
    pub fn is_servable_stale(&self, now: Instant) -> bool {
        self.kind != Kind::Negative && now < self.stale_until
    }

    /// Worth keeping at all.
    pub fn is_storable(&self, now: Instant) -> bool {
        now < self.stale_until
    }

    /// Whether a file entry has at least one ready url (priming stores only those).
    pub fn has_ready_url(&self) -> bool {
        matches!(self.kind, Kind::File(EntryKind::Fresh | EntryKind::Pending))
    }

    /// True once per entry when a read at `now` should start a background refresh.
    pub fn claim_refresh(&self, now: Instant) -> bool {
        match self.refresh_at {
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
        self.fresh_until.saturating_duration_since(now)
    }

    /// One rendition.
    pub fn rendition(&self, r: Rendition) -> &RenditionEntry {
        &self.renditions[r.index()]
    }

    /// Weight for the byte-bounded store: the body plus a fixed estimate of the rest.
    pub fn weight(&self) -> u32 {
        let overhead = std::mem::size_of::<Entry>() + 256;
        u32::try_from(self.body.len() + overhead).unwrap_or(u32::MAX)
    }

    /// How long the store should keep it (garbage collection only; freshness is decided here).
    pub fn keep_for(&self, now: Instant) -> Duration {
        self.stale_until.saturating_duration_since(now) + Duration::from_secs(1)
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
        match &d.location {
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
        let ttl = e.fresh_until - now;
        assert!(
            ttl <= Duration::from_secs(3540) && ttl > Duration::from_secs(3530),
            "{ttl:?}"
        );
        assert!(e.stale_until - now >= Duration::from_secs(3599));
        assert_eq!(
            e.rendition(Rendition::Thumbnail).status,
            SourceStatus::Failed
        );
        assert!(matches!(
            e.rendition(Rendition::Hls).location,
            Location::None
        ));
        assert!(e.refresh_at.unwrap() > now + Duration::from_secs(3000));
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
                matches!(e.rendition(Rendition::Download).location, Location::Unsafe),
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
            e.rendition(Rendition::Download).location,
            Location::Ready(_)
        ));
    }

    #[tokio::test]
    async fn refresh_is_claimed_once() {
        let now = clock::now();
        let e = Entry::hydrated(
            &body(clock::unix_at(now), "https://c/x"),
            HeaderValue::from_static("application/json"),
            now,
            &Policy::default(),
            false,
        )
        .unwrap();
        assert!(!e.claim_refresh(now));
        let late = e.refresh_at.unwrap();
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
