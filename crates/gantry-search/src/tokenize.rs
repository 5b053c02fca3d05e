//! Text -> index terms, the same way for tool text and for queries.
//!
//! Tool names are identifiers (`get_weather`, `searchRepositories`, `yt-dlp.download`,
//! `convert2pdf`) while queries are prose, so words are split at every identifier boundary:
//! separators (`_`, `-`, `.`, `/`, spaces, punctuation), lower-to-upper case changes
//! (`searchRepos` -> `search repos`), the end of an acronym (`HTTPServer` -> `http server`) and
//! letter/digit changes (`mp3` -> `mp 3`). A run that was split by case or digits also yields
//! its whole lowercase form, so `YouTube` is found by both "youtube" and "you tube".
//! Latin words are lowercased, stop words and single letters dropped, and the rest stemmed.
//!
//! Chinese, Japanese and Korean are written without spaces, so runs of Han, Kana and Hangul
//! become their single characters plus overlapping character bigrams: bigrams carry most of
//! the meaning of two-character words, unigrams keep single-character words and partial
//! matches findable, and inverse document frequency weighs the two against each other.

use crate::stem::stem_owned;

/// English function words that carry no meaning in a tool search query or description.
/// Kept small on purpose: generic but meaningful words ("get", "file", "tool") stay and are
/// weighed down by inverse document frequency instead.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "being", "but", "by", "can", "could", "did", "do", "does", "doing", "for", "from",
    "had", "has", "have", "having", "he", "her", "here", "him", "his", "how", "i", "if", "in",
    "into", "is", "it", "its", "itself", "just", "let", "me", "might", "more", "most", "my",
    "myself", "of", "on", "only", "or", "other", "our", "ours", "please", "she", "should", "so",
    "some", "such", "than", "that", "the", "their", "them", "then", "there", "these", "they",
    "this", "those", "through", "to", "too", "us", "very", "was", "we", "were", "what", "when",
    "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your",
    "yours",
];

/// Is `word` (lowercase) a stop word?
pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.binary_search(&word).is_ok()
}

/// Is `c` written without spaces between words: Han, Hiragana, Katakana or Hangul?
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF       // Hiragana, Katakana
        | 0x31F0..=0x31FF     // Katakana phonetic extensions
        | 0x3400..=0x4DBF     // CJK extension A
        | 0x4E00..=0x9FFF     // CJK unified ideographs
        | 0xF900..=0xFAFF     // CJK compatibility ideographs
        | 0xFF66..=0xFF9F     // half-width Katakana
        | 0x1100..=0x11FF     // Hangul Jamo
        | 0x3130..=0x318F     // Hangul compatibility Jamo
        | 0xAC00..=0xD7AF     // Hangul syllables
        | 0x20000..=0x2FA1F   // CJK extensions B-F, compatibility supplement
    )
}

/// The terms of `text`, in order, duplicates kept (term frequency matters when indexing).
pub fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    tokenize_into(text, &mut out);
    out
}

/// Appends the terms of `text` to `out`.
pub fn tokenize_into(text: &str, out: &mut Vec<String>) {
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if is_cjk(c) {
            let mut end = start;
            while let Some(&(i, c)) = chars.peek() {
                if !is_cjk(c) {
                    break;
                }
                end = i + c.len_utf8();
                chars.next();
            }
            cjk_terms(&text[start..end], out);
        } else if c.is_alphanumeric() {
            let mut end = start;
            while let Some(&(i, c)) = chars.peek() {
                if !c.is_alphanumeric() || is_cjk(c) {
                    break;
                }
                end = i + c.len_utf8();
                chars.next();
            }
            word_terms(&text[start..end], out);
        } else {
            chars.next();
        }
    }
}

