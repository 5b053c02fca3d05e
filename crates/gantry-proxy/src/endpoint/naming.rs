//! Public names for tools and prompts of several servers: `prefix`, `priority`, `manual`.

use std::collections::HashMap;

use gantry_config::Naming;
use gantry_core::names;

/// One item to name: which server, its own name, and an override name if configured.
pub(crate) struct Candidate {
    /// Index of the server in the endpoint's server list.
    pub(crate) server: usize,
    pub(crate) server_name: String,
    pub(crate) original: String,
    pub(crate) fixed: Option<String>,
}

/// The outcome: a public name per candidate (`None`: withheld because of an unresolved
/// clash), and what went wrong, for logs and startup checks.
pub(crate) struct Named {
    pub(crate) names: Vec<Option<String>>,
    pub(crate) problems: Vec<String>,
}

fn prefixed(format: &str, separator: &str, server: &str, item: &str) -> String {
    names::sanitize(
        &format
            .replace("{server}", server)
            .replace("{sep}", separator)
            .replace("{tool}", item),
    )
}

/// Names every candidate under `naming`. `kind` ("tool" or "prompt") is for messages.
pub(crate) fn assign(naming: &Naming, kind: &str, items: &[Candidate]) -> Named {
    let mut names: Vec<Option<String>> = items
        .iter()
        .map(|c| {
            Some(match (&c.fixed, naming) {
                (Some(f), _) => f.clone(),
                (None, Naming::Prefix { separator, format }) => {
                    prefixed(format, separator, &c.server_name, &c.original)
                }
                (None, _) => names::sanitize(&c.original),
            })
        })
        .collect();
    let mut problems = Vec::new();

    if let Naming::Priority {
        order,
        separator,
        format,
    } = naming
    {
        let rank = |c: &Candidate| {
            order
                .iter()
                .position(|s| *s == c.server_name)
                .unwrap_or(usize::MAX)
        };
        for group in clashes(&names) {
            // A fixed (overridden) name always keeps its name; otherwise the best-ranked
            // server wins, and a tie among unlisted servers means nobody wins.
            let winner = group
                .iter()
                .copied()
                .find(|i| items[*i].fixed.is_some())
                .or_else(|| {
                    let mut ranked: Vec<usize> = group.clone();
                    ranked.sort_by_key(|i| rank(&items[*i]));
                    let best = rank(&items[ranked[0]]);
                    (best != usize::MAX).then_some(ranked[0])
                });
            for i in group {
                if Some(i) != winner && items[i].fixed.is_none() {
                    names[i] = Some(prefixed(
                        format,
                        separator,
                        &items[i].server_name,
                        &items[i].original,
                    ));
                }
            }
        }
    }

    // Whatever still clashes (manual strategy, or overrides that collide) is withheld: the
    // first holder keeps the name under `prefix`/`priority`; under `manual` nobody does.
    for group in clashes(&names) {
        let who: Vec<String> = group
            .iter()
            .map(|i| format!("{}/{}", items[*i].server_name, items[*i].original))
            .collect();
        let name = names[group[0]].clone().unwrap_or_default();
        let keep_first = !matches!(naming, Naming::Manual);
        problems.push(format!(
            "{kind} name {name:?} is claimed by {}: {}",
            who.join(" and "),
            if keep_first {
                format!("only {} is published; give the others a distinct `name` override", who[0])
            } else {
                format!(
                    "naming = \"manual\" needs an override for all but one, e.g. [endpoints.<name>.{kind}s.\"{}\"] name = \"...\"",
                    who[1]
                )
            }
        ));
        for (n, i) in group.iter().enumerate() {
            if !(keep_first && n == 0) {
                names[*i] = None;
            }
        }
    }
    Named { names, problems }
}

