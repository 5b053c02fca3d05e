//! How bytes reach a server: stdio, Streamable HTTP or the legacy HTTP+SSE transport.
//!
//! A transport only moves JSON-RPC messages. It knows nothing of ids, capabilities or
//! sessions of the gateway's clients: everything it receives goes up as a [`TransportEvent`]
//! on one bounded channel, and the [`Peer`](super::peer::Peer) above it does the JSON-RPC
//! bookkeeping. The set of transports is closed, so it is an enum, not a trait object.

pub(crate) mod http;
pub(crate) mod http1;
pub(crate) mod sse;
pub(crate) mod sse_codec;
pub(crate) mod stdio;

use std::sync::Arc;

use gantry_config::{ServerConfig, TransportConfig};
use gantry_core::{Id, Message, RpcError};
use tokio::sync::mpsc;

/// What a transport needs besides the server's config.
#[derive(Clone)]
pub(crate) struct TransportContext {
    /// The server's name, for logs.
    pub(crate) server: Arc<str>,
}

/// Everything a transport reports upward, in order of arrival.
#[derive(Debug)]
pub(crate) enum TransportEvent {
    /// A message from the server. `related` is the id of the gateway's request whose response
    /// stream carried it (Streamable HTTP), so that progress and server→client requests can be
    /// routed to the client that caused them.
    Message {
        /// The message.
        msg: Message,
        /// The request whose stream carried it, if known.
        related: Option<Id>,
    },
    /// A request the gateway sent could not be delivered or answered at the transport level
    /// (HTTP error status, stream cut before the response, message too large). The peer
    /// answers the request with this error.
    Failed {
        /// The gateway's request id.
        id: Id,
        /// The error to answer with.
        error: RpcError,
    },
    /// The connection is gone (process exited, SSE stream ended, session expired). Every
    /// pending request fails; the server's supervisor reconnects.
    Closed {
        /// Why, for logs and errors.
        reason: String,
    },
}

/// The sending half of a transport's event channel.
pub(crate) type EventSender = mpsc::Sender<TransportEvent>;

/// A transport could not be set up or could not take a message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    /// The process could not be started or the server could not be reached.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The connection is closed.
    #[error("connection closed: {0}")]
    Closed(String),
}

/// Posts one message as its own HTTP exchange, for both HTTP transports: `post` runs as a
/// task (ended by `shutdown`) and reports through the events.
///
/// Notifications and responses keep their order with what is sent after them (a server may
/// refuse requests that overtake `notifications/initialized`), so for them this waits, within
/// [`http::ORDER_WAIT`], until `post` signals that the server took the message. Requests go at
/// once.
pub(crate) async fn post_message<F, Fut>(
    gone: &std::sync::OnceLock<String>,
    shutdown: &tokio::sync::watch::Sender<bool>,
    msg: &Message,
    post: F,
) -> Result<(), TransportError>
where
    F: FnOnce(bytes::Bytes, Option<Id>, Option<tokio::sync::oneshot::Sender<()>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    if let Some(reason) = gone.get() {
        return Err(TransportError::Closed(reason.clone()));
    }
    let body = bytes::Bytes::from(msg.to_vec());
    let id = match msg {
        Message::Request(r) => Some(r.id.clone()),
        Message::Notification(_) | Message::Response(_) => None,
    };
    let (accepted, taken) = match id {
        None => {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            (Some(tx), Some(rx))
        }
        Some(_) => (None, None),
    };
    let mut stop = shutdown.subscribe();
    let exchange = post(body, id, accepted);
    tokio::spawn(async move {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => {}
            () = exchange => {}
        }
    });
    if let Some(taken) = taken {
        let _ = tokio::time::timeout(http::ORDER_WAIT, taken).await;
    }
    Ok(())
}

/// A live connection to one server.
pub(crate) enum Transport {
    /// A child process.
    Stdio(stdio::StdioTransport),
    /// Streamable HTTP.
    Http(http::HttpTransport),
    /// Legacy HTTP+SSE.
    Sse(sse::SseTransport),
}

// === impl Transport ===

impl Transport {
    /// Connects to the server described by `cfg`. Messages from it arrive on `events`.
    pub(crate) async fn connect(
        cfg: &ServerConfig,
        ctx: &TransportContext,
        events: EventSender,
    ) -> Result<Transport, TransportError> {
        match &cfg.transport {
            TransportConfig::Stdio(s) => {
                stdio::StdioTransport::spawn(s, cfg.max_message_bytes, ctx, events)
                    .map(Transport::Stdio)
            }
            TransportConfig::StreamableHttp(h) => {
                http::HttpTransport::connect(h, cfg.max_message_bytes, ctx, events)
                    .await
                    .map(Transport::Http)
            }
            TransportConfig::Sse(h) => sse::SseTransport::connect(
                h,
                cfg.max_message_bytes,
                cfg.connect_timeout,
                ctx,
                events,
            )
            .await
            .map(Transport::Sse),
        }
    }

    /// Sends one message. Returns once the message is on its way; answers to requests come
    /// back as events.
    pub(crate) async fn send(&self, msg: &Message) -> Result<(), TransportError> {
        self.send_with(msg, Vec::new()).await
    }

    /// Sends one message with extra HTTP headers (`Mcp-Param-*` of a 2026-07-28 call);
    /// transports without headers ignore them.
    pub(crate) async fn send_with(
        &self,
        msg: &Message,
        headers: Vec<(::http::HeaderName, ::http::HeaderValue)>,
    ) -> Result<(), TransportError> {
        match self {
            Transport::Stdio(t) => t.send(msg).await,
            Transport::Http(t) => t.send(msg, headers).await,
            Transport::Sse(t) => t.send(msg).await,
        }
    }

    /// Called once the `initialize` handshake has agreed on `version`. Streamable HTTP sends
    /// it as `MCP-Protocol-Version` from then on and opens its GET stream.
    pub(crate) fn set_protocol_version(&self, version: &str) {
        if let Transport::Http(t) = self {
            t.set_protocol_version(version);
        }
    }

    /// Closes the connection: stdio ends the process group, HTTP deletes the session.
    pub(crate) async fn close(&self) {
        match self {
            Transport::Stdio(t) => t.close().await,
            Transport::Http(t) => t.close().await,
            Transport::Sse(t) => t.close().await,
        }
    }
}
