//! The JSON-RPC / MCP message parser (`gantry_core::Message::from_slice`): every input is
//! either refused with an error or parsed into a message that serializes and parses back to
//! the same bytes. A result object read member by member ([`RawObject`]) and written out again
//! is the same value. A request's params kept as text ([`Params`]) are written out as their
//! tree is, before and after the gateway's edits.
#![no_main]

use gantry_core::{Message, Params, RawObject};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fn written(p: &Params) -> Vec<u8> {
    let mut out = Vec::new();
    p.write_to(&mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Message::from_slice(data) else {
        return;
    };
    let bytes = msg.to_vec();
    let again = Message::from_slice(&bytes).expect("a serialized message parses again");
    assert_eq!(again.to_vec(), bytes, "serialization is stable");
    if let Message::Request(r) = &msg
        && let Some(params) = &r.params
    {
        let tree = params.value().into_owned();
        assert_eq!(
            written(params),
            serde_json::to_vec(&tree).unwrap(),
            "params are written as their tree"
        );
        // The edits of the hot path, on the params as read and on their tree.
        let mut kept = params.clone();
        let mut built = Params::from(tree);
        let progress = json!(7);
        let envelope = [("io/v", json!("2026")), ("k", json!({"a": [1, -0.0]}))];
        for p in [&mut kept, &mut built] {
            p.set("name", &json!("renamed"));
            p.meta_set(envelope.iter().map(|(k, v)| (*k, v)));
            p.meta_replace("progressToken", &progress);
            p.meta_remove(&["io/v", "x"]);
        }
        assert_eq!(
            written(&kept),
            written(&built),
            "edits write what the tree writes"
        );
    }
    if let Message::Response(r) = msg
        && let Ok(result) = r.outcome
        && let Some(members) = RawObject::of(&result)
        && let Ok(value) = result.clone().into_value()
    {
        let rebuilt = members.into_payload().into_value();
        assert_eq!(
            rebuilt.ok(),
            Some(value),
            "members read as the JSON reader reads them"
        );
    }
});
