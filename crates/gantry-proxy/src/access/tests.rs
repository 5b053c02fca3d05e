//! The access matrix over a real listener: every policy × caller × operation, against a
//! scripted Streamable HTTP upstream that records what it receives.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use gantry_auth::{AuthError, AuthFuture, Planes};
use http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::*;
use crate::Gateway;
use crate::upstream::transport::http::testkit::{Reply, Seen, TestServer};

/// Tokens the test authenticator knows.
struct Tokens;

fn identity(subject: &str, teams: &[&str], planes: Planes, jwt: Option<&[&str]>) -> Identity {
    Identity {
        subject: subject.into(),
        teams: teams.iter().map(|t| (*t).to_owned()).collect(),
        scopes: jwt
            .unwrap_or_default()
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        planes,
        source: match jwt {
            Some(_) => Source::Jwt {
                issuer: "https://login.example".into(),
            },
            None => Source::ApiKey {
                id: format!("key-{subject}"),
            },
        },
    }
}

impl Authenticator for Tokens {
    fn authenticate<'a>(&'a self, token: &'a str, ctx: AuthContext<'a>) -> AuthFuture<'a> {
        AuthFuture::pending(async move {
            assert!(
                ctx.resource.starts_with("https://gw.example/mcp/"),
                "{}",
                ctx.resource
            );
            Some(Ok(Arc::new(match token {
                "tok-alice" => identity("alice", &["analysts"], Planes::DATA, None),
                "tok-olga" => identity("olga", &["ops"], Planes::DATA, None),
                "tok-mallory" => identity("mallory", &["sales"], Planes::DATA, None),
                "tok-root" => identity("root", &["analysts"], Planes::CONTROL, None),
                "tok-jwt-bare" => identity("jane", &["analysts"], Planes::DATA, Some(&[])),
                "tok-jwt-scoped" => {
                    identity("jane", &["analysts"], Planes::DATA, Some(&["mcp:use"]))
                }
                "tok-expired" => return Some(Err(AuthError::invalid_token("the key is revoked"))),
                _ => return None,
            })))
        })
    }
}

/// A legacy MCP server over Streamable HTTP: three tools, two prompts, two resources.
fn upstream(seen: &Seen) -> Reply {
    let Ok(msg) = serde_json::from_slice::<Value>(&seen.body) else {
        return Reply::status(405);
    };
    let Some(id) = msg.get("id").cloned() else {
        return Reply::status(202);
    };
    let method = msg["method"].as_str().unwrap_or_default();
    let params = &msg["params"];
    let tool = |n: &str| json!({"name": n, "description": format!("The {n} tool: wipes, reports or echoes."), "inputSchema": {"type": "object"}});
    let result = match method {
        "initialize" => json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {"tools": {}, "prompts": {}, "resources": {"subscribe": true}},
            "serverInfo": {"name": "scripted", "version": "1"},
        }),
        "tools/list" => json!({"tools": [tool("echo"), tool("report"), tool("secret_wipe")]}),
        "prompts/list" => json!({"prompts": [{"name": "greet"}, {"name": "internal"}]}),
        "resources/list" => json!({"resources": [
            {"uri": "file:///public/a", "name": "a"},
            {"uri": "file:///private/b", "name": "b"},
        ]}),
        "resources/templates/list" => json!({"resourceTemplates": []}),
        "tools/call" => {
            json!({"content": [{"type": "text", "text": format!("called {}", params["name"])}]})
        }
        "prompts/get" => {
            json!({"messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}]})
        }
        "resources/read" => json!({"contents": [{"uri": params["uri"], "text": "data"}]}),
        "resources/subscribe" => json!({}),
        _ => {
            let e =
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "nope"}});
            return Reply::json(200, e.to_string());
        }
    };
    Reply::json(
        200,
        json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
    )
}

