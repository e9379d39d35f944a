//! The soak driver and oracle (`benches/soak.sh` builds and starts it; see benches/README.md).
//!
//! It drives mixed traffic at one or more hydrant replicas standing in front of `hydrant sim`
//! for a fixed time, with bounded concurrency, while it injects upstream faults through the
//! simulator's control plane (`/_sim/faults`, `/_sim/url-lifetime`) and, in cluster mode,
//! kills, stalls and restarts Redis. Every answer is checked by the oracle ([`Oracle`]):
//!
//! * `expired_url`: no `Location`, hydrate or pass-through body hands out a signed URL whose
//!   real expiry (`X-Amz-Date + X-Amz-Expires`, or `expiresAt`) has passed;
//! * `margin`: a fresh (`HIT`/`MISS`) answer's URLs have at least `--expiry-margin` to live
//!   (less a tolerance), and a redirect's `max-age` never reaches past the URL's expiry;
//! * `cross_tenant`: a tenant never gets a body of another tenant's file (simulator file ids
//!   carry the owner: `vg_file_{account}_{n}`), nor another account's `/v1/me`;
//! * `wrong_file`: the body or `Location` is for the file asked about;
//! * `view_leak`: the JSON view never carries an upstream (expiring) URL;
//! * `error_shape`: every answer `>= 400` is JSON with a string `code`; hydrant's own `429` and
//!   `503` carry `Retry-After`;
//! * `bad_body`: a `200` from hydrant's own routes is valid JSON;
//! * `unexpected_status`: statuses outside the set each route may answer;
//! * `hang`: no request outlives the client deadline (upstream timeout + hydrate max wait +
//!   a margin);
//! * `transport`: hydrant itself never drops or refuses a connection (faults are upstream);
//! * `quota`: upstream hydrates per tenant stay within `rate × elapsed + burst`, for the whole
//!   cluster (the simulator counts them per account); in cluster mode one more `burst` per
//!   Redis restart (a Redis that comes back empty has forgotten the quota bucket) and one
//!   flap still owed at the end (`burst` + one second of `rate`: what the local shares
//!   granted while Redis was away is paid back to the shared quota, later);
//! * `rss_growth`, `fd_growth`, `task_growth`: the processes' RSS, open descriptors and tokio
//!   tasks (`hydrant_runtime_tasks`) are flat between the first and last third of the run.
//!
//! A `hang` or `margin` finding is excused (counted apart, not a violation) only when the
//! driver itself stalled while the request was out ([`stall_monitor`]): on an overloaded
//! machine a timer can fire seconds late. No other check is timing-based.
//!
//! It prints one markdown summary table and exits 1 on any violation.

// A benchmark harness, not a request path: failing loudly on a broken set-up is right.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use parking_lot::Mutex;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};
use tokio::time::Instant;

/// RSS may grow by this much between the medians of the first and last third...
const RSS_GROWTH_MAX_KIB: i64 = 16 * 1024;
/// ...plus this share of the first third's median.
const RSS_GROWTH_MAX_PCT: i64 = 20;
/// Open descriptors may grow by this many between the thirds' medians.
const FD_GROWTH_MAX: i64 = 16;
/// Tokio tasks alive may grow by this many between the thirds' medians...
const TASK_GROWTH_MAX: i64 = 32;
/// ...plus this share of the first third's median.
const TASK_GROWTH_MAX_PCT: i64 = 25;
/// Slack on the expiry-margin check: time between hydrant's decision and our reading.
const MARGIN_TOLERANCE_S: f64 = 1.0;
/// How often the processes are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// How often a fault is queued at the simulator.
const FAULT_EVERY_MS: (u64, u64) = (300, 1200);
/// How often the signed-URL lifetime changes (a rotation of every file's URLs).
const ROTATE_EVERY: Duration = Duration::from_secs(15);
/// The URL lifetimes rotated through (all above the soak's expiry margin).
const LIFETIMES_S: [f64; 4] = [6.0, 15.0, 40.0, 120.0];
/// Seconds between Redis faults in cluster mode.
const REDIS_FAULT_EVERY_S: (u64, u64) = (12, 25);
/// Every violation kind the oracle reports (each printed, zeros included).
const KINDS: [&str; 14] = [
    "expired_url",
    "margin",
    "cross_tenant",
    "wrong_file",
    "view_leak",
    "error_shape",
    "bad_body",
    "unexpected_status",
    "hang",
    "transport",
    "quota",
    "rss_growth",
    "fd_growth",
    "task_growth",
];
/// A driver tick later than this counts as a stall of the driver (see [`Oracle::stalled`]).
const STALL_S: f64 = 0.5;
/// Redis faults stop this long before the end, so what the replicas' local shares granted
/// while Redis was away has been paid back to the shared quota before it is counted.
const REDIS_QUIET: Duration = Duration::from_secs(15);
/// Examples kept per violation kind.
const EXAMPLES: usize = 5;

/// Command-line settings (`--name value` pairs, all set by soak.sh).
#[derive(Clone, Debug)]
struct Cfg {
    mode: String,
    seconds: u64,
    hydrants: Vec<String>,
    pids: Vec<u32>,
    sim: String,
    proxy_key: String,
    client_token: String,
    admin_token: String,
    webhook_secret: String,
    concurrency: usize,
    deadline: Duration,
    margin: f64,
    hydrate_rate: f64,
    hydrate_burst: f64,
    started_unix: f64,
    redis_port: Option<u16>,
    redis_pid: Option<u32>,
    warmup: Duration,
}

