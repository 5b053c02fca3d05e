//! One configured server: its connection, its catalog, and the loop that keeps it connected.
//!
//! Servers connect in parallel and independently. A server that fails to start, or whose
//! connection drops, is retried in the background with exponential backoff and jitter while
//! every endpoint keeps serving the others. Its last known catalog stays listed while it is
//! down; calling into it answers at once with an error that says why it is unavailable.
//!
//! The default lane may start with the catalog persisted by an earlier run (marked
//! [`Catalog::stale`]) so the endpoint lists it before the server answers; every catalog the
//! server then lists goes to the gateway's [`CatalogSink`], which persists it off the hot path.
//!
//! **Lazy start and idle shutdown.** A lane of a server with `start = "lazy"` begins
//! [`Status::Idle`]: no process, no connection, its catalog (the persisted one, if any)
//! listed. The first request routed to it ([`UpstreamServer::ready_peer`]) wakes the
//! supervisor and waits (within `connect_timeout`) for the connection. With `idle_shutdown`,
//! a lane that had no request for that long (and has no call in flight) is closed cleanly
//! (a stdio server's process group in stages) and goes back to `Idle`, keeping its catalog;
//! that is no failure: no backoff, no restart counted. Health checks never wake a lane.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use gantry_config::{ProtocolChoice, ServerConfig, TransportConfig};
use gantry_core::protocol::{code, method};
use gantry_core::{Notification, Request, RpcError};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::caps::ClientCaps;
use super::group::LaneShared;
use super::health::ServerHealth;
use super::limits::Limiter;
use super::peer::{BoxFuture, Peer, PeerEvents, ServerHello};
use super::transport::{Transport, TransportContext};

/// Capacity of a transport's event channel.
const EVENT_QUEUE: usize = 256;
/// Most pages followed when listing one kind of item.
const MAX_PAGES: usize = 1000;
/// A connection that lasted less than this ended in a crash: the backoff goes on growing
/// instead of starting over.
const STABLE: Duration = Duration::from_secs(10);
/// From this many failures in a row (failed starts, or connections that did not last
/// [`STABLE`]), the server is reported as crash-looping.
const CRASH_LOOP: u32 = 3;
/// Longest [`UpstreamServer::stop`] waits for the supervisor to close the connection (the
/// staged stdio shutdown takes at most 3 × 2 s).
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// Which lists changed between two views, or which lists a server said changed.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Changes {
    /// `tools/list` changed.
    pub tools: bool,
    /// `prompts/list` changed.
    pub prompts: bool,
    /// `resources/list` or `resources/templates/list` changed.
    pub resources: bool,
}

/// What a server tells the rest of the gateway.
#[derive(Debug)]
pub enum ServerEvent {
    /// The server's catalog or its availability changed.
    Changed {
        /// The server.
        server: Arc<str>,
        /// The lane (see [`ClientCaps::key`]).
        lane: Arc<str>,
        /// The lists the server said changed (announced even if they look the same).
        said: Changes,
    },
    /// A notification no request explains (resource updates, log lines).
    Notification {
        /// The server.
        server: Arc<str>,
        /// The lane (see [`ClientCaps::key`]).
        lane: Arc<str>,
        /// The notification as the server sent it.
        notification: Notification,
    },
}

/// How long a list may be cached, as a 2026-07-28 server said (`ttlMs`, `cacheScope`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CacheHint {
    /// `ttlMs`.
    pub ttl_ms: u64,
    /// `cacheScope` is `public`.
    pub public: bool,
}

impl CacheHint {
    /// What a list merged from parts may promise: the smallest TTL, public only if every part
    /// is; a part without a hint (a legacy server promises nothing) makes it 0 and private.
    pub fn merge(parts: impl IntoIterator<Item = Option<CacheHint>>) -> CacheHint {
        let mut out = CacheHint {
            ttl_ms: u64::MAX,
            public: true,
        };
        for part in parts {
            let Some(p) = part else {
                return CacheHint {
                    ttl_ms: 0,
                    public: false,
                };
            };
            out.ttl_ms = out.ttl_ms.min(p.ttl_ms);
            out.public &= p.public;
        }
        if out.ttl_ms == u64::MAX {
            out.ttl_ms = 0;
        }
        out
    }

    fn of(result: &Value) -> Option<CacheHint> {
        Some(CacheHint {
            ttl_ms: result.get("ttlMs")?.as_u64()?,
            public: result.get("cacheScope")?.as_str()? == "public",
        })
    }
}

/// The cache hints of a server's four lists (`None`: the server gave none).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ListHints {
    /// `tools/list`.
    pub tools: Option<CacheHint>,
    /// `prompts/list`.
    pub prompts: Option<CacheHint>,
    /// `resources/list`.
    pub resources: Option<CacheHint>,
    /// `resources/templates/list`.
    pub templates: Option<CacheHint>,
}

/// Everything a server advertises, in the order it lists them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalog {
    /// `tools/list`.
    pub tools: Vec<Value>,
    /// `prompts/list`.
    pub prompts: Vec<Value>,
    /// `resources/list`.
    pub resources: Vec<Value>,
    /// `resources/templates/list`.
    pub templates: Vec<Value>,
    /// How long each list may be cached.
    pub hints: ListHints,
    /// The last known catalog from an earlier run, not yet confirmed by the server in this
    /// one (it has not connected yet). Clients see it; calls get "unavailable" until the
    /// server connects.
    pub stale: bool,
}

