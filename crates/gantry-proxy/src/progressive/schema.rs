//! JSON Schema validation of tool arguments, for `call_tool` before it forwards a call.
//!
//! **Why our own validator.** The well-known crate, `jsonschema` (0.60), covers every draft,
//! but even with `default-features = false` it adds 38 crates to our tree (`fancy-regex`,
//! `regex`, `ahash`, `email_address`, `fluent-uri`, `uuid-simd`, `fraction`, the `num`
//! family, `referencing`, `strum` and its macros, …). Measured on this 2-core machine, one
//! job: a clean debug build of it alone took 53 s, against 5 s for `serde_json` alone, so
//! about 48 s more per clean build, for features a gateway does not need (remote `$ref`,
//! formats, annotation output). Gantry validates only to give a model a precise, early
//! refusal; the server validates again. So this module implements the subset tool schemas
//! really use, in a few hundred lines and with no new crate:
//!
//! - `type` (one or a list; `integer` is a number with no fraction, so `2.0` is one),
//!   `enum`, `const` (numbers compared by value);
//! - objects: `properties`, `required`, `additionalProperties` (boolean or schema),
//!   `patternProperties`, `propertyNames`, `minProperties`, `maxProperties`;
//! - arrays: `items` (schema, or the older array form with `additionalItems`),
//!   `prefixItems`, `minItems`, `maxItems`, `uniqueItems`;
//! - numbers: `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` (number form and
//!   the draft-4 boolean form), `multipleOf`;
//! - strings: `minLength`, `maxLength` (in characters), `pattern` (see below);
//! - `allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/`else`, boolean schemas;
//! - local `$ref` (`#`, `#/$defs/…`, `#/definitions/…`, any JSON pointer into the schema),
//!   with a depth bound so a recursive schema cannot loop.
//!
//! A validation also stops after [`MAX_STEPS`] (sub)schema checks and then judges nothing: a
//! small schema whose `anyOf` branches refer back to it (`{"anyOf": [{"$ref": "#"}, {"$ref":
//! "#"}]}`) would otherwise take 2^32 steps within the depth bound, on every call.
//!
//! Every other keyword (`format`, `contains`, `dependentRequired`, remote refs, …) is ignored:
//! the refusal must never be wrong, and a missed check is caught by the server.
//!
//! `pattern` uses `regex-automata` (DFA only), which is already in the build through
//! `tracing-subscriber`'s env filter, with exactly the features it enables there, so it costs
//! no extra compilation. ECMA-262's ASCII classes `\d`, `\w`, `\s` are rewritten to explicit
//! classes (that crate's build has no Unicode Perl classes); a pattern that still does not
//! compile (look-around, back-references) or would build too large a DFA is ignored. Compiled
//! patterns are cached.
//!
//! Errors carry a JSON pointer (`/items/2/name`) and read as `arguments.items[2].name:
//! expected integer, got string "abc"`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock, Mutex};

use regex_automata::dfa::{dense, regex::Regex};
use regex_automata::util::syntax;
use serde_json::{Map, Value};

/// At most this many violations are reported for one value.
pub(crate) const MAX_ERRORS: usize = 20;
/// `$ref` and nesting depth beyond which validation stops descending.
const MAX_DEPTH: usize = 64;
/// Most (sub)schema checks one validation makes; past them it gives up and reports nothing.
pub(crate) const MAX_STEPS: usize = 100_000;

/// One way the value does not match its schema.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Violation {
    /// Where, as a JSON pointer into the value (`""` is the value itself).
    pub(crate) pointer: String,
    /// Where, for people: `arguments.items[2].name`.
    pub(crate) path: String,
    /// What was expected and what was found.
    pub(crate) message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Validates `value` against `schema`; `root` names the value in readable paths
/// (`arguments`; with `""` they start at the first property: `limit`, `ids[0]`). Empty when it
/// matches, or when judging it would take more than [`MAX_STEPS`]; at most [`MAX_ERRORS`]
/// violations.
pub(crate) fn validate(schema: &Value, value: &Value, root: &str) -> Vec<Violation> {
    let mut v = Validator {
        root: schema,
        path: Vec::new(),
        errors: Vec::new(),
        root_name: root,
        steps_left: MAX_STEPS,
    };
    v.check(schema, value, 0);
    if v.steps_left == 0 {
        // Cut short, branches looked as if they matched: no verdict is reliable.
        return Vec::new();
    }
    v.errors.truncate(MAX_ERRORS);
    v.errors
}

