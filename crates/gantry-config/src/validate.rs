//! From [`RawConfig`] to [`Config`]: expansion, defaults and cross-references.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gantry_core::names;
use toml::Spanned;

use crate::error::{ConfigError, Located, line_col};
use crate::expand::expand;
use crate::model::*;
use crate::raw::{RawConfig, RawDuration, RawEndpoint, RawOverride, RawServer};

mod auth;
mod health;

/// Where errors point: the file and its text.
pub(crate) struct Source<'a> {
    pub(crate) file: &'a Path,
    pub(crate) text: &'a str,
    pub(crate) env: &'a dyn Fn(&str) -> Option<String>,
}

impl Source<'_> {
    pub(crate) fn err_at(
        &self,
        span: Option<std::ops::Range<usize>>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = match span {
            Some(s) => {
                let (l, c) = line_col(self.text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError::Invalid(Located {
            file: self.file.display().to_string(),
            line,
            column,
            field: field.into(),
            message: message.into(),
        })
    }

    pub(crate) fn err<T>(
        &self,
        v: &Spanned<T>,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) -> ConfigError {
        self.err_at(Some(v.span()), field, msg)
    }

    pub(crate) fn expand(&self, v: &Spanned<String>, field: &str) -> Result<String, ConfigError> {
        expand(v.get_ref(), self.env).map_err(|m| self.err(v, field, m))
    }
}

pub(crate) fn load_toml(
    file: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let src = Source { file, text, env };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let message = e.message().to_owned();
        src.err_at(e.span(), "", message)
    })?;
    build(&src, raw)
}

pub(crate) fn build(src: &Source<'_>, raw: RawConfig) -> Result<Config, ConfigError> {
    let listen = match &raw.listen {
        None => DEFAULT_LISTEN
            .parse()
            .expect("default listen address parses"),
        Some(l) => l.get_ref().parse::<SocketAddr>().map_err(|_| {
            src.err(
                l,
                "listen",
                format!(
                    "{:?} is not an address: expected IP:PORT, e.g. \"127.0.0.1:8848\"",
                    l.get_ref()
                ),
            )
        })?,
    };
    let data_dir = data_dir(src, raw.data_dir.as_ref())?;
    let max_body_bytes = positive(src, raw.max_body_bytes.as_ref(), "max_body_bytes")?
        .unwrap_or(DEFAULT_MAX_BODY_BYTES);
    let session_idle_timeout = seconds(
        src,
        raw.session_idle_timeout.as_ref(),
        "session_idle_timeout",
        3600,
    )?;
    let public_url = match &raw.public_url {
        Some(u) => Some(base_url(src, u, "public_url")?),
        None => None,
    };
    let mut authorization_servers = Vec::new();
    for a in raw.authorization_servers.iter().flatten() {
        let expanded = src.expand(a, "authorization_servers")?;
        if !(expanded.starts_with("https://") || expanded.starts_with("http://"))
            || expanded.contains(['?', '#'])
        {
            return Err(src.err(
                a,
                "authorization_servers",
                format!("{expanded:?} is not an issuer URL: expected https://host[/path], without query or fragment"),
            ));
        }
        authorization_servers.push(expanded);
    }
    let shutdown_grace = match &raw.shutdown_grace {
        None => DEFAULT_SHUTDOWN_GRACE,
        Some(d) => duration(src, d, "shutdown_grace", true)?,
    };
    let allowed_origins = raw.allowed_origins.unwrap_or_else(|| {
        vec![
            "http://localhost:*".into(),
            "http://127.0.0.1:*".into(),
            "http://[::1]:*".into(),
            "https://localhost:*".into(),
            "https://127.0.0.1:*".into(),
        ]
    });

    let mut servers = BTreeMap::new();
    let mut imports = Vec::new();
    for path in raw.import.iter().flatten() {
        let import = resolve_relative(src.file, &src.expand(path, "import")?);
        imports.push(import.clone());
        let text = std::fs::read_to_string(&import).map_err(|e| {
            src.err(
                path,
                "import",
                format!("cannot read {}: {e}", import.display()),
            )
        })?;
        let imported = crate::mcp_json::parse_servers(&import, &text, src.env)?;
        servers.extend(imported);
    }
    for (name, server) in &raw.servers {
        let field = format!("servers.{}", name.get_ref());
        if !valid_server_name(name.get_ref()) {
            return Err(src.err(
                name,
                field,
                "server names may use only letters, digits, '_' and '-'",
            ));
        }
        servers.insert(
            name.get_ref().clone(),
            build_server(src, name.get_ref(), &field, Some(name.span()), server)?,
        );
    }

    let mut endpoints = BTreeMap::new();
    for (name, ep) in &raw.endpoints {
        let field = format!("endpoints.{}", name.get_ref());
        if !valid_server_name(name.get_ref()) {
            return Err(src.err(
                name,
                field,
                "endpoint names may use only letters, digits, '_' and '-'",
            ));
        }
        endpoints.insert(
            name.get_ref().clone(),
            build_endpoint(src, name.get_ref(), ep, &servers)?,
        );
    }
    if endpoints.is_empty() {
        let ep = RawEndpoint::default();
        endpoints.insert(
            "default".into(),
            build_endpoint(src, "default", &ep, &servers)?,
        );
    }
    let auth = auth::build_auth(src, raw.auth.as_ref())?;
    let health = health::build_settings(src, raw.health.as_ref())?;
    for s in servers.values_mut() {
        s.health = health.defaults.clone();
    }
    let lifecycle = lifecycle(src, raw.lifecycle.as_ref())?;
    for (name, s) in servers.iter_mut() {
        // A key the server sets wins over `[lifecycle]` (imported servers never set one).
        let own = raw
            .servers
            .iter()
            .find(|(n, _)| n.get_ref() == name)
            .map(|(_, r)| r);
        if own.is_none_or(|r| r.start.is_none()) {
            s.start = lifecycle.start;
        }
        if own.is_none_or(|r| r.idle_shutdown.is_none()) {
            s.idle_shutdown = lifecycle.idle_shutdown;
        }
    }
    for (name, server) in &raw.servers {
        if let (Some(h), Some(s)) = (&server.health, servers.get_mut(name.get_ref())) {
            s.health = health::build_server(src, name.get_ref(), &health.defaults, h)?;
        }
    }
    Ok(Config {
        source: src.file.to_path_buf(),
        imports,
        listen,
        data_dir,
        max_body_bytes,
        session_idle_timeout,
        public_url,
        allow_public_on_network: raw.allow_public_on_network.unwrap_or(false),
        authorization_servers,
        allowed_origins,
        shutdown_grace,
        servers,
        endpoints,
        auth,
        health,
        lifecycle,
    })
}

