//! The real media the fake CDN serves: tiny files made once with ffmpeg (`media/make.sh`,
//! committed beside this file, so neither the build nor CI needs ffmpeg), compiled in.
//!
//! Every rendition a browser can show is a valid file of its kind, and the width and height
//! the simulator reports for it are the file's own: a `<video>` reaches `loadeddata` with the
//! advertised `videoWidth`, an `<img>` decodes to the advertised `naturalWidth`.
//!
//! | type | download | preview, public | thumbnail | hls |
//! |---|---|---|---|---|
//! | VIDEO | H.264 + AAC MP4, 1920x1080, 4 s | H.264 MP4, 1280x720, 4 s | JPEG 640x360 | 2 MPEG-TS segments of 2 s, 640x360 |
//! | IMAGE | PNG 2048x2048 | WebP 1024x1024 | JPEG 256x256 | the VIDEO playlist |
//! | AUDIO | MP3, 4 s | Opus in Ogg, 4 s | JPEG 256x256 | the VIDEO playlist |
//! | other | pseudo-random bytes | pseudo-random bytes | JPEG 256x256 | the VIDEO playlist |
//!
//! The hls playlist itself is not a file: the CDN writes it per request, because each segment
//! URI in it carries its own signature (see `cdn`).

/// One compiled-in media file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Asset {
    /// The file's bytes.
    pub(super) bytes: &'static [u8],
    /// Its `Content-Type`.
    pub(super) content_type: &'static str,
    /// Its pixel size, for pictures and videos.
    pub(super) dims: Option<(u32, u32)>,
}

const fn asset(
    bytes: &'static [u8],
    content_type: &'static str,
    dims: Option<(u32, u32)>,
) -> Asset {
    Asset {
        bytes,
        content_type,
        dims,
    }
}

const VIDEO_DOWNLOAD: Asset = asset(
    include_bytes!("media/video-download.mp4"),
    "video/mp4",
    Some((1920, 1080)),
);
const VIDEO_PREVIEW: Asset = asset(
    include_bytes!("media/video-preview.mp4"),
    "video/mp4",
    Some((1280, 720)),
);
const VIDEO_THUMBNAIL: Asset = asset(
    include_bytes!("media/video-thumbnail.jpg"),
    "image/jpeg",
    Some((640, 360)),
);
const IMAGE_DOWNLOAD: Asset = asset(
    include_bytes!("media/image-download.png"),
    "image/png",
    Some((2048, 2048)),
);
const IMAGE_PREVIEW: Asset = asset(
    include_bytes!("media/image-preview.webp"),
    "image/webp",
    Some((1024, 1024)),
);
const SMALL_THUMBNAIL: Asset = asset(
    include_bytes!("media/image-thumbnail.jpg"),
    "image/jpeg",
    Some((256, 256)),
);
const AUDIO_DOWNLOAD: Asset = asset(
    include_bytes!("media/audio-download.mp3"),
    "audio/mpeg",
    None,
);
const AUDIO_PREVIEW: Asset = asset(include_bytes!("media/audio-preview.ogg"), "audio/ogg", None);

/// `Content-Type` of an HLS playlist.
pub(super) const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// Pixel size of the HLS segments (the playlist has one rendition).
pub(super) const HLS_DIMS: (u32, u32) = (640, 360);
/// The HLS segments: the name the playlist lists, the bytes and the duration in seconds
/// (as ffmpeg wrote them into its own playlist; `make.sh` prints it).
pub(super) const HLS_SEGMENTS: [(&str, &[u8], f64); 2] = [
    ("seg0.ts", include_bytes!("media/hls-seg0.ts"), 2.0),
    ("seg1.ts", include_bytes!("media/hls-seg1.ts"), 2.0),
];
/// `Content-Type` of an MPEG-TS segment.
pub(super) const SEGMENT_TYPE: &str = "video/mp2t";
/// `#EXT-X-TARGETDURATION`: the longest segment, rounded up.
const TARGET_DURATION: u32 = 2;

/// The media file of `rendition` (`download`, `preview`, `thumbnail`, `public`) of a file of
/// `file_type`; `None` for hls (a playlist, see [`playlist`]) and where only opaque bytes exist.
pub(super) fn asset_for(file_type: &str, rendition: &str) -> Option<Asset> {
    Some(match (file_type, rendition) {
        ("VIDEO", "download") => VIDEO_DOWNLOAD,
        ("VIDEO", "preview" | "public") => VIDEO_PREVIEW,
        ("VIDEO", "thumbnail") => VIDEO_THUMBNAIL,
        ("IMAGE", "download") => IMAGE_DOWNLOAD,
        ("IMAGE", "preview" | "public") => IMAGE_PREVIEW,
        ("AUDIO", "download") => AUDIO_DOWNLOAD,
        ("AUDIO", "preview" | "public") => AUDIO_PREVIEW,
        (_, "thumbnail") => SMALL_THUMBNAIL,
        _ => return None,
    })
}

