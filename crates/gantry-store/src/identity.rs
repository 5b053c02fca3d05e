//! Users, teams, memberships and API keys.
//!
//! Names are checked here, with errors that say which character is wrong, so the CLI and the
//! admin API refuse the same things the same way. A key is stored as its public id and a hash
//! (computed by `gantry-auth` under a server secret that is never in the database); its secret
//! is never stored. Removing a user removes its memberships and keys; removing a team removes
//! its memberships.
//!
//! Every method blocks: the running gateway calls them from a blocking thread, and reads keys
//! on the hot path from an in-memory snapshot built from [`Store::key_credentials`].

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};

use crate::{Result, Store, StoreError, format_ms, parse_time};

/// The longest user or team name.
pub const MAX_NAME: usize = 128;
/// The longest display name or key label.
pub const MAX_TEXT: usize = 200;

/// A user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Unique name (the subject of its keys' identities).
    pub name: String,
    /// A human name, if set.
    pub display_name: Option<String>,
    /// When it was added (Unix ms).
    pub created_at: i64,
    /// A disabled user's keys are refused.
    pub disabled: bool,
    /// The teams it is a member of, by name.
    pub teams: Vec<String>,
}

/// A team.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Team {
    /// Unique name.
    pub name: String,
    /// When it was added (Unix ms).
    pub created_at: i64,
    /// Its members' user names.
    pub members: Vec<String>,
}

/// The planes an API key may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPlanes {
    /// Endpoints only.
    Data,
    /// The admin API only.
    Control,
    /// Both.
    Both,
}

impl KeyPlanes {
    /// Its name in the database, the CLI and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPlanes::Data => "data",
            KeyPlanes::Control => "control",
            KeyPlanes::Both => "both",
        }
    }

    /// `data`, `control` or `both`.
    pub fn parse(s: &str) -> Result<KeyPlanes> {
        match s {
            "data" => Ok(KeyPlanes::Data),
            "control" => Ok(KeyPlanes::Control),
            "both" => Ok(KeyPlanes::Both),
            _ => Err(StoreError::Invalid(format!(
                "plane {s:?} is not one of data, control, both"
            ))),
        }
    }

    /// Whether it includes the data plane.
    pub fn data(self) -> bool {
        matches!(self, KeyPlanes::Data | KeyPlanes::Both)
    }

    /// Whether it includes the control plane.
    pub fn control(self) -> bool {
        matches!(self, KeyPlanes::Control | KeyPlanes::Both)
    }
}

/// A key to store.
#[derive(Clone, Debug)]
pub struct NewKey {
    /// Public id (the non-secret part of the key).
    pub id: String,
    /// The owner's user name.
    pub user: String,
    /// The hash of the key's secret.
    pub hash: Vec<u8>,
    /// What it may be used for.
    pub planes: KeyPlanes,
    /// A note for its owner, e.g. where it is used.
    pub label: Option<String>,
    /// When it stops working (Unix ms); none: never.
    pub expires_at: Option<i64>,
}

/// A stored key, without its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    /// Public id.
    pub id: String,
    /// Owner.
    pub user: String,
    /// Planes.
    pub planes: KeyPlanes,
    /// Label.
    pub label: Option<String>,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Expires (Unix ms).
    pub expires_at: Option<i64>,
    /// Revoked (Unix ms).
    pub revoked_at: Option<i64>,
    /// Last used, as last recorded (Unix ms).
    pub last_used_at: Option<i64>,
}

impl KeyRecord {
    /// `active`, `revoked` or `expired` at `now`.
    pub fn state(&self, now: i64) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        }
    }
}

/// What checking a key needs: the record, its hash and its owner's state.
#[derive(Clone, Debug)]
pub struct KeyCredential {
    /// The key.
    pub record: KeyRecord,
    /// Its hash.
    pub hash: Vec<u8>,
    /// Its owner is disabled.
    pub user_disabled: bool,
    /// Its owner's teams.
    pub teams: Vec<String>,
}

/// Checks a user name: 1–128 letters, digits, `.`, `_`, `-`, `@`, starting with a letter or
/// digit (so an email address works).
pub fn check_user_name(name: &str) -> Result<()> {
    check_name("user", name, "._-@")
}

