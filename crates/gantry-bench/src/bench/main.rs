//! `bench`: measures Gantry against the same upstream reached directly, in one run, as the
//! budgets of DESIGN.md §8 ask (ratios, never absolute figures from different runs).
//!
//! It starts everything itself: `bench-upstream` (found next to this binary), `gantry serve`
//! with generated configs, pinned with `taskset` when possible (load generator on core 0,
//! upstream and Gantry sharing core 1), and waits for each by polling. Then:
//! 1. Gantry's RSS idle and with 1,000 / 10,000 idle legacy sessions;
//! 2. `tools/call echo` direct and through Gantry, legacy sessions and stateless
//!    2026-07-28 requests, at each concurrency level (interleaved so that background noise
//!    hits both alike), with Gantry's and the upstream's CPU time per call;
//! 3. `tools/list` on an endpoint of 50 servers × 100 dummy tools;
//! 4. calls to a stdio upstream through Gantry.
//!
//! `--soak` runs the soak instead (`soak.rs`): many sessions calling through restarts of
//! servers and config reloads, for a bounded time, every answer checked.
//!
//! The exit status says whether everything worked (every answer checked), never whether a
//! figure was good: timing is reported, not asserted.

mod client;
mod load;
mod procs;
mod report;
mod soak;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;

use client::{Era, Failure, McpClient};
use load::{Errors, Plan, Work};
use procs::{Cores, Proc};
use report::{CallRow, ListRow, Memory, Report, Support};

/// Servers on the list endpoint.
const LIST_SERVERS: usize = 50;
/// Dummy tools per server on the list endpoint (each also has `echo` and `payload`).
const LIST_TOOLS: usize = 100;
/// Connections used to open and delete idle sessions.
const SESSION_CONNS: usize = 8;