fn parse_args() -> Cfg {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut m = BTreeMap::new();
    for pair in args.chunks(2) {
        let k = pair[0].trim_start_matches("--").to_string();
        let v = pair.get(1).cloned().unwrap_or_default();
        m.insert(k, v);
    }
    let get = |k: &str| m.get(k).cloned().unwrap_or_default();
    let num = |k: &str, d: f64| m.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    let list = |k: &str| -> Vec<String> {
        get(k)
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    Cfg {
        mode: get("mode"),
        seconds: num("seconds", 600.0) as u64,
        hydrants: list("hydrants"),
        pids: list("pids").iter().filter_map(|p| p.parse().ok()).collect(),
        sim: get("sim"),
        proxy_key: get("proxy-key"),
        client_token: get("client-token"),
        admin_token: get("admin-token"),
        webhook_secret: get("webhook-secret"),
        concurrency: num("concurrency", 16.0) as usize,
        deadline: Duration::from_secs_f64(num("deadline", 5.0)),
        margin: num("margin", 2.0),
        hydrate_rate: num("hydrate-rate", 1.0),
        hydrate_burst: num("hydrate-burst", 5.0),
        started_unix: num("started-unix", hydrant::clock::now_unix()),
        redis_port: m.get("redis-port").and_then(|v| v.parse().ok()),
        redis_pid: m.get("redis-pid").and_then(|v| v.parse().ok()),
        warmup: Duration::from_secs_f64(num("warmup", 5.0)),
    }
}

/// One simulated account: its key, short name (the owner marker in its file ids) and files.
#[derive(Clone, Debug)]
struct Tenant {
    key: String,
    short: String,
    files: usize,
}

impl Tenant {
    fn file(&self, n: usize) -> String {
        format!("vg_file_{}_{:04}", self.short, n)
    }
}

/// The owner short name encoded in a simulator file id.
fn owner_of(id: &str) -> Option<&str> {
    let rest = id.strip_prefix("vg_file_")?;
    let (short, _) = rest.rsplit_once('_')?;
    Some(short)
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// One answer, read whole (or the reason there is none).
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
    /// When the request was sent: a URL already expired then was handed out expired.
    sent_unix: f64,
    /// When the answer was read whole (freshness margins are measured from here).
    at_unix: f64,
}

/// Counters and findings of the run.
#[derive(Default)]
struct Tally {
    requests: BTreeMap<String, u64>,
    statuses: BTreeMap<String, u64>,
    faults: BTreeMap<String, u64>,
    violations: BTreeMap<String, u64>,
    examples: BTreeMap<String, Vec<String>>,
}

#[derive(Default)]
struct Oracle {
    tally: Mutex<Tally>,
    /// `(from, to)` Unix seconds of the driver's own stalls (a 50 ms tick late by more than
    /// [`STALL_S`]): on a loaded machine a timer can fire seconds late.
    stalls: Mutex<Vec<(f64, f64)>>,
}

impl Oracle {
    fn violation(&self, kind: &str, detail: String) {
        let mut t = self.tally.lock();
        *t.violations.entry(kind.to_string()).or_insert(0) += 1;
        let ex = t.examples.entry(kind.to_string()).or_default();
        if ex.len() < EXAMPLES {
            ex.push(detail);
        }
    }

    /// Whether the driver itself stalled between `from` and `to`: a late answer then may be
    /// the machine's doing, not hydrant's (counted as `excused_*`, not a violation).
    fn stalled(&self, from: f64, to: f64) -> bool {
        self.stalls.lock().iter().any(|(a, b)| *a < to && *b > from)
    }

    /// A violation, unless the driver stalled meanwhile.
    fn timing(&self, kind: &str, from: f64, to: f64, detail: String) {
        if self.stalled(from, to) {
            *self
                .tally
                .lock()
                .faults
                .entry(format!("excused_{kind}_driver_stall"))
                .or_insert(0) += 1;
        } else {
            self.violation(kind, detail);
        }
    }

    fn fault(&self, kind: &str, n: u64) {
        *self
            .tally
            .lock()
            .faults
            .entry(kind.to_string())
            .or_insert(0) += n;
    }

    fn count(&self, op: &str, status: u16) {
        let mut t = self.tally.lock();
        *t.requests.entry(op.to_string()).or_insert(0) += 1;
        let class = format!("{}xx", status / 100);
        *t.statuses.entry(class).or_insert(0) += 1;
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `20250101T000000Z` as Unix seconds.
fn amz_date(s: &str) -> Option<i64> {
    if s.len() != 16 || !s.is_char_boundary(8) {
        return None;
    }
    let n = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let days = days_from_civil(n(0, 4)?, n(4, 6)?, n(6, 8)?);
    Some(days * 86_400 + n(9, 11)? * 3600 + n(11, 13)? * 60 + n(13, 15)?)
}

/// A simulator signed URL's file id, rendition and real expiry (`None` for other URLs).
fn signed_url(url: &str) -> Option<(String, String, f64)> {
    let (_, rest) = url.split_once("/cdn/")?;
    let (path, query) = rest.split_once('?')?;
    let (id, rendition) = path.split_once('/')?;
    let mut date = None;
    let mut expires = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "X-Amz-Date" => date = amz_date(&v),
            "X-Amz-Expires" => expires = v.parse::<i64>().ok(),
            _ => {}
        }
    }
    Some((
        id.to_string(),
        rendition.to_string(),
        (date? + expires?) as f64,
    ))
}

/// Every string in a JSON value, with the key it sits under.
fn strings<'a>(v: &'a Value, key: &'a str, out: &mut Vec<(&'a str, &'a str)>) {
    match v {
        Value::String(s) => out.push((key, s)),
        Value::Array(a) => a.iter().for_each(|x| strings(x, key, out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| strings(x, k, out)),
        _ => {}
    }
}

struct Ctx {
    cfg: Cfg,
    client: HttpClient,
    oracle: Oracle,
    tenants: Vec<Tenant>,
    proxy: Tenant,
    end: Instant,
}

impl Ctx {
    fn hydrant(&self) -> &str {
        self.cfg
            .hydrants
            .choose(&mut rand::thread_rng())
            .map_or("", String::as_str)
    }

    /// One request with the client deadline over head and body; `Err` names the failure.
    async fn send(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Answer, &'static str> {
        let mut b = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, v.as_str());
        }
        let req = b.body(Full::new(body)).map_err(|_| "build")?;
        let sent_unix = hydrant::clock::now_unix();
        let fut = async {
            let resp = self.client.request(req).await.map_err(|_| "transport")?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.map_err(|_| "transport")?.to_bytes();
            Ok::<_, &'static str>(Answer {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
                sent_unix,
                at_unix: hydrant::clock::now_unix(),
            })
        };
        match tokio::time::timeout(self.cfg.deadline, fut).await {
            Ok(r) => r,
            Err(_) => {
                // Give a stall that is still going on the chance to show in the record.
                tokio::time::sleep(Duration::from_millis(100)).await;
                if self.oracle.stalled(sent_unix, hydrant::clock::now_unix()) {
                    Err("excused")
                } else {
                    Err("hang")
                }
            }
        }
    }

    /// Sends a request to hydrant and applies the checks every answer gets.
    async fn call(
        &self,
        op: &str,
        method: http::Method,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Option<Answer> {
        let replica = self.hydrant();
        let url = format!("http://{replica}{path}");
        match self.send(method.clone(), &url, headers, body).await {
            Ok(a) => {
                self.oracle.count(op, a.status);
                self.error_shape(op, path, &a);
                Some(a)
            }
            Err("excused") => {
                self.oracle.count(op, 0);
                self.oracle.fault("excused_hang_driver_stall", 1);
                None
            }
            Err(kind) => {
                self.oracle.count(op, 0);
                self.oracle
                    .violation(kind, format!("{op} {method} {path} on {replica}"));
                None
            }
        }
    }

    fn error_shape(&self, op: &str, path: &str, a: &Answer) {
        if a.status < 400 {
            return;
        }
        let code = serde_json::from_slice::<Value>(&a.body)
            .ok()
            .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_string));
        if code.is_none() {
            self.oracle.violation(
                "error_shape",
                format!(
                    "{op} {path}: {} body {:?}",
                    a.status,
                    String::from_utf8_lossy(&a.body[..a.body.len().min(120)])
                ),
            );
        }
        let own = a
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("hyd-"));
        if own && matches!(a.status, 429 | 503) && !a.headers.contains_key("retry-after") {
            self.oracle.violation(
                "error_shape",
                format!("{op} {path}: hydrant's {} without Retry-After", a.status),
            );
        }
    }

    fn unexpected(&self, op: &str, path: &str, a: &Answer, allowed: &[u16]) -> bool {
        if allowed.contains(&a.status) {
            return false;
        }
        self.oracle.violation(
            "unexpected_status",
            format!(
                "{op} {path}: {} {:?}",
                a.status,
                String::from_utf8_lossy(&a.body[..a.body.len().min(160)])
            ),
        );
        true
    }

    /// Checks a signed URL handed out for `id` to `tenant`.
    fn check_url(&self, ctx: &str, tenant: &str, id: &str, url: &str, fresh: bool, a: &Answer) {
        if url.contains("/cdn/public/") {
            if !url.ends_with(&format!("/cdn/public/{id}")) {
                self.oracle
                    .violation("wrong_file", format!("{ctx}: {id} got {url}"));
            }
            return;
        }
        let Some((uid, _, exp)) = signed_url(url) else {
            return;
        };
        if owner_of(&uid) != Some(tenant) {
            self.oracle.violation(
                "cross_tenant",
                format!("{ctx}: tenant {tenant} got a URL of {uid}"),
            );
        } else if uid != id {
            self.oracle
                .violation("wrong_file", format!("{ctx}: {id} got a URL of {uid}"));
        }
        self.check_expiry(ctx, id, "URL", exp, fresh, a);
    }

    /// An expiry handed out: not reached when the request was sent, and at least the margin
    /// away (less [`MARGIN_TOLERANCE_S`]) when the answer is fresh (`HIT`/`MISS`).
    fn check_expiry(&self, ctx: &str, id: &str, what: &str, exp: f64, fresh: bool, a: &Answer) {
        let cache = cache_of(a).unwrap_or_default();
        if exp <= a.sent_unix {
            self.oracle.violation(
                "expired_url",
                format!(
                    "{ctx}: {id} {what} expired {:.3}s before the request ({cache})",
                    a.sent_unix - exp
                ),
            );
        } else if fresh && exp - a.at_unix < self.cfg.margin - MARGIN_TOLERANCE_S {
            self.oracle.timing(
                "margin",
                a.sent_unix,
                a.at_unix,
                format!(
                    "{ctx}: fresh {id} {what} with {:.3}s to live ({cache})",
                    exp - a.at_unix
                ),
            );
        }
    }

    /// Checks a StorageFile-shaped body (hydrate, GET pass-through, list items).
    fn check_file_body(&self, ctx: &str, tenant: &str, id: Option<&str>, v: &Value, a: &Answer) {
        let fid = v.get("fileId").and_then(Value::as_str).unwrap_or("");
        if owner_of(fid) != Some(tenant) {
            self.oracle.violation(
                "cross_tenant",
                format!("{ctx}: tenant {tenant} got file {fid:?}"),
            );
            return;
        }
        if let Some(id) = id {
            if fid != id {
                self.oracle
                    .violation("wrong_file", format!("{ctx}: asked {id}, got {fid}"));
                return;
            }
        }
        let fresh = matches!(cache_of(a).as_deref(), Some("HIT" | "MISS"));
        let mut all = Vec::new();
        strings(v, "", &mut all);
        for (_, s) in all {
            if s.starts_with("http") {
                self.check_url(ctx, tenant, fid, s, fresh, a);
            }
        }
        for (k, x) in v.as_object().into_iter().flatten() {
            let exp = if k.ends_with("Source") {
                x.get("expiresAt").and_then(Value::as_f64)
            } else if k.ends_with("UrlExpiresAt") {
                x.as_f64()
            } else {
                None
            };
            if let Some(exp) = exp.filter(|e| *e > 0.0) {
                self.check_expiry(ctx, fid, k, exp, fresh, a);
            }
        }
    }
}