/// Checks a team name: 1–128 letters, digits, `.`, `_`, `-`, starting with a letter or digit.
pub fn check_team_name(name: &str) -> Result<()> {
    check_name("team", name, "._-")
}

fn check_name(what: &str, name: &str, extra: &str) -> Result<()> {
    let bad = |why: String| Err(StoreError::Invalid(format!("{what} name {name:?} {why}")));
    let allowed = format!(
        "letters, digits and {}",
        extra
            .chars()
            .map(|c| format!("'{c}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if name.is_empty() {
        return Err(StoreError::Invalid(format!("{what} name is empty")));
    }
    if name.chars().count() > MAX_NAME {
        return bad(format!("is longer than {MAX_NAME} characters"));
    }
    for (i, c) in name.chars().enumerate() {
        let ok = c.is_ascii_alphanumeric() || (i > 0 && extra.contains(c));
        if !ok {
            return if i == 0 && extra.contains(c) {
                bad(format!("must start with a letter or digit, not {c:?}"))
            } else {
                bad(format!(
                    "has {c:?} at position {}: only {allowed} are allowed",
                    i + 1
                ))
            };
        }
    }
    Ok(())
}

/// Checks a display name or label: at most 200 characters, no control characters.
pub fn check_text(what: &str, text: &str) -> Result<()> {
    if text.chars().count() > MAX_TEXT {
        return Err(StoreError::Invalid(format!(
            "{what} is longer than {MAX_TEXT} characters"
        )));
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(StoreError::Invalid(format!(
            "{what} contains the control character {c:?}"
        )));
    }
    Ok(())
}

/// An expiry as given by a person: a duration from `now` (`30d`, `12h`, `90m`, `2w`, `45s`) or a UTC
/// date or date-time (`2027-01-01`, `2027-01-01T12:00:00Z`). It must be in the future.
pub fn parse_expires(s: &str, now: i64) -> Result<i64> {
    let s = s.trim();
    let invalid = || {
        StoreError::Invalid(format!(
            "expiry {s:?} is neither a duration (30d, 12h, 90m, 2w, 45s) nor a UTC date (2027-01-01 or 2027-01-01T12:00:00Z)"
        ))
    };
    let at = match s.char_indices().last() {
        Some((i, unit @ ('s' | 'm' | 'h' | 'd' | 'w'))) if i > 0 => {
            let n: i64 = s[..i].parse().map_err(|_| invalid())?;
            let unit_ms = match unit {
                's' => 1_000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                _ => 7 * 86_400_000,
            };
            if n <= 0 {
                return Err(StoreError::Invalid(format!(
                    "expiry {s:?} must be a positive duration"
                )));
            }
            n.checked_mul(unit_ms)
                .and_then(|d| now.checked_add(d))
                .ok_or_else(invalid)?
        }
        _ => parse_time(s).ok_or_else(invalid)?,
    };
    if at <= now {
        return Err(StoreError::Invalid(format!(
            "expiry {s:?} ({}) is not in the future",
            format_ms(at)
        )));
    }
    Ok(at)
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// What [`user_row`] reads, in order.
const USER_COLUMNS: &str = "name, display_name, created_at, disabled";

/// A user from a row of [`USER_COLUMNS`], without its teams.
fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        name: r.get(0)?,
        display_name: r.get(1)?,
        created_at: r.get(2)?,
        disabled: r.get(3)?,
        teams: Vec::new(),
    })
}

// === impl Store: identity ===

