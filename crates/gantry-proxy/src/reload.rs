//! Hot reload: a new config is compared with the running one and only the difference is
//! applied, without dropping the sessions of endpoints that still exist.
//!
//! **The snapshot.** Everything the config determines — the config itself, the servers, the
//! endpoints and the access front (the endpoints' URLs) — is one immutable [`State`], held by
//! the gateway as `RwLock<Arc<State>>`. A request reads it once (one uncontended read lock and
//! one `Arc` clone) and works on that snapshot; a reload builds a complete new `State` and
//! swaps it in with one short write lock. Nothing on the hot path waits for a reload.
//!
//! **Servers** are compared by their whole config (`ServerConfig: PartialEq`):
//! - unchanged: the same `Arc<ServerGroup>` moves to the new state; its connections, lanes
//!   and catalog are untouched;
//! - added: started (in the background, like at start; no last known catalog is listed for
//!   a server added by a reload);
//! - changed: a new group is started under the same name, the endpoints move to it, and the
//!   old one is retired;
//! - removed: retired.
//!
//! Retiring a server waits until no request to it is in flight, at most [`RETIRE_DRAIN`]
//! (new requests already go to the new state), then closes its connections: a stdio server's
//! process group gets the staged shutdown (stdin closed, SIGTERM, SIGKILL), an HTTP server's
//! session is ended with DELETE. A call still in flight after the bound fails with "server X
//! is not connected: removed from the config by a reload" (or "… replaced …").
//!
//! **Endpoints** are rebuilt when their config changed or one of their servers was replaced;
//! otherwise the same `Arc<Endpoint>` (with its cached views) moves to the new state. An
//! endpoint is immutable, so sessions are *re-pointed*: every session on a rebuilt endpoint is
//! moved to the new build (`Session::set_endpoint`; each request reads its session's endpoint
//! once). The new build starts from the lists the old one last announced
//! (`Endpoint::succeed`), and the usual change path (`changes_to_announce`,
//! `notify_changes`) tells its clients which of tools, prompts and resources changed —
//! a server that is still connecting announces its tools through the same path once it has
//! listed them. Sessions of a removed endpoint are closed; their next request gets 404
//! "unknown endpoint …: it was removed from the config by a reload".
//!
//! **Settings**: `max_body_bytes`, `session_idle_timeout`, `public_url`,
//! `allow_public_on_network`, `authorization_servers` and `allowed_origins` apply at once.
//! `listen`, `data_dir` and `[auth]` need a restart: a change is reported and logged, and the
//! running values stay in force.
//!
//! **Triggers**: [`Gateway::watch_config`] polls the config file and the files it imports
//! (size, mtime and a hash of the content) every [`POLL`] and reloads once a change has been
//! stable for one more poll; SIGHUP reloads at once; the admin API calls
//! [`Gateway::reload`]. A config that does not load or validate is rejected with its located
//! error (file, line, column, field), logged at error level and kept as the last outcome
//! ([`Gateway::last_reload`]); the running config stays in force. The log of a reload names
//! servers, endpoints and changed fields, never values (no env, headers or URLs).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use gantry_config::{Config, ConfigError, EndpointConfig, ServerConfig, TransportConfig};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::endpoint::{Changes, Endpoint};
use crate::upstream::{Catalog, CatalogSink, ClientCaps, ServerEvent, ServerGroup, Status};
use crate::{Gateway, State};

/// How often the config files are checked for changes.
pub const POLL: Duration = Duration::from_millis(500);
/// How long a retired server's in-flight requests may take before its connections close.
pub const RETIRE_DRAIN: Duration = Duration::from_secs(10);

/// Where the config comes from: what a reload loads.
#[derive(Clone)]
pub struct Source {
    /// The config file (for the admin API and the log).
    pub path: PathBuf,
    /// Loads and validates it (the CLI applies its `--listen`/`--data-dir` overrides here).
    pub load: Arc<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>,
}

