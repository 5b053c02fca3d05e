//! Multi-round-trip requests (2026-07-28) across eras, and the seal on `requestState`.
//!
//! A 2026-07-28 client cannot be sent a request in the middle of a call; a server that needs
//! input answers `resultType: "input_required"` with the questions and an opaque
//! `requestState`, and the client calls again with the answers. When such a client calls a
//! legacy server that asks (elicitation, sampling, roots), the gateway *parks* the call — the
//! upstream request keeps running, its question waits — and answers the client with
//! `input_required`. The retry carries the answers and the state; the state names the parked
//! call, the answer goes to the waiting server, and the call continues.
//!
//! Every `requestState` the gateway hands out is sealed: payload plus an HMAC-SHA256 under a
//! key only the gateway holds, so a forged or altered state is refused before anything is
//! routed on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use gantry_core::{Message, Request};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::session::Session;

/// How long a parked call waits for the client's retry.
pub(crate) const PARK_TIMEOUT: Duration = Duration::from_secs(600);

/// Prefix of every sealed state, so a state is recognisably the gateway's.
const SEAL_PREFIX: &str = "gantry1.";

/// Seals and opens `requestState` values.
pub(crate) struct Sealer {
    key: [u8; 32],
}

impl Sealer {
    /// A sealer with `key`, or a fresh random one: a state sealed by one gateway opens on
    /// another only if both have the same key (derived from the server secret, so restarts and
    /// replicas sharing `GANTRY_SECRET` agree). Parked calls still live in their process only.
    pub(crate) fn new(key: Option<[u8; 32]>) -> Sealer {
        match key {
            Some(key) => Sealer { key },
            None => Sealer::random(),
        }
    }

    /// A sealer with a fresh random key.
    pub(crate) fn random() -> Sealer {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the OS provides randomness");
        Sealer { key }
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(payload);
        mac
    }

    /// `payload`, sealed.
    pub(crate) fn seal(&self, payload: &str) -> String {
        let tag = self.mac(payload.as_bytes()).finalize().into_bytes();
        format!("{SEAL_PREFIX}{}.{}", B64.encode(payload), B64.encode(tag))
    }

    /// The payload of a state this gateway sealed, or `None` if it was altered or forged.
    pub(crate) fn open(&self, sealed: &str) -> Option<String> {
        let (payload, tag) = sealed.strip_prefix(SEAL_PREFIX)?.split_once('.')?;
        let payload = B64.decode(payload).ok()?;
        let tag = B64.decode(tag).ok()?;
        self.mac(&payload).verify_slice(&tag).ok()?;
        String::from_utf8(payload).ok()
    }
}

/// A call waiting for its client's answer to a server's question.
pub(crate) struct Parked {
    /// The call's context; its task still runs the upstream request.
    pub(crate) session: Arc<Session>,
    /// Where the call's remaining messages (more questions, progress, the result) arrive.
    pub(crate) rx: mpsc::Receiver<Message>,
    /// The question, as put to the client (its id is the session's request id).
    pub(crate) question: Request,
    parked_at: tokio::time::Instant,
}

impl Parked {
    pub(crate) fn new(
        session: Arc<Session>,
        rx: mpsc::Receiver<Message>,
        question: Request,
    ) -> Parked {
        Parked {
            session,
            rx,
            question,
            parked_at: tokio::time::Instant::now(),
        }
    }
}

/// The parked calls, by token.
#[derive(Default)]
pub(crate) struct Parking {
    calls: Mutex<HashMap<String, Parked>>,
}

impl Parking {
    /// Parks a call; returns its token.
    pub(crate) fn park(&self, call: Parked) -> String {
        let token = crate::session::random_id();
        self.calls
            .lock()
            .expect("parking lock")
            .insert(token.clone(), call);
        token
    }

    /// Takes the call parked under `token` if `owner` accepts it; otherwise it stays parked.
    pub(crate) fn take_if(&self, token: &str, owner: impl Fn(&Parked) -> bool) -> Option<Parked> {
        let mut calls = self.calls.lock().expect("parking lock");
        if !calls.get(token).is_some_and(owner) {
            return None;
        }
        calls.remove(token)
    }

    /// Cancels calls whose client did not come back within [`PARK_TIMEOUT`].
    pub(crate) fn expire(&self) -> usize {
        let expired: Vec<Parked> = {
            let mut calls = self.calls.lock().expect("parking lock");
            let keys: Vec<String> = calls
                .iter()
                .filter(|(_, c)| c.parked_at.elapsed() >= PARK_TIMEOUT)
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter().filter_map(|k| calls.remove(k)).collect()
        };
        for c in &expired {
            c.session.close();
        }
        expired.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_opens_wherever_the_key_is_the_same() {
        // A restart or another replica with the same server secret derives the same key.
        let sealed = Sealer::new(Some([7; 32])).seal("upstream:{}");
        assert_eq!(
            Sealer::new(Some([7; 32])).open(&sealed).as_deref(),
            Some("upstream:{}")
        );
        assert_eq!(Sealer::new(Some([8; 32])).open(&sealed), None);
        assert_eq!(Sealer::new(None).open(&sealed), None);
    }

    #[test]
    fn a_sealed_state_opens_and_any_change_is_refused() {
        let s = Sealer::random();
        let sealed = s.seal("parked:abc");
        assert_eq!(s.open(&sealed).as_deref(), Some("parked:abc"));
        let mut altered = sealed.clone().into_bytes();
        let i = SEAL_PREFIX.len() + 2;
        altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
        assert_eq!(s.open(&String::from_utf8(altered).unwrap()), None);
        assert_eq!(s.open("parked:abc"), None, "an unsealed state");
        let forged = format!(
            "{SEAL_PREFIX}{}.{}",
            B64.encode("parked:abc"),
            B64.encode([0u8; 32])
        );
        assert_eq!(s.open(&forged), None);
        assert_eq!(
            Sealer::random().open(&sealed),
            None,
            "another gateway's key"
        );
    }
}
