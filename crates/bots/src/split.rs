//! Splitting a long reply into messages a platform accepts (4096 characters on
//! Telegram, 2000 on Discord): at paragraph boundaries first, then at line boundaries,
//! then inside a line (at a space when there is one). A fenced code block is never
//! broken open: when it must be split, the piece is closed with its fence and the
//! next piece reopens it with the same opening line (language kept).

/// One block of the reply: a paragraph (consecutive non-blank lines) or a fenced code
/// block, with the newlines that separated it from the block before.
#[derive(Debug)]
enum Block<'a> {
    Para(Vec<&'a str>),
    Fence {
        opener: &'a str,
        body: Vec<&'a str>,
        closer: Option<&'a str>,
    },
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// The fence marker a line opens or closes with (```` ``` ```` or `~~~`, 3 or more).
fn fence_marker(line: &str) -> Option<&str> {
    let t = line.trim_start();
    for c in ['`', '~'] {
        let n = t.chars().take_while(|&x| x == c).count();
        if n >= 3 {
            return Some(&t[..n]);
        }
    }
    None
}

/// Whether every fence the chunk opens is closed (a marker line with an info
/// string inside an open fence is code, as in CommonMark).
pub fn fences_balanced(chunk: &str) -> bool {
    let mut open = false;
    for l in chunk.lines() {
        if fence_marker(l).is_some() {
            if !open {
                open = true;
            } else if l.trim().chars().all(|c| c == '`' || c == '~') {
                open = false;
            }
        }
    }
    !open
}

fn blocks(text: &str) -> Vec<(usize, Block<'_>)> {
    let mut out: Vec<(usize, Block)> = Vec::new();
    let mut blank_run = 0usize;
    let mut lines = text.lines().peekable();
    let mut para: Vec<&str> = Vec::new();
    let mut para_sep = 0usize;
    while let Some(line) = lines.next() {
        if let Some(marker) = fence_marker(line) {
            if !para.is_empty() {
                out.push((para_sep, Block::Para(std::mem::take(&mut para))));
                blank_run = 1;
            }
            let mut body = Vec::new();
            let mut closer = None;
            for l in lines.by_ref() {
                if fence_marker(l).is_some_and(|m| m.starts_with(marker))
                    && l.trim().chars().all(|c| c == '`' || c == '~')
                {
                    closer = Some(l);
                    break;
                }
                body.push(l);
            }
            out.push((
                blank_run.max(1),
                Block::Fence {
                    opener: line,
                    body,
                    closer,
                },
            ));
            blank_run = 1;
            continue;
        }
        if line.trim().is_empty() {
            if !para.is_empty() {
                out.push((para_sep, Block::Para(std::mem::take(&mut para))));
                blank_run = 1;
            }
            blank_run += 1;
            continue;
        }
        if para.is_empty() {
            para_sep = blank_run.max(1);
            blank_run = 0;
        }
        para.push(line);
    }
    if !para.is_empty() {
        out.push((para_sep, Block::Para(para)));
    }
    out
}

/// Hard-splits one over-long line into pieces of at most `max` characters, at the last
/// space when there is one in the second half of the piece.
fn split_line(line: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut rest: Vec<char> = line.chars().collect();
    while rest.len() > max {
        let window = &rest[..max];
        let cut = window
            .iter()
            .rposition(|c| c.is_whitespace())
            .filter(|&i| i >= max / 2 && i > 0)
            .map(|i| i + 1)
            .unwrap_or(max);
        out.push(
            rest[..cut]
                .iter()
                .collect::<String>()
                .trim_end()
                .to_string(),
        );
        rest.drain(..cut);
    }
    if !rest.is_empty() {
        out.push(rest.into_iter().collect());
    }
    out
}

/// Packs lines into pieces of at most `budget` characters (lines joined by `\n`).
fn pack_lines(lines: &[&str], budget: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in lines {
        let pieces = if chars(line) > budget {
            split_line(line, budget)
        } else {
            vec![line.to_string()]
        };
        for p in pieces {
            let need = if cur.is_empty() { 0 } else { 1 } + chars(&p);
            if !cur.is_empty() && chars(&cur) + need > budget {
                out.push(std::mem::take(&mut cur));
            }
            if !cur.is_empty() {
                cur.push('\n');
            }
            cur.push_str(&p);
        }
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

fn render(block: &Block) -> String {
    match block {
        Block::Para(lines) => lines.join("\n"),
        Block::Fence {
            opener,
            body,
            closer,
        } => {
            let mut s = opener.to_string();
            for l in body {
                s.push('\n');
                s.push_str(l);
            }
            s.push('\n');
            s.push_str(closer.unwrap_or("```"));
            s
        }
    }
}

/// Pieces of an over-long block, each within `limit`.
fn split_block(block: &Block, limit: usize) -> Vec<String> {
    match block {
        Block::Para(lines) => pack_lines(lines, limit),
        Block::Fence {
            opener,
            body,
            closer,
        } => {
            let close = closer.map(str::trim).unwrap_or("```");
            // A very long info string is cut so the code still has room.
            let opener: String = opener.chars().take(limit / 4).collect();
            let budget = limit
                .saturating_sub(chars(&opener) + chars(close) + 2)
                .max(1);
            pack_lines(body, budget)
                .into_iter()
                .map(|code| format!("{opener}\n{code}\n{close}"))
                .collect()
        }
    }
}

/// Splits `text` into messages of at most `limit` characters (see the module docs).
/// Empty text gives no message; text within the limit is one message, unchanged
/// but for surrounding whitespace.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(16);
    let text = text.trim();
    if text.is_empty() {
        return Vec::new();
    }
    if chars(text) <= limit && fences_balanced(text) {
        return vec![text.to_string()];
    }
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for (sep, block) in blocks(text) {
        let rendered = render(&block);
        let sep = "\n".repeat(sep.clamp(1, 2));
        if !cur.is_empty() && chars(&cur) + chars(&sep) + chars(&rendered) <= limit {
            cur.push_str(&sep);
            cur.push_str(&rendered);
            continue;
        }
        if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        if chars(&rendered) <= limit {
            cur = rendered;
        } else {
            let mut pieces = split_block(&block, limit);
            cur = pieces.pop().unwrap_or_default();
            out.extend(pieces);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out.retain(|c| !c.trim().is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The text without whitespace and without fence lines: what must survive a split.
    fn content(s: &str) -> String {
        s.lines()
            .filter(|l| fence_marker(l).is_none())
            .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
            .collect()
    }

    #[test]
    fn table() {
        assert!(split_message("", 100).is_empty());
        assert!(split_message("  \n\n ", 100).is_empty());
        assert_eq!(split_message("hello", 100), vec!["hello"]);
        let exact = "a".repeat(100);
        assert_eq!(split_message(&exact, 100), vec![exact.clone()]);
        // Paragraphs are packed greedily and split between paragraphs.
        let p = |c: char| c.to_string().repeat(40);
        let text = format!("{}\n\n{}\n\n{}", p('a'), p('b'), p('c'));
        assert_eq!(
            split_message(&text, 100),
            vec![format!("{}\n\n{}", p('a'), p('b')), p('c')]
        );
        // A paragraph too long splits at line boundaries.
        let text = format!("{}\n{}\n{}", p('a'), p('b'), p('c'));
        assert_eq!(
            split_message(&text, 100),
            vec![format!("{}\n{}", p('a'), p('b')), p('c')]
        );
        // A line too long splits at a space.
        let words = "word ".repeat(30);
        let parts = split_message(words.trim(), 50);
        assert!(parts
            .iter()
            .all(|c| c.chars().count() <= 50 && !c.ends_with(' ')));
        assert!(parts.iter().all(|c| !c.starts_with("ord")));
    }

    #[test]
    fn a_long_code_block_is_closed_and_reopened_with_its_language() {
        let code: Vec<String> = (0..40).map(|i| format!("let x{i} = {i};")).collect();
        let text = format!("Here:\n\n```rust\n{}\n```\n\nDone.", code.join("\n"));
        let parts = split_message(&text, 200);
        assert!(parts.len() > 2);
        for p in &parts {
            assert!(p.chars().count() <= 200, "{p}");
            assert!(fences_balanced(p), "{p}");
            if p.contains("let x") {
                assert!(
                    p.starts_with("```rust\n") || p.contains("\n```rust\n"),
                    "{p}"
                );
            }
        }
        assert_eq!(content(&parts.join("\n")), content(&text));
    }

    #[test]
    fn telegram_and_discord_limits() {
        let text = "x".repeat(5000);
        let tg = split_message(&text, 4096);
        assert_eq!(
            tg.iter().map(|c| c.len()).collect::<Vec<_>>(),
            vec![4096, 904]
        );
        let dc = split_message(&text, 2000);
        assert_eq!(dc.len(), 3);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn chunks_fit_keep_the_text_and_balance_fences(
            parts in proptest::collection::vec(
                prop_oneof![
                    "[a-z ]{0,120}",
                    "[a-zé😀 ]{0,300}",
                    Just("```py".to_string()),
                    Just("```".to_string()),
                    Just(String::new()),
                    "[ ]{0,3}[-*] [a-z]{1,30}",
                ],
                0..60,
            ),
            limit in 16usize..400,
        ) {
            let text = parts.join("\n");
            let chunks = split_message(&text, limit);
            for c in &chunks {
                prop_assert!(c.chars().count() <= limit, "{} > {limit}: {c:?}", c.chars().count());
                prop_assert!(fences_balanced(c), "unbalanced: {c:?}");
            }
            prop_assert_eq!(content(&chunks.join("\n")), content(&text));
        }
    }
}
