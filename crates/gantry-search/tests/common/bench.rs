//! The tool-search benchmark in `shared/data` (beside the repository), for the quality test
//! and the examples: loading the catalog and the queries, and the scorer's R@k and MRR.
#![allow(dead_code)] // Each user needs a different part.

use std::path::PathBuf;

use gantry_search::{Index, SearchOptions, ToolDoc};
use serde_json::Value;

/// `shared/data`, from `GANTRY_SEARCH_DATA` or next to the repository; `None` if absent.
pub(crate) fn data_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("GANTRY_SEARCH_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
    };
    dir.join("catalogs/livemcptool.json")
        .is_file()
        .then_some(dir)
}

/// The livemcptool catalog: an array of `{server, name, description, inputSchema}`.
pub(crate) fn catalog(data: &std::path::Path) -> Vec<ToolDoc> {
    let path = data.join("catalogs/livemcptool.json");
    let text = std::fs::read_to_string(&path).expect("read catalog");
    let tools: Vec<Value> = serde_json::from_str(&text).expect("catalog is a JSON array");
    tools
        .iter()
        .map(|t| {
            let server = t["server"].as_str().expect("server");
            ToolDoc::from_tool_json(server, t).expect("name")
        })
        .collect()
}

pub(crate) struct Query {
    pub(crate) id: String,
    pub(crate) query: String,
    pub(crate) gold: Vec<String>,
    pub(crate) kind: String,
    pub(crate) lang: String,
}

pub(crate) fn queries(data: &std::path::Path) -> Vec<Query> {
    let path = data.join("queries/public.jsonl");
    let text = std::fs::read_to_string(&path).expect("read queries");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("query line is JSON");
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            Query {
                id: s("id"),
                query: s("query"),
                gold: v["gold"]
                    .as_array()
                    .expect("gold")
                    .iter()
                    .map(|g| g.as_str().expect("gold id").to_string())
                    .collect(),
                kind: s("kind"),
                lang: s("lang"),
            }
        })
        .collect()
}

/// Mean metrics over queries, as `score.py` computes them.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Metrics {
    pub(crate) r1: f64,
    pub(crate) r5: f64,
    pub(crate) r10: f64,
    pub(crate) mrr: f64,
    pub(crate) hit5: f64,
}

pub(crate) fn score_one(gold: &[String], ranked: &[&str]) -> Metrics {
    let recall = |k: usize| {
        let top = &ranked[..ranked.len().min(k)];
        gold.iter().filter(|g| top.contains(&g.as_str())).count() as f64 / gold.len() as f64
    };
    let first = ranked
        .iter()
        .take(50)
        .position(|r| gold.iter().any(|g| g == r));
    Metrics {
        r1: recall(1),
        r5: recall(5),
        r10: recall(10),
        mrr: first.map_or(0.0, |p| 1.0 / (p + 1) as f64),
        hit5: if first.is_some_and(|p| p < 5) {
            1.0
        } else {
            0.0
        },
    }
}

/// Runs `queries` (those `keep` accepts) against `index` and averages the metrics.
pub(crate) fn evaluate(index: &Index, queries: &[Query], keep: impl Fn(&Query) -> bool) -> Metrics {
    let opts = SearchOptions {
        limit: 50,
        ..SearchOptions::default()
    };
    evaluate_with(index, queries, &opts, keep)
}

/// [`evaluate`] with other search options.
pub(crate) fn evaluate_with(
    index: &Index,
    queries: &[Query],
    opts: &SearchOptions,
    keep: impl Fn(&Query) -> bool,
) -> Metrics {
    let mut sum = Metrics::default();
    let mut n = 0.0;
    for q in queries.iter().filter(|q| keep(q)) {
        let hits = index.search(&q.query, opts);
        let ranked: Vec<&str> = hits.iter().map(|h| h.id).collect();
        let m = score_one(&q.gold, &ranked);
        sum.r1 += m.r1;
        sum.r5 += m.r5;
        sum.r10 += m.r10;
        sum.mrr += m.mrr;
        sum.hit5 += m.hit5;
        n += 1.0;
    }
    if n > 0.0 {
        sum.r1 /= n;
        sum.r5 /= n;
        sum.r10 /= n;
        sum.mrr /= n;
        sum.hit5 /= n;
    }
    sum
}