#[derive(Clone, Debug)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

struct Validator<'s, 'v> {
    root: &'s Value,
    path: Vec<Seg<'v>>,
    errors: Vec<Violation>,
    root_name: &'s str,
    /// Checks this validation may still make, shared with its branches.
    steps_left: usize,
}

impl<'s, 'v> Validator<'s, 'v> {
    fn fail(&mut self, message: String) {
        self.fail_at(None, message);
    }

    /// Records a violation at the current path, or at its child `key`.
    fn fail_at(&mut self, key: Option<&str>, message: String) {
        if self.errors.len() >= MAX_ERRORS {
            return;
        }
        let mut pointer = String::new();
        let mut path = self.root_name.to_owned();
        for seg in &self.path {
            push_seg(&mut pointer, &mut path, seg);
        }
        if let Some(k) = key {
            push_seg(&mut pointer, &mut path, &Seg::Key(k));
        }
        self.errors.push(Violation {
            pointer,
            path,
            message,
        });
    }

    /// Whether `value` matches `schema`, without recording anything.
    fn matches(&mut self, schema: &'s Value, value: &'v Value, depth: usize) -> bool {
        self.branch(schema, value, depth).is_empty()
    }

    /// The violations of `value` against `schema`, at the current path, kept apart.
    fn branch<'w>(&mut self, schema: &'s Value, value: &'w Value, depth: usize) -> Vec<Violation>
    where
        'v: 'w,
    {
        let mut sub = Validator {
            root: self.root,
            path: self.path.clone(),
            errors: Vec::new(),
            root_name: self.root_name,
            steps_left: self.steps_left,
        };
        sub.check(schema, value, depth);
        self.steps_left = sub.steps_left;
        sub.errors
    }

