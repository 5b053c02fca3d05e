//! The HTTP/1.1 client of the upstream transports: plain `http://`, keep-alive connections,
//! driven by the task that makes the request.
//!
//! Why not hyper's pooled client: each of its connections runs as a task of its own, so
//! every exchange crosses a channel to that task and a oneshot back, with two extra task
//! switches, on the hottest path Gantry has (DESIGN.md §8). Here the caller writes the
//! request and reads the response on the socket itself; the connection goes back to its
//! [`Host`]'s idle list as soon as the body has been read to its end.
//!
//! What it speaks: requests with a `Content-Length` body; responses framed by
//! `Content-Length`, `chunked` or the end of the connection (streamed as they arrive, as
//! SSE needs); `1xx` answers skipped; `Connection: close` and HTTP/1.0 honoured. Not here:
//! TLS (upstreams are `http://` only), HTTP/2, proxies, pipelining.
//!
//! A connection taken from the idle list may have been closed by the server meanwhile (its
//! keep-alive timeout). Such a request fails before a single byte of an answer arrived and is
//! sent once more on a new connection; a request on a new connection is never repeated.

use std::future::{Future as _, poll_fn};
use std::io::Write as _;
use std::mem::MaybeUninit;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
#[cfg(test)]
use http::{HeaderMap, Request};
use http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long opening a TCP connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections older than this are not used again (servers close theirs after a while).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per host; more are closed.
const MAX_IDLE: usize = 256;
/// The largest response head (status line and headers) read.
const MAX_HEAD: usize = 64 * 1024;
/// The most response headers read.
const MAX_HEADERS: usize = 100;
/// The longest chunk-size or trailer line read.
const MAX_LINE: usize = 4096;
/// How much room a read asks for.
const READ_SIZE: usize = 16 * 1024;
/// Bodies up to this size go out in the same write as the head.
const INLINE_BODY: usize = 64 * 1024;

impl Host {
    /// The host of `uri` (`http://` with a host, as `parse_http_url` checked), with its own
    /// idle connections, which close when the last clone of it is dropped. Each transport
    /// has its own: its connections go when it goes.
    pub(crate) fn new(uri: &Uri) -> Arc<Host> {
        let host = uri.host().unwrap_or("");
        let port = uri.port_u16().unwrap_or(80);
        let header = match uri.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        Arc::new(Host {
            name: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            header: HeaderValue::from_str(&header)
                .unwrap_or_else(|_| HeaderValue::from_static("localhost")),
            idle: Mutex::new(Vec::new()),
        })
    }
}

/// One server address and its idle keep-alive connections.
#[derive(Debug)]
pub(crate) struct Host {
    /// The host name or address, without IPv6 brackets.
    name: String,
    port: u16,
    /// The `Host` header: the URL's host and port.
    header: HeaderValue,
    /// Most recently used last.
    idle: Mutex<Vec<Idle>>,
}

#[derive(Debug)]
struct Idle {
    conn: Conn,
    since: Instant,
}

/// An open connection and what was read from it but not consumed yet.
#[derive(Debug)]
struct Conn {
    io: TcpStream,
    buf: BytesMut,
}

/// A request that did not get a response head.
#[derive(Debug)]
pub(crate) struct ClientError {
    message: String,
    /// The connection was reused and ended before any byte of an answer: the server had
    /// closed it while idle, and the request can go again on a new one.
    stale: bool,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    fn new(message: impl Into<String>) -> ClientError {
        ClientError {
            message: message.into(),
            stale: false,
        }
    }
}

// === impl Host ===

impl Host {
    /// Starts a request: its request line and `Host` header.
    pub(crate) fn start(&self, method: &Method, uri: &Uri) -> Outgoing {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut head = Vec::with_capacity(384);
        head.extend_from_slice(method.as_str().as_bytes());
        head.push(b' ');
        head.extend_from_slice(path.as_bytes());
        head.extend_from_slice(b" HTTP/1.1\r\n");
        put_header(&mut head, HOST.as_str(), &self.header);
        Outgoing {
            head,
            // Only POST and PUT announce an empty body.
            length_always: *method == Method::POST || *method == Method::PUT,
            no_body: *method == Method::HEAD,
        }
    }

