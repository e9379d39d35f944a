//! HTTP/2 abuse: a raw-socket h2 client (frames written by hand, HPACK static-table fields)
//! that floods HEADERS + RST_STREAM (rapid reset, CVE-2023-44487) or an endless header block
//! of CONTINUATION frames loses its connection within a bounded time, while a normal client
//! keeps being served.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hydrant::config::ServeArgs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::common::process::try_status;
use crate::common::serving::start;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const CANCEL: u32 = 0x8;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// `GET http://a/`: `:method GET` (static index 2), `:scheme http` (6), `:path /` (4), all
/// indexed, and `:authority a` as a literal with the indexed name 1 (without indexing).
const GET_BLOCK: &[u8] = &[0x82, 0x86, 0x84, 0x01, 0x01, b'a'];

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = Vec::with_capacity(9 + payload.len());
    f.extend_from_slice(&len.to_be_bytes()[1..]);
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// How the server ended the attacking connection.
#[derive(Debug, PartialEq)]
enum Ended {
    GoAway(u32),
    Closed,
}

/// Read one frame header + payload.
async fn read_frame(r: &mut OwnedReadHalf) -> std::io::Result<(u8, u8, Vec<u8>)> {
    let mut head = [0u8; 9];
    r.read_exact(&mut head).await?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Ok((head[3], head[4], payload))
}

/// Connect, exchange SETTINGS, and return the halves.
async fn h2_open(addr: SocketAddr) -> (OwnedReadHalf, OwnedWriteHalf) {
    let (mut r, mut w) = TcpStream::connect(addr).await.unwrap().into_split();
    w.write_all(PREFACE).await.unwrap();
    w.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < end, "no SETTINGS from the server");
        let (kind, flags, _) = tokio::time::timeout(Duration::from_secs(5), read_frame(&mut r))
            .await
            .unwrap()
            .unwrap();
        if kind == SETTINGS && flags & ACK == 0 {
            w.write_all(&frame(SETTINGS, ACK, 0, &[])).await.unwrap();
            return (r, w);
        }
    }
}

/// Read frames until GOAWAY or EOF; flags `done` when it sees either.
fn watch_for_the_end(
    mut r: OwnedReadHalf,
    done: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Ended> {
    tokio::spawn(async move {
        let ended = loop {
            match read_frame(&mut r).await {
                Ok((GOAWAY, _, p)) if p.len() >= 8 => {
                    break Ended::GoAway(u32::from_be_bytes([p[4], p[5], p[6], p[7]]))
                }
                Ok(_) => continue,
                Err(_) => break Ended::Closed,
            }
        };
        done.store(true, Ordering::SeqCst);
        ended
    })
}

/// `/healthz` on new HTTP/1.1 connections in a loop until `stop`; counts the 200s.
fn keep_checking(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
) -> (Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let ok = Arc::new(AtomicUsize::new(0));
    let count = ok.clone();
    let task = tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            if try_status(addr, "/healthz").await == Some(200) {
                count.fetch_add(1, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    (ok, task)
}

/// Run `attack` (which writes batches while `done` is unset) against a fresh hydrant and
/// check that the attacker loses its connection within 10 s while /healthz keeps answering.
async fn attacked_connection_is_dropped<F, Fut>(attack: F) -> Ended
where
    F: FnOnce(OwnedWriteHalf, Arc<AtomicBool>) -> Fut,
    Fut: std::future::Future<Output = (usize, OwnedWriteHalf)>,
{
    let running = start(ServeArgs::default(), |_| {}).await;
    let addr = running.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let (healthy, checker) = keep_checking(addr, stop.clone());
    let (r, w) = h2_open(addr).await;
    let done = Arc::new(AtomicBool::new(false));
    let watcher = watch_for_the_end(r, done.clone());
    let started = Instant::now();
    // The attacker keeps its write half open (a FIN would end the connection by itself).
    let (sent, _still_open) = attack(w, done.clone()).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), watcher)
        .await
        .unwrap_or_else(|_| panic!("the attacking connection survived {sent} frames"))
        .unwrap();
    let took = started.elapsed();
    // A normal client is served during and after the attack.
    let before = healthy.load(Ordering::SeqCst);
    let end = Instant::now() + Duration::from_secs(5);
    while healthy.load(Ordering::SeqCst) == before && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    checker.await.unwrap();
    assert!(
        healthy.load(Ordering::SeqCst) > before,
        "/healthz answers after the attack"
    );
    assert_eq!(try_status(addr, "/healthz").await, Some(200));
    eprintln!("attacker dropped after {took:?}, {sent} frames sent: {ended:?}");
    running.stop().await.unwrap();
    ended
}

/// Write batches of 100 units made by `unit` until the attack is noticed (`done`), 100,000
/// units in all or 20 s have passed, or the server stops reading; the units sent, counting
/// from `sent`.
async fn flood(
    w: &mut OwnedWriteHalf,
    done: &AtomicBool,
    mut sent: usize,
    mut unit: impl FnMut(&mut Vec<u8>),
) -> usize {
    let end = Instant::now() + Duration::from_secs(20);
    while !done.load(Ordering::SeqCst) && sent < 100_000 && Instant::now() < end {
        let mut batch = Vec::new();
        for _ in 0..100 {
            unit(&mut batch);
            sent += 1;
        }
        if w.write_all(&batch).await.is_err() {
            break;
        }
        tokio::task::yield_now().await;
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2_rapid_reset_flood_loses_its_connection_while_others_are_served() {
    let ended = attacked_connection_is_dropped(|mut w, done| async move {
        // HEADERS then RST_STREAM(CANCEL) on streams 1, 3, 5, ... in batches of 100 pairs, at
        // most 100,000 pairs or 20 s.
        let mut stream = 1u32;
        let sent = flood(&mut w, &done, 0, |batch| {
            batch.extend(frame(HEADERS, END_HEADERS | END_STREAM, stream, GET_BLOCK));
            batch.extend(frame(RST_STREAM, 0, stream, &CANCEL.to_be_bytes()));
            stream += 2;
        })
        .await;
        (sent, w)
    })
    .await;
    if let Ended::GoAway(code) = ended {
        assert_eq!(code, ENHANCE_YOUR_CALM);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2_continuation_flood_loses_its_connection_while_others_are_served() {
    let ended = attacked_connection_is_dropped(|mut w, done| async move {
        // A header block that never ends: HEADERS without END_HEADERS, then CONTINUATION
        // frames without it, in batches of 100, at most 100,000 frames or 20 s.
        let sent = 1;
        if w.write_all(&frame(HEADERS, END_STREAM, 1, &GET_BLOCK[..3]))
            .await
            .is_err()
        {
            return (sent, w);
        }
        let sent = flood(&mut w, &done, sent, |batch| {
            batch.extend(frame(CONTINUATION, 0, 1, &[]));
        })
        .await;
        (sent, w)
    })
    .await;
    if let Ended::GoAway(code) = ended {
        assert_eq!(code, ENHANCE_YOUR_CALM);
    }
}
