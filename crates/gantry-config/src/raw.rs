//! The config file as written.
//!
//! These types mirror the TOML one to one. Fields whose values are checked after parsing are
//! [`Spanned`] so that the error can point at the line.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

/// The top level of `gantry.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `listen = "127.0.0.1:8848"`.
    pub listen: Option<Spanned<String>>,
    /// `max_body_bytes = 4194304`.
    pub max_body_bytes: Option<Spanned<i64>>,
    /// `session_idle_timeout = 3600`: seconds before an idle client session is dropped.
    pub session_idle_timeout: Option<Spanned<f64>>,
    /// `allowed_origins = ["http://localhost:*"]`.
    pub allowed_origins: Option<Vec<String>>,
    /// `data_dir = "gantry-data"`: where the database lives (relative to the config file).
    pub data_dir: Option<Spanned<String>>,
    /// `shutdown_grace = "10s"`: how long in-flight calls may finish after SIGTERM.
    pub shutdown_grace: Option<Spanned<RawDuration>>,
    /// `import = ["claude_desktop_config.json"]`: mcpServers files whose servers are added.
    pub import: Option<Vec<Spanned<String>>>,
    /// `[servers.<name>]`.
    #[serde(default)]
    pub servers: BTreeMap<Spanned<String>, RawServer>,
    /// `[endpoints.<name>]`.
    #[serde(default)]
    pub endpoints: BTreeMap<Spanned<String>, RawEndpoint>,
}

/// `[servers.<name>]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// `stdio`, `streamable-http` (alias `http`) or `sse`; inferred when absent.
    pub transport: Option<Spanned<String>>,
    /// The program of a stdio server.
    pub command: Option<Spanned<String>>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<Spanned<String>>,
    /// Its extra environment.
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
    /// Its working directory.
    pub cwd: Option<Spanned<String>>,
    /// The URL of an HTTP server.
    pub url: Option<Spanned<String>>,
    /// Extra HTTP headers.
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    /// Seconds to connect and initialize (default 30).
    pub connect_timeout: Option<Spanned<f64>>,
    /// How long one page of the server's lists may take (default 30 s).
    pub list_timeout: Option<Spanned<RawDuration>>,
    /// Seconds to wait for any other response (default 300).
    pub request_timeout: Option<Spanned<f64>>,
    /// Largest message accepted from the server, in bytes.
    pub max_message_bytes: Option<Spanned<i64>>,
    /// Most requests in flight to the server at once (default 64); more get "server busy".
    pub max_in_flight: Option<Spanned<i64>>,
    /// `auto` (default), `legacy` or `2026-07-28`: which protocol era to speak to it.
    pub protocol: Option<Spanned<String>>,
    /// Overrides by the server's own tool name.
    #[serde(default)]
    pub tools: BTreeMap<String, RawOverride>,
    /// Overrides by the server's own prompt name.
    #[serde(default)]
    pub prompts: BTreeMap<String, RawOverride>,
}

/// A tool or prompt override.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOverride {
    /// Public name.
    pub name: Option<Spanned<String>>,
    /// Title.
    pub title: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Annotations merged over the server's.
    pub annotations: Option<serde_json::Map<String, Value>>,
    /// `timeout = "5s"`: the tool's own request timeout (server-level tool overrides only).
    pub timeout: Option<Spanned<RawDuration>>,
}

/// A duration as written: a number of seconds (`30`, `0.5`) or a string with a unit
/// (`"500ms"`, `"5s"`, `"2m"`, `"1h"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawDuration {
    /// Seconds.
    Seconds(f64),
    /// A number followed by `ms`, `s`, `m` or `h`.
    Text(String),
}

/// `[endpoints.<name>]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    /// Server names; all servers when absent.
    pub servers: Option<Vec<Spanned<String>>>,
    /// `prefix` (default), `priority` or `manual`.
    pub naming: Option<Spanned<String>>,
    /// Separator of prefixed names (default `__`).
    pub separator: Option<Spanned<String>>,
    /// Format of prefixed names (default `{server}{sep}{tool}`).
    pub name_format: Option<Spanned<String>>,
    /// Server precedence for `priority` naming (default: the `servers` order).
    pub priority: Option<Vec<Spanned<String>>>,
    /// Globs over `server/tool` to show.
    #[serde(default)]
    pub include: Vec<String>,
    /// Globs over `server/tool` to hide.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Overrides by `server/tool`.
    #[serde(default)]
    pub tools: BTreeMap<Spanned<String>, RawOverride>,
    /// Overrides by `server/prompt`.
    #[serde(default)]
    pub prompts: BTreeMap<Spanned<String>, RawOverride>,
    /// Items per page of merged lists.
    pub page_size: Option<Spanned<i64>>,
    /// `direct` (default), `progressive` or `auto`.
    pub mode: Option<Spanned<String>>,
    /// For `auto`: progressive above this many visible tools (default 40).
    pub progressive_above: Option<Spanned<i64>>,
}
