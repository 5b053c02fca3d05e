//! The admin REST API under `/admin/api/v1`: users, teams, members, keys, servers, endpoints
//! and the catalog, as JSON. Every request needs a bearer credential whose identity may use
//! the control plane; the document at `/admin/api/v1/openapi.json` describes every route of
//! [`ROUTES`] (a test keeps the two equal).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gantry_auth::keys::display_id;
use gantry_auth::{
    AuthContext, AuthError, AuthErrorCode, Authenticator, FailureLimiter, Identity,
    KeyAuthenticator, Source, bearer,
};
use gantry_core::jsonrpc::type_name;
use gantry_proxy::Gateway;
use gantry_store::{
    ChangeFilter, ChangeKind, KeyPlanes, KeyRecord, NewKey, Store, StoreError, Team, User,
    format_ms, now_ms,
};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use serde_json::{Map, Value, json};

use crate::sync::KeySync;

/// Where the API lives.
pub const BASE: &str = "/admin/api/v1";
/// The OpenAPI 3.1 document.
pub const OPENAPI: &str = include_str!("../openapi.json");
/// The largest request body accepted.
const MAX_BODY: usize = 64 * 1024;
/// How long a write waits for the key table to take it in.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(5);

/// What a route does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// The OpenAPI document.
    OpenApi,
    /// Users.
    ListUsers,
    /// Add a user.
    AddUser,
    /// One user.
    GetUser,
    /// Change a user.
    UpdateUser,
    /// Remove a user.
    RemoveUser,
    /// Teams.
    ListTeams,
    /// Add a team.
    AddTeam,
    /// One team.
    GetTeam,
    /// Remove a team.
    RemoveTeam,
    /// A team's members.
    ListMembers,
    /// Add a member.
    AddMember,
    /// Remove a member.
    RemoveMember,
    /// Keys.
    ListKeys,
    /// Create a key.
    CreateKey,
    /// One key.
    GetKey,
    /// Revoke a key.
    RevokeKey,
    /// Servers.
    ListServers,
    /// One server.
    GetServer,
    /// Endpoints.
    ListEndpoints,
    /// One endpoint.
    GetEndpoint,
    /// Stored catalog items.
    CatalogItems,
    /// Catalog changes.
    CatalogChanges,
    /// The running config's source and the last reload's outcome.
    GetConfig,
    /// Reload the config file now.
    ReloadConfig,
}

/// Every route: method, path under [`BASE`] (OpenAPI template syntax), operation.
pub const ROUTES: &[(&str, &str, Op)] = &[
    ("GET", "/openapi.json", Op::OpenApi),
    ("GET", "/users", Op::ListUsers),
    ("POST", "/users", Op::AddUser),
    ("GET", "/users/{name}", Op::GetUser),
    ("PATCH", "/users/{name}", Op::UpdateUser),
    ("DELETE", "/users/{name}", Op::RemoveUser),
    ("GET", "/teams", Op::ListTeams),
    ("POST", "/teams", Op::AddTeam),
    ("GET", "/teams/{name}", Op::GetTeam),
    ("DELETE", "/teams/{name}", Op::RemoveTeam),
    ("GET", "/teams/{name}/members", Op::ListMembers),
    ("PUT", "/teams/{name}/members/{user}", Op::AddMember),
    ("DELETE", "/teams/{name}/members/{user}", Op::RemoveMember),
    ("GET", "/keys", Op::ListKeys),
    ("POST", "/keys", Op::CreateKey),
    ("GET", "/keys/{id}", Op::GetKey),
    ("DELETE", "/keys/{id}", Op::RevokeKey),
    ("GET", "/servers", Op::ListServers),
    ("GET", "/servers/{name}", Op::GetServer),
    ("GET", "/endpoints", Op::ListEndpoints),
    ("GET", "/endpoints/{name}", Op::GetEndpoint),
    ("GET", "/catalog/items", Op::CatalogItems),
    ("GET", "/catalog/changes", Op::CatalogChanges),
    ("GET", "/config", Op::GetConfig),
    ("POST", "/config/reload", Op::ReloadConfig),
];

