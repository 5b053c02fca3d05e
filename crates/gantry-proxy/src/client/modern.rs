//! The 2026-07-28 side of `/mcp/<endpoint>`: stateless requests on the same URL as legacy
//! sessions.
//!
//! A modern request carries its client's description in `params._meta` (protocol version,
//! capabilities, client info) and no session id, so each one is served in a short-lived
//! [`Session`] built from that envelope. Before anything runs, the request climbs the spec's
//! validation ladder: the envelope is complete, the routing headers agree with the body
//! (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`: else -32020), and the
//! version is one Gantry speaks (else -32022 with the supported list). Closing the response
//! stream cancels the request, upstream included. `subscriptions/listen` keeps its stream
//! open and receives the endpoint's list changes and resource updates.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gantry_core::protocol::{self, code, meta, method};
use gantry_core::{Id, Message, Notification, Request, Response as RpcResponse, RpcError};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::body::{EventStream, sse_event};
use super::http::{CloseOnDrop, HttpResponse, SESSION_HEADER};
use crate::Gateway;
use crate::access::Caller;
use crate::endpoint::Endpoint;
use crate::mrtr::Parked;
use crate::session::{CLIENT_QUEUE, ClientHello, Listen, RequestScope, Session};

use crate::mcp_headers::{
    self, METHOD as METHOD_HEADER, NAME as NAME_HEADER, PARAM_PREFIX as PARAM_HEADER_PREFIX,
    VERSION as VERSION_HEADER,
};

/// Whether `msg` is a 2026-07-28 message: no session, and a per-request envelope or a modern
/// `MCP-Protocol-Version` header (`initialize` always starts a legacy session).
pub(super) fn wants_modern(headers: &HeaderMap, msg: &Message) -> bool {
    if headers.contains_key(SESSION_HEADER) {
        return false;
    }
    let header_version = headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok());
    match msg {
        Message::Request(r) => {
            let envelope = r
                .params
                .as_ref()
                .and_then(|p| p.meta())
                .is_some_and(|m| m.contains(meta::PROTOCOL_VERSION));
            envelope
                || (r.method != method::INITIALIZE
                    && header_version.is_some_and(|v| !protocol::is_legacy_version(v)))
        }
        Message::Notification(_) => header_version.is_some_and(protocol::is_modern_version),
        _ => false,
    }
}

/// Serves one modern message.
pub(super) async fn serve(
    gw: &Arc<Gateway>,
    ep: &Arc<Endpoint>,
    headers: &HeaderMap,
    msg: Message,
    caller: Caller,
) -> HttpResponse {
    // The core protocol defines no client notifications on this wire; nothing to act on.
    let Message::Request(req) = msg else {
        return super::http::empty(StatusCode::ACCEPTED);
    };
    let envelope = match check(headers, &req) {
        Ok(e) => e,
        Err(err) => return error_reply(Some(req.id), err),
    };
    match req.method.as_str() {
        method::SUBSCRIPTIONS_LISTEN => listen(gw, ep, req, envelope, caller).await,
        _ => call(gw, ep, headers, req, envelope, caller).await,
    }
}

/// What a modern request says about its client.
struct Envelope {
    hello: ClientHello,
    log_level: Option<usize>,
}

