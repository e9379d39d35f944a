//! The StorageFile model: seeding, JSON rendering (plain vs. hydrated), presigned-URL minting
//! and verification, and the deterministic bytes the fake CDN serves.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use std::time::Duration;

use super::clock;
use super::config::{FileSpec, SourceStatuses};
use super::media;

type HmacSha256 = Hmac<Sha256>;

/// The four signed renditions, in wire order.
pub(super) const RENDITIONS: [&str; 4] = ["download", "preview", "thumbnail", "hls"];

/// Statuses a source may have.
pub(super) const STATUSES: [&str; 4] = ["pending", "ready", "failed", "skipped"];

const TITLES: [&str; 8] = [
    "Product launch",
    "Intro",
    "Customer story",
    "Team offsite",
    "Tutorial",
    "Teaser",
    "Keynote",
    "Behind the scenes",
];

/// One stored file.
#[derive(Clone, Debug)]
pub(super) struct SimFile {
    pub(super) id: String,
    pub(super) owner: String,
    pub(super) file_type: String,
    pub(super) display_name: String,
    pub(super) description: Option<String>,
    pub(super) duration_seconds: Option<f64>,
    pub(super) created_at: u64,
    pub(super) statuses: SourceStatuses,
    pub(super) public_preview: bool,
    pub(super) source_tool_type: Option<String>,
    pub(super) source_tool_execution_id: Option<String>,
    pub(super) archived: bool,
}

impl SimFile {
    /// Builds a file from a spec; statuses outside [`STATUSES`] become `failed`.
    pub(super) fn from_spec(id: String, owner: String, spec: FileSpec, created_at: u64) -> Self {
        let norm = |s: String| {
            if STATUSES.contains(&s.as_str()) {
                s
            } else {
                "failed".to_string()
            }
        };
        let st = spec.statuses;
        Self {
            id,
            owner,
            file_type: spec.file_type,
            display_name: spec.display_name,
            description: spec.description,
            duration_seconds: spec.duration_seconds,
            created_at,
            statuses: SourceStatuses {
                download: norm(st.download),
                preview: norm(st.preview),
                thumbnail: norm(st.thumbnail),
                hls: norm(st.hls),
            },
            public_preview: spec.public_preview,
            source_tool_type: None,
            source_tool_execution_id: None,
            archived: false,
        }
    }

    /// The status of a rendition by name.
    fn status(&self, rendition: &str) -> Option<&str> {
        let s = &self.statuses;
        Some(match rendition {
            "download" => &s.download,
            "preview" => &s.preview,
            "thumbnail" => &s.thumbnail,
            "hls" => &s.hls,
            _ => return None,
        })
    }

    /// Mutable access to a rendition's status by name.
    pub(super) fn status_mut(&mut self, rendition: &str) -> Option<&mut String> {
        let s = &mut self.statuses;
        Some(match rendition {
            "download" => &mut s.download,
            "preview" => &mut s.preview,
            "thumbnail" => &mut s.thumbnail,
            "hls" => &mut s.hls,
            _ => return None,
        })
    }
}

/// The deterministic seed spec for file number `n` (1-based) of an account; from the fifth
/// file on, the renditions named in `skipped` are `skipped` and the description is
/// `description_bytes` long (none when 0).
pub(super) fn seed_spec(n: usize, skipped: &[String], description_bytes: usize) -> FileSpec {
    let title = TITLES.get(n % TITLES.len()).copied().unwrap_or("Clip");
    let mut spec = FileSpec {
        display_name: format!("{title} #{n}"),
        duration_seconds: Some(5.0 + (n % 7) as f64 * 2.5),
        ..FileSpec::default()
    };
    match n {
        2 => spec.statuses.preview = "pending".into(),
        3 => {
            spec.statuses.hls = "skipped".into();
            spec.statuses.download = "failed".into();
        }
        4 => {
            spec.file_type = "IMAGE".into();
            spec.duration_seconds = None;
            spec.statuses.hls = "skipped".into();
            spec.public_preview = true;
        }
        5.. => {
            let st = &mut spec.statuses;
            for r in skipped {
                let slot = match r.as_str() {
                    "download" => &mut st.download,
                    "preview" => &mut st.preview,
                    "thumbnail" => &mut st.thumbnail,
                    "hls" => &mut st.hls,
                    _ => continue,
                };
                *slot = "skipped".into();
            }
            if description_bytes > 0 {
                let words = "Seeded clip, described at length for sizing tests. ";
                spec.description = Some(words.chars().cycle().take(description_bytes).collect());
            }
        }
        _ => {}
    }
    spec
}

/// Which shape to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum View {
    /// `GET /v1/files/{id}`: statuses, no signed urls.
    Plain,
    /// Hydrated: fresh signed urls for every ready source.
    Hydrated,
}