const ENTITLEMENTS: &str = r#"
analysts = { tools = ["up__echo", "up__report"], prompts = ["up__greet"], resources = ["file:///public/*"] }
ops = { tools = ["*"], prompts = ["*"], resources = ["*"] }
"*" = ["up__echo"]
"#;

struct Fixture {
    gw: Arc<Gateway>,
    base: String,
    upstream: TestServer,
    http: Arc<crate::upstream::transport::http1::Host>,
}

async fn fixture() -> Fixture {
    let upstream = TestServer::start(upstream).await;
    let mut text = format!(
        "session_idle_timeout = 60\npublic_url = \"https://gw.example\"\n\
         authorization_servers = [\"https://login.example\"]\n\
         [servers.up]\nurl = \"{}\"\nprotocol = \"legacy\"\n",
        upstream.url("/mcp")
    );
    for (name, access) in [
        ("public", ""),
        ("authenticated", "access = \"authenticated\"\n"),
        (
            "restricted",
            "access = \"restricted\"\nteams = [\"analysts\", \"ops\"]\n",
        ),
    ] {
        for (suffix, mode) in [("", "direct"), ("_p", "progressive")] {
            text += &format!(
                "[endpoints.{name}{suffix}]\nmode = \"{mode}\"\n{access}\
                 [endpoints.{name}{suffix}.entitlements]\n{ENTITLEMENTS}\n"
            );
        }
    }
    text += "[endpoints.everything]\naccess = \"authenticated\"\n\
             [endpoints.scoped]\naccess = \"authenticated\"\nscopes = [\"mcp:use\"]\n";
    let config = gantry_config::from_toml_str(Path::new("t.toml"), &text, &|_| None).unwrap();
    let gw = Gateway::start_with(
        config,
        crate::Options {
            authenticators: vec![Arc::new(Tokens)],
            ..crate::Options::default()
        },
    );
    gw.settle().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(crate::client::http::serve(
        gw.clone(),
        listener,
        std::future::pending(),
    ));
    Fixture {
        http: crate::upstream::transport::http1::Host::new(&base.parse().unwrap()),
        gw,
        base,
        upstream,
    }
}

/// A response, read whole.
#[derive(Debug)]
struct Got {
    status: u16,
    headers: http::HeaderMap,
    body: Value,
}

impl Got {
    fn www(&self) -> &str {
        self.headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn result(&self) -> &Value {
        assert_eq!(self.status, 200, "{}", self.body);
        assert!(self.body.get("error").is_none(), "{}", self.body);
        &self.body["result"]
    }

    /// The text of a successful tool result, with `name` (which it is about) as `X`: equal
    /// texts about two names say the same of both.
    fn text_naming(&self, name: &str) -> String {
        self.result()["content"][0]["text"]
            .as_str()
            .unwrap()
            .replace(name, "X")
    }

    fn error(&self) -> (i64, String) {
        let e = &self.body["error"];
        (
            e["code"].as_i64().unwrap(),
            e["message"].as_str().unwrap().to_owned(),
        )
    }
}

impl Fixture {
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Got {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let resp = self
            .http
            .request(req.body(Bytes::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.header_map();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Got {
            status,
            headers,
            body,
        }
    }

    /// A stateless (2026-07-28) request on `/mcp/<ep>` as `token`.
    async fn modern(&self, ep: &str, token: Option<&str>, method: &str, params: Value) -> Got {
        let mut params = params;
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        });
        let name = params
            .get("name")
            .or_else(|| params.get("uri"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", method),
        ];
        if let Some(n) = &name {
            headers.push(("mcp-name", n));
        }
        if let Some(b) = &bearer {
            headers.push(("authorization", b));
        }
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        self.send(Method::POST, &format!("/mcp/{ep}"), &headers, Some(body))
            .await
    }

    /// A legacy session's `initialize` as `token`: the session id, or the refusal.
    async fn initialize(&self, ep: &str, token: Option<&str>) -> Result<String, Got> {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![];
        if let Some(b) = &bearer {
            headers.push(("authorization", b.as_str()));
        }
        let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
        let got = self
            .send(Method::POST, &format!("/mcp/{ep}"), &headers, Some(body))
            .await;
        match got.headers.get("mcp-session-id") {
            Some(id) if got.status == 200 => Ok(id.to_str().unwrap().to_owned()),
            _ => Err(got),
        }
    }

    async fn legacy(
        &self,
        ep: &str,
        session: &str,
        token: Option<&str>,
        method: &str,
        params: Value,
    ) -> Got {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![
            ("mcp-session-id", session),
            ("mcp-protocol-version", "2025-11-25"),
        ];
        if let Some(b) = &bearer {
            headers.push(("authorization", b.as_str()));
        }
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        self.send(Method::POST, &format!("/mcp/{ep}"), &headers, Some(body))
            .await
    }
}

fn names(list: &Value, key: &str, field: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t[field].as_str().unwrap().to_owned())
        .collect()
}

/// What each caller is, and what it should see where it is admitted.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Nobody,
    WrongTeam,
    RightTeam,
    AdminOnly,
}

