//! Legacy HTTP+SSE upstream transport (MCP 2024-11-05, deprecated but still common).
//!
//! `connect` opens `GET <url>` as an event stream and waits for the `endpoint` event, whose
//! data is the URL to `POST` messages to. Everything the server sends comes on that one
//! stream as `message` events; when it ends the connection is gone. A POST is answered with
//! 202 and no content: a request's answer arrives on the stream.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use gantry_config::HttpConfig;
use gantry_core::protocol::code;
use gantry_core::{Id, Message, RpcError};
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Uri};
use http_body_util::BodyExt;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::http::{
    ACCEPT_SSE, APPLICATION_JSON, BodyError, ERROR_BODY_LIMIT, body_excerpt, content_type,
    error_chain, excerpt, http_status_error, is_content_type, parse_headers, parse_http_url,
    read_body, rpc_error_in, shown_url, unreachable_error,
};
use super::http1::{Host, UpstreamBody};
use super::sse_codec::{SseDecoder, SseEvent};
use super::{EventSender, TransportContext, TransportError, TransportEvent, post_message};

/// A legacy HTTP+SSE connection.
// Reached through `Transport`, which the rest of the crate does not use yet.
pub(crate) struct SseTransport {
    shared: Arc<Shared>,
    reader: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    server: Arc<str>,
    /// The server's address (the stream's and the endpoint's: same origin) and its idle
    /// connections.
    host: Arc<Host>,
    /// Where messages are posted (from the `endpoint` event).
    endpoint: Uri,
    /// The endpoint without query (it holds the session id), for logs and errors.
    shown: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// How long a POST may take to be accepted.
    post_timeout: Duration,
    events: EventSender,
    shutdown: watch::Sender<bool>,
    gone: OnceLock<String>,
}

// === impl SseTransport ===

// Reached through `Transport`, which the rest of the crate does not use yet.
impl SseTransport {
    /// Opens the event stream and waits (at most `connect_timeout`) for the endpoint.
    pub(crate) async fn connect(
        cfg: &HttpConfig,
        max_message_bytes: usize,
        connect_timeout: Duration,
        ctx: &TransportContext,
        events: EventSender,
    ) -> Result<SseTransport, TransportError> {
        let url = parse_http_url(&cfg.url)?;
        // The transport sets these itself; its values win.
        let headers = parse_headers(&cfg.headers, &[ACCEPT, CACHE_CONTROL, CONTENT_TYPE])?;
        let shown = shown_url(&url);
        let host = Host::new(&url);
        let opening = open_stream(&host, &url, &shown, &headers, max_message_bytes);
        let (endpoint, body, decoder, early) =
            match tokio::time::timeout(connect_timeout, opening).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(TransportError::Connect(format!(
                        "no `endpoint` event from {shown} within {connect_timeout:?}"
                    )));
                }
            };
        let shown_endpoint = shown_url(&endpoint);
        tracing::debug!(server = %ctx.server, url = %shown, endpoint = %shown_endpoint, "SSE stream open");
        let shared = Arc::new(Shared {
            server: ctx.server.clone(),
            host,
            endpoint,
            shown: shown_endpoint,
            headers,
            post_timeout: connect_timeout,
            events,
            shutdown: watch::Sender::new(false),
            gone: OnceLock::new(),
        });
        let reader = {
            let shared = shared.clone();
            let mut stop = shared.shutdown.subscribe();
            tokio::spawn(async move {
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => {}
                    () = shared.read_stream(body, decoder, early) => {}
                }
            })
        };
        Ok(SseTransport {
            shared,
            reader: Mutex::new(Some(reader)),
        })
    }

    /// Posts one message to the endpoint; the exchange runs as a task.
    pub(crate) async fn send(&self, msg: &Message) -> Result<(), TransportError> {
        let shared = self.shared.clone();
        post_message(
            &self.shared.gone,
            &self.shared.shutdown,
            msg,
            move |body, id, accepted| async move { shared.post(body, id, accepted).await },
        )
        .await
    }

    /// Ends the stream (the server drops the session when it goes).
    pub(crate) async fn close(&self) {
        self.shared.shutdown.send_replace(true);
        if let Some(task) = self.reader.lock().expect("reader lock").take() {
            task.abort();
        }
        let reason = "closed by the gateway";
        if self.shared.gone.set(reason.to_owned()).is_ok() {
            let _ = self.shared.events.try_send(TransportEvent::Closed {
                reason: reason.to_owned(),
            });
        }
    }
}

