//! `bench --soak`: a bounded soak on loopback. Gantry serves two endpoints over four
//! servers — two HTTP `bench-upstream`s and two `bench-upstream --stdio` — while many
//! sessions (legacy sessions and stateless 2026-07-28 requests) call `echo` with unique
//! messages, and a schedule kills stdio servers (`kill -9`), restarts HTTP upstreams on the
//! same port and edits the config so that Gantry hot-reloads it.
//!
//! Every answer is checked. Errors while a server is down are expected: they are counted
//! per class, never a failure. The run fails only on a lost response (no answer within the
//! client's bound, or a connection that closed after the request was sent), a mismatch (a
//! wrong, duplicated or malformed answer), Gantry dying, Gantry not stopping on SIGTERM, a
//! process of Gantry's stdio servers (or their process groups) left over after it stopped,
//! or a config edit Gantry rejected (the harness's own mistake). Timing never fails it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::Signal;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::client::{Era, Failure, McpClient};
use crate::load::{self, Summary};
use crate::procs::{self, Cores, Proc, ProcInfo};
use crate::{Cli, Settings, start_gantry, toml_str, wait_tools};

/// How long a client waits for any answer before it counts the request as lost. Gantry's
/// own bounds in the soak config (`request_timeout`, `connect_timeout`: 5 s) are well
/// inside it, so Gantry always has an answer — an error at worst — before this.
const CALL_BOUND: Duration = Duration::from_secs(20);
/// Pause after a failed call, so that a worker does not spin on fast errors while a server
/// is down.
const ERROR_PAUSE: Duration = Duration::from_millis(20);
/// Environment variable that marks the stdio servers of one soak run (value `<tag>-<name>`).
const TAG_KEY: &str = "GANTRY_SOAK_SERVER";
/// How long Gantry may take to stop after SIGTERM (its `shutdown_grace` is 2 s here, and a
/// stdio server's staged stop at most about 6 s).
const STOP_BOUND: Duration = Duration::from_secs(20);
/// How long processes killed as Gantry stopped may take to be gone (reaped by init) before
/// they count as left over: generous, as a loaded machine must not turn into a failure.
const REAP_BOUND: Duration = Duration::from_secs(5);
/// How long the servers may take to answer again after the load.
const RECOVERY_BOUND: Duration = Duration::from_secs(30);
/// Samples kept of mismatches and lost responses.
const SAMPLES: usize = 10;

/// The HTTP upstreams: name, protocol Gantry is told to use.
const HTTP_SERVERS: [(&str, Option<&str>); 2] = [("h1", Some("legacy")), ("h2", None)];
/// The stdio upstreams.
const STDIO_SERVERS: [&str; 2] = ["s1", "s2"];
/// Endpoints and their servers.
const ENDPOINTS: [(&str, [&str; 2]); 2] = [("a", ["h1", "s1"]), ("b", ["h2", "s2"])];

pub(crate) fn main(
    rt: &tokio::runtime::Runtime,
    settings: &Settings,
    cores: Cores,
    cli: &Cli,
) -> ExitCode {
    let seconds = match Duration::try_from_secs_f64(cli.soak_seconds) {
        Ok(d) if d >= Duration::from_secs(1) => d,
        _ => {
            eprintln!("bench: --soak-seconds needs at least 1 second");
            return ExitCode::from(2);
        }
    };
    if cli.soak_sessions < 2 {
        eprintln!("bench: --soak-sessions needs at least 2 (one legacy, one stateless)");
        return ExitCode::from(2);
    }
    let report = match rt.block_on(run(settings, cores, seconds, cli.soak_sessions)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: soak: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    crate::publish(
        &report.render(),
        &report,
        report.failures.is_empty(),
        cli.json.as_deref(),
    )
}

// --- Report ---

/// Everything one soak run saw.
#[derive(Debug, Serialize)]
pub(crate) struct SoakReport {
    pub(crate) mode: &'static str,
    pub(crate) cores: Cores,
    pub(crate) gantry_bin: String,
    pub(crate) upstream_bin: String,
    pub(crate) debug_build: bool,
    pub(crate) seconds: f64,
    pub(crate) sessions_legacy: usize,
    pub(crate) sessions_stateless: usize,
    /// `endpoint: server (transport), …`
    pub(crate) topology: Vec<String>,
    /// What the schedule did, in order.
    pub(crate) events: Vec<Event>,
    pub(crate) calls: Calls,
    /// Latency of the calls answered OK, over the whole run.
    pub(crate) latency: Summary,
    pub(crate) per_tool: BTreeMap<String, ToolTally>,
    /// Errors by class (JSON-RPC code and kind, HTTP status, transport, tool error).
    pub(crate) errors: BTreeMap<String, ErrorClass>,
    pub(crate) mismatch_samples: Vec<String>,
    pub(crate) lost_samples: Vec<String>,
    pub(crate) rss_kib: Rss,
    pub(crate) reloads: Reloads,
    /// Milliseconds after the load until every tool answered again (None: not within 30 s).
    pub(crate) recovery_ms: Option<f64>,
    pub(crate) shutdown: Shutdown,
    /// What did not work; empty on success.
    pub(crate) failures: Vec<String>,
}

/// One scheduled fault or edit.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Event {
    /// Seconds after the load started.
    pub(crate) at_s: f64,
    pub(crate) action: String,
    pub(crate) detail: String,
}

