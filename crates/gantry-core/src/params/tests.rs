use serde_json::json;

use super::*;
use crate::Message;

/// Params as `Message::from_slice` reads them from a request carrying `text`.
fn read(text: &str) -> Params {
    let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{text}}}"#);
    match Message::from_slice(body.as_bytes()).unwrap() {
        Message::Request(r) => r.params.unwrap(),
        other => panic!("a request: {other:?}"),
    }
}

fn text(p: &Params) -> String {
    let mut out = Vec::new();
    p.write_to(&mut out);
    String::from_utf8(out).unwrap()
}

/// Params read from `input`, and the same value as a tree, both as serde_json reads it.
fn both(input: &str) -> (Params, Params) {
    let kept = read(input);
    let tree = Params::from(serde_json::from_str::<Value>(input).unwrap());
    assert!(tree.as_text().is_none());
    (kept, tree)
}

#[test]
fn canonical_objects_are_kept_as_text_and_others_become_trees() {
    for kept in [
        r#"{}"#,
        r#"{"a":1,"b":-2,"c":1.5,"d":-0.0,"e":1e-7,"f":18446744073709551615}"#,
        r#"{"s":"\"\\\n\t\b\f\r\u0000\u001f é/","k\n":null,"t":true,"f":false}"#,
        r#"{"a":{"b":[{"c":[]},{}],"c":{"b":1}},"b":[1,[2,[3]]]}"#,
        r#"{"a":{"x":1},"b":{"x":1}}"#,
    ] {
        let p = read(kept);
        assert_eq!(p.as_text(), Some(kept), "{kept}");
        let tree: Value = serde_json::from_str(kept).unwrap();
        assert_eq!(
            serde_json::to_string(&tree).unwrap(),
            kept,
            "canonical: {kept}"
        );
        assert_eq!(*p.value(), tree);
    }
    for not in [
        r#"{ "a":1}"#,
        r#"{"a":1.50}"#,
        r#"{"a":1E5}"#,
        r#"{"a":1e5}"#,
        r#"{"a":-0}"#,
        r#"{"a":99999999999999999999}"#,
        r#"{"a":"\u0041"}"#,
        r#"{"a":"\/"}"#,
        r#"{"a":"\u001F"}"#,
        r#"{"a":"\u0008"}"#,
        r#"{"a":1,"a":2}"#,
        r#"{"a":{"b":1,"b":2}}"#,
        r#"[1,2]"#,
    ] {
        let p = read(not);
        assert!(p.as_text().is_none(), "{not}");
        let tree: Value = serde_json::from_str(not).unwrap();
        assert_eq!(*p.value(), tree, "{not}");
        assert_eq!(text(&p), serde_json::to_string(&tree).unwrap());
    }
}

