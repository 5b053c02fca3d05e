use serde_json::{Value, json};

use super::*;

/// The readable violations of `value` against `schema`.
fn errs(schema: Value, value: Value) -> Vec<String> {
    validate(&schema, &value, "arguments")
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn ok(schema: Value, value: Value) {
    let e = errs(schema, value);
    assert!(e.is_empty(), "{e:?}");
}

#[test]
fn types_name_the_field_what_was_expected_and_what_came() {
    let s = json!({"type": "object", "properties": {"count": {"type": "integer"}}});
    assert_eq!(
        errs(s.clone(), json!({"count": "abc"})),
        ["arguments.count: expected integer, got string \"abc\""]
    );
    ok(s.clone(), json!({"count": 3}));
    ok(s.clone(), json!({"count": 3.0})); // an integer by value
    assert_eq!(
        errs(s.clone(), json!({"count": 2.5})),
        ["arguments.count: expected integer, got number 2.5"]
    );
    assert_eq!(
        errs(s, json!([1])),
        ["arguments: expected object, got array of 1 items"]
    );
    ok(json!({"type": "number"}), json!(7));
    ok(json!({"type": ["string", "null"]}), json!(null));
    assert_eq!(
        errs(json!({"type": ["string", "null"]}), json!(true)),
        ["arguments: expected string or null, got boolean true"]
    );
    // An unknown type name, or a schema that is not an object, judges nothing.
    ok(json!({"type": "decimal"}), json!("x"));
    ok(json!("nonsense"), json!(1));
    ok(json!(true), json!(1));
    assert_eq!(
        errs(json!(false), json!(1)),
        ["arguments: no value is allowed here, got integer 1"]
    );
}

#[test]
fn pointers_and_paths_reach_into_arrays_and_odd_keys() {
    let s = json!({"type": "object", "properties": {
        "rows": {"type": "array", "items": {"type": "object", "properties": {
            "a/b": {"type": "string"}, "x y": {"type": "string"}}}}}});
    let v = validate(
        &s,
        &json!({"rows": [{}, {"a/b": 1, "x y": 2}]}),
        "arguments",
    );
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].pointer, "/rows/1/a~1b");
    assert_eq!(v[0].path, "arguments.rows[1][\"a/b\"]");
    assert_eq!(v[1].pointer, "/rows/1/x y");
    assert_eq!(v[1].path, "arguments.rows[1][\"x y\"]");
    assert_eq!(v[0].message, "expected string, got integer 1");
}

#[test]
fn required_and_additional_properties() {
    let s = json!({"type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"], "additionalProperties": false});
    assert_eq!(
        errs(s.clone(), json!({"a": 1, "c": 3})),
        [
            "arguments.b: required (number), missing",
            "arguments.c: unexpected property (allowed: a, b)"
        ]
    );
    ok(s, json!({"a": 1, "b": 2.5}));
    let typed_extra = json!({"type": "object", "additionalProperties": {"type": "string"}});
    ok(typed_extra.clone(), json!({"k": "v"}));
    assert_eq!(
        errs(typed_extra, json!({"k": 1})),
        ["arguments.k: expected string, got integer 1"]
    );
    assert_eq!(
        errs(
            json!({"properties": {}, "additionalProperties": false}),
            json!({"z": 1})
        ),
        ["arguments.z: unexpected property: this object takes none"]
    );
    let counted = json!({"minProperties": 1, "maxProperties": 2});
    assert_eq!(
        errs(counted.clone(), json!({})),
        ["arguments: expected at least 1 properties, got 0"]
    );
    assert_eq!(
        errs(counted, json!({"a": 1, "b": 2, "c": 3})),
        ["arguments: expected at most 2 properties, got 3"]
    );
}

