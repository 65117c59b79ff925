//! YAML frontmatter of Markdown files: a `---` line at the very start, the YAML, and a
//! closing `---` line. One reader for every feature that needs it (entities, entries,
//! skills, agents, scheduled agents).

use serde_json::{Map, Value};

/// Splits `text` into its frontmatter (without the fences) and the body after it.
/// Text without a well-formed frontmatter block is all body.
pub fn split(text: &str) -> (Option<&str>, &str) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return (None, text);
    };
    // The closing fence is a line of exactly `---` (an empty block is allowed).
    let mut start = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end_matches(['\r', '\n']) == "---" {
            let body = &rest[start + line.len()..];
            let body = body
                .strip_prefix("\r\n")
                .or_else(|| body.strip_prefix('\n'))
                .unwrap_or(body);
            return (Some(&rest[..start]), body);
        }
        start += line.len();
    }
    (None, text)
}

/// The frontmatter as a JSON object and the body. A block that is not a YAML mapping
/// (or does not parse) gives an empty map: frontmatter is data, never fatal.
pub fn parse(text: &str) -> (Map<String, Value>, &str) {
    let (front, body) = split(text);
    let map = front
        .filter(|f| !f.trim().is_empty())
        .and_then(|f| serde_saphyr::from_str::<Value>(f).ok())
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    (map, body)
}

/// The first `# ` heading of a Markdown body, trimmed.
pub fn first_heading(body: &str) -> Option<&str> {
    body.lines()
        .find_map(|l| l.strip_prefix("# "))
        .map(str::trim)
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_front_and_body() {
        let (f, b) = split("---\nname: Ada\n---\n\n# Ada\nbody\n");
        assert_eq!(f, Some("name: Ada\n"));
        // One blank line after the fence belongs to it.
        assert_eq!(b, "# Ada\nbody\n");
        assert_eq!(split("---\r\na: 1\r\n---\r\nx"), (Some("a: 1\r\n"), "x"));
        assert_eq!(split("---\n---\nx"), (Some(""), "x"));
    }

    #[test]
    fn text_without_a_closed_block_is_all_body() {
        assert_eq!(split("no front"), (None, "no front"));
        assert_eq!(split("---\nname: x\n"), (None, "---\nname: x\n"));
        // A `---` inside a value line is not a fence.
        assert_eq!(split("---\na: ---x\n---\nb"), (Some("a: ---x\n"), "b"));
    }

    #[test]
    fn parse_tolerates_bad_yaml() {
        let (m, b) = parse("---\nname: [unclosed\n---\nbody");
        assert!(m.is_empty());
        assert_eq!(b, "body");
        let (m, _) = parse("---\n- a list\n---\n");
        assert!(m.is_empty());
        let (m, _) = parse("---\nname: Ada\ntags: [x, z]\n---\n");
        assert_eq!(m["name"], "Ada");
        assert_eq!(m["tags"][1], "z");
    }

    #[test]
    fn first_heading_skips_other_lines() {
        assert_eq!(first_heading("intro\n## sub\n# Title \n"), Some("Title"));
        assert_eq!(first_heading("none"), None);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// Text made of the pieces a frontmatter reader trips on.
    fn markdownish() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just("---".to_string()),
                Just("\u{feff}".to_string()),
                Just("\r".to_string()),
                Just("a: [1, 2".to_string()),
                Just("- x".to_string()),
                Just("key: value".to_string()),
                Just("&a *a !!binary".to_string()),
                "[a-zé: #-]{0,20}",
            ],
            0..12,
        )
        .prop_map(|parts| parts.join("\n"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn split_gives_back_pieces_of_the_text(text in markdownish()) {
            let unmarked = text.strip_prefix('\u{feff}').unwrap_or(&text);
            let (front, body) = split(&text);
            prop_assert!(unmarked.ends_with(body), "the body is the end of the text");
            match front {
                Some(f) => {
                    prop_assert!(unmarked.starts_with("---"));
                    prop_assert!(unmarked.contains(f));
                    prop_assert!(f.len() + body.len() < unmarked.len());
                }
                None => prop_assert_eq!(body, unmarked),
            }
            // Parsing never fails: bad YAML is an empty map, the body is the same.
            let (_, parsed_body) = parse(&text);
            prop_assert_eq!(parsed_body, body);
        }
    }
}
