//! `gantry`: the MCP gateway's command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use gantry_proxy::Gateway;

mod catalog_cmd;
mod persist;
mod search_cmd;

/// Gantry: many MCP servers behind curated endpoints.
#[derive(Parser)]
#[command(name = "gantry", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter (tracing syntax), e.g. `info` or `gantry=debug`. `RUST_LOG` also works.
    /// Default: `info` for serve and stdio, `warn` for the other commands.
    #[arg(long, global = true)]
    log: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every endpoint over HTTP (`/mcp/<endpoint>`, `/mcp/<endpoint>/sse`, `/healthz`).
    Serve {
        /// Config file: gantry TOML, or an mcpServers JSON file.
        #[arg(long, short, default_value = "gantry.toml")]
        config: PathBuf,
        /// Override the config's `listen` address.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Override the config's `data_dir` (where the database lives).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Serve one endpoint to a single client on stdin/stdout.
    Stdio {
        /// Config file.
        #[arg(long, short, default_value = "gantry.toml")]
        config: PathBuf,
        /// The endpoint to serve.
        #[arg(long, short)]
        endpoint: Option<String>,
        /// Override the config's `data_dir` (where the database lives).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Check a config file and print what it defines.
    Check {
        /// Config file.
        #[arg(long, short, default_value = "gantry.toml")]
        config: PathBuf,
    },
    /// Search the tools of the configured servers (--config) or of a catalog file
    /// (--catalog), or write a benchmark run file.
    Search(search_cmd::SearchArgs),
    /// The persisted catalog: every server's last known definitions and their changes.
    #[command(subcommand)]
    Catalog(catalog_cmd::CatalogCommand),
}

/// mimalloc: the hot path allocates many small, short-lived buffers (JSON values, HTTP
/// heads); glibc's malloc spent about a tenth of Gantry's CPU on them (perf, issue 4).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = !matches!(cli.command, Command::Serve { .. } | Command::Stdio { .. });
    let default = if quiet { "warn" } else { "info" };
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or(cli.log.clone())
        .unwrap_or_else(|| default.to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<gantry_config::Config> {
    Ok(gantry_config::load(path)?)
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Search(args) => search_cmd::run(args).await,
        Command::Catalog(cmd) => tokio::task::spawn_blocking(move || catalog_cmd::run(cmd)).await?,
        Command::Check { config } => {
            let c = load(&config)?;
            println!("{}: ok", config.display());
            println!("listen {}", c.listen);
            for s in c.servers.values() {
                let kind = match &s.transport {
                    gantry_config::TransportConfig::Stdio(x) => format!("stdio: {}", x.command),
                    gantry_config::TransportConfig::StreamableHttp(h) => {
                        format!("streamable-http: {}", h.url)
                    }
                    gantry_config::TransportConfig::Sse(h) => format!("sse: {}", h.url),
                };
                println!("server {} ({kind})", s.name);
            }
            for e in c.endpoints.values() {
                let mode = match e.mode {
                    gantry_config::ToolMode::Direct => String::new(),
                    gantry_config::ToolMode::Progressive => " (progressive)".to_owned(),
                    gantry_config::ToolMode::Auto { above } => {
                        format!(" (auto: progressive above {above} tools)")
                    }
                };
                println!(
                    "endpoint /mcp/{} -> [{}]{mode}",
                    e.name,
                    e.servers.join(", ")
                );
            }
            Ok(())
        }
        Command::Serve {
            config,
            listen,
            data_dir,
        } => {
            let mut c = load(&config)?;
            if let Some(l) = listen {
                c.listen = l;
            }
            if !c.listen.ip().is_loopback() {
                bail!(
                    "refusing to listen on {}: this build has no client authentication yet, so only loopback addresses are allowed (use 127.0.0.1 or [::1])",
                    c.listen
                );
            }
            let listener = tokio::net::TcpListener::bind(c.listen)
                .await
                .with_context(|| format!("cannot listen on {}", c.listen))?;
            let dir = persist::data_dir(&c, data_dir);
            let (persist, cache) = persist::Persist::open(&c, &dir).await?;
            tracing::info!(db = %dir.join(gantry_store::DB_FILE).display(), "database");
            let gw = Gateway::start_with_catalog(c, cache);
            check_manual_naming(&gw).await?;
            let addr = listener.local_addr()?;
            for name in gw.config().endpoints.keys() {
                tracing::info!("endpoint http://{addr}/mcp/{name} (legacy SSE: /mcp/{name}/sse)");
            }
            gantry_proxy::client::http::serve(gw.clone(), listener, shutdown_signal()).await;
            // Graceful: the listener is closed; calls in flight get `shutdown_grace` to finish
            // (new calls are refused), a second signal cuts it short; then sessions close and
            // every server stops (stdio process groups ended and reaped).
            let grace = gw.config().shutdown_grace;
            tracing::info!(
                in_flight = gw.in_flight(),
                ?grace,
                "shutting down: no new connections; letting calls in flight finish"
            );
            let left = tokio::select! {
                left = gw.drain(grace) => left,
                _ = shutdown_signal() => gw.in_flight(),
            };
            if left > 0 {
                tracing::warn!(
                    in_flight = left,
                    "calls still in flight at the end of the grace period are cut off"
                );
            }
            gw.shutdown().await;
            tracing::info!("stopped");
            persist.close().await;
            Ok(())
        }
        Command::Stdio {
            config,
            endpoint,
            data_dir,
        } => {
            let mut c = load(&config)?;
            let defined = || c.endpoints.keys().cloned().collect::<Vec<_>>().join(", ");
            let name = match endpoint {
                Some(n) if c.endpoints.contains_key(&n) => n,
                Some(n) => bail!("unknown endpoint {n:?}: the config defines [{}]", defined()),
                None if c.endpoints.len() == 1 => {
                    c.endpoints.keys().next().cloned().unwrap_or_default()
                }
                None => bail!("--endpoint is required: the config defines [{}]", defined()),
            };
            // Only the served endpoint and its servers start: one client, one endpoint.
            c.endpoints.retain(|n, _| *n == name);
            let used = c.endpoints[&name].servers.clone();
            c.servers.retain(|n, _| used.contains(n));
            let dir = persist::data_dir(&c, data_dir);
            let (persist, cache) = persist::Persist::open(&c, &dir).await?;
            let gw = Gateway::start_with_catalog(c, cache);
            let ep = gw.endpoint(&name).cloned().expect("the endpoint was kept");
            check_manual_naming(&gw).await?;
            tokio::select! {
                r = gantry_proxy::client::stdio::serve(gw.clone(), ep) => r?,
                _ = shutdown_signal() => {}
            }
            gw.shutdown().await;
            persist.close().await;
            Ok(())
        }
    }
}

/// `manual` naming must not start with unresolved clashes: wait for every server's first
/// attempt, then refuse to serve if any remain.
async fn check_manual_naming(gw: &Arc<Gateway>) -> anyhow::Result<()> {
    let manual = gw
        .config()
        .endpoints
        .values()
        .any(|e| matches!(e.naming, gantry_config::Naming::Manual));
    if !manual {
        return Ok(());
    }
    gw.settle().await;
    let problems = gw.naming_problems();
    if problems.is_empty() {
        return Ok(());
    }
    gw.shutdown().await;
    bail!("unresolved name clashes:\n  {}", problems.join("\n  "))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
