use std::time::Duration;

use gantry_config::HealthConfig;
use gantry_core::RpcError;
use gantry_core::protocol::code;

use super::*;

const S: Duration = Duration::from_secs(1);

fn breaker() -> Breaker {
    // 3 failures within 10 s open it for 5 s.
    Breaker::new(3, 10 * S, 5 * S)
}

#[tokio::test(start_paused = true)]
async fn the_circuit_opens_after_consecutive_failures_within_the_window() {
    let b = breaker();
    assert_eq!(b.allow(), Ok(false));
    assert!(!b.failure("timeout 1"));
    assert!(!b.failure("timeout 2"));
    assert_eq!(b.view().state, CircuitState::Closed);
    assert_eq!(b.view().failures, 2);
    assert!(b.failure("timeout 3"), "the third failure opens it");
    let refused = b.allow().unwrap_err();
    assert_eq!(refused.failures, 3);
    assert_eq!(refused.last_error, "timeout 3");
    assert_eq!(refused.retry_in, 5 * S);
    tokio::time::advance(2 * S).await;
    assert_eq!(b.allow().unwrap_err().retry_in, 3 * S);
    let v = b.view();
    assert_eq!(v.state, CircuitState::Open);
    assert_eq!(v.retry_in, Some(3 * S));
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_count_and_old_failures_fall_out_of_the_window() {
    let b = breaker();
    b.failure("a");
    b.failure("b");
    b.success();
    b.failure("c");
    b.failure("d");
    assert_eq!(
        b.view().state,
        CircuitState::Closed,
        "the success reset the count"
    );
    tokio::time::advance(11 * S).await;
    assert!(!b.failure("e"), "the earlier two are outside the window");
    assert_eq!(b.view().failures, 1);
}

#[tokio::test(start_paused = true)]
async fn after_the_cool_down_one_probe_decides() {
    let b = breaker();
    for _ in 0..3 {
        b.failure("timeout");
    }
    tokio::time::advance(5 * S).await;
    assert_eq!(b.allow(), Ok(true), "the first caller is the probe");
    assert_eq!(b.view().state, CircuitState::HalfOpen);
    assert!(b.allow().is_err(), "others still fail fast while it runs");
    // The probe fails: open for another cool-down.
    assert!(b.failure("still down"));
    let r = b.allow().unwrap_err();
    assert_eq!(r.retry_in, 5 * S);
    assert_eq!(r.last_error, "still down");
    tokio::time::advance(5 * S).await;
    assert_eq!(b.allow(), Ok(true));
    // The probe succeeds: closed, everything goes through.
    assert!(b.success());
    assert_eq!(b.allow(), Ok(false));
    assert_eq!(b.view().state, CircuitState::Closed);
    assert_eq!(b.view().failures, 0);
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_never_reports_lets_another_through_after_a_cool_down() {
    let b = breaker();
    for _ in 0..3 {
        b.failure("timeout");
    }
    tokio::time::advance(5 * S).await;
    assert_eq!(b.allow(), Ok(true));
    tokio::time::advance(4 * S).await;
    assert!(b.allow().is_err());
    tokio::time::advance(S).await;
    assert_eq!(b.allow(), Ok(true), "the lost probe is replaced");
}

#[tokio::test(start_paused = true)]
async fn a_threshold_of_zero_never_opens() {
    let b = Breaker::new(0, 10 * S, 5 * S);
    for _ in 0..100 {
        assert!(!b.failure("x"));
    }
    assert_eq!(b.allow(), Ok(false));
}

#[tokio::test(start_paused = true)]
async fn only_transport_failures_count_and_the_refusal_says_why_and_when() {
    let cfg = HealthConfig {
        circuit_failures: 2,
        circuit_cooldown: 30 * S,
        ..HealthConfig::default()
    };
    let h = ServerHealth::new("slow".into(), cfg, false);
    let answered: Result<(), RpcError> = Err(RpcError::invalid_params("bad arguments"));
    for _ in 0..10 {
        h.record(&answered);
    }
    assert!(h.admit().is_ok(), "errors the server answers do not count");
    let timeout: Result<(), RpcError> = Err(RpcError::new(
        code::UPSTREAM_TIMEOUT,
        "server slow did not answer tools/call within 1s; the request was cancelled",
    ));
    h.record(&timeout);
    h.record(&timeout);
    let e = h.admit().unwrap_err();
    assert_eq!(e.code, code::UPSTREAM_UNAVAILABLE);
    assert_eq!(
        e.message,
        "server slow is unavailable: circuit open after 2 consecutive failures (last: server slow \
         did not answer tools/call within 1s; the request was cancelled); retrying in 30 s"
    );
    let data = e.data.unwrap();
    assert_eq!(data["circuit"], "open");
    assert_eq!(data["retryAfterMs"], 30_000);
}

fn inputs() -> Inputs {
    Inputs {
        conn: Conn::Ready { closed: false },
        circuit: CircuitView {
            state: CircuitState::Closed,
            failures: 0,
            retry_in: None,
            last_error: None,
        },
        check_failures: 0,
        unhealthy_after: 3,
        last_check_error: None,
        last_latency: Some(Duration::from_millis(3)),
        slow: 2 * S,
        crash_loop: None,
        stale: false,
    }
}

#[test]
fn a_connected_server_answering_quickly_is_healthy() {
    assert_eq!(assess(&inputs()), (HealthStatus::Healthy, vec![]));
}

#[test]
fn degraded_and_unhealthy_say_why_worst_first() {
    let (status, reasons) = assess(&Inputs {
        conn: Conn::Down {
            error: "cannot start `nope`: No such file or directory".into(),
        },
        stale: true,
        ..inputs()
    });
    assert_eq!(status, HealthStatus::Unhealthy);
    assert_eq!(
        reasons,
        vec![
            "down: cannot start `nope`: No such file or directory".to_owned(),
            "listing the last known catalog from an earlier run (stale)".to_owned(),
        ]
    );

    let starting = assess(&Inputs {
        conn: Conn::Starting,
        ..inputs()
    });
    assert_eq!(starting.0, HealthStatus::Degraded);
    assert_eq!(
        starting.1,
        vec!["starting: the first connection attempt is under way"]
    );

    let slow = assess(&Inputs {
        last_latency: Some(Duration::from_millis(2500)),
        ..inputs()
    });
    assert_eq!(slow.0, HealthStatus::Degraded);
    assert_eq!(
        slow.1,
        vec!["slow: the last health check took 2500 ms (over 2000 ms)"]
    );

    let one_failed = Inputs {
        check_failures: 1,
        last_check_error: Some("no answer".into()),
        ..inputs()
    };
    assert_eq!(assess(&one_failed).0, HealthStatus::Degraded);
    let three_failed = Inputs {
        check_failures: 3,
        ..one_failed
    };
    assert_eq!(
        assess(&three_failed),
        (
            HealthStatus::Unhealthy,
            vec!["3 consecutive health checks failed (last: no answer)".to_owned()]
        )
    );

    let recent = assess(&Inputs {
        circuit: CircuitView {
            state: CircuitState::Closed,
            failures: 1,
            retry_in: None,
            last_error: Some("timed out".into()),
        },
        ..inputs()
    });
    assert_eq!(
        recent,
        (
            HealthStatus::Degraded,
            vec!["1 recent failure (last: timed out)".to_owned()]
        )
    );

    let open = assess(&Inputs {
        circuit: CircuitView {
            state: CircuitState::Open,
            failures: 5,
            retry_in: Some(Duration::from_millis(12_300)),
            last_error: Some("timed out".into()),
        },
        ..inputs()
    });
    assert_eq!(
        open,
        (
            HealthStatus::Unhealthy,
            vec![
                "circuit open after 5 consecutive failures (last: timed out); retrying in 13 s"
                    .to_owned()
            ]
        )
    );

    let looping = assess(&Inputs {
        conn: Conn::Ready { closed: true },
        crash_loop: Some((5, 60 * S)),
        ..inputs()
    });
    assert_eq!(looping.0, HealthStatus::Unhealthy);
    assert_eq!(
        looping.1,
        vec![
            "crash loop: 5 restarts in 60 s".to_owned(),
            "reconnecting: the connection just closed".to_owned(),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn restarts_in_quick_succession_are_a_crash_loop_until_a_connection_stays_up() {
    let cfg = HealthConfig {
        crash_loop_restarts: 3,
        crash_loop_window: 60 * S,
        ..HealthConfig::default()
    };
    let h = ServerHealth::new("flaky".into(), cfg, true);
    h.connected();
    assert!(h.restarting(S).is_none());
    tokio::time::advance(S).await;
    h.connected();
    assert!(h.restarting(2 * S).is_none());
    tokio::time::advance(2 * S).await;
    assert_eq!(h.restarting(4 * S), Some((3, 60 * S)));
    // Slower restarts keep it a crash loop: it ends only with a stable connection.
    tokio::time::advance(120 * S).await;
    assert_eq!(h.restarting(30 * S).map(|c| c.0), Some(3));
    h.connected();
    tokio::time::advance(61 * S).await;
    assert_eq!(h.record.lock().unwrap().restarts, 4);
}
