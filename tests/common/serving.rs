//! Harness for the serving tests: hydrant in-process with chosen [`ServeOptions`] (no
//! simulator: `/healthz` needs no upstream), a test CA issuing certificate pairs (rcgen),
//! rustls clients trusting it, hyper HTTP/1.1 and h2 connections over any stream, and the
//! `hydrant` binary run with its stderr captured to a file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hydrant::app::App;
use hydrant::config::{Config, ServeArgs};
use hydrant::server::{Running, ServeOptions};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::process::{hydrant, KillOnDrop};

/// hydrant on an ephemeral loopback port with `args` and `options` adjusted by `tweak`.
pub async fn start(args: ServeArgs, tweak: impl FnOnce(&mut ServeOptions)) -> Running {
    let args = ServeArgs {
        listen: Some("127.0.0.1:0".into()),
        // Nothing here goes upstream; a closed port makes sure of it.
        upstream: Some("http://127.0.0.1:9".into()),
        ..args
    };
    let config = Config::resolve(args).expect("valid config");
    let mut options = ServeOptions::from_config(&config).expect("serve options");
    tweak(&mut options);
    let app = App::new(config).expect("app builds");
    Running::start_with(app, "127.0.0.1:0".parse().unwrap(), options)
        .await
        .expect("hydrant starts")
}

/// A scratch directory of this test.
pub fn scratch_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("hydrant-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A test certificate authority.
pub struct Ca {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

/// A leaf certificate (for `localhost` and `127.0.0.1`) and its key, in PEM and DER.
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl Ca {
    pub fn new() -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "hydrant test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        Ca {
            issuer: rcgen::CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    /// A new leaf pair; `name` goes in the common name, so pairs differ.
    pub fn leaf(&self, name: &str) -> Pair {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    /// The CA certificate in PEM (for curl).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A rustls client trusting only this CA, offering `alpn`.
    pub fn client(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

impl Pair {
    /// Write the pair to `dir/cert.pem` and `dir/key.pem` (replacing what is there).
    pub fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }

    /// `ServeArgs` serving this pair from `dir`.
    pub fn args(&self, dir: &Path) -> ServeArgs {
        let (cert, key) = self.write(dir);
        ServeArgs {
            tls_cert: Some(cert.display().to_string()),
            tls_key: Some(key.display().to_string()),
            ..Default::default()
        }
    }
}

/// A TLS connection to `addr` with `sni` (a DNS name, or an IP address: then no SNI is sent).
pub async fn tls_connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    sni: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_string()).unwrap();
    let connector = tokio_rustls::TlsConnector::from(config);
    tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

/// The server certificate a TLS connection got.
pub fn served_cert(s: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    s.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// An HTTP/1.1 connection over `io`.
pub async fn http1<I>(io: I) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    tx
}

/// An h2 connection over `io` (prior knowledge or ALPN); the handle ends when the
/// connection does.
pub async fn http2<I>(
    io: I,
) -> (
    hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    tokio::task::JoinHandle<()>,
)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .unwrap();
    let ended = tokio::spawn(async move {
        let _ = conn.await;
    });
    (tx, ended)
}

/// `GET /healthz` on an HTTP/1.1 connection: status and version.
pub async fn get_h1(
    tx: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    path: &str,
) -> hyper::Result<(u16, http::Version)> {
    tx.ready().await?;
    let req = http::Request::get(path)
        .header("host", "localhost")
        .body(Empty::new())
        .unwrap();
    let resp = tx.send_request(req).await?;
    let (status, version) = (resp.status().as_u16(), resp.version());
    let _ = resp.into_body().collect().await;
    Ok((status, version))
}

/// `GET path` on an h2 connection: status and version.
pub async fn get_h2(
    tx: &mut hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    scheme: &str,
    path: &str,
) -> hyper::Result<(u16, http::Version)> {
    tx.ready().await?;
    let req = http::Request::get(format!("{scheme}://localhost{path}"))
        .body(Empty::new())
        .unwrap();
    let resp = tx.send_request(req).await?;
    let (status, version) = (resp.status().as_u16(), resp.version());
    let _ = resp.into_body().collect().await;
    Ok((status, version))
}

/// The `hydrant` binary, its stderr (the log) going to a file of `dir`.
pub struct Proc {
    pub child: KillOnDrop,
    pub log: PathBuf,
    pub addr: SocketAddr,
}

impl Proc {
    /// Run `sh_prefix; exec hydrant args...` through bash (for `ulimit`) or hydrant directly.
    pub fn spawn(dir: &Path, sh_prefix: Option<&str>, args: &[&str]) -> Proc {
        let port = super::process::free_port();
        let addr = super::process::addr(port);
        let listen = addr.to_string();
        // JSON log lines: fields are read without ANSI colour codes in the way.
        let mut all: Vec<&str> = vec![
            "--listen",
            &listen,
            "--upstream",
            "http://127.0.0.1:9",
            "--log-format",
            "json",
        ];
        all.extend_from_slice(args);
        let log = dir.join(format!("hydrant-{port}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = match sh_prefix {
            None => {
                let mut c = hydrant();
                c.args(&all);
                c
            }
            Some(prefix) => {
                let mut c = std::process::Command::new("bash");
                c.env_clear();
                c.arg("-c")
                    .arg(format!("{prefix}; exec \"$0\" \"$@\""))
                    .arg(super::process::BIN)
                    .args(&all);
                c
            }
        };
        cmd.env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file);
        Proc {
            child: KillOnDrop(cmd.spawn().unwrap()),
            log,
            addr,
        }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Lines of the log containing `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }

    /// The JSON log lines whose message contains `needle`.
    pub fn events(&self, needle: &str) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"].as_str().is_some_and(|m| m.contains(needle)))
            .collect()
    }

    /// Wait (bounded) until the log has a line containing `needle`.
    pub async fn wait_log(&self, needle: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if !self.log_lines(needle).is_empty() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }
}
