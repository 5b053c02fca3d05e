//! JWT access tokens from configured OpenID providers (`[[auth.oidc]]`).
//!
//! For each provider, a background task fetches the discovery document
//! (`<issuer>/.well-known/openid-configuration`, whose `issuer` must equal the configured one
//! exactly) and then the JWKS it names, retrying with backoff until both answer; Gantry serves
//! meanwhile and refuses that provider's tokens with a description that says why. The keys are
//! cached and refreshed every [`KEY_REFRESH_PERIOD`], and when a token names a key id the cache
//! does not know (the provider rotated its keys) — but at most once per
//! `jwks_refresh_min_interval`, so tokens with made-up key ids cannot make Gantry hammer the
//! provider.
//!
//! Verifying a token never touches the network otherwise: decode, pick the provider by `iss`,
//! verify the signature with a cached key (allow-listed asymmetric algorithms only), then
//! check `exp`/`nbf`/`iat` with the configured leeway, the audience (the resource's canonical
//! URL unless `audience` is configured), the required scopes, and map the claims to an
//! [`Identity`](crate::Identity).
//!
//! # Wiring
//!
//! ```no_run
//! # async fn wire(config: &gantry_config::Config) -> Result<(), gantry_auth::oidc::OidcError> {
//! use gantry_auth::{AuthContext, Authenticator};
//! use gantry_auth::oidc::OidcAuthenticator;
//!
//! // Inside the Tokio runtime, once per config (re)load, when `config.auth.oidc` is not empty:
//! let oidc = OidcAuthenticator::from_config(&config.auth.oidc)?;
//! // Per request: `None` means "not a JWT" (ask the API-key authenticator instead).
//! let token = "eyJ...";
//! let ctx = AuthContext { resource: "https://gantry.example.com/mcp/tools" };
//! match oidc.authenticate(token, ctx).await {
//!     None => { /* not a JWT */ }
//!     Some(Ok(identity)) => { /* endpoint policy decides */ }
//!     Some(Err(refusal)) => { /* 401/403 with refusal.code, refusal.description */ }
//! }
//! # Ok(()) }
//! ```

mod cache;
mod claims;
mod fetch;
mod jwks;
mod jws;

use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gantry_config::OidcConfig;
use serde_json::Value;

use self::fetch::{Fetch, HttpFetch};
use self::jwks::KeySet;
use self::jws::printable;
use crate::{AuthContext, AuthError, AuthFuture, Authenticator, Identity};

/// How often the keys of a reachable provider are fetched again without being asked to (keys
/// the provider withdrew stop verifying within this period).
pub const KEY_REFRESH_PERIOD: Duration = Duration::from_secs(10 * 60);

/// Longest wait between two discovery attempts while a provider is unreachable.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// The OIDC authenticator could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("OpenID Connect: {0}")]
pub struct OidcError(String);

/// Verifies JWT access tokens from the configured OpenID providers.
///
/// Dropping it stops its background tasks.
pub struct OidcAuthenticator {
    providers: Vec<Arc<Provider>>,
    verified: cache::VerifiedCache,
}

/// What a provider looks like right now, for logs and readiness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderStatus {
    /// The configured issuer.
    pub issuer: String,
    /// Whether its keys have been fetched (its tokens can be verified).
    pub ready: bool,
    /// Usable signing keys in the cache.
    pub keys: usize,
    /// The last discovery or JWKS error, if the last attempt failed.
    pub error: Option<String>,
}

struct Provider {
    cfg: OidcConfig,
    fetch: Arc<dyn Fetch>,
    state: RwLock<State>,
    /// When a token with an unknown key id last caused a JWKS fetch; held while any JWKS
    /// fetch runs, so concurrent unknown-kid tokens cause at most one.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

#[derive(Default)]
struct State {
    jwks_uri: Option<String>,
    keys: Option<Arc<KeySet>>,
    error: Option<String>,
}

// === impl OidcAuthenticator ===

impl OidcAuthenticator {
    /// One authenticator for all `configs`; starts each provider's discovery in the
    /// background. Must be called inside a Tokio runtime. Unreachable providers do not make
    /// this fail.
    pub fn from_config(configs: &[OidcConfig]) -> Result<OidcAuthenticator, OidcError> {
        let fetch = HttpFetch::new().map_err(OidcError)?;
        Self::with_fetch(configs, Arc::new(fetch))
    }

