//! Test support: a tiny scripted HTTP server for failure injection, and helpers to drive a
//! transport and collect its events.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gantry_config::{HttpConfig, ServerConfig, TransportConfig};
use gantry_core::{Id, Message, Request};
use http::{HeaderMap, Method, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use http_body_util::channel::{Channel, Sender};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::upstream::transport::{TransportContext, TransportEvent};

/// Upper bound for waiting on any one event in a test: a hang guard, not a timing check.
pub(crate) const GUARD: Duration = Duration::from_secs(30);

/// A request the test server received.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Seen {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The JSON-RPC method in the body, if any.
    pub(crate) fn rpc_method(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        Some(v.get("method")?.as_str()?.to_owned())
    }
}

/// How a scripted response body ends.
pub(crate) enum End {
    /// Cleanly, after the chunks.
    Finish,
    /// Abruptly: the connection breaks after the chunks.
    Cut,
    /// Not at all: more chunks come from the receiver until it closes (then cleanly).
    Feed(mpsc::UnboundedReceiver<Bytes>),
}

/// A scripted response.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) chunks: Vec<Bytes>,
    pub(crate) end: End,
}

impl Reply {
    pub(crate) fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            chunks: Vec::new(),
            end: End::Finish,
        }
    }

    pub(crate) fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply::status(status)
            .header("content-type", "application/json")
            .chunk(body.into())
    }

    pub(crate) fn sse(chunks: &[&str]) -> Reply {
        let mut r = Reply::status(200).header("content-type", "text/event-stream");
        for c in chunks {
            r = r.chunk((*c).to_owned());
        }
        r
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn chunk(mut self, data: impl Into<Bytes>) -> Reply {
        self.chunks.push(data.into());
        self
    }

    pub(crate) fn end(mut self, end: End) -> Reply {
        self.end = end;
        self
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A scripted server on 127.0.0.1. Every request is recorded, then answered by the handler.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl TestServer {
    pub(crate) async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let handler = handler.clone();
                        let log = log.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(answer(req, &*handler, &log).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestServer { addr, seen, task }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything received so far.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (bounded) until a received request matches.
    pub(crate) async fn wait_for(&self, what: &str, pred: impl Fn(&Seen) -> bool) -> Seen {
        let deadline = tokio::time::Instant::now() + GUARD;
        loop {
            if let Some(s) = self.seen().into_iter().find(|s| pred(s)) {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the server never saw {what}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The requests with this HTTP method.
    pub(crate) fn seen_with(&self, method: Method) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == method)
            .collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    req: hyper::Request<Incoming>,
    handler: &Handler,
    log: &Mutex<Vec<Seen>>,
) -> Response<Channel<Bytes, std::io::Error>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
    };
    log.lock().unwrap().push(seen.clone());
    let reply = handler(&seen);
    let (tx, body) = Channel::new(16);
    tokio::spawn(write_body(tx, reply.chunks, reply.end));
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    for (name, value) in reply.headers {
        resp.headers_mut().append(name, value.parse().unwrap());
    }
    resp
}

async fn write_body(mut tx: Sender<Bytes, std::io::Error>, chunks: Vec<Bytes>, end: End) {
    for c in chunks {
        if tx.send_data(c).await.is_err() {
            return;
        }
    }
    match end {
        End::Finish => {}
        End::Cut => {
            // Let the connection take every chunk (and flush it: the test runtime has one
            // thread, so hyper finishes that poll before this task runs again), then break
            // it. Aborting at once would drop the chunks still buffered.
            while tx.capacity() < tx.max_capacity() {
                tokio::task::yield_now().await;
            }
            tokio::task::yield_now().await;
            tx.abort(std::io::Error::other("cut by the test"));
        }
        End::Feed(mut rx) => {
            while let Some(c) = rx.recv().await {
                if tx.send_data(c).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A server config for `url` with the given transport kind.
pub(crate) fn server_config(transport: TransportConfig, max_message_bytes: usize) -> ServerConfig {
    ServerConfig {
        name: "test".into(),
        transport,
        connect_timeout: Duration::from_secs(10),
        list_timeout: Duration::from_secs(30),
        request_timeout: Duration::from_secs(30),
        max_message_bytes,
        max_in_flight: gantry_config::DEFAULT_MAX_IN_FLIGHT,
        tool_timeouts: BTreeMap::new(),
        protocol: gantry_config::ProtocolChoice::Auto,
        start: gantry_config::StartMode::Eager,
        idle_shutdown: None,
        health: Default::default(),
        tools: BTreeMap::new(),
        prompts: BTreeMap::new(),
    }
}

pub(crate) fn http_config(url: String) -> HttpConfig {
    HttpConfig {
        url,
        headers: Vec::new(),
    }
}

pub(crate) fn context() -> TransportContext {
    TransportContext {
        server: "test".into(),
    }
}

pub(crate) fn request(id: i64, method: &str, params: serde_json::Value) -> Message {
    Message::Request(Request {
        id: Id::Num(id),
        method: method.into(),
        params: Some(params.into()),
    })
}

/// The next event, or a panic naming what was awaited.
pub(crate) async fn next_event(
    rx: &mut mpsc::Receiver<TransportEvent>,
    waiting_for: &str,
) -> TransportEvent {
    match tokio::time::timeout(GUARD, rx.recv()).await {
        Ok(Some(ev)) => ev,
        Ok(None) => panic!("event channel closed while waiting for {waiting_for}"),
        Err(_) => panic!("no event within {GUARD:?} while waiting for {waiting_for}"),
    }
}

/// Every event until the channel closes (all senders dropped).
pub(crate) async fn drain(rx: &mut mpsc::Receiver<TransportEvent>) -> Vec<TransportEvent> {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(GUARD, rx.recv()).await {
            Ok(Some(ev)) => out.push(ev),
            Ok(None) => return out,
            Err(_) => panic!("event channel still open after {GUARD:?}; got {out:?}"),
        }
    }
}

/// A JSON-RPC result response body.
pub(crate) fn result_json(id: i64, result: serde_json::Value) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
}

/// An SSE `message` event.
pub(crate) fn sse_message(id: Option<&str>, json: &str) -> String {
    match id {
        Some(id) => format!("event: message\nid: {id}\ndata: {json}\n\n"),
        None => format!("event: message\ndata: {json}\n\n"),
    }
}
