//! Streamable HTTP upstream transport, client side of MCP 2025-03-26 … 2025-11-25.
//!
//! Every message the gateway sends is its own `POST` to the server's one URL. The answer to
//! a request comes back either as a JSON body or as an SSE stream that may first carry
//! related traffic (progress, log messages, server→client requests); all of it goes up as
//! [`TransportEvent`]s, tagged with the id of the request whose stream carried it. A stream
//! that breaks before the response is resumed with `GET` + `Last-Event-ID` when the server
//! gave event ids. Once the protocol version is agreed, a `GET` stream receives what the
//! server sends on its own; `close` ends it and deletes the session.
//!
//! The small HTTP helpers at the bottom are shared with the legacy SSE transport.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gantry_config::HttpConfig;
use gantry_core::protocol::code;
use gantry_core::{Id, Message, Payload, Response as RpcResponse, RpcError};
use http::header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::Body;
use serde_json::Value;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::http1::{Answer, Host, Outgoing, UpstreamBody};
use super::sse_codec::SseDecoder;
use super::{EventSender, TransportContext, TransportError, TransportEvent, post_message};

const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
const ACCEPT_POST: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
pub(super) const ACCEPT_SSE: HeaderValue = HeaderValue::from_static("text/event-stream");
pub(super) const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// How often a broken response stream is resumed without receiving a message in between.
const RESUME_ATTEMPTS: u32 = 3;
/// Wait before resuming a stream when the server gave no `retry:`.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
/// Longest wait between attempts to reopen the server-initiated stream.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long the rest of a response stream is read after the response itself arrived (the
/// server should end it right away; reading to the end keeps the connection reusable).
const LINGER: Duration = Duration::from_secs(1);
/// How long `close` waits for the answer to `DELETE`.
const DELETE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long `send` waits for the server to take a notification or response before
/// returning anyway (the exchange goes on in its task).
pub(super) const ORDER_WAIT: Duration = Duration::from_secs(2);
/// How much of an error body is read (to quote it, or to find a JSON-RPC error in it).
pub(super) const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// How many characters of a body an error message quotes.
const EXCERPT_CHARS: usize = 300;

/// A Streamable HTTP connection.
// Reached through `Transport`, which the rest of the crate does not use yet.
pub(crate) struct HttpTransport {
    shared: Arc<Shared>,
    /// The server-initiated `GET` stream, once opened.
    server_stream: Mutex<Option<JoinHandle<()>>>,
}

/// What the transport and its request tasks share.
struct Shared {
    server: Arc<str>,
    /// The server's address and its idle connections.
    host: Arc<Host>,
    url: Uri,
    /// The URL without credentials or query, for logs and errors.
    shown: String,
    /// The configured headers (values marked sensitive).
    headers: Vec<(HeaderName, HeaderValue)>,
    max: usize,
    events: EventSender,
    session: RwLock<Option<HeaderValue>>,
    version: RwLock<Option<HeaderValue>>,
    /// `true` once `close` was called: every task ends.
    shutdown: watch::Sender<bool>,
    /// Why the transport is finished; set once, together with the `Closed` event.
    gone: OnceLock<String>,
}

/// Where a response stream stands, across resumptions.
#[derive(Default)]
struct StreamState {
    /// The last event id seen, ready to be sent as `Last-Event-ID`.
    last_id: Option<HeaderValue>,
    /// The server's `retry:` hint.
    retry: Option<Duration>,
    /// Our response has arrived.
    answered: bool,
    /// Messages received since the stream was last (re)opened.
    messages: usize,
}

/// Why reading a response stream stopped.
enum StreamEnd {
    /// The server ended it.
    Eof,
    /// The connection broke.
    Broken(String),
    /// An event was larger than `max_message_bytes`.
    TooLarge,
    /// Nobody listens to the events any more.
    Unheard,
}

/// Why a `GET` did not open a stream.
enum GetFailure {
    Unreachable(String),
    Status(StatusCode, String),
    NotEventStream(String),
}

// === impl HttpTransport ===

