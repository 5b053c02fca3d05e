//! The gateway's persisted catalog, wired to the store: the last known catalogs are loaded
//! before the gateway starts (on a blocking thread) and every catalog a server lists is
//! queued to the store's writer thread. The gateway itself never touches the database.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gantry_config::Config;
use gantry_proxy::CatalogCache;
use gantry_proxy::upstream::{Catalog, CatalogSink, Trigger};
use gantry_store::{CatalogWriter, Snapshot, Store};

/// How long shutdown waits for queued catalog writes.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The data directory: `--data-dir`, else the config's `data_dir`.
pub(crate) fn data_dir(config: &Config, flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(|| config.data_dir.clone())
}

/// The open store, behind its writer thread.
pub(crate) struct Persist {
    writer: Arc<CatalogWriter>,
}

impl Persist {
    /// Opens (creating) the database in `dir` and loads the last known catalog of every
    /// server `config` names; servers no longer configured are left out.
    pub(crate) async fn open(
        config: &Config,
        dir: &Path,
    ) -> anyhow::Result<(Persist, CatalogCache)> {
        let dir = dir.to_path_buf();
        let names: Vec<String> = config.servers.keys().cloned().collect();
        let (store, seeds) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let store = Store::open_in(&dir)?;
            let mut seeds = std::collections::HashMap::new();
            for name in names {
                if let Some(c) = store.load_catalog(&name)? {
                    seeds.insert(name, to_catalog(c.snapshot));
                }
            }
            Ok((store, seeds))
        })
        .await
        .context("the database thread failed")??;
        let writer = Arc::new(
            CatalogWriter::start(store).context("cannot start the database writer thread")?,
        );
        let cache = CatalogCache {
            seeds,
            sink: Some(Arc::new(Sink(writer.clone()))),
        };
        Ok((Persist { writer }, cache))
    }

    /// Writes what is queued (bounded wait) and stops the writer.
    pub(crate) async fn close(self) {
        let writer = self.writer;
        let done = tokio::task::spawn_blocking(move || writer.close(FLUSH_TIMEOUT)).await;
        if !matches!(done, Ok(true)) {
            tracing::warn!(
                "catalog writes still queued after {FLUSH_TIMEOUT:?}; the next sync catches up"
            );
        }
    }
}

/// A stored snapshot as the gateway's catalog type.
pub(crate) fn to_catalog(s: Snapshot) -> Catalog {
    Catalog {
        tools: s.tools,
        prompts: s.prompts,
        resources: s.resources,
        templates: s.templates,
        ..Catalog::default()
    }
}

struct Sink(Arc<CatalogWriter>);

impl CatalogSink for Sink {
    fn synced(&self, server: &str, trigger: Trigger, catalog: &Catalog) {
        let trigger = match trigger {
            Trigger::Connect => gantry_store::Trigger::Connect,
            Trigger::Reconnect => gantry_store::Trigger::Reconnect,
            Trigger::ListChanged => gantry_store::Trigger::ListChanged,
        };
        // Only what the server advertised: never its config (env, headers, command).
        let snapshot = Snapshot {
            tools: catalog.tools.clone(),
            prompts: catalog.prompts.clone(),
            resources: catalog.resources.clone(),
            templates: catalog.templates.clone(),
        };
        self.0.submit(server, trigger, snapshot);
    }
}
