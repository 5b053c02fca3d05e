//! The router: a client's request → the right server, under the server's own names.
//!
//! Lists are answered from the endpoint's view with cursors the gateway mints; calls are
//! looked up by public name, renamed to the server's name and forwarded with everything else
//! in `params` (arguments, `_meta`, unknown fields) untouched.

mod cursor;

use std::sync::{Arc, LazyLock};

use gantry_core::protocol::{self, code, log_level_rank, method};
use gantry_core::{Params, Payload, RawObject, Request, RpcError};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::Gateway;
use crate::access::Grant;
use crate::endpoint::{Endpoint, Route, View};
use crate::session::{ClientHello, Session};
use crate::upstream::{ClientCaps, ClientLink, Peer, ServerGroup, UpstreamServer};

/// Answers one request of `session`: a forwarded result as its server sent it, or one the
/// gateway built.
pub(crate) async fn handle(
    gw: &Gateway,
    session: &Arc<Session>,
    req: Request,
    link: Arc<dyn ClientLink>,
) -> Result<Payload, RpcError> {
    let ep = &*session.endpoint();
    if req.method == method::INITIALIZE && !session.is_stateless() {
        return Ok(initialize(session, &req).await.into());
    }
    let caps = &*session.caps();
    let caller = session.caller();
    let grant = &caller.grant;
    // A listen stream subscribes to its resources through the same path as a legacy
    // session's `resources/subscribe`.
    let listen_subscribe = session.is_listening() && req.method == method::RESOURCES_SUBSCRIBE;
    if session.is_stateless()
        && !listen_subscribe
        && REMOVED_IN_MODERN.contains(&req.method.as_str())
    {
        return Err(RpcError::method_not_found(&req.method));
    }
    let answered = match req.method.as_str() {
        method::PING => Ok(json!({})),
        method::DISCOVER if session.is_stateless() => Ok(discover(ep, caps).await),
        method::TOOLS_LIST => list(session, caps, &req, "tools", |v| {
            (v.listed_tools(), v.hints.tools)
        }),
        method::PROMPTS_LIST => list(session, caps, &req, "prompts", |v| {
            (&v.prompts, v.hints.prompts)
        }),
        method::RESOURCES_LIST => list(session, caps, &req, "resources", |v| {
            (&v.resources, v.hints.resources)
        }),
        method::RESOURCE_TEMPLATES_LIST => list(session, caps, &req, "resourceTemplates", |v| {
            (&v.templates, v.hints.templates)
        }),
        method::TOOLS_CALL => {
            let view = ep.view_for(caps, grant);
            let req = match meta_tool(&view, req) {
                Meta::Answered(result) => return Ok(result.into()),
                Meta::Forward(req) => req,
            };
            let target = by_name(ep, caps, grant, view, req, "tool", |v| &v.tool_routes).await?;
            return forward(gw, session, method::TOOLS_CALL, target, link).await;
        }
        method::PROMPTS_GET => {
            let view = ep.view_for(caps, grant);
            let target =
                by_name(ep, caps, grant, view, req, "prompt", |v| &v.prompt_routes).await?;
            return forward(gw, session, method::PROMPTS_GET, target, link).await;
        }
        method::RESOURCES_READ => {
            let target = by_uri(ep, caps, grant, req).await?;
            return forward(gw, session, method::RESOURCES_READ, target, link).await;
        }
        method::RESOURCES_SUBSCRIBE => {
            let uri = req.param_str("uri").unwrap_or_default().into_owned();
            let target = by_uri(ep, caps, grant, req).await?;
            let result = if target.peer.is_modern() {
                // 2026-07-28 servers take subscriptions on their listen stream.
                target.lane.watch_resource(&uri).await?;
                json!({})
            } else {
                target
                    .peer
                    .request(method::RESOURCES_SUBSCRIBE, Some(target.params), None)
                    .await?
            };
            session.subscribe(&uri);
            Ok(result)
        }
        method::RESOURCES_UNSUBSCRIBE => {
            let uri = req.param_str("uri").unwrap_or_default().into_owned();
            let target = by_uri(ep, caps, grant, req).await?;
            let peer = target.peer;
            session.unsubscribe(&uri);
            // The upstream subscription is shared by every client on the same lane: keep it
            // while any of them still wants updates.
            let others = gw
                .all_sessions()
                .iter()
                .any(|s| s.is_subscribed(&uri) && s.caps().key() == caps.key());
            if others {
                Ok(json!({}))
            } else if peer.is_modern() {
                target.lane.unwatch_resource(&uri);
                Ok(json!({}))
            } else {
                peer.request(method::RESOURCES_UNSUBSCRIBE, Some(target.params), None)
                    .await
            }
        }
        method::COMPLETE => complete(ep, caps, grant, req, link).await,
        method::SET_LEVEL => set_level(ep, caps, session, &req).await,
        other => Err(RpcError::method_not_found(other)),
    };
    answered.map(Payload::from)
}

