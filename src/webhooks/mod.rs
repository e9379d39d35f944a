//! `POST /webhooks/videogen`: verify VideoGen's deliveries, relay them, prime the cache.
//!
//! Order matters for "no event lost, none applied twice": verify → dedupe → relay (when
//! `--webhook-forward` is set; VideoGen gets `2xx` only after the receiver acknowledged) →
//! apply (prime or drop cache entries) → remember the `webhook-id` for 10 minutes. A failed
//! relay answers `502` and applies nothing, so VideoGen's own retry redoes the whole step.
//!
//! * [`verify`] — signature and timestamp checks, exactly as the official SDK.

pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, Uri};
use hyper_util::client::legacy::Client;

use crate::body::{self, Body, CollectError};
use crate::clock;
use crate::config::Config;
use crate::error::Error;
use crate::file_id::FileId;
use crate::hydration::hydrator::Hydrator;
use crate::hydration::prime;
use crate::hydration::store::Key;
use crate::telemetry::{Metrics, WebhookLabel};
use crate::tenant::Tenant;
use verify::{VerifyError, WebhookVerifier};

/// Largest delivery accepted.
pub const MAX_BODY: usize = 1 << 20;
/// How long a relay may take: under VideoGen's 15 s delivery timeout.
pub const RELAY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a `webhook-id` is remembered.
pub const DEDUPE_WINDOW: Duration = Duration::from_secs(600);

const KNOWN_EVENTS: &[&str] = &[
    "file.upload.completed",
    "file.upload.failed",
    "file.download_ready",
    "file.playback_ready",
    "file.analysis_completed",
    "file.analysis_failed",
    "tool_execution.succeeded",
    "tool_execution.failed",
];

/// A bounded metric label for an event name.
pub(crate) fn event_label(event: Option<&str>) -> &'static str {
    event
        .and_then(|e| KNOWN_EVENTS.iter().find(|k| **k == e).copied())
        .unwrap_or("other")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    InProgress,
    Done,
}

/// What the cluster knows of a `webhook-id`.
pub enum Delivery {
    /// First sight: this replica handles it.
    New,
    /// Another replica is handling it right now.
    InProgress,
    /// Completed on some replica in the last 10 minutes.
    Done,
}

/// Webhook dedupe shared by every replica (Redis). Best effort: `None` is "not available now",
/// and this replica's own memory decides alone.
pub trait SharedDedupe: Send + Sync + 'static {
    /// Mark `id` in flight for `hold` unless some replica has seen it.
    fn begin(&self, id: String, hold: Duration) -> BoxFuture<'static, Option<Delivery>>;
    /// Mark `id` completed for the dedupe window (`done`), or forget it so a retry is handled.
    fn finish(&self, id: String, done: bool, window: Duration) -> BoxFuture<'static, ()>;
}

/// Webhook endpoint state.
pub struct Webhooks {
    shared: Option<Arc<dyn SharedDedupe>>,
    verifier: WebhookVerifier,
    forward: Option<Uri>,
    client: Client<crate::upstream::client::Connector, Body>,
    seen: moka::sync::Cache<String, Seen>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("verifier", &self.verifier)
            .field("forward", &self.forward.is_some())
            .finish()
    }
}

/// Forgets an in-progress `webhook-id` unless the delivery completed, so a retry is handled.
struct InProgress<'a> {
    seen: &'a moka::sync::Cache<String, Seen>,
    id: String,
    done: bool,
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        if self.done {
            self.seen.insert(std::mem::take(&mut self.id), Seen::Done);
        } else {
            self.seen.invalidate(&self.id);
        }
    }
}

