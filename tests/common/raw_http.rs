//! HTTP/1.1 at the byte level, for the hostile-input tests: a client that writes exact bytes
//! ([`RawConn`]) and a fake upstream that records the exact bytes it receives
//! ([`CaptureUpstream`]), both parsing strictly with httparse, so a test can say what reached
//! the upstream: how many requests, each one's framing fields, its body.
//!
//! Everything binds 127.0.0.1; every read is bounded in time and every buffer in size.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout_at, Instant};

/// Largest buffer either side keeps (a test never sends more).
const MAX_BUF: usize = 4 << 20;

/// Decode a chunked body at the start of `buf`, strictly (hex sizes of at most 16 digits,
/// CRLF everywhere, trailers allowed). `Ok(None)`: incomplete; `Err`: malformed.
pub fn dechunk(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let mut at = 0;
    let mut body = Vec::new();
    loop {
        let Some(eol) = find(&buf[at..], b"\r\n") else {
            return if buf.len() - at > 64 {
                Err("chunk size line too long".into())
            } else {
                Ok(None)
            };
        };
        let line = &buf[at..at + eol];
        let size_part = line.split(|b| *b == b';').next().unwrap_or(b"");
        if size_part.is_empty()
            || size_part.len() > 16
            || !size_part.iter().all(u8::is_ascii_hexdigit)
        {
            return Err(format!(
                "bad chunk size {:?}",
                String::from_utf8_lossy(line)
            ));
        }
        let size = usize::from_str_radix(std::str::from_utf8(size_part).unwrap(), 16)
            .map_err(|e| e.to_string())?;
        at += eol + 2;
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let Some(eol) = find(&buf[at..], b"\r\n") else {
                    return Ok(None);
                };
                at += eol + 2;
                if eol == 0 {
                    return Ok(Some((body, at)));
                }
            }
        }
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[at..at + size]);
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Err("chunk data not followed by CRLF".into());
        }
        at += size + 2;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Header fields as (lowercase name, raw value), in order.
pub type Fields = Vec<(String, Vec<u8>)>;