    fn check(&mut self, schema: &'s Value, value: &'v Value, depth: usize) {
        if depth > MAX_DEPTH || self.errors.len() >= MAX_ERRORS || self.steps_left == 0 {
            return;
        }
        self.steps_left -= 1;
        let s = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => {
                return self.fail(format!("no value is allowed here, got {}", describe(value)));
            }
            Value::Object(s) => s,
            _ => return,
        };
        if let Some(r) = s.get("$ref").and_then(Value::as_str)
            && let Some(target) = self.resolve(r)
        {
            // Siblings of `$ref` apply too (2019-09 and later; harmless before).
            self.check(target, value, depth + 1);
        }
        if let Some(t) = s.get("type")
            && !type_matches(t, value)
        {
            // Nothing else is worth saying about a value of the wrong type.
            return self.fail(format!(
                "expected {}, got {}",
                type_names(t),
                describe(value)
            ));
        }
        if let Some(allowed) = s.get("enum").and_then(Value::as_array)
            && !allowed.iter().any(|a| json_eq(a, value))
        {
            let list: Vec<String> = allowed.iter().map(short).collect();
            self.fail(format!(
                "expected one of {}, got {}",
                list.join(", "),
                short(value)
            ));
        }
        if let Some(c) = s.get("const")
            && !json_eq(c, value)
        {
            self.fail(format!("expected {}, got {}", short(c), short(value)));
        }
        match value {
            Value::Object(obj) => self.object(s, obj, depth),
            Value::Array(items) => self.array(s, items, depth),
            Value::String(text) => self.string(s, text),
            Value::Number(n) => {
                if let Some(x) = n.as_f64() {
                    self.number(s, x, value);
                }
            }
            _ => {}
        }
        self.combinators(s, value, depth);
    }

    fn resolve(&self, reference: &str) -> Option<&'s Value> {
        let pointer = reference.strip_prefix('#')?;
        if pointer.is_empty() {
            return Some(self.root);
        }
        let decoded = percent_decode(pointer)?;
        self.root.pointer(&decoded)
    }

    fn object(&mut self, s: &'s Map<String, Value>, obj: &'v Map<String, Value>, depth: usize) {
        let props = s.get("properties").and_then(Value::as_object);
        if let Some(required) = s.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !obj.contains_key(name) {
                    let expected = props
                        .and_then(|p| p.get(name))
                        .and_then(|p| p.get("type"))
                        .map(|t| format!(" ({})", type_names(t)))
                        .unwrap_or_default();
                    self.fail_at(Some(name), format!("required{expected}, missing"));
                }
            }
        }
        if let Some(n) = s.get("minProperties").and_then(Value::as_u64)
            && (obj.len() as u64) < n
        {
            self.fail(format!(
                "expected at least {n} properties, got {}",
                obj.len()
            ));
        }
        if let Some(n) = s.get("maxProperties").and_then(Value::as_u64)
            && (obj.len() as u64) > n
        {
            self.fail(format!(
                "expected at most {n} properties, got {}",
                obj.len()
            ));
        }
        let patterns: Vec<(Option<Arc<Regex>>, &'s Value)> = s
            .get("patternProperties")
            .and_then(Value::as_object)
            .map(|pp| pp.iter().map(|(p, sub)| (pattern(p), sub)).collect())
            .unwrap_or_default();
        // A pattern we cannot compile might cover any name: then extra names are not judged.
        let patterns_known = patterns.iter().all(|(re, _)| re.is_some());
        let additional = s.get("additionalProperties");
        for (key, item) in obj {
            let mut covered = false;
            if let Some(sub) = props.and_then(|p| p.get(key)) {
                covered = true;
                self.path.push(Seg::Key(key));
                self.check(sub, item, depth + 1);
                self.path.pop();
            }
            for (re, sub) in &patterns {
                if let Some(re) = re
                    && re.is_match(key.as_str())
                {
                    covered = true;
                    self.path.push(Seg::Key(key));
                    self.check(sub, item, depth + 1);
                    self.path.pop();
                }
            }
            if !covered && patterns_known {
                match additional {
                    Some(Value::Bool(false)) => {
                        let known: Vec<&str> = props
                            .into_iter()
                            .flatten()
                            .map(|(k, _)| k.as_str())
                            .collect();
                        let msg = if known.is_empty() {
                            "unexpected property: this object takes none".to_owned()
                        } else {
                            format!("unexpected property (allowed: {})", known.join(", "))
                        };
                        self.fail_at(Some(key), msg);
                    }
                    Some(sub @ Value::Object(_)) => {
                        self.path.push(Seg::Key(key));
                        self.check(sub, item, depth + 1);
                        self.path.pop();
                    }
                    _ => {}
                }
            }
        }
        if let Some(names) = s.get("propertyNames") {
            for key in obj.keys() {
                let name = Value::String(key.clone());
                let errors = self.branch(names, &name, depth + 1);
                if let Some(e) = errors.first() {
                    self.fail_at(Some(key), format!("invalid property name: {}", e.message));
                }
            }
        }
    }

    fn array(&mut self, s: &'s Map<String, Value>, items: &'v [Value], depth: usize) {
        let len = items.len() as u64;
        if let Some(n) = s.get("minItems").and_then(Value::as_u64)
            && len < n
        {
            self.fail(format!("expected at least {n} items, got {len}"));
        }
        if let Some(n) = s.get("maxItems").and_then(Value::as_u64)
            && len > n
        {
            self.fail(format!("expected at most {n} items, got {len}"));
        }
        if s.get("uniqueItems") == Some(&Value::Bool(true)) {
            'outer: for (i, a) in items.iter().enumerate() {
                for (j, b) in items.iter().enumerate().skip(i + 1) {
                    if json_eq(a, b) {
                        self.fail(format!(
                            "expected unique items, but items {i} and {j} are equal"
                        ));
                        break 'outer;
                    }
                }
            }
        }
        // Positional schemas: `prefixItems` (2020-12) or the array form of `items` (older).
        let (prefix, rest) = match (s.get("prefixItems"), s.get("items")) {
            (Some(Value::Array(p)), rest) => (p.as_slice(), rest),
            (None, Some(Value::Array(p))) => (p.as_slice(), s.get("additionalItems")),
            (_, rest) => (&[][..], rest),
        };
        for (i, item) in items.iter().enumerate() {
            let sub = match prefix.get(i) {
                Some(sub) => sub,
                None => match rest {
                    Some(Value::Bool(false)) => {
                        self.fail(format!(
                            "expected at most {} items, got {len}",
                            prefix.len()
                        ));
                        break;
                    }
                    Some(sub @ Value::Object(_)) => sub,
                    _ => continue,
                },
            };
            self.path.push(Seg::Index(i));
            self.check(sub, item, depth + 1);
            self.path.pop();
        }
    }

    fn string(&mut self, s: &'s Map<String, Value>, text: &str) {
        let chars = || text.chars().count() as u64;
        if let Some(n) = s.get("minLength").and_then(Value::as_u64)
            && chars() < n
        {
            self.fail(format!("expected at least {n} characters, got {}", chars()));
        }
        if let Some(n) = s.get("maxLength").and_then(Value::as_u64)
            && chars() > n
        {
            self.fail(format!("expected at most {n} characters, got {}", chars()));
        }
        if let Some(p) = s.get("pattern").and_then(Value::as_str)
            && let Some(re) = pattern(p)
            && !re.is_match(text)
        {
            self.fail(format!(
                "expected a string matching /{p}/, got {}",
                short(&Value::from(text))
            ));
        }
    }

    fn number(&mut self, s: &'s Map<String, Value>, x: f64, value: &Value) {
        let bound = |k: &str| s.get(k).and_then(Value::as_f64);
        // Draft 4: `exclusiveMinimum: true` makes `minimum` exclusive.
        let (min, min_excl) = match (bound("minimum"), s.get("exclusiveMinimum")) {
            (Some(m), Some(Value::Bool(true))) => (Some(m), true),
            (m, Some(Value::Number(e))) => match (m, e.as_f64()) {
                (Some(m), Some(e)) if m > e => (Some(m), false),
                (_, e) => (e, true),
            },
            (m, _) => (m, false),
        };
        let (max, max_excl) = match (bound("maximum"), s.get("exclusiveMaximum")) {
            (Some(m), Some(Value::Bool(true))) => (Some(m), true),
            (m, Some(Value::Number(e))) => match (m, e.as_f64()) {
                (Some(m), Some(e)) if m < e => (Some(m), false),
                (_, e) => (e, true),
            },
            (m, _) => (m, false),
        };
        let got = short(value);
        if let Some(m) = min {
            if min_excl && x <= m {
                self.fail(format!("expected a number > {}, got {got}", num(m)));
            } else if !min_excl && x < m {
                self.fail(format!("expected a number >= {}, got {got}", num(m)));
            }
        }
        if let Some(m) = max {
            if max_excl && x >= m {
                self.fail(format!("expected a number < {}, got {got}", num(m)));
            } else if !max_excl && x > m {
                self.fail(format!("expected a number <= {}, got {got}", num(m)));
            }
        }
        if let Some(m) = bound("multipleOf")
            && m > 0.0
        {
            let q = x / m;
            if q.is_finite() && (q - q.round()).abs() > 1e-9 * q.abs().max(1.0) {
                self.fail(format!("expected a multiple of {}, got {got}", num(m)));
            }
        }
    }

    fn combinators(&mut self, s: &'s Map<String, Value>, value: &'v Value, depth: usize) {
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.check(sub, value, depth + 1);
            }
        }
        for (key, exactly_one) in [("anyOf", false), ("oneOf", true)] {
            let Some(branches) = s.get(key).and_then(Value::as_array) else {
                continue;
            };
            if branches.is_empty() {
                continue;
            }
            let results: Vec<Vec<Violation>> = branches
                .iter()
                .map(|b| self.branch(b, value, depth + 1))
                .collect();
            let passing = results.iter().filter(|r| r.is_empty()).count();
            if exactly_one && passing > 1 {
                self.fail(format!(
                    "matches {passing} of the oneOf alternatives, expected exactly one"
                ));
            }
            if passing > 0 {
                continue;
            }
            // Only types differ (`anyOf: [{type: string}, {type: null}]`): one merged line.
            let type_only = branches.iter().zip(&results).all(|(b, r)| {
                r.len() == 1 && b.get("type").is_some() && !type_matches(&b["type"], value)
            });
            if type_only {
                let names: Vec<String> = branches.iter().map(|b| type_names(&b["type"])).collect();
                self.fail(format!(
                    "expected {}, got {}",
                    names.join(" or "),
                    describe(value)
                ));
                continue;
            }
            // Else the alternative that came closest says what is wrong.
            let best = results
                .into_iter()
                .min_by_key(Vec::len)
                .expect("at least one branch");
            for e in best {
                if self.errors.len() < MAX_ERRORS {
                    self.errors.push(e);
                }
            }
        }
        if let Some(not) = s.get("not")
            && self.matches(not, value, depth + 1)
        {
            self.fail(format!(
                "{} matches the schema under `not`, which is not allowed",
                short(value)
            ));
        }
        if let Some(cond) = s.get("if") {
            let then = if self.matches(cond, value, depth + 1) {
                s.get("then")
            } else {
                s.get("else")
            };
            if let Some(sub) = then {
                self.check(sub, value, depth + 1);
            }
        }
    }
}

