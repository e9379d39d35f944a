//! `hydrant demo`: the simulator and the proxy on loopback, no key, no network.
//!
//! Shows what hydrant does in one command: it starts the built-in VideoGen simulator on a
//! free port, puts hydrant in front of it on `--listen`, serves a gallery page on a port of
//! its own (`page`: another origin, allowed by hydrant's `--cors-origins`), and prints
//! commands that work.

mod page;

use std::io::Write as _;
use std::net::SocketAddr;

use crate::app::App;
use crate::config::{Config, ServeArgs};
use crate::server;
use crate::sim;

/// Flags of `hydrant demo`.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Address hydrant listens on.
    #[arg(long, env = "HYDRANT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Replicas to run as one cluster on a private redis-server (needs `redis-server` on
    /// PATH); they listen on consecutive ports from `--listen`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub replicas: u16,
    /// Address of the demo's gallery page (its own origin; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub page_listen: String,
}

/// A `redis-server` of the demo's own, on a free loopback port, killed when dropped.
struct DemoRedis {
    child: std::process::Child,
    port: u16,
}

impl DemoRedis {
    fn start() -> Result<DemoRedis, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("cannot pick a port for redis-server: {e}"))?
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "hydrant demo --replicas needs redis-server on PATH ({e}); \
                     on Debian or Ubuntu: apt-get install redis-server"
                )
            })?;
        let redis = DemoRedis { child, port };
        // Bounded: 100 tries, 50 ms apart.
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(redis);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err("redis-server did not start listening within 5 s".into())
    }
}

impl Drop for DemoRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The client token the demo accepts in place of a VideoGen key.
pub const DEMO_CLIENT_TOKEN: &str = "demo-client-token";
/// The demo's admin token.
pub const DEMO_ADMIN_TOKEN: &str = "demo-admin-token";

