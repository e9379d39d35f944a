//! Fuzzing entry points: one small function per parser that sees outside bytes, each taking
//! `&[u8]`, driving the internal parser and asserting what must hold for every input (not only
//! "does not panic"). The cargo-fuzz targets in `fuzz/` and the corpus replay test
//! (`tests/it/fuzz_corpus.rs`) call exactly these, so a crash found by fuzzing stays a
//! regression test on the stable toolchain.
//!
//! Not an API: hidden from the docs, and free to change with the parsers it drives. An
//! assertion failing here is a bug in the parser, never in the input.

// A fuzz harness reports a broken invariant by panicking; that is this module's whole job.
#![allow(clippy::panic)]

use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method};

use crate::clock;
use crate::config::units;
use crate::file_id::{self, FileId};
use crate::hydration::entry::{Entry, Kind, Location};
use crate::hydration::file::{FileView, Rendition, SourceStatus};
use crate::hydration::policy::{self, EntryKind, Policy};
use crate::hydration::{prime, wire};
use crate::redirect::FrontQuery;
use crate::routes::{classify, Route};
use crate::signing::{SignError, Signer};
use crate::webhooks::{self, verify};

/// A fuzz target's entry point.
pub type Target = fn(&[u8]);

/// Every fuzz target: its name (the `fuzz/fuzz_targets/<name>.rs` file and the corpus
/// directory) and its entry point. The replay test walks exactly this list.
pub const TARGETS: &[(&str, Target)] = &[
    ("file_view", file_view),
    ("ttl_policy", ttl_policy),
    ("entry", entry),
    ("url_expiry", url_expiry),
    ("prime_scan", prime_scan),
    ("signed_url", signed_url),
    ("webhook", webhook),
    ("route", route),
    ("config_units", config_units),
    ("wire", wire),
];

/// A fixed "now" for targets whose inputs carry absolute times (2024-01-01T00:00:00Z), so a
/// corpus seed means the same thing on every run.
const NOW_UNIX: f64 = 1_704_067_200.0;

/// Reads fuzz input as a few leading control values and a rest.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// A duration as the config can produce one: mostly small, sometimes absurdly large.
    fn duration(&mut self) -> Duration {
        match self.u8() % 8 {
            0 => Duration::ZERO,
            1 => Duration::MAX,
            2 => Duration::from_secs(u64::from(self.u32()) << 24),
            3 => Duration::from_millis(u64::from(self.u32())),
            _ => Duration::from_secs(u64::from(self.u32() % 200_000)),
        }
    }
    /// A policy the config accepts (`max_ttl` > 0; everything else any duration).
    fn policy(&mut self) -> Policy {
        Policy {
            margin: self.duration(),
            pending_ttl: self.duration(),
            negative_ttl: self.duration(),
            max_ttl: self.duration().max(Duration::from_millis(1)),
        }
    }
    /// Splits off up to the first `\n` (exclusive), or everything.
    fn line(&mut self) -> &'a [u8] {
        match self.0.iter().position(|b| *b == b'\n') {
            Some(i) => {
                let (head, rest) = self.0.split_at(i);
                self.0 = &rest[1..];
                head
            }
            None => std::mem::take(&mut self.0),
        }
    }
    fn rest(self) -> &'a [u8] {
        self.0
    }
}

fn text(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// Slack for comparing Unix seconds held as f64 (one part in 10^12, at least a millisecond).
fn slack(x: f64) -> f64 {
    (x.abs() * 1e-12).max(1e-3)
}

/// `FileView::parse` (a hydrate/GET body): never panics, normalises what it promises, and
/// agrees with the embedded-object path (`FileView::from_value`).
pub fn file_view(data: &[u8]) {
    let Ok(view) = FileView::parse(data) else {
        return;
    };
    for src in view.sources.iter().chain(view.root_urls.iter()) {
        assert!(src.url.as_deref() != Some(""), "empty url kept");
        if let Some(e) = src.expires_at {
            assert!(e.is_finite() && e > 0.0, "expiresAt {e} kept");
        }
    }
    for root in &view.root_urls {
        assert_eq!(root.status, SourceStatus::Ready);
        assert!(root.url.is_some());
    }
    if let Some(d) = view.duration_seconds {
        assert!(d.is_finite() && d >= 0.0);
    }
    // The same object read as an already-parsed value gives the same view (compared on the
    // re-read value: float parsing may differ by one ulp between the two paths).
    let value: serde_json::Value = match serde_json::from_slice(data) {
        Ok(v) => v,
        Err(_) => return, // e.g. numbers serde_json::Value refuses but the view skips
    };
    let Ok(body) = serde_json::to_vec(&value) else {
        return;
    };
    let reread: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return,
    };
    assert_eq!(FileView::from_value(&reread), FileView::parse(&body));
}