/// How long `initialize` waits for servers that are still making their first connection
/// attempt, so that the capabilities it advertises include them.
const INITIALIZE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

async fn initialize(session: &Arc<Session>, req: &Request) -> Value {
    let asked = req.param_str("protocolVersion").unwrap_or_default();
    let version = if protocol::is_legacy_version(&asked) {
        &*asked
    } else {
        protocol::LATEST_LEGACY_VERSION
    };
    let declared = req.param("capabilities");
    session.set_hello(ClientHello::new(
        declared.as_deref().unwrap_or(&Value::Null),
    ));
    let ep = &*session.endpoint();
    // Starts the lanes that declare this client's capabilities, if they are new.
    let capabilities = endpoint_capabilities(ep, &session.caps()).await;
    let mut result = json!({
        "protocolVersion": version,
        "capabilities": capabilities,
        "serverInfo": ep.server_info(),
    });
    if let Some(i) = ep.instructions() {
        result["instructions"] = Value::from(i);
    }
    result
}

/// Methods 2026-07-28 removed: there is no handshake, subscriptions go through `subscriptions/listen`, the log
/// level comes with each request, and there is no connection to ping.
const REMOVED_IN_MODERN: [&str; 5] = [
    method::INITIALIZE,
    method::RESOURCES_SUBSCRIBE,
    method::RESOURCES_UNSUBSCRIBE,
    method::SET_LEVEL,
    method::PING,
];

/// Waits (briefly) for the lanes serving `caps` that are still making their first
/// connection attempt; a stateless client may be the first with its capabilities. The
/// stateless front calls it before it looks at the view; a legacy session's `initialize`
/// does the same through [`endpoint_capabilities`].
pub(crate) async fn await_lanes(ep: &Endpoint, caps: &ClientCaps) {
    let deadline = tokio::time::Instant::now() + INITIALIZE_WAIT;
    for group in ep.servers() {
        let lane = group.lane(caps);
        // An idle (lazy) server is not started by a handshake.
        if !lane.attempted() && !lane.is_idle() {
            let _ = tokio::time::timeout_at(deadline, lane.first_attempt()).await;
        }
    }
}

/// The endpoint's capabilities for clients with `caps`, after waiting (briefly) for the
/// servers still making their first connection attempt, so that they are included.
pub(crate) async fn endpoint_capabilities(ep: &Endpoint, caps: &ClientCaps) -> Value {
    await_lanes(ep, caps).await;
    ep.capabilities()
}

/// `server/discover` (2026-07-28).
async fn discover(ep: &Endpoint, caps: &ClientCaps) -> Value {
    let mut result = json!({
        "supportedVersions": protocol::MODERN_VERSIONS,
        "capabilities": endpoint_capabilities(ep, caps).await,
    });
    if let Some(i) = ep.instructions() {
        result["instructions"] = Value::from(i);
    }
    result
}

/// Results whose 2026-07-28 form must say how long they may be cached.
const CACHEABLE: [&str; 5] = [
    method::TOOLS_LIST,
    method::PROMPTS_LIST,
    method::RESOURCES_LIST,
    method::RESOURCE_TEMPLATES_LIST,
    method::RESOURCES_READ,
];

/// Whether the 2026-07-28 result of `method_name` says how long it may be cached (see
/// [`finish_stateless`]).
pub(crate) fn is_cacheable(method_name: &str) -> bool {
    CACHEABLE.contains(&method_name) || method_name == method::DISCOVER
}

