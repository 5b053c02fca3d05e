//! Parameter sweep on the tool-search benchmark: how R@5 and MRR move with `k1`, the field
//! weights and the length normalisations. This is how the defaults in `Params` were chosen
//! (see the README); it only varies those general parameters, never anything query-specific.
//!
//! `cargo run --release -p gantry-search --example tune [-- defaults|grid]`
//! Always: the defaults, overall and per query kind and language. Then, unless `defaults`:
//! the relevance floor and one parameter at a time around the defaults; with `grid`, a coarse
//! grid instead, printing the best 15 settings by (R@5 + MRR) / 2.

#[path = "../tests/common/bench.rs"]
mod bench;

use gantry_search::{Field, Index, Params, SearchOptions, ToolDoc};

fn objective(m: &bench::Metrics) -> f64 {
    (m.r5 + m.mrr) / 2.0
}

fn run(docs: &[ToolDoc], queries: &[bench::Query], p: Params) -> bench::Metrics {
    let index = Index::build_with(docs.iter().cloned(), p);
    bench::evaluate(&index, queries, |_| true)
}

fn show(label: &str, m: &bench::Metrics) {
    println!(
        "{label:<44} R@1 {:.3}  R@5 {:.3}  R@10 {:.3}  MRR {:.3}  Hit@5 {:.3}",
        m.r1, m.r5, m.r10, m.mrr, m.hit5
    );
}

fn with(p: Params, f: Field, weight: Option<f32>, b: Option<f32>) -> Params {
    let mut p = p;
    let fp = &mut p.fields[f as usize];
    if let Some(w) = weight {
        fp.weight = w;
    }
    if let Some(b) = b {
        fp.b = b;
    }
    // The catalog has no titles; the title follows the name.
    if f == Field::Name {
        p.fields[Field::Title as usize] = p.fields[Field::Name as usize];
    }
    p
}

fn main() {
    let Some(data) = bench::data_dir() else {
        eprintln!("benchmark data not found; set GANTRY_SEARCH_DATA");
        std::process::exit(2);
    };
    let docs = bench::catalog(&data);
    let queries = bench::queries(&data);
    let base = Params::default();
    show("defaults", &run(&docs, &queries, base));
    let index = Index::build(docs.iter().cloned());
    let mut groups: Vec<String> = queries.iter().map(|q| format!("kind={}", q.kind)).collect();
    groups.extend(queries.iter().map(|q| format!("lang={}", q.lang)));
    groups.sort();
    groups.dedup();
    for g in &groups {
        let m = bench::evaluate(&index, &queries, |q| {
            g == &format!("kind={}", q.kind) || g == &format!("lang={}", q.lang)
        });
        show(&format!("  {g}"), &m);
    }
    if std::env::args().nth(1).as_deref() == Some("defaults") {
        return;
    }

    if std::env::args().nth(1).as_deref() != Some("grid") {
        for floor in [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3] {
            let opts = SearchOptions {
                limit: 50,
                min_relevance: floor,
                ..SearchOptions::default()
            };
            for (label, lang) in [("all", None), ("en", Some("en")), ("zh", Some("zh"))] {
                let m = bench::evaluate_with(&index, &queries, &opts, |q| {
                    lang.is_none_or(|l| q.lang == l)
                });
                show(&format!("floor {floor} {label}"), &m);
            }
        }
        for k1 in [0.5, 0.9, 1.2, 1.6, 2.0, 3.0] {
            let m = run(&docs, &queries, Params { k1, ..base });
            show(&format!("k1 {k1}"), &m);
        }
        let fields = [
            (Field::Name, "name"),
            (Field::Description, "description"),
            (Field::ParamNames, "param names"),
            (Field::ParamText, "param text"),
            (Field::Server, "server"),
        ];
        for (f, label) in fields {
            for w in [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0] {
                let m = run(&docs, &queries, with(base, f, Some(w), None));
                show(&format!("{label} weight {w}"), &m);
            }
            for b in [0.0, 0.25, 0.5, 0.75, 0.9, 1.0] {
                let m = run(&docs, &queries, with(base, f, None, Some(b)));
                show(&format!("{label} b {b}"), &m);
            }
        }
        return;
    }

    let mut results = Vec::new();
    for k1 in [0.6, 0.9, 1.2, 1.6, 2.0] {
        for name_w in [1.5, 2.0, 3.0, 4.0, 6.0] {
            for name_b in [0.25, 0.5, 0.75] {
                for desc_b in [0.5, 0.75, 0.9] {
                    for pn in [0.5, 1.0, 2.0] {
                        for pt in [0.25, 0.5, 1.0] {
                            for sv in [0.5, 1.0, 1.5, 2.5] {
                                let mut p = Params { k1, ..base };
                                p = with(p, Field::Name, Some(name_w), Some(name_b));
                                p = with(p, Field::Description, None, Some(desc_b));
                                p = with(p, Field::ParamNames, Some(pn), None);
                                p = with(p, Field::ParamText, Some(pt), None);
                                p = with(p, Field::Server, Some(sv), None);
                                let m = run(&docs, &queries, p);
                                let label = format!(
                                    "k1 {k1} name {name_w}/b{name_b} desc b{desc_b} pn {pn} pt {pt} srv {sv}"
                                );
                                results.push((objective(&m), label, m));
                            }
                        }
                    }
                }
            }
        }
    }
    results.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!("{} settings; best 15:", results.len());
    for (_, label, m) in results.iter().take(15) {
        show(label, m);
    }
    let n = results.len();
    show("median setting", &results[n / 2].2);
    show("worst setting", &results[n - 1].2);
}
