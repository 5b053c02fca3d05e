//! Legacy HTTP+SSE against a scripted server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gantry_config::TransportConfig;
use gantry_core::protocol::code;
use gantry_core::{Id, Message, Notification};
use http::{Method, Uri};
use serde_json::json;
use tokio::sync::mpsc;

use super::resolve_endpoint;
use crate::upstream::transport::http::testkit::*;
use crate::upstream::transport::{Transport, TransportError, TransportEvent};

async fn connect(
    url: String,
    timeout: Duration,
) -> Result<(Transport, mpsc::Receiver<TransportEvent>), TransportError> {
    let (tx, rx) = mpsc::channel(64);
    let mut cfg = server_config(TransportConfig::Sse(http_config(url)), 1 << 20);
    cfg.connect_timeout = timeout;
    Transport::connect(&cfg, &context(), tx)
        .await
        .map(|t| (t, rx))
}

/// The server side of a `GET /sse` stream: what is sent here goes out on it; taking the
/// sender out ends the stream.
type Feed = Arc<Mutex<Option<mpsc::UnboundedSender<Bytes>>>>;

fn push(feed: &Feed, data: String) {
    if let Some(tx) = feed.lock().unwrap().as_ref() {
        let _ = tx.send(data.into());
    }
}

/// A server whose `GET /sse` stream sends `first` and then whatever is pushed to the feed;
/// `post` answers the POSTs (and may push to the stream).
async fn stream_server(
    first: &'static str,
    post: impl Fn(&Seen, &Feed) -> Reply + Send + Sync + 'static,
) -> (TestServer, Feed) {
    let (tx, rx) = mpsc::unbounded_channel();
    let feed: Feed = Arc::new(Mutex::new(Some(tx)));
    let rx = Mutex::new(Some(rx));
    let for_post = feed.clone();
    let server = TestServer::start(move |seen| match seen.method {
        Method::GET if seen.uri.path() == "/sse" => match rx.lock().unwrap().take() {
            Some(rx) => Reply::sse(&[first]).end(End::Feed(rx)),
            None => Reply::status(409),
        },
        Method::POST => post(seen, &for_post),
        _ => Reply::status(404),
    })
    .await;
    (server, feed)
}

#[tokio::test]
async fn endpoint_messages_and_end_of_stream() {
    let response = result_json(1, json!({"protocolVersion": "2024-11-05"}));
    // The endpoint and a first message in one chunk: neither may be lost.
    let first = Box::leak(
        format!(
            "event: endpoint\ndata: /message?sessionId=abc\n\n{}",
            sse_message(None, r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"hello"}}"#)
        )
        .into_boxed_str(),
    );
    let (server, feed) = stream_server(first, move |seen, feed| {
        // The answer comes on the stream, as a `message` event or one without a name.
        if seen.rpc_method().as_deref() == Some("initialize") {
            push(feed, format!("data: {response}\n\n"));
        }
        Reply::status(202).chunk("Accepted")
    })
    .await;
    let (t, mut rx) = connect(server.url("/sse"), Duration::from_secs(10))
        .await
        .unwrap();
    match next_event(&mut rx, "early notification").await {
        TransportEvent::Message {
            msg: Message::Notification(n),
            related: None,
        } => {
            assert_eq!(n.params.unwrap()["data"], "hello");
        }
        other => panic!("{other:?}"),
    }
    t.send(&request(1, "initialize", json!({}))).await.unwrap();
    match next_event(&mut rx, "response").await {
        TransportEvent::Message {
            msg: Message::Response(r),
            related: None,
        } => {
            assert_eq!(r.id, Id::Num(1));
        }
        other => panic!("{other:?}"),
    }
    let posts = server.seen_with(Method::POST);
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].uri.path(), "/message");
    assert_eq!(posts[0].uri.query(), Some("sessionId=abc"));
    assert_eq!(posts[0].header("content-type"), Some("application/json"));
    assert_eq!(posts[0].rpc_method().as_deref(), Some("initialize"));
    let get = &server.seen_with(Method::GET)[0];
    assert_eq!(get.header("accept"), Some("text/event-stream"));

    // The server ends the stream: the connection is gone.
    feed.lock().unwrap().take();
    match next_event(&mut rx, "Closed").await {
        TransportEvent::Closed { reason } => assert!(reason.contains("ended"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        t.send(&request(2, "ping", json!({}))).await,
        Err(TransportError::Closed(_))
    ));
}

