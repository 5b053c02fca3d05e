//! The JSON-RPC 2.0 envelope.
//!
//! Only the envelope is typed; a request's `params` stay the text they arrived as ([`Params`],
//! members read and edited in place), a notification's `params` and `error.data` stay
//! [`Value`]s, so that unknown fields and `_meta` survive the trip through the gateway
//! unchanged, and a `result` stays the text it arrived as ([`Payload`]) until something needs
//! to look inside.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::params::Params;
use crate::payload::Payload;
use crate::protocol::code;

/// A request id: a string or an integer, never null.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Id {
    /// An integer id.
    Num(i64),
    /// A string id.
    Str(String),
}

/// One JSON-RPC message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A request: expects a response with the same id.
    Request(Request),
    /// A notification: no id, never answered.
    Notification(Notification),
    /// A response to an earlier request.
    Response(Response),
}

/// A JSON-RPC request.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The sender's id for this request.
    pub id: Id,
    /// The method name.
    pub method: String,
    /// The parameters, kept as sent.
    pub params: Option<Params>,
}

/// A JSON-RPC notification.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// The method name.
    pub method: String,
    /// The parameters, kept as sent.
    pub params: Option<Value>,
}

/// A JSON-RPC response: exactly one of a result or an error.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// The id of the request this answers.
    pub id: Id,
    /// The result or the error.
    pub outcome: Result<Payload, RpcError>,
}

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    /// The error code.
    pub code: i64,
    /// A message that says what went wrong and what to fix.
    pub message: String,
    /// Optional structured detail.
    pub data: Option<Value>,
}

/// Why a byte string is not an acceptable JSON-RPC message.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{error}")]
pub struct ParseError {
    /// The error to answer with (-32700 or -32600).
    pub error: RpcError,
    /// The request id, when it could be read despite the error.
    pub id: Option<Id>,
}

// === impl Id ===

impl Id {
    /// Reads an id from JSON: a string or an integer.
    pub fn from_value(v: &Value) -> Option<Id> {
        match v {
            Value::String(s) => Some(Id::Str(s.clone())),
            Value::Number(n) => n.as_i64().map(Id::Num),
            _ => None,
        }
    }

    /// The id as a JSON value.
    pub fn to_value(&self) -> Value {
        match self {
            Id::Num(n) => Value::from(*n),
            Id::Str(s) => Value::from(s.as_str()),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Num(n) => write!(f, "{n}"),
            Id::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Id::Num(n) => s.serialize_i64(*n),
            Id::Str(v) => s.serialize_str(v),
        }
    }
}

// === impl RpcError ===

impl RpcError {
    /// An error with a code and a message.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Adds structured detail.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// -32700: the body is not JSON.
    pub fn parse(message: impl Into<String>) -> Self {
        Self::new(code::PARSE_ERROR, message)
    }

    /// -32600: the JSON is not a valid JSON-RPC message.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_REQUEST, message)
    }

    /// -32601: unknown method.
    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            code::METHOD_NOT_FOUND,
            format!("method not found: {method}"),
        )
    }

    /// -32602: invalid parameters.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_PARAMS, message)
    }

    /// -32603: internal error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(code::INTERNAL_ERROR, message)
    }

    /// Reads a JSON-RPC error object (`{"code", "message", "data"}`).
    pub fn from_value(v: &Value) -> Option<RpcError> {
        let obj = v.as_object()?;
        Some(RpcError {
            code: obj.get("code")?.as_i64()?,
            message: obj
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            data: obj.get("data").cloned(),
        })
    }
}

impl Serialize for RpcError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("code", &self.code)?;
        m.serialize_entry("message", &self.message)?;
        if let Some(data) = &self.data {
            m.serialize_entry("data", data)?;
        }
        m.end()
    }
}

// === impl Message ===

