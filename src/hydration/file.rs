//! A parsed view of a VideoGen `StorageFile`, built once per cache insert.
//!
//! The cache stores the upstream body byte for byte; this view holds only what hydrant
//! derives from it (per-rendition status, url, expiry, dimensions), so the hit path never
//! parses JSON. Parsing is lenient: unknown fields (`transcript`, `fileAnalysisMetadata`, ...)
//! are skipped without being deserialized, and a field of an unexpected type reads as absent
//! rather than failing the whole file. It never panics on any input.

use serde::Deserialize;

use crate::hydration::lenient::{ObjectOr, Scalar};

/// One of the file's renditions, as named in `/files/{id}/redirect?rendition=...`.
///
/// A closed enum so routes reject unknown names once and every later lookup is an array index.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Rendition {
    /// `downloadSource`: the original/full file.
    Download,
    /// `previewSource`: a smaller playable preview.
    Preview,
    /// `thumbnailSource`: a still image.
    Thumbnail,
    /// `hlsSource`: the HLS playlist.
    Hls,
    /// `staticPublicPreviewSource`: the permanent public preview (no expiry).
    Public,
}

impl Rendition {
    /// Every rendition, in `index` order, so callers can iterate without listing them.
    pub const ALL: [Rendition; 5] = [
        Rendition::Download,
        Rendition::Preview,
        Rendition::Thumbnail,
        Rendition::Hls,
        Rendition::Public,
    ];

    /// The four signed, expiring sources: the ones whose urls bound an entry's freshness.
    pub const SIGNED: [Rendition; 4] = [
        Rendition::Download,
        Rendition::Preview,
        Rendition::Thumbnail,
        Rendition::Hls,
    ];

    /// Reads the `rendition` query value; `None` for anything unknown (a `400` upstream of here).
    pub fn parse(s: &str) -> Option<Rendition> {
        match s {
            "download" => Some(Rendition::Download),
            "preview" => Some(Rendition::Preview),
            "thumbnail" => Some(Rendition::Thumbnail),
            "hls" => Some(Rendition::Hls),
            "public" => Some(Rendition::Public),
            _ => None,
        }
    }

    /// The public name, used in URLs, the JSON view and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Rendition::Download => "download",
            Rendition::Preview => "preview",
            Rendition::Thumbnail => "thumbnail",
            Rendition::Hls => "hls",
            Rendition::Public => "public",
        }
    }

    /// The StorageFile key holding this rendition's source object.
    pub fn source_key(self) -> &'static str {
        match self {
            Rendition::Download => "downloadSource",
            Rendition::Preview => "previewSource",
            Rendition::Thumbnail => "thumbnailSource",
            Rendition::Hls => "hlsSource",
            Rendition::Public => "staticPublicPreviewSource",
        }
    }

    /// Position in `ALL` and in `FileView::sources`, so per-rendition data lives in arrays.
    pub fn index(self) -> usize {
        match self {
            Rendition::Download => 0,
            Rendition::Preview => 1,
            Rendition::Thumbnail => 2,
            Rendition::Hls => 3,
            Rendition::Public => 4,
        }
    }
}

/// A source's processing state; drives `302` / `503` / `404` on redirects and the entry's TTL.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SourceStatus {
    /// Still processing, or not hydrated yet: retry soon.
    Pending,
    /// Available (a url may still be missing, which counts as not hydrated).
    Ready,
    /// Processing failed: will not appear.
    Failed,
    /// Deliberately not produced for this file.
    Skipped,
    /// Source null, missing, not an object, or with an unknown status.
    Absent,
}

impl SourceStatus {
    /// The wire name (`"absent"` for `Absent`), used in the public JSON view.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceStatus::Pending => "pending",
            SourceStatus::Ready => "ready",
            SourceStatus::Failed => "failed",
            SourceStatus::Skipped => "skipped",
            SourceStatus::Absent => "absent",
        }
    }

    fn from_wire(s: &str) -> SourceStatus {
        match s {
            "pending" => SourceStatus::Pending,
            "ready" => SourceStatus::Ready,
            "failed" => SourceStatus::Failed,
            "skipped" => SourceStatus::Skipped,
            _ => SourceStatus::Absent,
        }
    }
}

/// One rendition's source as hydrant needs it: normalised so `""` urls and `0` expiries are
/// already `None` and later code never re-checks them.
#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    /// Processing state.
    pub status: SourceStatus,
    /// The signed (or public) url; `None` when missing, not a string, or `""`.
    pub url: Option<String>,
    /// `expiresAt` in Unix seconds; `None` when missing, null, `0`, negative or not a number.
    pub expires_at: Option<f64>,
    /// Pixel width, if stated.
    pub width: Option<u64>,
    /// Pixel height, if stated.
    pub height: Option<u64>,
    /// Size in bytes, if stated.
    pub file_bytes: Option<u64>,
}

