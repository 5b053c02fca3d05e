use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;

/// A small endpoint view: public definitions and their routes, as the endpoint builds them.
fn view() -> (Vec<Value>, crate::FastMap<String, Route>) {
    let tools = vec![
        json!({"name": "everything__echo", "description": "Echoes back the input string.",
               "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}},
                               "required": ["message"]},
               "annotations": {"readOnlyHint": true}}),
        json!({"name": "everything__get-sum", "title": "Sum",
               "description": "Returns the sum of two numbers. Both are required.",
               "inputSchema": {"type": "object", "properties": {
                   "a": {"type": "number", "description": "First number"},
                   "b": {"type": "number", "description": "Second number"}},
                   "required": ["a", "b"]},
               "outputSchema": {"type": "object", "properties": {"sum": {"type": "number"}}}}),
        json!({"name": "now", "description": "Current time in a timezone.",
               "inputSchema": {"type": "object", "properties": {"timezone": {"type": "string"}}},
               "annotations": {"readOnlyHint": true}}),
        json!({"name": "probe__wipe", "description": "Deletes every record in the store.",
               "inputSchema": {"type": "object"},
               "annotations": {"destructiveHint": true}}),
    ];
    let routes = [
        ("everything__echo", 0, "echo"),
        ("everything__get-sum", 0, "get-sum"),
        ("now", 1, "get_current_time"),
        ("probe__wipe", 2, "wipe"),
    ]
    .into_iter()
    .map(|(public, server, name)| {
        (
            public.to_owned(),
            Route {
                server,
                name: name.to_owned(),
            },
        )
    })
    .collect();
    (tools, routes)
}

fn progressive() -> (Progressive, Vec<Value>) {
    let (tools, routes) = view();
    let p = Progressive::build(&tools, &routes, &["everything", "time", "probe"]);
    (p, tools)
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap()
}

fn ids(result: &Value) -> Vec<&str> {
    result["structuredContent"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect()
}

#[test]
fn the_list_is_three_meta_tools_with_examples_and_the_servers() {
    let (p, _) = progressive();
    let names: Vec<&str> = p
        .listed
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [SEARCH, DESCRIBE, CALL]);
    for t in &p.listed {
        let d = t["description"].as_str().unwrap();
        assert!(d.contains("Example: {"), "{d}");
        assert_eq!(t["inputSchema"]["type"], "object");
        assert!(is_meta(t["name"].as_str().unwrap()));
    }
    assert_eq!(
        p.listed[0]["inputSchema"]["properties"]["server"]["enum"],
        json!(["everything", "time", "probe"])
    );
    assert!(!is_meta("echo"));
}

#[test]
fn search_ranks_public_names_with_server_hints_and_score() {
    let (p, tools) = progressive();
    let r = p.answer(&tools, SEARCH, &json!({"query": "add two numbers"}));
    assert!(r.get("isError").is_none(), "{r}");
    assert_eq!(ids(&r)[0], "everything__get-sum");
    let hit = &r["structuredContent"]["tools"][0];
    assert_eq!(hit["server"], "everything");
    assert_eq!(hit["description"], "Returns the sum of two numbers.");
    let score = hit["score"].as_f64().unwrap();
    assert!(score > 0.0 && score <= 1.0, "{score}");
    // The text block carries the same JSON for clients that show only text.
    let parsed: Value = serde_json::from_str(text(&r)).unwrap();
    assert_eq!(parsed, r["structuredContent"]);

    // The renamed tool is found under its public name, with its hint.
    let r = p.answer(&tools, SEARCH, &json!({"query": "what time is it"}));
    assert_eq!(ids(&r)[0], "now");
    assert_eq!(r["structuredContent"]["tools"][0]["readOnly"], true);
    let r = p.answer(&tools, SEARCH, &json!({"query": "delete records"}));
    assert_eq!(r["structuredContent"]["tools"][0]["destructive"], true);
}

#[test]
fn search_filters_and_finds_nothing_for_nonsense() {
    let (p, tools) = progressive();
    let r = p.answer(&tools, SEARCH, &json!({"query": "xqzvw blorf"}));
    assert!(ids(&r).is_empty());
    assert!(
        r["structuredContent"]["note"]
            .as_str()
            .unwrap()
            .starts_with("No tool matches \"xqzvw blorf\"")
    );
    let r = p.answer(
        &tools,
        SEARCH,
        &json!({"query": "echo input", "server": "time"}),
    );
    assert!(ids(&r).is_empty(), "{r}");
    let r = p.answer(
        &tools,
        SEARCH,
        &json!({"query": "echo input", "server": "everything"}),
    );
    assert_eq!(ids(&r)[0], "everything__echo");
    let r = p.answer(
        &tools,
        SEARCH,
        &json!({"query": "sum of two numbers", "read_only": true}),
    );
    assert!(!ids(&r).contains(&"everything__get-sum"), "{r}");
    let r = p.answer(&tools, SEARCH, &json!({"query": "number", "limit": 1}));
    assert_eq!(ids(&r).len(), 1);
}

