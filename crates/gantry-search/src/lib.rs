//! Ranked search over MCP tools, for Gantry's progressive discovery.
//!
//! A gateway in front of many servers can expose thousands of tools; a client should find the
//! few it needs from a sentence ("convert this word file to pdf") instead of reading them all.
//! This crate ranks tools with BM25F over their name, title, description, parameter names,
//! parameter descriptions and server name, each field with its own weight and length
//! normalisation ([`Params`]), and filters by server and by annotation hints.
//!
//! - [`tokenize`]: identifier-aware splitting, English stop words and Porter stemming
//!   ([`stem`]), character unigrams and bigrams for Chinese, Japanese and Korean.
//! - [`Index::build`] turns [`ToolDoc`]s into an immutable index with precomputed postings;
//!   [`Index::search`] answers a query with [`Hit`]s, applying [`SearchOptions`] and a
//!   relevance floor so that queries matching nothing meaningful return nothing.
//!
//! ```
//! use gantry_search::{Index, SearchOptions, ToolDoc};
//! use serde_json::json;
//!
//! let tool = json!({"name": "get_weather", "description": "Current weather for a city.",
//!                   "inputSchema": {"properties": {"city": {"type": "string"}}}});
//! let index = Index::build(ToolDoc::from_tool_json("weather", &tool));
//! let hits = index.search("weather in Berlin", &SearchOptions::default());
//! assert_eq!(hits[0].id, "weather/get_weather");
//! assert!(index.search("xqzvw blorf", &SearchOptions::default()).is_empty());
//! ```
//!
//! Quality and speed figures, and how the parameters were chosen: see the crate's README.

mod doc;
mod index;
mod rank;
pub mod stem;
pub mod tokenize;

pub use doc::{ToolDoc, one_line};
pub use index::{FIELDS, Field, FieldParams, Index, Params, SUMMARY_CHARS};
pub use rank::{DEFAULT_MIN_RELEVANCE, Hit, SearchOptions};
