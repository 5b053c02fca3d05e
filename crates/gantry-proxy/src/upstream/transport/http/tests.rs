//! Streamable HTTP against a scripted server: headers, sessions, streams and failures.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use gantry_config::TransportConfig;
use gantry_core::protocol::code;
use gantry_core::{Id, Message, Notification, RpcError};
use http::Method;
use serde_json::json;
use tokio::sync::mpsc;

use super::testkit::*;
use super::{backoff, excerpt, parse_http_url, rpc_error_in, shown_url};
use crate::upstream::transport::{Transport, TransportError, TransportEvent};

const MAX: usize = 1 << 20;

async fn connect(server: &TestServer) -> (Transport, mpsc::Receiver<TransportEvent>) {
    connect_with(server.url("/mcp"), Vec::new(), MAX).await
}

async fn connect_with(
    url: String,
    headers: Vec<(String, String)>,
    max: usize,
) -> (Transport, mpsc::Receiver<TransportEvent>) {
    let (tx, rx) = mpsc::channel(64);
    let cfg = server_config(
        TransportConfig::StreamableHttp(gantry_config::HttpConfig { url, headers }),
        max,
    );
    let t = Transport::connect(&cfg, &context(), tx)
        .await
        .expect("connect");
    (t, rx)
}

fn expect_response(ev: TransportEvent, id: i64) -> serde_json::Value {
    match ev {
        TransportEvent::Message {
            msg: Message::Response(r),
            related: None,
        } if r.id == Id::Num(id) => r
            .outcome
            .and_then(gantry_core::Payload::into_value)
            .expect("a result"),
        other => panic!("expected the response to {id}, got {other:?}"),
    }
}

fn expect_failed(ev: TransportEvent, id: i64) -> RpcError {
    match ev {
        TransportEvent::Failed { id: got, error } if got == Id::Num(id) => error,
        other => panic!("expected Failed for {id}, got {other:?}"),
    }
}

fn init() -> Message {
    request(
        1,
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}}),
    )
}

#[tokio::test]
async fn json_replies_session_and_headers() {
    let server = TestServer::start(|seen| match (&seen.method, seen.rpc_method().as_deref()) {
        (&Method::POST, Some("initialize")) => Reply::json(
            200,
            result_json(1, json!({"protocolVersion": "2025-11-25"})),
        )
        .header("mcp-session-id", "sess-1"),
        (&Method::POST, Some("notifications/initialized")) => Reply::status(202),
        (&Method::POST, Some("tools/list")) => {
            Reply::json(200, result_json(2, json!({"tools": []})))
                .header("content-type", "application/json; charset=utf-8")
        }
        (&Method::GET, _) => Reply::status(405),
        (&Method::DELETE, _) => Reply::status(200),
        _ => Reply::status(500),
    })
    .await;
    let (t, mut rx) = connect_with(
        server.url("/mcp"),
        vec![("Authorization".into(), "Bearer secret-token".into())],
        MAX,
    )
    .await;

    t.send(&init()).await.unwrap();
    expect_response(next_event(&mut rx, "initialize response").await, 1);
    t.set_protocol_version("2025-11-25");
    t.send(&Message::Notification(Notification::new(
        "notifications/initialized",
        None,
    )))
    .await
    .unwrap();
    t.send(&request(2, "tools/list", json!({}))).await.unwrap();
    let result = expect_response(next_event(&mut rx, "tools/list response").await, 2);
    assert_eq!(result, json!({"tools": []}));
    server
        .wait_for("the GET stream", |s| s.method == Method::GET)
        .await;
    t.close().await;

    let seen = server.seen();
    let first = seen
        .iter()
        .find(|s| s.rpc_method().as_deref() == Some("initialize"))
        .unwrap();
    assert_eq!(first.uri.path(), "/mcp");
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(
        first.header("accept"),
        Some("application/json, text/event-stream")
    );
    assert_eq!(first.header("authorization"), Some("Bearer secret-token"));
    assert_eq!(first.header("mcp-session-id"), None);
    assert_eq!(first.header("mcp-protocol-version"), None);
    let list = seen
        .iter()
        .find(|s| s.rpc_method().as_deref() == Some("tools/list"))
        .unwrap();
    assert_eq!(list.header("mcp-session-id"), Some("sess-1"));
    assert_eq!(list.header("mcp-protocol-version"), Some("2025-11-25"));
    assert_eq!(list.header("authorization"), Some("Bearer secret-token"));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&list.body).unwrap(),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
    );
    // The server-initiated stream was asked for (and refused with 405).
    let gets = server.seen_with(Method::GET);
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(gets[0].header("accept"), Some("text/event-stream"));
    assert_eq!(gets[0].header("mcp-session-id"), Some("sess-1"));
    assert_eq!(gets[0].header("mcp-protocol-version"), Some("2025-11-25"));
    // close() ended the session.
    let deletes = server.seen_with(Method::DELETE);
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].header("mcp-session-id"), Some("sess-1"));
    // Nothing but the two responses and the final Closed came up.
    only_closed_is_left(t, &mut rx).await;
}

