//! A configured server as a group of lanes: one upstream connection per set of client
//! capabilities in use.
//!
//! The default lane declares no client capabilities; it starts with the gateway (or on first
//! use, for a server with `start = "lazy"`, whose other lanes are created idle too) and serves
//! every client that declared none (most do not). A client that declared sampling,
//! elicitation or roots is served by a lane that declares exactly those, started on first
//! use, so the server sees the capabilities that client really has and its server→client
//! requests can reach it. Lanes nobody used for a while are stopped. The number of lanes per
//! server is bounded; past the bound a client is served by the default lane, which declares
//! less than it has — still true, never a promise the gateway cannot keep.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use gantry_config::ServerConfig;
use tokio::sync::mpsc;

use super::caps::ClientCaps;
use super::health::{self, HealthReport, ServerHealth};
use super::limits::{Drain, Limiter};
use super::server::{Catalog, CatalogSink, ServerEvent, UpstreamServer};

/// Most lanes one server runs besides its default lane.
const MAX_LANES: usize = 8;

/// What every lane of a server shares: it is handed to each lane the group starts.
pub(crate) struct LaneShared {
    pub(crate) events: mpsc::Sender<ServerEvent>,
    /// Health checks and the circuit breaker.
    pub(crate) health: Arc<ServerHealth>,
    /// `max_in_flight`, over every lane.
    pub(crate) limiter: Arc<Limiter>,
}

/// A configured server and its lanes.
pub struct ServerGroup {
    cfg: ServerConfig,
    shared: LaneShared,
    default: Arc<UpstreamServer>,
    lanes: RwLock<crate::FastMap<Arc<str>, Arc<UpstreamServer>>>,
}

// === impl ServerGroup ===

impl ServerGroup {
    /// Creates the group and starts its default lane, which lists `seed` (the last known
    /// catalog) until the server answers and hands every catalog it reads to `sink`. Other
    /// lanes start empty and persist nothing: the default lane's catalog is the server's.
    pub(crate) fn start(
        cfg: ServerConfig,
        events: mpsc::Sender<ServerEvent>,
        seed: Option<Catalog>,
        sink: Option<Arc<dyn CatalogSink>>,
        drain: Arc<Drain>,
    ) -> Arc<ServerGroup> {
        let limiter = Limiter::new(cfg.name.as_str().into(), cfg.max_in_flight, drain);
        if let Some(c) = &seed {
            tracing::info!(
                server = %cfg.name,
                tools = c.tools.len(),
                prompts = c.prompts.len(),
                resources = c.resources.len(),
                templates = c.templates.len(),
                lazy = cfg.start == gantry_config::StartMode::Lazy,
                "listing the server's last known catalog (stale) until it answers"
            );
        }
        let health = Arc::new(ServerHealth::new(
            cfg.name.as_str().into(),
            cfg.health.clone(),
            matches!(cfg.transport, gantry_config::TransportConfig::Stdio(_)),
        ));
        let shared = LaneShared {
            events,
            health: health.clone(),
            limiter,
        };
        let default = UpstreamServer::start(
            cfg.clone(),
            ClientCaps::none(),
            &shared,
            seed,
            sink,
            cfg.start == gantry_config::StartMode::Lazy,
        );
        let group = Arc::new(ServerGroup {
            cfg,
            shared,
            default,
            lanes: RwLock::new(crate::FastMap::default()),
        });
        tokio::spawn(health::run_checks(Arc::downgrade(&group), health));
        group
    }

    /// The server's health and circuit breaker.
    pub fn health(&self) -> &Arc<ServerHealth> {
        &self.shared.health
    }

    /// The server's health report (status, reasons, checks, restarts, circuit).
    pub fn health_report(&self) -> HealthReport {
        self.shared.health.report(&self.default)
    }

    /// The server's name.
    pub fn name(&self) -> &Arc<str> {
        self.default.name()
    }

    /// The server's config.
    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    /// The lane that declares no client capabilities; it always runs.
    pub fn default_lane(&self) -> &Arc<UpstreamServer> {
        &self.default
    }