fn values<'a>(fields: &'a Fields, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    fields
        .iter()
        .filter(move |(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

/// Body framing as a head declares it.
fn framing(fields: &Fields) -> Result<Option<Result<usize, ()>>, String> {
    let te: Vec<&[u8]> = values(fields, "transfer-encoding").collect();
    let cl: Vec<&[u8]> = values(fields, "content-length").collect();
    if !te.is_empty() {
        return Ok(Some(Err(())));
    }
    match cl.as_slice() {
        [] => Ok(None),
        [one] => std::str::from_utf8(one)
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .map(|n| Some(Ok(n)))
            .ok_or_else(|| "bad content-length".to_string()),
        _ => Err("several content-length fields".into()),
    }
}

/// Read a body framed by `fields` from `buf` (after the head). `Ok(None)`: incomplete.
fn read_body(
    fields: &Fields,
    buf: &[u8],
    close_delimited: bool,
) -> Result<Option<(Vec<u8>, usize)>, String> {
    match framing(fields)? {
        Some(Err(())) => dechunk(buf),
        Some(Ok(n)) if buf.len() >= n => Ok(Some((buf[..n].to_vec(), n))),
        Some(Ok(_)) => Ok(None),
        None if close_delimited => Ok(None),
        None => Ok(Some((Vec::new(), 0))),
    }
}

fn fields_of(headers: &[httparse::Header<'_>]) -> Fields {
    headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect()
}

// ---------------------------------------------------------------- client

/// One response read off a raw connection.
#[derive(Debug, Clone)]
pub struct RawResp {
    pub status: u16,
    pub fields: Fields,
    pub body: Vec<u8>,
    /// `1xx` statuses received before this one.
    pub informational: Vec<u16>,
}

impl RawResp {
    /// The first value of `name`, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        values(&self.fields, name)
            .next()
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Whether it carries `connection: close`.
    pub fn closes(&self) -> bool {
        values(&self.fields, "connection").any(|v| {
            String::from_utf8_lossy(v)
                .to_ascii_lowercase()
                .contains("close")
        })
    }
}

/// A client connection that writes exact bytes and parses what comes back.
pub struct RawConn {
    stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl RawConn {
    pub async fn open(addr: SocketAddr) -> RawConn {
        RawConn {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
            eof: false,
        }
    }

    /// Write `bytes`; a server that refused early may have closed, so a failure is ignored.
    pub async fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Read more into the buffer before `deadline`; false on EOF, reset or timeout.
    async fn fill(&mut self, deadline: Instant) -> bool {
        if self.eof || self.buf.len() > MAX_BUF {
            return false;
        }
        let mut chunk = [0u8; 16 * 1024];
        match timeout_at(deadline, self.stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.eof = true;
                false
            }
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(_) => false,
        }
    }

    /// The next response head: (status, fields, head length); `None` on close or timeout.
    async fn head(&mut self, deadline: Instant) -> Option<(u16, Fields, usize)> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&self.buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let fields = fields_of(resp.headers);
                    return Some((resp.code.unwrap_or(0), fields, n));
                }
                Ok(httparse::Status::Partial) => {}
                Err(e) => panic!(
                    "unparseable response ({e}): {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
            if !self.fill(deadline).await {
                return None;
            }
        }
    }

    /// The next `1xx` (consumed) or `None` if the next head is a final one (left in place).
    pub async fn informational(&mut self) -> Option<u16> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let (status, _, n) = self.head(deadline).await?;
        if (100..200).contains(&status) {
            self.buf.drain(..n);
            return Some(status);
        }
        None
    }

    /// The next final response, whole (within 5 s); `None` if the connection closed (or
    /// stalled) before one arrived.
    pub async fn response(&mut self) -> Option<RawResp> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut informational = Vec::new();
        loop {
            let (status, fields, n) = self.head(deadline).await?;
            if (100..200).contains(&status) {
                informational.push(status);
                self.buf.drain(..n);
                continue;
            }
            loop {
                // HEAD and 1xx/204/304 have no body; the tests send neither HEAD nor expect those.
                match read_body(&fields, &self.buf[n..], false) {
                    Ok(Some((body, used))) => {
                        self.buf.drain(..n + used);
                        return Some(RawResp {
                            status,
                            fields,
                            body,
                            informational,
                        });
                    }
                    Ok(None) => {
                        if !self.fill(deadline).await {
                            return None;
                        }
                    }
                    Err(e) => panic!("malformed response body: {e}"),
                }
            }
        }
    }

    /// Whether the server closes the connection (EOF or reset) within 3 s, sending nothing
    /// more.
    pub async fn closed(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(3);
        let before = self.buf.len();
        while self.fill(deadline).await {}
        self.eof && self.buf.len() == before
    }
}

/// Send `bytes` on a fresh connection and read one response.
pub async fn exchange(addr: SocketAddr, bytes: &[u8]) -> (RawResp, RawConn) {
    let mut c = RawConn::open(addr).await;
    c.send(bytes).await;
    let r = c.response().await.unwrap_or_else(|| {
        panic!(
            "no response to {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        )
    });
    (r, c)
}

// ---------------------------------------------------------------- upstream

/// One request a [`CaptureUpstream`] received, whole.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    pub target: String,
    pub fields: Fields,
    /// The decoded body.
    pub body: Vec<u8>,
    /// The exact bytes of the request, head and body as sent.
    pub raw: Vec<u8>,
}

impl Captured {
    /// The first value of `name`, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        values(&self.fields, name)
            .next()
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// How many fields named `name`.
    pub fn count(&self, name: &str) -> usize {
        values(&self.fields, name).count()
    }

    /// Panics unless the request has one unambiguous framing: at most one `Content-Length`
    /// or one `Transfer-Encoding: chunked`, never both, and CRLF line ends only.
    pub fn assert_unambiguous(&self) {
        let cl = self.count("content-length");
        let te = self.count("transfer-encoding");
        assert!(
            cl <= 1 && te <= 1 && cl + te <= 1,
            "framing fields: {self:?}"
        );
        if te == 1 {
            assert!(
                self.header("transfer-encoding")
                    .unwrap()
                    .eq_ignore_ascii_case("chunked"),
                "{self:?}"
            );
        }
        let head_end = find(&self.raw, b"\r\n\r\n").unwrap();
        for (i, b) in self.raw[..head_end].iter().enumerate() {
            if *b == b'\n' {
                assert_eq!(self.raw[i - 1], b'\r', "bare LF in the head: {self:?}");
            }
        }
    }
}

