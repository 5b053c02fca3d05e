use std::path::Path;

use gantry_core::Message;
use tokio::sync::mpsc;

use super::*;
use crate::session::ClientHello;
use crate::{CatalogCache, Options};

fn config(text: &str) -> Config {
    config_env(text, &|_| None)
}

fn config_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Config {
    gantry_config::from_toml_str(Path::new("t.toml"), text, env).unwrap()
}

const BASE: &str = r#"
[servers.a]
command = "/nonexistent/a"
[servers.b]
command = "/nonexistent/b"
args = ["--x"]
[endpoints.main]
servers = ["a", "b"]
[endpoints.other]
servers = ["b"]
"#;

#[test]
fn an_identical_config_changes_nothing() {
    let d = diff(&config(BASE), &config(BASE));
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(d.summary(), "no change");
}

#[test]
fn servers_are_compared_by_their_whole_config() {
    let old = config(BASE);
    let new = config(
        r#"
[servers.a]
command = "/nonexistent/a"
[servers.b]
command = "/nonexistent/b"
args = ["--y"]
request_timeout = 5
[servers.c]
url = "http://127.0.0.1:1/mcp"
[endpoints.main]
servers = ["a", "b"]
[endpoints.other]
servers = ["b"]
"#,
    );
    let d = diff(&old, &new);
    assert_eq!(d.servers_added, ["c"]);
    assert!(d.servers_removed.is_empty());
    assert_eq!(
        d.servers_changed,
        BTreeMap::from([("b".to_owned(), vec!["args", "request_timeout"])])
    );
    // Every endpoint on a restarted server is rebuilt, and says why.
    assert_eq!(
        d.endpoints_changed,
        BTreeMap::from([
            ("main".to_owned(), vec!["server b restarted".to_owned()]),
            ("other".to_owned(), vec!["server b restarted".to_owned()]),
        ])
    );
    assert!(d.endpoints_added.is_empty() && d.endpoints_removed.is_empty());
}

#[test]
fn secrets_changing_is_a_change_but_only_its_field_is_named() {
    let text = r#"
[servers.a]
command = "/nonexistent/a"
env = { TOKEN = "${TOKEN}" }
[servers.h]
url = "http://127.0.0.1:1/mcp"
headers = { Authorization = "Bearer ${TOKEN}" }
"#;
    let old = config_env(text, &|_| Some("old-secret".into()));
    let new = config_env(text, &|_| Some("new-secret".into()));
    let d = diff(&old, &new);
    assert_eq!(
        d.servers_changed,
        BTreeMap::from([
            ("a".to_owned(), vec!["env"]),
            ("h".to_owned(), vec!["headers"]),
        ])
    );
    let shown = format!("{} {}", d.summary(), d.to_json());
    assert!(!shown.contains("secret"), "{shown}");
}

#[test]
fn a_transport_change_and_overrides_count() {
    let old = config("[servers.a]\ncommand = \"/x\"\n");
    let new = config("[servers.a]\nurl = \"http://127.0.0.1:1/mcp\"\n");
    assert_eq!(diff(&old, &new).servers_changed["a"], ["transport"]);
    let new = config("[servers.a]\ncommand = \"/x\"\n[servers.a.tools.t]\ndescription = \"d\"\n");
    assert_eq!(diff(&old, &new).servers_changed["a"], ["tools"]);
}

#[test]
fn endpoints_added_removed_and_changed() {
    let old = config(BASE);
    let new = config(
        r#"
[servers.a]
command = "/nonexistent/a"
[servers.b]
command = "/nonexistent/b"
args = ["--x"]
[endpoints.main]
servers = ["a"]
exclude = ["a/secret*"]
[endpoints.third]
servers = ["a", "b"]
"#,
    );
    let d = diff(&old, &new);
    assert_eq!(d.endpoints_added, ["third"]);
    assert_eq!(d.endpoints_removed, ["other"]);
    assert_eq!(
        d.endpoints_changed,
        BTreeMap::from([(
            "main".to_owned(),
            vec!["servers".to_owned(), "exclude".to_owned()]
        )])
    );
    assert!(d.servers_changed.is_empty() && d.servers_added.is_empty());
}

#[test]
fn settings_apply_live_or_need_a_restart() {
    let old = config(BASE);
    let new = config(&format!(
        "listen = \"127.0.0.1:9999\"\nmax_body_bytes = 1000\nallowed_origins = []\n{BASE}"
    ));
    let d = diff(&old, &new);
    assert_eq!(d.settings_changed, ["max_body_bytes", "allowed_origins"]);
    assert_eq!(d.needs_restart, ["listen"]);
    assert!(d.summary().contains("needs a restart"), "{}", d.summary());
}