    fn with_fetch(
        configs: &[OidcConfig],
        fetch: Arc<dyn Fetch>,
    ) -> Result<OidcAuthenticator, OidcError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            OidcError("OidcAuthenticator::from_config must be called inside a Tokio runtime".into())
        })?;
        let providers: Vec<Arc<Provider>> = configs
            .iter()
            .map(|cfg| {
                Arc::new(Provider {
                    cfg: cfg.clone(),
                    fetch: fetch.clone(),
                    state: RwLock::new(State::default()),
                    last_fetch: tokio::sync::Mutex::new(None),
                })
            })
            .collect();
        for p in &providers {
            runtime.spawn(background(Arc::downgrade(p)));
        }
        Ok(OidcAuthenticator {
            providers,
            verified: cache::VerifiedCache::default(),
        })
    }

    /// The configured issuers, in config order (for RFC 9728 `authorization_servers`).
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.providers.iter().map(|p| p.cfg.issuer.as_str())
    }

    /// Each provider's state.
    pub fn status(&self) -> Vec<ProviderStatus> {
        self.providers.iter().map(|p| p.status()).collect()
    }

    /// Waits until every provider's keys are fetched, or `timeout` passes; returns whether all
    /// are ready. Serving does not need this (tokens are refused until then); tests and a
    /// readiness probe do.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.status().iter().all(|s| s.ready) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The answer for a token whose signature is remembered (still valid with its provider's
    /// current keys), without waiting.
    fn remembered(
        &self,
        cache_key: &[u8; 32],
        ctx: AuthContext<'_>,
    ) -> Option<Result<Arc<Identity>, AuthError>> {
        let (i, verified) = self.verified.get(cache_key, |i| {
            self.providers.get(i).and_then(|p| p.keys().ok())
        })?;
        Some(self.providers[i].accept(&verified, ctx))
    }

    /// Verifies a token whose signature is not remembered (fetching its provider's keys if
    /// need be), and remembers it.
    async fn verify(
        &self,
        token: &str,
        cache_key: [u8; 32],
        ctx: AuthContext<'_>,
    ) -> Result<Arc<Identity>, AuthError> {
        let jws = jws::decode(token).map_err(AuthError::invalid_token)?;
        let issuer = match jws.claims.get("iss") {
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(AuthError::invalid_token("the token's iss is not a string")),
            None => return Err(AuthError::invalid_token("the token has no issuer (iss)")),
        };
        let Some(i) = self.providers.iter().position(|p| p.cfg.issuer == issuer) else {
            let known: Vec<&str> = self.issuers().collect();
            return Err(AuthError::invalid_token(format!(
                "the token's issuer {} is not an accepted OpenID provider (accepted: {})",
                printable(issuer),
                known.join(", ")
            )));
        };
        let provider = &self.providers[i];
        let keys = provider.verify_signature(&jws).await?;
        let now = unix_now();
        let leeway = provider.cfg.leeway.as_secs();
        claims::check_time(&jws.claims, now, leeway).map_err(AuthError::invalid_token)?;
        let exp = jws.claims.get("exp").and_then(Value::as_f64).unwrap_or(0.0) as u64;
        let identity = claims::identity(&jws.claims, &provider.cfg.issuer, &provider.cfg);
        let verified = Arc::new(cache::Token {
            claims: jws.claims,
            identity: identity.map(Arc::new),
        });
        self.verified.insert(
            cache_key,
            i,
            keys,
            verified.clone(),
            exp.saturating_add(leeway),
            now,
        );
        provider.accept(&verified, ctx)
    }
}

impl Authenticator for OidcAuthenticator {
    fn authenticate<'a>(&'a self, token: &'a str, ctx: AuthContext<'a>) -> AuthFuture<'a> {
        if !jws::looks_like_jwt(token) {
            return AuthFuture::ready(None);
        }
        let cache_key = cache::key(token);
        if let Some(result) = self.remembered(&cache_key, ctx) {
            return AuthFuture::ready(Some(logged(result, ctx)));
        }
        AuthFuture::pending(
            async move { Some(logged(self.verify(token, cache_key, ctx).await, ctx)) },
        )
    }
}