/// Groups of indexes that share a name, each in item order.
fn clashes(names: &[Option<String>]) -> Vec<Vec<usize>> {
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in names.iter().enumerate() {
        if let Some(n) = n {
            by_name.entry(n.as_str()).or_default().push(i);
        }
    }
    let mut groups: Vec<Vec<usize>> = by_name.into_values().filter(|g| g.len() > 1).collect();
    groups.sort();
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(server: usize, server_name: &str, original: &str, fixed: Option<&str>) -> Candidate {
        Candidate {
            server,
            server_name: server_name.into(),
            original: original.into(),
            fixed: fixed.map(Into::into),
        }
    }

    fn prefix() -> Naming {
        Naming::Prefix {
            separator: "__".into(),
            format: "{server}{sep}{tool}".into(),
        }
    }

    fn priority(order: &[&str]) -> Naming {
        Naming::Priority {
            order: order.iter().map(|s| s.to_string()).collect(),
            separator: "__".into(),
            format: "{server}{sep}{tool}".into(),
        }
    }

    fn names_of(n: &Named) -> Vec<Option<&str>> {
        n.names.iter().map(|x| x.as_deref()).collect()
    }

    #[test]
    fn prefix_names_every_item_and_honours_format_and_overrides() {
        let items = [c(0, "time", "now", None), c(1, "ev", "echo", Some("say"))];
        let n = assign(&prefix(), "tool", &items);
        assert_eq!(names_of(&n), [Some("time__now"), Some("say")]);
        let dotted = Naming::Prefix {
            separator: ".".into(),
            format: "{server}{sep}{tool}".into(),
        };
        assert_eq!(
            names_of(&assign(&dotted, "tool", &items[..1])),
            [Some("time.now")]
        );
        let odd = [c(0, "my srv", "do it!", None)];
        assert_eq!(
            names_of(&assign(&prefix(), "tool", &odd)),
            [Some("my_srv__do_it_")]
        );
    }

    #[test]
    fn priority_keeps_bare_names_and_prefixes_the_losers() {
        let items = [
            c(0, "a", "echo", None),
            c(1, "b", "echo", None),
            c(1, "b", "only_b", None),
        ];
        let n = assign(&priority(&["b", "a"]), "tool", &items);
        assert_eq!(
            names_of(&n),
            [Some("a__echo"), Some("echo"), Some("only_b")]
        );
        assert!(n.problems.is_empty());
    }

    #[test]
    fn priority_clash_among_unlisted_servers_prefixes_all_of_them() {
        let items = [c(0, "a", "echo", None), c(1, "b", "echo", None)];
        let n = assign(&priority(&[]), "tool", &items);
        assert_eq!(names_of(&n), [Some("a__echo"), Some("b__echo")]);
    }

    #[test]
    fn manual_withholds_every_unresolved_clash_and_says_how_to_fix_it() {
        let items = [
            c(0, "a", "echo", None),
            c(1, "b", "echo", None),
            c(1, "b", "x", None),
        ];
        let n = assign(&Naming::Manual, "tool", &items);
        assert_eq!(names_of(&n), [None, None, Some("x")]);
        assert_eq!(n.problems.len(), 1);
        assert!(
            n.problems[0].contains("a/echo and b/echo"),
            "{}",
            n.problems[0]
        );
        assert!(
            n.problems[0].contains("[endpoints.<name>.tools.\"b/echo\"]"),
            "{}",
            n.problems[0]
        );

        let resolved = [c(0, "a", "echo", None), c(1, "b", "echo", Some("b_echo"))];
        let n = assign(&Naming::Manual, "tool", &resolved);
        assert_eq!(names_of(&n), [Some("echo"), Some("b_echo")]);
        assert!(n.problems.is_empty());
    }

    #[test]
    fn colliding_overrides_under_prefix_keep_the_first_and_report() {
        let items = [c(0, "a", "x", Some("same")), c(1, "b", "y", Some("same"))];
        let n = assign(&prefix(), "tool", &items);
        assert_eq!(names_of(&n), [Some("same"), None]);
        assert_eq!(n.problems.len(), 1);
    }
}