fn cache_of(a: &Answer) -> Option<String> {
    a.headers
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn bearer(key: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {key}"))
}

/// A file id of `t`, sometimes one past its files (an upstream 404).
fn pick_file(t: &Tenant, rng: &mut impl Rng) -> String {
    if rng.gen_ratio(1, 20) {
        t.file(t.files + 1 + rng.gen_range(0..3))
    } else {
        t.file(rng.gen_range(1..=t.files.max(1)))
    }
}

const RENDITIONS: [&str; 5] = ["download", "preview", "thumbnail", "hls", "public"];

async fn op_redirect(c: &Ctx) {
    let (id, foreign) = {
        let mut rng = rand::thread_rng();
        // Sometimes another account's file: the proxy key does not own it (must be 404).
        match c.tenants.iter().find(|t| t.short != c.proxy.short) {
            Some(other) if rng.gen_ratio(1, 10) => (pick_file(other, &mut rng), true),
            _ => (pick_file(&c.proxy, &mut rng), false),
        }
    };
    let rendition = *RENDITIONS.choose(&mut rand::thread_rng()).unwrap();
    let path = format!("/files/{id}/redirect?rendition={rendition}");
    let Some(a) = c
        .call("redirect", http::Method::GET, &path, &[], Bytes::new())
        .await
    else {
        return;
    };
    if c.unexpected("redirect", &path, &a, &[302, 404, 429, 502, 503, 504]) {
        return;
    }
    if a.status != 302 {
        return;
    }
    if foreign {
        c.oracle.violation(
            "cross_tenant",
            format!("redirect {path}: another account's file answered 302"),
        );
        return;
    }
    let loc = a
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let stale = cache_of(&a).as_deref() == Some("STALE");
    c.check_url("redirect", &c.proxy.short, &id, loc, !stale, &a);
    if let Some((_, r, exp)) = signed_url(loc) {
        if r != rendition {
            c.oracle.violation(
                "wrong_file",
                format!("redirect {path}: rendition {r} answered"),
            );
        }
        let max_age = a
            .headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split("max-age=").nth(1))
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        // max-age=0 (stale answers) lets no cache keep the URL at all.
        if max_age > 0.0 && a.at_unix + max_age > exp - c.cfg.margin + MARGIN_TOLERANCE_S {
            c.oracle.timing(
                "margin",
                a.sent_unix,
                a.at_unix,
                format!(
                    "redirect {path}: max-age {max_age} reaches {:.2}s past expiry-margin",
                    a.at_unix + max_age - (exp - c.cfg.margin)
                ),
            );
        }
    }
}

