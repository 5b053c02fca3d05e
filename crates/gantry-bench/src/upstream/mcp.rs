//! The JSON-RPC side of `bench-upstream`, shared by the HTTP and stdio fronts: era checks,
//! sessions, and the few methods a benchmark needs.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use gantry_core::protocol::{LEGACY_VERSIONS, MODERN_VERSION};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

/// Largest `payload` text served, so a typo cannot exhaust memory.
const MAX_PAYLOAD: u64 = 64 * 1024 * 1024;

/// The server's state: tool list (rendered once) and legacy sessions.
pub(crate) struct Server {
    /// `tools/list` result for the legacy era.
    tools_legacy: String,
    /// `tools/list` result for the 2026-07-28 era (adds `resultType`, `ttlMs`, `cacheScope`).
    tools_modern: String,
    sessions: Mutex<HashSet<String>>,
    next_session: AtomicU64,
    seed: u64,
    /// Messages received (every POST or stdio line).
    pub(crate) messages: AtomicU64,
    /// `tools/call` requests received.
    pub(crate) calls: AtomicU64,
}

/// The request headers the HTTP front passes on (all absent on stdio).
#[derive(Default)]
pub(crate) struct Headers<'a> {
    pub(crate) version: Option<&'a str>,
    pub(crate) method: Option<&'a str>,
    pub(crate) name: Option<&'a str>,
    pub(crate) session: Option<&'a str>,
}

/// What to answer one message with.
pub(crate) enum Outcome {
    /// A notification or a response: 202, no body (nothing at all on stdio).
    Accepted,
    /// A JSON body with this HTTP status, and a new session id for `initialize`.
    Json {
        status: u16,
        body: Vec<u8>,
        session: Option<String>,
    },
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

/// Every params field any supported method reads; unknown fields are ignored.
#[derive(Deserialize, Default)]
struct Params<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
    #[serde(rename = "_meta", default)]
    meta: Option<Meta>,
    #[serde(rename = "protocolVersion", default)]
    protocol_version: Option<String>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(rename = "io.modelcontextprotocol/protocolVersion", default)]
    version: Option<String>,
}

/// A JSON-RPC error with the HTTP status it travels with.
struct Failure {
    status: u16,
    code: i64,
    message: String,
    data: Option<Value>,
}

