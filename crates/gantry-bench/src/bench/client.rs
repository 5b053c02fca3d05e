//! The MCP client side of the load generator: one HTTP/1.1 keep-alive connection per worker
//! (hyper's connection API, no pool, so one worker is exactly one connection), the two eras'
//! request shapes, and strict checks of every answer.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;
use gantry_core::protocol::{
    LATEST_LEGACY_VERSION as LEGACY_VERSION, MODERN_VERSION, is_legacy_version,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

const SESSION: HeaderName = HeaderName::from_static("mcp-session-id");
const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");
const ACCEPT_BOTH: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Which protocol era a client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Era {
    /// Session-based (`initialize`, `Mcp-Session-Id`).
    Legacy,
    /// 2026-07-28 stateless (per-request `_meta`, `Mcp-Method`/`Mcp-Name`).
    Stateless,
}

impl fmt::Display for Era {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Era::Legacy => "legacy",
            Era::Stateless => "stateless",
        })
    }
}

/// Why a call did not give the expected answer. Each kind is counted separately.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Connecting, sending or reading failed (the connection is unusable afterwards).
    Transport(String),
    /// A non-2xx HTTP status.
    Status(u16, String),
    /// A JSON-RPC error response.
    Rpc(i64, String),
    /// An answer that is not the one expected (wrong id, wrong text, duplicated, bad JSON).
    Mismatch(String),
    /// The request was sent but no answer came: the connection closed after sending, or
    /// an SSE stream ended without the response.
    Lost(String),
    /// A tool result with `isError: true` (its text).
    ToolError(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Transport(m) => write!(f, "transport: {m}"),
            Failure::Status(s, body) => write!(f, "HTTP {s}: {body}"),
            Failure::Rpc(code, m) => write!(f, "JSON-RPC error {code}: {m}"),
            Failure::Mismatch(m) => write!(f, "mismatch: {m}"),
            Failure::Lost(m) => write!(f, "lost: {m}"),
            Failure::ToolError(m) => write!(f, "tool error: {m}"),
        }
    }
}

/// One HTTP/1.1 keep-alive connection.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

impl Conn {
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Conn, Failure> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| Failure::Transport(format!("connect {addr}: {e}")))?;
        stream
            .set_nodelay(true)
            .map_err(|e| Failure::Transport(format!("TCP_NODELAY: {e}")))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Failure::Transport(format!("handshake: {e}")))?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes; errors show up on send.
            let _ = conn.await;
        });
        let host = HeaderValue::from_str(&addr.to_string())
            .map_err(|e| Failure::Transport(format!("host header: {e}")))?;
        Ok(Conn { sender, host })
    }

    /// Sends one request and reads the whole answer.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        uri: &Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<(StatusCode, HeaderMap, Bytes), Failure> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = uri.clone();
        *req.headers_mut() = headers;
        req.headers_mut().insert(header::HOST, self.host.clone());
        self.sender
            .ready()
            .await
            .map_err(|e| Failure::Transport(format!("connection closed: {e}")))?;
        // A request that hyper never sent (the connection was already closed) is a transport
        // failure; one that was sent and got no (complete) answer is lost.
        let resp = self.sender.send_request(req).await.map_err(|e| {
            if e.is_canceled() {
                Failure::Transport(format!("request not sent: {e}"))
            } else {
                Failure::Lost(format!("connection failed after sending: {e}"))
            }
        })?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| Failure::Lost(format!("reading the body: {e}")))?
            .to_bytes();
        Ok((parts.status, parts.headers, body))
    }

    /// `GET path` and its status and body (for `/healthz` and `/stats`).
    pub(crate) async fn get(&mut self, path: &str) -> Result<(StatusCode, Bytes), Failure> {
        let uri = parse_path(path)?;
        let (status, _, body) = self
            .send(Method::GET, &uri, HeaderMap::new(), Bytes::new())
            .await?;
        Ok((status, body))
    }
}

/// The origin-form request target `path`.
fn parse_path(path: &str) -> Result<Uri, Failure> {
    path.parse()
        .map_err(|e| Failure::Transport(format!("bad path {path:?}: {e}")))
}

/// The `_meta` member every stateless request carries (the same on every call).
fn stateless_meta() -> &'static str {
    static META: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            r#""_meta":{{"io.modelcontextprotocol/protocolVersion":"{MODERN_VERSION}","io.modelcontextprotocol/clientInfo":{{"name":"gantry-bench","version":"{}"}},"io.modelcontextprotocol/clientCapabilities":{{}}}}"#,
            env!("CARGO_PKG_VERSION")
        )
    });
    &META
}