/// The TTL policy: a hydrated file is never fresh past its earliest real expiry minus the
/// margin, never longer than `max_ttl`, and a browser never caches a redirect longer than that.
pub fn ttl_policy(data: &[u8]) {
    let mut c = Cursor(data);
    let p = c.policy();
    let now = NOW_UNIX + f64::from(c.u32() as i32);
    let Ok(view) = FileView::parse(c.rest()) else {
        return;
    };
    let f = policy::freshness(&view, now, &p);
    assert!(f.ttl <= p.max_ttl, "ttl {:?} > max {:?}", f.ttl, p.max_ttl);
    let margin = p.margin.as_secs_f64();
    let signed = Rendition::SIGNED.iter().map(|r| view.source(*r));
    for src in signed.chain(view.root_urls.iter()) {
        let Some(e) = policy::source_expiry(src) else {
            continue;
        };
        if let Some(hard) = f.hard_expiry {
            assert!(hard <= e, "hard expiry {hard} after a source's {e}");
        }
        if !f.ttl.is_zero() {
            let until = now + f.ttl.as_secs_f64();
            assert!(
                until <= e - margin + slack(e),
                "fresh until {until}, past expiry {e} - margin {margin}"
            );
        }
        let left = Duration::from_secs(u64::from(c_left(data)));
        let age = policy::redirect_max_age(src, now, left, &p);
        assert!(age <= left.as_secs());
        assert!(age as f64 <= (e - margin - now).max(0.0) + slack(e));
    }
    if f.kind == EntryKind::NoReadyUrl {
        assert_eq!(f.hard_expiry, None);
        assert!(!view.has_ready_url());
    }
}

/// A redirect-cache budget derived from the input, so `redirect_max_age`'s cap is exercised.
fn c_left(data: &[u8]) -> u32 {
    data.iter()
        .fold(0u32, |a, b| a.rotate_left(5) ^ u32::from(*b))
        % 200_000
}

/// Building a cache entry from a hydrate body: never panics for any body or any policy the
/// config accepts; the entry's fresh life respects `max_ttl` and the URLs' real expiries; every
/// location it hands out is a valid header value with an allowed scheme.
pub fn entry(data: &[u8]) {
    let mut c = Cursor(data);
    let p = c.policy();
    let allow_http = c.u8() & 1 == 1;
    let body = c.rest();
    let now = clock::now();
    let now_unix = clock::unix_at(now);
    let Ok(e) = Entry::hydrated(
        body,
        HeaderValue::from_static("application/json"),
        now,
        &p,
        allow_http,
    ) else {
        assert!(FileView::parse(body).is_err());
        return;
    };
    let Ok(view) = FileView::parse(body) else {
        panic!("an entry was built from a body the view refuses");
    };
    let ttl = e.fresh_until().saturating_duration_since(now);
    assert!(ttl <= p.max_ttl, "fresh for {ttl:?} > max {:?}", p.max_ttl);
    assert!(e.stale_until() >= e.fresh_until());
    if let Some(at) = e.refresh_at() {
        assert!(at <= e.fresh_until());
    }
    let margin = p.margin.as_secs_f64();
    for r in Rendition::ALL {
        let re = e.rendition(r);
        let src = view.source(r);
        assert_eq!(re.status, src.status);
        let real = policy::source_expiry(src);
        if let (Some(kept), Some(real)) = (re.expiry(), real) {
            assert!(kept <= real.max(1.0), "expiry kept late: {kept} > {real}");
        }
        if r != Rendition::Public && !ttl.is_zero() {
            if let Some(real) = real {
                let until = now_unix + ttl.as_secs_f64();
                assert!(until <= real - margin + slack(real) + 1e-2);
            }
        }
        match e.location(r) {
            Location::Ready(v) => {
                assert_eq!(src.status, SourceStatus::Ready);
                // Compared as bytes: a url may carry non-ASCII bytes, which `to_str` refuses.
                let url = v.as_bytes();
                let want = src.url.as_deref().map(str::as_bytes);
                assert_eq!(Some(url), want, "location differs from the url");
                // Schemes are case-insensitive (RFC 3986): `hTtps://` is https.
                let lower = url.to_ascii_lowercase();
                let ok =
                    lower.starts_with(b"https://") || (allow_http && lower.starts_with(b"http://"));
                assert!(ok, "unsafe scheme handed out");
            }
            Location::Unsafe => assert!(src.url.is_some()),
            Location::None => assert!(src.url.is_none() || src.status != SourceStatus::Ready),
        }
    }
    assert!(matches!(e.kind, Kind::File(_)));
    let _ = Entry::negative(body, HeaderValue::from_static("application/json"), now, &p);
}