impl Source {
    /// Loads `path` with [`gantry_config::load`].
    pub fn file(path: PathBuf) -> Source {
        let p = path.clone();
        Source {
            path,
            load: Arc::new(move || gantry_config::load(&p)),
        }
    }
}

/// What caused a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The config file (or a file it imports) changed.
    File,
    /// SIGHUP.
    Signal,
    /// `POST /admin/api/v1/config/reload`.
    Admin,
}

impl Trigger {
    /// Its name in logs and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::File => "file",
            Trigger::Signal => "signal",
            Trigger::Admin => "admin",
        }
    }
}

/// What a reload changed. Names only: never a value from the config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Servers started.
    pub servers_added: Vec<String>,
    /// Servers stopped.
    pub servers_removed: Vec<String>,
    /// Servers restarted, with the fields that changed.
    pub servers_changed: BTreeMap<String, Vec<&'static str>>,
    /// Endpoints published.
    pub endpoints_added: Vec<String>,
    /// Endpoints withdrawn (their sessions closed).
    pub endpoints_removed: Vec<String>,
    /// Endpoints rebuilt, with why: fields that changed, or `server X restarted`.
    pub endpoints_changed: BTreeMap<String, Vec<String>>,
    /// Global settings applied at once.
    pub settings_changed: Vec<&'static str>,
    /// Global settings that changed in the file but need a restart (ignored until then).
    pub needs_restart: Vec<&'static str>,
}

impl Diff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == Diff::default()
    }

    /// The diff as JSON (the admin API's answer).
    pub fn to_json(&self) -> Value {
        json!({
            "servers": {
                "added": self.servers_added,
                "removed": self.servers_removed,
                "changed": self.servers_changed,
            },
            "endpoints": {
                "added": self.endpoints_added,
                "removed": self.endpoints_removed,
                "changed": self.endpoints_changed,
            },
            "settings_changed": self.settings_changed,
            "needs_restart": self.needs_restart,
        })
    }

    /// One line for the log.
    pub fn summary(&self) -> String {
        if self.is_empty() {
            return "no change".into();
        }
        let mut parts = Vec::new();
        let list = |v: &[String]| v.join(", ");
        let changed = |m: &BTreeMap<String, Vec<String>>| {
            m.iter()
                .map(|(k, v)| format!("{k} ({})", v.join(", ")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.servers_added.is_empty() {
            parts.push(format!("servers added: {}", list(&self.servers_added)));
        }
        if !self.servers_removed.is_empty() {
            parts.push(format!("servers removed: {}", list(&self.servers_removed)));
        }
        if !self.servers_changed.is_empty() {
            let m = self
                .servers_changed
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().map(|s| s.to_string()).collect()))
                .collect();
            parts.push(format!("servers restarted: {}", changed(&m)));
        }
        if !self.endpoints_added.is_empty() {
            parts.push(format!("endpoints added: {}", list(&self.endpoints_added)));
        }
        if !self.endpoints_removed.is_empty() {
            parts.push(format!(
                "endpoints removed: {}",
                list(&self.endpoints_removed)
            ));
        }
        if !self.endpoints_changed.is_empty() {
            parts.push(format!(
                "endpoints changed: {}",
                changed(&self.endpoints_changed)
            ));
        }
        if !self.settings_changed.is_empty() {
            parts.push(format!("settings: {}", self.settings_changed.join(", ")));
        }
        if !self.needs_restart.is_empty() {
            parts.push(format!(
                "needs a restart (ignored until then): {}",
                self.needs_restart.join(", ")
            ));
        }
        parts.join("; ")
    }
}

