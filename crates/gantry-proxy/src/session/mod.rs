//! Downstream sessions: one per connected client.
//!
//! A session remembers what the client declared at `initialize` (capabilities, log level,
//! resource subscriptions), where to send it messages nobody asked for (its GET or SSE
//! stream, or stdout), which of its requests are in flight (so `notifications/cancelled` can
//! abort them), and which server→client requests await its answer.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gantry_core::protocol::{code, log_level_rank, method};
use gantry_core::{Id, Message, Notification, Payload, Request, RpcError};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use crate::FastMap;
use crate::access::Caller;
use crate::endpoint::Endpoint;
use crate::upstream::caps::ROUTABLE;
use crate::upstream::{BoxFuture, ClientCaps, ClientLink};

/// Capacity of every channel toward a client.
pub const CLIENT_QUEUE: usize = 256;
/// How long a server→client request (sampling, elicitation: a human may be involved) waits.
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// A channel of messages toward the client.
pub type Sink = mpsc::Sender<Message>;

/// What the gateway keeps of the capabilities a client declared (at `initialize`, or in a
/// stateless request's `_meta`): nothing of the declaration itself is copied.
#[derive(Clone, Debug)]
pub struct ClientHello {
    /// The routable part: which lane of each server serves the client.
    caps: Arc<ClientCaps>,
    /// Which of [`ROUTABLE`]'s capabilities it declared (with any value): the server→client
    /// requests it may be sent.
    declared: [bool; ROUTABLE.len()],
}

impl Default for ClientHello {
    /// A client that declared nothing (yet).
    fn default() -> ClientHello {
        ClientHello {
            caps: Arc::new(ClientCaps::none()),
            declared: [false; ROUTABLE.len()],
        }
    }
}

impl ClientHello {
    /// What a client that declared `capabilities` is served with.
    pub fn new(capabilities: &Value) -> ClientHello {
        ClientHello {
            caps: Arc::new(ClientCaps::from_declared(capabilities)),
            declared: ROUTABLE.map(|k| capabilities.get(k).is_some()),
        }
    }

    /// The routable part of its capabilities.
    pub fn caps(&self) -> &ClientCaps {
        &self.caps
    }

    /// Whether the client declared `capability` (one of [`ROUTABLE`]).
    fn declares(&self, capability: &str) -> bool {
        ROUTABLE
            .iter()
            .position(|k| *k == capability)
            .is_some_and(|i| self.declared[i])
    }
}

/// What a `subscriptions/listen` stream opted in to (2026-07-28).
#[derive(Clone, Debug, Default)]
pub struct Listen {
    /// The listen request's id, which tags every notification on the stream.
    pub id: Value,
    /// `notifications/tools/list_changed`.
    pub tools: bool,
    /// `notifications/prompts/list_changed`.
    pub prompts: bool,
    /// `notifications/resources/list_changed`.
    pub resources: bool,
}

/// What one stateless (2026-07-28) request carries besides its body.
#[derive(Debug, Default)]
pub struct RequestScope {
    /// The client's `Mcp-Param-*` headers, passed on to a 2026-07-28 server.
    pub param_headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// The server a retry's sealed `requestState` names: the call must go there.
    pub resume_server: Option<String>,
}

