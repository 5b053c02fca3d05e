//! Answering a query: sum the precomputed BM25F weights of the query's terms, drop tools
//! that the filters exclude or that match too little of the query, keep the best `limit`.
//!
//! The relevance floor: a tool's *relevance* is its score divided by the best score the query
//! could reach in this index, the sum over the query's distinct known terms of the largest
//! weight each has in any tool. A tool that matches only the query's weakest words (say
//! "get" and "data" out of "get weather data for Paris") falls under the floor and is
//! dropped, so the list ends where the matches stop meaning anything. Terms the index has
//! never seen (typos, place names, words no tool uses) add nothing to either side: they cannot
//! be matched by any tool, so they do not make the others look worse. A query with no known
//! term at all, such as nonsense or only stop words, returns nothing.

use crate::index::Index;
use crate::tokenize::tokenize;

/// Default relevance floor (see the module docs). On the benchmark, floors up to 0.15 lose
/// no relevant tool from the top 50 and 0.2 starts to; 0.1 keeps a margin.
pub const DEFAULT_MIN_RELEVANCE: f32 = 0.1;

/// How to search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOptions {
    /// Maximum number of hits.
    pub limit: usize,
    /// Only tools of these servers; empty means every server.
    pub servers: Vec<String>,
    /// Only tools annotated `readOnlyHint: true`.
    pub read_only: bool,
    /// `Some(true)`: only tools annotated `destructiveHint: true`; `Some(false)`: only tools
    /// not annotated so; `None`: no filter.
    pub destructive: Option<bool>,
    /// Hits whose relevance (score / best possible score for the query, in [0, 1]) is lower
    /// are dropped.
    pub min_relevance: f32,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            limit: 10,
            servers: Vec::new(),
            read_only: false,
            destructive: None,
            min_relevance: DEFAULT_MIN_RELEVANCE,
        }
    }
}

/// One search result; borrows from the index.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit<'a> {
    /// The tool's id, as given in [`crate::ToolDoc::id`].
    pub id: &'a str,
    /// The tool's server.
    pub server: &'a str,
    /// The tool's name.
    pub name: &'a str,
    /// The first sentence of the description, at most [`crate::SUMMARY_CHARS`] characters.
    pub description: &'a str,
    /// `annotations.readOnlyHint`, when set.
    pub read_only: Option<bool>,
    /// `annotations.destructiveHint`, when set.
    pub destructive: Option<bool>,
    /// BM25F score; comparable only within one query.
    pub score: f32,
    /// `score` divided by the best possible score for the query, in [0, 1].
    pub relevance: f32,
}

impl Index {
    /// The best `opts.limit` tools for `query`, best first (ties in index order).
    pub fn search(&self, query: &str, opts: &SearchOptions) -> Vec<Hit<'_>> {
        if opts.limit == 0 || self.docs.is_empty() {
            return Vec::new();
        }
        let mut words = tokenize(query);
        words.sort_unstable();
        words.dedup();
        let mut best_possible = 0.0;
        let mut known = Vec::with_capacity(words.len());
        for w in &words {
            if let Some(&t) = self.terms.get(w.as_str()) {
                best_possible += self.max_weight[t as usize];
                known.push(t);
            }
        }
        if known.is_empty() {
            return Vec::new();
        }

        let allowed_server: Option<Vec<bool>> = (!opts.servers.is_empty()).then(|| {
            self.servers
                .iter()
                .map(|s| opts.servers.iter().any(|o| o == s))
                .collect()
        });
        if allowed_server.as_ref().is_some_and(|a| !a.contains(&true)) {
            return Vec::new();
        }

        let mut scores = vec![0f32; self.docs.len()];
        let mut touched: Vec<u32> = Vec::new();
        for t in known {
            let range = self.offsets[t as usize] as usize..self.offsets[t as usize + 1] as usize;
            for p in &self.postings[range] {
                let s = &mut scores[p.doc as usize];
                if *s == 0.0 {
                    touched.push(p.doc);
                }
                *s += p.weight;
            }
        }

        let floor = opts.min_relevance * best_possible;
        let mut hits: Vec<(f32, u32)> = touched
            .into_iter()
            .filter_map(|d| {
                let score = scores[d as usize];
                let meta = &self.docs[d as usize];
                let keep = score >= floor
                    && allowed_server
                        .as_ref()
                        .is_none_or(|a| a[meta.server as usize])
                    && (!opts.read_only || meta.read_only == Some(true))
                    && opts
                        .destructive
                        .is_none_or(|want| (meta.destructive == Some(true)) == want);
                keep.then_some((score, d))
            })
            .collect();

