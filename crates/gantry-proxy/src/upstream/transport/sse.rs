//! Legacy HTTP+SSE upstream transport (placeholder until the real one lands).

use std::time::Duration;

use gantry_config::HttpConfig;
use gantry_core::Message;

use super::{EventSender, TransportContext, TransportError};

/// A legacy HTTP+SSE connection.
pub(crate) struct SseTransport;

impl SseTransport {
    pub(crate) async fn connect(
        _cfg: &HttpConfig,
        _max_message_bytes: usize,
        _connect_timeout: Duration,
        _ctx: &TransportContext,
        _events: EventSender,
    ) -> Result<SseTransport, TransportError> {
        Err(TransportError::Connect("HTTP+SSE is not built yet".into()))
    }

    pub(crate) async fn send(&self, _msg: &Message) -> Result<(), TransportError> {
        Err(TransportError::Closed("not built".into()))
    }

    pub(crate) async fn close(&self) {}
}