/// The spec's validation ladder; the first failing rung answers.
fn check(headers: &HeaderMap, req: &Request) -> Result<Envelope, RpcError> {
    // `_meta` and its members are read alone from the params' text.
    let meta = req.params.as_ref().and_then(|p| p.meta());
    // Each member is looked up once (hashing a key is not free).
    // The version as JSON text (for messages) and as a string, if it is one.
    let version = meta.as_ref().and_then(|m| m.text(meta::PROTOCOL_VERSION));
    let capabilities = meta.as_ref().and_then(|m| m.get(meta::CLIENT_CAPABILITIES));
    let (version_missing, capabilities_missing) = (version.is_none(), capabilities.is_none());
    let (Some(meta), Some(version), Some(capabilities)) = (meta, version, capabilities) else {
        let missing: Vec<&str> = [
            (meta::PROTOCOL_VERSION, version_missing),
            (meta::CLIENT_CAPABILITIES, capabilities_missing),
        ]
        .into_iter()
        .filter(|(_, missing)| *missing)
        .map(|(k, _)| k)
        .collect();
        return Err(RpcError::invalid_params(format!(
            "a request without a session must carry params._meta with {}: add them, or initialize a session first",
            missing.join(" and ")
        )));
    };
    let version_str = meta.get_str(meta::PROTOCOL_VERSION);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header(VERSION_HEADER).is_none_or(|h| Some(h) != version_str.as_deref()) {
        return Err(mismatch(format!(
            "the MCP-Protocol-Version header must equal params._meta[\"{}\"] ({version})",
            meta::PROTOCOL_VERSION
        )));
    }
    if header(METHOD_HEADER) != Some(req.method.as_str()) {
        return Err(mismatch(format!(
            "the Mcp-Method header must equal the request's method ({:?})",
            req.method
        )));
    }
    if let Some(key) = mcp_headers::name_key(&req.method)
        && let Some(body) = req.param_str(key)
        && header(NAME_HEADER).and_then(mcp_headers::decode).as_deref() != Some(&*body)
    {
        return Err(mismatch(format!(
            "the Mcp-Name header must equal params.{key} ({body:?})"
        )));
    }
    let Some(version) = version_str.as_deref() else {
        return Err(RpcError::invalid_params(format!(
            "params._meta[\"{}\"] must be a string",
            meta::PROTOCOL_VERSION
        )));
    };
    if !protocol::is_modern_version(version) {
        return Err(unsupported_version(version, protocol::MODERN_VERSIONS));
    }
    let log_level = meta
        .get_str(meta::LOG_LEVEL)
        .and_then(|l| protocol::log_level_rank(&l));
    Ok(Envelope {
        hello: ClientHello::new(&capabilities),
        log_level,
    })
}

fn mismatch(message: String) -> RpcError {
    RpcError::new(code::HEADER_MISMATCH, message)
}

/// -32022 with the versions Gantry speaks in that form (stateless, or with a session).
pub(super) fn unsupported_version(requested: &str, supported: &[&str]) -> RpcError {
    RpcError::new(
        code::UNSUPPORTED_PROTOCOL_VERSION,
        format!(
            "unsupported protocol version {requested:?}: supported are {}",
            supported.join(", ")
        ),
    )
    .with_data(json!({"supported": supported, "requested": requested}))
}

