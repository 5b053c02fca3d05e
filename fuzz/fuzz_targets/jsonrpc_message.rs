//! The JSON-RPC / MCP message parser (`gantry_core::Message::from_slice`): every input is
//! either refused with an error or parsed into a message that serializes and parses back to
//! the same bytes. A result object read member by member ([`RawObject`]) and written out again
//! is the same value.
#![no_main]

use gantry_core::{Message, RawObject};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Message::from_slice(data) else {
        return;
    };
    let bytes = msg.to_vec();
    let again = Message::from_slice(&bytes).expect("a serialized message parses again");
    assert_eq!(again.to_vec(), bytes, "serialization is stable");
    if let Message::Response(r) = msg
        && let Ok(result) = r.outcome
        && let Some(members) = RawObject::of(&result)
        && let Ok(value) = result.clone().into_value()
    {
        let rebuilt = members.into_payload().into_value();
        assert_eq!(rebuilt.ok(), Some(value), "members read as the JSON reader reads them");
    }
});
