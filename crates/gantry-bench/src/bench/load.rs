//! The closed-loop load generator: N workers, each with its own keep-alive connection (and
//! its own legacy session), send one request, wait for the answer, check it, and send the
//! next. A level runs for a fixed time: a warm-up whose calls are checked but not timed,
//! then the measured window. CPU time of the watched processes is sampled at the window's
//! edges.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::HeaderValue;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::client::{Era, Failure, McpClient};
use crate::procs;

/// What each call is.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Work {
    /// `tools/call echo` with a unique message, checked on return.
    Echo,
    /// `tools/list` (all pages), checked to hold `expect` tools.
    ListTools { expect: usize },
}

/// One level of load.
pub(crate) struct Plan<'a> {
    pub(crate) addr: SocketAddr,
    pub(crate) path: &'a str,
    pub(crate) era: Era,
    pub(crate) work: Work,
    pub(crate) concurrency: usize,
    pub(crate) warmup: Duration,
    pub(crate) measure: Duration,
    /// Processes whose CPU time is measured over the window.
    pub(crate) watch: Vec<u32>,
}

/// Failures, by kind. Any of them makes the run a failure.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Errors {
    /// Opening a connection or session failed.
    pub(crate) setup: u64,
    /// A connection broke (its worker stops).
    pub(crate) transport: u64,
    /// Non-2xx HTTP status.
    pub(crate) http_status: u64,
    /// JSON-RPC error responses.
    pub(crate) jsonrpc: u64,
    /// Wrong or lost answers (id, text, tool count, resultType).
    pub(crate) mismatch: u64,
    /// Ending the session afterwards (`DELETE`) failed.
    pub(crate) cleanup: u64,
    /// The first failure, word for word.
    pub(crate) first: Option<String>,
}

impl Errors {
    pub(crate) fn total(&self) -> u64 {
        self.setup + self.transport + self.http_status + self.jsonrpc + self.mismatch + self.cleanup
    }

    fn record(&mut self, f: &Failure) {
        match f {
            Failure::Transport(_) | Failure::Lost(_) => self.transport += 1,
            Failure::Status(..) => self.http_status += 1,
            Failure::Rpc(..) => self.jsonrpc += 1,
            Failure::Mismatch(_) | Failure::ToolError(_) => self.mismatch += 1,
        }
        self.note(f);
    }

    fn note(&mut self, f: &Failure) {
        if self.first.is_none() {
            self.first = Some(f.to_string());
        }
    }

    pub(crate) fn merge(&mut self, o: &Errors) {
        self.setup += o.setup;
        self.transport += o.transport;
        self.http_status += o.http_status;
        self.jsonrpc += o.jsonrpc;
        self.mismatch += o.mismatch;
        self.cleanup += o.cleanup;
        if self.first.is_none() {
            self.first.clone_from(&o.first);
        }
    }
}

/// Latency and throughput of the measured window.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Summary {
    /// Successful calls that started in the window.
    pub(crate) calls: u64,
    pub(crate) seconds: f64,
    pub(crate) calls_per_sec: f64,
    pub(crate) p50_us: f64,
    pub(crate) p90_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) mean_us: f64,
    pub(crate) max_us: f64,
}

/// What one level measured.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) summary: Summary,
    /// Every request sent, warm-up included (to compare with what the upstream received).
    pub(crate) sent: u64,
    pub(crate) errors: Errors,
    /// CPU ticks of each watched process over the window (same order as `Plan::watch`).
    pub(crate) cpu_ticks: Vec<Option<u64>>,
    /// CPU ticks of the load generator itself over the window.
    pub(crate) loadgen_ticks: Option<u64>,
}

struct WorkerOut {
    latencies: Vec<u64>,
    sent: u64,
    errors: Errors,
}

