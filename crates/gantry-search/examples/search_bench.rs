//! Latency benchmark: a 10,000-tool index (the 527-tool benchmark catalog replicated under
//! varied server names) and the benchmark's 113 queries, each run many times.
//!
//! `cargo run --release -p gantry-search --example search_bench [-- TOOLS ROUNDS]`
//! Prints build time and p50/p90/p99 per-query latency. Needs `shared/data` next to the
//! repository, or `GANTRY_SEARCH_DATA`.

#[path = "../tests/common/bench.rs"]
mod bench;

use std::time::{Duration, Instant};

use gantry_search::{Index, SearchOptions, ToolDoc};

fn main() {
    let mut args = std::env::args().skip(1);
    let tools: usize = args.next().map_or(10_000, |a| a.parse().expect("TOOLS"));
    let rounds: usize = args.next().map_or(20, |a| a.parse().expect("ROUNDS"));
    let Some(data) = bench::data_dir() else {
        eprintln!("benchmark data not found; set GANTRY_SEARCH_DATA");
        std::process::exit(2);
    };
    let base = bench::catalog(&data);
    let queries = bench::queries(&data);

    // Replica r of server s is `s-<region>-<r>`: same tools, distinct servers and ids.
    const REGIONS: [&str; 5] = ["eu", "us", "apac", "staging", "internal"];
    let docs: Vec<ToolDoc> = (0..tools)
        .map(|i| {
            let mut d = base[i % base.len()].clone();
            let r = i / base.len();
            if r > 0 {
                d.server = format!("{}-{}-{r}", d.server, REGIONS[r % REGIONS.len()]);
                d.id = format!("{}/{}", d.server, d.name);
            }
            d
        })
        .collect();

    let rss_before = rss_kib();
    let t = Instant::now();
    let index = Index::build(docs);
    let build = t.elapsed();
    // The index's memory, as the process's resident set grew while building it (the
    // documents it was built from are already resident before).
    let grown = rss_kib().zip(rss_before).map(|(a, b)| a.saturating_sub(b));
    println!(
        "index: {} tools, {} terms, built in {:.1} ms, memory +{} KiB resident",
        index.len(),
        index.term_count(),
        build.as_secs_f64() * 1e3,
        grown.map_or_else(|| "?".into(), |k| k.to_string())
    );

    let opts = SearchOptions::default();
    let mut hits = 0usize;
    // Warm-up round, not timed.
    for q in &queries {
        hits += index.search(&q.query, &opts).len();
    }
    let mut times: Vec<Duration> = Vec::with_capacity(queries.len() * rounds);
    for _ in 0..rounds {
        for q in &queries {
            let t = Instant::now();
            let h = index.search(&q.query, &opts);
            times.push(t.elapsed());
            hits += h.len();
        }
    }
    times.sort_unstable();
    let pct = |p: f64| {
        let i = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1;
        times[i].as_secs_f64() * 1e3
    };
    println!(
        "search: {} queries x {rounds} rounds, limit {}: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({hits} hits)",
        queries.len(),
        opts.limit,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0),
    );
}

/// The process's resident set (`VmRSS`), in KiB, where `/proc` has it.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
