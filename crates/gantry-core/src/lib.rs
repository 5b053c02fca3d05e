//! Protocol types shared by every stage of the Gantry data path.
//!
//! Gantry is a proxy: it parses just enough of each JSON-RPC message to route it and keeps
//! everything else (`params`, unknown fields, `_meta`) as JSON values that pass through
//! unchanged, and a request's `params` ([`params`]) and a `result` ([`payload`]) as the text
//! they came as. This crate holds that envelope ([`jsonrpc`]), the MCP protocol constants
//! ([`protocol`]) and the rules for public tool names ([`names`]). It does no I/O.
#![deny(missing_docs)]

pub mod jsonrpc;
pub mod names;
pub mod params;
pub mod payload;
pub mod protocol;
pub mod time;

pub use jsonrpc::{Id, Message, Notification, Request, Response, RpcError};
pub use params::Params;
pub use payload::{Payload, RawObject};