impl Store {
    /// Runs an `INSERT`; a unique or primary-key violation is the conflict `exists` describes.
    fn insert_new(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        exists: impl FnOnce() -> String,
    ) -> Result<()> {
        match self.conn.execute(sql, params) {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(exists())),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Adds a user.
    pub fn add_user(&mut self, name: &str, display_name: Option<&str>, at: i64) -> Result<User> {
        check_user_name(name)?;
        if let Some(d) = display_name {
            check_text("display name", d)?;
        }
        self.insert_new(
            "INSERT INTO users (name, display_name, created_at) VALUES (?1, ?2, ?3)",
            params![name, display_name, at],
            || format!("user {name:?} already exists"),
        )?;
        self.need_user(name)
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<User>> {
        let mut teams = self.teams_by_user()?;
        let mut users = self.rows(
            &format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"),
            [],
            user_row,
        )?;
        for u in &mut users {
            u.teams = teams.remove(&u.name).unwrap_or_default();
        }
        Ok(users)
    }

    /// One user.
    pub fn user(&self, name: &str) -> Result<Option<User>> {
        let user = self
            .conn
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"),
                [name],
                user_row,
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(mut user) = user else {
            return Ok(None);
        };
        user.teams = self.rows(
            "SELECT t.name FROM team_members m JOIN teams t ON t.id = m.team_id
             JOIN users u ON u.id = m.user_id WHERE u.name = ?1 ORDER BY t.name",
            [name],
            |r| r.get(0),
        )?;
        Ok(Some(user))
    }

    fn need_user(&self, name: &str) -> Result<User> {
        self.user(name)?
            .ok_or_else(|| StoreError::NotFound(format!("no user {name:?}")))
    }

    /// Changes a user's display name (`Some(None)` clears it) and whether it is disabled.
    pub fn update_user(
        &mut self,
        name: &str,
        display_name: Option<Option<&str>>,
        disabled: Option<bool>,
    ) -> Result<User> {
        self.need_user(name)?;
        if let Some(Some(d)) = display_name {
            check_text("display name", d)?;
        }
        if let Some(d) = display_name {
            self.conn
                .execute(
                    "UPDATE users SET display_name = ?2 WHERE name = ?1",
                    params![name, d],
                )
                .map_err(|e| self.err(e))?;
        }
        if let Some(d) = disabled {
            self.conn
                .execute(
                    "UPDATE users SET disabled = ?2 WHERE name = ?1",
                    params![name, d],
                )
                .map_err(|e| self.err(e))?;
        }
        self.need_user(name)
    }

    /// Removes a user, its memberships and its keys.
    pub fn remove_user(&mut self, name: &str) -> Result<()> {
        let n = self
            .conn
            .execute("DELETE FROM users WHERE name = ?1", [name])
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("no user {name:?}")));
        }
        Ok(())
    }

    /// Adds a team.
    pub fn add_team(&mut self, name: &str, at: i64) -> Result<Team> {
        check_team_name(name)?;
        self.insert_new(
            "INSERT INTO teams (name, created_at) VALUES (?1, ?2)",
            params![name, at],
            || format!("team {name:?} already exists"),
        )?;
        self.need_team(name)
    }

    /// (team, user) pairs, by team then user.
    fn memberships(&self) -> Result<Vec<(String, String)>> {
        self.rows(
            "SELECT t.name, u.name FROM team_members m JOIN teams t ON t.id = m.team_id
             JOIN users u ON u.id = m.user_id ORDER BY t.name, u.name",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Each user's teams, by team name.
    fn teams_by_user(&self) -> Result<BTreeMap<String, Vec<String>>> {
        let mut teams: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (team, user) in self.memberships()? {
            teams.entry(user).or_default().push(team);
        }
        Ok(teams)
    }

    /// Every team with its members, by name.
    pub fn teams(&self) -> Result<Vec<Team>> {
        let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (team, user) in self.memberships()? {
            members.entry(team).or_default().push(user);
        }
        self.rows(
            "SELECT name, created_at FROM teams ORDER BY name",
            [],
            |r| {
                let name: String = r.get(0)?;
                Ok(Team {
                    members: members.remove(&name).unwrap_or_default(),
                    name,
                    created_at: r.get(1)?,
                })
            },
        )
    }

    /// One team.
    pub fn team(&self, name: &str) -> Result<Option<Team>> {
        Ok(self.teams()?.into_iter().find(|t| t.name == name))
    }

    fn need_team(&self, name: &str) -> Result<Team> {
        self.team(name)?
            .ok_or_else(|| StoreError::NotFound(format!("no team {name:?}")))
    }

    /// Removes a team and its memberships.
    pub fn remove_team(&mut self, name: &str) -> Result<()> {
        let n = self
            .conn
            .execute("DELETE FROM teams WHERE name = ?1", [name])
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("no team {name:?}")));
        }
        Ok(())
    }

    /// Makes `user` a member of `team`; `false` if it already was.
    pub fn add_member(&mut self, team: &str, user: &str, at: i64) -> Result<bool> {
        self.need_team(team)?;
        self.need_user(user)?;
        let n = self
            .conn
            .execute(
                "INSERT INTO team_members (team_id, user_id, added_at)
                 SELECT t.id, u.id, ?3 FROM teams t, users u WHERE t.name = ?1 AND u.name = ?2
                 ON CONFLICT (team_id, user_id) DO NOTHING",
                params![team, user, at],
            )
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    /// Removes `user` from `team`.
    pub fn remove_member(&mut self, team: &str, user: &str) -> Result<()> {
        self.need_team(team)?;
        self.need_user(user)?;
        let n = self
            .conn
            .execute(
                "DELETE FROM team_members WHERE
                   team_id = (SELECT id FROM teams WHERE name = ?1) AND
                   user_id = (SELECT id FROM users WHERE name = ?2)",
                params![team, user],
            )
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "user {user:?} is not a member of team {team:?}"
            )));
        }
        Ok(())
    }

    /// Stores a new key for an existing user.
    pub fn add_key(&mut self, key: &NewKey, at: i64) -> Result<KeyRecord> {
        let user = self.need_user(&key.user)?;
        if let Some(l) = &key.label {
            check_text("label", l)?;
        }
        if let Some(e) = key.expires_at
            && e <= at
        {
            return Err(StoreError::Invalid(format!(
                "expiry {} is not in the future",
                format_ms(e)
            )));
        }
        self.insert_new(
            "INSERT INTO api_keys (id, user_id, hash, planes, label, created_at, expires_at)
             SELECT ?1, id, ?3, ?4, ?5, ?6, ?7 FROM users WHERE name = ?2",
            params![
                key.id,
                user.name,
                key.hash,
                key.planes.as_str(),
                key.label,
                at,
                key.expires_at
            ],
            || format!("a key with id {:?} already exists", key.id),
        )?;
        self.key(&key.id)?
            .ok_or_else(|| StoreError::NotFound(format!("no key {:?}", key.id)))
    }

    const KEY_COLUMNS: &str = "k.id, u.name, k.planes, k.label, k.created_at, k.expires_at,
        k.revoked_at, k.last_used_at, k.hash, u.disabled";

    fn key_rows(&self, filter: &str, arg: Option<&str>) -> Result<Vec<KeyCredential>> {
        let sql = format!(
            "SELECT {} FROM api_keys k JOIN users u ON u.id = k.user_id {filter} ORDER BY u.name, k.created_at, k.id",
            Self::KEY_COLUMNS
        );
        // A row whose planes are unknown reads as `Err(what)`, a corrupt database.
        let rows = self.rows(&sql, rusqlite::params_from_iter(arg), |r| {
            let id: String = r.get(0)?;
            let planes: String = r.get(2)?;
            let Ok(planes) = KeyPlanes::parse(&planes) else {
                return Ok(Err(format!("key {id:?} has unknown planes {planes:?}")));
            };
            Ok(Ok(KeyCredential {
                record: KeyRecord {
                    id,
                    user: r.get(1)?,
                    planes,
                    label: r.get(3)?,
                    created_at: r.get(4)?,
                    expires_at: r.get(5)?,
                    revoked_at: r.get(6)?,
                    last_used_at: r.get(7)?,
                },
                hash: r.get(8)?,
                user_disabled: r.get(9)?,
                teams: Vec::new(),
            }))
        })?;
        rows.into_iter()
            .map(|row| {
                row.map_err(|message| StoreError::Corrupt {
                    path: self.path.clone(),
                    message,
                })
            })
            .collect()
    }

    /// Keys (of one user, or all), by user then creation; no hashes.
    pub fn keys(&self, user: Option<&str>) -> Result<Vec<KeyRecord>> {
        if let Some(u) = user {
            self.need_user(u)?;
        }
        let rows = match user {
            Some(u) => self.key_rows("WHERE u.name = ?1", Some(u))?,
            None => self.key_rows("", None)?,
        };
        Ok(rows.into_iter().map(|c| c.record).collect())
    }

    /// One key by its public id.
    pub fn key(&self, id: &str) -> Result<Option<KeyRecord>> {
        Ok(self
            .key_rows("WHERE k.id = ?1", Some(id))?
            .into_iter()
            .next()
            .map(|c| c.record))
    }

    /// Revokes a key; revoking it again is a conflict that says when it was revoked.
    pub fn revoke_key(&mut self, id: &str, at: i64) -> Result<KeyRecord> {
        let Some(key) = self.key(id)? else {
            return Err(StoreError::NotFound(format!("no key with id {id:?}")));
        };
        if let Some(when) = key.revoked_at {
            return Err(StoreError::Conflict(format!(
                "key {id:?} was already revoked at {}",
                format_ms(when)
            )));
        }
        self.conn
            .execute(
                "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, at],
            )
            .map_err(|e| self.err(e))?;
        self.key(id)?
            .ok_or_else(|| StoreError::NotFound(format!("no key with id {id:?}")))
    }

    /// Every key with its hash, its owner's state and teams: what the in-memory key table is
    /// built from.
    pub fn key_credentials(&self) -> Result<Vec<KeyCredential>> {
        let teams = self.teams_by_user()?;
        let mut rows = self.key_rows("", None)?;
        for c in &mut rows {
            c.teams = teams.get(&c.record.user).cloned().unwrap_or_default();
        }
        Ok(rows)
    }

    /// Records when keys were last used (only moves forward). One transaction.
    pub fn record_key_use(&mut self, uses: &[(String, i64)]) -> Result<()> {
        let path = self.path.clone();
        let err = |e| crate::sqlite(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        for (id, at) in uses {
            tx.execute(
                "UPDATE api_keys SET last_used_at = ?2
                 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
                params![id, at],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// SQLite's `PRAGMA data_version`: changes when another connection (in this process or
    /// another) commits to the database.
    pub fn data_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, user: &str) -> NewKey {
        NewKey {
            id: id.into(),
            user: user.into(),
            hash: vec![7; 32],
            planes: KeyPlanes::Data,
            label: Some("laptop".into()),
            expires_at: None,
        }
    }

    #[test]
    fn names_are_checked_precisely() {
        assert!(check_user_name("alice").is_ok());
        assert!(check_user_name("alice.smith@example.com").is_ok());
        assert!(check_team_name("platform-eng_2").is_ok());
        let msg = |r: Result<()>| r.unwrap_err().to_string();
        assert_eq!(msg(check_user_name("")), "user name is empty");
        assert_eq!(
            msg(check_user_name("al ice")),
            "user name \"al ice\" has ' ' at position 3: only letters, digits and '.', '_', '-', '@' are allowed"
        );
        assert_eq!(
            msg(check_team_name("-ops")),
            "team name \"-ops\" must start with a letter or digit, not '-'"
        );
        assert!(msg(check_team_name("a@b")).contains("'@' at position 2"));
        assert!(msg(check_user_name(&"x".repeat(129))).contains("longer than 128"));
        assert!(msg(check_text("label", "a\nb")).contains("control character"));
    }

    #[test]
    fn expiries_parse_as_durations_or_dates_in_the_future() {
        let now = 1_000_000_000_000;
        assert_eq!(parse_expires("30d", now).unwrap(), now + 30 * 86_400_000);
        assert_eq!(parse_expires("12h", now).unwrap(), now + 12 * 3_600_000);
        assert_eq!(parse_expires("2w", now).unwrap(), now + 14 * 86_400_000);
        assert_eq!(parse_expires("45s", now).unwrap(), now + 45_000);
        assert_eq!(parse_expires("2027-01-01", now).unwrap(), 1_798_761_600_000);
        assert!(
            parse_expires("2000-01-01", now)
                .unwrap_err()
                .to_string()
                .contains("not in the future")
        );
        assert!(parse_expires("0d", now).is_err());
        assert!(
            parse_expires("soon", now)
                .unwrap_err()
                .to_string()
                .contains("neither a duration")
        );
    }

    #[test]
    fn users_teams_and_memberships() {
        let mut s = Store::open_in_memory().unwrap();
        s.add_user("alice", Some("Alice A."), 1).unwrap();
        s.add_user("bob", None, 2).unwrap();
        assert!(matches!(
            s.add_user("alice", None, 3),
            Err(StoreError::Conflict(m)) if m == "user \"alice\" already exists"
        ));
        assert!(matches!(
            s.add_user("bad name", None, 3),
            Err(StoreError::Invalid(_))
        ));
        s.add_team("ops", 4).unwrap();
        assert!(matches!(s.add_team("ops", 5), Err(StoreError::Conflict(_))));
        assert!(s.add_member("ops", "alice", 6).unwrap());
        assert!(
            !s.add_member("ops", "alice", 6).unwrap(),
            "already a member"
        );
        assert!(
            matches!(s.add_member("ops", "carol", 6), Err(StoreError::NotFound(m)) if m == "no user \"carol\"")
        );
        assert!(
            matches!(s.add_member("dev", "alice", 6), Err(StoreError::NotFound(m)) if m == "no team \"dev\"")
        );
        assert_eq!(s.user("alice").unwrap().unwrap().teams, vec!["ops"]);
        assert_eq!(s.team("ops").unwrap().unwrap().members, vec!["alice"]);
        assert!(matches!(
            s.remove_member("ops", "bob"),
            Err(StoreError::NotFound(_))
        ));
        let u = s.update_user("alice", Some(None), Some(true)).unwrap();
        assert_eq!((u.display_name, u.disabled), (None, true));
        assert_eq!(s.users().unwrap().len(), 2);
        // Removing a user removes its memberships and keys.
        s.add_key(&key("k1", "alice"), 7).unwrap();
        s.remove_user("alice").unwrap();
        assert!(s.team("ops").unwrap().unwrap().members.is_empty());
        assert!(s.key("k1").unwrap().is_none());
        assert!(matches!(
            s.remove_user("alice"),
            Err(StoreError::NotFound(_))
        ));
        s.add_member("ops", "bob", 8).unwrap();
        s.remove_team("ops").unwrap();
        assert!(s.user("bob").unwrap().unwrap().teams.is_empty());
    }

    #[test]
    fn key_lifecycle() {
        let mut s = Store::open_in_memory().unwrap();
        s.add_user("alice", None, 1).unwrap();
        s.add_team("ops", 1).unwrap();
        s.add_member("ops", "alice", 1).unwrap();
        assert!(matches!(
            s.add_key(&key("k1", "nobody"), 2),
            Err(StoreError::NotFound(_))
        ));
        let rec = s.add_key(&key("k1", "alice"), 2).unwrap();
        assert_eq!(rec.state(3), "active");
        assert!(matches!(
            s.add_key(&key("k1", "alice"), 2),
            Err(StoreError::Conflict(_))
        ));
        let mut expired = key("k2", "alice");
        expired.expires_at = Some(1);
        assert!(matches!(
            s.add_key(&expired, 2),
            Err(StoreError::Invalid(_))
        ));
        expired.expires_at = Some(10);
        expired.planes = KeyPlanes::Both;
        s.add_key(&expired, 2).unwrap();
        assert_eq!(s.key("k2").unwrap().unwrap().state(10), "expired");
        assert_eq!(s.keys(Some("alice")).unwrap().len(), 2);
        assert!(matches!(s.keys(Some("bob")), Err(StoreError::NotFound(_))));
        let creds = s.key_credentials().unwrap();
        assert_eq!(creds[0].hash, vec![7; 32]);
        assert_eq!(creds[0].teams, vec!["ops"]);
        let revoked = s.revoke_key("k1", 5).unwrap();
        assert_eq!((revoked.revoked_at, revoked.state(6)), (Some(5), "revoked"));
        assert!(
            matches!(s.revoke_key("k1", 6), Err(StoreError::Conflict(m)) if m.contains("already revoked"))
        );
        assert!(matches!(
            s.revoke_key("zz", 6),
            Err(StoreError::NotFound(_))
        ));
        s.record_key_use(&[("k2".into(), 9), ("k2".into(), 8)])
            .unwrap();
        assert_eq!(s.key("k2").unwrap().unwrap().last_used_at, Some(9));
        // The planes column only takes the three values.
        let e = s
            .conn
            .execute("UPDATE api_keys SET planes = 'admin' WHERE id = 'k2'", []);
        assert!(e.is_err());
        // ... and a row that has another anyway is reported as a corrupt database.
        s.conn
            .pragma_update(None, "ignore_check_constraints", true)
            .unwrap();
        s.conn
            .execute("UPDATE api_keys SET planes = 'admin' WHERE id = 'k2'", [])
            .unwrap();
        assert!(matches!(
            s.keys(None),
            Err(StoreError::Corrupt { message, .. }) if message == "key \"k2\" has unknown planes \"admin\""
        ));
    }
}
