//! The gateway's JSON-RPC client over one transport.
//!
//! A [`Peer`] owns the id space of its upstream connection. Each request it sends gets a fresh
//! integer id, and that id doubles as the request's progress token upstream, so progress maps
//! back to the caller without a second table. Messages the server sends that belong to one of
//! our requests (progress, log lines, sampling or elicitation requests) go to that request's
//! [`ClientLink`]; the rest go to the peer's [`PeerEvents`]. Dropping the future of
//! [`Peer::request`] before it completes sends `notifications/cancelled` upstream, so
//! cancelling a client's request anywhere above simply drops it. In the other direction, a
//! server cancelling its own request to a client aborts the task answering it, and dropping
//! the question tells the client.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use gantry_core::protocol::{code, method};
use gantry_core::{Id, Message, Notification, Params, Payload, Request, Response, RpcError};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};

use super::limits::Limiter;
use super::transport::{Transport, TransportEvent};

/// A boxed future, for the object-safe traits below.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Where messages related to one request go: the client that caused it.
pub trait ClientLink: Send + Sync {
    /// Delivers a notification (progress, log message) to the client.
    fn notify(&self, n: Notification);
    /// Sends a server→client request (sampling, elicitation, roots) to the client and waits
    /// for its answer.
    fn request(&self, method: String, params: Option<Value>) -> BoxFuture<Result<Value, RpcError>>;
}

/// Receives what a server sends that no request of ours explains.
pub trait PeerEvents: Send + Sync {
    /// A notification not tied to a request (list changes, resource updates, log lines).
    fn notification(&self, n: Notification);
    /// A server→client request not tied to a request of ours.
    fn request(&self, req: Request) -> BoxFuture<Result<Value, RpcError>>;
    /// The connection closed.
    fn closed(&self, reason: &str);
}

struct Pending {
    tx: oneshot::Sender<Result<Payload, RpcError>>,
    link: Option<Arc<dyn ClientLink>>,
    /// The client's own progress token, restored on progress notifications.
    progress_token: Option<Value>,
    /// A server→client request made for this request is awaiting the client's answer.
    asking: bool,
}

/// What `initialize` told us about the server.
#[derive(Clone, Debug)]
pub struct ServerHello {
    /// The negotiated protocol version.
    pub protocol_version: String,
    /// The server's capabilities.
    pub capabilities: Value,
    /// The server's `serverInfo`.
    pub server_info: Value,
    /// The server's `instructions`, if any.
    pub instructions: Option<String>,
}

/// A JSON-RPC connection to one server.
pub struct Peer {
    server: Arc<str>,
    transport: Transport,
    next_id: AtomicI64,
    pending: Mutex<crate::FastMap<i64, Pending>>,
    /// Server→client requests being answered, so the server can cancel them.
    answering: Mutex<HashMap<Id, tokio::task::AbortHandle>>,
    closed: AtomicBool,
    /// Woken when the connection closes.
    closed_signal: tokio::sync::Notify,
    close_reason: Mutex<Option<String>>,
    events: Arc<dyn PeerEvents>,
    request_timeout: Duration,
    /// Per-tool timeouts of `tools/call`, by the server's own tool name.
    tool_timeouts: Arc<std::collections::BTreeMap<String, Duration>>,
    /// The server's bound on calls in flight (shared by its lanes).
    limiter: Arc<Limiter>,
    /// Set once the server speaks 2026-07-28: the `_meta` entries every request carries.
    envelope: OnceLock<Vec<(String, Value, String)>>,
}

// === impl Peer ===

