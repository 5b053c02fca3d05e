//! The JSON-RPC / MCP message parser (`gantry_core::Message::from_slice`): every input is
//! either refused with an error or parsed into a message that serializes and parses back to
//! the same bytes.
#![no_main]

use gantry_core::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Message::from_slice(data) else {
        return;
    };
    let bytes = msg.to_vec();
    let again = Message::from_slice(&bytes).expect("a serialized message parses again");
    assert_eq!(again.to_vec(), bytes, "serialization is stable");
});