/// Everything rendering needs besides the file.
pub(super) struct RenderCtx<'a> {
    pub(super) base_url: &'a str,
    pub(super) signer: &'a Signer,
    pub(super) now: f64,
    pub(super) lifetime: Duration,
}

/// Width and height of a rendition: the served media's own (see `media`).
fn dims(file_type: &str, rendition: &str) -> Option<(u32, u32)> {
    match (file_type, rendition) {
        ("VIDEO", "hls") => Some(media::HLS_DIMS),
        _ => media::asset_for(file_type, rendition).and_then(|a| a.dims),
    }
}

fn source_json(
    file: &SimFile,
    rendition: &str,
    status: &str,
    view: View,
    ctx: &RenderCtx<'_>,
) -> (Value, Option<(String, f64)>) {
    let mut m = Map::new();
    m.insert("status".into(), json!(status));
    let mut signed = None;
    match status {
        "ready" => {
            if view == View::Hydrated {
                let (url, exp) = ctx.signer.mint(ctx.base_url, &file.id, rendition, ctx);
                m.insert("url".into(), json!(url));
                m.insert("expiresAt".into(), json!(exp));
                signed = Some((url, exp));
            }
            if let Some((w, h)) = dims(&file.file_type, rendition) {
                m.insert("width".into(), json!(w));
                m.insert("height".into(), json!(h));
            }
            if rendition != "hls" {
                m.insert(
                    "fileBytes".into(),
                    json!(cdn_len(&file.file_type, rendition)),
                );
            }
        }
        "skipped" if view == View::Hydrated => {
            m.insert("url".into(), json!(""));
            m.insert("expiresAt".into(), json!(0));
        }
        _ => {}
    }
    (Value::Object(m), signed)
}

/// Renders a StorageFile in the camelCase wire shape.
pub(super) fn render(file: &SimFile, view: View, ctx: &RenderCtx<'_>) -> Value {
    let mut m = Map::new();
    m.insert("fileId".into(), json!(file.id));
    m.insert("type".into(), json!(file.file_type));
    m.insert("scope".into(), json!("GLOBAL"));
    m.insert("displayName".into(), json!(file.display_name));
    m.insert("description".into(), json!(file.description));
    m.insert("durationSeconds".into(), json!(file.duration_seconds));
    m.insert("createdAt".into(), json!(clock::iso8601(file.created_at)));
    m.insert("isPublicPreviewEnabled".into(), json!(file.public_preview));
    m.insert(
        "publicPlaybackId".into(),
        if file.public_preview {
            json!(format!("vg_play_{}", &hex16(&file.id)))
        } else {
            Value::Null
        },
    );
    m.insert("sourceToolType".into(), json!(file.source_tool_type));
    m.insert(
        "sourceToolExecutionId".into(),
        json!(file.source_tool_execution_id),
    );
    m.insert("fileAnalysisMetadata".into(), Value::Null);
    m.insert("transcript".into(), Value::Null);
    let mut roots: [Option<(String, f64)>; 2] = [None, None];
    for rendition in RENDITIONS {
        let status = file.status(rendition).unwrap_or("failed");
        let (src, signed) = source_json(file, rendition, status, view, ctx);
        m.insert(format!("{rendition}Source"), src);
        match rendition {
            "download" => roots[0] = signed,
            "thumbnail" => roots[1] = signed,
            _ => {}
        }
    }
    m.insert(
        "staticPublicPreviewSource".into(),
        if file.public_preview {
            let mut p = Map::new();
            p.insert("status".into(), json!("ready"));
            p.insert(
                "url".into(),
                json!(format!("{}/cdn/public/{}", ctx.base_url, file.id)),
            );
            p.insert("expiresAt".into(), Value::Null);
            if let Some((w, h)) = dims(&file.file_type, "public") {
                p.insert("width".into(), json!(w));
                p.insert("height".into(), json!(h));
            }
            p.insert(
                "fileBytes".into(),
                json!(cdn_len(&file.file_type, "public")),
            );
            Value::Object(p)
        } else {
            Value::Null
        },
    );
    if view == View::Hydrated {
        for (name, signed) in ["download", "thumbnail"].iter().zip(roots) {
            let (url, exp) = match signed {
                Some((u, e)) => (json!(u), json!(e)),
                None => (Value::Null, Value::Null),
            };
            m.insert(format!("{name}Url"), url);
            m.insert(format!("{name}UrlExpiresAt"), exp);
        }
    }
    Value::Object(m)
}

/// A short stable hex tag derived from a string (not secret; for ids only).
fn hex16(s: &str) -> String {
    format!("{:016x}", fnv1a(s.as_bytes()))
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let val = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(val(*p.first()?)? << 4 | val(*p.get(1)?)?))
        .collect()
}