async fn op_view(c: &Ctx) {
    let id = pick_file(&c.proxy, &mut rand::thread_rng());
    let path = format!("/files/{id}");
    let Some(a) = c
        .call("json_view", http::Method::GET, &path, &[], Bytes::new())
        .await
    else {
        return;
    };
    if c.unexpected("json_view", &path, &a, &[200, 404, 429, 502, 503, 504]) || a.status != 200 {
        return;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&a.body) else {
        c.oracle
            .violation("bad_body", format!("json_view {path}: not JSON"));
        return;
    };
    if v.get("fileId").and_then(Value::as_str) != Some(id.as_str()) {
        c.oracle.violation(
            "wrong_file",
            format!("json_view {path}: {:?}", v.get("fileId")),
        );
    }
    let mut all = Vec::new();
    strings(&v, "", &mut all);
    for (_, s) in all {
        if s.contains("/cdn/") || s.contains("X-Amz-") {
            c.oracle.violation(
                "view_leak",
                format!("json_view {path}: upstream URL in view"),
            );
        } else if s.starts_with("http") && !s.contains(&format!("/files/{id}/redirect")) {
            c.oracle
                .violation("wrong_file", format!("json_view {path}: url {s}"));
        }
    }
}

/// A tenant and the auth header it calls with (the proxy's tenant sometimes by client token).
fn pick_tenant<'a>(c: &'a Ctx, rng: &mut impl Rng) -> (&'a Tenant, (&'static str, String)) {
    let t = c.tenants.choose(rng).unwrap();
    if t.short == c.proxy.short && !c.cfg.client_token.is_empty() && rng.gen_bool(0.5) {
        (t, bearer(&c.cfg.client_token))
    } else {
        (t, bearer(&t.key))
    }
}

async fn op_hydrate(c: &Ctx, get: bool) {
    let (t, auth, id, foreign) = {
        let mut rng = rand::thread_rng();
        let (t, auth) = pick_tenant(c, &mut rng);
        let other = c
            .tenants
            .iter()
            .filter(|o| o.short != t.short)
            .choose_one(&mut rng);
        match other {
            Some(o) if rng.gen_ratio(1, 10) => (t, auth, pick_file(o, &mut rng), true),
            _ => (t, auth, pick_file(t, &mut rng), false),
        }
    };
    let (op, method, path) = if get {
        ("get_file", http::Method::GET, format!("/v1/files/{id}"))
    } else {
        (
            "hydrate",
            http::Method::POST,
            format!("/v1/files/{id}/hydrate"),
        )
    };
    let Some(a) = c.call(op, method, &path, &[auth], Bytes::new()).await else {
        return;
    };
    if c.unexpected(op, &path, &a, &[200, 404, 429, 500, 502, 503, 504]) || a.status != 200 {
        return;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&a.body) else {
        // The simulator's malformed fault passes through a GET unchanged; hydrate never.
        if !(get && a.body.starts_with(b"{\"fileId\": \"vg_file_\"")) {
            c.oracle
                .violation("bad_body", format!("{op} {path}: 200 that is not JSON"));
        }
        return;
    };
    if foreign {
        c.oracle.violation(
            "cross_tenant",
            format!("{op} {path}: tenant {} got another account's file", t.short),
        );
        return;
    }
    c.check_file_body(&format!("{op} {path}"), &t.short, Some(&id), &v, &a);
}

