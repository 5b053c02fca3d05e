//! The validated runtime configuration.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

/// Default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8848";
/// Default data directory, next to the config file.
pub const DEFAULT_DATA_DIR: &str = "gantry-data";
/// Default limit on a request body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Default limit on one message from a server.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Default limit on requests in flight to one server.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;
/// Default time in-flight calls get to finish after SIGTERM.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The whole validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from.
    pub source: PathBuf,
    /// The `mcpServers` files it imports (`import = [...]`), resolved: a hot reload watches
    /// them with the config file.
    pub imports: Vec<PathBuf>,
    /// Where the HTTP listener binds.
    pub listen: SocketAddr,
    /// The data directory (the database, `gantry.db`, lives here); created with mode 0700
    /// when Gantry first needs it. Default: `gantry-data` next to the config file.
    pub data_dir: PathBuf,
    /// Largest accepted request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// How long a client session may stay idle (no request, no open stream) before it is
    /// dropped; the client then gets 404 and initializes again.
    pub session_idle_timeout: Duration,
    /// The externally visible base URL (`https://gantry.example.com`, no path, no trailing
    /// slash). Endpoints' canonical URLs (token audiences, RFC 9728 metadata) are
    /// `public_url + /mcp/<name>`. `None`: `http://<listen>`.
    pub public_url: Option<String>,
    /// Whether endpoints with `access = "public"` may be served on a non-loopback address.
    pub allow_public_on_network: bool,
    /// Issuers of the tokens clients present (`authorization_servers` in the RFC 9728
    /// metadata).
    pub authorization_servers: Vec<String>,
    /// Browser origins allowed to call the gateway, as globs (`http://localhost:*`).
    pub allowed_origins: Vec<String>,
    /// After SIGTERM: how long calls in flight may still finish before sessions and servers
    /// are closed.
    pub shutdown_grace: Duration,
    /// Upstream servers by name, in name order.
    pub servers: BTreeMap<String, ServerConfig>,
    /// Endpoints by name.
    pub endpoints: BTreeMap<String, EndpointConfig>,
    /// How callers authenticate.
    pub auth: AuthConfig,
    /// Readiness, the spawn cap and the servers' default health settings (`[health]`).
    pub health: crate::HealthSettings,
    /// The servers' default `start` and `idle_shutdown` (`[lifecycle]`).
    pub lifecycle: Lifecycle,
}

/// `[auth]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuthConfig {
    /// OpenID providers whose JWT access tokens are accepted (`[[auth.oidc]]`), in file order.
    pub oidc: Vec<OidcConfig>,
}

/// Default `leeway` of an OpenID provider: allowed clock skew.
pub const DEFAULT_OIDC_LEEWAY: Duration = Duration::from_secs(60);
/// Default `jwks_refresh_min_interval`.
pub const DEFAULT_JWKS_REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(30);
/// Default `http_timeout` for the discovery document and the JWKS.
pub const DEFAULT_OIDC_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// One OpenID provider (`[[auth.oidc]]`).
#[derive(Clone, Debug, PartialEq)]
pub struct OidcConfig {
    /// The issuer, exactly as written (tokens' `iss` and the discovery document's `issuer`
    /// must equal it). `https://`, or `http://` on a loopback host.
    pub issuer: String,
    /// Accepted audiences; empty: the canonical URL of the resource being called.
    pub audience: Vec<String>,
    /// The claim that names the user (`sub`, `email`, `preferred_username`, ...). Dotted
    /// paths reach into objects (`realm_access.roles`).
    pub user_claim: String,
    /// The claim listing the user's teams (an array of strings, or one string).
    pub teams_claim: String,
    /// The claim holding scopes: a space-separated string or an array. With the default
    /// `scope`, a token without it is read from `scp`.
    pub scopes_claim: String,
    /// Scopes every token must carry (403 `insufficient_scope` otherwise).
    pub required_scopes: Vec<String>,
    /// Allowed clock skew for `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// What grants the control plane (any one suffices); the data plane is always granted.
    pub control_plane: Vec<ControlPlaneGrant>,
    /// Least time between two JWKS fetches caused by tokens with an unknown key id.
    pub jwks_refresh_min_interval: Duration,
    /// Bound on each request to the provider.
    pub http_timeout: Duration,
}

/// A rule that grants a JWT the control plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlPlaneGrant {
    /// The token carries this scope.
    Scope(String),
    /// The claim equals the value, or is an array containing it.
    Claim {
        /// The claim (dotted paths reach into objects).
        claim: String,
        /// The value.
        value: String,
    },
}