impl Who {
    fn token(self) -> Option<&'static str> {
        match self {
            Who::Nobody => None,
            Who::WrongTeam => Some("tok-mallory"),
            Who::RightTeam => Some("tok-alice"),
            Who::AdminOnly => Some("tok-root"),
        }
    }
}

/// The expected outcome of `who` on an endpoint with `policy`: the HTTP status of a refusal,
/// or the tools it is entitled to.
fn expected(policy: &str, who: Who) -> Result<&'static [&'static str], u16> {
    match (policy, who) {
        (_, Who::AdminOnly) => Err(403),
        ("public", Who::Nobody) => Ok(&["up__echo"]),
        (_, Who::Nobody) => Err(401),
        ("restricted", Who::WrongTeam) => Err(403),
        (_, Who::WrongTeam) => Ok(&["up__echo"]),
        (_, Who::RightTeam) => Ok(&["up__echo", "up__report"]),
    }
}

#[tokio::test]
async fn the_access_matrix() {
    let f = fixture().await;
    let unknown_tool = |ep: &str, name: &str| {
        format!("unknown tool {name:?} on endpoint {ep:?}: list the tools to see their names")
    };
    for policy in ["public", "authenticated", "restricted"] {
        for who in [Who::Nobody, Who::WrongTeam, Who::RightTeam, Who::AdminOnly] {
            let case = format!("{policy} × {who:?}");
            let token = who.token();
            let want = expected(policy, who);
            let progressive = format!("{policy}_p");

            // list
            let list = f.modern(policy, token, "tools/list", json!({})).await;
            let Ok(tools) = want else {
                let status = want.unwrap_err();
                assert_eq!(list.status, status, "{case}: {}", list.body);
                let www = list.www();
                assert!(
                    www.starts_with(&format!(
                        "Bearer resource_metadata=\"https://gw.example/.well-known/oauth-protected-resource/mcp/{policy}\""
                    )),
                    "{case}: {www}"
                );
                // Every operation is refused the same way, in both modes and eras.
                for (ep, method, params) in [
                    (policy, "tools/call", json!({"name": "up__echo"})),
                    (policy, "resources/read", json!({"uri": "file:///public/a"})),
                    (
                        progressive.as_str(),
                        "tools/call",
                        json!({"name": "search_tools", "arguments": {"query": "echo"}}),
                    ),
                ] {
                    let got = f.modern(ep, token, method, params).await;
                    assert_eq!(got.status, status, "{case} {ep} {method}");
                }
                let refused = f.initialize(policy, token).await.unwrap_err();
                assert_eq!(refused.status, status, "{case}: initialize");
                continue;
            };
            assert_eq!(names(list.result(), "tools", "name"), tools, "{case}");
            assert_eq!(list.result()["cacheScope"], "private", "{case}");

            // call: entitled, unentitled, unknown
            let ok = f
                .modern(policy, token, "tools/call", json!({"name": "up__echo"}))
                .await;
            assert_eq!(
                ok.result()["content"][0]["text"],
                "called \"echo\"",
                "{case}"
            );
            let hidden = f
                .modern(
                    policy,
                    token,
                    "tools/call",
                    json!({"name": "up__secret_wipe"}),
                )
                .await;
            let unknown = f
                .modern(policy, token, "tools/call", json!({"name": "up__nothing"}))
                .await;
            assert_eq!(hidden.status, unknown.status, "{case}");
            assert_eq!(
                hidden.error(),
                (-32602, unknown_tool(policy, "up__secret_wipe")),
                "{case}"
            );
            assert_eq!(
                unknown.error(),
                (-32602, unknown_tool(policy, "up__nothing")),
                "{case}"
            );

            // search, describe and call in progressive mode
            let search = f
                .modern(
                    &progressive,
                    token,
                    "tools/call",
                    json!({"name": "search_tools", "arguments": {"query": "wipes reports echoes tool"}}),
                )
                .await;
            let found: Vec<&str> = search.result()["structuredContent"]["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap())
                .collect();
            let mut found_sorted = found.clone();
            found_sorted.sort();
            assert_eq!(found_sorted, tools, "{case}: search");
            let describe = |id: &'static str| {
                f.modern(
                    &progressive,
                    token,
                    "tools/call",
                    json!({"name": "describe_tools", "arguments": {"ids": [id]}}),
                )
            };
            let (hidden, unknown) = (
                describe("up__secret_wipe").await,
                describe("up__nothing").await,
            );
            assert_eq!(
                hidden.text_naming("up__secret_wipe"),
                unknown.text_naming("up__nothing"),
                "{case}: describe of a hidden tool = of an unknown one"
            );
            let call = |id: &'static str| {
                f.modern(
                    &progressive,
                    token,
                    "tools/call",
                    json!({"name": "call_tool", "arguments": {"id": id, "arguments": {}}}),
                )
            };
            let (hidden, unknown) = (call("up__secret_wipe").await, call("up__nothing").await);
            assert_eq!(hidden.result()["isError"], true, "{case}");
            assert_eq!(
                hidden.text_naming("up__secret_wipe"),
                unknown.text_naming("up__nothing"),
                "{case}: call_tool of a hidden tool = of an unknown one"
            );
            let direct_hidden = f
                .modern(
                    &progressive,
                    token,
                    "tools/call",
                    json!({"name": "up__secret_wipe"}),
                )
                .await;
            assert_eq!(direct_hidden.error().0, -32602, "{case}");

            // resources and prompts
            let right = who == Who::RightTeam;
            let resources = f.modern(policy, token, "resources/list", json!({})).await;
            let want_resources: &[&str] = if right { &["file:///public/a"] } else { &[] };
            assert_eq!(
                names(resources.result(), "resources", "uri"),
                want_resources,
                "{case}"
            );
            let read = f
                .modern(
                    policy,
                    token,
                    "resources/read",
                    json!({"uri": "file:///public/a"}),
                )
                .await;
            if right {
                assert_eq!(read.result()["contents"][0]["text"], "data", "{case}");
            } else {
                assert_eq!(read.error().0, -32602, "{case}");
            }
            let private = f
                .modern(
                    policy,
                    token,
                    "resources/read",
                    json!({"uri": "file:///private/b"}),
                )
                .await;
            let missing = f
                .modern(
                    policy,
                    token,
                    "resources/read",
                    json!({"uri": "file:///private/none"}),
                )
                .await;
            assert_eq!(
                private.error().1.replace("file:///private/b", "X"),
                missing.error().1.replace("file:///private/none", "X"),
                "{case}: an unentitled resource reads as a missing one"
            );
            let prompts = f.modern(policy, token, "prompts/list", json!({})).await;
            let want_prompts: &[&str] = if right { &["up__greet"] } else { &[] };
            assert_eq!(
                names(prompts.result(), "prompts", "name"),
                want_prompts,
                "{case}"
            );
            let internal = f
                .modern(
                    policy,
                    token,
                    "prompts/get",
                    json!({"name": "up__internal"}),
                )
                .await;
            assert_eq!(internal.error().0, -32602, "{case}");

            // the same in a legacy session
            let session = f.initialize(policy, token).await.unwrap();
            let list = f
                .legacy(policy, &session, token, "tools/list", json!({}))
                .await;
            assert_eq!(names(list.result(), "tools", "name"), tools, "{case}");
            let sub = f
                .legacy(
                    policy,
                    &session,
                    token,
                    "resources/subscribe",
                    json!({"uri": "file:///private/b"}),
                )
                .await;
            assert_eq!(
                sub.error().0,
                -32002,
                "{case}: subscribe to a hidden resource"
            );
        }
    }
    // Nothing the clients sent as a credential ever reached the server.
    let seen = f.upstream.seen();
    assert!(!seen.is_empty());
    for s in &seen {
        assert!(s.header("authorization").is_none(), "{:?}", s.headers);
        let body = String::from_utf8_lossy(&s.body);
        assert!(!body.contains("tok-"), "{body}");
    }
    f.gw.shutdown().await;
}

