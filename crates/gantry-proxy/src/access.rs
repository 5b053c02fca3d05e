//! The data plane's front door: who is calling an endpoint, and whether they may.
//!
//! Every request to `/mcp/<endpoint>...` passes [`admit`] before anything else reads it. The
//! gateway is an OAuth 2.1 resource server (MCP authorization, RFC 9728, RFC 6750):
//!
//! - the bearer token (`Authorization: Bearer ...`, never a query parameter) is offered to each
//!   configured [`Authenticator`] in order, with the endpoint's canonical URL
//!   (`public_url + /mcp/<name>`) as the audience a JWT must name; the first that knows the
//!   token decides;
//! - the endpoint's policy then decides: `public` admits anyone, `authenticated` any identity
//!   with data-plane access, `restricted` members of its teams; endpoint `scopes` are required
//!   of OAuth tokens (JWTs; API keys are authorized by team alone);
//! - refusals: 400 `invalid_request` (malformed `Authorization`), 401 (no credential, or one no
//!   authenticator accepts: `invalid_token`), 403 (a control-plane-only credential, a caller
//!   outside the endpoint's teams, or `insufficient_scope` with the `scope` to ask for), each
//!   with `WWW-Authenticate: Bearer resource_metadata="..."` pointing at this endpoint's
//!   protected-resource metadata, and 429 with `Retry-After` once a source has failed too
//!   often ([`FailureLimiter`]);
//! - a credential sent to a `public` endpoint is still checked: a wrong token is a client
//!   mistake worth a 401, not something to ignore silently; a valid one selects the caller's
//!   entitlements;
//! - the token itself is never logged, kept, or passed to a server: upstream requests carry
//!   only the server's configured headers and the MCP routing headers.
//!
//! What an admitted caller sees is its [`Grant`]: the union of the endpoint's entitlement
//! entries for its teams (and `"*"`), applied by the endpoint's views (`Endpoint::view_for`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use gantry_auth::{
    AuthContext, AuthError, AuthErrorCode, Authenticator, FailureLimiter, Identity, Source, quoted,
};
use gantry_config::{Access, Config, Entitlement};
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};

use crate::client::body::ResponseBody;
use crate::endpoint::Endpoint;

/// Failed authentications a source may make per [`FAILURE_WINDOW`] before it must wait.
pub const MAX_FAILURES: u32 = 10;
/// The window of [`MAX_FAILURES`].
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Sources whose failures are remembered at once.
const FAILURE_SOURCES: usize = 10_000;

/// What a caller may see on an endpoint.
#[derive(Clone, Debug, Default)]
pub enum Grant {
    /// Everything the endpoint publishes (no entitlements table, or a local stdio client).
    #[default]
    All,
    /// The union of some entitlement entries.
    Entitled(Arc<Entitled>),
}

/// The merged entitlement entries of one set of teams.
#[derive(Debug)]
pub struct Entitled {
    /// The entries' team names, sorted, joined by `\n`: the cache key of filtered views.
    pub(crate) key: Arc<str>,
    /// Their globs, merged.
    pub(crate) globs: Entitlement,
}

/// Who is calling, once admitted.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    /// The identity, if the caller sent a credential (`None`: anonymous or local).
    pub identity: Option<Arc<Identity>>,
    /// What it may see.
    pub grant: Grant,
}

impl Caller {
    /// The subject, if authenticated.
    pub fn subject(&self) -> Option<&str> {
        self.identity.as_deref().map(|i| i.subject.as_str())
    }
}

/// The grant of `identity` (or of an anonymous caller) on an endpoint with `entitlements`.
pub fn grant(
    entitlements: Option<&std::collections::BTreeMap<String, Entitlement>>,
    identity: Option<&Identity>,
) -> Grant {
    let Some(table) = entitlements else {
        return Grant::All;
    };
    let mut key = String::new();
    let mut globs = Entitlement::default();
    for (team, e) in table {
        if team == "*" || identity.is_some_and(|i| i.in_team(team)) {
            key.push_str(team);
            key.push('\n');
            globs.tools.extend(e.tools.iter().cloned());
            globs.prompts.extend(e.prompts.iter().cloned());
            globs.resources.extend(e.resources.iter().cloned());
        }
    }
    Grant::Entitled(Arc::new(Entitled {
        key: key.into(),
        globs,
    }))
}