async fn op_list(c: &Ctx) {
    let (t, auth, which) = {
        let mut rng = rand::thread_rng();
        let (t, auth) = pick_tenant(c, &mut rng);
        (t, auth, rng.gen_range(0..5))
    };
    let (op, method, path, body) = match which {
        0 => ("me", http::Method::GET, "/v1/me".to_string(), Bytes::new()),
        1 => (
            "search",
            http::Method::POST,
            "/v1/files/search".into(),
            Bytes::from(json!({"query": "a", "limit": 10}).to_string()),
        ),
        2 => (
            "passthrough_other",
            http::Method::GET,
            "/v1/tools/executions?limit=5".into(),
            Bytes::new(),
        ),
        _ => (
            "list",
            http::Method::GET,
            "/v1/files?limit=10".into(),
            Bytes::new(),
        ),
    };
    let headers = [auth, ("content-type", "application/json".to_string())];
    let Some(a) = c.call(op, method, &path, &headers, body).await else {
        return;
    };
    if c.unexpected(op, &path, &a, &[200, 429, 500, 502, 503, 504]) || a.status != 200 {
        return;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&a.body) else {
        return; // a malformed upstream body passes through unchanged
    };
    if op == "me" {
        let acct = v.get("accountId").and_then(Value::as_str).unwrap_or("");
        if acct != format!("vg_acct_{}", t.short) {
            c.oracle.violation(
                "cross_tenant",
                format!("me: tenant {} got account {acct}", t.short),
            );
        }
        return;
    }
    let items = v
        .get("data")
        .or_else(|| v.get("files"))
        .or_else(|| v.get("items"))
        .and_then(Value::as_array);
    for item in items.into_iter().flatten() {
        if item.get("fileId").is_some() {
            c.check_file_body(&format!("{op} {path}"), &t.short, None, item, &a);
        }
    }
}

async fn op_purge(c: &Ctx) {
    let id = pick_file(&c.proxy, &mut rand::thread_rng());
    let path = format!("/admin/files/{id}");
    let headers = [bearer(&c.cfg.admin_token)];
    let Some(a) = c
        .call(
            "admin_purge",
            http::Method::DELETE,
            &path,
            &headers,
            Bytes::new(),
        )
        .await
    else {
        return;
    };
    c.unexpected("admin_purge", &path, &a, &[200]);
}

fn sign_webhook(secret: &str, id: &str, ts: i64, body: &[u8]) -> String {
    let raw = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .unwrap_or_else(|_| raw.as_bytes().to_vec());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("v1,{sig}")
}

async fn op_webhook(c: &Ctx) {
    let (kind, id, n) = {
        let mut rng = rand::thread_rng();
        (
            rng.gen_range(0..10),
            c.proxy.file(rng.gen_range(1..=c.proxy.files.max(1))),
            rng.gen::<u64>(),
        )
    };
    if kind < 6 {
        // The simulator signs and delivers a file event with a freshly hydrated file: the
        // webhook rotates that file's URLs in hydrant's cache.
        let event = match kind {
            0 => "file.upload.failed",
            1 | 2 => "file.download_ready",
            _ => "file.playback_ready",
        };
        let target = format!("http://{}/webhooks/videogen", c.hydrant());
        let body = json!({"url": target, "event": event, "fileId": id, "apiKey": c.proxy.key,
                          "maxAttempts": 1});
        let url = format!("http://{}/_sim/webhooks", c.cfg.sim);
        let r = c
            .send(
                http::Method::POST,
                &url,
                &[("content-type", "application/json".into())],
                Bytes::from(body.to_string()),
            )
            .await;
        let Ok(a) = r else {
            c.oracle.count("webhook_sim", 0);
            if r.err() != Some("excused") {
                c.oracle
                    .violation("hang", format!("webhook via sim {event} {id}"));
            }
            return;
        };
        c.oracle.count("webhook_sim", a.status);
        let v: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
        let last = v.get("lastStatus").and_then(Value::as_u64).unwrap_or(0);
        if a.status != 200 || !matches!(last, 200 | 503) {
            c.oracle.violation(
                "unexpected_status",
                format!("webhook via sim {event} {id}: {} {v}", a.status),
            );
        }
        return;
    }
    // Deliveries signed here: an event hydrant only acknowledges, sent twice (the second is
    // a duplicate), and one with a bad signature (401 with a JSON code).
    let wid = format!("msg_soak_{n:016x}");
    let ts = hydrant::clock::now_unix() as i64;
    let body = json!({"event": "tool_execution.failed", "executionId": format!("vg_exec_{n:x}"),
                      "occurredAt": "2025-01-01T00:00:00.000Z"})
    .to_string();
    let good = sign_webhook(&c.cfg.webhook_secret, &wid, ts, body.as_bytes());
    let bad = kind == 9;
    let sig = if bad { "v1,AAAA".to_string() } else { good };
    let headers = [
        ("content-type", "application/json".to_string()),
        ("webhook-id", wid.clone()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", sig),
    ];
    let sends = if bad { 1 } else { 2 };
    for _ in 0..sends {
        let Some(a) = c
            .call(
                "webhook_signed",
                http::Method::POST,
                "/webhooks/videogen",
                &headers,
                Bytes::from(body.clone()),
            )
            .await
        else {
            return;
        };
        let want: &[u16] = if bad { &[401] } else { &[200, 503] };
        c.unexpected("webhook_signed", "/webhooks/videogen", &a, want);
    }
}

/// `.choose()` over an iterator without collecting at the call site.
trait ChooseOne<'a, T> {
    fn choose_one(self, rng: &mut impl Rng) -> Option<&'a T>;
}