/// One upstream MCP server. Equality compares every field: a hot reload restarts a server
/// whose config is not equal to the running one's.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// Its name in the config (`[servers.<name>]`).
    pub name: String,
    /// How to reach it.
    pub transport: TransportConfig,
    /// How long to wait for a connection and the `initialize` handshake.
    pub connect_timeout: Duration,
    /// How long the gateway waits for one page of the server's lists (`tools/list`, …) when
    /// it reads the catalog.
    pub list_timeout: Duration,
    /// How long to wait for a response to any other request.
    pub request_timeout: Duration,
    /// Largest message accepted from the server, in bytes.
    pub max_message_bytes: usize,
    /// Most requests in flight to the server at once (all its connections together); past
    /// it a call fails at once with "server busy" instead of queueing.
    pub max_in_flight: usize,
    /// Per-tool request timeouts (`[servers.X.tools.T] timeout`), by the server's own tool
    /// name; other requests use `request_timeout`.
    pub tool_timeouts: BTreeMap<String, Duration>,
    /// Which protocol era to speak to the server.
    pub protocol: ProtocolChoice,
    /// When the server is started: with the gateway, or on first use (`start`).
    pub start: StartMode,
    /// Stop the server after this long without a request (`idle_shutdown`); `None`: never.
    /// It starts again on the next request.
    pub idle_shutdown: Option<Duration>,
    /// Health checks, circuit breaker and crash-loop detection (`[health]` with the
    /// server's `[servers.<name>.health]` over it).
    pub health: crate::HealthConfig,
    /// Per-tool overrides that apply on every endpoint, by the server's own tool name.
    pub tools: BTreeMap<String, Override>,
    /// Per-prompt overrides, by the server's own prompt name.
    pub prompts: BTreeMap<String, Override>,
}

/// Which MCP era Gantry speaks to a server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProtocolChoice {
    /// Probe: 2026-07-28 first (`server/discover`), then the legacy `initialize`.
    #[default]
    Auto,
    /// Only the session-based era (`initialize`), for servers that misbehave on the probe.
    Legacy,
    /// Only 2026-07-28; a server that does not speak it fails to connect.
    Modern,
}

/// When a server is started (`start = "eager" | "lazy"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartMode {
    /// With the gateway (the default).
    #[default]
    Eager,
    /// On the first request routed to it (or a list while its catalog is unknown).
    Lazy,
}

impl StartMode {
    /// `eager` or `lazy`.
    pub fn as_str(self) -> &'static str {
        match self {
            StartMode::Eager => "eager",
            StartMode::Lazy => "lazy",
        }
    }
}

/// The defaults of every server's `start` and `idle_shutdown` (`[lifecycle]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lifecycle {
    /// `start`.
    pub start: StartMode,
    /// `idle_shutdown`; `None`: off.
    pub idle_shutdown: Option<Duration>,
}

/// How Gantry reaches a server.
#[derive(Clone, Debug, PartialEq)]
pub enum TransportConfig {
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio(StdioConfig),
    /// Streamable HTTP (one URL, POST + optional GET stream).
    StreamableHttp(HttpConfig),
    /// The deprecated HTTP+SSE transport (`GET /sse` + `POST /message`).
    Sse(HttpConfig),
}

impl TransportConfig {
    /// The transport's name as users write it: `stdio`, `streamable-http` or `sse`.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportConfig::Stdio(_) => "stdio",
            TransportConfig::StreamableHttp(_) => "streamable-http",
            TransportConfig::Sse(_) => "sse",
        }
    }
}

/// A stdio server's process.
#[derive(Clone, Debug, PartialEq)]
pub struct StdioConfig {
    /// The program.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables, already expanded.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
}

/// An HTTP server's address.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpConfig {
    /// The URL (`http://host:port/mcp` or `.../sse`).
    pub url: String,
    /// Extra request headers, already expanded (secrets: never logged).
    pub headers: Vec<(String, String)>,
}

/// Renames and rewrites a tool or prompt's public definition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Override {
    /// Public name, used as is (no prefix is added).
    pub name: Option<String>,
    /// Replacement title.
    pub title: Option<String>,
    /// Replacement description.
    pub description: Option<String>,
    /// Annotation fields merged over the server's (tools only).
    pub annotations: Option<serde_json::Map<String, Value>>,
}

/// How an endpoint names tools and prompts of several servers.
#[derive(Clone, Debug, PartialEq)]
pub enum Naming {
    /// Every name is `format` with `{server}`, `{sep}` and `{tool}` filled in.
    Prefix {
        /// The separator, `__` by default.
        separator: String,
        /// The format, `{server}{sep}{tool}` by default.
        format: String,
    },
    /// Bare names where unique; on a clash the server first in `order` keeps the bare name and
    /// the others get the prefixed form, so no tool is lost.
    Priority {
        /// Servers in order of precedence.
        order: Vec<String>,
        /// Separator for the prefixed form of clashing names.
        separator: String,
        /// Format for the prefixed form.
        format: String,
    },
    /// Bare names; any clash not resolved by an override is an error.
    Manual,
}