/// What made the gateway read a server's lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The server's first connection in this run.
    Connect,
    /// A later connection after the previous one dropped.
    Reconnect,
    /// The server said a list changed (or its 2026-07-28 listen stream ended, so changes may
    /// have been missed).
    ListChanged,
}

/// Where a server's catalog goes after every read of its lists (the persisted catalog).
/// Called from the server's background task, never from a client request: it must not
/// block (hand the catalog to a queue).
pub trait CatalogSink: Send + Sync {
    /// `server` listed `catalog` because of `trigger`.
    fn synced(&self, server: &str, trigger: Trigger, catalog: &Catalog);
}

/// Why a connection attempt failed.
enum Handshake {
    /// For good (as far as this attempt goes).
    Failed(String),
    /// Streamable HTTP was refused with HTTP 400, 404 or 405: maybe an HTTP+SSE server.
    RefusedHttp(String),
}

/// Where a server's connection stands.
#[derive(Clone)]
pub enum Status {
    /// The first connection attempt is under way.
    Starting,
    /// Connected and initialized.
    Ready {
        /// The connection.
        peer: Arc<Peer>,
        /// What `initialize` said.
        hello: Arc<ServerHello>,
    },
    /// Not connected; retrying.
    Down {
        /// The last error.
        error: String,
    },
    /// Not running, on purpose: it starts on the next request routed to it.
    Idle {
        /// `None`: never started (`start = "lazy"`); `Some(d)`: stopped after `d` without a
        /// request (`idle_shutdown`).
        stopped_after: Option<Duration>,
    },
}

/// One connection to a configured server (a lane of its [`super::ServerGroup`]), declaring
/// one set of client capabilities.
pub struct UpstreamServer {
    name: Arc<str>,
    cfg: ServerConfig,
    caps: ClientCaps,
    /// When the lane was created; `used_ms` counts from here.
    created: tokio::time::Instant,
    /// When a client last used the lane, in ms since `created`.
    used_ms: std::sync::atomic::AtomicU64,
    ctx: TransportContext,
    status: RwLock<Status>,
    catalog: RwLock<Arc<Catalog>>,
    /// Bumped on every catalog write, so views can tell they are stale.
    catalog_version: std::sync::atomic::AtomicU64,
    /// Bumped after each connection attempt settles (connected with its catalog loaded, or
    /// failed).
    attempts: watch::Sender<u64>,
    events: mpsc::Sender<ServerEvent>,
    /// Set to stop the server; the supervisor closes the connection and ends.
    shutdown: watch::Sender<bool>,
    /// Set by the supervisor when it has ended (the connection, if any, closed).
    done: watch::Sender<bool>,
    /// The connection being set up (transport up, handshake under way), so that a stop or a
    /// connect timeout can close it in stages rather than drop it.
    connecting: std::sync::Mutex<Option<Arc<Peer>>>,
    /// The server's bound on calls in flight, shared by its lanes.
    limiter: Arc<Limiter>,
    /// Per-tool `tools/call` timeouts, shared by the server's connections.
    tool_timeouts: Arc<std::collections::BTreeMap<String, Duration>>,
    /// Where read catalogs go (the default lane only).
    sink: Option<Arc<dyn CatalogSink>>,
    /// Resources clients subscribed to, for a 2026-07-28 server's listen stream.
    watched: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// Bumped when `watched` changes, so the listen loop reopens its stream.
    rewatch: watch::Sender<u64>,
    /// The resources the server's last listen acknowledgement agreed to watch.
    acked: watch::Sender<std::collections::BTreeSet<String>>,
    /// The server's health and circuit breaker, shared by its lanes (see [`super::health`]).
    health: Arc<ServerHealth>,
    /// Starts [`Status::Idle`] and connects on first use.
    lazy: bool,
    /// Set by a request that found the lane idle; the supervisor clears it before it goes
    /// idle and waits for it.
    wanted: watch::Sender<bool>,
    /// When a request was last routed to the lane, in ms since `created` (for
    /// `idle_shutdown`; health checks and catalog reads do not count).
    requested_ms: std::sync::atomic::AtomicU64,
    /// No catalog is known: never listed, nothing persisted (a lazy lane is then started by
    /// a list, so that its tools can appear).
    unknown: std::sync::atomic::AtomicBool,
    /// Bumped on every status change.
    status_seq: watch::Sender<u64>,
}

// === impl UpstreamServer ===