    /// Sends `req` (its `Host` header, if any, is replaced by the host's).
    #[cfg(test)]
    pub(crate) async fn request(
        self: &Arc<Self>,
        req: Request<Bytes>,
    ) -> Result<Answer, ClientError> {
        let (parts, body) = req.into_parts();
        let mut out = self.start(&parts.method, &parts.uri);
        for (name, value) in &parts.headers {
            out.header(name, value);
        }
        self.send(out, body).await
    }

    /// Sends a request and returns the response once its head has arrived; the body is read
    /// as it is polled.
    pub(crate) async fn send(
        self: &Arc<Self>,
        out: Outgoing,
        body: Bytes,
    ) -> Result<Answer, ClientError> {
        let no_body = out.no_body;
        let head = out.finish(&body);
        let mut retried = false;
        loop {
            // The retry takes a new connection: the other idle ones may have been closed
            // with the first (a restarted server).
            let idle = if retried { None } else { self.checkout() };
            let (mut conn, reused) = match idle {
                Some(conn) => (conn, true),
                None => (self.connect().await?, false),
            };
            match conn.exchange(&head, &body, reused).await {
                Ok(resp) => return self.respond(conn, resp, no_body),
                Err(e) if e.stale => {
                    tracing::debug!(host = %self.name, error = %e, "an idle connection was closed by the server; sending again");
                    retried = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The most recently used idle connection still open, if any.
    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().expect("idle connections lock");
        while let Some(Idle { conn, since }) = idle.pop() {
            if since.elapsed() < IDLE_TIMEOUT && conn.is_open() {
                return Some(conn);
            }
        }
        None
    }

    /// Puts a connection whose exchange is complete back for the next request.
    fn checkin(&self, conn: Conn) {
        let mut idle = self.idle.lock().expect("idle connections lock");
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self) -> Result<Conn, ClientError> {
        let target = format!("{}:{}", self.name, self.port);
        let connecting = async {
            let mut last = None;
            for addr in tokio::net::lookup_host((self.name.as_str(), self.port)).await? {
                match TcpStream::connect(addr).await {
                    Ok(io) => return Ok(io),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address")
            }))
        };
        let io = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(Ok(io)) => io,
            Ok(Err(e)) => return Err(ClientError::new(format!("connect to {target}: {e}"))),
            Err(_) => {
                return Err(ClientError::new(format!(
                    "connect to {target}: no answer within {CONNECT_TIMEOUT:?}"
                )));
            }
        };
        // Requests and answers are small and latency-bound.
        let _ = io.set_nodelay(true);
        Ok(Conn {
            io,
            buf: BytesMut::new(),
        })
    }

    /// The response for a received head; the body owns the connection until its end.
    fn respond(
        self: &Arc<Self>,
        conn: Conn,
        head: Head,
        no_body: bool,
    ) -> Result<Answer, ClientError> {
        let status = head.status;
        let te = head.get("transfer-encoding");
        let has_length = head.get("content-length").is_some();
        let framing =
            if no_body || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
                Framing::Length(0)
            } else if let Some(te) = te {
                let chunked = te
                    .rsplit(|b| *b == b',')
                    .next()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                if chunked {
                    Framing::Chunked(ChunkState::Size)
                } else {
                    Framing::UntilClose
                }
            } else if has_length {
                // Repeated values must agree (RFC 9112 §6.3).
                let mut lengths = head.values("content-length").map(|v| {
                    std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.trim().parse::<u64>().ok())
                });
                let first = lengths.next().flatten();
                match first.filter(|n| lengths.all(|l| l == Some(*n))) {
                    Some(n) => Framing::Length(n),
                    None => {
                        return Err(ClientError::new(
                            "the response has an invalid Content-Length",
                        ));
                    }
                }
            } else {
                Framing::UntilClose
            };
        // A body framed both ways may be read differently by whatever sits in between: the
        // connection is not trusted with another request.
        let both = te.is_some() && has_length;
        let keep_alive = head.keep_alive && !both && !matches!(framing, Framing::UntilClose);
        let mut body = UpstreamBody {
            conn: Some(conn),
            host: self.clone(),
            framing,
            keep_alive,
        };
        if matches!(body.framing, Framing::Length(0)) {
            body.finish();
        }
        Ok(Answer { head, body })
    }
}

