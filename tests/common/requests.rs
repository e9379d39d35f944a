//! Requests several test modules make through a [`Stack`], and simulator faults to set up
//! before them.

use hydrant::sim::{Fault, FaultKind, FaultRoute};

use super::{Resp, Stack, CLIENT_TOKEN};

/// `POST /v1/files/{id}/hydrate` through hydrant with `key`.
pub async fn hydrate(s: &Stack, id: &str, key: &str) -> Resp {
    s.client
        .post(&s.url(&format!("/v1/files/{id}/hydrate")), Some(key), None)
        .await
}

/// The hydrated file `id` as JSON, fetched with [`CLIENT_TOKEN`] (which must answer 200).
pub async fn hydrated(s: &Stack, id: &str) -> serde_json::Value {
    let r = hydrate(s, id, CLIENT_TOKEN).await;
    assert_eq!(r.status, 200);
    r.json()
}

/// `GET /files/{id}/redirect{query}` through hydrant, without credentials.
pub async fn redirect(s: &Stack, id: &str, query: &str) -> Resp {
    s.client
        .get(&s.url(&format!("/files/{id}/redirect{query}")), None)
        .await
}

/// `downloadSource.url` of a hydrate answer.
pub fn download_url(r: &Resp) -> String {
    r.json()["downloadSource"]["url"]
        .as_str()
        .expect("downloadSource.url")
        .to_owned()
}

/// `n` of a redirect's `Cache-Control: private, max-age=n` (panics on any other form).
pub fn max_age(r: &Resp) -> u64 {
    let cc = r.header("cache-control").expect("Cache-Control");
    let n = cc
        .strip_prefix("private, max-age=")
        .unwrap_or_else(|| panic!("unexpected Cache-Control {cc:?}"));
    n.parse().unwrap()
}

/// One fault on the next upstream hydrate.
pub fn fault(kind: FaultKind) -> Fault {
    Fault {
        route: FaultRoute::Hydrate,
        kind,
        count: 1,
    }
}

/// A fault on the next `count` upstream calls of `GET /v1/me`.
pub fn me_fault(kind: FaultKind, count: u32) -> Fault {
    Fault {
        route: FaultRoute::Other("/v1/me".into()),
        kind,
        count,
    }
}