/// Benchmark Gantry against the same MCP upstream reached directly.
#[derive(Parser)]
#[command(name = "bench", version, about)]
struct Cli {
    /// Short levels and fewer of them (well under a minute); accepts debug builds.
    #[arg(long)]
    quick: bool,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The gantry binary [default: $GANTRY_BIN, else `gantry` next to this binary, else
    /// target/release/gantry].
    #[arg(long)]
    gantry: Option<PathBuf>,
    /// The bench-upstream binary [default: next to this binary].
    #[arg(long)]
    upstream: Option<PathBuf>,
    /// Measured seconds per level [default: 3, quick 0.5].
    #[arg(long)]
    duration: Option<f64>,
    /// Warm-up seconds per level [default: 0.5, quick 0.1].
    #[arg(long)]
    warmup: Option<f64>,
    /// Concurrency levels, comma-separated [default: 1,16,64,256; quick 1,16].
    #[arg(long, value_delimiter = ',')]
    levels: Option<Vec<usize>>,
    /// Do not pin processes to cores.
    #[arg(long)]
    no_pin: bool,
    /// Run the full benchmark even with debug builds (its figures then mean little).
    #[arg(long)]
    allow_debug: bool,
    /// Run the soak instead of the benchmark: sessions calling through server kills,
    /// upstream restarts and config reloads; fails only on lost or wrong answers, leftover
    /// processes or Gantry dying (accepts debug builds).
    #[arg(long)]
    soak: bool,
    /// Seconds of load in the soak.
    #[arg(long, default_value_t = 30.0)]
    soak_seconds: f64,
    /// Concurrent sessions in the soak (half legacy sessions, half stateless 2026-07-28).
    #[arg(long, default_value_t = 32)]
    soak_sessions: usize,
}

/// Resolved settings.
struct Settings {
    quick: bool,
    gantry: PathBuf,
    upstream: PathBuf,
    warmup: Duration,
    measure: Duration,
    levels: Vec<usize>,
    stdio_levels: Vec<usize>,
    session_levels: Vec<usize>,
    debug_build: bool,
}

impl Settings {
    /// How long a started process gets to answer (debug builds start slower).
    fn ready_timeout(&self) -> Duration {
        Duration::from_secs(if self.debug_build { 120 } else { 60 })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any thread exists, so that every thread inherits the core.
    let cores = procs::plan_cores(!cli.no_pin);
    let settings = match settings(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    // One thread: the load generator is one core's worth of work, like `wrk -t1`.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.soak {
        return soak::main(&rt, &settings, cores, &cli);
    }
    let report = match rt.block_on(run(&settings, cores)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    publish(
        &report.render(),
        &report,
        report.failures.is_empty(),
        cli.json.as_deref(),
    )
}

/// Prints a run's report, writes its figures to `json` when asked, and gives the exit code:
/// success only when the run had no failures and the figures (if asked for) were written.
fn publish(
    rendered: &str,
    figures: &impl serde::Serialize,
    passed: bool,
    json: Option<&Path>,
) -> ExitCode {
    print!("{rendered}");
    if let Some(path) = json {
        let written = serde_json::to_vec_pretty(figures)
            .map_err(anyhow::Error::from)
            .and_then(|j| std::fs::write(path, j).map_err(anyhow::Error::from));
        if let Err(e) = written {
            eprintln!("bench: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("figures written to {}", path.display());
    }
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    let here = std::env::current_exe().context("cannot locate the bench binary")?;
    let sibling = |name: &str| here.with_file_name(name);
    let gantry = cli
        .gantry
        .clone()
        .or_else(|| std::env::var_os("GANTRY_BIN").map(PathBuf::from))
        .or_else(|| Some(sibling("gantry")).filter(|p| p.is_file()))
        .unwrap_or_else(|| PathBuf::from("target/release/gantry"));
    let upstream = cli
        .upstream
        .clone()
        .unwrap_or_else(|| sibling("bench-upstream"));
    for (what, p) in [("gantry", &gantry), ("bench-upstream", &upstream)] {
        if !p.is_file() {
            bail!(
                "{what} binary not found at {} (build it: cargo build --release -p gantry-cli -p gantry-bench)",
                p.display()
            );
        }
    }
    let debug_build = cfg!(debug_assertions)
        || gantry.components().any(|c| c.as_os_str() == "debug")
        || upstream.components().any(|c| c.as_os_str() == "debug");
    if debug_build && !cli.quick && !cli.allow_debug && !cli.soak {
        bail!(
            "debug builds give meaningless figures: build with --release (scripts/bench does), or pass --quick or --allow-debug"
        );
    }
    let secs = |v: Option<f64>, default: f64| -> anyhow::Result<Duration> {
        let v = v.unwrap_or(default);
        Duration::try_from_secs_f64(v).with_context(|| format!("bad duration {v}"))
    };
    let (measure, warmup) = if cli.quick {
        (secs(cli.duration, 0.5)?, secs(cli.warmup, 0.1)?)
    } else {
        (secs(cli.duration, 3.0)?, secs(cli.warmup, 0.5)?)
    };
    let levels = match &cli.levels {
        Some(l) if l.iter().all(|&c| c > 0) && !l.is_empty() => l.clone(),
        Some(_) => bail!("--levels needs positive numbers"),
        None if cli.quick => vec![1, 16],
        None => vec![1, 16, 64, 256],
    };
    Ok(Settings {
        quick: cli.quick,
        gantry,
        upstream,
        warmup,
        measure,
        levels,
        stdio_levels: if cli.quick { vec![1, 16] } else { vec![1, 64] },
        session_levels: if cli.quick {
            vec![100, 1_000]
        } else {
            vec![1_000, 10_000]
        },
        debug_build,
    })
}

/// A scratch directory for configs and logs, removed on drop unless the run failed.
struct Scratch {
    dir: PathBuf,
    keep: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("bench: logs and configs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs `work` in a new scratch directory `<tmp>/gantry-<what>-<pid>`, which is kept when
/// the work fails or `failed` says its report has failures, and removed otherwise.
async fn in_scratch<R>(
    what: &str,
    failed: impl FnOnce(&R) -> bool,
    work: impl AsyncFnOnce(&Path) -> anyhow::Result<R>,
) -> anyhow::Result<R> {
    let mut scratch = Scratch {
        dir: std::env::temp_dir().join(format!("gantry-{what}-{}", std::process::id())),
        keep: true,
    };
    std::fs::create_dir_all(&scratch.dir)
        .with_context(|| format!("creating {}", scratch.dir.display()))?;
    let result = work(&scratch.dir).await;
    scratch.keep = match &result {
        Ok(r) => failed(r),
        Err(_) => true,
    };
    result
}

async fn run(s: &Settings, cores: Cores) -> anyhow::Result<Report> {
    in_scratch(
        "bench",
        |r: &Report| !r.failures.is_empty(),
        async |dir| measure_all(s, &cores, dir).await,
    )
    .await
}

async fn measure_all(s: &Settings, cores: &Cores, dir: &Path) -> anyhow::Result<Report> {
    let tick = procs::clock_ticks_per_sec();
    let mut report = Report {
        mode: if s.quick { "quick" } else { "full" },
        cores: cores.clone(),
        gantry_bin: s.gantry.display().to_string(),
        upstream_bin: s.upstream.display().to_string(),
        debug_build: s.debug_build,
        warmup_s: s.warmup.as_secs_f64(),
        measure_s: s.measure.as_secs_f64(),
        clock_ticks_per_sec: tick,
        calls: Vec::new(),
        comparisons: Vec::new(),
        saturation: Vec::new(),
        stateless_through_gantry: Support {
            supported: false,
            detail: None,
        },
        memory: Memory::default(),
        list: None,
        stdio: Vec::new(),
        budgets: Vec::new(),
        failures: Vec::new(),
    };
    let ready_timeout = s.ready_timeout();

    // --- The echo upstream and a Gantry with it as the only server.
    let up_addr = procs::free_port()?;
    eprintln!("bench: starting bench-upstream on {up_addr}");
    let mut upstream = Proc::spawn(
        "bench-upstream",
        &s.upstream,
        &["--listen".into(), up_addr.to_string()],
        cores,
        dir,
    )?;
    upstream.wait_healthy(up_addr, ready_timeout).await?;

    let gw_addr = procs::free_port()?;
    let config = format!(
        // The same upstream twice: `up` as Gantry finds it (it speaks 2026-07-28, so Gantry
        // uses that era), `up_legacy` pinned to the legacy era, so that the legacy rows
        // compare like with like (legacy client, legacy upstream). `max_in_flight` above the
        // highest concurrency: the benchmark measures the proxy, not the busy limit.
        "listen = {listen}\n\n[servers.up]\nurl = {url}\nmax_in_flight = 1024\n\n[servers.up_legacy]\nurl = {url}\nprotocol = \"legacy\"\nmax_in_flight = 1024\n\n\
         [endpoints.bench]\nservers = [\"up\"]\nnaming = \"priority\"\n\n\
         [endpoints.bench_legacy]\nservers = [\"up_legacy\"]\nnaming = \"priority\"\n",
        listen = toml_str(&gw_addr.to_string()),
        url = toml_str(&format!("http://{up_addr}/mcp")),
    );
    eprintln!("bench: starting gantry on {gw_addr}");
    let mut gantry = start_gantry(s, cores, dir, "gantry", &config, gw_addr, "warn")?;
    gantry.wait_healthy(gw_addr, ready_timeout).await?;
    eprintln!("bench: gantry is pid {}", gantry.pid());
    wait_tools(&mut gantry, gw_addr, "/mcp/bench", 2, ready_timeout).await?;
    wait_tools(&mut gantry, gw_addr, "/mcp/bench_legacy", 2, ready_timeout).await?;

    // --- 1. Memory with idle sessions.
    eprintln!("bench: memory with idle sessions");
    report.memory = measure_memory(s, &gantry, gw_addr).await;
    if report.memory.errors.total() > 0 {
        report.failures.push(format!(
            "idle sessions: {} errors (first: {})",
            report.memory.errors.total(),
            report.memory.errors.first.as_deref().unwrap_or("?")
        ));
    }

    // --- 2. Calls, direct and through Gantry, both eras.
    if let Err(f) = probe(up_addr, "/mcp", Era::Stateless).await {
        report
            .failures
            .push(format!("stateless request direct to bench-upstream: {f}"));
    }
    report.stateless_through_gantry = match probe(gw_addr, "/mcp/bench", Era::Stateless).await {
        Ok(()) => Support {
            supported: true,
            detail: None,
        },
        Err(f) => {
            // Gantry serves 2026-07-28 clients: not answering one is a failure of the run.
            report
                .failures
                .push(format!("stateless request through gantry: {f}"));
            Support {
                supported: false,
                detail: Some(f.to_string()),
            }
        }
    };
    for era in [Era::Legacy, Era::Stateless] {
        for &c in &s.levels {
            // Each era end to end: a legacy client's calls go to the legacy-pinned server.
            let through = match era {
                Era::Legacy => "/mcp/bench_legacy",
                Era::Stateless => "/mcp/bench",
            };
            let targets: &[(&'static str, SocketAddr, &str)] =
                &[("direct", up_addr, "/mcp"), ("gantry", gw_addr, through)];
            for &(target, addr, path) in targets {
                if target == "gantry"
                    && era == Era::Stateless
                    && !report.stateless_through_gantry.supported
                {
                    continue;
                }
                eprintln!("bench: {era} tools/call {target} c={c}");
                let row = call_level(
                    s, tick, era, target, addr, path, c, &gantry, &upstream, up_addr,
                )
                .await;
                note_errors(&mut report.failures, &row);
                report.calls.push(row);
                gantry.check_alive()?;
                upstream.check_alive()?;
            }
        }
    }
    report.memory.after_load_kib = gantry.rss_kib().ok();
    gantry.stop();
    upstream.stop();

    // --- 3 and 4. Many servers and a stdio server behind a second Gantry.
    let many_addr = procs::free_port()?;
    eprintln!("bench: starting bench-upstream --tools {LIST_TOOLS} on {many_addr}");
    let mut many = Proc::spawn(
        "bench-upstream-many",
        &s.upstream,
        &[
            "--listen".into(),
            many_addr.to_string(),
            "--tools".into(),
            LIST_TOOLS.to_string(),
        ],
        cores,
        dir,
    )?;
    many.wait_healthy(many_addr, ready_timeout).await?;
    let gw2_addr = procs::free_port()?;
    let mut config = format!(
        "listen = {}\n\n[servers.stdio]\ncommand = {}\nargs = [\"--stdio\"]\n",
        toml_str(&gw2_addr.to_string()),
        toml_str(&s.upstream.display().to_string())
    );
    let names: Vec<String> = (0..LIST_SERVERS).map(|i| format!("s{i}")).collect();
    for n in &names {
        let _ = write!(
            config,
            "\n[servers.{n}]\nurl = {}\n",
            toml_str(&format!("http://{many_addr}/mcp/{n}"))
        );
    }
    let _ = write!(
        config,
        "\n[endpoints.stdio]\nservers = [\"stdio\"]\nnaming = \"priority\"\n\n[endpoints.list]\nservers = [{}]\nnaming = \"prefix\"\n",
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprintln!(
        "bench: starting gantry with {LIST_SERVERS} HTTP servers and one stdio server on {gw2_addr}"
    );
    let started = Instant::now();
    let mut gantry2 = start_gantry(s, cores, dir, "gantry-many", &config, gw2_addr, "warn")?;
    gantry2.wait_healthy(gw2_addr, ready_timeout).await?;
    eprintln!("bench: gantry is pid {}", gantry2.pid());
    let expect = LIST_SERVERS * (LIST_TOOLS + 2);
    wait_tools(&mut gantry2, gw2_addr, "/mcp/list", expect, ready_timeout).await?;
    let catalog_ms = started.elapsed().as_secs_f64() * 1000.0;
    wait_tools(&mut gantry2, gw2_addr, "/mcp/stdio", 2, ready_timeout).await?;

    eprintln!("bench: tools/list of {expect} tools");
    let out = load::run(&Plan {
        addr: gw2_addr,
        path: "/mcp/list",
        era: Era::Legacy,
        work: Work::ListTools { expect },
        concurrency: 1,
        warmup: s.warmup,
        measure: s.measure,
        watch: vec![gantry2.pid()],
    })
    .await;
    let list = ListRow {
        servers: LIST_SERVERS,
        tools_per_server: LIST_TOOLS + 2,
        tools: expect,
        catalog_complete_ms: catalog_ms,
        concurrency: 1,
        gantry_cpu_us_per_list: per_call(
            out.cpu_ticks.first().copied().flatten(),
            tick,
            out.summary.calls,
        ),
        summary: out.summary,
        errors: out.errors,
    };
    if list.errors.total() > 0 {
        report.failures.push(format!(
            "tools/list of {expect} tools: {} errors (first: {})",
            list.errors.total(),
            list.errors.first.as_deref().unwrap_or("?")
        ));
    }
    report.list = Some(list);

    for &c in &s.stdio_levels {
        eprintln!("bench: stdio upstream through gantry c={c}");
        let out = load::run(&Plan {
            addr: gw2_addr,
            path: "/mcp/stdio",
            era: Era::Legacy,
            work: Work::Echo,
            concurrency: c,
            warmup: s.warmup,
            measure: s.measure,
            watch: vec![gantry2.pid()],
        })
        .await;
        let row = CallRow {
            era: Era::Legacy,
            target: "gantry-stdio",
            concurrency: c,
            gantry_cpu_us_per_call: per_call(
                out.cpu_ticks.first().copied().flatten(),
                tick,
                out.summary.calls,
            ),
            upstream_cpu_us_per_call: None,
            upstream_requests_per_call: None,
            loadgen_core_share: core_share(out.loadgen_ticks, tick, s.measure),
            summary: out.summary,
            errors: out.errors,
            sent: out.sent,
        };
        note_errors(&mut report.failures, &row);
        report.stdio.push(row);
        gantry2.check_alive()?;
    }
    gantry2.stop();
    many.stop();

    report.finish();
    Ok(report)
}

fn start_gantry(
    s: &Settings,
    cores: &Cores,
    dir: &Path,
    name: &str,
    config: &str,
    addr: SocketAddr,
    log: &str,
) -> anyhow::Result<Proc> {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
    Proc::spawn(
        name,
        &s.gantry,
        &[
            "serve".into(),
            "--config".into(),
            path.display().to_string(),
            "--listen".into(),
            addr.to_string(),
            "--log".into(),
            log.into(),
        ],
        cores,
        dir,
    )
}

/// Polls `tools/list` on a fresh session until the endpoint lists `expect` tools (its
/// servers are connected and their catalogs loaded).
async fn wait_tools(
    gantry: &mut Proc,
    addr: SocketAddr,
    path: &str,
    expect: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut last;
    loop {
        gantry.check_alive()?;
        match McpClient::open(addr, path, Era::Legacy).await {
            Ok(mut c) => {
                let listed = c.list_tools().await;
                let _ = c.delete_session().await;
                match listed {
                    Ok(n) if n == expect => return Ok(()),
                    Ok(n) if n > expect => bail!("{path} lists {n} tools, expected {expect}"),
                    Ok(n) => last = format!("{n} of {expect} tools listed"),
                    Err(f) => last = f.to_string(),
                }
            }
            Err(f) => last = f.to_string(),
        }
        if start.elapsed() > timeout {
            bail!(
                "{path} did not list its {expect} tools within {timeout:?} ({last}); gantry log:\n{}",
                gantry.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One stateless `tools/call echo` (and `server/discover` when direct).
async fn probe(addr: SocketAddr, path: &str, era: Era) -> Result<(), Failure> {
    let mut c = McpClient::open(addr, path, era).await?;
    if path == "/mcp" {
        c.discover().await?;
    }
    c.echo("probe").await
}

async fn measure_memory(s: &Settings, gantry: &Proc, addr: SocketAddr) -> Memory {
    let mut m = Memory {
        idle_kib: gantry.rss_kib().unwrap_or(0),
        attempted: s.session_levels.iter().copied().max().unwrap_or(0),
        ..Memory::default()
    };
    let mut ids = Vec::new();
    for &n in &s.session_levels {
        let (more, errors) = load::open_idle_sessions(
            addr,
            "/mcp/bench",
            n.saturating_sub(ids.len()),
            SESSION_CONNS,
        )
        .await;
        ids.extend(more);
        m.errors.merge(&errors);
        if let Ok(kib) = gantry.rss_kib() {
            m.sessions.push(report::SessionsRss {
                sessions: ids.len(),
                rss_kib: kib,
            });
        }
    }
    if let Some(&report::SessionsRss {
        sessions: n,
        rss_kib: kib,
    }) = m.sessions.last()
        && n > 0
        && m.idle_kib > 0
    {
        m.per_session_kib = Some(kib.saturating_sub(m.idle_kib) as f64 / n as f64);
    }
    let errors = load::delete_sessions(addr, "/mcp/bench", ids, SESSION_CONNS).await;
    m.errors.merge(&errors);
    m.after_delete_kib = gantry.rss_kib().ok();
    m
}

/// How many messages the upstream has received, of any method (`GET /stats`): every
/// request Gantry sends counts, not only `tools/call`.
async fn upstream_messages(addr: SocketAddr) -> Option<u64> {
    let mut c = client::Conn::connect(addr).await.ok()?;
    let (status, body) = c.get("/stats").await.ok()?;
    if !status.is_success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    v.get("messages")?.as_u64()
}

#[allow(clippy::too_many_arguments)]
async fn call_level(
    s: &Settings,
    tick: u64,
    era: Era,
    target: &'static str,
    addr: SocketAddr,
    path: &str,
    concurrency: usize,
    gantry: &Proc,
    upstream: &Proc,
    up_addr: SocketAddr,
) -> CallRow {
    let before = upstream_messages(up_addr).await;
    let out = load::run(&Plan {
        addr,
        path,
        era,
        work: Work::Echo,
        concurrency,
        warmup: s.warmup,
        measure: s.measure,
        watch: vec![gantry.pid(), upstream.pid()],
    })
    .await;
    let after = upstream_messages(up_addr).await;
    let upstream_requests_per_call = match (before, after) {
        (Some(b), Some(a)) if target == "gantry" && out.sent > 0 => {
            Some(a.saturating_sub(b) as f64 / out.sent as f64)
        }
        _ => None,
    };
    let calls = out.summary.calls;
    CallRow {
        era,
        target,
        concurrency,
        gantry_cpu_us_per_call: if target == "gantry" {
            per_call(out.cpu_ticks.first().copied().flatten(), tick, calls)
        } else {
            None
        },
        upstream_cpu_us_per_call: per_call(out.cpu_ticks.get(1).copied().flatten(), tick, calls),
        upstream_requests_per_call,
        loadgen_core_share: core_share(out.loadgen_ticks, tick, s.measure),
        summary: out.summary,
        errors: out.errors,
        sent: out.sent,
    }
}

fn per_call(ticks: Option<u64>, tick: u64, calls: u64) -> Option<f64> {
    (calls > 0).then_some(ticks? as f64 * 1e6 / tick as f64 / calls as f64)
}

fn core_share(ticks: Option<u64>, tick: u64, window: Duration) -> Option<f64> {
    Some(ticks? as f64 / tick as f64 / window.as_secs_f64())
}

fn note_errors(failures: &mut Vec<String>, row: &CallRow) {
    let e: &Errors = &row.errors;
    if e.total() > 0 {
        failures.push(format!(
            "{} {} c={}: {} errors (setup {}, transport {}, HTTP {}, JSON-RPC {}, mismatch {}, cleanup {}); first: {}",
            row.era,
            row.target,
            row.concurrency,
            e.total(),
            e.setup,
            e.transport,
            e.http_status,
            e.jsonrpc,
            e.mismatch,
            e.cleanup,
            e.first.as_deref().unwrap_or("?")
        ));
    } else if row.summary.calls == 0 {
        failures.push(format!(
            "{} {} c={}: no call completed in the measured window",
            row.era, row.target, row.concurrency
        ));
    }
}

/// A TOML basic string (JSON string escapes are valid TOML).
fn toml_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}