impl UpstreamServer {
    /// Creates the server and starts connecting in the background. It lists `seed` (the
    /// last known catalog) until the server answers, and hands each catalog it reads to
    /// `sink`.
    pub(crate) fn start(
        cfg: ServerConfig,
        caps: ClientCaps,
        shared: &LaneShared,
        seed: Option<Catalog>,
        sink: Option<Arc<dyn CatalogSink>>,
        lazy: bool,
    ) -> Arc<UpstreamServer> {
        let name: Arc<str> = cfg.name.as_str().into();
        let unknown = seed.is_none();
        let tool_timeouts = Arc::new(cfg.tool_timeouts.clone());
        let server = Arc::new(UpstreamServer {
            ctx: TransportContext {
                server: name.clone(),
            },
            name,
            cfg,
            caps,
            created: tokio::time::Instant::now(),
            used_ms: std::sync::atomic::AtomicU64::new(0),
            status: RwLock::new(if lazy {
                Status::Idle {
                    stopped_after: None,
                }
            } else {
                Status::Starting
            }),
            catalog: RwLock::new(Arc::new(
                seed.map(|c| Catalog { stale: true, ..c })
                    .unwrap_or_default(),
            )),
            catalog_version: std::sync::atomic::AtomicU64::new(0),
            attempts: watch::channel(0).0,
            events: shared.events.clone(),
            shutdown: watch::channel(false).0,
            done: watch::channel(false).0,
            connecting: std::sync::Mutex::new(None),
            limiter: shared.limiter.clone(),
            tool_timeouts,
            sink,
            watched: std::sync::Mutex::new(std::collections::BTreeSet::new()),
            rewatch: watch::channel(0).0,
            acked: watch::channel(std::collections::BTreeSet::new()).0,
            health: shared.health.clone(),
            lazy,
            wanted: watch::channel(false).0,
            requested_ms: std::sync::atomic::AtomicU64::new(0),
            unknown: std::sync::atomic::AtomicBool::new(unknown),
            status_seq: watch::channel(0).0,
        });
        tokio::spawn(supervise(Arc::downgrade(&server)));
        server
    }

    /// The server's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The server's config.
    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    /// The client capabilities this connection declares.
    pub fn caps(&self) -> &ClientCaps {
        &self.caps
    }

    /// The server's health and circuit breaker (shared by its lanes).
    pub fn health(&self) -> &Arc<ServerHealth> {
        &self.health
    }

    /// Whether this is the server's default lane, whose connection its health follows.
    fn is_default_lane(&self) -> bool {
        **self.caps.key() == **ClientCaps::none().key()
    }