// Reached through `Transport`, which the rest of the crate does not use yet.
impl HttpTransport {
    /// Checks the URL and headers. Nothing is sent until the first message.
    pub(crate) async fn connect(
        cfg: &HttpConfig,
        max_message_bytes: usize,
        ctx: &TransportContext,
        events: EventSender,
    ) -> Result<HttpTransport, TransportError> {
        let url = parse_http_url(&cfg.url)?;
        // The transport sets these itself; its values win.
        let headers = parse_headers(
            &cfg.headers,
            &[
                ACCEPT,
                CONTENT_TYPE,
                MCP_SESSION_ID,
                MCP_PROTOCOL_VERSION,
                LAST_EVENT_ID,
            ],
        )?;
        let shown = shown_url(&url);
        tracing::debug!(server = %ctx.server, url = %shown, "Streamable HTTP transport ready");
        Ok(HttpTransport {
            shared: Arc::new(Shared {
                server: ctx.server.clone(),
                host: Host::new(&url),
                url,
                shown,
                headers,
                max: max_message_bytes,
                events,
                session: RwLock::new(None),
                version: RwLock::new(None),
                shutdown: watch::Sender::new(false),
                gone: OnceLock::new(),
            }),
            server_stream: Mutex::new(None),
        })
    }

    /// Posts one message; the exchange runs as a task and reports through the events.
    /// Requests are better sent with [`HttpTransport::exchange`], run by their caller.
    pub(crate) async fn send(
        &self,
        msg: &Message,
        extra: Vec<(HeaderName, HeaderValue)>,
    ) -> Result<(), TransportError> {
        let shared = self.shared.clone();
        let mut headers = crate::mcp_headers::routing(msg).unwrap_or_default();
        headers.extend(extra);
        post_message(
            &self.shared.gone,
            &self.shared.shutdown,
            msg,
            move |body, id, accepted| async move {
                // Only a request has an outcome; its caller waits for it as an event.
                let asked = id.clone();
                match (shared.post(body, id, accepted, headers).await, asked) {
                    (Some(Ok(result)), Some(id)) => {
                        let msg = Message::Response(RpcResponse::ok(id, result));
                        shared.emit(msg, None).await;
                    }
                    (Some(Err(error)), Some(id)) => shared.fail(id, error).await,
                    _ => {}
                }
            },
        )
        .await
    }

    /// The POST exchange of one request, for its caller to run: no task, and no channel on
    /// the way back when the server answers with one JSON body, whose outcome is returned.
    /// Anything else (an SSE stream's messages, the response at its end, a failure) goes up
    /// as events, as for every other message, and the exchange returns `None`.
    ///
    /// A 2026-07-28 request (its `_meta` names the version) goes with its routing headers and
    /// `extra` (`Mcp-Param-*`). Dropping the exchange closes its response stream, which is
    /// how that era cancels a request.
    pub(crate) fn exchange(
        &self,
        msg: &Message,
        id: Id,
        extra: Vec<(HeaderName, HeaderValue)>,
    ) -> Result<
        impl Future<Output = Option<Result<Payload, RpcError>>> + Send + 'static,
        TransportError,
    > {
        if let Some(reason) = self.shared.gone.get() {
            return Err(TransportError::Closed(reason.clone()));
        }
        let mut headers = crate::mcp_headers::routing(msg).unwrap_or_default();
        headers.extend(extra);
        let body = Bytes::from(msg.to_vec());
        let shared = self.shared.clone();
        Ok(async move { shared.post(body, Some(id), None, headers).await })
    }

