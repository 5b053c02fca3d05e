//! Gantry API keys: their format, how they are hashed, and the [`KeyAuthenticator`] that
//! checks them against an in-memory table.
//!
//! A key is `gantry_<id>_<secret>`: the id is 12 characters of lowercase base32 (60 random
//! bits; not secret, shown in listings and logs), the secret 52 characters of lowercase base32
//! (260 random bits). Only `HMAC-SHA256(server secret, "gantry-key-v1" 0 id 0 secret)` is
//! stored; the server secret lives in `<data_dir>/secret.key` (created 0600 on first use) or in
//! `GANTRY_SECRET`, never in the database, so a copy of the database cannot be used to check
//! guesses. Hashes are compared in constant time (`hmac`'s `verify_slice`).
//!
//! The table is built by whoever owns the database (`gantry-admin` polls it for changes) and
//! swapped in with [`KeyAuthenticator::replace`]; checking a key never touches the database.
//! When a key is used, the time is stored in its entry (an atomic) and collected in batches by
//! [`KeyAuthenticator::take_uses`].

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{AuthContext, AuthError, AuthFuture, Authenticator, Identity, Planes, Source};

/// What every key starts with.
pub const PREFIX: &str = "gantry_";
/// Characters in a key's id.
pub const ID_LEN: usize = 12;
/// Characters in a key's secret (52 × 5 = 260 random bits).
pub const SECRET_LEN: usize = 52;
/// The server secret's file name in the data directory.
pub const SECRET_FILE: &str = "secret.key";
/// The environment variable that, when set, holds the server secret instead of the file.
pub const SECRET_ENV: &str = "GANTRY_SECRET";
/// The shortest server secret accepted (bytes).
pub const MIN_SECRET: usize = 32;

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// `gantry_<id>`: how a key is named in messages and logs (never with its secret).
pub fn display_id(id: &str) -> String {
    format!("{PREFIX}{id}")
}

/// The public id in `s`, which may be a bare id, `gantry_<id>`, or a whole key (whose secret is
/// ignored).
pub fn id_of(s: &str) -> &str {
    let s = s.trim();
    let s = s.strip_prefix(PREFIX).unwrap_or(s);
    s.split_once('_').map_or(s, |(id, _)| id)
}

/// The parts of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    /// Public id.
    pub id: &'a str,
    /// Secret.
    pub secret: &'a str,
}

fn base32(s: &str) -> bool {
    s.bytes().all(|b| ALPHABET.contains(&b))
}

/// `None` if `token` is not a Gantry key (no `gantry_` prefix); otherwise its parts, or what is
/// wrong with it (without repeating the secret).
pub fn parse(token: &str) -> Option<Result<ParsedKey<'_>, String>> {
    let rest = token.strip_prefix(PREFIX)?;
    let Some((id, secret)) = rest.split_once('_') else {
        return Some(Err(
            "malformed API key: expected gantry_<id>_<secret>".into()
        ));
    };
    if id.len() != ID_LEN || !base32(id) {
        return Some(Err(format!(
            "malformed API key: the id after gantry_ must be {ID_LEN} characters of a-z and 2-7"
        )));
    }
    if secret.len() != SECRET_LEN || !base32(secret) {
        return Some(Err(format!(
            "malformed API key {}: the secret must be {SECRET_LEN} characters of a-z and 2-7 (was the key cut short?)",
            display_id(id)
        )));
    }
    Some(Ok(ParsedKey { id, secret }))
}

fn random_chars(n: usize) -> std::io::Result<String> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| std::io::Error::other(format!("no randomness: {e}")))?;
    Ok(b.iter()
        .map(|x| ALPHABET[(x & 31) as usize] as char)
        .collect())
}

/// The key that hashes API keys. Never stored in the database.
///
/// Held as an HMAC-SHA256 already keyed with it: each key check clones that state instead of
/// deriving the inner and outer pads from the secret again.
#[derive(Clone)]
pub struct ServerSecret(Hmac<Sha256>);

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(..)")
    }
}

/// Where the server secret came from (for the log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretOrigin {
    /// The `GANTRY_SECRET` environment variable.
    Env,
    /// An existing file.
    File(PathBuf),
    /// A file created now.
    Created(PathBuf),
}

