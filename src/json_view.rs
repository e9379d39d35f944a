//! Rendered JSON views of `GET /files/{id}`, kept per cache entry so a repeat request parses
//! nothing.
//!
//! The view is built from the stored upstream body (names and dimensions are not kept in
//! the entry, which stays small). Rendering it parsed that body on every request: ≈ 95,000
//! instructions, ten times a hydrate hit (benches/README.md, "Cost per request"). Here the
//! first request for an entry renders it once; later ones copy nothing either when signing
//! is off (the view is one `Bytes`), or copy the view once to put the request's own
//! `&exp=…&sig=…` after each rendition URL when it is on.
//!
//! A view belongs to one entry: it holds a `Weak` to it and is used only while that is the
//! entry the lookup found (a refreshed or re-primed file gets a new entry, so a new view).
//! The `Weak` keeps the entry's allocation (not its body) from being reused by another entry
//! while the view lives, so the pointer comparison cannot mistake one for another.
//! The views are bounded by bytes ([`MAX_BYTES`]) and idle time ([`IDLE`]) in their own moka
//! cache, so they cost nothing for files no frontend asks about.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::hydration::entry::Entry;
use crate::hydration::store::Key;

/// The most bytes of rendered views kept.
pub const MAX_BYTES: u64 = 16 << 20;
/// A view nobody asked for in this long is dropped (the view's own `max-age` is at most
/// 300 s, so a frontend that polls asks again within it).
pub const IDLE: Duration = Duration::from_secs(600);

/// One entry's rendered view: the JSON split at each point a signed request's
/// `&exp=…&sig=…` goes (the end of each rendition URL).
#[derive(Debug)]
pub struct Rendered {
    of: Weak<Entry>,
    json: Bytes,
    /// Offsets in `json`, ascending: the closing quote of each rendition URL.
    cuts: Vec<usize>,
}

impl Rendered {
    /// Find in `json` the closing quote of each of `urls` where it is the value of a `"url"`
    /// key. An unescaped `"url":"` can only be a key the renderer wrote (inside a JSON string
    /// every `"` is escaped), so nothing from the upstream body can move a cut.
    pub fn new(entry: &Arc<Entry>, json: String, urls: &[String]) -> Rendered {
        let json = Bytes::from(json);
        let mut cuts: Vec<usize> = urls
            .iter()
            .filter_map(|url| {
                let needle = format!("\"url\":{}", serde_json::to_string(url).ok()?);
                let at = memchr::memmem::find(&json, needle.as_bytes())?;
                Some(at + needle.len() - 1)
            })
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        Rendered {
            of: Arc::downgrade(entry),
            json,
            cuts,
        }
    }

    /// Whether this view was rendered from `entry`.
    fn is_of(&self, entry: &Arc<Entry>) -> bool {
        std::ptr::eq(self.of.as_ptr(), Arc::as_ptr(entry))
    }

    /// The view's bytes with `signed` after each rendition URL: the stored bytes themselves
    /// (a refcount, no copy) when `signed` is empty.
    pub fn body(&self, signed: &str) -> Bytes {
        if signed.is_empty() || self.cuts.is_empty() {
            return self.json.clone();
        }
        let mut out = BytesMut::with_capacity(self.json.len() + signed.len() * self.cuts.len());
        let mut start = 0;
        for &cut in &self.cuts {
            out.put_slice(self.json.get(start..cut).unwrap_or_default());
            out.put_slice(signed.as_bytes());
            start = cut;
        }
        out.put_slice(self.json.get(start..).unwrap_or_default());
        out.freeze()
    }

    fn weight(&self) -> u32 {
        u32::try_from(self.json.len() + 96 + 8 * self.cuts.len()).unwrap_or(u32::MAX)
    }
}

/// The cache of rendered views, by file key.
#[derive(Clone)]
pub struct Views {
    cache: moka::sync::Cache<Key, Arc<Rendered>>,
}

impl std::fmt::Debug for Views {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Views")
            .field("views", &self.cache.entry_count())
            .finish()
    }
}

impl Default for Views {
    fn default() -> Self {
        Views::new(MAX_BYTES)
    }
}