/// Why a CDN URL was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum CdnError {
    /// A parameter is missing or malformed.
    #[error("Malformed presigned URL.")]
    Malformed,
    /// The signature does not match.
    #[error("Signature does not match.")]
    BadSignature,
    /// Past `X-Amz-Date + X-Amz-Expires`.
    #[error("Request has expired.")]
    Expired,
}

/// Mints and verifies the fake presigned URLs with a per-instance random key.
pub(super) struct Signer {
    key: [u8; 32],
}

impl Signer {
    pub(super) fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(
        &self,
        file_id: &str,
        rendition: &str,
        cred: &str,
        date: &str,
        expires: u64,
    ) -> HmacSha256 {
        // new_from_slice accepts any key length for HMAC; the fallback is unreachable.
        let mut mac = HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()));
        mac.update(format!("{file_id}\n{rendition}\n{cred}\n{date}\n{expires}").as_bytes());
        mac
    }

    /// The presigned query for explicit parameters.
    fn query(
        &self,
        file_id: &str,
        rendition: &str,
        cred: &str,
        date: &str,
        expires: u64,
    ) -> String {
        let sig = to_hex(
            &self
                .mac(file_id, rendition, cred, date, expires)
                .finalize()
                .into_bytes(),
        );
        format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={cred}&X-Amz-Date={date}\
             &X-Amz-Expires={expires}&X-Amz-Signature={sig}"
        )
    }

    /// Builds a presigned URL for explicit parameters (tests use it to forge expired ones).
    pub(super) fn url(
        &self,
        base_url: &str,
        file_id: &str,
        rendition: &str,
        cred: &str,
        date_secs: u64,
        expires: u64,
    ) -> String {
        let date = clock::amz_date(date_secs);
        let query = self.query(file_id, rendition, cred, &date, expires);
        format!("{base_url}/cdn/{file_id}/{rendition}?{query}")
    }

    /// The query of a segment URI written into a playlist that `playlist_query` signs: the
    /// same credential, date and expiry, so the segments die with their playlist. A browser
    /// resolves a relative segment URI against the playlist's URL *without* its query, so each
    /// segment must carry a signature of its own.
    pub(super) fn segment_query(
        &self,
        file_id: &str,
        segment: &str,
        playlist_query: &str,
    ) -> Result<String, CdnError> {
        let p = Params::parse(playlist_query)?;
        Ok(self.query(
            file_id,
            &segment_rendition(segment),
            &p.cred,
            &p.date,
            p.expires,
        ))
    }

    /// A fresh URL (random nonce as credential) and its fractional `expiresAt`. The URL's own
    /// bound (`X-Amz-Date + X-Amz-Expires`) is the next whole second at or after `expiresAt`.
    fn mint(
        &self,
        base_url: &str,
        file_id: &str,
        rendition: &str,
        ctx: &RenderCtx<'_>,
    ) -> (String, f64) {
        let exp = ((ctx.now + ctx.lifetime.as_secs_f64()) * 1000.0).round() / 1000.0;
        let date_secs = ctx.now.max(0.0).floor() as u64;
        let expires = (exp.ceil() as u64).saturating_sub(date_secs);
        let cred = format!("SIM{:016X}", rand::random::<u64>());
        (
            self.url(base_url, file_id, rendition, &cred, date_secs, expires),
            exp,
        )
    }

    /// Checks a CDN request's query against the signature and the clock.
    pub(super) fn verify(
        &self,
        file_id: &str,
        rendition: &str,
        query: &str,
        now: f64,
    ) -> Result<(), CdnError> {
        let p = Params::parse(query)?;
        let date_secs = clock::parse_amz_date(&p.date).ok_or(CdnError::Malformed)?;
        let sig = from_hex(&p.sig).ok_or(CdnError::BadSignature)?;
        self.mac(file_id, rendition, &p.cred, &p.date, p.expires)
            .verify_slice(&sig)
            .map_err(|_| CdnError::BadSignature)?;
        if now >= date_secs.saturating_add(p.expires) as f64 {
            return Err(CdnError::Expired);
        }
        Ok(())
    }
}

/// What a signature covers for an hls segment: `hls/{segment}`.
pub(super) fn segment_rendition(segment: &str) -> String {
    format!("hls/{segment}")
}

/// The presigned parameters of a CDN query.
struct Params {
    cred: String,
    date: String,
    expires: u64,
    sig: String,
}

