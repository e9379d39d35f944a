//! Webhook delivery: signatures, retries with backoff, the control-plane form.

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::sim_with;
use crate::sim::{clock, webhook, DeliveryReport, SimConfig};

/// A local receiver that answers 500 to the first `fail` requests, then 204, and records
/// what it got.
async fn receiver(fail: u32) -> (String, Arc<Mutex<Vec<(HeaderMap, Bytes)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(AtomicU32::new(0));
    let got2 = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (got, seen) = (got2.clone(), seen.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (got, seen) = (got.clone(), seen.clone());
                    async move {
                        let headers = req.headers().clone();
                        let body = req.into_body().collect().await?.to_bytes();
                        got.lock().unwrap().push((headers, body));
                        let n = seen.fetch_add(1, Ordering::SeqCst);
                        let status = if n < fail { 500 } else { 204 };
                        let mut r = hyper::Response::new(Full::new(Bytes::new()));
                        *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
                        Ok::<_, hyper::Error>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (url, got)
}

#[tokio::test]
async fn webhook_delivery_retries_until_2xx() {
    let s = sim_with(SimConfig {
        webhook_secret: Some("whsec_aHlkcmFudC1zaW0tdGVzdC1zZWNyZXQ=".into()),
        ..SimConfig::default()
    })
    .await;
    let (url, got) = receiver(2).await;
    let event =
        s.h.file_event("file.playback_ready", "vg_file_alpha_0001")
            .unwrap();
    assert_eq!(event["fileId"], "vg_file_alpha_0001");
    assert!(event["file"]["downloadSource"]["url"].is_string());
    let t = Instant::now();
    let report =
        s.h.deliver_webhook(&url, "", event.clone(), 5, Duration::from_millis(20))
            .await;
    assert_eq!(
        report,
        DeliveryReport {
            attempts: 3,
            delivered: true,
            last_status: Some(204)
        }
    );
    assert!(t.elapsed() >= Duration::from_millis(60)); // 20 + 40 ms of backoff
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    let key = webhook::decode_secret("whsec_aHlkcmFudC1zaW0tdGVzdC1zZWNyZXQ=");
    let first_id = got[0].0["webhook-id"].to_str().unwrap().to_string();
    assert!(first_id.starts_with("msg_"));
    for (h, body) in &got {
        let id = h["webhook-id"].to_str().unwrap();
        assert_eq!(id, first_id);
        let ts: u64 = h["webhook-timestamp"].to_str().unwrap().parse().unwrap();
        assert!(ts.abs_diff(clock::now_secs()) < 5);
        assert_eq!(
            h["webhook-signature"].to_str().unwrap(),
            webhook::sign(&key, id, ts, body)
        );
        assert_eq!(serde_json::from_slice::<Value>(body).unwrap(), event);
    }

    // Gives up after max_attempts; nothing listening → no status.
    let (url, _) = receiver(10).await;
    let r =
        s.h.deliver_webhook(&url, "whsec_AAAA", json!({}), 2, Duration::from_millis(1))
            .await;
    assert_eq!(
        (r.attempts, r.delivered, r.last_status),
        (2, false, Some(500))
    );
    let r =
        s.h.deliver_webhook(
            "http://127.0.0.1:9/x",
            "",
            json!({}),
            1,
            Duration::from_millis(1),
        )
        .await;
    assert_eq!((r.attempts, r.delivered, r.last_status), (1, false, None));

    // Control plane form.
    let (url, got) = receiver(0).await;
    let c = s
        .call(
            Method::POST,
            "/_sim/webhooks",
            None,
            Some(
                json!({"url": url, "event": "file.download_ready", "fileId": "vg_file_alpha_0003"}),
            ),
        )
        .await;
    assert_eq!(
        c.json(),
        json!({"attempts": 1, "delivered": true, "lastStatus": 204})
    );
    let body: Value = serde_json::from_slice(&got.lock().unwrap()[0].1).unwrap();
    assert_eq!(body["event"], "file.download_ready");
    assert_eq!(body["file"]["fileId"], "vg_file_alpha_0003");
}
