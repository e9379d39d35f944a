//! An entry as bytes, for a tier shared between processes: the upstream body byte for byte
//! plus everything derived from it once (deadlines, per-rendition state, where each URL sits
//! in the body). Decoding parses no JSON: a shared-tier hit costs a copy and a few bounds
//! checks, not a StorageFile parse.
//!
//! Deadlines travel as Unix seconds, so a replica that reads an entry ages it from the original
//! upstream fetch, not from when it read it. Layout (little endian): `hyd2`, status `u16`, kind
//! `u8`, created / fresh-until / stale-until / refresh-at as `f64` (NaN: none), content type
//! (`u32` length + bytes; 0: JSON), five renditions (status `u8`, expiry `u32`, place), the
//! body (`u32` length + bytes). Every length is a `u32`: `hyd1` wrote the content type's and a
//! copied URL's as `u16`, so a content type over 64 KiB was cut and its entry never decoded.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use tokio::time::Instant;

use crate::clock;
use crate::hydration::entry::{Entry, Kind, Place, RenditionEntry};
use crate::hydration::file::SourceStatus;
use crate::hydration::policy::EntryKind;

const MAGIC: &[u8; 4] = b"hyd2";

/// The instant at Unix time `unix`, seen from `now`.
fn instant_of(unix: f64, now: Instant, now_unix: f64) -> Option<Instant> {
    if !unix.is_finite() {
        return None;
    }
    let delta = unix - now_unix;
    let d = Duration::try_from_secs_f64(delta.abs()).ok()?;
    if delta >= 0.0 {
        now.checked_add(d)
    } else {
        Some(now.checked_sub(d).unwrap_or(now))
    }
}

fn status_code(s: SourceStatus) -> u8 {
    match s {
        SourceStatus::Pending => 0,
        SourceStatus::Ready => 1,
        SourceStatus::Failed => 2,
        SourceStatus::Skipped => 3,
        SourceStatus::Absent => 4,
    }
}

fn source_status(b: u8) -> Option<SourceStatus> {
    Some(match b {
        0 => SourceStatus::Pending,
        1 => SourceStatus::Ready,
        2 => SourceStatus::Failed,
        3 => SourceStatus::Skipped,
        4 => SourceStatus::Absent,
        _ => return None,
    })
}

/// The entry as bytes.
pub(crate) fn encode(e: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(e.body.len() + 128);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&e.status.as_u16().to_le_bytes());
    out.push(match e.kind {
        Kind::Negative => 0,
        Kind::File(EntryKind::Fresh) => 1,
        Kind::File(EntryKind::Pending) => 2,
        Kind::File(EntryKind::NoReadyUrl) => 3,
    });
    for t in [
        Some(e.created),
        Some(e.fresh_until()),
        Some(e.stale_until()),
        e.refresh_at(),
    ] {
        let v = t.map_or(f64::NAN, clock::unix_at);
        out.extend_from_slice(&v.to_le_bytes());
    }
    let ct = e.content_type.as_deref().map_or(&[][..], |v| v.as_bytes());
    out.extend_from_slice(&len32(ct.len()).to_le_bytes());
    out.extend_from_slice(ct);
    for r in &e.renditions {
        out.push(status_code(r.status));
        out.extend_from_slice(&r.expiry.to_le_bytes());
        match &r.place {
            Place::None => out.push(0),
            Place::InBody { at, len } => {
                out.push(1);
                out.extend_from_slice(&at.to_le_bytes());
                out.extend_from_slice(&len.to_le_bytes());
            }
            Place::Copied(v) => {
                out.push(2);
                out.extend_from_slice(&len32(v.len()).to_le_bytes());
                out.extend_from_slice(v.as_bytes());
            }
            Place::Unsafe => out.push(3),
        }
    }
    out.extend_from_slice(&len32(e.body.len()).to_le_bytes());
    out.extend_from_slice(&e.body);
    out
}

/// A length as written: bodies are capped far below 4 GiB and header values are smaller still,
/// so the saturation (which makes the value refused on decode) is never reached.
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Reads the encoding back, refusing anything malformed.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2)?.try_into().ok().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }
    fn f64(&mut self) -> Option<f64> {
        self.take(8)?.try_into().ok().map(f64::from_le_bytes)
    }
}

