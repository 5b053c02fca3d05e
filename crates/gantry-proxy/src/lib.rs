//! The Gantry data path, one module per stage:
//!
//! ```text
//! client ──▶ client (HTTP, SSE, stdio framing) ──▶ session (per-client state)
//!        ──▶ endpoint (view of the catalog) ──▶ router (public name → server)
//!        ──▶ upstream (peer, transport, supervision) ──▶ MCP server
//! ```
//!
//! [`Gateway`] composes the stages: it starts every server, builds every endpoint, keeps the
//! sessions, and fans changes and notifications from servers out to the sessions they concern.
//! Each front in [`client`] hands parsed messages to [`Gateway::accept`].
#![deny(missing_docs)]

pub mod client;
pub mod endpoint;
mod mcp_headers;
mod mrtr;
pub mod progressive;
pub(crate) mod router;
pub mod session;
pub mod upstream;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use gantry_config::Config;
use gantry_core::protocol::method;
use gantry_core::{Message, Notification, Request, Response};
use serde_json::Value;
use tokio::sync::mpsc;

use endpoint::{Changes, Endpoint};
use session::{RequestLink, Session, Sink};
use upstream::{Catalog, CatalogSink, ServerEvent, ServerGroup, Status};

/// How long a server lane nobody uses keeps running.
const LANE_IDLE: std::time::Duration = std::time::Duration::from_secs(600);

/// Capacity of the queue of events from all servers.
const SERVER_EVENT_QUEUE: usize = 1024;

/// The persisted catalog, as the gateway sees it: the last known catalogs to list until each
/// server answers, and where the catalogs servers list go. The gateway never touches the
/// database; the caller loads the seeds before start and the sink queues writes.
#[derive(Default)]
pub struct CatalogCache {
    /// The last known catalog per server name; servers not in the config are ignored.
    pub seeds: HashMap<String, Catalog>,
    /// Receives every catalog a server lists (its default lane's).
    pub sink: Option<Arc<dyn CatalogSink>>,
}

/// One server's catalog as an admin sees it (the seam for the admin API).
#[derive(Clone)]
pub struct CatalogState {
    /// The server.
    pub server: String,
    /// `ready`, `starting` or `down: <why>`.
    pub status: String,
    /// The catalog is the last known one from an earlier run; the server has not answered.
    pub stale: bool,
    /// The catalog clients are listed (the default lane's).
    pub catalog: Arc<Catalog>,
}

/// The running gateway.
pub struct Gateway {
    config: Config,
    servers: BTreeMap<String, Arc<ServerGroup>>,
    endpoints: HashMap<String, Arc<Endpoint>>,
    sessions: RwLock<HashMap<String, Arc<Session>>>,
    /// Stateless calls waiting for their client's answers (see [`mrtr`]).
    parking: mrtr::Parking,
    /// Seals every `requestState` the gateway hands out.
    sealer: mrtr::Sealer,
    /// Calls in flight to all servers; refuses new ones once the gateway drains.
    drain: Arc<upstream::Drain>,
}

// === impl Gateway ===

impl Gateway {
    /// Starts every server (in parallel, in the background) and builds the endpoints.
    pub fn start(config: Config) -> Arc<Gateway> {
        Gateway::start_with_catalog(config, CatalogCache::default())
    }

