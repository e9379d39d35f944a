//! A real `redis-server` of the test's own, on a free loopback port (never 6379), with faults
//! to inject (paused, killed, restarted empty on the same port) and a small blocking RESP2
//! client to look inside it ([`RespClient`], [`Reply`]).
//!
//! The server runs with no persistence (`--save ''`, `--appendonly no`) in a scratch directory
//! of its own, which holds its log; [`RedisServer`]'s `Drop` kills it (resuming it first when
//! paused) and removes that directory. Every wait is bounded, every socket has timeouts, and
//! everything talks to 127.0.0.1 only. `tests/run.sh` installs `redis-server` when missing.
//!
//! The client is blocking (`std::net`): from an async test it briefly blocks its worker, which
//! these short calls can afford.

#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::process::{addr, free_port, KillOnDrop};

/// Read, write and connect timeout of the client [`RedisServer`] methods use.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a start waits for `PING` to answer `+PONG`.
const READY_WITHIN: Duration = Duration::from_secs(5);
/// Between two readiness probes.
const POLL: Duration = Duration::from_millis(20);
/// Fresh ports tried by a start that loses its port to another process.
const START_ATTEMPTS: usize = 3;
/// Nesting depth past which a reply is taken as garbage.
const MAX_DEPTH: usize = 32;
/// Longest status line, error or integer line accepted.
const MAX_LINE: usize = 64 * 1024;
/// Largest bulk string accepted (Redis's own limit is 512 MiB; tests never come close).
const MAX_BULK: usize = 64 * 1024 * 1024;
/// Most elements accepted in one array.
const MAX_ARRAY: usize = 1_000_000;
/// SCAN rounds of [`RedisServer::keys`] before it gives up.
const MAX_SCAN_ROUNDS: usize = 10_000;

/// One RESP2 reply. A null array (`*-1`) reads as `Bulk(None)`, like a null bulk string: both
/// are RESP2's nil.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Simple(String),
    /// `-ERR ...`, `-NOAUTH ...`: the whole line after the `-`.
    Error(String),
    /// `:42`
    Int(i64),
    /// `$3\r\nabc` or `$-1` (nil).
    Bulk(Option<Vec<u8>>),
    /// `*2\r\n...`, elements of any kind, nested arrays too.
    Array(Vec<Reply>),
}