/// Runs one level: opens the workers' connections (and sessions), warms up, measures.
pub(crate) async fn run(plan: &Plan<'_>) -> Outcome {
    let mut errors = Errors::default();
    let mut opening = JoinSet::new();
    for _ in 0..plan.concurrency {
        let (addr, path, era) = (plan.addr, plan.path.to_owned(), plan.era);
        opening.spawn(async move { McpClient::open(addr, &path, era).await });
    }
    let mut clients = Vec::with_capacity(plan.concurrency);
    while let Some(r) = opening.join_next().await {
        match r {
            Ok(Ok(c)) => clients.push(c),
            Ok(Err(f)) => {
                errors.setup += 1;
                errors.note(&f);
            }
            Err(e) => {
                errors.setup += 1;
                errors.note(&Failure::Transport(format!("worker task: {e}")));
            }
        }
    }

    let start = Instant::now();
    let warm_end = start + plan.warmup;
    let end = warm_end + plan.measure;
    let watch = plan.watch.clone();
    let sampler = tokio::spawn(async move {
        let sample = |w: &[u32]| -> (Vec<Option<u64>>, Option<u64>) {
            (
                w.iter().map(|&p| procs::cpu_ticks(p)).collect(),
                procs::cpu_ticks(0),
            )
        };
        tokio::time::sleep_until(warm_end.into()).await;
        let before = sample(&watch);
        tokio::time::sleep_until(end.into()).await;
        let after = sample(&watch);
        let delta = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?));
        (
            before
                .0
                .iter()
                .zip(&after.0)
                .map(|(a, b)| delta(*a, *b))
                .collect::<Vec<_>>(),
            delta(before.1, after.1),
        )
    });

    let mut workers = JoinSet::new();
    for (i, c) in clients.into_iter().enumerate() {
        workers.spawn(worker(c, i, plan.work, warm_end, end));
    }
    let mut latencies = Vec::new();
    let mut sent = 0;
    while let Some(r) = workers.join_next().await {
        match r {
            Ok(out) => {
                latencies.extend_from_slice(&out.latencies);
                sent += out.sent;
                errors.merge(&out.errors);
            }
            Err(e) => {
                errors.transport += 1;
                errors.note(&Failure::Transport(format!("worker task: {e}")));
            }
        }
    }
    let (cpu_ticks, loadgen_ticks) = sampler
        .await
        .unwrap_or_else(|_| (vec![None; plan.watch.len()], None));
    Outcome {
        summary: summarize(latencies, plan.measure),
        sent,
        errors,
        cpu_ticks,
        loadgen_ticks,
    }
}

async fn worker(
    mut c: McpClient,
    index: usize,
    work: Work,
    warm_end: Instant,
    end: Instant,
) -> WorkerOut {
    let mut out = WorkerOut {
        latencies: Vec::with_capacity(4096),
        sent: 0,
        errors: Errors::default(),
    };
    let mut message = String::with_capacity(32);
    let mut broken = false;
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        out.sent += 1;
        message.clear();
        let _ = write!(message, "w{index}-{}", out.sent);
        let r = match work {
            Work::Echo => c.echo(&message).await,
            Work::ListTools { expect } => match c.list_tools().await {
                Ok(n) if n == expect => Ok(()),
                Ok(n) => Err(Failure::Mismatch(format!(
                    "tools/list returned {n} tools, expected {expect}"
                ))),
                Err(f) => Err(f),
            },
        };
        let elapsed = t0.elapsed();
        match r {
            Ok(()) if t0 >= warm_end => out.latencies.push(elapsed.as_nanos() as u64),
            Ok(()) => {}
            Err(f) => {
                out.errors.record(&f);
                if matches!(f, Failure::Transport(_) | Failure::Lost(_)) {
                    broken = true;
                    break;
                }
            }
        }
    }
    if !broken && let Err(f) = c.delete_session().await {
        out.errors.cleanup += 1;
        out.errors.note(&f);
    }
    out
}