/// An MCP client on one connection: a legacy session, or stateless requests.
pub(crate) struct McpClient {
    conn: Conn,
    /// The endpoint's path, parsed once.
    uri: Uri,
    era: Era,
    session: Option<HeaderValue>,
    next_id: u64,
}

#[derive(Deserialize)]
struct RpcReply<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<RpcErrorBody>,
}

#[derive(Deserialize)]
struct RpcErrorBody {
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct CallResult {
    #[serde(default)]
    content: Vec<TextContent>,
    #[serde(rename = "isError", default)]
    is_error: bool,
    #[serde(rename = "resultType", default)]
    result_type: Option<String>,
}

#[derive(Deserialize)]
struct TextContent {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct ListResult {
    tools: Vec<IgnoredAny>,
    #[serde(rename = "nextCursor", default)]
    next_cursor: Option<String>,
    #[serde(rename = "resultType", default)]
    result_type: Option<String>,
}

#[derive(Deserialize)]
struct InitResult {
    #[serde(rename = "protocolVersion")]
    protocol_version: String,
}

impl McpClient {
    /// Connects; a legacy client also opens its session (`initialize` + `initialized`).
    pub(crate) async fn open(addr: SocketAddr, path: &str, era: Era) -> Result<Self, Failure> {
        let conn = Conn::connect(addr).await?;
        let mut c = McpClient {
            conn,
            uri: parse_path(path)?,
            era,
            session: None,
            next_id: 1,
        };
        if era == Era::Legacy {
            c.initialize().await?;
        }
        Ok(c)
    }

    /// A connection without a session (to `DELETE` sessions opened elsewhere).
    pub(crate) async fn bare(addr: SocketAddr, path: &str) -> Result<Self, Failure> {
        Ok(McpClient {
            conn: Conn::connect(addr).await?,
            uri: parse_path(path)?,
            era: Era::Legacy,
            session: None,
            next_id: 1,
        })
    }

    /// The legacy session id, if any.
    pub(crate) fn session(&self) -> Option<&HeaderValue> {
        self.session.as_ref()
    }