impl Reply {
    /// The text of a simple string or a non-nil bulk string (lossy UTF-8).
    fn text(&self) -> Option<String> {
        match self {
            Reply::Simple(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    /// The bytes of a non-nil bulk string or a simple string.
    fn bytes(self) -> Option<Vec<u8>> {
        match self {
            Reply::Simple(s) => Some(s.into_bytes()),
            Reply::Bulk(Some(b)) => Some(b),
            _ => None,
        }
    }

    /// The elements of an array; panics with `what` on anything else.
    fn into_array(self, what: &str) -> Vec<Reply> {
        match self {
            Reply::Array(v) => v,
            other => panic!("{what}: expected an array, got {other:?}"),
        }
    }
}

/// A blocking RESP2 connection to a loopback Redis.
pub struct RespClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RespClient {
    /// Connects to `127.0.0.1:port`, with `timeout` for the connect and for every read and
    /// write after it. Not authenticated: send `AUTH` yourself, or use
    /// [`RedisServer::client`].
    pub fn connect(port: u16, timeout: Duration) -> io::Result<RespClient> {
        let stream = TcpStream::connect_timeout(&addr(port), timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        Ok(RespClient {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Sends one command without reading its reply (`SUBSCRIBE` answers more than once).
    pub fn send(&mut self, args: &[&str]) -> io::Result<()> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&out)?;
        self.writer.flush()
    }

    /// Reads the next reply. A read past the timeout fails with `WouldBlock` or `TimedOut`;
    /// a connection the server closed fails with `UnexpectedEof` (or a reset).
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        read_reply(&mut self.reader, 0)
    }

    /// Sends one command and reads its reply. A Redis error is `Ok(Reply::Error(..))`.
    pub fn command(&mut self, args: &[&str]) -> io::Result<Reply> {
        self.send(args)?;
        self.read_reply()
    }
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// One `\r\n`-terminated line, without the terminator; at most [`MAX_LINE`] bytes.
fn read_line(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let n = r.take(MAX_LINE as u64 + 2).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by redis",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(bad(format!(
            "RESP line not terminated by CRLF: {:?}",
            String::from_utf8_lossy(&line)
        )));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn parse_int(b: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad RESP integer {:?}", String::from_utf8_lossy(b))))
}

/// Length of a bulk string or array: `None` for `-1` (nil), an error past `max`.
fn parse_len(b: &[u8], max: usize) -> io::Result<Option<usize>> {
    match parse_int(b)? {
        -1 => Ok(None),
        n => usize::try_from(n)
            .ok()
            .filter(|&n| n <= max)
            .map(Some)
            .ok_or_else(|| bad(format!("RESP length {n} out of range"))),
    }
}

fn read_reply(r: &mut impl BufRead, depth: usize) -> io::Result<Reply> {
    if depth > MAX_DEPTH {
        return Err(bad(format!("RESP reply nested deeper than {MAX_DEPTH}")));
    }
    let line = read_line(r)?;
    let (&kind, rest) = line
        .split_first()
        .ok_or_else(|| bad("empty RESP line".into()))?;
    let text = || String::from_utf8_lossy(rest).into_owned();
    match kind {
        b'+' => Ok(Reply::Simple(text())),
        b'-' => Ok(Reply::Error(text())),
        b':' => Ok(Reply::Int(parse_int(rest)?)),
        b'$' => match parse_len(rest, MAX_BULK)? {
            None => Ok(Reply::Bulk(None)),
            Some(n) => {
                let mut buf = vec![0; n + 2];
                r.read_exact(&mut buf)?;
                if !buf.ends_with(b"\r\n") {
                    return Err(bad("bulk string not terminated by CRLF".into()));
                }
                buf.truncate(n);
                Ok(Reply::Bulk(Some(buf)))
            }
        },
        b'*' => match parse_len(rest, MAX_ARRAY)? {
            None => Ok(Reply::Bulk(None)),
            Some(n) => {
                let mut items = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    items.push(read_reply(r, depth + 1)?);
                }
                Ok(Reply::Array(items))
            }
        },
        other => Err(bad(format!(
            "unknown RESP type byte {:?} in {:?}",
            other as char,
            String::from_utf8_lossy(&line)
        ))),
    }
}

/// `redis-server` from `PATH`, else `/usr/bin/redis-server`.
fn redis_bin() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("redis-server"))
            .find(|c| c.is_file())
    });
    let bin = on_path.unwrap_or_else(|| PathBuf::from("/usr/bin/redis-server"));
    assert!(
        bin.is_file(),
        "redis-server not found on PATH nor at /usr/bin/redis-server: install the redis-server \
         package (tests/run.sh does, as root)"
    );
    bin
}