/// `[lifecycle]`: the servers' default `start` and `idle_shutdown`.
fn lifecycle(
    src: &Source<'_>,
    raw: Option<&crate::raw::RawLifecycle>,
) -> Result<Lifecycle, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Lifecycle::default());
    };
    Ok(Lifecycle {
        start: match &raw.start {
            Some(v) => start_mode(src, v, "lifecycle.start")?,
            None => StartMode::Eager,
        },
        idle_shutdown: match &raw.idle_shutdown {
            Some(v) => idle_shutdown(src, v, "lifecycle.idle_shutdown")?,
            None => None,
        },
    })
}

fn start_mode(
    src: &Source<'_>,
    v: &Spanned<String>,
    field: &str,
) -> Result<StartMode, ConfigError> {
    match v.get_ref().as_str() {
        "eager" => Ok(StartMode::Eager),
        "lazy" => Ok(StartMode::Lazy),
        other => Err(src.err(
            v,
            field,
            format!("unknown start {other:?}: expected \"eager\" (with the gateway) or \"lazy\" (on first use)"),
        )),
    }
}

/// `idle_shutdown`: a positive duration, or `0` / `"off"` for never.
fn idle_shutdown(
    src: &Source<'_>,
    v: &Spanned<RawDuration>,
    field: &str,
) -> Result<Option<Duration>, ConfigError> {
    if let RawDuration::Text(t) = v.get_ref()
        && t.trim() == "off"
    {
        return Ok(None);
    }
    match duration(src, v, field, true) {
        Ok(d) => Ok(Some(d).filter(|d| !d.is_zero())),
        Err(_) => Err(src.err(
            v,
            field,
            "expected a duration like \"10m\", \"90s\", \"1h\" (or 0 / \"off\": never)",
        )),
    }
}

