//! What is indexed about a tool: [`ToolDoc`], built from the tool's `tools/list` JSON or by
//! hand, and how it is cut into weighted fields.

use serde_json::Value;

/// One tool to index.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDoc {
    /// Unique id returned in hits, e.g. `server/name`.
    pub id: String,
    /// The server that provides the tool.
    pub server: String,
    /// The tool's name as the server lists it.
    pub name: String,
    /// Optional human-readable title (`title` or `annotations.title`).
    pub title: Option<String>,
    /// The tool's description; may be empty.
    pub description: String,
    /// The tool's `inputSchema` (JSON Schema); `Null` when absent.
    pub input_schema: Value,
    /// The tool's `annotations` object; `Null` when absent.
    pub annotations: Value,
}

impl ToolDoc {
    /// Builds a document from a tool object as `tools/list` returns it (`name`, `title`,
    /// `description`, `inputSchema`, `annotations`), with id `server/name`. `None` when the
    /// tool has no string `name`.
    pub fn from_tool_json(server: &str, tool: &Value) -> Option<ToolDoc> {
        let name = tool.get("name")?.as_str()?.to_string();
        let annotations = tool.get("annotations").cloned().unwrap_or(Value::Null);
        let title = tool
            .get("title")
            .and_then(Value::as_str)
            .or_else(|| annotations.get("title").and_then(Value::as_str))
            .map(str::to_string);
        Some(ToolDoc {
            id: format!("{server}/{name}"),
            server: server.to_string(),
            name,
            title,
            description: str_field(tool, "description"),
            input_schema: tool.get("inputSchema").cloned().unwrap_or(Value::Null),
            annotations,
        })
    }

    /// `annotations.readOnlyHint`, when it is a boolean.
    pub fn read_only_hint(&self) -> Option<bool> {
        self.annotations
            .get("readOnlyHint")
            .and_then(Value::as_bool)
    }

    /// `annotations.destructiveHint`, when it is a boolean.
    pub fn destructive_hint(&self) -> Option<bool> {
        self.annotations
            .get("destructiveHint")
            .and_then(Value::as_bool)
    }

    /// Parameter names and parameter text (descriptions, titles, string enum values) from
    /// `inputSchema.properties`, including the properties of object-typed parameters and of
    /// array items one level down.
    pub(crate) fn parameter_text(&self) -> (String, String) {
        let mut names = String::new();
        let mut text = String::new();
        collect_params(&self.input_schema, 0, &mut names, &mut text);
        (names, text)
    }
}

fn str_field(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn collect_params(schema: &Value, depth: usize, names: &mut String, text: &mut String) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, prop) in props {
        names.push_str(name);
        names.push(' ');
        for key in ["title", "description"] {
            if let Some(s) = prop.get(key).and_then(Value::as_str) {
                text.push_str(s);
                text.push_str(" \n");
            }
        }
        if let Some(values) = prop.get("enum").and_then(Value::as_array) {
            for s in values.iter().filter_map(Value::as_str) {
                text.push_str(s);
                text.push(' ');
            }
        }
        if depth == 0 {
            collect_params(prop, 1, names, text);
            if let Some(items) = prop.get("items") {
                collect_params(items, 1, names, text);
            }
        }
    }
}

/// The first sentence of `description`, whitespace collapsed, cut to at most `max` characters
/// (at a word boundary where there is one, with `…` appended when cut).
pub fn one_line(description: &str, max: usize) -> String {
    let text = description.trim();
    let mut end = text.len();
    let mut prev = '\0';
    for (i, c) in text.char_indices() {
        let sentence_end = match c {
            '\n' if prev == '\n' || prev == '\r' => true,
            '。' | '！' | '？' => {
                end = i + c.len_utf8();
                break;
            }
            _ => false,
        };
        if sentence_end {
            end = i;
            break;
        }
        // ". " ends a sentence unless it follows a single letter or a common abbreviation.
        if (c == ' ' || c == '\n') && matches!(prev, '.' | '!' | '?') {
            let before = &text[..i - 1];
            let last_word = before.rsplit(char::is_whitespace).next().unwrap_or("");
            let abbrev = matches!(last_word, "e.g" | "i.e" | "etc" | "vs" | "eg" | "ie")
                || last_word.chars().count() == 1;
            if !abbrev {
                end = i;
                break;
            }
        }
        prev = c;
    }
    let collapsed = text[..end].split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max {
        return collapsed;
    }
    let cut: String = collapsed.chars().take(max.saturating_sub(1)).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > cut.len() / 2 => cut[..i].trim_end_matches([',', ';', ':']).to_string(),
        _ => cut,
    };
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn from_tool_json_reads_the_mcp_shape() {
        let t = json!({
            "name": "read_file",
            "annotations": {"title": "Read file", "readOnlyHint": true},
            "description": "Reads a file.",
            "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}}
        });
        let d = ToolDoc::from_tool_json("fs", &t).expect("has a name");
        assert_eq!(d.id, "fs/read_file");
        assert_eq!(d.title.as_deref(), Some("Read file"));
        assert_eq!(d.read_only_hint(), Some(true));
        assert_eq!(d.destructive_hint(), None);
        assert!(ToolDoc::from_tool_json("fs", &json!({"description": "x"})).is_none());
    }

    #[test]
    fn parameter_text_goes_one_level_deep() {
        let t = json!({"name": "x", "inputSchema": {"properties": {
            "city": {"type": "string", "description": "City name"},
            "units": {"enum": ["metric", "imperial"]},
            "opts": {"type": "object", "properties": {"lang": {"description": "Language code",
                "properties": {"too_deep": {"description": "never"}}}}},
            "rows": {"type": "array", "items": {"properties": {"cell": {"title": "Cell"}}}}
        }}});
        let (names, text) = ToolDoc::from_tool_json("s", &t).unwrap().parameter_text();
        assert_eq!(
            names.split_whitespace().collect::<Vec<_>>(),
            ["city", "units", "opts", "lang", "rows", "cell"]
        );
        assert!(text.contains("City name") && text.contains("imperial"));
        assert!(text.contains("Language code") && text.contains("Cell"));
        assert!(!text.contains("never") && !names.contains("too_deep"));
    }

    #[test]
    fn one_line_takes_the_first_sentence() {
        assert_eq!(
            one_line("Get the weather. Uses an API key.", 120),
            "Get the weather."
        );
        assert_eq!(
            one_line("  Reads files, e.g. logs. More.", 120),
            "Reads files, e.g. logs."
        );
        assert_eq!(
            one_line("First para\nstill first\n\nSecond", 120),
            "First para still first"
        );
        assert_eq!(one_line("获取天气。更多信息", 120), "获取天气。");
        assert_eq!(one_line("", 120), "");
        assert_eq!(one_line("version 1.2 is out", 120), "version 1.2 is out");
    }

    #[test]
    fn one_line_cuts_long_text_at_a_word() {
        let long = "word ".repeat(60);
        let s = one_line(&long, 120);
        assert!(s.ends_with('…'));
        assert!(s.chars().count() <= 120);
        assert!(!s.contains("wor…"), "{s}");
    }
}