/// `result`, its refusal (if it is one) logged at debug level.
fn logged(
    result: Result<Arc<Identity>, AuthError>,
    ctx: AuthContext<'_>,
) -> Result<Arc<Identity>, AuthError> {
    if let Err(e) = &result {
        tracing::debug!(resource = ctx.resource, reason = %e.description, "JWT refused");
    }
    result
}

// === impl Provider ===

impl Provider {
    fn status(&self) -> ProviderStatus {
        let s = self.state.read().expect("oidc state lock");
        ProviderStatus {
            issuer: self.cfg.issuer.clone(),
            ready: s.keys.is_some(),
            keys: s.keys.as_ref().map_or(0, |k| k.keys.len()),
            error: s.error.clone(),
        }
    }

    fn keys(&self) -> Result<Arc<KeySet>, AuthError> {
        let s = self.state.read().expect("oidc state lock");
        match (&s.keys, &s.error) {
            (Some(k), _) => Ok(k.clone()),
            (None, Some(e)) => Err(AuthError::invalid_token(format!(
                "the OpenID provider {} could not be reached: {e}",
                self.cfg.issuer
            ))),
            (None, None) => Err(AuthError::invalid_token(format!(
                "the OpenID provider {} has not been reached yet (its discovery document and \
                 keys are being fetched); try again shortly",
                self.cfg.issuer
            ))),
        }
    }

    /// Checks the token's signature with the provider's keys; the key set that verified it.
    async fn verify_signature(&self, jws: &jws::Jws<'_>) -> Result<Arc<KeySet>, AuthError> {
        let mut keys = self.keys()?;
        if let Some(kid) = jws.kid.as_deref()
            && !keys.has_kid(kid)
        {
            keys = self
                .refresh_for(kid)
                .await
                .map_err(AuthError::invalid_token)?;
        }
        let mut tried = 0;
        let mut verified = false;
        for key in keys.candidates(jws.kid.as_deref(), jws.alg) {
            tried += 1;
            if key.verify(jws.alg, jws.signing_input, &jws.signature) {
                verified = true;
                break;
            }
        }
        if !verified {
            let alg = jws.alg.name();
            return Err(AuthError::invalid_token(
                match (jws.kid.as_deref(), tried) {
                    (Some(kid), 0) => format!(
                        "key kid={} of the OpenID provider {} cannot verify alg {alg}",
                        printable(kid),
                        self.cfg.issuer
                    ),
                    (Some(kid), _) => {
                        format!("signature does not verify with key kid={}", printable(kid))
                    }
                    (None, 0) => format!(
                        "the OpenID provider {} has no key for alg {alg}",
                        self.cfg.issuer
                    ),
                    (None, n) => format!(
                        "signature does not verify with any of the {n} {alg} keys of the OpenID \
                     provider {}",
                        self.cfg.issuer
                    ),
                },
            ));
        }
        Ok(keys)
    }

    /// Checks the claims of a token whose signature verified: time, audience; then its identity
    /// (or why its claims map to none: no user, missing scopes).
    fn accept(
        &self,
        token: &cache::Token,
        ctx: AuthContext<'_>,
    ) -> Result<Arc<Identity>, AuthError> {
        let claims = &token.claims;
        claims::check_time(claims, unix_now(), self.cfg.leeway.as_secs())
            .map_err(AuthError::invalid_token)?;
        if self.cfg.audience.is_empty() {
            claims::check_audience(claims, &[ctx.resource])
        } else {
            claims::check_audience(claims, &self.cfg.audience)
        }
        .map_err(AuthError::invalid_token)?;
        token.identity.clone()
    }

