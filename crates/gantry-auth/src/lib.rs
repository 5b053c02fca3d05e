//! Who is calling Gantry, and how a credential is refused.
//!
//! The front (`gantry-proxy`'s HTTP listener) reads the bearer token of every request and asks
//! an [`Authenticator`] who it belongs to. The answer is an [`Identity`]: a subject, the teams
//! it is a member of, the scopes it was granted, and the planes it may use. Endpoint access
//! policies and per-team entitlements (in `gantry-proxy`) are decided from the identity alone,
//! so that API keys and OIDC tokens are interchangeable behind it.
//!
//! Refusals carry what the MCP authorization spec needs to answer them: the HTTP status (401 or
//! 403), the RFC 6750 error code and a description for `WWW-Authenticate`. Descriptions never
//! contain the credential itself.
#![deny(missing_docs)]

pub mod front;
pub mod keys;
pub mod oidc;

pub use front::{FailureLimiter, bearer};
pub use keys::{KeyAuthenticator, ServerSecret};
pub use oidc::OidcAuthenticator;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed future, for the object-safe [`Authenticator`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The planes of Gantry a credential may use (DESIGN.md §2: being an admin grants no
/// data-plane access by itself).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Planes {
    /// May use endpoints (`/mcp/...`), subject to each endpoint's access policy.
    pub data: bool,
    /// May configure Gantry (`/admin/api/v1/...`).
    pub control: bool,
}

impl Planes {
    /// Data plane only.
    pub const DATA: Planes = Planes {
        data: true,
        control: false,
    };
    /// Control plane only.
    pub const CONTROL: Planes = Planes {
        data: false,
        control: true,
    };
    /// Both planes.
    pub const BOTH: Planes = Planes {
        data: true,
        control: true,
    };
}

/// How an identity proved itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A Gantry API key, by its public id (never the secret).
    ApiKey {
        /// The key's id (the part of the key that is not secret).
        id: String,
    },
    /// A JWT from a configured OpenID provider.
    Jwt {
        /// The token's issuer (`iss`).
        issuer: String,
    },
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Who: the user's name for keys and mapped JWT subjects.
    pub subject: String,
    /// The teams the caller is a member of (team names).
    pub teams: Vec<String>,
    /// Scopes granted to the credential (OAuth scopes of a JWT; empty for keys).
    pub scopes: Vec<String>,
    /// The planes the credential may use.
    pub planes: Planes,
    /// How it authenticated.
    pub source: Source,
}

impl Identity {
    /// Whether the caller is a member of `team`.
    pub fn in_team(&self, team: &str) -> bool {
        self.teams.iter().any(|t| t == team)
    }

    /// Whether the credential was granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// The RFC 6750 error codes Gantry answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthErrorCode {
    /// No credential was sent where one is required (401, no `error=` attribute).
    Missing,
    /// The request is malformed (400), e.g. two credentials.
    InvalidRequest,
    /// The token is expired, revoked, malformed, wrongly signed or for another audience (401).
    InvalidToken,
    /// The token is valid but lacks a required scope (403, step-up).
    InsufficientScope,
    /// The caller is known but may not use this endpoint or plane (403).
    Forbidden,
}

impl AuthErrorCode {
    /// The HTTP status of a refusal with this code.
    pub fn status(self) -> u16 {
        match self {
            AuthErrorCode::InvalidRequest => 400,
            AuthErrorCode::Missing | AuthErrorCode::InvalidToken => 401,
            AuthErrorCode::InsufficientScope | AuthErrorCode::Forbidden => 403,
        }
    }

    /// The `error=` value of `WWW-Authenticate`, if any.
    pub fn rfc6750(self) -> Option<&'static str> {
        match self {
            AuthErrorCode::Missing | AuthErrorCode::Forbidden => None,
            AuthErrorCode::InvalidRequest => Some("invalid_request"),
            AuthErrorCode::InvalidToken => Some("invalid_token"),
            AuthErrorCode::InsufficientScope => Some("insufficient_scope"),
        }
    }
}

/// A refused credential: what to answer and why (without the credential).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct AuthError {
    /// The kind of refusal.
    pub code: AuthErrorCode,
    /// What is wrong and what to do, for the client and the log.
    pub description: String,
    /// Scopes that would satisfy the request (`scope=` on a 403 `insufficient_scope`).
    pub scope: Option<String>,
}

impl AuthError {
    /// A refusal with `code` and `description`.
    pub fn new(code: AuthErrorCode, description: impl Into<String>) -> AuthError {
        AuthError {
            code,
            description: description.into(),
            scope: None,
        }
    }

    /// An invalid token (401 `invalid_token`).
    pub fn invalid_token(description: impl Into<String>) -> AuthError {
        AuthError::new(AuthErrorCode::InvalidToken, description)
    }
}

