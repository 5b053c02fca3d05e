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