impl Message {
    /// Parses one message from bytes.
    ///
    /// Batches (JSON arrays) are refused: they were removed from MCP in 2025-06-18.
    ///
    /// The envelope is read straight from the bytes ([`Body`]): only a notification's
    /// `params`, `error` and `id` become [`Value`]s, the object itself is never built, a
    /// request's `params` are kept as their text when serde_json would write them so
    /// ([`Params`]), and a `result` is kept as its text ([`Payload`]): checked to be JSON, but
    /// passed through as it came, even a number beyond the range a [`Value`] holds.
    pub fn from_slice(bytes: &[u8]) -> Result<Message, ParseError> {
        // Params are read as their text, and kept as text when they are a canonical object
        // (see `Params`). Other params (rare: whitespace, escapes or numbers written otherwise,
        // an array) and bodies that are not valid are read again, as before, into a tree: so
        // the result and any error (a number out of range, nesting too deep) are the same.
        let fast = serde_json::from_slice::<Body<&RawValue>>(bytes)
            .ok()
            .and_then(|body| body.map_params(|raw| Params::from_canonical(raw.get())));
        let body = match fast {
            Some(body) => body,
            None => serde_json::from_slice::<Body<Value>>(bytes)
                .map_err(|e| ParseError {
                    error: RpcError::parse(format!("body is not valid JSON: {e}")),
                    id: None,
                })?
                .map_params(|v| Some(Params::from(v)))
                .expect("a tree is always params"),
        };
        body.into_message()
    }

