//! MCP protocol versions, method names and error codes that the gateway acts on.

/// Legacy (session-based) protocol versions Gantry speaks, newest first.
pub const LEGACY_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The newest legacy version: offered upstream and answered to clients that ask for a version
/// Gantry does not know.
pub const LATEST_LEGACY_VERSION: &str = "2025-11-25";

/// The stateless protocol revision.
pub const MODERN_VERSION: &str = "2026-07-28";

/// Stateless protocol revisions Gantry speaks.
pub const MODERN_VERSIONS: &[&str] = &[MODERN_VERSION];

/// Whether `v` is a stateless protocol revision Gantry supports.
pub fn is_modern_version(v: &str) -> bool {
    MODERN_VERSIONS.contains(&v)
}

/// `_meta` keys of the 2026-07-28 per-request envelope and results.
pub mod meta {
    #![allow(missing_docs)]
    pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
    pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
    pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
    pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
    pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
    pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

    /// The `_meta` object of `params` (or of a result), created if absent; `None` when
    /// `params` is not an object or its `_meta` is not one.
    pub fn of(
        params: &mut serde_json::Value,
    ) -> Option<&mut serde_json::Map<String, serde_json::Value>> {
        params
            .as_object_mut()?
            .entry("_meta")
            .or_insert_with(|| serde_json::Value::Object(Default::default()))
            .as_object_mut()
    }
}

/// Whether `v` is a session-based protocol version Gantry supports.
pub fn is_legacy_version(v: &str) -> bool {
    LEGACY_VERSIONS.contains(&v)
}

/// JSON-RPC and MCP error codes.
pub mod code {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON sent is not a valid request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist or is not available.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid method parameters (also: unknown tool, bad cursor).
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal error.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Resource not found (legacy era).
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
    /// 2026-07-28: an HTTP header disagrees with the request body.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// 2026-07-28: the request needs a client capability the client did not declare.
    pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
    /// 2026-07-28: the protocol version is not supported.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
    /// Gantry: the server behind this name is not connected (starting, failed or stopped).
    pub const UPSTREAM_UNAVAILABLE: i64 = -32010;
    /// Gantry: the server did not answer within the configured time.
    pub const UPSTREAM_TIMEOUT: i64 = -32011;
    /// Gantry: the connection to the server broke while the request was in flight.
    pub const UPSTREAM_CLOSED: i64 = -32012;
    /// Gantry: the server already has `max_in_flight` requests in flight; nothing was sent
    /// (retry later). Also: the gateway is shutting down and takes no new upstream calls.
    pub const UPSTREAM_BUSY: i64 = -32013;
}

/// Method names the gateway routes on.
pub mod method {
    #![allow(missing_docs)]
    pub const INITIALIZE: &str = "initialize";
    pub const INITIALIZED: &str = "notifications/initialized";
    pub const PING: &str = "ping";
    pub const TOOLS_LIST: &str = "tools/list";
    pub const TOOLS_CALL: &str = "tools/call";
    pub const PROMPTS_LIST: &str = "prompts/list";
    pub const PROMPTS_GET: &str = "prompts/get";
    pub const RESOURCES_LIST: &str = "resources/list";
    pub const RESOURCES_READ: &str = "resources/read";
    pub const RESOURCE_TEMPLATES_LIST: &str = "resources/templates/list";
    pub const RESOURCES_SUBSCRIBE: &str = "resources/subscribe";
    pub const RESOURCES_UNSUBSCRIBE: &str = "resources/unsubscribe";
    pub const COMPLETE: &str = "completion/complete";
    pub const SET_LEVEL: &str = "logging/setLevel";
    pub const CANCELLED: &str = "notifications/cancelled";
    pub const PROGRESS: &str = "notifications/progress";
    pub const MESSAGE: &str = "notifications/message";
    pub const TOOLS_LIST_CHANGED: &str = "notifications/tools/list_changed";
    pub const PROMPTS_LIST_CHANGED: &str = "notifications/prompts/list_changed";
    pub const RESOURCES_LIST_CHANGED: &str = "notifications/resources/list_changed";
    pub const RESOURCES_UPDATED: &str = "notifications/resources/updated";
    pub const ROOTS_LIST_CHANGED: &str = "notifications/roots/list_changed";
    pub const SAMPLING_CREATE: &str = "sampling/createMessage";
    pub const ELICITATION_CREATE: &str = "elicitation/create";
    pub const ROOTS_LIST: &str = "roots/list";
    pub const DISCOVER: &str = "server/discover";
    pub const SUBSCRIPTIONS_LISTEN: &str = "subscriptions/listen";
    pub const SUBSCRIPTIONS_ACKNOWLEDGED: &str = "notifications/subscriptions/acknowledged";
}

/// RFC 5424 log levels in increasing severity, as MCP names them.
pub const LOG_LEVELS: &[&str] = &[
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// The severity rank of a log level name (`debug` = 0), or `None` for an unknown name.
pub fn log_level_rank(level: &str) -> Option<usize> {
    LOG_LEVELS.iter().position(|l| *l == level)
}