#[test]
fn duplicates_are_read_as_serde_json_reads_them() {
    let p = read(r#"{"a":1,"b":2,"a":3}"#);
    assert_eq!(text(&p), r#"{"a":3,"b":2}"#);
    assert_eq!(p.get("a").as_deref(), Some(&json!(3)));
    let p = read(r#"{"_meta":{"k":1,"k":"v"},"name":"x"}"#);
    assert_eq!(p.meta().unwrap().get_str("k").as_deref(), Some("v"));
    assert_eq!(text(&p), r#"{"_meta":{"k":"v"},"name":"x"}"#);
}

#[test]
fn members_of_every_kind_are_read_alone() {
    let input = r#"{"s":"x\"y","n":-12,"f":0.25,"t":true,"z":null,"a":[1,{"b":2}],"o":{"p":[]},"e":"","k\"q":"esc","_meta":{"progressToken":7,"l":"info","o":{"x":{}}}}"#;
    let (p, tree) = both(input);
    assert!(p.as_text().is_some());
    for key in [
        "s", "n", "f", "t", "z", "a", "o", "e", "k\"q", "_meta", "absent",
    ] {
        assert_eq!(p.get(key), tree.get(key), "{key}");
        assert_eq!(p.get_str(key), tree.get_str(key), "{key}");
        assert_eq!(p.contains(key), tree.contains(key), "{key}");
    }
    assert_eq!(p.get_str("s").as_deref(), Some("x\"y"));
    assert_eq!(p.get_str("k\"q").as_deref(), Some("esc"));
    assert_eq!(p.get_str("n"), None);
    let (m, mt) = (p.meta().unwrap(), tree.meta().unwrap());
    for key in ["progressToken", "l", "o", "absent"] {
        assert_eq!(m.get(key), mt.get(key), "{key}");
        assert_eq!(m.get_str(key), mt.get_str(key), "{key}");
        assert_eq!(m.text(key), mt.text(key), "{key}");
        assert_eq!(m.contains(key), mt.contains(key), "{key}");
    }
    assert_eq!(m.get_str("l").as_deref(), Some("info"));
    // `_meta` that is not an object is no `_meta`.
    for input in [r#"{"_meta":[1]}"#, r#"{"_meta":null}"#, r#"{"a":1}"#] {
        let (p, tree) = both(input);
        assert!(p.meta().is_none() && tree.meta().is_none(), "{input}");
    }
}

/// The same edits on params kept as text and on their tree write the same bytes.
#[test]
fn edits_write_what_the_tree_writes() {
    let envelope = [
        ("io/v", json!("2026")),
        ("io/caps", json!({"a": {}, "b": [1]})),
        ("io/info", json!({"name": "gantry"})),
    ];
    let inputs = [
        r#"{}"#,
        r#"{"name":"echo","arguments":{"m":"hi"}}"#,
        r#"{"name":"echo","_meta":{"progressToken":"t1","io/v":"2026","io/caps":{"b":[1],"a":{}}},"z":1}"#,
        r#"{"_meta":{"io/info":{"name":"other"},"x":1,"io/v":"old","y":2,"io/caps":1},"name":"n"}"#,
        r#"{"_meta":{"a\"b":1,"io/v":"2026"},"name":"n"}"#,
        r#"{"_meta":[1],"name":"n"}"#,
        r#"{"_meta":{},"name":"n"}"#,
    ];
    type Edit = fn(&mut Params, &[(&str, Value)]);
    let edits: [(&str, Edit); 6] = [
        ("rename", |p, _| p.set("name", &json!("server_name"))),
        ("add", |p, _| p.set("new\nkey", &json!({"k": [1.5]}))),
        ("set _meta", |p, _| p.set("_meta", &json!({"io/v": 1}))),
        ("envelope", |p, env| {
            p.meta_set(env.iter().map(|(k, v)| (*k, v)));
        }),
        ("strip", |p, _| {
            p.meta_remove(&["io/v", "io/caps", "io/info"])
        }),
        ("progress", |p, _| {
            p.meta_replace("progressToken", &json!(42));
        }),
    ];
    for input in inputs {
        for (label, edit) in &edits {
            for then in [None, Some(&edits[3]), Some(&edits[5])] {
                let (mut kept, mut tree) = both(input);
                assert!(kept.as_text().is_some(), "{input}");
                edit(&mut kept, &envelope);
                edit(&mut tree, &envelope);
                if let Some((_, then)) = then {
                    then(&mut kept, &envelope);
                    then(&mut tree, &envelope);
                }
                assert_eq!(text(&kept), text(&tree), "{label} on {input}");
                assert!(kept.as_text().is_some(), "still text: {label} on {input}");
                assert_eq!(kept, tree);
                // The edited text reads back the same, member by member.
                let again = read(&text(&kept));
                assert_eq!(again.as_text(), kept.as_text());
                for key in ["name", "_meta", "z", "new\nkey"] {
                    assert_eq!(kept.get(key), tree.get(key), "{label} on {input}: {key}");
                }
                if let (Some(m), Some(mt)) = (kept.meta(), tree.meta()) {
                    for key in ["io/v", "io/caps", "progressToken", "x", "a\"b"] {
                        assert_eq!(m.get(key), mt.get(key), "{label} on {input}: {key}");
                    }
                }
            }
        }
    }
}

/// A `_meta` set whole is read and edited as a tree's, whatever its size.
#[test]
fn a_large_meta_set_whole_stays_an_object() {
    let large: Map<String, Value> = (0..70).map(|i| (format!("k{i}"), json!(i))).collect();
    let (mut kept, mut tree) = both(r#"{"a":1}"#);
    for p in [&mut kept, &mut tree] {
        p.set("_meta", &Value::Object(large.clone()));
        p.meta_set([("k0", &json!("x")), ("new", &json!(null))]);
        p.meta_remove(&["k1"]);
    }
    assert!(kept.as_text().is_some());
    assert_eq!(
        kept.meta().unwrap().get("k69"),
        tree.meta().unwrap().get("k69")
    );
    assert_eq!(text(&kept), text(&tree));
}

#[test]
fn edits_keep_places_as_a_map_does() {
    let mut p = read(r#"{"name":"a","arguments":{},"_meta":{"progressToken":1,"io/v":"x","k":2}}"#);
    p.set("name", &json!("longer_name"));
    assert_eq!(
        p.meta_replace("progressToken", &json!(9)),
        Some(json!(1)),
        "the client's token"
    );
    assert_eq!(p.meta_replace("absent", &json!(9)), None);
    p.meta_remove(&["io/v"]);
    p.set("requestState", &json!("s"));
    assert_eq!(
        text(&p),
        r#"{"name":"longer_name","arguments":{},"_meta":{"progressToken":9,"k":2},"requestState":"s"}"#
    );
    // An envelope member equal to the client's, written in another order, stays as sent.
    let mut p = read(r#"{"_meta":{"c":{"b":1,"a":2}}}"#);
    p.meta_set([("c", &json!({"a": 2, "b": 1})), ("d", &json!(null))]);
    assert_eq!(text(&p), r#"{"_meta":{"c":{"b":1,"a":2},"d":null}}"#);
}

#[test]
fn trees_are_built_only_when_asked_and_mutation_makes_a_tree() {
    let mut p = read(r#"{"name":"a","arguments":{"x":[1,2]}}"#);
    assert_eq!(p.value()["arguments"]["x"][1], json!(2));
    assert!(p.as_text().is_some());
    p.value_mut()["arguments"]["x"] = json!("changed");
    assert!(p.as_text().is_none());
    assert_eq!(text(&p), r#"{"name":"a","arguments":{"x":"changed"}}"#);
    let p = read(r#"{"a":1}"#);
    assert_eq!(p.into_value(), json!({"a": 1}));
    assert_eq!(Params::empty_object().as_text(), Some("{}"));
}

#[test]
fn text_that_is_not_a_value_gantry_holds_is_refused() {
    assert!(Params::from_json(r#"{"a":1e400}"#).is_none());
    // Text that is not JSON at all, though its bytes scan like a canonical object's.
    for bad in [
        r#"{"a":1}{"b":2}"#,
        r#"{"a":tru}"#,
        r#"{"a":1"#,
        r#"{"a":1]"#,
        r#"{"a":1}x"#,
    ] {
        assert!(Params::from_json(bad).is_none(), "{bad}");
    }
    assert!(Params::from_json(r#"{"a":"\ud800"}"#).is_none());
    assert!(Params::from_json(r#"{"a":1}"#).unwrap().as_text().is_some());
    assert!(
        Params::from_json(r#"{ "a":1}"#)
            .unwrap()
            .as_text()
            .is_none()
    );
}
