//! Public names: what a tool or prompt is called on an endpoint.
//!
//! MCP 2025-11-25 asks that tool names are 1–128 characters from `[A-Za-z0-9_.-]`. Servers do
//! not always comply and prefixes make names longer, so every name Gantry mints goes through
//! [`sanitize`], which keeps valid names as they are and repairs the rest deterministically.

/// The longest tool name MCP allows.
pub const MAX_NAME_LEN: usize = 128;

/// Whether `c` may appear in a tool name.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Whether `name` is a valid MCP tool name.
pub fn is_valid(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && name.chars().all(is_name_char)
}

/// Turns any string into a valid tool name: invalid characters become `_`, an empty name
/// becomes `_`, and a name over 128 characters is cut and given a short hash of the whole
/// name so that two long names sharing a prefix stay distinct.
pub fn sanitize(name: &str) -> String {
    if is_valid(name) {
        return name.to_owned();
    }
    let mut out: String = name
        .chars()
        .map(|c| if is_name_char(c) { c } else { '_' })
        .collect();
    if out.is_empty() {
        out.push('_');
    }
    if out.len() > MAX_NAME_LEN {
        let hash = format!("{:08x}", fnv1a(name.as_bytes()) as u32);
        out.truncate(MAX_NAME_LEN - hash.len() - 1);
        out.push('_');
        out.push_str(&hash);
    }
    out
}

/// FNV-1a, a small stable hash (not for security).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Matches `text` against a glob where `*` matches any run of characters and `?` one.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_are_kept_and_invalid_ones_repaired() {
        assert_eq!(sanitize("time__get_current_time"), "time__get_current_time");
        assert_eq!(sanitize("my server/tool name"), "my_server_tool_name");
        assert_eq!(sanitize(""), "_");
        let long = "a".repeat(200);
        let s = sanitize(&long);
        assert_eq!(s.len(), MAX_NAME_LEN);
        assert!(is_valid(&s));
        let other = sanitize(&format!("{}b", "a".repeat(199)));
        assert_ne!(s, other, "long names sharing a prefix stay distinct");
    }

    #[test]
    fn globs_match_stars_and_question_marks() {
        assert!(glob_match("time/*", "time/get_current_time"));
        assert!(glob_match("*/get_*", "time/get_current_time"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(!glob_match("time/*", "everything/echo"));
        assert!(glob_match("*echo*", "everything/echo"));
        assert!(!glob_match("echo", "everything/echo"));
    }
}