impl<'a, T: 'a, I: Iterator<Item = &'a T>> ChooseOne<'a, T> for I {
    fn choose_one(self, rng: &mut impl Rng) -> Option<&'a T> {
        let v: Vec<&T> = self.collect();
        v.choose(rng).copied()
    }
}

async fn worker(c: Arc<Ctx>) {
    while Instant::now() < c.end {
        let roll = rand::thread_rng().gen_range(0..100);
        match roll {
            0..=29 => op_redirect(&c).await,
            30..=39 => op_view(&c).await,
            40..=64 => op_hydrate(&c, false).await,
            65..=74 => op_hydrate(&c, true).await,
            75..=86 => op_list(&c).await,
            87..=95 => op_webhook(&c).await,
            _ => op_purge(&c).await,
        }
    }
}

/// Records the driver's own stalls: a 50 ms tick that comes more than [`STALL_S`] late.
async fn stall_monitor(c: Arc<Ctx>) {
    let tick = Duration::from_millis(50);
    while Instant::now() < c.end {
        let before = hydrant::clock::now_unix();
        tokio::time::sleep(tick).await;
        let after = hydrant::clock::now_unix();
        if after - before - tick.as_secs_f64() > STALL_S {
            c.oracle.stalls.lock().push((before, after));
        }
    }
}

async fn sim_post(c: &Ctx, path: &str, body: Value) -> bool {
    let url = format!("http://{}{}", c.cfg.sim, path);
    c.send(
        http::Method::POST,
        &url,
        &[("content-type", "application/json".into())],
        Bytes::from(body.to_string()),
    )
    .await
    .is_ok_and(|a| a.status < 300)
}

/// Queues one random upstream fault; returns its kind and how many requests it covers.
fn random_fault(rng: &mut impl Rng) -> (&'static str, Value, u64) {
    let route = *["any", "hydrate", "hydrate", "get_file", "/v1/files"]
        .choose(rng)
        .unwrap();
    let count: u64 = rng.gen_range(1..=4);
    match rng.gen_range(0..9) {
        0 => (
            "latency_spike",
            json!({"route": route, "kind": "latency", "ms": rng.gen_range(200..3000), "count": count}),
            count,
        ),
        1 => (
            "status_500",
            json!({"route": route, "kind": "status", "status": *[500u16, 502, 503].choose(rng).unwrap(), "count": count}),
            count,
        ),
        2 => (
            "dropped_connection",
            json!({"route": route, "kind": "drop", "count": count}),
            count,
        ),
        3 => (
            "429_retry_after",
            json!({"route": route, "kind": "rate_limited", "retryAfter": rng.gen_range(1..=2), "count": count}),
            count,
        ),
        // Without Retry-After, hydrant pauses until the simulator's hourly X-RateLimit-Reset:
        // aimed at pass-through routes so the run keeps hydrating (hydrant honours both).
        4 => (
            "429_no_retry_after",
            json!({"route": *["get_file", "/v1/me", "/v1/files/search"].choose(rng).unwrap(),
                   "kind": "rate_limited", "count": count}),
            count,
        ),
        5 => (
            "malformed_body",
            json!({"route": route, "kind": "malformed", "count": count}),
            count,
        ),
        6 => (
            "slow_body",
            json!({"route": route, "kind": "slow_body", "ms": rng.gen_range(500..3000), "count": count}),
            count,
        ),
        7 => (
            "hang",
            json!({"route": route, "kind": "hang", "count": 1}),
            1,
        ),
        _ => (
            "insufficient_credits",
            json!({"route": "hydrate", "kind": "insufficient_credits", "count": 1}),
            1,
        ),
    }
}

async fn faulter(c: Arc<Ctx>) {
    let mut next_rotate = Instant::now() + ROTATE_EVERY;
    // Faults stop a few seconds before the end so the last answers are checked calmly.
    let stop = c.end - Duration::from_secs(3);
    while Instant::now() < stop {
        let (gap, (kind, body, n)) = {
            let mut rng = rand::thread_rng();
            (
                rng.gen_range(FAULT_EVERY_MS.0..FAULT_EVERY_MS.1),
                random_fault(&mut rng),
            )
        };
        tokio::time::sleep(Duration::from_millis(gap)).await;
        if sim_post(&c, "/_sim/faults", body).await {
            c.oracle.fault(kind, n);
        }
        if Instant::now() >= next_rotate {
            next_rotate += ROTATE_EVERY;
            let secs = *LIFETIMES_S.choose(&mut rand::thread_rng()).unwrap();
            if sim_post(&c, "/_sim/url-lifetime", json!({"seconds": secs})).await {
                c.oracle.fault("url_rotation", 1);
            }
        }
    }
    let url = format!("http://{}/_sim/faults", c.cfg.sim);
    let _ = c.send(http::Method::DELETE, &url, &[], Bytes::new()).await;
}

/// Signals a process through the shell's `kill` builtin (no procps needed).
fn kill(sig: &str, pid: u32) {
    if pid == 0 {
        return;
    }
    let _ = std::process::Command::new("sh")
        .args(["-c", &format!("kill -{sig} {pid}")])
        .stderr(std::process::Stdio::null())
        .status();
}