#[tokio::test]
async fn another_team_sees_its_own_entitlements_and_no_table_means_everything() {
    let f = fixture().await;
    let ops = f
        .modern("restricted", Some("tok-olga"), "tools/list", json!({}))
        .await;
    assert_eq!(
        names(ops.result(), "tools", "name"),
        ["up__echo", "up__report", "up__secret_wipe"]
    );
    let all = f
        .modern("everything", Some("tok-mallory"), "tools/list", json!({}))
        .await;
    assert_eq!(
        names(all.result(), "tools", "name"),
        ["up__echo", "up__report", "up__secret_wipe"]
    );
    f.gw.shutdown().await;
}

#[tokio::test]
async fn refusals_say_why_on_the_wire_and_metadata_is_discoverable() {
    let f = fixture().await;
    // No credential: 401 pointing at the metadata, no error code (RFC 6750 §3.1).
    let got = f
        .modern("authenticated", None, "tools/list", json!({}))
        .await;
    assert_eq!(got.status, 401);
    assert_eq!(
        got.www(),
        "Bearer resource_metadata=\"https://gw.example/.well-known/oauth-protected-resource/mcp/authenticated\""
    );
    // Its body unread, the connection is not offered for another request.
    assert_eq!(got.headers.get("connection").unwrap(), "close");
    // The document it points at.
    let meta = f
        .send(
            Method::GET,
            "/.well-known/oauth-protected-resource/mcp/scoped",
            &[],
            None,
        )
        .await;
    assert_eq!(meta.status, 200);
    assert_eq!(
        meta.body,
        json!({
            "resource": "https://gw.example/mcp/scoped",
            "resource_name": "Gantry endpoint scoped",
            "authorization_servers": ["https://login.example"],
            "bearer_methods_supported": ["header"],
            "scopes_supported": ["mcp:use"],
        })
    );
    let root = f
        .send(
            Method::GET,
            "/.well-known/oauth-protected-resource",
            &[],
            None,
        )
        .await;
    assert_eq!(root.body["resource"], "https://gw.example");
    assert_eq!(root.body["scopes_supported"], json!(["mcp:use"]));
    let none = f
        .send(
            Method::GET,
            "/.well-known/oauth-protected-resource/mcp/nope",
            &[],
            None,
        )
        .await;
    assert_eq!(none.status, 404);

    // An unknown token, a revoked one, a malformed header, two headers.
    for (headers, status, error) in [
        (
            vec![("authorization", "Bearer who-knows")],
            401,
            "invalid_token",
        ),
        (
            vec![("authorization", "Bearer tok-expired")],
            401,
            "invalid_token",
        ),
        (
            vec![("authorization", "Basic dXNlcjpwdw==")],
            400,
            "invalid_request",
        ),
        (
            vec![
                ("authorization", "Bearer tok-alice"),
                ("authorization", "Bearer tok-alice"),
            ],
            400,
            "invalid_request",
        ),
    ] {
        // A public endpoint refuses a bad credential too: the client made a mistake.
        for ep in ["authenticated", "public"] {
            let got = f
                .send(
                    Method::POST,
                    &format!("/mcp/{ep}"),
                    &headers,
                    Some(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})),
                )
                .await;
            assert_eq!(got.status, status, "{headers:?} on {ep}");
            assert!(
                got.www().contains(&format!("error=\"{error}\"")),
                "{}",
                got.www()
            );
            assert!(got.www().contains("error_description=\""), "{}", got.www());
            assert_eq!(got.body["error"], error);
            assert!(!got.www().contains("tok-") && !got.www().contains("who-knows"));
        }
    }

    // Scopes: a JWT without them is sent to step up; an API key is authorized by team.
    let bare = f
        .modern("scoped", Some("tok-jwt-bare"), "tools/list", json!({}))
        .await;
    assert_eq!(bare.status, 403);
    assert!(
        bare.www()
            .contains("scope=\"mcp:use\", error=\"insufficient_scope\""),
        "{}",
        bare.www()
    );
    let scoped = f
        .modern("scoped", Some("tok-jwt-scoped"), "tools/list", json!({}))
        .await;
    assert_eq!(scoped.status, 200);
    let key = f
        .modern("scoped", Some("tok-alice"), "tools/list", json!({}))
        .await;
    assert_eq!(key.status, 200);
    // Missing credential on a scoped endpoint: the 401 names the scope to ask for.
    let none = f.modern("scoped", None, "tools/list", json!({})).await;
    assert!(
        none.www().ends_with(", scope=\"mcp:use\""),
        "{}",
        none.www()
    );
    f.gw.shutdown().await;
}