/// A base URL: `http(s)://host[:port]`, no path, query or fragment; a trailing `/` is dropped.
fn base_url(src: &Source<'_>, v: &Spanned<String>, field: &str) -> Result<String, ConfigError> {
    let expanded = src.expand(v, field)?;
    let bad = |why: &str| {
        src.err(
            v,
            field,
            format!("{expanded:?} {why}: expected a base URL like \"https://gantry.example.com\" (endpoints are served under it at /mcp/<name>)"),
        )
    };
    let rest = expanded
        .strip_prefix("https://")
        .or_else(|| expanded.strip_prefix("http://"))
        .ok_or_else(|| bad("is not an http:// or https:// URL"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Err(bad("has no host"));
    }
    if rest.contains(['?', '#']) {
        return Err(bad("has a query or fragment"));
    }
    if rest.contains('/') {
        return Err(bad("has a path"));
    }
    if rest.contains(['@', ' ']) {
        return Err(bad("is not a plain host[:port]"));
    }
    Ok(expanded.strip_suffix('/').unwrap_or(&expanded).to_owned())
}

/// `data_dir`, resolved against the config file's folder; it may be missing (it is created
/// when needed) but not something other than a directory.
fn data_dir(src: &Source<'_>, raw: Option<&Spanned<String>>) -> Result<PathBuf, ConfigError> {
    let Some(d) = raw else {
        return Ok(resolve_relative(src.file, DEFAULT_DATA_DIR));
    };
    let expanded = src.expand(d, "data_dir")?;
    if expanded.trim().is_empty() {
        return Err(src.err(d, "data_dir", "the data directory must not be empty"));
    }
    let path = resolve_relative(src.file, &expanded);
    if path.exists() && !path.is_dir() {
        return Err(src.err(
            d,
            "data_dir",
            format!("{} exists but is not a directory", path.display()),
        ));
    }
    Ok(path)
}

pub(crate) fn valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn resolve_relative(base_file: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_file.parent().unwrap_or(Path::new(".")).join(p)
    }
}

fn positive(
    src: &Source<'_>,
    v: Option<&Spanned<i64>>,
    field: &str,
) -> Result<Option<usize>, ConfigError> {
    match v {
        None => Ok(None),
        Some(n) if *n.get_ref() > 0 => Ok(Some(*n.get_ref() as usize)),
        Some(n) => Err(src.err(n, field, "expected a positive whole number")),
    }
}

/// A duration written as seconds (`30`, `0.5`) or with a unit (`"500ms"`, `"5s"`, `"2m"`,
/// `"1h"`); zero only where `zero_ok`.
fn duration(
    src: &Source<'_>,
    v: &Spanned<RawDuration>,
    field: &str,
    zero_ok: bool,
) -> Result<Duration, ConfigError> {
    let expected = "expected a duration: a number of seconds or a string like \"500ms\", \"5s\", \"2m\", \"1h\"";
    let secs = match v.get_ref() {
        RawDuration::Seconds(n) => Some(*n),
        RawDuration::Text(t) => parse_duration(t),
    };
    match secs {
        Some(n) if n.is_finite() && (n > 0.0 || (zero_ok && n == 0.0)) && n <= 1e9 => {
            Ok(Duration::from_secs_f64(n))
        }
        Some(_) => Err(src.err(
            v,
            field,
            if zero_ok {
                "expected a duration of 0 or more (at most 1e9 seconds)"
            } else {
                "expected a positive duration (at most 1e9 seconds)"
            },
        )),
        None => Err(src.err(v, field, expected)),
    }
}

/// `"500ms"`, `"5s"`, `"1.5m"`, `"1h"` → seconds.
pub(crate) fn parse_duration(text: &str) -> Option<f64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    let scale = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Some(n * scale)
}

fn seconds(
    src: &Source<'_>,
    v: Option<&Spanned<f64>>,
    field: &str,
    default: u64,
) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(Duration::from_secs(default)),
        Some(s) => positive_seconds(src, s, field),
    }
}

/// A positive number of seconds; one too large for a [`Duration`] is refused like zero
/// (`Duration::from_secs_f64` would panic on it).
pub(crate) fn positive_seconds(
    src: &Source<'_>,
    v: &Spanned<f64>,
    field: &str,
) -> Result<Duration, ConfigError> {
    match Duration::try_from_secs_f64(*v.get_ref()) {
        Ok(d) if *v.get_ref() > 0.0 => Ok(d),
        _ => Err(src.err(v, field, "expected a positive number of seconds")),
    }
}