/// A route's path parameters, in order.
type Params = Vec<String>;

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The route for `method` and `path` (under [`BASE`]): `Ok` with its parameters, `Err(None)`
/// if no route has that path, `Err(Some(allowed))` if others methods do.
fn find(method: &str, path: &str) -> Result<(Op, Params), Option<Vec<&'static str>>> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut allowed = Vec::new();
    for (m, pattern, op) in ROUTES {
        let pat: Vec<&str> = pattern.split('/').collect();
        if pat.len() != segs.len() {
            continue;
        }
        let mut params = Vec::new();
        let matched = pat.iter().zip(&segs).all(|(p, s)| {
            if p.starts_with('{') {
                match percent_decode(s) {
                    Some(v) if !v.is_empty() => {
                        params.push(v);
                        true
                    }
                    _ => false,
                }
            } else {
                p == s
            }
        });
        if !matched {
            continue;
        }
        if *m == method {
            return Ok((*op, params));
        }
        allowed.push(*m);
    }
    Err((!allowed.is_empty()).then_some(allowed))
}

/// An error answer: status, a stable code and a message that says what to fix.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Invalid(m) => ApiError::invalid(m),
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            other => {
                tracing::error!(error = %other, "admin API: database error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("database error: {other}"),
                )
            }
        }
    }
}

type Answer = Response<Full<Bytes>>;