/// Call counts.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Calls {
    pub(crate) attempted: u64,
    pub(crate) ok: u64,
    /// Answered with an error (every class of `errors`).
    pub(crate) failed: u64,
    /// Wrong, duplicated or malformed answers.
    pub(crate) mismatches: u64,
    /// No answer within the client's bound, or the connection closed after sending.
    pub(crate) lost: u64,
    /// Connections (and legacy sessions) opened, the first ones included.
    pub(crate) opened: u64,
}

/// Calls of one tool.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct ToolTally {
    pub(crate) attempted: u64,
    pub(crate) ok: u64,
}

/// One class of error.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct ErrorClass {
    pub(crate) count: u64,
    /// Seconds after the start of the load, of the first and the last.
    pub(crate) first_s: f64,
    pub(crate) last_s: f64,
    /// The first one, word for word.
    pub(crate) example: String,
}

/// Gantry's resident memory.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Rss {
    pub(crate) start: u64,
    pub(crate) peak: u64,
    pub(crate) end: u64,
}

/// Config edits and what Gantry logged about them.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Reloads {
    pub(crate) edits: u64,
    /// `config reloaded` lines in Gantry's log (a SIGHUP and the file watch may both
    /// apply one edit: the second finds nothing to change).
    pub(crate) applied: u64,
    /// `config reload rejected` lines.
    pub(crate) rejected: u64,
}

/// Gantry's stop after SIGTERM, and what was left.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Shutdown {
    /// Gantry's exit status, or why there is none.
    pub(crate) exit: String,
    /// It exited by itself with status 0.
    pub(crate) clean: bool,
    pub(crate) seconds: f64,
    /// Gantry's descendants at SIGTERM.
    pub(crate) children_at_sigterm: usize,
    /// Their process groups (other than Gantry's own).
    pub(crate) process_groups: Vec<u32>,
    /// Zombies among them at SIGTERM (children Gantry had not reaped yet).
    pub(crate) zombies_at_sigterm: usize,
    /// Processes left after Gantry exited: its former descendants, members of their
    /// process groups, or anything carrying this run's stdio marker.
    pub(crate) leftovers: Vec<ProcInfo>,
}

// --- The run ---

/// The config's moving parts.
#[derive(Clone, Copy, Debug, Default)]
struct Edits {
    /// A fifth server, `extra` (h2's upstream on another path), on endpoint `a`.
    extra: bool,
    /// `request_timeout` of h2 raised from 5 to 6 s (a changed server: reconnected).
    slower_h2: bool,
    /// Endpoint `b` excludes `*/payload` (a changed endpoint: rebuilt).
    exclude_payload: bool,
}

/// Addresses and names that the config is made of.
struct Topology {
    gantry: SocketAddr,
    http: [SocketAddr; 2],
    upstream_bin: PathBuf,
    tag: String,
    config_path: PathBuf,
}