/// The gateway's authenticators, its limiter of failed attempts, and each endpoint's URLs.
pub(crate) struct Front {
    authenticators: Vec<Arc<dyn Authenticator>>,
    /// Shared by the fronts of every config a hot reload installs.
    limiter: Arc<FailureLimiter>,
    /// Endpoint name → (canonical URL, metadata URL).
    urls: HashMap<String, (String, String)>,
    base: String,
    authorization_servers: Vec<String>,
    /// Grants already built, per endpoint with entitlements (see [`Front::grant`]).
    grants: HashMap<String, RwLock<HashMap<u64, Grant>>>,
}

impl Front {
    pub(crate) fn new(config: &Config, authenticators: Vec<Arc<dyn Authenticator>>) -> Front {
        let limiter = FailureLimiter::new(MAX_FAILURES, FAILURE_WINDOW, FAILURE_SOURCES);
        Front::with_limiter(config, authenticators, Arc::new(limiter))
    }

    /// The front of a reloaded `config`: the same authenticators and the same memory of
    /// failed attempts, the new endpoints' URLs.
    pub(crate) fn reconfigured(&self, config: &Config) -> Front {
        Front::with_limiter(config, self.authenticators.clone(), self.limiter.clone())
    }

    fn with_limiter(
        config: &Config,
        authenticators: Vec<Arc<dyn Authenticator>>,
        limiter: Arc<FailureLimiter>,
    ) -> Front {
        let base = config.public_base();
        let urls = config
            .endpoints
            .keys()
            .map(|name| {
                (
                    name.clone(),
                    (
                        format!("{base}/mcp/{name}"),
                        format!("{base}{WELL_KNOWN}/mcp/{name}"),
                    ),
                )
            })
            .collect();
        let grants = config
            .endpoints
            .iter()
            .filter(|(_, e)| e.entitlements.is_some())
            .map(|(name, _)| (name.clone(), RwLock::default()))
            .collect();
        Front {
            authenticators,
            limiter,
            urls,
            base,
            grants,
            // Where clients get tokens: as configured, else the OpenID providers Gantry
            // accepts tokens from.
            authorization_servers: if config.authorization_servers.is_empty() {
                config.auth.oidc.iter().map(|o| o.issuer.clone()).collect()
            } else {
                config.authorization_servers.clone()
            },
        }
    }

    /// [`grant`], built once per endpoint and set of entitlement entries that apply (one bit
    /// per entry of the table, in its order): callers share a handful of team sets, so a
    /// request reuses a grant instead of copying globs into a new one.
    fn grant(&self, ep: &Endpoint, identity: Option<&Identity>) -> Grant {
        let Some(table) = ep.config().entitlements.as_ref() else {
            return Grant::All;
        };
        let (Some(cache), true) = (self.grants.get(ep.name()), table.len() <= 64) else {
            return grant(Some(table), identity);
        };
        let mask = table
            .keys()
            .enumerate()
            .filter(|(_, team)| *team == "*" || identity.is_some_and(|i| i.in_team(team)))
            .fold(0u64, |m, (i, _)| m | 1 << i);
        if let Some(g) = cache.read().expect("grants lock").get(&mask) {
            return g.clone();
        }
        let g = grant(Some(table), identity);
        cache
            .write()
            .expect("grants lock")
            .entry(mask)
            .or_insert(g)
            .clone()
    }

    fn urls(&self, ep: &Endpoint) -> (&str, &str) {
        self.urls
            .get(ep.name())
            .map(|(c, m)| (c.as_str(), m.as_str()))
            .unwrap_or_default()
    }
}

