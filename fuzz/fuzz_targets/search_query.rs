//! Tool search: the tokenizer and a query over a small fixed index. Any query (any Unicode,
//! any length) gives at most `limit` hits with finite scores and relevance in 0..=1.
#![no_main]

use std::sync::OnceLock;

use gantry_search::{Index, SearchOptions, ToolDoc, tokenize};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let tools = [
            ("weather", json!({"name": "get_weather", "title": "Weather",
                "description": "Current weather for a city.",
                "inputSchema": {"properties": {"city": {"type": "string", "description": "City name"}}},
                "annotations": {"readOnlyHint": true}})),
            ("files", json!({"name": "write_file", "description": "Writes text to a file; overwrites it.",
                "inputSchema": {"properties": {"path": {"type": "string"}, "content": {"type": "string"}}},
                "annotations": {"destructiveHint": true}})),
            ("files", json!({"name": "readFile", "description": "Reads a file (UTF-8).",
                "inputSchema": {"properties": {"path": {"type": "string"}}}})),
            ("time", json!({"name": "convert_time", "description": "Converts a time between time zones.",
                "inputSchema": {"properties": {"source_timezone": {"type": "string"}, "time": {"type": "string"}}}})),
            ("cjk", json!({"name": "translate", "description": "翻译文本 テキストを翻訳 번역하기",
                "inputSchema": {"properties": {"text": {"type": "string"}}}})),
        ];
        Index::build(tools.iter().filter_map(|(s, t)| ToolDoc::from_tool_json(s, t)))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let query = String::from_utf8_lossy(rest);
    let _ = tokenize::tokenize(&query);
    let limit = usize::from(flags % 8);
    let opts = SearchOptions {
        limit,
        servers: if flags & 0x08 != 0 { vec!["files".into()] } else { Vec::new() },
        read_only: flags & 0x10 != 0,
        destructive: match flags >> 5 {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        },
        ..SearchOptions::default()
    };
    let hits = index().search(&query, &opts);
    assert!(hits.len() <= limit, "{} hits for limit {limit}", hits.len());
    for h in &hits {
        assert!(h.score.is_finite(), "score {}", h.score);
        assert!((0.0..=1.0).contains(&h.relevance), "relevance {}", h.relevance);
    }
});