#[tokio::test]
async fn notifications_keep_their_order() {
    // send() of a notification returns once the server has it, so a request sent next
    // cannot overtake it; a request's send() does not wait for anything.
    let (release, hold) = tokio::sync::oneshot::channel::<()>();
    let hold = std::sync::Mutex::new(Some(hold));
    let server = TestServer::start(move |seen| match seen.rpc_method().as_deref() {
        Some("notifications/initialized") => Reply::status(202),
        _ => {
            // A request whose answer never finishes until the test says so.
            let (tx, rx) = mpsc::unbounded_channel();
            let hold = hold.lock().unwrap().take();
            tokio::spawn(async move {
                if let Some(hold) = hold {
                    let _ = hold.await;
                }
                let _ = tx.send(sse_message(None, &result_json(1, json!({}))).into());
            });
            Reply::sse(&[]).end(End::Feed(rx))
        }
    })
    .await;
    let (t, mut rx) = connect(&server).await;
    t.send(&request(1, "tools/list", json!({}))).await.unwrap();
    t.send(&Message::Notification(Notification::new(
        "notifications/initialized",
        None,
    )))
    .await
    .unwrap();
    let methods: Vec<_> = server
        .seen()
        .iter()
        .filter_map(|s| s.rpc_method())
        .collect();
    assert!(
        methods.contains(&"notifications/initialized".to_owned()),
        "{methods:?}"
    );
    release.send(()).unwrap();
    expect_response(next_event(&mut rx, "response").await, 1);
}

#[tokio::test]
async fn http_500_fails_the_request_with_status_and_body() {
    let server = TestServer::start(|_| {
        Reply::status(500)
            .header("content-type", "text/plain")
            .chunk("  database\n   is on fire  \n")
    })
    .await;
    let (t, mut rx) = connect(&server).await;
    t.send(&request(7, "tools/list", json!({}))).await.unwrap();
    let error = expect_failed(next_event(&mut rx, "Failed").await, 7);
    assert_eq!(error.code, code::INTERNAL_ERROR);
    assert!(error.message.contains("HTTP 500"), "{error:?}");
    assert!(error.message.contains("database is on fire"), "{error:?}");
    assert_eq!(error.data, Some(json!({"httpStatus": 500})));
}

#[tokio::test]
async fn jsonrpc_error_body_is_passed_through() {
    let body = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"bad params","data":{"field":"x"}}}"#;
    let server = TestServer::start(move |_| Reply::json(400, body)).await;
    let (t, mut rx) = connect(&server).await;
    t.send(&request(3, "tools/call", json!({"name": "x"})))
        .await
        .unwrap();
    let error = expect_failed(next_event(&mut rx, "Failed").await, 3);
    assert_eq!(
        error,
        RpcError::new(-32602, "bad params").with_data(json!({"field": "x"}))
    );
}

