//! The `hydrant` binary's configuration: a bad option, environment variable or config file
//! (unknown key, bad value, not TOML), or a listen address in use, fails with exactly one
//! line on stderr that names the option and never echoes a secret; a flag beats the
//! environment, which beats the config file; no subcommand means `serve`; after SIGTERM or
//! SIGINT the process exits 0.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::process::*;

/// Runs hydrant expecting a configuration error; returns its stderr.
async fn config_error(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut child = hydrant()
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map(KillOnDrop)
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
            vec!["serve", "--cors-origins", "https://app.example.com/"],
            vec![],
            vec!["--cors-origins"],
        ),
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

/// Ports this test holds bound, so that nothing (another test's server, or a hydrant that
/// picked the wrong source) can listen on them.
struct Held(Vec<Option<std::net::TcpListener>>);

impl Held {
    /// Three free ports, held.
    fn three() -> Held {
        Held(
            (0..3)
                .map(|_| std::net::TcpListener::bind("127.0.0.1:0").ok())
                .collect(),
        )
    }

    fn port(&self, i: usize) -> u16 {
        self.0[i]
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port())
            .unwrap()
    }
}

/// Starts `hydrant serve` with `args`/`env` and checks it is healthy on port `expect` of
/// `held`, then sends `sig` (`-TERM`, `-INT`) and checks exit status 0.
///
/// The other ports stay held while it runs: had hydrant taken its address from the wrong
/// source, its bind would fail and it would never be healthy on `expect`. (Probing the
/// other ports instead, with them released, flaked: another test's server can be given the
/// same ephemeral port and answer.)
async fn serve_and_check(
    args: &[String],
    env: &[(&str, String)],
    held: &mut Held,
    expect: usize,
    sig: &str,
) {
    let port = held.port(expect);
    held.0[expect] = None;
    let mut child = hydrant()
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(KillOnDrop)
        .unwrap();
    wait_healthy(&mut child, addr(port)).await;
    let t = Instant::now();
    signal(&child, sig);
    let st = wait_exit(&mut child, Duration::from_secs(5)).await;
    assert_eq!(st.code(), Some(0), "clean exit after {sig}");
    assert!(t.elapsed() < Duration::from_secs(5));
    // Held again for the next cases (std's listeners set SO_REUSEADDR, so the connections
    // just closed do not stand in the way). Should another process have taken it meanwhile,
    // that blocks hydrant from it just the same.
    held.0[expect] = std::net::TcpListener::bind(addr(port)).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_beat_env_beat_file() {
    let mut held = Held::three();
    let (a, b, c) = (held.port(0), held.port(1), held.port(2));
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
        &mut held,
        2,
        "-TERM",
    )
    .await;
    // env + file → env
    serve_and_check(
        &["serve".into(), "--config".into(), cfg.clone()],
        &env_b,
        &mut held,
        1,
        "-TERM",
    )
    .await;
    // file only (named by HYDRANT_CONFIG), no subcommand means serve, and SIGINT also drains
    serve_and_check(
        &[],
        &[("HYDRANT_CONFIG", cfg.clone())],
        &mut held,
        0,
        "-INT",
    )
    .await;
    let _ = std::fs::remove_file(file);
}
