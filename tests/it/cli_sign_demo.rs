//! The `hydrant sign` and `hydrant demo` commands: `sign` prints one signed link that a
//! hydrant holding the key accepts (and refuses once anything in it changes), carries
//! `--rendition`, and needs `--signing-keys`; `demo` serves a simulator and hydrant on
//! `--listen` and prints a redirect URL that works.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use hydrant::config::ServeArgs;

use crate::common::process::*;
use crate::common::*;

fn sign_cli(args: &[&str]) -> std::process::Output {
    hydrant().arg("sign").args(args).output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_prints_a_url_that_hydrant_accepts() {
    let out = sign_cli(&[
        READY,
        "--ttl",
        "1h",
        "--signing-keys",
        "k",
        "--public-url",
        "https://h.example",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one URL: {stdout:?}");
    let url = lines[0];
    let prefix = format!("https://h.example/files/{READY}/redirect?");
    assert!(url.starts_with(&prefix), "{url}");
    let exp: u64 = query_param(url, "exp").unwrap().parse().unwrap();
    let now = hydrant::clock::now_unix() as u64;
    assert!(
        (now + 3590..=now + 3610).contains(&exp),
        "exp {exp} ≈ now + 1h"
    );
    let sig = query_param(url, "sig").unwrap().to_string();
    assert_eq!(sig.len(), 43);

    let s = Stack::start(ServeArgs {
        signing_keys: Some("k".into()),
        ..ServeArgs::default()
    })
    .await;
    let path_q = &url["https://h.example".len()..];
    let r = s.client.get(&s.url(path_q), None).await;
    assert_eq!(r.status, 302, "{:?}", String::from_utf8_lossy(&r.body));
    assert!(r
        .header("location")
        .unwrap()
        .contains(&format!("/cdn/{READY}/download")));

    // Tampering with anything is refused.
    let mut bad = sig.clone().into_bytes();
    bad[0] = if bad[0] == b'A' { b'B' } else { b'A' };
    let bad = String::from_utf8(bad).unwrap();
    let forged = [
        path_q.replace(&sig, &bad),
        path_q.replace(&format!("exp={exp}"), &format!("exp={}", exp + 1)),
        path_q.replace(READY, PARTIAL),
        format!("/files/{READY}/redirect"),
    ];
    for p in forged {
        let r = s.client.get(&s.url(&p), None).await;
        assert_eq!(r.status, 403, "{p}");
        assert_eq!(r.json()["code"], "forbidden");
    }
    // A key hydrant does not hold.
    let out = sign_cli(&[
        READY,
        "--signing-keys",
        "other",
        "--public-url",
        "https://h.example",
    ]);
    let other = String::from_utf8(out.stdout).unwrap();
    let r = s
        .client
        .get(&s.url(&other.trim()["https://h.example".len()..]), None)
        .await;
    assert_eq!(r.status, 403);

    // --rendition is carried in the URL and honoured.
    let out = sign_cli(&[
        READY,
        "--rendition",
        "preview",
        "--signing-keys",
        "k",
        "--public-url",
        "https://h.example/",
    ]);
    let url = String::from_utf8(out.stdout).unwrap();
    let url = url.trim();
    assert_eq!(query_param(url, "rendition"), Some("preview"));
    let r = s
        .client
        .get(&s.url(&url["https://h.example".len()..]), None)
        .await;
    assert_eq!(r.status, 302);
    assert!(r.header("location").unwrap().contains("/preview"));
    assert_eq!(s.sim.hydrate_calls(READY), 1);
    s.stop().await;

    // Without a key there is nothing to sign with: one line naming the option.
    let out = sign_cli(&[READY]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("--signing-keys"), "{err}");
    let out = sign_cli(&["bad.id", "--signing-keys", "k"]);
    assert!(!out.status.success());
}

/// `hydrant demo ARGS`, with its stdout lines arriving on the receiver.
fn spawn_demo(args: &[&str]) -> (KillOnDrop, std::sync::mpsc::Receiver<String>) {
    let mut child = hydrant()
        .arg("demo")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map(KillOnDrop)
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_prints_working_urls() {
    let port = free_port();
    let (mut child, rx) = spawn_demo(&["--listen", &format!("127.0.0.1:{port}")]);
    let end = Instant::now() + Duration::from_secs(10);
    let mut redirect_url = None;
    while redirect_url.is_none() && Instant::now() < end {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                if let Some(u) = line
                    .split('\'')
                    .find(|p| p.starts_with("http://") && p.contains("/redirect"))
                {
                    redirect_url = Some(u.to_string());
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    let Some(url) = redirect_url else {
        let _ = child.kill();
        panic!("demo printed no redirect URL");
    };
    assert!(
        url.starts_with(&format!("http://127.0.0.1:{port}/files/")),
        "printed URL uses --listen: {url}"
    );
    wait_healthy(&mut child, addr(port)).await;
    let client = HttpClient::new();
    let r = client.get(&url, None).await;
    assert_eq!(r.status, 302, "{url}");
    let loc = r.header("location").unwrap().to_string();
    assert!(loc.contains("/cdn/"), "{loc}");
    // The signed URL it points at is served by the demo's simulator.
    let cdn = client.get(&loc, None).await;
    assert_eq!(cdn.status, 200);
    assert!(!cdn.body.is_empty());
    sigterm(&child);
    let st = wait_exit(&mut child, Duration::from_secs(5)).await;
    assert_eq!(st.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_with_replicas_runs_a_cluster_on_its_own_redis() {
    // Three consecutive free-looking ports: the demo binds --listen and the next two.
    let port = free_port();
    let (mut child, rx) =
        spawn_demo(&["--replicas", "3", "--listen", &format!("127.0.0.1:{port}")]);
    let end = Instant::now() + Duration::from_secs(10);
    let mut cluster_line = None;
    while cluster_line.is_none() && Instant::now() < end {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            if line.trim_start().starts_with("cluster") {
                cluster_line = Some(line);
            }
        }
    }
    let line = cluster_line.expect("demo printed no cluster line");
    let urls: Vec<String> = line
        .split_whitespace()
        .filter(|w| w.starts_with("http://"))
        .map(str::to_string)
        .collect();
    assert_eq!(urls.len(), 3, "{line}");
    let client = HttpClient::new();
    for (i, u) in urls.iter().enumerate() {
        wait_healthy(&mut child, addr(port + i as u16)).await;
        // Each replica reports the shared Redis up within a few seconds.
        let end = Instant::now() + Duration::from_secs(6);
        loop {
            let m = client.get(&format!("{u}/metrics"), None).await;
            if metric(&String::from_utf8_lossy(&m.body), "hydrant_redis_up", &[]) == Some(1.0) {
                break;
            }
            assert!(Instant::now() < end, "{u}: redis never up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let first = client
        .get(&format!("{}/files/{READY}/redirect", urls[0]), None)
        .await;
    assert_eq!(first.header("x-cache"), Some("MISS"));
    let mut hit = false;
    for _ in 0..40 {
        let r = client
            .get(&format!("{}/files/{READY}/redirect", urls[2]), None)
            .await;
        if r.header("x-cache") == Some("HIT") {
            hit = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(hit, "no shared hit on the third replica");
    sigterm(&child);
    let st = wait_exit(&mut child, Duration::from_secs(5)).await;
    assert_eq!(st.code(), Some(0));
}