/// One client's session on one endpoint: a legacy session that lasts until the client ends
/// it, or the context of one stateless (2026-07-28) request or listen stream.
pub struct Session {
    id: String,
    /// The endpoint, re-pointed by a hot reload that rebuilds it (`crate::reload`); each
    /// request reads it once (an uncontended per-session lock).
    endpoint: std::sync::RwLock<Arc<Endpoint>>,
    /// A 2026-07-28 client: no server→client requests, no session.
    stateless: bool,
    listen: Option<Listen>,
    /// Set on a stateless request's context before it runs.
    scope: std::sync::OnceLock<Box<RequestScope>>,
    /// What the client declared; `initialized` says whether it has yet.
    hello: Mutex<ClientHello>,
    initialized: AtomicBool,
    log_level: Mutex<Option<usize>>,
    subscriptions: Mutex<HashSet<String>>,
    outbox: Mutex<Option<Sink>>,
    next_id: AtomicI64,
    waiting: Mutex<FastMap<i64, oneshot::Sender<Result<Value, RpcError>>>>,
    inflight: Mutex<FastMap<Id, AbortHandle>>,
    /// Who is calling: the session's creator (a legacy session only serves that subject).
    caller: Mutex<Arc<Caller>>,
    /// When the session was opened; `last_seen_ms` counts from here.
    opened: tokio::time::Instant,
    /// When the client was last heard from, in ms since `opened` (no lock on the hot path).
    last_seen_ms: std::sync::atomic::AtomicU64,
}

// === impl Session ===

impl Session {
    /// A new session with a crypto-random id.
    pub fn new(endpoint: Arc<Endpoint>) -> Arc<Session> {
        let hello = ClientHello::default();
        Arc::new(Session::build(
            endpoint,
            Caller::default(),
            hello,
            false,
            None,
            None,
        ))
    }

    /// The context of one stateless request (or, with `listen`, of a listen stream) from a
    /// client that described itself in the request's `_meta`.
    pub fn stateless(
        endpoint: Arc<Endpoint>,
        caller: Caller,
        hello: ClientHello,
        log_level: Option<usize>,
        listen: Option<Listen>,
    ) -> Arc<Session> {
        // Without a level in the request, the client gets no log messages at all.
        let level = Some(log_level.unwrap_or(usize::MAX));
        Arc::new(Session::build(endpoint, caller, hello, true, level, listen))
    }