fn json_response(status: StatusCode, body: &Value) -> Answer {
    let mut text = serde_json::to_vec_pretty(body).unwrap_or_default();
    text.push(b'\n');
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn error_response(e: &ApiError) -> Answer {
    json_response(
        e.status,
        &json!({"error": {"status": e.status.as_u16(), "code": e.code, "message": e.message}}),
    )
}

/// A quoted-string value for `WWW-Authenticate` (RFC 9110 §5.6.4).
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The control plane's request handler.
pub struct Admin {
    store: Arc<Mutex<Store>>,
    keys: Arc<KeyAuthenticator>,
    sync: Arc<KeySync>,
    authenticators: Vec<Arc<dyn Authenticator>>,
    limiter: FailureLimiter,
}

impl Admin {
    /// Failed authentications allowed per source address per minute by default.
    pub const MAX_FAILURES: u32 = 10;

    /// The API over `store` (its own connection), creating keys with `keys`' server secret,
    /// refreshing the key table through `sync` after writes, and authenticating callers with
    /// `authenticators` (in order; usually `keys` first).
    pub fn new(
        store: Store,
        keys: Arc<KeyAuthenticator>,
        sync: Arc<KeySync>,
        authenticators: Vec<Arc<dyn Authenticator>>,
    ) -> Admin {
        Admin {
            store: Arc::new(Mutex::new(store)),
            keys,
            sync,
            authenticators,
            limiter: FailureLimiter::new(Self::MAX_FAILURES, Duration::from_secs(60), 10_000),
        }
    }

    /// Replaces the limiter of failed authentications.
    pub fn with_limiter(mut self, limiter: FailureLimiter) -> Admin {
        self.limiter = limiter;
        self
    }

    /// Answers one request.
    pub async fn serve(
        &self,
        gw: &Arc<Gateway>,
        req: Request<hyper::body::Incoming>,
        peer: Option<SocketAddr>,
    ) -> Answer {
        let ip = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.ip());
        let path = req.uri().path().to_owned();
        let Some(rest) = path.strip_prefix(BASE) else {
            return error_response(&ApiError::not_found(format!(
                "not found: {path}; the admin API is under {BASE} (document: {BASE}/openapi.json)"
            )));
        };
        if let Err(wait) = self.limiter.check(ip) {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            tracing::warn!(peer = %ip, retry_after = secs, "admin API: too many failed authentications; refused");
            let mut r = error_response(&ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_failures",
                format!("too many failed authentications from {ip}; try again in {secs} s"),
            ));
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            return r;
        }
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost")
            .to_owned();
        let resource = format!("http://{host}{BASE}");
        let who = match self.authenticate(&req, ip, &resource).await {
            Ok(who) => who,
            Err(resp) => return resp,
        };
        let method = req.method().clone();
        let (op, params) = match find(method.as_str(), rest) {
            Ok(x) => x,
            Err(None) => {
                return error_response(&ApiError::not_found(format!(
                    "no admin API route {path}; see {BASE}/openapi.json"
                )));
            }
            Err(Some(allowed)) => {
                let allow = allowed.join(", ");
                let mut r = error_response(&ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    format!("{method} is not allowed on {path}; allowed: {allow}"),
                ));
                if let Ok(v) = HeaderValue::from_str(&allow) {
                    r.headers_mut().insert(header::ALLOW, v);
                }
                return r;
            }
        };
        let query = req.uri().query().unwrap_or("").to_owned();
        let body = if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
            match read_body(req).await {
                Ok(b) => b,
                Err(e) => return error_response(&e),
            }
        } else {
            None
        };
        let result = self.dispatch(gw, op, params, &query, body, &who).await;
        let status = result.as_ref().map_or_else(|e| e.status, |(s, _)| *s);
        if method != Method::GET || status.is_client_error() || status.is_server_error() {
            tracing::info!(
                subject = %who.subject, method = %method, path = %path, status = status.as_u16(),
                "admin API"
            );
        }
        match result {
            Ok((status, body)) => json_response(status, &body),
            Err(e) => error_response(&e),
        }
    }

    /// The caller's identity, or the refusal to send (logged, never with the credential).
    async fn authenticate(
        &self,
        req: &Request<hyper::body::Incoming>,
        ip: IpAddr,
        resource: &str,
    ) -> Result<Identity, Answer> {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let token = match bearer(header) {
            Ok(Some(t)) => t,
            Ok(None) => {
                return Err(self.refuse(
                    ip,
                    &AuthError::new(
                        AuthErrorCode::Missing,
                        "the admin API needs a control-plane credential: send Authorization: Bearer <API key> (create one with gantry key create --user NAME --plane control)",
                    ),
                    false,
                ));
            }
            Err(e) => return Err(self.refuse(ip, &e, true)),
        };
        let ctx = AuthContext { resource };
        let mut answer = None;
        for a in &self.authenticators {
            if let Some(r) = a.authenticate(token, ctx).await {
                answer = Some(r);
                break;
            }
        }
        let identity = match answer {
            Some(Ok(id)) => id,
            Some(Err(e)) => return Err(self.refuse(ip, &e, true)),
            None => {
                let e = AuthError::invalid_token(
                    "the bearer token is not a Gantry API key (gantry_<id>_<secret>) and no identity provider accepted it",
                );
                return Err(self.refuse(ip, &e, true));
            }
        };
        self.limiter.succeeded(ip);
        if !identity.planes.control {
            let what = match &identity.source {
                Source::ApiKey { id } => format!("the API key {}", display_id(id)),
                Source::Jwt { issuer } => format!("the token from {issuer}"),
            };
            let e = AuthError::new(
                AuthErrorCode::Forbidden,
                format!(
                    "{what} of {:?} is for the data plane only; the admin API needs a control-plane credential (gantry key create --plane control)",
                    identity.subject
                ),
            );
            return Err(self.refuse(ip, &e, false));
        }
        Ok(identity)
    }

    fn refuse(&self, ip: IpAddr, e: &AuthError, failure: bool) -> Answer {
        if failure {
            self.limiter.failed(ip);
        }
        let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        tracing::warn!(
            peer = %ip, status = status.as_u16(), error = e.code.rfc6750().unwrap_or("-"),
            reason = %e.description, "admin API request refused"
        );
        let code = e.code.rfc6750().unwrap_or(match e.code {
            AuthErrorCode::Missing => "missing_credential",
            _ => "forbidden",
        });
        let mut r = error_response(&ApiError::new(status, code, e.description.clone()));
        let mut www = String::from("Bearer realm=\"gantry-admin\"");
        if let Some(err) = e.code.rfc6750() {
            www.push_str(&format!(", error=\"{err}\""));
        }
        www.push_str(&format!(", error_description={}", quoted(&e.description)));
        if let Ok(v) = HeaderValue::from_str(&www) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    }

    /// Runs `f` on the store on a blocking thread; after a write, waits until the key table
    /// has it.
    async fn store<T: Send + 'static>(
        &self,
        write: bool,
        f: impl FnOnce(&mut Store) -> gantry_store::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        let sync = self.sync.clone();
        tokio::task::spawn_blocking(move || {
            let r = {
                let mut s = store.lock().expect("admin store lock");
                f(&mut s)
            };
            if write && r.is_ok() && !sync.refresh_now(REFRESH_TIMEOUT) {
                tracing::warn!(
                    "the API key table did not take in an admin change within {REFRESH_TIMEOUT:?}"
                );
            }
            r
        })
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("the database task failed: {e}"),
            )
        })?
        .map_err(ApiError::from)
    }

    /// Stores the key uses seen so far, so listings show fresh last-used times.
    async fn flush_uses(&self) {
        let sync = self.sync.clone();
        let _ = tokio::task::spawn_blocking(move || sync.refresh_now(REFRESH_TIMEOUT)).await;
    }

    async fn dispatch(
        &self,
        gw: &Arc<Gateway>,
        op: Op,
        params: Params,
        query: &str,
        body: Option<Map<String, Value>>,
        who: &Identity,
    ) -> Result<(StatusCode, Value), ApiError> {
        let ok = |v: Value| Ok((StatusCode::OK, v));
        let p = |i: usize| params.get(i).cloned().unwrap_or_default();
        let q = Query::parse(query, allowed_query(op))?;
        let mut body = Body::new(body);
        match op {
            Op::OpenApi => {
                let doc: Value = serde_json::from_str(OPENAPI).map_err(|e| {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        format!("the OpenAPI document is not JSON: {e}"),
                    )
                })?;
                ok(doc)
            }
            Op::ListUsers => {
                let users = self.store(false, |s| s.users()).await?;
                ok(json!({"users": users.iter().map(user_json).collect::<Vec<_>>()}))
            }
            Op::AddUser => {
                let name = body.required_str("name")?;
                let display = body.optional_str("display_name")?;
                let disabled = body.optional_bool("disabled")?;
                body.finish()?;
                let user = self
                    .store(true, move |s| {
                        let user = s.add_user(&name, display.as_deref(), now_ms())?;
                        match disabled {
                            Some(true) => s.update_user(&name, None, Some(true)),
                            _ => Ok(user),
                        }
                    })
                    .await?;
                tracing::info!(by = %who.subject, user = %user.name, "user added");
                Ok((StatusCode::CREATED, user_json(&user)))
            }
            Op::GetUser => {
                let name = p(0);
                let user = self.store(false, move |s| s.user(&name)).await?;
                match user {
                    Some(u) => ok(user_json(&u)),
                    None => Err(ApiError::not_found(format!("no user {:?}", p(0)))),
                }
            }
            Op::UpdateUser => {
                let name = p(0);
                let display = body.nullable_str("display_name")?;
                let disabled = body.optional_bool("disabled")?;
                body.finish()?;
                let user = self
                    .store(true, move |s| {
                        s.update_user(&name, display.as_ref().map(|d| d.as_deref()), disabled)
                    })
                    .await?;
                ok(user_json(&user))
            }
            Op::RemoveUser => {
                let name = p(0);
                self.store(true, move |s| s.remove_user(&name)).await?;
                tracing::info!(by = %who.subject, user = %p(0), "user removed (with its keys)");
                ok(json!({"removed": p(0)}))
            }
            Op::ListTeams => {
                let teams = self.store(false, |s| s.teams()).await?;
                ok(json!({"teams": teams.iter().map(team_json).collect::<Vec<_>>()}))
            }
            Op::AddTeam => {
                let name = body.required_str("name")?;
                body.finish()?;
                let team = self
                    .store(true, move |s| s.add_team(&name, now_ms()))
                    .await?;
                Ok((StatusCode::CREATED, team_json(&team)))
            }
            Op::GetTeam => {
                let name = p(0);
                match self.store(false, move |s| s.team(&name)).await? {
                    Some(t) => ok(team_json(&t)),
                    None => Err(ApiError::not_found(format!("no team {:?}", p(0)))),
                }
            }
            Op::RemoveTeam => {
                let name = p(0);
                self.store(true, move |s| s.remove_team(&name)).await?;
                ok(json!({"removed": p(0)}))
            }
            Op::ListMembers => {
                let name = p(0);
                match self.store(false, move |s| s.team(&name)).await? {
                    Some(t) => ok(json!({"team": t.name, "members": t.members})),
                    None => Err(ApiError::not_found(format!("no team {:?}", p(0)))),
                }
            }
            Op::AddMember => {
                body.finish()?;
                let (team, user) = (p(0), p(1));
                let (added, t) = self
                    .store(true, move |s| {
                        let added = s.add_member(&team, &user, now_ms())?;
                        Ok((
                            added,
                            s.team(&team)?.unwrap_or(Team {
                                name: team.clone(),
                                created_at: 0,
                                members: Vec::new(),
                            }),
                        ))
                    })
                    .await?;
                let status = if added {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                Ok((status, json!({"team": t.name, "members": t.members})))
            }
            Op::RemoveMember => {
                let (team, user) = (p(0), p(1));
                let t = self
                    .store(true, move |s| {
                        s.remove_member(&team, &user)?;
                        s.team(&team)
                    })
                    .await?;
                let members = t.map(|t| t.members).unwrap_or_default();
                ok(json!({"team": p(0), "members": members}))
            }
            Op::ListKeys => {
                self.flush_uses().await;
                let user = q.get("user");
                let keys = self.store(false, move |s| s.keys(user.as_deref())).await?;
                let now = now_ms();
                ok(json!({"keys": keys.iter().map(|k| key_json(k, now)).collect::<Vec<_>>()}))
            }
            Op::CreateKey => {
                let user = body.required_str("user")?;
                let plane = body.optional_str("plane")?.unwrap_or_else(|| "data".into());
                let planes = KeyPlanes::parse(&plane)?;
                let now = now_ms();
                let expires_at = match body.optional_str("expires")? {
                    Some(e) => Some(gantry_store::identity::parse_expires(&e, now)?),
                    None => None,
                };
                let label = body.optional_str("label")?;
                body.finish()?;
                let generated = self.keys.secret().generate().map_err(|e| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
                })?;
                let new = NewKey {
                    id: generated.id.clone(),
                    user,
                    hash: generated.hash.clone(),
                    planes,
                    label,
                    expires_at,
                };
                let rec = self.store(true, move |s| s.add_key(&new, now)).await?;
                tracing::info!(by = %who.subject, key = %display_id(&rec.id), user = %rec.user, plane = rec.planes.as_str(), "API key created");
                let mut v = key_json(&rec, now);
                v["key"] = Value::from(generated.key);
                v["warning"] = Value::from(
                    "store this key now: Gantry keeps only its hash and cannot show it again",
                );
                Ok((StatusCode::CREATED, v))
            }
            Op::GetKey => {
                self.flush_uses().await;
                let id = gantry_auth::keys::id_of(&p(0)).to_owned();
                let shown = p(0);
                match self.store(false, move |s| s.key(&id)).await? {
                    Some(k) => ok(key_json(&k, now_ms())),
                    None => Err(ApiError::not_found(format!("no key with id {shown:?}"))),
                }
            }
            Op::RevokeKey => {
                let id = gantry_auth::keys::id_of(&p(0)).to_owned();
                let rec = self
                    .store(true, move |s| s.revoke_key(&id, now_ms()))
                    .await?;
                tracing::info!(by = %who.subject, key = %display_id(&rec.id), user = %rec.user, "API key revoked");
                ok(key_json(&rec, now_ms()))
            }
            Op::ListServers => ok(json!({"servers": servers_json(gw)})),
            Op::GetServer => servers_json(gw)
                .into_iter()
                .find(|s| s["name"] == p(0).as_str())
                .map(|s| (StatusCode::OK, s))
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "no server {:?}; configured: [{}]",
                        p(0),
                        names(gw.config().servers.keys())
                    ))
                }),
            Op::ListEndpoints => ok(json!({"endpoints": endpoints_json(gw)})),
            Op::GetEndpoint => endpoints_json(gw)
                .into_iter()
                .find(|s| s["name"] == p(0).as_str())
                .map(|s| (StatusCode::OK, s))
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "no endpoint {:?}; configured: [{}]",
                        p(0),
                        names(gw.config().endpoints.keys())
                    ))
                }),
            Op::GetConfig => {
                let config = gw.config();
                ok(json!({
                    "source": gw
                        .config_source()
                        .unwrap_or(&config.source)
                        .display()
                        .to_string(),
                    "imports": config
                        .imports
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>(),
                    "servers": config.servers.keys().collect::<Vec<_>>(),
                    "endpoints": config.endpoints.keys().collect::<Vec<_>>(),
                    "last_reload": gw.last_reload().map(|r| reload_json(&r)),
                }))
            }
            Op::ReloadConfig => {
                tracing::info!(by = %who.subject, "config reload requested through the admin API");
                let record = gw.reload(gantry_proxy::reload::Trigger::Admin).await;
                match &record.outcome {
                    Ok(_) => ok(reload_json(&record)),
                    // The error envelope, with the reload's located error beside it.
                    Err(f) => Ok((
                        StatusCode::UNPROCESSABLE_ENTITY,
                        json!({
                            "error": {
                                "status": 422,
                                "code": "invalid_config",
                                "message": format!(
                                    "the config was not reloaded; the running config stays in force: {}",
                                    f.message
                                ),
                            },
                            "reload": reload_json(&record),
                        }),
                    )),
                }
            }
            Op::CatalogItems => {
                let server = q.get("server");
                let items = self
                    .store(false, move |s| s.items(server.as_deref()))
                    .await?;
                let items: Vec<Value> = items
                    .into_iter()
                    .map(|i| {
                        json!({
                            "server": i.server,
                            "kind": i.kind.as_str(),
                            "name": i.name,
                            "fingerprint": i.fingerprint,
                            "first_seen": format_ms(i.first_seen),
                            "changed_at": format_ms(i.changed_at),
                            "definition": i.definition,
                        })
                    })
                    .collect();
                ok(json!({"items": items}))
            }
            Op::CatalogChanges => {
                let mut changes = Vec::new();
                if let Some(list) = q.get("change") {
                    for c in list.split(',') {
                        changes.push(match c {
                            "added" => ChangeKind::Added,
                            "changed" => ChangeKind::Changed,
                            "removed" => ChangeKind::Removed,
                            _ => {
                                return Err(ApiError::bad_request(format!(
                                    "change {c:?} is not one of added, changed, removed"
                                )));
                            }
                        });
                    }
                }
                let limit = match q.get("limit") {
                    Some(l) => Some(l.parse::<usize>().map_err(|_| {
                        ApiError::bad_request(format!("limit {l:?} is not a non-negative integer"))
                    })?),
                    None => None,
                };
                let filter = ChangeFilter {
                    server: q.get("server"),
                    changes,
                    limit,
                };
                let list = self.store(false, move |s| s.changes(&filter)).await?;
                let rows: Vec<Value> = list.iter().map(change_json).collect();
                ok(json!({"changes": rows}))
            }
        }
    }
}

