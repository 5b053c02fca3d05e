//! Cursors the gateway mints for merged lists: which list, and where the next page starts.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes a position in the list `kind`.
pub(crate) fn encode(kind: &str, offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("gantry:{kind}:{offset}"))
}

/// Decodes a cursor minted for `kind`; `None` if it is not one.
pub(crate) fn decode(cursor: &str, kind: &str) -> Option<usize> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let rest = text
        .strip_prefix("gantry:")?
        .strip_prefix(kind)?
        .strip_prefix(':')?;
    rest.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_foreign_or_other_list_cursors() {
        let c = encode("tools", 40);
        assert_eq!(decode(&c, "tools"), Some(40));
        assert_eq!(decode(&c, "prompts"), None);
        assert_eq!(decode("garbage!", "tools"), None);
        assert_eq!(
            decode(&URL_SAFE_NO_PAD.encode("gantry:tools:x"), "tools"),
            None
        );
    }
}
