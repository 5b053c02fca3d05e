//! `gantry search`: rank the tools of a catalog for a query, or write a run file for the
//! tool-search benchmark (`--queries Q.jsonl --out RUN.jsonl`, scored by `score.py`).
//!
//! The catalog is a file (`--catalog`, offline), or the configured servers' (`--config`): the
//! persisted catalog, refreshed by connecting to the servers for a bounded time unless
//! `--offline`. Either way it builds a [`gantry_search::Index`] and prints the same format.

use std::fmt::Write as _;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use gantry_search::{Hit, Index, SearchOptions, ToolDoc};
use serde_json::{Value, json};

/// Arguments of `gantry search`.
#[derive(clap::Args)]
pub(crate) struct SearchArgs {
    /// Tool catalog (JSON): an array of tools that each carry a `server` field, or an object
    /// mapping server names to their tools (an array, or a `tools/list` result `{"tools": [...]}`).
    #[arg(long, required_unless_present = "config", conflicts_with = "config")]
    catalog: Option<PathBuf>,
    /// Search the configured servers' tools instead: their persisted catalog, refreshed by
    /// connecting to them (see --timeout, --offline).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// With --config: the data directory, overriding the config's `data_dir`.
    #[arg(long, requires = "config")]
    data_dir: Option<PathBuf>,
    /// With --config: use the persisted catalog as it is, without connecting to the servers.
    #[arg(long, requires = "config")]
    offline: bool,
    /// With --config: seconds to wait for the servers to answer; a server that has not by
    /// then is searched in its last known catalog.
    #[arg(long, requires = "config", default_value_t = 15.0)]
    timeout: f64,
    /// Only tools of this server (repeat for several).
    #[arg(long = "server", value_name = "SERVER")]
    servers: Vec<String>,
    /// Only tools annotated `readOnlyHint: true`.
    #[arg(long)]
    read_only: bool,
    /// Maximum number of results [default: 10; with --queries: 50 per query, the depth the
    /// benchmark scores MRR at].
    #[arg(long)]
    limit: Option<usize>,
    /// Print results as JSON.
    #[arg(long)]
    json: bool,
    /// Benchmark mode: JSONL file of `{"id", "query"}` objects to run instead of QUERY.
    #[arg(long, requires = "run_out", conflicts_with = "query")]
    queries: Option<PathBuf>,
    /// Benchmark mode: where to write one `{"id", "ranked": [tool ids]}` line per query.
    #[arg(
        long = "out",
        alias = "run-out",
        requires = "queries",
        value_name = "RUN"
    )]
    run_out: Option<PathBuf>,
    /// The query; several words need no quoting.
    #[arg(required_unless_present = "queries")]
    query: Vec<String>,
}

/// Runs `gantry search`.
pub(crate) async fn run(args: SearchArgs) -> anyhow::Result<()> {
    let docs = match (&args.catalog, &args.config) {
        (Some(file), _) => load_catalog(file)?,
        (None, Some(config)) => live_docs(config, &args).await?,
        (None, None) => bail!("give --catalog FILE or --config FILE"),
    };
    let index = Index::build(docs);
    let bench = args.queries.as_ref().zip(args.run_out.as_ref());
    let opts = SearchOptions {
        limit: args.limit.unwrap_or(if bench.is_some() { 50 } else { 10 }),
        servers: args.servers,
        read_only: args.read_only,
        ..SearchOptions::default()
    };
    if let Some((queries, run_out)) = bench {
        return write_run(&index, &opts, queries, run_out);
    }
    let query = args.query.join(" ");
    let hits = index.search(&query, &opts);
    let mut out = String::new();
    if args.json {
        let list: Vec<Value> = hits.iter().map(hit_json).collect();
        out = serde_json::to_string_pretty(&list)?;
        out.push('\n');
    } else if hits.is_empty() {
        eprintln!("no tool matches {query:?}");
    } else {
        for (i, h) in hits.iter().enumerate() {
            let mut flags = String::new();
            if h.read_only == Some(true) {
                flags.push_str(" [read-only]");
            }
            if h.destructive == Some(true) {
                flags.push_str(" [destructive]");
            }
            let _ = writeln!(out, "{:>2}. {}{flags}  ({:.2})", i + 1, h.id, h.score);
            if !h.description.is_empty() {
                let _ = writeln!(out, "    {}", h.description);
            }
        }
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(())
}

fn hit_json(h: &Hit<'_>) -> Value {
    json!({
        "id": h.id,
        "server": h.server,
        "name": h.name,
        "description": h.description,
        "readOnlyHint": h.read_only,
        "destructiveHint": h.destructive,
        "score": h.score,
        "relevance": h.relevance,
    })
}

/// The tools of the configured servers: the persisted catalog, refreshed unless `--offline`.
async fn live_docs(config_path: &Path, args: &SearchArgs) -> anyhow::Result<Vec<ToolDoc>> {
    let config = gantry_config::load(config_path)?;
    if config.servers.is_empty() {
        bail!("{}: the config defines no servers", config_path.display());
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!("--timeout must be a positive number of seconds");
    }
    let dir = crate::persist::data_dir(&config, args.data_dir.clone());
    let (persist, cache) = crate::persist::Persist::open(&config, &dir).await?;
    let catalogs: Vec<(
        String,
        std::sync::Arc<gantry_proxy::upstream::Catalog>,
        bool,
    )> = if args.offline {
        let mut seeds = cache.seeds;
        config
            .servers
            .keys()
            .map(|name| {
                let c = seeds.remove(name);
                let known = c.is_some();
                (
                    name.clone(),
                    std::sync::Arc::new(c.unwrap_or_default()),
                    known,
                )
            })
            .collect()
    } else {
        let limit = std::time::Duration::from_secs_f64(args.timeout);
        // Searching refreshes every server's catalog: lazy ones are started too.
        let mut config = config.clone();
        for s in config.servers.values_mut() {
            s.start = gantry_config::StartMode::Eager;
            s.idle_shutdown = None;
        }
        let gw = gantry_proxy::Gateway::start_with_catalog(config, cache);
        if tokio::time::timeout(limit, gw.settle()).await.is_err() {
            tracing::debug!("not every server answered within {limit:?}");
        }
        let states = gw.catalog_states();
        gw.shutdown().await;
        states
            .into_iter()
            .map(|st| {
                if st.stale {
                    eprintln!(
                        "note: server {} has not answered ({}); searching its last known tools",
                        st.server, st.status
                    );
                } else if st.status != "ready" && st.catalog.tools.is_empty() {
                    eprintln!(
                        "note: server {} has not answered ({}) and has no known tools",
                        st.server, st.status
                    );
                }
                (st.server, st.catalog, true)
            })
            .collect()
    };
    persist.close().await;
    let mut docs = Vec::new();
    for (server, catalog, known) in &catalogs {
        if !known {
            eprintln!("note: server {server} has no persisted catalog yet (run without --offline)");
        }
        for (i, t) in catalog.tools.iter().enumerate() {
            docs.push(tool_doc(server, t, i)?);
        }
    }
    if docs.is_empty() {
        bail!("the configured servers have no known tools");
    }
    Ok(docs)
}

/// Reads a catalog in either accepted shape.
fn load_catalog(path: &Path) -> anyhow::Result<Vec<ToolDoc>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let docs = catalog_docs(&value).with_context(|| format!("in {}", path.display()))?;
    if docs.is_empty() {
        bail!("{}: the catalog has no tools", path.display());
    }
    Ok(docs)
}