/// A request head being written: headers go straight into the bytes sent.
#[derive(Debug)]
pub(crate) struct Outgoing {
    head: Vec<u8>,
    /// `Content-Length` is sent even for an empty body.
    length_always: bool,
    /// The answer has no body whatever its headers say (`HEAD`).
    no_body: bool,
}

impl Outgoing {
    /// Adds a header. `Host`, `Content-Length` and `Transfer-Encoding` are the client's own
    /// and skipped.
    pub(crate) fn header(&mut self, name: &HeaderName, value: &HeaderValue) {
        if name != HOST && name != CONTENT_LENGTH && name != TRANSFER_ENCODING {
            put_header(&mut self.head, name.as_str(), value);
        }
    }

    /// The whole head, with `body` in it if it is small enough to go in the same write.
    fn finish(self, body: &Bytes) -> Vec<u8> {
        let inline = body.len() <= INLINE_BODY;
        let mut head = self.head;
        head.reserve(32 + if inline { body.len() } else { 0 });
        if !body.is_empty() || self.length_always {
            let _ = write!(head, "content-length: {}\r\n", body.len());
        }
        head.extend_from_slice(b"\r\n");
        if inline {
            head.extend_from_slice(body);
        }
        head
    }
}

fn put_header(out: &mut Vec<u8>, name: &str, value: &HeaderValue) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A parsed response head.
#[derive(Debug)]
struct Head {
    status: StatusCode,
    /// The status line and headers as received.
    bytes: Bytes,
    /// Where each header's name and value sit in `bytes`.
    fields: Vec<Field>,
    /// The server lets the connection be used again.
    keep_alive: bool,
}

/// One header, as ranges of its head's bytes.
#[derive(Clone, Copy, Debug)]
struct Field {
    name: (usize, usize),
    value: (usize, usize),
}

impl Head {
    /// The values of the header `name` (any case), in order.
    fn values<'s>(&'s self, name: &str) -> impl Iterator<Item = &'s [u8]> {
        self.fields
            .iter()
            .filter(move |f| self.bytes[f.name.0..f.name.1].eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| &self.bytes[f.value.0..f.value.1])
    }

    fn get(&self, name: &str) -> Option<&[u8]> {
        self.values(name).next()
    }
}

/// A response whose head has arrived: its status, its headers as they were sent (read
/// without building a header map: a call looks at two or three of them), and its body.
#[derive(Debug)]
pub(crate) struct Answer {
    head: Head,
    body: UpstreamBody,
}

impl Answer {
    pub(crate) fn status(&self) -> StatusCode {
        self.head.status
    }

    /// The first value of the header `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&[u8]> {
        self.head.get(name)
    }

    /// Every header as a map.
    #[cfg(test)]
    pub(crate) fn header_map(&self) -> HeaderMap {
        let bytes = &self.head.bytes;
        let mut map = HeaderMap::new();
        for f in &self.head.fields {
            map.append(
                HeaderName::from_bytes(&bytes[f.name.0..f.name.1]).expect("a checked name"),
                HeaderValue::from_bytes(&bytes[f.value.0..f.value.1]).expect("a checked value"),
            );
        }
        map
    }

    pub(crate) fn into_body(self) -> UpstreamBody {
        self.body
    }
}

// === impl Conn ===

