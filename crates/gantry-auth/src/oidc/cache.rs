//! Tokens whose signature was verified, so that a client presenting the same token on every
//! request costs a SHA-256 and a map lookup instead of base64, JSON and a signature check.
//! DESIGN.md §8 budgets 25 µs of gateway CPU per call; measured in release on the shared
//! 2-core machine (`verification_cost` in `tests.rs`): RS256 35 µs and ES256 73 µs on first
//! use, 2-4 µs per use once remembered (claims checks and the identity included).
//!
//! Only the signature and the identity its claims map to are remembered: time and audience
//! are checked on every use. An entry is used only while its provider still has the key set it
//! was verified with, so keys the provider withdrew stop verifying its tokens at the next key
//! refresh.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ring::digest;
use serde_json::{Map, Value};

use super::jwks::KeySet;
use crate::{AuthError, Identity};

/// Entries kept at most; when full, expired entries are dropped, and if none is, all are.
const CAPACITY: usize = 4096;

/// A token whose signature verified.
pub(crate) struct Token {
    pub(crate) claims: Map<String, Value>,
    /// What its claims map to (the same on every use: it depends on the claims and the
    /// provider's config only), shared by every request that presents the token.
    pub(crate) identity: Result<Arc<Identity>, AuthError>,
}

pub(crate) struct Verified {
    /// Index of the provider that issued it.
    pub(crate) provider: usize,
    pub(crate) keys: Arc<KeySet>,
    pub(crate) token: Arc<Token>,
    exp: u64,
}

#[derive(Default)]
pub(crate) struct VerifiedCache {
    /// Read on every request that presents a JWT, written only when a new token verifies:
    /// concurrent requests look up in parallel.
    entries: RwLock<HashMap<[u8; 32], Verified>>,
}

pub(crate) fn key(token: &str) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, token.as_bytes());
    let mut k = [0; 32];
    k.copy_from_slice(d.as_ref());
    k
}

impl VerifiedCache {
    /// The verified token under `key`, if still valid with `current(provider)` keys.
    pub(crate) fn get(
        &self,
        key: &[u8; 32],
        current: impl Fn(usize) -> Option<Arc<KeySet>>,
    ) -> Option<(usize, Arc<Token>)> {
        let entries = self.entries.read().expect("oidc cache lock");
        let v = entries.get(key)?;
        let keys = current(v.provider)?;
        Arc::ptr_eq(&keys, &v.keys).then(|| (v.provider, v.token.clone()))
    }

    /// Remembers a token verified by `provider` with `keys`, expiring at `exp`.
    pub(crate) fn insert(
        &self,
        key: [u8; 32],
        provider: usize,
        keys: Arc<KeySet>,
        token: Arc<Token>,
        exp: u64,
        now: u64,
    ) {
        let mut entries = self.entries.write().expect("oidc cache lock");
        if entries.len() >= CAPACITY && !entries.contains_key(&key) {
            entries.retain(|_, v| v.exp >= now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(
            key,
            Verified {
                provider,
                keys,
                token,
                exp,
            },
        );
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.read().unwrap().len()
    }
}
