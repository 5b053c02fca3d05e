//! The client-facing fronts: framing of MCP messages over HTTP (Streamable HTTP and the
//! legacy HTTP+SSE transport) and over stdio. Each front parses messages, finds or creates the
//! session, and hands them to [`Gateway::accept`](crate::Gateway::accept).

pub(crate) mod body;
pub mod http;
mod modern;
pub mod stdio;