fn tool(name: &str) -> Value {
    json!({"name": name, "inputSchema": {"type": "object"}})
}

/// A gateway whose servers never connect but list seeded catalogs.
fn seeded_gateway(text: &str, seeds: &[(&str, &[&str])]) -> Arc<Gateway> {
    let seeds = seeds
        .iter()
        .map(|(s, tools)| {
            (
                (*s).to_owned(),
                Catalog {
                    tools: tools.iter().map(|t| tool(t)).collect(),
                    ..Catalog::default()
                },
            )
        })
        .collect();
    Gateway::start_with(
        config(text),
        Options {
            catalog: CatalogCache { seeds, sink: None },
            ..Options::default()
        },
    )
}

/// An initialized session with an open stream on `endpoint`.
fn listening_session(gw: &Gateway, endpoint: &str) -> (Arc<Session>, mpsc::Receiver<Message>) {
    let ep = gw.endpoint(endpoint).unwrap();
    let s = gw.open_session(&ep);
    s.set_hello(ClientHello::default());
    let (tx, rx) = mpsc::channel(16);
    s.set_outbox(Some(tx));
    (s, rx)
}

fn methods(rx: &mut mpsc::Receiver<Message>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(m) = rx.try_recv() {
        if let Message::Notification(n) = m {
            out.push(n.method);
        }
    }
    out
}

use crate::session::Session;

#[tokio::test]
async fn a_reload_keeps_sessions_and_unchanged_servers_and_tells_clients_what_changed() {
    let gw = seeded_gateway(BASE, &[("a", &["one", "two"]), ("b", &["three"])]);
    let (main, mut main_rx) = listening_session(&gw, "main");
    let (other, mut other_rx) = listening_session(&gw, "other");
    let before = gw.state();
    let old_main = gw.endpoint("main").unwrap();
    assert_eq!(old_main.view(&ClientCaps::none()).tools.len(), 3);

    // Hide a tool on main; `other` and both servers are untouched.
    let text = BASE.replace(
        "servers = [\"a\", \"b\"]",
        "servers = [\"a\", \"b\"]\nexclude = [\"a/two\"]",
    );
    let d = gw.apply(config(&text)).await.unwrap();
    assert_eq!(
        d.endpoints_changed,
        BTreeMap::from([("main".to_owned(), vec!["exclude".to_owned()])])
    );
    let after = gw.state();
    for name in ["a", "b"] {
        assert!(
            Arc::ptr_eq(&before.servers[name], &after.servers[name]),
            "server {name} kept its connections"
        );
    }
    assert!(Arc::ptr_eq(
        &before.endpoints["other"],
        &after.endpoints["other"]
    ));
    let new_main = gw.endpoint("main").unwrap();
    assert!(!Arc::ptr_eq(&old_main, &new_main));

    // The session survived, now sees the new build, and was told its tools changed.
    let found = gw
        .session(main.id())
        .expect("the session survived the reload");
    assert!(Arc::ptr_eq(&found.endpoint(), &new_main));
    assert_eq!(found.endpoint().view(&ClientCaps::none()).tools.len(), 2);
    assert_eq!(methods(&mut main_rx), ["notifications/tools/list_changed"]);
    assert!(
        methods(&mut other_rx).is_empty(),
        "an unchanged endpoint hears nothing"
    );
    assert!(gw.session(other.id()).is_some());
    gw.shutdown().await;
}

#[tokio::test]
async fn removed_endpoints_close_their_sessions_and_added_servers_start() {
    let gw = seeded_gateway(BASE, &[("a", &["one"]), ("b", &["three"])]);
    let (main, _main_rx) = listening_session(&gw, "main");
    let (other, mut other_rx) = listening_session(&gw, "other");
    let text = r#"
[servers.a]
command = "/nonexistent/a"
[servers.c]
command = "/nonexistent/c"
[endpoints.main]
servers = ["a", "c"]
"#;
    let d = gw.apply(config(text)).await.unwrap();
    assert_eq!(d.servers_added, ["c"]);
    assert_eq!(d.servers_removed, ["b"]);
    assert_eq!(d.endpoints_removed, ["other"]);
    assert!(gw.session(other.id()).is_none(), "closed with its endpoint");
    assert!(other.outbox().is_none(), "its stream was ended");
    assert!(methods(&mut other_rx).is_empty());
    let s = gw.session(main.id()).expect("main's session survived");
    let names: Vec<String> = s
        .endpoint()
        .servers()
        .iter()
        .map(|g| g.name().to_string())
        .collect();
    assert_eq!(names, ["a", "c"]);
    assert!(gw.state().removed_endpoints.contains("other"));
    // A session opened on the removed endpoint's old build is refused at registration.
    let late = Session::new(before_removed(&d));
    gw.register_session(late.clone());
    assert!(gw.session(late.id()).is_none());
    gw.shutdown().await;

    fn before_removed(_: &Diff) -> Arc<Endpoint> {
        let c = config(
            "[servers.x]\ncommand = \"/nonexistent/x\"\n[endpoints.other]\nservers = [\"x\"]\n",
        );
        Arc::new(Endpoint::new(c.endpoints["other"].clone(), Vec::new()))
    }
}

