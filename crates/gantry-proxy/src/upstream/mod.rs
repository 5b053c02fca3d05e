//! Connections to upstream MCP servers.

pub(crate) mod transport;