#[tokio::test]
async fn not_found_with_session_means_expired() {
    let server = TestServer::start(|seen| match seen.rpc_method().as_deref() {
        Some("initialize") => {
            Reply::json(200, result_json(1, json!({}))).header("mcp-session-id", "s")
        }
        _ => Reply::json(
            404,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}"#,
        ),
    })
    .await;
    let (t, mut rx) = connect(&server).await;
    t.send(&init()).await.unwrap();
    expect_response(next_event(&mut rx, "initialize response").await, 1);
    t.send(&request(2, "tools/list", json!({}))).await.unwrap();
    let error = expect_failed(next_event(&mut rx, "Failed").await, 2);
    assert_eq!(error.code, code::UPSTREAM_CLOSED);
    assert!(error.message.contains("expired"), "{error:?}");
    match next_event(&mut rx, "Closed").await {
        TransportEvent::Closed { reason } => assert_eq!(reason, "session expired"),
        other => panic!("expected Closed, got {other:?}"),
    }
    // The transport is finished: it takes no more messages.
    let err = t.send(&request(3, "ping", json!({}))).await.unwrap_err();
    assert!(matches!(err, TransportError::Closed(r) if r.contains("expired")));
    // close() does not DELETE a session the server no longer knows, nor report twice.
    t.close().await;
    assert!(server.seen_with(Method::DELETE).is_empty());
    drop(t);
    assert!(drain(&mut rx).await.is_empty());
}

#[tokio::test]
async fn bad_request_about_the_session_means_expired_but_other_400s_do_not() {
    // The TypeScript SDK answers an unknown session with 400 (server-everything after a
    // restart), not 404.
    let server = TestServer::start(|seen| match seen.rpc_method().as_deref() {
        Some("initialize") => {
            Reply::json(200, result_json(1, json!({}))).header("mcp-session-id", "s")
        }
        Some("tools/call") => Reply::json(
            400,
            r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32602,"message":"bad arguments"}}"#,
        ),
        _ => Reply::json(
            400,
            r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"}}"#,
        ),
    })
    .await;
    let (t, mut rx) = connect(&server).await;
    t.send(&init()).await.unwrap();
    expect_response(next_event(&mut rx, "initialize response").await, 1);
    t.send(&request(2, "tools/call", json!({"name": "x"})))
        .await
        .unwrap();
    let error = expect_failed(next_event(&mut rx, "Failed").await, 2);
    assert_eq!(error.message, "bad arguments");
    t.send(&request(3, "tools/list", json!({}))).await.unwrap();
    let error = expect_failed(next_event(&mut rx, "Failed").await, 3);
    assert_eq!(error.code, code::UPSTREAM_CLOSED);
    match next_event(&mut rx, "Closed").await {
        TransportEvent::Closed { reason } => assert_eq!(reason, "session expired"),
        other => panic!("expected Closed, got {other:?}"),
    }
}

#[tokio::test]
async fn not_found_without_session_is_a_plain_failure() {
    let server = TestServer::start(|_| Reply::status(404)).await;
    let (t, mut rx) = connect(&server).await;
    t.send(&request(1, "initialize", json!({}))).await.unwrap();
    let error = expect_failed(next_event(&mut rx, "Failed").await, 1);
    assert!(error.message.contains("HTTP 404"), "{error:?}");
    // Still usable.
    t.send(&request(2, "ping", json!({}))).await.unwrap();
    expect_failed(next_event(&mut rx, "Failed").await, 2);
}

