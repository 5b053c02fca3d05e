//! A request's `params` as they travel through the gateway: the text the client sent, with
//! an index of its top-level members, or a tree.
//!
//! Most params go to a server nearly as they came: the gateway reads a few members (`name`,
//! `_meta`'s protocol version), renames the tool now and then, and writes the era's envelope
//! into `_meta`. Building the whole object into a [`Value`] tree for that, and writing it out
//! again, costs more than everything else the gateway does to a call. [`Params`] keeps the
//! text with the places of its top-level members and of `_meta`'s (found in the same pass over
//! the bytes that checks the text), reads one member alone when asked, and splices
//! edits into the text: a changed member in its place, a new one last, a removed one's place
//! taken by the last, as a [`serde_json::Map`] would order them. A tree is built only for callers
//! that ask for the whole value.
//!
//! Text is kept only when it is exactly what serde_json writes for the value it holds
//! (no whitespace, no duplicate names, numbers and escapes as serde_json writes
//! them, a depth a tree can hold). So written out, with or without edits, it is byte for byte
//! what the tree would have written, and any params the JSON reader would refuse or change
//! (numbers out of range, `\u` escapes, duplicates) become a tree, exactly as before.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::payload::{needs_escape, read_str, scan_string, value_end, write_key};

/// The params of a request: object text as received, or a tree.
#[derive(Clone)]
pub struct Params(Repr);

#[derive(Clone)]
enum Repr {
    /// A JSON object's canonical text and its members.
    Text(Text),
    /// Any other value, or one built or changed as a whole by the gateway.
    Tree(Value),
}

#[derive(Clone)]
struct Text {
    /// Canonical JSON text of an object.
    text: String,
    /// Its top-level members, in text order (no name twice: canonical text has none).
    slots: Vec<Slot>,
    /// The members of `_meta` when it is an object, placed in `_meta`'s text.
    meta: Option<Vec<Slot>>,
}

/// The `_meta` member of params, to read without building the rest.
pub enum Meta<'a> {
    /// `_meta`'s text and its members.
    Text(&'a str, &'a [Slot]),
    /// `_meta` of a tree.
    Tree(&'a Map<String, Value>),
}

impl Params {
    /// Params from the JSON text of a value, kept as text when it is a canonical object.
    /// `None` when the text is not JSON, or not a value Gantry can hold (a number out of
    /// range, too deep, a lone surrogate).
    pub fn from_json(text: &str) -> Option<Params> {
        // Checked to be JSON first: `from_canonical` trusts the syntax, as `Message::from_slice`
        // (which reads params the same way) has it checked by the reader.
        let raw = serde_json::from_str::<&RawValue>(text).ok()?;
        if let Some(p) = Params::from_canonical(raw.get()) {
            return Some(p);
        }
        serde_json::from_str(text)
            .ok()
            .map(|v| Params(Repr::Tree(v)))
    }

    /// Params kept as text, when `text` (valid JSON) is a canonical object.
    pub(crate) fn from_canonical(text: &str) -> Option<Params> {
        let (slots, meta) = scan(text)?;
        Some(Params(Repr::Text(Text {
            text: text.to_owned(),
            slots,
            meta,
        })))
    }

    /// The empty object, as text.
    pub fn empty_object() -> Params {
        Params(Repr::Text(Text {
            text: "{}".into(),
            slots: Vec::new(),
            meta: None,
        }))
    }

