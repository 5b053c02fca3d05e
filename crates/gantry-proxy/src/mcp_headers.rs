//! The 2026-07-28 routing headers, on both sides of the gateway.
//!
//! A 2026-07-28 request repeats parts of its body in HTTP headers so that intermediaries can
//! route without parsing JSON: `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` (the tool,
//! prompt or resource) and one `Mcp-Param-<Token>` per tool argument whose schema property
//! carries `"x-mcp-header": "<Token>"`. Gantry checks them on requests from clients and
//! writes them on requests to 2026-07-28 servers; both sides use the rules here, so what
//! Gantry sends is what it would accept.

use std::borrow::Cow;

use base64::Engine;
use gantry_core::Message;
use gantry_core::protocol::{self, meta, method};
use http::{HeaderName, HeaderValue};
use serde_json::Value;

/// `MCP-Protocol-Version`.
pub(crate) const VERSION: &str = "mcp-protocol-version";
/// `Mcp-Method`.
pub(crate) const METHOD: &str = "mcp-method";
/// `Mcp-Name`.
pub(crate) const NAME: &str = "mcp-name";
/// Prefix of `Mcp-Param-*` (lowercase, as header maps store names).
pub(crate) const PARAM_PREFIX: &str = "mcp-param-";

/// The tool arguments a schema mirrors into headers, as (property path, header token).
pub(crate) type Declared = Vec<(Vec<String>, String)>;

/// Collects `x-mcp-header` annotations on properties reachable from the schema root through
/// `properties` alone (the only positions the 2026-07-28 spec lets carry one).
pub(crate) fn declared(schema: &Value) -> Declared {
    let mut out = Vec::new();
    collect(schema, &mut Vec::new(), &mut out);
    out
}

fn collect(schema: &Value, path: &mut Vec<String>, out: &mut Declared) {
    if !path.is_empty()
        && let Some(token) = schema.get("x-mcp-header").and_then(Value::as_str)
    {
        out.push((path.clone(), token.to_owned()));
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            path.push(name.clone());
            collect(sub, path, out);
            path.pop();
        }
    }
}

/// The (lowercase) name of the `Mcp-Param-<token>` header.
pub(crate) fn param_name(token: &str) -> String {
    format!("{PARAM_PREFIX}{}", token.to_ascii_lowercase())
}

/// The argument at `path`, if present and not null.
pub(crate) fn argument<'a>(arguments: Option<&'a Value>, path: &[String]) -> Option<&'a Value> {
    let mut arg = arguments;
    for key in path {
        arg = arg.and_then(|a| a.get(key));
    }
    arg.filter(|a| !a.is_null())
}

/// How an argument is mirrored into a header, before encoding; `None` for values that
/// cannot be (objects, arrays).
pub(crate) fn render_scalar(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::Bool(b) => Some(Cow::Owned(b.to_string())),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::String(s) => Some(Cow::Borrowed(s)),
        _ => None,
    }
}

/// A header value, decoding the `=?base64?…?=` form used for values that are not plain ASCII
/// (a plain value is not copied).
pub(crate) fn decode(v: &str) -> Option<Cow<'_, str>> {
    match v
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(Cow::Owned),
        None => Some(Cow::Borrowed(v)),
    }
}

/// `text` as a header value: as is when it is printable ASCII without surrounding spaces,
/// else in the `=?base64?…?=` form.
pub(crate) fn encode(text: &str) -> HeaderValue {
    let plain = text.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !text.starts_with(' ')
        && !text.ends_with(' ')
        && !text.starts_with("=?base64?");
    let value = if plain {
        HeaderValue::from_str(text)
    } else {
        HeaderValue::from_str(&format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(text)
        ))
    };
    value.expect("printable ASCII is a valid header value")
}

/// The headers a 2026-07-28 request needs besides the ones the transport always sends: the
/// version, the method and, for a call, read or get, the name. `None` for a message that is
/// not a 2026-07-28 request (no protocol version in its `_meta`).
pub(crate) fn routing(msg: &Message) -> Option<Vec<(HeaderName, HeaderValue)>> {
    let Message::Request(req) = msg else {
        return None;
    };
    let meta = req.params.as_ref()?.meta()?;
    let version = meta.get_str(meta::PROTOCOL_VERSION)?;
    let mut out = Vec::with_capacity(3);
    out.push((
        HeaderName::from_static(VERSION),
        encode_known(&version, protocol::MODERN_VERSIONS),
    ));
    out.push((
        HeaderName::from_static(METHOD),
        encode_known(&req.method, &COMMON_METHODS),
    ));
    if let Some(key) = name_key(&req.method)
        && let Some(name) = req.param_str(key)
    {
        out.push((HeaderName::from_static(NAME), encode(&name)));
    }
    Some(out)
}