impl Drop for SseTransport {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

/// What `connect` hands to the reading task: the endpoint, the open body, the decoder with
/// its state, and events that came in the same chunks as the endpoint.
type Opened = (Uri, UpstreamBody, SseDecoder, Vec<SseEvent>);

/// `GET url` as an event stream, read until the `endpoint` event.
async fn open_stream(
    host: &Arc<Host>,
    url: &Uri,
    shown: &str,
    headers: &[(HeaderName, HeaderValue)],
    max: usize,
) -> Result<Opened, TransportError> {
    let mut req = host.start(&Method::GET, url);
    for (name, value) in headers {
        req.header(name, value);
    }
    req.header(&ACCEPT, &ACCEPT_SSE);
    req.header(&CACHE_CONTROL, &HeaderValue::from_static("no-cache"));
    let resp = host.send(req, Bytes::new()).await.map_err(|e| {
        TransportError::Connect(format!("cannot reach {shown}: {}", error_chain(&e)))
    })?;
    let status = resp.status();
    if !status.is_success() {
        let body = read_body(resp.into_body(), ERROR_BODY_LIMIT).await;
        let shown_body = body_excerpt(&body);
        let sep = if shown_body.is_empty() { "" } else { ": " };
        return Err(TransportError::Connect(format!(
            "GET {shown} answered HTTP {status}{sep}{shown_body}"
        )));
    }
    if !is_content_type(&resp, "text/event-stream") {
        return Err(TransportError::Connect(format!(
            "GET {shown} did not answer with an event stream (content type {})",
            content_type(&resp).unwrap_or("(none)")
        )));
    }
    let mut body = resp.into_body();
    let mut decoder = SseDecoder::new(max);
    loop {
        let data = match body.frame().await {
            None => {
                return Err(TransportError::Connect(format!(
                    "{shown} ended the event stream before sending the `endpoint` event"
                )));
            }
            Some(Err(e)) => {
                return Err(TransportError::Connect(format!(
                    "the event stream from {shown} broke: {}",
                    error_chain(&e)
                )));
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
        };
        let mut endpoint = None;
        let mut early = Vec::new();
        for item in decoder.feed(&data) {
            let Ok(event) = item else { continue };
            if endpoint.is_none() && event.event.as_deref() == Some("endpoint") {
                let uri = resolve_endpoint(url, &event.data).map_err(TransportError::Connect)?;
                endpoint = Some(uri);
            } else {
                early.push(event);
            }
        }
        if let Some(endpoint) = endpoint {
            return Ok((endpoint, body, decoder, early));
        }
        if !early.is_empty() {
            tracing::debug!(url = %shown, skipped = early.len(), "events before the `endpoint` event were ignored");
        }
    }
}

/// Resolves the `endpoint` event's data against the stream's URL. The endpoint must be on
/// the same origin: the configured headers (credentials) go with every POST.
fn resolve_endpoint(base: &Uri, data: &str) -> Result<Uri, String> {
    let data = data.trim();
    if data.is_empty() {
        return Err("the server sent an empty `endpoint` event".into());
    }
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map_or("", |a| a.as_str());
    let joined;
    let text = if data.contains("://") {
        data
    } else if let Some(rest) = data.strip_prefix("//") {
        joined = format!("{scheme}://{rest}");
        &joined
    } else if data.starts_with('/') {
        joined = format!("{scheme}://{authority}{data}");
        &joined
    } else {
        let path = base.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        let dir = if dir.is_empty() { "/" } else { dir };
        joined = format!("{scheme}://{authority}{dir}{data}");
        &joined
    };
    let uri: Uri = text
        .parse()
        .map_err(|e| format!("the `endpoint` event holds no usable URL ({e})"))?;
    let same_origin = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
        && uri.host().is_some_and(|h| Some(h) == base.host())
        && port_of(&uri) == port_of(base);
    if !same_origin {
        return Err(format!(
            "the `endpoint` event points to another origin ({}) than the stream ({}); \
             refusing to send messages there",
            shown_url(&uri),
            shown_url(base)
        ));
    }
    Ok(uri)
}

fn port_of(uri: &Uri) -> u16 {
    uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") => 443,
        _ => 80,
    })
}

