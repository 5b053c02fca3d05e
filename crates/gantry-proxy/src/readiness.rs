//! `/readyz`: whether the gateway can serve, with every server's health.
//!
//! Ready (200) under `[health] readyz = "attempted"` (the default) once every configured
//! server's first connection attempt has settled, connected or not (a lazy server that was
//! never needed is `idle` and is not waited for): endpoints then serve
//! every server that is up, and one that is down is listed as unhealthy with its reason
//! without making the gateway unready (a dead server must not take the others out of a load
//! balancer). Under `readyz = "require_all"` it is ready only while no server is unhealthy.
//! Otherwise 503 with the same body and `why`. `/healthz` stays a plain liveness probe.

use gantry_config::ReadyRule;
use serde_json::{Value, json};

use crate::Gateway;
use crate::upstream::{HealthReport, HealthStatus};

/// The gateway's readiness.
#[derive(Clone, Debug)]
pub struct Readiness {
    /// Whether `/readyz` answers 200.
    pub ready: bool,
    /// The rule applied.
    pub rule: ReadyRule,
    /// Why not, when not.
    pub why: Option<String>,
    /// Every server's health, in name order.
    pub servers: Vec<HealthReport>,
}

impl Readiness {
    /// The `/readyz` body: each server's name, status, reason and whether it was attempted
    /// (details such as the last error are for the admin API).
    pub fn to_json(&self) -> Value {
        let count = |s: HealthStatus| self.servers.iter().filter(|r| r.status == s).count();
        json!({
            "ready": self.ready,
            "rule": self.rule.as_str(),
            "why": self.why,
            "summary": {
                "healthy": count(HealthStatus::Healthy),
                "idle": count(HealthStatus::Idle),
                "degraded": count(HealthStatus::Degraded),
                "unhealthy": count(HealthStatus::Unhealthy),
            },
            "servers": self.servers.iter().map(|r| json!({
                "name": r.server,
                "status": r.status.as_str(),
                "reason": r.reason(),
                "attempted": r.attempted,
                "circuit": r.circuit.state.as_str(),
            })).collect::<Vec<_>>(),
        })
    }
}

impl Gateway {
    /// Every server's health, in name order.
    pub fn health_reports(&self) -> Vec<HealthReport> {
        self.servers().values().map(|g| g.health_report()).collect()
    }

    /// Whether the gateway is ready, by the config's `[health] readyz` rule.
    pub fn readiness(&self) -> Readiness {
        let rule = self.config().health.readyz;
        let servers = self.health_reports();
        let pending: Vec<&str> = servers
            .iter()
            // A lazy server that was never needed has not been tried, and need not be.
            .filter(|r| !r.attempted && r.status != HealthStatus::Idle)
            .map(|r| r.server.as_str())
            .collect();
        let unhealthy: Vec<String> = servers
            .iter()
            .filter(|r| r.status == HealthStatus::Unhealthy)
            .map(|r| format!("{} ({})", r.server, r.reason().unwrap_or("unhealthy")))
            .collect();
        let why = if !pending.is_empty() {
            Some(format!(
                "not every server has been tried yet: waiting for the first connection attempt of [{}]",
                pending.join(", ")
            ))
        } else if rule == ReadyRule::RequireAll && !unhealthy.is_empty() {
            Some(format!(
                "readyz = \"require_all\" and some servers are unhealthy: {}",
                unhealthy.join("; ")
            ))
        } else {
            None
        };
        Readiness {
            ready: why.is_none(),
            rule,
            why,
            servers,
        }
    }
}
