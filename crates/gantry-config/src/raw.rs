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
    /// `public_url = "https://gantry.example.com"`: the base URL clients reach Gantry at.
    pub public_url: Option<Spanned<String>>,
    /// `allow_public_on_network = true`: serve `public` endpoints on a non-loopback address.
    pub allow_public_on_network: Option<bool>,
    /// `authorization_servers = ["https://login.example.com"]`: the issuers clients get
    /// tokens from, published in the protected-resource metadata.
    pub authorization_servers: Option<Vec<Spanned<String>>>,
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
    /// `[auth]`.
    pub auth: Option<RawAuth>,
    /// `[health]`: health checks, circuit breakers, readiness (defaults for every server).
    pub health: Option<Spanned<RawHealth>>,
    /// `[lifecycle]`: when servers start and stop (defaults for every server).
    pub lifecycle: Option<RawLifecycle>,
}

/// `[lifecycle]`: the defaults of every server's `start` and `idle_shutdown`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLifecycle {
    /// `eager` (default) or `lazy`.
    pub start: Option<Spanned<String>>,
    /// `"10m"`: stop a server after this long without a request; `0` or `"off"` (default):
    /// never.
    pub idle_shutdown: Option<Spanned<RawDuration>>,
}

/// `[health]` and `[servers.<name>.health]`: durations in seconds.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    /// Seconds between health checks; 0 disables them (default 30).
    pub interval: Option<Spanned<f64>>,
    /// Seconds one check may take (default 10).
    pub timeout: Option<Spanned<f64>>,
    /// Seconds beyond which an answer is slow: degraded (default 2).
    pub slow: Option<Spanned<f64>>,
    /// Consecutive failed checks that make a server unhealthy (default 3).
    pub unhealthy_after: Option<Spanned<i64>>,
    /// Consecutive transport failures that open the circuit; 0 disables it (default 5).
    pub circuit_failures: Option<Spanned<i64>>,
    /// Seconds within which those failures must fall (default 60).
    pub circuit_window: Option<Spanned<f64>>,
    /// Seconds an open circuit waits before a half-open probe (default 30).
    pub circuit_cooldown: Option<Spanned<f64>>,
    /// Restarts within `crash_loop_window` that make a crash loop (default 5).
    pub crash_loop_restarts: Option<Spanned<i64>>,
    /// Seconds over which restarts are counted (default 60).
    pub crash_loop_window: Option<Spanned<f64>>,
    /// `attempted` (default) or `require_all`: when `/readyz` answers 200 (`[health]` only).
    pub readyz: Option<Spanned<String>>,
    /// Most stdio servers started at once (default 8; `[health]` only).
    pub max_concurrent_spawns: Option<Spanned<i64>>,
}

/// `[auth]`: how callers authenticate.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// `[[auth.oidc]]`: OpenID providers whose JWT access tokens are accepted, one table each.
    #[serde(default)]
    pub oidc: Vec<Spanned<RawOidc>>,
}

/// One string or a list of strings (`audience = "x"` or `audience = ["x", "y"]`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawStrings {
    /// A single string.
    One(String),
    /// A list.
    Many(Vec<String>),
}

/// `[[auth.oidc]]`: an OpenID provider.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidc {
    /// The issuer URL, exactly as the provider's tokens name it (`iss`).
    pub issuer: Option<Spanned<String>>,
    /// Accepted audiences; default: the canonical URL of the resource being called.
    pub audience: Option<Spanned<RawStrings>>,
    /// Claim naming the user (default `sub`).
    pub user_claim: Option<Spanned<String>>,
    /// Claim listing the user's teams (default `groups`).
    pub teams_claim: Option<Spanned<String>>,
    /// Claim holding the granted scopes (default `scope`, falling back to `scp`).
    pub scopes_claim: Option<Spanned<String>>,
    /// Scopes every token must carry.
    pub required_scopes: Option<Vec<Spanned<String>>>,
    /// Allowed clock skew in seconds for `exp`, `nbf` and `iat` (default 60).
    pub leeway: Option<Spanned<f64>>,
    /// A scope that grants the control plane.
    pub control_plane_scope: Option<Spanned<String>>,
    /// A claim that grants the control plane when it is (or contains) `control_plane_value`.
    pub control_plane_claim: Option<Spanned<String>>,
    /// The value of `control_plane_claim` that grants the control plane.
    pub control_plane_value: Option<Spanned<String>>,
    /// Least seconds between two JWKS fetches caused by unknown key ids (default 30).
    pub jwks_refresh_min_interval: Option<Spanned<f64>>,
    /// Seconds to wait for the provider's discovery document or JWKS (default 10).
    pub http_timeout: Option<Spanned<f64>>,
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
    /// Most requests in flight to the server at once (default 256); more get "server busy".
    pub max_in_flight: Option<Spanned<i64>>,
    /// `auto` (default), `legacy` or `2026-07-28`: which protocol era to speak to it.
    pub protocol: Option<Spanned<String>>,
    /// `eager` (default: with the gateway) or `lazy` (on first use).
    pub start: Option<Spanned<String>>,
    /// Stop the server after this long without a request (`"10m"`); `0` or `"off"`: never.
    pub idle_shutdown: Option<Spanned<RawDuration>>,
    /// `[servers.<name>.health]`: this server's overrides of `[health]`.
    pub health: Option<Spanned<RawHealth>>,
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
    /// `public` (default), `authenticated` or `restricted`.
    pub access: Option<Spanned<String>>,
    /// For `restricted`: the teams whose members may use the endpoint.
    pub teams: Option<Spanned<Vec<Spanned<String>>>>,
    /// OAuth scopes every token used on this endpoint must carry.
    pub scopes: Option<Spanned<Vec<Spanned<String>>>>,
    /// `[endpoints.<name>.entitlements]`: per team, what it sees and may use.
    pub entitlements: Option<Spanned<BTreeMap<Spanned<String>, RawEntitlement>>>,
}

/// One team's entitlement: a list of tool globs, or a table of globs per kind.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawEntitlement {
    /// `team = ["server__*"]`: tools only (no prompts, no resources).
    Tools(Vec<String>),
    /// `team = { tools = [...], prompts = [...], resources = [...] }`.
    Kinds(RawEntitlementKinds),
}

/// `team = { tools = [...], prompts = [...], resources = [...] }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEntitlementKinds {
    /// Globs over public tool names.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Globs over public prompt names.
    #[serde(default)]
    pub prompts: Vec<String>,
    /// Globs over resource URIs (and resource templates' `uriTemplate`).
    #[serde(default)]
    pub resources: Vec<String>,
}
