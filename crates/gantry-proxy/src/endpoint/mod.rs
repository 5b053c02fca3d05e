//! A curated endpoint: which servers, which of their tools and prompts, under which names.
//!
//! The endpoint keeps an immutable [`View`] of its servers' catalogs, rebuilt only when a
//! catalog changes and swapped in whole. There is one view per set of client capabilities in
//! use, built from the lanes that declare them (a server may offer more to a client that can
//! sample, say). Each view records the catalog versions it was built
//! from, so a read never sees a view older than the catalogs (one atomic load per server); the
//! hot path otherwise takes a read lock and an `Arc` clone: no recomputation, no database, no
//! lock held across an await. Change notifications compare against the last view announced
//! to clients, so a rebuild on read never swallows a `list_changed`.

mod naming;
mod template;

use std::collections::HashMap;

use crate::FastMap;
use std::sync::{Arc, RwLock};

use gantry_config::{EndpointConfig, Override};
use gantry_core::names::glob_match;
use serde_json::{Map, Value, json};

use crate::access::Grant;
use crate::progressive::Progressive;
use crate::upstream::{CacheHint, ClientCaps, ListHints, ServerGroup, Status, UpstreamServer};
use naming::Candidate;

/// Where a public tool or prompt name leads.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// Index of the server in [`Endpoint::servers`].
    pub server: usize,
    /// The server's own name for it.
    pub name: String,
}

/// What an endpoint publishes, computed from its servers' catalogs.
#[derive(Debug, Default)]
pub struct View {
    /// Public tool definitions, in server order then the server's order.
    pub tools: Vec<Value>,
    /// Public tool name → server and original name.
    pub tool_routes: FastMap<String, Route>,
    /// Public tool name → the arguments its schema mirrors into `Mcp-Param-*` headers
    /// (`x-mcp-header`), as (property path, header token); only tools that have any.
    pub tool_headers: FastMap<String, crate::mcp_headers::Declared>,
    /// Public prompt definitions.
    pub prompts: Vec<Value>,
    /// Public prompt name → server and original name.
    pub prompt_routes: FastMap<String, Route>,
    /// Resources of all servers (URIs are not renamed).
    pub resources: Vec<Value>,
    /// Resource URI → server.
    pub resource_routes: HashMap<String, usize>,
    /// Resource templates of all servers.
    pub templates: Vec<Value>,
    /// (URI template, server) in order, for reads of URIs no list names.
    pub template_routes: Vec<(String, usize)>,
    /// Clashes and other reasons some items are withheld.
    pub problems: Vec<String>,
    /// How long each merged list may be cached (2026-07-28 `ttlMs`, `cacheScope`).
    pub hints: ListHints,
    /// The meta-tools and search index, when the endpoint is progressive for this view
    /// (`mode = "progressive"`, or `auto` with more tools than its threshold).
    pub progressive: Option<Arc<Progressive>>,
    /// In a view narrowed by entitlements: the globs a resource URI that no list names must
    /// match to be read or subscribed to.
    pub resource_globs: Option<Arc<[String]>>,
}

impl View {
    /// What `tools/list` publishes: the meta-tools of a progressive view, else the tools.
    pub fn listed_tools(&self) -> &Vec<Value> {
        match &self.progressive {
            Some(p) => &p.listed,
            None => &self.tools,
        }
    }
}

pub use crate::upstream::Changes;

/// A view and the catalog versions of the lanes it was built from.
type Built = (Vec<u64>, Arc<View>);

/// Most entitled views an endpoint caches (per client capability set and team set); beyond,
/// the cache starts over.
const MAX_ENTITLED_VIEWS: usize = 1024;

/// An entitled view and the full view it was narrowed from.
type Narrowed = (Arc<View>, Arc<View>);

/// (client capabilities key, entitled teams key).
type NarrowedKey = (Arc<str>, Arc<str>);

/// A published endpoint.
pub struct Endpoint {
    name: String,
    cfg: EndpointConfig,
    servers: Vec<Arc<ServerGroup>>,
    /// The current view per set of client capabilities.
    views: RwLock<FastMap<Arc<str>, Built>>,
    /// Per (client capabilities, entitled teams), the narrowed view and the view it came from
    /// (a new full view makes it stale).
    entitled: RwLock<FastMap<NarrowedKey, Narrowed>>,
    /// Per set of client capabilities, the view whose lists clients were last told about.
    announced: std::sync::Mutex<HashMap<Arc<str>, Arc<View>>>,
    /// The gateway's `serverInfo` for this endpoint.
    server_info: Value,
    /// The same, written out once (every 2026-07-28 result carries it).
    server_info_raw: Box<serde_json::value::RawValue>,
}

