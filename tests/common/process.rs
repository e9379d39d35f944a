//! The `hydrant` binary as a child process: started with a clean environment, probed over
//! raw loopback HTTP, signalled, waited for with a bound, and killed if a test ends (or
//! panics) while it still runs.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_hydrant");

/// A loopback port that was free a moment ago (bound, then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `127.0.0.1:port`.
pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A `hydrant` command with an empty environment.
pub fn hydrant() -> Command {
    let mut c = Command::new(BIN);
    // Nothing from the developer's environment leaks into the test.
    c.env_clear();
    c
}

/// A spawned child that is killed and reaped when dropped, so a failed assertion never
/// leaves a `hydrant` running (after a normal exit the kill is a no-op).
pub struct KillOnDrop(pub Child);

impl Deref for KillOnDrop {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A unique scratch file holding `contents`.
pub fn temp_file(name: &str, contents: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let p = std::env::temp_dir().join(format!("hydrant-cli-{}-{nanos}-{name}", std::process::id()));
    std::fs::write(&p, contents).unwrap();
    p
}

/// Wait for exit without blocking the runtime; kill and panic past `limit`.
pub async fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hydrant did not exit within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `sig` (`-TERM`, `-INT`) to the child, by its process id.
pub fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// SIGTERM to the child.
pub fn sigterm(child: &Child) {
    signal(child, "-TERM");
}

/// One raw `GET path` on `addr`; the status, or None when nothing answers.
pub async fn try_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Poll `/healthz` until 200 (bounded), with the child still alive.
pub async fn wait_healthy(child: &mut Child, addr: SocketAddr) {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("hydrant exited early: {st}");
        }
        if try_status(addr, "/healthz").await == Some(200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = child.kill();
    panic!("hydrant never became healthy on {addr}");
}
