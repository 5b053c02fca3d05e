//! A result as it travels through the gateway: the text a server sent, or a tree built here.
//!
//! Most results go from a server to a client unchanged. Building each one into a [`Value`]
//! tree (an allocation per string, a hashed map per object), writing it out again and
//! freeing the tree is work proportional to the result's size, spent for nothing. A
//! [`Payload`] keeps the text as received (checked to be JSON, never built) and becomes a
//! tree only when something must look inside ([`Payload::into_value`]). Edits to the top
//! level of an object, such as the fields a 2026-07-28 result gains on its way out, are
//! spliced into the text by [`RawObject`] without building anything.
//!
//! The text is valid JSON by construction: it comes from the JSON reader or is written by
//! [`RawObject`] from valid pieces, never from outside this module, so writing it out needs no
//! second check.

use std::borrow::Cow;

use serde::de::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::jsonrpc::RpcError;

/// A JSON value that may still be the text it arrived as.
#[derive(Clone, Debug)]
pub struct Payload(Repr);

#[derive(Clone, Debug)]
enum Repr {
    /// JSON text, valid: written out as it is.
    Text(Box<str>),
    /// A value built or changed by the gateway.
    Tree(Value),
}

impl Payload {
    /// The value as a tree, built from the text if need be.
    ///
    /// Fails only for text that is valid JSON but not a value Gantry can hold (nested more
    /// than 128 deep, or a number out of the `f64` range), said as an internal error.
    pub fn into_value(self) -> Result<Value, RpcError> {
        match self.0 {
            Repr::Tree(v) => Ok(v),
            Repr::Text(text) => serde_json::from_str(&text).map_err(|e| {
                RpcError::internal(format!("the server's result cannot be read: {e}"))
            }),
        }
    }

    /// The value as a tree to change in place, built from the text if need be.
    pub fn value_mut(&mut self) -> Result<&mut Value, RpcError> {
        if let Repr::Text(_) = &self.0 {
            let text = std::mem::replace(&mut self.0, Repr::Tree(Value::Null));
            self.0 = Repr::Tree(Payload(text).into_value()?);
        }
        match &mut self.0 {
            Repr::Tree(v) => Ok(v),
            Repr::Text(_) => unreachable!("just built"),
        }
    }

    /// The JSON text, when the payload is still the text it came as.
    pub fn as_text(&self) -> Option<&str> {
        match &self.0 {
            Repr::Text(t) => Some(t),
            Repr::Tree(_) => None,
        }
    }

    /// A string member of the top-level object, read without building the value.
    pub fn top_str(&self, key: &str) -> Option<Cow<'_, str>> {
        match &self.0 {
            Repr::Tree(v) => v.get(key)?.as_str().map(Cow::Borrowed),
            Repr::Text(text) => match RawObject::parse(text)?.take(key)? {
                Member::Text(member) => read_str(member),
                Member::Object(_) => None,
            },
        }
    }

    /// Appends the value's JSON text to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match &self.0 {
            Repr::Text(t) => out.extend_from_slice(t.as_bytes()),
            Repr::Tree(v) => serde_json::to_writer(out, v).expect("a value serialises"),
        }
    }
}

impl From<Value> for Payload {
    fn from(v: Value) -> Self {
        Payload(Repr::Tree(v))
    }
}

/// Equal when they are the same JSON value, whatever their form (text is built for the
/// comparison; text that cannot be built equals nothing).
impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        match (&self.0, &other.0) {
            (Repr::Tree(a), Repr::Tree(b)) => a == b,
            (Repr::Text(a), Repr::Text(b)) if a == b => true,
            _ => match (self.clone().into_value(), other.clone().into_value()) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            },
        }
    }
}

/// Reads any JSON value as its text (the reader checks the syntax and UTF-8).
impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(|raw| Payload(Repr::Text(raw.into())))
    }
}

/// The top-level members of a JSON object's text, borrowed from it, to read or to change and
/// write out again. A member given twice keeps its last value in the first one's place, as
/// when the object is read into a [`serde_json::Map`].
#[derive(Default)]
pub struct RawObject<'a> {
    members: Vec<(Cow<'a, str>, Member<'a>)>,
}