/// Which fields of a server's config differ (names only).
pub fn server_changes(old: &ServerConfig, new: &ServerConfig) -> Vec<&'static str> {
    // `old` is taken apart whole, so a field added to `ServerConfig` does not compile here
    // until it is listed (or named as ignored, like `name`).
    let ServerConfig {
        name: _,
        transport,
        connect_timeout,
        list_timeout,
        request_timeout,
        max_message_bytes,
        max_in_flight,
        tool_timeouts,
        protocol,
        start,
        idle_shutdown,
        health,
        tools,
        prompts,
    } = old;
    let mut out = Vec::new();
    let mut note = |differs: bool, field: &'static str| {
        if differs {
            out.push(field);
        }
    };
    match (transport, &new.transport) {
        (TransportConfig::Stdio(a), TransportConfig::Stdio(b)) => {
            let gantry_config::StdioConfig {
                command,
                args,
                env,
                cwd,
            } = a;
            note(*command != b.command, "command");
            note(*args != b.args, "args");
            note(*env != b.env, "env");
            note(*cwd != b.cwd, "cwd");
        }
        (TransportConfig::StreamableHttp(a), TransportConfig::StreamableHttp(b))
        | (TransportConfig::Sse(a), TransportConfig::Sse(b)) => {
            let gantry_config::HttpConfig { url, headers } = a;
            note(*url != b.url, "url");
            note(*headers != b.headers, "headers");
        }
        _ => note(true, "transport"),
    }
    note(*connect_timeout != new.connect_timeout, "connect_timeout");
    note(*request_timeout != new.request_timeout, "request_timeout");
    note(
        *max_message_bytes != new.max_message_bytes,
        "max_message_bytes",
    );
    note(*protocol != new.protocol, "protocol");
    note(*list_timeout != new.list_timeout, "list_timeout");
    note(*max_in_flight != new.max_in_flight, "max_in_flight");
    note(*tool_timeouts != new.tool_timeouts, "tools.*.timeout");
    note(*health != new.health, "health");
    note(*start != new.start, "start");
    note(*idle_shutdown != new.idle_shutdown, "idle_shutdown");
    note(*tools != new.tools, "tools");
    note(*prompts != new.prompts, "prompts");
    // Only the name is left (a caller that compares two servers of different names).
    if out.is_empty() && old != new {
        out.push("config");
    }
    out
}

/// Which fields of an endpoint's config differ.
pub fn endpoint_changes(old: &EndpointConfig, new: &EndpointConfig) -> Vec<&'static str> {
    // Taken apart whole, as in [`server_changes`]: a new field must be listed here.
    let EndpointConfig {
        name: _,
        servers,
        naming,
        include,
        exclude,
        tools,
        prompts,
        page_size,
        mode,
        access,
        scopes,
        entitlements,
    } = old;
    let mut out = Vec::new();
    let mut note = |differs: bool, field: &'static str| {
        if differs {
            out.push(field);
        }
    };
    note(*servers != new.servers, "servers");
    note(*naming != new.naming, "naming");
    note(*include != new.include, "include");
    note(*exclude != new.exclude, "exclude");
    note(*tools != new.tools, "tools");
    note(*prompts != new.prompts, "prompts");
    note(*page_size != new.page_size, "page_size");
    note(*mode != new.mode, "mode");
    note(*access != new.access, "access");
    note(*scopes != new.scopes, "scopes");
    note(*entitlements != new.entitlements, "entitlements");
    // Only the name is left.
    if out.is_empty() && old != new {
        out.push("config");
    }
    out
}