fn catalog_docs(value: &Value) -> anyhow::Result<Vec<ToolDoc>> {
    let mut docs = Vec::new();
    match value {
        Value::Array(tools) => {
            for (i, t) in tools.iter().enumerate() {
                let Some(server) = t.get("server").and_then(Value::as_str) else {
                    bail!("tool #{i} has no string `server` field");
                };
                docs.push(tool_doc(server, t, i)?);
            }
        }
        Value::Object(servers) => {
            for (server, tools) in servers {
                let tools = match tools {
                    Value::Array(a) => a,
                    other => match other.get("tools").and_then(Value::as_array) {
                        Some(a) => a,
                        None => bail!(
                            "server {server:?}: expected an array of tools or {{\"tools\": [...]}}"
                        ),
                    },
                };
                for (i, t) in tools.iter().enumerate() {
                    docs.push(tool_doc(server, t, i)?);
                }
            }
        }
        _ => bail!("expected an array of tools or an object of server name -> tools"),
    }
    Ok(docs)
}

fn tool_doc(server: &str, tool: &Value, i: usize) -> anyhow::Result<ToolDoc> {
    ToolDoc::from_tool_json(server, tool)
        .with_context(|| format!("server {server:?}: tool #{i} has no string `name`"))
}

/// Runs every query of a JSONL file and writes the benchmark's run file.
fn write_run(
    index: &Index,
    opts: &SearchOptions,
    queries: &Path,
    out: &Path,
) -> anyhow::Result<()> {
    let file = std::fs::File::open(queries)
        .with_context(|| format!("cannot read {}", queries.display()))?;
    let mut w = BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?,
    );
    let mut n = 0;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let q: Value = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not JSON", queries.display(), i + 1))?;
        let (Some(id), Some(query)) = (q.get("id"), q.get("query").and_then(Value::as_str)) else {
            bail!(
                "{}:{}: expected {{\"id\", \"query\"}}",
                queries.display(),
                i + 1
            );
        };
        let ranked: Vec<&str> = index.search(query, opts).iter().map(|h| h.id).collect();
        serde_json::to_writer(&mut w, &json!({"id": id, "ranked": ranked}))?;
        w.write_all(b"\n")?;
        n += 1;
    }
    w.flush()?;
    eprintln!("{n} queries -> {}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_shapes() {
        let records = json!([
            {"server": "a", "name": "x", "description": "d"},
            {"server": "b", "name": "y"}
        ]);
        let ids: Vec<String> = catalog_docs(&records)
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(ids, ["a/x", "b/y"]);

        let by_server = json!({"a": [{"name": "x"}], "b": {"tools": [{"name": "y"}]}});
        let ids: Vec<String> = catalog_docs(&by_server)
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(ids, ["a/x", "b/y"]);

        assert!(catalog_docs(&json!([{"name": "x"}])).is_err(), "no server");
        assert!(catalog_docs(&json!({"a": [{"description": "no name"}]})).is_err());
        assert!(catalog_docs(&json!({"a": 3})).is_err());
        assert!(catalog_docs(&json!("x")).is_err());
    }
}
