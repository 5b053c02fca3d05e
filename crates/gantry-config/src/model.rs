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
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
/// Default time in-flight calls get to finish after SIGTERM.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The whole validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from.
    pub source: PathBuf,
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
    /// Browser origins allowed to call the gateway, as globs (`http://localhost:*`).
    pub allowed_origins: Vec<String>,
    /// After SIGTERM: how long calls in flight may still finish before sessions and servers
    /// are closed.
    pub shutdown_grace: Duration,
    /// Upstream servers by name, in name order.
    pub servers: BTreeMap<String, ServerConfig>,
    /// Endpoints by name.
    pub endpoints: BTreeMap<String, EndpointConfig>,
}

/// One upstream MCP server.
#[derive(Clone, Debug)]
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

/// One published endpoint.
#[derive(Clone, Debug)]
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