/// Checks each `Mcp-Param-*` header a tool's schema declares against the argument it mirrors:
/// present together and equal, or absent together.
fn check_param_headers(
    headers: &HeaderMap,
    declared: &[(Vec<String>, String)],
    arguments: Option<&Value>,
) -> Result<(), RpcError> {
    for (path, token) in declared {
        let mut values = headers.get_all(mcp_headers::param_name(token)).iter();
        let header = values.next().and_then(|v| v.to_str().ok());
        if values.next().is_some() {
            return Err(mismatch(format!(
                "the Mcp-Param-{token} header appears more than once"
            )));
        }
        let arg = mcp_headers::argument(arguments, path);
        let argument = path.join(".");
        match (header, arg) {
            (None, None) => {}
            (Some(_), None) => {
                return Err(mismatch(format!(
                    "the Mcp-Param-{token} header is set but argument {argument:?} is absent"
                )));
            }
            (None, Some(_)) => {
                return Err(mismatch(format!(
                    "argument {argument:?} must be mirrored in the Mcp-Param-{token} header"
                )));
            }
            (Some(h), Some(a)) => {
                if mcp_headers::decode(h) != mcp_headers::render_scalar(a) {
                    return Err(mismatch(format!(
                        "the Mcp-Param-{token} header does not equal argument {argument:?}"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Runs one request; the reply is JSON unless progress or log messages come first, then an
/// SSE stream. Dropping the reply (the client closed the stream) cancels the request.
async fn call(
    gw: &Arc<Gateway>,
    ep: &Arc<Endpoint>,
    headers: &HeaderMap,
    mut req: Request,
    envelope: Envelope,
    caller: Caller,
) -> HttpResponse {
    let mut resume_server = None;
    if let Some(state) = req.params.as_ref().and_then(|p| p.get("requestState")) {
        let state = state.into_owned();
        let opened = state.as_str().and_then(|s| gw.sealer.open(s));
        let Some(payload) = opened else {
            return error_reply(Some(req.id), altered_state());
        };
        if let Some(token) = payload.strip_prefix("parked:") {
            return resume(
                gw,
                ep,
                req,
                token,
                &caller,
                super::http::stream_only(headers),
            )
            .await;
        }
        // A 2026-07-28 server's own state, sealed with the server's name: unsealed, it goes
        // back to that server.
        let Some((server, state)) = payload
            .strip_prefix("upstream:")
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .and_then(|p| {
                Some((
                    p.get("server")?.as_str()?.to_owned(),
                    p.get("state")?.clone(),
                ))
            })
        else {
            return error_reply(Some(req.id), altered_state());
        };
        if let Some(p) = req
            .params
            .as_mut()
            .and_then(|p| p.value_mut().as_object_mut())
        {
            match state {
                Value::Null => p.remove("requestState"),
                state => p.insert("requestState".into(), state),
            };
        }
        resume_server = Some(server);
    }
    let session = Session::stateless(ep.clone(), caller, envelope.hello, envelope.log_level, None);
    let param_headers: Vec<_> = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with(PARAM_HEADER_PREFIX))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    // Most requests carry neither: no allocation for them.
    if !param_headers.is_empty() || resume_server.is_some() {
        session.set_scope(RequestScope {
            param_headers,
            resume_server,
        });
    }
    crate::router::await_lanes(ep, &session.caps()).await;
    if req.method == method::TOOLS_CALL {
        let view = ep.view_for(&session.caps(), &session.caller().grant);
        // Most views declare no `Mcp-Param-*` headers: then the name is not even looked up.
        let name = match view.tool_headers.is_empty() {
            true => None,
            false => req.param_str("name").map(|n| n.into_owned()),
        };
        // A progressive endpoint's meta-tools declare no headers, whatever a hidden tool of
        // the same name does.
        if let Some(name) = name
            && !(view.progressive.is_some() && crate::progressive::is_meta(&name))
            && let Some(declared) = view.tool_headers.get(name.as_str())
            && let Err(e) =
                check_param_headers(headers, declared, req.param("arguments").as_deref())
        {
            return error_reply(Some(req.id), e);
        }
    }
    let id = req.id.clone();
    let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
    gw.accept(&session, Message::Request(req), Some(tx));
    reply(gw, ep, session, rx, id, super::http::stream_only(headers)).await
}

/// A `requestState` this gateway did not seal, or sealed differently.
fn altered_state() -> RpcError {
    RpcError::invalid_params(
        "requestState was altered or was not issued by this gateway: retry with the requestState of the input_required result, unchanged",
    )
}

/// The reply to a (possibly resumed) call: its result, or the question a legacy server put
/// mid-call as `input_required` (the call is parked), or, once progress or log messages
/// arrive, an SSE stream that ends with either.
async fn reply(
    gw: &Arc<Gateway>,
    ep: &Arc<Endpoint>,
    session: Arc<Session>,
    mut rx: mpsc::Receiver<Message>,
    id: Id,
    stream_only: bool,
) -> HttpResponse {
    let cancel = CancelOnDrop::new(session.clone());
    match rx.recv().await {
        Some(first) if stream_only => stream(gw, ep, session, rx, id, cancel, first),
        Some(Message::Response(r)) => match r.outcome {
            Ok(result) => super::http::json_response(RpcResponse::ok(id, result)),
            Err(e) => error_reply(Some(id), e),
        },
        Some(Message::Request(question)) => {
            cancel.disarm();
            let result = park(gw, ep, session, rx, question);
            super::http::json_response(RpcResponse::ok(id, result))
        }
        Some(first) => stream(gw, ep, session, rx, id, cancel, first),
        None => super::http::empty(StatusCode::ACCEPTED),
    }
}

/// Answers on an SSE stream that starts with `first` and ends with the call's result (or
/// its `input_required`).
fn stream(
    gw: &Arc<Gateway>,
    ep: &Arc<Endpoint>,
    session: Arc<Session>,
    rx: mpsc::Receiver<Message>,
    id: Id,
    cancel: CancelOnDrop,
    first: Message,
) -> HttpResponse {
    let (tx, stream) = mpsc::channel(CLIENT_QUEUE);
    let armed = cancel.armed.clone();
    let call = Call {
        gw: gw.clone(),
        ep: ep.clone(),
        session,
        rx,
    };
    tokio::spawn(pump(call, first, tx, id.clone(), armed));
    super::http::events(EventStream::new(stream).until(id).guard(cancel))
}

/// A call in progress: its context and the channel its messages arrive on.
struct Call {
    gw: Arc<Gateway>,
    ep: Arc<Endpoint>,
    session: Arc<Session>,
    rx: mpsc::Receiver<Message>,
}

/// Moves a streaming call's messages to its SSE stream, answering with the result under the
/// client's request id, or parking the call at a server's question.
async fn pump(
    mut call: Call,
    first: Message,
    tx: mpsc::Sender<Message>,
    id: Id,
    armed: Arc<AtomicBool>,
) {
    let mut next = Some(first);
    loop {
        let msg = match next.take() {
            Some(m) => m,
            None => match call.rx.recv().await {
                Some(m) => m,
                None => return,
            },
        };
        let msg = match msg {
            Message::Response(r) => Message::Response(RpcResponse {
                id: id.clone(),
                outcome: r.outcome,
            }),
            Message::Request(question) => {
                armed.store(false, Ordering::Release);
                let result = park(&call.gw, &call.ep, call.session, call.rx, question);
                let _ = tx
                    .send(Message::Response(RpcResponse::ok(id, result)))
                    .await;
                return;
            }
            n => n,
        };
        let last = matches!(msg, Message::Response(_));
        if tx.send(msg).await.is_err() || last {
            return;
        }
    }
}

/// The key under which a parked question appears in `inputRequests`.
fn input_key(question: &Request) -> String {
    format!("gantry-{}", question.id)
}

/// Parks a call at its server's `question`; the `input_required` result for the client.
fn park(
    gw: &Gateway,
    ep: &Endpoint,
    session: Arc<Session>,
    rx: mpsc::Receiver<Message>,
    question: Request,
) -> Value {
    let key = input_key(&question);
    let mut input = json!({"method": question.method});
    if let Some(p) = &question.params {
        input["params"] = p.value().into_owned();
    }
    let token = gw.parking.park(Parked::new(session, rx, question));
    json!({
        "resultType": "input_required",
        "inputRequests": {key: input},
        "requestState": gw.sealer.seal(&format!("parked:{token}")),
        "_meta": {meta::SERVER_INFO: ep.server_info()},
    })
}

/// A retry with a `requestState`: the answer goes to the parked call's server, and the call
/// continues; a state the gateway did not seal, or one already used, is refused.
async fn resume(
    gw: &Arc<Gateway>,
    ep: &Arc<Endpoint>,
    req: Request,
    token: &str,
    caller: &Caller,
    stream_only: bool,
) -> HttpResponse {
    // Only the subject whose call was parked may answer it; anyone else is told it is gone.
    let parked = gw
        .parking
        .take_if(token, |p| p.session.caller().subject() == caller.subject());
    let Some(parked) = parked else {
        return error_reply(
            Some(req.id),
            RpcError::invalid_params(
                "requestState refers to a call that already finished or expired: call again without requestState",
            ),
        );
    };
    let key = input_key(&parked.question);
    let answer = req
        .param("inputResponses")
        .and_then(|r| r.get(&key).cloned());
    let Some(answer) = answer else {
        // The question is still open: ask it again.
        let result = park(gw, ep, parked.session, parked.rx, parked.question);
        return super::http::json_response(RpcResponse::ok(req.id, result));
    };
    parked
        .session
        .answer(&parked.question.id, Ok(answer.into()));
    reply(gw, ep, parked.session, parked.rx, req.id, stream_only).await
}

/// Aborts a stateless call when its reply is dropped before it finished or was parked.
struct CancelOnDrop {
    /// Shared with the task that streams the reply, which disarms it when it parks the call.
    armed: Arc<AtomicBool>,
    session: Arc<Session>,
}

impl CancelOnDrop {
    fn new(session: Arc<Session>) -> CancelOnDrop {
        CancelOnDrop {
            armed: Arc::new(AtomicBool::new(true)),
            session,
        }
    }

    fn disarm(&self) {
        self.armed.store(false, Ordering::Release);
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed.load(Ordering::Acquire) {
            self.session.close();
        }
    }
}

/// `subscriptions/listen`: acknowledges what the endpoint can honour, then streams the list
/// changes and resource updates of all its servers, tagged with the subscription id.
async fn listen(
    gw: &Arc<Gateway>,
    ep: &Arc<Endpoint>,
    req: Request,
    envelope: Envelope,
    caller: Caller,
) -> HttpResponse {
    let asked = req
        .param("notifications")
        .map(|n| n.into_owned())
        .unwrap_or(json!({}));
    let wants = |k: &str| asked.get(k) == Some(&Value::Bool(true));
    let caps = crate::router::endpoint_capabilities(ep, envelope.hello.caps()).await;
    let has = |p: &str| caps.pointer(p).is_some();
    let listen = Listen {
        id: req.id.to_value(),
        tools: wants("toolsListChanged"),
        prompts: wants("promptsListChanged") && has("/prompts"),
        resources: wants("resourcesListChanged") && has("/resources"),
    };
    let uris: Vec<String> = if caps.pointer("/resources/subscribe") == Some(&Value::Bool(true)) {
        asked
            .get("resourceSubscriptions")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let session = Session::stateless(
        ep.clone(),
        caller,
        envelope.hello,
        None,
        Some(listen.clone()),
    );
    let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
    session.set_outbox(Some(tx));
    gw.register_session(session.clone());
    // Each URI is subscribed upstream by its server, as a legacy client's subscribe would
    // be, before the acknowledgement: no update after it can be missed. The
    // acknowledgement lists the URIs whose server took the subscription.
    let mut subscribed = Vec::new();
    for (n, uri) in uris.into_iter().enumerate() {
        let sub = Request {
            id: Id::Str(format!("listen-subscribe-{n}")),
            method: method::RESOURCES_SUBSCRIBE.into(),
            params: Some(json!({"uri": uri}).into()),
        };
        let (reply, mut answer) = mpsc::channel(1);
        gw.accept(&session, Message::Request(sub), Some(reply));
        match answer.recv().await {
            Some(Message::Response(RpcResponse { outcome: Ok(_), .. })) => subscribed.push(uri),
            other => {
                tracing::debug!(%uri, outcome = ?other, "listen: resource subscription refused")
            }
        }
    }
    let mut honored = serde_json::Map::new();
    for (key, on) in [
        ("toolsListChanged", listen.tools),
        ("promptsListChanged", listen.prompts),
        ("resourcesListChanged", listen.resources),
    ] {
        if on {
            honored.insert(key.into(), Value::Bool(true));
        }
    }
    if !subscribed.is_empty() {
        honored.insert("resourceSubscriptions".into(), json!(subscribed));
    }
    let ack = Notification::new(
        method::SUBSCRIPTIONS_ACKNOWLEDGED,
        Some(json!({
            "notifications": honored,
            "_meta": {meta::SUBSCRIPTION_ID: listen.id},
        })),
    );
    super::http::events(
        EventStream::new(rx)
            .preamble(sse_event(&Message::Notification(ack)))
            .guard(CloseOnDrop::new(gw, session.id())),
    )
}

/// A JSON-RPC error with the HTTP status the 2026-07-28 transport gives its code.
fn error_reply(id: Option<Id>, err: RpcError) -> HttpResponse {
    let status = match err.code {
        code::PARSE_ERROR
        | code::INVALID_REQUEST
        | code::INVALID_PARAMS
        | code::HEADER_MISMATCH
        | code::MISSING_REQUIRED_CLIENT_CAPABILITY
        | code::UNSUPPORTED_PROTOCOL_VERSION => StatusCode::BAD_REQUEST,
        code::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    };
    super::http::rpc_error(status, id, err)
}
