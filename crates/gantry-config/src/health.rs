//! Health checks, circuit breakers, crash-loop detection and readiness (`[health]` and
//! `[servers.<name>.health]`).

use std::time::Duration;

/// Default `interval` between two health checks of a server.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(30);
/// Default `timeout` of one health check.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `slow`: a check answered later than this makes the server degraded.
pub const DEFAULT_HEALTH_SLOW: Duration = Duration::from_secs(2);
/// Default `unhealthy_after`: consecutive failed checks that make a server unhealthy.
pub const DEFAULT_UNHEALTHY_AFTER: u32 = 3;
/// Default `circuit_failures`: consecutive transport failures that open the circuit.
pub const DEFAULT_CIRCUIT_FAILURES: u32 = 5;
/// Default `circuit_window`: the failures must fall within this span.
pub const DEFAULT_CIRCUIT_WINDOW: Duration = Duration::from_secs(60);
/// Default `circuit_cooldown`: how long an open circuit refuses calls before a probe.
pub const DEFAULT_CIRCUIT_COOLDOWN: Duration = Duration::from_secs(30);
/// Default `crash_loop_restarts`: restarts within `crash_loop_window` that make a crash loop.
pub const DEFAULT_CRASH_LOOP_RESTARTS: u32 = 5;
/// Default `crash_loop_window`.
pub const DEFAULT_CRASH_LOOP_WINDOW: Duration = Duration::from_secs(60);
/// Default `max_concurrent_spawns`: stdio servers started at the same time.
pub const DEFAULT_MAX_CONCURRENT_SPAWNS: usize = 8;

/// How one server's health is watched (the `[health]` table, overridden per server by
/// `[servers.<name>.health]`).
#[derive(Clone, Debug, PartialEq)]
pub struct HealthConfig {
    /// Time between two checks of the server's default connection; `None` (`interval = 0`):
    /// no periodic checks (the status then follows the connection and the calls only).
    pub interval: Option<Duration>,
    /// How long one check may take before it counts as failed.
    pub timeout: Duration,
    /// A check answered later than this makes the server `degraded` (slow).
    pub slow: Duration,
    /// Consecutive failed checks that make the server `unhealthy` (fewer: `degraded`).
    pub unhealthy_after: u32,
    /// Consecutive transport failures (timeouts, broken connections; not errors the server
    /// answers on purpose) that open the circuit; 0 disables the circuit breaker.
    pub circuit_failures: u32,
    /// The failures must fall within this span (a failure after a longer gap starts a new
    /// count).
    pub circuit_window: Duration,
    /// How long an open circuit fails calls fast before one half-open probe.
    pub circuit_cooldown: Duration,
    /// Restarts (connection lost or failed) within `crash_loop_window` that count as a
    /// crash loop.
    pub crash_loop_restarts: u32,
    /// The span over which restarts are counted.
    pub crash_loop_window: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            interval: Some(DEFAULT_HEALTH_INTERVAL),
            timeout: DEFAULT_HEALTH_TIMEOUT,
            slow: DEFAULT_HEALTH_SLOW,
            unhealthy_after: DEFAULT_UNHEALTHY_AFTER,
            circuit_failures: DEFAULT_CIRCUIT_FAILURES,
            circuit_window: DEFAULT_CIRCUIT_WINDOW,
            circuit_cooldown: DEFAULT_CIRCUIT_COOLDOWN,
            crash_loop_restarts: DEFAULT_CRASH_LOOP_RESTARTS,
            crash_loop_window: DEFAULT_CRASH_LOOP_WINDOW,
        }
    }
}

/// When `/readyz` answers 200 (`[health] readyz = ...`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadyRule {
    /// `"attempted"`: once every configured server's first connection attempt has settled
    /// (connected or failed). Unhealthy servers are listed but do not make Gantry unready:
    /// endpoints serve the others.
    #[default]
    Attempted,
    /// `"require_all"`: only while no server is unhealthy (healthy or degraded).
    RequireAll,
}

impl ReadyRule {
    /// The rule's name in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadyRule::Attempted => "attempted",
            ReadyRule::RequireAll => "require_all",
        }
    }
}

/// The gateway-wide part of `[health]`.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthSettings {
    /// When `/readyz` says ready.
    pub readyz: ReadyRule,
    /// Most stdio servers being started (spawned and initialized) at once; the others wait.
    pub max_concurrent_spawns: usize,
    /// The defaults every server starts from (its `[servers.<name>.health]` overrides them).
    pub defaults: HealthConfig,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            readyz: ReadyRule::Attempted,
            max_concurrent_spawns: DEFAULT_MAX_CONCURRENT_SPAWNS,
            defaults: HealthConfig::default(),
        }
    }
}