impl Failure {
    fn new(status: u16, code: i64, message: impl Into<String>) -> Failure {
        Failure {
            status,
            code,
            message: message.into(),
            data: None,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Era {
    Legacy,
    Modern,
}

// === impl Server ===

impl Server {
    pub(crate) fn new(extra_tools: usize) -> Server {
        let mut tools = vec![
            json!({
                "name": "echo",
                "description": "Returns its message argument as text.",
                "inputSchema": {
                    "type": "object",
                    "properties": {"message": {"type": "string"}},
                    "required": ["message"]
                }
            }),
            json!({
                "name": "payload",
                "description": "Returns a text of `size` bytes.",
                "inputSchema": {
                    "type": "object",
                    "properties": {"size": {"type": "integer", "minimum": 0}},
                    "required": ["size"]
                }
            }),
        ];
        tools.extend((0..extra_tools).map(|i| {
            json!({
                "name": format!("tool_{i}"),
                "description": format!("Dummy tool number {i}, for list benchmarks."),
                "inputSchema": {"type": "object", "properties": {"x": {"type": "string"}}}
            })
        }));
        let tools_legacy = json!({ "tools": tools }).to_string();
        let tools_modern = json!({
            "tools": tools,
            "resultType": "complete",
            "ttlMs": 0,
            "cacheScope": "private"
        })
        .to_string();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32);
        Server {
            tools_legacy,
            tools_modern,
            sessions: Mutex::new(HashSet::new()),
            next_session: AtomicU64::new(1),
            seed,
            messages: AtomicU64::new(0),
            calls: AtomicU64::new(0),
        }
    }

    /// One message from Streamable HTTP; the era is chosen per request.
    pub(crate) fn handle_http(&self, body: &[u8], headers: &Headers<'_>) -> Outcome {
        self.messages.fetch_add(1, Ordering::Relaxed);
        let env: Envelope<'_> = match serde_json::from_slice(body) {
            Ok(e) => e,
            Err(e) => return failure(None, Failure::new(400, -32700, format!("bad JSON: {e}"))),
        };
        let params = match parse_params(&env) {
            Ok(p) => p,
            Err(f) => return failure(env.id, f),
        };
        let meta_version = params.meta.as_ref().and_then(|m| m.version.as_deref());
        let era = match (headers.version, meta_version) {
            (Some(MODERN_VERSION), _) | (None, Some(_)) => Era::Modern,
            (Some(v), _) if LEGACY_VERSIONS.contains(&v) => Era::Legacy,
            (None, None) => Era::Legacy,
            (Some(v), _) => {
                let mut f =
                    Failure::new(400, -32022, format!("unsupported protocol version {v:?}"));
                let mut supported = vec![MODERN_VERSION];
                supported.extend_from_slice(LEGACY_VERSIONS);
                f.data = Some(json!({ "supported": supported, "requested": v }));
                return failure(env.id, f);
            }
        };
        let Some(method) = env.method.as_deref() else {
            // A response from the client (we never ask anything): nothing to answer.
            return Outcome::Accepted;
        };
        match era {
            Era::Modern => {
                if let Err(f) = check_modern_headers(method, &params, headers) {
                    return failure(env.id, f);
                }
            }
            Era::Legacy if method == "initialize" => {}
            Era::Legacy => {
                let known = match headers.session {
                    None => {
                        return failure(
                            env.id,
                            Failure::new(400, -32600, "missing Mcp-Session-Id header"),
                        );
                    }
                    Some(s) => self.lock_sessions().contains(s),
                };
                if !known {
                    return failure(env.id, Failure::new(404, -32600, "unknown session"));
                }
            }
        }
        self.dispatch(era, &env, method, &params)
    }

    /// One line from stdio: the legacy era, no sessions. `None`: nothing to write.
    pub(crate) fn handle_stdio(&self, line: &[u8]) -> Option<Vec<u8>> {
        self.messages.fetch_add(1, Ordering::Relaxed);
        let outcome = match serde_json::from_slice::<Envelope<'_>>(line) {
            Err(e) => failure(None, Failure::new(400, -32700, format!("bad JSON: {e}"))),
            Ok(env) => match (parse_params(&env), env.method.as_deref()) {
                (Err(f), _) => failure(env.id, f),
                (Ok(_), None) => Outcome::Accepted,
                (Ok(params), Some(method)) => self.dispatch(Era::Legacy, &env, method, &params),
            },
        };
        match outcome {
            Outcome::Accepted => None,
            Outcome::Json { body, .. } => Some(body),
        }
    }

    /// Ends a legacy session (`DELETE`). `false`: it was not known.
    pub(crate) fn end_session(&self, id: &str) -> bool {
        self.lock_sessions().remove(id)
    }