#[tokio::test]
async fn sse_reply_tags_related_messages() {
    let progress = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}"#;
    let sampling = r#"{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{}}"#;
    let other = r#"{"jsonrpc":"2.0","id":99,"result":{}}"#;
    let response = result_json(5, json!({"content": []}));
    let server = TestServer::start(move |_| {
        Reply::sse(&[
            "id: p0\ndata: \n\n",
            &sse_message(Some("p1"), progress),
            // A message split over chunks with CRLF line ends.
            "event: message\r\nid: p2\r\ndata: ",
            sampling,
            "\r\n\r\n",
            ": keepalive\n\n",
            &sse_message(Some("p3"), other),
            &sse_message(Some("p4"), &response),
        ])
    })
    .await;
    let (t, mut rx) = connect(&server).await;
    t.send(&request(5, "tools/call", json!({"name": "slow"})))
        .await
        .unwrap();
    let related = Some(Id::Num(5));
    match next_event(&mut rx, "progress").await {
        TransportEvent::Message {
            msg: Message::Notification(n),
            related: r,
        } => {
            assert_eq!(n.method, "notifications/progress");
            assert_eq!(r, related);
        }
        other => panic!("{other:?}"),
    }
    match next_event(&mut rx, "sampling request").await {
        TransportEvent::Message {
            msg: Message::Request(req),
            related: r,
        } => {
            assert_eq!(req.id, Id::Str("s1".into()));
            assert_eq!(r, related);
        }
        other => panic!("{other:?}"),
    }
    match next_event(&mut rx, "other response").await {
        TransportEvent::Message {
            msg: Message::Response(resp),
            related: r,
        } => {
            assert_eq!(resp.id, Id::Num(99));
            assert_eq!(r, related);
        }
        other => panic!("{other:?}"),
    }
    expect_response(next_event(&mut rx, "our response").await, 5);
    t.close().await;
    only_closed_is_left(t, &mut rx).await;
}

#[tokio::test]
async fn cut_stream_is_resumed_and_the_response_arrives_once() {
    let progress = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}"#;
    let response = result_json(1, json!({"ok": true}));
    let server = TestServer::start(move |seen| match seen.method {
        Method::POST if seen.rpc_method().as_deref() == Some("initialize") => {
            // Primed, one message, then the connection breaks before the response.
            Reply::sse(&[
                "id: e1\nretry: 10\ndata: \n\n",
                &sse_message(Some("e2"), progress),
            ])
            .header("mcp-session-id", "abc")
            .end(End::Cut)
        }
        Method::GET if seen.header("last-event-id") == Some("e2") => {
            Reply::sse(&[&sse_message(Some("e3"), &response)])
        }
        _ => Reply::status(400),
    })
    .await;
    let (t, mut rx) = connect(&server).await;
    t.send(&init()).await.unwrap();
    match next_event(&mut rx, "progress").await {
        TransportEvent::Message {
            msg: Message::Notification(n),
            related,
        } => {
            assert_eq!(n.method, "notifications/progress");
            assert_eq!(related, Some(Id::Num(1)));
        }
        other => panic!("{other:?}"),
    }
    expect_response(next_event(&mut rx, "resumed response").await, 1);
    t.close().await;
    only_closed_is_left(t, &mut rx).await;
    let gets = server.seen_with(Method::GET);
    assert_eq!(gets.len(), 1);
    assert_eq!(gets[0].header("last-event-id"), Some("e2"));
    assert_eq!(gets[0].header("mcp-session-id"), Some("abc"));
    assert_eq!(gets[0].header("accept"), Some("text/event-stream"));
}

#[tokio::test]
async fn cleanly_ended_stream_is_resumed_too() {
    // The 2025-11-25 polling pattern: prime, hint a retry, close; the answer comes on resume.
    let response = result_json(4, json!({}));
    let server = TestServer::start(move |seen| match seen.method {
        Method::POST => Reply::sse(&["id: a\nretry: 5\ndata: \n\n"]),
        Method::GET if seen.header("last-event-id") == Some("a") => {
            Reply::sse(&["id: b\ndata: \n\n"])
        }
        Method::GET if seen.header("last-event-id") == Some("b") => {
            Reply::sse(&[&sse_message(Some("c"), &response)])
        }
        _ => Reply::status(400),
    })
    .await;
    let (t, mut rx) = connect(&server).await;
    t.send(&request(4, "tools/call", json!({}))).await.unwrap();
    expect_response(next_event(&mut rx, "response").await, 4);
    assert_eq!(server.seen_with(Method::GET).len(), 2);
}

