//! `[auth]`: how callers authenticate (OpenID providers).

use std::time::Duration;

use toml::Spanned;

use super::Source;
use crate::error::ConfigError;
use crate::model::*;
use crate::raw::{RawAuth, RawOidc, RawStrings};

pub(super) fn build_auth(
    src: &Source<'_>,
    raw: Option<&RawAuth>,
) -> Result<AuthConfig, ConfigError> {
    let Some(raw) = raw else {
        return Ok(AuthConfig::default());
    };
    let mut oidc: Vec<OidcConfig> = Vec::new();
    for (i, entry) in raw.oidc.iter().enumerate() {
        let field = format!("auth.oidc[{i}]");
        let built = build_oidc(src, &field, entry)?;
        if oidc.iter().any(|o| o.issuer == built.issuer) {
            return Err(src.err(
                entry,
                format!("{field}.issuer"),
                format!(
                    "issuer {:?} is configured twice; each [[auth.oidc]] needs its own issuer",
                    built.issuer
                ),
            ));
        }
        oidc.push(built);
    }
    Ok(AuthConfig { oidc })
}

fn build_oidc(
    src: &Source<'_>,
    field: &str,
    entry: &Spanned<RawOidc>,
) -> Result<OidcConfig, ConfigError> {
    let f = |k: &str| format!("{field}.{k}");
    let raw = entry.get_ref();
    let Some(issuer_raw) = &raw.issuer else {
        return Err(src.err(
            entry,
            f("issuer"),
            "an OpenID provider needs `issuer`, e.g. \"https://login.example.com/realms/acme\"",
        ));
    };
    let issuer = src.expand(issuer_raw, &f("issuer"))?;
    if let Err(why) = check_provider_url(&issuer) {
        return Err(src.err(issuer_raw, f("issuer"), format!("{issuer:?} {why}")));
    }
    let audience = match &raw.audience {
        None => Vec::new(),
        Some(a) => {
            let list = match a.get_ref() {
                RawStrings::One(s) => vec![s.clone()],
                RawStrings::Many(v) => v.clone(),
            };
            if list.is_empty() || list.iter().any(|s| s.trim().is_empty()) {
                return Err(src.err(
                    a,
                    f("audience"),
                    "expected a non-empty audience or list of audiences; leave `audience` out \
                     to accept the canonical URL of the endpoint being called",
                ));
            }
            list
        }
    };
    let claim = |v: &Option<Spanned<String>>, k: &str, default: &str| match v {
        None => Ok(default.to_owned()),
        Some(c) if c.get_ref().trim().is_empty() => {
            Err(src.err(c, f(k), "expected a claim name, e.g. \"email\""))
        }
        Some(c) => Ok(c.get_ref().clone()),
    };
    let user_claim = claim(&raw.user_claim, "user_claim", "sub")?;
    let teams_claim = claim(&raw.teams_claim, "teams_claim", "groups")?;
    let scopes_claim = claim(&raw.scopes_claim, "scopes_claim", "scope")?;
    let mut required_scopes = Vec::new();
    for s in raw.required_scopes.iter().flatten() {
        if !valid_scope(s.get_ref()) {
            return Err(src.err(
                s,
                f("required_scopes"),
                format!(
                    "{:?} is not a scope: scopes are non-empty and have no spaces or quotes",
                    s.get_ref()
                ),
            ));
        }
        required_scopes.push(s.get_ref().clone());
    }
    let mut control_plane = Vec::new();
    if let Some(s) = &raw.control_plane_scope {
        if !valid_scope(s.get_ref()) {
            return Err(src.err(
                s,
                f("control_plane_scope"),
                format!("{:?} is not a scope, e.g. \"gantry:admin\"", s.get_ref()),
            ));
        }
        control_plane.push(ControlPlaneGrant::Scope(s.get_ref().clone()));
    }
    match (&raw.control_plane_claim, &raw.control_plane_value) {
        (None, None) => {}
        (Some(_), Some(v)) => {
            let claim = claim(&raw.control_plane_claim, "control_plane_claim", "")?;
            if v.get_ref().is_empty() {
                return Err(src.err(v, f("control_plane_value"), "expected a non-empty value"));
            }
            control_plane.push(ControlPlaneGrant::Claim {
                claim,
                value: v.get_ref().clone(),
            });
        }
        (Some(c), None) => {
            return Err(src.err(
                c,
                f("control_plane_claim"),
                "`control_plane_claim` needs `control_plane_value` (the value that grants the \
                 control plane), e.g. control_plane_value = \"gantry-admins\"",
            ));
        }
        (None, Some(v)) => {
            return Err(src.err(
                v,
                f("control_plane_value"),
                "`control_plane_value` needs `control_plane_claim` (the claim to look in), \
                 e.g. control_plane_claim = \"groups\"",
            ));
        }
    }
    Ok(OidcConfig {
        issuer,
        audience,
        user_claim,
        teams_claim,
        scopes_claim,
        required_scopes,
        leeway: seconds_or_zero(src, raw.leeway.as_ref(), &f("leeway"))?
            .unwrap_or(DEFAULT_OIDC_LEEWAY),
        control_plane,
        jwks_refresh_min_interval: seconds_or_zero(
            src,
            raw.jwks_refresh_min_interval.as_ref(),
            &f("jwks_refresh_min_interval"),
        )?
        .unwrap_or(DEFAULT_JWKS_REFRESH_MIN_INTERVAL),
        http_timeout: match &raw.http_timeout {
            None => DEFAULT_OIDC_HTTP_TIMEOUT,
            Some(t) => super::positive_seconds(src, t, &f("http_timeout"))?,
        },
    })
}

