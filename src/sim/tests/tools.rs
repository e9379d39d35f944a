//! Tool executions: pending, then succeeded with an output file.

use http::Method;
use serde_json::json;

use super::{sim, BETA};

#[tokio::test]
async fn tool_execution_pending_then_succeeded() {
    let s = sim().await;
    let started = s
        .post(
            "/v1/tools/generate-image",
            Some(json!({"prompt": "A red fox"})),
        )
        .await;
    assert_eq!(started.status, 202);
    let sv = started.json();
    assert_eq!(sv["status"], "pending");
    let id = sv["toolExecutionId"].as_str().unwrap().to_string();
    assert!(id.starts_with("vg_exec_"));
    let path = format!("/v1/tools/executions/{id}");
    let first = s.get(&path).await.json();
    assert_eq!(first["status"], "pending");
    let done = s.get(&path).await.json();
    assert_eq!(done["status"], "succeeded");
    let r = &done["results"][0];
    let fid = r["fileId"].as_str().unwrap();
    assert_eq!(r["type"], "IMAGE");
    assert_eq!(r["file"]["displayName"], "A red fox");
    assert_eq!(r["file"]["sourceToolExecutionId"], id.as_str());
    assert!(r["downloadUrl"]
        .as_str()
        .unwrap()
        .contains("X-Amz-Signature="));
    assert_eq!(r["downloadUrl"], r["file"]["downloadSource"]["url"]);
    assert!(r["thumbnailUrlExpiresAt"].as_f64().is_some());
    assert_eq!(s.get(&format!("/v1/files/{fid}")).await.status, 200);
    // Same output on later polls.
    assert_eq!(s.get(&path).await.json()["results"][0]["fileId"], fid);
    // Other accounts cannot see it.
    assert_eq!(
        s.call(Method::GET, &path, Some(BETA), None).await.status,
        404
    );
    let list = s.get("/v1/tools/executions").await.json();
    assert_eq!(list["executions"][0]["toolExecutionId"], id.as_str());
    assert_eq!(
        s.post("/v1/tools/not-a-tool", Some(json!({}))).await.status,
        404
    );
    let st = s.h.stats();
    assert_eq!((st.tool_calls, st.execution_get_calls), (1, 4));
}