    /// The lane for clients with `caps`, started if it is not running.
    pub fn lane(&self, caps: &ClientCaps) -> Arc<UpstreamServer> {
        if caps.key() == self.default.caps().key() {
            return self.default.clone();
        }
        if let Some(l) = self.lanes.read().expect("lanes lock").get(caps.key()) {
            l.touch();
            return l.clone();
        }
        let mut lanes = self.lanes.write().expect("lanes lock");
        if let Some(l) = lanes.get(caps.key()) {
            return l.clone();
        }
        if lanes.len() >= MAX_LANES {
            tracing::warn!(
                server = %self.name(),
                caps = %caps.key(),
                "{MAX_LANES} capability sets already have their own connection; this client is served by the default one, which declares no client capabilities"
            );
            return self.default.clone();
        }
        tracing::debug!(server = %self.name(), caps = %caps.key(), "starting a connection for a new set of client capabilities");
        // A lazy server's new lane starts idle, listing what the default lane knows, and
        // connects on the first request routed to it.
        let lazy = self.cfg.start == gantry_config::StartMode::Lazy;
        let seed = lazy.then(|| self.default.catalog_if_known()).flatten();
        let lane = UpstreamServer::start(
            self.cfg.clone(),
            caps.clone(),
            &self.shared,
            seed,
            None,
            lazy,
        );
        lane.touch();
        lanes.insert(caps.key().clone(), lane.clone());
        lane
    }

    /// Starts the idle lanes (for clients with `caps`, and the default one) whose catalog
    /// is unknown, in the background: a list is then answered without them, and their
    /// items are announced with `list_changed` once they have connected.
    pub(crate) fn wake_unknown(&self, caps: &ClientCaps) {
        if self.cfg.start != gantry_config::StartMode::Lazy {
            return;
        }
        let _ = self.default.wake_if_unknown();
        if caps.key() != self.default.caps().key()
            && let Some(l) = self.lanes.read().expect("lanes lock").get(caps.key())
        {
            let _ = l.wake_if_unknown();
        }
    }

    /// The running lane with `key`, if any.
    pub fn lane_by_key(&self, key: &str) -> Option<Arc<UpstreamServer>> {
        if &**self.default.caps().key() == key {
            return Some(self.default.clone());
        }
        self.lanes.read().expect("lanes lock").get(key).cloned()
    }

    /// Stops lanes unused for `idle` whose capability set no client still holds (`in_use`);
    /// returns how many.
    pub(crate) async fn stop_idle_lanes(
        &self,
        idle: Duration,
        in_use: impl Fn(&str) -> bool,
    ) -> usize {
        let stale: Vec<Arc<UpstreamServer>> = {
            let mut lanes = self.lanes.write().expect("lanes lock");
            let keys: Vec<Arc<str>> = lanes
                .iter()
                .filter(|(k, l)| !in_use(k) && l.unused_for() >= idle)
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter().filter_map(|k| lanes.remove(k)).collect()
        };
        for l in &stale {
            l.stop().await;
        }
        stale.len()
    }

    /// Every running lane, the default one first.
    pub(crate) fn all_lanes(&self) -> Vec<Arc<UpstreamServer>> {
        let mut all = vec![self.default.clone()];
        all.extend(self.lanes.read().expect("lanes lock").values().cloned());
        all
    }

    /// Calls in flight to the server (all lanes).
    pub fn in_flight(&self) -> usize {
        self.shared.limiter.in_flight()
    }

    /// Stops every lane, all at once, and waits until each has closed its connection.
    pub async fn stop(&self) {
        let mut lanes: Vec<_> = self
            .lanes
            .write()
            .expect("lanes lock")
            .drain()
            .map(|(_, l)| l)
            .collect();
        lanes.push(self.default.clone());
        self.shared.health.stop();
        all_at_once(lanes.into_iter().map(|l| async move { l.stop().await })).await;
    }

    /// Stops every group of `groups` (see [`ServerGroup::stop`]), all at once.
    pub(crate) async fn stop_all(groups: impl IntoIterator<Item = Arc<ServerGroup>>) {
        all_at_once(groups.into_iter().map(|g| async move { g.stop().await })).await;
    }
}

/// Runs the futures at once, each in its own task, and waits until all have ended.
async fn all_at_once<F>(futures: impl IntoIterator<Item = F>)
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut set: tokio::task::JoinSet<()> = futures.into_iter().collect();
    while set.join_next().await.is_some() {}
}