fn seconds_or_zero(
    src: &Source<'_>,
    v: Option<&Spanned<f64>>,
    field: &str,
) -> Result<Option<Duration>, ConfigError> {
    match v {
        None => Ok(None),
        Some(s) if s.get_ref().is_finite() && (0.0..=86_400.0).contains(s.get_ref()) => {
            Ok(Some(Duration::from_secs_f64(*s.get_ref())))
        }
        Some(s) => Err(src.err(s, field, "expected a number of seconds from 0 to 86400")),
    }
}

fn valid_scope(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b > b' ' && b != b'"' && b != b'\\' && b < 0x7f)
}

/// The pieces of an `http(s)://` URL that the checks need.
pub(crate) struct UrlParts<'a> {
    /// `http` or `https`.
    pub(crate) scheme: &'a str,
    /// The host, without brackets for IPv6.
    pub(crate) host: &'a str,
    /// Everything after the authority (path, query, fragment).
    pub(crate) rest: &'a str,
}

/// Splits `http(s)://authority/rest`; `None` for other schemes or a URL with user info.
pub(crate) fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, after) = url.split_once("://")?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    if authority.contains('@') || authority.chars().any(char::is_whitespace) {
        return None;
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        let (h, port) = v6.split_once(']')?;
        if !(port.is_empty() || port.starts_with(':')) {
            return None;
        }
        h
    } else {
        match authority.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            Some(_) => return None,
            None => authority,
        }
    };
    Some(UrlParts { scheme, host, rest })
}

/// Whether `host` is a loopback name or address.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An issuer must be `https://`, or `http://` on a loopback host (for tests), without query
/// or fragment (OpenID Connect Discovery 1.0 §2).
fn check_provider_url(url: &str) -> Result<(), String> {
    let Some(parts) = split_url(url) else {
        return Err("is not an https:// URL".into());
    };
    if parts.host.is_empty() {
        return Err("has no host".into());
    }
    if parts.rest.contains(['?', '#']) {
        return Err("must not have a query or fragment".into());
    }
    if parts.scheme.eq_ignore_ascii_case("http") && !is_loopback_host(parts.host) {
        return Err(
            "is plain http: an issuer must be https:// (http:// is accepted only on a loopback \
             host such as 127.0.0.1, for tests)"
                .into(),
        );
    }
    Ok(())
}