    /// Like [`Gateway::start`], with the persisted catalog: each server lists its seed (marked
    /// stale) until it answers, and every catalog read goes to the sink.
    pub fn start_with_catalog(config: Config, mut cache: CatalogCache) -> Arc<Gateway> {
        let http = upstream::http_client();
        let drain = Arc::new(upstream::Drain::default());
        let (tx, rx) = mpsc::channel(SERVER_EVENT_QUEUE);
        let servers: BTreeMap<String, Arc<ServerGroup>> = config
            .servers
            .values()
            .map(|cfg| {
                (
                    cfg.name.clone(),
                    ServerGroup::start(
                        cfg.clone(),
                        http.clone(),
                        tx.clone(),
                        cache.seeds.remove(&cfg.name),
                        cache.sink.clone(),
                        drain.clone(),
                    ),
                )
            })
            .collect();
        let endpoints = config
            .endpoints
            .values()
            .map(|cfg| {
                let members = cfg.servers.iter().map(|s| servers[s].clone()).collect();
                (
                    cfg.name.clone(),
                    Arc::new(Endpoint::new(cfg.clone(), members)),
                )
            })
            .collect();
        let gw = Arc::new(Gateway {
            config,
            servers,
            endpoints,
            sessions: RwLock::new(HashMap::new()),
            parking: mrtr::Parking::default(),
            sealer: mrtr::Sealer::random(),
            drain,
        });
        tokio::spawn(fan_out(Arc::downgrade(&gw), rx));
        tokio::spawn(reap_idle_sessions(Arc::downgrade(&gw)));
        gw
    }

    /// The config the gateway runs.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The servers by name.
    pub fn servers(&self) -> &BTreeMap<String, Arc<ServerGroup>> {
        &self.servers
    }

    /// Every server's catalog and whether it is stale, in name order.
    pub fn catalog_states(&self) -> Vec<CatalogState> {
        self.servers
            .values()
            .map(|g| {
                let lane = g.default_lane();
                let catalog = lane.catalog();
                CatalogState {
                    server: g.name().to_string(),
                    status: match lane.status() {
                        Status::Ready { .. } => "ready".into(),
                        Status::Starting => "starting".into(),
                        Status::Down { error } => format!("down: {error}"),
                    },
                    stale: catalog.stale,
                    catalog,
                }
            })
            .collect()
    }

    /// An endpoint by name.
    pub fn endpoint(&self, name: &str) -> Option<&Arc<Endpoint>> {
        self.endpoints.get(name)
    }

    /// Waits until every server's first connection attempt has settled (connected with its
    /// catalog loaded, or failed). Used by the `manual` naming check before serving.
    pub async fn settle(&self) {
        for s in self.servers.values() {
            s.default_lane().first_attempt().await;
        }
    }

