//! Streamable HTTP upstream transport (placeholder until the real one lands).

use gantry_config::HttpConfig;
use gantry_core::Message;

use super::{EventSender, TransportContext, TransportError};

/// A Streamable HTTP connection.
pub(crate) struct HttpTransport;

impl HttpTransport {
    pub(crate) async fn connect(
        _cfg: &HttpConfig,
        _max_message_bytes: usize,
        _ctx: &TransportContext,
        _events: EventSender,
    ) -> Result<HttpTransport, TransportError> {
        Err(TransportError::Connect(
            "Streamable HTTP is not built yet".into(),
        ))
    }

    pub(crate) async fn send(&self, _msg: &Message) -> Result<(), TransportError> {
        Err(TransportError::Closed("not built".into()))
    }

    pub(crate) fn set_protocol_version(&self, _version: &str) {}

    pub(crate) async fn close(&self) {}
}