impl gantry_proxy::AdminHandler for Admin {
    fn handle<'a>(
        &'a self,
        gw: &'a Arc<Gateway>,
        req: Request<hyper::body::Incoming>,
        peer: Option<SocketAddr>,
    ) -> gantry_auth::BoxFuture<'a, Answer> {
        Box::pin(self.serve(gw, req, peer))
    }
}

fn names<'a>(it: impl Iterator<Item = &'a String>) -> String {
    it.map(String::as_str).collect::<Vec<_>>().join(", ")
}

fn allowed_query(op: Op) -> &'static [&'static str] {
    match op {
        Op::ListKeys => &["user"],
        Op::CatalogItems => &["server"],
        Op::CatalogChanges => &["server", "change", "limit"],
        _ => &[],
    }
}

/// Query parameters, checked against what the route takes.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: &str, allowed: &[&str]) -> Result<Query, ApiError> {
        let mut out = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k)
                .ok_or_else(|| ApiError::bad_request("the query string is not valid UTF-8"))?;
            let v = percent_decode(v)
                .ok_or_else(|| ApiError::bad_request("the query string is not valid UTF-8"))?;
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::bad_request(if allowed.is_empty() {
                    format!("unknown query parameter {k:?}: this route takes none")
                } else {
                    format!(
                        "unknown query parameter {k:?}: this route takes {}",
                        allowed.join(", ")
                    )
                }));
            }
            out.push((k, v));
        }
        Ok(Query(out))
    }

    fn get(&self, k: &str) -> Option<String> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }
}