impl Peer {
    /// Starts a peer over a connected transport; `rx` is the transport's event channel.
    pub(crate) fn start(
        server: Arc<str>,
        transport: Transport,
        rx: mpsc::Receiver<TransportEvent>,
        events: Arc<dyn PeerEvents>,
        request_timeout: Duration,
        tool_timeouts: Arc<std::collections::BTreeMap<String, Duration>>,
        limiter: Arc<Limiter>,
    ) -> Arc<Peer> {
        let peer = Arc::new(Peer {
            server,
            transport,
            next_id: AtomicI64::new(1),
            pending: Mutex::new(crate::FastMap::default()),
            answering: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            closed_signal: tokio::sync::Notify::new(),
            close_reason: Mutex::new(None),
            events,
            request_timeout,
            tool_timeouts,
            limiter,
            envelope: OnceLock::new(),
        });
        tokio::spawn(read_loop(Arc::downgrade(&peer), rx));
        peer
    }

    /// The server's name.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Waits until the connection is closed.
    pub async fn wait_closed(&self) {
        let signal = self.closed_signal.notified();
        tokio::pin!(signal);
        signal.as_mut().enable();
        if !self.is_closed() {
            signal.await;
        }
    }

    /// Runs the `initialize` handshake, offering `capabilities` as the client's.
    pub(crate) async fn initialize(
        self: &Arc<Self>,
        capabilities: Value,
        timeout: Duration,
    ) -> Result<ServerHello, RpcError> {
        let params = json!({
            "protocolVersion": gantry_core::protocol::LATEST_LEGACY_VERSION,
            "capabilities": capabilities,
            "clientInfo": {"name": "gantry", "version": env!("CARGO_PKG_VERSION")},
        });
        let result = self
            .request_with(method::INITIALIZE, Some(params.into()), None, timeout)
            .await?;
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !gantry_core::protocol::is_legacy_version(&version) {
            return Err(RpcError::new(
                code::UPSTREAM_UNAVAILABLE,
                format!(
                    "server {} answered initialize with unsupported protocol version {version:?}",
                    self.server
                ),
            ));
        }
        self.transport.set_protocol_version(&version);
        self.notify(method::INITIALIZED, None).await?;
        Ok(ServerHello {
            protocol_version: version,
            capabilities: result.get("capabilities").cloned().unwrap_or(json!({})),
            server_info: result.get("serverInfo").cloned().unwrap_or(json!({})),
            instructions: result
                .get("instructions")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// Asks the server with `server/discover` whether it speaks 2026-07-28, declaring
    /// `capabilities` as the client's; if it does, every later request carries that
    /// envelope. Any error means "not in this era": the caller falls back to `initialize`.
    pub(crate) async fn discover(
        self: &Arc<Self>,
        capabilities: Value,
        timeout: Duration,
    ) -> Result<ServerHello, RpcError> {
        use gantry_core::protocol::{MODERN_VERSION, meta};
        let mut envelope = Map::new();
        envelope.insert(meta::PROTOCOL_VERSION.into(), MODERN_VERSION.into());
        envelope.insert(meta::CLIENT_CAPABILITIES.into(), capabilities);
        envelope.insert(
            meta::CLIENT_INFO.into(),
            json!({"name": "gantry", "version": env!("CARGO_PKG_VERSION")}),
        );
        let params = json!({ "_meta": envelope });
        let result = self
            .send_request(
                method::DISCOVER,
                Some(params.into()),
                None,
                timeout,
                Vec::new(),
            )
            .await?
            .into_value()?;
        let speaks = result
            .get("supportedVersions")
            .and_then(Value::as_array)
            .is_some_and(|v| v.iter().any(|v| v == MODERN_VERSION));
        if !speaks {
            return Err(RpcError::new(
                code::UPSTREAM_UNAVAILABLE,
                format!(
                    "server {} does not list {MODERN_VERSION} among its supportedVersions",
                    self.server
                ),
            ));
        }
        // Each member with its JSON text, written once for every request to come.
        let envelope = envelope
            .into_iter()
            .map(|(k, v)| {
                let text = v.to_string();
                (k, v, text)
            })
            .collect();
        let _ = self.envelope.set(envelope);
        Ok(ServerHello {
            protocol_version: MODERN_VERSION.to_owned(),
            capabilities: result.get("capabilities").cloned().unwrap_or(json!({})),
            server_info: result
                .pointer("/_meta")
                .and_then(|m| m.get(meta::SERVER_INFO))
                .or_else(|| result.get("serverInfo"))
                .cloned()
                .unwrap_or(json!({})),
            instructions: result
                .get("instructions")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// Whether the server is spoken to in the 2026-07-28 era.
    pub fn is_modern(&self) -> bool {
        self.envelope.get().is_some()
    }

    /// Sends a client's request and waits for its result within the server's request timeout
    /// (a tool's own `timeout` for `tools/call`), then cancels it upstream.
    ///
    /// It counts against the server's `max_in_flight`: past the bound it fails at once with
    /// [`code::UPSTREAM_BUSY`] and nothing is sent. Messages the server relates to this
    /// request go to `link`. A `_meta.progressToken` in `params` is replaced by the upstream
    /// id and restored on the way back.
    pub async fn request(
        self: &Arc<Self>,
        method: &str,
        params: Option<Params>,
        link: Option<Arc<dyn ClientLink>>,
    ) -> Result<Value, RpcError> {
        self.request_with_headers(method, params, link, Vec::new())
            .await?
            .into_value()
    }

    /// [`Peer::request`] with extra HTTP headers for a 2026-07-28 server (`Mcp-Param-*`),
    /// and the result as the server sent it, to forward.
    pub async fn request_with_headers(
        self: &Arc<Self>,
        method: &str,
        params: Option<Params>,
        link: Option<Arc<dyn ClientLink>>,
        headers: Vec<(::http::HeaderName, ::http::HeaderValue)>,
    ) -> Result<Payload, RpcError> {
        let _permit = self.limiter.acquire()?;
        let timeout = self.timeout_for(method, params.as_ref());
        let mut params = params;
        self.prepare(&mut params);
        self.send_request(method, params, link, timeout, headers)
            .await
    }

    /// The timeout of one request: the tool's own for `tools/call`, else the server's.
    fn timeout_for(&self, method: &str, params: Option<&Params>) -> Duration {
        if method == method::TOOLS_CALL
            && !self.tool_timeouts.is_empty()
            && let Some(t) = params
                .and_then(|p| p.get_str("name"))
                .and_then(|name| self.tool_timeouts.get(&*name))
        {
            return *t;
        }
        self.request_timeout
    }

    /// A request that may wait up to `timeout` (a listen stream waits for as long as the
    /// connection lasts).
    pub(crate) async fn request_with(
        self: &Arc<Self>,
        method: &str,
        mut params: Option<Params>,
        link: Option<Arc<dyn ClientLink>>,
        timeout: Duration,
    ) -> Result<Value, RpcError> {
        self.prepare(&mut params);
        self.send_request(method, params, link, timeout, Vec::new())
            .await?
            .into_value()
    }

    /// Puts `params._meta` into the server's era: the 2026-07-28 envelope (the lane's
    /// capabilities, whatever the client sent), or none of it for a legacy server, which
    /// learnt all that at `initialize` and refuses requests that carry it.
    fn prepare(&self, params: &mut Option<Params>) {
        match self.envelope.get() {
            None => strip_modern_envelope(params),
            Some(envelope) => {
                // A 2026-07-28 client sent the same members: they are overwritten in place, or
                // left alone when equal. Params kept as text are edited as text.
                params
                    .get_or_insert_with(Params::empty_object)
                    .meta_set_text(envelope.iter().map(|(k, v, t)| (k.as_str(), v, t.as_str())));
            }
        }
    }

    /// Boxed: the exchange makes this future a few KB, and unboxed it would be copied into
    /// (and doubled by) every async function above it, up to the task of each request.
    fn send_request<'a>(
        self: &'a Arc<Self>,
        method: &'a str,
        params: Option<Params>,
        link: Option<Arc<dyn ClientLink>>,
        timeout: Duration,
        headers: Vec<(::http::HeaderName, ::http::HeaderValue)>,
    ) -> Pin<Box<dyn Future<Output = Result<Payload, RpcError>> + Send + 'a>> {
        Box::pin(self.send_request_inner(method, params, link, timeout, headers))
    }

    async fn send_request_inner(
        self: &Arc<Self>,
        method: &str,
        mut params: Option<Params>,
        link: Option<Arc<dyn ClientLink>>,
        timeout: Duration,
        headers: Vec<(::http::HeaderName, ::http::HeaderValue)>,
    ) -> Result<Payload, RpcError> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let progress_token = params
            .as_mut()
            .and_then(|p| p.meta_replace("progressToken", &Value::from(id)));
        let (tx, mut rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(
            id,
            Pending {
                tx,
                link,
                progress_token,
                asking: false,
            },
        );
        let mut guard = CancelOnDrop {
            peer: self,
            id,
            armed: true,
        };
        let msg = Message::Request(Request {
            id: Id::Num(id),
            method: method.to_owned(),
            params,
        });
        let sent = match &self.transport {
            // Over Streamable HTTP this task runs the exchange itself (see `exchange`).
            Transport::Http(http) => http.exchange(&msg, Id::Num(id), headers).map(Some),
            other => other.send_with(&msg, headers).await.map(|()| None),
        };
        let exchange = match sent {
            Ok(exchange) => exchange,
            Err(e) => {
                guard.armed = false;
                self.pending.lock().expect("pending lock").remove(&id);
                return Err(RpcError::new(
                    code::UPSTREAM_CLOSED,
                    format!("server {}: {e}", self.server),
                ));
            }
        };
        // The message is done with: only a `tools/call`'s tool name is kept, for the timeout
        // error.
        let tool_name = match msg {
            Message::Request(Request {
                params: Some(p), ..
            }) if method == method::TOOLS_CALL => p.get_str("name").map(|n| n.into_owned()),
            _ => None,
        };
        // The exchange (the whole HTTP request) and the wait for the answer stay where they
        // are pinned: moving them into `answer` and into `timeout` copied a large future
        // twice more per request.
        let mut exchange = std::pin::pin!(exchange);
        let answer = async {
            let Some(exchange) = exchange.as_mut().as_pin_mut() else {
                return rx.await;
            };
            tokio::select! {
                biased;
                answer = &mut rx => answer,
                direct = exchange => match direct {
                    Some(outcome) => {
                        self.pending.lock().expect("pending lock").remove(&id);
                        Ok(outcome)
                    }
                    None => rx.await,
                },
            }
        };
        let answer = std::pin::pin!(answer);
        let outcome = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => {
                guard.armed = false;
                result
            }
            Ok(Err(_)) => {
                guard.armed = false;
                Err(self.closed_error())
            }
            Err(_) => Err(RpcError::new(
                code::UPSTREAM_TIMEOUT,
                format!(
                    "server {} did not answer {method}{} within {:?}; the request was cancelled",
                    self.server,
                    match tool_name.as_deref() {
                        Some(t) => format!(" (tool {t:?})"),
                        None => String::new(),
                    },
                    timeout
                ),
            )),
        };
        drop(guard);
        outcome
    }

    /// Sends a notification.
    pub async fn notify(&self, method: &str, params: Option<Value>) -> Result<(), RpcError> {
        let msg = Message::Notification(Notification::new(method, params));
        self.transport.send(&msg).await.map_err(|e| {
            RpcError::new(
                code::UPSTREAM_CLOSED,
                format!("server {}: {e}", self.server),
            )
        })
    }

    /// Closes the connection and fails what is pending.
    pub async fn close(&self) {
        self.close_because("closed by the gateway".into()).await;
    }

    /// Closes the connection; what is pending fails with "server … is not connected:
    /// `reason`".
    pub(crate) async fn close_because(&self, reason: String) {
        self.mark_closed(reason);
        self.transport.close().await;
    }

    /// How many requests to the server await their response.
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.lock().expect("pending lock").len()
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<String> {
        self.close_reason.lock().expect("reason lock").clone()
    }

    fn closed_error(&self) -> RpcError {
        let reason = self
            .close_reason
            .lock()
            .expect("reason lock")
            .clone()
            .unwrap_or_else(|| "connection closed".into());
        RpcError::new(
            code::UPSTREAM_CLOSED,
            format!("server {} is not connected: {reason}", self.server),
        )
    }

    fn mark_closed(&self, reason: String) -> bool {
        if self.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        *self.close_reason.lock().expect("reason lock") = Some(reason);
        self.closed_signal.notify_waiters();
        let pending: Vec<Pending> = self
            .pending
            .lock()
            .expect("pending lock")
            .drain()
            .map(|(_, p)| p)
            .collect();
        let err = self.closed_error();
        for p in pending {
            let _ = p.tx.send(Err(err.clone()));
        }
        true
    }

    /// The link of the request `related` names, or, when the transport cannot tell which
    /// request a message belongs to (stdio and legacy SSE carry everything on one stream), of
    /// the only request in flight that could have caused it: one with a client, not already
    /// waiting for that client's answer to an earlier question.
    fn link_for(&self, related: Option<&Id>) -> Option<(i64, Arc<dyn ClientLink>)> {
        let pending = self.pending.lock().expect("pending lock");
        match related {
            Some(Id::Num(id)) => pending.get(id).and_then(|p| Some((*id, p.link.clone()?))),
            Some(Id::Str(_)) => None,
            None if matches!(self.transport, Transport::Http(_)) => None,
            None => {
                let mut links = pending
                    .iter()
                    .filter(|(_, p)| !p.asking)
                    .filter_map(|(id, p)| Some((*id, p.link.as_ref()?)));
                match (links.next(), links.next()) {
                    (Some((id, only)), None) => Some((id, only.clone())),
                    _ => None,
                }
            }
        }
    }

    fn set_asking(&self, id: i64, asking: bool) {
        if let Some(p) = self.pending.lock().expect("pending lock").get_mut(&id) {
            p.asking = asking;
        }
    }

    fn on_response(&self, resp: Response) {
        let Id::Num(id) = resp.id else {
            tracing::debug!(server = %self.server, id = %resp.id, "response with an id the gateway never sent");
            return;
        };
        if let Some(p) = self.pending.lock().expect("pending lock").remove(&id) {
            let _ = p.tx.send(resp.outcome);
        }
    }

    fn on_progress(&self, mut n: Notification) {
        let token = n
            .params
            .as_ref()
            .and_then(|p| p.get("progressToken"))
            .and_then(Value::as_i64);
        let target = token.and_then(|t| {
            let pending = self.pending.lock().expect("pending lock");
            let p = pending.get(&t)?;
            Some((p.link.clone()?, p.progress_token.clone()?))
        });
        if let Some((link, original)) = target {
            if let Some(p) = n.params.as_mut().and_then(Value::as_object_mut) {
                p.insert("progressToken".into(), original);
            }
            link.notify(n);
        }
    }

    /// Answers a server→client request in a task the server can cancel: aborting it drops
    /// the question put to the client, which tells the client it was cancelled.
    fn on_server_request(self: &Arc<Self>, req: Request, related: Option<Id>) {
        let peer = self.clone();
        let link = self.link_for(related.as_ref());
        let id = req.id.clone();
        // Held across the spawn, so the task's own removal cannot run before the insert.
        let mut answering = self.answering.lock().expect("answering lock");
        let task = tokio::spawn(async move {
            let outcome = if req.method == method::PING {
                Ok(json!({}))
            } else if let Some((cause, link)) = link {
                peer.set_asking(cause, true);
                let params = req.params.clone().map(Params::into_value);
                let answer = link.request(req.method.clone(), params).await;
                peer.set_asking(cause, false);
                answer
            } else {
                peer.events.request(req.clone()).await
            }
            .map(Payload::from);
            if peer
                .answering
                .lock()
                .expect("answering lock")
                .remove(&req.id)
                .is_none()
            {
                return; // cancelled by the server meanwhile
            }
            let msg = Message::Response(Response {
                id: req.id,
                outcome,
            });
            if let Err(e) = peer.transport.send(&msg).await {
                tracing::debug!(server = %peer.server, error = %e, "could not answer a server request");
            }
        });
        answering.insert(id, task.abort_handle());
    }

    /// The server gave up on one of its requests to the client.
    fn on_cancelled(&self, n: &Notification) {
        let id = n
            .params
            .as_ref()
            .and_then(|p| p.get("requestId"))
            .and_then(Id::from_value);
        let task = id.and_then(|id| self.answering.lock().expect("answering lock").remove(&id));
        if let Some(task) = task {
            task.abort();
        }
    }
}

/// Removes the 2026-07-28 per-request envelope from `_meta`: a server spoken to in the legacy
/// era learnt all that at `initialize` and refuses requests that carry it.
fn strip_modern_envelope(params: &mut Option<Params>) {
    use gantry_core::protocol::meta;
    if let Some(p) = params {
        p.meta_remove(&[
            meta::PROTOCOL_VERSION,
            meta::CLIENT_CAPABILITIES,
            meta::CLIENT_INFO,
            meta::LOG_LEVEL,
        ]);
    }
}

/// Sends `notifications/cancelled` for a request whose caller stopped waiting.
struct CancelOnDrop<'a> {
    peer: &'a Arc<Peer>,
    id: i64,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let removed = self
            .peer
            .pending
            .lock()
            .expect("pending lock")
            .remove(&self.id);
        if removed.is_none() || self.peer.is_closed() {
            return;
        }
        // A 2026-07-28 request over HTTP is cancelled by closing its stream, which dropping
        // its exchange (run by the caller) has done.
        if self.peer.is_modern() && matches!(self.peer.transport, Transport::Http(_)) {
            return;
        }
        let peer = self.peer.clone();
        let id = self.id;
        tokio::spawn(async move {
            let params = json!({"requestId": id, "reason": "cancelled by the client"});
            let _ = peer.notify(method::CANCELLED, Some(params)).await;
        });
    }
}

async fn read_loop(peer: std::sync::Weak<Peer>, mut rx: mpsc::Receiver<TransportEvent>) {
    while let Some(event) = rx.recv().await {
        let Some(peer) = peer.upgrade() else { return };
        match event {
            TransportEvent::Message { msg, related } => match msg {
                Message::Response(r) => peer.on_response(r),
                Message::Request(r) => peer.on_server_request(r, related),
                Message::Notification(n) if n.method == method::PROGRESS => peer.on_progress(n),
                Message::Notification(n) if n.method == method::CANCELLED => peer.on_cancelled(&n),
                Message::Notification(n) => {
                    let link = match n.method.as_str() {
                        method::MESSAGE => peer.link_for(related.as_ref()),
                        _ => None,
                    };
                    match link {
                        Some((_, link)) => link.notify(n),
                        None => peer.events.notification(n),
                    }
                }
            },
            TransportEvent::Failed { id, error } => {
                if let Id::Num(id) = id
                    && let Some(p) = peer.pending.lock().expect("pending lock").remove(&id)
                {
                    let _ = p.tx.send(Err(error));
                }
            }
            TransportEvent::Closed { reason } => {
                if peer.is_closed() {
                    // Closed by the gateway (stop, restart): expected.
                    tracing::debug!(server = %peer.server, %reason, "upstream connection closed");
                } else {
                    tracing::warn!(server = %peer.server, %reason, "upstream connection closed");
                }
                if peer.mark_closed(reason.clone()) {
                    peer.events.closed(&reason);
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