/// Builds one server; `field` names it in errors (`servers.NAME`, or `mcpServers.NAME` in an
/// imported file).
pub(crate) fn build_server(
    src: &Source<'_>,
    name: &str,
    field: &str,
    at: Option<std::ops::Range<usize>>,
    raw: &RawServer,
) -> Result<ServerConfig, ConfigError> {
    let f = |k: &str| format!("{field}.{k}");
    let kind = match &raw.transport {
        Some(t) => match t.get_ref().as_str() {
            "stdio" => "stdio",
            "streamable-http" | "http" | "streamableHttp" => "http",
            "sse" => "sse",
            other => {
                return Err(src.err(
                    t,
                    f("transport"),
                    format!("unknown transport {other:?}: expected \"stdio\", \"streamable-http\" or \"sse\""),
                ));
            }
        },
        None if raw.command.is_some() => "stdio",
        None if raw.url.is_some() => "http",
        None => {
            return Err(src.err_at(
                at.clone(),
                field,
                "a server needs either `command` (stdio) or `url` (Streamable HTTP or SSE)",
            ));
        }
    };
    let transport = if kind == "stdio" {
        let Some(command) = &raw.command else {
            return Err(src.err_at(at.clone(), f("command"), "a stdio server needs `command`"));
        };
        if let Some(url) = &raw.url {
            return Err(src.err(url, f("url"), "a stdio server takes `command`, not `url`"));
        }
        let command = src.expand(command, &f("command"))?;
        if command.trim().is_empty() {
            return Err(src.err_at(at.clone(), f("command"), "`command` is empty"));
        }
        let mut args = Vec::new();
        for a in &raw.args {
            args.push(src.expand(a, &f("args"))?);
        }
        let mut env = Vec::new();
        for (k, v) in &raw.env {
            env.push((k.clone(), src.expand(v, &f(&format!("env.{k}")))?));
        }
        let cwd = match &raw.cwd {
            Some(c) => Some(resolve_relative(src.file, &src.expand(c, &f("cwd"))?)),
            None => None,
        };
        TransportConfig::Stdio(StdioConfig {
            command,
            args,
            env,
            cwd,
        })
    } else {
        let Some(url) = &raw.url else {
            return Err(src.err_at(at.clone(), f("url"), "an HTTP server needs `url`"));
        };
        if let Some(c) = &raw.command {
            return Err(src.err(c, f("command"), "an HTTP server takes `url`, not `command`"));
        }
        let expanded = src.expand(url, &f("url"))?;
        if !(expanded.starts_with("http://") || expanded.starts_with("https://")) {
            return Err(src.err(
                url,
                f("url"),
                format!("{expanded:?} is not an http:// or https:// URL"),
            ));
        }
        let mut headers = Vec::new();
        for (k, v) in &raw.headers {
            headers.push((k.clone(), src.expand(v, &f(&format!("headers.{k}")))?));
        }
        let http = HttpConfig {
            url: expanded,
            headers,
        };
        if kind == "sse" {
            TransportConfig::Sse(http)
        } else {
            TransportConfig::StreamableHttp(http)
        }
    };
    Ok(ServerConfig {
        name: name.to_owned(),
        transport,
        connect_timeout: seconds(src, raw.connect_timeout.as_ref(), &f("connect_timeout"), 30)?,
        list_timeout: match &raw.list_timeout {
            None => Duration::from_secs(30),
            Some(d) => duration(src, d, &f("list_timeout"), false)?,
        },
        request_timeout: seconds(
            src,
            raw.request_timeout.as_ref(),
            &f("request_timeout"),
            300,
        )?,
        max_message_bytes: positive(src, raw.max_message_bytes.as_ref(), &f("max_message_bytes"))?
            .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES),
        max_in_flight: positive(src, raw.max_in_flight.as_ref(), &f("max_in_flight"))?
            .unwrap_or(DEFAULT_MAX_IN_FLIGHT),
        tool_timeouts: {
            let mut out = BTreeMap::new();
            for (tool, o) in &raw.tools {
                if let Some(t) = &o.timeout {
                    let field = f(&format!("tools.{tool}.timeout"));
                    out.insert(tool.clone(), duration(src, t, &field, false)?);
                }
            }
            out
        },
        protocol: match raw.protocol.as_ref().map(|p| (p, p.get_ref().as_str())) {
            None | Some((_, "auto")) => ProtocolChoice::Auto,
            Some((_, "legacy")) => ProtocolChoice::Legacy,
            Some((_, v)) if gantry_core::protocol::is_modern_version(v) => ProtocolChoice::Modern,
            Some((p, other)) => {
                return Err(src.err(
                    p,
                    f("protocol"),
                    format!("unknown protocol {other:?}: expected \"auto\", \"legacy\" or \"2026-07-28\""),
                ));
            }
        },
        start: match &raw.start {
            Some(v) => start_mode(src, v, &f("start"))?,
            None => StartMode::Eager,
        },
        idle_shutdown: match &raw.idle_shutdown {
            Some(v) => idle_shutdown(src, v, &f("idle_shutdown"))?,
            None => None,
        },
        health: crate::HealthConfig::default(),
        tools: overrides(
            src,
            &f("tools"),
            raw.tools.iter().map(|(k, v)| (k.clone(), v)),
            true,
        )?,
        prompts: overrides(
            src,
            &f("prompts"),
            raw.prompts.iter().map(|(k, v)| (k.clone(), v)),
            false,
        )?,
    })
}