impl AuthError {
    /// `Ok` if `granted` holds every scope of `required`; otherwise 403 `insufficient_scope`
    /// asking for all of `required` (`scope=`), described by `describe(word, missing)` with
    /// `word` "scope" or "scopes" and the missing ones joined by spaces.
    pub fn require_scopes(
        required: &[String],
        granted: &[String],
        describe: impl FnOnce(&str, &str) -> String,
    ) -> Result<(), AuthError> {
        let missing: Vec<&str> = required
            .iter()
            .filter(|r| !granted.contains(r))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let word = if missing.len() == 1 {
            "scope"
        } else {
            "scopes"
        };
        let mut e = AuthError::new(
            AuthErrorCode::InsufficientScope,
            describe(word, &missing.join(" ")),
        );
        e.scope = Some(required.join(" "));
        Err(e)
    }
}

/// The content of an RFC 9110 quoted-string (for `WWW-Authenticate` attributes), without the
/// surrounding quotes: `"` and `\` escaped, anything but printable ASCII replaced by `?` (a
/// header value must be visible ASCII, or it cannot be sent at all).
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

/// What a credential is presented for.
#[derive(Clone, Copy, Debug)]
pub struct AuthContext<'a> {
    /// The canonical URL of the protected resource (an endpoint's `https://host/mcp/<name>`,
    /// or the admin API's base): a JWT's audience must name it (RFC 8707).
    pub resource: &'a str,
}

/// Turns a bearer token into an identity.
///
/// Implementations must not touch a database on the hot path: keys are checked against an
/// in-memory snapshot, JWTs against cached signing keys.
pub trait Authenticator: Send + Sync {
    /// `None` if the token is not of this authenticator's kind (another one may know it);
    /// otherwise the identity (shared, so that an authenticator can hand out one it keeps),
    /// or why the token is refused.
    fn authenticate<'a>(&'a self, token: &'a str, ctx: AuthContext<'a>) -> AuthFuture<'a>;
}

/// What an [`Authenticator`] answers: `None` if the token is not of its kind, otherwise the
/// identity or why the token is refused.
pub type Outcome = Option<Result<Arc<Identity>, AuthError>>;

/// The future [`Authenticator::authenticate`] returns: ready at once when answering needs no
/// waiting (a key table lookup, a JWT whose signature is remembered), so that the common case
/// of every request allocates nothing; boxed when it must wait (fetching a provider's keys).
pub enum AuthFuture<'a> {
    /// Answered without waiting.
    Ready(std::future::Ready<Outcome>),
    /// To be awaited.
    Pending(BoxFuture<'a, Outcome>),
}

impl<'a> AuthFuture<'a> {
    /// An answer given at once.
    pub fn ready(outcome: Outcome) -> AuthFuture<'a> {
        AuthFuture::Ready(std::future::ready(outcome))
    }

    /// An answer that must be waited for.
    pub fn pending(f: impl Future<Output = Outcome> + Send + 'a) -> AuthFuture<'a> {
        AuthFuture::Pending(Box::pin(f))
    }
}

impl Future for AuthFuture<'_> {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Outcome> {
        match self.get_mut() {
            AuthFuture::Ready(r) => Pin::new(r).poll(cx),
            AuthFuture::Pending(f) => f.as_mut().poll(cx),
        }
    }
}

/// The answer of the first of `authenticators` that knows `token` (in order); `None` if none
/// does.
pub async fn authenticate(
    authenticators: &[Arc<dyn Authenticator>],
    token: &str,
    ctx: AuthContext<'_>,
) -> Outcome {
    for a in authenticators {
        if let Some(outcome) = a.authenticate(token, ctx).await {
            return Some(outcome);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_escape_and_stay_sendable() {
        assert_eq!(quoted("a \"b\" \\ c\n"), "a \\\"b\\\" \\\\ c?");
        let q = quoted("user José said “hi”\t");
        assert_eq!(q, "user Jos? said ?hi??");
        assert!(http::HeaderValue::from_str(&format!("Bearer error_description=\"{q}\"")).is_ok());
    }

    #[test]
    fn missing_scopes_are_named_and_all_required_ones_asked_for() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let required = s(&["a", "b", "c"]);
        let describe = |word: &str, missing: &str| format!("lacks the {word} {missing}");
        assert!(AuthError::require_scopes(&required, &s(&["c", "b", "a", "x"]), describe).is_ok());
        assert!(AuthError::require_scopes(&[], &[], describe).is_ok());
        let e = AuthError::require_scopes(&required, &s(&["b"]), describe).unwrap_err();
        assert_eq!(e.code, AuthErrorCode::InsufficientScope);
        assert_eq!(e.description, "lacks the scopes a c");
        assert_eq!(e.scope.as_deref(), Some("a b c"));
        let e = AuthError::require_scopes(&required, &s(&["a", "c"]), describe).unwrap_err();
        assert_eq!(e.description, "lacks the scope b");
    }
}