/// Percentiles (nearest rank) and throughput over the window.
pub(crate) fn summarize(mut ns: Vec<u64>, window: Duration) -> Summary {
    if ns.is_empty() {
        return Summary {
            seconds: window.as_secs_f64(),
            ..Summary::default()
        };
    }
    ns.sort_unstable();
    let pct = |p: f64| -> f64 {
        let rank = ((p / 100.0) * ns.len() as f64).ceil() as usize;
        ns[rank.clamp(1, ns.len()) - 1] as f64 / 1000.0
    };
    let secs = window.as_secs_f64();
    Summary {
        calls: ns.len() as u64,
        seconds: secs,
        calls_per_sec: ns.len() as f64 / secs,
        p50_us: pct(50.0),
        p90_us: pct(90.0),
        p99_us: pct(99.0),
        mean_us: ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1000.0,
        max_us: ns[ns.len() - 1] as f64 / 1000.0,
    }
}

/// Opens `n` legacy sessions over `conns` connections and keeps nothing open (no GET
/// stream): the idle-session memory measurement. Returns the session ids.
pub(crate) async fn open_idle_sessions(
    addr: SocketAddr,
    path: &str,
    n: usize,
    conns: usize,
) -> (Vec<HeaderValue>, Errors) {
    let mut set = JoinSet::new();
    let conns = conns.clamp(1, n.max(1));
    for k in 0..conns {
        let share = n / conns + usize::from(k < n % conns);
        let path = path.to_owned();
        set.spawn(async move {
            let mut ids = Vec::with_capacity(share);
            let mut errors = Errors::default();
            if share == 0 {
                return (ids, errors);
            }
            let mut c = match McpClient::open(addr, &path, Era::Legacy).await {
                Ok(c) => c,
                Err(f) => {
                    errors.setup += 1;
                    errors.note(&f);
                    return (ids, errors);
                }
            };
            ids.extend(c.session().cloned());
            while ids.len() < share {
                match c.initialize().await {
                    Ok(()) => ids.extend(c.session().cloned()),
                    Err(f) => {
                        // Any failure ends this connection's share: retrying a refusal
                        // would spin forever instead of reporting it.
                        errors.setup += 1;
                        errors.note(&f);
                        break;
                    }
                }
            }
            (ids, errors)
        });
    }
    let mut ids = Vec::with_capacity(n);
    let mut errors = Errors::default();
    while let Some(r) = set.join_next().await {
        if let Ok((i, e)) = r {
            ids.extend(i);
            errors.merge(&e);
        } else {
            errors.setup += 1;
        }
    }
    (ids, errors)
}

/// Ends sessions with `DELETE` over `conns` connections.
pub(crate) async fn delete_sessions(
    addr: SocketAddr,
    path: &str,
    ids: Vec<HeaderValue>,
    conns: usize,
) -> Errors {
    let mut set = JoinSet::new();
    let conns = conns.max(1);
    let mut shares: Vec<Vec<HeaderValue>> = vec![Vec::new(); conns];
    for (i, id) in ids.into_iter().enumerate() {
        shares[i % conns].push(id);
    }
    for share in shares.into_iter().filter(|s| !s.is_empty()) {
        let path = path.to_owned();
        set.spawn(async move {
            let mut errors = Errors::default();
            let mut c = match McpClient::bare(addr, &path).await {
                Ok(c) => c,
                Err(f) => {
                    errors.cleanup += 1;
                    errors.note(&f);
                    return errors;
                }
            };
            for id in share {
                if let Err(f) = c.delete(id).await {
                    errors.cleanup += 1;
                    errors.note(&f);
                    if matches!(f, Failure::Transport(_) | Failure::Lost(_)) {
                        break;
                    }
                }
            }
            errors
        });
    }
    let mut errors = Errors::default();
    while let Some(r) = set.join_next().await {
        if let Ok(e) = r {
            errors.merge(&e);
        } else {
            errors.cleanup += 1;
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = summarize(
            (1..=100).map(|i| i * 1000).collect(),
            Duration::from_secs(2),
        );
        assert_eq!(
            (s.p50_us, s.p90_us, s.p99_us, s.max_us),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(s.calls, 100);
        assert_eq!(s.calls_per_sec, 50.0);
        let one = summarize(vec![7000], Duration::from_secs(1));
        assert_eq!((one.p50_us, one.p99_us), (7.0, 7.0));
    }
}