#[tokio::test]
async fn a_session_serves_only_the_subject_that_opened_it() {
    let f = fixture().await;
    let session = f
        .initialize("authenticated", Some("tok-alice"))
        .await
        .unwrap();
    let mine = f
        .legacy(
            "authenticated",
            &session,
            Some("tok-alice"),
            "tools/list",
            json!({}),
        )
        .await;
    assert_eq!(mine.status, 200);
    for token in [Some("tok-mallory"), Some("tok-olga")] {
        let theirs = f
            .legacy("authenticated", &session, token, "tools/list", json!({}))
            .await;
        assert_eq!(theirs.status, 404, "{token:?}: {}", theirs.body);
        // Refused after its body was read: the connection stays open for the next request.
        assert_eq!(theirs.headers.get("connection"), None, "{token:?}");
    }
    let anonymous = f
        .legacy("authenticated", &session, None, "tools/list", json!({}))
        .await;
    assert_eq!(anonymous.status, 401);
    // Refused before its body was read: the connection ends, and the answer says so.
    assert_eq!(anonymous.headers.get("connection").unwrap(), "close");
    // An anonymous session on a public endpoint is not reachable with a credential either.
    let anon = f.initialize("public", None).await.unwrap();
    let hijack = f
        .legacy("public", &anon, Some("tok-alice"), "tools/list", json!({}))
        .await;
    assert_eq!(hijack.status, 404);
    let delete = f
        .send(
            Method::DELETE,
            "/mcp/authenticated",
            &[
                ("mcp-session-id", session.as_str()),
                ("authorization", "Bearer tok-mallory"),
            ],
            None,
        )
        .await;
    assert_eq!(delete.status, 404);
    assert!(
        f.gw.session(&session).is_some(),
        "not closed by another subject"
    );
    f.gw.shutdown().await;
}