/// What applying `new` over `old` does.
pub fn diff(old: &Config, new: &Config) -> Diff {
    let mut d = Diff::default();
    for (name, cfg) in &new.servers {
        match old.servers.get(name) {
            None => d.servers_added.push(name.clone()),
            Some(o) if o != cfg => {
                d.servers_changed
                    .insert(name.clone(), server_changes(o, cfg));
            }
            Some(_) => {}
        }
    }
    d.servers_removed = old
        .servers
        .keys()
        .filter(|n| !new.servers.contains_key(*n))
        .cloned()
        .collect();
    for (name, cfg) in &new.endpoints {
        let Some(o) = old.endpoints.get(name) else {
            d.endpoints_added.push(name.clone());
            continue;
        };
        let mut why: Vec<String> = endpoint_changes(o, cfg)
            .into_iter()
            .map(str::to_owned)
            .collect();
        for s in &cfg.servers {
            if d.servers_changed.contains_key(s) {
                why.push(format!("server {s} restarted"));
            }
        }
        if !why.is_empty() {
            d.endpoints_changed.insert(name.clone(), why);
        }
    }
    d.endpoints_removed = old
        .endpoints
        .keys()
        .filter(|n| !new.endpoints.contains_key(*n))
        .cloned()
        .collect();
    for (differs, field) in [
        (old.max_body_bytes != new.max_body_bytes, "max_body_bytes"),
        (
            old.session_idle_timeout != new.session_idle_timeout,
            "session_idle_timeout",
        ),
        (old.public_url != new.public_url, "public_url"),
        (
            old.allow_public_on_network != new.allow_public_on_network,
            "allow_public_on_network",
        ),
        (
            old.authorization_servers != new.authorization_servers,
            "authorization_servers",
        ),
        (
            old.allowed_origins != new.allowed_origins,
            "allowed_origins",
        ),
    ] {
        if differs {
            d.settings_changed.push(field);
        }
    }
    for (differs, field) in [
        (old.listen != new.listen, "listen"),
        (old.data_dir != new.data_dir, "data_dir"),
        (old.auth != new.auth, "auth"),
    ] {
        if differs {
            d.needs_restart.push(field);
        }
    }
    d
}

/// Why a reload was refused, located in the file when the config did not load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The whole message (`file:line:column: field: what`).
    pub message: String,
    /// The file, when known.
    pub file: Option<String>,
    /// 1-based line.
    pub line: Option<usize>,
    /// 1-based column.
    pub column: Option<usize>,
    /// The dotted field.
    pub field: Option<String>,
}

impl Failure {
    fn plain(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            file: None,
            line: None,
            column: None,
            field: None,
        }
    }

    fn from_config(e: &ConfigError) -> Failure {
        match e {
            ConfigError::Io { file, .. } => Failure {
                file: Some(file.clone()),
                ..Failure::plain(e.to_string())
            },
            ConfigError::Invalid(l) => Failure {
                message: e.to_string(),
                file: Some(l.file.clone()),
                line: l.line,
                column: l.column,
                field: (!l.field.is_empty()).then(|| l.field.clone()),
            },
        }
    }

    /// As JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "field": self.field,
        })
    }
}

/// The outcome of one reload.
#[derive(Clone, Debug)]
pub struct Record {
    /// What caused it.
    pub trigger: Trigger,
    /// When it finished, in ms since the Unix epoch.
    pub at_ms: u64,
    /// What changed, or why nothing did.
    pub outcome: Result<Diff, Failure>,
}

impl Record {
    /// As JSON (`at` is left to the caller to format).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "trigger": self.trigger.as_str(),
            "at_ms": self.at_ms,
            "ok": self.outcome.is_ok(),
        });
        match &self.outcome {
            Ok(d) => v["applied"] = d.to_json(),
            Err(f) => v["error"] = f.to_json(),
        }
        v
    }
}

/// What starting a server needs besides its config.
pub(crate) struct Starter {
    pub(crate) events: mpsc::Sender<ServerEvent>,
    pub(crate) sink: Option<Arc<dyn CatalogSink>>,
    /// Calls in flight to all servers (`max_in_flight`, draining at shutdown).
    pub(crate) drain: Arc<crate::upstream::Drain>,
}

impl Starter {
    pub(crate) fn start(&self, cfg: ServerConfig, seed: Option<Catalog>) -> Arc<ServerGroup> {
        ServerGroup::start(
            cfg,
            self.events.clone(),
            seed,
            self.sink.clone(),
            self.drain.clone(),
        )
    }
}

/// The gateway's reload bookkeeping.
pub(crate) struct Reloads {
    source: Option<Source>,
    /// One reload at a time.
    running: tokio::sync::Mutex<()>,
    last: Mutex<Option<Arc<Record>>>,
    /// Servers a reload took out of service whose connections are still closing.
    retiring: Mutex<Vec<Arc<ServerGroup>>>,
}

