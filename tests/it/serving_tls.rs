//! HTTPS: `--tls-cert` / `--tls-key` serve HTTP/1.1 and h2 by ALPN whatever the SNI, plain
//! HTTP gets no HTTP answer, `SIGHUP` swaps the pair for new connections without dropping open
//! ones (a bad pair is logged and the old one kept), and a half or unreadable pair stops
//! start-up naming the option.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::process::{signal, wait_exit};
use crate::common::serving::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_http1_and_h2_by_alpn_whatever_the_sni() {
    let dir = scratch_dir("tls-alpn");
    let ca = Ca::new();
    let pair = ca.leaf("first");
    let running = start(pair.args(&dir), |_| {}).await;
    let addr = running.addr;

    // HTTP/1.1 by ALPN, SNI `localhost`.
    let s = tls_connect(addr, ca.client(&[b"http/1.1"]), "localhost")
        .await
        .unwrap();
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(served_cert(&s), pair.der);
    let mut h1 = http1(s).await;
    for _ in 0..2 {
        // Twice on one connection: keep-alive over TLS.
        assert_eq!(
            get_h1(&mut h1, "/healthz").await.unwrap(),
            (200, http::Version::HTTP_11)
        );
    }

    // h2 by ALPN, by IP: no SNI at all, and still the one certificate.
    let s = tls_connect(addr, ca.client(&[b"h2", b"http/1.1"]), "127.0.0.1")
        .await
        .unwrap();
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(served_cert(&s), pair.der);
    let (mut h2, _) = http2(s).await;
    assert_eq!(
        get_h2(&mut h2, "https", "/healthz").await.unwrap(),
        (200, http::Version::HTTP_2)
    );

    // No ALPN offered: HTTP/1.1.
    let s = tls_connect(addr, ca.client(&[]), "localhost")
        .await
        .unwrap();
    assert_eq!(s.get_ref().1.alpn_protocol(), None);
    let mut h1 = http1(s).await;
    assert_eq!(get_h1(&mut h1, "/readyz").await.unwrap().0, 200);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn plain_http_to_the_https_port_gets_no_http_answer() {
    let dir = scratch_dir("tls-plain");
    let ca = Ca::new();
    let running = start(ca.leaf("p").args(&dir), |_| {}).await;
    let mut s = TcpStream::connect(running.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection is closed, not left open");
    assert!(
        !String::from_utf8_lossy(&buf).contains("HTTP/"),
        "no HTTP answer: {buf:?}"
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_silent_in_the_handshake_is_closed_at_the_head_timeout() {
    let dir = scratch_dir("tls-silent");
    let ca = Ca::new();
    let running = start(ca.leaf("s").args(&dir), |o| {
        o.head_timeout = Duration::from_millis(800)
    })
    .await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(running.addr).await.unwrap();
    // One byte of a ClientHello, then nothing.
    silent.write_all(&[0x16]).await.unwrap();
    // Meanwhile others complete their handshakes: it runs off the accept loop.
    let s = tls_connect(running.addr, ca.client(&[b"h2"]), "localhost")
        .await
        .unwrap();
    let (mut h2, _) = http2(s).await;
    assert_eq!(get_h2(&mut h2, "https", "/healthz").await.unwrap().0, 200);
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "closed by the head timeout");
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "not before it"
    );
    running.stop().await.unwrap();
}

/// A new TLS connection's certificate, retried briefly (the server may be starting).
async fn cert_of_new_connection(
    addr: std::net::SocketAddr,
    ca: &Ca,
) -> rustls::pki_types::CertificateDer<'static> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match tls_connect(addr, ca.client(&[b"http/1.1"]), "localhost").await {
            Ok(s) => return served_cert(&s),
            Err(e) if Instant::now() > end => panic!("no TLS connection: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_pair_for_new_connections_and_keeps_open_ones() {
    let dir = scratch_dir("tls-reload");
    let ca = Ca::new();
    let first = ca.leaf("first");
    let (cert, key) = first.write(&dir);
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    let mut p = Proc::spawn(&dir, None, &["--tls-cert", &cert_s, "--tls-key", &key_s]);
    assert_eq!(cert_of_new_connection(p.addr, &ca).await, first.der);

    // An open keep-alive connection on the first pair.
    let s = tls_connect(p.addr, ca.client(&[b"http/1.1"]), "localhost")
        .await
        .unwrap();
    let mut old = http1(s).await;
    assert_eq!(get_h1(&mut old, "/healthz").await.unwrap().0, 200);

    let second = ca.leaf("second");
    second.write(&dir);
    signal(&p.child, "-HUP");
    assert!(p.wait_log("reloaded", Duration::from_secs(10)).await);
    assert_eq!(cert_of_new_connection(p.addr, &ca).await, second.der);
    assert_eq!(
        get_h1(&mut old, "/healthz").await.unwrap().0,
        200,
        "the connection opened before the reload still works"
    );

    // A bad pair: the second pair's certificate with a key that does not match it.
    let third = ca.leaf("third");
    std::fs::write(&key, &third.key_pem).unwrap();
    signal(&p.child, "-HUP");
    assert!(p.wait_log("did not load", Duration::from_secs(10)).await);
    assert_eq!(
        cert_of_new_connection(p.addr, &ca).await,
        second.der,
        "the old pair is kept"
    );
    let warned = p.events("did not load");
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0]["level"], "WARN");
    assert_eq!(warned[0]["tls_cert"], cert_s.as_str(), "names the files");
    assert_eq!(warned[0]["tls_key"], key_s.as_str(), "names the files");
    assert!(
        warned[0]["error"].as_str().unwrap().contains("--tls-key"),
        "{}",
        warned[0]
    );
    let log = p.log();
    assert!(!log.contains("PRIVATE KEY"), "no key material in the log");
    for line in third.key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!log.contains(line), "no key material in the log");
    }
    assert_eq!(get_h1(&mut old, "/healthz").await.unwrap().0, 200);
    // Still alive and serving after both signals.
    assert!(p.child.try_wait().unwrap().is_none());
    crate::common::process::sigterm(&p.child);
    assert!(wait_exit(&mut p.child, Duration::from_secs(40))
        .await
        .success());
}