async fn read_body(
    req: Request<hyper::body::Incoming>,
) -> Result<Option<Map<String, Value>>, ApiError> {
    let bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("the request body is larger than {MAX_BODY} bytes"),
                )
            } else {
                ApiError::bad_request(format!("could not read the request body: {e}"))
            }
        })?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(_) => Err(ApiError::invalid("the request body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

/// A JSON object body, read field by field with precise errors; [`Body::finish`] refuses
/// fields nobody read.
struct Body(Map<String, Value>);

impl Body {
    fn new(m: Option<Map<String, Value>>) -> Body {
        Body(m.unwrap_or_default())
    }

    fn optional_str(&mut self, k: &str) -> Result<Option<String>, ApiError> {
        match self.0.remove(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(ApiError::invalid(format!(
                "field {k:?} must be a string, not {}",
                type_name(&other)
            ))),
        }
    }

    fn required_str(&mut self, k: &str) -> Result<String, ApiError> {
        self.optional_str(k)?
            .ok_or_else(|| ApiError::invalid(format!("field {k:?} is required")))
    }

    /// Absent: `None`; `null`: `Some(None)`.
    fn nullable_str(&mut self, k: &str) -> Result<Option<Option<String>>, ApiError> {
        match self.0.get(k) {
            None => Ok(None),
            Some(Value::Null) => {
                self.0.remove(k);
                Ok(Some(None))
            }
            Some(_) => self.optional_str(k).map(Some),
        }
    }

    fn optional_bool(&mut self, k: &str) -> Result<Option<bool>, ApiError> {
        match self.0.remove(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(ApiError::invalid(format!(
                "field {k:?} must be true or false, not {}",
                type_name(&other)
            ))),
        }
    }

    fn finish(self) -> Result<(), ApiError> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(k) => Err(ApiError::invalid(format!("unknown field {k:?}"))),
        }
    }
}