/// The RFC 9728 well-known prefix.
pub(crate) const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// A refusal on its way to the client.
pub(crate) type Refusal = Response<ResponseBody>;

/// Decides whether the request may use `ep`, and as whom.
pub(crate) async fn admit(
    state: &crate::State,
    ep: &Endpoint,
    headers: &http::HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<Caller, Refusal> {
    let front = &state.front;
    let cfg = ep.config();
    let ip = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.ip());
    let refuse = |e: AuthError| {
        let at = peer.map(|p| p.ip().to_string()).unwrap_or_default();
        tracing::info!(endpoint = ep.name(), source = %at, status = e.code.status(), error = e.code.rfc6750().unwrap_or("-"), "refused: {}", e.description);
        refusal(&e, front.urls(ep).1, &cfg.scopes)
    };
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let first = values.next();
    let token = if values.next().is_some() {
        Err(AuthError::new(
            AuthErrorCode::InvalidRequest,
            "the request has more than one Authorization header: send one bearer token",
        ))
    } else {
        gantry_auth::bearer(first.map(HeaderValue::as_bytes))
    };
    let token = match token {
        Ok(t) => t,
        Err(e) => {
            front.limiter.failed(ip);
            return Err(refuse(e));
        }
    };
    let identity = match token {
        None => None,
        Some(token) => {
            if let Err(wait) = front.limiter.check(ip) {
                tracing::info!(endpoint = ep.name(), source = %ip, "refused: too many failed authentications");
                return Err(too_many(wait));
            }
            match authenticate(&front.authenticators, token, front.urls(ep).0).await {
                Ok(identity) => {
                    front.limiter.succeeded(ip);
                    Some(identity)
                }
                Err(e) => {
                    if e.code.status() == 401 || e.code.status() == 400 {
                        front.limiter.failed(ip);
                    }
                    return Err(refuse(e));
                }
            }
        }
    };
    if let Some(id) = &identity {
        decide(ep, id).map_err(refuse)?;
    } else if cfg.access != Access::Public {
        return Err(refuse(AuthError::new(
            AuthErrorCode::Missing,
            format!(
                "endpoint {:?} requires authentication: send Authorization: Bearer <token>",
                ep.name()
            ),
        )));
    }
    let grant = front.grant(ep, identity.as_deref());
    Ok(Caller { identity, grant })
}

/// The identity of `token`, from the first authenticator that knows it.
async fn authenticate(
    authenticators: &[Arc<dyn Authenticator>],
    token: &str,
    resource: &str,
) -> Result<Arc<Identity>, AuthError> {
    gantry_auth::authenticate(authenticators, token, AuthContext { resource })
        .await
        .unwrap_or_else(|| {
            Err(AuthError::invalid_token(
                "the token is not a valid Gantry API key or a token from a configured issuer",
            ))
        })
}

/// The endpoint's policy for an authenticated caller.
fn decide(ep: &Endpoint, id: &Identity) -> Result<(), AuthError> {
    let cfg = ep.config();
    if !id.planes.data {
        return Err(AuthError::new(
            AuthErrorCode::Forbidden,
            format!(
                "the credential of {:?} is for the control plane only and cannot use endpoints: use a key with data-plane access",
                id.subject
            ),
        ));
    }
    if let Access::Restricted { teams } = &cfg.access
        && !teams.iter().any(|t| id.in_team(t))
    {
        return Err(AuthError::new(
            AuthErrorCode::Forbidden,
            format!(
                "{:?} is not a member of any team allowed on endpoint {:?} ([{}])",
                id.subject,
                ep.name(),
                teams.join(", ")
            ),
        ));
    }
    if matches!(id.source, Source::Jwt { .. }) {
        AuthError::require_scopes(&cfg.scopes, &id.scopes, |word, missing| {
            format!(
                "endpoint {:?} requires the {word} {missing}: ask the authorization server for a token that has them",
                ep.name()
            )
        })?;
    }
    Ok(())
}