#[tokio::test]
async fn stream_cut_without_event_id_fails_the_request() {
    let progress = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}"#;
    let server =
        TestServer::start(move |_| Reply::sse(&[&sse_message(None, progress)]).end(End::Cut)).await;
    let (t, mut rx) = connect(&server).await;
    t.send(&request(9, "tools/call", json!({}))).await.unwrap();
    assert!(matches!(
        next_event(&mut rx, "progress").await,
        TransportEvent::Message { .. }
    ));
    let error = expect_failed(next_event(&mut rx, "Failed").await, 9);
    assert_eq!(error.code, code::UPSTREAM_CLOSED);
    assert!(
        error.message.contains("closed the stream before answering"),
        "{error:?}"
    );
    assert!(server.seen_with(Method::GET).is_empty());
}

#[tokio::test]
async fn resuming_gives_up_after_bounded_attempts() {
    let server = TestServer::start(|seen| match seen.method {
        Method::POST => Reply::sse(&["id: x\nretry: 1\ndata: \n\n"]).end(End::Cut),
        _ => Reply::status(503).chunk("busy"),
    })
    .await;
    let (t, mut rx) = connect(&server).await;
    t.send(&request(2, "tools/call", json!({}))).await.unwrap();
    let error = expect_failed(next_event(&mut rx, "Failed").await, 2);
    assert_eq!(error.code, code::UPSTREAM_CLOSED);
    assert!(
        error.message.contains("resuming it failed 3 times"),
        "{error:?}"
    );
    assert!(error.message.contains("503"), "{error:?}");
    assert_eq!(server.seen_with(Method::GET).len(), 3);
}

#[tokio::test]
async fn oversized_json_body_fails_without_reading_it() {
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"result":{{"x":"{}"}}}}"#,
        "a".repeat(5000)
    );
    let server = TestServer::start(move |seen| {
        let mut r = Reply::status(200).header("content-type", "application/json");
        if seen.rpc_method().as_deref() == Some("tools/list") {
            // Announced by Content-Length.
            r = r
                .header("content-length", big.len().to_string())
                .chunk(big.clone());
        } else {
            // Chunked: found while reading.
            for part in big.as_bytes().chunks(512) {
                r = r.chunk(part.to_vec());
            }
        }
        r
    })
    .await;
    let (t, mut rx) = connect_with(server.url("/mcp"), Vec::new(), 1024).await;
    t.send(&request(1, "tools/list", json!({}))).await.unwrap();
    let error = expect_failed(next_event(&mut rx, "Failed").await, 1);
    assert!(
        error.message.contains("larger than max_message_bytes"),
        "{error:?}"
    );
    t.send(&request(2, "resources/list", json!({})))
        .await
        .unwrap();
    let error = expect_failed(next_event(&mut rx, "Failed").await, 2);
    assert!(
        error.message.contains("larger than max_message_bytes"),
        "{error:?}"
    );
}

#[tokio::test]
async fn oversized_sse_event_fails_the_request() {
    let big = result_json(1, json!({"x": "b".repeat(5000)}));
    let server = TestServer::start(move |_| {
        let (_keep_open, rx) = mpsc::unbounded_channel();
        // Never ends on its own: the transport must stop reading by itself.
        std::mem::forget(_keep_open);
        Reply::sse(&["id: 1\ndata: \n\n", &sse_message(Some("2"), &big)]).end(End::Feed(rx))
    })
    .await;
    let (t, mut rx) = connect_with(server.url("/mcp"), Vec::new(), 1024).await;
    t.send(&request(1, "tools/call", json!({}))).await.unwrap();
    let error = expect_failed(next_event(&mut rx, "Failed").await, 1);
    assert!(
        error.message.contains("larger than max_message_bytes"),
        "{error:?}"
    );
}

#[tokio::test]
async fn unreachable_server_fails_requests() {
    // A port nobody listens on: bind, note it, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (t, mut rx) = connect_with(format!("http://127.0.0.1:{port}/mcp"), Vec::new(), MAX).await;
    t.send(&request(1, "initialize", json!({}))).await.unwrap();
    let error = expect_failed(next_event(&mut rx, "Failed").await, 1);
    assert_eq!(error.code, code::UPSTREAM_UNAVAILABLE);
    assert!(
        error.message.contains("cannot reach server test at"),
        "{error:?}"
    );
    // A notification that cannot be delivered is only logged.
    t.send(&Message::Notification(Notification::new(
        "notifications/initialized",
        None,
    )))
    .await
    .unwrap();
}

