use serde_json::json;

use super::*;

fn parse(v: Value) -> Result<Message, ParseError> {
    Message::from_slice(&serde_json::to_vec(&v).unwrap())
}

#[test]
fn request_notification_and_response_round_trip_unchanged() {
    for v in [
        json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","_meta":{"k":1},"zz":[1]}}),
        json!({"jsonrpc":"2.0","id":"a","method":"ping"}),
        json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":2}}),
        json!({"jsonrpc":"2.0","id":3,"result":{"content":[],"unknown":true}}),
        json!({"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"bad","data":{"x":1}}}),
    ] {
        let msg = parse(v.clone()).unwrap();
        let back: Value = serde_json::from_slice(&msg.to_vec()).unwrap();
        assert_eq!(back, v);
    }
}

#[test]
fn malformed_json_is_a_parse_error() {
    let err = Message::from_slice(b"{\"jsonrpc\": \"2.0\", ").unwrap_err();
    assert_eq!(err.error.code, code::PARSE_ERROR);
    assert!(err.error.message.contains("not valid JSON"));
}

#[test]
fn wrong_shapes_are_invalid_requests_with_the_id_kept() {
    let cases = [
        (json!([]), None, "batches"),
        (json!(5), None, "JSON object"),
        (json!({"id":1,"method":"x"}), Some(Id::Num(1)), "jsonrpc"),
        (
            json!({"jsonrpc":"1.0","id":1,"method":"x"}),
            Some(Id::Num(1)),
            "\"2.0\"",
        ),
        (
            json!({"jsonrpc":"2.0","id":null,"method":"x"}),
            None,
            "string or an integer",
        ),
        (
            json!({"jsonrpc":"2.0","id":1.5,"method":"x"}),
            None,
            "string or an integer",
        ),
        (
            json!({"jsonrpc":"2.0","id":"q","method":3}),
            Some(Id::Str("q".into())),
            "\"method\"",
        ),
        (
            json!({"jsonrpc":"2.0","id":2,"method":"x","params":"s"}),
            Some(Id::Num(2)),
            "\"params\"",
        ),
        (json!({"jsonrpc":"2.0"}), None, "neither"),
        (
            json!({"jsonrpc":"2.0","id":4}),
            Some(Id::Num(4)),
            "exactly one",
        ),
        (
            json!({"jsonrpc":"2.0","id":4,"error":"x"}),
            Some(Id::Num(4)),
            "integer \"code\"",
        ),
    ];
    for (v, id, needle) in cases {
        let err = parse(v.clone()).unwrap_err();
        assert_eq!(err.error.code, code::INVALID_REQUEST, "{v}");
        assert_eq!(err.id, id, "{v}");
        assert!(
            err.error.message.contains(needle),
            "{v}: {}",
            err.error.message
        );
    }
}

#[test]
fn error_without_id_has_null_id() {
    let bytes = error_without_id(&RpcError::parse("nope"));
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        v,
        json!({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"nope"}})
    );
}