    /// Sends `MCP-Protocol-Version: version` from now on and opens the server's stream.
    pub(crate) fn set_protocol_version(&self, version: &str) {
        match HeaderValue::from_str(version) {
            Ok(v) => *self.shared.version.write().expect("version lock") = Some(v),
            Err(_) => {
                tracing::warn!(server = %self.shared.server, version, "protocol version cannot be sent as a header");
                return;
            }
        }
        let mut slot = self.server_stream.lock().expect("stream lock");
        if slot.is_some() || *self.shared.shutdown.borrow() || self.shared.gone.get().is_some() {
            return;
        }
        let shared = self.shared.clone();
        let mut stop = shared.shutdown.subscribe();
        *slot = Some(tokio::spawn(async move {
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => {}
                () = shared.server_stream() => {}
            }
        }));
    }

    /// Stops every task, then ends the session with `DELETE` (best effort, bounded).
    pub(crate) async fn close(&self) {
        let shared = &self.shared;
        shared.shutdown.send_replace(true);
        if let Some(task) = self.server_stream.lock().expect("stream lock").take() {
            task.abort();
        }
        let session = shared.session.read().expect("session lock").clone();
        if session.is_some() && shared.gone.get().is_none() {
            let req = shared.request(Method::DELETE, None, None, &[]);
            match tokio::time::timeout(DELETE_TIMEOUT, shared.host.send(req, Bytes::new())).await {
                Ok(Ok(resp)) => {
                    tracing::debug!(server = %shared.server, status = %resp.status(), "ended the session with DELETE");
                }
                Ok(Err(e)) => {
                    tracing::debug!(server = %shared.server, error = %error_chain(&e), "DELETE of the session failed");
                }
                Err(_) => {
                    tracing::debug!(server = %shared.server, "no answer to DELETE of the session in time");
                }
            }
        }
        let reason = "closed by the gateway";
        if shared.gone.set(reason.to_owned()).is_ok() {
            // The peer already knows; this only keeps the event sequence complete.
            let _ = shared.events.try_send(TransportEvent::Closed {
                reason: reason.to_owned(),
            });
        }
    }
}

impl Drop for HttpTransport {
    fn drop(&mut self) {
        // Dropped without close(): no task may outlive the transport.
        self.shared.shutdown.send_replace(true);
    }
}

// === impl Shared ===

impl Shared {
    /// A request to the server's URL with the configured and protocol headers, and `extra`
    /// (which, like the protocol headers, win over a configured header of the same name).
    fn request(
        &self,
        method: Method,
        accept: Option<HeaderValue>,
        last_event_id: Option<&HeaderValue>,
        extra: &[(HeaderName, HeaderValue)],
    ) -> Outgoing {
        let is_post = method == Method::POST;
        let mut out = self.host.start(&method, &self.url);
        for (name, value) in &self.headers {
            if !extra.iter().any(|(n, _)| n == name) {
                out.header(name, value);
            }
        }
        if let Some(accept) = &accept {
            out.header(&ACCEPT, accept);
        }
        if is_post {
            out.header(&CONTENT_TYPE, &APPLICATION_JSON);
        }
        if let Some(s) = self.session.read().expect("session lock").as_ref() {
            out.header(&MCP_SESSION_ID, s);
        }
        if let Some(v) = self.version.read().expect("version lock").as_ref() {
            out.header(&MCP_PROTOCOL_VERSION, v);
        }
        if let Some(id) = last_event_id {
            out.header(&LAST_EVENT_ID, id);
        }
        for (name, value) in extra {
            out.header(name, value);
        }
        out
    }