/// What a [`CaptureUpstream`] does after writing its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Read the next request on the connection.
    KeepAlive,
    /// Close the connection.
    Close,
    /// Keep the connection open, sending nothing more (up to 60 s).
    Hold,
    /// Send one more byte every 100 ms (for up to 60 s).
    Trickle,
}

type Responder = dyn Fn(&Captured) -> (Vec<u8>, Then) + Send + Sync;

/// A raw TCP upstream: parses each request strictly, records it, and answers with what its
/// responder says. A connection whose bytes do not parse is recorded in `rejected` and closed;
/// bytes left when a connection ends (an aborted request) in `leftover`.
pub struct CaptureUpstream {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Captured>>>,
    pub rejected: Arc<Mutex<Vec<String>>>,
    pub leftover: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl CaptureUpstream {
    /// Answer with `respond`.
    pub async fn start(
        respond: impl Fn(&Captured) -> (Vec<u8>, Then) + Send + Sync + 'static,
    ) -> CaptureUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = CaptureUpstream {
            addr,
            requests: Arc::default(),
            rejected: Arc::default(),
            leftover: Arc::default(),
        };
        let respond: Arc<Responder> = Arc::new(respond);
        let (requests, rejected, leftover) = (
            up.requests.clone(),
            up.rejected.clone(),
            up.leftover.clone(),
        );
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve_conn(
                    tcp,
                    respond.clone(),
                    requests.clone(),
                    rejected.clone(),
                    leftover.clone(),
                ));
            }
        });
        up
    }

    /// Base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every whole request received so far.
    pub fn requests(&self) -> Vec<Captured> {
        self.requests.lock().clone()
    }

    /// Requests whose target starts with `prefix`.
    pub fn matching(&self, prefix: &str) -> Vec<Captured> {
        self.requests()
            .into_iter()
            .filter(|r| r.target.starts_with(prefix))
            .collect()
    }

    /// Panics if any connection sent bytes that did not parse as HTTP/1.1.
    pub fn assert_nothing_rejected(&self) {
        let r = self.rejected.lock();
        assert!(r.is_empty(), "the upstream could not parse: {r:?}");
    }
}

/// A whole response: `status`, `extra` fields, `content-length` and `body`.
pub fn reply(status: u16, extra: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n");
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

async fn serve_conn(
    mut tcp: TcpStream,
    respond: Arc<Responder>,
    requests: Arc<Mutex<Vec<Captured>>>,
    rejected: Arc<Mutex<Vec<String>>>,
    leftover: Arc<Mutex<Vec<Vec<u8>>>>,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        // Parse as many whole requests as the buffer holds.
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            let n = match req.parse(&buf) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => break,
                Err(e) => {
                    rejected.lock().push(format!(
                        "{e}: {:?}",
                        String::from_utf8_lossy(&buf[..buf.len().min(300)])
                    ));
                    return;
                }
            };
            let fields = fields_of(req.headers);
            let (method, target) = (
                req.method.unwrap_or("").to_string(),
                req.path.unwrap_or("").to_string(),
            );
            let (body, used) = match read_body(&fields, &buf[n..], false) {
                Ok(Some(x)) => x,
                Ok(None) => break,
                Err(e) => {
                    rejected.lock().push(e);
                    return;
                }
            };
            let captured = Captured {
                method,
                target,
                fields,
                body,
                raw: buf[..n + used].to_vec(),
            };
            buf.drain(..n + used);
            requests.lock().push(captured.clone());
            let (answer, then) = respond(&captured);
            if tcp.write_all(&answer).await.is_err() {
                return;
            }
            match then {
                Then::KeepAlive => {}
                Then::Close => {
                    let _ = tcp.shutdown().await;
                    return;
                }
                Then::Hold => {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    return;
                }
                Then::Trickle => {
                    for _ in 0..600 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        if tcp.write_all(b" ").await.is_err() {
                            return;
                        }
                    }
                    return;
                }
            }
        }
        match tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 && buf.len() < MAX_BUF => buf.extend_from_slice(&chunk[..n]),
            _ => {
                if !buf.is_empty() {
                    leftover.lock().push(buf);
                }
                return;
            }
        }
    }
}
