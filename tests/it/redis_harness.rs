//! The Redis harness itself (`tests/common/redis.rs`) against a real `redis-server`: start and
//! `PING`, the RESP client (round trips, nested replies), `dump_all`, the faults (paused,
//! killed, restarted empty on the same port, pub/sub clients disconnected), a password server,
//! and that dropping a server (even a paused one) frees its port.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use crate::common::redis::*;

fn ok() -> Reply {
    Reply::Simple("OK".into())
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Some(s.as_bytes().to_vec()))
}

fn is_timeout(k: ErrorKind) -> bool {
    matches!(k, ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Polls (at most 2 s) until nothing accepts on `port`.
fn port_closes(port: u16) -> bool {
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        if RespClient::connect(port, Duration::from_millis(200)).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn starts_and_answers_ping() {
    let mut r = RedisServer::start();
    assert_ne!(r.port(), 6379);
    assert_eq!(r.url(), format!("redis://127.0.0.1:{}/0", r.port()));
    assert!(r.pid() > 0);
    assert!(r.is_running());
    assert_eq!(r.command(&["PING"]), Reply::Simple("PONG".into()));
    assert_eq!(r.dbsize(), 0);
}

#[test]
fn set_get_round_trip_and_nested_replies() {
    let r = RedisServer::start();
    assert_eq!(r.command(&["SET", "k", "v\r\nwith crlf"]), ok());
    assert_eq!(r.get("k"), Some(b"v\r\nwith crlf".to_vec()));
    assert_eq!(r.get("missing"), None);
    assert_eq!(r.command(&["INCR", "n"]), Reply::Int(1));
    assert_eq!(r.command(&["INCRBY", "n", "-5"]), Reply::Int(-4));
    assert!(matches!(r.command(&["INCR", "k"]), Reply::Error(e) if e.starts_with("ERR")));
    assert_eq!(r.dbsize(), 2);
    assert_eq!(r.keys("*"), vec!["k".to_owned(), "n".to_owned()]);
    assert_eq!(r.keys("k*"), vec!["k".to_owned()]);
    // A persistent connection, several commands on it.
    let mut c = r.client();
    assert_eq!(c.command(&["SET", "empty", ""]).unwrap(), ok());
    assert_eq!(c.command(&["GET", "empty"]).unwrap(), bulk(""));
    // Nested arrays with a nil inside (Lua's false): a Lua table reply.
    let script = "return {1, {2, 'x', {'deep'}}, redis.call('GET', 'missing')}";
    assert_eq!(
        c.command(&["EVAL", script, "0"]).unwrap(),
        Reply::Array(vec![
            Reply::Int(1),
            Reply::Array(vec![
                Reply::Int(2),
                bulk("x"),
                Reply::Array(vec![bulk("deep")])
            ]),
            Reply::Bulk(None),
        ])
    );
    // A null array reads as nil.
    assert_eq!(
        c.command(&["BLPOP", "nolist", "0.01"]).unwrap(),
        Reply::Bulk(None)
    );
}

#[test]
fn dump_all_sees_every_type() {
    let r = RedisServer::start();
    let mut c = r.client();
    c.command(&["SET", "s", "secret-string"]).unwrap();
    c.command(&["HSET", "h", "field", "secret-hash"]).unwrap();
    c.command(&["SADD", "set", "secret-member"]).unwrap();
    c.command(&["ZADD", "z", "1", "secret-z"]).unwrap();
    c.command(&["RPUSH", "l", "secret-item"]).unwrap();
    c.command(&["XADD", "x", "*", "f", "secret-stream"])
        .unwrap();
    let dump = r.dump_all();
    let has = |k: &str, v: &str| dump.iter().any(|(dk, dv)| dk == k && dv == v.as_bytes());
    assert!(has("s", "secret-string"), "{dump:?}");
    assert!(has("h", "field") && has("h", "secret-hash"), "{dump:?}");
    assert!(has("set", "secret-member"), "{dump:?}");
    assert!(has("z", "secret-z"), "{dump:?}");
    assert!(has("l", "secret-item"), "{dump:?}");
    assert!(has("x", "secret-stream"), "{dump:?}");
    r.flushall();
    assert_eq!(r.dbsize(), 0);
    assert!(r.dump_all().is_empty());
}

#[test]
fn script_flush_empties_the_script_cache() {
    let r = RedisServer::start();
    let sha = match r.command(&["SCRIPT", "LOAD", "return 7"]) {
        Reply::Bulk(Some(b)) => String::from_utf8(b).unwrap(),
        other => panic!("SCRIPT LOAD: {other:?}"),
    };
    assert_eq!(r.command(&["EVALSHA", &sha, "0"]), Reply::Int(7));
    r.script_flush();
    assert!(
        matches!(r.command(&["EVALSHA", &sha, "0"]), Reply::Error(e) if e.starts_with("NOSCRIPT"))
    );
}

#[test]
fn paused_server_times_out_then_answers_again() {
    let mut r = RedisServer::start();
    r.command(&["SET", "k", "v"]);
    r.pause();
    assert!(r.is_running());
    let t = Instant::now();
    let err = r
        .try_command(&["PING"], Duration::from_millis(300))
        .expect_err("a paused redis answers nothing");
    assert!(is_timeout(err.kind()), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(2));
    r.resume();
    assert_eq!(r.command(&["PING"]), Reply::Simple("PONG".into()));
    assert_eq!(r.get("k"), Some(b"v".to_vec()));
}

#[test]
fn killed_then_restarted_on_the_same_port_empty() {
    let mut r = RedisServer::start();
    let (port, pid, url) = (r.port(), r.pid(), r.url());
    r.command(&["SET", "k", "v"]);
    r.kill();
    assert!(!r.is_running());
    let err = r
        .try_command(&["PING"], Duration::from_millis(300))
        .expect_err("a killed redis refuses");
    assert!(!is_timeout(err.kind()), "{err:?}");
    r.restart();
    assert!(r.is_running());
    assert_eq!(r.port(), port);
    assert_eq!(r.url(), url);
    assert_ne!(r.pid(), pid);
    assert_eq!(r.dbsize(), 0);
    assert_eq!(r.get("k"), None);
    // A paused server restarts too.
    r.pause();
    r.restart();
    assert_eq!(r.command(&["PING"]), Reply::Simple("PONG".into()));
}

#[test]
fn client_kill_pubsub_disconnects_subscribers_only() {
    let r = RedisServer::start();
    let mut sub = RespClient::connect(r.port(), IO_TIMEOUT).unwrap();
    sub.send(&["SUBSCRIBE", "chan"]).unwrap();
    // Subscribed for sure once the confirmation is in.
    assert_eq!(
        sub.read_reply().unwrap(),
        Reply::Array(vec![bulk("subscribe"), bulk("chan"), Reply::Int(1)])
    );
    let mut plain = r.client();
    assert_eq!(
        plain.command(&["PING"]).unwrap(),
        Reply::Simple("PONG".into())
    );
    assert_eq!(r.client_kill_pubsub(), 1);
    let t = Instant::now();
    let err = sub
        .read_reply()
        .expect_err("the subscriber is disconnected");
    assert!(!is_timeout(err.kind()), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(2));
    // The other connection lives on, and nothing is left to kill.
    assert_eq!(
        plain.command(&["PING"]).unwrap(),
        Reply::Simple("PONG".into())
    );
    assert_eq!(r.client_kill_pubsub(), 0);
}

#[test]
fn password_server_refuses_until_auth() {
    let r = RedisServer::start_with_password("pw with/odd:chars");
    assert_eq!(
        r.url(),
        format!("redis://:pw%20with%2Fodd%3Achars@127.0.0.1:{}/0", r.port())
    );
    let mut raw = RespClient::connect(r.port(), IO_TIMEOUT).unwrap();
    assert!(
        matches!(raw.command(&["GET", "k"]).unwrap(), Reply::Error(e) if e.starts_with("NOAUTH")),
    );
    assert!(matches!(
        raw.command(&["AUTH", "wrong"]).unwrap(),
        Reply::Error(e) if e.starts_with("WRONGPASS")
    ));
    assert_eq!(raw.command(&["AUTH", "pw with/odd:chars"]).unwrap(), ok());
    assert_eq!(raw.command(&["SET", "k", "v"]).unwrap(), ok());
    // The helpers authenticate by themselves.
    assert_eq!(r.get("k"), Some(b"v".to_vec()));
    assert_eq!(r.dbsize(), 1);
}

#[test]
fn extra_args_reach_the_server() {
    let r = RedisServer::start_with_args(&["--maxmemory-policy", "allkeys-lru"]);
    assert_eq!(
        r.command(&["CONFIG", "GET", "maxmemory-policy"]),
        Reply::Array(vec![bulk("maxmemory-policy"), bulk("allkeys-lru")])
    );
    // The harness's own settings: no persistence, loopback only.
    assert_eq!(
        r.command(&["CONFIG", "GET", "save"]),
        Reply::Array(vec![bulk("save"), bulk("")])
    );
    assert_eq!(
        r.command(&["CONFIG", "GET", "bind"]),
        Reply::Array(vec![bulk("bind"), bulk("127.0.0.1")])
    );
}

#[test]
fn drop_frees_the_port_even_when_paused() {
    let r = RedisServer::start();
    let port = r.port();
    drop(r);
    assert!(port_closes(port), "redis still accepting on {port}");

    let mut r = RedisServer::start();
    let port = r.port();
    r.pause();
    drop(r);
    assert!(port_closes(port), "paused redis still accepting on {port}");
}
