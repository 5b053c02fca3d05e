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

pub mod access;
pub mod client;
pub mod endpoint;
mod mcp_headers;
mod mrtr;
pub mod progressive;
pub mod readiness;
pub mod reload;
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

/// The hash map of the gateway's own tables on the request path (endpoints, sessions, views,
/// lanes, routes, requests in flight): foldhash rather than std's SipHash, which cost several
/// hundred instructions per lookup. foldhash is seeded at random per process and per map, which
/// defeats collisions computed in advance, but it does not claim to resist an attacker who
/// learns its seed by watching it (timing): so it serves only maps where a client cannot put
/// many keys of its choosing. Most keys are names from the config or a server's catalog, or
/// ids the gateway mints. Two kinds are a client's: the ids of one session's requests in
/// flight (as many as it has calls running; a stateless request's map holds one), and the
/// capability sets of `Endpoint::views` (lanes are bounded per server, but that cache is not).
pub type FastMap<K, V> = HashMap<K, V, foldhash::quality::RandomState>;
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

/// The admin API (`/admin/...` on the gateway's listener), served by another crate
/// (`gantry-admin`) so that this one never touches the database.
pub trait AdminHandler: Send + Sync {
    /// Answers one request under `/admin/`; `peer` is the client's address.
    fn handle<'a>(
        &'a self,
        gw: &'a Arc<Gateway>,
        req: http::Request<hyper::body::Incoming>,
        peer: Option<std::net::SocketAddr>,
    ) -> gantry_auth::BoxFuture<'a, http::Response<http_body_util::Full<bytes::Bytes>>>;
}

/// What a gateway starts with besides its config.
#[derive(Default)]
pub struct Options {
    /// The persisted catalog.
    pub catalog: CatalogCache,
    /// Who may call: tried in order on every bearer token (API keys, then OIDC). Empty: no
    /// client authentication.
    pub authenticators: Vec<Arc<dyn gantry_auth::Authenticator>>,
    /// The admin API, if served.
    pub admin: Option<Arc<dyn AdminHandler>>,
    /// Where the config comes from, to load it again on a hot reload (`None`: the config
    /// is only ever the one the gateway started with, unless [`Gateway::apply`] is called).
    pub reload: Option<reload::Source>,
    /// The key that seals `requestState`s (derived from the server secret); `None`: a random
    /// one, so a state does not outlive the process.
    pub sealing_key: Option<[u8; 32]>,
}

/// What the config determines, as one immutable snapshot: a hot reload builds a new one and
/// swaps it in whole ([`reload`]). A request reads it once (`Gateway::state`: one read lock,
/// one `Arc` clone) and uses that snapshot throughout.
pub struct State {
    /// The config in force.
    pub config: Arc<Config>,
    /// The servers by name.
    pub servers: BTreeMap<String, Arc<ServerGroup>>,
    /// The endpoints by name.
    pub endpoints: FastMap<String, Arc<Endpoint>>,
    /// Endpoints a reload removed (for a clearer 404).
    pub removed_endpoints: std::collections::BTreeSet<String>,
    /// Authentication of endpoint callers, with the endpoints' URLs.
    front: access::Front,
}

/// The running gateway.
pub struct Gateway {
    state: RwLock<Arc<State>>,
    authenticators: Vec<Arc<dyn gantry_auth::Authenticator>>,
    admin: Option<Arc<dyn AdminHandler>>,
    sessions: RwLock<FastMap<String, Arc<Session>>>,
    /// Stateless calls waiting for their client's answers (see [`mrtr`]).
    parking: mrtr::Parking,
    /// Seals every `requestState` the gateway hands out.
    sealer: mrtr::Sealer,
    /// What starting a server needs besides its config (servers added by a reload).
    starter: reload::Starter,
    /// Hot reload: where the config comes from, the last outcome, servers being retired.
    reloads: reload::Reloads,
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
    pub fn start_with_catalog(config: Config, cache: CatalogCache) -> Arc<Gateway> {
        Gateway::start_with(
            config,
            Options {
                catalog: cache,
                ..Options::default()
            },
        )
    }

