//! Streamable HTTP front of `bench-upstream`: one single-threaded tokio runtime, HTTP/1.1
//! keep-alive, `TCP_NODELAY`, JSON answers only (a benchmark upstream never streams).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::mcp::{Headers, Outcome, Server};

/// Largest request body read.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Serves until the process is killed.
pub(crate) fn serve(server: Arc<Server>, addr: SocketAddr) -> anyhow::Result<()> {
    // One thread: the bench pins this process to one core, and a single-threaded runtime
    // is the cheapest way to serve from one core.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("bench-upstream: accept failed: {e}");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let server = server.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let server = server.clone();
                    async move { Ok::<_, Infallible>(route(&server, req).await) }
                });
                // Errors here are clients going away; nothing to do about them.
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}

async fn route(server: &Server, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path == "/healthz" {
        return reply(StatusCode::OK, "text/plain", Bytes::from_static(b"ok\n"));
    }
    if path == "/stats" {
        let body = serde_json::json!({
            "messages": server.messages.load(Ordering::Relaxed),
            "calls": server.calls.load(Ordering::Relaxed),
        });
        return reply(StatusCode::OK, "application/json", body.to_string().into());
    }
    if path != "/mcp" && !path.starts_with("/mcp/") {
        return reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into());
    }
    match *req.method() {
        Method::POST => post(server, req).await,
        Method::DELETE => {
            let known = header_str(req.headers(), "mcp-session-id")
                .is_some_and(|id| server.end_session(id));
            let status = if known {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            reply(status, "text/plain", Bytes::new())
        }
        // No server-initiated stream: the spec's answer is 405.
        _ => {
            let mut r = reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "POST or DELETE\n".into(),
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
            r
        }
    }
}

async fn post(server: &Server, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return reply(
                StatusCode::BAD_REQUEST,
                "text/plain",
                format!("cannot read the body: {e}\n").into(),
            );
        }
    };
    let h = &parts.headers;
    let headers = Headers {
        version: header_str(h, "mcp-protocol-version"),
        method: header_str(h, "mcp-method"),
        name: header_str(h, "mcp-name"),
        session: header_str(h, "mcp-session-id"),
    };
    match server.handle_http(&body, &headers) {
        Outcome::Accepted => reply(StatusCode::ACCEPTED, "text/plain", Bytes::new()),
        Outcome::Json {
            status,
            body,
            session,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut r = reply(status, "application/json", body.into());
            if let Some(sid) = session.and_then(|s| HeaderValue::from_str(&s).ok()) {
                r.headers_mut().insert("mcp-session-id", sid);
            }
            r
        }
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn reply(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
