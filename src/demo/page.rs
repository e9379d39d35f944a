//! The demo's gallery page, on a port of its own (another origin than hydrant's, as a real
//! web app would be): the page's script fetches `GET /files/{id}` from hydrant (the demo lists
//! this origin in `--cors-origins`) and shows thumbnails, a playing preview and an HLS player,
//! all on hydrant's stable URLs, plus what it cost upstream.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the gallery (`gallery.html`, with hydrant's URL and the file ids filled in) |
//! | `GET /upstream.json` | the simulator's counters: the upstream calls the page has cost |
//! | `GET /hls.min.js` | hls.js, when `tests/browser/node_modules` has it (see [`hls_js_path`]) |
//!
//! hls.js is not vendored (about 600 KB): the page uses the copy `npm ci` put under
//! `tests/browser/node_modules` when it exists (or the file `HYDRANT_DEMO_HLS_JS` names), and
//! otherwise falls back to the browser's native HLS (Safari, recent Chromium), or says it has
//! no player. The demo never fetches anything from the network.

use std::convert::Infallible;
use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};

use crate::sim::SimHandle;

const GALLERY: &str = include_str!("gallery.html");

/// Files the gallery shows (the seeded ones; see the simulator's seed table).
pub(super) const FILES: [&str; 6] = [
    "vg_file_alpha_0001",
    "vg_file_alpha_0004",
    "vg_file_alpha_0005",
    "vg_file_alpha_0006",
    "vg_file_alpha_0007",
    "vg_file_alpha_0003",
];

/// Where hls.js is read from: `HYDRANT_DEMO_HLS_JS`, else the browser tests' `node_modules`
/// of the source tree this binary was built from.
pub(super) fn hls_js_path() -> PathBuf {
    std::env::var_os("HYDRANT_DEMO_HLS_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/browser/node_modules/hls.js/dist/hls.min.js")
        })
}

fn respond(status: u16, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    r
}

/// The gallery HTML for a hydrant at `hydrant`.
pub(super) fn gallery(hydrant: &str) -> String {
    let files = serde_json::to_string(&FILES).unwrap_or_else(|_| "[]".into());
    GALLERY
        .replace("__HYDRANT__", hydrant)
        .replace("__FILES__", &files)
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    html: Bytes,
    sim: SimHandle,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match req.uri().path() {
        "/" => respond(200, "text/html; charset=utf-8", html),
        "/upstream.json" => {
            let s = sim.stats();
            let body = serde_json::json!({
                "hydrate": s.hydrate_calls,
                "getFile": s.get_file_calls,
                "total": s.total_requests.saturating_sub(s.cdn_calls),
                "cdn": s.cdn_calls,
            });
            respond(200, "application/json", Bytes::from(body.to_string()))
        }
        "/hls.min.js" => match tokio::task::spawn_blocking(|| std::fs::read(hls_js_path())).await {
            Ok(Ok(js)) => respond(200, "text/javascript", Bytes::from(js)),
            _ => respond(404, "text/plain", Bytes::from_static(b"no hls.js here")),
        },
        _ => respond(404, "text/plain", Bytes::from_static(b"not found")),
    })
}

/// Serves the page on `listener` until the process ends.
pub(super) async fn serve(listener: tokio::net::TcpListener, hydrant: String, sim: SimHandle) {
    let html = Bytes::from(gallery(&hydrant));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (html, sim) = (html.clone(), sim.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(req, html.clone(), sim.clone()));
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gallery_names_hydrant_and_the_files_only() {
        let html = gallery("http://127.0.0.1:8080");
        assert!(html.contains("const HYDRANT = \"http://127.0.0.1:8080\";"));
        assert!(html.contains("\"vg_file_alpha_0001\""));
        assert!(!html.contains("__HYDRANT__") && !html.contains("__FILES__"));
        // The page never names the CDN: every media URL comes from hydrant's JSON.
        assert!(!html.contains("/cdn/"));
    }
}
