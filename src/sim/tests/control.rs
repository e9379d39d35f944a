//! The `/_sim` control plane.

use http::Method;
use serde_json::json;

use super::{sim, ALPHA, BETA};
use crate::sim::clock;

#[tokio::test]
async fn control_plane() {
    let s = sim().await;
    s.post("/v1/files/vg_file_alpha_0001/hydrate", None).await;
    let st = s.call(Method::GET, "/_sim/stats", None, None).await.json();
    assert_eq!(st["hydrateCalls"], 1);
    assert_eq!(st["totalRequests"], 1);
    assert_eq!(st["byFile"]["vg_file_alpha_0001"], 1);
    assert_eq!(st["byRoute"]["POST /v1/files/{id}/hydrate"], 1);
    let f = s
        .call(
            Method::POST,
            "/_sim/files",
            None,
            Some(
                json!({"apiKey": BETA, "type": "VIDEO", "displayName": "Staged",
                        "statuses": {"download": "pending"}, "publicPreview": true}),
            ),
        )
        .await;
    assert_eq!(f.status, 201);
    let fv = f.json();
    assert_eq!(fv["fileId"], "vg_file_beta_0006");
    assert_eq!(fv["downloadSource"]["status"], "pending");
    let c = s
        .call(
            Method::POST,
            "/_sim/url-lifetime",
            None,
            Some(json!({"seconds": 30})),
        )
        .await;
    assert_eq!(c.status, 200);
    let h = s
        .post("/v1/files/vg_file_alpha_0001/hydrate", None)
        .await
        .json();
    assert!(h["downloadSource"]["expiresAt"].as_f64().unwrap() < clock::now_f64() + 31.0);
    let c = s
        .call(
            Method::POST,
            "/_sim/status",
            None,
            Some(json!({"fileId": "vg_file_alpha_0001", "rendition": "hls", "status": "failed"})),
        )
        .await;
    assert_eq!(c.status, 200);
    assert_eq!(
        s.get("/v1/files/vg_file_alpha_0001").await.json()["hlsSource"]["status"],
        "failed"
    );
    s.call(
        Method::POST,
        "/_sim/quota",
        None,
        Some(json!({"hydrate": 0})),
    )
    .await;
    assert_eq!(
        s.post("/v1/files/vg_file_alpha_0001/hydrate", None)
            .await
            .status,
        429
    );
    s.call(Method::POST, "/_sim/reset", None, None).await;
    let st = s.h.stats();
    assert_eq!((st.total_requests, st.hydrate_calls), (0, 0));
    assert_eq!(s.h.hydrate_calls("vg_file_alpha_0001"), 0);
    let accts = s
        .call(Method::GET, "/_sim/accounts", None, None)
        .await
        .json();
    assert_eq!(accts[0]["apiKey"], ALPHA);
    assert_eq!(
        s.call(Method::GET, "/_sim/nope", None, None).await.status,
        404
    );
}