fn overrides<'a>(
    src: &Source<'_>,
    field: &str,
    items: impl Iterator<Item = (String, &'a RawOverride)>,
    timeout_ok: bool,
) -> Result<BTreeMap<String, Override>, ConfigError> {
    let mut out = BTreeMap::new();
    for (key, raw) in items {
        if let Some(t) = raw.timeout.as_ref().filter(|_| !timeout_ok) {
            return Err(src.err(
                t,
                format!("{field}.{key}.timeout"),
                "`timeout` is set per tool on the server: [servers.NAME.tools.TOOL] timeout = \"5s\"",
            ));
        }
        let name = match &raw.name {
            Some(n) if !names::is_valid(n.get_ref()) => {
                return Err(src.err(
                    n,
                    format!("{field}.{key}.name"),
                    format!(
                        "{:?} is not a valid tool name: use 1-128 characters from A-Z a-z 0-9 _ . -",
                        n.get_ref()
                    ),
                ));
            }
            Some(n) => Some(n.get_ref().clone()),
            None => None,
        };
        out.insert(
            key,
            Override {
                name,
                title: raw.title.clone(),
                description: raw.description.clone(),
                annotations: raw.annotations.clone(),
            },
        );
    }
    Ok(out)
}

fn build_endpoint(
    src: &Source<'_>,
    name: &str,
    raw: &RawEndpoint,
    servers: &BTreeMap<String, ServerConfig>,
) -> Result<EndpointConfig, ConfigError> {
    let f = |k: &str| format!("endpoints.{name}.{k}");
    let check_server = |s: &Spanned<String>, field: String| -> Result<String, ConfigError> {
        if servers.contains_key(s.get_ref()) {
            Ok(s.get_ref().clone())
        } else {
            let known: Vec<&str> = servers.keys().map(String::as_str).collect();
            Err(src.err(
                s,
                field,
                format!(
                    "unknown server {:?}: defined servers are [{}]",
                    s.get_ref(),
                    known.join(", ")
                ),
            ))
        }
    };
    let member_servers = match &raw.servers {
        Some(list) => {
            let mut out = Vec::new();
            for s in list {
                let server = check_server(s, f("servers"))?;
                if out.contains(&server) {
                    return Err(src.err(
                        s,
                        f("servers"),
                        format!("server {server:?} is listed twice"),
                    ));
                }
                out.push(server);
            }
            out
        }
        None => servers.keys().cloned().collect(),
    };
    let separator = match &raw.separator {
        Some(s) if s.get_ref().is_empty() || !s.get_ref().chars().all(names::is_name_char) => {
            return Err(src.err(
                s,
                f("separator"),
                "the separator must be non-empty and use only A-Z a-z 0-9 _ . -",
            ));
        }
        Some(s) => s.get_ref().clone(),
        None => "__".into(),
    };
    let format = match &raw.name_format {
        Some(fmt) if !fmt.get_ref().contains("{tool}") || !fmt.get_ref().contains("{server}") => {
            return Err(src.err(
                fmt,
                f("name_format"),
                "the name format must contain {server} and {tool}, e.g. \"{server}{sep}{tool}\"",
            ));
        }
        Some(fmt) => fmt.get_ref().clone(),
        None => "{server}{sep}{tool}".into(),
    };
    let naming = match raw.naming.as_ref().map(|n| (n, n.get_ref().as_str())) {
        None | Some((_, "prefix")) => Naming::Prefix { separator, format },
        Some((_, "priority")) => {
            let mut order = Vec::new();
            for s in raw.priority.iter().flatten() {
                let server = check_server(s, f("priority"))?;
                if !member_servers.contains(&server) {
                    return Err(src.err(
                        s,
                        f("priority"),
                        format!("server {server:?} is in `priority` but not in this endpoint's `servers`"),
                    ));
                }
                order.push(server);
            }
            if raw.priority.is_none() {
                order = member_servers.clone();
            }
            Naming::Priority {
                order,
                separator,
                format,
            }
        }
        Some((_, "manual")) => Naming::Manual,
        Some((n, other)) => {
            return Err(src.err(
                n,
                f("naming"),
                format!("unknown naming strategy {other:?}: expected \"prefix\", \"priority\" or \"manual\""),
            ));
        }
    };
    let qualified = |kind: &str, map: &BTreeMap<Spanned<String>, RawOverride>| {
        let mut items = Vec::new();
        for (k, v) in map {
            let key = k.get_ref();
            let Some((server, _)) = key.split_once('/') else {
                return Err(src.err(
                    k,
                    format!("{}.{key}", f(kind)),
                    format!(
                        "override keys are \"server/{}\", e.g. \"time/get_current_time\"",
                        &kind[..kind.len() - 1]
                    ),
                ));
            };
            if !member_servers.iter().any(|s| s == server) {
                return Err(src.err(
                    k,
                    format!("{}.{key}", f(kind)),
                    format!("server {server:?} is not part of endpoint {name:?}"),
                ));
            }
            items.push((key.clone(), v));
        }
        overrides(src, &f(kind), items.into_iter(), false)
    };
    let tools = qualified("tools", &raw.tools)?;
    let prompts = qualified("prompts", &raw.prompts)?;
    let page_size = positive(src, raw.page_size.as_ref(), &f("page_size"))?;
    let mode = tool_mode(src, raw, &f)?;
    let access = access(src, raw, &f)?;
    let mut scopes = Vec::new();
    if let Some(list) = &raw.scopes {
        if access == Access::Public && !list.get_ref().is_empty() {
            return Err(src.err(
                list,
                f("scopes"),
                "`scopes` needs a credential: set access = \"authenticated\" or \"restricted\"",
            ));
        }
        for s in list.get_ref() {
            let v = s.get_ref();
            if v.is_empty()
                || v.chars()
                    .any(|c| c.is_whitespace() || c == '"' || c == '\\')
            {
                return Err(src.err(
                    s,
                    f("scopes"),
                    format!(
                        "{v:?} is not an OAuth scope: non-empty, no spaces, quotes or backslashes"
                    ),
                ));
            }
            scopes.push(v.clone());
        }
    }
    let entitlements = entitlements(src, raw, &access, &f)?;
    Ok(EndpointConfig {
        name: name.to_owned(),
        servers: member_servers,
        naming,
        include: raw.include.clone(),
        exclude: raw.exclude.clone(),
        tools,
        prompts,
        page_size,
        mode,
        access,
        scopes,
        entitlements,
    })
}