/// A user, as the admin API and `gantry user list --json` show it.
pub fn user_json(u: &User) -> Value {
    json!({
        "name": u.name,
        "display_name": u.display_name,
        "created_at": format_ms(u.created_at),
        "disabled": u.disabled,
        "teams": u.teams,
    })
}

/// A team, as the admin API and `gantry team list --json` show it.
pub fn team_json(t: &Team) -> Value {
    json!({
        "name": t.name,
        "created_at": format_ms(t.created_at),
        "members": t.members,
    })
}

/// A recorded catalog change, as the admin API and `gantry catalog changes --json` show it.
pub fn change_json(c: &gantry_store::Change) -> Value {
    json!({
        "id": c.id,
        "server": c.server,
        "kind": c.kind,
        "name": c.name,
        "change": c.change,
        "at": format_ms(c.at),
        "old_fingerprint": c.old_fingerprint,
        "new_fingerprint": c.new_fingerprint,
        "trigger": c.trigger,
    })
}

/// A key without its secret (which is not stored anyway), as the admin API and
/// `gantry key list --json` show it.
pub fn key_json(k: &KeyRecord, now: i64) -> Value {
    json!({
        "id": k.id,
        "name": display_id(&k.id),
        "user": k.user,
        "plane": k.planes.as_str(),
        "label": k.label,
        "state": k.state(now),
        "created_at": format_ms(k.created_at),
        "expires_at": k.expires_at.map(format_ms),
        "revoked_at": k.revoked_at.map(format_ms),
        "last_used_at": k.last_used_at.map(format_ms),
    })
}