    /// Fetches the JWKS again for a token whose `kid` is unknown, unless it was fetched less
    /// than `jwks_refresh_min_interval` ago; the keys that now apply, or why not.
    async fn refresh_for(&self, kid: &str) -> Result<Arc<KeySet>, String> {
        let mut last = self.last_fetch.lock().await;
        // Another request may have fetched the new keys while this one waited for the lock.
        if let Ok(keys) = self.keys()
            && keys.has_kid(kid)
        {
            return Ok(keys);
        }
        let unknown = || {
            format!(
                "no signing key kid={} at the OpenID provider {}",
                printable(kid),
                self.cfg.issuer
            )
        };
        if let Some(at) = *last {
            let since = at.elapsed();
            if since < self.cfg.jwks_refresh_min_interval {
                return Err(format!(
                    "{} (its keys were fetched {}s ago)",
                    unknown(),
                    since.as_secs()
                ));
            }
        }
        tracing::info!(
            issuer = %self.cfg.issuer,
            kid = %printable(kid),
            "OIDC: a token names an unknown key id; fetching the JWKS again"
        );
        *last = Some(Instant::now());
        let keys = self
            .fetch_keys()
            .await
            .map_err(|e| format!("{}; fetching its keys again failed: {e}", unknown()))?;
        if keys.has_kid(kid) {
            Ok(keys)
        } else {
            Err(format!("{} (its keys were fetched just now)", unknown()))
        }
    }

    /// Fetches the discovery document, then the JWKS.
    async fn discover(&self) -> Result<(), String> {
        let issuer = &self.cfg.issuer;
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc = self.fetch.get_json(&url, self.cfg.http_timeout).await?;
        let named = doc.get("issuer").and_then(Value::as_str);
        if named != Some(issuer.as_str()) {
            return Err(format!(
                "the discovery document {url} names issuer {}, not {issuer:?}; `issuer` must be \
                 written exactly as the provider names itself",
                named.map_or_else(|| "none".into(), printable)
            ));
        }
        let Some(jwks_uri) = doc.get("jwks_uri").and_then(Value::as_str) else {
            return Err(format!("the discovery document {url} has no jwks_uri"));
        };
        fetch::check_url(jwks_uri).map_err(|e| format!("jwks_uri of {url}: {e}"))?;
        self.state.write().expect("oidc state lock").jwks_uri = Some(jwks_uri.to_owned());
        let _serial = self.last_fetch.lock().await;
        self.fetch_keys().await.map(|_| ())
    }

    /// Fetches the JWKS (the caller holds `last_fetch`) and replaces the cached keys.
    async fn fetch_keys(&self) -> Result<Arc<KeySet>, String> {
        let uri = self
            .state
            .read()
            .expect("oidc state lock")
            .jwks_uri
            .clone()
            .ok_or_else(|| "its discovery document has not been fetched".to_owned())?;
        let doc = self.fetch.get_json(&uri, self.cfg.http_timeout).await?;
        let (set, skipped) = KeySet::parse(&doc).map_err(|e| format!("{uri}: {e}"))?;
        if set.keys.is_empty() {
            return Err(format!(
                "the JWKS {uri} has no usable signing key (RSA, EC P-256/P-384 or Ed25519)"
            ));
        }
        let kids: Vec<&str> = set.keys.iter().filter_map(|k| k.kid.as_deref()).collect();
        tracing::info!(
            issuer = %self.cfg.issuer,
            keys = set.keys.len(),
            skipped,
            kids = %kids.join(","),
            "OIDC: signing keys fetched"
        );
        let set = Arc::new(set);
        let mut s = self.state.write().expect("oidc state lock");
        s.keys = Some(set.clone());
        s.error = None;
        Ok(set)
    }

    fn failed(&self, error: String) {
        self.state.write().expect("oidc state lock").error = Some(error);
    }
}

/// A provider's background task: discovery until it succeeds, then a periodic key refresh.
/// Ends when the authenticator is dropped.
async fn background(provider: Weak<Provider>) {
    let mut delay = Duration::from_secs(1);
    loop {
        let Some(p) = provider.upgrade() else { return };
        match p.discover().await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(
                    issuer = %p.cfg.issuer,
                    retry_in = ?delay,
                    "OIDC: the OpenID provider could not be reached: {e}"
                );
                p.failed(e);
            }
        }
        drop(p);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY_DELAY);
    }
    loop {
        tokio::time::sleep(KEY_REFRESH_PERIOD).await;
        let Some(p) = provider.upgrade() else { return };
        let _serial = p.last_fetch.lock().await;
        if let Err(e) = p.fetch_keys().await {
            // Keep the keys we have: a provider blip must not lock everyone out.
            tracing::warn!(issuer = %p.cfg.issuer, "OIDC: refreshing the signing keys failed: {e}");
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
