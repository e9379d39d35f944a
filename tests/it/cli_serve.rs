//! `hydrant serve` as a process: with trace logging, in text and JSON, its logs never carry
//! an API key, client or admin token, signing key, link signature or upstream URL signature;
//! SIGTERM with a request hung upstream exits 0 once `--drain-timeout` has passed, and the
//! hung client sees its connection end.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use http::Method;
use http_body_util::BodyExt;
use hydrant::sim::{self, FaultKind, SimAccount, SimConfig};

use crate::common::process::*;
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_never_contain_secrets() {
    let key = "vg_sim_key_zeta9sekrit";
    let ctok = "ctok_log_secret_5150";
    let admin = "adm_log_secret_6160";
    let signing = "sk_log_secret_7170";
    let wrong = "wrong_tok_secret_8180";
    let file = "vg_file_zeta9sekrit_0001";
    let simh = sim::start(
        SimConfig {
            accounts: vec![SimAccount {
                api_key: key.into(),
                name: "Zeta".into(),
                seed_files: 2,
            }],
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let signer = hydrant::signing::Signer::new(vec![signing.into()]).unwrap();
    let exp = hydrant::clock::now_unix() as u64 + 600;
    let sig = signer.sign(file, exp);

    for format in ["text", "json"] {
        let port = free_port();
        let mut child = hydrant()
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--upstream",
                &simh.base_url(),
                "--client-tokens",
                ctok,
                "--admin-token",
                admin,
                "--signing-keys",
                signing,
                "--log-format",
                format,
            ])
            .env("VIDEOGEN_API_KEY", key)
            .env("RUST_LOG", "trace")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map(KillOnDrop)
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        wait_healthy(&mut child, addr(port)).await;
        let h = format!("http://127.0.0.1:{port}");
        let c = HttpClient::new();
        let r = c
            .get(
                &format!("{h}/files/{file}/redirect?exp={exp}&sig={sig}"),
                None,
            )
            .await;
        assert_eq!(r.status, 302);
        let location = r.header("location").unwrap().to_string();
        let amz = query_param(&location, "X-Amz-Signature")
            .unwrap()
            .to_string();
        let r = c
            .get(&format!("{h}/files/{file}?exp={exp}&sig={sig}"), None)
            .await;
        assert_eq!(r.status, 200);
        let bad_sig = format!(
            "{}{}",
            if sig.starts_with('A') { "B" } else { "A" },
            &sig[1..]
        );
        assert_eq!(
            c.get(
                &format!("{h}/files/{file}/redirect?exp={exp}&sig={bad_sig}"),
                None
            )
            .await
            .status,
            403
        );
        assert_eq!(c.get(&format!("{h}/v1/me"), Some(ctok)).await.status, 200);
        assert_eq!(c.get(&format!("{h}/v1/me"), Some(key)).await.status, 200);
        assert_eq!(c.get(&format!("{h}/v1/me"), Some(wrong)).await.status, 401);
        let r = c
            .post(&format!("{h}/v1/files/{file}/hydrate"), Some(ctok), None)
            .await;
        assert_eq!(r.status, 200);
        let r = c
            .send(
                Method::DELETE,
                &format!("{h}/admin/files/{file}"),
                Some(admin),
                None,
            )
            .await;
        assert_eq!(r.status, 200);
        // The same over h2c.
        let h2 = h2c_client();
        let req = get_with_bearer(&format!("{h}/v1/me"), ctok);
        let resp = tokio::time::timeout(Duration::from_secs(10), h2.request(req))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(resp.status(), 200);
        let _ = resp.into_body().collect().await;
        drop(h2);

        sigterm(&child);
        let st = wait_exit(&mut child, Duration::from_secs(5)).await;
        assert_eq!(st.code(), Some(0));
        let logs = reader.join().unwrap();
        assert!(logs.lines().count() >= 10, "logs were written: {logs}");
        assert!(
            logs.contains("TRACE") || logs.contains("DEBUG") || logs.contains("\"level\""),
            "verbose logging was on"
        );
        assert!(logs.contains("/v1/me"), "request lines are logged");
        for secret in [key, ctok, admin, signing, wrong, sig.as_str(), amz.as_str()] {
            assert!(
                !logs.contains(secret),
                "{format} logs contain {secret:?}:\n{}",
                logs.lines()
                    .filter(|l| l.contains(secret))
                    .take(5)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    simh.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_hung_request_exits_after_the_drain_timeout() {
    let simh = sim::start(SimConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    simh.push_fault(me_fault(FaultKind::Hang, 1));
    let port = free_port();
    let mut child = hydrant()
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--upstream",
            &simh.base_url(),
            "--drain-timeout",
            "1s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(KillOnDrop)
        .unwrap();
    wait_healthy(&mut child, addr(port)).await;
    let client = hyper_client();
    let req = get_with_bearer(&format!("http://127.0.0.1:{port}/v1/me"), ALPHA);
    let hung = tokio::spawn(async move { client.request(req).await.map(|r| r.status()) });
    let end = Instant::now() + Duration::from_secs(3);
    while simh.stats().total_requests == 0 && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(simh.stats().total_requests, 1, "the request is in flight");
    let t = Instant::now();
    sigterm(&child);
    let st = wait_exit(&mut child, Duration::from_secs(4)).await;
    let took = t.elapsed();
    assert_eq!(st.code(), Some(0));
    assert!(
        took >= Duration::from_millis(900),
        "drained first: {took:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "bounded by --drain-timeout: {took:?}"
    );
    // The hung client sees its connection end rather than hanging forever.
    let res = tokio::time::timeout(Duration::from_secs(3), hung)
        .await
        .expect("client released")
        .unwrap();
    assert!(res.is_err(), "{res:?}");
    simh.shutdown();
}
