//! Progressive endpoints: three meta-tools instead of every tool.
//!
//! An endpoint in `progressive` mode (or `auto` above its threshold) answers `tools/list`
//! with [`SEARCH`], [`DESCRIBE`] and [`CALL`] only. They work on the endpoint's public view,
//! exactly what a direct `tools/list` would show: filters, overrides and naming applied, ids
//! are the public tool names. [`Progressive`] is built with the view (so once per change of a
//! server's catalog, never per call) and holds the search index over the view's tools.
//!
//! How the meta-tools answer:
//! - search and describe answer with a tool result whose `structuredContent` is also given as
//!   JSON text (for clients that show only `content`);
//! - call checks the arguments against the tool's `inputSchema` ([`schema`]) and, when they
//!   match, goes through the router exactly like a direct `tools/call` (progress,
//!   cancellation, `input_required`, both eras); the server's result or JSON-RPC error comes
//!   back unchanged;
//! - a refusal (unknown id, arguments that do not match, malformed meta-tool arguments) is a
//!   tool result with `isError: true`, not a JSON-RPC error: MCP asks for input validation
//!   errors to be tool errors (2025-11-25) because clients hand those to the model, which can
//!   then correct the call, while many clients turn JSON-RPC errors into exceptions the model
//!   never sees.

pub(crate) mod schema;

use std::collections::HashMap;

use gantry_search::{Index, SearchOptions, ToolDoc};
use serde_json::{Map, Value, json};

use crate::endpoint::Route;

/// Finds tools by what they do.
pub const SEARCH: &str = "search_tools";
/// Full definitions of chosen tools.
pub const DESCRIBE: &str = "describe_tools";
/// Runs a tool.
pub const CALL: &str = "call_tool";

/// Most results one search returns.
const MAX_LIMIT: u64 = 50;
/// Results when the caller gives no limit.
const DEFAULT_LIMIT: u64 = 10;
/// Most ids one describe takes.
const MAX_DESCRIBE: u64 = 20;

/// Whether `name` is one of the meta-tools.
pub fn is_meta(name: &str) -> bool {
    matches!(name, SEARCH | DESCRIBE | CALL)
}

/// The meta-tools and the search index of one endpoint view.
#[derive(Debug)]
pub struct Progressive {
    /// What `tools/list` publishes.
    pub(crate) listed: Vec<Value>,
    index: Index,
    /// Public tool name → position in the view's tool list.
    positions: HashMap<String, usize>,
}

impl Progressive {
    /// Builds the meta-tools and the index over `tools` (public definitions), whose servers
    /// are named by `routes` and `servers`.
    pub(crate) fn build(
        tools: &[Value],
        routes: &crate::FastMap<String, Route>,
        servers: &[&str],
    ) -> Progressive {
        let mut positions = HashMap::with_capacity(tools.len());
        let mut docs = Vec::with_capacity(tools.len());
        for (i, t) in tools.iter().enumerate() {
            let Some(name) = t.get("name").and_then(Value::as_str) else {
                continue;
            };
            let Some(route) = routes.get(name) else {
                continue;
            };
            let server = servers.get(route.server).copied().unwrap_or_default();
            if let Some(mut doc) = ToolDoc::from_tool_json(server, t) {
                doc.id = name.to_owned();
                docs.push(doc);
                positions.insert(name.to_owned(), i);
            }
        }
        Progressive {
            listed: meta_tools(servers),
            index: Index::build(docs),
            positions,
        }
    }

    /// Answers a call of a meta-tool other than [`CALL`] (which the router forwards).
    pub(crate) fn answer(&self, tools: &[Value], name: &str, args: &Value) -> Value {
        if let Err(refusal) = self.check_own_arguments(name, args) {
            return refusal;
        }
        match name {
            SEARCH => self.search(args),
            DESCRIBE => self.describe(tools, args),
            other => refused(
                format!("{other} is not answered here"),
                json!({"error": "internal"}),
            ),
        }
    }