/// Puts a result or error into its 2026-07-28 form: `resultType`, cache fields (when
/// `cacheable`: the method [`is_cacheable`]), the gateway's `serverInfo` in `_meta`, and the
/// modern code for an unknown resource.
pub(crate) fn finish_stateless(
    ep: &Endpoint,
    cacheable: bool,
    outcome: Result<Payload, RpcError>,
) -> Result<Payload, RpcError> {
    match outcome {
        // A forwarded call's result (the common case) gains its fields in the text.
        Ok(result) if !cacheable && result.as_text().is_some() => match finish_raw(ep, &result) {
            Some(done) => Ok(done),
            None => Ok(finish_tree(ep, false, result.into_value()?)),
        },
        Ok(result) => Ok(finish_tree(ep, cacheable, result.into_value()?)),
        Err(mut e) => {
            if e.code == code::RESOURCE_NOT_FOUND {
                e.code = code::INVALID_PARAMS;
            }
            Err(e)
        }
    }
}

fn finish_tree(ep: &Endpoint, cacheable: bool, mut result: Value) -> Payload {
    if let Some(r) = result.as_object_mut() {
        r.entry("resultType").or_insert_with(|| "complete".into());
        if cacheable {
            // Lists set their own hints (see `list`), a 2026-07-28 server's read keeps
            // its own; the rest (discover, a legacy server's read) promise nothing.
            r.entry("ttlMs").or_insert_with(|| 0.into());
            r.entry("cacheScope").or_insert_with(|| "private".into());
            if !ep.lists_shareable() {
                // What a caller sees depends on who it is: no shared caching.
                r.insert("cacheScope".into(), "private".into());
            }
        }
    }
    if let Some(m) = protocol::meta::of(&mut result) {
        m.insert(protocol::meta::SERVER_INFO.into(), ep.server_info().clone());
    }
    result.into()
}

/// [`finish_tree`] on the text of a result that is not cached: `resultType` if absent, and
/// the gateway's `serverInfo` in `_meta`. `None` when the result or its `_meta` is not an
/// object (the tree decides what becomes of those).
fn finish_raw(ep: &Endpoint, result: &Payload) -> Option<Payload> {
    static COMPLETE: LazyLock<Box<RawValue>> =
        LazyLock::new(|| RawValue::from_string("\"complete\"".into()).expect("a JSON string"));
    let mut fields = RawObject::of(result)?;
    let mut meta = match fields.contains("_meta") {
        false => RawObject::default(),
        true => fields.object("_meta")?,
    };
    meta.set(protocol::meta::SERVER_INFO, ep.server_info_raw());
    if !fields.contains("resultType") {
        fields.set("resultType", &COMPLETE);
    }
    fields.set_object("_meta", meta);
    Some(fields.into_payload())
}

/// One page of a merged list; a 2026-07-28 client also learns how long it may cache it (the
/// smallest TTL of the servers' lists, public only if all of them are).
fn list(
    session: &Session,
    caps: &ClientCaps,
    req: &Request,
    key: &str,
    items: impl Fn(&View) -> (&Vec<Value>, Option<crate::upstream::CacheHint>),
) -> Result<Value, RpcError> {
    let ep = &*session.endpoint();
    // A lazy server whose catalog is unknown starts now; its items follow with list_changed.
    for g in ep.servers() {
        g.wake_unknown(caps);
    }
    let view = ep.view_for(caps, &session.caller().grant);
    let (all, hint) = items(&view);
    let start = match req.param("cursor").as_deref() {
        None | Some(Value::Null) => 0,
        Some(Value::String(c)) => cursor::decode(c, key).ok_or_else(|| {
            RpcError::invalid_params(format!("invalid cursor {c:?}: pass back a nextCursor from an earlier {key} list, or none to start over"))
        })?,
        Some(_) => return Err(RpcError::invalid_params("cursor must be a string")),
    };
    let size = ep.config().page_size.unwrap_or(usize::MAX);
    let end = start.saturating_add(size).min(all.len());
    let page: Vec<Value> = all
        .get(start.min(all.len())..end)
        .unwrap_or_default()
        .to_vec();
    let mut result = json!({ key: page });
    if end < all.len() {
        result["nextCursor"] = Value::from(cursor::encode(key, end));
    }
    if session.is_stateless()
        && let Some(hint) = hint
    {
        result["ttlMs"] = Value::from(hint.ttl_ms);
        let public = hint.public && ep.lists_shareable();
        result["cacheScope"] = Value::from(if public { "public" } else { "private" });
    }
    Ok(result)
}

