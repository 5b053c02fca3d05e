//! Lazy start and idle shutdown: the supervisor's state transitions.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{ClientCaps, HealthStatus, Status};
use crate::Gateway;

fn gateway(text: &str) -> Arc<Gateway> {
    let config = gantry_config::from_toml_str(Path::new("t.toml"), text, &|_| None).unwrap();
    Gateway::start(config)
}

fn idle_after(s: &Status) -> Option<Option<Duration>> {
    match s {
        Status::Idle { stopped_after } => Some(*stopped_after),
        _ => None,
    }
}

/// A lazy server is not started by time passing or by health checks, is ready for
/// `/readyz`, starts on a request; once nobody asks for it (here: it cannot start at all) it
/// goes idle after `idle_shutdown` instead of retrying forever, and only the next request
/// starts it again.
#[tokio::test(start_paused = true)]
async fn a_lazy_server_waits_for_a_request_and_a_failing_one_goes_idle_when_unused() {
    let gw = gateway(
        "[health]\ninterval = 1\n\
         [servers.ghost]\ncommand = \"/nonexistent/gantry-lazy-test\"\n\
         start = \"lazy\"\nidle_shutdown = \"2s\"\n",
    );
    let group = gw.servers()["ghost"].clone();
    let lane = group.default_lane().clone();
    assert_eq!(idle_after(&lane.status()), Some(None));
    let report = group.health_report();
    assert_eq!(report.status, HealthStatus::Idle);
    assert!(
        report
            .reason()
            .unwrap()
            .starts_with("idle: start = \"lazy\"")
    );
    assert!(gw.readiness().ready, "{:?}", gw.readiness().why);

    // A minute of health checks (every second) and reaping: nothing starts it.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(idle_after(&lane.status()), Some(None));
    assert!(!lane.attempted());
    let report = group.health_report();
    assert_eq!((report.restarts, report.last_check_ms), (0, None));

    // The first request starts it and waits for the attempt.
    let Err(err) = lane.ready_peer().await else {
        panic!("a nonexistent command connected");
    };
    assert!(
        err.message.contains("server ghost is unavailable"),
        "{}",
        err.message
    );
    assert!(lane.attempted());
    assert!(matches!(lane.status(), Status::Down { .. }));

    // Nobody asks again: after 2 s it stops retrying and is idle, not unhealthy.
    let asked = tokio::time::Instant::now();
    tokio::time::timeout(
        Duration::from_secs(10),
        lane.status_until(|s| idle_after(s).is_some()),
    )
    .await
    .expect("the server went idle");
    assert!(asked.elapsed() >= Duration::from_secs(2));
    assert_eq!(
        idle_after(&lane.status()),
        Some(Some(Duration::from_secs(2)))
    );
    let report = group.health_report();
    assert_eq!(report.status, HealthStatus::Idle, "{:?}", report.reasons);
    assert!(
        report.reasons[0].starts_with("idle: stopped after 2 s without a request"),
        "{:?}",
        report.reasons
    );
    let restarts = report.restarts;

    // Idle means idle: no restart loop, no backoff growing in the background.
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert!(lane.is_idle());
    assert_eq!(group.health_report().restarts, restarts);

    // The next request tries again at once (no backoff penalty).
    let before = tokio::time::Instant::now();
    assert!(lane.ready_peer().await.is_err());
    assert!(before.elapsed() < Duration::from_millis(100));
    assert_eq!(group.health_report().restarts, restarts + 1);
    gw.shutdown().await;
}

/// The stdio test server: answers initialize, tools/list, tools/call (with its pid; the tool
/// `slow` after a second) and any other request, and logs its start and its stop (stdin closed) to the file `$1`.
const SERVER: &str = r#"log="$1"
echo "start $$" >> "$log"
while IFS= read -r line; do
  id=$(printf '%s\n' "$line" | sed -n 's/.*"id":\([0-9][0-9]*\).*/\1/p')
  case "$line" in
    *'"method":"initialize"'*) printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"sh","version":"1"}}}\n' "$id" ;;
    *'"method":"tools/list"'*) printf '{"jsonrpc":"2.0","id":%s,"result":{"tools":[{"name":"pid","inputSchema":{"type":"object"}}]}}\n' "$id" ;;
    *'"name":"slow"'*) sleep 1; printf '{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"slow"}]}}\n' "$id" ;;
    *'"method":"tools/call"'*) printf '{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"%s"}]}}\n' "$id" "$$" ;;
    *'"id":'*) printf '{"jsonrpc":"2.0","id":%s,"result":{}}\n' "$id" ;;
  esac
done
echo "stop $$" >> "$log"
"#;