    fn build(
        endpoint: Arc<Endpoint>,
        caller: Caller,
        hello: ClientHello,
        stateless: bool,
        log_level: Option<usize>,
        listen: Option<Listen>,
    ) -> Session {
        Session {
            id: if stateless {
                stateless_id()
            } else {
                random_id()
            },
            endpoint: std::sync::RwLock::new(endpoint),
            stateless,
            listen,
            scope: std::sync::OnceLock::new(),
            hello: Mutex::new(hello),
            // A stateless client declared itself in the request.
            initialized: AtomicBool::new(stateless),
            log_level: Mutex::new(log_level),
            subscriptions: Mutex::new(HashSet::new()),
            outbox: Mutex::new(None),
            next_id: AtomicI64::new(1),
            waiting: Mutex::new(FastMap::default()),
            inflight: Mutex::new(FastMap::default()),
            caller: Mutex::new(Arc::new(caller)),
            opened: tokio::time::Instant::now(),
            last_seen_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Who is calling, and what it may see.
    pub fn caller(&self) -> Arc<Caller> {
        self.caller.lock().expect("caller lock").clone()
    }

    /// Sets who is calling (at creation; a legacy session's later requests refresh it with
    /// the same subject's current teams).
    pub fn set_caller(&self, caller: Caller) {
        *self.caller.lock().expect("caller lock") = Arc::new(caller);
    }

    /// Attaches what a stateless request carries besides its body (once, before it runs).
    pub fn set_scope(&self, scope: RequestScope) {
        let _ = self.scope.set(Box::new(scope));
    }

    /// What the stateless request carries besides its body, if anything.
    pub fn scope(&self) -> Option<&RequestScope> {
        self.scope.get().map(|b| &**b)
    }

    /// Whether this is a `subscriptions/listen` stream.
    pub fn is_listening(&self) -> bool {
        self.listen.is_some()
    }

    /// Whether this is a 2026-07-28 request context rather than a legacy session.
    pub fn is_stateless(&self) -> bool {
        self.stateless
    }

    /// Sends a list-changed notification (`method`), if this client wants it: every legacy
    /// session does; a listen stream only if it opted in, tagged with its subscription.
    pub fn send_list_changed(&self, method: &str) {
        let n = match &self.listen {
            None if self.stateless => return,
            None => Notification::new(method, None),
            Some(l) => {
                let wanted = match method {
                    method::TOOLS_LIST_CHANGED => l.tools,
                    method::PROMPTS_LIST_CHANGED => l.prompts,
                    method::RESOURCES_LIST_CHANGED => l.resources,
                    _ => false,
                };
                if !wanted {
                    return;
                }
                Notification::new(method, Some(l.tag(serde_json::json!({}))))
            }
        };
        self.send_unsolicited(Message::Notification(n));
    }

    /// Sends a resource update to a client subscribed to its URI.
    pub fn send_resource_updated(&self, n: &Notification) {
        let mut n = n.clone();
        if let Some(l) = &self.listen {
            n.params = Some(l.tag(n.params.unwrap_or_else(|| serde_json::json!({}))));
        }
        self.send_unsolicited(Message::Notification(n));
    }

    /// The session id (`Mcp-Session-Id`, or the SSE `sessionId`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The endpoint this session is on (its current build: a hot reload may replace it).
    pub fn endpoint(&self) -> Arc<Endpoint> {
        self.endpoint.read().expect("endpoint lock").clone()
    }

    /// Moves the session to `ep`, the rebuilt endpoint of the same name (hot reload).
    pub(crate) fn set_endpoint(&self, ep: Arc<Endpoint>) {
        *self.endpoint.write().expect("endpoint lock") = ep;
    }

    /// The client capabilities the session's servers are told about.
    pub fn caps(&self) -> Arc<ClientCaps> {
        self.hello.lock().expect("hello lock").caps.clone()
    }

    pub(crate) fn set_hello(&self, hello: ClientHello) {
        *self.hello.lock().expect("hello lock") = hello;
        self.initialized.store(true, Ordering::Release);
    }

    /// Records that the client was heard from.
    pub fn touch(&self) {
        let ms = self.opened.elapsed().as_millis() as u64;
        self.last_seen_ms.store(ms, Ordering::Relaxed);
    }

    /// Whether the session has been idle for `limit`: no message for that long, no request
    /// in flight and no open stream toward the client.
    pub fn idle_for(&self, limit: Duration) -> bool {
        let seen = Duration::from_millis(self.last_seen_ms.load(Ordering::Relaxed));
        let quiet = self.opened.elapsed().saturating_sub(seen) >= limit;
        let streaming = self
            .outbox
            .lock()
            .expect("outbox lock")
            .as_ref()
            .is_some_and(|s| !s.is_closed());
        quiet && !streaming && self.inflight.lock().expect("inflight lock").is_empty()
    }

    /// Whether `initialize` has been answered.
    pub fn is_initialized(&self) -> bool {
        self.initialized.load(Ordering::Acquire)
    }

    /// Sets where unsolicited messages go (replacing any earlier stream).
    pub fn set_outbox(&self, sink: Option<Sink>) {
        *self.outbox.lock().expect("outbox lock") = sink;
    }

    /// Sends a message on the session's stream; dropped (and logged) if there is no stream
    /// or the client does not keep up.
    pub fn send_unsolicited(&self, msg: Message) {
        let sink = self.outbox.lock().expect("outbox lock").clone();
        match sink {
            Some(s) => {
                if let Err(e) = s.try_send(msg) {
                    tracing::debug!(session = %self.id, error = %e, "client stream full or closed; message dropped");
                }
            }
            None => {
                tracing::trace!(session = %self.id, "no open stream for an unsolicited message")
            }
        }
    }

    /// The sink for messages related to a request when the transport has no per-request
    /// stream.
    pub fn outbox(&self) -> Option<Sink> {
        self.outbox.lock().expect("outbox lock").clone()
    }

    pub(crate) fn set_log_level(&self, level: usize) {
        *self.log_level.lock().expect("level lock") = Some(level);
    }

    /// The level the client set with `logging/setLevel`, by name.
    pub fn log_level_name(&self) -> Option<&'static str> {
        let set = *self.log_level.lock().expect("level lock");
        set.and_then(|rank| gantry_core::protocol::LOG_LEVELS.get(rank).copied())
    }

    /// Whether a log message at `level` should reach this client. `asked`: the message belongs
    /// to one of the client's requests (then it passes unless the client set a higher level);
    /// unrelated log lines reach only clients that set a level.
    pub fn wants_log(&self, level: Option<&str>, asked: bool) -> bool {
        let set = *self.log_level.lock().expect("level lock");
        let rank = level.and_then(log_level_rank).unwrap_or(0);
        match set {
            Some(min) => rank >= min,
            None => asked,
        }
    }

    pub(crate) fn subscribe(&self, uri: &str) {
        self.subscriptions
            .lock()
            .expect("subs lock")
            .insert(uri.to_owned());
    }

    pub(crate) fn unsubscribe(&self, uri: &str) {
        self.subscriptions.lock().expect("subs lock").remove(uri);
    }

    /// Whether the client subscribed to `uri`.
    pub fn is_subscribed(&self, uri: &str) -> bool {
        self.subscriptions.lock().expect("subs lock").contains(uri)
    }

    /// Registers a running request so that `notifications/cancelled` can abort it.
    ///
    /// `spawn` starts the request's task under the lock, so that the task's own
    /// [`Session::untrack`] (on another worker, it may finish first) always comes after.
    pub fn track(&self, id: Id, spawn: impl FnOnce() -> AbortHandle) {
        let mut inflight = self.inflight.lock().expect("inflight lock");
        let handle = spawn();
        inflight.insert(id, handle);
    }

    /// Forgets a finished request.
    pub fn untrack(&self, id: &Id) {
        self.inflight.lock().expect("inflight lock").remove(id);
    }

    /// Aborts the client's request `id`; dropping its upstream call sends the cancellation
    /// on to the server.
    pub fn cancel(&self, id: &Id) {
        if let Some(h) = self.inflight.lock().expect("inflight lock").remove(id) {
            h.abort();
        }
    }

    /// Delivers the client's answer to a server→client request.
    pub fn answer(&self, id: &Id, outcome: Result<Payload, RpcError>) {
        let Id::Num(n) = id else { return };
        if let Some(tx) = self.waiting.lock().expect("waiting lock").remove(n) {
            let _ = tx.send(outcome.and_then(Payload::into_value));
        }
    }

    /// Ends the session: aborts its requests and closes its stream.
    pub fn close(&self) {
        for (_, h) in self.inflight.lock().expect("inflight lock").drain() {
            h.abort();
        }
        self.waiting.lock().expect("waiting lock").clear();
        self.set_outbox(None);
    }

    fn capability_for(method: &str) -> Option<&'static str> {
        match method {
            method::SAMPLING_CREATE => Some("sampling"),
            method::ELICITATION_CREATE => Some("elicitation"),
            method::ROOTS_LIST => Some("roots"),
            _ => None,
        }
    }