    /// The whole value (built from the text, when the params are text).
    pub fn value(&self) -> Cow<'_, Value> {
        match &self.0 {
            Repr::Tree(v) => Cow::Borrowed(v),
            Repr::Text(t) => Cow::Owned(parse(&t.text)),
        }
    }

    /// The whole value to change in place: the params become a tree for good.
    pub fn value_mut(&mut self) -> &mut Value {
        if let Repr::Text(t) = &self.0 {
            self.0 = Repr::Tree(parse(&t.text));
        }
        match &mut self.0 {
            Repr::Tree(v) => v,
            Repr::Text(_) => unreachable!("just built"),
        }
    }

    /// The whole value.
    pub fn into_value(self) -> Value {
        match self.0 {
            Repr::Tree(v) => v,
            Repr::Text(t) => parse(&t.text),
        }
    }

    /// The JSON text, when the params are still text.
    pub fn as_text(&self) -> Option<&str> {
        match &self.0 {
            Repr::Text(t) => Some(&t.text),
            Repr::Tree(_) => None,
        }
    }

    /// Whether the params are an object.
    pub fn is_object(&self) -> bool {
        match &self.0 {
            Repr::Text(_) => true,
            Repr::Tree(v) => v.is_object(),
        }
    }

    /// The top-level member `key` (read alone from the text).
    pub fn get(&self, key: &str) -> Option<Cow<'_, Value>> {
        match &self.0 {
            Repr::Tree(v) => v.get(key).map(Cow::Borrowed),
            Repr::Text(t) => t.member(key).map(|m| Cow::Owned(parse(m))),
        }
    }

    /// The top-level member `key`, when it is a string.
    pub fn get_str(&self, key: &str) -> Option<Cow<'_, str>> {
        match &self.0 {
            Repr::Tree(v) => v.get(key)?.as_str().map(Cow::Borrowed),
            Repr::Text(t) => read_str(t.member(key)?),
        }
    }

    /// Whether there is a top-level member `key`.
    pub fn contains(&self, key: &str) -> bool {
        match &self.0 {
            Repr::Tree(v) => v.get(key).is_some(),
            Repr::Text(t) => t.member(key).is_some(),
        }
    }

    /// The `_meta` member, when it is an object.
    pub fn meta(&self) -> Option<Meta<'_>> {
        match &self.0 {
            Repr::Tree(v) => v.get("_meta")?.as_object().map(Meta::Tree),
            Repr::Text(t) => Some(Meta::Text(t.member("_meta")?, t.meta.as_deref()?)),
        }
    }

    /// Sets the top-level member `key` (params that are an object): in its place if present,
    /// else last.
    pub fn set(&mut self, key: &str, value: &Value) {
        match &mut self.0 {
            Repr::Tree(v) => {
                if let Some(o) = v.as_object_mut() {
                    o.insert(key.to_owned(), value.clone());
                }
            }
            // A new `_meta` object is written from its members, so their places are known
            // whatever its size (`scan` keeps no more members than `MAX_KEYS`).
            Repr::Text(t) => match value {
                Value::Object(m) if key == "_meta" => {
                    let texts: Vec<(&str, String)> =
                        m.iter().map(|(k, v)| (k.as_str(), to_text(v))).collect();
                    let entries: Vec<Entry<'_>> =
                        texts.iter().map(|(k, v)| Entry::new(k, v)).collect();
                    t.set_meta(write_object(&entries));
                }
                _ => {
                    t.set(key, &to_text(value));
                    if key == "_meta" {
                        t.meta = None;
                    }
                }
            },
        }
    }

    /// Sets members of `_meta` (created, last, if absent), as [`crate::protocol::meta::of`]
    /// then inserting each would: a member already equal to its new value is left as it is.
    /// Nothing happens when the params or their `_meta` are not an object.
    pub fn meta_set<'v>(&mut self, members: impl IntoIterator<Item = (&'v str, &'v Value)>) {
        let members: Vec<(&str, &Value, String)> = members
            .into_iter()
            .map(|(k, v)| (k, v, to_text(v)))
            .collect();
        self.meta_set_text(members.iter().map(|(k, v, t)| (*k, *v, t.as_str())));
    }

    /// [`Params::meta_set`] with each value's JSON text (as serde_json writes it) at hand.
    pub fn meta_set_text<'v>(
        &mut self,
        members: impl IntoIterator<Item = (&'v str, &'v Value, &'v str)>,
    ) {
        let t = match &mut self.0 {
            Repr::Tree(v) => {
                if let Some(m) = crate::protocol::meta::of(v) {
                    let fresh = m.is_empty();
                    for (k, v, _) in members {
                        match if fresh { None } else { m.get_mut(k) } {
                            Some(slot) if *slot == *v => {}
                            Some(slot) => *slot = v.clone(),
                            None => {
                                m.insert(k.to_owned(), v.clone());
                            }
                        }
                    }
                }
                return;
            }
            Repr::Text(t) => t,
        };
        let Some(mut entries) = t.meta_entries() else {
            return;
        };
        let mut changed = t.member("_meta").is_none();
        for (k, v, text) in members {
            match entries.iter_mut().find(|e| e.name() == k) {
                // Equal text, or an equal value written otherwise (members in another order):
                // kept as it is.
                Some(e)
                    if *e.value == *text
                        || (maybe_equal(&e.value, text) && parse(&e.value) == *v) => {}
                Some(e) => {
                    e.value = Cow::Borrowed(text);
                    changed = true;
                }
                None => {
                    entries.push(Entry::new(k, text));
                    changed = true;
                }
            }
        }
        if changed {
            let written = write_object(&entries);
            drop(entries);
            t.set_meta(written);
        }
    }

    /// Removes members of `_meta` as [`serde_json::Map::remove`] does (the last member takes
    /// the place of a removed one).
    pub fn meta_remove(&mut self, keys: &[&str]) {
        let t = match &mut self.0 {
            Repr::Tree(v) => {
                if let Some(m) = v.get_mut("_meta").and_then(Value::as_object_mut) {
                    for k in keys {
                        m.remove(*k);
                    }
                }
                return;
            }
            Repr::Text(t) => t,
        };
        if t.meta.as_ref().is_none_or(|m| m.is_empty()) {
            return;
        }
        let Some(mut entries) = t.meta_entries() else {
            return;
        };
        let mut changed = false;
        for k in keys {
            if let Some(i) = entries.iter().position(|e| e.name() == *k) {
                entries.swap_remove(i);
                changed = true;
            }
        }
        if changed {
            let written = write_object(&entries);
            drop(entries);
            t.set_meta(written);
        }
    }

    /// Replaces the member `key` of `_meta`, if there is one, and returns its old value.
    pub fn meta_replace(&mut self, key: &str, value: &Value) -> Option<Value> {
        let t = match &mut self.0 {
            Repr::Tree(v) => {
                let slot = v.get_mut("_meta")?.as_object_mut()?.get_mut(key)?;
                return Some(std::mem::replace(slot, value.clone()));
            }
            Repr::Text(t) => t,
        };
        let meta = t.member("_meta")?;
        let slot = find(meta, t.meta.as_deref()?, key)?;
        let old = parse(&meta[slot.value.clone()]);
        let text = to_text(value);
        let mut entries = t.meta_entries()?;
        let e = entries.iter_mut().find(|e| e.name() == key)?;
        e.value = Cow::Borrowed(&text);
        let written = write_object(&entries);
        drop(entries);
        t.set_meta(written);
        Some(old)
    }

    /// Appends the params' JSON text to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match &self.0 {
            Repr::Text(t) => out.extend_from_slice(t.text.as_bytes()),
            Repr::Tree(v) => serde_json::to_writer(out, v).expect("a value serialises"),
        }
    }
}

