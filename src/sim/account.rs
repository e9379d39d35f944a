//! `GET /v1/me` (alias `/v1/account`): the caller's account record.

use serde_json::json;

use super::http::{ApiError, ApiResult};
use super::state::Shared;

/// The account JSON for `key`, with its current file count.
pub(super) fn me(shared: &Shared, key: &str) -> ApiResult {
    let a = shared
        .account(key)
        .ok_or_else(|| ApiError::new(401, "invalid_api_key", "Invalid API key."))?;
    let files = shared.lock().order.get(key).map_or(0, Vec::len);
    Ok((
        200,
        json!({
            "accountId": format!("vg_acct_{}", a.short),
            "userId": format!("vg_user_{}", a.short),
            "name": a.name,
            "email": format!("{}@sim.videogen.invalid", a.short),
            "plan": "SIMULATED",
            "creditsRemaining": 100_000,
            "fileCount": files,
        }),
    ))
}