impl Topology {
    fn config(&self, e: Edits) -> String {
        let mut c = format!(
            "listen = {}\nshutdown_grace = \"2s\"\n\n\
             # Quick checks and a short circuit cool-down, so that a restarted server is\n\
             # found again within a second or two.\n\
             [health]\ninterval = 1\ntimeout = 2\ncircuit_cooldown = 2\n",
            toml_str(&self.gantry.to_string())
        );
        for (i, (name, protocol)) in HTTP_SERVERS.iter().enumerate() {
            let timeout = if *name == "h2" && e.slower_h2 { 6 } else { 5 };
            let _ = write!(
                c,
                "\n[servers.{name}]\nurl = {}\nconnect_timeout = 5\nrequest_timeout = {timeout}\n",
                toml_str(&format!("http://{}/mcp/{name}", self.http[i]))
            );
            if let Some(p) = protocol {
                let _ = writeln!(c, "protocol = {}", toml_str(p));
            }
        }
        for name in STDIO_SERVERS {
            let _ = write!(
                c,
                "\n[servers.{name}]\ncommand = {}\nargs = [\"--stdio\"]\nenv = {{ {TAG_KEY} = {} }}\nconnect_timeout = 5\nrequest_timeout = 5\n",
                toml_str(&self.upstream_bin.display().to_string()),
                toml_str(&format!("{}-{name}", self.tag)),
            );
        }
        if e.extra {
            let _ = write!(
                c,
                "\n[servers.extra]\nurl = {}\nconnect_timeout = 5\nrequest_timeout = 5\n",
                toml_str(&format!("http://{}/mcp/extra", self.http[1]))
            );
        }
        for (ep, servers) in ENDPOINTS {
            let mut list: Vec<&str> = servers.to_vec();
            if ep == "a" && e.extra {
                list.push("extra");
            }
            let _ = write!(
                c,
                "\n[endpoints.{ep}]\nservers = [{}]\nnaming = \"prefix\"\nseparator = \"__\"\n",
                list.iter()
                    .map(|s| toml_str(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if ep == "b" && e.exclude_payload {
                c.push_str("exclude = [\"*/payload\"]\n");
            }
        }
        c
    }

    /// Writes the config atomically (a temporary file renamed over it).
    fn write(&self, e: Edits) -> anyhow::Result<()> {
        let tmp = self.config_path.with_extension("toml.tmp");
        std::fs::write(&tmp, self.config(e))
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.config_path)
            .with_context(|| format!("renaming to {}", self.config_path.display()))
    }
}

async fn run(
    s: &Settings,
    cores: Cores,
    seconds: Duration,
    sessions: usize,
) -> anyhow::Result<SoakReport> {
    crate::in_scratch(
        "soak",
        |r: &SoakReport| !r.failures.is_empty(),
        async |dir| soak(s, &cores, dir, seconds, sessions).await,
    )
    .await
}

async fn soak(
    s: &Settings,
    cores: &Cores,
    dir: &Path,
    seconds: Duration,
    sessions: usize,
) -> anyhow::Result<SoakReport> {
    let ready_timeout = s.ready_timeout();
    let legacy = sessions.div_ceil(2);
    let mut report = SoakReport {
        mode: "soak",
        cores: cores.clone(),
        gantry_bin: s.gantry.display().to_string(),
        upstream_bin: s.upstream.display().to_string(),
        debug_build: s.debug_build,
        seconds: seconds.as_secs_f64(),
        sessions_legacy: legacy,
        sessions_stateless: sessions - legacy,
        topology: Vec::new(),
        events: Vec::new(),
        calls: Calls::default(),
        latency: Summary::default(),
        per_tool: BTreeMap::new(),
        errors: BTreeMap::new(),
        mismatch_samples: Vec::new(),
        lost_samples: Vec::new(),
        rss_kib: Rss::default(),
        reloads: Reloads::default(),
        recovery_ms: None,
        shutdown: Shutdown::default(),
        failures: Vec::new(),
    };

    // --- The upstreams and Gantry.
    let mut ups = Vec::new();
    let mut http = Vec::new();
    for (name, _) in HTTP_SERVERS {
        let addr = procs::free_port()?;
        eprintln!("bench: soak: starting bench-upstream {name} on {addr}");
        let mut p = Proc::spawn(
            &format!("upstream-{name}"),
            &s.upstream,
            &["--listen".into(), addr.to_string()],
            cores,
            dir,
        )?;
        p.wait_healthy(addr, ready_timeout).await?;
        ups.push(p);
        http.push(addr);
    }
    let topo = Topology {
        gantry: procs::free_port()?,
        http: [http[0], http[1]],
        upstream_bin: s.upstream.clone(),
        tag: format!("soak{}", std::process::id()),
        config_path: dir.join("gantry-soak.toml"),
    };
    for (ep, servers) in ENDPOINTS {
        let desc: Vec<String> = servers
            .iter()
            .map(|n| {
                let kind = match HTTP_SERVERS.iter().find(|(h, _)| h == n) {
                    Some((_, Some(p))) => format!("HTTP, {p}"),
                    Some((_, None)) => "HTTP, 2026-07-28".to_owned(),
                    None => "stdio".to_owned(),
                };
                format!("{n} ({kind})")
            })
            .collect();
        report
            .topology
            .push(format!("/mcp/{ep}: {}", desc.join(", ")));
    }
    let config = topo.config(Edits::default());
    eprintln!("bench: soak: starting gantry on {}", topo.gantry);
    let mut gantry = start_gantry(s, cores, dir, "gantry-soak", &config, topo.gantry, "info")?;
    gantry.wait_healthy(topo.gantry, ready_timeout).await?;
    for (ep, _) in ENDPOINTS {
        wait_tools(
            &mut gantry,
            topo.gantry,
            &format!("/mcp/{ep}"),
            4,
            ready_timeout,
        )
        .await?;
    }
    let gantry_pid = gantry.pid();
    eprintln!(
        "bench: soak: gantry is pid {gantry_pid}; {sessions} sessions for {:.0} s",
        seconds.as_secs_f64()
    );
    report.rss_kib.start = procs::rss_kib_of(gantry_pid).unwrap_or(0);
    report.rss_kib.peak = report.rss_kib.start;

    // --- Load, schedule and watch, all until `end`.
    let start = Instant::now();
    let end = start + seconds;
    let mut workers = JoinSet::new();
    for i in 0..sessions {
        let era = if i % 2 == 0 {
            Era::Legacy
        } else {
            Era::Stateless
        };
        let (ep, servers) = ENDPOINTS[(i / 2) % ENDPOINTS.len()];
        let tools: Vec<String> = servers.iter().map(|s| format!("{s}__echo")).collect();
        workers.spawn(worker(
            i,
            topo.gantry,
            format!("/mcp/{ep}"),
            era,
            tools,
            start,
            end,
        ));
    }
    let schedule = tokio::spawn(schedule(
        topo,
        ups,
        gantry_pid,
        cores.clone(),
        dir.to_owned(),
        start,
        seconds,
        ready_timeout,
    ));
    let mut died = None;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(status) = gantry.exited() {
            died = Some(status);
            break;
        }
        if let Some(kib) = procs::rss_kib_of(gantry_pid) {
            report.rss_kib.peak = report.rss_kib.peak.max(kib);
        }
    }
    let mut tally = Tally::default();
    while let Some(r) = workers.join_next().await {
        match r {
            Ok(t) => tally.merge(t),
            Err(e) => report.failures.push(format!("a worker task failed: {e}")),
        }
    }
    let (topo, ups, events, edits, schedule_failures) =
        schedule.await.context("the schedule task")?;
    report.events = events;
    report.reloads.edits = edits;
    report.failures.extend(schedule_failures);
    if let Some(status) = died.or_else(|| gantry.exited()) {
        report.failures.push(format!(
            "gantry died during the soak ({status}); last lines of its log:\n{}",
            gantry.log_tail()
        ));
    }
    report.rss_kib.end = procs::rss_kib_of(gantry_pid).unwrap_or(0);
    report.rss_kib.peak = report.rss_kib.peak.max(report.rss_kib.end);

    // --- Recovery: every tool answers again.
    if report.failures.is_empty() {
        report.recovery_ms = recovery(topo.gantry).await;
    }

    // --- Shutdown and leftovers.
    report.shutdown = shutdown(&mut gantry, gantry_pid, &topo.tag).await;
    drop(ups);
    let log = std::fs::read_to_string(dir.join("gantry-soak.log")).unwrap_or_default();
    report.reloads.applied = log.matches("config reloaded").count() as u64;
    report.reloads.rejected = log.matches("config reload rejected").count() as u64;

    tally.into_report(&mut report, seconds);
    report.judge();
    Ok(report)
}

// --- Workers ---

/// What the workers saw, merged.
#[derive(Default)]
struct Tally {
    calls: Calls,
    latencies_ns: Vec<u64>,
    per_tool: BTreeMap<String, ToolTally>,
    errors: BTreeMap<String, ErrorClass>,
    mismatch_samples: Vec<String>,
    lost_samples: Vec<String>,
}

impl Tally {
    fn error(&mut self, class: String, at: f64, f: &Failure) {
        let e = self.errors.entry(class).or_insert_with(|| ErrorClass {
            count: 0,
            first_s: at,
            last_s: at,
            example: f.to_string(),
        });
        e.count += 1;
        e.first_s = e.first_s.min(at);
        e.last_s = e.last_s.max(at);
    }