impl<'a> Meta<'a> {
    /// The member `key`.
    pub fn get(&self, key: &str) -> Option<Cow<'a, Value>> {
        match self {
            Meta::Tree(m) => m.get(key).map(Cow::Borrowed),
            Meta::Text(text, slots) => {
                let slot = find(text, slots, key)?;
                Some(Cow::Owned(parse(&text[slot.value.clone()])))
            }
        }
    }

    /// The member `key` as JSON text (as serde_json writes it).
    pub fn text(&self, key: &str) -> Option<Cow<'a, str>> {
        match self {
            Meta::Tree(m) => m.get(key).map(|v| Cow::Owned(to_text(v))),
            Meta::Text(text, slots) => {
                let slot = find(text, slots, key)?;
                Some(Cow::Borrowed(&text[slot.value.clone()]))
            }
        }
    }

    /// The member `key`, when it is a string.
    pub fn get_str(&self, key: &str) -> Option<Cow<'a, str>> {
        match self {
            Meta::Tree(m) => m.get(key)?.as_str().map(Cow::Borrowed),
            Meta::Text(text, slots) => read_str(&text[find(text, slots, key)?.value.clone()]),
        }
    }

    /// Whether there is a member `key`.
    pub fn contains(&self, key: &str) -> bool {
        match self {
            Meta::Tree(m) => m.contains_key(key),
            Meta::Text(text, slots) => find(text, slots, key).is_some(),
        }
    }
}