#[tokio::test]
async fn accepted_request_without_answer_fails() {
    let server = TestServer::start(|_| Reply::status(202)).await;
    let (t, mut rx) = connect(&server).await;
    t.send(&request(1, "tools/list", json!({}))).await.unwrap();
    let error = expect_failed(next_event(&mut rx, "Failed").await, 1);
    assert!(error.message.contains("did not answer"), "{error:?}");
}

#[tokio::test]
async fn invalid_json_reply_fails() {
    let server = TestServer::start(|_| Reply::json(200, "{not json")).await;
    let (t, mut rx) = connect(&server).await;
    t.send(&request(1, "tools/list", json!({}))).await.unwrap();
    let error = expect_failed(next_event(&mut rx, "Failed").await, 1);
    assert_eq!(error.code, code::INTERNAL_ERROR);
    assert!(
        error.message.contains("not a JSON-RPC message"),
        "{error:?}"
    );
}

#[tokio::test]
async fn server_stream_delivers_and_reconnects_with_last_event_id() {
    let log1 = r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"one"}}"#;
    let log2 = r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"two"}}"#;
    let gets = Arc::new(AtomicUsize::new(0));
    let n = gets.clone();
    let server = TestServer::start(move |seen| match seen.method {
        Method::POST => Reply::json(200, result_json(1, json!({}))).header("mcp-session-id", "s9"),
        Method::GET => match n.fetch_add(1, Ordering::SeqCst) {
            // The first stream delivers one message and ends.
            0 => Reply::sse(&["retry: 10\n\n", &sse_message(Some("g1"), log1)]),
            // The second one stays open.
            _ => {
                let (tx, rx) = mpsc::unbounded_channel();
                tx.send(sse_message(Some("g2"), log2).into()).unwrap();
                std::mem::forget(tx);
                Reply::sse(&[]).end(End::Feed(rx))
            }
        },
        _ => Reply::status(405),
    })
    .await;
    let (t, mut rx) = connect(&server).await;
    t.send(&init()).await.unwrap();
    expect_response(next_event(&mut rx, "initialize response").await, 1);
    t.set_protocol_version("2025-06-18");
    for want in ["one", "two"] {
        match next_event(&mut rx, want).await {
            TransportEvent::Message {
                msg: Message::Notification(n),
                related: None,
            } => {
                assert_eq!(n.params.unwrap()["data"], want);
            }
            other => panic!("{other:?}"),
        }
    }
    let seen = server.seen_with(Method::GET);
    assert_eq!(seen[0].header("last-event-id"), None);
    assert_eq!(seen[1].header("last-event-id"), Some("g1"));
    assert_eq!(seen[1].header("mcp-protocol-version"), Some("2025-06-18"));
    // close() ends the open stream (the channel closes only once every task is gone) and
    // deletes the session; DELETE answered 405 is fine.
    t.close().await;
    only_closed_is_left(t, &mut rx).await;
    assert_eq!(server.seen_with(Method::DELETE).len(), 1);
    assert_eq!(gets.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn https_and_bad_config_are_refused_at_connect() {
    let (tx, _rx) = mpsc::channel(1);
    let ctx = context();
    let cases = [
        (
            "https://example.com/mcp",
            Vec::new(),
            "https upstreams are not supported yet",
        ),
        (
            "ftp://example.com/mcp",
            Vec::new(),
            "must start with http://",
        ),
        (
            "http://127.0.0.1:1/mcp",
            vec![("bad name".into(), "v".into())],
            "not a valid HTTP header name",
        ),
        (
            "http://127.0.0.1:1/mcp",
            vec![("X-Key".into(), "line\nbreak".into())],
            "not a valid HTTP header value",
        ),
    ];
    for (url, headers, want) in cases {
        let cfg = server_config(
            TransportConfig::StreamableHttp(gantry_config::HttpConfig {
                url: url.into(),
                headers,
            }),
            MAX,
        );
        match Transport::connect(&cfg, &ctx, tx.clone()).await {
            Err(TransportError::Connect(m)) => {
                assert!(m.contains(want), "{url}: {m}");
                assert!(!m.contains("line\nbreak"), "a header value leaked: {m}");
            }
            Err(e) => panic!("{url}: unexpected error {e}"),
            Ok(_) => panic!("{url}: connect succeeded"),
        }
    }
}

#[test]
fn helpers() {
    let uri = parse_http_url("http://user:pw@example.com:8080/mcp?token=secret").unwrap();
    assert_eq!(shown_url(&uri), "http://example.com:8080/mcp");
    assert_eq!(
        rpc_error_in(br#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request"}}"#),
        Some(RpcError::new(-32000, "Bad Request"))
    );
    assert_eq!(rpc_error_in(b"<html>"), None);
    assert_eq!(rpc_error_in(br#"{"error":"text"}"#), None);
    assert_eq!(excerpt(b"  a\n\n  b  "), "a b");
    let long = excerpt("x".repeat(1000).as_bytes());
    assert!(long.ends_with('…') && long.chars().count() == 301);
    use std::time::Duration;
    assert_eq!(backoff(None, 1), Duration::from_secs(1));
    assert_eq!(
        backoff(Some(Duration::from_millis(100)), 3),
        Duration::from_millis(400)
    );
    assert_eq!(backoff(None, 100), Duration::from_secs(30));
}

/// Drops the transport and checks that nothing but its final `Closed` came up unread.
async fn only_closed_is_left(t: super::super::Transport, rx: &mut mpsc::Receiver<TransportEvent>) {
    drop(t);
    let rest = drain(rx).await;
    assert!(
        matches!(rest.as_slice(), [TransportEvent::Closed { .. }]),
        "{rest:?}"
    );
}

/// The path every request of a peer takes: the caller runs the exchange, and a JSON reply
/// or a failure comes back from it, not through the events.
#[tokio::test]
async fn exchange_returns_the_json_reply_and_failures_directly() {
    let server = TestServer::start(|seen| match seen.rpc_method().as_deref() {
        Some("tools/list") => Reply::json(200, result_json(4, json!({"tools": []}))),
        _ => Reply::json(200, "{not json"),
    })
    .await;
    let (t, mut rx) = connect(&server).await;
    let Transport::Http(http) = &t else {
        panic!("not an HTTP transport")
    };
    let msg = request(4, "tools/list", json!({}));
    let outcome = http.exchange(&msg, Id::Num(4), Vec::new()).unwrap().await;
    assert_eq!(outcome, Some(Ok(json!({"tools": []}).into())));
    let msg = request(5, "tools/call", json!({"name": "x"}));
    let outcome = http.exchange(&msg, Id::Num(5), Vec::new()).unwrap().await;
    let error = outcome.expect("an outcome").expect_err("a failure");
    assert_eq!(error.code, code::INTERNAL_ERROR);
    assert!(
        error.message.contains("not a JSON-RPC message"),
        "{error:?}"
    );
    assert!(rx.try_recv().is_err(), "nothing went through the events");
}

#[tokio::test]
async fn a_modern_request_goes_with_its_routing_headers_and_the_extra_ones() {
    let server =
        TestServer::start(|_| Reply::json(200, result_json(6, json!({"content": []})))).await;
    let (t, _rx) = connect(&server).await;
    let Transport::Http(http) = &t else {
        panic!("not an HTTP transport")
    };
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28"});
    let msg = request(6, "tools/call", json!({"name": "echo", "_meta": meta}));
    let extra = vec![(
        http::HeaderName::from_static("mcp-param-region"),
        http::HeaderValue::from_static("eu"),
    )];
    let outcome = http.exchange(&msg, Id::Num(6), extra).unwrap().await;
    assert_eq!(outcome, Some(Ok(json!({"content": []}).into())));
    let seen = server.seen_with(Method::POST);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("mcp-method"), Some("tools/call"));
    assert_eq!(seen[0].header("mcp-name"), Some("echo"));
    assert_eq!(seen[0].header("mcp-param-region"), Some("eu"));
    assert_eq!(seen[0].header("mcp-protocol-version"), Some("2026-07-28"));
}
