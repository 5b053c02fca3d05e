//! Connections to upstream MCP servers: transports, the JSON-RPC peer over them, and the
//! supervisor that keeps each configured server connected.

pub mod peer;
pub mod server;
pub(crate) mod transport;

pub use peer::{BoxFuture, ClientLink, Peer, PeerEvents, ServerHello};
pub use server::{Catalog, ServerEvent, Status, UpstreamServer};
pub(crate) use transport::http_client;