fn access(
    src: &Source<'_>,
    raw: &RawEndpoint,
    f: &dyn Fn(&str) -> String,
) -> Result<Access, ConfigError> {
    let access = match raw.access.as_ref().map(|a| (a, a.get_ref().as_str())) {
        None | Some((_, "public")) => Access::Public,
        Some((_, "authenticated")) => Access::Authenticated,
        Some((_, "restricted")) => {
            let Some(list) = &raw.teams else {
                return Err(src.err(
                    raw.access.as_ref().expect("access is set"),
                    f("teams"),
                    "access = \"restricted\" needs `teams`, the teams whose members may use the endpoint, e.g. teams = [\"analysts\"]",
                ));
            };
            if list.get_ref().is_empty() {
                return Err(src.err(
                    list,
                    f("teams"),
                    "`teams` is empty, so nobody could use this endpoint: name at least one team",
                ));
            }
            let mut teams: Vec<String> = Vec::new();
            for t in list.get_ref() {
                if t.get_ref().trim().is_empty() {
                    return Err(src.err(t, f("teams"), "a team name must not be empty"));
                }
                if teams.contains(t.get_ref()) {
                    return Err(src.err(
                        t,
                        f("teams"),
                        format!("team {:?} is listed twice", t.get_ref()),
                    ));
                }
                teams.push(t.get_ref().clone());
            }
            return Ok(Access::Restricted { teams });
        }
        Some((a, other)) => {
            return Err(src.err(
                a,
                f("access"),
                format!("unknown access policy {other:?}: expected \"public\", \"authenticated\" or \"restricted\""),
            ));
        }
    };
    if let Some(t) = &raw.teams {
        return Err(src.err(
            t,
            f("teams"),
            format!(
                "`teams` applies only with access = \"restricted\" (this endpoint is {:?})",
                access.as_str()
            ),
        ));
    }
    Ok(access)
}