    /// Records that a client used this connection.
    pub(crate) fn touch(&self) {
        let ms = self.created.elapsed().as_millis() as u64;
        self.used_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// How long since a client last used this connection.
    pub(crate) fn unused_for(&self) -> Duration {
        let used = Duration::from_millis(self.used_ms.load(std::sync::atomic::Ordering::Relaxed));
        self.created.elapsed().saturating_sub(used)
    }

    /// Records that a request is routed to this lane (or one just finished): the
    /// `idle_shutdown` clock starts over. Rounded up to the millisecond, so the lane never
    /// stops before a whole `idle_shutdown` has passed since the request.
    pub(crate) fn note_request(&self) {
        let ms = self.created.elapsed().as_nanos().div_ceil(1_000_000) as u64;
        self.requested_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// How long since a request was last routed to this lane (or since it was created).
    fn unrequested_for(&self) -> Duration {
        let at =
            Duration::from_millis(self.requested_ms.load(std::sync::atomic::Ordering::Relaxed));
        self.created.elapsed().saturating_sub(at)
    }

    /// Whether the lane is idle on purpose (lazy and not started yet, or stopped after
    /// `idle_shutdown`).
    pub fn is_idle(&self) -> bool {
        matches!(
            *self.status.read().expect("status lock"),
            Status::Idle { .. }
        )
    }

    /// Starts an idle lane (in the background); returns whether it was idle.
    pub fn wake(&self) -> bool {
        if !self.is_idle() {
            return false;
        }
        if !self.wanted.send_replace(true) {
            tracing::info!(server = %self.name, caps = %self.caps.key(), "starting the idle server: a request needs it");
        }
        true
    }

    /// Starts an idle lane whose catalog is unknown (nothing persisted, never listed), so
    /// that a list can show its tools once it has connected (announced with `list_changed`).
    pub(crate) fn wake_if_unknown(&self) -> bool {
        self.unknown.load(std::sync::atomic::Ordering::Relaxed) && self.wake()
    }

    /// The catalog, unless none is known (never listed, nothing persisted).
    pub(crate) fn catalog_if_known(&self) -> Option<Catalog> {
        (!self.unknown.load(std::sync::atomic::Ordering::Relaxed))
            .then(|| (*self.catalog()).clone())
    }

    /// Whether the first connection attempt has settled.
    pub fn attempted(&self) -> bool {
        *self.attempts.borrow() > 0
    }

    /// Where the connection stands.
    pub fn status(&self) -> Status {
        self.status.read().expect("status lock").clone()
    }

    /// The last known catalog.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().expect("catalog lock").clone()
    }

    /// The version of the catalog; it changes whenever the catalog is written.
    pub fn catalog_version(&self) -> u64 {
        self.catalog_version
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The live connection, or an error that says why there is none.
    pub fn peer(&self) -> Result<(Arc<Peer>, Arc<ServerHello>), RpcError> {
        match self.status() {
            Status::Ready { peer, hello } if !peer.is_closed() => Ok((peer, hello)),
            Status::Ready { .. } => {
                Err(self.unavailable("the connection just closed; reconnecting"))
            }
            Status::Starting => Err(self.unavailable("still starting")),
            Status::Down { error } => {
                Err(self.unavailable(&format!("{error}; retrying in the background")))
            }
            Status::Idle { .. } => Err(self.unavailable("idle; it starts on the next request")),
        }
    }

    /// The live connection for a request routed to this lane; while the first connection
    /// attempt is still under way (a lane just started for a new client), waits for it to
    /// settle, and an idle lane is started and waited for, both within `connect_timeout`.
    /// Fails fast while the server's circuit is open.
    pub async fn ready_peer(&self) -> Result<(Arc<Peer>, Arc<ServerHello>), RpcError> {
        self.health.admit()?;
        self.note_request();
        let settled = *self.attempts.borrow();
        if self.wake() || settled == 0 {
            let mut rx = self.attempts.subscribe();
            let next = rx.wait_for(|n| *n > settled);
            let _ = tokio::time::timeout(self.cfg.connect_timeout, next).await;
        }
        self.peer()
    }

    fn unavailable(&self, why: &str) -> RpcError {
        RpcError::new(
            code::UPSTREAM_UNAVAILABLE,
            format!("server {} is unavailable: {why}", self.name),
        )
    }

    /// Waits until the first connection attempt has settled (ready or failed).
    pub async fn first_attempt(&self) {
        let mut rx = self.attempts.subscribe();
        let _ = rx.wait_for(|n| *n > 0).await;
    }

    /// Subscribes to updates of `uri` on a 2026-07-28 server: its listen stream reopens with
    /// the resource added, and this returns once the server acknowledged it (so no update
    /// after the client's `resources/subscribe` returns is missed).
    pub(crate) async fn watch_resource(&self, uri: &str) -> Result<(), RpcError> {
        let mut acked = self.acked.subscribe();
        if self
            .watched
            .lock()
            .expect("watched lock")
            .insert(uri.to_owned())
        {
            self.rewatch.send_modify(|n| *n += 1);
        }
        let confirmed = acked.wait_for(|set| set.contains(uri));
        match tokio::time::timeout(self.cfg.connect_timeout, confirmed).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(RpcError::new(
                code::UPSTREAM_UNAVAILABLE,
                format!(
                    "server {} did not confirm the subscription to {uri:?} on its \
                     subscriptions/listen stream within {:?}",
                    self.name, self.cfg.connect_timeout
                ),
            )),
        }
    }

    /// Ends the subscription to `uri` on a 2026-07-28 server.
    pub(crate) fn unwatch_resource(&self, uri: &str) {
        if self.watched.lock().expect("watched lock").remove(uri) {
            self.rewatch.send_modify(|n| *n += 1);
        }
    }

    /// What this lane's listen stream asks a 2026-07-28 server for; `None` when there is
    /// nothing to listen to.
    fn listen_params(&self, caps: &Value) -> Option<Value> {
        let mut wanted = serde_json::Map::new();
        for (kind, key) in [
            ("tools", "toolsListChanged"),
            ("prompts", "promptsListChanged"),
            ("resources", "resourcesListChanged"),
        ] {
            if caps.pointer(&format!("/{kind}/listChanged")) == Some(&Value::Bool(true)) {
                wanted.insert(key.into(), Value::Bool(true));
            }
        }
        let uris: Vec<String> = self
            .watched
            .lock()
            .expect("watched lock")
            .iter()
            .cloned()
            .collect();
        if !uris.is_empty() {
            wanted.insert("resourceSubscriptions".into(), json!(uris));
        }
        (!wanted.is_empty()).then(|| json!({ "notifications": wanted }))
    }

    /// Stops the server and waits (at most 10 s) until its connection is closed: a stdio
    /// server's process group ended (stdin closed, then SIGTERM, then SIGKILL) and reaped,
    /// also when it was still starting.
    pub async fn stop(&self) {
        self.shutdown.send_replace(true);
        let mut done = self.done.subscribe();
        if tokio::time::timeout(STOP_LIMIT, done.wait_for(|d| *d))
            .await
            .is_err()
        {
            tracing::warn!(server = %self.name, "the server did not stop within {STOP_LIMIT:?}");
        }
    }

    /// Calls in flight to the server (all its lanes).
    pub fn in_flight(&self) -> usize {
        self.limiter.in_flight()
    }

    /// Closes the connection being set up, if any.
    async fn close_connecting(&self) {
        let peer = self.connecting.lock().expect("connecting lock").take();
        if let Some(peer) = peer {
            peer.close().await;
        }
    }

    /// Connects and finds the server's era: 2026-07-28 (`server/discover`), else the legacy
    /// `initialize`; a URL that refuses Streamable HTTP outright (HTTP 400, 404 or 405) is
    /// then tried with the legacy HTTP+SSE transport, as the spec's back-compatibility rules
    /// say. The answer is found again on every reconnect, so a server upgraded in place is
    /// spoken to in its new era.
    async fn connect(self: &Arc<Self>) -> Result<(Arc<Peer>, ServerHello), String> {
        let timeout = self.cfg.connect_timeout;
        let attempt = async {
            match self.handshake(&self.cfg).await {
                Err(Handshake::RefusedHttp(error)) => {
                    let TransportConfig::StreamableHttp(http) = &self.cfg.transport else {
                        return Err(error);
                    };
                    tracing::debug!(server = %self.name, %error, "Streamable HTTP refused; trying the HTTP+SSE transport");
                    let mut sse = self.cfg.clone();
                    sse.transport = TransportConfig::Sse(http.clone());
                    self.handshake(&sse).await.map_err(|e| match e {
                        Handshake::Failed(e) | Handshake::RefusedHttp(e) => {
                            format!("{error}; as an HTTP+SSE server: {e}")
                        }
                    })
                }
                Err(Handshake::Failed(e)) => Err(e),
                Ok(done) => Ok(done),
            }
        };
        let outcome = tokio::time::timeout(timeout, attempt).await;
        let half_open = self.connecting.lock().expect("connecting lock").take();
        match outcome {
            Ok(r) => r,
            Err(_) => {
                // Ended in stages in the background; the supervisor goes on.
                if let Some(peer) = half_open {
                    tokio::spawn(async move { peer.close().await });
                }
                Err(format!(
                    "no answer to server/discover or initialize within {timeout:?}"
                ))
            }
        }
    }

    /// One connection attempt over the transport `cfg` names.
    async fn handshake(
        self: &Arc<Self>,
        cfg: &ServerConfig,
    ) -> Result<(Arc<Peer>, ServerHello), Handshake> {
        let timeout = self.cfg.connect_timeout;
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let transport = Transport::connect(cfg, &self.ctx, tx)
            .await
            .map_err(|e| Handshake::Failed(e.to_string()))?;
        let events: Arc<dyn PeerEvents> = Arc::new(ServerLink(Arc::downgrade(self)));
        let probe_modern = match self.cfg.protocol {
            ProtocolChoice::Legacy => false,
            ProtocolChoice::Modern => true,
            // The legacy SSE transport predates 2026-07-28.
            ProtocolChoice::Auto => !matches!(cfg.transport, TransportConfig::Sse(_)),
        };
        let peer = Peer::start(
            self.name.clone(),
            transport,
            rx,
            events,
            self.cfg.request_timeout,
            self.tool_timeouts.clone(),
            self.limiter.clone(),
        );
        *self.connecting.lock().expect("connecting lock") = Some(peer.clone());
        if probe_modern {
            // Half the budget for the probe, so a server that ignores unknown methods still
            // gets its `initialize`.
            let probe = match self.cfg.protocol {
                ProtocolChoice::Modern => timeout,
                _ => timeout / 2,
            };
            match peer.discover(self.caps.value().clone(), probe).await {
                Ok(hello) => return Ok((peer, hello)),
                Err(e) if self.cfg.protocol == ProtocolChoice::Modern => {
                    peer.close().await;
                    return Err(Handshake::Failed(format!(
                        "server/discover failed ({}); the server is configured with \
                         protocol = \"2026-07-28\"",
                        e.message
                    )));
                }
                Err(e) if peer.is_closed() => {
                    return Err(Handshake::Failed(format!(
                        "server/discover failed: {}",
                        e.message
                    )));
                }
                Err(e) => {
                    tracing::debug!(server = %self.name, error = %e.message, "no 2026-07-28 answer to server/discover; trying initialize");
                }
            }
        }
        match peer.initialize(self.caps.value().clone(), timeout).await {
            Ok(hello) => Ok((peer, hello)),
            Err(e) => {
                peer.close().await;
                let error = format!("initialize failed: {}", e.message);
                let status = e
                    .data
                    .as_ref()
                    .and_then(|d| d.get("httpStatus"))
                    .and_then(Value::as_u64);
                match status {
                    Some(400 | 404 | 405) if self.cfg.protocol == ProtocolChoice::Auto => {
                        Err(Handshake::RefusedHttp(error))
                    }
                    _ => Err(Handshake::Failed(error)),
                }
            }
        }
    }

    /// Re-reads every list the server offers and reports a change if there was one.
    pub(crate) async fn refresh_catalog(&self, said: Changes, trigger: Trigger) {
        let Ok((peer, hello)) = self.peer() else {
            return;
        };
        let caps = &hello.capabilities;
        let old = self.catalog();
        let mut next = (*old).clone();
        next.stale = false;
        // A kind the server no longer declares is gone (a last known one included).
        if caps.get("tools").is_none() {
            next.tools.clear();
        }
        if caps.get("prompts").is_none() {
            next.prompts.clear();
        }
        if caps.get("resources").is_none() {
            next.resources.clear();
            next.templates.clear();
        }
        if caps.get("tools").is_some() {
            next.hints.tools = list_into(
                &peer,
                self.cfg.list_timeout,
                method::TOOLS_LIST,
                "tools",
                &mut next.tools,
            )
            .await;
        }
        if caps.get("prompts").is_some() {
            next.hints.prompts = list_into(
                &peer,
                self.cfg.list_timeout,
                method::PROMPTS_LIST,
                "prompts",
                &mut next.prompts,
            )
            .await;
        }
        if caps.get("resources").is_some() {
            next.hints.resources = list_into(
                &peer,
                self.cfg.list_timeout,
                method::RESOURCES_LIST,
                "resources",
                &mut next.resources,
            )
            .await;
            next.hints.templates = list_into(
                &peer,
                self.cfg.list_timeout,
                method::RESOURCE_TEMPLATES_LIST,
                "resourceTemplates",
                &mut next.templates,
            )
            .await;
        }
        let next = Arc::new(next);
        self.unknown
            .store(false, std::sync::atomic::Ordering::Relaxed);
        *self.catalog.write().expect("catalog lock") = next.clone();
        self.catalog_version
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.changed(said);
        if let Some(sink) = &self.sink {
            sink.synced(&self.name, trigger, &next);
        }
    }

    fn changed(&self, said: Changes) {
        let _ = self.events.try_send(ServerEvent::Changed {
            server: self.name.clone(),
            lane: self.caps.key().clone(),
            said,
        });
    }

    fn set_status(&self, status: Status) {
        *self.status.write().expect("status lock") = status;
        self.status_seq.send_modify(|n| *n += 1);
        self.changed(Changes::default());
    }

    /// Waits until the status satisfies `f`.
    pub async fn status_until(&self, f: impl Fn(&Status) -> bool) {
        let mut seq = self.status_seq.subscribe();
        loop {
            seq.mark_unchanged();
            if f(&self.status()) {
                return;
            }
            if seq.changed().await.is_err() {
                return;
            }
        }
    }

    fn attempt_settled(&self) {
        self.attempts.send_modify(|n| *n += 1);
    }
}

/// Fetches every page of a list; on error keeps what was there and logs. Returns the
/// list's cache hint (the most cautious over its pages), if the server gave one.
async fn list_into(
    peer: &Arc<Peer>,
    timeout: Duration,
    method: &str,
    key: &str,
    into: &mut Vec<Value>,
) -> Option<CacheHint> {
    let mut items = Vec::new();
    let mut cursor: Option<Value> = None;
    let mut hints = Vec::new();
    for _ in 0..MAX_PAGES {
        let params = cursor.take().map(|c| json!({"cursor": c}).into());
        match peer.request_with(method, params, None, timeout).await {
            Ok(mut result) => {
                hints.push(CacheHint::of(&result));
                if let Some(Value::Array(page)) = result.get_mut(key).map(Value::take) {
                    items.extend(page);
                }
                match result.get("nextCursor") {
                    Some(c) if !c.is_null() => cursor = Some(c.clone()),
                    _ => {
                        *into = items;
                        return Some(CacheHint::merge(hints)).filter(|_| peer.is_modern());
                    }
                }
            }
            Err(e) => {
                tracing::warn!(server = peer.server(), method, error = %e, "listing failed; keeping the previous list");
                return None;
            }
        }
    }
    tracing::warn!(
        server = peer.server(),
        method,
        "more than {MAX_PAGES} pages; list truncated"
    );
    *into = items;
    None
}

/// Keeps one server connected until it is stopped or dropped, then closes its connection.
async fn supervise(server: Weak<UpstreamServer>) {
    let Some(mut stop) = server.upgrade().map(|s| s.shutdown.subscribe()) else {
        return;
    };
    keep_connected(&server, &mut stop).await;
    if let Some(s) = server.upgrade() {
        s.done.send_replace(true);
    }
}

/// Resolves once the server is told to stop.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|v| *v).await;
}

