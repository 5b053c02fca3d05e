//! The claims of a verified token: validity in time, audience, scopes, and the mapping to an
//! [`Identity`].

use gantry_config::{ControlPlaneGrant, OidcConfig};
use serde_json::{Map, Value};

use super::jws::printable;
use crate::{AuthError, Identity, Planes, Source};

/// Checks `exp`, `nbf` and `iat` against `now` (seconds since the Unix epoch) with `leeway`
/// seconds of clock skew. `exp` is required: Gantry accepts only tokens that expire.
pub(crate) fn check_time(claims: &Map<String, Value>, now: u64, leeway: u64) -> Result<(), String> {
    let exp = match numeric_date(claims, "exp")? {
        Some(exp) => exp,
        None => {
            return Err("the token has no exp claim; only tokens that expire are accepted".into());
        }
    };
    if now > exp.saturating_add(leeway) {
        return Err(format!("the token expired at {}", rfc3339(exp)));
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && nbf > now.saturating_add(leeway)
    {
        return Err(format!("the token is not valid before {}", rfc3339(nbf)));
    }
    if let Some(iat) = numeric_date(claims, "iat")?
        && iat > now.saturating_add(leeway)
    {
        return Err(format!(
            "the token was issued in the future ({}); check the clocks of Gantry and the \
             OpenID provider",
            rfc3339(iat)
        ));
    }
    Ok(())
}

/// A NumericDate claim (seconds, possibly fractional), floored.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, String> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) => Ok(Some(v)),
            None => match n.as_f64() {
                Some(f) if f.is_finite() && f >= 0.0 => Ok(Some(f as u64)),
                _ => Err(format!("the token's {name} is not a valid date")),
            },
        },
        Some(_) => Err(format!("the token's {name} is not a number of seconds")),
    }
}

/// Checks that `aud` (a string or an array of strings) names one of `expected`.
pub(crate) fn check_audience<S: AsRef<str>>(
    claims: &Map<String, Value>,
    expected: &[S],
) -> Result<(), String> {
    let want = || {
        let expected: Vec<&str> = expected.iter().map(AsRef::as_ref).collect();
        if expected.len() == 1 {
            expected[0].to_owned()
        } else {
            format!("one of {}", expected.join(", "))
        }
    };
    let auds: &[Value] = match claims.get("aud") {
        None => {
            return Err(format!(
                "the token has no audience (aud); it must name {}",
                want()
            ));
        }
        Some(one @ Value::String(_)) => std::slice::from_ref(one),
        Some(Value::Array(a)) => a,
        Some(_) => return Err("the token's audience (aud) is not a string or array".into()),
    };
    let auds = || auds.iter().filter_map(Value::as_str);
    let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
    if auds().any(|a| expected.iter().any(|e| same(a, e.as_ref()))) {
        return Ok(());
    }
    let shown: Vec<String> = auds().take(8).map(printable).collect();
    Err(format!(
        "the token's audience [{}] does not include {}",
        shown.join(", "),
        want()
    ))
}

/// The scopes a token carries: a space-separated string or an array of strings. With the
/// default claim `scope`, a token without it is read from `scp` (Azure AD, Okta).
pub(crate) fn scopes(claims: &Map<String, Value>, claim: &str) -> Vec<String> {
    let value = lookup(claims, claim).or_else(|| {
        if claim == "scope" {
            claims.get("scp")
        } else {
            None
        }
    });
    match value {
        Some(Value::String(s)) => s.split_ascii_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Maps verified claims to an identity, or refuses: no user claim (`invalid_token`), or a
/// required scope missing (`insufficient_scope`, 403, with the scopes in `scope=`).
pub(crate) fn identity(
    claims: &Map<String, Value>,
    issuer: &str,
    cfg: &OidcConfig,
) -> Result<Identity, AuthError> {
    let subject = match lookup(claims, &cfg.user_claim) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(AuthError::invalid_token(format!(
                "the token has no {:?} claim naming the user (user_claim of {issuer})",
                cfg.user_claim
            )));
        }
    };
    let scopes = scopes(claims, &cfg.scopes_claim);
    AuthError::require_scopes(&cfg.required_scopes, &scopes, |word, missing| {
        format!("the token lacks the {word} {missing} required by {issuer}")
    })?;
    let teams = strings(lookup(claims, &cfg.teams_claim));
    let control = cfg.control_plane.iter().any(|g| match g {
        ControlPlaneGrant::Scope(s) => scopes.iter().any(|have| have == s),
        ControlPlaneGrant::Claim { claim, value } => {
            strings(lookup(claims, claim)).iter().any(|v| v == value)
        }
    });
    Ok(Identity {
        subject,
        teams,
        scopes,
        planes: Planes {
            data: true,
            control,
        },
        source: Source::Jwt {
            issuer: issuer.to_owned(),
        },
    })
}

/// A claim by name; a dotted name that is not itself a claim reaches into objects
/// (`realm_access.roles`).
fn lookup<'c>(claims: &'c Map<String, Value>, name: &str) -> Option<&'c Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut v = claims.get(parts.next()?)?;
    for p in parts {
        v = v.as_object()?.get(p)?;
    }
    Some(v)
}

/// An array of strings (other items skipped), or one string, as a list.
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn rfc3339(secs: u64) -> String {
    let secs = secs.min(253_402_300_799); // 9999-12-31T23:59:59Z
    gantry_core::time::format_utc(secs as i64, None)
}