/// A member's value.
enum Member<'a> {
    /// Valid JSON text.
    Text(&'a str),
    /// An object to write out in its place.
    Object(RawObject<'a>),
}

impl<'a> RawObject<'a> {
    /// The members of the object `text` (valid JSON), or `None` when it is not an object.
    ///
    /// The text is valid JSON (a [`Payload`]'s text, or a member of one), so one scan of its
    /// bytes finds the members: no syntax to check, nothing to build but the member list.
    fn parse(text: &'a str) -> Option<RawObject<'a>> {
        let b = text.as_bytes();
        if b.first() != Some(&b'{') {
            return None;
        }
        let mut members: Vec<(Cow<'a, str>, Member<'a>)> = Vec::new();
        let mut i = 1;
        loop {
            i = skip_space(b, i);
            match b.get(i)? {
                b'}' => return Some(RawObject { members }),
                b',' => {
                    i += 1;
                    continue;
                }
                b'"' => {}
                _ => return None,
            }
            let key_end = string_end(b, i)?;
            let key = &text[i + 1..key_end - 1];
            let key = if key.contains('\\') {
                Cow::Owned(serde_json::from_str::<String>(&text[i..key_end]).ok()?)
            } else {
                Cow::Borrowed(key)
            };
            i = skip_space(b, key_end);
            if b.get(i) != Some(&b':') {
                return None;
            }
            let start = skip_space(b, i + 1);
            i = value_end(b, start)?;
            let value = Member::Text(&text[start..i]);
            match members.iter_mut().find(|(k, _)| *k == key) {
                Some((_, slot)) => *slot = value,
                None => members.push((key, value)),
            }
        }
    }

    /// The members of `payload`, when it is still text and an object.
    pub fn of(payload: &'a Payload) -> Option<RawObject<'a>> {
        RawObject::parse(payload.as_text()?)
    }

    /// The members of the member `key`, when it is an object.
    pub fn object(&self, key: &str) -> Option<RawObject<'a>> {
        match self.find(key)? {
            Member::Text(t) => RawObject::parse(t),
            Member::Object(_) => None,
        }
    }

    fn find(&self, key: &str) -> Option<&Member<'a>> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Takes the member `key` out.
    fn take(self, key: &str) -> Option<Member<'a>> {
        self.members
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Whether the object has a member `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.find(key).is_some()
    }

    fn put(&mut self, key: &'a str, value: Member<'a>) {
        match self.members.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.members.push((Cow::Borrowed(key), value)),
        }
    }

    /// Sets the member `key` to `value`: in its place if present, else last.
    pub fn set(&mut self, key: &'a str, value: &'a RawValue) {
        self.put(key, Member::Text(value.get()));
    }

    /// Sets the member `key` to the object `value`.
    pub fn set_object(&mut self, key: &'a str, value: RawObject<'a>) {
        self.put(key, Member::Object(value));
    }

    /// The object written out.
    pub fn into_payload(self) -> Payload {
        let mut out = String::with_capacity(self.len());
        self.write(&mut out);
        Payload(Repr::Text(out.into_boxed_str()))
    }

    /// About how long the text is.
    fn len(&self) -> usize {
        let member = |m: &Member<'_>| match m {
            Member::Text(t) => t.len(),
            Member::Object(o) => o.len(),
        };
        2 + self
            .members
            .iter()
            .map(|(k, v)| k.len() + 4 + member(v))
            .sum::<usize>()
    }

    fn write(&self, out: &mut String) {
        out.push('{');
        for (i, (k, v)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_key(k, out);
            out.push(':');
            match v {
                Member::Text(t) => out.push_str(t),
                Member::Object(o) => o.write(out),
            }
        }
        out.push('}');
    }
}

/// The index after JSON whitespace from `i`.
fn skip_space(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The index after the string that starts (with its quote) at `start`.
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    scan_string::<false>(b, start).map(|(end, _)| end)
}

/// The index after the string that starts (with its quote) at `start`, and whether it has
/// escapes. With `CANONICAL`, `None` unless its escapes are only those serde_json writes:
/// `\"`, `\\`, the short forms of control characters and `\u00xx` (lowercase) for the others.
pub(crate) fn scan_string<const CANONICAL: bool>(b: &[u8], start: usize) -> Option<(usize, bool)> {
    let mut i = start + 1;
    let mut escaped = false;
    loop {
        i += b.get(i..)?.iter().position(|c| *c == b'"' || *c == b'\\')?;
        if b[i] == b'"' {
            return Some((i + 1, escaped));
        }
        escaped = true;
        if !CANONICAL {
            i += 2;
            continue;
        }
        match b.get(i + 1)? {
            b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
            b'u' => {
                let &[b'0', b'0', h, l] = b.get(i + 2..i + 6)? else {
                    return None;
                };
                let control = matches!(h, b'0' | b'1') && matches!(l, b'0'..=b'9' | b'a'..=b'f');
                let short = h == b'0' && matches!(l, b'8' | b'9' | b'a' | b'c' | b'd');
                if !control || short {
                    return None;
                }
                i += 6;
            }
            _ => return None,
        }
    }
}

/// The index after the (valid) value that starts at `start`.
pub(crate) fn value_end(b: &[u8], start: usize) -> Option<usize> {
    match b.get(start)? {
        b'"' => string_end(b, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            loop {
                match b.get(i)? {
                    b'"' => {
                        i = string_end(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let len = b[start..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(b.len() - start);
            Some(start + len)
        }
    }
}

/// Whether a string has characters JSON text must escape.
pub(crate) fn needs_escape(s: &str) -> bool {
    s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20)
}

/// A member name as a JSON string: as it is unless something in it must be escaped.
pub(crate) fn write_key(key: &str, out: &mut String) {
    if needs_escape(key) {
        out.push_str(&serde_json::to_string(key).expect("a string serialises"));
    } else {
        out.push('"');
        out.push_str(key);
        out.push('"');
    }
}

/// The string a (valid) JSON value's text holds, borrowed from the text unless it has
/// escapes; `None` when the value is not a string.
pub(crate) fn read_str(text: &str) -> Option<Cow<'_, str>> {
    if !text.starts_with('"') {
        return None;
    }
    let inner = &text[1..text.len() - 1];
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests;
