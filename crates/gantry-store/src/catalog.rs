//! The persisted catalog: the last known definitions of every server, a fingerprint per
//! definition, and a log of what was added, changed and removed, by which server and why.
//!
//! A fingerprint is `sha256:` and the hex SHA-256 of the definition's canonical JSON (object
//! keys sorted, no whitespace), so it does not depend on the order a server writes its keys
//! in. Definitions are keyed by kind and name (`name` for tools and prompts, `uri` for
//! resources, `uriTemplate` for templates); an item without its key is not stored.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use rusqlite::{OptionalExtension, params};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{Result, Store, StoreError};

/// A kind of catalog item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `tools/list`.
    Tool,
    /// `prompts/list`.
    Prompt,
    /// `resources/list`.
    Resource,
    /// `resources/templates/list`.
    ResourceTemplate,
}

impl Kind {
    /// Every kind, in catalog order.
    pub const ALL: [Kind; 4] = [
        Kind::Tool,
        Kind::Prompt,
        Kind::Resource,
        Kind::ResourceTemplate,
    ];

    /// Its name in the database and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Prompt => "prompt",
            Kind::Resource => "resource",
            Kind::ResourceTemplate => "resource_template",
        }
    }

    /// The field that names an item of this kind.
    pub fn key_field(self) -> &'static str {
        match self {
            Kind::Tool | Kind::Prompt => "name",
            Kind::Resource => "uri",
            Kind::ResourceTemplate => "uriTemplate",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What made Gantry read a server's lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The server's first connection in this run.
    Connect,
    /// A later connection, after the previous one dropped.
    Reconnect,
    /// The server said a list changed (`notifications/*/list_changed`, or its 2026-07-28
    /// listen stream ended so changes may have been missed).
    ListChanged,
}

impl Trigger {
    /// Its name in the database and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Connect => "connect",
            Trigger::Reconnect => "reconnect",
            Trigger::ListChanged => "list_changed",
        }
    }
}

/// How a definition changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// First seen.
    Added,
    /// Its fingerprint changed.
    Changed,
    /// No longer listed.
    Removed,
}

impl ChangeKind {
    /// Its name in the database and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Changed => "changed",
            ChangeKind::Removed => "removed",
        }
    }
}

/// Everything one server lists, in its order (the definitions as the server sent them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Tools.
    pub tools: Vec<Value>,
    /// Prompts.
    pub prompts: Vec<Value>,
    /// Resources.
    pub resources: Vec<Value>,
    /// Resource templates.
    pub templates: Vec<Value>,
}

impl Snapshot {
    /// The list of one kind.
    pub fn list(&self, kind: Kind) -> &Vec<Value> {
        match kind {
            Kind::Tool => &self.tools,
            Kind::Prompt => &self.prompts,
            Kind::Resource => &self.resources,
            Kind::ResourceTemplate => &self.templates,
        }
    }

    fn list_mut(&mut self, kind: Kind) -> &mut Vec<Value> {
        match kind {
            Kind::Tool => &mut self.tools,
            Kind::Prompt => &mut self.prompts,
            Kind::Resource => &mut self.resources,
            Kind::ResourceTemplate => &mut self.templates,
        }
    }
}

/// A server's stored catalog.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerCatalog {
    /// The server.
    pub server: String,
    /// When it was last synced (Unix ms).
    pub synced_at: i64,
    /// What caused that sync.
    pub trigger: String,
    /// The definitions.
    pub snapshot: Snapshot,
}

/// One stored definition, for listings.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredItem {
    /// The server.
    pub server: String,
    /// Its kind.
    pub kind: Kind,
    /// Its name (or URI, or URI template).
    pub name: String,
    /// Its fingerprint.
    pub fingerprint: String,
    /// When it was first seen (Unix ms).
    pub first_seen: i64,
    /// When its fingerprint last changed (Unix ms).
    pub changed_at: i64,
    /// The definition.
    pub definition: Value,
}