/// URL-embedded expiry (`X-Amz-Date` + `X-Amz-Expires`, `Expires=`): never NaN, and adding
/// an earlier `Expires=` bound can only bring the result earlier.
pub fn url_expiry(data: &[u8]) {
    let url = text(data);
    let got = policy::url_stated_expiry(&url);
    if let Some(t) = got {
        assert!(!t.is_nan());
    }
    if url.contains('?') && !url.contains('#') {
        let bound = 1_000_000_000u64;
        let more = format!("{url}&Expires={bound}");
        let with = policy::url_stated_expiry(&more);
        let expected = got.map_or(bound as f64, |g| g.min(bound as f64));
        assert_eq!(with, Some(expected), "{more:?}");
    }
}

/// Priming's scan of pass-through and webhook bodies: every file it finds has a valid id, is
/// a JSON object whose `fileId` is that id, and building an entry from it never panics.
pub fn prime_scan(data: &[u8]) {
    let now = clock::now();
    for (id, raw) in prime::embedded_files(data) {
        assert!(file_id_ok(id.as_str()));
        assert_eq!(raw.first(), Some(&b'{'), "a non-object taken for a file");
        // serde_json's raw values skip what `Value` checks (numbers such as 1e400, short
        // `\u` escapes in skipped strings); such a file is refused later by the view.
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(raw) {
            assert_eq!(v.get("fileId").and_then(|f| f.as_str()), Some(id.as_str()));
        }
        let _ = Entry::hydrated(
            raw,
            HeaderValue::from_static("application/json"),
            now,
            &Policy::default(),
            false,
        );
    }
}