    /// The meta-tool's arguments against its own schema.
    fn check_own_arguments(&self, name: &str, args: &Value) -> Result<(), Value> {
        let Some(def) = self.listed.iter().find(|t| t["name"] == name) else {
            return Ok(());
        };
        let errors = schema::validate(&def["inputSchema"], args, "");
        if errors.is_empty() {
            return Ok(());
        }
        let mut lines: Vec<String> = errors.iter().map(|e| format!("- {e}")).collect();
        if name == CALL && args.get("arguments").is_some_and(Value::is_string) {
            lines.push(
                "Pass `arguments` as a JSON object, not as a string holding JSON.".to_owned(),
            );
        }
        Err(refused(
            format!(
                "{name} refused: its arguments do not match its input schema:\n{}",
                lines.join("\n")
            ),
            json!({"error": "invalid_arguments", "errors": pointers(&errors)}),
        ))
    }

    fn search(&self, args: &Value) -> Value {
        let query = args["query"].as_str().unwrap_or_default();
        let opts = SearchOptions {
            limit: args["limit"]
                .as_u64()
                .unwrap_or(DEFAULT_LIMIT)
                .clamp(1, MAX_LIMIT) as usize,
            servers: args["server"]
                .as_str()
                .map(|s| vec![s.to_owned()])
                .unwrap_or_default(),
            read_only: args["read_only"].as_bool().unwrap_or(false),
            ..SearchOptions::default()
        };
        let hits: Vec<Value> = self
            .index
            .search(query, &opts)
            .into_iter()
            .map(|h| {
                let mut hit = Map::new();
                hit.insert("id".into(), h.id.into());
                hit.insert("server".into(), h.server.into());
                hit.insert("description".into(), h.description.into());
                if let Some(r) = h.read_only {
                    hit.insert("readOnly".into(), r.into());
                }
                if let Some(d) = h.destructive {
                    hit.insert("destructive".into(), d.into());
                }
                let score = (f64::from(h.relevance) * 100.0).round() / 100.0;
                hit.insert("score".into(), score.into());
                Value::Object(hit)
            })
            .collect();
        let mut out = json!({ "tools": hits });
        if hits_empty(&out) {
            out["note"] = Value::from(format!(
                "No tool matches {}. Try other words{}.",
                Value::from(query),
                if opts.servers.is_empty() && !opts.read_only {
                    ""
                } else {
                    " or drop the server and read_only filters"
                }
            ));
        }
        success(out)
    }

    fn describe(&self, tools: &[Value], args: &Value) -> Value {
        let mut found = Vec::new();
        let mut unknown = Vec::new();
        for id in args["ids"].as_array().into_iter().flatten() {
            let id = id.as_str().unwrap_or_default();
            match self.positions.get(id).and_then(|&i| tools.get(i)) {
                Some(def) => found.push(described(id, def)),
                None => unknown.push(Value::from(id)),
            }
        }
        if found.is_empty() {
            return refused(
                format!(
                    "describe_tools: unknown tool ids {}: take ids from search_tools results",
                    Value::from(unknown.clone())
                ),
                json!({"error": "unknown_ids", "unknown": unknown}),
            );
        }
        let mut out = json!({ "tools": found });
        if !unknown.is_empty() {
            out["unknown"] = Value::from(unknown);
            out["note"] = Value::from(
                "Some ids are unknown on this endpoint: take ids from search_tools results.",
            );
        }
        success(out)
    }

    /// For a [`CALL`]: checks the `tools/call` params of a `call_tool` call and, when the
    /// target's arguments match its `inputSchema`, rewrites them in place into the params of
    /// the `tools/call` it stands for (`name` the target's public name, `arguments` moved up
    /// from the call's own arguments, every other member unchanged); else the refusal to
    /// return as the call's result, with `params` untouched.
    pub(crate) fn take_call(&self, tools: &[Value], params: &mut Value) -> Result<(), Value> {
        let empty = Value::Object(Map::new());
        self.check_call(tools, params.get("arguments").unwrap_or(&empty))?;
        let mut call = params
            .get_mut("arguments")
            .map(Value::take)
            .unwrap_or_default();
        let arguments = call.get_mut("arguments").map(Value::take).unwrap_or(empty);
        params["name"] = call["id"].take();
        params["arguments"] = arguments;
        Ok(())
    }