/// A member of an object's text: where its name and value are.
#[derive(Clone, Debug)]
pub struct Slot {
    /// The name's text, quotes excluded.
    key: Range<usize>,
    /// The name, when its text has escapes.
    decoded: Option<Box<str>>,
    /// The value's text.
    value: Range<usize>,
}

impl Slot {
    fn name<'t>(&'t self, text: &'t str) -> &'t str {
        self.decoded.as_deref().unwrap_or(&text[self.key.clone()])
    }
}

fn find<'s>(text: &str, slots: &'s [Slot], key: &str) -> Option<&'s Slot> {
    slots.iter().find(|s| s.name(text) == key)
}

/// A member of an object being rewritten.
struct Entry<'a> {
    /// The name as JSON string text, quotes excluded.
    key: Cow<'a, str>,
    decoded: Option<Cow<'a, str>>,
    /// The value's canonical text.
    value: Cow<'a, str>,
}

impl<'a> Entry<'a> {
    fn new(name: &'a str, value: &'a str) -> Entry<'a> {
        let value = Cow::Borrowed(value);
        if !needs_escape(name) {
            return Entry {
                key: Cow::Borrowed(name),
                decoded: None,
                value,
            };
        }
        let mut key = String::new();
        write_key(name, &mut key);
        Entry {
            key: Cow::Owned(key[1..key.len() - 1].to_owned()),
            decoded: Some(Cow::Borrowed(name)),
            value,
        }
    }

    fn name(&self) -> &str {
        self.decoded.as_deref().unwrap_or(&self.key)
    }
}

/// An object's canonical text from its members, and where they are in it.
fn write_object(entries: &[Entry<'_>]) -> (String, Vec<Slot>) {
    let len: usize = entries
        .iter()
        .map(|e| e.key.len() + e.value.len() + 4)
        .sum();
    let mut out = String::with_capacity(len + 2);
    let mut slots = Vec::with_capacity(entries.len());
    out.push('{');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        let k = out.len();
        out.push_str(&e.key);
        let key = k..out.len();
        out.push_str("\":");
        let v = out.len();
        out.push_str(&e.value);
        slots.push(Slot {
            key,
            decoded: e.decoded.as_deref().map(Into::into),
            value: v..out.len(),
        });
    }
    out.push('}');
    (out, slots)
}

impl Text {
    /// Puts `_meta`'s new text (and its members' places in it) in.
    fn set_meta(&mut self, (text, slots): (String, Vec<Slot>)) {
        self.set("_meta", &text);
        self.meta = Some(slots);
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.name(&self.text) == key)
    }

    fn member(&self, key: &str) -> Option<&str> {
        let i = self.position(key)?;
        Some(&self.text[self.slots[i].value.clone()])
    }

    /// The members of `_meta` (none if absent), `None` when `_meta` is not an object.
    fn meta_entries(&self) -> Option<Vec<Entry<'_>>> {
        let Some(text) = self.member("_meta") else {
            return Some(Vec::new());
        };
        let slots = self.meta.as_deref()?;
        Some(
            slots
                .iter()
                .map(|s| Entry {
                    key: Cow::Borrowed(&text[s.key.clone()]),
                    decoded: s.decoded.as_deref().map(Cow::Borrowed),
                    value: Cow::Borrowed(&text[s.value.clone()]),
                })
                .collect(),
        )
    }

    /// Sets the member `key` to `value` (canonical JSON text): in its place, else last. The
    /// caller keeps `meta` right.
    fn set(&mut self, key: &str, value: &str) {
        match self.position(key) {
            Some(i) => {
                let old = self.slots[i].value.clone();
                // Copied in three pieces (`replace_range` goes byte by byte).
                let mut text = String::with_capacity(self.text.len() + value.len() - old.len());
                text.push_str(&self.text[..old.start]);
                text.push_str(value);
                text.push_str(&self.text[old.end..]);
                self.text = text;
                self.slots[i].value = old.start..old.start + value.len();
                let shift = |r: &mut Range<usize>| {
                    *r = r.start + value.len() - old.len()..r.end + value.len() - old.len();
                };
                for s in &mut self.slots[i + 1..] {
                    shift(&mut s.key);
                    shift(&mut s.value);
                }
            }
            None => {
                self.text.pop();
                if !self.slots.is_empty() {
                    self.text.push(',');
                }
                let start = self.text.len();
                write_key(key, &mut self.text);
                let escaped = self.text.len() - start != key.len() + 2;
                let key_span = start + 1..self.text.len() - 1;
                self.text.push(':');
                let v = self.text.len();
                self.text.push_str(value);
                let value_span = v..self.text.len();
                self.text.push('}');
                self.slots.push(Slot {
                    key: key_span,
                    decoded: escaped.then(|| key.into()),
                    value: value_span,
                });
            }
        }
    }
}