#[test]
fn pattern_properties_and_property_names() {
    let s = json!({"patternProperties": {"^x-": {"type": "string"}},
                   "additionalProperties": false});
    ok(s.clone(), json!({"x-a": "1"}));
    assert_eq!(
        errs(s.clone(), json!({"x-a": 1, "y": "1"})),
        [
            "arguments.x-a: expected string, got integer 1",
            "arguments.y: unexpected property: this object takes none"
        ]
    );
    // A pattern that cannot be compiled: extra names are not judged at all.
    let lookahead = json!({"patternProperties": {"^(?=a)": {}}, "additionalProperties": false});
    ok(lookahead, json!({"zzz": 1}));
    assert_eq!(
        errs(
            json!({"propertyNames": {"maxLength": 3}}),
            json!({"long": 1})
        ),
        ["arguments.long: invalid property name: expected at most 3 characters, got 4"]
    );
}

#[test]
fn arrays_items_prefix_items_and_counts() {
    let s = json!({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3});
    ok(s.clone(), json!([1, 2]));
    assert_eq!(
        errs(s.clone(), json!([])),
        ["arguments: expected at least 1 items, got 0"]
    );
    assert_eq!(
        errs(s.clone(), json!([1, "2", 3, 4])),
        [
            "arguments: expected at most 3 items, got 4",
            "arguments[1]: expected integer, got string \"2\""
        ]
    );
    let tuple = json!({"prefixItems": [{"type": "string"}, {"type": "number"}], "items": false});
    ok(tuple.clone(), json!(["a", 1]));
    assert_eq!(
        errs(tuple, json!([1, 1, 1])),
        [
            "arguments[0]: expected string, got integer 1",
            "arguments: expected at most 2 items, got 3"
        ]
    );
    let old_tuple = json!({"items": [{"type": "string"}], "additionalItems": {"type": "boolean"}});
    ok(old_tuple.clone(), json!(["a", true, false]));
    assert_eq!(
        errs(old_tuple, json!(["a", 1])),
        ["arguments[1]: expected boolean, got integer 1"]
    );
    assert_eq!(
        errs(json!({"uniqueItems": true}), json!([1, 2, 1.0])),
        ["arguments: expected unique items, but items 0 and 2 are equal"]
    );
    ok(json!({"uniqueItems": true}), json!([{"a": 1}, {"a": 2}]));
}

#[test]
fn enum_and_const_compare_json_values() {
    let s = json!({"enum": ["metric", "imperial", 1]});
    ok(s.clone(), json!("metric"));
    ok(s.clone(), json!(1.0));
    assert_eq!(
        errs(s, json!("kelvin")),
        ["arguments: expected one of \"metric\", \"imperial\", 1, got \"kelvin\""]
    );
    ok(json!({"const": {"a": [1, 2]}}), json!({"a": [1.0, 2]}));
    assert_eq!(
        errs(json!({"const": "x"}), json!("y")),
        ["arguments: expected \"x\", got \"y\""]
    );
}

#[test]
fn number_bounds_in_every_draft() {
    let s = json!({"minimum": 1, "maximum": 10});
    ok(s.clone(), json!(1));
    ok(s.clone(), json!(10));
    assert_eq!(
        errs(s.clone(), json!(0)),
        ["arguments: expected a number >= 1, got 0"]
    );
    assert_eq!(
        errs(s, json!(10.5)),
        ["arguments: expected a number <= 10, got 10.5"]
    );
    let excl = json!({"exclusiveMinimum": 0, "exclusiveMaximum": 1});
    ok(excl.clone(), json!(0.5));
    assert_eq!(
        errs(excl.clone(), json!(0)),
        ["arguments: expected a number > 0, got 0"]
    );
    assert_eq!(
        errs(excl, json!(1)),
        ["arguments: expected a number < 1, got 1"]
    );
    // Draft 4: boolean exclusive flags.
    let d4 =
        json!({"minimum": 0, "exclusiveMinimum": true, "maximum": 5, "exclusiveMaximum": false});
    assert_eq!(
        errs(d4.clone(), json!(0)),
        ["arguments: expected a number > 0, got 0"]
    );
    ok(d4, json!(5));
    ok(json!({"multipleOf": 0.1}), json!(0.3));
    assert_eq!(
        errs(json!({"multipleOf": 5}), json!(12)),
        ["arguments: expected a multiple of 5, got 12"]
    );
    // Bounds only judge numbers.
    ok(json!({"minimum": 5}), json!("3"));
}

