//! `/webhooks/videogen`: a delivery must carry a valid signature (any configured secret) and
//! a timestamp within tolerance, and a JSON object body of bounded size; a verified file event
//! primes or drops the file's entry; a redelivered id is acknowledged and not applied again.
//! With `webhook_forward`, a delivery is relayed unchanged to the receiver and applied (and
//! acknowledged) only once the receiver acknowledged it: a receiver outage survives the
//! sender's retries, a receiver refusal is a 502 and nothing is applied.

use std::sync::atomic::Ordering;
use std::time::Duration;

use hydrant::config::ServeArgs;
use hydrant::sim::DEFAULT_WEBHOOK_SECRET;
use hydrant::webhooks::verify::sign;

use crate::common::fake_upstream::refused_addr;
use crate::common::*;

fn args() -> ServeArgs {
    ServeArgs {
        webhook_secret: Some(DEFAULT_WEBHOOK_SECRET.into()),
        ..Default::default()
    }
}

/// Whole Unix seconds now, as webhook timestamps are.
fn now() -> i64 {
    wall_unix() as i64
}

async fn deliver(s: &Stack, secret: &str, id: &str, ts: i64, body: &[u8]) -> Resp {
    let sig = sign(secret, id, ts, body);
    let ts = ts.to_string();
    s.client
        .send_with(
            http::Method::POST,
            &s.url("/webhooks/videogen"),
            None,
            Some(body),
            &[
                ("webhook-id", id),
                ("webhook-timestamp", &ts),
                ("webhook-signature", &sig),
            ],
        )
        .await
}

#[tokio::test]
async fn primed_by_a_simulator_delivery_then_zero_upstream_calls() {
    let s = Stack::start(args()).await;
    let event = s.sim.file_event("file.download_ready", READY).unwrap();
    let expected = event["file"]["downloadSource"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    s.sim.reset_stats();
    let report = s
        .sim
        .deliver_webhook(
            &s.url("/webhooks/videogen"),
            "",
            event,
            3,
            Duration::from_millis(50),
        )
        .await;
    assert!(report.delivered, "{report:?}");
    assert_eq!(report.attempts, 1);
    let r = s
        .client
        .get(&s.url(&format!("/files/{READY}/redirect")), None)
        .await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("x-cache"), Some("HIT"));
    assert_eq!(r.header("location"), Some(expected.as_str()));
    assert_eq!(s.sim.hydrate_calls(READY), 0);
    s.stop().await;
}

#[tokio::test]
async fn rejections() {
    let s = Stack::start(args()).await;
    let body = br#"{"event":"file.download_ready","fileId":"x"}"#;
    // missing headers
    let r = s
        .client
        .post(&s.url("/webhooks/videogen"), None, Some(body))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "missing_headers");
    // wrong secret
    let r = deliver(&s, "whsec_d3Jvbmc=", "msg_1", now(), body).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "bad_signature");
    // stale
    let r = deliver(&s, DEFAULT_WEBHOOK_SECRET, "msg_2", now() - 301, body).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "stale_timestamp");
    // future beyond tolerance
    let r = deliver(&s, DEFAULT_WEBHOOK_SECRET, "msg_3", now() + 301, body).await;
    assert_eq!(r.status, 401);
    // a timestamp that is not an integer
    let r = s
        .client
        .send_with(
            http::Method::POST,
            &s.url("/webhooks/videogen"),
            None,
            Some(body),
            &[
                ("webhook-id", "m"),
                ("webhook-timestamp", "soon"),
                ("webhook-signature", "v1,AAAA"),
            ],
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "bad_timestamp");
    // not an object
    let r = deliver(&s, DEFAULT_WEBHOOK_SECRET, "msg_4", now(), b"[1,2]").await;
    assert_eq!(r.status, 400);
    let r = deliver(&s, DEFAULT_WEBHOOK_SECRET, "msg_5", now(), b"not json").await;
    assert_eq!(r.status, 400);
    // too large
    let big = vec![b' '; (1 << 20) + 1];
    let r = deliver(&s, DEFAULT_WEBHOOK_SECRET, "msg_6", now(), &big).await;
    assert_eq!(r.status, 413);
    // the secret never appears in a response or metrics
    let m = s.client.get(&s.url("/metrics"), None).await;
    let text = String::from_utf8_lossy(&m.body);
    assert!(text.contains("rejected_bad_signature"));
    assert!(!text.contains(DEFAULT_WEBHOOK_SECRET));
    s.stop().await;
}

#[tokio::test]
async fn duplicates_are_acknowledged_not_applied() {
    let s = Stack::start(args()).await;
    let event = s.sim.file_event("file.download_ready", READY).unwrap();
    let body = serde_json::to_vec(&event).unwrap();
    let r = deliver(&s, DEFAULT_WEBHOOK_SECRET, "msg_dup", now(), &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["primed"], 1);
    let r = deliver(&s, DEFAULT_WEBHOOK_SECRET, "msg_dup", now(), &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["duplicate"], true);
    s.stop().await;
}

