//! One entity file under `Brain/entities/`: frontmatter `para_id`, `name` and `tags`,
//! and a Markdown body. Fallbacks: the id is the path under `Brain/entities/` without
//! `.md`; the name is the first `# ` heading, else the file's stem; tags may be a list
//! or a comma-separated string.

use parachute_core::db::{BrainEntityDoc, BrainEntityRow};
use parachute_core::vault::frontmatter;
use serde_json::{Map, Value};

/// Most bytes of an entity's body that are indexed.
pub const MAX_INDEXED_BYTES: usize = 1024 * 1024;

/// Builds the index document of an entity file. `under_entities` is its path relative
/// to `Brain/entities/` (`/`-separated).
pub fn parse(under_entities: &str, text: &str, size: i64, mtime_ns: i64) -> BrainEntityDoc {
    let (front, body) = frontmatter::parse(text);
    let id_fallback = under_entities
        .strip_suffix(".md")
        .unwrap_or(under_entities)
        .to_string();
    let para_id = scalar(front.get("para_id"))
        .filter(|s| !s.is_empty())
        .unwrap_or(id_fallback);
    let stem = para_id.rsplit('/').next().unwrap_or(&para_id).to_string();
    let name = scalar(front.get("name"))
        .filter(|s| !s.is_empty())
        .or_else(|| frontmatter::first_heading(body).map(str::to_string))
        .unwrap_or(stem);
    let tags = tags(front.get("tags"));
    let rest: Map<String, Value> = front
        .into_iter()
        .filter(|(k, _)| !matches!(k.as_str(), "para_id" | "name" | "tags"))
        .collect();
    let mut body = body.to_string();
    if body.len() > MAX_INDEXED_BYTES {
        let mut cut = MAX_INDEXED_BYTES;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
    }
    BrainEntityDoc {
        row: BrainEntityRow {
            path: format!("Brain/entities/{under_entities}"),
            para_id,
            name,
            tags: Value::from(tags).to_string(),
            frontmatter: Value::Object(rest).to_string(),
            size,
            mtime_ns,
        },
        body,
    }
}

fn scalar(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn tags(v: Option<&Value>) -> Vec<String> {
    let list = match v {
        Some(Value::Array(items)) => items.iter().filter_map(|i| scalar(Some(i))).collect(),
        Some(Value::String(s)) => s.split(',').map(|t| t.trim().to_string()).collect(),
        _ => Vec::new(),
    };
    list.into_iter().filter(|t| !t.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontmatter_wins_and_fallbacks_fill_in() {
        let d = parse(
            "people/ada.md",
            "---\npara_id: p-1\nname: Ada Lovelace\ntags: [math, poetry]\nborn: 1815\n---\nBody\n",
            10,
            1,
        );
        assert_eq!(d.row.para_id, "p-1");
        assert_eq!(d.row.name, "Ada Lovelace");
        assert_eq!(d.row.tags, r#"["math","poetry"]"#);
        assert_eq!(d.row.frontmatter, r#"{"born":1815}"#);
        assert_eq!(d.row.path, "Brain/entities/people/ada.md");
        assert_eq!(d.body, "Body\n");

        let d = parse("people/grace.md", "# Grace Hopper\nAdmiral", 1, 1);
        assert_eq!(d.row.para_id, "people/grace");
        assert_eq!(d.row.name, "Grace Hopper");
        let d = parse("x.md", "---\ntags: a, b\n---\nno heading", 1, 1);
        assert_eq!(d.row.name, "x");
        assert_eq!(d.row.tags, r#"["a","b"]"#);
    }
}
