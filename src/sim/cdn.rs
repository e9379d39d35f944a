//! The fake CDN: `GET|HEAD /cdn/{fileId}/{rendition}?X-Amz-...` checks the presigned URL (403
//! when tampered or expired) and `GET|HEAD /cdn/public/{fileId}` serves public previews. Bytes
//! are deterministic per file and rendition. No bearer token, as with a real CDN.

use bytes::Bytes;

use super::clock;
use super::files::{self, RENDITIONS};
use super::http::{error_resp, raw_resp, valid_id, ApiError, Resp};
use super::state::Shared;

/// A signed rendition URL.
pub(super) fn signed(shared: &Shared, id: &str, rendition: &str, query: &str) -> Resp {
    if !valid_id(id) || !RENDITIONS.contains(&rendition) {
        return error_resp(&ApiError::not_found("Object"));
    }
    if let Err(e) = shared.signer.verify(id, rendition, query, clock::now_f64()) {
        return error_resp(&ApiError::new(403, "forbidden", e.to_string()));
    }
    let file_type = shared
        .lock()
        .files
        .get(id)
        .map(|f| f.file_type.clone())
        .unwrap_or_default();
    raw_resp(
        200,
        files::content_type(&file_type, rendition),
        Bytes::from(files::cdn_bytes(id, rendition)),
    )
}

/// A public preview: only while the file is live and its preview is enabled.
pub(super) fn public(shared: &Shared, id: &str) -> Resp {
    let file_type = {
        let inner = shared.lock();
        match inner.files.get(id) {
            Some(f) if f.public_preview && !f.archived => f.file_type.clone(),
            _ => return error_resp(&ApiError::not_found("Object")),
        }
    };
    raw_resp(
        200,
        files::content_type(&file_type, "public"),
        Bytes::from(files::cdn_bytes(id, "public")),
    )
}