    /// Sends a server→client request on `sink` and waits for the client's answer.
    async fn ask(
        self: Arc<Self>,
        sink: Sink,
        method: String,
        params: Option<Value>,
    ) -> Result<Value, RpcError> {
        if self.listen.is_some() {
            return Err(RpcError::new(
                code::METHOD_NOT_FOUND,
                format!("{method} cannot be sent on a subscriptions/listen stream"),
            ));
        }
        // A stateless client gets the question as an `input_required` result (see
        // `crate::mrtr`); its front turns the request on `sink` into one.
        if let Some(cap) = Self::capability_for(&method)
            && !self.hello.lock().expect("hello lock").declares(cap)
        {
            return Err(RpcError::new(
                code::METHOD_NOT_FOUND,
                format!(
                    "the client did not declare the {cap} capability, so {method} cannot be sent to it"
                ),
            ));
        }
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().expect("waiting lock").insert(n, tx);
        let req = Message::Request(Request {
            id: Id::Num(n),
            method: method.clone(),
            params: params.map(Into::into),
        });
        let question = Question {
            session: &self,
            sink: &sink,
            id: n,
        };
        if sink.send(req).await.is_err() {
            self.waiting.lock().expect("waiting lock").remove(&n);
            return Err(RpcError::internal(format!(
                "the client's stream closed before {method} could be sent"
            )));
        }
        let outcome = match tokio::time::timeout(CLIENT_REQUEST_TIMEOUT, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(RpcError::internal(
                "the client session ended before answering",
            )),
            Err(_) => Err(RpcError::internal(format!(
                "the client did not answer {method} within {CLIENT_REQUEST_TIMEOUT:?}"
            ))),
        };
        drop(question);
        outcome
    }
}

