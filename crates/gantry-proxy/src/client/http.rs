//! The HTTP front: Streamable HTTP on `/mcp/<endpoint>`, the legacy HTTP+SSE transport on
//! `/mcp/<endpoint>/sse` + `/mcp/<endpoint>/message`, `/healthz` and `/readyz`.
//!
//! Every error a client can cause is answered here, in one place, with the HTTP status and
//! JSON-RPC error the spec asks for and a message that says what to fix.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use gantry_core::jsonrpc::error_without_id;
use gantry_core::protocol::{self, method};
use gantry_core::{Id, Message, Response as RpcResponse, RpcError};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::body::{EventStream, ResponseBody};
use crate::Gateway;
use crate::access::{self, Caller};
use crate::endpoint::Endpoint;
use crate::mcp_headers::VERSION as VERSION_HEADER;
use crate::session::{CLIENT_QUEUE, Session};

pub(super) const SESSION_HEADER: &str = "mcp-session-id";

pub(super) type HttpResponse = Response<ResponseBody>;

/// Serves HTTP on `listener` until `shutdown` completes.
pub async fn serve(gw: Arc<Gateway>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let _ = stream.set_nodelay(true);
        let gw = gw.clone();
        tokio::spawn(async move {
            // The client's address goes along as an argument: an extension would cost two
            // allocations per request.
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let gw = gw.clone();
                let has_body = !req.body().is_end_stream();
                async move {
                    let mut body_read = false;
                    let mut resp = route(&gw, req, peer, &mut body_read).await;
                    // A refusal may leave the body unread; hyper then closes the connection
                    // after an answer that said nothing of it, and a client sending its next
                    // request there (after a 401, say) sees it cut. Say so instead. An error
                    // answered after the body was read (a JSON-RPC error in a 400, say)
                    // keeps the connection.
                    if has_body
                        && !body_read
                        && (resp.status().is_client_error() || resp.status().is_server_error())
                    {
                        resp.headers_mut()
                            .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    }
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// Answers one request from the client at `peer`; `body_read` is set once its body has been
/// read to the end.
async fn route(
    gw: &Arc<Gateway>,
    req: Request<Incoming>,
    peer: std::net::SocketAddr,
    body_read: &mut bool,
) -> HttpResponse {
    let path = req.uri().path();
    if path == "/healthz" {
        return text(StatusCode::OK, "ok\n");
    }
    if path == "/readyz" {
        return readyz(gw);
    }
    if path == "/admin" || path.starts_with("/admin/") {
        return admin(gw, req, peer).await;
    }
    // The config-derived state, read once per request (a hot reload swaps it whole).
    let state = gw.state();
    if let Some(rest) = path.strip_prefix(access::WELL_KNOWN) {
        return access::metadata(&state, rest);
    }
    let Some(rest) = path.strip_prefix("/mcp/") else {
        return text(
            StatusCode::NOT_FOUND,
            "not found: MCP endpoints are served at /mcp/<endpoint>\n",
        );
    };
    let (name, tail) = match rest.split_once('/') {
        Some((n, t)) => (n, t),
        None => (rest, ""),
    };
    let Some(ep) = state.endpoints.get(name).cloned() else {
        let mut known: Vec<&str> = state.config.endpoints.keys().map(String::as_str).collect();
        known.sort();
        let removed = if state.removed_endpoints.contains(name) {
            "it was removed from the config by a reload; "
        } else {
            ""
        };
        return text(
            StatusCode::NOT_FOUND,
            &format!(
                "unknown endpoint {name:?}: {removed}this gateway serves [{}]\n",
                known.join(", ")
            ),
        );
    };
    if let Err(resp) = check_origin(&state.config, &req) {
        return resp;
    }
    let caller = match access::admit(&state, &ep, req.headers(), Some(peer)).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let max_body = state.config.max_body_bytes;
    match (req.method(), tail) {
        (&Method::POST, "") => post(gw, &ep, req, caller, max_body, body_read).await,
        (&Method::GET, "") => get_stream(gw, &ep, &req, caller),
        (&Method::DELETE, "") => delete(gw, &ep, &req, caller),
        (&Method::GET, "sse") => legacy_sse(gw, &ep, caller),
        (&Method::POST, "message") => legacy_post(gw, &ep, req, caller, max_body, body_read).await,
        (_, "" | "sse" | "message") => {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            let allow = match tail {
                "" => "GET, POST, DELETE",
                "sse" => "GET",
                _ => "POST",
            };
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            r
        }
        _ => text(StatusCode::NOT_FOUND, &format!("not found: {path}\n")),
    }
}

/// `/readyz`: 200 or 503 with every server's health (see [`crate::readiness`]).
fn readyz(gw: &Gateway) -> HttpResponse {
    let r = gw.readiness();
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = serde_json::to_vec_pretty(&r.to_json()).unwrap_or_default();
    body.push(b'\n');
    let mut resp = full(status, JSON, body);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `/admin/...`: the admin API, when one is served (`gantry serve` serves it).
async fn admin(
    gw: &Arc<Gateway>,
    req: Request<Incoming>,
    peer: std::net::SocketAddr,
) -> HttpResponse {
    if let Err(resp) = check_origin(&gw.config(), &req) {
        return resp;
    }
    let Some(handler) = gw.admin().cloned() else {
        return text(
            StatusCode::NOT_FOUND,
            "not found: the admin API is not served here\n",
        );
    };
    handler
        .handle(gw, req, Some(peer))
        .await
        .map(ResponseBody::Full)
}

/// Browsers send `Origin`; only configured origins may reach the gateway (DNS rebinding).
#[allow(clippy::result_large_err)]
fn check_origin(
    config: &gantry_config::Config,
    req: &Request<Incoming>,
) -> Result<(), HttpResponse> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let allowed = config
        .allowed_origins
        .iter()
        .any(|g| gantry_core::names::glob_match(g, origin));
    if allowed {
        Ok(())
    } else {
        Err(rpc_error(
            StatusCode::FORBIDDEN,
            None,
            RpcError::invalid_request(format!(
                "origin {origin:?} is not allowed: add it to allowed_origins in the config"
            )),
        ))
    }
}

/// The message in `body`, which may hold at most `max` bytes (`max_body_bytes`); `read` is
/// set once the body has been received to its end.
async fn read_message(
    max: usize,
    headers: &http::HeaderMap,
    body: Incoming,
    read: &mut bool,
) -> Result<Message, HttpResponse> {
    let too_large = || {
        rpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            RpcError::invalid_request(format!(
                "request body is larger than max_body_bytes ({max} bytes)"
            )),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let bytes = match Limited::new(body, max).collect().await {
        Ok(b) => {
            *read = true;
            b.to_bytes()
        }
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(too_large());
        }
        Err(e) => {
            return Err(rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                RpcError::parse(format!("could not read the request body: {e}")),
            ));
        }
    };
    Message::from_slice(&bytes).map_err(|e| rpc_error(StatusCode::BAD_REQUEST, e.id, e.error))
}

fn session_of(
    gw: &Gateway,
    ep: &Arc<Endpoint>,
    headers: &http::HeaderMap,
    caller: Caller,
) -> Result<Arc<Session>, HttpResponse> {
    let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(rpc_error(
            StatusCode::BAD_REQUEST,
            None,
            RpcError::invalid_request(
                "missing Mcp-Session-Id header: send initialize first and echo the session id it returns",
            ),
        ));
    };
    match gw.session(id) {
        Some(s) if s.endpoint().name() == ep.name() && same_caller(&s, caller) => Ok(s),
        _ => Err(rpc_error(
            StatusCode::NOT_FOUND,
            None,
            RpcError::invalid_request(format!(
                "session {id:?} not found or expired on endpoint {:?}: initialize a new session",
                ep.name()
            )),
        )),
    }
}

/// Whether `caller` is the subject that opened `session` (then its current teams apply to the
/// session from now on). Anyone else is told the session does not exist: a session id is no
/// credential.
fn same_caller(session: &Session, caller: Caller) -> bool {
    if session.caller().subject() != caller.subject() {
        tracing::info!(session = %session.id(), "refused: a session was used by another subject than the one that opened it");
        return false;
    }
    session.set_caller(caller);
    true
}

async fn post(
    gw: &Arc<Gateway>,
    ep: &Arc<Endpoint>,
    req: Request<Incoming>,
    caller: Caller,
    max_body: usize,
    body_read: &mut bool,
) -> HttpResponse {
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    let msg = match read_message(max_body, headers, body, body_read).await {
        Ok(m) => m,
        Err(resp) => return resp,
    };
    if super::modern::wants_modern(headers, &msg) {
        return super::modern::serve(gw, ep, headers, msg, caller).await;
    }
    if let Some(v) = headers.get(VERSION_HEADER) {
        let v = v.to_str().unwrap_or_default();
        if !protocol::is_legacy_version(v) {
            let id = match &msg {
                Message::Request(r) => Some(r.id.clone()),
                _ => None,
            };
            return rpc_error(
                StatusCode::BAD_REQUEST,
                id,
                super::modern::unsupported_version(v, protocol::LEGACY_VERSIONS),
            );
        }
    }
    let is_init = matches!(&msg, Message::Request(r) if r.method == method::INITIALIZE);
    let session = if is_init {
        gw.open_session_as(ep, caller)
    } else {
        match session_of(gw, ep, headers, caller) {
            Ok(s) => s,
            Err(resp) => return resp,
        }
    };
    let Message::Request(request) = &msg else {
        gw.accept(&session, msg, None);
        return empty(StatusCode::ACCEPTED);
    };
    let id = request.id.clone();
    let sse_ok = accepts_sse(headers);
    let stream_only = stream_only(headers);
    let (tx, mut rx) = mpsc::channel(CLIENT_QUEUE);
    gw.accept(&session, msg, Some(tx));
    let mut resp = loop {
        match rx.recv().await {
            Some(Message::Response(r)) if r.id == id && !stream_only => break json_response(r),
            Some(first) if sse_ok => {
                break events(EventStream::new(rx).for_request(id, first));
            }
            // A client that cannot read SSE gets related messages on its GET stream.
            Some(other) => session.send_unsolicited(other),
            // Cancelled: no response is due.
            None => break empty(StatusCode::ACCEPTED),
        }
    };
    if is_init && let Ok(v) = HeaderValue::from_str(session.id()) {
        resp.headers_mut().insert(SESSION_HEADER, v);
    }
    resp
}

fn get_stream(
    gw: &Arc<Gateway>,
    ep: &Arc<Endpoint>,
    req: &Request<Incoming>,
    caller: Caller,
) -> HttpResponse {
    let session = match session_of(gw, ep, req.headers(), caller) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !accepts_sse(req.headers()) {
        return text(
            StatusCode::NOT_ACCEPTABLE,
            "GET opens the server's event stream: send Accept: text/event-stream\n",
        );
    }
    let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
    session.set_outbox(Some(tx));
    events(EventStream::new(rx).preamble(Bytes::from_static(b": stream open\n\n")))
}

fn delete(
    gw: &Arc<Gateway>,
    ep: &Arc<Endpoint>,
    req: &Request<Incoming>,
    caller: Caller,
) -> HttpResponse {
    match session_of(gw, ep, req.headers(), caller) {
        Ok(s) => {
            gw.close_session(s.id());
            empty(StatusCode::OK)
        }
        Err(r) => r,
    }
}

/// Closes a session when its stream is dropped (the client went away).
pub(super) struct CloseOnDrop(std::sync::Weak<Gateway>, String);

impl CloseOnDrop {
    pub(super) fn new(gw: &Arc<Gateway>, session: &str) -> CloseOnDrop {
        CloseOnDrop(Arc::downgrade(gw), session.to_owned())
    }
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Some(gw) = self.0.upgrade() {
            gw.close_session(&self.1);
        }
    }
}

fn legacy_sse(gw: &Arc<Gateway>, ep: &Arc<Endpoint>, caller: Caller) -> HttpResponse {
    let session = gw.open_session_as(ep, caller);
    let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
    session.set_outbox(Some(tx));
    let endpoint_event = format!(
        "event: endpoint\ndata: /mcp/{}/message?sessionId={}\n\n",
        ep.name(),
        session.id()
    );
    events(
        EventStream::new(rx)
            .preamble(Bytes::from(endpoint_event))
            .guard(CloseOnDrop::new(gw, session.id())),
    )
}

async fn legacy_post(
    gw: &Arc<Gateway>,
    ep: &Arc<Endpoint>,
    req: Request<Incoming>,
    caller: Caller,
    max_body: usize,
    body_read: &mut bool,
) -> HttpResponse {
    let id = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("sessionId="))
        .unwrap_or_default()
        .to_owned();
    let session = match gw.session(&id) {
        Some(s) if s.endpoint().name() == ep.name() && same_caller(&s, caller) => s,
        _ => {
            return rpc_error(
                StatusCode::NOT_FOUND,
                None,
                RpcError::invalid_request(format!(
                    "SSE session {id:?} not found: open GET /mcp/{}/sse first and post to the endpoint it announces",
                    ep.name()
                )),
            );
        }
    };
    let (parts, body) = req.into_parts();
    let msg = match read_message(max_body, &parts.headers, body, body_read).await {
        Ok(m) => m,
        Err(resp) => return resp,
    };
    let Some(sink) = session.outbox() else {
        return rpc_error(
            StatusCode::NOT_FOUND,
            None,
            RpcError::invalid_request("the SSE stream of this session is closed"),
        );
    };
    gw.accept(&session, msg, Some(sink));
    text(StatusCode::ACCEPTED, "Accepted")
}