/// One recorded change.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// Its sequence number.
    pub id: i64,
    /// The server whose list it was.
    pub server: String,
    /// The item's kind.
    pub kind: String,
    /// The item's name (or URI, or URI template).
    pub name: String,
    /// `added`, `changed` or `removed`.
    pub change: String,
    /// When it was seen (Unix ms).
    pub at: i64,
    /// The fingerprint before (none when added).
    pub old_fingerprint: Option<String>,
    /// The fingerprint after (none when removed).
    pub new_fingerprint: Option<String>,
    /// What made Gantry read the list: `connect`, `reconnect` or `list_changed`.
    pub trigger: String,
}

/// Which changes to read.
#[derive(Clone, Debug, Default)]
pub struct ChangeFilter {
    /// Only this server's.
    pub server: Option<String>,
    /// Only these kinds of change (`added`, `changed`, `removed`); empty: all.
    pub changes: Vec<ChangeKind>,
    /// At most this many, the most recent (all when `None`).
    pub limit: Option<usize>,
}

/// The fingerprint of a definition: `sha256:` + hex of the SHA-256 of its canonical JSON.
pub fn fingerprint(definition: &Value) -> String {
    let mut canon = String::new();
    canonical(definition, &mut canon);
    let digest = Sha256::digest(canon.as_bytes());
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        use fmt::Write as _;
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// JSON with object keys sorted (by their UTF-8 bytes) and no whitespace.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(k.as_str()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The items of one kind that can be stored, keyed and de-duplicated (first wins).
fn keyed(kind: Kind, list: &[Value]) -> Vec<(&str, &Value)> {
    let mut seen = std::collections::HashSet::new();
    list.iter()
        .filter_map(|item| {
            let key = item.get(kind.key_field())?.as_str()?;
            seen.insert(key).then_some((key, item))
        })
        .collect()
}

// === impl Store: catalog ===

impl Store {
    /// Stores `snapshot` as `server`'s catalog and records what was added, changed (new
    /// fingerprint) and removed since the stored one, with `trigger` and the time `at` (Unix
    /// ms). Returns the changes recorded. One transaction.
    pub fn sync_catalog(
        &mut self,
        server: &str,
        trigger: Trigger,
        snapshot: &Snapshot,
        at: i64,
    ) -> Result<Vec<Change>> {
        let path = self.path.clone();
        let err = |e| crate::sqlite(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut changes = Vec::new();
        for kind in Kind::ALL {
            // name -> fingerprint, as stored.
            let mut old: HashMap<String, String> = {
                let mut stmt = tx
                    .prepare(
                        "SELECT name, fingerprint FROM catalog_items WHERE server = ?1 AND kind = ?2",
                    )
                    .map_err(err)?;
                let rows = stmt
                    .query_map(params![server, kind.as_str()], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                    })
                    .map_err(err)?;
                rows.collect::<rusqlite::Result<_>>().map_err(err)?
            };
            for (position, (name, def)) in keyed(kind, snapshot.list(kind)).into_iter().enumerate()
            {
                let fp = fingerprint(def);
                let text = def.to_string();
                let change = match old.remove(name) {
                    None => Some((ChangeKind::Added, None)),
                    Some(prev) if prev != fp => Some((ChangeKind::Changed, Some(prev))),
                    Some(_) => None,
                };
                tx.execute(
                    "INSERT INTO catalog_items
                         (server, kind, name, position, fingerprint, definition, first_seen, changed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                     ON CONFLICT (server, kind, name) DO UPDATE SET
                         position = excluded.position,
                         definition = excluded.definition,
                         changed_at = CASE WHEN catalog_items.fingerprint = excluded.fingerprint
                                           THEN catalog_items.changed_at ELSE excluded.changed_at END,
                         fingerprint = excluded.fingerprint",
                    params![server, kind.as_str(), name, position as i64, fp, text, at],
                )
                .map_err(err)?;
                if let Some((change, prev)) = change {
                    changes.push(
                        record(&tx, server, kind, name, change, at, prev, Some(fp), trigger)
                            .map_err(err)?,
                    );
                }
            }
            let mut gone: Vec<(String, String)> = old.into_iter().collect();
            gone.sort();
            for (name, prev) in gone {
                tx.execute(
                    "DELETE FROM catalog_items WHERE server = ?1 AND kind = ?2 AND name = ?3",
                    params![server, kind.as_str(), name],
                )
                .map_err(err)?;
                changes.push(
                    record(
                        &tx,
                        server,
                        kind,
                        &name,
                        ChangeKind::Removed,
                        at,
                        Some(prev),
                        None,
                        trigger,
                    )
                    .map_err(err)?,
                );
            }
        }
        tx.execute(
            "INSERT INTO catalog_servers (server, synced_at, trigger) VALUES (?1, ?2, ?3)
             ON CONFLICT (server) DO UPDATE SET synced_at = excluded.synced_at, trigger = excluded.trigger",
            params![server, at, trigger.as_str()],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(changes)
    }

    /// The stored catalog of `server`, if it was ever synced.
    pub fn load_catalog(&self, server: &str) -> Result<Option<ServerCatalog>> {
        let head: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT synced_at, trigger FROM catalog_servers WHERE server = ?1",
                [server],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((synced_at, trigger)) = head else {
            return Ok(None);
        };
        let mut snapshot = Snapshot::default();
        for item in self.items(Some(server))? {
            snapshot.list_mut(item.kind).push(item.definition);
        }
        Ok(Some(ServerCatalog {
            server: server.to_owned(),
            synced_at,
            trigger,
            snapshot,
        }))
    }

    /// The stored catalogs of every server ever synced, by name.
    pub fn load_catalogs(&self) -> Result<BTreeMap<String, ServerCatalog>> {
        let names: Vec<String> = self.rows(
            "SELECT server FROM catalog_servers ORDER BY server",
            [],
            |r| r.get(0),
        )?;
        let mut out = BTreeMap::new();
        for n in names {
            if let Some(c) = self.load_catalog(&n)? {
                out.insert(n, c);
            }
        }
        Ok(out)
    }

    /// Every stored definition (of one server, or all), by server, kind, then list order.
    pub fn items(&self, server: Option<&str>) -> Result<Vec<StoredItem>> {
        let rows = self.rows(
            "SELECT server, kind, name, fingerprint, first_seen, changed_at, definition
             FROM catalog_items WHERE ?1 IS NULL OR server = ?1
             ORDER BY server,
                      CASE kind WHEN 'tool' THEN 0 WHEN 'prompt' THEN 1
                                WHEN 'resource' THEN 2 ELSE 3 END,
                      position",
            [server],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, String>(6)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for (server, kind, name, fingerprint, first_seen, changed_at, def) in rows {
            let corrupt = |message: String| StoreError::Corrupt {
                path: self.path.clone(),
                message,
            };
            let kind = Kind::parse(&kind)
                .ok_or_else(|| corrupt(format!("unknown catalog kind {kind:?}")))?;
            let definition = serde_json::from_str(&def).map_err(|e| {
                corrupt(format!(
                    "definition of {server}/{kind} {name:?} is not JSON: {e}"
                ))
            })?;
            out.push(StoredItem {
                server,
                kind,
                name,
                fingerprint,
                first_seen,
                changed_at,
                definition,
            });
        }
        Ok(out)
    }

    /// Recorded changes, oldest first.
    pub fn changes(&self, filter: &ChangeFilter) -> Result<Vec<Change>> {
        let kinds: Vec<&str> = filter.changes.iter().map(|c| c.as_str()).collect();
        let kinds = (!kinds.is_empty()).then(|| kinds.join(","));
        let limit = filter.limit.map_or(-1, |l| l as i64);
        self.rows(
            "SELECT id, server, kind, name, change, at, old_fingerprint, new_fingerprint, trigger
             FROM (SELECT * FROM catalog_changes
                   WHERE (?1 IS NULL OR server = ?1)
                     AND (?2 IS NULL OR instr(',' || ?2 || ',', ',' || change || ',') > 0)
                   ORDER BY id DESC LIMIT ?3)
             ORDER BY id",
            params![filter.server, kinds, limit],
            |r| {
                Ok(Change {
                    id: r.get(0)?,
                    server: r.get(1)?,
                    kind: r.get(2)?,
                    name: r.get(3)?,
                    change: r.get(4)?,
                    at: r.get(5)?,
                    old_fingerprint: r.get(6)?,
                    new_fingerprint: r.get(7)?,
                    trigger: r.get(8)?,
                })
            },
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn record(
    tx: &rusqlite::Transaction<'_>,
    server: &str,
    kind: Kind,
    name: &str,
    change: ChangeKind,
    at: i64,
    old: Option<String>,
    new: Option<String>,
    trigger: Trigger,
) -> rusqlite::Result<Change> {
    tx.execute(
        "INSERT INTO catalog_changes
             (server, kind, name, change, at, old_fingerprint, new_fingerprint, trigger)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            server,
            kind.as_str(),
            name,
            change.as_str(),
            at,
            old,
            new,
            trigger.as_str()
        ],
    )?;
    Ok(Change {
        id: tx.last_insert_rowid(),
        server: server.to_owned(),
        kind: kind.as_str().to_owned(),
        name: name.to_owned(),
        change: change.as_str().to_owned(),
        at,
        old_fingerprint: old,
        new_fingerprint: new,
        trigger: trigger.as_str().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fingerprints_do_not_depend_on_key_order() {
        let a: Value = serde_json::from_str(
            r#"{"name":"t","description":"d","inputSchema":{"type":"object","properties":{"x":{"type":"string"},"y":{"type":"number"}}}}"#,
        )
        .unwrap();
        let b: Value = serde_json::from_str(
            r#"{ "inputSchema": {"properties": {"y": {"type": "number"}, "x": {"type": "string"}}, "type": "object"},
                 "description": "d", "name": "t" }"#,
        )
        .unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert!(fingerprint(&a).starts_with("sha256:"));
        assert_eq!(fingerprint(&a).len(), 7 + 64);
        // A fixed vector, so the hash cannot change silently between releases.
        assert_eq!(
            fingerprint(&json!({"b": [1, "x"], "a": null})),
            format!("sha256:{:x}", Sha256::digest(br#"{"a":null,"b":[1,"x"]}"#))
        );
        // Any change in content changes it; array order matters.
        let mut c = a.clone();
        c["description"] = json!("d.");
        assert_ne!(fingerprint(&a), fingerprint(&c));
        assert_ne!(fingerprint(&json!([1, 2])), fingerprint(&json!([2, 1])));
    }

    fn tool(name: &str, description: &str) -> Value {
        json!({"name": name, "description": description, "inputSchema": {"type": "object"}})
    }

    fn names(changes: &[Change]) -> Vec<(String, String, String)> {
        changes
            .iter()
            .map(|c| (c.change.clone(), c.kind.clone(), c.name.clone()))
            .collect()
    }

    #[test]
    fn changes_are_detected_and_recorded() {
        let mut store = Store::open_in_memory().unwrap();
        let first = Snapshot {
            tools: vec![tool("a", "A"), tool("b", "B"), tool("c", "C")],
            resources: vec![json!({"uri": "file:///x", "name": "x"})],
            ..Snapshot::default()
        };
        let added = store
            .sync_catalog("s", Trigger::Connect, &first, 10)
            .unwrap();
        assert_eq!(
            names(&added),
            [
                ("added".into(), "tool".into(), "a".into()),
                ("added".into(), "tool".into(), "b".into()),
                ("added".into(), "tool".into(), "c".into()),
                ("added".into(), "resource".into(), "file:///x".into()),
            ]
        );
        assert!(
            added
                .iter()
                .all(|c| c.old_fingerprint.is_none() && c.trigger == "connect")
        );

        // The same catalog with keys reordered: nothing to record.
        let reordered: Value = serde_json::from_str(
            r#"{"inputSchema": {"type": "object"}, "description": "A", "name": "a"}"#,
        )
        .unwrap();
        let same = Snapshot {
            tools: vec![reordered, tool("b", "B"), tool("c", "C")],
            ..first.clone()
        };
        assert!(
            store
                .sync_catalog("s", Trigger::Reconnect, &same, 20)
                .unwrap()
                .is_empty()
        );

        // b's description changes, c goes, d comes, the resource goes.
        let next = Snapshot {
            tools: vec![
                tool("a", "A"),
                tool("b", "B, but different"),
                tool("d", "D"),
            ],
            ..Snapshot::default()
        };
        let changed = store
            .sync_catalog("s", Trigger::ListChanged, &next, 30)
            .unwrap();
        assert_eq!(
            names(&changed),
            [
                ("changed".into(), "tool".into(), "b".into()),
                ("added".into(), "tool".into(), "d".into()),
                ("removed".into(), "tool".into(), "c".into()),
                ("removed".into(), "resource".into(), "file:///x".into()),
            ]
        );
        let b = &changed[0];
        assert_eq!(
            b.old_fingerprint.as_deref(),
            Some(&*fingerprint(&tool("b", "B")))
        );
        assert_eq!(
            b.new_fingerprint.as_deref(),
            Some(&*fingerprint(&tool("b", "B, but different")))
        );
        assert_eq!((b.at, b.trigger.as_str()), (30, "list_changed"));
        assert!(changed[2].new_fingerprint.is_none());

        // What is stored is the new catalog, in the server's order.
        let stored = store.load_catalog("s").unwrap().unwrap();
        assert_eq!(stored.snapshot, next);
        assert_eq!(
            (stored.synced_at, stored.trigger.as_str()),
            (30, "list_changed")
        );
        let items = store.items(Some("s")).unwrap();
        let b = items.iter().find(|i| i.name == "b").unwrap();
        assert_eq!((b.first_seen, b.changed_at), (10, 30));
        let a = items.iter().find(|i| i.name == "a").unwrap();
        assert_eq!((a.first_seen, a.changed_at), (10, 10));

        // The log, filtered.
        let all = store.changes(&ChangeFilter::default()).unwrap();
        assert_eq!(all.len(), 8);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
        let only_changed = store
            .changes(&ChangeFilter {
                changes: vec![ChangeKind::Changed],
                ..ChangeFilter::default()
            })
            .unwrap();
        assert_eq!(
            names(&only_changed),
            [("changed".into(), "tool".into(), "b".into())]
        );
        let last_two = store
            .changes(&ChangeFilter {
                limit: Some(2),
                ..ChangeFilter::default()
            })
            .unwrap();
        assert_eq!(
            last_two.iter().map(|c| c.id).collect::<Vec<_>>(),
            [all[6].id, all[7].id]
        );
        assert!(
            store
                .changes(&ChangeFilter {
                    server: Some("other".into()),
                    ..ChangeFilter::default()
                })
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn servers_are_kept_apart_and_an_empty_catalog_is_still_a_catalog() {
        let mut store = Store::open_in_memory().unwrap();
        assert!(store.load_catalog("s").unwrap().is_none());
        store
            .sync_catalog("s", Trigger::Connect, &Snapshot::default(), 1)
            .unwrap();
        let s = store.load_catalog("s").unwrap().unwrap();
        assert_eq!(s.snapshot, Snapshot::default());
        let t = Snapshot {
            tools: vec![
                tool("a", "A"),
                tool("a", "duplicate"),
                json!({"no": "name"}),
            ],
            ..Snapshot::default()
        };
        store.sync_catalog("t", Trigger::Connect, &t, 2).unwrap();
        let stored = store.load_catalog("t").unwrap().unwrap();
        assert_eq!(
            stored.snapshot.tools,
            [tool("a", "A")],
            "first of a name wins; unnamed skipped"
        );
        assert_eq!(store.load_catalogs().unwrap().len(), 2);
        assert!(
            store
                .load_catalog("s")
                .unwrap()
                .unwrap()
                .snapshot
                .tools
                .is_empty()
        );
    }
}