#[test]
fn meta_tool_arguments_are_checked_against_their_own_schema() {
    let (p, tools) = progressive();
    let r = p.answer(&tools, SEARCH, &json!({"query": "x", "limit": "5"}));
    assert_eq!(r["isError"], true);
    assert!(
        text(&r).contains("- limit: expected integer, got string \"5\""),
        "{}",
        text(&r)
    );
    let r = p.answer(&tools, SEARCH, &json!({"query": "x", "server": "nope"}));
    assert!(
        text(&r).contains("- server: expected one of \"everything\", \"time\", \"probe\""),
        "{}",
        text(&r)
    );
    let r = p.answer(&tools, SEARCH, &json!({}));
    assert!(
        text(&r).contains("- query: required (string), missing"),
        "{}",
        text(&r)
    );
    assert_eq!(
        r["structuredContent"]["errors"][0]["pointer"],
        json!("/query")
    );
    let r = p.answer(&tools, DESCRIBE, &json!({"ids": "now"}));
    assert!(
        text(&r).contains("- ids: expected array, got string \"now\""),
        "{}",
        text(&r)
    );
}

#[test]
fn describe_returns_full_definitions_and_names_unknown_ids() {
    let (p, tools) = progressive();
    let r = p.answer(
        &tools,
        DESCRIBE,
        &json!({"ids": ["everything__get-sum", "nope"]}),
    );
    assert!(r.get("isError").is_none(), "{r}");
    let t = &r["structuredContent"]["tools"][0];
    assert_eq!(t["id"], "everything__get-sum");
    assert_eq!(t["title"], "Sum");
    assert_eq!(t["inputSchema"], tools[1]["inputSchema"]);
    assert_eq!(t["outputSchema"], tools[1]["outputSchema"]);
    assert_eq!(
        t["description"],
        "Returns the sum of two numbers. Both are required."
    );
    assert!(t.get("name").is_none());
    assert_eq!(r["structuredContent"]["unknown"], json!(["nope"]));

    let r = p.answer(&tools, DESCRIBE, &json!({"ids": ["nope"]}));
    assert_eq!(r["isError"], true);
    assert!(
        text(&r).contains("unknown tool ids [\"nope\"]"),
        "{}",
        text(&r)
    );
    // Ids are public names: a server's own name for a renamed tool is unknown.
    let r = p.answer(&tools, DESCRIBE, &json!({"ids": ["get_current_time"]}));
    assert_eq!(r["isError"], true);
}

/// The `tools/call` params a client sends to run `call_tool` with these arguments, with a
/// `_meta` that must pass through.
fn call_params(args: Value) -> Value {
    json!({"name": CALL, "arguments": args, "_meta": {"progressToken": 7}})
}

impl Progressive {
    /// [`Progressive::take_call`] on a `call_tool` call with `args`: the rewritten params, or
    /// the refusal (the params then unchanged).
    fn check_call_args(&self, tools: &[Value], args: Value) -> Result<Value, Value> {
        let mut params = call_params(args.clone());
        match self.take_call(tools, &mut params) {
            Ok(()) => Ok(params),
            Err(refusal) => {
                assert_eq!(
                    params,
                    call_params(args),
                    "a refusal leaves the params alone"
                );
                Err(refusal)
            }
        }
    }
}