fn log_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits (at most 10 s) until the log has `n` lines.
async fn log_has(path: &Path, n: usize) -> Vec<String> {
    let wait = async {
        loop {
            let lines = log_lines(path);
            if lines.len() >= n {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("the log never had {n} lines: {:?}", log_lines(path)))
}

fn sh_server(dir_name: &str) -> (std::path::PathBuf, std::path::PathBuf, Arc<Gateway>) {
    let dir = std::env::temp_dir().join(format!("gantry-{dir_name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("server.sh");
    let log = dir.join("log");
    std::fs::write(&script, SERVER).unwrap();
    let _ = std::fs::remove_file(&log);
    let gw = gateway(&format!(
        "[health]\ninterval = 0\n\
         [servers.lazy]\ncommand = \"sh\"\nargs = [{:?}, {:?}]\nprotocol = \"legacy\"\n\
         start = \"lazy\"\nidle_shutdown = \"300ms\"\n",
        script.display().to_string(),
        log.display().to_string()
    ));
    (dir, log, gw)
}

/// A call in flight longer than `idle_shutdown` keeps the server up; the idle time counts
/// from the call's end.
#[tokio::test]
async fn a_call_in_flight_postpones_the_idle_shutdown() {
    let (dir, log, gw) = sh_server("lazy-busy");
    let lane = gw.servers()["lazy"].default_lane().clone();
    let (peer, _) = lane
        .ready_peer()
        .await
        .expect("started on the first request");
    let went_idle = tokio::spawn({
        let lane = lane.clone();
        async move {
            lane.status_until(|s| idle_after(s).is_some()).await;
            tokio::time::Instant::now()
        }
    });
    // The call is in flight (the peer counts it) for a second; as the router does, its end
    // is noted as a request.
    let answer = peer
        .request("tools/call", Some(json!({"name": "slow"}).into()), None)
        .await
        .expect("the slow call answered");
    lane.note_request();
    let ended = tokio::time::Instant::now();
    assert_eq!(answer["content"][0]["text"], "slow");
    assert!(!went_idle.is_finished(), "stopped during the call");
    let idle_at = tokio::time::timeout(Duration::from_secs(10), went_idle)
        .await
        .expect("it went idle after the call")
        .unwrap();
    assert!(idle_at >= ended + Duration::from_millis(300));
    assert_eq!(
        log_has(&log, 2).await.len(),
        2,
        "started once, stopped once"
    );
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A real process: a lazy server with no known catalog is started by a list, answers, is
/// stopped cleanly after `idle_shutdown` (stdin closed, it exits) while its tools stay
/// listed, and the next call starts a new process.
#[tokio::test]
async fn an_idle_server_stops_cleanly_keeps_its_catalog_and_starts_again_on_the_next_call() {
    let (dir, log, gw) = sh_server("lazy");
    let group = gw.servers()["lazy"].clone();
    let lane = group.default_lane().clone();
    assert!(lane.is_idle());
    assert!(log_lines(&log).is_empty(), "no process before it is needed");

    // Its catalog is unknown: a list starts it.
    group.wake_unknown(&ClientCaps::none());
    tokio::time::timeout(Duration::from_secs(10), lane.first_attempt())
        .await
        .expect("it started");
    assert_eq!(log_lines(&log).len(), 1);
    let view = gw.endpoint("default").unwrap().view(&ClientCaps::none());
    assert_eq!(view.tools[0]["name"], "lazy__pid");

    let call = || async {
        let (peer, _) = lane.ready_peer().await.expect("connected");
        let result = peer
            .request("tools/call", Some(json!({"name": "pid"}).into()), None)
            .await
            .expect("answered");
        lane.note_request();
        (
            peer,
            result["content"][0]["text"].as_str().unwrap().to_owned(),
        )
    };
    let (first, pid1) = call().await;
    assert_eq!(log_lines(&log), [format!("start {pid1}")]);

    // No request for 300 ms: stopped on purpose, its stdin closed, so it exits by itself.
    tokio::time::timeout(
        Duration::from_secs(10),
        lane.status_until(|s| idle_after(s) == Some(Some(Duration::from_millis(300)))),
    )
    .await
    .expect("it went idle");
    assert_eq!(
        log_has(&log, 2).await,
        [format!("start {pid1}"), format!("stop {pid1}")]
    );
    assert!(first.is_closed());
    let report = group.health_report();
    assert_eq!(report.status, HealthStatus::Idle, "{:?}", report.reasons);
    assert_eq!(report.restarts, 0, "an idle stop is not a restart");
    let view = gw.endpoint("default").unwrap().view(&ClientCaps::none());
    assert_eq!(view.tools[0]["name"], "lazy__pid", "still listed");
    assert!(!lane.catalog().stale);
    assert!(
        !group.default_lane().wake_if_unknown(),
        "a list does not start it again: its catalog is known"
    );

    // The next call starts a new process and goes through.
    let (_, pid2) = call().await;
    assert_ne!(pid1, pid2);
    assert_eq!(log_lines(&log)[2], format!("start {pid2}"));
    assert!(matches!(lane.status(), Status::Ready { .. }));
    gw.shutdown().await;
    assert_eq!(log_has(&log, 4).await[3], format!("stop {pid2}"));
    let _ = std::fs::remove_dir_all(&dir);
}