/// What a `tools/call` on a possibly progressive endpoint turned into.
enum Meta {
    /// A meta-tool answered it (or refused it) itself.
    Answered(Value),
    /// A call to forward as a direct `tools/call`: the request itself, or what a
    /// `call_tool` asked for, with its checked arguments and everything else the client
    /// sent (`_meta`, `requestState`, `inputResponses`, …) unchanged.
    Forward(Request),
}

/// Answers a call of `search_tools` or `describe_tools`, or checks a `call_tool` and turns it
/// into the `tools/call` it stands for. Calls of other names, and every call on a view that
/// is not progressive, pass on unchanged (so a client that learned a tool's own name may
/// still call it directly).
fn meta_tool(view: &View, mut req: Request) -> Meta {
    let Some(p) = &view.progressive else {
        return Meta::Forward(req);
    };
    let Some(name) = req
        .param_str("name")
        .filter(|n| crate::progressive::is_meta(n))
    else {
        return Meta::Forward(req);
    };
    if name != crate::progressive::CALL {
        let empty = json!({});
        let args = req.param("arguments");
        return Meta::Answered(p.answer(&view.tools, &name, args.as_deref().unwrap_or(&empty)));
    }
    let Some(params) = req.params.as_mut() else {
        return Meta::Forward(req);
    };
    match p.take_call(&view.tools, params.value_mut()) {
        Err(refusal) => Meta::Answered(refusal),
        Ok(()) => Meta::Forward(req),
    }
}

/// Where a call goes: the lane and its connection, and the request's params under the
/// server's own names.
struct Target {
    lane: Arc<UpstreamServer>,
    peer: Arc<Peer>,
    params: Params,
    /// The tool's arguments mirrored in `Mcp-Param-*` headers (2026-07-28), if any.
    declared: Option<crate::mcp_headers::Declared>,
}

/// Resolves `params.name` through the routes of `view` (the caller's current view) and renames
/// it for the server; the rest of `params` moves on untouched.
async fn by_name(
    ep: &Endpoint,
    caps: &ClientCaps,
    grant: &Grant,
    mut view: Arc<View>,
    req: Request,
    kind: &str,
    routes: impl Fn(&View) -> &crate::FastMap<String, Route>,
) -> Result<Target, RpcError> {
    let Some(name) = req.param_str("name") else {
        return Err(RpcError::invalid_params(format!(
            "{} needs params.name, the {kind} to use",
            req.method
        )));
    };
    let name = &*name;
    // Looked up once in the common case (a known name).
    let mut route = routes(&view).get(name);
    if route.is_none()
        && let Some(server) = unconnected_owner(ep, caps, name)
    {
        // Its server has not connected (yet): wait for a first attempt under way, then
        // look again, or say why it is unavailable.
        server.lane(caps).ready_peer().await?;
        view = ep.view_for(caps, grant);
        route = routes(&view).get(name);
    }
    let Some(route) = route else {
        return Err(RpcError::invalid_params(format!(
            "unknown {kind} {name:?} on endpoint {:?}: list the {kind}s to see their names",
            ep.name()
        )));
    };
    let declared = view.tool_headers.get(name).cloned();
    let lane = ep.servers()[route.server].lane(caps);
    // Most names are the server's own: then `params` already says it.
    let renamed = route.name != name;
    let mut params = req.params.unwrap_or_else(Params::empty_object);
    if renamed {
        params.set("name", &Value::from(route.name.as_str()));
    }
    let (peer, _) = lane.ready_peer().await?;
    Ok(Target {
        lane,
        peer,
        params,
        declared,
    })
}

fn is_input_required(result: &Payload) -> bool {
    // Most results are text that cannot hold the word, even escaped: no need to read them.
    if let Some(text) = result.as_text()
        && !text.contains("input_required")
        && !text.contains("\\u")
    {
        return false;
    }
    result.top_str("resultType").as_deref() == Some("input_required")
}

/// Most `input_required` rounds one call of a legacy client may take with a 2026-07-28
/// server before the gateway gives up.
const MAX_INPUT_ROUNDS: usize = 16;

