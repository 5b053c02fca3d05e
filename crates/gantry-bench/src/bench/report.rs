//! Everything one run measured, as JSON (`--json`) and as the printed tables, with the
//! budgets of DESIGN.md §8 beside the figures. Figures are only compared within one run.

use std::fmt::Write as _;

use serde::Serialize;

use crate::client::Era;
use crate::load::{Errors, Summary};
use crate::procs::Cores;

/// One closed-loop level.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct CallRow {
    pub(crate) era: Era,
    /// `direct`, `gantry` or `gantry-stdio`.
    pub(crate) target: &'static str,
    pub(crate) concurrency: usize,
    #[serde(flatten)]
    pub(crate) summary: Summary,
    pub(crate) errors: Errors,
    /// Requests sent, warm-up included.
    pub(crate) sent: u64,
    /// `tools/call`s the upstream received per call sent (through Gantry; should be 1).
    pub(crate) upstream_requests_per_call: Option<f64>,
    pub(crate) gantry_cpu_us_per_call: Option<f64>,
    pub(crate) upstream_cpu_us_per_call: Option<f64>,
    /// Share of one core the load generator used (near 1.0: the figure is client-bound).
    pub(crate) loadgen_core_share: Option<f64>,
}

/// Gantry against direct at one level.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Comparison {
    pub(crate) era: Era,
    pub(crate) concurrency: usize,
    pub(crate) added_p50_us: f64,
    pub(crate) added_p99_us: f64,
    pub(crate) throughput_ratio: f64,
}

/// Highest throughput seen per target, and their ratio.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Saturation {
    pub(crate) era: Era,
    pub(crate) direct_calls_per_sec: f64,
    pub(crate) direct_concurrency: usize,
    pub(crate) gantry_calls_per_sec: f64,
    pub(crate) gantry_concurrency: usize,
    pub(crate) ratio: f64,
    /// Gantry CPU per call in the run that gave `gantry_calls_per_sec`.
    pub(crate) gantry_cpu_us_per_call: Option<f64>,
    /// The upstream's CPU per call in that same run: the yardstick for the machine's speed.
    pub(crate) upstream_cpu_us_per_call: Option<f64>,
}

/// Whether Gantry took stateless requests.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Support {
    pub(crate) supported: bool,
    pub(crate) detail: Option<String>,
}

/// Gantry's resident memory.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Memory {
    pub(crate) idle_kib: u64,
    /// RSS with that many idle legacy sessions open.
    pub(crate) sessions: Vec<SessionsRss>,
    /// (RSS with the most sessions − idle) / sessions.
    pub(crate) per_session_kib: Option<f64>,
    /// The most sessions the run tried to hold at once.
    pub(crate) attempted: usize,
    /// After every session was deleted again.
    pub(crate) after_delete_kib: Option<u64>,
    /// After the call benchmarks.
    pub(crate) after_load_kib: Option<u64>,
    pub(crate) errors: Errors,
}

/// Gantry's RSS with `sessions` idle legacy sessions open.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct SessionsRss {
    pub(crate) sessions: usize,
    pub(crate) rss_kib: u64,
}

/// `tools/list` on an endpoint of many servers.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ListRow {
    pub(crate) servers: usize,
    pub(crate) tools_per_server: usize,
    pub(crate) tools: usize,
    /// From starting Gantry until the endpoint listed every tool.
    pub(crate) catalog_complete_ms: f64,
    pub(crate) concurrency: usize,
    #[serde(flatten)]
    pub(crate) summary: Summary,
    pub(crate) errors: Errors,
    pub(crate) gantry_cpu_us_per_list: Option<f64>,
}

/// One budget of DESIGN.md §8.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Budget {
    pub(crate) what: String,
    pub(crate) budget: String,
    pub(crate) measured: String,
    /// `met`, `missed` or `n/a`.
    pub(crate) status: &'static str,
}

/// Everything one run measured.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) mode: &'static str,
    pub(crate) cores: Cores,
    pub(crate) gantry_bin: String,
    pub(crate) upstream_bin: String,
    /// Figures from a debug build say nothing about the budgets.
    pub(crate) debug_build: bool,
    pub(crate) warmup_s: f64,
    pub(crate) measure_s: f64,
    pub(crate) clock_ticks_per_sec: u64,
    pub(crate) calls: Vec<CallRow>,
    pub(crate) comparisons: Vec<Comparison>,
    pub(crate) saturation: Vec<Saturation>,
    pub(crate) stateless_through_gantry: Support,
    pub(crate) memory: Memory,
    pub(crate) list: Option<ListRow>,
    pub(crate) stdio: Vec<CallRow>,
    pub(crate) budgets: Vec<Budget>,
    /// What did not work; empty on success.
    pub(crate) failures: Vec<String>,
}