/// `WWW-Authenticate` for a refusal: where the metadata is, the scope, the error.
pub(crate) fn www_authenticate(e: &AuthError, metadata: &str, scopes: &[String]) -> String {
    let mut v = format!("Bearer resource_metadata=\"{}\"", quoted(metadata));
    let scope = e
        .scope
        .clone()
        .or_else(|| (!scopes.is_empty()).then(|| scopes.join(" ")));
    if let Some(s) = scope {
        let _ = write!(v, ", scope=\"{}\"", quoted(&s));
    }
    if let Some(code) = e.code.rfc6750() {
        let _ = write!(
            v,
            ", error=\"{code}\", error_description=\"{}\"",
            quoted(&e.description)
        );
    }
    v
}

fn refusal(e: &AuthError, metadata: &str, scopes: &[String]) -> Refusal {
    let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let error = e.code.rfc6750().unwrap_or(match e.code {
        AuthErrorCode::Forbidden => "forbidden",
        _ => "unauthorized",
    });
    let body = json!({"error": error, "error_description": e.description});
    let mut resp = json_body(status, &body);
    if let Ok(v) = HeaderValue::from_str(&www_authenticate(e, metadata, scopes)) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

fn too_many(wait: Duration) -> Refusal {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let body = json!({
        "error": "too_many_requests",
        "error_description": format!("too many failed authentications from this address: retry in {secs} s"),
    });
    let mut resp = json_body(StatusCode::TOO_MANY_REQUESTS, &body);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    resp
}

fn json_body(status: StatusCode, body: &Value) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::Full(Full::new(Bytes::from(body.to_string()))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Answers `GET /.well-known/oauth-protected-resource[/mcp/<endpoint>]` (RFC 9728): `rest`
/// is what follows the well-known prefix.
pub(crate) fn metadata(state: &crate::State, rest: &str) -> Response<ResponseBody> {
    let front = &state.front;
    let doc = |resource: &str, name: &str, scopes: Vec<String>| {
        let mut d = json!({
            "resource": resource,
            "resource_name": name,
            "authorization_servers": front.authorization_servers,
            "bearer_methods_supported": ["header"],
        });
        if !scopes.is_empty() {
            d["scopes_supported"] = json!(scopes);
        }
        d
    };
    let endpoints = &state.config.endpoints;
    let body = match rest.strip_prefix("/mcp/") {
        Some(name) => {
            let name = name.strip_suffix('/').unwrap_or(name);
            let (Some(ep), Some((resource, _))) = (endpoints.get(name), front.urls.get(name))
            else {
                let e = json!({"error": "not_found", "error_description": format!("no endpoint {name:?}: metadata is served at {WELL_KNOWN}/mcp/<endpoint>")});
                return json_body(StatusCode::NOT_FOUND, &e);
            };
            doc(
                resource,
                &format!("Gantry endpoint {name}"),
                ep.scopes.clone(),
            )
        }
        None if rest.is_empty() || rest == "/" => {
            // The root document: the only endpoint's, or the gateway's as a whole.
            if endpoints.len() == 1
                && let Some((name, ep)) = endpoints.iter().next()
            {
                doc(
                    &front.urls[name].0,
                    &format!("Gantry endpoint {name}"),
                    ep.scopes.clone(),
                )
            } else {
                let mut scopes: Vec<String> =
                    endpoints.values().flat_map(|e| e.scopes.clone()).collect();
                scopes.sort();
                scopes.dedup();
                doc(&front.base, "Gantry", scopes)
            }
        }
        None => {
            let e = json!({"error": "not_found", "error_description": format!("metadata is served at {WELL_KNOWN} and {WELL_KNOWN}/mcp/<endpoint>")});
            return json_body(StatusCode::NOT_FOUND, &e);
        }
    };
    let mut resp = json_body(StatusCode::OK, &body);
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    resp
}

#[cfg(test)]
mod tests;