/// Sends a call, read or get to its server ([`forward_to`]) and tells the server's circuit
/// breaker how it went.
async fn forward(
    gw: &Gateway,
    session: &Arc<Session>,
    method_name: &str,
    target: Target,
    link: Arc<dyn ClientLink>,
) -> Result<Payload, RpcError> {
    let lane = target.lane.clone();
    let outcome = forward_to(gw, session, method_name, target, link).await;
    settle(&lane, &outcome);
    outcome
}

/// Tells `lane`'s circuit breaker how a request went, and notes that the lane was used
/// (`idle_shutdown` counts from the end of the last call).
fn settle<T>(lane: &UpstreamServer, outcome: &Result<T, RpcError>) {
    lane.health().record(outcome);
    lane.note_request();
}

/// Sends a call, read or get to its server. A 2026-07-28 server that needs input answers
/// `input_required`: a 2026-07-28 client gets that answer with the server's `requestState`
/// sealed (so the retry returns to the same server, unaltered); a legacy client is asked the
/// questions on its session, and the gateway retries with the answers.
async fn forward_to(
    gw: &Gateway,
    session: &Arc<Session>,
    method_name: &str,
    target: Target,
    link: Arc<dyn ClientLink>,
) -> Result<Payload, RpcError> {
    let Target {
        lane,
        peer,
        mut params,
        declared,
    } = target;
    if let Some(scope) = session.scope()
        && let Some(expected) = &scope.resume_server
        && **lane.name() != **expected
    {
        return Err(RpcError::invalid_params(format!(
            "requestState was issued for server {expected:?}, but this request goes to {:?}: \
             retry the same request the input_required result answered",
            lane.name()
        )));
    }
    if !peer.is_modern() {
        return peer
            .request_with_headers(method_name, Some(params), Some(link), Vec::new())
            .await;
    }
    if !session.is_stateless()
        && let Some(level) = session.log_level_name()
    {
        // A 2026-07-28 server logs only for requests that carry a level: the one this
        // legacy client set for its session.
        params.meta_set([(protocol::meta::LOG_LEVEL, &Value::from(level))]);
    }
    let from_client = session
        .scope()
        .map(|s| s.param_headers.as_slice())
        .unwrap_or_default();
    let declared = declared.as_deref().unwrap_or_default();
    // Most tools mirror no argument in a header: then the arguments are not even read.
    let arguments = match declared.is_empty() {
        true => None,
        false => params.get("arguments"),
    };
    let headers = crate::mcp_headers::params(declared, arguments.as_deref(), from_client);
    drop(arguments);
    if session.is_stateless() {
        // One round: the client itself answers and retries.
        let mut result = peer
            .request_with_headers(method_name, Some(params), Some(link), headers)
            .await?;
        if is_input_required(&result) {
            let result = result.value_mut()?;
            let state = result.get_mut("requestState").map(Value::take);
            let payload = json!({"server": &**lane.name(), "state": state.unwrap_or(Value::Null)});
            result["requestState"] = Value::from(gw.sealer.seal(&format!("upstream:{payload}")));
        }
        return Ok(result);
    }
    for _ in 0..MAX_INPUT_ROUNDS {
        let mut result = peer
            .request_with_headers(
                method_name,
                Some(params.clone()),
                Some(link.clone()),
                headers.clone(),
            )
            .await?;
        if !is_input_required(&result) {
            return Ok(result);
        }
        let result = result.value_mut()?;
        let questions = match result.get_mut("inputRequests").map(Value::take) {
            Some(Value::Object(q)) => q,
            _ => serde_json::Map::new(),
        };
        let mut answers = serde_json::Map::new();
        for (key, question) in questions {
            let Some(asked) = question.get("method").and_then(Value::as_str) else {
                return Err(RpcError::new(
                    code::INTERNAL_ERROR,
                    format!(
                        "server {} asked for input {key:?} without a method",
                        lane.name()
                    ),
                ));
            };
            let answer = link
                .request(asked.to_owned(), question.get("params").cloned())
                .await?;
            answers.insert(key, answer);
        }
        let p = params
            .value_mut()
            .as_object_mut()
            .expect("params are an object");
        p.insert("inputResponses".into(), Value::Object(answers));
        match result.get_mut("requestState").map(Value::take) {
            Some(state) => p.insert("requestState".into(), state),
            None => p.remove("requestState"),
        };
    }
    Err(RpcError::new(
        code::INTERNAL_ERROR,
        format!(
            "server {} still asked for input after {MAX_INPUT_ROUNDS} rounds; the call was abandoned",
            lane.name()
        ),
    ))
}

