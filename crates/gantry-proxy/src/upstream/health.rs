//! A server's health: periodic checks, the circuit breaker, crash-loop detection, and the
//! status derived from them (healthy / degraded / unhealthy, with reasons).
//!
//! - **Checks** run in the server's own background task every `interval`, on its default
//!   lane only (other lanes are never touched, so a check never keeps an idle lane alive),
//!   never on a client's request path. A legacy server gets `ping`; one that answers
//!   `ping` with "method not found" gets `tools/list` from then on; a 2026-07-28 server,
//!   which has no `ping`, gets `server/discover`. Any answer counts as alive, a JSON-RPC
//!   error included; a timeout or a broken connection is a failed check.
//! - **The circuit breaker** counts transport failures of calls and checks (timeouts,
//!   broken connections — not errors the server answers on purpose). After
//!   `circuit_failures` consecutive ones within `circuit_window` it opens: calls fail at once
//!   without touching the server. After `circuit_cooldown` one caller (the next check or the
//!   next call) is let through as the half-open probe: its success closes the circuit, its
//!   failure opens it for another cool-down. A successful (re)connect also closes it. The
//!   call path costs one atomic load while the circuit is closed.
//! - **Restarts**: every reconnect after a lost or failed connection counts. For a stdio
//!   server (a child process) at least
//!   `crash_loop_restarts` within `crash_loop_window` is a crash loop: logged with the count
//!   and the next delay, and the server is unhealthy until a connection stays up for a whole
//!   window. This is the status only: the supervisor's backoff and its own "crash-looping"
//!   report (`server.rs`: failures in a row, reset by a connection that lasted 10 s) are
//!   counted there, so a server that dies right after each start backs off up to the ceiling.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use gantry_config::HealthConfig;
use gantry_core::RpcError;
use gantry_core::protocol::{code, method};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::group::ServerGroup;
use super::server::{Status, UpstreamServer};

/// A server's overall status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum HealthStatus {
    /// Connected, answering, nothing to report.
    Healthy,
    /// Not running on purpose (`start = "lazy"` and not started yet, or stopped by
    /// `idle_shutdown`); it starts on the next request. Neither a failure nor a crash.
    Idle,
    /// Serving, with something to watch: starting, reconnecting, slow, recent failures,
    /// a half-open circuit.
    Degraded,
    /// Not serving: down, circuit open, repeated failed checks, crash loop.
    Unhealthy,
}

impl HealthStatus {
    /// `healthy`, `idle`, `degraded` or `unhealthy`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Idle => "idle",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// Where a circuit breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls go through.
    Closed,
    /// Calls fail fast until the cool-down ends.
    Open,
    /// One probe is (or may be) under way.
    HalfOpen,
}

impl CircuitState {
    /// `closed`, `open` or `half-open`.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half-open",
        }
    }
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// A circuit breaker over consecutive transport failures. Lock-free on the call path.
pub struct Breaker {
    threshold: u32,
    window_ms: u64,
    cooldown_ms: u64,
    epoch: Instant,
    state: AtomicU8,
    failures: AtomicU32,
    first_failure_ms: AtomicU64,
    /// While open or half-open: when the next probe may go (ms since `epoch`).
    retry_at_ms: AtomicU64,
    /// The failures that opened it.
    opened_after: AtomicU32,
    last_error: Mutex<String>,
}

/// Why a call was refused by an open circuit.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    /// Consecutive failures that opened the circuit.
    pub failures: u32,
    /// The last of them.
    pub last_error: String,
    /// When the next probe may go.
    pub retry_in: Duration,
}

/// A snapshot of a breaker.
#[derive(Clone, Debug, PartialEq)]
pub struct CircuitView {
    /// Its state.
    pub state: CircuitState,
    /// Consecutive failures so far (while closed), or those that opened it.
    pub failures: u32,
    /// Until the next probe may go (open only).
    pub retry_in: Option<Duration>,
    /// The last failure.
    pub last_error: Option<String>,
}