/// Methods whose `Mcp-Method` header needs no copy of the method name.
const COMMON_METHODS: [&str; 6] = [
    method::TOOLS_CALL,
    method::RESOURCES_READ,
    method::PROMPTS_GET,
    method::TOOLS_LIST,
    method::RESOURCES_LIST,
    method::PROMPTS_LIST,
];

/// [`encode`], without copying `text` when it is one of `known` (printable ASCII constants).
fn encode_known(text: &str, known: &[&'static str]) -> HeaderValue {
    match known.iter().find(|k| **k == text) {
        Some(k) => HeaderValue::from_static(k),
        None => encode(text),
    }
}

/// The parameter `Mcp-Name` mirrors for `method`, if any.
pub(crate) fn name_key(m: &str) -> Option<&'static str> {
    match m {
        method::TOOLS_CALL | method::PROMPTS_GET => Some("name"),
        method::RESOURCES_READ => Some("uri"),
        _ => None,
    }
}

/// The `Mcp-Param-*` headers for a call of a tool that declares `declared`, followed by the
/// client's own `Mcp-Param-*` headers that the tool does not declare (an intermediary must
/// pass unknown ones on).
pub(crate) fn params(
    declared: &[(Vec<String>, String)],
    arguments: Option<&Value>,
    from_client: &[(HeaderName, HeaderValue)],
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    for (path, token) in declared {
        let Some(text) = argument(arguments, path).and_then(render_scalar) else {
            continue;
        };
        if let Ok(name) = HeaderName::from_bytes(param_name(token).as_bytes()) {
            out.push((name, encode(&text)));
        }
    }
    for (name, value) in from_client {
        if !out.iter().any(|(n, _)| n == name) {
            out.push((name.clone(), value.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_core::Request;
    use serde_json::json;

    #[test]
    fn declared_params_are_found_through_properties_only() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "nested": {"type": "object", "properties": {"tenant": {"x-mcp-header": "Tenant"}}},
            "list": {"type": "array", "items": {"x-mcp-header": "Ignored"}}
        }});
        let mut found = declared(&schema);
        found.sort();
        assert_eq!(
            found,
            vec![
                (vec!["nested".into(), "tenant".into()], "Tenant".into()),
                (vec!["region".into()], "Region".into()),
            ]
        );
    }

    #[test]
    fn values_that_are_not_plain_ascii_round_trip_through_base64() {
        for text in ["eu-west-1", "Zürich", " padded", "日本", "=?base64?x?="] {
            let v = encode(text);
            assert_eq!(decode(v.to_str().unwrap()).as_deref(), Some(text));
        }
        assert_eq!(encode("eu-west-1"), "eu-west-1");
        assert!(encode("Zürich").to_str().unwrap().starts_with("=?base64?"));
    }

    #[test]
    fn routing_headers_mirror_the_body_of_a_modern_request_only() {
        let req = |meta: Value| {
            Message::Request(Request {
                id: gantry_core::Id::Num(1),
                method: "tools/call".into(),
                params: Some(json!({"name": "echo", "_meta": meta}).into()),
            })
        };
        let h = routing(&req(json!({meta::PROTOCOL_VERSION: "2026-07-28"}))).unwrap();
        let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get(VERSION).unwrap(), "2026-07-28");
        assert_eq!(get(METHOD).unwrap(), "tools/call");
        assert_eq!(get(NAME).unwrap(), "echo");
        assert!(routing(&req(json!({}))).is_none());
    }

    #[test]
    fn param_headers_come_from_the_schema_and_unknown_client_ones_pass() {
        let declared = vec![(vec!["region".to_owned()], "Region".to_owned())];
        let arguments = json!({"region": "eu", "n": 3});
        let client = vec![
            (
                HeaderName::from_static("mcp-param-region"),
                HeaderValue::from_static("eu"),
            ),
            (
                HeaderName::from_static("mcp-param-extra"),
                HeaderValue::from_static("x"),
            ),
        ];
        let out = params(&declared, Some(&arguments), &client);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0, "mcp-param-region");
        assert_eq!(out[0].1, "eu");
        assert_eq!(out[1].0, "mcp-param-extra");
    }
}
