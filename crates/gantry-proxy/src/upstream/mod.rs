//! Connections to upstream MCP servers: transports, the JSON-RPC peer over them, the
//! supervisor that keeps each connection up, and the group of connections (lanes) one
//! configured server gets, one per set of client capabilities in use.

pub mod caps;
pub mod group;
pub mod health;
pub mod limits;
pub mod peer;
pub mod server;
pub(crate) mod transport;

#[cfg(test)]
mod lazy_tests;

pub use caps::ClientCaps;
pub use group::ServerGroup;
pub use health::{HealthReport, HealthStatus, ServerHealth};
pub use limits::Drain;
pub use peer::{BoxFuture, ClientLink, Peer, PeerEvents, ServerHello};
pub use server::{
    CacheHint, Catalog, CatalogSink, Changes, ListHints, ServerEvent, Status, Trigger,
    UpstreamServer,
};