/// Waits until a request wants the idle lane (true) or the lane is stopped or dropped.
async fn wanted(server: &Weak<UpstreamServer>, stop: &mut watch::Receiver<bool>) -> bool {
    let Some(mut wanted) = server.upgrade().map(|s| s.wanted.subscribe()) else {
        return false;
    };
    tokio::select! {
        r = wanted.wait_for(|w| *w) => r.is_ok(),
        () = stopped(stop) => false,
    }
}

/// Resolves once the lane had no request for `idle` and no call is in flight (never when
/// `idle` is `None`, or once the lane is dropped).
async fn idle_for(server: &Weak<UpstreamServer>, idle: Option<Duration>) {
    let Some(idle) = idle else {
        return std::future::pending().await;
    };
    loop {
        let Some(s) = server.upgrade() else {
            return std::future::pending().await;
        };
        let quiet = s.unrequested_for();
        if quiet >= idle && s.in_flight() == 0 {
            return;
        }
        drop(s);
        // A call in flight notes a request when it ends, so waiting `idle` again is enough.
        let wait = if quiet >= idle { idle } else { idle - quiet };
        tokio::time::sleep(wait).await;
    }
}

/// Puts the lane to sleep: clears earlier wake-ups, then marks it idle (new requests wake
/// it and wait) and resets what a clean stop must not leave behind in its health.
fn go_idle(s: &UpstreamServer, after: Duration) {
    s.wanted.send_replace(false);
    if s.is_default_lane() {
        s.health.idled();
    }
    tracing::info!(server = %s.name, caps = %s.caps.key(), "no request for {after:?}: stopping the server (idle_shutdown); it starts again on the next request");
    s.set_status(Status::Idle {
        stopped_after: Some(after),
    });
}