impl Conn {
    /// `false` if the server closed the connection (or sent something unasked) while idle.
    fn is_open(&self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        // Readiness is cleared by every short read, so "not readable" means nothing arrived
        // since the last answer: no end of stream either. A stale readiness is checked with
        // one read that must find nothing.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.io.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Writes the request and reads the response head. `reused`: the connection served an
    /// earlier request (so its failure before any answer may be the server's idle close).
    async fn exchange(
        &mut self,
        head: &[u8],
        body: &Bytes,
        reused: bool,
    ) -> Result<Head, ClientError> {
        // Broken before any byte of an answer on a reused connection: the server's idle close.
        let stale = |e: &std::io::Error, received: usize| {
            reused
                && received == 0
                && matches!(
                    e.kind(),
                    std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                )
        };
        let mut written = self.io.write_all(head).await;
        if written.is_ok() && body.len() > INLINE_BODY {
            written = self.io.write_all(body).await;
        }
        if let Err(e) = written {
            return Err(ClientError {
                message: format!("sending the request failed: {e}"),
                stale: stale(&e, 0),
            });
        }
        loop {
            if let Some(head) = self.parse_head()? {
                return Ok(head);
            }
            let received = self.buf.len();
            match self.fill().await {
                Ok(0) => {
                    return Err(ClientError {
                        message: "the server closed the connection without an answer".into(),
                        stale: reused && received == 0,
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(ClientError {
                        message: format!("reading the answer failed: {e}"),
                        stale: stale(&e, received),
                    });
                }
            }
        }
    }

    /// The response head, once all of it is in the buffer (`1xx` answers are skipped).
    fn parse_head(&mut self) -> Result<Option<Head>, ClientError> {
        loop {
            if self.buf.is_empty() {
                return Ok(None);
            }
            let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut []);
            let parsed = httparse::ParserConfig::default()
                .parse_response_with_uninit_headers(&mut resp, &self.buf, &mut slots);
            let len = match parsed {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) if self.buf.len() > MAX_HEAD => {
                    return Err(ClientError::new(format!(
                        "the response head is larger than {MAX_HEAD} bytes"
                    )));
                }
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(e) => return Err(ClientError::new(format!("invalid HTTP response: {e}"))),
            };
            let code = resp.code.unwrap_or(0);
            if (100..200).contains(&code) {
                self.buf.advance(len);
                continue;
            }
            let status = StatusCode::from_u16(code)
                .map_err(|_| ClientError::new(format!("invalid HTTP status {code}")))?;
            let base = self.buf.as_ptr() as usize;
            let mut keep_alive = resp.version == Some(1);
            let mut fields = Vec::with_capacity(resp.headers.len());
            for h in resp.headers.iter() {
                let name = h.name.as_ptr() as usize - base;
                let value = h.value.as_ptr() as usize - base;
                if h.name.eq_ignore_ascii_case("connection")
                    && h.value
                        .split(|b| *b == b',')
                        .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
                {
                    keep_alive = false;
                }
                fields.push(Field {
                    name: (name, name + h.name.len()),
                    value: (value, value + h.value.len()),
                });
            }
            let bytes = self.buf.split_to(len).freeze();
            return Ok(Some(Head {
                status,
                bytes,
                fields,
                keep_alive,
            }));
        }
    }

    /// Reads more into the buffer; `Ok(0)` at the end of the stream.
    async fn fill(&mut self) -> std::io::Result<usize> {
        poll_fn(|cx| self.poll_fill(cx)).await
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < READ_SIZE / 4 {
            self.buf.reserve(READ_SIZE);
        }
        // A read future only borrows the socket and the buffer: polling a fresh one each
        // time loses nothing.
        pin!(self.io.read_buf(&mut self.buf)).poll(cx)
    }
}

// === UpstreamBody ===

/// How the end of a body is found.
#[derive(Debug)]
enum Framing {
    /// This many bytes are left.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(ChunkState),
    /// The server closes the connection at the end.
    UntilClose,
    /// All of it was read.
    Done,
}

#[derive(Debug)]
enum ChunkState {
    /// A chunk-size line is next.
    Size,
    /// This many bytes of chunk data are left.
    Data(u64),
    /// The CRLF after a chunk's data is next.
    DataEnd,
    /// Trailer lines until an empty one.
    Trailers,
}

/// The body of a response, read from the connection as it is polled. Dropped before its
/// end, it closes the connection (that is how a 2026-07-28 request is cancelled).
#[derive(Debug)]
pub(crate) struct UpstreamBody {
    conn: Option<Conn>,
    host: Arc<Host>,
    framing: Framing,
    keep_alive: bool,
}

/// Reading a body failed: the connection broke or the server broke the framing.
#[derive(Debug)]
pub(crate) struct BodyReadError(String);

impl std::fmt::Display for BodyReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BodyReadError {}

impl UpstreamBody {
    /// The body is complete: the connection goes back to the host if it may.
    fn finish(&mut self) {
        self.framing = Framing::Done;
        if let Some(conn) = self.conn.take()
            && self.keep_alive
            && conn.buf.is_empty()
        {
            self.host.checkin(conn);
        }
    }

    fn broken(&mut self, why: String) -> Poll<Option<Result<Frame<Bytes>, BodyReadError>>> {
        self.conn = None;
        self.framing = Framing::Done;
        Poll::Ready(Some(Err(BodyReadError(why))))
    }