    /// One POST exchange: sends the message and reports what came back. The outcome of a
    /// request answered with one JSON body is returned; all else goes up as events.
    /// `accepted` is dropped once the server has answered (or could not be reached).
    async fn post(
        &self,
        body: Bytes,
        id: Option<Id>,
        accepted: Option<oneshot::Sender<()>>,
        extra: Vec<(HeaderName, HeaderValue)>,
    ) -> Option<Result<Payload, RpcError>> {
        let req = self.request(Method::POST, Some(ACCEPT_POST), None, &extra);
        let resp = self.host.send(req, body).await;
        drop(accepted);
        let resp = match resp {
            Ok(resp) => resp,
            Err(e) => {
                id.as_ref()?;
                return Some(Err(unreachable_error(&self.server, &self.shown, &e)));
            }
        };
        self.capture_session(&resp);
        let status = resp.status();
        if !status.is_success() {
            // Rare, and large as a future: boxed, so that every exchange's future stays small.
            Box::pin(self.refused(resp, id)).await;
            return None;
        }
        let Some(id) = id else {
            // A notification or a response: 202 (or 200) is all there is to it.
            let _ =
                tokio::time::timeout(LINGER, read_body(resp.into_body(), ERROR_BODY_LIMIT)).await;
            return None;
        };
        if is_content_type(&resp, "application/json") {
            return self.json_reply(resp, id).await;
        }
        if is_content_type(&resp, "text/event-stream") {
            Box::pin(self.request_stream(resp.into_body(), id)).await;
        } else {
            let error = if status == StatusCode::ACCEPTED || has_empty_body(&resp) {
                format!(
                    "server {} accepted the request (HTTP {status}) but did not answer it",
                    self.server
                )
            } else {
                format!(
                    "server {} answered HTTP {status} with content type {}; expected \
                     application/json or text/event-stream",
                    self.server,
                    content_type(&resp).unwrap_or("(none)")
                )
            };
            return Some(Err(RpcError::new(code::INTERNAL_ERROR, error)));
        }
        None
    }

    /// A request answered with one JSON message: its outcome, if it is the response.
    async fn json_reply(&self, resp: Answer, id: Id) -> Option<Result<Payload, RpcError>> {
        let bytes = match read_body(resp.into_body(), self.max).await {
            Ok(b) => b,
            Err(BodyError::TooLarge) => {
                let msg = format!(
                    "server {} sent a response larger than max_message_bytes ({} bytes)",
                    self.server, self.max
                );
                tracing::warn!(server = %self.server, max = self.max, "refused a response larger than max_message_bytes");
                return Some(Err(RpcError::new(code::INTERNAL_ERROR, msg)));
            }
            Err(BodyError::Read(e)) => {
                let msg = format!("reading the response of server {} failed: {e}", self.server);
                return Some(Err(RpcError::new(code::UPSTREAM_CLOSED, msg)));
            }
        };
        match Message::from_slice(&bytes) {
            Ok(Message::Response(r)) if r.id == id => Some(r.outcome),
            Ok(msg) => {
                if !self.emit(msg, Some(id)).await {
                    return None;
                }
                let msg = format!(
                    "the JSON reply of server {} is not the response to this request",
                    self.server
                );
                Some(Err(RpcError::new(code::INTERNAL_ERROR, msg)))
            }
            Err(e) => {
                tracing::warn!(server = %self.server, error = %e, body = %excerpt(&bytes), "the server's reply is not a JSON-RPC message");
                let msg = format!(
                    "the reply of server {} is not a JSON-RPC message: {e}",
                    self.server
                );
                Some(Err(RpcError::new(code::INTERNAL_ERROR, msg)))
            }
        }
    }

    /// A request answered with an SSE stream: reads it, resuming it if it breaks early.
    async fn request_stream(&self, body: UpstreamBody, id: Id) {
        let mut state = StreamState::default();
        let mut body = body;
        let mut attempts = 0;
        let mut last_error: String;
        loop {
            state.messages = 0;
            match self.pump(&mut body, &mut state, Some(&id)).await {
                StreamEnd::Eof => last_error = "the stream ended".into(),
                StreamEnd::Broken(e) => last_error = e,
                StreamEnd::TooLarge => {
                    let msg = format!(
                        "server {} sent a message larger than max_message_bytes ({} bytes) \
                         on the response stream",
                        self.server, self.max
                    );
                    tracing::warn!(server = %self.server, max = self.max, "dropped a response stream with a message larger than max_message_bytes");
                    self.fail(id, RpcError::new(code::INTERNAL_ERROR, msg))
                        .await;
                    return;
                }
                StreamEnd::Unheard => return,
            }
            if state.answered {
                return;
            }
            if state.messages > 0 {
                attempts = 0;
            }
            let Some(last_id) = state.last_id.clone() else {
                tracing::warn!(server = %self.server, %id, reason = %last_error, "response stream ended before the response");
                let msg = format!(
                    "server {} closed the stream before answering ({last_error}) and gave no \
                     event id to resume it",
                    self.server
                );
                self.fail(id, RpcError::new(code::UPSTREAM_CLOSED, msg))
                    .await;
                return;
            };
            body = loop {
                if attempts >= RESUME_ATTEMPTS {
                    let msg = format!(
                        "server {} closed the stream before answering, and resuming it failed \
                         {attempts} times (last: {last_error})",
                        self.server
                    );
                    self.fail(id, RpcError::new(code::UPSTREAM_CLOSED, msg))
                        .await;
                    return;
                }
                attempts += 1;
                tokio::time::sleep(backoff(state.retry, attempts)).await;
                tracing::debug!(server = %self.server, %id, attempt = attempts, "resuming a response stream with Last-Event-ID");
                match self.open_get(Some(&last_id)).await {
                    Ok(b) => break b,
                    Err(GetFailure::Status(StatusCode::NOT_FOUND, _)) if self.has_session() => {
                        self.session_expired(Some(id)).await;
                        return;
                    }
                    Err(f) => last_error = f.describe(),
                }
            };
        }
    }