#[tokio::test]
async fn configured_headers_go_with_get_and_post() {
    let (server, _feed) = stream_server("event: endpoint\ndata: message\n\n", |_, _| {
        Reply::status(202)
    })
    .await;
    let (tx, mut rx) = mpsc::channel(8);
    let mut http = http_config(server.url("/sse"));
    http.headers = vec![("X-Api-Key".into(), "k1".into())];
    let cfg = server_config(TransportConfig::Sse(http), 1 << 20);
    let t = Transport::connect(&cfg, &context(), tx).await.unwrap();
    // A notification's send() returns once the server has taken it (order is kept).
    t.send(&Message::Notification(Notification::new(
        "notifications/initialized",
        None,
    )))
    .await
    .unwrap();
    let posts = server.seen_with(Method::POST);
    assert_eq!(posts.len(), 1);
    // A relative endpoint resolves against the stream's directory.
    assert_eq!(posts[0].uri.path(), "/message");
    assert_eq!(posts[0].header("x-api-key"), Some("k1"));
    assert_eq!(
        posts[0].rpc_method().as_deref(),
        Some("notifications/initialized")
    );
    t.send(&request(1, "ping", json!({}))).await.unwrap();
    t.close().await;
    match next_event(&mut rx, "Closed").await {
        TransportEvent::Closed { reason } => assert_eq!(reason, "closed by the gateway"),
        other => panic!("{other:?}"),
    }
    drop(t);
    assert!(drain(&mut rx).await.is_empty());
    let seen = server.seen();
    assert_eq!(seen[0].header("x-api-key"), Some("k1"));
    // The POST may or may not have gone out before close(); if it did, it had the header.
    for post in server.seen_with(Method::POST) {
        assert_eq!(post.uri.path(), "/message");
        assert_eq!(post.header("x-api-key"), Some("k1"));
    }
}

#[tokio::test]
async fn refused_post_fails_the_request() {
    let (server, _feed) = stream_server("event: endpoint\ndata: /m\n\n", |seen, _| {
        if seen.rpc_method().as_deref() == Some("tools/call") {
            Reply::json(
                400,
                r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"nope"}}"#,
            )
        } else {
            Reply::status(500).chunk("Internal trouble")
        }
    })
    .await;
    let (t, mut rx) = connect(server.url("/sse"), Duration::from_secs(10))
        .await
        .unwrap();
    t.send(&request(1, "tools/list", json!({}))).await.unwrap();
    match next_event(&mut rx, "Failed").await {
        TransportEvent::Failed { id, error } => {
            assert_eq!(id, Id::Num(1));
            assert_eq!(error.code, code::INTERNAL_ERROR);
            assert!(
                error.message.contains("HTTP 500") && error.message.contains("Internal trouble"),
                "{error:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    t.send(&request(2, "tools/call", json!({}))).await.unwrap();
    match next_event(&mut rx, "Failed").await {
        TransportEvent::Failed { id, error } => {
            assert_eq!(id, Id::Num(2));
            assert_eq!((error.code, error.message.as_str()), (-32600, "nope"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn connect_fails_without_endpoint_in_time() {
    let (server, _feed) = stream_server(": just a comment\n\n", |_, _| Reply::status(202)).await;
    let err = connect(server.url("/sse"), Duration::from_millis(200))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, TransportError::Connect(m) if m.contains("no `endpoint` event")),
        "{err}"
    );
}

#[tokio::test]
async fn connect_fails_on_http_error_and_https() {
    let server = TestServer::start(|_| Reply::status(404).chunk("Cannot GET /sse")).await;
    let err = connect(server.url("/sse"), Duration::from_secs(10))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, TransportError::Connect(m) if m.contains("HTTP 404") && m.contains("Cannot GET")),
        "{err}"
    );
    let err = connect("https://example.com/sse".into(), Duration::from_secs(1))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, TransportError::Connect(m) if m.contains("https upstreams are not supported yet")),
        "{err}"
    );
}

#[tokio::test]
async fn endpoint_on_another_origin_is_refused() {
    let (server, _feed) = stream_server(
        "event: endpoint\ndata: http://evil.example/steal\n\n",
        |_, _| Reply::status(202),
    )
    .await;
    let err = connect(server.url("/sse"), Duration::from_secs(10))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, TransportError::Connect(m) if m.contains("another origin")),
        "{err}"
    );
}

#[test]
fn endpoint_resolution() {
    let base: Uri = "http://127.0.0.1:3001/sse".parse().unwrap();
    let r = |d: &str| resolve_endpoint(&base, d).map(|u| u.to_string());
    assert_eq!(
        r("/message?sessionId=1").unwrap(),
        "http://127.0.0.1:3001/message?sessionId=1"
    );
    assert_eq!(
        r("message?sessionId=1").unwrap(),
        "http://127.0.0.1:3001/message?sessionId=1"
    );
    assert_eq!(r("  /m  ").unwrap(), "http://127.0.0.1:3001/m");
    assert_eq!(
        r("http://127.0.0.1:3001/x").unwrap(),
        "http://127.0.0.1:3001/x"
    );
    assert_eq!(r("//127.0.0.1:3001/y").unwrap(), "http://127.0.0.1:3001/y");
    assert!(r("http://127.0.0.1:3002/x").is_err());
    assert!(r("http://localhost:3001/x").is_err());
    assert!(r("//other/y").is_err());
    assert!(r("").is_err());
    let nested: Uri = "http://h/api/v1/sse".parse().unwrap();
    assert_eq!(
        resolve_endpoint(&nested, "messages/?session_id=9")
            .unwrap()
            .to_string(),
        "http://h/api/v1/messages/?session_id=9"
    );
    let default_port: Uri = "http://h/sse".parse().unwrap();
    assert!(resolve_endpoint(&default_port, "http://h:80/m").is_ok());
}