/// Whether two different canonical texts may still be the same value: equal values are
/// written alike but for the order of object members (same length) and the sign of a zero.
fn maybe_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() || a.contains("-0.0") || b.contains("-0.0")
}

/// Builds canonical text (it always builds: see [`scan`]).
fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("canonical JSON text builds")
}

fn to_text(v: &Value) -> String {
    serde_json::to_string(v).expect("a value serialises")
}

impl From<Value> for Params {
    fn from(v: Value) -> Self {
        Params(Repr::Tree(v))
    }
}

/// Equal when they are the same JSON value, whatever their form.
impl PartialEq for Params {
    fn eq(&self, other: &Params) -> bool {
        match (&self.0, &other.0) {
            (Repr::Text(a), Repr::Text(b)) if a.text == b.text => true,
            _ => *self.value() == *other.value(),
        }
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Text(t) => write!(f, "Params({})", t.text),
            Repr::Tree(v) => write!(f, "Params({v})"),
        }
    }
}

/// Deepest nesting kept as text (serde_json refuses more than 128).
const MAX_DEPTH: usize = 100;
/// Most members an object kept as text may have (names are compared pairwise).
const MAX_KEYS: usize = 64;
/// Most names of the objects open at once in text kept as text.
const MAX_OPEN_KEYS: usize = 128;

