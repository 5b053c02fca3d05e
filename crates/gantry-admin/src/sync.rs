//! Keeps the [`KeyAuthenticator`]'s in-memory table in step with the database.
//!
//! A thread owns its own connection. Every `interval` (and at once when asked, after an admin
//! API write) it stores the key uses the authenticator collected, then reads `PRAGMA
//! data_version`, which SQLite changes whenever another connection — `gantry key revoke` in
//! another process, or the admin API's connection — commits; if it changed, it reloads the
//! keys and swaps the table. So a revocation from the CLI takes effect within one interval,
//! one from the admin API before its answer is sent.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use gantry_auth::keys::KeyEntry;
use gantry_auth::{KeyAuthenticator, Planes};
use gantry_store::{KeyCredential, KeyPlanes, Store, StoreError};

/// How often the database is checked for changes by default.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Default)]
struct State {
    /// Refreshes asked for.
    asked: u64,
    /// Refreshes done (a refresh covers every request made before it started).
    done: u64,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    cv: Condvar,
}

/// The thread that keeps a key table up to date.
pub struct KeySync {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The authenticator's entries for the stored keys.
pub fn entries(creds: Vec<KeyCredential>) -> Vec<KeyEntry> {
    creds
        .into_iter()
        .map(|c| {
            let planes = match c.record.planes {
                KeyPlanes::Data => Planes::DATA,
                KeyPlanes::Control => Planes::CONTROL,
                KeyPlanes::Both => Planes::BOTH,
            };
            KeyEntry::new(
                c.record.id,
                c.hash,
                c.record.user,
                c.teams,
                planes,
                c.record.expires_at,
                c.record.revoked_at,
                c.user_disabled,
            )
        })
        .collect()
}

impl KeySync {
    /// Loads the keys into `auth` now (so it is ready before the gateway serves), then starts
    /// the thread, which owns `store`.
    pub fn start(
        store: Store,
        auth: Arc<KeyAuthenticator>,
        interval: Duration,
    ) -> Result<KeySync, StoreError> {
        let version = store.data_version()?;
        auth.replace(entries(store.key_credentials()?));
        let shared = Arc::new(Shared::default());
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("gantry-keys".into())
            .spawn(move || run(store, &auth, &worker, interval, version))
            .map_err(|e| StoreError::Invalid(format!("cannot start the key thread: {e}")))?;
        Ok(KeySync {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stores pending key uses and reloads the keys if the database changed, waiting (blocking,
    /// at most `timeout`) until done; returns whether it was.
    pub fn refresh_now(&self, timeout: Duration) -> bool {
        let mut st = self.shared.state.lock().expect("key sync lock");
        st.asked += 1;
        let want = st.asked;
        self.shared.cv.notify_all();
        let (st, _) = self
            .shared
            .cv
            .wait_timeout_while(st, timeout, |st| st.done < want && !st.closed)
            .expect("key sync lock");
        st.done >= want
    }

    /// Stores pending key uses (bounded wait) and stops the thread.
    pub fn close(&self, timeout: Duration) {
        self.refresh_now(timeout);
        self.shared.state.lock().expect("key sync lock").closed = true;
        self.shared.cv.notify_all();
        if let Some(t) = self.thread.lock().expect("thread lock").take() {
            let _ = t.join();
        }
    }
}

impl Drop for KeySync {
    fn drop(&mut self) {
        if let Ok(mut st) = self.shared.state.lock() {
            st.closed = true;
        }
        self.shared.cv.notify_all();
    }
}

fn run(
    mut store: Store,
    auth: &KeyAuthenticator,
    shared: &Shared,
    interval: Duration,
    mut version: i64,
) {
    loop {
        let asked = {
            let mut st = shared.state.lock().expect("key sync lock");
            if st.asked == st.done && !st.closed {
                st = shared
                    .cv
                    .wait_timeout(st, interval)
                    .expect("key sync lock")
                    .0;
            }
            if st.closed && st.asked == st.done {
                // Last uses before stopping.
                drop(st);
                store_uses(&mut store, auth);
                return;
            }
            st.asked
        };
        store_uses(&mut store, auth);
        match store.data_version() {
            Ok(v) if v != version => match store.key_credentials() {
                Ok(creds) => {
                    version = v;
                    let n = creds.len();
                    auth.replace(entries(creds));
                    tracing::debug!(keys = n, "API keys reloaded");
                }
                Err(e) => tracing::warn!(error = %e, "could not reload the API keys"),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not check the database for key changes"),
        }
        let mut st = shared.state.lock().expect("key sync lock");
        st.done = st.done.max(asked);
        drop(st);
        shared.cv.notify_all();
    }
}

fn store_uses(store: &mut Store, auth: &KeyAuthenticator) {
    let uses = auth.take_uses();
    if uses.is_empty() {
        return;
    }
    if let Err(e) = store.record_key_use(&uses) {
        tracing::warn!(error = %e, keys = uses.len(), "could not record API key use");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_auth::ServerSecret;
    use gantry_store::NewKey;
    use std::time::Instant;

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gantry-keysync-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_change_by_another_connection_reaches_the_table_and_uses_are_stored() {
        let dir = temp_dir("poll");
        let secret = ServerSecret::from_bytes(&[9; 32]).unwrap();
        // "Another process": its own connection to the same file.
        let mut cli = Store::open_in(&dir).unwrap();
        cli.add_user("alice", None, 1).unwrap();
        let g = secret.generate().unwrap();
        cli.add_key(
            &NewKey {
                id: g.id.clone(),
                user: "alice".into(),
                hash: g.hash.clone(),
                planes: KeyPlanes::Both,
                label: None,
                expires_at: None,
            },
            2,
        )
        .unwrap();
        let auth = Arc::new(KeyAuthenticator::new(secret.clone()));
        let sync = KeySync::start(
            Store::open_in(&dir).unwrap(),
            auth.clone(),
            Duration::from_millis(20),
        )
        .unwrap();
        let now = gantry_store::now_ms();
        assert!(auth.check(&g.key, now).unwrap().is_ok());
        // Revoked by the other connection: the poll alone picks it up, within a bound.
        cli.revoke_key(&g.id, now).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if auth.check(&g.key, gantry_store::now_ms()).unwrap().is_err() {
                break;
            }
            assert!(Instant::now() < deadline, "the revocation never arrived");
            std::thread::sleep(Duration::from_millis(10));
        }
        let e = auth
            .check(&g.key, gantry_store::now_ms())
            .unwrap()
            .unwrap_err();
        assert!(e.description.contains("was revoked"), "{}", e.description);
        // The successful use above was stored by the thread.
        assert!(sync.refresh_now(Duration::from_secs(10)));
        assert!(cli.key(&g.id).unwrap().unwrap().last_used_at.is_some());
        // A disabled user, then a refresh on demand.
        cli.add_user("bob", None, 3).unwrap();
        let b = secret.generate().unwrap();
        cli.add_key(
            &NewKey {
                id: b.id.clone(),
                user: "bob".into(),
                hash: b.hash.clone(),
                planes: KeyPlanes::Data,
                label: None,
                expires_at: None,
            },
            4,
        )
        .unwrap();
        assert!(sync.refresh_now(Duration::from_secs(10)));
        assert!(auth.check(&b.key, gantry_store::now_ms()).unwrap().is_ok());
        cli.update_user("bob", None, Some(true)).unwrap();
        assert!(sync.refresh_now(Duration::from_secs(10)));
        let e = auth
            .check(&b.key, gantry_store::now_ms())
            .unwrap()
            .unwrap_err();
        assert!(e.description.contains("disabled"), "{}", e.description);
        sync.close(Duration::from_secs(10));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
