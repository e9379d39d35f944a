//! Finding hydrated file objects inside other responses, to store them as if hydrated.
//!
//! `GET /v1/files` (`files[]`), `POST /v1/files/search` (`results[].file`), a succeeded
//! `GET /v1/tools/executions/{id}` (`results[].file`) and webhook payloads (`file`,
//! `results[].file`) all carry freshly signed StorageFiles. Each object's exact bytes are
//! located with `RawValue` (no re-serialisation), so a later hydrate hit serves them verbatim.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::file_id::FileId;

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
pub fn embedded_files(body: &[u8]) -> Vec<(FileId, &[u8])> {
    let Ok(env) = serde_json::from_slice::<Envelope>(body) else {
        return Vec::new();
    };
    let mut raws: Vec<&RawValue> = Vec::new();
    raws.extend(env.files.into_iter().flatten());
    raws.extend(env.file);
    for item in env.results.into_iter().flatten() {
        if let Ok(Holder { file: Some(f) }) = serde_json::from_str::<Holder>(item.get()) {
            raws.push(f);
        }
    }
    raws.into_iter()
        .filter_map(|raw| {
            let id = serde_json::from_str::<IdOnly>(raw.get()).ok()?.file_id?;
            Some((FileId::parse(&id)?, raw.get().as_bytes()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