async fn keep_connected(server: &Weak<UpstreamServer>, stop: &mut watch::Receiver<bool>) {
    // Its steps are the failures in a row: failed starts and connections that did not last
    // `STABLE`.
    let mut backoff = Backoff::new();
    let mut trigger = Trigger::Connect;
    let Some((lazy, idle)) = server.upgrade().map(|s| (s.lazy, s.cfg.idle_shutdown)) else {
        return;
    };
    if lazy && !wanted(server, stop).await {
        return;
    }
    loop {
        let Some(s) = server.upgrade() else { return };
        if s.is_idle() {
            s.set_status(Status::Starting);
        }
        // Health is reported by the default lane only; a stdio start waits for a spawn slot.
        let reports = s.is_default_lane();
        let attempt = tokio::select! {
            r = async {
                let _slot = match s.cfg.transport {
                    TransportConfig::Stdio(_) => Some(super::health::spawn_slot().await),
                    _ => None,
                };
                s.connect().await
            } => r,
            () = stopped(stop) => {
                s.close_connecting().await;
                return;
            }
        };
        let (error, failed_attempt) = match attempt {
            Ok((peer, hello)) => {
                let since = tokio::time::Instant::now();
                tracing::info!(server = %s.name, version = %hello.protocol_version, "server connected");
                if reports {
                    s.health.connected();
                }
                s.set_status(Status::Ready {
                    peer: peer.clone(),
                    hello: Arc::new(hello),
                });
                tokio::select! {
                    () = s.refresh_catalog(Changes::default(), trigger) => {}
                    () = stopped(stop) => {
                        peer.close().await;
                        return;
                    }
                }
                trigger = Trigger::Reconnect;
                s.attempt_settled();
                if peer.is_modern() {
                    tokio::spawn(listen(Arc::downgrade(&s), peer.clone()));
                }
                let quiet = tokio::select! {
                    () = peer.wait_closed() => false,
                    () = stopped(stop) => {
                        peer.close().await;
                        return;
                    }
                    () = idle_for(server, idle) => true,
                };
                if quiet {
                    // A clean stop, not a failure: no backoff, no restart counted.
                    go_idle(&s, idle.unwrap_or_default());
                    peer.close().await;
                    backoff.reset();
                    drop(s);
                    if !wanted(server, stop).await {
                        return;
                    }
                    continue;
                }
                if since.elapsed() >= STABLE {
                    backoff.reset();
                }
                let reason = peer
                    .close_reason()
                    .unwrap_or_else(|| "connection closed".into());
                // Whatever the process left behind (its group) ends in the background.
                tokio::spawn(async move { peer.close().await });
                (format!("connection lost: {reason}"), false)
            }
            Err(error) => (error, true),
        };
        if reports {
            s.health.lost(&error);
        }
        let delay = backoff.next();
        let failures = backoff.steps();
        if reports {
            s.health.restarting(delay);
        }
        if failures >= CRASH_LOOP {
            tracing::warn!(
                server = %s.name,
                failures,
                next_attempt_in = ?delay,
                ceiling = ?Backoff::CEILING,
                %error,
                "server is crash-looping: {failures} failures in a row; next attempt in {delay:.1?}"
            );
        } else {
            tracing::warn!(server = %s.name, %error, next_attempt_in = ?delay, "server failed; reconnecting");
        }
        let shown = if failures >= CRASH_LOOP {
            format!(
                "{error} (crash loop: {failures} failures in a row, next attempt in {delay:.1?})"
            )
        } else {
            error
        };
        s.set_status(Status::Down { error: shown });
        if failed_attempt {
            s.attempt_settled();
        }
        drop(s);
        let quiet = tokio::select! {
            _ = tokio::time::sleep(delay) => false,
            () = stopped(stop) => { return; }
            // Nobody needs a server that is down: stop retrying until a request comes.
            () = idle_for(server, idle) => true,
        };
        if quiet {
            if let Some(s) = server.upgrade() {
                go_idle(&s, idle.unwrap_or_default());
            }
            backoff.reset();
            if !wanted(server, stop).await {
                return;
            }
        }
    }
}