    fn lost(&mut self, what: String) {
        self.calls.lost += 1;
        if self.lost_samples.len() < SAMPLES {
            self.lost_samples.push(what);
        }
    }

    fn mismatch(&mut self, what: String) {
        self.calls.mismatches += 1;
        if self.mismatch_samples.len() < SAMPLES {
            self.mismatch_samples.push(what);
        }
    }

    fn merge(&mut self, o: Tally) {
        let c = &mut self.calls;
        c.attempted += o.calls.attempted;
        c.ok += o.calls.ok;
        c.failed += o.calls.failed;
        c.mismatches += o.calls.mismatches;
        c.lost += o.calls.lost;
        c.opened += o.calls.opened;
        self.latencies_ns.extend(o.latencies_ns);
        for (k, v) in o.per_tool {
            let t = self.per_tool.entry(k).or_default();
            t.attempted += v.attempted;
            t.ok += v.ok;
        }
        for (k, v) in o.errors {
            match self.errors.get_mut(&k) {
                Some(e) => {
                    e.count += v.count;
                    if v.first_s < e.first_s {
                        e.first_s = v.first_s;
                        e.example = v.example;
                    }
                    e.last_s = e.last_s.max(v.last_s);
                }
                None => {
                    self.errors.insert(k, v);
                }
            }
        }
        for m in o.mismatch_samples {
            if self.mismatch_samples.len() < SAMPLES {
                self.mismatch_samples.push(m);
            }
        }
        for m in o.lost_samples {
            if self.lost_samples.len() < SAMPLES {
                self.lost_samples.push(m);
            }
        }
    }

