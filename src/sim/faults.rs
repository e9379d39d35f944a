//! Fault injection: a queue of [`Fault`]s consumed by matching requests, and the parser for the
//! control plane's JSON form.

use serde_json::Value;
use std::time::Duration;

/// Which requests a queued [`Fault`] applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultRoute {
    /// Every request except the `/_sim` control plane.
    Any,
    /// `POST /v1/files/{id}/hydrate`.
    Hydrate,
    /// `GET /v1/files/{id}`.
    GetFile,
    /// Any request whose path starts with this prefix.
    Other(String),
}

/// What a queued fault does to a matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Delay, then answer normally.
    Latency(Duration),
    /// Answer this status with a `{"message","code"}` body.
    Status(u16),
    /// `429` with code `rate_limited` and, when set, `Retry-After`.
    RateLimited {
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
    },
    /// `429` with code `insufficient_credits`.
    InsufficientCredits,
    /// `200` with a body that is not valid JSON.
    Malformed,
    /// Close the connection without any response.
    Drop,
    /// Never answer (until the simulator shuts down or a 5-minute bound).
    Hang,
    /// Answer normally, but send the head at once and trickle the body over this long, so
    /// a client sees a response that started and then stalls.
    SlowBody(Duration),
}

/// A fault applied to the next `count` matching requests (queue order, first match wins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Which requests it matches.
    pub route: FaultRoute,
    /// What it does.
    pub kind: FaultKind,
    /// How many matching requests it affects; `0` queues nothing.
    pub count: u32,
}

/// Longest latency honoured, so a typo cannot park a request for days.
pub(super) const MAX_LATENCY: Duration = Duration::from_secs(600);

/// How long a `Hang` fault holds a request at most (shutdown ends it earlier).
pub(super) const HANG_MAX: Duration = Duration::from_secs(300);

/// Most faults queued at once.
const MAX_QUEUED: usize = 10_000;

/// The request attributes a fault route is matched against.
pub(super) struct Target<'a> {
    pub(super) path: &'a str,
    pub(super) is_hydrate: bool,
    pub(super) is_get_file: bool,
}

/// Queued faults, oldest first.
#[derive(Default, Debug)]
pub(super) struct FaultQueue {
    queue: Vec<Fault>,
}

impl FaultQueue {
    /// Queues a fault (ignored when `count` is 0 or the queue is full).
    pub(super) fn push(&mut self, fault: Fault) {
        if fault.count > 0 && self.queue.len() < MAX_QUEUED {
            self.queue.push(fault);
        }
    }

    /// Drops every queued fault.
    pub(super) fn clear(&mut self) {
        self.queue.clear();
    }

    /// Number of queued faults.
    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Consumes one use of the first fault matching `target`.
    pub(super) fn take(&mut self, target: &Target<'_>) -> Option<FaultKind> {
        let idx = self.queue.iter().position(|f| matches(&f.route, target))?;
        let fault = self.queue.get_mut(idx)?;
        let kind = fault.kind.clone();
        fault.count = fault.count.saturating_sub(1);
        if fault.count == 0 {
            self.queue.remove(idx);
        }
        Some(kind)
    }
}

fn matches(route: &FaultRoute, t: &Target<'_>) -> bool {
    match route {
        FaultRoute::Any => true,
        FaultRoute::Hydrate => t.is_hydrate,
        FaultRoute::GetFile => t.is_get_file,
        FaultRoute::Other(prefix) => t.path.starts_with(prefix.as_str()),
    }
}

/// Why a control-plane fault was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum FaultParseError {
    /// The body is not a JSON object.
    #[error("fault must be a JSON object")]
    NotObject,
    /// `kind` is missing or unknown.
    #[error(
        "unknown fault kind (latency|status|rate_limited|insufficient_credits|malformed|drop|hang|slow_body)"
    )]
    Kind,
    /// A numeric field is out of range.
    #[error("invalid value for {0}")]
    Value(&'static str),
}

fn uint(v: &Value, key: &'static str) -> Result<Option<u64>, FaultParseError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x.as_u64().map(Some).ok_or(FaultParseError::Value(key)),
    }
}

/// Parses `{"route","kind","ms","status","retryAfter","count"}`.
pub(super) fn parse(v: &Value) -> Result<Fault, FaultParseError> {
    if !v.is_object() {
        return Err(FaultParseError::NotObject);
    }
    let route = match v.get("route").and_then(Value::as_str).unwrap_or("any") {
        "any" | "" => FaultRoute::Any,
        "hydrate" => FaultRoute::Hydrate,
        "get_file" => FaultRoute::GetFile,
        other => FaultRoute::Other(other.to_string()),
    };
    let kind = match v.get("kind").and_then(Value::as_str) {
        Some("latency") => {
            FaultKind::Latency(Duration::from_millis(uint(v, "ms")?.unwrap_or(0)).min(MAX_LATENCY))
        }
        Some("status") => {
            let code = uint(v, "status")?.unwrap_or(500);
            if !(200..=599).contains(&code) {
                return Err(FaultParseError::Value("status"));
            }
            FaultKind::Status(u16::try_from(code).map_err(|_| FaultParseError::Value("status"))?)
        }
        Some("rate_limited") => FaultKind::RateLimited {
            retry_after: uint(v, "retryAfter")?,
        },
        Some("insufficient_credits") => FaultKind::InsufficientCredits,
        Some("malformed") => FaultKind::Malformed,
        Some("drop") => FaultKind::Drop,
        Some("hang") => FaultKind::Hang,
        Some("slow_body") => {
            FaultKind::SlowBody(Duration::from_millis(uint(v, "ms")?.unwrap_or(0)).min(MAX_LATENCY))
        }
        _ => return Err(FaultParseError::Kind),
    };
    let count = uint(v, "count")?.unwrap_or(1);
    let count = u32::try_from(count).map_err(|_| FaultParseError::Value("count"))?;
    Ok(Fault { route, kind, count })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_and_consume() {
        let f = parse(&json!({"route":"hydrate","kind":"status","status":503,"count":2})).unwrap();
        assert_eq!(f.kind, FaultKind::Status(503));
        let mut q = FaultQueue::default();
        q.push(f);
        let get = Target {
            path: "/v1/files/x",
            is_hydrate: false,
            is_get_file: true,
        };
        let hyd = Target {
            path: "/v1/files/x/hydrate",
            is_hydrate: true,
            is_get_file: false,
        };
        assert_eq!(q.take(&get), None);
        assert_eq!(q.take(&hyd), Some(FaultKind::Status(503)));
        assert_eq!(q.take(&hyd), Some(FaultKind::Status(503)));
        assert_eq!(q.take(&hyd), None);
        assert_eq!(parse(&json!({"kind":"nope"})), Err(FaultParseError::Kind));
        assert_eq!(parse(&json!([1])), Err(FaultParseError::NotObject));
        assert_eq!(
            parse(&json!({"kind":"status","status":42})),
            Err(FaultParseError::Value("status"))
        );
        let other = parse(&json!({"route":"/cdn/","kind":"drop"})).unwrap();
        assert_eq!(other.route, FaultRoute::Other("/cdn/".into()));
        assert_eq!(
            parse(&json!({"kind":"rate_limited","retryAfter":3}))
                .unwrap()
                .kind,
            FaultKind::RateLimited {
                retry_after: Some(3)
            }
        );
        assert_eq!(
            parse(&json!({"kind":"slow_body","ms":1500})).unwrap().kind,
            FaultKind::SlowBody(Duration::from_millis(1500))
        );
    }
}
