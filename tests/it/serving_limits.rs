//! Connection limits: `--max-connections` (past it connections wait in the backlog), the head
//! deadline (slowloris and idle keep-alive, HTTP/1.1 and h2), and descriptor exhaustion (the
//! limit fitted to `RLIMIT_NOFILE`; EMFILE on accept logged once, not per failure).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hydrant::config::ServeArgs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::process::{try_status, wait_exit, wait_healthy};
use crate::common::serving::*;

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n";

/// Read one response head's status line from `s` within `limit` (None: nothing came).
async fn read_status(s: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let end = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(end, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            return Some(String::from_utf8_lossy(&buf[..i]).into_owned());
        }
    }
}

/// Whether the server closes `s` within `limit`, reading (and returning) what it sent.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    match tokio::time::timeout(limit, s.read_to_end(&mut buf)).await {
        Ok(_) => Some(buf),
        Err(_) => None,
    }
}

#[tokio::test]
async fn past_max_connections_a_connection_waits_until_one_closes() {
    let running = start(
        ServeArgs {
            max_connections: Some("2".into()),
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let addr = running.addr;
    // Two connections, each served once and then left idle (keep-alive): both hold a slot.
    let mut c1 = TcpStream::connect(addr).await.unwrap();
    let mut c2 = TcpStream::connect(addr).await.unwrap();
    for c in [&mut c1, &mut c2] {
        c.write_all(HEALTHZ).await.unwrap();
        let st = read_status(c, Duration::from_secs(5)).await;
        assert_eq!(st.as_deref(), Some("HTTP/1.1 200 OK"));
    }
    // The third connects (the kernel completes the handshake) but is not taken.
    let mut c3 = TcpStream::connect(addr).await.unwrap();
    c3.write_all(HEALTHZ).await.unwrap();
    assert_eq!(
        read_status(&mut c3, Duration::from_millis(800)).await,
        None,
        "served past the limit"
    );
    drop(c1);
    let st = read_status(&mut c3, Duration::from_secs(10)).await;
    assert_eq!(
        st.as_deref(),
        Some("HTTP/1.1 200 OK"),
        "served once a slot freed"
    );
    drop(c2);
    running.stop().await.unwrap();
}

/// A client that sends its head one byte every `every`, never finishing it; the time the
/// server closed it, and whether it answered anything.
async fn slowloris(addr: SocketAddr, prefix: &[u8], every: Duration) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(prefix).await.unwrap();
    let mut answered = Vec::new();
    if !prefix.is_empty() {
        // A complete first request: read its response before dribbling.
        let st = read_status(&mut s, Duration::from_secs(5)).await;
        assert_eq!(st.as_deref(), Some("HTTP/1.1 200 OK"));
    }
    let dribble = b"GET /healthz HTTP/1.1\r\nHost: h\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut chunk = [0u8; 256];
    for byte in dribble.iter().cycle().take(400) {
        if s.write_all(&[*byte]).await.is_err() {
            return (started.elapsed(), answered);
        }
        match tokio::time::timeout(every, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (started.elapsed(), answered),
            Ok(Ok(n)) => answered.extend_from_slice(&chunk[..n]),
            Err(_) => {}
        }
    }
    panic!("a slowloris head was never cut off");
}

// One worker thread (the default test runtime): the slow heads must not hold it.
#[tokio::test]
async fn a_slowloris_head_is_cut_at_the_head_timeout_while_others_are_served() {
    let timeout = Duration::from_millis(1500);
    let running = start(ServeArgs::default(), |o| o.head_timeout = timeout).await;
    let addr = running.addr;
    let mut lorises = Vec::new();
    for _ in 0..4 {
        // From the first byte, and after a first request on a keep-alive connection.
        lorises.push(tokio::spawn(slowloris(
            addr,
            b"",
            Duration::from_millis(100),
        )));
        lorises.push(tokio::spawn(slowloris(
            addr,
            HEALTHZ,
            Duration::from_millis(100),
        )));
    }
    // Others are served meanwhile, on new connections.
    let mut served = 0;
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        assert_eq!(try_status(addr, "/healthz").await, Some(200));
        served += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served > 1);
    for l in lorises {
        let (after, answered) = l.await.unwrap();
        assert!(
            after >= timeout - Duration::from_millis(200),
            "cut at {after:?}"
        );
        assert!(after < timeout + Duration::from_secs(5), "cut at {after:?}");
        assert!(
            !String::from_utf8_lossy(&answered).contains("408"),
            "closed without an answer"
        );
    }
    running.stop().await.unwrap();
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_head_timeout_http1_and_h2() {
    let timeout = Duration::from_millis(1200);
    let running = start(ServeArgs::default(), |o| o.head_timeout = timeout).await;
    let addr = running.addr;

    // HTTP/1.1 keep-alive, idle after a response.
    let mut h1 = TcpStream::connect(addr).await.unwrap();
    h1.write_all(HEALTHZ).await.unwrap();
    assert!(read_status(&mut h1, Duration::from_secs(5)).await.is_some());
    let idle_from = Instant::now();
    let rest = closed_within(&mut h1, timeout + Duration::from_secs(5)).await;
    assert!(rest.is_some(), "idle keep-alive connection closed");
    assert!(idle_from.elapsed() >= timeout - Duration::from_millis(200));
    assert!(!String::from_utf8_lossy(&rest.unwrap()).contains("HTTP/1.1 408"));

    // A connection that never sends a byte.
    let opened = Instant::now();
    let mut mute = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut mute, timeout + Duration::from_secs(5))
        .await
        .is_some());
    assert!(opened.elapsed() >= timeout - Duration::from_millis(200));

    // h2 (prior knowledge): one request, then no stream open.
    let (mut h2, ended) = http2(TcpStream::connect(addr).await.unwrap()).await;
    assert_eq!(get_h2(&mut h2, "http", "/healthz").await.unwrap().0, 200);
    let idle_from = Instant::now();
    tokio::time::timeout(timeout + Duration::from_secs(5), ended)
        .await
        .expect("idle h2 connection closed")
        .unwrap();
    assert!(idle_from.elapsed() >= timeout - Duration::from_millis(200));
    running.stop().await.unwrap();
}

