//! Finding hydrated file objects inside other responses, to store them as if hydrated.
//!
//! `GET /v1/files` (`files[]`), `POST /v1/files/search` (`results[].file`), a succeeded
//! `GET /v1/tools/executions/{id}` (`results[].file`) and webhook payloads (`file`,
//! `results[].file`) all carry freshly signed StorageFiles. Each object's exact bytes are
//! located with `RawValue` (no re-serialisation), so a later hydrate hit serves them verbatim.

use http::{header, Response};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::body::{self, Body, CollectError};
use crate::file_id::FileId;
use crate::hydration::hydrator::Hydrator;
use crate::tenant::Tenant;

/// Largest pass-through body hydrant buffers to look for hydrated files in.
const MAX_PRIMING_BODY: u64 = 1 << 20;

/// Priming a pass-through response: when `resp` is a successful, small JSON response (declared
/// length at most 1 MiB), buffer it, store every hydrated file object it carries for `tenant`,
/// and return it unchanged. Anything else streams through untouched. A body that breaks off
/// while buffered is an error, as it would have been for the client streaming it.
pub(crate) async fn prime_response(
    hydrator: &Hydrator,
    tenant: Tenant,
    resp: Response<Body>,
) -> Result<Response<Body>, CollectError> {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let small = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n <= MAX_PRIMING_BODY);
    if !resp.status().is_success() || !is_json || !small {
        return Ok(resp);
    }
    let (head, body) = resp.into_parts();
    let bytes = body::collect_limited(body, MAX_PRIMING_BODY as usize).await?;
    let mut primed = 0usize;
    for (id, raw) in embedded_files(&bytes) {
        if hydrator.prime(tenant, id, raw) {
            primed += 1;
        }
    }
    if primed > 0 {
        tracing::debug!(primed, "primed cache from pass-through response");
    }
    Ok(Response::from_parts(head, body::full(bytes)))
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    files: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    results: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    file: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Holder<'a> {
    #[serde(borrow, default)]
    file: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct IdOnly<'a> {
    #[serde(rename = "fileId", borrow)]
    file_id: Option<std::borrow::Cow<'a, str>>,
}

/// The file objects (id, raw JSON bytes) embedded in a response or webhook body. Bodies of
/// any other shape yield nothing; nothing here fails loudly, priming is best effort.
pub(crate) fn embedded_files(body: &[u8]) -> Vec<(FileId, &[u8])> {
    // serde's derived structs also read JSON arrays, by position (`[[{..}]]` would be
    // `{"files":[{..}]}`, `["a"]` a file with id "a"): only objects are envelopes and files.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Vec::new();
    }
    let Ok(env) = serde_json::from_slice::<Envelope>(body) else {
        return Vec::new();
    };
    let mut raws: Vec<&RawValue> = Vec::new();
    raws.extend(env.files.into_iter().flatten());
    raws.extend(env.file);
    for item in env.results.into_iter().flatten().filter(|i| is_object(i)) {
        if let Ok(Holder { file: Some(f) }) = serde_json::from_str::<Holder>(item.get()) {
            raws.push(f);
        }
    }
    raws.into_iter()
        .filter(|raw| is_object(raw))
        .filter_map(|raw| {
            let id = serde_json::from_str::<IdOnly>(raw.get()).ok()?.file_id?;
            Some((FileId::parse(&id)?, raw.get().as_bytes()))
        })
        .collect()
}

/// A raw value's text is exactly the value, without surrounding whitespace.
fn is_object(raw: &RawValue) -> bool {
    raw.get().starts_with('{')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arrays are not read as envelopes, holders or files by position (found by fuzzing:
    /// `[[["files"]]]` gave a "file" `["files"]` with id `files`).
    #[test]
    fn only_objects_are_envelopes_and_files() {
        for body in [
            &br#"[[["files"]]]"#[..],
            br#"[[{"fileId":"a","x":1}]]"#,
            br#"{"files":[["a"]]}"#,
            br#"{"results":[[{"fileId":"a"}]]}"#,
            br#"{"file":["a"]}"#,
            br#"{"results":[{"file":["a"]}]}"#,
        ] {
            assert!(
                embedded_files(body).is_empty(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let ok = br#" {"results":[{"file":{"fileId":"a"}}],"files":[{"fileId":"b"}]}"#;
        assert_eq!(embedded_files(ok).len(), 2);
    }

    #[test]
    fn finds_files_in_every_shape() {
        let list = br#"{"files":[{"fileId":"a","x":1},{"fileId":"b"}],"hasMore":false}"#;
        let got: Vec<_> = embedded_files(list)
            .into_iter()
            .map(|(id, raw)| (id.to_string(), raw.to_vec()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".into(), br#"{"fileId":"a","x":1}"#.to_vec()),
                ("b".into(), br#"{"fileId":"b"}"#.to_vec())
            ]
        );
        let search = br#"{"results":[{"similarity":0.9,"file":{"fileId":"c"}}]}"#;
        assert_eq!(embedded_files(search)[0].0.as_str(), "c");
        let exec = br#"{"status":"succeeded","results":[{"fileId":"d","downloadUrl":"u","file":{"fileId":"d"}},{"fileId":"e"}]}"#;
        assert_eq!(embedded_files(exec).len(), 1);
        let hook = br#"{"event":"file.download_ready","fileId":"f","file":{"fileId":"f"}}"#;
        assert_eq!(embedded_files(hook)[0].0.as_str(), "f");
    }

    #[test]
    fn garbage_yields_nothing() {
        for b in [
            &b"nope"[..],
            b"[]",
            b"{\"files\":3}",
            b"{\"files\":[{\"fileId\":\"../x\"}]}",
            b"{\"results\":[1,2]}",
        ] {
            assert!(embedded_files(b).is_empty());
        }
    }
}