    fn dispatch(&self, era: Era, env: &Envelope<'_>, method: &str, params: &Params<'_>) -> Outcome {
        let Some(id) = env.id else {
            // Notifications (`notifications/initialized`, `cancelled`, …) need no answer.
            return Outcome::Accepted;
        };
        let mut session = None;
        let result = match (era, method) {
            (Era::Legacy, "initialize") => {
                let asked = params.protocol_version.as_deref().unwrap_or_default();
                let version = if LEGACY_VERSIONS.contains(&asked) {
                    asked
                } else {
                    LEGACY_VERSIONS[0]
                };
                let sid = self.new_session();
                self.lock_sessions().insert(sid.clone());
                session = Some(sid);
                Ok(json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "bench-upstream", "version": env!("CARGO_PKG_VERSION")}
                })
                .to_string())
            }
            (Era::Modern, "server/discover") => Ok(json!({
                "resultType": "complete",
                "supportedVersions": [MODERN_VERSION],
                "capabilities": {"tools": {}},
                "ttlMs": 0,
                "cacheScope": "private"
            })
            .to_string()),
            (Era::Legacy, "ping") => Ok("{}".to_owned()),
            (Era::Modern, "ping") => Ok(r#"{"resultType":"complete"}"#.to_owned()),
            (Era::Legacy, "tools/list") => Ok(self.tools_legacy.clone()),
            (Era::Modern, "tools/list") => Ok(self.tools_modern.clone()),
            (_, "tools/call") => {
                self.calls.fetch_add(1, Ordering::Relaxed);
                call_tool(era, params)
            }
            (Era::Legacy, _) => Err(Failure::new(
                200,
                -32601,
                format!("unknown method {method:?}"),
            )),
            (Era::Modern, _) => Err(Failure::new(
                404,
                -32601,
                format!("unknown method {method:?}"),
            )),
        };
        match result {
            Ok(result) => Outcome::Json {
                status: 200,
                body: frame(id, "result", &result),
                session,
            },
            Err(f) => failure(Some(id), f),
        }
    }

    fn new_session(&self) -> String {
        let n = self.next_session.fetch_add(1, Ordering::Relaxed);
        // Unique and unguessable enough for a benchmark; not a security boundary.
        format!(
            "{:016x}{:016x}",
            self.seed,
            n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        )
    }

    fn lock_sessions(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A poisoned set is still a set: the panic that poisoned it cannot have broken it.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn parse_params<'a>(env: &Envelope<'a>) -> Result<Params<'a>, Failure> {
    match env.params {
        None => Ok(Params::default()),
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|e| Failure::new(200, -32602, format!("bad params: {e}"))),
    }
}

/// 2026-07-28: the headers must repeat what the body says (-32020 otherwise).
fn check_modern_headers(
    method: &str,
    params: &Params<'_>,
    headers: &Headers<'_>,
) -> Result<(), Failure> {
    let mismatch = |what: &str| Err(Failure::new(400, -32020, what.to_owned()));
    let meta_version = params.meta.as_ref().and_then(|m| m.version.as_deref());
    if headers.version != Some(MODERN_VERSION) {
        return mismatch("MCP-Protocol-Version header must be 2026-07-28 for a stateless request");
    }
    if meta_version.is_some_and(|v| v != MODERN_VERSION) {
        return mismatch("MCP-Protocol-Version header differs from _meta protocolVersion");
    }
    if meta_version.is_none() && method != "server/discover" {
        return mismatch("_meta io.modelcontextprotocol/protocolVersion is missing");
    }
    if headers.method != Some(method) {
        return mismatch("Mcp-Method header is missing or differs from the body's method");
    }
    if method == "tools/call" && headers.name != params.name.as_deref() {
        return mismatch("Mcp-Name header is missing or differs from params.name");
    }
    Ok(())
}

fn call_tool(era: Era, params: &Params<'_>) -> Result<String, Failure> {
    let arg = |k: &str| params.arguments.as_ref().and_then(|a| a.get(k));
    let text: Cow<'_, str> = match params.name.as_deref() {
        Some("echo") => match arg("message") {
            Some(Value::String(s)) => Cow::Borrowed(s.as_str()),
            _ => return Err(Failure::new(200, -32602, "echo needs a string `message`")),
        },
        Some("payload") => match arg("size").and_then(Value::as_u64) {
            Some(n) if n <= MAX_PAYLOAD => Cow::Owned("x".repeat(n as usize)),
            _ => {
                return Err(Failure::new(
                    200,
                    -32602,
                    format!("payload needs an integer `size` in 0..={MAX_PAYLOAD}"),
                ));
            }
        },
        Some(n) if n.strip_prefix("tool_").is_some() => Cow::Borrowed("ok"),
        other => {
            return Err(Failure::new(
                200,
                -32602,
                format!("unknown tool {:?}", other.unwrap_or_default()),
            ));
        }
    };
    let mut result = json!({
        "content": [{"type": "text", "text": text}],
        "isError": false
    });
    if era == Era::Modern
        && let Some(obj) = result.as_object_mut()
    {
        obj.insert("resultType".into(), "complete".into());
    }
    Ok(result.to_string())
}