    fn into_report(self, r: &mut SoakReport, window: Duration) {
        r.calls = self.calls;
        r.latency = load::summarize(self.latencies_ns, window);
        r.per_tool = self.per_tool;
        r.errors = self.errors;
        r.mismatch_samples = self.mismatch_samples;
        r.lost_samples = self.lost_samples;
    }
}

/// One session (legacy) or one connection of stateless requests, calling the echo tools of
/// its endpoint in turn with unique messages until `end`. A broken connection, a lost
/// answer or a session Gantry no longer knows is replaced by a new one.
async fn worker(
    index: usize,
    addr: SocketAddr,
    path: String,
    era: Era,
    tools: Vec<String>,
    start: Instant,
    end: Instant,
) -> Tally {
    let mut t = Tally::default();
    let mut client: Option<McpClient> = None;
    let mut seq: u64 = 0;
    while Instant::now() < end {
        let at = || start.elapsed().as_secs_f64();
        let c = match client.as_mut() {
            Some(c) => c,
            None => {
                t.calls.opened += 1;
                match tokio::time::timeout(CALL_BOUND, McpClient::open(addr, &path, era)).await {
                    Ok(Ok(c)) => client.insert(c),
                    Ok(Err(f)) => {
                        match &f {
                            Failure::Lost(m) => t.lost(format!("{era} open {path}: {m}")),
                            Failure::Mismatch(m) => {
                                t.mismatch(format!("{era} open {path}: {m}"));
                            }
                            _ => t.error(format!("open: {}", classify(&f)), at(), &f),
                        }
                        tokio::time::sleep(ERROR_PAUSE).await;
                        continue;
                    }
                    Err(_) => {
                        t.lost(format!(
                            "{era} open {path}: no answer to initialize within {CALL_BOUND:?}"
                        ));
                        continue;
                    }
                }
            }
        };
        seq += 1;
        let tool = &tools[(seq as usize) % tools.len()];
        let message = format!("soak-{index}-{seq}-{tool}");
        t.calls.attempted += 1;
        let tally = t.per_tool.entry(tool.clone()).or_default();
        tally.attempted += 1;
        let t0 = Instant::now();
        let r = tokio::time::timeout(CALL_BOUND, c.echo_tool(tool, &message)).await;
        let failed = match r {
            Ok(Ok(())) => {
                tally.ok += 1;
                t.calls.ok += 1;
                t.latencies_ns.push(t0.elapsed().as_nanos() as u64);
                continue;
            }
            Err(_) => {
                t.lost(format!(
                    "{era} {path} {tool} {message:?}: no answer within {CALL_BOUND:?}"
                ));
                client = None;
                continue;
            }
            Ok(Err(f)) => f,
        };
        match &failed {
            Failure::Lost(m) => {
                t.lost(format!("{era} {path} {tool} {message:?}: {m}"));
                client = None;
                continue;
            }
            Failure::Mismatch(m) => t.mismatch(format!("{era} {path} {tool}: {m}")),
            other => {
                t.calls.failed += 1;
                t.error(classify(other), at(), other);
                // A broken connection, or a session Gantry no longer knows: start over.
                if matches!(other, Failure::Transport(_) | Failure::Status(404, _)) {
                    client = None;
                }
            }
        }
        tokio::time::sleep(ERROR_PAUSE).await;
    }
    if let Some(mut c) = client {
        // Best effort: Gantry ends idle sessions itself too.
        let _ = tokio::time::timeout(Duration::from_secs(2), c.delete_session()).await;
    }
    t
}

/// A short, stable class of a failure: the JSON-RPC code and what kind of error its
/// message says, the HTTP status, or the transport step that failed.
fn classify(f: &Failure) -> String {
    match f {
        Failure::Rpc(code, m) => format!("JSON-RPC {code} {}", kind(m)),
        Failure::Status(status, body) => {
            let class = format!("HTTP {}xx", status / 100);
            format!("{class} ({status} {})", kind(body))
        }
        Failure::Transport(m) => format!("transport: {}", m.split(':').next().unwrap_or(m).trim()),
        Failure::ToolError(m) => format!("tool error (isError) {}", kind(m)),
        Failure::Mismatch(_) => "mismatch".into(),
        Failure::Lost(_) => "lost".into(),
    }
}

/// What kind of error a message describes, in a word or two (never naming a server: the
/// per-tool table says which server failed).
fn kind(m: &str) -> String {
    let m = m.to_ascii_lowercase();
    let known = [
        ("circuit open", "unavailable (circuit open)"),
        ("shutting down", "shutting down"),
        ("cannot reach", "cannot reach"),
        ("session expired", "session expired"),
        ("expired", "session expired"),
        ("is unavailable", "unavailable"),
        ("connection closed", "connection closed"),
        ("not connected", "not connected"),
        ("is busy", "busy"),
        ("did not answer", "timeout"),
        ("unknown tool", "unknown tool"),
        ("unknown endpoint", "unknown endpoint"),
        ("session", "session"),
        ("answered http", "upstream HTTP error"),
        ("larger than", "too large"),
    ];
    for (needle, class) in known {
        if m.contains(needle) {
            return class.to_owned();
        }
    }
    // Otherwise the first words, with any server's name left out.
    let mut words = Vec::new();
    let mut after_server = false;
    for w in m.split_whitespace() {
        if after_server {
            words.push("X");
        } else {
            words.push(w.trim_end_matches(':'));
        }
        after_server = w == "server";
        if words.len() == 4 {
            break;
        }
    }
    if words.is_empty() {
        "(no message)".into()
    } else {
        words.join(" ")
    }
}

// --- The schedule ---

/// What the schedule does, in a cycle.
#[derive(Clone, Copy, Debug)]
enum Action {
    /// `kill -9` the processes of a stdio server (children of Gantry).
    KillStdio(&'static str),
    /// Kill an HTTP upstream, wait, start it again on the same port.
    RestartHttp(usize),
    /// Write the config with these edits; with SIGHUP or left to the file watch.
    Reload(Edits, &'static str, bool),
}

const CYCLE: [Action; 8] = [
    Action::KillStdio("s1"),
    Action::Reload(
        Edits {
            extra: true,
            slower_h2: false,
            exclude_payload: false,
        },
        "add server extra to endpoint a",
        false,
    ),
    Action::RestartHttp(0),
    Action::Reload(
        Edits {
            extra: true,
            slower_h2: true,
            exclude_payload: false,
        },
        "h2 request_timeout 5 -> 6 s",
        true,
    ),
    Action::KillStdio("s2"),
    Action::Reload(
        Edits {
            extra: true,
            slower_h2: true,
            exclude_payload: true,
        },
        "endpoint b exclude */payload",
        false,
    ),
    Action::RestartHttp(1),
    Action::Reload(
        Edits {
            extra: false,
            slower_h2: false,
            exclude_payload: false,
        },
        "remove extra, h2 request_timeout back, no exclude",
        true,
    ),
];

type ScheduleOut = (Topology, Vec<Proc>, Vec<Event>, u64, Vec<String>);

/// Runs the cycle of faults and edits at even intervals over the load, stopping before its
/// last tenth (so that the end of the run sees the system back up).
#[allow(clippy::too_many_arguments)]
async fn schedule(
    topo: Topology,
    mut ups: Vec<Proc>,
    gantry_pid: u32,
    cores: Cores,
    dir: PathBuf,
    start: Instant,
    seconds: Duration,
    ready_timeout: Duration,
) -> ScheduleOut {
    let interval = (seconds / 19 * 2).clamp(Duration::from_millis(500), Duration::from_secs(4));
    let down = (interval / 2).min(Duration::from_secs(1));
    let mut events = Vec::new();
    let mut failures = Vec::new();
    let mut edits = 0;
    for (k, action) in CYCLE.iter().cycle().enumerate() {
        let at = interval * (k as u32 + 1);
        if at > seconds.mul_f64(0.9) {
            break;
        }
        tokio::time::sleep_until((start + at).into()).await;
        let t = start.elapsed().as_secs_f64();
        let (what, detail) = match *action {
            Action::KillStdio(name) => {
                let mark = format!("{}-{name}", topo.tag);
                let victims: Vec<ProcInfo> = procs::descendants(gantry_pid)
                    .into_iter()
                    .filter(|p| p.state != 'Z')
                    .filter(|p| procs::env_of(p.pid, TAG_KEY).as_deref() == Some(&mark))
                    .collect();
                let mut killed = Vec::new();
                for v in &victims {
                    let pid = nix::unistd::Pid::from_raw(v.pid as i32);
                    if nix::sys::signal::kill(pid, Signal::SIGKILL).is_ok() {
                        killed.push(v.pid.to_string());
                    }
                }
                (
                    format!("kill -9 stdio server {name}"),
                    if killed.is_empty() {
                        "no process of it found (restarting?)".to_owned()
                    } else {
                        format!("pid {}", killed.join(", "))
                    },
                )
            }
            Action::RestartHttp(i) => {
                let name = HTTP_SERVERS[i].0;
                let addr = topo.http[i];
                ups[i].kill9();
                tokio::time::sleep(down).await;
                let detail = match Proc::spawn(
                    &format!("upstream-{name}"),
                    &topo.upstream_bin,
                    &["--listen".into(), addr.to_string()],
                    &cores,
                    &dir,
                ) {
                    Ok(mut p) => {
                        let r = p.wait_healthy(addr, ready_timeout).await;
                        ups[i] = p;
                        match r {
                            Ok(_) => {
                                format!("killed, down {:.1} s, back on {addr}", down.as_secs_f64())
                            }
                            Err(e) => {
                                failures.push(format!("restarting {name}: {e:#}"));
                                format!("did not come back: {e}")
                            }
                        }
                    }
                    Err(e) => {
                        failures.push(format!("restarting {name}: {e:#}"));
                        format!("cannot start: {e}")
                    }
                };
                (format!("restart HTTP upstream {name}"), detail)
            }
            Action::Reload(e, what, sighup) => {
                edits += 1;
                let detail = match topo.write(e) {
                    Err(e) => {
                        failures.push(format!("config edit: {e:#}"));
                        format!("cannot write: {e}")
                    }
                    Ok(()) if sighup => {
                        let pid = nix::unistd::Pid::from_raw(gantry_pid as i32);
                        match nix::sys::signal::kill(pid, Signal::SIGHUP) {
                            Ok(()) => "config written, SIGHUP".to_owned(),
                            Err(e) => format!("config written; SIGHUP failed: {e}"),
                        }
                    }
                    Ok(()) => "config written (file watch)".to_owned(),
                };
                (format!("reload: {what}"), detail)
            }
        };
        eprintln!("bench: soak: {t:5.1} s  {what}: {detail}");
        events.push(Event {
            at_s: t,
            action: what,
            detail,
        });
    }
    (topo, ups, events, edits, failures)
}

// --- After the load ---

/// Milliseconds until every echo tool of every endpoint answers again, or None.
async fn recovery(addr: SocketAddr) -> Option<f64> {
    let start = Instant::now();
    let mut pending: Vec<(String, String)> = ENDPOINTS
        .iter()
        .flat_map(|(ep, servers)| {
            servers
                .iter()
                .map(move |s| (format!("/mcp/{ep}"), format!("{s}__echo")))
        })
        .collect();
    while start.elapsed() < RECOVERY_BOUND {
        let mut left = Vec::new();
        for (path, tool) in pending {
            let ok = tokio::time::timeout(Duration::from_secs(10), async {
                let mut c = McpClient::open(addr, &path, Era::Stateless).await?;
                c.echo_tool(&tool, "recovered").await
            })
            .await
            .is_ok_and(|r| r.is_ok());
            if !ok {
                left.push((path, tool));
            }
        }
        if left.is_empty() {
            return Some(start.elapsed().as_secs_f64() * 1000.0);
        }
        pending = left;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// SIGTERM to Gantry, its exit, and what of its children is left afterwards.
async fn shutdown(gantry: &mut Proc, pid: u32, tag: &str) -> Shutdown {
    let own_pgid = procs::proc_info(pid).map(|p| p.pgid);
    let before = procs::descendants(pid);
    let mut out = Shutdown {
        children_at_sigterm: before.len(),
        zombies_at_sigterm: before.iter().filter(|p| p.state == 'Z').count(),
        process_groups: before
            .iter()
            .map(|p| p.pgid)
            .filter(|g| Some(*g) != own_pgid)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        ..Shutdown::default()
    };
    let started = Instant::now();
    if !gantry.running() {
        out.exit = "had already exited".into();
    } else if let Some(status) = gantry.exited() {
        out.exit = format!("had already exited ({status})");
    } else if let Err(e) = gantry.signal(Signal::SIGTERM) {
        out.exit = format!("SIGTERM failed: {e}");
    } else {
        loop {
            if let Some(status) = gantry.exited() {
                out.exit = status.to_string();
                out.clean = status.success();
                break;
            }
            if started.elapsed() > STOP_BOUND {
                gantry.kill9();
                out.exit = format!("still running {STOP_BOUND:?} after SIGTERM: SIGKILLed");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    out.seconds = started.elapsed().as_secs_f64();
    // What Gantry killed as it stopped may take a moment to be reaped by init: poll (done as
    // soon as nothing is left), and count as left over what is still there after REAP_BOUND.
    let prefix = format!("{tag}-");
    let reap_deadline = Instant::now() + REAP_BOUND;
    loop {
        out.leftovers = procs::all_processes()
            .into_iter()
            .filter(|p| {
                before.iter().any(|b| b.pid == p.pid && b.start == p.start)
                    || out.process_groups.contains(&p.pgid)
                    || procs::env_of(p.pid, TAG_KEY).is_some_and(|v| v.starts_with(&prefix))
            })
            .collect();
        if out.leftovers.is_empty() || Instant::now() >= reap_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out
}

// --- Verdict and table ---

impl SoakReport {
    fn judge(&mut self) {
        let c = &self.calls;
        if c.lost > 0 {
            self.failures.push(format!(
                "{} lost responses (first: {})",
                c.lost,
                self.lost_samples.first().map_or("?", String::as_str)
            ));
        }
        if c.mismatches > 0 {
            self.failures.push(format!(
                "{} mismatched answers (first: {})",
                c.mismatches,
                self.mismatch_samples.first().map_or("?", String::as_str)
            ));
        }
        if c.ok == 0 {
            self.failures.push("no call was answered OK".into());
        }
        let sd = &self.shutdown;
        if !sd.clean {
            self.failures.push(format!(
                "gantry did not stop cleanly on SIGTERM: {}",
                sd.exit
            ));
        }
        if !sd.leftovers.is_empty() {
            self.failures.push(format!(
                "{} processes left after gantry stopped: {}",
                sd.leftovers.len(),
                sd.leftovers
                    .iter()
                    .map(|p| format!("{} ({}, {})", p.pid, p.state, p.cmd))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        if self.reloads.rejected > 0 {
            self.failures.push(format!(
                "gantry rejected {} config edits (see its log)",
                self.reloads.rejected
            ));
        }
    }

    fn render(&self) -> String {
        let mut o = String::new();
        let w = &mut o;
        let _ = writeln!(
            w,
            "Gantry soak{}: {:.0} s of load, {} sessions ({} legacy, {} stateless 2026-07-28), closed loop, every answer checked",
            if self.debug_build {
                " (DEBUG build)"
            } else {
                ""
            },
            self.seconds,
            self.sessions_legacy + self.sessions_stateless,
            self.sessions_legacy,
            self.sessions_stateless
        );
        let _ = writeln!(w, "cores: {}", self.cores.description);
        for t in &self.topology {
            let _ = writeln!(w, "endpoint {t}");
        }
        let _ = writeln!(w);
        let _ = writeln!(w, "events");
        for e in &self.events {
            let _ = writeln!(w, "  {:6.2} s  {:<62} {}", e.at_s, e.action, e.detail);
        }
        let c = &self.calls;
        let pct = |n: u64| {
            if c.attempted == 0 {
                0.0
            } else {
                n as f64 * 100.0 / c.attempted as f64
            }
        };
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "calls: {} attempted, {} answered OK ({:.2}%), {} errors ({:.2}%), {} mismatches, {} lost; {} connections/sessions opened",
            c.attempted,
            c.ok,
            pct(c.ok),
            c.failed,
            pct(c.failed),
            c.mismatches,
            c.lost,
            c.opened
        );
        let l = &self.latency;
        let _ = writeln!(
            w,
            "latency of OK calls: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs; {:.0} OK calls/s",
            l.p50_us, l.p99_us, l.max_us, l.calls_per_sec
        );
        let _ = writeln!(w);
        let _ = writeln!(w, "per tool        attempted         ok     failed");
        for (tool, t) in &self.per_tool {
            let _ = writeln!(
                w,
                "  {:<12} {:>10} {:>10} {:>10}",
                tool,
                t.attempted,
                t.ok,
                t.attempted - t.ok
            );
        }
        let _ = writeln!(w);
        if self.errors.is_empty() {
            let _ = writeln!(w, "errors: none");
        } else {
            let _ = writeln!(
                w,
                "errors by class                                    count  first s   last s  first message"
            );
            for (class, e) in &self.errors {
                let mut example = e.example.clone();
                if let Some((i, _)) = example.char_indices().nth(110) {
                    example.truncate(i);
                    example.push('…');
                }
                let _ = writeln!(
                    w,
                    "  {:<46} {:>7} {:>8.2} {:>8.2}  {}",
                    class, e.count, e.first_s, e.last_s, example
                );
            }
        }
        for (what, samples) in [
            ("mismatch", &self.mismatch_samples),
            ("lost", &self.lost_samples),
        ] {
            for m in samples {
                let _ = writeln!(w, "  {what}: {m}");
            }
        }
        let r = &self.rss_kib;
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "gantry RSS: start {:.1} MB, peak {:.1} MB, end {:.1} MB",
            r.start as f64 / 1024.0,
            r.peak as f64 / 1024.0,
            r.end as f64 / 1024.0
        );
        let _ = writeln!(
            w,
            "config: {} edits; gantry logged {} reloads applied, {} rejected",
            self.reloads.edits, self.reloads.applied, self.reloads.rejected
        );
        let _ = writeln!(
            w,
            "recovery: {}",
            match self.recovery_ms {
                Some(ms) => format!("every tool answered again {ms:.0} ms after the load ended"),
                None if self.failures.is_empty() => format!(
                    "NOT every tool answered again within {RECOVERY_BOUND:?} (reported, not a failure)"
                ),
                None => "not checked".into(),
            }
        );
        let sd = &self.shutdown;
        let _ = writeln!(
            w,
            "shutdown: SIGTERM -> {} after {:.2} s; at SIGTERM {} child processes in {} process groups ({} zombies); left over: {}",
            sd.exit,
            sd.seconds,
            sd.children_at_sigterm,
            sd.process_groups.len(),
            sd.zombies_at_sigterm,
            sd.leftovers.len()
        );
        if self.failures.is_empty() {
            let _ = writeln!(
                w,
                "\nsoak passed: no lost or mismatched answer, gantry alive throughout, nothing left over"
            );
        } else {
            let _ = writeln!(w, "\nFAILURES:");
            for f in &self.failures {
                let _ = writeln!(w, "  {f}");
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_short_and_stable() {
        let f = Failure::Rpc(
            -32010,
            "server s1 is unavailable: process exited; retrying in the background".into(),
        );
        assert_eq!(classify(&f), "JSON-RPC -32010 unavailable");
        let f = Failure::Rpc(
            -32012,
            "server s1 is not connected: process exited (signal: 9 (SIGKILL))".into(),
        );
        assert_eq!(classify(&f), "JSON-RPC -32012 not connected");
        let f = Failure::Status(503, "busy right now".into());
        assert_eq!(classify(&f), "HTTP 5xx (503 busy right now)");
        let f = Failure::Rpc(-32012, "server s1: connection closed: cannot write".into());
        assert_eq!(classify(&f), "JSON-RPC -32012 connection closed");
        let f = Failure::Rpc(-32603, "server s1 did something odd".into());
        assert_eq!(classify(&f), "JSON-RPC -32603 server X did something");
        let f = Failure::Transport("connect 127.0.0.1:1: refused".into());
        assert_eq!(classify(&f), "transport: connect 127.0.0.1");
    }

    #[test]
    fn the_config_of_every_edit_names_the_servers() {
        let topo = Topology {
            gantry: "127.0.0.1:1".parse().unwrap(),
            http: [
                "127.0.0.1:2".parse().unwrap(),
                "127.0.0.1:3".parse().unwrap(),
            ],
            upstream_bin: PathBuf::from("/bin/bench-upstream"),
            tag: "t".into(),
            config_path: PathBuf::from("/tmp/x.toml"),
        };
        let base = topo.config(Edits::default());
        assert!(base.contains("[servers.s2]") && !base.contains("extra"));
        assert!(base.contains("GANTRY_SOAK_SERVER = \"t-s1\""));
        let all = topo.config(Edits {
            extra: true,
            slower_h2: true,
            exclude_payload: true,
        });
        assert!(all.contains("servers = [\"h1\", \"s1\", \"extra\"]"));
        assert!(all.contains("request_timeout = 6"));
        assert!(all.contains("exclude = [\"*/payload\"]"));
    }
}