#[tokio::test]
async fn a_refused_config_changes_nothing() {
    let net = "listen = \"0.0.0.0:8848\"\n";
    let gw = Gateway::start(config(&format!(
        "{net}allow_public_on_network = true\n{BASE}"
    )));
    let before = gw.state();
    // Withdrawing the permission while public endpoints listen on the network: refused.
    let mut text = format!("{net}{BASE}");
    text = text.replace("args = [\"--x\"]", "args = [\"--changed\"]");
    let f = gw.apply(config(&text)).await.unwrap_err();
    assert!(f.message.contains("refusing to listen"), "{}", f.message);
    let after = gw.state();
    assert!(Arc::ptr_eq(&before, &after), "nothing was swapped");
    // Reloading without a source says so.
    let r = gw.reload(Trigger::Admin).await;
    let Err(f) = &r.outcome else {
        panic!("reloaded without a source")
    };
    assert!(f.message.contains("not started from a config file"));
    gw.shutdown().await;
}

#[tokio::test]
async fn an_invalid_file_is_reported_with_its_location_and_the_old_config_stays() {
    let dir = std::env::temp_dir().join(format!("gantry-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gantry.toml");
    std::fs::write(&file, BASE).unwrap();
    let c = gantry_config::load(&file).unwrap();
    let gw = Gateway::start_with(
        c,
        Options {
            reload: Some(Source::file(file.clone())),
            ..Options::default()
        },
    );
    std::fs::write(&file, BASE.replace("args = ", "argz = ")).unwrap();
    let r = gw.reload(Trigger::Signal).await;
    let Err(f) = &r.outcome else {
        panic!("an unknown key was accepted")
    };
    assert_eq!(f.line, Some(6), "{f:?}");
    assert!(f.message.contains("argz"), "{}", f.message);
    assert!(gw.config().servers["b"].name == "b");
    assert_eq!(gw.last_reload().unwrap().trigger, Trigger::Signal);

    std::fs::write(&file, BASE.replace("[\"b\"]", "[\"a\"]")).unwrap();
    let r = gw.reload(Trigger::Admin).await;
    let d = r.outcome.as_ref().unwrap();
    assert_eq!(
        d.endpoints_changed,
        BTreeMap::from([("other".to_owned(), vec!["servers".to_owned()])])
    );
    assert_eq!(
        r.to_json()["applied"]["endpoints"]["changed"]["other"],
        json!(["servers"])
    );
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn start_and_idle_shutdown_are_server_changes() {
    let old = config(BASE);
    let new = config(&BASE.replace(
        "[servers.b]\n",
        "[lifecycle]\nidle_shutdown = \"10m\"\n[servers.b]\nstart = \"lazy\"\n",
    ));
    let d = diff(&old, &new);
    assert_eq!(d.servers_changed["a"], ["idle_shutdown"]);
    assert_eq!(d.servers_changed["b"], ["start", "idle_shutdown"]);
}

#[tokio::test]
async fn a_changed_server_lists_its_predecessors_tools_until_it_lists_its_own() {
    let gw = seeded_gateway(BASE, &[("a", &["one", "two"]), ("b", &["three"])]);
    let before = gw.state();
    let text = BASE.replace("args = [\"--x\"]", "args = [\"--y\"]");
    let d = gw.apply(config(&text)).await.unwrap();
    assert!(d.servers_changed.contains_key("b"), "{d:?}");
    let after = gw.state();
    assert!(!Arc::ptr_eq(&before.servers["b"], &after.servers["b"]));
    // The replacement cannot start (no such program), yet its tool stays known (stale), so a
    // call gets "unavailable, retrying" instead of "unknown tool".
    let catalog = after.servers["b"].default_lane().catalog();
    assert!(catalog.stale);
    let names: Vec<_> = catalog.tools.iter().map(|t| t["name"].clone()).collect();
    assert_eq!(names, [json!("three")]);
    let view = gw.endpoint("other").unwrap().view(&ClientCaps::none());
    assert_eq!(view.tools.len(), 1);
    gw.shutdown().await;
}