#[tokio::test]
async fn an_h2_connection_with_a_stream_open_is_not_idle() {
    let timeout = Duration::from_millis(800);
    let running = start(ServeArgs::default(), |o| o.head_timeout = timeout).await;
    // Requests one after the other, each within the timeout of the last one's end, keep an h2
    // connection open for well past the timeout.
    let (mut h2, ended) = http2(TcpStream::connect(running.addr).await.unwrap()).await;
    let end = Instant::now() + timeout * 3;
    while Instant::now() < end {
        assert_eq!(get_h2(&mut h2, "http", "/healthz").await.unwrap().0, 200);
        tokio::time::sleep(timeout / 3).await;
    }
    assert!(!ended.is_finished());
    running.stop().await.unwrap();
}

/// Open `n` idle TCP connections to `addr` (each completes in the kernel's backlog whether or
/// not hydrant takes it).
async fn idle_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(TcpStream::connect(addr).await.unwrap());
    }
    v
}

/// `GET /healthz` on a new connection: the status line, or None if no answer within `limit`.
async fn healthz_within(addr: SocketAddr, limit: Duration) -> (TcpStream, Option<String>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(HEALTHZ).await.unwrap();
    let st = read_status(&mut s, limit).await;
    (s, st)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_low_descriptor_limit_the_connection_limit_is_fitted_and_nothing_floods_the_log() {
    let dir = scratch_dir("fds-fit");
    // Hard and soft both 200: raising soft to hard changes nothing here.
    let mut p = Proc::spawn(&dir, Some("ulimit -n 200"), &[]);
    wait_healthy(&mut p.child, p.addr).await;
    let fitted = p.events("lowered to fit");
    assert_eq!(fitted.len(), 1, "{}", p.log());
    assert_eq!(fitted[0]["lowered_to"], 100, "{}", fitted[0]);
    assert_eq!(fitted[0]["level"], "WARN");

    // All 316 complete their TCP handshake promptly: the 216 past the limit wait in the
    // listen backlog (1024) rather than having their SYNs dropped and retried for seconds.
    let idle = tokio::time::timeout(Duration::from_secs(10), idle_connections(p.addr, 316))
        .await
        .expect("connections past the limit wait in the backlog");
    // Past the fitted limit (100) a connection waits in the backlog...
    let (waiting, st) = healthz_within(p.addr, Duration::from_millis(1500)).await;
    assert_eq!(st, None, "served past the fitted limit");
    drop(waiting);
    // ...and is served once others close.
    drop(idle);
    let (_s, st) = healthz_within(p.addr, Duration::from_secs(20)).await;
    assert_eq!(st.as_deref(), Some("HTTP/1.1 200 OK"));
    assert!(
        p.log_lines("accept").len() <= 2,
        "accept failures flood the log:\n{}",
        p.log()
    );
    crate::common::process::sigterm(&p.child);
    assert!(wait_exit(&mut p.child, Duration::from_secs(40))
        .await
        .success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_accept_runs_out_of_descriptors_it_backs_off_and_logs_once_each_way() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("prlimit not installed: skipped");
        return;
    }
    let dir = scratch_dir("fds-emfile");
    let mut p = Proc::spawn(&dir, None, &[]);
    wait_healthy(&mut p.child, p.addr).await;
    // The limit drops under hydrant after start-up (it fitted --max-connections to the old
    // one), so accept really fails with EMFILE: what a descriptor leak elsewhere looks like.
    let pid = p.child.id().to_string();
    let st = std::process::Command::new("prlimit")
        .args(["--pid", &pid, "--nofile=200:200"])
        .status()
        .unwrap();
    assert!(st.success());
    let idle = idle_connections(p.addr, 316).await;
    assert!(p.wait_log("accept failing", Duration::from_secs(10)).await);
    // Let it fail for a while: about 50 lines a second before the back-off.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(idle);
    let (_s, st) = healthz_within(p.addr, Duration::from_secs(20)).await;
    assert_eq!(st.as_deref(), Some("HTTP/1.1 200 OK"), "served again");
    assert!(
        p.wait_log("accepting connections again", Duration::from_secs(10))
            .await
    );
    let log = p.log();
    let started = p.events("accept failing");
    let ended = p.events("accepting connections again");
    assert_eq!((started.len(), ended.len()), (1, 1), "{log}");
    assert_eq!(started[0]["level"], "WARN");
    assert_eq!(ended[0]["level"], "INFO");
    let failed = ended[0]["failed_accepts"].as_u64().unwrap();
    assert!(
        failed >= 2,
        "several accepts failed, one line: {}",
        ended[0]
    );
    crate::common::process::sigterm(&p.child);
    assert!(wait_exit(&mut p.child, Duration::from_secs(40))
        .await
        .success());
}

/// Threads of `pid` named like tokio's workers (`tokio-rt-worker`; older tokio:
/// `tokio-runtime-worker`, cut to 15 bytes).
fn tokio_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| matches!(name.trim(), "tokio-rt-worker" | "tokio-runtime-w"))
        .count()
}

#[tokio::test]
async fn workers_sets_the_runtime_threads() {
    let dir = scratch_dir("workers");
    for n in [1usize, 3] {
        let arg = n.to_string();
        let mut p = Proc::spawn(&dir, None, &["--workers", &arg]);
        wait_healthy(&mut p.child, p.addr).await;
        assert_eq!(tokio_threads(p.child.id()), n, "--workers {n}");
        let started = p.events("hydrant serving");
        assert_eq!(started[0]["workers"], n as u64);
        crate::common::process::sigterm(&p.child);
        assert!(wait_exit(&mut p.child, Duration::from_secs(40))
            .await
            .success());
    }
}