fn push_seg(pointer: &mut String, path: &mut String, seg: &Seg<'_>) {
    match seg {
        Seg::Key(k) => {
            pointer.push('/');
            pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
            let plain = !k.is_empty()
                && k.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '$');
            if plain && path.is_empty() {
                path.push_str(k);
            } else if plain {
                let _ = write!(path, ".{k}");
            } else {
                let _ = write!(path, "[{}]", Value::from(*k));
            }
        }
        Seg::Index(i) => {
            let _ = write!(pointer, "/{i}");
            let _ = write!(path, "[{i}]");
        }
    }
}

fn type_matches(t: &Value, value: &Value) -> bool {
    match t {
        Value::String(name) => is_type(name, value),
        Value::Array(names) => names
            .iter()
            .filter_map(Value::as_str)
            .any(|n| is_type(n, value)),
        _ => true,
    }
}

fn is_type(name: &str, value: &Value) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => match value {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        // An unknown type name is not ours to judge.
        _ => true,
    }
}

fn type_names(t: &Value) -> String {
    match t {
        Value::String(s) => s.clone(),
        Value::Array(names) => {
            let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
            names.join(" or ")
        }
        other => other.to_string(),
    }
}

/// `string "abc"`, `integer 5`, `object`, … for "got …" messages.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) if n.is_f64() => format!("number {n}"),
        Value::Number(n) => format!("integer {n}"),
        Value::String(_) => format!("string {}", short(value)),
        Value::Array(a) => format!("array of {} items", a.len()),
        Value::Object(_) => "object".into(),
    }
}