/// A segment by the name the playlist lists.
pub(super) fn segment(name: &str) -> Option<&'static [u8]> {
    HLS_SEGMENTS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, bytes, _)| *bytes)
}

/// A VOD playlist listing every segment; `uri(name)` gives the URI written for a segment.
pub(super) fn playlist(mut uri: impl FnMut(&str) -> String) -> String {
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{TARGET_DURATION}\n\
         #EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    );
    for (name, _, secs) in HLS_SEGMENTS {
        out.push_str(&format!("#EXTINF:{secs:.6},\n{}\n", uri(name)));
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Width and height read from a PNG, JPEG or WebP header: proves the declared sizes are
    /// the files' own.
    fn image_dims(b: &[u8]) -> Option<(u32, u32)> {
        let be32 = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap());
        let be16 = |i: usize| u32::from(u16::from_be_bytes(b[i..i + 2].try_into().unwrap()));
        if b.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Some((be32(16), be32(20)));
        }
        if b.starts_with(b"RIFF") && &b[8..12] == b"WEBP" {
            let le =
                |i: usize| u32::from(b[i]) | u32::from(b[i + 1]) << 8 | u32::from(b[i + 2]) << 16;
            return match &b[12..16] {
                b"VP8 " => {
                    let le16 =
                        |i: usize| u32::from(u16::from_le_bytes(b[i..i + 2].try_into().unwrap()));
                    Some((le16(26) & 0x3fff, le16(28) & 0x3fff))
                }
                b"VP8L" => {
                    let bits = u32::from_le_bytes(b[21..25].try_into().unwrap());
                    Some(((bits & 0x3fff) + 1, (bits >> 14 & 0x3fff) + 1))
                }
                b"VP8X" => Some((le(24) + 1, le(27) + 1)),
                _ => None,
            };
        }
        if b.starts_with(&[0xff, 0xd8]) {
            let mut i = 2;
            while i + 9 < b.len() {
                let marker = b[i + 1];
                let len = be16(i + 2) as usize;
                if (0xc0..=0xc3).contains(&marker) {
                    return Some((be16(i + 7), be16(i + 5)));
                }
                i += 2 + len;
            }
        }
        None
    }

    #[test]
    fn declared_sizes_are_the_images_own() {
        for (ty, r) in [
            ("VIDEO", "thumbnail"),
            ("IMAGE", "download"),
            ("IMAGE", "preview"),
            ("IMAGE", "public"),
            ("IMAGE", "thumbnail"),
            ("AUDIO", "thumbnail"),
            ("PDF", "thumbnail"),
        ] {
            let a = asset_for(ty, r).unwrap();
            assert_eq!(image_dims(a.bytes), a.dims, "{ty} {r}");
        }
    }

    #[test]
    fn files_have_their_formats_magic() {
        let ftyp = |b: &[u8]| &b[4..8] == b"ftyp";
        assert!(ftyp(asset_for("VIDEO", "download").unwrap().bytes));
        assert!(ftyp(asset_for("VIDEO", "preview").unwrap().bytes));
        let mp3 = asset_for("AUDIO", "download").unwrap().bytes;
        assert!(mp3.starts_with(b"ID3") || mp3[0] == 0xff);
        assert!(asset_for("AUDIO", "preview")
            .unwrap()
            .bytes
            .starts_with(b"OggS"));
        for (_, seg, _) in HLS_SEGMENTS {
            // MPEG-TS: a sync byte every 188 bytes.
            assert_eq!(seg.len() % 188, 0);
            assert!(seg.chunks(188).all(|p| p[0] == 0x47));
        }
        assert_eq!(asset_for("VIDEO", "hls"), None);
        assert_eq!(asset_for("PDF", "download"), None);
    }

    #[test]
    fn playlist_lists_every_segment_with_its_uri() {
        let p = playlist(|n| format!("hls/{n}?sig=1"));
        assert!(p.starts_with("#EXTM3U\n"));
        assert!(p.contains("#EXTINF:2.000000,\nhls/seg0.ts?sig=1\n"));
        assert!(p.contains("hls/seg1.ts?sig=1\n#EXT-X-ENDLIST\n"));
        assert_eq!(
            segment("seg1.ts").map(<[u8]>::len),
            Some(HLS_SEGMENTS[1].1.len())
        );
        assert_eq!(segment("seg9.ts"), None);
    }
}
