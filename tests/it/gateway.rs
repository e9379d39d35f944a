//! The `/v1/...` gateway in front of the simulator: a list with a query, a search body,
//! `/v1/me` and a tool execution pass through and come back as a direct call would (body,
//! status, headers, the upstream's rate-limit fields and request id). A request without a
//! bearer is refused locally; an invalid key gets the upstream's own 401. HTTP/2 in cleartext
//! with prior knowledge (h2c) works for pass-through, redirects and request bodies.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hydrant::config::ServeArgs;
use serde_json::{json, Value};

use crate::common::*;

/// Replace everything that legitimately differs between two calls (signed URLs carry a
/// random credential, expiries move with the clock) so bodies can be compared.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = if k.ends_with("xpiresAt") && v.is_number() {
                        json!(0)
                    } else if k == "url" || k.ends_with("Url") {
                        json!(v.is_string() && !v.as_str().unwrap().is_empty())
                    } else {
                        normalize(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// Same status, same content-type, same headers (by name) but for per-response ones.
fn assert_same_head(direct: &Resp, via: &Resp) {
    assert_eq!(direct.status, via.status);
    assert_eq!(direct.header("content-type"), via.header("content-type"));
    let names = |r: &Resp| {
        let mut n: Vec<String> = r
            .headers
            .keys()
            .map(|k| k.as_str().to_string())
            .filter(|k| k != "date" && k != "content-length")
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(direct), names(via));
    assert_eq!(
        direct.header("x-ratelimit-limit"),
        via.header("x-ratelimit-limit")
    );
    let rid = via.header("x-request-id").expect("x-request-id");
    assert!(rid.starts_with("req_"), "upstream request id kept: {rid}");
}

#[tokio::test]
async fn list_with_query_passes_through_like_direct() {
    let s = Stack::start(ServeArgs::default()).await;
    let q = "/v1/files?limit=3&cursor=cur_vg_file_alpha_0003";
    let direct = s.client.get(&s.sim_url(q), Some(ALPHA)).await;
    let via = s.client.get(&s.url(q), Some(ALPHA)).await;
    assert_eq!(direct.status, 200);
    assert_same_head(&direct, &via);
    assert_eq!(normalize(&direct.json()), normalize(&via.json()));
    let ids: Vec<String> = via.json()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        [
            "vg_file_alpha_0004",
            "vg_file_alpha_0005",
            "vg_file_alpha_0006"
        ],
        "limit and cursor reached the upstream"
    );
    assert_eq!(via.json()["nextCursor"], "cur_vg_file_alpha_0006");
    assert_eq!(s.sim.stats().list_files_calls, 2);
    s.stop().await;
}

#[tokio::test]
async fn search_body_passes_through_like_direct() {
    let s = Stack::start(ServeArgs::default()).await;
    let body = br##"{"query": "#1", "numResults": 3}"##;
    let direct = s
        .client
        .post(&s.sim_url("/v1/files/search"), Some(ALPHA), Some(body))
        .await;
    let via = s
        .client
        .post(&s.url("/v1/files/search"), Some(ALPHA), Some(body))
        .await;
    assert_eq!(direct.status, 200);
    assert_same_head(&direct, &via);
    let v = via.json();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "numResults from the body was honoured");
    for r in results {
        let name = r["file"]["displayName"].as_str().unwrap();
        assert!(
            name.contains("#1"),
            "query from the body was honoured: {name}"
        );
    }
    assert_eq!(normalize(&direct.json()), normalize(&v));
    assert_eq!(s.sim.stats().search_calls, 2);
    s.stop().await;
}

#[tokio::test]
async fn me_is_byte_identical_and_ratelimit_headers_come_from_upstream() {
    let s = Stack::start(ServeArgs::default()).await;
    let d1 = s.client.get(&s.sim_url("/v1/me"), Some(ALPHA)).await;
    let via = s.client.get(&s.url("/v1/me"), Some(ALPHA)).await;
    let d2 = s.client.get(&s.sim_url("/v1/me"), Some(ALPHA)).await;
    assert_eq!(via.status, 200);
    assert_eq!(d1.body, via.body, "body byte for byte");
    assert_same_head(&d1, &via);
    let rem = |r: &Resp| -> u64 { r.header("x-ratelimit-remaining").unwrap().parse().unwrap() };
    assert_eq!(rem(&via), rem(&d1) - 1, "the upstream's own counter");
    assert_eq!(rem(&d2), rem(&via) - 1);
    assert!(via.header("x-ratelimit-reset").is_some());
    assert_ne!(via.header("x-request-id"), d1.header("x-request-id"));
    assert_eq!(s.sim.stats().by_route.get("GET /v1/me"), Some(&3));
    s.stop().await;
}