    /// Reads more; `Ready(Ok(false))` at the end of the stream.
    fn poll_more(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<bool>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(Ok(false));
        };
        conn.poll_fill(cx).map_ok(|n| n > 0)
    }
}

/// One step of the chunked framing on what is buffered in `buf`.
fn chunk_step(state: &mut ChunkState, buf: &mut BytesMut) -> Step {
    if let ChunkState::Data(left) = state {
        if buf.is_empty() {
            return Step::NeedMore;
        }
        let n = (*left).min(buf.len() as u64);
        *left -= n;
        if *left == 0 {
            *state = ChunkState::DataEnd;
        }
        return Step::Frame(buf.split_to(n as usize).freeze());
    }
    let line = match take_line(buf) {
        Ok(Some(line)) => line,
        Ok(None) => return Step::NeedMore,
        Err(why) => return Step::Bad(why),
    };
    match state {
        ChunkState::Size => {
            let size = line[..].split(|b| *b == b';').next().unwrap_or_default();
            match parse_hex(size.trim_ascii()) {
                Some(0) => *state = ChunkState::Trailers,
                Some(n) => *state = ChunkState::Data(n),
                None => return Step::Bad("invalid chunk size in a chunked body"),
            }
        }
        ChunkState::DataEnd if line.is_empty() => *state = ChunkState::Size,
        ChunkState::DataEnd => return Step::Bad("a chunk is longer than its size"),
        ChunkState::Trailers if line.is_empty() => return Step::End,
        ChunkState::Trailers | ChunkState::Data(_) => {}
    }
    Step::Progress
}

/// What one step of reading a chunked body gave.
enum Step {
    Frame(Bytes),
    /// The last chunk and the trailers were read.
    End,
    Bad(&'static str),
    /// The state moved on; step again.
    Progress,
    /// Nothing more can be done with what is buffered.
    NeedMore,
}

/// The next line (without its line end), if all of it is buffered.
fn take_line(buf: &mut BytesMut) -> Result<Option<BytesMut>, &'static str> {
    match buf.iter().position(|b| *b == b'\n') {
        Some(end) => {
            let mut line = buf.split_to(end + 1);
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(end - 1);
            }
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err("a line of a chunked body is too long"),
        None => Ok(None),
    }
}

/// A chunk size: 1 to 16 hex digits.
fn parse_hex(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| {
        let v = (*d as char).to_digit(16)?;
        Some(n << 4 | u64::from(v))
    })
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyReadError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyReadError>>> {
        let this = self.get_mut();
        loop {
            let buf = match (&mut this.framing, this.conn.as_mut()) {
                (Framing::Done, _) | (_, None) => return Poll::Ready(None),
                (_, Some(conn)) => &mut conn.buf,
            };
            match &mut this.framing {
                Framing::Done => unreachable!("handled above"),
                Framing::Chunked(state) => match chunk_step(state, buf) {
                    Step::Frame(data) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Step::End => {
                        this.finish();
                        return Poll::Ready(None);
                    }
                    Step::Bad(why) => return this.broken(why.into()),
                    Step::Progress => continue,
                    Step::NeedMore => {}
                },
                Framing::Length(left) if !buf.is_empty() => {
                    let n = (*left).min(buf.len() as u64);
                    *left -= n;
                    let data = buf.split_to(n as usize).freeze();
                    if *left == 0 {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Framing::UntilClose if !buf.is_empty() => {
                    return Poll::Ready(Some(Ok(Frame::data(buf.split().freeze()))));
                }
                Framing::Length(_) | Framing::UntilClose => {}
            }
            match this.poll_more(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(true)) => {}
                Poll::Ready(Ok(false)) => {
                    return match this.framing {
                        Framing::UntilClose => {
                            this.conn = None;
                            this.framing = Framing::Done;
                            Poll::Ready(None)
                        }
                        Framing::Chunked(_) => {
                            this.broken("the connection ended inside a chunked body".into())
                        }
                        _ => this.broken("the connection ended before the whole body".into()),
                    };
                }
                Poll::Ready(Err(e)) => return this.broken(e.to_string()),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.framing, Framing::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(n) => SizeHint::with_exact(n),
            Framing::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests;