impl Source {
    /// A source that is not there at all; the value for null/missing/garbage sources.
    pub const ABSENT: Source = Source {
        status: SourceStatus::Absent,
        url: None,
        expires_at: None,
        width: None,
        height: None,
        file_bytes: None,
    };
}

/// What hydrant derives from a StorageFile once, at insert time.
#[derive(Clone, Debug, PartialEq)]
pub struct FileView {
    /// `fileId`, if a string.
    pub file_id: Option<String>,
    /// `type` (`VIDEO`, `IMAGE`, ...); `None` while processing.
    pub file_type: Option<String>,
    /// `displayName`, if a string.
    pub display_name: Option<String>,
    /// `durationSeconds`, if a finite non-negative number.
    pub duration_seconds: Option<f64>,
    /// Per-rendition sources, indexed by `Rendition::index`.
    pub sources: [Source; 5],
    /// Root-level `downloadUrl`/`thumbnailUrl` (with their `...ExpiresAt`) when a url is
    /// present, as `Ready` sources: they expire too, so they bound the entry's freshness.
    pub root_urls: Vec<Source>,
}

/// Why a body could not be read as a StorageFile. Messages are fixed strings: they never
/// echo the body, which holds signed URLs.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum FileError {
    /// The body is not valid JSON.
    #[error("upstream file body is not valid JSON")]
    NotJson,
    /// The body is JSON but not an object.
    #[error("upstream file body is not a JSON object")]
    NotObject,
    /// The object is ambiguous (e.g. a duplicated key), so it is not trusted.
    #[error("upstream file body is malformed")]
    Malformed,
}

impl FileView {
    /// Parses a raw upstream body (hydrate/GET response).
    pub fn parse(body: &[u8]) -> Result<FileView, FileError> {
        match serde_json::from_slice::<TopLevel>(body) {
            Ok(ObjectOr(Some(raw))) => Ok(raw.into_view()),
            Ok(ObjectOr(None)) => Err(FileError::NotObject),
            Err(e) if e.is_data() => Err(FileError::Malformed),
            Err(_) => Err(FileError::NotJson),
        }
    }

    /// Builds the view from a file object embedded in another response (list, search,
    /// tool execution, webhook payload) that was already parsed.
    pub fn from_value(v: &serde_json::Value) -> Result<FileView, FileError> {
        if !v.is_object() {
            return Err(FileError::NotObject);
        }
        RawFile::deserialize(v)
            .map(RawFile::into_view)
            .map_err(|_| FileError::Malformed)
    }

    /// The source of one rendition (always present; `Absent` when the file lacks it).
    pub fn source(&self, r: Rendition) -> &Source {
        &self.sources[r.index()]
    }

    /// Whether any signed source or root url is ready with a url. The static public preview
    /// does not count (as in the SDK's check): an entry holding only it needs hydrating.
    pub fn has_ready_url(&self) -> bool {
        Rendition::SIGNED
            .iter()
            .map(|r| self.source(*r))
            .chain(self.root_urls.iter())
            .any(|s| s.status == SourceStatus::Ready && s.url.is_some())
    }
}

type TopLevel = ObjectOr<RawFile>;

/// Only the StorageFile fields hydrant reads; everything else is skipped unparsed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFile {
    file_id: Option<Scalar>,
    #[serde(rename = "type")]
    file_type: Option<Scalar>,
    display_name: Option<Scalar>,
    duration_seconds: Option<Scalar>,
    download_source: Option<ObjectOr<RawSource>>,
    preview_source: Option<ObjectOr<RawSource>>,
    thumbnail_source: Option<ObjectOr<RawSource>>,
    hls_source: Option<ObjectOr<RawSource>>,
    static_public_preview_source: Option<ObjectOr<RawSource>>,
    download_url: Option<Scalar>,
    download_url_expires_at: Option<Scalar>,
    thumbnail_url: Option<Scalar>,
    thumbnail_url_expires_at: Option<Scalar>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSource {
    status: Option<Scalar>,
    url: Option<Scalar>,
    expires_at: Option<Scalar>,
    width: Option<Scalar>,
    height: Option<Scalar>,
    file_bytes: Option<Scalar>,
}