fn entitlements(
    src: &Source<'_>,
    raw: &RawEndpoint,
    access: &Access,
    f: &dyn Fn(&str) -> String,
) -> Result<Option<BTreeMap<String, Entitlement>>, ConfigError> {
    let Some(table) = &raw.entitlements else {
        return Ok(None);
    };
    let mut out = BTreeMap::new();
    for (team, entry) in table.get_ref() {
        let field = format!("{}.{}", f("entitlements"), team.get_ref());
        if team.get_ref().trim().is_empty() {
            return Err(src.err(team, field, "a team name must not be empty"));
        }
        if let Access::Restricted { teams } = access
            && team.get_ref() != "*"
            && !teams.contains(team.get_ref())
        {
            return Err(src.err(
                team,
                field,
                format!(
                    "team {:?} is not in this endpoint's `teams` [{}], so its members cannot use the endpoint: add it there or remove this entry",
                    team.get_ref(),
                    teams.join(", ")
                ),
            ));
        }
        let e = match entry {
            crate::raw::RawEntitlement::Tools(tools) => Entitlement {
                tools: tools.clone(),
                ..Entitlement::default()
            },
            crate::raw::RawEntitlement::Kinds(k) => Entitlement {
                tools: k.tools.clone(),
                prompts: k.prompts.clone(),
                resources: k.resources.clone(),
            },
        };
        if [&e.tools, &e.prompts, &e.resources]
            .iter()
            .any(|globs| globs.iter().any(|g| g.is_empty()))
        {
            return Err(src.err(team, field, "an empty glob matches nothing: remove it"));
        }
        out.insert(team.get_ref().clone(), e);
    }
    Ok(Some(out))
}

fn tool_mode(
    src: &Source<'_>,
    raw: &RawEndpoint,
    f: &dyn Fn(&str) -> String,
) -> Result<ToolMode, ConfigError> {
    let above = match &raw.progressive_above {
        None => None,
        Some(n) if *n.get_ref() >= 0 => Some(*n.get_ref() as usize),
        Some(n) => {
            return Err(src.err(
                n,
                f("progressive_above"),
                "expected a whole number of tools (0 or more), e.g. 40",
            ));
        }
    };
    let mode = match raw.mode.as_ref().map(|m| (m, m.get_ref().as_str())) {
        None | Some((_, "direct")) => ToolMode::Direct,
        Some((_, "progressive")) => ToolMode::Progressive,
        Some((_, "auto")) => {
            return Ok(ToolMode::Auto {
                above: above.unwrap_or(DEFAULT_PROGRESSIVE_ABOVE),
            });
        }
        Some((m, other)) => {
            return Err(src.err(
                m,
                f("mode"),
                format!("unknown mode {other:?}: expected \"direct\", \"progressive\" or \"auto\""),
            ));
        }
    };
    if let Some(n) = &raw.progressive_above {
        return Err(src.err(
            n,
            f("progressive_above"),
            "`progressive_above` applies only with mode = \"auto\"",
        ));
    }
    Ok(mode)
}

#[cfg(test)]
mod tests;