// === impl Endpoint ===

impl Endpoint {
    pub(crate) fn new(cfg: EndpointConfig, servers: Vec<Arc<ServerGroup>>) -> Endpoint {
        let ep = Endpoint::build(cfg, servers, HashMap::new());
        ep.changes_to_announce(&ClientCaps::none());
        ep
    }

    /// The endpoint rebuilt by a hot reload (new config or new servers) in place of
    /// `previous`: it starts from the lists `previous` last announced, so the next
    /// [`Endpoint::changes_to_announce`] tells clients what the rebuild changed.
    pub(crate) fn succeed(
        cfg: EndpointConfig,
        servers: Vec<Arc<ServerGroup>>,
        previous: &Endpoint,
    ) -> Endpoint {
        let announced = previous.announced.lock().expect("announced lock").clone();
        Endpoint::build(cfg, servers, announced)
    }

    fn build(
        cfg: EndpointConfig,
        servers: Vec<Arc<ServerGroup>>,
        announced: HashMap<Arc<str>, Arc<View>>,
    ) -> Endpoint {
        let server_info = json!({
            "name": format!("gantry/{}", cfg.name),
            "title": format!("Gantry endpoint {}", cfg.name),
            "version": env!("CARGO_PKG_VERSION"),
        });
        Endpoint {
            name: cfg.name.clone(),
            servers,
            views: RwLock::new(FastMap::default()),
            entitled: RwLock::new(FastMap::default()),
            announced: std::sync::Mutex::new(announced),
            server_info_raw: serde_json::value::to_raw_value(&server_info)
                .expect("an object of strings serialises"),
            server_info,
            cfg,
        }
    }

    /// The endpoint's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The endpoint's config.
    pub fn config(&self) -> &EndpointConfig {
        &self.cfg
    }

    /// The gateway's `serverInfo` for this endpoint.
    pub fn server_info(&self) -> &Value {
        &self.server_info
    }

    /// [`Endpoint::server_info`] as JSON text.
    pub fn server_info_raw(&self) -> &serde_json::value::RawValue {
        &self.server_info_raw
    }

    /// Its servers, in config order.
    pub fn servers(&self) -> &[Arc<ServerGroup>] {
        &self.servers
    }

    /// The index of `server` among this endpoint's servers, if it is one of them.
    pub fn server_index(&self, server: &str) -> Option<usize> {
        self.servers.iter().position(|s| &**s.name() == server)
    }

    /// The lanes that serve clients with `caps`, one per server in config order.
    pub fn lanes(&self, caps: &ClientCaps) -> Vec<Arc<UpstreamServer>> {
        self.servers.iter().map(|g| g.lane(caps)).collect()
    }

    /// The current view for clients with `caps`, rebuilt first if a catalog changed since
    /// it was built. The common case is one read lock and one version load per server.
    pub fn view(&self, caps: &ClientCaps) -> Arc<View> {
        if let Some((built, view)) = self.views.read().expect("views lock").get(caps.key())
            && built.len() == self.servers.len()
            && self
                .servers
                .iter()
                .zip(built)
                .all(|(g, v)| g.lane(caps).catalog_version() == *v)
        {
            return view.clone();
        }
        let lanes = self.lanes(caps);
        let versions: Vec<u64> = lanes.iter().map(|l| l.catalog_version()).collect();
        let mut views = self.views.write().expect("views lock");
        let first = !views.contains_key(caps.key());
        let slot = views.entry(caps.key().clone()).or_default();
        if slot.0 != versions || first {
            let next = Arc::new(self.build_view(&lanes, &slot.1));
            for p in next
                .problems
                .iter()
                .filter(|p| !slot.1.problems.contains(p))
            {
                tracing::warn!(endpoint = %self.name, "{p}");
            }
            *slot = (versions, next);
        }
        let view = slot.1.clone();
        drop(views);
        if first {
            // A client may list before anything is announced: what it saw is the baseline.
            self.announced
                .lock()
                .expect("announced lock")
                .entry(caps.key().clone())
                .or_insert_with(|| view.clone());
        }
        view
    }

