use std::borrow::Cow;

use serde_json::json;
use serde_json::value::RawValue;

use super::*;
use crate::Message;

fn raw(text: &str) -> Payload {
    serde_json::from_str(text).unwrap()
}

#[test]
fn a_response_result_keeps_the_text_it_came_as() {
    let input = br#"{"jsonrpc":"2.0","id":7,"result":{ "b" : 1.50, "a":[1e400] , "s":"\u00e9"}}"#;
    let Message::Response(r) = Message::from_slice(input).unwrap() else {
        panic!("a response");
    };
    let text = r.outcome.as_ref().ok().and_then(Payload::as_text);
    assert_eq!(text, Some(r#"{ "b" : 1.50, "a":[1e400] , "s":"\u00e9"}"#));
    // Written out unchanged, even what a `Value` could not hold.
    let out = String::from_utf8(Message::Response(r).to_vec()).unwrap();
    assert_eq!(
        out,
        r#"{"jsonrpc":"2.0","id":7,"result":{ "b" : 1.50, "a":[1e400] , "s":"\u00e9"}}"#
    );
}

#[test]
fn a_result_that_is_not_json_is_still_refused() {
    for bad in [
        &br#"{"jsonrpc":"2.0","id":1,"result":{"a":}}"#[..],
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\xff\"}",
        br#"{"jsonrpc":"2.0","id":1,"result":[1,]}"#,
    ] {
        let err = Message::from_slice(bad).unwrap_err();
        assert_eq!(err.error.code, crate::protocol::code::PARSE_ERROR, "{err}");
    }
}

#[test]
fn into_value_builds_the_tree_and_says_what_it_cannot_hold() {
    assert_eq!(
        raw(r#"{"a":[1,"x"]}"#).into_value().unwrap(),
        json!({"a":[1,"x"]})
    );
    let err = raw("[1e400]").into_value().unwrap_err();
    assert_eq!(err.code, crate::protocol::code::INTERNAL_ERROR);
    assert!(err.message.contains("cannot be read"), "{err}");
    let mut p = raw(r#"{"a":1}"#);
    p.value_mut().unwrap()["b"] = json!(2);
    assert_eq!(p.as_text(), None, "now a tree");
    assert_eq!(p, Payload::from(json!({"a":1,"b":2})));
}

#[test]
fn top_str_reads_one_member_of_either_form() {
    let text = r#"{"resultType":"input_required","esc":"a\"b","n":3,"nested":{"resultType":"x"}}"#;
    for p in [
        raw(text),
        Payload::from(serde_json::from_str::<Value>(text).unwrap()),
    ] {
        assert_eq!(p.top_str("resultType").as_deref(), Some("input_required"));
        assert_eq!(p.top_str("esc").as_deref(), Some("a\"b"));
        assert_eq!(p.top_str("n"), None, "not a string");
        assert_eq!(p.top_str("missing"), None);
    }
    assert!(matches!(
        raw(r#"{"k":"plain"}"#).top_str("k"),
        Some(Cow::Borrowed("plain"))
    ));
    assert_eq!(raw("[1]").top_str("k"), None);
    assert_eq!(raw(r#""str""#).top_str("k"), None);
}

#[test]
fn raw_object_edits_the_top_level_like_a_map() {
    let text = raw(r#"{"a":1,"dup":"first","b\n":{"x":[1, 2]},"dup":"last","m":{"k":"v"}}"#);
    let mut obj = RawObject::of(&text).unwrap();
    assert!(obj.contains("b\n"));
    assert!(!obj.contains("c"));
    let t = RawValue::from_string("true".into()).unwrap();
    let e = RawValue::from_string("[]".into()).unwrap();
    let mut m = obj.object("m").unwrap();
    assert!(obj.object("a").is_none(), "not an object");
    m.set("quo\"te", &t);
    obj.set("a", &t);
    obj.set("new", &e);
    obj.set_object("m", m);
    let out = obj.into_payload();
    assert_eq!(
        out.as_text().unwrap(),
        r#"{"a":true,"dup":"last","b\n":{"x":[1, 2]},"m":{"k":"v","quo\"te":true},"new":[]}"#
    );
    // The same as editing the parsed map (member order included).
    let mut map = text.into_value().unwrap();
    map["a"] = json!(true);
    map["new"] = json!([]);
    map["m"]["quo\"te"] = json!(true);
    assert_eq!(out.into_value().unwrap().to_string(), map.to_string());
    for not_object in ["[]", "1", r#""{""#, "null"] {
        assert!(RawObject::of(&raw(not_object)).is_none(), "{not_object}");
    }
    assert!(RawObject::of(&Payload::from(json!({}))).is_none(), "a tree");
}

#[test]
fn raw_object_reads_every_kind_of_member_as_the_json_reader_does() {
    let texts = [
        r#"{}"#,
        r#"{ }"#,
        r#"{"a":1}"#,
        "{ \"a\" :\t-1.5e+3 ,\n\"b\":\r\ntrue , \"c\":null,\"d\":false }",
        r#"{"s":"with \"quotes\", {braces} and [brackets]","t":"\\","u":"\u00e9\ud83d\ude00"}"#,
        r#"{"nested":{"a":[1,{"b":"}"},[]],"c":{}},"after":[[["]"]]],"e":""}"#,
        r#"{"k\u0041y":1,"\"":2,"kAy":3}"#,
        r#"{"content":[{"type":"text","text":"hello"}],"isError":false}"#,
    ];
    for text in texts {
        let p = raw(text);
        let rebuilt = RawObject::of(&p).expect(text).into_payload();
        assert_eq!(
            rebuilt.into_value().unwrap(),
            p.into_value().unwrap(),
            "{text}"
        );
    }
}

#[test]
fn messages_are_written_as_serde_json_writes_them() {
    let messages = [
        r#"{"jsonrpc":"2.0","id":"s\"1","method":"m\u00e9","params":{"b":1,"a":[null,true,1.5]}}"#,
        r#"{"jsonrpc":"2.0","method":"n","params":[1,"x"]}"#,
        r#"{"jsonrpc":"2.0","method":"n"}"#,
        r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"bad \"x\"","data":{"k":1}}}"#,
    ];
    for text in messages {
        // The messages are in envelope order, so serde_json writes the parsed value as
        // `write_to` writes the message.
        let msg = Message::from_slice(text.as_bytes()).unwrap();
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            String::from_utf8(msg.to_vec()).unwrap(),
            serde_json::to_string(&value).unwrap()
        );
    }
    let tree = Message::Response(crate::Response::ok(
        crate::Id::Num(1),
        json!({"z":1,"a":"é"}),
    ));
    assert_eq!(
        String::from_utf8(tree.to_vec()).unwrap(),
        r#"{"jsonrpc":"2.0","id":1,"result":{"z":1,"a":"é"}}"#
    );
}
