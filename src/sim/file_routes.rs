//! The per-file `/v1/files/{id}` routes: GET (no signed URLs), hydrate (fresh signed URLs),
//! archive and public-preview toggles. Ids are validated by the caller.

use serde_json::json;

use super::files::{SimFile, View};
use super::http::{ApiError, ApiResult};
use super::state::Shared;

/// `GET /v1/files/{id}` (`View::Plain`) or `POST /v1/files/{id}/hydrate` (`View::Hydrated`).
pub(super) fn render(shared: &Shared, key: &str, id: &str, view: View) -> ApiResult {
    shared
        .render_file(id, Some(key), view)
        .map(|v| (200, v))
        .ok_or_else(|| ApiError::not_found("File"))
}

/// `POST /v1/files/{id}/archive`: the file disappears from every route, CDN included.
pub(super) fn archive(shared: &Shared, key: &str, id: &str) -> ApiResult {
    with_file(shared, key, id, |f| f.archived = true)?;
    Ok((200, json!({"fileId": id, "archived": true})))
}

/// `POST /v1/files/{id}/enable-public-preview` (`on`) or `.../disable-public-preview`.
pub(super) fn set_public_preview(shared: &Shared, key: &str, id: &str, on: bool) -> ApiResult {
    with_file(shared, key, id, |f| f.public_preview = on)?;
    render(shared, key, id, View::Plain)
}

/// Applies `f` to a live file of `key`; someone else's file is a 404, as VideoGen hides it.
fn with_file(
    shared: &Shared,
    key: &str,
    id: &str,
    f: impl FnOnce(&mut SimFile),
) -> Result<(), ApiError> {
    let mut inner = shared.lock();
    match inner.files.get_mut(id) {
        Some(file) if file.owner == key && !file.archived => {
            f(file);
            Ok(())
        }
        _ => Err(ApiError::not_found("File")),
    }
}