impl Reloads {
    pub(crate) fn new(source: Option<Source>) -> Reloads {
        Reloads {
            source,
            running: tokio::sync::Mutex::new(()),
            last: Mutex::new(None),
            retiring: Mutex::new(Vec::new()),
        }
    }

    /// Stops every server still being retired (at shutdown).
    pub(crate) async fn stop_retiring(&self) {
        let groups: Vec<_> = self
            .retiring
            .lock()
            .expect("retiring lock")
            .drain(..)
            .collect();
        ServerGroup::stop_all(groups).await;
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

// === impl Gateway (reload) ===

impl Gateway {
    /// The config file reloads read, if there is one.
    pub fn config_source(&self) -> Option<&std::path::Path> {
        self.reloads.source.as_ref().map(|s| s.path.as_path())
    }

    /// The outcome of the last reload, if any.
    pub fn last_reload(&self) -> Option<Arc<Record>> {
        self.reloads.last.lock().expect("last lock").clone()
    }

    /// Loads the config again from its source and applies the difference; a config that
    /// does not load or validate leaves the running one in force. The outcome is logged and
    /// kept ([`Gateway::last_reload`]).
    pub async fn reload(self: &Arc<Self>, trigger: Trigger) -> Arc<Record> {
        let outcome = match self.reloads.source.clone() {
            None => Err(Failure::plain(
                "this gateway was not started from a config file: nothing to reload",
            )),
            Some(src) => {
                let loaded = tokio::task::spawn_blocking(move || (src.load)()).await;
                match loaded {
                    Ok(Ok(config)) => self.apply(config).await,
                    Ok(Err(e)) => Err(Failure::from_config(&e)),
                    Err(e) => Err(Failure::plain(format!("the config loader failed: {e}"))),
                }
            }
        };
        match &outcome {
            Ok(d) => tracing::info!(
                trigger = trigger.as_str(),
                "config reloaded: {}",
                d.summary()
            ),
            Err(f) => tracing::error!(
                trigger = trigger.as_str(),
                "config reload rejected, the running config stays in force: {}",
                f.message
            ),
        }
        let record = Arc::new(Record {
            trigger,
            at_ms: now_ms(),
            outcome,
        });
        *self.reloads.last.lock().expect("last lock") = Some(record.clone());
        record
    }

    /// Applies `new` over the running config: see the [module](self) documentation. Refused
    /// (nothing changes) when `new` cannot be served on the running listener.
    pub async fn apply(self: &Arc<Self>, mut new: Config) -> Result<Diff, Failure> {
        let _one = self.reloads.running.lock().await;
        let old = self.state();
        let d = diff(&old.config, &new);
        // What needs a restart keeps its running value.
        new.listen = old.config.listen;
        new.data_dir = old.config.data_dir.clone();
        new.auth = old.config.auth.clone();
        new.check_listen(new.listen).map_err(Failure::plain)?;
        if d.is_empty() {
            // Nothing to rebuild; the new config may still differ in what no one reads
            // (the source's imports).
            let state = State {
                front: old.front.reconfigured(&new),
                config: Arc::new(new),
                servers: old.servers.clone(),
                endpoints: old.endpoints.clone(),
                removed_endpoints: old.removed_endpoints.clone(),
            };
            *self.state.write().expect("state lock") = Arc::new(state);
            return Ok(d);
        }

        // Servers: keep the unchanged, start the added and changed.
        let mut servers = BTreeMap::new();
        let mut retired: Vec<(Arc<ServerGroup>, &'static str)> = Vec::new();
        for (name, cfg) in &new.servers {
            let group = match old.servers.get(name) {
                Some(g) if g.config() == cfg => g.clone(),
                Some(g) => {
                    retired.push((g.clone(), "replaced by a config reload"));
                    // The replacement lists the old one's catalog (stale) until it has listed
                    // its own, so its tools do not turn "unknown" for the moments in between:
                    // a call then gets "unavailable, retrying", which clients retry.
                    self.starter
                        .start(cfg.clone(), g.default_lane().catalog_if_known())
                }
                None => self.starter.start(cfg.clone(), None),
            };
            servers.insert(name.clone(), group);
        }
        for (name, g) in &old.servers {
            if !new.servers.contains_key(name) {
                retired.push((g.clone(), "removed from the config by a reload"));
            }
        }

        // Endpoints: keep those whose config and servers are the same, rebuild the others.
        let mut endpoints = crate::FastMap::default();
        let mut rebuilt = Vec::new();
        for (name, cfg) in &new.endpoints {
            let members: Vec<Arc<ServerGroup>> =
                cfg.servers.iter().map(|s| servers[s].clone()).collect();
            let ep = match old.endpoints.get(name) {
                Some(ep)
                    if ep.config() == cfg
                        && ep.servers().len() == members.len()
                        && ep
                            .servers()
                            .iter()
                            .zip(&members)
                            .all(|(a, b)| Arc::ptr_eq(a, b)) =>
                {
                    ep.clone()
                }
                Some(ep) => {
                    let next = Arc::new(Endpoint::succeed(cfg.clone(), members, ep));
                    rebuilt.push(next.clone());
                    next
                }
                None => Arc::new(Endpoint::new(cfg.clone(), members)),
            };
            endpoints.insert(name.clone(), ep);
        }
        let mut removed_endpoints: BTreeSet<String> = old
            .removed_endpoints
            .iter()
            .chain(&d.endpoints_removed)
            .filter(|n| !new.endpoints.contains_key(*n))
            .cloned()
            .collect();
        removed_endpoints.retain(|n| !endpoints.contains_key(n));

        let front = old.front.reconfigured(&new);
        let state = Arc::new(State {
            config: Arc::new(new),
            servers,
            endpoints,
            removed_endpoints,
            front,
        });
        *self.state.write().expect("state lock") = state.clone();

        // Sessions: re-point those of rebuilt endpoints, close those of removed ones.
        let mut closing = Vec::new();
        {
            let sessions = self.sessions.read().expect("sessions lock");
            for s in sessions.values() {
                let ep = s.endpoint();
                match state.endpoints.get(ep.name()) {
                    Some(current) if Arc::ptr_eq(current, &ep) => {}
                    Some(current) => s.set_endpoint(current.clone()),
                    None => closing.push(s.id().to_owned()),
                }
            }
        }
        if !closing.is_empty() {
            tracing::info!(
                sessions = closing.len(),
                "closing the sessions of removed endpoints"
            );
        }
        for id in &closing {
            self.close_session(id);
        }

        // Tell the clients of rebuilt endpoints what changed in their lists.
        let all = self.all_sessions();
        for ep in &rebuilt {
            let mut caps: Vec<Arc<ClientCaps>> = vec![Arc::new(ClientCaps::none())];
            let mut seen: HashSet<Arc<str>> = HashSet::new();
            seen.insert(caps[0].key().clone());
            for s in all.iter().filter(|s| Arc::ptr_eq(&s.endpoint(), ep)) {
                let c = s.caps();
                if seen.insert(c.key().clone()) {
                    caps.push(c);
                }
            }
            for c in caps {
                let changes = ep.changes_to_announce(&c);
                if changes != Changes::default() {
                    self.notify_changes(ep, c.key(), changes);
                }
            }
        }

        // Retire the servers no longer in service, off the caller's path.
        if !retired.is_empty() {
            self.reloads
                .retiring
                .lock()
                .expect("retiring lock")
                .extend(retired.iter().map(|(g, _)| g.clone()));
            tokio::spawn(retire(Arc::downgrade(self), retired));
        }
        Ok(d)
    }

    /// Watches the config source: polls its files every [`POLL`] (a change is applied once
    /// it has been stable for one more poll) and reloads on SIGHUP. Does nothing without a
    /// source.
    pub fn watch_config(self: &Arc<Self>) {
        let Some(src) = &self.reloads.source else {
            return;
        };
        tracing::info!(config = %src.path.display(), "watching the config file (and its imports) for changes; SIGHUP reloads it too");
        tokio::spawn(poll_files(Arc::downgrade(self)));
        tokio::spawn(on_sighup(Arc::downgrade(self)));
    }
}

/// Waits for a retired server's in-flight requests (at most [`RETIRE_DRAIN`]), then closes
/// its connections.
async fn retire(gw: Weak<Gateway>, groups: Vec<(Arc<ServerGroup>, &'static str)>) {
    let deadline = tokio::time::Instant::now() + RETIRE_DRAIN;
    loop {
        let busy: usize = groups
            .iter()
            .flat_map(|(g, _)| g.all_lanes())
            .filter_map(|l| l.peer().ok())
            .map(|(p, _)| p.in_flight())
            .sum();
        if busy == 0 || tokio::time::Instant::now() >= deadline {
            if busy > 0 {
                tracing::warn!(
                    requests = busy,
                    "requests to retired servers still in flight after {RETIRE_DRAIN:?}; they fail now"
                );
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (g, why) in &groups {
        for lane in g.all_lanes() {
            if let Status::Ready { peer, .. } = lane.status() {
                peer.close_because((*why).to_owned()).await;
            }
        }
        g.stop().await;
        tracing::info!(server = %g.name(), "server stopped: {why}");
        if let Some(gw) = gw.upgrade() {
            gw.reloads
                .retiring
                .lock()
                .expect("retiring lock")
                .retain(|r| !Arc::ptr_eq(r, g));
        }
    }
}

/// What the watched files look like: per file, its length, mtime and content hash (`None`
/// when it cannot be read).
type Fingerprint = Vec<Option<(u64, Option<SystemTime>, u64)>>;

fn fingerprint(paths: &[PathBuf]) -> Fingerprint {
    use std::hash::{Hash, Hasher};
    paths
        .iter()
        .map(|p| {
            let meta = std::fs::metadata(p).ok()?;
            let bytes = std::fs::read(p).ok()?;
            let mut h = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut h);
            Some((meta.len(), meta.modified().ok(), h.finish()))
        })
        .collect()
}

/// The files the running config was read from.
fn watched(gw: &Gateway) -> Vec<PathBuf> {
    let config = gw.config();
    let mut paths = vec![
        gw.config_source()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_else(|| config.source.clone()),
    ];
    paths.extend(config.imports.iter().cloned());
    paths
}

async fn poll_files(gw: Weak<Gateway>) {
    let Some(paths) = gw.upgrade().map(|g| watched(&g)) else {
        return;
    };
    let mut paths = paths;
    let mut seen = tokio::task::spawn_blocking({
        let p = paths.clone();
        move || fingerprint(&p)
    })
    .await
    .unwrap_or_default();
    let mut pending: Option<Fingerprint> = None;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let p = paths.clone();
        let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&p)).await else {
            continue;
        };
        if now == seen {
            pending = None;
            continue;
        }
        // Debounce: apply once the files look the same on two polls in a row.
        if pending.as_ref() != Some(&now) {
            pending = Some(now);
            continue;
        }
        pending = None;
        seen = now;
        let Some(g) = gw.upgrade() else { return };
        g.reload(Trigger::File).await;
        // The imports may have changed.
        let next = watched(&g);
        if next != paths {
            paths = next;
            let p = paths.clone();
            seen = tokio::task::spawn_blocking(move || fingerprint(&p))
                .await
                .unwrap_or_default();
        }
    }
}

async fn on_sighup(gw: Weak<Gateway>) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; config reloads on file changes only");
            return;
        }
    };
    while hup.recv().await.is_some() {
        let Some(g) = gw.upgrade() else { return };
        tracing::info!("SIGHUP: reloading the config");
        g.reload(Trigger::Signal).await;
    }
}

#[cfg(test)]
mod tests;
