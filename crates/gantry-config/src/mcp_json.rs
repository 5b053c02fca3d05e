//! Importing `mcpServers` JSON files (Claude Desktop, Cursor; VS Code's `servers`).
//!
//! Each entry becomes a server; a file loaded on its own also gets one endpoint, `default`,
//! with all its servers. Fields clients add for themselves (`disabled`, `autoApprove`, …) are
//! ignored, and `"disabled": true` skips the entry.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use toml::Spanned;

use crate::error::{ConfigError, Located};
use crate::model::*;
use crate::raw::{RawConfig, RawServer};
use crate::validate::{Source, valid_server_name};

pub(crate) fn load(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let servers = parse_servers(path, text, env)?;
    // The defaults of an empty TOML file, with these servers on one `default` endpoint.
    let src = Source {
        file: path,
        text,
        env,
    };
    let mut config = crate::validate::build(&src, RawConfig::default())?;
    let endpoint = config
        .endpoints
        .get_mut("default")
        .expect("an empty config has the default endpoint");
    endpoint.servers = servers.keys().cloned().collect();
    config.servers = servers;
    Ok(config)
}

/// Reads the servers of an `mcpServers` file.
pub(crate) fn parse_servers(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, ServerConfig>, ConfigError> {
    let file = path.display().to_string();
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        ConfigError::Invalid(Located {
            file: file.clone(),
            line: Some(e.line()),
            column: Some(e.column()),
            field: String::new(),
            message: format!("not valid JSON: {e}"),
        })
    })?;
    let src = Source {
        file: path,
        text,
        env,
    };
    let (key, entries) = match (doc.get("mcpServers"), doc.get("servers")) {
        (Some(v), _) => ("mcpServers", v),
        (None, Some(v)) => ("servers", v),
        _ => {
            return Err(src.err_at(
                None,
                "mcpServers",
                "expected an object with \"mcpServers\" (Claude Desktop, Cursor) or \"servers\" (VS Code)",
            ));
        }
    };
    let Some(entries) = entries.as_object() else {
        return Err(src.err_at(None, key, "expected an object of servers by name"));
    };
    let mut out = BTreeMap::new();
    for (name, entry) in entries {
        let span = find_key(text, name);
        let field = format!("{key}.{name}");
        if !valid_server_name(name) {
            return Err(src.err_at(
                span.clone(),
                field,
                "server names may use only letters, digits, '_' and '-'",
            ));
        }
        let Some(obj) = entry.as_object() else {
            return Err(src.err_at(span, field, "expected an object"));
        };
        if obj.get("disabled").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let range = span.clone().unwrap_or(0..0);
        let s = |k: &str| -> Result<Option<Spanned<String>>, ConfigError> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(v)) => Ok(Some(Spanned::new(range.clone(), v.clone()))),
                Some(_) => {
                    Err(src.err_at(span.clone(), format!("{field}.{k}"), "expected a string"))
                }
            }
        };
        let map = |k: &str| -> Result<BTreeMap<String, Spanned<String>>, ConfigError> {
            let mut m = BTreeMap::new();
            if let Some(v) = obj.get(k) {
                let Some(o) = v.as_object() else {
                    return Err(src.err_at(
                        span.clone(),
                        format!("{field}.{k}"),
                        "expected an object of strings",
                    ));
                };
                for (mk, mv) in o {
                    let Some(mv) = mv.as_str() else {
                        return Err(src.err_at(
                            span.clone(),
                            format!("{field}.{k}.{mk}"),
                            "expected a string",
                        ));
                    };
                    m.insert(mk.clone(), Spanned::new(range.clone(), mv.to_owned()));
                }
            }
            Ok(m)
        };
        let args = match obj.get("args") {
            None => vec![],
            Some(Value::Array(a)) => {
                let mut v = Vec::new();
                for x in a {
                    let Some(x) = x.as_str() else {
                        return Err(src.err_at(
                            span.clone(),
                            format!("{field}.args"),
                            "expected an array of strings",
                        ));
                    };
                    v.push(Spanned::new(range.clone(), x.to_owned()));
                }
                v
            }
            Some(_) => {
                return Err(src.err_at(
                    span.clone(),
                    format!("{field}.args"),
                    "expected an array of strings",
                ));
            }
        };
        let transport = s("type")?.or(s("transport")?);
        let raw = RawServer {
            transport,
            command: s("command")?,
            args,
            env: map("env")?,
            cwd: s("cwd")?,
            url: s("url")?.or(s("serverUrl")?),
            headers: map("headers")?,
            ..RawServer::default()
        };
        let server = crate::validate::build_server(&src, name, &field, span.clone(), &raw)?;
        out.insert(name.clone(), server);
    }
    Ok(out)
}

/// The span of `"name":` in the text, for error positions.
fn find_key(text: &str, name: &str) -> Option<std::ops::Range<usize>> {
    let needle = format!("\"{name}\"");
    let at = text.find(&needle)?;
    Some(at..at + needle.len())
}
