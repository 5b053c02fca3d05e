//! Compact JWS (RFC 7515) as used by JWT access tokens: recognising the shape, decoding the
//! header and payload, and the algorithms Gantry accepts.
//!
//! Only asymmetric algorithms are accepted, from an allow-list. `alg: none` and the HMAC
//! algorithms are refused by name: with HMAC, a token "signed" with the provider's *public*
//! key as the secret would verify if the key were used as an HMAC secret (the classic
//! algorithm-confusion attack). Keys embedded in or referenced by the header (`jwk`, `jku`,
//! `x5u`, `x5c`) are never used: keys come only from the provider's JWKS.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// Largest token accepted, in bytes: a JWT access token is typically 0.5-2 KB.
pub(crate) const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A signature algorithm Gantry verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

/// The accepted algorithms, as named in error messages.
pub(crate) const ACCEPTED: &str = "RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA";

impl Alg {
    pub(crate) fn from_name(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "PS384" => Alg::Ps384,
            "PS512" => Alg::Ps512,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            "EdDSA" => Alg::EdDsa,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
        }
    }
}

/// A token split and decoded, not yet verified.
#[derive(Debug)]
pub(crate) struct Jws<'t> {
    pub(crate) alg: Alg,
    pub(crate) kid: Option<String>,
    /// `header.payload`, the bytes the signature covers.
    pub(crate) signing_input: &'t [u8],
    pub(crate) signature: Vec<u8>,
    pub(crate) claims: Map<String, Value>,
}

/// Whether `token` has the shape of a compact JWS: three base64url segments, the first
/// decoding to a JSON object (`eyJ` is the base64url of `{"`). The signature segment may be
/// empty so that unsigned tokens are recognised and refused rather than passed on.
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let b64 = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    h.starts_with("eyJ") && !p.is_empty() && b64(h) && b64(p) && b64(s)
}

/// Splits and decodes `token` (which [`looks_like_jwt`]); the error is a description for
/// `WWW-Authenticate` that never contains the token.
pub(crate) fn decode(token: &str) -> Result<Jws<'_>, String> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(format!(
            "the token is {} bytes long; at most {MAX_TOKEN_BYTES} are accepted",
            token.len()
        ));
    }
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("the token is not a JWT: expected three base64url segments".into());
    };
    let header = object(h, "header")?;
    let alg = match header.get("alg") {
        Some(Value::String(a)) => a.as_str(),
        Some(_) => return Err("the token's header has a non-string alg".into()),
        None => return Err("the token's header has no alg".into()),
    };
    if alg.eq_ignore_ascii_case("none") {
        return Err("alg none is not accepted: the token is unsigned".into());
    }
    if alg.starts_with("HS") {
        return Err(format!(
            "alg {alg} is not accepted: tokens must be signed with one of the OpenID provider's \
             public keys ({ACCEPTED})"
        ));
    }
    let Some(alg) = Alg::from_name(alg) else {
        return Err(format!(
            "alg {} is not supported; accepted: {ACCEPTED}",
            printable(alg)
        ));
    };
    if let Some(crit) = header.get("crit") {
        return Err(format!(
            "the token's header marks extensions {} as critical; Gantry understands none",
            printable(&crit.to_string())
        ));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err("the token's header has a non-string kid".into()),
    };
    let claims = object(p, "payload")?;
    if s.is_empty() {
        return Err("the token has no signature".into());
    }
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| "the token's signature is not valid base64url".to_owned())?;
    Ok(Jws {
        alg,
        kid,
        signing_input: &token.as_bytes()[..h.len() + 1 + p.len()],
        signature,
        claims,
    })
}

fn object(segment: &str, what: &str) -> Result<Map<String, Value>, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| format!("the token's {what} is not valid base64url"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(format!("the token's {what} is not a JSON object")),
    }
}

/// `s` cut to 64 characters, for error messages about values an attacker controls.
pub(crate) fn printable(s: &str) -> String {
    let cut: String = s.chars().take(64).collect();
    let cut: String = cut
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if cut.len() < s.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}