#[tokio::test]
async fn sighup_without_tls_is_logged_and_harmless() {
    let dir = scratch_dir("plain-hup");
    let mut p = Proc::spawn(&dir, None, &[]);
    crate::common::process::wait_healthy(&mut p.child, p.addr).await;
    signal(&p.child, "-HUP");
    assert!(
        p.wait_log("nothing to reload", Duration::from_secs(10))
            .await
    );
    assert_eq!(
        crate::common::process::try_status(p.addr, "/healthz").await,
        Some(200)
    );
    crate::common::process::sigterm(&p.child);
    assert!(wait_exit(&mut p.child, Duration::from_secs(40))
        .await
        .success());
}

#[tokio::test]
async fn half_a_pair_or_a_bad_file_stops_start_up_naming_the_option() {
    let dir = scratch_dir("tls-bad");
    let ca = Ca::new();
    let (cert, key) = ca.leaf("x").write(&dir);
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not pem at all").unwrap();
    let garbage = garbage.display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--tls-cert", &cert],
            "invalid configuration: --tls-key: ",
        ),
        (
            vec!["--tls-key", &key],
            "invalid configuration: --tls-cert: ",
        ),
        (
            vec!["--tls-cert", "/nonexistent/c.pem", "--tls-key", &key],
            "invalid configuration: --tls-cert: cannot read /nonexistent/c.pem",
        ),
        (
            vec!["--tls-cert", &cert, "--tls-key", &garbage],
            "invalid configuration: --tls-key: ",
        ),
        (vec!["--workers", "0"], "invalid configuration: --workers: "),
        (
            vec!["--max-connections", "0"],
            "invalid configuration: --max-connections: ",
        ),
    ];
    for (args, expected) in cases {
        let mut p = Proc::spawn(&dir, None, &args);
        let st = wait_exit(&mut p.child, Duration::from_secs(10)).await;
        assert!(!st.success(), "{args:?}");
        let log = p.log();
        assert_eq!(log.lines().count(), 1, "{args:?}: {log}");
        assert!(
            log.starts_with(&format!("hydrant: {expected}")),
            "{args:?}: {log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_speaks_h2_over_https() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("curl not installed: skipped");
        return;
    }
    let dir = scratch_dir("tls-curl");
    let ca = Ca::new();
    let running = start(ca.leaf("c").args(&dir), |_| {}).await;
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let port = running.addr.port();
    let ca_path = ca_file.display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-sS", "--http2", "--max-time", "10", "--cacert", &ca_path])
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .args(["-o", "/dev/null", "-w", "%{http_version} %{http_code}"])
            .arg(format!("https://localhost:{port}/healthz"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    if said.trim() == "1.1 200" {
        eprintln!("this curl has no HTTP/2: only HTTP/1.1 checked");
    } else {
        assert_eq!(
            said.trim(),
            "2 200",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    running.stop().await.unwrap();
}