impl Webhooks {
    /// Build from configuration; `None` when no webhook secret is configured.
    pub fn new(
        cfg: &Config,
        metrics: Arc<Metrics>,
        shared: Option<Arc<dyn SharedDedupe>>,
    ) -> std::io::Result<Option<Webhooks>> {
        let secrets: Vec<String> = cfg
            .webhook_secrets
            .iter()
            .map(|s| s.expose().to_string())
            .collect();
        let Some(verifier) = WebhookVerifier::new(&secrets) else {
            return Ok(None);
        };
        Ok(Some(Webhooks {
            shared,
            verifier,
            forward: cfg.webhook_forward.clone(),
            client: crate::upstream::client::build_client(cfg.connect_timeout, cfg.native_roots)?,
            seen: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(DEDUPE_WINDOW)
                .build(),
            metrics,
        }))
    }

    fn count(&self, event: &'static str, outcome: &'static str) {
        self.metrics
            .webhook_deliveries
            .get_or_create(&WebhookLabel { event, outcome })
            .inc();
    }

    /// Relay the verified delivery unchanged; `true` when the receiver answered 2xx in time.
    async fn relay(&self, to: &Uri, headers: &HeaderMap, body: Bytes) -> bool {
        let mut req = Request::new(body::full(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = to.clone();
        let h = req.headers_mut();
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            if let Some(v) = headers.get(name) {
                h.insert(name, v.clone());
            }
        }
        h.insert(
            header::CONTENT_TYPE,
            headers
                .get(header::CONTENT_TYPE)
                .cloned()
                .unwrap_or_else(|| HeaderValue::from_static("application/json")),
        );
        if let Some(host) = to.authority() {
            if let Ok(v) = HeaderValue::from_str(host.as_str()) {
                h.insert(header::HOST, v);
            }
        }
        match tokio::time::timeout(RELAY_TIMEOUT, self.client.request(req)).await {
            Ok(Ok(resp)) => {
                let ok = resp.status().is_success();
                if !ok {
                    tracing::warn!(
                        status = resp.status().as_u16(),
                        "webhook receiver refused the relay"
                    );
                }
                ok
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "webhook relay failed");
                false
            }
            Err(_) => {
                tracing::warn!("webhook relay timed out");
                false
            }
        }
    }
}