fn source_of(raw: Option<ObjectOr<RawSource>>) -> Source {
    let Some(ObjectOr(Some(raw))) = raw else {
        return Source::ABSENT;
    };
    let status = match raw.status {
        Some(Scalar::Str(s)) => SourceStatus::from_wire(&s),
        _ => SourceStatus::Absent,
    };
    Source {
        status,
        url: raw.url.and_then(Scalar::string),
        expires_at: raw.expires_at.as_ref().and_then(Scalar::timestamp),
        width: raw.width.as_ref().and_then(Scalar::count),
        height: raw.height.as_ref().and_then(Scalar::count),
        file_bytes: raw.file_bytes.as_ref().and_then(Scalar::count),
    }
}

fn root_url(url: Option<Scalar>, expires_at: Option<Scalar>) -> Option<Source> {
    let url = url.and_then(Scalar::string)?;
    Some(Source {
        status: SourceStatus::Ready,
        url: Some(url),
        expires_at: expires_at.as_ref().and_then(Scalar::timestamp),
        ..Source::ABSENT
    })
}

impl RawFile {
    fn into_view(self) -> FileView {
        let root_urls = [
            root_url(self.download_url, self.download_url_expires_at),
            root_url(self.thumbnail_url, self.thumbnail_url_expires_at),
        ]
        .into_iter()
        .flatten()
        .collect();
        FileView {
            file_id: self.file_id.and_then(Scalar::string),
            file_type: self.file_type.and_then(Scalar::string),
            display_name: self.display_name.and_then(Scalar::string),
            duration_seconds: self
                .duration_seconds
                .as_ref()
                .and_then(Scalar::number)
                .filter(|d| *d >= 0.0),
            sources: [
                source_of(self.download_source),
                source_of(self.preview_source),
                source_of(self.thumbnail_source),
                source_of(self.hls_source),
                source_of(self.static_public_preview_source),
            ],
            root_urls,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    /// A realistic hydrated StorageFile (~1.5 KB), shared with the policy tests.
    pub(crate) const FIXTURE: &str = r#"{
  "fileId": "vg_file_01HZX3K9Q2M7R8T4V6W1Y5B3C",
  "type": "VIDEO",
  "scope": "PROJECT",
  "displayName": "Intro \"take 2\"",
  "description": "Launch video intro",
  "durationSeconds": 12.5,
  "transcript": {"text": "Hello and welcome", "segments": [{"start": 0.0, "end": 1.2, "text": "Hello"}], "language": "en"},
  "thumbnailSource": {"status": "ready", "url": "https://cdn.videogen.io/t/abc.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=deadbeef", "expiresAt": 1704153600.5, "width": 256, "height": 256, "fileBytes": 18234},
  "previewSource": {"status": "ready", "url": "https://cdn.videogen.io/p/abc.mp4?Expires=1704110000&Signature=abc~def&Key-Pair-Id=K2EXAMPLE", "expiresAt": 1704120000, "width": 640.0, "height": 360, "fileBytes": 734221.9},
  "downloadSource": {"status": "ready", "url": "https://cdn.videogen.io/d/abc.mp4?token=xyz", "expiresAt": 1704130000.25, "width": 1920, "height": 1080, "fileBytes": 12345678, "codec": "h264"},
  "hlsSource": {"status": "skipped", "url": "", "expiresAt": 0},
  "downloadUrl": "https://cdn.videogen.io/d/abc.mp4?token=root",
  "downloadUrlExpiresAt": 1704125000,
  "thumbnailUrl": "",
  "thumbnailUrlExpiresAt": null,
  "isPublicPreviewEnabled": true,
  "staticPublicPreviewSource": {"status": "ready", "url": "https://public.videogen.io/v/vg_play_abc/preview.mp4", "expiresAt": null, "width": 640, "height": 360},
  "publicHlsUrl": "https://public.videogen.io/v/vg_play_abc/index.m3u8",
  "publicPlaybackId": "vg_play_abc",
  "sourceToolType": "AVATAR_VIDEO",
  "sourceToolExecutionId": "vg_exec_123",
  "fileAnalysisMetadata": {"labels": ["person", "indoor"], "scenes": [{"t": 0, "label": "intro"}], "nsfw": false}
}"#;

    #[test]
    fn rendition_names_round_trip() {
        for (i, r) in Rendition::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert_eq!(Rendition::parse(r.as_str()), Some(*r));
        }
        assert_eq!(Rendition::parse("Download"), None);
        assert_eq!(Rendition::parse(""), None);
        assert_eq!(Rendition::Public.source_key(), "staticPublicPreviewSource");
        assert_eq!(Rendition::Hls.source_key(), "hlsSource");
    }