#[tokio::test]
async fn rotation_accepts_old_and_new_secret() {
    let s = Stack::start(ServeArgs {
        webhook_secret: Some(format!("whsec_bmV3LXNlY3JldA==,{DEFAULT_WEBHOOK_SECRET}")),
        ..Default::default()
    })
    .await;
    let body = br#"{"event":"something.new"}"#;
    assert_eq!(
        deliver(&s, "whsec_bmV3LXNlY3JldA==", "m1", now(), body)
            .await
            .status,
        200
    );
    assert_eq!(
        deliver(&s, DEFAULT_WEBHOOK_SECRET, "m2", now(), body)
            .await
            .status,
        200
    );
    s.stop().await;
}

#[tokio::test]
async fn failed_event_drops_the_entry() {
    let s = Stack::start(args()).await;
    let r = s
        .client
        .get(&s.url(&format!("/files/{READY}/redirect")), None)
        .await;
    assert_eq!(r.header("x-cache"), Some("MISS"));
    let body = format!(
        r#"{{"event":"file.analysis_failed","fileId":"{READY}","error":{{"message":"x"}}}}"#
    );
    let r = deliver(&s, DEFAULT_WEBHOOK_SECRET, "m_fail", now(), body.as_bytes()).await;
    assert_eq!(r.json()["invalidated"], true);
    let r = s
        .client
        .get(&s.url(&format!("/files/{READY}/redirect")), None)
        .await;
    assert_eq!(r.header("x-cache"), Some("MISS"));
    assert_eq!(s.sim.hydrate_calls(READY), 2);
    s.stop().await;
}

#[tokio::test]
async fn relay_survives_a_receiver_outage_and_delivers_once() {
    // A port with nothing behind it yet: the receiver is "down".
    let addr = refused_addr();
    let s = Stack::start(ServeArgs {
        webhook_secret: Some(DEFAULT_WEBHOOK_SECRET.into()),
        webhook_forward: Some(format!("http://{addr}/hooks")),
        ..Default::default()
    })
    .await;
    let event = s.sim.file_event("file.playback_ready", READY).unwrap();
    let url = s.url("/webhooks/videogen");
    let sim = s.sim.clone();
    let delivery = tokio::spawn(async move {
        sim.deliver_webhook(&url, "", event, 5, Duration::from_millis(400))
            .await
    });
    // Let the first attempt fail, then bring the receiver up.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let seen = webhook_receiver::start(tokio::net::TcpListener::bind(addr).await.unwrap()).await;
    let report = tokio::time::timeout(Duration::from_secs(10), delivery)
        .await
        .unwrap()
        .unwrap();
    assert!(report.delivered, "{report:?}");
    assert!(
        report.attempts >= 2,
        "the first attempt met a dead receiver: {report:?}"
    );
    let acked = seen.acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 1, "delivered exactly once");
    // Relayed unchanged: the receiver verifies it with the same secret.
    let (headers, body) = &acked[0];
    let verifier =
        hydrant::webhooks::verify::WebhookVerifier::new(&[DEFAULT_WEBHOOK_SECRET.to_string()])
            .unwrap();
    assert!(verifier.verify(headers, body, now()).is_ok());
    // Applied (primed) once the relay succeeded.
    let r = s
        .client
        .get(&s.url(&format!("/files/{READY}/redirect")), None)
        .await;
    assert_eq!(r.header("x-cache"), Some("HIT"));
    assert_eq!(seen.attempts.load(Ordering::SeqCst), 1);
    s.stop().await;
}

#[tokio::test]
async fn receiver_refusal_is_502_and_nothing_is_applied() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = webhook_receiver::start(listener).await;
    seen.fail.store(true, Ordering::SeqCst);
    let s = Stack::start(ServeArgs {
        webhook_secret: Some(DEFAULT_WEBHOOK_SECRET.into()),
        webhook_forward: Some(format!("http://{addr}/")),
        ..Default::default()
    })
    .await;
    let event = s.sim.file_event("file.download_ready", READY).unwrap();
    let body = serde_json::to_vec(&event).unwrap();
    let r = deliver(&s, DEFAULT_WEBHOOK_SECRET, "msg_r", now(), &body).await;
    assert_eq!(r.status, 502);
    // Not applied: the redirect goes upstream.
    let r = s
        .client
        .get(&s.url(&format!("/files/{READY}/redirect")), None)
        .await;
    assert_eq!(r.header("x-cache"), Some("MISS"));
    // Not remembered as seen: VideoGen's retry is handled in full.
    seen.fail.store(false, Ordering::SeqCst);
    let r = deliver(&s, DEFAULT_WEBHOOK_SECRET, "msg_r", now(), &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["primed"], 1);
    assert_eq!(seen.acked.lock().unwrap().len(), 1);
    s.stop().await;
}
