//! Gantry's durable state: one embedded SQLite database in the data directory (DESIGN.md §6).
//!
//! Layout, one module per area of the schema:
//! - [`migrate`]: schema versions in code, applied in order on open (a `schema_migrations`
//!   table records what is applied; a database newer than the binary is refused);
//! - [`catalog`]: the last known catalog of every server, a fingerprint per definition, and
//!   the log of added, changed and removed definitions;
//! - [`writer`]: the background thread that owns the write connection, so the async gateway
//!   never waits on the database (DESIGN.md §3: no database on the hot path).
//!
//! - [`identity`]: users, teams, memberships and API keys (hashed; the server secret is never
//!   in the database).
//!
//! The vault, OAuth tokens, audit and approvals come later as their own
//! modules with their own migrations; PostgreSQL gets the same schema through a second set of
//! migration files (`migrations/postgres/`) behind the same [`Store`] methods.
#![deny(missing_docs)]

pub mod catalog;
pub mod identity;
pub mod migrate;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

pub use catalog::{
    Change, ChangeFilter, ChangeKind, Kind, ServerCatalog, Snapshot, StoredItem, Trigger,
    fingerprint,
};
pub use identity::{KeyCredential, KeyPlanes, KeyRecord, NewKey, Team, User};
pub use writer::CatalogWriter;

/// The database's file name inside the data directory.
pub const DB_FILE: &str = "gantry.db";

/// How long a statement waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A store error: what failed and where.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created or used.
    #[error("data directory {path}: {message}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// SQLite failed.
    #[error("database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer Gantry.
    #[error(
        "database {path} has schema version {found}, newer than this gantry knows ({known}); use a newer gantry"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest version this binary knows.
        known: i64,
    },
    /// A value given to the store is not acceptable (a name, a label, a time): what and why.
    #[error("{0}")]
    Invalid(String),
    /// What was asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It conflicts with what exists (a name taken, a key already revoked).
    #[error("{0}")]
    Conflict(String),
    /// A stored value could not be read back.
    #[error("database {path}: {message}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// A result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An open database connection with the schema up to date.
///
/// Every method blocks: call them from a blocking thread (`tokio::task::spawn_blocking` or
/// the [`CatalogWriter`] thread), never from an async task on the hot path.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, sets WAL mode, `synchronous =
    /// NORMAL` and a busy timeout, and applies pending migrations.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path).map_err(|e| sqlite(path, e))?;
        Store::setup(conn, path)
    }

    /// Opens the database at `path` only if it exists (for commands that only read).
    pub fn open_existing(path: &Path) -> Result<Option<Store>> {
        if !path.exists() {
            return Ok(None);
        }
        Store::open(path).map(Some)
    }

    /// A private in-memory database (tests).
    pub fn open_in_memory() -> Result<Store> {
        let path = Path::new(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| sqlite(path, e))?;
        Store::setup(conn, path)
    }

    /// Opens the database in `data_dir` (see [`DB_FILE`]), creating the directory first.
    pub fn open_in(data_dir: &Path) -> Result<Store> {
        prepare_data_dir(data_dir)?;
        Store::open(&data_dir.join(DB_FILE))
    }

    fn setup(conn: Connection, path: &Path) -> Result<Store> {
        let err = |e| sqlite(path, e);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        // In-memory databases answer "memory"; files switch to WAL once and stay there.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        migrate::apply(&mut store, migrate::MIGRATIONS)?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version (the last migration applied).
    pub fn schema_version(&self) -> Result<i64> {
        migrate::current(self)
    }

    pub(crate) fn err(&self, e: rusqlite::Error) -> StoreError {
        sqlite(&self.path, e)
    }

    /// Every row `sql` returns for `params`, each read by `read`.
    pub(crate) fn rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        read: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        stmt.query_map(params, read)
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }
}

fn sqlite(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the data directory (and its parents) with mode 0700 if it is missing; an existing
/// one is used as it is, with a warning if other users may read it.
pub fn prepare_data_dir(dir: &Path) -> Result<()> {
    let fail = |message: String| StoreError::DataDir {
        path: dir.to_path_buf(),
        message,
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                if m.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(
                        dir = %dir.display(),
                        "the data directory is accessible to other users; consider chmod 700"
                    );
                }
            }
            Ok(())
        }
        Ok(_) => Err(fail("exists but is not a directory".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(dir)
                .map_err(|e| fail(format!("cannot create: {e}")))
        }
        Err(e) => Err(fail(e.to_string())),
    }
}

/// Unix milliseconds of a UTC date `YYYY-MM-DD` (midnight) or date-time
/// `YYYY-MM-DDTHH:MM[:SS[.fff]]Z`; `None` if it is neither (or not a real date).
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (
            d,
            Some(t.strip_suffix('Z').or_else(|| t.strip_suffix('z'))?),
        ),
        None => (s, None),
    };
    let num = |p: &str, len: usize| -> Option<i64> {
        (p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let mut d = date.split('-');
    let (year, month, day) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    if d.next().is_some() || !(1..=12).contains(&month) || day < 1 {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if day > days_in[(month - 1) as usize] {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let mut ms = days * 86_400_000;
    if let Some(t) = time {
        let (hms, frac) = match t.split_once('.') {
            Some((a, f)) => (a, Some(f)),
            None => (t, None),
        };
        let mut parts = hms.split(':');
        let h = num(parts.next()?, 2)?;
        let m = num(parts.next()?, 2)?;
        let sec = match parts.next() {
            Some(p) => num(p, 2)?,
            None => 0,
        };
        if parts.next().is_some() || h > 23 || m > 59 || sec > 59 {
            return None;
        }
        ms += (h * 3600 + m * 60 + sec) * 1000;
        if let Some(f) = frac {
            if f.is_empty() || f.len() > 3 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            ms += f.parse::<i64>().ok()? * 10i64.pow(3 - f.len() as u32);
        }
    }
    Some(ms)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `2026-11-21T15:31:27.723Z` for a time in Unix milliseconds (UTC).
pub fn format_ms(ms: i64) -> String {
    gantry_core::time::format_utc(ms.div_euclid(1000), Some(ms.rem_euclid(1000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_utc() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1_795_275_087_723), "2026-11-21T15:31:27.723Z");
        assert_eq!(format_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn times_parse_back() {
        for ms in [0, 1_795_275_087_723, 951_782_400_000, 4_102_444_800_000] {
            assert_eq!(parse_time(&format_ms(ms)), Some(ms), "{}", format_ms(ms));
        }
        assert_eq!(parse_time("2027-01-01"), Some(1_798_761_600_000));
        assert_eq!(parse_time("2027-01-01T00:00Z"), Some(1_798_761_600_000));
        for bad in [
            "2027-02-29",
            "2027-13-01",
            "2027-1-01",
            "tomorrow",
            "2027-01-01T25:00Z",
            "2027-01-01T10:00",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn data_dir_is_created_private() {
        let base = std::env::temp_dir().join(format!("gantry-store-dir-{}", std::process::id()));
        let dir = base.join("a/b");
        prepare_data_dir(&dir).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let store = Store::open_in(&dir).unwrap();
        assert!(dir.join(DB_FILE).exists());
        drop(store);
        let file = base.join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(prepare_data_dir(&file).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
