//! The `hydrant` binary: configuration errors, precedence (flags > env > file), `sign`,
//! `demo`, SIGTERM exit status, and logs that never carry secrets.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::{Duration, Instant};

use http::Method;
use http_body_util::BodyExt;
use hydrant::config::ServeArgs;
use hydrant::sim::{self, FaultKind, SimAccount, SimConfig};

use crate::common::process::*;
use crate::common::*;

/// Runs hydrant expecting a configuration error; returns its stderr.
async fn config_error(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut child = hydrant()
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let st = wait_exit(&mut child, Duration::from_secs(10)).await;
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!st.success(), "{args:?} {env:?} should fail; stderr: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?} {env:?}: exactly one line, got {err:?}"
    );
    err
}

/// Arguments, environment, and what stderr must name.
type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, Vec<&'a str>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_is_one_line_naming_the_option() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let unknown = temp_file(
        "unknown.toml",
        "listen = \"127.0.0.1:0\"\nlisten_adress = \"x\"\n",
    );
    let bad_value = temp_file("badvalue.toml", "hydrate_rate = \"fast\"\n");
    let not_toml = temp_file("nottoml.toml", "this is = = not toml [\n");
    let unknown_s = unknown.to_str().unwrap();
    let bad_value_s = bad_value.to_str().unwrap();
    let not_toml_s = not_toml.to_str().unwrap();
    let cases: Vec<Case> = vec![
        (
            vec!["serve", "--hydrate-rate", "fast"],
            vec![],
            vec!["--hydrate-rate"],
        ),
        (
            vec!["--hydrate-rate", "fast"],
            vec![],
            vec!["--hydrate-rate"],
        ),
        (vec!["serve", "--listen", "nope"], vec![], vec!["--listen"]),
        (
            vec!["serve", "--cache-max-bytes", "lots"],
            vec![],
            vec!["--cache-max-bytes"],
        ),
        (
            vec!["serve", "--drain-timeout", "soon"],
            vec![],
            vec!["--drain-timeout"],
        ),
        (
            vec!["serve", "--upstream", "ftp://x"],
            vec![],
            vec!["--upstream"],
        ),
        (
            vec!["serve"],
            vec![("HYDRANT_MAX_TTL", "5x")],
            vec!["max-ttl"],
        ),
        (
            vec!["serve"],
            vec![("HYDRANT_HYDRATE_RATE", "fast")],
            vec!["hydrate-rate"],
        ),
        (
            vec!["serve", "--config", unknown_s],
            vec![],
            vec!["--config", "listen_adress"],
        ),
        (
            vec!["serve"],
            vec![("HYDRANT_CONFIG", unknown_s)],
            vec!["listen_adress"],
        ),
        (
            vec!["serve", "--config", bad_value_s],
            vec![],
            vec!["hydrate-rate"],
        ),
        (
            vec!["serve", "--config", not_toml_s],
            vec![],
            vec!["--config"],
        ),
        (
            vec!["serve", "--listen", busy_addr.as_str()],
            vec![],
            vec!["--listen"],
        ),
    ];
    for (args, env, needles) in cases {
        let err = config_error(&args, &env).await;
        for n in needles {
            assert!(err.contains(n), "{args:?} {env:?}: {err:?} should name {n}");
        }
    }
    // A secret in a bad value is never echoed.
    let err = config_error(&["serve", "--api-key", "vg_secret_key_77\u{7f}"], &[]).await;
    assert!(err.contains("--api-key"), "{err}");
    assert!(!err.contains("vg_secret_key_77"), "{err}");
    let err = config_error(
        &["serve", "--client-tokens", "ctok_secret_88"],
        &[("HYDRANT_LISTEN", "127.0.0.1:0")],
    )
    .await;
    assert!(err.contains("--client-tokens"), "{err}");
    assert!(!err.contains("ctok_secret_88"), "{err}");
    for p in [unknown, bad_value, not_toml] {
        let _ = std::fs::remove_file(p);
    }
    drop(busy);
}

/// Starts `hydrant serve` with `args`/`env`, checks it is healthy on `expect` and not on the
/// other ports, then sends `sig` (`-TERM`, `-INT`) and checks exit status 0.
async fn serve_and_check(
    args: &[String],
    env: &[(&str, String)],
    expect: u16,
    others: &[u16],
    sig: &str,
) {
    let mut child = hydrant()
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_healthy(&mut child, addr(expect)).await;
    for p in others {
        assert_eq!(
            try_status(addr(*p), "/healthz").await,
            None,
            "port {p} unused"
        );
    }
    let t = Instant::now();
    signal(&child, sig);
    let st = wait_exit(&mut child, Duration::from_secs(5)).await;
    assert_eq!(st.code(), Some(0), "clean exit after {sig}");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_beat_env_beat_file() {
    let (a, b, c) = (free_port(), free_port(), free_port());
    let file = temp_file(
        "precedence.toml",
        &format!("listen = \"127.0.0.1:{a}\"\nupstream = \"http://127.0.0.1:9\"\n"),
    );
    let cfg = file.to_str().unwrap().to_string();
    let env_b = [("HYDRANT_LISTEN", format!("127.0.0.1:{b}"))];
    // flag + env + file → flag
    serve_and_check(
        &[
            "serve".into(),
            "--config".into(),
            cfg.clone(),
            "--listen".into(),
            format!("127.0.0.1:{c}"),
        ],
        &env_b,
        c,
        &[a, b],
        "-TERM",
    )
    .await;
    // env + file → env
    serve_and_check(
        &["serve".into(), "--config".into(), cfg.clone()],
        &env_b,
        b,
        &[a, c],
        "-TERM",
    )
    .await;
    // file only (named by HYDRANT_CONFIG), no subcommand means serve, and SIGINT also drains
    serve_and_check(&[], &[("HYDRANT_CONFIG", cfg.clone())], a, &[b, c], "-INT").await;
    let _ = std::fs::remove_file(file);
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_prints_working_urls() {
    let port = free_port();
    let mut child = hydrant()
        .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
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