    /// The server-initiated stream: reopened (with `Last-Event-ID`) until `close`.
    async fn server_stream(&self) {
        let mut state = StreamState::default();
        let mut failures = 0;
        loop {
            state.messages = 0;
            match self.open_get(state.last_id.as_ref()).await {
                Ok(mut body) => {
                    tracing::debug!(server = %self.server, "server stream open");
                    let end = self.pump(&mut body, &mut state, None).await;
                    let why = match end {
                        StreamEnd::Unheard => return,
                        StreamEnd::Eof | StreamEnd::TooLarge => "the server ended it".to_owned(),
                        StreamEnd::Broken(e) => e,
                    };
                    tracing::debug!(server = %self.server, reason = %why, "server stream closed; reopening");
                    if state.messages > 0 {
                        failures = 0;
                    }
                }
                Err(GetFailure::Status(status, _)) if status.is_client_error() => {
                    tracing::debug!(server = %self.server, %status, "the server offers no server-initiated stream");
                    return;
                }
                Err(GetFailure::NotEventStream(ct)) => {
                    tracing::debug!(server = %self.server, content_type = %ct, "the server offers no server-initiated stream");
                    return;
                }
                Err(f) => {
                    tracing::debug!(server = %self.server, error = %f.describe(), "cannot open the server stream");
                }
            }
            failures += 1;
            tokio::time::sleep(backoff(state.retry, failures)).await;
        }
    }

    /// `GET` with `Accept: text/event-stream`: the server stream, or a resumed one.
    async fn open_get(
        &self,
        last_event_id: Option<&HeaderValue>,
    ) -> Result<UpstreamBody, GetFailure> {
        let req = self.request(Method::GET, Some(ACCEPT_SSE), last_event_id, &[]);
        let resp = self
            .host
            .send(req, Bytes::new())
            .await
            .map_err(|e| GetFailure::Unreachable(error_chain(&e)))?;
        let status = resp.status();
        if status.is_success() {
            if is_content_type(&resp, "text/event-stream") {
                return Ok(resp.into_body());
            }
            return Err(GetFailure::NotEventStream(
                content_type(&resp).unwrap_or("(none)").to_owned(),
            ));
        }
        let body = read_body(resp.into_body(), ERROR_BODY_LIMIT).await;
        Err(GetFailure::Status(status, body_excerpt(&body)))
    }

