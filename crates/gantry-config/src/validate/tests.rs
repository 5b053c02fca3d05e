use std::path::Path;

use super::*;

fn env(k: &str) -> Option<String> {
    match k {
        "TOKEN" => Some("s3cret".into()),
        "HOME" => Some("/home/u".into()),
        _ => None,
    }
}

fn load(text: &str) -> Result<Config, ConfigError> {
    load_toml(Path::new("gantry.toml"), text, &env)
}

fn err(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

#[test]
fn the_issue_example_loads_with_defaults() {
    let c = load(
        r#"
listen = "127.0.0.1:8848"
[servers.everything]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-everything", "stdio"]
[servers.time]
command = "mcp-server-time"
[servers.remote]
url = "http://127.0.0.1:3101/mcp"
headers = { Authorization = "Bearer ${TOKEN}" }
[servers.legacy]
url = "http://127.0.0.1:3102/sse"
transport = "sse"
[endpoints.main]
servers = ["everything", "time", "remote"]
"#,
    )
    .unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8848");
    assert_eq!(c.servers.len(), 4);
    let TransportConfig::StreamableHttp(h) = &c.servers["remote"].transport else {
        panic!("remote is streamable http")
    };
    assert_eq!(
        h.headers,
        vec![("Authorization".into(), "Bearer s3cret".into())]
    );
    assert!(matches!(
        c.servers["legacy"].transport,
        TransportConfig::Sse(_)
    ));
    assert!(matches!(
        c.servers["time"].transport,
        TransportConfig::Stdio(_)
    ));
    let ep = &c.endpoints["main"];
    assert_eq!(ep.servers, ["everything", "time", "remote"]);
    assert!(matches!(&ep.naming, Naming::Prefix { separator, .. } if separator == "__"));
}

#[test]
fn no_endpoints_means_one_default_endpoint_with_every_server() {
    let c = load("[servers.a]\ncommand = \"x\"\n[servers.b]\ncommand = \"y\"\n").unwrap();
    assert_eq!(c.endpoints["default"].servers, ["a", "b"]);
}

#[test]
fn errors_name_file_line_field_and_what_to_fix() {
    let e = err("[servers.a]\ncomand = \"x\"\n");
    assert!(e.starts_with("gantry.toml:2:1"), "{e}");
    assert!(e.contains("unknown field `comand`"), "{e}");

    let e = err("[servers.a]\ncommand = \"x\"\n[endpoints.m]\nservers = [\"a\", \"nope\"]\n");
    assert!(e.starts_with("gantry.toml:4:"), "{e}");
    assert!(
        e.contains("endpoints.m.servers: unknown server \"nope\""),
        "{e}"
    );
    assert!(e.contains("[a]"), "{e}");

    let e = err("listen = \"everywhere\"\n");
    assert!(e.contains("gantry.toml:1:10: listen:"), "{e}");

    let e = err("[servers.a]\nurl = \"ftp://x\"\n");
    assert!(
        e.contains("servers.a.url") && e.contains("not an http"),
        "{e}"
    );

    let e = err("[servers.a]\ncommand = \"x\"\nenv = { K = \"${NOPE}\" }\n");
    assert!(
        e.contains("gantry.toml:3:")
            && e.contains("servers.a.env.K")
            && e.contains("NOPE is not set"),
        "{e}"
    );

    let e = err("[servers.a]\n");
    assert!(
        e.contains("servers.a: a server needs either `command`"),
        "{e}"
    );

    let e = err("[servers.a]\ncommand = \"x\"\n[endpoints.m]\nnaming = \"random\"\n");
    assert!(
        e.contains("gantry.toml:4:") && e.contains("unknown naming strategy"),
        "{e}"
    );

    let e = err(
        "[servers.a]\ncommand = \"x\"\n[endpoints.m]\n[endpoints.m.tools.\"b/t\"]\nname = \"x\"\n",
    );
    assert!(e.contains("not part of endpoint"), "{e}");

    let e = err("[servers.a]\ncommand = \"x\"\n[endpoints.m.tools.\"a/t\"]\nname = \"bad name\"\n");
    assert!(
        e.contains("gantry.toml:4:8: endpoints.m.tools.a/t.name")
            && e.contains("not a valid tool name"),
        "{e}"
    );

    let e = err("max_body_bytes = -1\n");
    assert!(e.contains("max_body_bytes: expected a positive"), "{e}");

    let e = err("[servers.a]\ncommand = \"x\"\nrequest_timeout = 0\n");
    assert!(e.contains("servers.a.request_timeout"), "{e}");
}

#[test]
fn priority_defaults_to_the_servers_order_and_must_name_members() {
    let c = load(
        "[servers.a]\ncommand=\"x\"\n[servers.b]\ncommand=\"y\"\n[endpoints.m]\nservers=[\"b\",\"a\"]\nnaming=\"priority\"\n",
    )
    .unwrap();
    assert!(
        matches!(&c.endpoints["m"].naming, Naming::Priority { order, .. } if order == &["b", "a"])
    );
    let e = err(
        "[servers.a]\ncommand=\"x\"\n[servers.b]\ncommand=\"y\"\n[endpoints.m]\nservers=[\"a\"]\nnaming=\"priority\"\npriority=[\"b\"]\n",
    );
    assert!(e.contains("not in this endpoint's `servers`"), "{e}");
}

#[test]
fn mcp_servers_json_imports_as_servers() {
    let dir = std::env::temp_dir().join(format!("gantry-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("claude.json");
    std::fs::write(
        &json,
        r#"{"mcpServers": {
  "time": {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"], "env": {"T": "${TOKEN}"}},
  "remote": {"url": "http://127.0.0.1:1/sse", "type": "sse"},
  "off": {"command": "x", "disabled": true}
}}"#,
    )
    .unwrap();
    let c = crate::load_with_env(&json, &env).unwrap();
    assert_eq!(c.servers.keys().collect::<Vec<_>>(), ["remote", "time"]);
    assert_eq!(c.endpoints["default"].servers, ["remote", "time"]);
    assert!(matches!(
        c.servers["remote"].transport,
        TransportConfig::Sse(_)
    ));

    let toml = dir.join("gantry.toml");
    std::fs::write(
        &toml,
        "import = [\"claude.json\"]\n[servers.extra]\ncommand = \"x\"\n",
    )
    .unwrap();
    let c = crate::load_with_env(&toml, &env).unwrap();
    assert_eq!(c.servers.len(), 3);

    std::fs::write(&json, "{\"mcpServers\": {\n  \"bad\": {\"args\": []}\n}}").unwrap();
    let e = crate::load_with_env(&json, &env).unwrap_err().to_string();
    assert!(
        e.contains("claude.json:2:") && e.contains("mcpServers.bad"),
        "{e}"
    );
    std::fs::write(&json, "{\"mcpServers\": {,}}").unwrap();
    let e = crate::load_with_env(&json, &env).unwrap_err().to_string();
    assert!(
        e.contains("claude.json:1:") && e.contains("not valid JSON"),
        "{e}"
    );
    // Fields inside a server are named under the file's own key.
    for (key, text) in [
        (
            "mcpServers",
            r#"{"mcpServers": {"web": {"url": "ftp://x"}}}"#,
        ),
        ("servers", r#"{"servers": {"web": {"url": "ftp://x"}}}"#),
    ] {
        std::fs::write(&json, text).unwrap();
        let e = crate::load_with_env(&json, &env).unwrap_err().to_string();
        assert!(
            e.contains(&format!(": {key}.web.url: \"ftp://x\" is not an http")),
            "{e}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_data_dir_defaults_to_a_folder_next_to_the_config_file() {
    let c = load_toml(Path::new("/etc/gantry/gantry.toml"), "", &env).unwrap();
    assert_eq!(c.data_dir, Path::new("/etc/gantry/gantry-data"));
    let c = load_toml(
        Path::new("/etc/gantry/gantry.toml"),
        "data_dir = \"state\"\n",
        &env,
    )
    .unwrap();
    assert_eq!(c.data_dir, Path::new("/etc/gantry/state"));
    let c = load_toml(
        Path::new("/etc/gantry/gantry.toml"),
        "data_dir = \"${HOME}/.gantry\"\n",
        &env,
    )
    .unwrap();
    assert_eq!(c.data_dir, Path::new("/home/u/.gantry"));

    let e = err("listen = \"127.0.0.1:1\"\ndata_dir = \"\"\n");
    assert!(e.starts_with("gantry.toml:2:12: data_dir: "), "{e}");
    let e = err("data_dir = \"${NOPE}\"\n");
    assert!(
        e.contains("gantry.toml:1:") && e.contains("data_dir") && e.contains("NOPE"),
        "{e}"
    );
    let file = std::env::temp_dir().join(format!("gantry-cfg-datadir-{}", std::process::id()));
    std::fs::write(&file, "x").unwrap();
    let e = err(&format!("data_dir = {:?}\n", file.display().to_string()));
    assert!(
        e.contains("data_dir: ") && e.contains("not a directory"),
        "{e}"
    );
    std::fs::remove_file(&file).unwrap();

    // An mcpServers file gets its data directory next to it, too.
    let dir = std::env::temp_dir().join(format!("gantry-cfg-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("claude.json");
    std::fs::write(&json, r#"{"mcpServers": {}}"#).unwrap();
    let c = crate::load_with_env(&json, &env).unwrap();
    assert_eq!(c.data_dir, dir.join("gantry-data"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn endpoint_mode_defaults_to_direct_and_auto_to_40() {
    let base = "[servers.a]\ncommand = \"x\"\n[endpoints.m]\n";
    let c = load(base).unwrap();
    assert_eq!(c.endpoints["m"].mode, ToolMode::Direct);
    let c = load(&format!("{base}mode = \"progressive\"\n")).unwrap();
    assert_eq!(c.endpoints["m"].mode, ToolMode::Progressive);
    let c = load(&format!("{base}mode = \"auto\"\n")).unwrap();
    assert_eq!(c.endpoints["m"].mode, ToolMode::Auto { above: 40 });
    let c = load(&format!("{base}mode = \"auto\"\nprogressive_above = 3\n")).unwrap();
    let mode = c.endpoints["m"].mode;
    assert_eq!(mode, ToolMode::Auto { above: 3 });
    assert!(!mode.is_progressive(3) && mode.is_progressive(4));
    assert!(ToolMode::Progressive.is_progressive(0));
    assert!(!ToolMode::Direct.is_progressive(10_000));
    // No [endpoints]: the default endpoint is direct.
    let c = load("[servers.a]\ncommand = \"x\"\n").unwrap();
    assert_eq!(c.endpoints["default"].mode, ToolMode::Direct);
}

#[test]
fn endpoint_mode_errors_name_file_line_and_field() {
    let base = "[servers.a]\ncommand = \"x\"\n[endpoints.m]\n";
    let e = err(&format!("{base}mode = \"lazy\"\n"));
    assert!(e.starts_with("gantry.toml:4:8: endpoints.m.mode:"), "{e}");
    assert!(
        e.contains("unknown mode \"lazy\": expected \"direct\", \"progressive\" or \"auto\""),
        "{e}"
    );
    let e = err(&format!("{base}mode = \"auto\"\nprogressive_above = -1\n"));
    assert!(
        e.starts_with("gantry.toml:5:21: endpoints.m.progressive_above:"),
        "{e}"
    );
    assert!(e.contains("0 or more"), "{e}");
    let e = err(&format!(
        "{base}mode = \"progressive\"\nprogressive_above = 5\n"
    ));
    assert!(
        e.starts_with("gantry.toml:5:21: endpoints.m.progressive_above:"),
        "{e}"
    );
    assert!(e.contains("only with mode = \"auto\""), "{e}");
    let e = err(&format!("{base}progressive_above = 5\n"));
    assert!(e.contains("endpoints.m.progressive_above"), "{e}");
    let e = err(&format!("{base}mode = 3\n"));
    assert!(e.starts_with("gantry.toml:4:8"), "{e}");
}

#[test]
fn access_policies_default_to_public_and_restricted_needs_teams() {
    let c = load(
        r#"
public_url = "https://gantry.example.com/"
authorization_servers = ["https://login.example.com/realms/x"]
[servers.time]
command = "mcp-server-time"
[endpoints.open]
[endpoints.staff]
access = "authenticated"
scopes = ["mcp:tools"]
[endpoints.lab]
access = "restricted"
teams = ["analysts", "ops"]
[endpoints.lab.entitlements]
analysts = ["time__*"]
ops = { tools = ["*"], prompts = ["p*"], resources = ["file:///*"] }
"*" = { prompts = ["public_*"] }
"#,
    )
    .unwrap();
    assert_eq!(c.public_url.as_deref(), Some("https://gantry.example.com"));
    assert_eq!(c.public_base(), "https://gantry.example.com");
    assert_eq!(
        c.authorization_servers,
        ["https://login.example.com/realms/x"]
    );
    assert!(!c.allow_public_on_network);
    assert_eq!(c.endpoints["open"].access, Access::Public);
    assert!(c.endpoints["open"].entitlements.is_none());
    assert_eq!(c.endpoints["staff"].access, Access::Authenticated);
    assert_eq!(c.endpoints["staff"].scopes, ["mcp:tools"]);
    assert_eq!(
        c.endpoints["lab"].access,
        Access::Restricted {
            teams: vec!["analysts".into(), "ops".into()]
        }
    );
    let e = c.endpoints["lab"].entitlements.as_ref().unwrap();
    assert_eq!(e["analysts"].tools, ["time__*"]);
    assert!(e["analysts"].prompts.is_empty() && e["analysts"].resources.is_empty());
    assert_eq!(e["ops"].resources, ["file:///*"]);
    assert_eq!(e["*"].prompts, ["public_*"]);
}

#[test]
fn access_errors_name_file_line_and_field() {
    let cases = [
        (
            "[endpoints.x]\naccess = \"restricted\"\n",
            "gantry.toml:2:10: endpoints.x.teams: access = \"restricted\" needs `teams`",
        ),
        (
            "[endpoints.x]\naccess = \"restricted\"\nteams = []\n",
            "gantry.toml:3:9: endpoints.x.teams: `teams` is empty",
        ),
        (
            "[endpoints.x]\nteams = [\"a\"]\n",
            "gantry.toml:2:9: endpoints.x.teams: `teams` applies only with access = \"restricted\"",
        ),
        (
            "[endpoints.x]\naccess = \"private\"\n",
            "gantry.toml:2:10: endpoints.x.access: unknown access policy \"private\"",
        ),
        (
            "[endpoints.x]\nscopes = [\"a\"]\n",
            "gantry.toml:2:10: endpoints.x.scopes: `scopes` needs a credential",
        ),
        (
            "[endpoints.x]\naccess = \"restricted\"\nteams = [\"a\"]\n[endpoints.x.entitlements]\nb = [\"*\"]\n",
            "gantry.toml:5:1: endpoints.x.entitlements.b: team \"b\" is not in this endpoint's `teams` [a]",
        ),
        (
            "public_url = \"https://h.example/base\"\n",
            "gantry.toml:1:14: public_url: \"https://h.example/base\" has a path",
        ),
        (
            "public_url = \"ftp://h\"\n",
            "gantry.toml:1:14: public_url: \"ftp://h\" is not an http:// or https:// URL",
        ),
    ];
    for (text, want) in cases {
        let got = err(text);
        assert!(got.starts_with(want), "{text}\n got: {got}\nwant: {want}");
    }
    let got = err("[endpoints.x.entitlements]\na = { tool = [\"*\"] }\n");
    assert!(got.starts_with("gantry.toml:2:5"), "{got}");
}

#[test]
fn public_endpoints_on_a_network_address_need_an_explicit_yes() {
    let text = "[endpoints.open]\n[endpoints.closed]\naccess = \"authenticated\"\n";
    let c = load(text).unwrap();
    let any: std::net::SocketAddr = "0.0.0.0:8848".parse().unwrap();
    assert!(c.check_listen("127.0.0.1:1".parse().unwrap()).is_ok());
    assert!(c.check_listen("[::1]:1".parse().unwrap()).is_ok());
    let e = c.check_listen(any).unwrap_err();
    assert!(
        e.contains("refusing to listen on 0.0.0.0:8848: endpoint open has access = \"public\""),
        "{e}"
    );
    assert!(e.contains("allow_public_on_network = true"), "{e}");
    let allowed = load(&format!("allow_public_on_network = true\n{text}")).unwrap();
    assert!(allowed.check_listen(any).is_ok());
    let closed = load("[endpoints.closed]\naccess = \"authenticated\"\n").unwrap();
    assert!(closed.check_listen(any).is_ok());
}

#[test]
fn oidc_providers_load_with_defaults() {
    let c = load(
        r#"
public_url = "https://gantry.example.com/"
[[auth.oidc]]
issuer = "https://login.example.com/realms/acme"
[[auth.oidc]]
issuer = "http://127.0.0.1:9000"
audience = ["https://gantry.example.com/mcp/a", "api://gantry"]
user_claim = "email"
teams_claim = "realm_access.roles"
scopes_claim = "scp"
required_scopes = ["mcp:tools"]
leeway = 0
control_plane_scope = "gantry:admin"
control_plane_claim = "groups"
control_plane_value = "gantry-admins"
jwks_refresh_min_interval = 5
http_timeout = 2.5
"#,
    )
    .unwrap();
    assert_eq!(c.public_url.as_deref(), Some("https://gantry.example.com"));
    let [a, b] = &c.auth.oidc[..] else {
        panic!("two providers")
    };
    assert_eq!(a.issuer, "https://login.example.com/realms/acme");
    assert!(a.audience.is_empty());
    assert_eq!(
        (a.user_claim.as_str(), a.teams_claim.as_str()),
        ("sub", "groups")
    );
    assert_eq!(a.scopes_claim, "scope");
    assert_eq!(a.leeway, DEFAULT_OIDC_LEEWAY);
    assert!(a.control_plane.is_empty());
    assert_eq!(
        a.jwks_refresh_min_interval,
        DEFAULT_JWKS_REFRESH_MIN_INTERVAL
    );
    assert_eq!(
        b.audience,
        ["https://gantry.example.com/mcp/a", "api://gantry"]
    );
    assert_eq!(b.user_claim, "email");
    assert_eq!(b.required_scopes, ["mcp:tools"]);
    assert_eq!(b.leeway, Duration::ZERO);
    assert_eq!(
        b.control_plane,
        [
            ControlPlaneGrant::Scope("gantry:admin".into()),
            ControlPlaneGrant::Claim {
                claim: "groups".into(),
                value: "gantry-admins".into()
            }
        ]
    );
    assert_eq!(b.jwks_refresh_min_interval, Duration::from_secs(5));
    assert_eq!(b.http_timeout, Duration::from_millis(2500));
    let one = load("[[auth.oidc]]\nissuer = \"https://i\"\naudience = \"x\"\n").unwrap();
    assert_eq!(one.auth.oidc[0].audience, ["x"]);
    assert!(load("").unwrap().auth.oidc.is_empty());
    assert_eq!(load("").unwrap().public_url, None);
}

#[test]
fn oidc_and_public_url_errors_name_file_line_and_field() {
    let e = err("[[auth.oidc]]\nissuer = \"http://login.example.com\"\n");
    assert!(
        e.starts_with("gantry.toml:2:10: auth.oidc[0].issuer: "),
        "{e}"
    );
    assert!(e.contains("must be https://"), "{e}");
    let e = err("[[auth.oidc]]\nuser_claim = \"email\"\n");
    assert!(
        e.contains("auth.oidc[0].issuer: an OpenID provider needs `issuer`"),
        "{e}"
    );
    let e = err("[[auth.oidc]]\nissuer = \"https://a\"\n[[auth.oidc]]\nissuer = \"https://a\"\n");
    assert!(
        e.contains("auth.oidc[1].issuer") && e.contains("configured twice"),
        "{e}"
    );
    let e = err("[[auth.oidc]]\nissuer = \"https://a\"\nleeway = -1\n");
    assert!(
        e.starts_with("gantry.toml:3:10: auth.oidc[0].leeway: "),
        "{e}"
    );
    let e = err("[[auth.oidc]]\nissuer = \"https://a\"\naudience = []\n");
    assert!(e.contains("auth.oidc[0].audience"), "{e}");
    let e = err("[[auth.oidc]]\nissuer = \"https://a\"\nrequired_scopes = [\"a b\"]\n");
    assert!(
        e.contains("auth.oidc[0].required_scopes") && e.contains("not a scope"),
        "{e}"
    );
    let e = err("[[auth.oidc]]\nissuer = \"https://a\"\ncontrol_plane_claim = \"groups\"\n");
    assert!(e.contains("needs `control_plane_value`"), "{e}");
    let e = err("[[auth.oidc]]\nissuer = \"https://a\"\nissuer_url = \"x\"\n");
    assert!(e.starts_with("gantry.toml:3:1: "), "{e}");
    let e = err("[[auth.oidc]]\nissuer = \"https://a?x=1\"\n");
    assert!(e.contains("query or fragment"), "{e}");
    let e = err("public_url = \"https://gantry.example.com/mcp\"\n");
    assert!(e.starts_with("gantry.toml:1:14: public_url: "), "{e}");
    assert!(e.contains("has a path"), "{e}");
    let e = err("public_url = \"gantry.example.com\"\n");
    assert!(e.contains("not an http:// or https:// URL"), "{e}");
}

#[test]
fn fault_tolerance_keys_load_with_units_and_defaults() {
    let c = load(
        r#"
shutdown_grace = "1.5s"
[servers.a]
command = "a"
max_in_flight = 3
[servers.a.tools.slow]
timeout = "500ms"
[servers.a.tools.slower]
timeout = 120
[servers.a.tools.renamed]
name = "other"
[servers.b]
command = "b"
"#,
    )
    .unwrap();
    assert_eq!(c.shutdown_grace, Duration::from_millis(1500));
    let a = &c.servers["a"];
    assert_eq!(a.max_in_flight, 3);
    assert_eq!(a.tool_timeouts["slow"], Duration::from_millis(500));
    assert_eq!(a.tool_timeouts["slower"], Duration::from_secs(120));
    assert!(!a.tool_timeouts.contains_key("renamed"));
    let b = &c.servers["b"];
    assert_eq!(b.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
    assert!(b.tool_timeouts.is_empty());
    let d = load("[servers.a]\ncommand = \"a\"\n").unwrap();
    assert_eq!(d.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
    let zero = load("shutdown_grace = 0\n[servers.a]\ncommand = \"a\"\n").unwrap();
    assert_eq!(zero.shutdown_grace, Duration::ZERO);
}

#[test]
fn fault_tolerance_key_errors_are_located() {
    let e = err("[servers.a]\ncommand = \"a\"\n[servers.a.tools.t]\ntimeout = \"5 parsecs\"\n");
    assert!(
        e.starts_with("gantry.toml:4:11: servers.a.tools.t.timeout: expected a duration"),
        "{e}"
    );
    let e = err("[servers.a]\ncommand = \"a\"\n[servers.a.tools.t]\ntimeout = \"0s\"\n");
    assert!(
        e.contains("servers.a.tools.t.timeout: expected a positive duration"),
        "{e}"
    );
    let e = err("[servers.a]\ncommand = \"a\"\nmax_in_flight = 0\n");
    assert!(
        e.starts_with("gantry.toml:3:17: servers.a.max_in_flight: expected a positive"),
        "{e}"
    );
    let e = err("shutdown_grace = \"soon\"\n[servers.a]\ncommand = \"a\"\n");
    assert!(
        e.starts_with("gantry.toml:1:18: shutdown_grace: expected a duration"),
        "{e}"
    );
    let e = err("[servers.a]\ncommand = \"a\"\n[endpoints.e.tools.\"a/t\"]\ntimeout = \"5s\"\n");
    assert!(
        e.contains("endpoints.e.tools.a/t.timeout: `timeout` is set per tool on the server"),
        "{e}"
    );
    let e = err("[servers.a]\ncommand = \"a\"\n[servers.a.prompts.p]\ntimeout = \"5s\"\n");
    assert!(e.contains("servers.a.prompts.p.timeout"), "{e}");
}

#[test]
fn seconds_too_large_for_a_duration_are_refused_not_a_panic() {
    for (text, at) in [
        (
            "session_idle_timeout = 1e20\n",
            "gantry.toml:1:24: session_idle_timeout",
        ),
        (
            "[servers.a]\ncommand = \"a\"\nconnect_timeout = 1e20\n",
            "gantry.toml:3:19: servers.a.connect_timeout",
        ),
        (
            "[[auth.oidc]]\nissuer = \"https://login.example\"\nhttp_timeout = 1e300\n",
            "gantry.toml:3:16: auth.oidc[0].http_timeout",
        ),
    ] {
        let e = err(text);
        assert_eq!(e, format!("{at}: expected a positive number of seconds"));
    }
    // Large but representable still loads, as before.
    let c = load("session_idle_timeout = 1e12\n").unwrap();
    assert_eq!(
        c.session_idle_timeout,
        Duration::from_secs(1_000_000_000_000)
    );
}

#[test]
fn durations_parse_with_units() {
    assert_eq!(parse_duration("500ms"), Some(0.5));
    assert_eq!(parse_duration("5s"), Some(5.0));
    assert_eq!(parse_duration("1.5m"), Some(90.0));
    assert_eq!(parse_duration("1h"), Some(3600.0));
    for bad in ["", "s", "5", "5 parsecs", ".5s", "5.s", "1e3s", "-1s", "ms"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}

#[test]
fn start_and_idle_shutdown_default_from_lifecycle_and_servers_override_them() {
    let c = load(
        r#"
[lifecycle]
start = "lazy"
idle_shutdown = "10m"
[servers.a]
command = "a"
[servers.b]
command = "b"
start = "eager"
idle_shutdown = "off"
[servers.c]
url = "http://127.0.0.1:1/mcp"
idle_shutdown = 2
"#,
    )
    .unwrap();
    assert_eq!(c.lifecycle.start, StartMode::Lazy);
    assert_eq!(c.servers["a"].start, StartMode::Lazy);
    assert_eq!(c.servers["a"].idle_shutdown, Some(Duration::from_secs(600)));
    assert_eq!(c.servers["b"].start, StartMode::Eager);
    assert_eq!(c.servers["b"].idle_shutdown, None);
    assert_eq!(c.servers["c"].start, StartMode::Lazy);
    assert_eq!(c.servers["c"].idle_shutdown, Some(Duration::from_secs(2)));
    let plain = load("[servers.a]\ncommand = \"a\"\nidle_shutdown = 0\n").unwrap();
    assert_eq!(plain.servers["a"].start, StartMode::Eager);
    assert_eq!(plain.servers["a"].idle_shutdown, None);
}

#[test]
fn bad_start_and_idle_shutdown_are_located() {
    assert!(
        err("[servers.a]\ncommand = \"a\"\nstart = \"later\"\n")
            .starts_with("gantry.toml:3:9: servers.a.start: unknown start \"later\""),
        "{}",
        err("[servers.a]\ncommand = \"a\"\nstart = \"later\"\n")
    );
    let e = err("[servers.a]\ncommand = \"a\"\nidle_shutdown = \"soon\"\n");
    assert!(
        e.starts_with("gantry.toml:3:17: servers.a.idle_shutdown: expected a duration"),
        "{e}"
    );
    let e = err("[lifecycle]\nidle_shutdown = -5\n");
    assert!(
        e.starts_with("gantry.toml:2:17: lifecycle.idle_shutdown: expected a duration"),
        "{e}"
    );
    let e = err("[lifecycle]\nstrat = \"lazy\"\n");
    assert!(e.contains("gantry.toml:2:1") && e.contains("strat"), "{e}");
}
