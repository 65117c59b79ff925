//! The agent's Markdown in each platform's format: Telegram's HTML (a small, strict
//! subset: `b i s code pre a blockquote`, everything else escaped), Discord's own
//! Markdown (as is, minus the HTML tags it would show literally), and plain text for
//! when a platform rejects the formatting.

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

#[derive(Clone, Copy, PartialEq)]
enum Style {
    TelegramHtml,
    Plain,
}

fn escape_html(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// Links the platform may open: web, mail and Telegram links only.
fn safe_link(url: &str) -> bool {
    let u = url.trim().to_ascii_lowercase();
    u.starts_with("https://")
        || u.starts_with("http://")
        || u.starts_with("mailto:")
        || u.starts_with("tg://")
}

struct Writer {
    style: Style,
    out: String,
    /// Open lists: the next number of an ordered list, `None` for bullets.
    lists: Vec<Option<u64>>,
    /// Open links: whether an `<a>` was written for it.
    links: Vec<bool>,
    /// Whether the open code block has a `<code>` inside its `<pre>`.
    code_in_pre: bool,
}

impl Writer {
    fn tag(&mut self, html: &str) {
        if self.style == Style::TelegramHtml {
            self.out.push_str(html);
        }
    }

    fn text(&mut self, t: &str) {
        match self.style {
            Style::TelegramHtml => escape_html(t, &mut self.out),
            Style::Plain => self.out.push_str(t),
        }
    }

    fn block_end(&mut self) {
        if self.lists.is_empty() {
            self.out.push_str("\n\n");
        } else {
            self.out.push('\n');
        }
    }

    fn start(&mut self, tag: Tag) {
        match tag {
            Tag::Heading { .. } => self.tag("<b>"),
            Tag::BlockQuote(_) => self.tag("<blockquote>"),
            Tag::CodeBlock(kind) => {
                self.code_in_pre = false;
                match kind {
                    CodeBlockKind::Fenced(lang) if !lang.trim().is_empty() => {
                        let lang: String = lang
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .chars()
                            .filter(|c| c.is_ascii_alphanumeric() || "+-_#.".contains(*c))
                            .take(32)
                            .collect();
                        self.tag(&format!("<pre><code class=\"language-{lang}\">"));
                        self.code_in_pre = true;
                    }
                    _ => self.tag("<pre>"),
                }
            }
            Tag::List(start) => {
                if !self.lists.is_empty() && !self.out.ends_with('\n') {
                    self.out.push('\n');
                }
                self.lists.push(start);
            }
            Tag::Item => {
                let depth = self.lists.len().saturating_sub(1);
                self.out.push_str(&"  ".repeat(depth));
                match self.lists.last_mut() {
                    Some(Some(n)) => {
                        self.out.push_str(&format!("{n}. "));
                        *n += 1;
                    }
                    _ => self.out.push_str("• "),
                }
            }
            Tag::Emphasis => self.tag("<i>"),
            Tag::Strong => self.tag("<b>"),
            Tag::Strikethrough => self.tag("<s>"),
            Tag::Link { dest_url, .. } => {
                let ok = self.style == Style::TelegramHtml && safe_link(&dest_url);
                if ok {
                    self.out.push_str("<a href=\"");
                    escape_html(dest_url.trim(), &mut self.out);
                    self.out.push_str("\">");
                }
                self.links.push(ok);
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph => self.block_end(),
            TagEnd::Heading(_) => {
                self.tag("</b>");
                self.block_end();
            }
            TagEnd::BlockQuote(_) => {
                while self.out.ends_with('\n') {
                    self.out.pop();
                }
                self.tag("</blockquote>");
                self.block_end();
            }
            TagEnd::CodeBlock => {
                if self.out.ends_with('\n') {
                    self.out.pop();
                }
                if self.out.ends_with("\">") || self.out.ends_with("<pre>") {
                    // An empty block still needs content for Telegram.
                    self.out.push(' ');
                }
                if self.code_in_pre {
                    self.tag("</code></pre>");
                } else {
                    self.tag("</pre>");
                }
                self.block_end();
            }
            TagEnd::List(_) => {
                self.lists.pop();
                if self.lists.is_empty() {
                    self.out.push('\n');
                }
            }
            TagEnd::Item if !self.out.ends_with('\n') => self.out.push('\n'),
            TagEnd::Emphasis => self.tag("</i>"),
            TagEnd::Strong => self.tag("</b>"),
            TagEnd::Strikethrough => self.tag("</s>"),
            TagEnd::Link if self.links.pop() == Some(true) => self.out.push_str("</a>"),
            _ => {}
        }
    }
}

fn convert(markdown: &str, style: Style) -> String {
    let mut w = Writer {
        style,
        out: String::with_capacity(markdown.len() + markdown.len() / 8),
        lists: Vec::new(),
        links: Vec::new(),
        code_in_pre: false,
    };
    let parser = Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH);
    for ev in parser {
        match ev {
            Event::Start(tag) => w.start(tag),
            Event::End(tag) => w.end(tag),
            Event::Text(t) => w.text(&t),
            Event::Code(t) => {
                w.tag("<code>");
                w.text(&t);
                w.tag("</code>");
            }
            // Raw HTML in the reply is shown as text, never interpreted.
            Event::Html(t) | Event::InlineHtml(t) => w.text(&t),
            Event::SoftBreak | Event::HardBreak => w.out.push('\n'),
            Event::Rule => {
                w.out.push_str("——————");
                w.block_end();
            }
            Event::TaskListMarker(done) => w.out.push_str(if done { "[x] " } else { "[ ] " }),
            Event::FootnoteReference(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                w.text(&t)
            }
        }
    }
    w.out.trim_end().to_string()
}

/// Markdown → Telegram HTML (`parse_mode = HTML`).
pub fn to_telegram_html(markdown: &str) -> String {
    convert(markdown, Style::TelegramHtml)
}

/// Markdown → plain text: the fallback when a platform rejects the formatting.
pub fn to_plain(markdown: &str) -> String {
    convert(markdown, Style::Plain)
}

/// Markdown → Discord: Discord renders Markdown itself; HTML tags it would show
/// literally (`<details>`, `<summary>`, `<br>`, `<hr>`) are removed.
pub fn to_discord(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut rest = markdown;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let lower: String = tail
            .chars()
            .take(12)
            .collect::<String>()
            .to_ascii_lowercase();
        let tag = [
            "<details>",
            "</details>",
            "<summary>",
            "</summary>",
            "<br>",
            "<br/>",
            "<br />",
            "<hr>",
            "<hr/>",
            "<hr />",
        ]
        .into_iter()
        .find(|t| lower.starts_with(t));
        match tag {
            Some(t) => rest = &tail[t.len()..],
            None => {
                out.push('<');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telegram_html_table() {
        let cases = [
            (
                "**bold** and *it* and ~~gone~~",
                "<b>bold</b> and <i>it</i> and <s>gone</s>",
            ),
            ("a < b & c > d", "a &lt; b &amp; c &gt; d"),
            ("`x<y`", "<code>x&lt;y</code>"),
            (
                "```rust\nfn main() {}\n```",
                "<pre><code class=\"language-rust\">fn main() {}</code></pre>",
            ),
            ("```\nplain\n```", "<pre>plain</pre>"),
            ("# Title\n\nText", "<b>Title</b>\n\nText"),
            ("- one\n- two", "• one\n• two"),
            ("3. c\n4. d", "3. c\n4. d"),
            (
                "[site](https://example.com/?a=1&b=\"2\")",
                "<a href=\"https://example.com/?a=1&amp;b=&quot;2&quot;\">site</a>",
            ),
            ("[bad](javascript:alert(1))", "bad"),
            ("<script>x</script>", "&lt;script&gt;x&lt;/script&gt;"),
            ("> quoted", "<blockquote>quoted</blockquote>"),
            ("**unclosed", "**unclosed"),
        ];
        for (md, want) in cases {
            assert_eq!(to_telegram_html(md), want, "{md}");
        }
    }

    #[test]
    fn plain_drops_markup_and_discord_drops_html_tags() {
        assert_eq!(
            to_plain("**b** `c` [l](https://x.y)\n\n```\ncode\n```"),
            "b c l\n\ncode"
        );
        assert_eq!(
            to_discord("<details><summary>More</summary>\nbody<br>end</details>"),
            "More\nbodyend"
        );
        assert_eq!(to_discord("a < b **c**"), "a < b **c**");
    }
}

/// The formatters over generated Markdown: never a panic, Telegram HTML whose tags
/// balance and whose text is escaped, Discord text without the tags it shows literally.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn markdown() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                "[a-zé😀 ]{0,20}",
                prop::sample::select(vec![
                    "**",
                    "*",
                    "_",
                    "~~",
                    "`",
                    "```",
                    "```rust\n",
                    "\n",
                    "# ",
                    "> ",
                    "- ",
                    "1. ",
                    "[link](http://x/?a=1&b=<2>)",
                    "<details>",
                    "</summary>",
                    "<br>",
                    "<b>",
                    "&amp;",
                    "| a | b |\n|---|---|\n| 1 | 2 |",
                    "![img](x.png)",
                    "$x$",
                    "[^1]",
                    "\\",
                ])
                .prop_map(str::to_string),
            ],
            0..30,
        )
        .prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn telegram_html_balances_its_tags(md in markdown()) {
            let html = to_telegram_html(&md);
            for tag in ["b", "i", "s", "u", "code", "pre", "a", "blockquote"] {
                let open = html.matches(&format!("<{tag}>")).count() + html.matches(&format!("<{tag} ")).count();
                let close = html.matches(&format!("</{tag}>")).count();
                prop_assert_eq!(open, close, "<{}> in {:?} from {:?}", tag, html, md);
            }
            // Every `<` starts one of the tags Telegram knows: text is escaped.
            for (i, _) in html.match_indices('<') {
                let rest = &html[i + 1..];
                let rest = rest.strip_prefix('/').unwrap_or(rest);
                let known = ["b>", "i>", "s>", "u>", "code>", "code ", "pre>", "a ", "a>", "blockquote>"]
                    .iter()
                    .any(|t| rest.starts_with(t));
                prop_assert!(known, "an unescaped < in {:?}", html);
            }
            let _ = to_plain(&md);
        }

        #[test]
        fn discord_text_drops_the_tags_it_would_show(md in markdown()) {
            let out = to_discord(&md);
            let lower = out.to_ascii_lowercase();
            for tag in ["<details>", "</summary>", "<br>"] {
                prop_assert!(!lower.contains(tag), "{} left in {:?}", tag, out);
            }
        }
    }
}