#[test]
fn string_lengths_count_characters_and_patterns_match() {
    let s = json!({"minLength": 2, "maxLength": 3});
    ok(s.clone(), json!("日本語"));
    assert_eq!(
        errs(s.clone(), json!("a")),
        ["arguments: expected at least 2 characters, got 1"]
    );
    assert_eq!(
        errs(s, json!("abcd")),
        ["arguments: expected at most 3 characters, got 4"]
    );
    let p = json!({"pattern": "^[a-z]+\\d{2}$"});
    ok(p.clone(), json!("abc12"));
    assert_eq!(
        errs(p, json!("abc1")),
        ["arguments: expected a string matching /^[a-z]+\\d{2}$/, got \"abc1\""]
    );
    // Unanchored, as in JSON Schema.
    ok(json!({"pattern": "b"}), json!("abc"));
    ok(
        json!({"pattern": "[\\w.-]+@[\\w.-]+"}),
        json!("me@example.org"),
    );
    assert!(!errs(json!({"pattern": "^\\S+$"}), json!("a b")).is_empty());
    ok(json!({"pattern": "^\\D+$"}), json!("abc"));
    ok(json!({"pattern": "^.+$"}), json!("héllo"));
    // Unsupported syntax is not checked (the server still is).
    ok(json!({"pattern": "^(?!x)"}), json!("xyz"));
    ok(json!({"pattern": "(a)\\1"}), json!("ab"));
    ok(json!({"pattern": "[\\D]"}), json!("1"));
}

#[test]
fn any_of_one_of_all_of_not_and_if() {
    // Pydantic's Optional[int].
    let opt = json!({"anyOf": [{"type": "integer"}, {"type": "null"}]});
    ok(opt.clone(), json!(null));
    ok(opt.clone(), json!(4));
    assert_eq!(
        errs(opt, json!("4")),
        ["arguments: expected integer or null, got string \"4\""]
    );
    // Else the closest alternative explains.
    let shapes = json!({"anyOf": [
        {"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}},
        {"type": "object", "required": ["path", "mode"]}
    ]});
    assert_eq!(
        errs(shapes, json!({"url": 5})),
        ["arguments.url: expected string, got integer 5"]
    );
    let one = json!({"oneOf": [{"type": "number"}, {"type": "integer"}]});
    ok(one.clone(), json!(1.5));
    assert_eq!(
        errs(one, json!(2)),
        ["arguments: matches 2 of the oneOf alternatives, expected exactly one"]
    );
    let all = json!({"allOf": [{"minimum": 0}, {"maximum": 1}]});
    assert_eq!(
        errs(all, json!(2)),
        ["arguments: expected a number <= 1, got 2"]
    );
    assert_eq!(
        errs(json!({"not": {"type": "string"}}), json!("s")),
        ["arguments: \"s\" matches the schema under `not`, which is not allowed"]
    );
    let cond = json!({"if": {"properties": {"kind": {"const": "file"}}},
                      "then": {"required": ["path"]}, "else": {"required": ["url"]}});
    assert_eq!(
        errs(cond.clone(), json!({"kind": "file"})),
        ["arguments.path: required, missing"]
    );
    assert_eq!(
        errs(cond, json!({"kind": "web"})),
        ["arguments.url: required, missing"]
    );
}

#[test]
fn local_refs_resolve_and_recursion_is_bounded() {
    let s = json!({
        "type": "object",
        "properties": {"where": {"$ref": "#/$defs/Place"}, "old": {"$ref": "#/definitions/N"}},
        "$defs": {"Place": {"type": "object", "required": ["city"],
                            "properties": {"city": {"type": "string"}}}},
        "definitions": {"N": {"type": "integer"}}
    });
    ok(s.clone(), json!({"where": {"city": "Oslo"}, "old": 1}));
    assert_eq!(
        errs(s, json!({"where": {}, "old": "1"})),
        [
            "arguments.where.city: required (string), missing",
            "arguments.old: expected integer, got string \"1\""
        ]
    );
    // A tree through `#`.
    let tree = json!({"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#"}}}});
    assert_eq!(
        errs(tree, json!({"kids": [{"kids": [{"kids": 1}]}]})),
        ["arguments.kids[0].kids[0].kids: expected array, got integer 1"]
    );
    // A ref to itself terminates; an unresolvable or remote ref is ignored.
    ok(json!({"$ref": "#"}), json!(1));
    ok(json!({"$ref": "#/$defs/missing"}), json!(1));
    ok(json!({"$ref": "https://example.org/s.json"}), json!(1));
    ok(
        json!({"$ref": "#/$defs/a%20b", "$defs": {"a b": {"type": "integer"}}}),
        json!(1),
    );
}

