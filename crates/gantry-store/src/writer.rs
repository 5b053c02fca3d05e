//! The catalog writer: a thread that owns a [`Store`] and persists catalog snapshots handed
//! to it, so that async code never waits on the database.
//!
//! The queue is bounded by the number of servers: a snapshot for a server that already has
//! one waiting replaces it (keeping the first trigger, the cause of the earliest change not
//! yet written), so a server that changes its lists in a burst costs one write, and a slow
//! disk delays the log rather than growing memory. [`CatalogWriter::submit`] takes a mutex
//! for a map insert and returns.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::{ChangeKind, Snapshot, Store, Trigger, now_ms};

#[derive(Default)]
struct State {
    pending: BTreeMap<String, (Trigger, Snapshot)>,
    /// A snapshot is being written.
    busy: bool,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    cv: Condvar,
}

/// Persists catalog snapshots on a background thread.
pub struct CatalogWriter {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl CatalogWriter {
    /// Starts the writer thread, which owns `store`.
    pub fn start(store: Store) -> std::io::Result<CatalogWriter> {
        let shared = Arc::new(Shared::default());
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("gantry-store".into())
            .spawn(move || run(store, &worker))?;
        Ok(CatalogWriter {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `snapshot` as `server`'s catalog; returns at once.
    pub fn submit(&self, server: &str, trigger: Trigger, snapshot: Snapshot) {
        let mut st = self.shared.state.lock().expect("writer lock");
        if st.closed {
            return;
        }
        match st.pending.get_mut(server) {
            Some(slot) => slot.1 = snapshot,
            None => {
                st.pending.insert(server.to_owned(), (trigger, snapshot));
            }
        }
        drop(st);
        self.shared.cv.notify_all();
    }

    /// Waits (blocking, at most `timeout`) until everything queued is written; returns whether
    /// it was.
    pub fn flush(&self, timeout: Duration) -> bool {
        let st = self.shared.state.lock().expect("writer lock");
        let (st, _) = self
            .shared
            .cv
            .wait_timeout_while(st, timeout, |st| !st.pending.is_empty() || st.busy)
            .expect("writer lock");
        st.pending.is_empty() && !st.busy
    }

    /// Writes what is queued (waiting at most `timeout`) and stops the thread.
    pub fn close(&self, timeout: Duration) -> bool {
        let done = self.flush(timeout);
        self.shared.state.lock().expect("writer lock").closed = true;
        self.shared.cv.notify_all();
        if done && let Some(t) = self.thread.lock().expect("thread lock").take() {
            let _ = t.join();
        }
        done
    }
}

impl Drop for CatalogWriter {
    fn drop(&mut self) {
        if let Ok(mut st) = self.shared.state.lock() {
            st.closed = true;
        }
        self.shared.cv.notify_all();
    }
}

fn run(mut store: Store, shared: &Shared) {
    loop {
        let (server, (trigger, snapshot)) = {
            let mut st = shared.state.lock().expect("writer lock");
            loop {
                if let Some(job) = st.pending.pop_first() {
                    st.busy = true;
                    break job;
                }
                if st.closed {
                    return;
                }
                st = shared.cv.wait(st).expect("writer lock");
            }
        };
        write(&mut store, &server, trigger, &snapshot);
        shared.state.lock().expect("writer lock").busy = false;
        shared.cv.notify_all();
    }
}

fn write(store: &mut Store, server: &str, trigger: Trigger, snapshot: &Snapshot) {
    match store.sync_catalog(server, trigger, snapshot, now_ms()) {
        Ok(changes) => {
            for c in &changes {
                if c.change == ChangeKind::Changed.as_str() {
                    tracing::warn!(
                        server = %c.server, kind = %c.kind, name = %c.name,
                        old = c.old_fingerprint.as_deref().unwrap_or(""),
                        new = c.new_fingerprint.as_deref().unwrap_or(""),
                        trigger = %c.trigger,
                        "catalog definition changed"
                    );
                } else {
                    tracing::debug!(server = %c.server, kind = %c.kind, name = %c.name, change = %c.change, trigger = %c.trigger, "catalog change");
                }
            }
        }
        Err(e) => tracing::warn!(%server, error = %e, "could not persist the catalog"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn queued_snapshots_are_written_and_coalesced_per_server() {
        let dir = std::env::temp_dir().join(format!("gantry-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let writer = CatalogWriter::start(Store::open_in(&dir).unwrap()).unwrap();
        let snap = |d: &str| Snapshot {
            tools: vec![json!({"name": "t", "description": d})],
            ..Snapshot::default()
        };
        writer.submit("a", Trigger::Connect, snap("1"));
        writer.submit("a", Trigger::ListChanged, snap("2"));
        writer.submit("b", Trigger::Connect, snap("x"));
        assert!(writer.flush(Duration::from_secs(10)));
        assert!(writer.close(Duration::from_secs(10)));
        let store = Store::open_in(&dir).unwrap();
        let a = store.load_catalog("a").unwrap().unwrap();
        assert_eq!(a.snapshot.tools[0]["description"], "2");
        assert!(store.load_catalog("b").unwrap().is_some());
        // Submitting after close is a no-op, not a hang.
        writer.submit("c", Trigger::Connect, snap("y"));
        assert!(writer.flush(Duration::from_secs(1)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