    #[test]
    fn fixture_parses() {
        assert!(FIXTURE.len() > 1400, "{}", FIXTURE.len());
        let v = FileView::parse(FIXTURE.as_bytes()).unwrap();
        assert_eq!(
            v.file_id.as_deref(),
            Some("vg_file_01HZX3K9Q2M7R8T4V6W1Y5B3C")
        );
        assert_eq!(v.file_type.as_deref(), Some("VIDEO"));
        assert_eq!(v.display_name.as_deref(), Some("Intro \"take 2\""));
        assert_eq!(v.duration_seconds, Some(12.5));
        let t = v.source(Rendition::Thumbnail);
        assert_eq!(t.status, SourceStatus::Ready);
        assert_eq!(t.expires_at, Some(1704153600.5));
        assert_eq!(
            (t.width, t.height, t.file_bytes),
            (Some(256), Some(256), Some(18234))
        );
        let p = v.source(Rendition::Preview);
        assert_eq!(p.expires_at, Some(1704120000.0));
        assert_eq!((p.width, p.file_bytes), (Some(640), Some(734221)));
        let d = v.source(Rendition::Download);
        assert_eq!(
            d.url.as_deref(),
            Some("https://cdn.videogen.io/d/abc.mp4?token=xyz")
        );
        assert_eq!(d.expires_at, Some(1704130000.25));
        let h = v.source(Rendition::Hls);
        assert_eq!(h.status, SourceStatus::Skipped);
        assert_eq!((h.url.as_ref(), h.expires_at), (None, None));
        let pb = v.source(Rendition::Public);
        assert_eq!(pb.status, SourceStatus::Ready);
        assert_eq!(pb.expires_at, None);
        // Root thumbnailUrl is "" so only downloadUrl counts.
        assert_eq!(v.root_urls.len(), 1);
        assert_eq!(v.root_urls[0].expires_at, Some(1704125000.0));
        assert_eq!(v.root_urls[0].status, SourceStatus::Ready);
        assert!(v.has_ready_url());
        // The embedded-object path gives the same view.
        let value: Value = serde_json::from_str(FIXTURE).unwrap();
        assert_eq!(FileView::from_value(&value).unwrap(), v);
    }

    #[test]
    fn empty_url_and_zero_expiry_are_absent() {
        let v = FileView::from_value(&json!({
            "downloadSource": {"status": "ready", "url": "", "expiresAt": 0},
            "previewSource": {"status": "ready", "url": "https://x/p", "expiresAt": -5},
            "thumbnailSource": {"status": "ready", "url": 7, "expiresAt": "1704067200"},
        }))
        .unwrap();
        for r in [
            Rendition::Download,
            Rendition::Preview,
            Rendition::Thumbnail,
        ] {
            assert_eq!(v.source(r).expires_at, None, "{r:?}");
        }
        assert_eq!(v.source(Rendition::Download).url, None);
        assert_eq!(v.source(Rendition::Thumbnail).url, None);
        assert_eq!(
            v.source(Rendition::Preview).url.as_deref(),
            Some("https://x/p")
        );
        assert!(v.has_ready_url());
    }