    /// Serialises the message to JSON bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.write_to(&mut out);
        out
    }

    /// Appends the message's JSON to `out`: the same bytes serde_json writes for the message
    /// as a [`Value`] (members in envelope order), with a result's text copied as it is.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        fn member<T: Serialize + ?Sized>(out: &mut Vec<u8>, key: &[u8], v: &T) {
            out.extend_from_slice(key);
            serde_json::to_writer(out, v).expect("JSON-RPC messages always serialise");
        }
        fn call(out: &mut Vec<u8>, method: &str, params: Option<&Params>, tree: Option<&Value>) {
            member(out, br#","method":"#, method);
            if let Some(p) = params {
                out.extend_from_slice(br#","params":"#);
                p.write_to(out);
            }
            if let Some(p) = tree {
                member(out, br#","params":"#, p);
            }
        }
        out.extend_from_slice(br#"{"jsonrpc":"2.0""#);
        match self {
            Message::Request(r) => {
                member(out, br#","id":"#, &r.id);
                call(out, &r.method, r.params.as_ref(), None);
            }
            Message::Notification(n) => call(out, &n.method, None, n.params.as_ref()),
            Message::Response(r) => {
                member(out, br#","id":"#, &r.id);
                match &r.outcome {
                    Ok(result) => {
                        out.extend_from_slice(br#","result":"#);
                        result.write_to(out);
                    }
                    Err(e) => member(out, br#","error":"#, e),
                }
            }
        }
        out.push(b'}');
    }

    /// The method name of a request or notification.
    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request(r) => Some(&r.method),
            Message::Notification(n) => Some(&n.method),
            Message::Response(_) => None,
        }
    }
}

impl From<Request> for Message {
    fn from(r: Request) -> Self {
        Message::Request(r)
    }
}

impl From<Notification> for Message {
    fn from(n: Notification) -> Self {
        Message::Notification(n)
    }
}

impl From<Response> for Message {
    fn from(r: Response) -> Self {
        Message::Response(r)
    }
}

// === impl Request / Notification / Response ===

impl Request {
    /// A string field of the `params` object.
    pub fn param_str(&self, key: &str) -> Option<Cow<'_, str>> {
        self.params.as_ref()?.get_str(key)
    }

    /// A member of the `params` object.
    pub fn param(&self, key: &str) -> Option<Cow<'_, Value>> {
        self.params.as_ref()?.get(key)
    }
}

impl Notification {
    /// A notification with params.
    pub fn new(method: impl Into<String>, params: Option<Value>) -> Self {
        Notification {
            method: method.into(),
            params,
        }
    }
}

impl Response {
    /// A successful response.
    pub fn ok(id: Id, result: impl Into<Payload>) -> Self {
        Response {
            id,
            outcome: Ok(result.into()),
        }
    }

    /// An error response.
    pub fn err(id: Id, error: RpcError) -> Self {
        Response {
            id,
            outcome: Err(error),
        }
    }
}

/// The top level of a message body, as far as the envelope needs it.
// Lives on the stack for one parse; boxing `Fields` would add the allocation this avoids.
#[allow(clippy::large_enum_variant)]
enum Body<P> {
    /// An object: its envelope members (the others are read and dropped).
    Object(Fields<P>),
    /// A batch.
    Array,
    /// Any other JSON value, by its [`type_name`].
    Other(&'static str),
}

/// The members of a JSON-RPC object that the envelope reads. A member given twice keeps its
/// last value, as when the object is read into a [`Map`]. Each is kept in the smallest form
/// its checks need (this moves a few times per parse): a wrong one as its type name, or
/// boxed.
struct Fields<P> {
    /// The id, or the type name of a value that is not one.
    id: Option<Result<Id, &'static str>>,
    /// `Ok` for `"2.0"`, else the value given.
    jsonrpc: Option<Result<(), Box<Value>>>,
    /// The method, or the type name of a value that is not a string.
    method: Option<Result<String, &'static str>>,
    params: Option<P>,
    result: Option<Payload>,
    error: Option<Box<Value>>,
}

impl<P> Fields<P> {
    fn new() -> Self {
        Fields {
            id: None,
            jsonrpc: None,
            method: None,
            params: None,
            result: None,
            error: None,
        }
    }

    fn id(v: Value) -> Result<Id, &'static str> {
        match v {
            Value::String(s) => Ok(Id::Str(s)),
            v => Id::from_value(&v).ok_or(type_name(&v)),
        }
    }

    fn jsonrpc(v: Value) -> Result<(), Box<Value>> {
        match v {
            Value::String(v) if v == "2.0" => Ok(()),
            other => Err(Box::new(other)),
        }
    }

    fn method(v: Value) -> Result<String, &'static str> {
        match v {
            Value::String(m) => Ok(m),
            other => Err(type_name(&other)),
        }
    }
}

impl<P> Body<P> {
    /// The same body with its params converted; `None` if `f` refuses them.
    fn map_params(self, f: impl FnOnce(P) -> Option<Params>) -> Option<Body<Params>> {
        Some(match self {
            Body::Object(o) => Body::Object(Fields {
                id: o.id,
                jsonrpc: o.jsonrpc,
                method: o.method,
                params: match o.params {
                    Some(p) => Some(f(p)?),
                    None => None,
                },
                result: o.result,
                error: o.error,
            }),
            Body::Array => Body::Array,
            Body::Other(t) => Body::Other(t),
        })
    }
}

impl Body<Params> {
    fn into_message(self) -> Result<Message, ParseError> {
        let invalid = |msg: String, id: Option<Id>| ParseError {
            error: RpcError::invalid_request(msg),
            id,
        };
        let obj = match self {
            Body::Object(obj) => obj,
            Body::Array => {
                return Err(invalid(
                    "JSON-RPC batches are not supported (removed in MCP 2025-06-18): send one \
                     message per request"
                        .into(),
                    None,
                ));
            }
            Body::Other(type_name) => {
                return Err(invalid(
                    format!("a JSON-RPC message must be a JSON object, got {type_name}"),
                    None,
                ));
            }
        };
        let id = match obj.id {
            None => None,
            Some(Ok(id)) => Some(id),
            Some(Err(type_name)) => {
                return Err(invalid(
                    format!("\"id\" must be a string or an integer, got {type_name}"),
                    None,
                ));
            }
        };
        match &obj.jsonrpc {
            Some(Ok(())) => {}
            Some(Err(other)) => {
                return Err(invalid(
                    format!("\"jsonrpc\" must be \"2.0\", got {other}"),
                    id,
                ));
            }
            None => return Err(invalid("missing \"jsonrpc\": \"2.0\"".into(), id)),
        }
        let params = obj.params;
        if let Some(p) = params
            .as_ref()
            .filter(|p| !p.is_object() && !p.value().is_array())
        {
            return Err(invalid(
                format!(
                    "\"params\" must be an object or an array, got {}",
                    type_name(&p.value())
                ),
                id,
            ));
        }
        match obj.method {
            Some(Ok(method)) => Ok(match id {
                Some(id) => Message::Request(Request { id, method, params }),
                None => Message::Notification(Notification {
                    method,
                    params: params.map(Params::into_value),
                }),
            }),
            Some(Err(type_name)) => Err(invalid(
                format!("\"method\" must be a string, got {type_name}"),
                id,
            )),
            None => {
                let Some(id) = id else {
                    return Err(invalid(
                        "message has neither \"method\" nor \"id\": it is not a request, \
                         notification or response"
                            .into(),
                        None,
                    ));
                };
                let outcome = match (obj.result, obj.error) {
                    (Some(result), None) => Ok(result),
                    (None, Some(err)) => match RpcError::from_value(&err) {
                        Some(e) => Err(e),
                        None => {
                            return Err(invalid(
                                "\"error\" must be an object with an integer \"code\"".into(),
                                Some(id),
                            ));
                        }
                    },
                    _ => {
                        return Err(invalid(
                            "a response needs exactly one of \"result\" and \"error\"".into(),
                            Some(id),
                        ));
                    }
                };
                Ok(Message::Response(Response { id, outcome }))
            }
        }
    }
}

/// Reads the top level in one pass. Members other than the envelope's, and the elements of a
/// batch, are still read in full as [`Value`]s, so the JSON is checked exactly as strictly as
/// when the whole body is read into a [`Value`] (UTF-8, number range, nesting depth), with
/// the same error messages.
impl<'de, P: Deserialize<'de>> Deserialize<'de> for Body<P> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BodyVisitor(std::marker::PhantomData))
    }
}