/// Run the demo until SIGINT/SIGTERM.
pub async fn run(args: DemoArgs) -> Result<(), String> {
    let listen: SocketAddr = args.listen.trim().parse().map_err(|_| {
        format!(
            "invalid configuration: --listen: not a socket address: {:?}",
            args.listen
        )
    })?;
    let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
    let simulator = sim::start(sim::SimConfig::default(), loopback)
        .await
        .map_err(|e| format!("cannot start the simulator: {e}"))?;
    let receiver = tokio::net::TcpListener::bind(loopback)
        .await
        .map_err(|e| format!("cannot start the demo webhook receiver: {e}"))?;
    let receiver_url = format!(
        "http://{}/events",
        receiver.local_addr().map_err(|e| e.to_string())?
    );
    tokio::spawn(receive_webhooks(receiver));
    let page_at: SocketAddr = args.page_listen.trim().parse().map_err(|_| {
        format!(
            "invalid configuration: --page-listen: not a socket address: {:?}",
            args.page_listen
        )
    })?;
    let page_listener = tokio::net::TcpListener::bind(page_at)
        .await
        .map_err(|e| format!("invalid configuration: --page-listen: cannot bind {page_at}: {e}"))?;
    let page_url = format!(
        "http://{}",
        page_listener.local_addr().map_err(|e| e.to_string())?
    );
    let redis = match args.replicas {
        1 => None,
        _ => Some(DemoRedis::start()?),
    };
    let mut replicas = Vec::new();
    let mut _log_guard = None;
    for i in 0..args.replicas {
        let port = match listen.port() {
            0 => 0,
            p => p
                .checked_add(i)
                .ok_or("invalid configuration: --listen: no room for the replicas' ports")?,
        };
        let at = SocketAddr::new(listen.ip(), port);
        let config = Config::resolve(ServeArgs {
            listen: Some(at.to_string()),
            upstream: Some(simulator.base_url()),
            api_key: Some("vg_sim_key_alpha".into()),
            client_tokens: Some(DEMO_CLIENT_TOKEN.into()),
            admin_token: Some(DEMO_ADMIN_TOKEN.into()),
            webhook_secret: Some(sim::DEFAULT_WEBHOOK_SECRET.into()),
            webhook_forward: Some(receiver_url.clone()),
            cors_origins: Some(page_url.clone()),
            redis_url: redis
                .as_ref()
                .map(|r| format!("redis://127.0.0.1:{}/0", r.port)),
            ..ServeArgs::default()
        })
        .map_err(|e| e.to_string())?;
        if i == 0 {
            _log_guard = Some(crate::telemetry::init_tracing(config.log_format));
        }
        let app = App::new(config).map_err(|e| format!("cannot build the upstream client: {e}"))?;
        let listener = tokio::net::TcpListener::bind(at)
            .await
            .map_err(|e| format!("invalid configuration: --listen: cannot bind {at}: {e}"))?;
        replicas.push((app, listener));
    }
    let mut urls = Vec::new();
    for (_, l) in &replicas {
        urls.push(format!(
            "http://{}",
            l.local_addr().map_err(|e| e.to_string())?
        ));
    }
    let h = urls[0].clone();
    let cluster = match &redis {
        None => String::new(),
        Some(r) => format!(
            "  cluster             {} replicas on redis-server 127.0.0.1:{}: {}\n  \
             a file fetched through one is a HIT on the others:\n    curl -si '{}/files/vg_file_alpha_0001/redirect' | grep -i x-cache\n",
            urls.len(),
            r.port,
            urls.join(" "),
            urls.last().map_or("", String::as_str)
        ),
    };
    tokio::spawn(page::serve(page_listener, h.clone(), simulator.clone()));
    let hls_js = if page::hls_js_path().is_file() {
        "hls.js from tests/browser/node_modules"
    } else {
        "native HLS where the browser has it; npm ci in tests/browser adds hls.js"
    };
    let f = "vg_file_alpha_0001";
    let text = format!(
        "\
hydrant demo
  VideoGen simulator  {sim}   (account \"Alpha Studio\", key vg_sim_key_alpha)
  hydrant             {h}
{cluster}
Gallery page (thumbnails, a playing preview, HLS with {hls_js}, and what they cost upstream), on its own origin:
  {page_url}/

Stable URLs for browsers (302 to a fresh signed URL, from cache after the first call):
  curl -i '{h}/files/{f}/redirect?rendition=preview'
  curl -sL -o /dev/null -w '%{{http_code}} %{{size_download}} bytes\\n' '{h}/files/{f}/redirect'
  curl -s '{h}/files/{f}'                                 # stable JSON view
  curl -i '{h}/files/vg_file_alpha_0002/redirect?rendition=preview'   # pending -> 503

Drop-in API base URL for backends (client token swapped for the proxy's key):
  curl -si -X POST -H 'Authorization: Bearer {tok}' '{h}/v1/files/{f}/hydrate' | head -12
  curl -s -H 'Authorization: Bearer {tok}' '{h}/v1/me'
  python3 -c 'import videogen; c = videogen.VideoGen(api_key=\"{tok}\", base_url=\"{h}\"); print(c.get_hydrated_file(\"{f}\")[\"display_name\"])'

Webhooks (simulator -> hydrant -> a demo receiver at {receiver_url}, which verifies and prints each event):
  curl -s -X POST '{sim}/_sim/webhooks' -H 'content-type: application/json' \\
       -d '{{\"url\":\"{h}/webhooks/videogen\",\"event\":\"file.download_ready\",\"fileId\":\"vg_file_alpha_0005\",\"apiKey\":\"vg_sim_key_alpha\"}}'
  curl -si '{h}/files/vg_file_alpha_0005/redirect' | grep -i x-cache   # HIT: primed by the event

Operations:
  curl -s '{h}/metrics' | grep '^hydrant_cache'
  curl -si -X DELETE -H 'Authorization: Bearer {adm}' '{h}/admin/files/{f}'
  curl -s '{sim}/_sim/stats'                         # upstream calls the simulator saw

Ctrl-C stops both.
",
        sim = simulator.base_url(),
        tok = DEMO_CLIENT_TOKEN,
        adm = DEMO_ADMIN_TOKEN,
        receiver_url = receiver_url,
        cluster = cluster,
        page_url = page_url,
        hls_js = hls_js,
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    drop(out);
    let serving = replicas
        .into_iter()
        .map(|(app, listener)| server::serve(app, listener, server::shutdown_signal()));
    let results = futures_util::future::join_all(serving).await;
    simulator.shutdown();
    drop(redis);
    results
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The demo's webhook receiver: verifies each relayed delivery with the same secret (as an
/// application would, e.g. with the official SDK) and prints one line per event.
async fn receive_webhooks(listener: tokio::net::TcpListener) {
    use http_body_util::BodyExt;
    let Some(verifier) =
        crate::webhooks::verify::WebhookVerifier::new(&[sim::DEFAULT_WEBHOOK_SECRET.to_string()])
    else {
        return;
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let verifier = verifier.clone();
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let verifier = verifier.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|c| c.to_bytes())
                            .unwrap_or_default();
                        let ok = verifier
                            .verify(&parts.headers, &body, crate::clock::now_unix() as i64)
                            .is_ok();
                        let event = serde_json::from_slice::<serde_json::Value>(&body)
                            .ok()
                            .and_then(|v| v.get("event").and_then(|e| e.as_str()).map(String::from))
                            .unwrap_or_else(|| "?".into());
                        println!(
                            "demo receiver: {} event {event} (signature {})",
                            if ok { "accepted" } else { "REJECTED" },
                            if ok { "verified" } else { "invalid" }
                        );
                        let status = if ok { 200 } else { 401 };
                        let mut resp = hyper::Response::new(http_body_util::Full::new(
                            bytes::Bytes::from_static(b"{}"),
                        ));
                        *resp.status_mut() =
                            http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
        });
    }
}