/// How long one upstream listen request may stay open before it is reopened.
const LISTEN_SPAN: Duration = Duration::from_secs(24 * 3600);

/// Keeps a `subscriptions/listen` stream open to a 2026-07-28 server while its connection
/// lasts: list changes and resource updates arrive on it as notifications (handled like a
/// legacy server's, by [`ServerLink`]). It reopens when the watched resources change, and
/// after the server ends it (re-reading the catalog, since changes may have been missed).
async fn listen(server: Weak<UpstreamServer>, peer: Arc<Peer>) {
    let mut backoff = Backoff::new();
    let Some(mut rewatch) = server.upgrade().map(|s| s.rewatch.subscribe()) else {
        return;
    };
    loop {
        rewatch.mark_unchanged();
        let Some(s) = server.upgrade() else { return };
        if peer.is_closed() {
            return;
        }
        let caps = match s.status() {
            Status::Ready { hello, .. } => hello.capabilities.clone(),
            _ => return,
        };
        let Some(params) = s.listen_params(&caps) else {
            // Nothing to listen to until a client subscribes to a resource.
            drop(s);
            tokio::select! {
                r = rewatch.changed() => if r.is_err() { return } else { continue },
                () = peer.wait_closed() => return,
            }
        };
        let stream = peer.request_with(
            method::SUBSCRIPTIONS_LISTEN,
            Some(params.into()),
            None,
            LISTEN_SPAN,
        );
        tokio::select! {
            outcome = stream => match outcome {
                Ok(_) => {
                    tracing::debug!(server = %s.name, "the server ended its listen stream; reopening");
                    backoff.reset();
                    let all = Changes { tools: true, prompts: true, resources: true };
                    s.refresh_catalog(all, Trigger::ListChanged).await;
                }
                Err(_) if peer.is_closed() => return,
                Err(e) if e.code == code::METHOD_NOT_FOUND => {
                    tracing::info!(server = %s.name, "the server does not serve subscriptions/listen; its list changes will not be seen");
                    return;
                }
                Err(e) => {
                    tracing::debug!(server = %s.name, error = %e.message, "listen stream failed; retrying");
                    let delay = backoff.next();
                    drop(s);
                    tokio::time::sleep(delay).await;
                }
            },
            // Dropping the request closes the stream; the loop opens the new one.
            r = rewatch.changed() => if r.is_err() { return },
        }
    }
}

