//! HTTPS on the listener: the certificate pair of `--tls-cert` / `--tls-key`, loaded at start-up
//! and again on every `SIGHUP`.
//!
//! The pair sits behind an [`ArcSwap`] that the rustls resolver reads on each handshake, so a
//! reload swaps it atomically: connections already open keep their session, the next handshake
//! gets the new pair, and a pair that fails to load leaves the old one in place. The one pair
//! is served whatever the SNI (clients that connect by IP send none). ALPN offers `h2` and
//! `http/1.1`; the auto builder behind it reads the protocol off the wire either way.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::config::{ConfigError, TlsFiles};

/// The loaded certificate pair and the acceptor that serves it.
pub struct Tls {
    files: TlsFiles,
    current: Arc<Current>,
    acceptor: TlsAcceptor,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish()
    }
}

/// The pair every handshake gets; swapped whole on reload.
struct Current(ArcSwap<CertifiedKey>);

impl fmt::Debug for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key: only that there is a pair.
        f.write_str("Current(certificate pair)")
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

fn problem(option: &str, problem: String) -> ConfigError {
    ConfigError {
        option: format!("--{option}"),
        problem,
    }
}

/// What went wrong reading PEM, in words that never quote the file's contents (it may be the
/// private key).
fn pem_problem(path: &Path, what: &str, e: pem::Error) -> String {
    let path = path.display();
    match e {
        pem::Error::Io(io) => format!("cannot read {path}: {io}"),
        pem::Error::NoItemsFound => format!("no PEM {what} in {path}"),
        _ => format!("{path} is not a valid PEM {what}"),
    }
}

/// Read and check the pair: a certificate chain, a private key rustls/ring can sign with, and
/// the key matching the chain's first certificate. Errors name the option at fault.
pub fn load_pair(files: &TlsFiles) -> Result<Arc<CertifiedKey>, ConfigError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| problem("tls-cert", pem_problem(&files.cert, "certificate", e)))?;
    if chain.is_empty() {
        return Err(problem(
            "tls-cert",
            format!("no PEM certificate in {}", files.cert.display()),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| problem("tls-key", pem_problem(&files.key, "private key", e)))?;
    let provider = rustls::crypto::ring::default_provider();
    let pair = CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => problem(
            "tls-key",
            format!(
                "{} does not match the certificate in {}",
                files.key.display(),
                files.cert.display()
            ),
        ),
        rustls::Error::InvalidCertificate(_) | rustls::Error::InvalidMessage(_) => problem(
            "tls-cert",
            format!("{} holds no usable certificate", files.cert.display()),
        ),
        _ => problem(
            "tls-key",
            format!(
                "{} is not a private key rustls can use (RSA, ECDSA P-256/P-384 or Ed25519)",
                files.key.display()
            ),
        ),
    })?;
    Ok(Arc::new(pair))
}

impl Tls {
    /// Load the pair and build the acceptor (start-up: an error here stops hydrant).
    pub fn load(files: &TlsFiles) -> Result<Arc<Tls>, ConfigError> {
        let current = Arc::new(Current(ArcSwap::new(load_pair(files)?)));
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| problem("tls-cert", format!("TLS set-up failed: {e}")))?
                .with_no_client_auth()
                .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(Tls {
            files: files.clone(),
            current,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }))
    }

    /// The acceptor for one connection's handshake.
    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// Re-read both files; on success new handshakes use the new pair, on failure the old one
    /// stays and the error (naming the option and file, never key material) is returned.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let pair = load_pair(&self.files)?;
        self.current.0.store(pair);
        Ok(())
    }
}

/// Reload `tls` on every `SIGHUP` until the returned task is aborted. The handler is installed
/// before this returns, so a `SIGHUP` sent once hydrant is serving never kills it; without
/// HTTPS there is nothing to reload and the signal is only logged (a `systemctl reload` must
/// not stop a plain-HTTP hydrant, as the default action of SIGHUP would).
pub(crate) fn reload_on_sighup(
    tls: Option<Arc<Tls>>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let Some(tls) = &tls else {
                tracing::info!("SIGHUP: nothing to reload (no --tls-cert)");
                continue;
            };
            match tls.reload() {
                Ok(()) => tracing::info!(
                    tls_cert = %tls.files.cert.display(),
                    tls_key = %tls.files.key.display(),
                    "SIGHUP: TLS certificate and key reloaded; new connections use them"
                ),
                Err(e) => tracing::warn!(
                    tls_cert = %tls.files.cert.display(),
                    tls_key = %tls.files.key.display(),
                    error = %e,
                    "SIGHUP: the TLS certificate and key did not load; still serving the previous pair"
                ),
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn scratch(name: &str, contents: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hydrant-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    const NOT_PEM: &[u8] = b"-----BEGIN PRIVATE KEY-----\nnot base64 at all: s3cr3tkeybytes!\n-----END PRIVATE KEY-----\n";

    #[test]
    fn bad_files_name_the_option_and_not_the_contents() {
        let missing = TlsFiles {
            cert: "/nonexistent/hydrant-cert.pem".into(),
            key: "/nonexistent/hydrant-key.pem".into(),
        };
        let e = load_pair(&missing).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "invalid configuration: --tls-cert: cannot read /nonexistent/hydrant-cert.pem"
            ),
            "{e}"
        );
        let cert = scratch("empty-cert.pem", b"");
        let key = scratch("bad-key.pem", NOT_PEM);
        let e = load_pair(&TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("invalid configuration: --tls-cert: no PEM certificate"),
            "{e}"
        );
        // A certificate that parses as PEM, then a key that does not: the key is named, and
        // nothing of its contents is echoed.
        let cert = scratch(
            "some-cert.pem",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let e = load_pair(&TlsFiles { cert, key }).unwrap_err().to_string();
        assert!(e.starts_with("invalid configuration: --tls-key: "), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
        assert_eq!(e.lines().count(), 1);
    }
}