        let by_rank = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if hits.len() > opts.limit {
            hits.select_nth_unstable_by(opts.limit - 1, by_rank);
            hits.truncate(opts.limit);
        }
        hits.sort_unstable_by(by_rank);

        hits.into_iter()
            .map(|(score, d)| {
                let m = &self.docs[d as usize];
                Hit {
                    id: &m.id,
                    server: &self.servers[m.server as usize],
                    name: &m.name,
                    description: &m.summary,
                    read_only: m.read_only,
                    destructive: m.destructive,
                    score,
                    relevance: (score / best_possible).min(1.0),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ToolDoc;
    use serde_json::{Value, json};

    fn tool(server: &str, name: &str, description: &str, schema: Value, ann: Value) -> ToolDoc {
        ToolDoc {
            id: format!("{server}/{name}"),
            server: server.into(),
            name: name.into(),
            title: None,
            description: description.into(),
            input_schema: schema,
            annotations: ann,
        }
    }

    fn index() -> Index {
        let none = Value::Null;
        Index::build([
            tool(
                "weather",
                "get_forecast",
                "Returns the forecast for the next days.",
                json!({"properties": {"city": {"type": "string", "description": "City name"}}}),
                json!({"readOnlyHint": true}),
            ),
            tool(
                "files",
                "delete_file",
                "Removes a file from disk permanently.",
                json!({"properties": {"path": {"description": "Absolute path of the file"}}}),
                json!({"readOnlyHint": false, "destructiveHint": true}),
            ),
            tool(
                "files",
                "read_file",
                "Returns the contents of a file.",
                json!({"properties": {"path": {"description": "Absolute path of the file"}}}),
                json!({"readOnlyHint": true}),
            ),
            tool(
                "archive",
                "list_entries",
                "Lists the entries of an archive; each entry names one file.",
                none.clone(),
                none.clone(),
            ),
            tool(
                "mail",
                "send_message",
                "Sends an email.",
                json!({"properties": {"attachment": {"description": "A file to attach, e.g. a PDF report"}}}),
                none.clone(),
            ),
            tool(
                "notes",
                "create_note",
                "Creates a note.",
                none.clone(),
                none,
            ),
        ])
    }

    fn ids(hits: &[Hit<'_>]) -> Vec<String> {
        hits.iter().map(|h| h.id.to_string()).collect()
    }

    #[test]
    fn parameter_descriptions_are_searched() {
        let ix = index();
        let hits = ix.search("pdf report", &SearchOptions::default());
        assert_eq!(ids(&hits), ["mail/send_message"]);
        let hits = ix.search("which city", &SearchOptions::default());
        assert_eq!(ids(&hits), ["weather/get_forecast"]);
    }

    #[test]
    fn name_matches_outrank_description_matches() {
        let ix = index();
        let hits = ix.search("file", &SearchOptions::default());
        let got = ids(&hits);
        // Both named tools come before the ones that only mention "file" in their text.
        assert_eq!(got.len(), 4, "{got:?}");
        let mut named = got[..2].to_vec();
        named.sort();
        assert_eq!(named, ["files/delete_file", "files/read_file"]);
        assert!(
            got[2..].contains(&"archive/list_entries".to_string()),
            "{got:?}"
        );
    }

    #[test]
    fn a_field_weighted_zero_neither_scores_nor_repeats_a_hit() {
        let mut params = crate::Params::default();
        params.fields[crate::Field::Server as usize].weight = 0.0;
        let ix = Index::build_with(
            [tool(
                "alpha",
                "weather_now",
                "Current conditions.",
                Value::Null,
                Value::Null,
            )],
            params,
        );
        // "alpha" occurs only in the server field, which is weighted 0.
        let hits = ix.search("alpha weather", &SearchOptions::default());
        assert_eq!(ids(&hits), ["alpha/weather_now"]);
    }

    #[test]
    fn stemming_matches_other_inflections() {
        let ix = index();
        let hits = ix.search("deleting files", &SearchOptions::default());
        assert_eq!(hits[0].id, "files/delete_file");
    }

    #[test]
    fn server_filter_keeps_only_those_servers() {
        let ix = index();
        let opts = SearchOptions {
            servers: vec!["archive".into(), "mail".into()],
            ..SearchOptions::default()
        };
        let got = ids(&ix.search("file", &opts));
        assert_eq!(got, ["archive/list_entries", "mail/send_message"]);
        let opts = SearchOptions {
            servers: vec!["nope".into()],
            ..SearchOptions::default()
        };
        assert!(ix.search("file", &opts).is_empty());
    }

    #[test]
    fn annotation_filters() {
        let ix = index();
        let read_only = SearchOptions {
            read_only: true,
            ..SearchOptions::default()
        };
        assert_eq!(ids(&ix.search("file", &read_only)), ["files/read_file"]);
        let destructive = SearchOptions {
            destructive: Some(true),
            ..SearchOptions::default()
        };
        assert_eq!(ids(&ix.search("file", &destructive)), ["files/delete_file"]);
        let safe = SearchOptions {
            destructive: Some(false),
            ..SearchOptions::default()
        };
        let got = ids(&ix.search("file", &safe));
        assert_eq!(got.len(), 3);
        assert!(!got.contains(&"files/delete_file".to_string()));
    }

    #[test]
    fn hits_carry_metadata() {
        let ix = index();
        let h = &ix.search("delete file", &SearchOptions::default())[0];
        assert_eq!(
            (h.id, h.server, h.name, h.description),
            (
                "files/delete_file",
                "files",
                "delete_file",
                "Removes a file from disk permanently."
            )
        );
        assert_eq!((h.read_only, h.destructive), (Some(false), Some(true)));
        assert!(h.score > 0.0 && h.relevance > 0.0 && h.relevance <= 1.0);
    }

    #[test]
    fn limit_keeps_the_best() {
        let ix = index();
        let all = ix.search("file", &SearchOptions::default());
        let two = ix.search(
            "file",
            &SearchOptions {
                limit: 2,
                ..SearchOptions::default()
            },
        );
        assert_eq!(ids(&two), ids(&all[..2]));
        assert!(
            ix.search(
                "file",
                &SearchOptions {
                    limit: 0,
                    ..SearchOptions::default()
                }
            )
            .is_empty()
        );
    }

    #[test]
    fn nonsense_returns_nothing() {
        let ix = index();
        let opts = SearchOptions::default();
        assert!(ix.search("xqzvw blorf", &opts).is_empty());
        assert!(ix.search("the of and", &opts).is_empty(), "stop words only");
        assert!(ix.search("", &opts).is_empty());
    }

    #[test]
    fn floor_cuts_tools_that_match_only_weak_words() {
        // Thirty tools say "data"; one is about the weather.
        let mut docs: Vec<ToolDoc> = (0..30)
            .map(|i| {
                let desc = format!("Returns data about item {i}.");
                tool(
                    "store",
                    &format!("item_{i}"),
                    &desc,
                    Value::Null,
                    Value::Null,
                )
            })
            .collect();
        docs.push(tool(
            "wx",
            "forecast",
            "Weather forecast data.",
            Value::Null,
            Value::Null,
        ));
        let ix = Index::build(docs);
        let opts = SearchOptions {
            limit: 50,
            ..SearchOptions::default()
        };
        assert_eq!(ids(&ix.search("weather data", &opts)), ["wx/forecast"]);
        let no_floor = SearchOptions {
            min_relevance: 0.0,
            ..opts.clone()
        };
        let all = ix.search("weather data", &no_floor);
        assert_eq!(all.len(), 31);
        assert_eq!(all[0].id, "wx/forecast");
        assert!(
            (all[0].relevance - 1.0).abs() < 1e-6,
            "matches everything it could"
        );
        // Unknown words neither match nor count against the rest.
        assert_eq!(ids(&ix.search("weather blorf", &opts)), ["wx/forecast"]);
    }

    #[test]
    fn chinese_and_identifier_forms_are_found() {
        let none = || Value::Null;
        let ix = Index::build([
            tool("cn", "get_weather", "查询城市天气预报", none(), none()),
            tool("cn", "get_news", "获取今日新闻热榜", none(), none()),
            tool(
                "yt",
                "getYouTubeTranscript",
                "Fetches captions.",
                none(),
                none(),
            ),
        ]);
        let opts = SearchOptions::default();
        assert_eq!(ids(&ix.search("天气怎么样", &opts)), ["cn/get_weather"]);
        assert_eq!(ids(&ix.search("今日新闻", &opts)), ["cn/get_news"]);
        assert_eq!(
            ids(&ix.search("youtube transcript", &opts)),
            ["yt/getYouTubeTranscript"]
        );
        assert_eq!(
            ids(&ix.search("get-you-tube", &opts))[0],
            "yt/getYouTubeTranscript"
        );
    }
}
