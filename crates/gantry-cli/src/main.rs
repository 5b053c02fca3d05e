//! `gantry`: the MCP gateway's command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use gantry_proxy::Gateway;

mod catalog_cmd;
mod identity_cmd;
mod persist;
mod search_cmd;
mod server_cmd;

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
    /// Serve every endpoint over HTTP (`/mcp/<endpoint>`, `/mcp/<endpoint>/sse`, `/healthz`,
    /// `/readyz`).
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
    /// Users: add, list, remove, disable, enable.
    #[command(subcommand)]
    User(identity_cmd::UserCommand),
    /// Teams and their members.
    #[command(subcommand)]
    Team(identity_cmd::TeamCommand),
    /// API keys: create (shown once), list, revoke.
    #[command(subcommand)]
    Key(identity_cmd::KeyCommand),
    /// Servers of a running gateway and their health (via the admin API).
    #[command(subcommand)]
    Server(server_cmd::ServerCommand),
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
    // On one core (as the benchmark pins it) a work-stealing scheduler only adds its own
    // bookkeeping to every wake-up: the single-threaded one runs the same tasks for less.
    let one_core = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let mut builder = if one_core {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let rt = match builder.enable_all().build() {
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
        Command::Server(cmd) => server_cmd::run(cmd).await,
        Command::Catalog(cmd) => tokio::task::spawn_blocking(move || catalog_cmd::run(cmd)).await?,
        Command::User(cmd) => tokio::task::spawn_blocking(move || identity_cmd::user(cmd)).await?,
        Command::Team(cmd) => tokio::task::spawn_blocking(move || identity_cmd::team(cmd)).await?,
        Command::Key(cmd) => tokio::task::spawn_blocking(move || identity_cmd::key(cmd)).await?,
        Command::Check { config } => {
            let c = load(&config)?;
            if let Err(why) = c.check_listen(c.listen) {
                bail!("{why}");
            }
            println!("{}: ok", config.display());
            println!("listen {}", c.listen);
            for s in c.servers.values() {
                let target = match &s.transport {
                    gantry_config::TransportConfig::Stdio(x) => &x.command,
                    gantry_config::TransportConfig::StreamableHttp(h)
                    | gantry_config::TransportConfig::Sse(h) => &h.url,
                };
                println!("server {} ({}: {target})", s.name, s.transport.kind());
            }
            for e in c.endpoints.values() {
                let mode = match e.mode {
                    gantry_config::ToolMode::Direct => String::new(),
                    gantry_config::ToolMode::Progressive => " (progressive)".to_owned(),
                    gantry_config::ToolMode::Auto { above } => {
                        format!(" (auto: progressive above {above} tools)")
                    }
                };
                let access = match &e.access {
                    gantry_config::Access::Restricted { teams } => {
                        format!("restricted to [{}]", teams.join(", "))
                    }
                    other => other.as_str().to_owned(),
                };
                println!(
                    "endpoint /mcp/{} -> [{}]{mode}, access {access}",
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
            let reload = reload_source(&config, listen, data_dir.clone());
            if let Err(why) = c.check_listen(c.listen) {
                bail!("{why}");
            }
            if !c.listen.ip().is_loopback() && c.public_url.is_none() {
                tracing::warn!(
                    "public_url is not set: endpoints' canonical URLs (token audiences, OAuth metadata) default to http://{}, which clients on the network may not use; set public_url to the URL they reach Gantry at",
                    c.listen
                );
            }
            let listener = tokio::net::TcpListener::bind(c.listen)
                .await
                .with_context(|| format!("cannot listen on {}", c.listen))?;
            let dir = persist::data_dir(&c, data_dir);
            c.data_dir = dir.clone();
            let (persist, cache) = persist::Persist::open(&c, &dir).await?;
            tracing::info!(db = %dir.join(gantry_store::DB_FILE).display(), "database");
            // OpenID providers are discovered in the background; their tokens are refused
            // with the reason until then.
            let mut others: Vec<Arc<dyn gantry_auth::Authenticator>> = Vec::new();
            if !c.auth.oidc.is_empty() {
                let oidc = gantry_auth::OidcAuthenticator::from_config(&c.auth.oidc)
                    .map_err(|e| anyhow::anyhow!("[auth.oidc]: {e}"))?;
                for issuer in oidc.issuers() {
                    tracing::info!(%issuer, "accepting JWT bearer tokens");
                }
                others.push(Arc::new(oidc));
            }
            let identity_dir = dir.clone();
            let identity = tokio::task::spawn_blocking(move || {
                identity_cmd::Identity::open(&identity_dir, others)
            })
            .await
            .context("the database thread failed")??;
            let gw = Gateway::start_with(
                c,
                gantry_proxy::Options {
                    catalog: cache,
                    authenticators: identity.authenticators.clone(),
                    admin: Some(identity.admin.clone()),
                    reload: Some(reload),
                    sealing_key: Some(identity.sealing_key),
                },
            );
            check_manual_naming(&gw).await?;
            gw.watch_config();
            let addr = listener.local_addr()?;
            for name in gw.config().endpoints.keys() {
                tracing::info!("endpoint http://{addr}/mcp/{name} (legacy SSE: /mcp/{name}/sse)");
            }
            tracing::info!(
                api_keys = identity.keys,
                "admin API http://{addr}/admin/api/v1 (control-plane credentials only)"
            );
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
            let sync = identity.sync.clone();
            let _ = tokio::task::spawn_blocking(move || sync.close(Duration::from_secs(5))).await;
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
            let ep = gw.endpoint(&name).expect("the endpoint was kept");
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

/// How `gantry serve` loads its config again on a hot reload: the same file, with the same
/// command-line overrides.
fn reload_source(
    path: &std::path::Path,
    listen: Option<std::net::SocketAddr>,
    data_dir: Option<PathBuf>,
) -> gantry_proxy::reload::Source {
    let file = path.to_path_buf();
    gantry_proxy::reload::Source {
        path: file.clone(),
        load: Arc::new(move || {
            let mut c = gantry_config::load(&file)?;
            if let Some(l) = listen {
                c.listen = l;
            }
            if let Some(d) = &data_dir {
                c.data_dir = d.clone();
            }
            Ok(c)
        }),
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