/// Exponential backoff from 250 ms to 30 s with ±20% jitter.
struct Backoff {
    next: Duration,
    /// Delays handed out since the last reset.
    steps: u32,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);
    const CEILING: Duration = Duration::from_secs(30);

    fn new() -> Self {
        Backoff {
            next: Self::FIRST,
            steps: 0,
        }
    }

    fn reset(&mut self) {
        *self = Backoff::new();
    }

    /// How many delays [`Backoff::next`] handed out since the last reset.
    fn steps(&self) -> u32 {
        self.steps
    }

    fn next(&mut self) -> Duration {
        self.steps = self.steps.saturating_add(1);
        let base = self.next;
        self.next = (self.next * 2).min(Self::CEILING);
        let mut b = [0u8; 2];
        let _ = getrandom::fill(&mut b);
        let jitter = f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) * 0.4 + 0.8;
        base.mul_f64(jitter)
    }
}

/// The server's [`PeerEvents`]: what its shared connection receives unasked.
struct ServerLink(Weak<UpstreamServer>);

impl PeerEvents for ServerLink {
    fn notification(&self, n: Notification) {
        let Some(server) = self.0.upgrade() else {
            return;
        };
        match n.method.as_str() {
            method::TOOLS_LIST_CHANGED
            | method::PROMPTS_LIST_CHANGED
            | method::RESOURCES_LIST_CHANGED => {
                let said = Changes {
                    tools: n.method == method::TOOLS_LIST_CHANGED,
                    prompts: n.method == method::PROMPTS_LIST_CHANGED,
                    resources: n.method == method::RESOURCES_LIST_CHANGED,
                };
                tokio::spawn(
                    async move { server.refresh_catalog(said, Trigger::ListChanged).await },
                );
            }
            method::SUBSCRIPTIONS_ACKNOWLEDGED => {
                let uris = n
                    .params
                    .as_ref()
                    .and_then(|p| p.pointer("/notifications/resourceSubscriptions"))
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|u| u.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                server.acked.send_replace(uris);
            }
            _ => {
                let _ = server.events.try_send(ServerEvent::Notification {
                    server: server.name.clone(),
                    lane: server.caps.key().clone(),
                    notification: n,
                });
            }
        }
    }

    fn request(&self, req: Request) -> BoxFuture<Result<Value, RpcError>> {
        // A lane may serve several clients, each with its own roots and its own model: a
        // request no client call caused has no one to go to. Refusing it (rather than, say,
        // answering an empty root list) lets the server ask again inside a call, where the
        // answer comes from the client that made the call.
        let error = RpcError::new(
            code::METHOD_NOT_FOUND,
            format!(
                "{} cannot be routed: it is not related to any client request in flight",
                req.method
            ),
        );
        Box::pin(async move { Err(error) })
    }

    fn closed(&self, _reason: &str) {
        // The supervisor waits on the peer itself (`Peer::wait_closed`).
    }
}

#[cfg(test)]
mod tests {
    use super::{Backoff, CacheHint};

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_ceiling_counts_its_steps_and_starts_over() {
        let mut b = Backoff::new();
        let mut base = Backoff::FIRST;
        for _ in 0..12 {
            let d = b.next();
            assert!(
                d >= base.mul_f64(0.79) && d <= base.mul_f64(1.21),
                "{d:?} vs {base:?}"
            );
            base = (base * 2).min(Backoff::CEILING);
        }
        assert_eq!(base, Backoff::CEILING);
        assert!(b.next() <= Backoff::CEILING.mul_f64(1.21));
        assert_eq!(b.steps(), 13, "it counts the delays it handed out");
        b.reset();
        assert_eq!(b.steps(), 0);
        assert!(b.next() <= Backoff::FIRST.mul_f64(1.21));
        assert_eq!(b.steps(), 1);
    }

    #[test]
    fn merged_cache_hint_is_as_cautious_as_its_most_cautious_part() {
        let hint = |ttl_ms, public| Some(CacheHint { ttl_ms, public });
        let merged = CacheHint::merge([hint(60_000, true), hint(30_000, true)]);
        assert_eq!(
            merged,
            CacheHint {
                ttl_ms: 30_000,
                public: true
            }
        );
        let merged = CacheHint::merge([hint(60_000, true), hint(90_000, false)]);
        assert_eq!(
            merged,
            CacheHint {
                ttl_ms: 60_000,
                public: false
            }
        );
        let merged = CacheHint::merge([hint(60_000, true), None]);
        assert_eq!(
            merged,
            CacheHint {
                ttl_ms: 0,
                public: false
            }
        );
        let empty = CacheHint::merge([]);
        assert_eq!(
            empty,
            CacheHint {
                ttl_ms: 0,
                public: true
            }
        );
    }
}