/// A URL without its query and credentials, which may hold secrets.
fn safe_url(url: &str) -> String {
    let no_query = url.split(['?', '#']).next().unwrap_or(url);
    match no_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            if path.is_empty() {
                format!("{scheme}://{host}")
            } else {
                format!("{scheme}://{host}/{path}")
            }
        }
        None => no_query.to_owned(),
    }
}

fn servers_json(gw: &Arc<Gateway>) -> Vec<Value> {
    let states = gw.catalog_states();
    let health = gw.health_reports();
    let config = gw.config();
    config
        .servers
        .values()
        .map(|cfg| {
            // The program and URL only: never args, env, headers or query strings.
            let (transport, target) = match &cfg.transport {
                gantry_config::TransportConfig::Stdio(s) => ("stdio", s.command.clone()),
                gantry_config::TransportConfig::StreamableHttp(h) => {
                    ("streamable-http", safe_url(&h.url))
                }
                gantry_config::TransportConfig::Sse(h) => ("sse", safe_url(&h.url)),
            };
            let state = states.iter().find(|s| s.server == cfg.name);
            let endpoints: Vec<&str> = config
                .endpoints
                .values()
                .filter(|e| e.servers.contains(&cfg.name))
                .map(|e| e.name.as_str())
                .collect();
            json!({
                "name": cfg.name,
                "transport": transport,
                "target": target,
                "status": state.map_or("unknown".to_owned(), |s| s.status.clone()),
                "stale": state.is_some_and(|s| s.stale),
                "tools": state.map_or(0, |s| s.catalog.tools.len()),
                "prompts": state.map_or(0, |s| s.catalog.prompts.len()),
                "resources": state.map_or(0, |s| s.catalog.resources.len()),
                "resource_templates": state.map_or(0, |s| s.catalog.templates.len()),
                "endpoints": endpoints,
                "health": health
                    .iter()
                    .find(|h| h.server == cfg.name)
                    .map(health_json),
            })
        })
        .collect()
}