/// One published endpoint. Equality compares every field (a hot reload rebuilds an endpoint
/// whose config changed).
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointConfig {
    /// Its name, the last segment of `/mcp/<name>`.
    pub name: String,
    /// The servers it aggregates, in the order written.
    pub servers: Vec<String>,
    /// The naming strategy.
    pub naming: Naming,
    /// Globs over `server/tool` (and `server/prompt`); when non-empty only matches are shown.
    pub include: Vec<String>,
    /// Globs over `server/tool` (and `server/prompt`) to hide.
    pub exclude: Vec<String>,
    /// Per-tool overrides on this endpoint, by `server/tool`.
    pub tools: BTreeMap<String, Override>,
    /// Per-prompt overrides on this endpoint, by `server/prompt`.
    pub prompts: BTreeMap<String, Override>,
    /// Items per page of merged lists (`None`: one page).
    pub page_size: Option<usize>,
    /// Whether clients see the tools themselves or the progressive meta-tools.
    pub mode: ToolMode,
    /// Who may use the endpoint.
    pub access: Access,
    /// OAuth scopes every token on this endpoint must carry (403 `insufficient_scope`).
    pub scopes: Vec<String>,
    /// Per team, what it sees and may use on this endpoint; `None`: every caller the access
    /// policy admits sees everything. With a table, a caller sees the union of the entries of
    /// its teams (and of `"*"`, which applies to every caller, anonymous ones included), and
    /// nothing when none applies.
    pub entitlements: Option<BTreeMap<String, Entitlement>>,
}

/// An endpoint's access policy (`access = ...`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Access {
    /// No credential needed (a credential that is sent must still be valid).
    #[default]
    Public,
    /// Any valid identity with data-plane access.
    Authenticated,
    /// Members of these teams only.
    Restricted {
        /// The teams (`teams = [...]`, non-empty).
        teams: Vec<String>,
    },
}

impl Access {
    /// The policy's name in the config.
    pub fn as_str(&self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Authenticated => "authenticated",
            Access::Restricted { .. } => "restricted",
        }
    }
}

/// What one team may see and use on an endpoint: globs per kind (`*` any run of characters,
/// `?` one). A kind with no globs grants nothing of that kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entitlement {
    /// Globs over public tool names (the names clients see, after renaming).
    pub tools: Vec<String>,
    /// Globs over public prompt names.
    pub prompts: Vec<String>,
    /// Globs over resource URIs; a resource template is entitled when its `uriTemplate`
    /// matches one.
    pub resources: Vec<String>,
}

impl Config {
    /// The externally visible base URL: `public_url`, or `http://<listen>`.
    pub fn public_base(&self) -> String {
        match &self.public_url {
            Some(u) => u.clone(),
            None => format!("http://{}", self.listen),
        }
    }

    /// Why this config must not listen on `listen`, if it must not: a non-loopback address
    /// with a `public` endpoint, unless `allow_public_on_network` says so.
    pub fn check_listen(&self, listen: SocketAddr) -> Result<(), String> {
        if listen.ip().is_loopback() || self.allow_public_on_network {
            return Ok(());
        }
        let public: Vec<&str> = self
            .endpoints
            .values()
            .filter(|e| e.access == Access::Public)
            .map(|e| e.name.as_str())
            .collect();
        if public.is_empty() {
            return Ok(());
        }
        Err(format!(
            "refusing to listen on {listen}: endpoint{} {} {} access = \"public\" (no credential needed), \
             which a non-loopback address would expose to the network. Set access = \"authenticated\" or \
             \"restricted\" on {}, listen on a loopback address (127.0.0.1 or [::1]), or set \
             allow_public_on_network = true in {} if that is intended",
            if public.len() == 1 { "" } else { "s" },
            public.join(", "),
            if public.len() == 1 { "has" } else { "have" },
            if public.len() == 1 { "it" } else { "them" },
            self.source.display(),
        ))
    }
}

/// Default `progressive_above`: an `auto` endpoint with more visible tools than this turns
/// progressive.
pub const DEFAULT_PROGRESSIVE_ABOVE: usize = 40;

/// How an endpoint exposes its tools (`mode = "direct" | "progressive" | "auto"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ToolMode {
    /// `tools/list` lists every visible tool.
    #[default]
    Direct,
    /// `tools/list` lists only the meta-tools (search, describe, call).
    Progressive,
    /// Direct while the endpoint has at most `above` visible tools, progressive beyond;
    /// decided again whenever the endpoint's tool set changes.
    Auto {
        /// `progressive_above`.
        above: usize,
    },
}

impl ToolMode {
    /// Whether an endpoint with `tools` visible tools is progressive in this mode.
    pub fn is_progressive(self, tools: usize) -> bool {
        match self {
            ToolMode::Direct => false,
            ToolMode::Progressive => true,
            ToolMode::Auto { above } => tools > above,
        }
    }
}