// === impl Shared ===

impl Shared {
    /// Reads the event stream until it ends, then reports the connection closed.
    async fn read_stream(
        &self,
        mut body: UpstreamBody,
        mut decoder: SseDecoder,
        early: Vec<SseEvent>,
    ) {
        for event in early {
            if !self.on_event(event).await {
                return;
            }
        }
        let reason = loop {
            let data = match body.frame().await {
                None => break "the server ended the SSE stream".to_owned(),
                Some(Err(e)) => break format!("the SSE stream broke: {}", error_chain(&e)),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue,
                },
            };
            for item in decoder.feed(&data) {
                match item {
                    Ok(event) => {
                        if !self.on_event(event).await {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(server = %self.server, error = %e, "skipped an SSE event");
                    }
                }
            }
        };
        tracing::debug!(server = %self.server, %reason, "SSE stream closed");
        if self.gone.set(reason.clone()).is_ok() {
            let _ = self.events.send(TransportEvent::Closed { reason }).await;
        }
    }

    /// Reports one event's message; `false` if nobody listens any more.
    async fn on_event(&self, event: SseEvent) -> bool {
        match event.event.as_deref() {
            None | Some("message") => {}
            Some(other) => {
                tracing::debug!(server = %self.server, event = other, "ignored an SSE event that is not a message");
                return true;
            }
        }
        if event.data.trim_ascii().is_empty() {
            return true;
        }
        match Message::from_slice(event.data.as_bytes()) {
            Ok(msg) => self
                .events
                .send(TransportEvent::Message { msg, related: None })
                .await
                .is_ok(),
            Err(e) => {
                tracing::warn!(server = %self.server, error = %e, data = %excerpt(event.data.as_bytes()), "ignored an SSE event that is not a JSON-RPC message");
                true
            }
        }
    }

    /// One POST of a message to the endpoint.
    /// `accepted` is dropped once the server has answered (or could not be reached).
    async fn post(&self, body: Bytes, id: Option<Id>, accepted: Option<oneshot::Sender<()>>) {
        let mut req = self.host.start(&Method::POST, &self.endpoint);
        for (name, value) in &self.headers {
            req.header(name, value);
        }
        req.header(&CONTENT_TYPE, &APPLICATION_JSON);
        let resp = tokio::time::timeout(self.post_timeout, self.host.send(req, body)).await;
        drop(accepted);
        let resp = match resp {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                if let Some(id) = id {
                    self.fail(id, unreachable_error(&self.server, &self.shown, &e))
                        .await;
                }
                return;
            }
            Err(_) => {
                tracing::warn!(server = %self.server, url = %self.shown, "no answer to a POST in time");
                if let Some(id) = id {
                    let msg = format!(
                        "the server did not accept the message within {:?}",
                        self.post_timeout
                    );
                    self.fail(id, RpcError::new(code::UPSTREAM_UNAVAILABLE, msg))
                        .await;
                }
                return;
            }
        };
        let status = resp.status();
        let body = tokio::time::timeout(
            self.post_timeout,
            read_body(resp.into_body(), ERROR_BODY_LIMIT),
        )
        .await
        .unwrap_or_else(|_| Err(BodyError::Read("timed out".into())));
        if status.is_success() {
            return;
        }
        let shown = body_excerpt(&body);
        tracing::warn!(server = %self.server, %status, body = %shown, "the server refused a message");
        let Some(id) = id else { return };
        let error = body
            .ok()
            .and_then(|b| rpc_error_in(&b))
            .unwrap_or_else(|| http_status_error(&self.server, status, &shown));
        self.fail(id, error).await;
    }

    async fn fail(&self, id: Id, error: RpcError) {
        let _ = self.events.send(TransportEvent::Failed { id, error }).await;
    }
}

#[cfg(test)]
mod tests;