    #[test]
    fn expiry_integer_or_fractional() {
        let v = FileView::parse(
            br#"{"downloadSource":{"status":"ready","url":"u","expiresAt":1704067200},
                 "previewSource":{"status":"ready","url":"u","expiresAt":1704067200.75}}"#,
        )
        .unwrap();
        assert_eq!(v.source(Rendition::Download).expires_at, Some(1704067200.0));
        assert_eq!(v.source(Rendition::Preview).expires_at, Some(1704067200.75));
    }

    #[test]
    fn unknown_status_and_garbage_sources_are_absent() {
        let v = FileView::from_value(&json!({
            "downloadSource": {"status": "READY", "url": "https://x"},
            "previewSource": "ready",
            "thumbnailSource": null,
            "hlsSource": [1, 2, {"a": 1}],
            "staticPublicPreviewSource": {"status": 3},
        }))
        .unwrap();
        for r in Rendition::ALL {
            assert_eq!(v.source(r).status, SourceStatus::Absent, "{r:?}");
        }
        // A url on an absent source is kept but never counts as ready.
        assert!(!v.has_ready_url());
        assert_eq!(SourceStatus::Absent.as_str(), "absent");
        assert_eq!(SourceStatus::Pending.as_str(), "pending");
    }

    #[test]
    fn dimensions_accept_floats_and_ignore_garbage() {
        let v = FileView::from_value(&json!({
            "downloadSource": {"status": "ready", "width": 1919.9, "height": -3, "fileBytes": "12"},
            "previewSource": {"status": "ready", "width": 1e30, "height": true, "fileBytes": 0},
        }))
        .unwrap();
        let d = v.source(Rendition::Download);
        assert_eq!((d.width, d.height, d.file_bytes), (Some(1919), None, None));
        let p = v.source(Rendition::Preview);
        assert_eq!((p.width, p.height, p.file_bytes), (None, None, Some(0)));
    }

    #[test]
    fn unknown_fields_are_irrelevant() {
        let base = FileView::parse(FIXTURE.as_bytes()).unwrap();
        let mut value: Value = serde_json::from_str(FIXTURE).unwrap();
        let obj = value.as_object_mut().unwrap();
        obj.insert("transcript".into(), json!("now a plain string"));
        obj.insert("somethingNew".into(), json!({"deep": [[[{"x": null}]]]}));
        obj.insert("fileAnalysisMetadata".into(), json!(42));
        obj["downloadSource"]
            .as_object_mut()
            .unwrap()
            .insert("newSourceField".into(), json!([1, "two"]));
        let body = serde_json::to_vec(&value).unwrap();
        assert_eq!(FileView::parse(&body).unwrap(), base);
    }

    #[test]
    fn root_urls() {
        let v = FileView::from_value(&json!({
            "downloadUrl": "https://x/d", "downloadUrlExpiresAt": 1704067200.5,
            "thumbnailUrl": "https://x/t",
        }))
        .unwrap();
        assert_eq!(v.root_urls.len(), 2);
        assert_eq!(v.root_urls[0].expires_at, Some(1704067200.5));
        assert_eq!(v.root_urls[1].expires_at, None);
        assert!(v.has_ready_url());
        let v = FileView::from_value(&json!({"downloadUrlExpiresAt": 1704067200})).unwrap();
        assert!(v.root_urls.is_empty());
        assert!(!v.has_ready_url());
    }

    #[test]
    fn errors() {
        assert_eq!(FileView::parse(b""), Err(FileError::NotJson));
        assert_eq!(FileView::parse(b"{\"a\":"), Err(FileError::NotJson));
        assert_eq!(FileView::parse(b"{} x"), Err(FileError::NotJson));
        assert_eq!(FileView::parse(b"[1,2]"), Err(FileError::NotObject));
        assert_eq!(FileView::parse(b"null"), Err(FileError::NotObject));
        assert_eq!(
            FileView::parse(br#"{"fileId":"a","fileId":"b"}"#),
            Err(FileError::Malformed)
        );
        assert_eq!(FileView::from_value(&json!("x")), Err(FileError::NotObject));
        assert!(FileView::parse(b"{}").is_ok());
        // Messages carry no body content.
        let secret = br#"{"downloadSource": "https://x?X-Amz-Signature=SECRET"#;
        let e = FileView::parse(secret).unwrap_err();
        assert!(!e.to_string().contains("SECRET"));
    }

    #[test]
    fn deep_nesting_does_not_crash() {
        // Skipped values are walked without recursion, in unknown and known fields alike.
        for key in ["transcript", "downloadSource", "fileId"] {
            let mut body = format!(r#"{{"{key}":"#);
            body.push_str(&"[".repeat(10_000));
            body.push_str(&"]".repeat(10_000));
            body.push('}');
            let v = FileView::parse(body.as_bytes()).unwrap();
            assert_eq!(v.source(Rendition::Download), &Source::ABSENT);
            assert_eq!(v.file_id, None);
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-z]{0,6}".prop_map(Value::from),
            prop::sample::select(vec![
                "ready",
                "pending",
                "failed",
                "skipped",
                "",
                "https://x/y?X-Amz-Date=2",
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            let key = prop::sample::select(vec![
                "status",
                "url",
                "expiresAt",
                "width",
                "height",
                "fileBytes",
                "fileId",
                "type",
                "downloadSource",
                "previewSource",
                "thumbnailSource",
                "hlsSource",
                "staticPublicPreviewSource",
                "downloadUrl",
                "downloadUrlExpiresAt",
                "thumbnailUrl",
                "thumbnailUrlExpiresAt",
                "durationSeconds",
                "other",
            ]);
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key, inner), 0..6).prop_map(|kv| Value::Object(
                    kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = FileView::parse(&body);
        }

        #[test]
        fn parse_never_panics_on_json(v in arb_json()) {
            let _ = FileView::from_value(&v);
            let body = serde_json::to_vec(&v).unwrap();
            // Both paths agree (compared on the re-read value: serde_json's default float
            // parsing may differ from the original by one ulp).
            let reread: Value = serde_json::from_slice(&body).unwrap();
            prop_assert_eq!(FileView::from_value(&reread), FileView::parse(&body));
        }
    }
}
