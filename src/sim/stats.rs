//! The request counters a running simulator keeps.

use std::collections::BTreeMap;

/// Request counters, so tests can assert how many upstream calls hydrant made.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimStats {
    /// Every request except the `/_sim` control plane.
    pub total_requests: u64,
    /// `POST /v1/files/{id}/hydrate`.
    pub hydrate_calls: u64,
    /// Hydrate calls bearing a known API key, by the account's short name (the `alpha` of
    /// `vg_sim_key_alpha`; never the key), so a quota can be checked per tenant.
    pub hydrate_by_account: BTreeMap<String, u64>,
    /// `GET /v1/files/{id}`.
    pub get_file_calls: u64,
    /// `GET /v1/files`.
    pub list_files_calls: u64,
    /// `POST /v1/files/search`.
    pub search_calls: u64,
    /// `POST /v1/tools/{tool}`.
    pub tool_calls: u64,
    /// `GET /v1/tools/executions/{id}`.
    pub execution_get_calls: u64,
    /// `GET /cdn/...`.
    pub cdn_calls: u64,
    /// Per route, keyed like `"POST /v1/files/{id}/hydrate"`.
    pub by_route: BTreeMap<String, u64>,
}
