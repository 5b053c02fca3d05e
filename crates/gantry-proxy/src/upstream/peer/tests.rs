//! The peer against a scripted Streamable HTTP server.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gantry_config::TransportConfig;
use gantry_core::protocol::code;
use gantry_core::{Notification, Params, Request, RpcError};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{BoxFuture, Peer, PeerEvents};
use crate::upstream::limits::Limiter;
use crate::upstream::transport::Transport;
use crate::upstream::transport::http::testkit::*;

struct NoEvents;

impl PeerEvents for NoEvents {
    fn notification(&self, _: Notification) {}
    fn request(&self, _: Request) -> BoxFuture<Result<Value, RpcError>> {
        Box::pin(async { Ok(json!({})) })
    }
    fn closed(&self, _: &str) {}
}

#[tokio::test]
async fn a_timeout_names_the_tool_of_a_tools_call_and_its_own_timeout() {
    // The server takes every request and never answers (its streams stay open), so each
    // request ends at its timeout, whatever that is.
    let streams = Arc::new(Mutex::new(Vec::new()));
    let keep = streams.clone();
    let server = TestServer::start(move |_| {
        let (tx, rx) = mpsc::unbounded_channel();
        keep.lock().unwrap().push(tx);
        Reply::sse(&[]).end(End::Feed(rx))
    })
    .await;
    let (tx, rx) = mpsc::channel(64);
    let cfg = server_config(
        TransportConfig::StreamableHttp(http_config(server.url("/mcp"))),
        1 << 20,
    );
    let transport = Transport::connect(&cfg, &context(), tx)
        .await
        .expect("connect");
    let tool_timeouts = BTreeMap::from([("hang".to_owned(), Duration::from_millis(1))]);
    let peer = Peer::start(
        "test".into(),
        transport,
        rx,
        Arc::new(NoEvents),
        Duration::from_millis(2),
        Arc::new(tool_timeouts),
        Limiter::new("test".into(), 8, Arc::default()),
    );

    // Params kept as the text a client sent, then params built as a tree.
    let call = Params::from_json(r#"{"name":"hang","arguments":{"n":1}}"#).unwrap();
    assert!(call.as_text().is_some());
    let e = peer
        .request("tools/call", Some(call), None)
        .await
        .unwrap_err();
    assert_eq!(e.code, code::UPSTREAM_TIMEOUT);
    assert_eq!(
        e.message,
        r#"server test did not answer tools/call (tool "hang") within 1ms; the request was cancelled"#
    );
    let call = json!({"name": "other"});
    let e = peer
        .request("tools/call", Some(call.into()), None)
        .await
        .unwrap_err();
    assert_eq!(
        e.message,
        r#"server test did not answer tools/call (tool "other") within 2ms; the request was cancelled"#
    );
    let e = peer.request("tools/list", None, None).await.unwrap_err();
    assert_eq!(e.code, code::UPSTREAM_TIMEOUT);
    assert_eq!(
        e.message,
        "server test did not answer tools/list within 2ms; the request was cancelled"
    );
    assert_eq!(peer.in_flight(), 0, "nothing is left pending");
}