/// The contract's id alphabet, written out independently of `FileId::parse`.
fn file_id_ok(s: &str) -> bool {
    (1..=file_id::MAX_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

const SIGNING_KEYS: [&str; 2] = ["fuzz-signing-key-new", "fuzz-signing-key-old"];

/// Signed public URLs. Line 1 is a file id, line 2 a query string as a browser would send it:
/// the query is parsed and verified; whatever verifies must be exactly what the key signed for
/// that id and an `exp` in the future. Then a link is signed for (id, exp from the input),
/// routed and verified back: it must verify, for the same id, until `exp`.
pub fn signed_url(data: &[u8]) {
    let mut c = Cursor(data);
    let id = text(c.line()).into_owned();
    let query = text(c.line()).into_owned();
    let exp_seed = c
        .rest()
        .iter()
        .fold(0u64, |a, b| a.rotate_left(8) ^ u64::from(*b));
    let Some(signer) = Signer::new(SIGNING_KEYS.iter().map(|k| k.to_string()).collect()) else {
        panic!("the fuzz signing keys are refused");
    };
    let old = Signer::new(vec![SIGNING_KEYS[1].to_string()]);
    let now = NOW_UNIX as u64;
    if let Ok(q) = FrontQuery::parse(Some(&query)) {
        let got = signer.verify(&id, q.exp.as_deref(), q.sig.as_deref(), now);
        if matches!(got, Ok(()) | Err(SignError::Expired)) {
            let exp_text = q.exp.as_deref().unwrap_or_default();
            let Ok(exp) = exp_text.parse::<u64>() else {
                panic!("verified an exp that is not a u64: {exp_text:?}");
            };
            assert_eq!(exp.to_string(), exp_text, "non-canonical exp accepted");
            let sig = q.sig.as_deref().unwrap_or_default();
            let by_new = signer.sign(&id, exp) == sig;
            let by_old = old.as_ref().is_some_and(|o| o.sign(&id, exp) == sig);
            assert!(by_new || by_old, "accepted a signature no key made");
            assert_eq!(got.is_ok(), now < exp);
        }
    }
    // Sign, route and verify back.
    let exp = match exp_seed % 3 {
        0 => now + 1 + exp_seed % 1_000_000,
        1 => exp_seed % (now + 1),
        _ => exp_seed,
    };
    let link = signer.redirect_url("https://hydrant.example/", &id, Some("preview"), exp);
    let Some(rest) = link.strip_prefix("https://hydrant.example") else {
        panic!("link lost its base: {link}");
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    match classify(&Method::GET, path) {
        Route::Redirect(fid) => {
            assert!(file_id_ok(&id));
            assert_eq!(fid.as_str(), id);
            let q = match FrontQuery::parse(Some(query)) {
                Ok(q) => q,
                Err(e) => panic!("own link's query refused: {e:?}"),
            };
            assert_eq!(q.rendition, Some(Rendition::Preview));
            let got = signer.verify(fid.as_str(), q.exp.as_deref(), q.sig.as_deref(), now);
            let want = if now < exp {
                Ok(())
            } else {
                Err(SignError::Expired)
            };
            assert_eq!(got, want);
            // The same link for any other id is refused.
            let other = format!("{}x", fid.as_str());
            let forged = signer.verify(&other, q.exp.as_deref(), q.sig.as_deref(), now);
            assert_eq!(forged, Err(SignError::Bad));
        }
        other => assert!(
            !file_id_ok(&id),
            "a link for valid id {id:?} routed as {other:?}"
        ),
    }
}

const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Webhook deliveries. Line 1: control byte (bit 0: sign the delivery correctly), lines 2–4:
/// `webhook-id`, `webhook-timestamp`, `webhook-signature`; the rest is the body. What verifies
/// must carry the id and timestamp that were signed; a verified body is then read as the
/// handler reads it (event name, failure file id, files to prime).
pub fn webhook(data: &[u8]) {
    let mut c = Cursor(data);
    let control = c.line().first().copied().unwrap_or(0);
    let id = c.line();
    let ts = c.line();
    let sig = c.line();
    let body = c.rest();
    let Some(verifier) = verify::WebhookVerifier::new(&[WEBHOOK_SECRET.to_string()]) else {
        panic!("the fuzz webhook secret is refused");
    };
    let now = NOW_UNIX as i64;
    let mut headers = HeaderMap::new();
    let signed = control & 1 == 1;
    let sig_value = if signed {
        // Sign over the timestamp as parsed, so only well-formed timestamps are signable.
        let ts_num = text(ts).trim().parse::<i64>().unwrap_or(now);
        let sig = verify::sign(WEBHOOK_SECRET, &text(id), ts_num, body);
        let ts_text = ts_num.to_string();
        for (name, value) in [("webhook-timestamp", ts_text.as_bytes())] {
            if let Ok(v) = HeaderValue::from_bytes(value) {
                headers.insert(name, v);
            }
        }
        sig.into_bytes()
    } else {
        if let Ok(v) = HeaderValue::from_bytes(ts) {
            headers.insert("webhook-timestamp", v);
        }
        sig.to_vec()
    };
    if let Ok(v) = HeaderValue::from_bytes(id) {
        headers.insert("webhook-id", v);
    }
    if let Ok(v) = HeaderValue::from_bytes(&sig_value) {
        headers.insert("webhook-signature", v);
    }
    let got = verifier.verify(&headers, body, now);
    if let Ok(d) = &got {
        assert_eq!(d.id.as_bytes(), id, "verified a different id");
        let sent = headers.get("webhook-timestamp").map(HeaderValue::as_bytes);
        assert!(sent.is_some());
        assert!((d.timestamp - now).abs() <= verify::TOLERANCE_SECS);
    }
    if signed {
        let ts_ok = headers
            .get("webhook-timestamp")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.parse::<i64>().ok())
            .is_some_and(|t| (i128::from(t) - i128::from(now)).abs() <= 300);
        let id_ok = std::str::from_utf8(id).is_ok_and(|s| !s.is_empty())
            && HeaderValue::from_bytes(id).is_ok();
        if ts_ok && id_ok {
            assert!(
                got.is_ok(),
                "a correctly signed delivery was refused: {got:?}"
            );
        }
    }
    // What the handler reads of a verified body (read here for every body, verified or not).
    if let Some(payload) = webhooks::Payload::parse(body) {
        if let Some(f) = payload.failed_file {
            assert!(file_id_ok(f.as_str()));
        }
        let label = webhooks::event_label(payload.event.as_deref());
        assert!(label == "other" || Some(label) == payload.event.as_deref());
    }
    prime_scan(body);
}

const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", "BREW",
];

/// Route classification and id validation: every route that carries an id carries one valid
/// per the contract, taken verbatim from the path; `FileId::parse` accepts exactly the
/// contract's alphabet and gives the text back unchanged.
pub fn route(data: &[u8]) {
    let mut c = Cursor(data);
    let m = METHODS[usize::from(c.u8()) % METHODS.len()];
    let Ok(method) = Method::from_bytes(m.as_bytes()) else {
        panic!("method {m} refused");
    };
    let path = text(c.rest()).into_owned();
    let route = classify(&method, &path);
    let id = match route {
        Route::Redirect(id)
        | Route::FileJson(id)
        | Route::Hydrate(id)
        | Route::GetFile(id)
        | Route::FileMutation(id)
        | Route::AdminPurge(id) => Some(id),
        _ => None,
    };
    if let Some(id) = id {
        assert!(
            file_id_ok(id.as_str()),
            "routed invalid id {:?}",
            id.as_str()
        );
        assert!(path.contains(&format!("/{}", id.as_str())));
    }
    let _ = route.class();
    let parsed = FileId::parse(&path);
    assert_eq!(parsed.is_some(), file_id_ok(&path));
    if let Some(p) = parsed {
        assert_eq!(p.as_str(), path);
        assert_eq!(p, FileId::parse(p.as_str()).unwrap_or(p));
    }
}

/// Config units: never panics; whatever parses prints back in the parser's own syntax and
/// parses to the same value.
pub fn config_units(data: &[u8]) {
    let s = text(data);
    if let Ok(d) = units::parse_duration(&s) {
        let printed = units::format_duration(d);
        assert_eq!(units::parse_duration(&printed), Ok(d), "{printed}");
    }
    if let Ok(n) = units::parse_size(&s) {
        assert_eq!(units::parse_size(&n.to_string()), Ok(n));
    }
    if let Ok(r) = units::parse_rate(&s) {
        let printed = r.to_string();
        assert_eq!(units::parse_rate(&printed), Ok(r), "{printed}");
    }
    for e in [
        units::parse_duration(&s).err(),
        units::parse_size(&s).err(),
        units::parse_rate(&s).err(),
    ]
    .into_iter()
    .flatten()
    {
        // Errors echo at most 64 characters of the value, each escaped to 10 at most.
        assert!(e.to_string().len() < 64 * 10 + 200);
    }
}

/// The shared tier's value encoding. Bit 0 of the first byte chooses: decode arbitrary bytes
/// (refused or sane, never a panic, every location servable), or build an entry from the rest
/// as a hydrate body, encode it and decode it back: equal in everything the hit path reads.
pub fn wire(data: &[u8]) {
    let mut c = Cursor(data);
    let now = clock::now();
    if c.u8() & 1 == 0 {
        if let Some(d) = wire::decode(c.rest(), now) {
            check_locations(&d);
            assert!(d.created <= now);
            let _ = wire::encode(&d);
        }
        return;
    }
    let p = c.policy();
    let allow_http = c.u8() & 1 == 1;
    let negative = c.u8() & 1 == 1;
    let body = c.rest();
    let ct = HeaderValue::from_static("application/json; charset=utf-8");
    let e = if negative {
        Entry::negative(body, ct, now, &p)
    } else {
        match Entry::hydrated(body, ct, now, &p, allow_http) {
            Ok(e) => e,
            Err(_) => return,
        }
    };
    let bytes = wire::encode(&e);
    let Some(d) = wire::decode(&bytes, now) else {
        panic!("an encoded entry did not decode");
    };
    assert_eq!(d.status, e.status);
    assert_eq!(d.body, e.body);
    assert_eq!(d.kind, e.kind);
    assert_eq!(d.content_type(), e.content_type());
    assert_eq!(d.created, e.created.min(now));
    let close = |a: tokio::time::Instant, b: tokio::time::Instant| {
        let diff = if a > b { a - b } else { b - a };
        diff <= Duration::from_millis(1).max(b.saturating_duration_since(now) / 1_000_000)
    };
    assert!(close(d.fresh_until(), e.fresh_until()));
    assert!(close(d.stale_until(), e.stale_until()));
    assert_eq!(d.refresh_at().is_some(), e.refresh_at().is_some());
    for r in Rendition::ALL {
        assert_eq!(d.rendition(r).status, e.rendition(r).status);
        assert_eq!(d.rendition(r).expiry(), e.rendition(r).expiry());
        assert_eq!(
            format!("{:?}", d.location(r)),
            format!("{:?}", e.location(r))
        );
    }
    check_locations(&d);
}

fn check_locations(e: &Entry) {
    for r in Rendition::ALL {
        if e.rendition(r).has_location() {
            assert!(
                matches!(e.location(r), Location::Ready(_)),
                "a stored location is not servable"
            );
        }
    }
}

/// A `wire` seed in decode mode: the encoding of the entry built from `body` (a hydrate body,
/// or a 404 body when it is not a StorageFile), as the shared tier would store it.
pub fn wire_seed(body: &[u8]) -> Vec<u8> {
    let now = clock::now();
    let ct = HeaderValue::from_static("application/json");
    let e = Entry::hydrated(body, ct.clone(), now, &Policy::default(), false)
        .unwrap_or_else(|_| Entry::negative(body, ct, now, &Policy::default()));
    let mut out = vec![0];
    out.extend(wire::encode(&e));
    out
}