/// A fresh scratch directory for one server.
fn scratch_dir() -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "hydrant-redis-{}-{nanos}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `s` percent-encoded for the userinfo of a URL.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends `sig` (`-STOP`, `-CONT`, `-KILL`) to `pid`; whether `kill` succeeded.
fn send_signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([sig, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A `redis-server` child on `127.0.0.1:port()`, killed when dropped.
pub struct RedisServer {
    bin: PathBuf,
    port: u16,
    password: Option<String>,
    extra_args: Vec<String>,
    dir: PathBuf,
    child: Option<KillOnDrop>,
    paused: bool,
}

impl RedisServer {
    /// An empty server on a free loopback port, answering `PING` (panics if it does not
    /// within 5 s).
    pub fn start() -> RedisServer {
        Self::launch(None, &[])
    }

    /// Like [`RedisServer::start`], with `--requirepass password`; [`RedisServer::url`] and
    /// the helper methods authenticate.
    pub fn start_with_password(password: &str) -> RedisServer {
        Self::launch(Some(password), &[])
    }

    /// Like [`RedisServer::start`], with `extra` appended to the command line (e.g.
    /// `["--maxmemory", "1mb"]`). For a password use [`RedisServer::start_with_password`], so
    /// the helpers know it.
    pub fn start_with_args(extra: &[&str]) -> RedisServer {
        Self::launch(None, extra)
    }

    fn launch(password: Option<&str>, extra: &[&str]) -> RedisServer {
        let mut s = RedisServer {
            bin: redis_bin(),
            port: 0,
            password: password.map(str::to_owned),
            extra_args: extra.iter().map(|a| (*a).to_owned()).collect(),
            dir: scratch_dir(),
            child: None,
            paused: false,
        };
        // The free port may be taken by someone else before redis binds it: try another.
        let mut errors = Vec::new();
        for _ in 0..START_ATTEMPTS {
            s.port = free_port();
            match s.spawn_ready() {
                Ok(child) => {
                    s.child = Some(child);
                    return s;
                }
                Err(e) => errors.push(e),
            }
        }
        panic!(
            "redis-server did not start in {START_ATTEMPTS} attempts:\n{}",
            errors.join("\n---\n")
        );
    }

    /// Spawns redis on `self.port` and waits until `PING` answers `+PONG`; on failure the
    /// child is killed and the error carries the tail of its log.
    fn spawn_ready(&self) -> Result<KillOnDrop, String> {
        let log_path = self.dir.join("redis.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("log file {}: {e}", log_path.display()))?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let port = self.port.to_string();
        let mut cmd = Command::new(&self.bin);
        cmd.env_clear()
            .current_dir(&self.dir)
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "yes"])
            .arg("--dir")
            .arg(&self.dir);
        if let Some(pw) = &self.password {
            cmd.args(["--requirepass", pw]);
        }
        cmd.args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let mut child = KillOnDrop(
            cmd.spawn()
                .map_err(|e| format!("spawn {}: {e}", self.bin.display()))?,
        );
        let end = Instant::now() + READY_WITHIN;
        let failure = loop {
            match child.try_wait() {
                Ok(Some(st)) => break format!("redis-server on port {port} exited early: {st}"),
                Ok(None) => {}
                Err(e) => break format!("redis-server on port {port}: {e}"),
            }
            if self.ping(Duration::from_millis(200)) {
                return Ok(child);
            }
            if Instant::now() >= end {
                break format!(
                    "redis-server on port {port} not answering PING in {READY_WITHIN:?}"
                );
            }
            std::thread::sleep(POLL);
        };
        drop(child);
        let text = std::fs::read(&log_path).unwrap_or_default();
        let tail = &text[text.len().saturating_sub(2048)..];
        Err(format!(
            "{failure}; log:\n{}",
            String::from_utf8_lossy(tail)
        ))
    }

    /// Whether an (authenticated) `PING` answers `+PONG` within `timeout`.
    fn ping(&self, timeout: Duration) -> bool {
        matches!(
            self.try_command(&["PING"], timeout),
            Ok(Reply::Simple(s)) if s == "PONG"
        )
    }

    /// `redis://127.0.0.1:P/0`, or `redis://:pw@127.0.0.1:P/0` with a password.
    pub fn url(&self) -> String {
        match &self.password {
            Some(pw) => format!("redis://:{}@127.0.0.1:{}/0", url_encode(pw), self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// The loopback port, the same across [`RedisServer::restart`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the current (or last) `redis-server`.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis-server was started").id()
    }

    /// Whether the process is alive (a paused one is).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGSTOP: the server keeps its port and accepts connections but answers nothing.
    pub fn pause(&mut self) {
        assert!(
            send_signal(self.pid(), "-STOP"),
            "SIGSTOP to redis-server failed"
        );
        self.paused = true;
    }

    /// SIGCONT after [`RedisServer::pause`].
    pub fn resume(&mut self) {
        assert!(
            send_signal(self.pid(), "-CONT"),
            "SIGCONT to redis-server failed"
        );
        self.paused = false;
    }

    /// SIGKILL, and waits (at most 5 s) until the process is gone. Its data is lost.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if self.paused {
            send_signal(child.id(), "-CONT");
            self.paused = false;
        }
        let _ = child.0.kill();
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= end => {
                    panic!("redis-server {} still alive 5 s after SIGKILL", child.id())
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        // Reaped; keep the handle so `pid()` still names the dead process.
        self.child = Some(child);
    }

    /// Kills the server if it runs, then starts a new, empty one on the same port with the
    /// same arguments, retrying (bounded, about 5 s) while the port frees. Panics if the port
    /// stays taken.
    pub fn restart(&mut self) {
        self.kill();
        let end = Instant::now() + Duration::from_secs(5);
        let mut last = String::new();
        for _ in 0..50 {
            match self.spawn_ready() {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(e) => last = e,
            }
            if Instant::now() >= end {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis-server did not restart on port {}: {last}", self.port);
    }

    /// A new connection, authenticated when the server has a password, with 2 s timeouts.
    pub fn client(&self) -> RespClient {
        self.client_with_timeout(IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("redis on port {}: {e}", self.port))
    }

    fn client_with_timeout(&self, timeout: Duration) -> io::Result<RespClient> {
        let mut c = RespClient::connect(self.port, timeout)?;
        if let Some(pw) = &self.password {
            match c.command(&["AUTH", pw])? {
                Reply::Simple(ok) if ok == "OK" => {}
                other => return Err(io::Error::other(format!("AUTH refused: {other:?}"))),
            }
        }
        Ok(c)
    }

    /// One command on a new connection with 2 s timeouts; panics on an I/O error (a Redis
    /// error is `Reply::Error`).
    pub fn command(&self, args: &[&str]) -> Reply {
        self.try_command(args, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("redis {args:?} on port {}: {e}", self.port))
    }

    /// One command on a new connection with `timeout` for connecting, writing and reading;
    /// a paused server fails it with `WouldBlock`/`TimedOut`, a killed one with a refusal.
    pub fn try_command(&self, args: &[&str], timeout: Duration) -> io::Result<Reply> {
        self.client_with_timeout(timeout)?.command(args)
    }

    /// Every key of db 0 matching `pattern` (`*` for all), sorted, through `SCAN ... COUNT
    /// 1000` (not `KEYS`), bounded in rounds and time.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut c = self.client();
        keys_on(&mut c, pattern)
    }

    /// `GET key`: `None` when absent; panics on an error (e.g. a key of another type).
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self.command(&["GET", key]) {
            Reply::Bulk(v) => v,
            other => panic!("GET {key}: {other:?}"),
        }
    }

    /// Everything in db 0, for scans of what Redis holds: one `(key, value)` per string key,
    /// and for the other types one `(key, element)` per element: a hash's fields and values
    /// (`HGETALL`, flattened), a set's members, a sorted set's members (`ZRANGE 0 -1`), a
    /// list's items, a stream's ids, field names and values. A key of another type appears
    /// once with an empty value; a key gone between the scan and its read does not appear.
    pub fn dump_all(&self) -> Vec<(String, Vec<u8>)> {
        let mut c = self.client();
        let mut out = Vec::new();
        for key in keys_on(&mut c, "*") {
            let kind = c
                .command(&["TYPE", &key])
                .unwrap()
                .text()
                .unwrap_or_default();
            let read = match kind.as_str() {
                "none" => continue,
                "string" => c.command(&["GET", &key]),
                "hash" => c.command(&["HGETALL", &key]),
                "set" => c.command(&["SMEMBERS", &key]),
                "zset" => c.command(&["ZRANGE", &key, "0", "-1"]),
                "list" => c.command(&["LRANGE", &key, "0", "-1"]),
                "stream" => c.command(&["XRANGE", &key, "-", "+"]),
                _ => Ok(Reply::Bulk(Some(Vec::new()))),
            };
            let mut values = Vec::new();
            flatten(read.unwrap(), &mut values);
            if kind == "string" && values.is_empty() {
                // Expired between TYPE and GET.
                continue;
            }
            if values.is_empty() {
                values.push(Vec::new());
            }
            out.extend(values.into_iter().map(|v| (key.clone(), v)));
        }
        out
    }

    /// `FLUSHALL`: every database emptied.
    pub fn flushall(&self) {
        let r = self.command(&["FLUSHALL"]);
        assert_eq!(r, Reply::Simple("OK".into()), "FLUSHALL");
    }

    /// `SCRIPT FLUSH`: the script cache emptied (the next `EVALSHA` gets `NOSCRIPT`).
    pub fn script_flush(&self) {
        let r = self.command(&["SCRIPT", "FLUSH"]);
        assert_eq!(r, Reply::Simple("OK".into()), "SCRIPT FLUSH");
    }

    /// Kills every client connection in pub/sub mode (`flags=` with `P`, or a `sub=`,
    /// `psub=` or `ssub=` count above 0 in `CLIENT LIST`); how many were killed.
    pub fn client_kill_pubsub(&self) -> usize {
        let mut c = self.client();
        let list = c
            .command(&["CLIENT", "LIST"])
            .unwrap()
            .text()
            .expect("CLIENT LIST is a bulk string");
        let mut killed = 0;
        for line in list.lines() {
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
            };
            let count = |name: &str| {
                field(name)
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
            };
            let pubsub = field("flags").is_some_and(|f| f.contains('P'))
                || count("sub")
                || count("psub")
                || count("ssub");
            let Some(id) = field("id").filter(|_| pubsub) else {
                continue;
            };
            if c.command(&["CLIENT", "KILL", "ID", id]).unwrap() == Reply::Int(1) {
                killed += 1;
            }
        }
        killed
    }

    /// `DBSIZE` of db 0.
    pub fn dbsize(&self) -> i64 {
        match self.command(&["DBSIZE"]) {
            Reply::Int(n) => n,
            other => panic!("DBSIZE: {other:?}"),
        }
    }
}

/// `SCAN` until the cursor comes back to 0, bounded; sorted and deduplicated.
fn keys_on(c: &mut RespClient, pattern: &str) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(10);
    let mut cursor = "0".to_owned();
    let mut keys = Vec::new();
    for _ in 0..MAX_SCAN_ROUNDS {
        let reply = c
            .command(&["SCAN", &cursor, "MATCH", pattern, "COUNT", "1000"])
            .unwrap();
        let mut parts = reply.into_array("SCAN").into_iter();
        let (Some(next), Some(batch), None) = (parts.next(), parts.next(), parts.next()) else {
            panic!("SCAN: expected [cursor, keys]");
        };
        cursor = next.text().expect("SCAN cursor");
        keys.extend(
            batch
                .into_array("SCAN keys")
                .into_iter()
                .map(|k| k.text().expect("SCAN key")),
        );
        if cursor == "0" {
            keys.sort();
            keys.dedup();
            return keys;
        }
        assert!(Instant::now() < end, "SCAN did not finish within 10 s");
    }
    panic!("SCAN did not finish within {MAX_SCAN_ROUNDS} rounds");
}

/// Every string, bulk string and integer in `r`, depth first; errors and nils skipped.
fn flatten(r: Reply, out: &mut Vec<Vec<u8>>) {
    match r {
        Reply::Array(items) => items.into_iter().for_each(|i| flatten(i, out)),
        Reply::Int(n) => out.push(n.to_string().into_bytes()),
        Reply::Error(_) | Reply::Bulk(None) => {}
        other => out.extend(other.bytes()),
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            if self.paused {
                // A stopped process dies of SIGKILL too; resumed first all the same.
                send_signal(child.id(), "-CONT");
            }
        }
        // KillOnDrop: SIGKILL and reap.
        drop(self.child.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