#[test]
fn unknown_keywords_are_ignored_and_errors_are_capped() {
    ok(
        json!({"type": "string", "format": "email", "contains": {}, "x-custom": 1}),
        json!("not an email"),
    );
    let many: serde_json::Map<String, Value> = (0..50)
        .map(|i| (format!("p{i}"), json!({"type": "string"})))
        .collect();
    let s = json!({"properties": many});
    let v: serde_json::Map<String, Value> = (0..50).map(|i| (format!("p{i}"), json!(i))).collect();
    assert_eq!(
        validate(&s, &Value::Object(v), "arguments").len(),
        MAX_ERRORS
    );
}

#[test]
fn a_real_pydantic_schema() {
    // What PyPI `mcp` generates for `def f(city: str, days: int = 3, units: Literal[...])`.
    let s = json!({
        "type": "object",
        "title": "fArguments",
        "properties": {
            "city": {"title": "City", "type": "string"},
            "days": {"default": 3, "title": "Days", "type": "integer", "minimum": 1},
            "units": {"enum": ["c", "f"], "title": "Units", "type": "string"},
            "tags": {"anyOf": [{"items": {"type": "string"}, "type": "array"}, {"type": "null"}],
                     "default": null}
        },
        "required": ["city", "units"]
    });
    ok(
        s.clone(),
        json!({"city": "Oslo", "units": "c", "tags": ["a"]}),
    );
    assert_eq!(
        errs(s, json!({"days": 0, "units": "k", "tags": [1]})),
        [
            "arguments.city: required (string), missing",
            "arguments.days: expected a number >= 1, got 0",
            "arguments.units: expected one of \"c\", \"f\", got \"k\"",
            "arguments.tags[0]: expected string, got integer 1"
        ]
    );
}

#[test]
fn a_schema_that_would_take_too_many_steps_judges_nothing() {
    assert_eq!(
        errs(json!({"maximum": 0}), json!(1)),
        ["arguments: expected a number <= 0, got 1"]
    );
    // Each level doubles through the two references back to the root: 2^32 checks within
    // the depth bound. The step budget stops it, and a cut-short verdict is not given.
    let doubling = json!({"maximum": 0, "anyOf": [{"$ref": "#"}, {"$ref": "#"}]});
    assert_eq!(errs(doubling, json!(1)), Vec::<String>::new());
    // A large value within the budget is still judged.
    let many = json!({"type": "array", "items": {"type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}});
    let mut items: Vec<Value> = (0..5000).map(|i| json!({"a": i, "b": null})).collect();
    items.push(json!({"a": "x"}));
    assert_eq!(
        errs(many, Value::Array(items)),
        ["arguments[5000].a: expected integer, got string \"x\""]
    );
}