    /// Reads one SSE response until it ends, reporting its messages. `ours` is the request
    /// whose stream this is (`None` for the server stream).
    async fn pump(
        &self,
        body: &mut UpstreamBody,
        state: &mut StreamState,
        ours: Option<&Id>,
    ) -> StreamEnd {
        let mut decoder = SseDecoder::new(self.max);
        loop {
            let frame = if state.answered {
                match tokio::time::timeout(LINGER, body.frame()).await {
                    Ok(f) => f,
                    Err(_) => return StreamEnd::Eof,
                }
            } else {
                body.frame().await
            };
            let data = match frame {
                None => return StreamEnd::Eof,
                Some(Err(e)) => return StreamEnd::Broken(error_chain(&e)),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue,
                },
            };
            for item in decoder.feed(&data) {
                let event = match item {
                    Ok(event) => event,
                    // Our request's answer may be the oversized message: fail it.
                    Err(_) if ours.is_some() && !state.answered => return StreamEnd::TooLarge,
                    Err(e) => {
                        tracing::warn!(server = %self.server, error = %e, "skipped an SSE event");
                        continue;
                    }
                };
                if let Some(id) = &event.id {
                    state.last_id = (!id.is_empty())
                        .then(|| HeaderValue::from_str(id).ok())
                        .flatten();
                }
                if let Some(ms) = event.retry {
                    state.retry = Some(Duration::from_millis(ms));
                }
                if event.data.trim_ascii().is_empty() {
                    continue;
                }
                if !matches!(event.event.as_deref(), None | Some("message")) {
                    tracing::debug!(server = %self.server, event = ?event.event, "ignored an SSE event that is not a message");
                    continue;
                }
                let msg = match Message::from_slice(event.data.as_bytes()) {
                    Ok(msg) => msg,
                    Err(e) => {
                        tracing::warn!(server = %self.server, error = %e, data = %excerpt(event.data.as_bytes()), "ignored an SSE event that is not a JSON-RPC message");
                        continue;
                    }
                };
                state.messages += 1;
                let related = match (&msg, ours) {
                    (Message::Response(r), Some(id)) if r.id == *id => {
                        state.answered = true;
                        None
                    }
                    _ => ours.cloned(),
                };
                if !self.emit(msg, related).await {
                    return StreamEnd::Unheard;
                }
            }
        }
    }

    /// A non-2xx answer to a POST.
    async fn refused(&self, resp: Answer, id: Option<Id>) {
        let status = resp.status();
        if status == StatusCode::NOT_FOUND && self.has_session() {
            self.session_expired(id).await;
            return;
        }
        let body = read_body(resp.into_body(), ERROR_BODY_LIMIT.min(self.max)).await;
        let shown = body_excerpt(&body);
        let rpc_error = body.ok().and_then(|b| rpc_error_in(&b));
        // Some servers (the TypeScript SDK's) answer a session they no longer know with 400
        // and an error about the session id rather than 404: that is an expired session too,
        // or a restarted server would never be initialized again.
        if status == StatusCode::BAD_REQUEST
            && self.has_session()
            && rpc_error
                .as_ref()
                .is_some_and(|e| e.message.to_ascii_lowercase().contains("session"))
        {
            self.session_expired(id).await;
            return;
        }
        tracing::warn!(server = %self.server, %status, body = %shown, "the server refused a message");
        let Some(id) = id else { return };
        let error = rpc_error.unwrap_or_else(|| http_status_error(&self.server, status, &shown));
        self.fail(id, error).await;
    }

    /// HTTP 404 (or a 400 about the session) while we hold a session id: the server forgot
    /// the session.
    async fn session_expired(&self, id: Option<Id>) {
        tracing::warn!(server = %self.server, "the server no longer knows the session");
        if let Some(id) = id {
            let msg = format!(
                "the session of server {} expired; it must be initialized again",
                self.server
            );
            self.fail(id, RpcError::new(code::UPSTREAM_CLOSED, msg))
                .await;
        }
        self.finish("session expired").await;
    }

    fn has_session(&self) -> bool {
        self.session.read().expect("session lock").is_some()
    }

    /// Remembers `Mcp-Session-Id` from a response (the initialize response sets it).
    fn capture_session(&self, resp: &Answer) {
        let Some(value) = resp.header(MCP_SESSION_ID.as_str()) else {
            return;
        };
        if self
            .session
            .read()
            .expect("session lock")
            .as_ref()
            .is_some_and(|s| s.as_bytes() == value)
        {
            return;
        }
        let Ok(value) = HeaderValue::from_bytes(value) else {
            return;
        };
        let mut session = self.session.write().expect("session lock");
        if session.is_some() {
            tracing::debug!(server = %self.server, "the server changed the session id");
        }
        *session = Some(value);
    }

    /// Reports a message; `false` if nobody listens any more.
    async fn emit(&self, msg: Message, related: Option<Id>) -> bool {
        self.events
            .send(TransportEvent::Message { msg, related })
            .await
            .is_ok()
    }

    async fn fail(&self, id: Id, error: RpcError) {
        let _ = self.events.send(TransportEvent::Failed { id, error }).await;
    }

    /// Marks the transport finished and reports it, once.
    async fn finish(&self, reason: &str) {
        if self.gone.set(reason.to_owned()).is_ok() {
            let _ = self
                .events
                .send(TransportEvent::Closed {
                    reason: reason.to_owned(),
                })
                .await;
        }
    }
}