fn accept(headers: &http::HeaderMap) -> &str {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Whether the client accepts an event stream in reply.
fn accepts_sse(headers: &http::HeaderMap) -> bool {
    accept(headers).contains("text/event-stream")
}

/// Whether the client accepts only an event stream (not `application/json`) in reply.
pub(super) fn stream_only(headers: &http::HeaderMap) -> bool {
    let accept = accept(headers);
    accept.contains("text/event-stream")
        && !accept.contains("application/json")
        && !accept.contains("*/*")
}

pub(super) fn json_response(r: RpcResponse) -> HttpResponse {
    full(StatusCode::OK, JSON, Message::Response(r).to_vec())
}

pub(super) fn events(stream: EventStream) -> HttpResponse {
    let mut resp = Response::new(ResponseBody::Events(Box::new(stream)));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

pub(super) fn rpc_error(status: StatusCode, id: Option<Id>, err: RpcError) -> HttpResponse {
    let body = match id {
        Some(id) => Message::Response(RpcResponse::err(id, err)).to_vec(),
        None => error_without_id(&err),
    };
    full(status, JSON, body)
}

fn text(status: StatusCode, body: &str) -> HttpResponse {
    full(status, "text/plain; charset=utf-8", body.to_owned())
}

const JSON: &str = "application/json";

/// A response with a complete `body` of type `content_type`.
fn full(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> HttpResponse {
    let mut resp = Response::new(ResponseBody::Full(Full::new(body.into())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub(super) fn empty(status: StatusCode) -> HttpResponse {
    let mut resp = Response::new(ResponseBody::Full(Full::new(Bytes::new())));
    *resp.status_mut() = status;
    resp
}