/// `{"jsonrpc":"2.0","id":<id>,"<key>":<value>}` without re-serialising the parts.
fn frame(id: &RawValue, key: &str, value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + id.get().len() + value.len());
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.get().as_bytes());
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(value.as_bytes());
    out.push(b'}');
    out
}

fn failure(id: Option<&RawValue>, f: Failure) -> Outcome {
    let mut error = json!({ "code": f.code, "message": f.message });
    if let (Some(data), Some(obj)) = (f.data, error.as_object_mut()) {
        obj.insert("data".into(), data);
    }
    let body = match id {
        Some(id) => frame(id, "error", &error.to_string()),
        None => json!({ "jsonrpc": "2.0", "id": null, "error": error })
            .to_string()
            .into_bytes(),
    };
    Outcome::Json {
        status: f.status,
        body,
        session: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_of(o: Outcome) -> (u16, Value, Option<String>) {
        match o {
            Outcome::Accepted => (202, Value::Null, None),
            Outcome::Json {
                status,
                body,
                session,
            } => (status, serde_json::from_slice(&body).unwrap(), session),
        }
    }

    #[test]
    fn legacy_session_then_echo() {
        let s = Server::new(3);
        let (st, v, sid) = json_of(s.handle_http(
            br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
            &Headers::default(),
        ));
        assert_eq!(st, 200);
        assert_eq!(v["result"]["protocolVersion"], "2025-06-18");
        let sid = sid.unwrap();
        let h = Headers {
            version: Some("2025-06-18"),
            session: Some(&sid),
            ..Headers::default()
        };
        let (st, _, _) = json_of(s.handle_http(
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            &h,
        ));
        assert_eq!(st, 202);
        let (_, v, _) = json_of(s.handle_http(
            br#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}"#,
            &h,
        ));
        assert_eq!(v["id"], "a");
        assert_eq!(v["result"]["content"][0]["text"], "hi");
        assert!(v["result"].get("resultType").is_none());
        let (_, v, _) =
            json_of(s.handle_http(br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, &h));
        assert_eq!(v["result"]["tools"].as_array().unwrap().len(), 5);
        let (st, _, _) = json_of(s.handle_http(
            br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#,
            &Headers::default(),
        ));
        assert_eq!(st, 400, "no session");
        let (st, _, _) = json_of(s.handle_http(
            br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#,
            &Headers {
                session: Some("nope"),
                ..Headers::default()
            },
        ));
        assert_eq!(st, 404, "unknown session");
    }

    #[test]
    fn modern_stateless_call_and_header_checks() {
        let s = Server::new(0);
        let body = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"payload","arguments":{"size":5},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"0"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#;
        let good = Headers {
            version: Some(MODERN_VERSION),
            method: Some("tools/call"),
            name: Some("payload"),
            session: None,
        };
        let (st, v, _) = json_of(s.handle_http(body, &good));
        assert_eq!(st, 200);
        assert_eq!(v["result"]["content"][0]["text"], "xxxxx");
        assert_eq!(v["result"]["resultType"], "complete");
        let (st, v, _) = json_of(s.handle_http(body, &Headers { name: None, ..good }));
        assert_eq!((st, v["error"]["code"].as_i64()), (400, Some(-32020)));
        let (st, v, _) = json_of(s.handle_http(
            br#"{"jsonrpc":"2.0","id":1,"method":"server/discover"}"#,
            &Headers {
                version: Some(MODERN_VERSION),
                method: Some("server/discover"),
                ..Headers::default()
            },
        ));
        assert_eq!(st, 200);
        assert_eq!(v["result"]["supportedVersions"][0], MODERN_VERSION);
        let (st, v, _) = json_of(s.handle_http(
            br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            &Headers {
                version: Some("2099-01-01"),
                ..Headers::default()
            },
        ));
        assert_eq!((st, v["error"]["code"].as_i64()), (400, Some(-32022)));
    }

    #[test]
    fn stdio_is_legacy_without_sessions() {
        let s = Server::new(0);
        assert!(
            s.handle_stdio(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
                .is_none()
        );
        let out = s
            .handle_stdio(br#"{"jsonrpc":"2.0","id":1,"method":"server/discover"}"#)
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"]["code"], -32601);
    }
}
