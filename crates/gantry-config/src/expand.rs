//! `${VAR}` expansion in config values.

/// Replaces `${NAME}` with the variable's value; `$$` stands for a literal `$`.
///
/// Returns the name of the first variable that is not set, so the caller can point at the
/// field.
pub(crate) fn expand(input: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unterminated \"${{\" in {input:?}"))?;
            let name = &body[..end];
            let value = env(name).ok_or_else(|| {
                format!("environment variable {name} is not set (write $$ for a literal $)")
            })?;
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_replaced_and_dollars_escaped() {
        let env = |k: &str| (k == "TOKEN").then(|| "s3cret".to_owned());
        assert_eq!(expand("Bearer ${TOKEN}", &env).unwrap(), "Bearer s3cret");
        assert_eq!(expand("a$$b $x", &env).unwrap(), "a$b $x");
        assert!(
            expand("${MISSING}", &env)
                .unwrap_err()
                .contains("MISSING is not set")
        );
        assert!(expand("${OPEN", &env).unwrap_err().contains("unterminated"));
    }
}