// === impl GetFailure ===

impl GetFailure {
    fn describe(&self) -> String {
        match self {
            GetFailure::Unreachable(e) => e.clone(),
            GetFailure::Status(status, body) if body.is_empty() => format!("HTTP {status}"),
            GetFailure::Status(status, body) => format!("HTTP {status}: {body}"),
            GetFailure::NotEventStream(ct) => format!("content type {ct}, not an event stream"),
        }
    }
}

/// The wait before attempt `n` (from 1): the server's `retry:` (or a default), doubled
/// each time, never more than [`MAX_BACKOFF`].
fn backoff(retry: Option<Duration>, n: u32) -> Duration {
    let base = retry.unwrap_or(DEFAULT_RETRY);
    base.saturating_mul(1 << n.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

// === Helpers shared with the legacy SSE transport ===

/// Parses an upstream URL: `http://` only, with a host.
pub(super) fn parse_http_url(url: &str) -> Result<Uri, TransportError> {
    let uri: Uri = url.parse().map_err(|e| {
        TransportError::Connect(format!("invalid server URL {:?}: {e}", strip_query(url)))
    })?;
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => {}
        Some(s) if s.eq_ignore_ascii_case("https") => {
            return Err(TransportError::Connect(format!(
                "https upstreams are not supported yet (Gantry has no TLS client): {}",
                shown_url(&uri)
            )));
        }
        _ => {
            return Err(TransportError::Connect(format!(
                "the server URL {:?} must start with http://",
                strip_query(url)
            )));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(TransportError::Connect(format!(
            "the server URL {:?} has no host",
            strip_query(url)
        )));
    }
    Ok(uri)
}

/// Checks the configured headers once; their values are marked sensitive and never shown.
/// Those named in `reserved` are dropped: the transport sets them itself.
pub(super) fn parse_headers(
    headers: &[(String, String)],
    reserved: &[HeaderName],
) -> Result<Vec<(HeaderName, HeaderValue)>, TransportError> {
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            TransportError::Connect(format!("{name:?} is not a valid HTTP header name"))
        })?;
        let mut v = HeaderValue::from_str(value).map_err(|_| {
            TransportError::Connect(format!(
                "the value of header {name:?} is not a valid HTTP header value"
            ))
        })?;
        v.set_sensitive(true);
        if !reserved.contains(&n) {
            out.push((n, v));
        }
    }
    Ok(out)
}

/// `scheme://host:port/path`: no user info, no query (either may carry secrets).
pub(super) fn shown_url(uri: &Uri) -> String {
    let mut s = format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("http"),
        uri.host().unwrap_or("")
    );
    if let Some(port) = uri.port_u16() {
        let _ = write!(s, ":{port}");
    }
    s.push_str(uri.path());
    s
}

fn strip_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// Why a body could not be read.
pub(super) enum BodyError {
    /// It is larger than the limit (not read further).
    TooLarge,
    /// The connection broke.
    Read(String),
}