    /// Like [`Gateway::start`], with the persisted catalog, the authenticators and the admin
    /// API of `options`.
    pub fn start_with(config: Config, options: Options) -> Arc<Gateway> {
        let Options {
            catalog: mut cache,
            authenticators,
            admin,
            reload,
            sealing_key,
        } = options;
        upstream::health::set_spawn_limit(config.health.max_concurrent_spawns);
        let drain = Arc::new(upstream::Drain::default());
        let (tx, rx) = mpsc::channel(SERVER_EVENT_QUEUE);
        let starter = reload::Starter {
            events: tx,
            sink: cache.sink.clone(),
            drain: drain.clone(),
        };
        let servers: BTreeMap<String, Arc<ServerGroup>> = config
            .servers
            .values()
            .map(|cfg| {
                (
                    cfg.name.clone(),
                    starter.start(cfg.clone(), cache.seeds.remove(&cfg.name)),
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
        let front = access::Front::new(&config, authenticators.clone());
        let state = State {
            front,
            config: Arc::new(config),
            servers,
            endpoints,
            removed_endpoints: Default::default(),
        };
        let gw = Arc::new(Gateway {
            state: RwLock::new(Arc::new(state)),
            authenticators,
            admin,
            sessions: RwLock::new(FastMap::default()),
            parking: mrtr::Parking::default(),
            sealer: mrtr::Sealer::new(sealing_key),
            starter,
            reloads: reload::Reloads::new(reload),
            drain,
        });
        tokio::spawn(fan_out(Arc::downgrade(&gw), rx));
        tokio::spawn(reap_idle_sessions(Arc::downgrade(&gw)));
        gw
    }

    /// The config-derived state in force (a snapshot: a reload swaps in a new one).
    pub fn state(&self) -> Arc<State> {
        self.state.read().expect("state lock").clone()
    }

    /// The config the gateway runs.
    pub fn config(&self) -> Arc<Config> {
        self.state().config.clone()
    }

    /// The authenticators bearer tokens are checked with, in order (the first that knows a
    /// token's kind decides); empty when client authentication is off.
    pub fn authenticators(&self) -> &[Arc<dyn gantry_auth::Authenticator>] {
        &self.authenticators
    }

    /// The admin API handler, if one is served.
    pub fn admin(&self) -> Option<&Arc<dyn AdminHandler>> {
        self.admin.as_ref()
    }

    /// The servers by name.
    pub fn servers(&self) -> BTreeMap<String, Arc<ServerGroup>> {
        self.state().servers.clone()
    }

    /// Every server's catalog and whether it is stale, in name order.
    pub fn catalog_states(&self) -> Vec<CatalogState> {
        self.state()
            .servers
            .values()
            .map(|g| {
                let lane = g.default_lane();
                let catalog = lane.catalog();
                CatalogState {
                    server: g.name().to_string(),
                    status: match lane.status() {
                        Status::Ready { .. } => "ready".into(),
                        Status::Starting => "starting".into(),
                        Status::Idle { .. } => "idle".into(),
                        Status::Down { error } => format!("down: {error}"),
                    },
                    stale: catalog.stale,
                    catalog,
                }
            })
            .collect()
    }

    /// An endpoint by name.
    pub fn endpoint(&self, name: &str) -> Option<Arc<Endpoint>> {
        self.state().endpoints.get(name).cloned()
    }

    /// Waits until every server's first connection attempt has settled (connected with its
    /// catalog loaded, or failed); a lazy server not started yet is not waited for. Used by
    /// the `manual` naming check before serving.
    pub async fn settle(&self) {
        let state = self.state();
        for s in state.servers.values() {
            let lane = s.default_lane();
            if !lane.is_idle() {
                lane.first_attempt().await;
            }
        }
    }

    /// Clashes that `manual` naming leaves unresolved, per endpoint.
    pub fn naming_problems(&self) -> Vec<String> {
        self.state()
            .endpoints
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

    /// Opens a session on `endpoint` for a local client (stdio): it sees everything the
    /// endpoint publishes.
    pub fn open_session(&self, endpoint: &Arc<Endpoint>) -> Arc<Session> {
        self.open_session_as(endpoint, access::Caller::default())
    }

    /// Opens a session on `endpoint` for an admitted `caller`.
    pub fn open_session_as(
        &self,
        endpoint: &Arc<Endpoint>,
        caller: access::Caller,
    ) -> Arc<Session> {
        let s = Session::new(endpoint.clone());
        s.set_caller(caller);
        self.register_session(s.clone());
        s
    }

    /// Makes a session reachable by id and by the notifications of its servers. A session
    /// opened on an endpoint that a reload just rebuilt moves to the new build; one opened on
    /// an endpoint a reload just removed is closed at once.
    pub fn register_session(&self, s: Arc<Session>) {
        let mut sessions = self.sessions.write().expect("sessions lock");
        // Under the sessions lock: a reload swaps the state before it re-points sessions
        // under this lock, so either it sees this session or this sees its state.
        let ep = s.endpoint();
        match self.state().endpoints.get(ep.name()) {
            Some(current) if Arc::ptr_eq(current, &ep) => {}
            Some(current) => s.set_endpoint(current.clone()),
            None => {
                drop(sessions);
                s.close();
                return;
            }
        }
        sessions.insert(s.id().to_owned(), s);
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
        let limit = self.config().session_idle_timeout;
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
        for g in self.state().servers.values() {
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
        let task = async move {
            let link = RequestLink::new(s.clone(), sink.clone());
            let id = req.id.clone();
            let cacheable = s.is_stateless().then(|| router::is_cacheable(&req.method));
            // Boxed: a task's future is copied a few times as it is spawned.
            let mut outcome = Box::pin(router::handle(&gw, &s, req, link)).await;
            if let Some(cacheable) = cacheable {
                outcome = router::finish_stateless(&s.endpoint(), cacheable, outcome);
            }
            s.untrack(&id);
            let _ = sink.send(Message::Response(Response { id, outcome })).await;
        };
        session.track(id, || tokio::spawn(task).abort_handle());
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
        ServerGroup::stop_all(self.state().servers.values().cloned()).await;
        self.reloads.stop_retiring().await;
    }

    fn on_server_event(&self, event: ServerEvent) {
        match event {
            ServerEvent::Changed { server, lane, said } => {
                let state = self.state();
                let Some(caps) = state
                    .servers
                    .get(&*server)
                    .and_then(|g| g.lane_by_key(&lane))
                    .map(|l| l.caps().clone())
                else {
                    return;
                };
                for ep in state.endpoints.values() {
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
            if !Arc::ptr_eq(&s.endpoint(), ep) || !s.is_initialized() || other_lane {
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
        Some(g) => (g.config().session_idle_timeout / 10).min(std::time::Duration::from_secs(60)),
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
