//! Building the immutable index: term dictionary, per-term postings with their BM25F weight
//! already computed, and what hits report about each tool.
//!
//! Why precompute weights: the index never changes after it is built (the gateway swaps in a
//! new one when catalogs change), and field weights, `k1` and `b` are fixed per index, so each
//! (term, tool) pair's BM25F contribution is a constant. Searching is then a sum over the
//! query terms' postings, with no per-field arithmetic on the hot path.

use std::collections::HashMap;

use crate::doc::{ToolDoc, one_line};
use crate::tokenize::tokenize_into;

/// The fields of a tool that are indexed, each with its own weight and length normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The tool name, split into words.
    Name = 0,
    /// The optional human-readable title.
    Title = 1,
    /// The description.
    Description = 2,
    /// Names of `inputSchema` properties.
    ParamNames = 3,
    /// Descriptions, titles and enum values of `inputSchema` properties.
    ParamText = 4,
    /// The server's name.
    Server = 5,
}

/// Number of [`Field`]s.
pub const FIELDS: usize = 6;

/// Weight and length normalisation of one field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldParams {
    /// How much one occurrence in this field counts, relative to the description's 1.0.
    pub weight: f32,
    /// Length normalisation in [0, 1]: 0 ignores the field's length, 1 divides by it fully.
    pub b: f32,
}

/// BM25F parameters. The defaults were chosen by measurement (see the crate README).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Term-frequency saturation: how quickly repeated occurrences stop adding score.
    pub k1: f32,
    /// Per field, indexed by `Field as usize`.
    pub fields: [FieldParams; FIELDS],
}

impl Default for Params {
    fn default() -> Self {
        let f = |weight, b| FieldParams { weight, b };
        Params {
            k1: 1.2,
            fields: [
                f(3.0, 0.5),  // name
                f(3.0, 0.5),  // title
                f(1.0, 0.75), // description
                f(1.0, 0.5),  // parameter names
                f(0.5, 0.75), // parameter text
                f(1.5, 0.5),  // server
            ],
        }
    }
}

/// One tool's entry in a term's posting list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Posting {
    pub(crate) doc: u32,
    /// The term's full BM25F contribution to this tool's score.
    pub(crate) weight: f32,
}

/// What a hit reports about a tool.
#[derive(Debug, Clone)]
pub(crate) struct DocMeta {
    pub(crate) id: String,
    pub(crate) server: u32,
    pub(crate) name: String,
    pub(crate) summary: String,
    pub(crate) read_only: Option<bool>,
    pub(crate) destructive: Option<bool>,
}

/// An immutable search index over tools. Build it once with [`Index::build`], share it
/// (it is `Send + Sync`), and replace it as a whole when the catalog changes.
#[derive(Debug, Clone)]
pub struct Index {
    pub(crate) params: Params,
    pub(crate) terms: HashMap<Box<str>, u32>,
    /// Postings of term `t` are `postings[offsets[t]..offsets[t + 1]]`, sorted by tool.
    pub(crate) offsets: Vec<u32>,
    pub(crate) postings: Vec<Posting>,
    /// The largest posting weight per term: the most one term can add to a score.
    pub(crate) max_weight: Vec<f32>,
    pub(crate) docs: Vec<DocMeta>,
    pub(crate) servers: Vec<String>,
}

/// Maximum length of the one-line description in hits.
pub const SUMMARY_CHARS: usize = 120;