#[test]
fn call_checks_arguments_before_anything_is_forwarded() {
    let (p, tools) = progressive();
    let ok = p.check_call_args(
        &tools,
        json!({"id": "everything__get-sum", "arguments": {"a": 1, "b": 2}}),
    );
    assert_eq!(
        ok.unwrap(),
        json!({"name": "everything__get-sum", "arguments": {"a": 1, "b": 2},
               "_meta": {"progressToken": 7}})
    );
    // No arguments: an empty object, which a tool without required ones accepts.
    assert_eq!(
        p.check_call_args(&tools, json!({"id": "now"})).unwrap(),
        json!({"name": "now", "arguments": {}, "_meta": {"progressToken": 7}})
    );
    // Not even null stands for no arguments.
    let r = p
        .check_call_args(&tools, json!({"id": "now", "arguments": null}))
        .unwrap_err();
    assert!(
        text(&r).contains("- arguments: expected object, got null"),
        "{}",
        text(&r)
    );
    // A tool without an inputSchema takes an object.
    let mut untyped = tools.clone();
    untyped[2].as_object_mut().unwrap().remove("inputSchema");
    let r = p
        .check_call_args(&untyped, json!({"id": "now", "arguments": []}))
        .unwrap_err();
    assert!(
        text(&r).contains("- arguments: expected object, got array"),
        "{}",
        text(&r)
    );

    let r = p
        .check_call_args(
            &tools,
            json!({"id": "everything__get-sum", "arguments": {"a": "abc"}}),
        )
        .unwrap_err();
    assert_eq!(r["isError"], true);
    let t = text(&r);
    assert!(
        t.contains("- arguments.a: expected number, got string \"abc\""),
        "{t}"
    );
    assert!(
        t.contains("- arguments.b: required (number), missing"),
        "{t}"
    );
    assert!(t.contains("nothing was sent"), "{t}");
    assert_eq!(
        r["structuredContent"]["errors"],
        json!([
            {"pointer": "/b", "message": "required (number), missing"},
            {"pointer": "/a", "message": "expected number, got string \"abc\""}
        ])
    );

    let r = p
        .check_call_args(&tools, json!({"id": "get-sum", "arguments": {}}))
        .unwrap_err();
    assert!(
        text(&r).contains("unknown tool id \"get-sum\": find ids with search_tools"),
        "{}",
        text(&r)
    );
    // Arguments as a JSON string are refused, with the reason.
    let r = p
        .check_call_args(
            &tools,
            json!({"id": "everything__get-sum", "arguments": "{\"a\": 1, \"b\": 2}"}),
        )
        .unwrap_err();
    assert!(
        text(&r).contains("- arguments: expected object, got string")
            && text(&r).contains("not as a string holding JSON"),
        "{}",
        text(&r)
    );
    let r = p
        .check_call_args(&tools, json!({"arguments": {}}))
        .unwrap_err();
    assert!(
        text(&r).contains("- id: required (string), missing"),
        "{}",
        text(&r)
    );
}

/// The serialized `tools/list` result of `tools`.
fn list_bytes(tools: &[Value]) -> usize {
    serde_json::to_string(&json!({ "tools": tools }))
        .unwrap()
        .len()
}

/// The 527 real tools of 70 servers in `shared/data` (LiveMCPBench), when present beside
/// the repository, else 500 synthetic tools of a typical size.
fn large_catalog() -> (String, Vec<(String, Value)>) {
    let path = std::env::var_os("GANTRY_SEARCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
        .join("catalogs/livemcptool.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let records: Vec<Value> = serde_json::from_str(&text).unwrap();
        let tools = records
            .into_iter()
            .map(|r| {
                let server = r["server"].as_str().unwrap().to_owned();
                let def = json!({"name": format!("{server}__{}", r["name"].as_str().unwrap()),
                                 "description": r["description"], "inputSchema": r["inputSchema"]});
                (server, def)
            })
            .collect();
        return (path.display().to_string(), tools);
    }
    let tools = (0..500)
        .map(|i| {
            let server = format!("server{}", i / 10);
            let def = json!({
                "name": format!("{server}__tool_{i}"),
                "description": format!("Does task number {i} on the records of the service: \
                    reads them, filters them by the given criteria and returns the matching \
                    ones as JSON, paginated."),
                "inputSchema": {"type": "object", "properties": {
                    "query": {"type": "string", "description": "What to look for"},
                    "limit": {"type": "integer", "description": "Most results", "default": 20},
                    "cursor": {"type": "string", "description": "Where the last page ended"}},
                    "required": ["query"]}
            });
            (server, def)
        })
        .collect();
    ("500 synthetic tools".to_owned(), tools)
}

#[test]
fn a_progressive_list_costs_under_two_percent_of_the_full_list() {
    let (source, catalog) = large_catalog();
    let mut servers: Vec<String> = Vec::new();
    let mut tools = Vec::new();
    let mut routes = crate::FastMap::default();
    for (server, def) in catalog {
        let i = match servers.iter().position(|s| *s == server) {
            Some(i) => i,
            None => {
                servers.push(server.clone());
                servers.len() - 1
            }
        };
        let name = def["name"].as_str().unwrap().to_owned();
        routes.insert(
            name.clone(),
            Route {
                server: i,
                name: name.clone(),
            },
        );
        tools.push(def);
    }
    let names: Vec<&str> = servers.iter().map(String::as_str).collect();
    let p = Progressive::build(&tools, &routes, &names);
    let direct = list_bytes(&tools);
    let progressive = list_bytes(&p.listed);
    let ratio = progressive as f64 / direct as f64;
    println!(
        "tools/list over {} tools of {} servers ({source}): direct {direct} bytes, \
         progressive {progressive} bytes, ratio {:.2}%",
        tools.len(),
        servers.len(),
        ratio * 100.0
    );
    assert!(ratio < 0.02, "{ratio}");
    // And it finds in them.
    let r = p.answer(&tools, SEARCH, &json!({"query": "weather forecast"}));
    assert!(!ids(&r).is_empty(), "{r}");
}