fn ack(body: serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(body::full(Bytes::from(body.to_string())));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// What the handler reads of a verified body: the event name (`event`, else `type`) and the
/// `fileId` a failure event drops.
pub(crate) struct Payload {
    pub(crate) event: Option<String>,
    pub(crate) failed_file: Option<FileId>,
}

impl Payload {
    /// `None` when the body is not a JSON object (a `400`).
    pub(crate) fn parse(bytes: &[u8]) -> Option<Payload> {
        let serde_json::Value::Object(map) = serde_json::from_slice(bytes).ok()? else {
            return None;
        };
        let field = |k: &str| map.get(k).and_then(|v| v.as_str());
        Some(Payload {
            event: field("event").or_else(|| field("type")).map(str::to_owned),
            failed_file: field("fileId").and_then(FileId::parse),
        })
    }
}

/// Handle one delivery; what it primes or drops belongs to `tenant` (the proxy key's).
pub(crate) async fn handle(
    hooks: &Webhooks,
    hydrator: &Hydrator,
    tenant: Option<Tenant>,
    req: Request<Body>,
) -> Result<Response<Body>, Error> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        hooks.count("other", "rejected_too_large");
        return Err(Error::PayloadTooLarge);
    }
    let (parts, body) = req.into_parts();
    let bytes = match body::collect_limited(body, MAX_BODY).await {
        Ok(b) => b,
        Err(CollectError::TooLarge) => {
            hooks.count("other", "rejected_too_large");
            return Err(Error::PayloadTooLarge);
        }
        Err(e @ CollectError::Broken(_)) => return Err(Error::BodyInterrupted(e)),
    };
    let now = clock::now_unix() as i64;
    let delivery = match hooks.verifier.verify(&parts.headers, &bytes, now) {
        Ok(d) => d,
        Err(e) => {
            // The metric label: a closed vocabulary, one per refusal.
            let outcome = match e {
                VerifyError::MissingHeaders => "rejected_missing_headers",
                VerifyError::BadTimestamp => "rejected_bad_timestamp",
                VerifyError::StaleTimestamp => "rejected_stale_timestamp",
                VerifyError::BadSignature => "rejected_bad_signature",
            };
            hooks.count("other", outcome);
            tracing::warn!(reason = e.reason(), "webhook rejected");
            return Err(e.into());
        }
    };
    let Some(payload) = Payload::parse(&bytes) else {
        hooks.count("other", "rejected_not_object");
        return Err(Error::BadRequest("Webhook body must be a JSON object."));
    };
    let event_name = payload.event.as_deref();
    let event = event_label(event_name);
    hooks.count(event, "verified");

    // Dedupe: a delivery seen (and completed) in the last 10 minutes is acknowledged only.
    let entry = hooks
        .seen
        .entry(delivery.id.clone())
        .or_insert(Seen::InProgress);
    if !entry.is_fresh() {
        hooks.count(event, "duplicate");
        return match entry.into_value() {
            Seen::Done => Ok(ack(
                serde_json::json!({ "received": true, "duplicate": true }),
            )),
            // The same delivery is being handled right now: let VideoGen retry later.
            Seen::InProgress => Err(Error::DeliveryInProgress),
        };
    }
    let mut guard = InProgress {
        seen: &hooks.seen,
        id: delivery.id.clone(),
        done: false,
    };
    // The cluster's word: a copy on another replica, in flight or done, wins. The in-flight
    // marker lapses after the relay timeout + 5 s, so a replica that died blocks nothing.
    if let Some(shared) = &hooks.shared {
        match shared
            .begin(delivery.id.clone(), RELAY_TIMEOUT + Duration::from_secs(5))
            .await
        {
            Some(Delivery::Done) => {
                hooks.count(event, "duplicate");
                guard.done = true;
                return Ok(ack(
                    serde_json::json!({ "received": true, "duplicate": true }),
                ));
            }
            Some(Delivery::InProgress) => {
                hooks.count(event, "duplicate");
                return Err(Error::DeliveryInProgress);
            }
            Some(Delivery::New) | None => {}
        }
    }

    if let Some(to) = &hooks.forward {
        if !hooks.relay(to, &parts.headers, bytes.clone()).await {
            hooks.count(event, "relay_failed");
            if let Some(shared) = &hooks.shared {
                tokio::spawn(shared.finish(delivery.id.clone(), false, DEDUPE_WINDOW));
            }
            return Err(Error::RelayFailed);
        }
        hooks.count(event, "relayed");
    }

    // Apply: prime or drop the proxy tenant's entries.
    let mut primed = 0usize;
    let mut invalidated = false;
    if let Some(tenant) = tenant {
        match event_name {
            Some("file.upload.failed" | "file.analysis_failed") => {
                if let Some(file) = payload.failed_file {
                    hydrator.remove(Key { tenant, file }).await;
                    invalidated = true;
                    hooks.count(event, "invalidated");
                }
            }
            _ => {
                for (file, raw) in prime::embedded_files(&bytes) {
                    if hydrator.prime(tenant, file, raw) {
                        primed += 1;
                    }
                }
                if primed > 0 {
                    hooks.count(event, "primed");
                }
            }
        }
    }
    guard.done = true;
    drop(guard);
    if let Some(shared) = &hooks.shared {
        shared
            .finish(delivery.id.clone(), true, DEDUPE_WINDOW)
            .await;
    }
    tracing::info!(
        event = event_name.unwrap_or("-"),
        primed,
        invalidated,
        "webhook applied"
    );
    Ok(ack(serde_json::json!({
        "received": true,
        "primed": primed,
        "invalidated": invalidated,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_labels_are_bounded() {
        assert_eq!(
            event_label(Some("file.download_ready")),
            "file.download_ready"
        );
        assert_eq!(event_label(Some("anything.else")), "other");
        assert_eq!(event_label(None), "other");
    }
}
