//! Schema migrations, versioned in code.
//!
//! Each [`Migration`] has a version (1, 2, …, never reused or edited once released) and its
//! SQL. [`apply`] runs the pending ones in order inside one `BEGIN IMMEDIATE` transaction (so
//! two processes opening the same file do not both migrate) and records each in
//! `schema_migrations`; `PRAGMA user_version` mirrors the latest for tools that look there.
//! A database whose version is newer than the binary's is refused rather than misread.
//!
//! PostgreSQL will get a `postgres` field with the same versions (files under
//! `migrations/postgres/`), applied by the same runner over its own connection type.

use crate::{Result, Store, StoreError, now_ms};

/// One schema change.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// Its version; versions are applied in increasing order.
    pub version: i64,
    /// What it adds, for the record.
    pub name: &'static str,
    /// The SQLite statements.
    pub sqlite: &'static str,
}

/// Every migration this binary knows, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "catalog",
        sqlite: include_str!("../migrations/sqlite/0001_catalog.sql"),
    },
    Migration {
        version: 2,
        name: "identity",
        sqlite: include_str!("../migrations/sqlite/0002_identity.sql"),
    },
];

const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at BIGINT  NOT NULL
)";

/// The latest version applied (0 for a fresh database).
pub(crate) fn current(store: &Store) -> Result<i64> {
    current_in(&store.conn).map_err(|e| store.err(e))
}

fn current_in(conn: &rusqlite::Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )
}

/// Applies the migrations of `list` newer than the database's version; returns how many.
pub fn apply(store: &mut Store, list: &[Migration]) -> Result<usize> {
    let known = list.last().map_or(0, |m| m.version);
    let path = store.path.clone();
    let err = |e| crate::sqlite(&path, e);
    store.conn.execute_batch(BOOKKEEPING).map_err(err)?;
    let tx = store
        .conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(err)?;
    let found = current_in(&tx).map_err(err)?;
    if found > known {
        return Err(StoreError::TooNew { path, found, known });
    }
    let mut applied = 0;
    for m in list.iter().filter(|m| m.version > found) {
        tx.execute_batch(m.sqlite).map_err(err)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, now_ms()],
        )
        .map_err(err)?;
        tx.pragma_update(None, "user_version", m.version)
            .map_err(err)?;
        tracing::debug!(version = m.version, name = m.name, db = %path.display(), "applied database migration");
        applied += 1;
    }
    tx.commit().map_err(err)?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gantry-migrate-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("gantry.db")
    }

    #[test]
    fn a_fresh_database_gets_every_migration() {
        let path = temp_db("fresh");
        let store = Store::open(&path).unwrap();
        let latest = MIGRATIONS.last().unwrap().version;
        assert_eq!(store.schema_version().unwrap(), latest);
        let user_version: i64 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(user_version, latest);
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = store
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 1, "NORMAL");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn an_existing_database_keeps_its_data_and_gets_only_newer_migrations() {
        let path = temp_db("existing");
        {
            let mut store = Store::open(&path).unwrap();
            store
                .sync_catalog("s", Trigger::Connect, &snapshot(), 1)
                .unwrap();
        }
        // Reopening with the same code applies nothing and keeps the rows.
        let mut store = Store::open(&path).unwrap();
        assert_eq!(apply(&mut store, MIGRATIONS).unwrap(), 0);
        assert_eq!(
            store.load_catalog("s").unwrap().unwrap().snapshot,
            snapshot()
        );
        // A newer binary with one more migration applies just that one.
        let mut next = MIGRATIONS.to_vec();
        next.push(Migration {
            version: 3,
            name: "test",
            sqlite: "CREATE TABLE later (x INTEGER);",
        });
        assert_eq!(apply(&mut store, &next).unwrap(), 1);
        assert_eq!(store.schema_version().unwrap(), 3);
        assert_eq!(apply(&mut store, &next).unwrap(), 0);
        assert_eq!(
            store.load_catalog("s").unwrap().unwrap().snapshot,
            snapshot()
        );
        drop(store);
        // ... and the older binary refuses the newer database instead of misreading it.
        match Store::open(&path) {
            Err(StoreError::TooNew {
                found: 3, known: 2, ..
            }) => {}
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("a newer database was opened"),
        }
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    use crate::{Snapshot, Trigger};

    fn snapshot() -> Snapshot {
        Snapshot {
            tools: vec![serde_json::json!({"name": "t", "description": "d"})],
            ..Snapshot::default()
        }
    }
}