/// A server→client request put to the client. Dropped before the client answered (the
/// server cancelled it, or it timed out), it tells the client with `notifications/cancelled`.
struct Question<'a> {
    session: &'a Session,
    sink: &'a Sink,
    id: i64,
}

impl Drop for Question<'_> {
    fn drop(&mut self) {
        let waiting = self
            .session
            .waiting
            .lock()
            .expect("waiting lock")
            .remove(&self.id);
        if waiting.is_some() {
            let n = Notification::new(
                method::CANCELLED,
                Some(
                    serde_json::json!({"requestId": self.id, "reason": "cancelled by the server"}),
                ),
            );
            let _ = self.sink.try_send(Message::Notification(n));
        }
    }
}

impl Listen {
    /// `params` with this stream's subscription id in `_meta`.
    fn tag(&self, mut params: Value) -> Value {
        use gantry_core::protocol::meta;
        if let Some(m) = meta::of(&mut params) {
            m.insert(meta::SUBSCRIPTION_ID.into(), self.id.clone());
        }
        params
    }
}

/// A fresh session id (or other unguessable token): 128 random bits, hex.
pub(crate) fn random_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS provides randomness");
    let mut out = String::with_capacity(32);
    for x in b {
        out.push(char::from(HEX[usize::from(x >> 4)]));
        out.push(char::from(HEX[usize::from(x & 0xf)]));
    }
    out
}

/// An id for a stateless request context: never shown to a client nor looked up by one,
/// so a counter does (no system call per request). Written without `format!`, whose
/// machinery costs more than the rest of building the session.
fn stateless_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    with_decimal("stateless-", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `prefix` followed by `n` in decimal.
fn with_decimal(prefix: &str, mut n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut id = String::with_capacity(prefix.len() + digits.len() - start);
    id.push_str(prefix);
    id.extend(digits[start..].iter().map(|&d| char::from(d)));
    id
}

/// Routes what a server sends about one client request to that client.
pub struct RequestLink {
    session: Arc<Session>,
    sink: Sink,
}

impl RequestLink {
    /// A link that sends on `sink`.
    pub fn new(session: Arc<Session>, sink: Sink) -> Arc<RequestLink> {
        Arc::new(RequestLink { session, sink })
    }
}

impl ClientLink for RequestLink {
    fn notify(&self, n: Notification) {
        if n.method == method::MESSAGE {
            let level = n
                .params
                .as_ref()
                .and_then(|p| p.get("level"))
                .and_then(Value::as_str);
            if !self.session.wants_log(level, true) {
                return;
            }
        }
        if let Err(e) = self.sink.try_send(Message::Notification(n)) {
            tracing::debug!(session = %self.session.id, error = %e, "client stream full or closed; notification dropped");
        }
    }

    fn request(&self, method: String, params: Option<Value>) -> BoxFuture<Result<Value, RpcError>> {
        Box::pin(self.session.clone().ask(self.sink.clone(), method, params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_ids_are_written_as_format_would() {
        for n in [0, 7, 10, 99, 1_000_001, u64::MAX] {
            assert_eq!(with_decimal("stateless-", n), format!("stateless-{n}"));
        }
        let (a, b) = (stateless_id(), stateless_id());
        assert!(a.starts_with("stateless-") && b.starts_with("stateless-"));
        assert_ne!(a, b);
    }
}
