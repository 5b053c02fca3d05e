//! The client capabilities a server is told about, as a comparable profile.
//!
//! The legacy protocol fixes a client's capabilities for the whole upstream session, and a
//! server may only use what was declared (server-everything, for one, registers its sampling
//! tool only for clients that declared sampling). A gateway that declared one fixed set for
//! every client would either promise capabilities some clients lack or hide ones they have.
//! So each distinct set of routable capabilities a client declares gets its own upstream
//! session (a *lane*, see [`super::group`]); [`ClientCaps`] is that set in canonical form,
//! with a key to tell lanes apart.

use std::sync::{Arc, LazyLock};

use serde_json::{Map, Value};

/// The client capabilities the gateway can honour for a server: those whose requests it can
/// route back to the client that declared them.
pub(crate) const ROUTABLE: [&str; 3] = ["sampling", "elicitation", "roots"];

/// A client's routable capabilities, canonical (keys sorted at every level).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCaps {
    key: Arc<str>,
    value: Value,
}

impl ClientCaps {
    /// The routable part of what a client declared in `capabilities`.
    pub fn from_declared(declared: &Value) -> ClientCaps {
        if !ROUTABLE.iter().any(|k| declared.get(k).is_some()) {
            return ClientCaps::none();
        }
        let mut kept = Map::new();
        for k in ROUTABLE {
            if let Some(v) = declared.get(k).filter(|v| v.is_object()) {
                kept.insert(k.to_owned(), canonical(v));
            }
        }
        let value = Value::Object(kept);
        ClientCaps {
            key: value.to_string().into(),
            value,
        }
    }

    /// No capabilities: what the gateway declares for a server's default lane.
    pub fn none() -> ClientCaps {
        static NONE: LazyLock<ClientCaps> = LazyLock::new(|| ClientCaps {
            key: "{}".into(),
            value: Value::Object(Map::new()),
        });
        NONE.clone()
    }

    /// A key that is equal for equal profiles.
    pub fn key(&self) -> &Arc<str> {
        &self.key
    }

    /// The capabilities object to declare upstream.
    pub fn value(&self) -> &Value {
        &self.value
    }
}

/// `v` with object keys sorted at every level.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_routable_capabilities_are_kept_and_order_does_not_matter() {
        let a = ClientCaps::from_declared(&json!({
            "experimental": {"x": {}},
            "elicitation": {"url": {}, "form": {}},
            "sampling": {},
            "tasks": {},
        }));
        let b = ClientCaps::from_declared(&json!({
            "sampling": {},
            "elicitation": {"form": {}, "url": {}},
        }));
        assert_eq!(a, b);
        assert_eq!(
            a.value(),
            &json!({"sampling": {}, "elicitation": {"form": {}, "url": {}}})
        );
        assert_ne!(a.key(), ClientCaps::none().key());
    }

    #[test]
    fn nothing_declared_is_the_empty_profile() {
        assert_eq!(ClientCaps::from_declared(&json!({})), ClientCaps::none());
        assert_eq!(ClientCaps::none().value(), &json!({}));
        assert_eq!(
            ClientCaps::from_declared(&json!({"roots": true})),
            ClientCaps::none(),
            "a malformed capability is not declared"
        );
    }
}