/// An entry from its bytes, as seen at `now`; `None` for anything malformed (a shared tier
/// treats that as absent).
pub(crate) fn decode(bytes: &[u8], now: Instant) -> Option<Entry> {
    let now_unix = clock::unix_at(now);
    let mut r = Reader { buf: bytes };
    if r.take(4)? != MAGIC {
        return None;
    }
    let status = StatusCode::from_u16(r.u16()?).ok()?;
    let kind = match r.u8()? {
        0 => Kind::Negative,
        1 => Kind::File(EntryKind::Fresh),
        2 => Kind::File(EntryKind::Pending),
        3 => Kind::File(EntryKind::NoReadyUrl),
        _ => return None,
    };
    let created = instant_of(r.f64()?, now, now_unix)?.min(now);
    let fresh_until = instant_of(r.f64()?, now, now_unix)?;
    let stale_until = instant_of(r.f64()?, now, now_unix)?;
    let refresh_at = instant_of(r.f64()?, now, now_unix);
    let ct_len = r.u32()? as usize;
    let content_type = match ct_len {
        0 => None,
        n => Some(Box::new(HeaderValue::from_bytes(r.take(n)?).ok()?)),
    };
    let mut places = Vec::with_capacity(5);
    for _ in 0..5 {
        let status = source_status(r.u8()?)?;
        let expiry = r.u32()?;
        let place = match r.u8()? {
            0 => Place::None,
            1 => Place::InBody {
                at: r.u32()?,
                len: r.u32()?,
            },
            2 => {
                let n = r.u32()? as usize;
                Place::Copied(Box::new(HeaderValue::from_bytes(r.take(n)?).ok()?))
            }
            3 => Place::Unsafe,
            _ => return None,
        };
        places.push(RenditionEntry {
            status,
            place,
            expiry,
        });
    }
    let body_len = r.u32()? as usize;
    // Own exactly the body's bytes (a slice would pin the whole value buffer).
    let body = Bytes::copy_from_slice(r.take(body_len)?);
    if !r.buf.is_empty() {
        return None;
    }
    for p in &places {
        if let Place::InBody { at, len } = p.place {
            let end = (at as usize).checked_add(len as usize)?;
            HeaderValue::from_bytes(body.get(at as usize..end)?).ok()?;
        }
    }
    let renditions: [RenditionEntry; 5] = places.try_into().ok()?;
    Some(Entry::decoded(
        status,
        body,
        content_type,
        kind,
        renditions,
        created,
        (fresh_until, stale_until, refresh_at),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hydration::file::Rendition;
    use crate::hydration::policy::Policy;

    fn file() -> Vec<u8> {
        let exp = clock::now_unix() + 3600.0;
        format!(
            r#"{{"fileId":"f","downloadSource":{{"status":"ready","url":"https://cdn.example/d?a=1","expiresAt":{exp}}},
            "previewSource":{{"status":"ready","url":"https://cdn.example/p?a=1\u0026b=2","expiresAt":{exp}}},
            "hlsSource":{{"status":"pending"}},"thumbnailSource":{{"status":"failed"}}}}"#
        )
        .into_bytes()
    }

    #[tokio::test(start_paused = true)]
    async fn round_trip_keeps_what_the_hit_path_reads_and_the_age() {
        let t0 = clock::now();
        let e = Entry::hydrated(
            &file(),
            HeaderValue::from_static("application/json; charset=utf-8"),
            t0,
            &Policy::default(),
            false,
        )
        .unwrap();
        let bytes = encode(&e);
        tokio::time::advance(Duration::from_secs(100)).await;
        let now = clock::now();
        let d = decode(&bytes, now).unwrap();
        assert_eq!(d.body, e.body);
        assert_eq!(d.status, e.status);
        assert_eq!(d.kind, e.kind);
        assert_eq!(d.content_type(), e.content_type());
        assert_eq!(d.age(now), 100, "aged from the original fetch");
        let close = |a: Instant, b: Instant| {
            let diff = if a > b { a - b } else { b - a };
            diff < Duration::from_millis(5)
        };
        assert!(close(d.fresh_until(), e.fresh_until()));
        assert!(close(d.stale_until(), e.stale_until()));
        assert_eq!(d.refresh_at().is_some(), e.refresh_at().is_some());
        if let (Some(a), Some(b)) = (d.refresh_at(), e.refresh_at()) {
            assert!(close(a, b));
        }
        for r in Rendition::ALL {
            assert_eq!(d.rendition(r).status, e.rendition(r).status);
            assert_eq!(d.rendition(r).expiry(), e.rendition(r).expiry());
            assert_eq!(
                format!("{:?}", d.location(r)),
                format!("{:?}", e.location(r))
            );
        }
    }

    #[test]
    fn negative_entries_round_trip() {
        let now = clock::now();
        let e = Entry::negative(
            br#"{"message":"nope"}"#,
            HeaderValue::from_static("application/json"),
            now,
            &Policy::default(),
        );
        let d = decode(&encode(&e), now).unwrap();
        assert_eq!(d.status, StatusCode::NOT_FOUND);
        assert_eq!(d.body, e.body);
        assert!(!d.is_servable_stale(now));
    }

    /// A content type over 64 KiB round-trips (`hyd1` cut its length to `u16`, so such an
    /// entry was written to the shared tier and never read back), next to a copied URL.
    #[test]
    fn values_over_64_kib_round_trip() {
        let now = clock::now();
        let exp = clock::unix_at(now) + 3600.0;
        let url = "https://cdn.example/d?k=1";
        // Written with `\/` escapes, so the URL is not in the body verbatim: a copied place.
        let body = format!(
            r#"{{"fileId":"f","downloadSource":{{"status":"ready","url":"{}","expiresAt":{exp}}}}}"#,
            url.replace('/', "\\/")
        );
        let ct = format!("application/json; x={}", "b".repeat(70_000));
        let e = Entry::hydrated(
            body.as_bytes(),
            HeaderValue::from_str(&ct).unwrap(),
            now,
            &Policy::default(),
            false,
        )
        .unwrap();
        let d = decode(&encode(&e), now).expect("decodes");
        assert_eq!(d.content_type(), e.content_type());
        match d.location(Rendition::Download) {
            crate::hydration::entry::Location::Ready(v) => assert_eq!(v.to_str().unwrap(), url),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_bytes_are_refused_not_panicked_on() {
        let now = clock::now();
        let good = encode(&Entry::negative(
            b"{}",
            HeaderValue::from_static("application/json"),
            now,
            &Policy::default(),
        ));
        assert!(decode(b"", now).is_none());
        assert!(decode(b"hyd2", now).is_none());
        for cut in 0..good.len() {
            assert!(decode(&good[..cut], now).is_none(), "cut at {cut}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(decode(&longer, now).is_none());
        // Every single-byte corruption decodes to something sane or is refused.
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            let _ = decode(&bad, now);
        }
    }
}