impl Views {
    /// Views bounded to `max_bytes` of rendered JSON.
    pub fn new(max_bytes: u64) -> Views {
        Views {
            cache: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_: &Key, v: &Arc<Rendered>| v.weight())
                .time_to_idle(IDLE)
                .build(),
        }
    }

    /// The view of `entry`, rendered by `render` unless this entry's view is kept.
    pub fn get_or_render<E>(
        &self,
        key: &Key,
        entry: &Arc<Entry>,
        render: impl FnOnce() -> Result<Rendered, E>,
    ) -> Result<Arc<Rendered>, E> {
        if let Some(view) = self.cache.get(key).filter(|v| v.is_of(entry)) {
            return Ok(view);
        }
        let view = Arc::new(render()?);
        self.cache.insert(*key, view.clone());
        Ok(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock;
    use crate::file_id::FileId;
    use crate::hydration::policy::Policy;
    use crate::tenant::Tenant;
    use http::HeaderValue;

    fn entry() -> Arc<Entry> {
        let body = br#"{"fileId":"f","downloadSource":{"status":"ready","url":"https://c/d"}}"#;
        Arc::new(
            Entry::hydrated(
                body,
                HeaderValue::from_static("application/json"),
                clock::now(),
                &Policy::default(),
                false,
            )
            .unwrap(),
        )
    }

    fn key() -> Key {
        Key {
            tenant: Tenant::of_key(b"k"),
            file: FileId::parse("f").unwrap(),
        }
    }

    const JSON: &str = r#"{"a":{"url":"https://h/files/f/redirect?rendition=download"},"b":{"url":"https://h/files/f/redirect?rendition=hls"},"displayName":"\"url\":\"https://h/files/f/redirect?rendition=hls\""}"#;

    fn urls() -> Vec<String> {
        ["download", "hls"]
            .map(|r| format!("https://h/files/f/redirect?rendition={r}"))
            .to_vec()
    }

    #[test]
    fn signed_suffixes_go_after_each_url_and_nowhere_else() {
        let e = entry();
        let v = Rendered::new(&e, JSON.to_string(), &urls());
        assert_eq!(v.body(""), JSON.as_bytes());
        let signed = v.body("&exp=9&sig=ab");
        let want = JSON
            .replace("rendition=download\"", "rendition=download&exp=9&sig=ab\"")
            .replacen("rendition=hls\"}", "rendition=hls&exp=9&sig=ab\"}", 1);
        assert_eq!(signed, want.as_bytes());
        // The look-alike inside displayName (escaped quotes) is left alone.
        assert!(std::str::from_utf8(&signed)
            .unwrap()
            .ends_with(r#""displayName":"\"url\":\"https://h/files/f/redirect?rendition=hls\""}"#));
    }

    #[test]
    fn a_view_without_urls_is_served_as_stored() {
        let e = entry();
        let v = Rendered::new(&e, "{}".into(), &[]);
        let a = v.body("&exp=1&sig=x");
        assert_eq!(a, "{}".as_bytes());
        // Unsigned: the stored bytes themselves.
        assert_eq!(v.body("").as_ptr(), v.json.as_ptr());
        let v = Rendered::new(&e, JSON.to_string(), &urls());
        assert_eq!(v.body("").as_ptr(), v.json.as_ptr());
    }

    #[test]
    fn a_view_is_rendered_once_per_entry() {
        let views = Views::default();
        let (e1, e2) = (entry(), entry());
        let mut renders = 0;
        for e in [&e1, &e1, &e2, &e2, &e1] {
            let v = views
                .get_or_render::<()>(&key(), e, || {
                    renders += 1;
                    Ok(Rendered::new(e, "{}".into(), &[]))
                })
                .unwrap();
            assert!(v.is_of(e));
        }
        // e1, then e2 (a new entry for the same file), then e1 again (e2's view replaced it).
        assert_eq!(renders, 3);
        let failed = views.get_or_render(&key(), &entry(), || Err("no"));
        assert_eq!(failed.unwrap_err(), "no");
    }
}