struct BodyVisitor<P>(std::marker::PhantomData<P>);

impl<'de, P: Deserialize<'de>> Visitor<'de> for BodyVisitor<P> {
    type Value = Body<P>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body<P>, A::Error> {
        let mut fields = Fields::new();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Id => fields.id = Some(Fields::<P>::id(map.next_value()?)),
                Key::Jsonrpc => fields.jsonrpc = Some(Fields::<P>::jsonrpc(map.next_value()?)),
                Key::Method => fields.method = Some(Fields::<P>::method(map.next_value()?)),
                Key::Params => fields.params = Some(map.next_value()?),
                Key::Result => fields.result = Some(map.next_value()?),
                Key::Error => fields.error = Some(Box::new(map.next_value()?)),
                Key::Other => {
                    map.next_value::<Value>()?;
                }
            }
        }
        Ok(Body::Object(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body<P>, A::Error> {
        while seq.next_element::<Value>()?.is_some() {}
        Ok(Body::Array)
    }

    fn visit_unit<E>(self) -> Result<Body<P>, E> {
        Ok(Body::Other(type_name(&Value::Null)))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Body<P>, E> {
        Ok(Body::Other(type_name(&Value::Bool(false))))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Body<P>, E> {
        Ok(Body::Other(type_name(&Value::from(0))))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Body<P>, E> {
        Ok(Body::Other(type_name(&Value::from(0))))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Body<P>, E> {
        Ok(Body::Other(type_name(&Value::from(0))))
    }

    fn visit_str<E>(self, _: &str) -> Result<Body<P>, E> {
        Ok(Body::Other(type_name(&Value::String(String::new()))))
    }
}

/// An object member's name, matched without allocating.
enum Key {
    Id,
    Jsonrpc,
    Method,
    Params,
    Result,
    Error,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }

            fn visit_str<E>(self, k: &str) -> Result<Key, E> {
                Ok(match k {
                    "id" => Key::Id,
                    "jsonrpc" => Key::Jsonrpc,
                    "method" => Key::Method,
                    "params" => Key::Params,
                    "result" => Key::Result,
                    "error" => Key::Error,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// Serialises an error response whose id could not be read (`"id": null`, as JSON-RPC says).
pub fn error_without_id(error: &RpcError) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"jsonrpc": "2.0", "id": null, "error": error}))
        .expect("error responses always serialise")
}

/// A JSON value's type as messages name it: "null", "a boolean", "a number", "a string",
/// "an array", "an object".
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
