use std::path::Path;
use std::time::Duration;

use super::*;

fn gateway_without_servers(extra: &str) -> Arc<Gateway> {
    let text = format!("session_idle_timeout = 60\n{extra}");
    let config = gantry_config::from_toml_str(Path::new("t.toml"), &text, &|_| None).unwrap();
    Gateway::start(config)
}

#[tokio::test(start_paused = true)]
async fn idle_sessions_are_dropped_but_busy_or_streaming_ones_are_kept() {
    let gw = gateway_without_servers("");
    let ep = gw.endpoint("default").unwrap().clone();
    let idle = gw.open_session(&ep);
    let streaming = gw.open_session(&ep);
    let (tx, _rx) = mpsc::channel(1);
    streaming.set_outbox(Some(tx));
    let recent = gw.open_session(&ep);

    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(gw.reap_idle_sessions(), 0);
    assert!(
        gw.session(recent.id()).is_some(),
        "a lookup counts as activity"
    );

    tokio::time::advance(Duration::from_secs(2)).await;
    // The background reaper may already have run during the advance.
    gw.reap_idle_sessions();
    assert!(gw.sessions.read().unwrap().get(idle.id()).is_none());
    assert!(gw.session(streaming.id()).is_some());
    assert!(gw.session(recent.id()).is_some());
}

/// A sink that records what it is handed.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<(String, upstream::Trigger, Catalog)>>);

impl CatalogSink for Recorder {
    fn synced(&self, server: &str, trigger: upstream::Trigger, catalog: &Catalog) {
        self.0
            .lock()
            .unwrap()
            .push((server.to_owned(), trigger, catalog.clone()));
    }
}

#[tokio::test]
async fn a_server_that_cannot_start_lists_its_last_known_catalog_as_stale() {
    let text = "[servers.ghost]\ncommand = \"/nonexistent/gantry-test-server\"\n\
                [servers.gone]\ncommand = \"/nonexistent/too\"\n";
    let mut config = gantry_config::from_toml_str(Path::new("t.toml"), text, &|_| None).unwrap();
    config.servers.remove("gone");
    config
        .endpoints
        .get_mut("default")
        .unwrap()
        .servers
        .retain(|s| s == "ghost");
    let tool = |n: &str| serde_json::json!({"name": n, "inputSchema": {"type": "object"}});
    let seed = Catalog {
        tools: vec![tool("lookup")],
        ..Catalog::default()
    };
    let recorder = Arc::new(Recorder::default());
    let cache = CatalogCache {
        seeds: [
            ("ghost".to_owned(), seed),
            (
                "removed-from-config".to_owned(),
                Catalog {
                    tools: vec![tool("old")],
                    ..Catalog::default()
                },
            ),
        ]
        .into(),
        sink: Some(recorder.clone()),
    };
    let gw = Gateway::start_with_catalog(config, cache);
    gw.settle().await;
    let view = gw
        .endpoint("default")
        .unwrap()
        .view(&upstream::ClientCaps::none());
    let names: Vec<&str> = view
        .tools
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["ghost__lookup"],
        "servers not configured are not served"
    );
    let states = gw.catalog_states();
    assert_eq!(states.len(), 1);
    assert!(states[0].stale);
    assert!(
        states[0].status.starts_with("down: "),
        "{}",
        states[0].status
    );
    let Err(err) = gw.servers()["ghost"].default_lane().peer() else {
        panic!("the server connected");
    };
    assert!(
        err.message.contains("server ghost is unavailable"),
        "{}",
        err.message
    );
    assert!(
        recorder.0.lock().unwrap().is_empty(),
        "nothing was read, nothing is persisted"
    );
    gw.shutdown().await;
}