    /// The arguments of a [`CALL`] (`id` and `arguments`) against its own schema, then the
    /// target's arguments (absent: `{}`) against the target's `inputSchema`.
    fn check_call(&self, tools: &[Value], args: &Value) -> Result<(), Value> {
        self.check_own_arguments(CALL, args)?;
        let id = args["id"].as_str().unwrap_or_default();
        let Some(def) = self.positions.get(id).and_then(|&i| tools.get(i)) else {
            return Err(refused(
                format!(
                    "call_tool: unknown tool id {}: find ids with search_tools",
                    Value::from(id)
                ),
                json!({"error": "unknown_id", "id": id}),
            ));
        };
        // The own schema has already refused `arguments` that are not an object.
        let empty = Value::Object(Map::new());
        let arguments = args.get("arguments").unwrap_or(&empty);
        let errors = match def.get("inputSchema") {
            Some(input_schema) => schema::validate(input_schema, arguments, "arguments"),
            None => schema::validate(&json!({"type": "object"}), arguments, "arguments"),
        };
        if errors.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = errors.iter().map(|e| format!("- {e}")).collect();
        Err(refused(
            format!(
                "call_tool refused: the arguments do not match the input schema of {}, so \
                 nothing was sent to its server:\n{}\nSee the schema with describe_tools.",
                Value::from(id),
                lines.join("\n")
            ),
            json!({"error": "invalid_arguments", "id": id, "errors": pointers(&errors)}),
        ))
    }
}

fn hits_empty(out: &Value) -> bool {
    out["tools"].as_array().is_some_and(Vec::is_empty)
}

/// A tool's full public definition, with `id` for `name` and first.
fn described(id: &str, def: &Value) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), id.into());
    if let Some(obj) = def.as_object() {
        for (k, v) in obj {
            if k != "name" {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn pointers(errors: &[schema::Violation]) -> Value {
    errors
        .iter()
        .map(|e| json!({"pointer": e.pointer, "message": e.message}))
        .collect()
}

/// A successful meta-tool result: the structure, and the same as JSON text.
fn success(structured: Value) -> Value {
    json!({
        "content": [{"type": "text", "text": structured.to_string()}],
        "structuredContent": structured,
    })
}

/// A refusal: a tool result with `isError`, the explanation as text.
fn refused(text: String, structured: Value) -> Value {
    json!({
        "content": [{"type": "text", "text": text}],
        "structuredContent": structured,
        "isError": true,
    })
}

/// The meta-tool definitions for an endpoint with these servers.
fn meta_tools(servers: &[&str]) -> Vec<Value> {
    let mut server = json!({
        "type": "string",
        "description": "Only tools of this server",
    });
    if !servers.is_empty() {
        server["enum"] = servers.iter().map(|s| Value::from(*s)).collect();
    }
    vec![
        json!({
            "name": SEARCH,
            "title": "Search tools",
            "description": "Find this endpoint's tools by what you want to do. Returns the best \
                matches: id, one-line description, server, readOnly/destructive hints, score. \
                Next: describe_tools for a tool's arguments, call_tool to run it. \
                Example: {\"query\": \"add two numbers\", \"limit\": 5}",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "minLength": 1, "description": "What the tool should do, in words"},
                    "server": server,
                    "read_only": {"type": "boolean", "description": "true: only tools that change nothing"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "description": "Most results (default 10)"}
                },
                "required": ["query"],
                "additionalProperties": false
            },
            "annotations": {"readOnlyHint": true, "openWorldHint": false}
        }),
        json!({
            "name": DESCRIBE,
            "title": "Describe tools",
            "description": "Full definitions of tools by id (from search_tools): input schema \
                (the arguments call_tool needs), output schema, title, description, annotations. \
                Example: {\"ids\": [\"github__create_issue\"]}",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "ids": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_DESCRIBE}
                },
                "required": ["ids"],
                "additionalProperties": false
            },
            "annotations": {"readOnlyHint": true, "openWorldHint": false}
        }),
        json!({
            "name": CALL,
            "title": "Call a tool",
            "description": "Run a tool by id with its arguments as a JSON object matching its \
                input schema (see describe_tools). Arguments are checked first; the tool's own \
                result is returned. \
                Example: {\"id\": \"github__create_issue\", \"arguments\": {\"repo\": \"a/b\", \"title\": \"Bug\"}}",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "description": "Tool id from search_tools"},
                    "arguments": {"type": "object", "description": "The tool's arguments (an object, not a string)"}
                },
                "required": ["id"],
                "additionalProperties": false
            }
        }),
    ]
}

#[cfg(test)]
mod tests;