/// A server's health report, with its times in UTC.
fn health_json(h: &gantry_proxy::upstream::HealthReport) -> Value {
    let mut v = h.to_json();
    if let Some(o) = v.as_object_mut() {
        o.remove("name");
        o.insert(
            "last_error_at".into(),
            json!(h.last_error.as_ref().map(|e| format_ms(e.1 as i64))),
        );
        o.insert(
            "last_check_at".into(),
            json!(h.last_check_ms.map(|ms| format_ms(ms as i64))),
        );
    }
    v
}

/// A reload's outcome, with its time formatted.
fn reload_json(r: &gantry_proxy::reload::Record) -> Value {
    let mut v = r.to_json();
    v["at"] = Value::from(format_ms(r.at_ms as i64));
    v
}

fn endpoints_json(gw: &Arc<Gateway>) -> Vec<Value> {
    gw.config()
        .endpoints
        .values()
        .map(|cfg| {
            let (mode, above) = match cfg.mode {
                gantry_config::ToolMode::Direct => ("direct", None),
                gantry_config::ToolMode::Progressive => ("progressive", None),
                gantry_config::ToolMode::Auto { above } => ("auto", Some(above)),
            };
            let naming = match cfg.naming {
                gantry_config::Naming::Prefix { .. } => "prefix",
                gantry_config::Naming::Priority { .. } => "priority",
                gantry_config::Naming::Manual => "manual",
            };
            let tools = gw.endpoint(&cfg.name).map_or(0, |ep| {
                ep.view(&gantry_proxy::upstream::ClientCaps::none())
                    .tools
                    .len()
            });
            json!({
                "name": cfg.name,
                "path": format!("/mcp/{}", cfg.name),
                "servers": cfg.servers,
                "mode": mode,
                "progressive_above": above,
                "naming": naming,
                "include": cfg.include,
                "exclude": cfg.exclude,
                "tools": tools,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_paths_and_report_other_methods() {
        assert_eq!(find("GET", "/users"), Ok((Op::ListUsers, vec![])));
        assert_eq!(find("GET", "/users/"), Ok((Op::ListUsers, vec![])));
        assert_eq!(
            find("PUT", "/teams/ops/members/alice%40example.com"),
            Ok((
                Op::AddMember,
                vec!["ops".into(), "alice@example.com".into()]
            ))
        );
        assert_eq!(
            find("POST", "/users/alice"),
            Err(Some(vec!["GET", "PATCH", "DELETE"]))
        );
        assert_eq!(find("GET", "/nope"), Err(None));
        assert_eq!(find("GET", "/users//members"), Err(None));
    }

    /// The document lists exactly the routes the router serves.
    #[test]
    fn the_openapi_document_describes_every_route_and_nothing_else() {
        let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["servers"][0]["url"], BASE);
        let mut documented = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                assert!(op["responses"].is_object(), "{method} {path} has responses");
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
        documented.sort();
        let mut served: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        served.sort();
        assert_eq!(documented, served);
        // Every $ref resolves.
        let text = OPENAPI;
        for part in text.split("\"$ref\": \"#/components/").skip(1) {
            let target = part.split('"').next().unwrap();
            let mut node = &doc["components"];
            for seg in target.split('/') {
                node = &node[seg];
            }
            assert!(!node.is_null(), "unresolved $ref {target}");
        }
    }

    #[test]
    fn urls_lose_their_credentials_and_query() {
        assert_eq!(
            safe_url("https://user:pw@api.example.com/mcp?token=x"),
            "https://api.example.com/mcp"
        );
        assert_eq!(safe_url("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
    }

    #[test]
    fn www_authenticate_values_are_quoted() {
        assert_eq!(quoted("a \"b\" \\ c\n"), "\"a \\\"b\\\" \\\\ c \"");
    }
}