fn redis_cli(port: u16, args: &[&str]) {
    let _ = std::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

fn start_redis(port: u16) -> Option<std::process::Child> {
    std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()
}

/// Waits for a Redis this driver started to exit, off the runtime's workers.
async fn reap(child: Option<std::process::Child>) {
    if let Some(mut ch) = child {
        let _ = tokio::task::spawn_blocking(move || ch.wait()).await;
    }
}

/// Cluster mode: kills (and restarts), stalls and pauses Redis, at random intervals.
async fn redis_chaos(c: Arc<Ctx>) -> Option<std::process::Child> {
    let port = c.cfg.redis_port?;
    let mut pid = c.cfg.redis_pid?;
    let mut child: Option<std::process::Child> = None;
    let stop = c.end - REDIS_QUIET;
    let mut first = true;
    loop {
        let (gap, what, hold) = {
            let mut rng = rand::thread_rng();
            // The first fault comes early, so even a short run meets one.
            let every = if first { (4, 8) } else { REDIS_FAULT_EVERY_S };
            first = false;
            (
                rng.gen_range(every.0..every.1),
                rng.gen_range(0..4),
                rng.gen_range(500..3000u64),
            )
        };
        tokio::time::sleep_until((Instant::now() + Duration::from_secs(gap)).min(stop)).await;
        if Instant::now() >= stop {
            break;
        }
        match what {
            0 => {
                kill("KILL", pid);
                reap(child.take()).await;
                tokio::time::sleep(Duration::from_millis(hold)).await;
                child = start_redis(port);
                pid = child.as_ref().map_or(0, std::process::Child::id);
                c.oracle.fault("redis_kill_restart", 1);
            }
            1 => {
                kill("STOP", pid);
                tokio::time::sleep(Duration::from_millis(hold)).await;
                kill("CONT", pid);
                c.oracle.fault("redis_sigstop", 1);
            }
            2 => {
                let ms = hold.to_string();
                redis_cli(port, &["CLIENT", "PAUSE", &ms, "ALL"]);
                c.oracle.fault("redis_client_pause", 1);
            }
            _ => {
                kill("TERM", pid);
                reap(child.take()).await;
                // Until the old one has let the port go (a bounded wait).
                for _ in 0..50 {
                    if tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                child = start_redis(port);
                pid = child.as_ref().map_or(0, std::process::Child::id);
                c.oracle.fault("redis_restart", 1);
            }
        }
    }
    child
}

/// One process sample: seconds since start, RSS KiB, open fds, tokio tasks.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    rss_kib: i64,
    fds: i64,
    tasks: i64,
}

fn rss_kib(pid: u32) -> i64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn fds(pid: u32) -> i64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as i64)
}