    /// Clashes that `manual` naming leaves unresolved, per endpoint.
    pub fn naming_problems(&self) -> Vec<String> {
        self.endpoints
            .values()
            .filter(|ep| matches!(ep.config().naming, gantry_config::Naming::Manual))
            .flat_map(|ep| {
                ep.view(&upstream::ClientCaps::none())
                    .problems
                    .iter()
                    .map(|p| format!("endpoint {}: {p}", ep.name()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Opens a session on `endpoint`.
    pub fn open_session(&self, endpoint: &Arc<Endpoint>) -> Arc<Session> {
        let s = Session::new(endpoint.clone());
        self.register_session(s.clone());
        s
    }

    /// Makes a session reachable by id and by the notifications of its servers.
    pub fn register_session(&self, s: Arc<Session>) {
        self.sessions
            .write()
            .expect("sessions lock")
            .insert(s.id().to_owned(), s);
    }

    /// A session by id; finding it counts as hearing from the client.
    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        let s = self
            .sessions
            .read()
            .expect("sessions lock")
            .get(id)
            .cloned();
        if let Some(s) = &s {
            s.touch();
        }
        s
    }

    /// Drops sessions idle for longer than `session_idle_timeout`; returns how many.
    pub fn reap_idle_sessions(&self) -> usize {
        let limit = self.config.session_idle_timeout;
        let idle: Vec<String> = self
            .sessions
            .read()
            .expect("sessions lock")
            .values()
            .filter(|s| s.idle_for(limit))
            .map(|s| s.id().to_owned())
            .collect();
        for id in &idle {
            self.close_session(id);
        }
        idle.len()
    }

    /// Stops server lanes that no session needs and nobody used for [`LANE_IDLE`].
    pub async fn stop_idle_lanes(&self) -> usize {
        let in_use: std::collections::HashSet<Arc<str>> = self
            .all_sessions()
            .iter()
            .map(|s| s.caps().key().clone())
            .collect();
        let mut stopped = 0;
        for g in self.servers.values() {
            stopped += g.stop_idle_lanes(LANE_IDLE, |k| in_use.contains(k)).await;
        }
        stopped
    }

    /// Ends a session.
    pub fn close_session(&self, id: &str) -> bool {
        let s = self.sessions.write().expect("sessions lock").remove(id);
        if let Some(s) = &s {
            s.close();
        }
        s.is_some()
    }

    pub(crate) fn all_sessions(&self) -> Vec<Arc<Session>> {
        self.sessions
            .read()
            .expect("sessions lock")
            .values()
            .cloned()
            .collect()
    }

    /// Handles one message from a client. Requests run as tasks whose response (and related
    /// messages) go to `sink`, or to the session's stream when there is none; notifications
    /// and responses are handled at once.
    pub fn accept(self: &Arc<Self>, session: &Arc<Session>, msg: Message, sink: Option<Sink>) {
        session.touch();
        match msg {
            Message::Request(req) => match sink.or_else(|| session.outbox()) {
                Some(sink) => self.spawn_request(session, req, sink),
                None => {
                    tracing::warn!(session = %session.id(), method = %req.method, "no stream to answer on; request dropped")
                }
            },
            Message::Response(resp) => session.answer(&resp.id, resp.outcome),
            Message::Notification(n) => match n.method.as_str() {
                method::CANCELLED => {
                    let id = n
                        .params
                        .as_ref()
                        .and_then(|p| p.get("requestId"))
                        .and_then(gantry_core::Id::from_value);
                    if let Some(id) = id {
                        session.cancel(&id);
                    }
                }
                method::INITIALIZED | method::ROOTS_LIST_CHANGED | method::PROGRESS => {}
                other => tracing::debug!(method = other, "ignored client notification"),
            },
        }
    }

    fn spawn_request(self: &Arc<Self>, session: &Arc<Session>, req: Request, sink: Sink) {
        let id = req.id.clone();
        let gw = self.clone();
        let s = session.clone();
        let task = tokio::spawn(async move {
            let link = RequestLink::new(s.clone(), sink.clone());
            let id = req.id.clone();
            let method = (s.is_stateless()).then(|| req.method.clone());
            // Boxed: a task's future is copied a few times as it is spawned.
            let mut outcome = Box::pin(router::handle(&gw, &s, req, link)).await;
            if let Some(m) = method {
                outcome = router::finish_stateless(s.endpoint(), &m, outcome);
            }
            s.untrack(&id);
            let _ = sink.send(Message::Response(Response { id, outcome })).await;
        });
        session.track(id, task.abort_handle());
    }

    /// Calls in flight to all servers.
    pub fn in_flight(&self) -> usize {
        self.drain.in_flight()
    }

    /// The first step of a graceful shutdown: new calls to servers are refused (the gateway
    /// is shutting down) and the calls in flight get up to `grace` to finish. Returns how
    /// many were still in flight when it stopped waiting. [`Gateway::shutdown`] follows.
    pub async fn drain(&self, grace: std::time::Duration) -> usize {
        self.drain.drain(grace).await
    }

    /// Stops every server (all at once, each within a bound; a stdio server's process group
    /// ends and is reaped) and closes every session.
    pub async fn shutdown(&self) {
        for s in self.all_sessions() {
            self.close_session(s.id());
        }
        let mut stops = tokio::task::JoinSet::new();
        for s in self.servers.values() {
            let s = s.clone();
            stops.spawn(async move { s.stop().await });
        }
        while stops.join_next().await.is_some() {}
    }

    fn on_server_event(&self, event: ServerEvent) {
        match event {
            ServerEvent::Changed { server, lane, said } => {
                let Some(caps) = self
                    .servers
                    .get(&*server)
                    .and_then(|g| g.lane_by_key(&lane))
                    .map(|l| l.caps().clone())
                else {
                    return;
                };
                for ep in self.endpoints.values() {
                    if ep.server_index(&server).is_none() {
                        continue;
                    }
                    let seen = ep.changes_to_announce(&caps);
                    let changes = Changes {
                        tools: seen.tools || said.tools,
                        prompts: seen.prompts || said.prompts,
                        resources: seen.resources || said.resources,
                    };
                    if changes != Changes::default() {
                        self.notify_changes(ep, &lane, changes);
                    }
                }
            }
            ServerEvent::Notification {
                server,
                lane,
                notification,
            } => self.route_notification(&server, &lane, notification),
        }
    }

    /// Tells the sessions on `ep` served by `lane` which of their lists changed.
    fn notify_changes(&self, ep: &Arc<Endpoint>, lane: &str, changes: Changes) {
        let kinds = [
            (changes.tools, method::TOOLS_LIST_CHANGED),
            (changes.prompts, method::PROMPTS_LIST_CHANGED),
            (changes.resources, method::RESOURCES_LIST_CHANGED),
        ];
        for s in self.all_sessions() {
            // A listen stream hears of changes on any lane: the notice only says "list
            // again", and the change may concern every client (an HTTP server's tools).
            let other_lane = &**s.caps().key() != lane && !s.is_listening();
            if !Arc::ptr_eq(s.endpoint(), ep) || !s.is_initialized() || other_lane {
                continue;
            }
            for (changed, m) in kinds {
                if changed {
                    s.send_list_changed(m);
                }
            }
        }
    }

    /// Delivers a server's notification to the sessions its lane serves that want it.
    fn route_notification(&self, server: &str, lane: &str, n: Notification) {
        let params = n.params.as_ref();
        let uri = params.and_then(|p| p.get("uri")).and_then(Value::as_str);
        let level = params.and_then(|p| p.get("level")).and_then(Value::as_str);
        for s in self.all_sessions() {
            if s.endpoint().server_index(server).is_none()
                || !s.is_initialized()
                || &**s.caps().key() != lane
            {
                continue;
            }
            match n.method.as_str() {
                method::RESOURCES_UPDATED if uri.is_some_and(|u| s.is_subscribed(u)) => {
                    s.send_resource_updated(&n)
                }
                method::MESSAGE if !s.is_stateless() && s.wants_log(level, false) => {
                    s.send_unsolicited(Message::Notification(n.clone()))
                }
                _ => {}
            }
        }
    }
}

/// Checks for idle sessions at a tenth of the idle timeout (at most once a minute).
async fn reap_idle_sessions(gw: std::sync::Weak<Gateway>) {
    let period = match gw.upgrade() {
        Some(g) => (g.config.session_idle_timeout / 10).min(std::time::Duration::from_secs(60)),
        None => return,
    };
    let mut tick = tokio::time::interval(period.max(std::time::Duration::from_millis(100)));
    loop {
        tick.tick().await;
        let Some(gw) = gw.upgrade() else { return };
        let n = gw.reap_idle_sessions();
        if n > 0 {
            tracing::debug!(sessions = n, "dropped idle client sessions");
        }
        gw.stop_idle_lanes().await;
        let n = gw.parking.expire();
        if n > 0 {
            tracing::debug!(calls = n, "cancelled calls whose client never answered");
        }
    }
}

/// Applies server events to endpoints and sessions, in order.
async fn fan_out(gw: std::sync::Weak<Gateway>, mut rx: mpsc::Receiver<ServerEvent>) {
    while let Some(event) = rx.recv().await {
        let Some(gw) = gw.upgrade() else { return };
        gw.on_server_event(event);
    }
}

#[cfg(test)]
mod tests;
