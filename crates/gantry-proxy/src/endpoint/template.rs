//! Just enough RFC 6570 to tell whether a URI could come from a URI template.

/// Whether `uri` matches `template`, where each `{…}` expression matches any run of
/// characters (`{var}` stops at `/`, `?` and `#`; `{+var}`, `{#var}` and query forms do not).
pub(crate) fn matches(template: &str, uri: &str) -> bool {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        parts.push(Part::Literal(&rest[..open]));
        let expr = &rest[open + 1..open + close];
        parts.push(Part::Expr(
            !expr.starts_with(['+', '#', '?', '&', '/', ';', '.']),
        ));
        rest = &rest[open + close + 1..];
    }
    parts.push(Part::Literal(rest));
    match_parts(&parts, uri)
}

enum Part<'a> {
    Literal(&'a str),
    /// `true`: a simple expression that does not cross `/`, `?` or `#`.
    Expr(bool),
}

fn match_parts(parts: &[Part<'_>], s: &str) -> bool {
    match parts.split_first() {
        None => s.is_empty(),
        Some((Part::Literal(l), rest)) => s.strip_prefix(l).is_some_and(|s| match_parts(rest, s)),
        Some((Part::Expr(simple), rest)) => (0..=s.len())
            .filter(|i| s.is_char_boundary(*i))
            .take_while(|i| !*simple || !s[..*i].contains(['/', '?', '#']))
            .any(|i| match_parts(rest, &s[i..])),
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn uris_match_their_templates_only() {
        assert!(matches(
            "test://template/{id}/data",
            "test://template/42/data"
        ));
        assert!(!matches(
            "test://template/{id}/data",
            "test://template/4/2/data"
        ));
        assert!(!matches(
            "test://template/{id}/data",
            "test://other/42/data"
        ));
        assert!(matches("file:///{+path}", "file:///a/b/c.txt"));
        assert!(matches(
            "demo://resource/dynamic/text/{resourceId}",
            "demo://resource/dynamic/text/7"
        ));
        assert!(matches("x://{a}-{b}", "x://1-2"));
    }
}