/// A value in JSON, cut to a readable length.
fn short(value: &Value) -> String {
    const MAX: usize = 60;
    let text = value.to_string();
    if text.chars().count() <= MAX {
        return text;
    }
    let cut: String = text.chars().take(MAX - 1).collect();
    format!("{cut}…")
}

fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

/// JSON equality as JSON Schema defines it: numbers by value (`1` equals `1.0`).
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Largest DFA a `pattern` may build (each direction); beyond it the keyword is ignored.
const PATTERN_DFA_BYTES: usize = 1 << 20;
/// Patterns kept compiled; the cache starts over when full.
const PATTERN_CACHE: usize = 512;

type PatternCache = Mutex<HashMap<String, Option<Arc<Regex>>>>;
static PATTERNS: LazyLock<PatternCache> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The compiled `pattern`, or `None` when it cannot be used (then it is not checked).
fn pattern(p: &str) -> Option<Arc<Regex>> {
    if let Some(re) = PATTERNS.lock().expect("pattern cache").get(p) {
        return re.clone();
    }
    let compiled = compile(p).map(Arc::new);
    let mut cache = PATTERNS.lock().expect("pattern cache");
    if cache.len() >= PATTERN_CACHE {
        cache.clear();
    }
    cache.insert(p.to_owned(), compiled.clone());
    compiled
}

fn compile(p: &str) -> Option<Regex> {
    let rewritten = ecma_classes(p)?;
    Regex::builder()
        .syntax(syntax::Config::new().unicode(true).utf8(true))
        .dense(
            dense::Config::new()
                .dfa_size_limit(Some(PATTERN_DFA_BYTES))
                .determinize_size_limit(Some(PATTERN_DFA_BYTES)),
        )
        .build(&rewritten)
        .ok()
}

/// Rewrites ECMA-262's `\d \w \s` (and negations) as explicit classes; `None` for a negated
/// class inside brackets, which has no simple rewrite.
fn ecma_classes(p: &str) -> Option<String> {
    let mut out = String::with_capacity(p.len() + 8);
    let mut in_class = false;
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let body = match e {
                    'd' | 'D' => "0-9",
                    'w' | 'W' => "0-9A-Za-z_",
                    's' | 'S' => "\\t\\n\\x0B\\x0C\\r \\x{A0}\\x{FEFF}\\x{2028}\\x{2029}",
                    _ => {
                        out.push('\\');
                        out.push(e);
                        continue;
                    }
                };
                let negated = e.is_ascii_uppercase();
                match (in_class, negated) {
                    (true, true) => return None,
                    (true, false) => out.push_str(body),
                    (false, true) => {
                        let _ = write!(out, "[^{body}]");
                    }
                    (false, false) => {
                        let _ = write!(out, "[{body}]");
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