impl ServerSecret {
    /// A secret from bytes (at least [`MIN_SECRET`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<ServerSecret, String> {
        if bytes.len() < MIN_SECRET {
            return Err(format!(
                "the server secret is {} bytes; at least {MIN_SECRET} are needed",
                bytes.len()
            ));
        }
        Ok(ServerSecret(
            Hmac::<Sha256>::new_from_slice(bytes).expect("HMAC takes any key length"),
        ))
    }

    /// `GANTRY_SECRET` if set, else `<data_dir>/secret.key`, created (mode 0600, 32 random
    /// bytes as hex) if missing. The data directory must exist.
    pub fn load(data_dir: &Path) -> Result<(ServerSecret, SecretOrigin), String> {
        if let Some(v) = std::env::var_os(SECRET_ENV) {
            let v = v
                .into_string()
                .map_err(|_| format!("{SECRET_ENV} is not valid text"))?;
            let s =
                ServerSecret::from_bytes(v.as_bytes()).map_err(|e| format!("{SECRET_ENV}: {e}"))?;
            return Ok((s, SecretOrigin::Env));
        }
        let path = data_dir.join(SECRET_FILE);
        let fail = |e: &dyn std::fmt::Display| format!("server secret {}: {e}", path.display());
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        match opts.open(&path) {
            Ok(mut f) => {
                let mut b = [0u8; 32];
                getrandom::fill(&mut b).map_err(|e| fail(&e))?;
                let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                f.write_all(format!("{hex}\n").as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| fail(&e))?;
                let s = ServerSecret::from_bytes(hex.as_bytes()).map_err(|e| fail(&e))?;
                Ok((s, SecretOrigin::Created(path)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Another process may be writing it right now: a short file is retried.
                let mut text = String::new();
                for _ in 0..50 {
                    text = std::fs::read_to_string(&path).map_err(|e| fail(&e))?;
                    if text.trim().len() >= MIN_SECRET {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    if let Ok(m) = std::fs::metadata(&path)
                        && m.permissions().mode() & 0o077 != 0
                    {
                        tracing::warn!(
                            file = %path.display(),
                            "the server secret is readable by other users; chmod 600 it"
                        );
                    }
                }
                let s = ServerSecret::from_bytes(text.trim().as_bytes()).map_err(|e| fail(&e))?;
                Ok((s, SecretOrigin::File(path)))
            }
            Err(e) => Err(fail(&e)),
        }
    }

    fn mac(&self, id: &str, secret: &str) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(b"gantry-key-v1\0");
        mac.update(id.as_bytes());
        mac.update(b"\0");
        mac.update(secret.as_bytes());
        mac
    }

    /// A 32-byte key for `purpose`, derived from the server secret (HMAC-SHA256 of a labelled
    /// purpose): the same on every restart and on every replica that shares the secret, and
    /// useless for anything else (it cannot be turned back into the secret or a key hash).
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(b"gantry-derive-v1\0");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The stored hash of key `id` with `secret`.
    pub fn hash(&self, id: &str, secret: &str) -> Vec<u8> {
        self.mac(id, secret).finalize().into_bytes().to_vec()
    }

    /// Whether `secret` is key `id`'s, given its stored hash (constant-time comparison).
    pub fn verify(&self, id: &str, secret: &str, stored: &[u8]) -> bool {
        self.mac(id, secret).verify_slice(stored).is_ok()
    }

    /// A new key: its id, the whole key (to show once) and the hash to store.
    pub fn generate(&self) -> std::io::Result<GeneratedKey> {
        let id = random_chars(ID_LEN)?;
        let secret = random_chars(SECRET_LEN)?;
        let hash = self.hash(&id, &secret);
        Ok(GeneratedKey {
            key: format!("{PREFIX}{id}_{secret}"),
            id,
            hash,
        })
    }
}

/// A freshly generated key.
pub struct GeneratedKey {
    /// Public id.
    pub id: String,
    /// The whole key, `gantry_<id>_<secret>`: show it once, never store or log it.
    pub key: String,
    /// What to store.
    pub hash: Vec<u8>,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// One key as the authenticator knows it.
#[derive(Debug)]
pub struct KeyEntry {
    /// Public id.
    pub id: String,
    /// Stored hash.
    pub hash: Vec<u8>,
    /// Who the key authenticates: built once per table load, shared by every request that
    /// presents the key.
    pub identity: Arc<Identity>,
    /// Expiry (Unix ms).
    pub expires_at: Option<i64>,
    /// Revocation time (Unix ms).
    pub revoked_at: Option<i64>,
    /// The owner is disabled.
    pub user_disabled: bool,
    /// Last use seen here (Unix ms; 0: none).
    used: AtomicI64,
    /// Last use handed to [`KeyAuthenticator::take_uses`].
    taken: AtomicI64,
}

impl KeyEntry {
    /// An entry.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        hash: Vec<u8>,
        subject: String,
        teams: Vec<String>,
        planes: Planes,
        expires_at: Option<i64>,
        revoked_at: Option<i64>,
        user_disabled: bool,
    ) -> KeyEntry {
        let identity = Arc::new(Identity {
            subject,
            teams,
            scopes: Vec::new(),
            planes,
            source: Source::ApiKey { id: id.clone() },
        });
        KeyEntry {
            id,
            hash,
            identity,
            expires_at,
            revoked_at,
            user_disabled,
            used: AtomicI64::new(0),
            taken: AtomicI64::new(0),
        }
    }
}

type Table = HashMap<String, Arc<KeyEntry>>;

/// Checks Gantry API keys against an in-memory table (no database on the hot path).
pub struct KeyAuthenticator {
    secret: ServerSecret,
    table: RwLock<Arc<Table>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl KeyAuthenticator {
    /// An authenticator with an empty table.
    pub fn new(secret: ServerSecret) -> KeyAuthenticator {
        KeyAuthenticator {
            secret,
            table: RwLock::new(Arc::new(Table::new())),
        }
    }

    /// The server secret it hashes with.
    pub fn secret(&self) -> &ServerSecret {
        &self.secret
    }

    /// Swaps in a new table; uses recorded on the old one and not yet taken carry over.
    pub fn replace(&self, entries: Vec<KeyEntry>) {
        let old = self.table.read().expect("key table lock").clone();
        let table: Table = entries
            .into_iter()
            .map(|e| {
                if let Some(prev) = old.get(&e.id) {
                    e.used
                        .store(prev.used.load(Ordering::Relaxed), Ordering::Relaxed);
                    e.taken
                        .store(prev.taken.load(Ordering::Relaxed), Ordering::Relaxed);
                }
                (e.id.clone(), Arc::new(e))
            })
            .collect();
        *self.table.write().expect("key table lock") = Arc::new(table);
    }

    /// How many keys the table holds.
    pub fn len(&self) -> usize {
        self.table.read().expect("key table lock").len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Uses (key id, Unix ms) recorded since the last call, to store in a batch.
    pub fn take_uses(&self) -> Vec<(String, i64)> {
        let table = self.table.read().expect("key table lock").clone();
        let mut out = Vec::new();
        for e in table.values() {
            let used = e.used.load(Ordering::Relaxed);
            if used > e.taken.load(Ordering::Relaxed) {
                e.taken.store(used, Ordering::Relaxed);
                out.push((e.id.clone(), used));
            }
        }
        out
    }

    /// Checks `token` at time `now` (Unix ms): `None` if it is not a Gantry key.
    pub fn check(&self, token: &str, now: i64) -> Option<Result<Arc<Identity>, AuthError>> {
        let parsed = match parse(token)? {
            Ok(p) => p,
            Err(why) => return Some(Err(AuthError::invalid_token(why))),
        };
        // The key is named only in a refusal: an accepted key costs no formatting.
        let refuse = |why: &str| {
            Some(Err(AuthError::invalid_token(format!(
                "the API key {} {why}",
                display_id(parsed.id)
            ))))
        };
        let entry = self
            .table
            .read()
            .expect("key table lock")
            .get(parsed.id)
            .cloned();
        let Some(e) = entry else {
            return refuse(
                "is not known to this gateway (deleted, or created with another data directory)",
            );
        };
        // The secret first: a caller who only knows an id learns nothing about the key.
        if !self.secret.verify(parsed.id, parsed.secret, &e.hash) {
            return refuse("is invalid: its secret does not match");
        }
        if e.revoked_at.is_some() {
            return refuse("was revoked");
        }
        if e.expires_at.is_some_and(|x| x <= now) {
            return refuse("has expired");
        }
        if e.user_disabled {
            return refuse(&format!(
                "belongs to user {:?}, who is disabled",
                e.identity.subject
            ));
        }
        // Read first: requests within the same millisecond then leave the shared counter's
        // cache line alone instead of each writing it.
        if e.used.load(Ordering::Relaxed) < now {
            e.used.fetch_max(now, Ordering::Relaxed);
        }
        Some(Ok(e.identity.clone()))
    }
}

impl Authenticator for KeyAuthenticator {
    fn authenticate<'a>(&'a self, token: &'a str, _ctx: AuthContext<'a>) -> AuthFuture<'a> {
        AuthFuture::ready(self.check(token, now_ms()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> ServerSecret {
        ServerSecret::from_bytes(&[42; 32]).unwrap()
    }

    #[test]
    fn derived_keys_are_stable_per_secret_and_purpose() {
        let other = ServerSecret::from_bytes(&[43; 32]).unwrap();
        assert_eq!(
            secret().derive("request-state"),
            secret().derive("request-state")
        );
        assert_ne!(
            secret().derive("request-state"),
            secret().derive("something-else")
        );
        assert_ne!(
            secret().derive("request-state"),
            other.derive("request-state")
        );
        assert_ne!(&secret().derive("request-state")[..], &[42u8; 32][..]);
    }

    fn entry(g: &GeneratedKey, planes: Planes) -> KeyEntry {
        KeyEntry::new(
            g.id.clone(),
            g.hash.clone(),
            "alice".into(),
            vec!["ops".into()],
            planes,
            None,
            None,
            false,
        )
    }

    #[test]
    fn keys_have_the_documented_shape_and_parse_back() {
        let g = secret().generate().unwrap();
        assert_eq!(g.key.len(), PREFIX.len() + ID_LEN + 1 + SECRET_LEN);
        let p = parse(&g.key).unwrap().unwrap();
        assert_eq!(p.id, g.id);
        assert!(g.key.ends_with(p.secret));
        assert_eq!(id_of(&g.key), g.id);
        assert_eq!(id_of(&display_id(&g.id)), g.id);
        assert_eq!(id_of(&g.id), g.id);
        assert!(
            parse("eyJhbGciOi.jwt").is_none(),
            "not ours: another authenticator's"
        );
        for bad in [
            "gantry_",
            "gantry_abc",
            "gantry_abcdefghijkl_short",
            "gantry_ABCDEFGHIJKL_x",
        ] {
            let e = parse(bad).unwrap().unwrap_err();
            assert!(e.starts_with("malformed API key"), "{bad}: {e}");
        }
        // A cut key's message names the id, never the secret.
        let cut = &g.key[..g.key.len() - 3];
        let e = parse(cut).unwrap().unwrap_err();
        assert!(
            e.contains(&display_id(&g.id)) && !e.contains(&cut[20..]),
            "{e}"
        );
        assert_ne!(secret().generate().unwrap().key, g.key);
    }

    #[test]
    fn hashes_verify_only_the_right_id_secret_and_server_secret() {
        let s = secret();
        let g = s.generate().unwrap();
        let p = parse(&g.key).unwrap().unwrap();
        assert!(s.verify(p.id, p.secret, &g.hash));
        let mut wrong = p.secret.to_owned();
        wrong.replace_range(0..1, if wrong.starts_with('a') { "b" } else { "a" });
        assert!(!s.verify(p.id, &wrong, &g.hash), "wrong secret");
        assert!(!s.verify("aaaaaaaaaaaa", p.secret, &g.hash), "wrong id");
        let mut tampered = g.hash.clone();
        tampered[31] ^= 1;
        assert!(!s.verify(p.id, p.secret, &tampered), "tampered hash");
        assert!(!s.verify(p.id, p.secret, &g.hash[..16]), "truncated hash");
        let other = ServerSecret::from_bytes(&[43; 32]).unwrap();
        assert!(
            !other.verify(p.id, p.secret, &g.hash),
            "another server secret"
        );
        assert!(ServerSecret::from_bytes(b"short").is_err());
    }

    #[test]
    fn the_authenticator_refuses_each_bad_state_with_a_description_and_no_secret() {
        let s = secret();
        let auth = KeyAuthenticator::new(s.clone());
        let ok = s.generate().unwrap();
        let revoked = s.generate().unwrap();
        let expired = s.generate().unwrap();
        let disabled = s.generate().unwrap();
        let control = s.generate().unwrap();
        let unknown = s.generate().unwrap();
        let mut e_revoked = entry(&revoked, Planes::DATA);
        e_revoked.revoked_at = Some(5);
        let mut e_expired = entry(&expired, Planes::DATA);
        e_expired.expires_at = Some(1_000);
        let mut e_disabled = entry(&disabled, Planes::DATA);
        e_disabled.user_disabled = true;
        auth.replace(vec![
            entry(&ok, Planes::DATA),
            e_revoked,
            e_expired,
            e_disabled,
            entry(&control, Planes::CONTROL),
        ]);
        let now = 2_000;
        let id = auth.check(&ok.key, now).unwrap().unwrap();
        assert_eq!(id.subject, "alice");
        assert_eq!(id.teams, vec!["ops"]);
        assert_eq!(id.planes, Planes::DATA);
        assert_eq!(id.source, Source::ApiKey { id: ok.id.clone() });
        assert_eq!(id.scopes, Vec::<String>::new());
        // Every use hands out the table's identity, not a copy.
        assert!(Arc::ptr_eq(
            &id,
            &auth.check(&ok.key, now).unwrap().unwrap()
        ));
        // Through the trait too, answered without waiting (nothing boxed per request).
        let ctx = AuthContext {
            resource: "https://gw.example/mcp/x",
        };
        assert!(matches!(
            auth.authenticate(&ok.key, ctx),
            AuthFuture::Ready(_)
        ));
        assert!(matches!(
            auth.authenticate("eyJ.x.y", ctx),
            AuthFuture::Ready(_)
        ));
        assert_eq!(
            auth.check(&control.key, now).unwrap().unwrap().planes,
            Planes::CONTROL
        );
        let refused = |key: &GeneratedKey, want: &str| {
            let e = auth.check(&key.key, now).unwrap().unwrap_err();
            assert_eq!(e.code, crate::AuthErrorCode::InvalidToken);
            assert!(e.description.contains(want), "{}", e.description);
            assert!(e.description.contains(&display_id(&key.id)));
            assert!(
                !e.description.contains(&key.key[20..]),
                "no secret in {}",
                e.description
            );
        };
        refused(&revoked, "was revoked");
        refused(&expired, "has expired");
        refused(&disabled, "is disabled");
        refused(&unknown, "is not known");
        // The right id with another key's secret.
        let forged = format!(
            "{PREFIX}{}_{}",
            ok.id,
            &unknown.key[PREFIX.len() + ID_LEN + 1..]
        );
        let e = auth.check(&forged, now).unwrap().unwrap_err();
        assert!(e.description.contains("secret does not match"));
        // A revoked key with a wrong secret says only that the secret is wrong.
        let forged = format!(
            "{PREFIX}{}_{}",
            revoked.id,
            &unknown.key[PREFIX.len() + ID_LEN + 1..]
        );
        let e = auth.check(&forged, now).unwrap().unwrap_err();
        assert!(e.description.contains("secret does not match"));
        assert!(auth.check("not-a-gantry-key", now).is_none());
    }

    #[test]
    fn uses_are_taken_in_batches_and_survive_a_table_swap() {
        let s = secret();
        let auth = KeyAuthenticator::new(s.clone());
        let k = s.generate().unwrap();
        auth.replace(vec![entry(&k, Planes::DATA)]);
        assert!(auth.take_uses().is_empty());
        auth.check(&k.key, 10).unwrap().unwrap();
        auth.check(&k.key, 12).unwrap().unwrap();
        // A use seen late (another thread's clock read earlier) does not move it back.
        auth.check(&k.key, 11).unwrap().unwrap();
        auth.check(&k.key, 12).unwrap().unwrap();
        auth.replace(vec![entry(&k, Planes::DATA)]);
        assert_eq!(auth.take_uses(), vec![(k.id.clone(), 12)]);
        assert!(auth.take_uses().is_empty());
        auth.check(&k.key, 20).unwrap().unwrap();
        assert_eq!(auth.take_uses(), vec![(k.id.clone(), 20)]);
    }

    #[test]
    fn the_server_secret_file_is_created_private_and_reused() {
        if std::env::var_os(SECRET_ENV).is_some() {
            return;
        }
        let dir = std::env::temp_dir().join(format!("gantry-secret-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (a, origin) = ServerSecret::load(&dir).unwrap();
        assert!(matches!(origin, SecretOrigin::Created(_)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (b, origin) = ServerSecret::load(&dir).unwrap();
        assert!(matches!(origin, SecretOrigin::File(_)));
        let g = a.generate().unwrap();
        let p = parse(&g.key).unwrap().unwrap();
        assert!(b.verify(p.id, p.secret, &g.hash));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