impl Params {
    fn parse(query: &str) -> Result<Params, CdnError> {
        let mut alg = None;
        let mut cred = None;
        let mut date = None;
        let mut expires = None;
        let mut sig = None;
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match k.as_ref() {
                "X-Amz-Algorithm" => &mut alg,
                "X-Amz-Credential" => &mut cred,
                "X-Amz-Date" => &mut date,
                "X-Amz-Expires" => &mut expires,
                "X-Amz-Signature" => &mut sig,
                _ => continue,
            };
            *slot = Some(v.into_owned());
        }
        let (Some(alg), Some(cred), Some(date), Some(expires), Some(sig)) =
            (alg, cred, date, expires, sig)
        else {
            return Err(CdnError::Malformed);
        };
        // The credential is echoed into segment URIs: only URL-safe characters.
        let safe = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
        if alg != "AWS4-HMAC-SHA256" || cred.len() > 64 || !safe(&cred) || !safe(&date) {
            return Err(CdnError::Malformed);
        }
        let expires = expires.parse().map_err(|_| CdnError::Malformed)?;
        Ok(Params {
            cred,
            date,
            expires,
            sig,
        })
    }
}

/// Length of the opaque bytes served where no real media exists (types other than VIDEO,
/// IMAGE and AUDIO).
fn opaque_len(rendition: &str) -> usize {
    match rendition {
        "download" => 8192,
        _ => 4096,
    }
}

/// Length of the bytes served for a rendition other than hls (also its `fileBytes`).
fn cdn_len(file_type: &str, rendition: &str) -> usize {
    media::asset_for(file_type, rendition).map_or(opaque_len(rendition), |a| a.bytes.len())
}

/// Content type of a rendition of a file of `file_type`.
pub(super) fn content_type(file_type: &str, rendition: &str) -> &'static str {
    match (rendition, media::asset_for(file_type, rendition)) {
        ("hls", _) => media::PLAYLIST_TYPE,
        (_, Some(a)) => a.content_type,
        _ => "application/octet-stream",
    }
}

/// The bytes served for `(file_id, rendition)` other than hls: the real media file, else
/// deterministic pseudo-random bytes (per file and rendition).
pub(super) fn cdn_bytes(file_type: &str, file_id: &str, rendition: &str) -> Bytes {
    if let Some(a) = media::asset_for(file_type, rendition) {
        return Bytes::from_static(a.bytes);
    }
    let len = opaque_len(rendition);
    let mut state = fnv1a(format!("{file_id}/{rendition}").as_bytes());
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(signer: &Signer) -> RenderCtx<'_> {
        RenderCtx {
            base_url: "http://sim",
            signer,
            now: 1_763_900_000.25,
            lifetime: Duration::from_secs(3600),
        }
    }

    #[test]
    fn mint_verify_tamper_expire() {
        let s = Signer::new([7; 32]);
        let c = ctx(&s);
        let (url, exp) = s.mint("http://sim", "vg_file_x", "download", &c);
        assert_eq!(exp, 1_763_903_600.25);
        let q = url.split_once('?').unwrap().1;
        assert!(q.contains("X-Amz-Date=20251123T121320Z"));
        assert!(q.contains("X-Amz-Expires=3601"));
        assert_eq!(s.verify("vg_file_x", "download", q, c.now), Ok(()));
        assert_eq!(s.verify("vg_file_x", "download", q, exp), Ok(()));
        assert_eq!(
            s.verify("vg_file_x", "download", q, exp + 1.0),
            Err(CdnError::Expired)
        );
        assert_eq!(
            s.verify("vg_file_x", "preview", q, c.now),
            Err(CdnError::BadSignature)
        );
        let tampered = q.replace("X-Amz-Expires=3601", "X-Amz-Expires=9999");
        assert_eq!(
            s.verify("vg_file_x", "download", &tampered, c.now),
            Err(CdnError::BadSignature)
        );
        assert_eq!(
            s.verify("vg_file_x", "download", "X-Amz-Date=x", c.now),
            Err(CdnError::Malformed)
        );
        let (url2, _) = s.mint("http://sim", "vg_file_x", "download", &c);
        assert_ne!(url, url2);
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(
            from_hex(&to_hex(&[0, 1, 254, 255])),
            Some(vec![0, 1, 254, 255])
        );
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("é1"), None);
    }

    #[test]
    fn cdn_bytes_are_media_or_deterministic() {
        let pdf = |id| cdn_bytes("PDF", id, "download");
        assert_eq!(pdf("a"), pdf("a"));
        assert_ne!(pdf("a"), pdf("b"));
        assert_eq!(pdf("a").len(), cdn_len("PDF", "download"));
        assert_eq!(content_type("PDF", "download"), "application/octet-stream");
        let thumb = cdn_bytes("VIDEO", "a", "thumbnail");
        assert!(thumb.starts_with(&[0xff, 0xd8]));
        assert_eq!(thumb.len(), cdn_len("VIDEO", "thumbnail"));
        assert_eq!(content_type("VIDEO", "preview"), "video/mp4");
        assert_eq!(content_type("IMAGE", "hls"), media::PLAYLIST_TYPE);
        assert_eq!(dims("VIDEO", "hls"), Some(media::HLS_DIMS));
        assert_eq!(dims("AUDIO", "download"), None);
    }
}