impl Breaker {
    /// A closed breaker; `threshold` 0 never opens.
    pub fn new(threshold: u32, window: Duration, cooldown: Duration) -> Breaker {
        Breaker {
            threshold,
            window_ms: window.as_millis() as u64,
            cooldown_ms: (cooldown.as_millis() as u64).max(1),
            epoch: Instant::now(),
            state: AtomicU8::new(CLOSED),
            failures: AtomicU32::new(0),
            first_failure_ms: AtomicU64::new(0),
            retry_at_ms: AtomicU64::new(0),
            opened_after: AtomicU32::new(0),
            last_error: Mutex::new(String::new()),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// May a request go? `Ok(false)`: the circuit is closed; `Ok(true)`: this request is
    /// the half-open probe; `Err`: the circuit is open.
    pub fn allow(&self) -> Result<bool, Refusal> {
        if self.state.load(Ordering::Acquire) == CLOSED {
            return Ok(false);
        }
        let now = self.now_ms();
        let at = self.retry_at_ms.load(Ordering::Acquire);
        if now >= at
            && self
                .retry_at_ms
                .compare_exchange(
                    at,
                    now + self.cooldown_ms,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        {
            // One caller wins the probe; a probe that never reports (its caller went away)
            // lets another through after one more cool-down.
            if self
                .state
                .compare_exchange(OPEN, HALF_OPEN, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                tracing::info!("circuit half-open: letting one request through as a probe");
            }
            return Ok(true);
        }
        if self.state.load(Ordering::Acquire) == CLOSED {
            return Ok(false);
        }
        Err(Refusal {
            failures: self.opened_after.load(Ordering::Relaxed),
            last_error: self.last_error.lock().expect("breaker lock").clone(),
            retry_in: Duration::from_millis(
                self.retry_at_ms.load(Ordering::Acquire).saturating_sub(now),
            ),
        })
    }

    /// The server answered.
    pub fn success(&self) -> bool {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        if self.state.load(Ordering::Acquire) != CLOSED {
            self.state.store(CLOSED, Ordering::Release);
            return true;
        }
        false
    }

    /// A transport failure; returns whether it opened the circuit.
    pub fn failure(&self, error: &str) -> bool {
        *self.last_error.lock().expect("breaker lock") = error.to_owned();
        if self.threshold == 0 {
            return false;
        }
        let now = self.now_ms();
        match self.state.load(Ordering::Acquire) {
            HALF_OPEN => {
                self.retry_at_ms
                    .store(now + self.cooldown_ms, Ordering::Release);
                self.state.store(OPEN, Ordering::Release);
                true
            }
            OPEN => false,
            _ => {
                let first = self.first_failure_ms.load(Ordering::Relaxed);
                let n = if self.failures.load(Ordering::Relaxed) == 0
                    || now.saturating_sub(first) > self.window_ms
                {
                    self.first_failure_ms.store(now, Ordering::Relaxed);
                    self.failures.store(1, Ordering::Relaxed);
                    1
                } else {
                    self.failures.fetch_add(1, Ordering::AcqRel) + 1
                };
                if n >= self.threshold {
                    self.opened_after.store(n, Ordering::Relaxed);
                    self.retry_at_ms
                        .store(now + self.cooldown_ms, Ordering::Release);
                    self.state.store(OPEN, Ordering::Release);
                    self.failures.store(0, Ordering::Relaxed);
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Where it stands.
    pub fn view(&self) -> CircuitView {
        let last = self.last_error.lock().expect("breaker lock").clone();
        let last_error = (!last.is_empty()).then_some(last);
        match self.state.load(Ordering::Acquire) {
            CLOSED => CircuitView {
                state: CircuitState::Closed,
                failures: self.failures.load(Ordering::Relaxed),
                retry_in: None,
                last_error,
            },
            s => CircuitView {
                state: if s == OPEN {
                    CircuitState::Open
                } else {
                    CircuitState::HalfOpen
                },
                failures: self.opened_after.load(Ordering::Relaxed),
                retry_in: (s == OPEN).then(|| {
                    Duration::from_millis(
                        self.retry_at_ms
                            .load(Ordering::Acquire)
                            .saturating_sub(self.now_ms()),
                    )
                }),
                last_error,
            },
        }
    }
}

/// Whether an error means the server did not answer (a timeout or a broken connection), as
/// opposed to an error it answered on purpose.
pub fn is_transport_failure(e: &RpcError) -> bool {
    matches!(e.code, code::UPSTREAM_TIMEOUT | code::UPSTREAM_CLOSED)
}

/// Milliseconds since the Unix epoch, for reports.
fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Default)]
struct Record {
    last_check_ms: Option<u64>,
    last_latency: Option<Duration>,
    check_failures: u32,
    last_error: Option<(String, u64)>,
    restarts: u64,
    recent_restarts: VecDeque<Instant>,
    crash_loop: Option<(u32, Duration)>,
    connected_at: Option<Instant>,
    ping_unsupported: bool,
}

/// One configured server's health, shared by its lanes.
pub struct ServerHealth {
    name: Arc<str>,
    /// A child process Gantry supervises: restarts can be a crash loop.
    stdio: bool,
    cfg: HealthConfig,
    breaker: Breaker,
    record: Mutex<Record>,
    stopped: AtomicBool,
    stop: Notify,
}

/// One server's health as reported on `/readyz`, the admin API and `gantry server list`.
#[derive(Clone, Debug)]
pub struct HealthReport {
    /// The server.
    pub server: String,
    /// The overall status.
    pub status: HealthStatus,
    /// Every reason for that status, worst first (empty when healthy).
    pub reasons: Vec<String>,
    /// The first connection attempt has settled.
    pub attempted: bool,
    /// The last error seen (connection, check or call) and when (ms since the Unix epoch).
    pub last_error: Option<(String, u64)>,
    /// When the last health check answered or failed (ms since the Unix epoch).
    pub last_check_ms: Option<u64>,
    /// How long the last successful check took.
    pub last_latency: Option<Duration>,
    /// Consecutive failed checks.
    pub check_failures: u32,
    /// Reconnects after a lost or failed connection.
    pub restarts: u64,
    /// The circuit breaker.
    pub circuit: CircuitView,
}

impl HealthReport {
    /// The main reason (the first of `reasons`).
    pub fn reason(&self) -> Option<&str> {
        self.reasons.first().map(String::as_str)
    }

    /// As JSON (`/readyz` uses a subset).
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.server,
            "status": self.status.as_str(),
            "reason": self.reason(),
            "reasons": self.reasons,
            "attempted": self.attempted,
            "last_error": self.last_error.as_ref().map(|e| &e.0),
            "last_error_at_ms": self.last_error.as_ref().map(|e| e.1),
            "last_check_at_ms": self.last_check_ms,
            "last_check_latency_ms": self.last_latency.map(|d| d.as_secs_f64() * 1000.0),
            "consecutive_check_failures": self.check_failures,
            "restarts": self.restarts,
            "circuit": {
                "state": self.circuit.state.as_str(),
                "failures": self.circuit.failures,
                "retry_in_ms": self.circuit.retry_in.map(|d| d.as_millis() as u64),
            },
        })
    }
}

/// The connection, as [`assess`] sees it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Conn {
    Idle { stopped_after: Option<Duration> },
    Starting,
    Ready { closed: bool },
    Down { error: String },
}

/// Everything the status is derived from.
#[derive(Clone, Debug)]
pub(crate) struct Inputs {
    pub(crate) conn: Conn,
    pub(crate) circuit: CircuitView,
    pub(crate) check_failures: u32,
    pub(crate) unhealthy_after: u32,
    pub(crate) last_check_error: Option<String>,
    pub(crate) last_latency: Option<Duration>,
    pub(crate) slow: Duration,
    pub(crate) crash_loop: Option<(u32, Duration)>,
    pub(crate) stale: bool,
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 || s.fract() == 0.0 {
        format!("{:.0} s", s.ceil())
    } else {
        format!("{s:.1} s")
    }
}

/// The status and its reasons, worst first.
pub(crate) fn assess(i: &Inputs) -> (HealthStatus, Vec<String>) {
    use HealthStatus::*;
    let mut found: Vec<(HealthStatus, String)> = Vec::new();
    let last = |e: &Option<String>| {
        e.as_deref()
            .map(|e| format!(" (last: {e})"))
            .unwrap_or_default()
    };
    if let Some((n, window)) = i.crash_loop {
        found.push((
            Unhealthy,
            format!("crash loop: {n} restarts in {}", secs(window)),
        ));
    }
    match &i.conn {
        Conn::Idle {
            stopped_after: None,
        } => found.push((
            Idle,
            format!(
                "idle: start = \"lazy\", not started yet; it starts on the first request{}",
                if i.stale {
                    " (listing its last known catalog)"
                } else {
                    ""
                }
            ),
        )),
        Conn::Idle {
            stopped_after: Some(d),
        } => found.push((
            Idle,
            format!(
                "idle: stopped after {} without a request (idle_shutdown); it starts on the next request",
                secs(*d)
            ),
        )),
        Conn::Down { error } => found.push((Unhealthy, format!("down: {error}"))),
        Conn::Starting => found.push((
            Degraded,
            "starting: the first connection attempt is under way".into(),
        )),
        Conn::Ready { closed: true } => {
            found.push((Degraded, "reconnecting: the connection just closed".into()))
        }
        Conn::Ready { closed: false } => {}
    }
    match i.circuit.state {
        CircuitState::Open => found.push((
            Unhealthy,
            format!(
                "circuit open after {} consecutive failures{}; retrying in {}",
                i.circuit.failures,
                last(&i.circuit.last_error),
                secs(i.circuit.retry_in.unwrap_or_default())
            ),
        )),
        CircuitState::HalfOpen => found.push((
            Degraded,
            "circuit half-open: a probe decides whether it closes".into(),
        )),
        CircuitState::Closed if i.circuit.failures > 0 => found.push((
            Degraded,
            format!(
                "{} recent failure{}{}",
                i.circuit.failures,
                if i.circuit.failures == 1 { "" } else { "s" },
                last(&i.circuit.last_error)
            ),
        )),
        CircuitState::Closed => {}
    }
    if i.check_failures > 0 && matches!(i.conn, Conn::Ready { .. }) {
        let severity = if i.check_failures >= i.unhealthy_after {
            Unhealthy
        } else {
            Degraded
        };
        found.push((
            severity,
            format!(
                "{} consecutive health check{} failed{}",
                i.check_failures,
                if i.check_failures == 1 { "" } else { "s" },
                last(&i.last_check_error)
            ),
        ));
    }
    if let Some(l) = i.last_latency
        && l > i.slow
        && i.check_failures == 0
    {
        found.push((
            Degraded,
            format!(
                "slow: the last health check took {} ms (over {} ms)",
                l.as_millis(),
                i.slow.as_millis()
            ),
        ));
    }
    if i.stale && !matches!(i.conn, Conn::Idle { .. }) {
        found.push((
            Degraded,
            "listing the last known catalog from an earlier run (stale)".into(),
        ));
    }
    // Stable: worst first, in the order found.
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    let status = found.first().map_or(Healthy, |f| f.0);
    (status, found.into_iter().map(|f| f.1).collect())
}

impl ServerHealth {
    /// A server's health, as `cfg` says to watch it; `stdio`: a child process, whose quick
    /// restarts are reported as a crash loop (an HTTP server being down is just down).
    pub fn new(name: Arc<str>, cfg: HealthConfig, stdio: bool) -> ServerHealth {
        ServerHealth {
            name,
            stdio,
            breaker: Breaker::new(
                cfg.circuit_failures,
                cfg.circuit_window,
                cfg.circuit_cooldown,
            ),
            cfg,
            record: Mutex::new(Record::default()),
            stopped: AtomicBool::new(false),
            stop: Notify::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &HealthConfig {
        &self.cfg
    }

    /// The circuit breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Refuses a request while the circuit is open, with an error that says why and when
    /// it retries. Cheap while closed (one atomic load).
    pub fn admit(&self) -> Result<(), RpcError> {
        match self.breaker.allow() {
            Ok(_) => Ok(()),
            Err(r) => Err(RpcError::new(
                code::UPSTREAM_UNAVAILABLE,
                format!(
                    "server {} is unavailable: circuit open after {} consecutive failures (last: {}); retrying in {}",
                    self.name,
                    r.failures,
                    r.last_error,
                    secs(r.retry_in)
                ),
            )
            .with_data(json!({
                "server": &*self.name,
                "circuit": "open",
                "retryAfterMs": r.retry_in.as_millis() as u64,
            }))),
        }
    }

    /// Records the outcome of a request the server was sent.
    pub fn record<T>(&self, outcome: &Result<T, RpcError>) {
        match outcome {
            Err(e) if is_transport_failure(e) => self.failed(&e.message),
            _ => self.succeeded(),
        }
    }

    fn succeeded(&self) {
        if self.breaker.success() {
            tracing::info!(server = %self.name, "circuit closed: the server answers again");
        }
    }

    fn failed(&self, error: &str) {
        self.note_error(error);
        if self.breaker.failure(error) {
            tracing::warn!(
                server = %self.name,
                error,
                cooldown = ?self.cfg.circuit_cooldown,
                "circuit open: calls to the server fail fast until a probe succeeds"
            );
        }
    }

    fn note_error(&self, error: &str) {
        self.record.lock().expect("health lock").last_error = Some((error.to_owned(), wall_ms()));
    }

    /// The default lane connected.
    pub(crate) fn connected(&self) {
        let mut r = self.record.lock().expect("health lock");
        r.connected_at = Some(Instant::now());
        r.check_failures = 0;
        drop(r);
        self.succeeded();
    }

    /// The default lane failed to connect, or lost its connection.
    pub(crate) fn lost(&self, error: &str) {
        let mut r = self.record.lock().expect("health lock");
        r.last_error = Some((error.to_owned(), wall_ms()));
        r.check_failures = 0;
        r.last_latency = None;
    }

    /// The default lane was stopped on purpose (`idle_shutdown`): what its checks and
    /// restarts said no longer applies.
    pub(crate) fn idled(&self) {
        let mut r = self.record.lock().expect("health lock");
        r.connected_at = None;
        r.check_failures = 0;
        r.last_latency = None;
        r.crash_loop = None;
        r.recent_restarts.clear();
    }

    /// The default lane restarts in `delay`; returns the crash loop, if it is in one.
    pub(crate) fn restarting(&self, delay: Duration) -> Option<(u32, Duration)> {
        let now = Instant::now();
        let mut r = self.record.lock().expect("health lock");
        r.restarts += 1;
        r.connected_at = None;
        r.recent_restarts.push_back(now);
        let window = self.cfg.crash_loop_window;
        while r
            .recent_restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            r.recent_restarts.pop_front();
        }
        let n = r.recent_restarts.len() as u32;
        if self.stdio && (n >= self.cfg.crash_loop_restarts || r.crash_loop.is_some()) {
            let n = n.max(r.crash_loop.map_or(0, |c| c.0));
            r.crash_loop = Some((n, window));
            let last = r
                .last_error
                .as_ref()
                .map(|e| e.0.clone())
                .unwrap_or_default();
            drop(r);
            tracing::warn!(
                server = %self.name,
                restarts = n,
                window = ?window,
                next_attempt_in = ?delay,
                last_error = %last,
                "crash loop: the server keeps failing; backing off"
            );
            return Some((n, window));
        }
        None
    }

    /// A health check's outcome.
    fn checked(&self, outcome: Result<Duration, String>) {
        let mut r = self.record.lock().expect("health lock");
        r.last_check_ms = Some(wall_ms());
        match outcome {
            Ok(latency) => {
                r.check_failures = 0;
                r.last_latency = Some(latency);
                drop(r);
                self.succeeded();
            }
            Err(error) => {
                r.check_failures += 1;
                let n = r.check_failures;
                drop(r);
                tracing::warn!(server = %self.name, failures = n, %error, "health check failed");
                self.failed(&error);
            }
        }
    }

    /// Stops the checks.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.stop.notify_waiters();
    }