#[tokio::test]
async fn a_source_that_keeps_failing_is_slowed_down() {
    let f = fixture().await;
    for _ in 0..MAX_FAILURES {
        let got = f
            .modern("authenticated", Some("bad"), "tools/list", json!({}))
            .await;
        assert_eq!(got.status, 401);
    }
    let got = f
        .modern("authenticated", Some("tok-alice"), "tools/list", json!({}))
        .await;
    assert_eq!(got.status, 429);
    let retry: u64 = got.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Without a credential nothing is checked, so nothing is limited.
    let public = f.modern("public", None, "tools/list", json!({})).await;
    assert_eq!(public.status, 200);
    f.gw.shutdown().await;
}

#[test]
fn www_authenticate_quotes_what_it_carries() {
    let mut e = AuthError::new(AuthErrorCode::InsufficientScope, "needs \"a\\b\"\n");
    e.scope = Some("a b".into());
    assert_eq!(
        www_authenticate(&e, "https://h/x", &[]),
        "Bearer resource_metadata=\"https://h/x\", scope=\"a b\", error=\"insufficient_scope\", error_description=\"needs \\\"a\\\\b\\\"?\""
    );
}

#[test]
fn grants_merge_the_callers_teams_and_the_star_entry() {
    let table: std::collections::BTreeMap<String, Entitlement> = [
        (
            "a".to_owned(),
            Entitlement {
                tools: vec!["x*".into()],
                ..Entitlement::default()
            },
        ),
        (
            "*".to_owned(),
            Entitlement {
                prompts: vec!["p".into()],
                ..Entitlement::default()
            },
        ),
    ]
    .into();
    assert!(matches!(grant(None, None), Grant::All));
    let Grant::Entitled(anon) = grant(Some(&table), None) else {
        panic!()
    };
    assert_eq!(&*anon.key, "*\n");
    assert!(anon.globs.tools.is_empty());
    let alice = identity("alice", &["a"], Planes::DATA, None);
    let Grant::Entitled(e) = grant(Some(&table), Some(&alice)) else {
        panic!()
    };
    assert_eq!(&*e.key, "*\na\n");
    assert_eq!(e.globs.tools, ["x*"]);
    assert_eq!(e.globs.prompts, ["p"]);
}

