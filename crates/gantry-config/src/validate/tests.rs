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
fn durations_parse_with_units() {
    assert_eq!(parse_duration("500ms"), Some(0.5));
    assert_eq!(parse_duration("5s"), Some(5.0));
    assert_eq!(parse_duration("1.5m"), Some(90.0));
    assert_eq!(parse_duration("1h"), Some(3600.0));
    for bad in ["", "s", "5", "5 parsecs", ".5s", "5.s", "1e3s", "-1s", "ms"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}