    /// Opens one more legacy session on this connection (the old one is forgotten, not
    /// closed): the idle-session memory measurement.
    pub(crate) async fn initialize(&mut self) -> Result<(), Failure> {
        self.session = None;
        let id = self.id();
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"initialize","params":{{"protocolVersion":"{LEGACY_VERSION}","capabilities":{{}},"clientInfo":{{"name":"gantry-bench","version":"{}"}}}}}}"#,
            env!("CARGO_PKG_VERSION")
        );
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, JSON);
        headers.insert(header::ACCEPT, ACCEPT_BOTH);
        let (status, resp_headers, body) = self
            .conn
            .send(Method::POST, &self.uri, headers, body.into())
            .await?;
        let result: InitResult = parse_result(status, &resp_headers, &body, id)?;
        if !is_legacy_version(&result.protocol_version) {
            return Err(Failure::Mismatch(format!(
                "initialize answered protocolVersion {:?}",
                result.protocol_version
            )));
        }
        let Some(sid) = resp_headers.get(SESSION).cloned() else {
            return Err(Failure::Mismatch(
                "initialize answered without Mcp-Session-Id".into(),
            ));
        };
        self.session = Some(sid);
        let (status, _, body) = self
            .conn
            .send(
                Method::POST,
                &self.uri,
                self.headers(None, None),
                Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            )
            .await?;
        if !status.is_success() {
            return Err(Failure::Status(status.as_u16(), excerpt(&body)));
        }
        Ok(())
    }

    /// Ends the legacy session with `DELETE`.
    pub(crate) async fn delete_session(&mut self) -> Result<(), Failure> {
        let Some(sid) = self.session.take() else {
            return Ok(());
        };
        self.delete(sid).await
    }

    /// `DELETE` of any session id, on this connection.
    pub(crate) async fn delete(&mut self, sid: HeaderValue) -> Result<(), Failure> {
        let mut headers = HeaderMap::new();
        headers.insert(SESSION, sid);
        headers.insert(PROTOCOL_VERSION, HeaderValue::from_static(LEGACY_VERSION));
        let (status, _, body) = self
            .conn
            .send(Method::DELETE, &self.uri, headers, Bytes::new())
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(Failure::Status(status.as_u16(), excerpt(&body)))
        }
    }

    /// `tools/call echo {message}` and checks that the text comes back unchanged.
    pub(crate) async fn echo(&mut self, message: &str) -> Result<(), Failure> {
        self.echo_tool("echo", message).await
    }

    /// `tools/call <tool> {message}` of an echo tool (under whatever name the endpoint
    /// gives it) and checks that the text comes back unchanged and only once.
    pub(crate) async fn echo_tool(&mut self, tool: &str, message: &str) -> Result<(), Failure> {
        let args = format!(r#"{{"message":"{message}"}}"#);
        let r: CallResult = self.request("tools/call", Some(tool), &args).await?;
        let text = r.content.first().and_then(|c| c.text.as_deref());
        if r.is_error {
            return Err(Failure::ToolError(text.unwrap_or("").to_owned()));
        }
        match text {
            Some(t) if t == message && r.content.len() == 1 => Ok(()),
            other => Err(Failure::Mismatch(format!(
                "{tool} of {message:?} answered {other:?} ({} content items)",
                r.content.len()
            ))),
        }?;
        self.check_result_type(r.result_type.as_deref())
    }

    /// `tools/list`, every page; the number of tools.
    pub(crate) async fn list_tools(&mut self) -> Result<usize, Failure> {
        let mut total = 0;
        let mut cursor: Option<String> = None;
        loop {
            let params = match &cursor {
                Some(c) => serde_json::json!({ "cursor": c }).to_string(),
                None => String::new(),
            };
            let r: ListResult = self.request("tools/list", None, &params).await?;
            self.check_result_type(r.result_type.as_deref())?;
            total += r.tools.len();
            match r.next_cursor {
                Some(c) if Some(&c) != cursor.as_ref() => cursor = Some(c),
                Some(c) => return Err(Failure::Mismatch(format!("cursor {c:?} repeats"))),
                None => return Ok(total),
            }
        }
    }

    /// `server/discover` (stateless only): checks that 2026-07-28 is supported.
    pub(crate) async fn discover(&mut self) -> Result<(), Failure> {
        #[derive(Deserialize)]
        struct Discover {
            #[serde(rename = "supportedVersions", default)]
            supported: Vec<String>,
        }
        let r: Discover = self.request("server/discover", None, "").await?;
        if r.supported.iter().any(|v| v == MODERN_VERSION) {
            Ok(())
        } else {
            Err(Failure::Mismatch(format!(
                "server/discover lists {:?}",
                r.supported
            )))
        }
    }

    fn check_result_type(&self, rt: Option<&str>) -> Result<(), Failure> {
        match (self.era, rt) {
            (Era::Stateless, Some("complete")) | (Era::Legacy, _) => Ok(()),
            (Era::Stateless, other) => Err(Failure::Mismatch(format!(
                "stateless result has resultType {other:?}, expected \"complete\""
            ))),
        }
    }

    /// One request. With `tool`, `fields` is the tool's arguments object; without, it is
    /// the params object (or empty). Stateless requests get the `_meta` of the era.
    async fn request<T: for<'de> Deserialize<'de>>(
        &mut self,
        method: &'static str,
        tool: Option<&str>,
        fields: &str,
    ) -> Result<T, Failure> {
        let id = self.id();
        let meta = (self.era == Era::Stateless).then(stateless_meta);
        let mut body = String::with_capacity(128 + fields.len() + meta.map_or(0, str::len));
        body.push_str(r#"{"jsonrpc":"2.0","id":"#);
        body.push_str(&id.to_string());
        body.push_str(r#","method":""#);
        body.push_str(method);
        body.push_str(r#"","params":{"#);
        // Params members, comma-separated: the tool's name and arguments, or the params
        // object's own members; then the era's `_meta`.
        let own = match tool {
            Some(name) => {
                body.push_str(r#""name":""#);
                body.push_str(name);
                body.push_str(r#"","arguments":"#);
                body.push_str(fields);
                true
            }
            None => match fields
                .trim()
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
            {
                Some(inner) if !inner.trim().is_empty() => {
                    body.push_str(inner);
                    true
                }
                _ => false,
            },
        };
        if let Some(meta) = meta {
            if own {
                body.push(',');
            }
            body.push_str(meta);
        }
        body.push_str("}}");
        let headers = self.headers(Some(method), tool);
        let (status, resp_headers, resp) = self
            .conn
            .send(Method::POST, &self.uri, headers, body.into())
            .await?;
        parse_result(status, &resp_headers, &resp, id)
    }

    fn headers(&self, method: Option<&'static str>, tool: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::with_capacity(6);
        h.insert(header::CONTENT_TYPE, JSON);
        h.insert(header::ACCEPT, ACCEPT_BOTH);
        match self.era {
            Era::Legacy => {
                h.insert(PROTOCOL_VERSION, HeaderValue::from_static(LEGACY_VERSION));
                if let Some(s) = &self.session {
                    h.insert(SESSION, s.clone());
                }
            }
            Era::Stateless => {
                h.insert(PROTOCOL_VERSION, HeaderValue::from_static(MODERN_VERSION));
                if let Some(m) = method {
                    h.insert(MCP_METHOD, HeaderValue::from_static(m));
                }
                if let Some(v) = tool.and_then(|t| HeaderValue::from_str(t).ok()) {
                    h.insert(MCP_NAME, v);
                }
            }
        }
        h
    }

    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}

/// The `result` of the response to request `id`, from a JSON or SSE body.
fn parse_result<T: for<'de> Deserialize<'de>>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    id: u64,
) -> Result<T, Failure> {
    let is_sse = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let sse_msg;
    let msg: &[u8] = if is_sse {
        sse_msg = match sse_response(body, id) {
            SseAnswer::One(m) => m,
            SseAnswer::None => {
                return Err(Failure::Lost(format!(
                    "SSE stream ended without the response to id {id}"
                )));
            }
            SseAnswer::Duplicated(n) => {
                return Err(Failure::Mismatch(format!(
                    "SSE stream carried {n} responses to id {id}"
                )));
            }
        };
        sse_msg.as_bytes()
    } else {
        body
    };
    let reply: RpcReply<'_> = match serde_json::from_slice(msg) {
        Ok(r) => r,
        Err(_) if !status.is_success() => {
            return Err(Failure::Status(status.as_u16(), excerpt(body)));
        }
        Err(e) => {
            return Err(Failure::Mismatch(format!(
                "bad JSON ({e}): {}",
                excerpt(msg)
            )));
        }
    };
    if let Some(e) = reply.error {
        return Err(Failure::Rpc(e.code, e.message));
    }
    if !status.is_success() {
        return Err(Failure::Status(status.as_u16(), excerpt(body)));
    }
    match reply.id.map(RawValue::get) {
        Some(got) if got.parse::<u64>().ok() == Some(id) => {}
        other => {
            return Err(Failure::Mismatch(format!(
                "answer to id {id} carries id {other:?}"
            )));
        }
    }
    let Some(result) = reply.result else {
        return Err(Failure::Mismatch(format!(
            "answer to id {id} has no result"
        )));
    };
    serde_json::from_str(result.get())
        .map_err(|e| Failure::Mismatch(format!("unexpected result ({e}): {}", excerpt(msg))))
}

/// What an SSE body holds for one request.
#[derive(Debug, PartialEq)]
enum SseAnswer {
    /// The data of the one event that holds the response.
    One(String),
    /// No response to the request.
    None,
    /// That many responses to the same request.
    Duplicated(usize),
}

/// The data of the SSE event that holds the response to `id`.
fn sse_response(body: &[u8], id: u64) -> SseAnswer {
    let Ok(text) = std::str::from_utf8(body) else {
        return SseAnswer::None;
    };
    let mut data = String::new();
    let mut found = None;
    let mut count = 0;
    for line in text.lines().chain(std::iter::once("")) {
        if let Some(d) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        } else if line.is_empty() && !data.is_empty() {
            let v: Option<serde_json::Value> = serde_json::from_str(&data).ok();
            if v.as_ref()
                .and_then(|v| v.get("id"))
                .and_then(|i| i.as_u64())
                == Some(id)
                && v.as_ref().and_then(|v| v.get("method")).is_none()
            {
                count += 1;
                found = Some(std::mem::take(&mut data));
            }
            data.clear();
        }
    }
    match found {
        Some(_) if count > 1 => SseAnswer::Duplicated(count),
        Some(m) => SseAnswer::One(m),
        None => SseAnswer::None,
    }
}

/// The start of a body, for error messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_response_in_an_sse_body() {
        let body = b"id: 1\ndata: \n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{}}\n\n";
        assert_eq!(
            sse_response(body, 4),
            SseAnswer::One(r#"{"jsonrpc":"2.0","id":4,"result":{}}"#.into())
        );
        assert_eq!(sse_response(body, 5), SseAnswer::None);
        let twice = b"data: {\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{}}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{}}\n\n";
        assert_eq!(sse_response(twice, 4), SseAnswer::Duplicated(2));
    }

    #[test]
    fn an_error_body_is_an_rpc_failure_and_a_wrong_id_a_mismatch() {
        let h = HeaderMap::new();
        let e = parse_result::<IgnoredAny>(
            StatusCode::BAD_REQUEST,
            &h,
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32020,"message":"m"}}"#,
            1,
        );
        assert!(matches!(e, Err(Failure::Rpc(-32020, _))));
        let e = parse_result::<IgnoredAny>(
            StatusCode::OK,
            &h,
            br#"{"jsonrpc":"2.0","id":2,"result":{}}"#,
            1,
        );
        assert!(matches!(e, Err(Failure::Mismatch(_))));
        let e = parse_result::<IgnoredAny>(StatusCode::NOT_FOUND, &h, b"not found", 1);
        assert!(matches!(e, Err(Failure::Status(404, _))));
    }
}