/// Unigrams and bigrams of a run of CJK characters.
fn cjk_terms(run: &str, out: &mut Vec<String>) {
    let mut prev: Option<char> = None;
    for c in run.chars() {
        out.push(c.to_string());
        if let Some(p) = prev {
            let mut bigram = String::with_capacity(p.len_utf8() + c.len_utf8());
            bigram.push(p);
            bigram.push(c);
            out.push(bigram);
        }
        prev = Some(c);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Class {
    Lower,
    Upper,
    Digit,
}

fn class(c: char) -> Class {
    if c.is_numeric() {
        Class::Digit
    } else if c.is_uppercase() {
        Class::Upper
    } else {
        Class::Lower
    }
}

/// Splits an alphanumeric run at case and digit boundaries and emits its terms.
fn word_terms(run: &str, out: &mut Vec<String>) {
    let mut chars = run.char_indices().map(|(i, c)| (i, class(c))).peekable();
    let mut pieces = 0;
    let mut piece_start = 0;
    if let Some((_, mut prev)) = chars.next() {
        while let Some((i, cur)) = chars.next() {
            let next = chars.peek().map(|&(_, c)| c);
            let boundary = match (prev, cur) {
                (Class::Digit, Class::Digit) => false,
                (Class::Digit, _) | (_, Class::Digit) => true,
                (Class::Lower, Class::Upper) => true,
                // The last capital of an acronym starts the next word: HTTPServer -> HTTP Server.
                (Class::Upper, Class::Upper) => next == Some(Class::Lower),
                _ => false,
            };
            if boundary {
                push_word(&run[piece_start..i], out);
                pieces += 1;
                piece_start = i;
            }
            prev = cur;
        }
    }
    push_word(&run[piece_start..], out);
    if pieces > 0 {
        push_word(run, out);
    }
}

/// Lowercases, drops stop words and single letters, stems.
fn push_word(word: &str, out: &mut Vec<String>) {
    let lower = word.to_lowercase();
    let mut it = lower.chars();
    let single = it.next().is_some() && it.next().is_none();
    if single && !lower.starts_with(|c: char| c.is_numeric()) {
        return;
    }
    if is_stop_word(&lower) {
        return;
    }
    out.push(stem_owned(lower));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        tokenize(s)
    }

    #[test]
    fn stop_list_is_sorted_so_binary_search_works() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn snake_kebab_and_dotted_names_split() {
        assert_eq!(toks("get_current_weather"), ["get", "current", "weather"]);
        assert_eq!(toks("list-open-issues"), ["list", "open", "issu"]);
        assert_eq!(toks("fs.read_file"), ["fs", "read", "file"]);
    }

    #[test]
    fn camel_case_splits_and_keeps_the_whole_word() {
        assert_eq!(
            toks("searchRepositories"),
            ["search", "repositori", "searchrepositori"]
        );
        assert_eq!(toks("YouTube"), ["tube", "youtub"], "`you` is a stop word");
        assert_eq!(toks("HTTPServer"), ["http", "server", "httpserver"]);
        assert_eq!(toks("parseJSON"), ["pars", "json", "parsejson"]);
    }

    #[test]
    fn digits_split_from_letters() {
        assert_eq!(toks("mp3"), ["mp", "3", "mp3"]);
        assert_eq!(toks("convert2pdf"), ["convert", "2", "pdf", "convert2pdf"]);
        assert_eq!(toks("top 10"), ["top", "10"]);
    }

    #[test]
    fn lowercases_and_stems_prose() {
        assert_eq!(
            toks("Searches the Web for Recent News."),
            ["search", "web", "recent", "new"]
        );
    }

    #[test]
    fn stop_words_and_single_letters_go() {
        assert_eq!(toks("what is the time in a city"), ["time", "citi"]);
        assert_eq!(toks("what's"), Vec::<String>::new());
        assert!(toks("the of and to").is_empty());
    }

    #[test]
    fn cjk_runs_become_unigrams_and_bigrams() {
        assert_eq!(
            toks("天气预报"),
            ["天", "气", "天气", "预", "气预", "报", "预报"]
        );
        assert_eq!(
            toks("ひらがな"),
            ["ひ", "ら", "ひら", "が", "らが", "な", "がな"]
        );
        assert_eq!(toks("날씨"), ["날", "씨", "날씨"]);
    }

    #[test]
    fn mixed_scripts_split_at_the_script_change() {
        assert_eq!(
            toks("获取GitHub仓库"),
            [
                "获", "取", "获取", "git", "hub", "github", "仓", "库", "仓库"
            ]
        );
        assert_eq!(
            toks("搜索，关键词"),
            ["搜", "索", "搜索", "关", "键", "关键", "词", "键词"]
        );
    }

    #[test]
    fn empty_and_punctuation_only() {
        assert!(toks("").is_empty());
        assert!(toks("--- ... !!!").is_empty());
    }
}