#[tokio::test]
async fn callers_with_the_same_teams_share_one_grant_and_other_teams_get_their_own() {
    let f = fixture().await;
    let state = f.gw.state();
    let ep = state.endpoints["restricted"].clone();
    let front = &state.front;
    let alice = identity("alice", &["analysts"], Planes::DATA, None);
    let bob = identity("bob", &["analysts", "sales"], Planes::DATA, None);
    let olga = identity("olga", &["ops"], Planes::DATA, None);
    let (Grant::Entitled(a), Grant::Entitled(b), Grant::Entitled(o)) = (
        front.grant(&ep, Some(&alice)),
        front.grant(&ep, Some(&bob)),
        front.grant(&ep, Some(&olga)),
    ) else {
        panic!("the endpoint has entitlements")
    };
    // "sales" has no entry: bob's entries are alice's, so is his grant (no copy).
    assert!(Arc::ptr_eq(&a, &b));
    assert!(!Arc::ptr_eq(&a, &o));
    assert_ne!(a.key, o.key);
    // The same as building it afresh.
    let Grant::Entitled(fresh) = grant(ep.config().entitlements.as_ref(), Some(&olga)) else {
        panic!()
    };
    assert_eq!((&fresh.key, &fresh.globs.tools), (&o.key, &o.globs.tools));
    let everything = state.endpoints["everything"].clone();
    assert!(matches!(front.grant(&everything, Some(&alice)), Grant::All));
}