#[tokio::test]
async fn tool_start_and_execution_poll_pass_through() {
    let s = Stack::start(ServeArgs::default()).await;
    let r = s
        .client
        .post(
            &s.url("/v1/tools/generate-image"),
            Some(ALPHA),
            Some(br#"{"prompt": "gateway test cat"}"#),
        )
        .await;
    assert_eq!(r.status, 202);
    assert!(r.header("x-request-id").unwrap().starts_with("req_"));
    let v = r.json();
    assert_eq!(v["status"], "pending");
    assert_eq!(v["toolType"], "GENERATE_IMAGE");
    let exec = v["toolExecutionId"].as_str().unwrap().to_string();
    let p1 = s
        .client
        .get(&s.url(&format!("/v1/tools/executions/{exec}")), Some(ALPHA))
        .await;
    assert_eq!(p1.status, 200);
    assert_eq!(p1.json()["toolExecutionId"], exec.as_str());
    assert_eq!(p1.json()["status"], "pending");
    let p2 = s
        .client
        .get(&s.url(&format!("/v1/tools/executions/{exec}")), Some(ALPHA))
        .await;
    assert_eq!(p2.status, 200);
    let v2 = p2.json();
    assert_eq!(v2["status"], "succeeded");
    assert_eq!(
        v2["results"][0]["file"]["displayName"], "gateway test cat",
        "the prompt in the request body reached the upstream"
    );
    let st = s.sim.stats();
    assert_eq!(st.tool_calls, 1);
    assert_eq!(st.execution_get_calls, 2);
    s.stop().await;
}

#[tokio::test]
async fn no_bearer_is_refused_locally() {
    let s = Stack::start(ServeArgs::default()).await;
    for (m, p) in [
        (Method::GET, "/v1/me"),
        (Method::GET, "/v1/files"),
        (Method::POST, "/v1/files/vg_file_alpha_0001/hydrate"),
        (Method::POST, "/v1/tools/generate-image"),
    ] {
        let r = s.client.send(m, &s.url(p), None, None).await;
        assert_error(&r, 401, "missing_api_key");
        // A non-bearer scheme or an empty token is no bearer either.
        for auth in [
            "Basic dXNlcjpwYXNz",
            "Bearer ",
            "Bearer",
            "Bearer    ",
            "Token abc",
        ] {
            let r = s
                .client
                .send_with(
                    Method::GET,
                    &s.url(p),
                    None,
                    None,
                    &[("authorization", auth)],
                )
                .await;
            assert_error(&r, 401, "missing_api_key");
        }
    }
    assert_eq!(s.sim.stats().total_requests, 0, "no upstream call");
    s.stop().await;
}

#[tokio::test]
async fn invalid_key_gets_the_upstreams_401() {
    let s = Stack::start(ServeArgs::default()).await;
    let direct = s.client.get(&s.sim_url("/v1/me"), Some("vg_bogus")).await;
    let via = s.client.get(&s.url("/v1/me"), Some("vg_bogus")).await;
    assert_eq!(via.status, 401);
    assert_eq!(via.json()["code"], "invalid_api_key");
    assert_eq!(direct.body, via.body);
    assert!(via.header("x-request-id").unwrap().starts_with("req_"));
    assert_eq!(s.sim.stats().by_route.get("GET /v1/me"), Some(&2));
    s.stop().await;
}

#[tokio::test]
async fn h2c_prior_knowledge_works() {
    let s = Stack::start(ServeArgs::default()).await;
    let client = h2c_client();
    let req = get_with_bearer(&s.url("/v1/me"), ALPHA);
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-ratelimit-remaining"));
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["name"], "Alpha Studio");

    let req = Request::get(s.url(&format!("/files/{READY}/redirect")))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 302);
    assert!(resp.headers().contains_key("location"));

    // A POST body over h2 reaches the upstream.
    let req = Request::post(s.url("/v1/files/search"))
        .header("authorization", format!("Bearer {ALPHA}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br##"{"query":"#2","numResults":1}"##,
        )))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
    s.stop().await;
}