impl Report {
    /// Derives comparisons, saturation and budgets from the rows.
    pub(crate) fn finish(&mut self) {
        self.comparisons.clear();
        self.saturation.clear();
        for era in [Era::Legacy, Era::Stateless] {
            let rows = |target: &'static str| {
                self.calls
                    .iter()
                    .filter(move |r| r.era == era && r.target == target && r.summary.calls > 0)
            };
            for g in rows("gantry") {
                if let Some(d) = rows("direct").find(|d| d.concurrency == g.concurrency) {
                    self.comparisons.push(Comparison {
                        era,
                        concurrency: g.concurrency,
                        added_p50_us: g.summary.p50_us - d.summary.p50_us,
                        added_p99_us: g.summary.p99_us - d.summary.p99_us,
                        throughput_ratio: g.summary.calls_per_sec / d.summary.calls_per_sec,
                    });
                }
            }
            let best = |target: &'static str| {
                rows(target)
                    .max_by(|a, b| a.summary.calls_per_sec.total_cmp(&b.summary.calls_per_sec))
            };
            if let (Some(d), Some(g)) = (best("direct"), best("gantry")) {
                self.saturation.push(Saturation {
                    era,
                    direct_calls_per_sec: d.summary.calls_per_sec,
                    direct_concurrency: d.concurrency,
                    gantry_calls_per_sec: g.summary.calls_per_sec,
                    gantry_concurrency: g.concurrency,
                    ratio: g.summary.calls_per_sec / d.summary.calls_per_sec,
                    gantry_cpu_us_per_call: g.gantry_cpu_us_per_call,
                    upstream_cpu_us_per_call: g.upstream_cpu_us_per_call,
                });
            }
        }
        self.budgets = self.budgets();
    }

    fn budgets(&self) -> Vec<Budget> {
        let mut out = Vec::new();
        let status = |ok: Option<bool>| match ok {
            Some(true) => "met",
            Some(false) => "missed",
            None => "n/a",
        };
        for era in [Era::Legacy, Era::Stateless] {
            let c1 = self
                .comparisons
                .iter()
                .find(|c| c.era == era && c.concurrency == 1);
            if era == Era::Stateless && c1.is_none() && !self.stateless_through_gantry.supported {
                out.push(Budget {
                    what: "stateless (2026-07-28) through Gantry".into(),
                    budget: "all budgets".into(),
                    measured: "unsupported".into(),
                    status: "n/a",
                });
                continue;
            }
            out.push(Budget {
                what: format!("{era}: added p50 of tools/call, c=1"),
                budget: "≤ 50 µs".into(),
                measured: c1.map_or("—".into(), |c| format!("{:+.1} µs", c.added_p50_us)),
                status: status(c1.map(|c| c.added_p50_us <= 50.0)),
            });
            let sat = self.saturation.iter().find(|s| s.era == era);
            let cpu = sat.and_then(|s| s.gantry_cpu_us_per_call);
            out.push(Budget {
                what: format!("{era}: Gantry CPU per proxied call (at saturation)"),
                budget: "≤ 25 µs".into(),
                measured: cpu.map_or("—".into(), |c| format!("{c:.1} µs")),
                status: status(cpu.map(|c| c <= 25.0)),
            });
            // The same budget against the echo upstream's own CPU in the same run (§8 puts it
            // at ~10 µs when the 25 µs were set): a VM's speed drifts between and within runs,
            // a ratio of two processes measured together does not.
            let relative = cpu.zip(sat.and_then(|s| s.upstream_cpu_us_per_call));
            out.push(Budget {
                what: format!("{era}: Gantry ÷ upstream CPU per call (same run)"),
                budget: "≤ 2.5×".into(),
                measured: relative.map_or("—".into(), |(g, u)| {
                    format!("{:.2}× ({g:.1} vs {u:.1} µs)", g / u)
                }),
                status: status(relative.map(|(g, u)| g / u <= 2.5)),
            });
            out.push(Budget {
                what: format!("{era}: throughput at saturation vs direct"),
                budget: "≥ 0.25×".into(),
                measured: sat.map_or("—".into(), |s| {
                    format!(
                        "{:.2}× ({:.0} vs {:.0} calls/s)",
                        s.ratio, s.gantry_calls_per_sec, s.direct_calls_per_sec
                    )
                }),
                status: status(sat.map(|s| s.ratio >= 0.25)),
            });
            let per_call: Vec<f64> = self
                .calls
                .iter()
                .filter(|r| r.era == era && r.target == "gantry")
                .filter_map(|r| r.upstream_requests_per_call)
                .collect();
            let worst = per_call
                .iter()
                .copied()
                .max_by(|a, b| (a - 1.0).abs().total_cmp(&(b - 1.0).abs()));
            out.push(Budget {
                what: format!("{era}: upstream requests per client call"),
                budget: "exactly 1".into(),
                measured: worst.map_or("—".into(), |w| format!("{w:.4} (worst level)")),
                status: status(worst.map(|w| (w - 1.0).abs() < 1e-9)),
            });
        }
        let m = &self.memory;
        out.push(Budget {
            what: "Gantry idle RSS".into(),
            budget: "≤ 20 MB".into(),
            measured: format!("{:.1} MB", m.idle_kib as f64 / 1024.0),
            status: status((m.idle_kib > 0).then_some(m.idle_kib as f64 / 1024.0 <= 20.0)),
        });
        out.push(Budget {
            what: "RSS per idle legacy session".into(),
            budget: "≤ 20 KB".into(),
            measured: m
                .per_session_kib
                .map_or("—".into(), |k| format!("{k:.2} KB")),
            status: status(m.per_session_kib.map(|k| k <= 20.0)),
        });
        let most = m.sessions.last().map(|s| s.sessions);
        out.push(Budget {
            what: "concurrent idle sessions held".into(),
            budget: "10,000".into(),
            measured: most.map_or("—".into(), |n| {
                format!("{n} (errors: {})", m.errors.setup + m.errors.cleanup)
            }),
            // A quick run does not try 10,000: nothing to judge.
            status: status(
                (m.attempted >= 10_000)
                    .then(|| most.is_some_and(|n| n >= 10_000) && m.errors.setup == 0),
            ),
        });
        out
    }

    /// The human-readable tables.
    pub(crate) fn render(&self) -> String {
        let mut o = String::new();
        let w = &mut o;
        let _ = writeln!(
            w,
            "Gantry benchmark ({} mode{}): closed loop, one keep-alive HTTP/1.1 connection per worker; {:.1} s measured per level after {:.1} s warm-up",
            self.mode,
            if self.debug_build {
                ", DEBUG build"
            } else {
                ""
            },
            self.measure_s,
            self.warmup_s
        );
        let _ = writeln!(w, "cores: {}", self.cores.description);
        if self.debug_build || self.mode == "quick" {
            let _ = writeln!(
                w,
                "note: a quick or debug run checks that everything works; its figures are not comparable with the budgets"
            );
        }
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "tools/call echo           {:>9} {:>9} {:>9} {:>10} {:>7} {:>9} {:>9} {:>8} {:>7}",
            "p50 µs",
            "p90 µs",
            "p99 µs",
            "calls/s",
            "errors",
            "gw µs/c",
            "up µs/c",
            "up req/c",
            "lg core"
        );
        for r in &self.calls {
            row(w, r);
        }
        let s = &self.stateless_through_gantry;
        if !s.supported {
            let _ = writeln!(
                w,
                "stateless via gantry: unsupported ({})",
                s.detail.as_deref().unwrap_or("no detail")
            );
        }
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "gantry vs direct          {:>12} {:>12} {:>12}",
            "added p50", "added p99", "throughput"
        );
        for c in &self.comparisons {
            let _ = writeln!(
                w,
                "{:<9} c={:<4}          {:>+9.1} µs {:>+9.1} µs {:>11.2}×",
                c.era.to_string(),
                c.concurrency,
                c.added_p50_us,
                c.added_p99_us,
                c.throughput_ratio
            );
        }
        for s in &self.saturation {
            let _ = writeln!(
                w,
                "saturation {:<9}: direct {:.0} calls/s (c={}), gantry {:.0} calls/s (c={}) -> {:.2}×; CPU per call there: gantry {}, upstream {}",
                s.era.to_string(),
                s.direct_calls_per_sec,
                s.direct_concurrency,
                s.gantry_calls_per_sec,
                s.gantry_concurrency,
                s.ratio,
                s.gantry_cpu_us_per_call
                    .map_or("—".into(), |c| format!("{c:.1} µs")),
                s.upstream_cpu_us_per_call
                    .map_or("—".into(), |c| format!("{c:.1} µs"))
            );
        }
        let m = &self.memory;
        let _ = writeln!(w);
        let _ = writeln!(w, "Gantry memory (VmRSS)");
        let _ = writeln!(w, "  idle (one upstream)            {}", mb(m.idle_kib));
        for s in &m.sessions {
            let _ = writeln!(
                w,
                "  {:>6} idle legacy sessions     {}",
                s.sessions,
                mb(s.rss_kib)
            );
        }
        if let Some(k) = m.per_session_kib {
            let _ = writeln!(w, "  per idle session               {k:.2} KB");
        }
        if let Some(k) = m.after_delete_kib {
            let _ = writeln!(w, "  after deleting them            {}", mb(k));
        }
        if let Some(k) = m.after_load_kib {
            let _ = writeln!(w, "  after the call benchmarks      {}", mb(k));
        }
        if let Some(l) = &self.list {
            let _ = writeln!(w);
            let _ = writeln!(
                w,
                "tools/list through gantry, {} servers × {} tools = {} tools, c={}: p50 {} µs, p90 {} µs, p99 {} µs, {} lists/s, gantry CPU {} per list, errors {}; every tool listed {:.0} ms after gantry was spawned",
                l.servers,
                l.tools_per_server,
                l.tools,
                l.concurrency,
                measured(&l.summary, l.summary.p50_us, 0),
                measured(&l.summary, l.summary.p90_us, 0),
                measured(&l.summary, l.summary.p99_us, 0),
                measured(&l.summary, l.summary.calls_per_sec, 0),
                l.gantry_cpu_us_per_list
                    .map_or("—".into(), |c| format!("{c:.0} µs")),
                l.errors.total(),
                l.catalog_complete_ms
            );
        }
        if !self.stdio.is_empty() {
            let _ = writeln!(w);
            let _ = writeln!(w, "stdio upstream (bench-upstream --stdio) through gantry");
            for r in &self.stdio {
                row(w, r);
            }
        }
        let _ = writeln!(w);
        let _ = writeln!(w, "Budgets (DESIGN.md §8)");
        for b in &self.budgets {
            let _ = writeln!(
                w,
                "  {:<52} {:>10}  {:<36} {}",
                b.what, b.budget, b.measured, b.status
            );
        }
        if self.failures.is_empty() {
            let _ = writeln!(w, "\nall requests answered correctly");
        } else {
            let _ = writeln!(w, "\nFAILURES:");
            for f in &self.failures {
                let _ = writeln!(w, "  {f}");
            }
        }
        o
    }
}

fn row(w: &mut String, r: &CallRow) {
    let opt = |v: Option<f64>, prec: usize| v.map_or("—".to_owned(), |v| format!("{v:.prec$}"));
    let _ = writeln!(
        w,
        "{:<9} c={:<4} {:<12} {:>9} {:>9} {:>9} {:>10} {:>7} {:>9} {:>9} {:>8} {:>7}",
        r.era.to_string(),
        r.concurrency,
        r.target,
        measured(&r.summary, r.summary.p50_us, 1),
        measured(&r.summary, r.summary.p90_us, 1),
        measured(&r.summary, r.summary.p99_us, 1),
        measured(&r.summary, r.summary.calls_per_sec, 0),
        r.errors.total(),
        opt(r.gantry_cpu_us_per_call, 1),
        opt(r.upstream_cpu_us_per_call, 1),
        opt(r.upstream_requests_per_call, 3),
        opt(r.loadgen_core_share, 2),
    );
}

/// A figure of `s`, or "—" when no call completed in the window (a zero would read as a
/// measurement).
fn measured(s: &Summary, v: f64, prec: usize) -> String {
    if s.calls == 0 {
        "—".to_owned()
    } else {
        format!("{v:.prec$}")
    }
}

fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 / 1024.0)
}
