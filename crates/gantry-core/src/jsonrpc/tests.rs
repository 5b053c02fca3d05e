use serde_json::json;

use super::*;
use crate::params::Params;

fn parse(v: Value) -> Result<Message, ParseError> {
    Message::from_slice(&serde_json::to_vec(&v).unwrap())
}

/// The message in an already parsed JSON value, read as the envelope was before
/// `from_slice` read it straight from the bytes.
fn from_value(value: Value) -> Result<Message, ParseError> {
    let body = match value {
        Value::Object(mut obj) => Body::Object(Fields {
            id: obj.remove("id").map(Fields::<Params>::id),
            jsonrpc: obj.remove("jsonrpc").map(Fields::<Params>::jsonrpc),
            method: obj.remove("method").map(Fields::<Params>::method),
            params: obj.remove("params").map(Params::from),
            result: obj.remove("result").map(Payload::from),
            error: obj.remove("error").map(Box::new),
        }),
        Value::Array(_) => Body::Array,
        other => Body::Other(type_name(&other)),
    };
    body.into_message()
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

/// Found by the `jsonrpc_message` fuzz target: a number that is not an exact `i64`/`u64`
/// is read as the nearest `f64` (serde_json's `float_roundtrip`), so a message re-parsed after
/// it passed through the gateway carries the same value; without it the digits changed on
/// every pass (…130495e22, then …130497e22).
#[test]
fn numbers_keep_their_value_through_parse_and_serialize() {
    let input = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1444444888813049615013,"total":0.30000000000000004,"x":1e-320}}"#;
    let once = Message::from_slice(input).unwrap().to_vec();
    let twice = Message::from_slice(&once).unwrap().to_vec();
    assert_eq!(
        String::from_utf8(once.clone()).unwrap(),
        String::from_utf8(twice).unwrap()
    );
    let v: Value = serde_json::from_slice(&once).unwrap();
    assert_eq!(
        v["params"]["progress"].as_f64(),
        Some(1_444_444_888_813_049_615_013.0)
    );
    assert_eq!(v["params"]["total"].as_f64(), Some(0.30000000000000004));
}

/// `from_slice` reads the envelope without building the object; it must answer exactly as
/// reading the whole body into a `Value` first does, errors and their messages included.
#[test]
fn from_slice_answers_as_reading_a_value_first() {
    let deep = format!(
        r#"{{"jsonrpc":"2.0","method":"x","junk":{}1{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let deep_params = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":{{"a":{}1{}}}}}"#,
        "[".repeat(127),
        "]".repeat(127)
    );
    let cases: Vec<&[u8]> = vec![
        br#"{"jsonrpc":"2.0","id":1,"method":"a","params":{"k":[1,2]},"extra":{"z":null}}"#,
        br#"{"jsonrpc":"2.0","id":1,"id":"two","method":"a","method":"b"}"#,
        br#"{"jsonrpc":"2.0","id":null,"id":3,"result":{}}"#,
        br#"{"\u0069d":5,"jsonrpc":"2.0","\u006dethod":"esc"}"#,
        br#"{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1}}"#,
        br#"{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"m","data":[]}}"#,
        br#"{"jsonrpc":"2.0","method":"x","junk":1e999}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":1e999}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":[1,2e400]},"id":[1e400]}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"\ud800"}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":99999999999999999999999999}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":1,"b":{"c":1,"c":2},"a":3}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{ "a" : [1.50, -0, 1E5, "\u0041\/"] }}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a\n":"\u001f\n","b":-0.0,"c":1.5}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1,{"a":2}]}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"x","params":"s"}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":1},"params":{"b":"\u00e9"}}"#,
        deep_params.as_bytes(),
        b"{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"junk\":\"\xff\"}",
        br#"{"jsonrpc":"2.0","method":"x","junk":"\ud800"}"#,
        deep.as_bytes(),
        br#"{"jsonrpc":"2.0","method":"x"} trailing"#,
        br#"{"jsonrpc":"2.0","method":"x",}"#,
        br#"{"jsonrpc":"2.0" "method":"x"}"#,
        br#"{"jsonrpc":"2.0","method":"x""#,
        br#"[{"jsonrpc":"2.0","method":"x"}]"#,
        br#"[1e999]"#,
        br#"[1,"#,
        b"null",
        b"true",
        b"-3",
        b"18446744073709551615",
        b"0.5",
        br#""s""#,
        b"",
        b"  ",
    ];
    for bytes in cases {
        let direct = Message::from_slice(bytes);
        let via_value = serde_json::from_slice::<Value>(bytes)
            .map_err(|e| ParseError {
                error: RpcError::parse(format!("body is not valid JSON: {e}")),
                id: None,
            })
            .and_then(from_value);
        assert_eq!(direct, via_value, "{}", String::from_utf8_lossy(bytes));
        // Written out, params kept as text are the bytes their tree gives.
        if let (Ok(direct), Ok(via_value)) = (direct, via_value) {
            assert_eq!(
                String::from_utf8(direct.to_vec()).unwrap(),
                String::from_utf8(via_value.to_vec()).unwrap()
            );
        }
    }
}