/// Under prefix naming a name says its server even when the server never connected (so its
/// tools were never listed): that server, so the caller can say why it is unavailable.
fn unconnected_owner<'a>(
    ep: &'a Endpoint,
    caps: &ClientCaps,
    name: &str,
) -> Option<&'a Arc<ServerGroup>> {
    let gantry_config::Naming::Prefix { separator, format } = &ep.config().naming else {
        return None;
    };
    let head = format.split("{tool}").next().unwrap_or_default();
    ep.servers().iter().find(|s| {
        let prefix = head
            .replace("{server}", s.name())
            .replace("{sep}", separator);
        name.starts_with(&prefix) && s.lane(caps).peer().is_err()
    })
}

async fn by_uri(
    ep: &Endpoint,
    caps: &ClientCaps,
    grant: &Grant,
    req: Request,
) -> Result<Target, RpcError> {
    let Some(uri) = req.param_str("uri") else {
        return Err(RpcError::invalid_params(format!(
            "{} needs params.uri",
            req.method
        )));
    };
    let view = ep.view_for(caps, grant);
    let Some(i) = ep.resource_server(&view, &uri) else {
        return Err(RpcError::new(
            code::RESOURCE_NOT_FOUND,
            format!(
                "resource not found: no server of endpoint {:?} offers {uri:?}",
                ep.name()
            ),
        )
        .with_data(json!({"uri": uri})));
    };
    let lane = ep.servers()[i].lane(caps);
    let (peer, _) = lane.ready_peer().await?;
    Ok(Target {
        lane,
        peer,
        params: req.params.unwrap_or_else(Params::empty_object),
        declared: None,
    })
}

async fn complete(
    ep: &Endpoint,
    caps: &ClientCaps,
    grant: &Grant,
    req: Request,
    link: Arc<dyn ClientLink>,
) -> Result<Value, RpcError> {
    let mut params = req.params.map_or_else(|| json!({}), Params::into_value);
    let view = ep.view_for(caps, grant);
    let kind = params
        .pointer("/ref/type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let server = match kind {
        "ref/prompt" => {
            let name = params
                .pointer("/ref/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let route = view.prompt_routes.get(name).ok_or_else(|| {
                RpcError::invalid_params(format!(
                    "unknown prompt {name:?} on endpoint {:?}",
                    ep.name()
                ))
            })?;
            params["ref"]["name"] = Value::from(route.name.as_str());
            route.server
        }
        "ref/resource" => {
            let uri = params
                .pointer("/ref/uri")
                .and_then(Value::as_str)
                .unwrap_or_default();
            ep.template_server(&view, uri).ok_or_else(|| {
                RpcError::invalid_params(format!(
                    "no server of endpoint {:?} offers resource template {uri:?}",
                    ep.name()
                ))
            })?
        }
        other => {
            return Err(RpcError::invalid_params(format!(
                "completion/complete needs params.ref.type \"ref/prompt\" or \"ref/resource\", got {other:?}"
            )));
        }
    };
    let lane = ep.servers()[server].lane(caps);
    let (peer, _) = lane.ready_peer().await?;
    let outcome = peer
        .request(method::COMPLETE, Some(params.into()), Some(link))
        .await;
    settle(&lane, &outcome);
    outcome
}

async fn set_level(
    ep: &Endpoint,
    caps: &ClientCaps,
    session: &Session,
    req: &Request,
) -> Result<Value, RpcError> {
    let level = req.param_str("level").unwrap_or_default();
    let Some(rank) = log_level_rank(&level) else {
        return Err(RpcError::invalid_params(format!(
            "unknown log level {level:?}: expected one of {}",
            protocol::LOG_LEVELS.join(", ")
        )));
    };
    session.set_log_level(rank);
    // Servers are shared by all clients: each is asked for this level, and every client's
    // own level is applied by the gateway when a log line arrives.
    for s in ep.lanes(caps) {
        if let Ok((peer, hello)) = s.peer()
            && !peer.is_modern()
            && hello.capabilities.get("logging").is_some()
            && let Err(e) = peer
                .request(method::SET_LEVEL, req.params.clone(), None)
                .await
        {
            tracing::debug!(server = %s.name(), error = %e, "logging/setLevel failed");
        }
    }
    Ok(json!({}))
}