/// Reads a whole body of at most `limit` bytes. A body announced or found to be larger is
/// refused without reading the rest. A body in one frame is returned without a copy.
pub(super) async fn read_body(mut body: UpstreamBody, limit: usize) -> Result<Bytes, BodyError> {
    if body.size_hint().lower() > limit as u64 {
        return Err(BodyError::TooLarge);
    }
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(error_chain(&e)))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        len += data.len();
        if len > limit {
            return Err(BodyError::TooLarge);
        }
        match (&mut first, &mut rest) {
            (None, None) => first = Some(data),
            (Some(f), None) => {
                let mut buf = BytesMut::with_capacity(f.len() + data.len());
                buf.extend_from_slice(f);
                buf.extend_from_slice(&data);
                first = None;
                rest = Some(buf);
            }
            (_, Some(buf)) => buf.extend_from_slice(&data),
        }
    }
    Ok(match (first, rest) {
        (_, Some(buf)) => buf.freeze(),
        (Some(f), None) => f,
        (None, None) => Bytes::new(),
    })
}

/// A short, single-line quote of a body read for an error message.
pub(super) fn body_excerpt(body: &Result<Bytes, BodyError>) -> String {
    match body {
        Ok(b) => excerpt(b),
        Err(BodyError::TooLarge) => "(body too large to show)".into(),
        Err(BodyError::Read(e)) => format!("(body unreadable: {e})"),
    }
}

/// The first [`EXCERPT_CHARS`] characters of `bytes`, trimmed, whitespace collapsed.
pub(super) fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(EXCERPT_CHARS * 4)]);
    let mut out = String::new();
    let mut chars = 0;
    for word in text.split_whitespace() {
        if chars >= EXCERPT_CHARS {
            out.push('…');
            break;
        }
        if !out.is_empty() {
            out.push(' ');
            chars += 1;
        }
        for c in word.chars() {
            if chars >= EXCERPT_CHARS {
                break;
            }
            out.push(c);
            chars += 1;
        }
    }
    if chars >= EXCERPT_CHARS && !out.ends_with('…') {
        out.push('…');
    }
    out
}

/// The `error` object of a JSON-RPC error response body, whatever its `id`.
/// The error for a request whose POST could not reach the server (logged here).
pub(super) fn unreachable_error(
    server: &str,
    shown: &str,
    e: &(dyn std::error::Error + 'static),
) -> RpcError {
    let why = error_chain(e);
    tracing::warn!(server, url = %shown, error = %why, "POST to the server failed");
    RpcError::new(
        code::UPSTREAM_UNAVAILABLE,
        format!("cannot reach server {server} at {shown}: {why}"),
    )
}

/// The error for a request the server refused with `status` and no JSON-RPC error in the
/// body (`shown`: an excerpt of it).
pub(super) fn http_status_error(server: &str, status: StatusCode, shown: &str) -> RpcError {
    let mut msg = format!("server {server} answered HTTP {status}");
    if !shown.is_empty() {
        let _ = write!(msg, ": {shown}");
    }
    RpcError::new(code::INTERNAL_ERROR, msg)
        .with_data(serde_json::json!({ "httpStatus": status.as_u16() }))
}

pub(super) fn rpc_error_in(body: &[u8]) -> Option<RpcError> {
    let value: Value = serde_json::from_slice(body).ok()?;
    RpcError::from_value(value.get("error")?)
}

/// The media type of a response, without parameters.
pub(super) fn content_type(resp: &Answer) -> Option<&str> {
    let ct = std::str::from_utf8(resp.header("content-type")?).ok()?;
    Some(ct.split(';').next().unwrap_or(ct).trim())
}

pub(super) fn is_content_type(resp: &Answer, media: &str) -> bool {
    content_type(resp).is_some_and(|ct| ct.eq_ignore_ascii_case(media))
}

fn has_empty_body(resp: &Answer) -> bool {
    resp.header("content-length") == Some(b"0")
}

/// An error with its sources, `outer: inner: root`.
pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.ends_with(&text) {
            let _ = write!(out, ": {text}");
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
pub(crate) mod testkit;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod interop_tests;