/// The members of the object `text` (valid JSON), and those of its `_meta` when that is an
/// object (placed in `_meta`'s text), when the text is exactly what serde_json writes for the
/// value it reads from it: no whitespace between tokens, no member name twice in an object,
/// strings escaped and numbers written as serde_json writes them, nested no deeper than
/// [`MAX_DEPTH`]. Such text always builds into a tree, and equals what writing that tree
/// gives. `None` for any other text, or one that is not an object.
///
/// One pass over the bytes: strings and numbers are skipped to their end as
/// [`crate::RawObject`] skips them ([`scan_string`], checking the escapes on the way, and
/// [`value_end`]).
pub(crate) fn scan(text: &str) -> Option<(Vec<Slot>, Option<Vec<Slot>>)> {
    let b = text.as_bytes();
    if b.first() != Some(&b'{') {
        return None;
    }
    // For each open container: where its names start in `keys` (an object), or `usize::MAX`;
    // the names of the open objects. On the stack: text that needs more is kept as a tree.
    if text.len() > u32::MAX as usize {
        return None;
    }
    let mut open = Stack::<u32, MAX_DEPTH>::new();
    let mut keys = Stack::<(u32, u32), MAX_OPEN_KEYS>::new();
    let mut top: Vec<Slot> = Vec::with_capacity(4);
    let mut meta: Option<Vec<Slot>> = None;
    // Where `_meta`'s object starts, while it is open.
    let mut meta_at: Option<usize> = None;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let (end, escaped) = scan_string::<true>(b, i)?;
                if b.get(end) == Some(&b':') {
                    let first = *open.last().filter(|f| **f != u32::MAX)? as usize;
                    let key = &b[i..end];
                    if keys.len() - first >= MAX_KEYS
                        || keys.items()[first..]
                            .iter()
                            .any(|&(s, e)| &b[s as usize..e as usize] == key)
                    {
                        return None;
                    }
                    keys.push((i as u32, end as u32))?;
                    let at = match (open.len(), meta_at) {
                        (1, _) => Some((0, &mut top)),
                        (2, Some(m)) => meta.as_mut().map(|s| (m, s)),
                        _ => None,
                    };
                    if let Some((base, slots)) = at {
                        let decoded = match escaped {
                            true => Some(serde_json::from_str::<String>(&text[i..end]).ok()?),
                            false => None,
                        };
                        slots.push(Slot {
                            key: i + 1 - base..end - 1 - base,
                            decoded: decoded.map(Into::into),
                            value: end + 1 - base..end + 1 - base,
                        });
                    }
                }
                i = end;
                continue;
            }
            c @ (b'{' | b'[') => {
                if c == b'{'
                    && open.len() == 1
                    && let Some(last) = top.last()
                    && last.value.start == i
                    && last.decoded.is_none()
                    && &text[last.key.clone()] == "_meta"
                {
                    meta_at = Some(i);
                    meta = Some(Vec::with_capacity(4));
                }
                open.push(if c == b'{' {
                    keys.len() as u32
                } else {
                    u32::MAX
                })?;
            }
            b'}' | b']' | b',' => {
                // The end of the last member's value, at the top or in `_meta`.
                match (open.len(), meta_at) {
                    (1, _) => {
                        if let Some(s) = top.last_mut() {
                            s.value.end = i;
                        }
                    }
                    (2, Some(m)) => {
                        if let Some(s) = meta.as_mut().and_then(|s| s.last_mut()) {
                            s.value.end = i - m;
                        }
                        if b[i] == b'}' {
                            meta_at = None;
                        }
                    }
                    _ => {}
                }
                if b[i] != b',' {
                    let first = open.pop()?;
                    if first != u32::MAX {
                        keys.truncate(first as usize);
                    }
                }
            }
            b':' => {}
            b't' | b'n' => {
                i += 4;
                continue;
            }
            b'f' => {
                i += 5;
                continue;
            }
            b'-' | b'0'..=b'9' => {
                let end = value_end(b, i)?;
                if !canonical_number(&text[i..end]) {
                    return None;
                }
                i = end;
                continue;
            }
            _ => return None,
        }
        i += 1;
    }
    Some((top, meta))
}

/// A bounded stack kept on the stack (no allocation per scan).
struct Stack<T, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy + Default, const N: usize> Stack<T, N> {
    fn new() -> Self {
        Stack {
            items: [T::default(); N],
            len: 0,
        }
    }

    /// `None` when full.
    fn push(&mut self, v: T) -> Option<()> {
        *self.items.get_mut(self.len)? = v;
        self.len += 1;
        Some(())
    }

    fn pop(&mut self) -> Option<T> {
        self.len = self.len.checked_sub(1)?;
        Some(self.items[self.len])
    }

    fn last(&self) -> Option<&T> {
        self.items().last()
    }

    fn len(&self) -> usize {
        self.len
    }

    fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    fn items(&self) -> &[T] {
        &self.items[..self.len]
    }
}

/// Whether a number's text is what serde_json writes for the number it reads from it.
fn canonical_number(t: &str) -> bool {
    if !t.bytes().any(|c| matches!(c, b'.' | b'e' | b'E')) {
        return t != "-0" && (t.parse::<u64>().is_ok() || t.parse::<i64>().is_ok());
    }
    let Ok(x) = serde_json::from_str::<f64>(t) else {
        return false;
    };
    let mut buf = [0u8; 40];
    let mut w = &mut buf[..];
    if serde_json::to_writer(&mut w, &x).is_err() {
        return false;
    }
    let n = 40 - w.len();
    &buf[..n] == t.as_bytes()
}

#[cfg(test)]
mod tests;
