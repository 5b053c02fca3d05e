//! `gantry catalog list|changes`: the persisted catalog and its change log, read from the
//! database in the data directory. The admin API (issue 6) will serve the same reads
//! ([`gantry_store::Store::items`], [`gantry_store::Store::changes`]) and the live state
//! ([`gantry_proxy::Gateway::catalog_states`]).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::bail;
use gantry_store::{ChangeFilter, ChangeKind, Store, format_ms};
use serde_json::{Value, json};

/// Arguments shared by the catalog commands.
#[derive(clap::Args)]
pub(crate) struct Where {
    /// Config file (its `data_dir` locates the database; its servers are marked configured).
    #[arg(long, short, default_value = "gantry.toml")]
    config: PathBuf,
    /// Data directory, overriding the config's `data_dir`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Only this server.
    #[arg(long)]
    server: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `gantry catalog ...`.
#[derive(clap::Subcommand)]
pub(crate) enum CatalogCommand {
    /// Every server's last known definitions with their fingerprints.
    List {
        #[command(flatten)]
        at: Where,
    },
    /// Definitions added, changed (new fingerprint) or removed, oldest first.
    Changes {
        #[command(flatten)]
        at: Where,
        /// Only `added`, `changed` or `removed` (repeat for several).
        #[arg(long = "change", value_name = "KIND", value_parser = parse_change)]
        changes: Vec<ChangeKind>,
        /// Only the most recent N.
        #[arg(long)]
        limit: Option<usize>,
    },
}

fn parse_change(s: &str) -> Result<ChangeKind, String> {
    match s {
        "added" => Ok(ChangeKind::Added),
        "changed" => Ok(ChangeKind::Changed),
        "removed" => Ok(ChangeKind::Removed),
        _ => Err("expected added, changed or removed".into()),
    }
}

/// Runs a catalog command (blocking reads; called off the runtime).
pub(crate) fn run(cmd: CatalogCommand) -> anyhow::Result<()> {
    let at = match &cmd {
        CatalogCommand::List { at } | CatalogCommand::Changes { at, .. } => at,
    };
    let config = gantry_config::load(&at.config)?;
    let dir = crate::persist::data_dir(&config, at.data_dir.clone());
    let path = dir.join(gantry_store::DB_FILE);
    let store = Store::open_existing(&path)?;
    if store.is_none() {
        eprintln!(
            "no catalog yet: {} does not exist (gantry serve, gantry stdio and gantry search --config create it)",
            path.display()
        );
    }
    let configured = |s: &str| config.servers.contains_key(s);
    if let Some(s) = &at.server
        && !configured(s)
        && store
            .as_ref()
            .map(|st| st.load_catalog(s))
            .transpose()?
            .flatten()
            .is_none()
    {
        let known: Vec<&str> = config.servers.keys().map(String::as_str).collect();
        bail!(
            "unknown server {s:?}: the config defines [{}]",
            known.join(", ")
        );
    }
    let mut out = String::new();
    match cmd {
        CatalogCommand::List { at } => {
            let mut servers: Vec<Value> = Vec::new();
            let stored = match &store {
                Some(st) => st.load_catalogs()?,
                None => Default::default(),
            };
            let items = match &store {
                Some(st) => st.items(at.server.as_deref())?,
                None => Vec::new(),
            };
            let mut names: Vec<&str> = config.servers.keys().map(String::as_str).collect();
            names.extend(stored.keys().map(String::as_str));
            names.sort_unstable();
            names.dedup();
            for name in names {
                if at.server.as_deref().is_some_and(|s| s != name) {
                    continue;
                }
                let head = stored.get(name);
                let list: Vec<Value> = items
                    .iter()
                    .filter(|i| i.server == name)
                    .map(|i| {
                        json!({
                            "kind": i.kind.as_str(),
                            "name": i.name,
                            "fingerprint": i.fingerprint,
                            "first_seen": format_ms(i.first_seen),
                            "changed_at": format_ms(i.changed_at),
                        })
                    })
                    .collect();
                servers.push(json!({
                    "server": name,
                    "configured": configured(name),
                    "synced_at": head.map(|h| format_ms(h.synced_at)),
                    "trigger": head.map(|h| h.trigger.clone()),
                    "items": list,
                }));
            }
            if at.json {
                out = serde_json::to_string_pretty(&servers)? + "\n";
            } else {
                for s in &servers {
                    let name = s["server"].as_str().unwrap_or_default();
                    let note = if s["configured"] == true {
                        ""
                    } else {
                        " [not in the config: not served]"
                    };
                    match s["synced_at"].as_str() {
                        Some(t) => {
                            let _ = writeln!(
                                out,
                                "{name}: synced {t} ({}){note}",
                                s["trigger"].as_str().unwrap_or_default()
                            );
                        }
                        None => {
                            let _ = writeln!(out, "{name}: never synced{note}");
                        }
                    }
                    for i in s["items"].as_array().into_iter().flatten() {
                        let fp = i["fingerprint"].as_str().unwrap_or_default();
                        let short = fp.get(..19).unwrap_or(fp);
                        let _ = writeln!(
                            out,
                            "  {:<17} {}  {short}",
                            i["kind"].as_str().unwrap_or_default(),
                            i["name"].as_str().unwrap_or_default()
                        );
                    }
                }
            }
        }
        CatalogCommand::Changes { at, changes, limit } => {
            let list = match &store {
                Some(st) => st.changes(&ChangeFilter {
                    server: at.server.clone(),
                    changes,
                    limit,
                })?,
                None => Vec::new(),
            };
            if at.json {
                let rows: Vec<Value> = list.iter().map(gantry_admin::change_json).collect();
                out = serde_json::to_string_pretty(&rows)? + "\n";
            } else {
                for c in &list {
                    let short = |f: &Option<String>| {
                        f.as_deref()
                            .map_or("-".to_owned(), |f| f.get(..19).unwrap_or(f).to_owned())
                    };
                    let _ = writeln!(
                        out,
                        "{}  {:<7} {}/{} {}  {} -> {}  (by {}, {})",
                        format_ms(c.at),
                        c.change,
                        c.server,
                        c.kind,
                        c.name,
                        short(&c.old_fingerprint),
                        short(&c.new_fingerprint),
                        c.server,
                        c.trigger
                    );
                }
            }
        }
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(())
}