    /// The report for the server whose default lane is `lane`.
    pub fn report(&self, lane: &UpstreamServer) -> HealthReport {
        let conn = match lane.status() {
            Status::Idle { stopped_after } => Conn::Idle { stopped_after },
            Status::Starting => Conn::Starting,
            Status::Ready { peer, .. } => Conn::Ready {
                closed: peer.is_closed(),
            },
            Status::Down { error } => Conn::Down { error },
        };
        let circuit = self.breaker.view();
        let mut r = self.record.lock().expect("health lock");
        // A connection that stayed up for a whole window ends a crash loop.
        if r.crash_loop.is_some()
            && matches!(conn, Conn::Ready { closed: false })
            && r.connected_at
                .is_some_and(|t| t.elapsed() >= self.cfg.crash_loop_window)
        {
            r.crash_loop = None;
            r.recent_restarts.clear();
        }
        let inputs = Inputs {
            conn,
            circuit: circuit.clone(),
            check_failures: r.check_failures,
            unhealthy_after: self.cfg.unhealthy_after,
            last_check_error: (r.check_failures > 0)
                .then(|| r.last_error.as_ref().map(|e| e.0.clone()))
                .flatten(),
            last_latency: r.last_latency,
            slow: self.cfg.slow,
            crash_loop: r.crash_loop,
            stale: lane.catalog().stale,
        };
        let (status, reasons) = assess(&inputs);
        HealthReport {
            server: self.name.to_string(),
            status,
            reasons,
            attempted: lane.attempted(),
            last_error: r.last_error.clone(),
            last_check_ms: r.last_check_ms,
            last_latency: r.last_latency,
            check_failures: r.check_failures,
            restarts: r.restarts,
            circuit,
        }
    }
}

/// Checks a server's default lane every `interval` until the group is stopped or dropped.
pub(crate) async fn run_checks(group: Weak<ServerGroup>, health: Arc<ServerHealth>) {
    let Some(interval) = health.cfg.interval else {
        return;
    };
    let first = match group.upgrade() {
        Some(g) => g.default_lane().clone(),
        None => return,
    };
    tokio::select! {
        () = first.first_attempt() => {}
        () = health.stop.notified() => return,
    }
    drop(first);
    loop {
        // An open circuit is probed as soon as its cool-down ends.
        let wait = match health.breaker.view().retry_in {
            Some(r) => interval.min(r + Duration::from_millis(1)),
            None => interval,
        };
        let stop = health.stop.notified();
        tokio::pin!(stop);
        stop.as_mut().enable();
        if health.stopped.load(Ordering::Acquire) {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop => return,
        }
        let Some(lane) = group.upgrade().map(|g| g.default_lane().clone()) else {
            return;
        };
        check_once(&lane, &health).await;
    }
}

/// One check of `lane` (the default lane): nothing when it is not connected (its status
/// says why) or while the circuit is open and not yet due for a probe.
pub(crate) async fn check_once(lane: &UpstreamServer, health: &ServerHealth) {
    let Status::Ready { peer, .. } = lane.status() else {
        return;
    };
    if peer.is_closed() || health.breaker.allow().is_err() {
        return;
    }
    let timeout = health.cfg.timeout;
    let started = Instant::now();
    let use_list = health.record.lock().expect("health lock").ping_unsupported;
    let first = if peer.is_modern() {
        method::DISCOVER
    } else if use_list {
        method::TOOLS_LIST
    } else {
        method::PING
    };
    let mut outcome = peer.request_with(first, None, None, timeout).await;
    if first == method::PING
        && let Err(e) = &outcome
        && e.code == code::METHOD_NOT_FOUND
    {
        tracing::info!(server = %lane.name(), "the server does not answer ping; health checks use tools/list");
        health.record.lock().expect("health lock").ping_unsupported = true;
        outcome = peer
            .request_with(method::TOOLS_LIST, None, None, timeout)
            .await;
    }
    let latency = started.elapsed();
    health.checked(match outcome {
        Err(e) if is_transport_failure(&e) => Err(e.message),
        _ => Ok(latency),
    });
}

static SPAWN_LIMIT: AtomicUsize = AtomicUsize::new(gantry_config::DEFAULT_MAX_CONCURRENT_SPAWNS);
static SPAWNS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();

/// Sets the cap on stdio servers started at once (`max_concurrent_spawns`); it takes effect
/// if no server has started yet in this process.
pub fn set_spawn_limit(n: usize) {
    SPAWN_LIMIT.store(n.max(1), Ordering::Relaxed);
}

/// Waits for a slot to start a stdio server; the slot is held while it starts.
pub(crate) async fn spawn_slot() -> tokio::sync::SemaphorePermit<'static> {
    let sem =
        SPAWNS.get_or_init(|| tokio::sync::Semaphore::new(SPAWN_LIMIT.load(Ordering::Relaxed)));
    if sem.available_permits() == 0 {
        tracing::debug!("max_concurrent_spawns reached: this server starts when another has");
    }
    sem.acquire()
        .await
        .expect("the spawn semaphore is never closed")
}

#[cfg(test)]
mod tests;
