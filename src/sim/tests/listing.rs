//! Paging, search and archived files dropping out of both.

use serde_json::{json, Value};

use super::{assert_error, sim};

#[tokio::test]
async fn list_paging_search_and_archive() {
    let s = sim().await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/files?limit=7&cursor={c}"),
            None => "/v1/files?limit=7".to_string(),
        };
        let v = s.get(&path).await.json();
        pages += 1;
        for f in v["files"].as_array().unwrap() {
            assert!(
                f["downloadSource"].get("url").is_some()
                    || f["downloadSource"]["status"] != "ready"
            );
            seen.push(f["fileId"].as_str().unwrap().to_string());
        }
        if v["hasMore"] == false {
            assert_eq!(v["nextCursor"], Value::Null);
            break;
        }
        cursor = Some(v["nextCursor"].as_str().unwrap().to_string());
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 20);
    assert_eq!(seen[0], "vg_file_alpha_0001");
    assert_eq!(seen[19], "vg_file_alpha_0020");
    assert_error(
        &s.get("/v1/files?cursor=bogus").await,
        400,
        "invalid_parameters",
    );
    assert_error(&s.get("/v1/files?limit=0").await, 400, "invalid_parameters");
    assert_error(
        &s.get("/v1/files?limit=201").await,
        400,
        "invalid_parameters",
    );

    let r = s
        .post("/v1/files/search", Some(json!({"query": "intro"})))
        .await
        .json();
    let results = r["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for hit in results {
        assert!(hit["file"]["displayName"]
            .as_str()
            .unwrap()
            .contains("Intro"));
        assert!(hit["similarity"].as_f64().unwrap() > 0.0);
    }
    let all = s
        .post(
            "/v1/files/search",
            Some(json!({"query": "", "numResults": 100, "selfOnly": true})),
        )
        .await
        .json();
    assert_eq!(all["results"].as_array().unwrap().len(), 20);

    let a = s.post("/v1/files/vg_file_alpha_0005/archive", None).await;
    assert_eq!(a.status, 200);
    assert_eq!(s.get("/v1/files/vg_file_alpha_0005").await.status, 404);
    assert_eq!(
        s.post("/v1/files/vg_file_alpha_0005/hydrate", None)
            .await
            .status,
        404
    );
    assert_eq!(
        s.get("/v1/files?limit=200").await.json()["files"]
            .as_array()
            .unwrap()
            .len(),
        19
    );
    let st = s.h.stats();
    assert_eq!((st.list_files_calls, st.search_calls), (7, 2));
}