/// Robertson–Spärck Jones IDF with the +1 that keeps it positive for very common terms.
pub(crate) fn idf(docs: usize, df: usize) -> f32 {
    let (n, df) = (docs as f32, df as f32);
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

impl Index {
    /// Builds an index with the default [`Params`].
    pub fn build(docs: impl IntoIterator<Item = ToolDoc>) -> Index {
        Index::build_with(docs, Params::default())
    }

    /// Builds an index with the given BM25F parameters.
    pub fn build_with(docs: impl IntoIterator<Item = ToolDoc>, params: Params) -> Index {
        let mut terms: HashMap<Box<str>, u32> = HashMap::new();
        let mut servers: Vec<String> = Vec::new();
        let mut server_ids: HashMap<String, u32> = HashMap::new();
        let mut metas = Vec::new();
        // Per tool: (term, field) pairs, and per-field lengths.
        let mut occurrences: Vec<Vec<(u32, u8)>> = Vec::new();
        let mut lengths: Vec<[u32; FIELDS]> = Vec::new();
        let mut scratch = Vec::new();

        for doc in docs {
            let (param_names, param_text) = doc.parameter_text();
            let texts: [&str; FIELDS] = [
                &doc.name,
                doc.title.as_deref().unwrap_or(""),
                &doc.description,
                &param_names,
                &param_text,
                &doc.server,
            ];
            let mut occ = Vec::new();
            let mut len = [0u32; FIELDS];
            for (f, text) in texts.iter().enumerate() {
                scratch.clear();
                tokenize_into(text, &mut scratch);
                len[f] = scratch.len() as u32;
                for term in scratch.drain(..) {
                    let next = terms.len() as u32;
                    let id = *terms.entry(term.into_boxed_str()).or_insert(next);
                    occ.push((id, f as u8));
                }
            }
            occ.sort_unstable();
            occurrences.push(occ);
            lengths.push(len);

            let server = *server_ids.entry(doc.server.clone()).or_insert_with(|| {
                servers.push(doc.server.clone());
                servers.len() as u32 - 1
            });
            metas.push(DocMeta {
                read_only: doc.read_only_hint(),
                destructive: doc.destructive_hint(),
                summary: one_line(&doc.description, SUMMARY_CHARS),
                id: doc.id,
                server,
                name: doc.name,
            });
        }

        let n = metas.len();
        let mut avg = [0f32; FIELDS];
        for len in &lengths {
            for f in 0..FIELDS {
                avg[f] += len[f] as f32;
            }
        }
        for a in &mut avg {
            *a = if n == 0 {
                1.0
            } else {
                (*a / n as f32).max(1e-6)
            };
        }

        // Per tool and field, what one occurrence is worth after length normalisation.
        let unit = |d: usize, f: usize| {
            let p = params.fields[f];
            let norm = 1.0 - p.b + p.b * lengths[d][f] as f32 / avg[f];
            p.weight / norm
        };

        // Pseudo term frequencies per (term, tool), tools in order, so each list is sorted.
        let mut lists: Vec<Vec<Posting>> = vec![Vec::new(); terms.len()];
        for (d, occ) in occurrences.iter().enumerate() {
            let mut i = 0;
            while i < occ.len() {
                let term = occ[i].0;
                let mut tf = 0.0;
                while i < occ.len() && occ[i].0 == term {
                    tf += unit(d, occ[i].1 as usize);
                    i += 1;
                }
                // A term seen only in fields weighted 0 cannot score: no posting (a zero
                // posting would also read as "not seen yet" when scores add up).
                if tf > 0.0 {
                    lists[term as usize].push(Posting {
                        doc: d as u32,
                        weight: tf,
                    });
                }
            }
        }

        let k1 = params.k1;
        let mut offsets = Vec::with_capacity(lists.len() + 1);
        let mut max_weight = Vec::with_capacity(lists.len());
        let mut postings = Vec::with_capacity(lists.iter().map(Vec::len).sum());
        offsets.push(0);
        for list in lists {
            let w = idf(n, list.len());
            postings.extend(list.into_iter().map(|p| Posting {
                doc: p.doc,
                weight: w * p.weight * (k1 + 1.0) / (k1 + p.weight),
            }));
            let start = *offsets.last().unwrap_or(&0) as usize;
            max_weight.push(
                postings[start..]
                    .iter()
                    .map(|p| p.weight)
                    .fold(0.0, f32::max),
            );
            offsets.push(postings.len() as u32);
        }

        Index {
            params,
            terms,
            offsets,
            postings,
            max_weight,
            docs: metas,
            servers,
        }
    }

    /// Number of tools indexed.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether no tools are indexed.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Number of distinct terms.
    pub fn term_count(&self) -> usize {
        self.max_weight.len()
    }

    /// The parameters the index was built with.
    pub fn params(&self) -> &Params {
        &self.params
    }
}