async fn tasks(c: &Ctx, hydrant: &str) -> i64 {
    let url = format!("http://{hydrant}/metrics");
    let Ok(a) = c.send(http::Method::GET, &url, &[], Bytes::new()).await else {
        return -1;
    };
    String::from_utf8_lossy(&a.body)
        .lines()
        .find(|l| l.starts_with("hydrant_runtime_tasks "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1)
}

async fn sampler(c: Arc<Ctx>) -> Vec<Vec<Sample>> {
    let mut series = vec![Vec::new(); c.cfg.pids.len()];
    tokio::time::sleep(c.cfg.warmup).await;
    while Instant::now() < c.end {
        for (i, pid) in c.cfg.pids.iter().enumerate() {
            let hydrant = c.cfg.hydrants.get(i).map_or("", String::as_str);
            let s = Sample {
                rss_kib: rss_kib(*pid),
                fds: fds(*pid),
                tasks: tasks(&c, hydrant).await,
            };
            series[i].push(s);
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    series
}

fn median(mut v: Vec<i64>) -> i64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// The medians of the first and last third of one measure.
fn thirds(s: &[Sample], f: fn(&Sample) -> i64) -> (i64, i64) {
    let n = s.len() / 3;
    if n == 0 {
        return (0, 0);
    }
    let first = median(s[..n].iter().map(f).collect());
    let last = median(s[s.len() - n..].iter().map(f).collect());
    (first, last)
}

async fn sim_stats(c: &Ctx) -> Value {
    let url = format!("http://{}/_sim/stats", c.cfg.sim);
    match c.send(http::Method::GET, &url, &[], Bytes::new()).await {
        Ok(a) => serde_json::from_slice(&a.body).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

async fn load_tenants(client: &HttpClient, sim: &str) -> Vec<Tenant> {
    let req = http::Request::get(format!("http://{sim}/_sim/accounts"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = client.request(req).await.expect("simulator accounts");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).expect("accounts JSON");
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let key = a.get("apiKey")?.as_str()?.to_string();
            let short = key.strip_prefix("vg_sim_key_")?.to_string();
            let files = usize::try_from(a.get("files")?.as_u64()?).ok()?;
            Some(Tenant { key, short, files })
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let cfg = parse_args();
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(http);
    let tenants = load_tenants(&client, &cfg.sim).await;
    let proxy = tenants
        .iter()
        .find(|t| t.key == cfg.proxy_key)
        .cloned()
        .expect("the proxy key is a simulator account");
    let started = Instant::now();
    let ctx = Arc::new(Ctx {
        end: started + Duration::from_secs(cfg.seconds),
        cfg,
        client,
        oracle: Oracle::default(),
        tenants,
        proxy,
    });
    let monitor = tokio::spawn(stall_monitor(ctx.clone()));
    let sampler = tokio::spawn(sampler(ctx.clone()));
    let faults = tokio::spawn(faulter(ctx.clone()));
    let chaos = tokio::spawn(redis_chaos(ctx.clone()));
    let workers: Vec<_> = (0..ctx.cfg.concurrency)
        .map(|_| tokio::spawn(worker(ctx.clone())))
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let _ = faults.await;
    let _ = monitor.await;
    let redis_child = chaos.await.ok().flatten();
    let series = sampler.await.unwrap_or_default();
    let elapsed_unix = hydrant::clock::now_unix() - ctx.cfg.started_unix;

    // Quota: upstream hydrates per account within rate × elapsed + burst, cluster-wide.
    let stats = sim_stats(&ctx).await;
    let mut quota_rows = Vec::new();
    // A Redis that restarts empty has forgotten the quota bucket: each such restart may
    // grant one more burst (a documented limit of cluster mode).
    let losses = {
        let t = ctx.oracle.tally.lock();
        ["redis_kill_restart", "redis_restart"]
            .iter()
            .filter_map(|k| t.faults.get(*k))
            .sum::<u64>()
    };
    // In cluster mode the replicas may still owe, at the end, what their local shares granted
    // while Redis was unavailable: paid back from the shared quota later, so at the end at
    // most one flap's worth is outstanding (the shares' bursts, one burst, plus a second of
    // rate until the probe sees Redis again; Redis faults stop REDIS_QUIET before the end).
    let owed = if ctx.cfg.redis_port.is_some() {
        ctx.cfg.hydrate_burst + ctx.cfg.hydrate_rate
    } else {
        0.0
    };
    let allowed =
        ctx.cfg.hydrate_rate * elapsed_unix + ctx.cfg.hydrate_burst * (1 + losses) as f64 + owed;
    for t in &ctx.tenants {
        let used = stats
            .get("hydrateByAccount")
            .and_then(|m| m.get(&t.short))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if used as f64 > allowed {
            ctx.oracle.violation(
                "quota",
                format!(
                    "{}: {used} upstream hydrates > {allowed:.0} allowed",
                    t.short
                ),
            );
        }
        quota_rows.push((t.short.clone(), used));
    }

    // Flatness of RSS, fds and tasks between the first and last third.
    let mut proc_rows = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let (r0, r1) = thirds(s, |x| x.rss_kib);
        let (f0, f1) = thirds(s, |x| x.fds);
        let (t0, t1) = thirds(s, |x| x.tasks);
        if r1 - r0 > RSS_GROWTH_MAX_KIB + r0 * RSS_GROWTH_MAX_PCT / 100 {
            ctx.oracle
                .violation("rss_growth", format!("replica {i}: {r0} -> {r1} KiB"));
        }
        if f1 - f0 > FD_GROWTH_MAX {
            ctx.oracle
                .violation("fd_growth", format!("replica {i}: {f0} -> {f1} fds"));
        }
        if t1 - t0 > TASK_GROWTH_MAX + t0 * TASK_GROWTH_MAX_PCT / 100 {
            ctx.oracle
                .violation("task_growth", format!("replica {i}: {t0} -> {t1} tasks"));
        }
        proc_rows.push((i, s.len(), (r0, r1), (f0, f1), (t0, t1)));
    }

    // For the diagnosis of a failure: what the replicas say about their limiter and Redis.
    for h in &ctx.cfg.hydrants {
        let url = format!("http://{h}/metrics");
        if let Ok(a) = ctx.send(http::Method::GET, &url, &[], Bytes::new()).await {
            for l in String::from_utf8_lossy(&a.body).lines() {
                if l.starts_with("hydrant_ratelimit_total")
                    || l.starts_with("hydrant_redis_commands_total")
                    || l.starts_with("hydrant_upstream_requests_total{route=\"hydrate\"")
                {
                    eprintln!("{h} {l}");
                }
            }
        }
    }

    if let Some(mut ch) = redis_child {
        // The script stops the Redis it started; one restarted here is stopped here.
        let _ = ch.kill();
        let _ = ch.wait();
    }

    let t = ctx.oracle.tally.lock();
    let total: u64 = t.requests.values().sum();
    let violations: u64 = t.violations.values().sum();
    println!();
    println!(
        "### Soak: {} ({} replica{}), {} s, concurrency {}",
        ctx.cfg.mode,
        ctx.cfg.hydrants.len(),
        if ctx.cfg.hydrants.len() == 1 { "" } else { "s" },
        ctx.cfg.seconds,
        ctx.cfg.concurrency
    );
    println!();
    println!("| section | item | value |");
    println!("|---|---|---|");
    println!("| requests | total | {total} |");
    for (k, v) in &t.requests {
        println!("| requests | {k} | {v} |");
    }
    for (k, v) in &t.statuses {
        println!("| answers | {k} | {v} |");
    }
    for (k, v) in t.faults.iter().filter(|(k, _)| !k.starts_with("excused_")) {
        println!("| faults injected | {k} | {v} |");
    }
    let stalls = ctx.oracle.stalls.lock();
    let worst = stalls.iter().map(|(a, b)| b - a).fold(0.0, f64::max);
    println!(
        "| driver stalls | > {STALL_S} s (machine load) | {} (longest {worst:.1} s) |",
        stalls.len()
    );
    for (k, v) in t.faults.iter().filter(|(k, _)| k.starts_with("excused_")) {
        println!("| excused (driver stalled meanwhile) | {k} | {v} |");
    }
    for (short, used) in &quota_rows {
        println!(
            "| upstream hydrates | {short} | {used} (allowed {allowed:.0} = {}/s × {elapsed_unix:.0} s + {} × (1 + {losses} Redis restarts) + {owed} still owed) |",
            ctx.cfg.hydrate_rate, ctx.cfg.hydrate_burst
        );
    }
    for (i, n, r, f, k) in &proc_rows {
        println!(
            "| process | replica {i} ({n} samples, first→last third) | RSS {}→{} MiB, fds {}→{}, tasks {}→{} |",
            r.0 / 1024,
            r.1 / 1024,
            f.0,
            f.1,
            k.0,
            k.1
        );
    }
    for kind in KINDS {
        println!(
            "| violations | {kind} | {} |",
            t.violations.get(kind).copied().unwrap_or(0)
        );
    }
    for (k, v) in &t.violations {
        if !KINDS.contains(&k.as_str()) {
            println!("| violations | {k} | {v} |");
        }
    }
    println!(
        "| result | | {} |",
        if violations == 0 { "PASS" } else { "FAIL" }
    );
    for (k, ex) in &t.examples {
        for e in ex {
            eprintln!("violation {k}: {e}");
        }
    }
    if violations > 0 {
        std::process::exit(1);
    }
}