    /// The view for a caller with `grant`: the full view, or the part of it the caller's
    /// entitlements cover, narrowed once per change of the full view and cached.
    pub fn view_for(&self, caps: &ClientCaps, grant: &Grant) -> Arc<View> {
        let full = self.view(caps);
        let Grant::Entitled(e) = grant else {
            return full;
        };
        let key = (caps.key().clone(), e.key.clone());
        if let Some((from, narrowed)) = self.entitled.read().expect("entitled lock").get(&key)
            && Arc::ptr_eq(from, &full)
        {
            return narrowed.clone();
        }
        let narrowed = Arc::new(self.narrow(&full, &e.globs));
        let mut cache = self.entitled.write().expect("entitled lock");
        if cache.len() >= MAX_ENTITLED_VIEWS {
            cache.clear();
        }
        cache.insert(key, (full, narrowed.clone()));
        narrowed
    }

    /// Whether lists may be cached by shared caches (2026-07-28 `cacheScope: public`): only
    /// on a `public` endpoint without entitlements, where every caller sees the same.
    pub fn lists_shareable(&self) -> bool {
        self.cfg.access == gantry_config::Access::Public && self.cfg.entitlements.is_none()
    }

    /// The part of `full` that `globs` entitle: tools and prompts by public name, resources
    /// by URI, templates by `uriTemplate`. Progressive meta-tools search only what remains.
    fn narrow(&self, full: &View, globs: &gantry_config::Entitlement) -> View {
        let any = |globs: &[String], s: &str| globs.iter().any(|g| glob_match(g, s));
        let named = |defs: &[Value], globs: &[String]| -> Vec<Value> {
            defs.iter()
                .filter(|d| {
                    d.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| any(globs, n))
                })
                .cloned()
                .collect()
        };
        let keep = |routes: &FastMap<String, Route>, defs: &[Value]| -> FastMap<String, Route> {
            defs.iter()
                .filter_map(|d| d.get("name").and_then(Value::as_str))
                .filter_map(|n| Some((n.to_owned(), routes.get(n)?.clone())))
                .collect()
        };
        let mut view = View {
            hints: full.hints,
            ..View::default()
        };
        view.tools = named(&full.tools, &globs.tools);
        view.tool_routes = keep(&full.tool_routes, &view.tools);
        view.tool_headers = full
            .tool_headers
            .iter()
            .filter(|(n, _)| view.tool_routes.contains_key(*n))
            .map(|(n, d)| (n.clone(), d.clone()))
            .collect();
        if self.cfg.mode.is_progressive(view.tools.len()) {
            view.progressive = Some(self.progressive(&view));
        }
        view.prompts = named(&full.prompts, &globs.prompts);
        view.prompt_routes = keep(&full.prompt_routes, &view.prompts);
        view.resources = full
            .resources
            .iter()
            .filter(|r| {
                r.get("uri")
                    .and_then(Value::as_str)
                    .is_some_and(|u| any(&globs.resources, u))
            })
            .cloned()
            .collect();
        view.resource_routes = full
            .resource_routes
            .iter()
            .filter(|(u, _)| any(&globs.resources, u))
            .map(|(u, i)| (u.clone(), *i))
            .collect();
        view.templates = full
            .templates
            .iter()
            .filter(|t| {
                t.get("uriTemplate")
                    .and_then(Value::as_str)
                    .is_some_and(|u| any(&globs.resources, u))
            })
            .cloned()
            .collect();
        view.template_routes = full
            .template_routes
            .iter()
            .filter(|(t, _)| any(&globs.resources, t))
            .cloned()
            .collect();
        view.resource_globs = Some(globs.resources.clone().into());
        view
    }

    /// The meta-tools and search index over the tools of `view`.
    fn progressive(&self, view: &View) -> Arc<Progressive> {
        let names: Vec<&str> = self.servers.iter().map(|s| &**s.name()).collect();
        Arc::new(Progressive::build(&view.tools, &view.tool_routes, &names))
    }

    /// Which lists for clients with `caps` differ from the ones they were last told about;
    /// the current view becomes the announced one.
    pub(crate) fn changes_to_announce(&self, caps: &ClientCaps) -> Changes {
        let next = self.view(caps);
        let mut announced = self.announced.lock().expect("announced lock");
        let slot = announced
            .entry(caps.key().clone())
            .or_insert_with(|| next.clone());
        let changes = Changes {
            tools: slot.tools != next.tools,
            prompts: slot.prompts != next.prompts,
            resources: slot.resources != next.resources || slot.templates != next.templates,
        };
        *slot = next;
        changes
    }

    fn visible(&self, qualified: &str) -> bool {
        (self.cfg.include.is_empty() || self.cfg.include.iter().any(|g| glob_match(g, qualified)))
            && !self.cfg.exclude.iter().any(|g| glob_match(g, qualified))
    }

    /// The view of `lanes`' catalogs; `previous` lends its search index when the tools did
    /// not change (a resource or prompt change rebuilds the view, not the index).
    fn build_view(&self, lanes: &[Arc<UpstreamServer>], previous: &View) -> View {
        let catalogs: Vec<_> = lanes.iter().map(|s| s.catalog()).collect();
        let mut view = View::default();
        let merged = |hint: fn(&ListHints) -> Option<CacheHint>| {
            Some(CacheHint::merge(catalogs.iter().map(|c| hint(&c.hints))))
        };
        view.hints = ListHints {
            tools: merged(|h| h.tools),
            prompts: merged(|h| h.prompts),
            resources: merged(|h| h.resources),
            templates: merged(|h| h.templates),
        };
        let (tools, tool_routes) = self.name_items(
            "tool",
            catalogs.iter().map(|c| &c.tools),
            |s| &s.config().tools,
            &self.cfg.tools,
            &mut view.problems,
        );
        view.tool_headers = tools
            .iter()
            .filter_map(|t| {
                let name = t.get("name")?.as_str()?;
                let found = crate::mcp_headers::declared(t.get("inputSchema")?);
                (!found.is_empty()).then(|| (name.to_owned(), found))
            })
            .collect();
        view.tools = tools;
        view.tool_routes = tool_routes;
        if self.cfg.mode.is_progressive(view.tools.len()) {
            view.progressive = match &previous.progressive {
                Some(p) if previous.tools == view.tools => Some(p.clone()),
                _ => Some(self.progressive(&view)),
            };
        }
        let (prompts, prompt_routes) = self.name_items(
            "prompt",
            catalogs.iter().map(|c| &c.prompts),
            |s| &s.config().prompts,
            &self.cfg.prompts,
            &mut view.problems,
        );
        view.prompts = prompts;
        view.prompt_routes = prompt_routes;
        for (i, c) in catalogs.iter().enumerate() {
            for r in &c.resources {
                let Some(uri) = r.get("uri").and_then(Value::as_str) else {
                    continue;
                };
                if let Some(first) = view.resource_routes.get(uri) {
                    view.problems.push(format!(
                        "resource {uri:?} is offered by {} and {}; reads go to {}",
                        self.servers[*first].name(),
                        self.servers[i].name(),
                        self.servers[*first].name()
                    ));
                    continue;
                }
                view.resource_routes.insert(uri.to_owned(), i);
                view.resources.push(r.clone());
            }
            for t in &c.templates {
                if let Some(tpl) = t.get("uriTemplate").and_then(Value::as_str) {
                    view.template_routes.push((tpl.to_owned(), i));
                }
                view.templates.push(t.clone());
            }
        }
        view
    }

    /// Filters, overrides and names one kind of item across servers.
    fn name_items<'a>(
        &self,
        kind: &str,
        lists: impl Iterator<Item = &'a Vec<Value>>,
        server_overrides: impl Fn(&ServerGroup) -> &std::collections::BTreeMap<String, Override>,
        endpoint_overrides: &std::collections::BTreeMap<String, Override>,
        problems: &mut Vec<String>,
    ) -> (Vec<Value>, FastMap<String, Route>) {
        let mut candidates = Vec::new();
        let mut defs = Vec::new();
        for (i, list) in lists.enumerate() {
            let server = &self.servers[i];
            for item in list {
                let Some(original) = item.get("name").and_then(Value::as_str) else {
                    continue;
                };
                let qualified = format!("{}/{original}", server.name());
                if !self.visible(&qualified) {
                    continue;
                }
                let ov = merge_overrides(
                    server_overrides(server).get(original),
                    endpoint_overrides.get(&qualified),
                );
                candidates.push(Candidate {
                    server: i,
                    server_name: server.name().to_string(),
                    original: original.to_owned(),
                    fixed: ov.name.clone(),
                });
                defs.push((item, ov));
            }
        }
        let named = naming::assign(&self.cfg.naming, kind, &candidates);
        problems.extend(named.problems);
        let mut out = Vec::with_capacity(defs.len());
        let mut routes = FastMap::with_capacity_and_hasher(defs.len(), Default::default());
        for ((c, (item, ov)), name) in candidates.iter().zip(defs).zip(named.names) {
            let Some(name) = name else { continue };
            out.push(rewrite(item, &name, &ov));
            routes.insert(
                name,
                Route {
                    server: c.server,
                    name: c.original.clone(),
                },
            );
        }
        (out, routes)
    }

    /// The server that can read `uri`: from the resource lists, then by URI template, then
    /// the only server that offers resources at all.
    pub fn resource_server(&self, view: &View, uri: &str) -> Option<usize> {
        if let Some(i) = view.resource_routes.get(uri) {
            return Some(*i);
        }
        if let Some(globs) = &view.resource_globs
            && !globs.iter().any(|g| glob_match(g, uri))
        {
            // Not entitled: exactly as if no server offered it.
            return None;
        }
        if let Some((_, i)) = view
            .template_routes
            .iter()
            .find(|(tpl, _)| template::matches(tpl, uri))
        {
            return Some(*i);
        }
        let mut with_resources = self.servers.iter().enumerate().filter(|(_, s)| {
            matches!(s.default_lane().status(), Status::Ready { hello, .. } if hello.capabilities.get("resources").is_some())
        });
        match (with_resources.next(), with_resources.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    /// The server a `completion/complete` for a resource template should go to.
    pub fn template_server(&self, view: &View, template: &str) -> Option<usize> {
        view.template_routes
            .iter()
            .find(|(tpl, _)| tpl == template)
            .map(|(_, i)| *i)
            .or_else(|| self.resource_server(view, template))
    }

    /// The honest union of what the endpoint's connected servers offer.
    pub fn capabilities(&self) -> Value {
        let mut caps = Map::new();
        caps.insert("tools".into(), json!({"listChanged": true}));
        let mut prompts = false;
        let mut resources = false;
        let mut subscribe = false;
        let mut logging = false;
        let mut completions = false;
        for s in &self.servers {
            let hello = match s.default_lane().status() {
                Status::Ready { hello, .. } => hello,
                Status::Idle { .. } => {
                    // A server not running on purpose offers what it last listed.
                    let c = s.default_lane().catalog();
                    prompts |= !c.prompts.is_empty();
                    resources |= !c.resources.is_empty() || !c.templates.is_empty();
                    continue;
                }
                _ => continue,
            };
            let c = &hello.capabilities;
            prompts |= c.get("prompts").is_some();
            resources |= c.get("resources").is_some();
            subscribe |= c.pointer("/resources/subscribe") == Some(&Value::Bool(true));
            logging |= c.get("logging").is_some();
            completions |= c.get("completions").is_some();
        }
        if prompts {
            caps.insert("prompts".into(), json!({"listChanged": true}));
        }
        if resources {
            caps.insert(
                "resources".into(),
                json!({"listChanged": true, "subscribe": subscribe}),
            );
        }
        if logging {
            caps.insert("logging".into(), json!({}));
        }
        if completions {
            caps.insert("completions".into(), json!({}));
        }
        Value::Object(caps)
    }

    /// The servers' instructions, each under its server's name.
    pub fn instructions(&self) -> Option<String> {
        let parts: Vec<String> = self
            .servers
            .iter()
            .filter_map(|s| match s.default_lane().status() {
                Status::Ready { hello, .. } => hello
                    .instructions
                    .as_ref()
                    .map(|i| format!("## {}\n{i}", s.name())),
                _ => None,
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join("\n\n"))
    }
}

fn merge_overrides(server: Option<&Override>, endpoint: Option<&Override>) -> Override {
    let mut out = server.cloned().unwrap_or_default();
    if let Some(e) = endpoint {
        if e.name.is_some() {
            out.name = e.name.clone();
        }
        if e.title.is_some() {
            out.title = e.title.clone();
        }
        if e.description.is_some() {
            out.description = e.description.clone();
        }
        if let Some(a) = &e.annotations {
            let merged = out.annotations.get_or_insert_with(Map::new);
            merged.extend(a.clone());
        }
    }
    out
}

/// The public definition: the server's, renamed and overridden, everything else unchanged.
fn rewrite(item: &Value, name: &str, ov: &Override) -> Value {
    let mut def = item.clone();
    let Some(obj) = def.as_object_mut() else {
        return def;
    };
    obj.insert("name".into(), Value::from(name));
    if let Some(t) = &ov.title {
        obj.insert("title".into(), Value::from(t.as_str()));
    }
    if let Some(d) = &ov.description {
        obj.insert("description".into(), Value::from(d.as_str()));
    }
    if let Some(a) = &ov.annotations {
        let ann = obj
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(ann) = ann.as_object_mut() {
            ann.extend(a.clone());
        }
    }
    def
}
