//! The decisions of a connector as pure functions: whether to answer, at which trust
//! level, which nudge to send, whether a message mentions the bot, which command it is.

use parachute_core::trust::TrustLevel;

use crate::config::{PlatformConfig, ResponseMode};
use crate::platform::ChatKind;
use crate::replies;

/// The response mode in effect: the session's own (`bot_settings.response_mode`), else
/// every message in a DM and the platform's group mode in a group.
pub fn response_mode(
    kind: ChatKind,
    group_default: ResponseMode,
    session: Option<ResponseMode>,
) -> ResponseMode {
    session.unwrap_or(match kind {
        ChatKind::Dm => ResponseMode::AllMessages,
        ChatKind::Group => group_default,
    })
}

/// Whether a message gets an answer: always in `all_messages`, only when addressed to
/// the bot (a mention entity, `/ask`, a reply to the bot) in `mention_only`.
pub fn should_answer(mode: ResponseMode, addressed: bool) -> bool {
    match mode {
        ResponseMode::AllMessages => true,
        ResponseMode::MentionOnly => addressed,
    }
}

/// The trust level of a user in a chat: in a DM the level the owner approved them at
/// (else the platform's DM level); in a group the most restricted of the group level
/// and theirs — an approval may restrict a group, never loosen it.
pub fn user_level(
    kind: ChatKind,
    cfg: &PlatformConfig,
    approved: Option<TrustLevel>,
) -> TrustLevel {
    match kind {
        ChatKind::Dm => approved.unwrap_or(cfg.dm_trust_level),
        ChatKind::Group => {
            TrustLevel::most_restricted([cfg.group_trust_level].into_iter().chain(approved))
        }
    }
}

/// The nudge for the `n`th message (0-based) in a chat waiting for activation: two,
/// then silence.
pub fn nudge(n: u32) -> Option<&'static str> {
    match n {
        0 => Some(replies::NUDGE_FIRST),
        1 => Some(replies::NUDGE_SECOND),
        _ => None,
    }
}

/// A bot command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `/start`
    Start,
    /// `/help`
    Help,
    /// `/new`
    New,
    /// `/init`
    Init,
    /// `/ask <question>`
    Ask,
    /// `/journal <text>` or `/j <text>`
    Journal,
}

/// A command at the start of `text` (`/new`, `/new@ThisBot`), with the text after it.
/// A command addressed to another bot (`/new@OtherBot`) or an unknown one is `None`.
pub fn parse_command<'a>(text: &'a str, bot_username: &str) -> Option<(Command, &'a str)> {
    let t = text.trim_start();
    let rest = t.strip_prefix('/')?;
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let (word, args) = rest.split_at(end);
    let (name, target) = match word.split_once('@') {
        Some((n, b)) => (n, Some(b)),
        None => (word, None),
    };
    if target.is_some_and(|b| !b.eq_ignore_ascii_case(bot_username)) {
        return None;
    }
    let cmd = match name.to_ascii_lowercase().as_str() {
        "start" => Command::Start,
        "help" => Command::Help,
        "new" => Command::New,
        "init" => Command::Init,
        "ask" => Command::Ask,
        "journal" | "j" => Command::Journal,
        _ => return None,
    };
    Some((cmd, args.trim()))
}

/// A Telegram message entity, as far as mentions go (offsets in UTF-16 code units).
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// What it is.
    pub kind: EntityKind,
    /// Start, in UTF-16 code units.
    pub offset: usize,
    /// Length, in UTF-16 code units.
    pub length: usize,
}

/// The kinds of entity that matter here.
#[derive(Debug, Clone, PartialEq)]
pub enum EntityKind {
    /// `@username`
    Mention,
    /// A mention of a user without a username (their id).
    TextMention(u64),
    /// Anything else.
    Other,
}

/// Whether the entities mention the bot (`@username`, compared case-insensitively, or
/// a text mention of its id), and the text with those mentions removed. A name that
/// only appears in the text without an entity is not a mention.
pub fn telegram_mention(
    text: &str,
    entities: &[Entity],
    bot_username: &str,
    bot_id: u64,
) -> (bool, String) {
    let units: Vec<u16> = text.encode_utf16().collect();
    let mut cut: Vec<(usize, usize)> = Vec::new();
    for e in entities {
        let end = e.offset.saturating_add(e.length);
        if end > units.len() {
            continue;
        }
        let is_bot = match &e.kind {
            EntityKind::Mention => {
                let s = String::from_utf16_lossy(&units[e.offset..end]);
                s.strip_prefix('@')
                    .is_some_and(|u| u.eq_ignore_ascii_case(bot_username))
            }
            EntityKind::TextMention(id) => *id == bot_id,
            EntityKind::Other => false,
        };
        if is_bot {
            cut.push((e.offset, end));
        }
    }
    if cut.is_empty() {
        return (false, text.to_string());
    }
    cut.sort_unstable();
    let mut out: Vec<u16> = Vec::with_capacity(units.len());
    let mut at = 0;
    let space = u16::from(b' ');
    for (s, mut e) in cut {
        if s >= at {
            out.extend_from_slice(&units[at..s]);
            // `a @bot b` becomes `a b`: one of the spaces around the mention goes.
            if out.last().is_none_or(|&c| c == space) && units.get(e) == Some(&space) {
                e += 1;
            }
            at = e;
        }
    }
    out.extend_from_slice(&units[at..]);
    // Line breaks are kept (code, lists and journal entries keep their shape).
    (true, String::from_utf16_lossy(&out).trim().to_string())
}

/// Whether a Discord message mentions the bot: its id among the message's mentions
/// (`mentions[].id`), and the content with `<@id>` / `<@!id>` removed.
pub fn discord_mention(content: &str, mention_ids: &[String], bot_id: &str) -> (bool, String) {
    if !mention_ids.iter().any(|m| m == bot_id) {
        return (false, content.to_string());
    }
    let s = content
        .replace(&format!("<@{bot_id}> "), "")
        .replace(&format!("<@!{bot_id}> "), "")
        .replace(&format!("<@{bot_id}>"), "")
        .replace(&format!("<@!{bot_id}>"), "");
    (true, s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResponseMode::*;
    use TrustLevel::*;

    #[test]
    fn who_is_answered_by_chat_kind_mode_and_mention() {
        // (kind, group default, session override, addressed) → answered
        let table = [
            (ChatKind::Dm, MentionOnly, None, false, true),
            (ChatKind::Dm, MentionOnly, Some(MentionOnly), false, false),
            (ChatKind::Dm, MentionOnly, Some(MentionOnly), true, true),
            (ChatKind::Group, MentionOnly, None, false, false),
            (ChatKind::Group, MentionOnly, None, true, true),
            (ChatKind::Group, AllMessages, None, false, true),
            (ChatKind::Group, MentionOnly, Some(AllMessages), false, true),
            (
                ChatKind::Group,
                AllMessages,
                Some(MentionOnly),
                false,
                false,
            ),
        ];
        for (kind, default, session, addressed, want) in table {
            let mode = response_mode(kind, default, session);
            assert_eq!(
                should_answer(mode, addressed),
                want,
                "{kind:?} {default:?} {session:?} {addressed}"
            );
        }
    }

    #[test]
    fn trust_by_chat_kind_and_approval() {
        let cfg = PlatformConfig::default(); // dm vault, group sandboxed
        let full = PlatformConfig {
            dm_trust_level: Full,
            group_trust_level: Vault,
            ..Default::default()
        };
        let table = [
            (ChatKind::Dm, &cfg, None, Vault),
            (ChatKind::Dm, &cfg, Some(Full), Full),
            (ChatKind::Dm, &cfg, Some(Sandboxed), Sandboxed),
            (ChatKind::Group, &cfg, None, Sandboxed),
            // An approval restricts a group, never loosens it.
            (ChatKind::Group, &cfg, Some(Full), Sandboxed),
            (ChatKind::Group, &full, Some(Full), Vault),
            (ChatKind::Group, &full, Some(Sandboxed), Sandboxed),
            (ChatKind::Dm, &full, None, Full),
        ];
        for (kind, c, approved, want) in table {
            assert_eq!(user_level(kind, c, approved), want, "{kind:?} {approved:?}");
        }
    }

    #[test]
    fn two_nudges_then_silence() {
        assert_eq!(nudge(0), Some(replies::NUDGE_FIRST));
        assert_eq!(nudge(1), Some(replies::NUDGE_SECOND));
        assert_eq!(nudge(2), None);
        assert_eq!(nudge(50), None);
    }

    #[test]
    fn commands() {
        let cases = [
            ("/new", Some((Command::New, ""))),
            ("/new@ParaBot", Some((Command::New, ""))),
            ("/new@parabot", Some((Command::New, ""))),
            ("/new@OtherBot", None),
            ("/j wrote code", Some((Command::Journal, "wrote code"))),
            ("/journal  long day ", Some((Command::Journal, "long day"))),
            ("/ask what now?", Some((Command::Ask, "what now?"))),
            ("/unknown", None),
            ("hello /new", None),
            ("/", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_command(text, "ParaBot"), want, "{text}");
        }
    }

    #[test]
    fn mentions_come_from_entities_not_substrings() {
        let m = |offset, length| Entity {
            kind: EntityKind::Mention,
            offset,
            length,
        };
        // (text, entities) → (mentioned, rest)
        let cases: Vec<(&str, Vec<Entity>, bool, &str)> = vec![
            (
                "@ParaBot what time is it",
                vec![m(0, 8)],
                true,
                "what time is it",
            ),
            ("hey @parabot!", vec![m(4, 8)], true, "hey !"),
            // Line breaks survive (code and lists keep their shape).
            (
                "@ParaBot review:\n```\nfn a() {}\n```",
                vec![m(0, 8)],
                true,
                "review:\n```\nfn a() {}\n```",
            ),
            // The name in plain text without an entity is not a mention.
            ("@ParaBot hello", vec![], false, "@ParaBot hello"),
            ("ask @ParaBotFan", vec![m(4, 11)], false, "ask @ParaBotFan"),
            ("@OtherBot hi", vec![m(0, 9)], false, "@OtherBot hi"),
            // Offsets count UTF-16 units: an emoji before the mention is two.
            ("😀 @ParaBot hi", vec![m(3, 8)], true, "😀 hi"),
            (
                "hi",
                vec![Entity {
                    kind: EntityKind::TextMention(42),
                    offset: 0,
                    length: 2,
                }],
                true,
                "",
            ),
            (
                "hi",
                vec![Entity {
                    kind: EntityKind::TextMention(7),
                    offset: 0,
                    length: 2,
                }],
                false,
                "hi",
            ),
            // An entity past the end is ignored.
            ("hi", vec![m(5, 8)], false, "hi"),
        ];
        for (text, ents, want, rest) in cases {
            assert_eq!(
                telegram_mention(text, &ents, "ParaBot", 42),
                (want, rest.to_string()),
                "{text}"
            );
        }
        assert_eq!(
            discord_mention("<@99> hello <@!99>", &["99".into()], "99"),
            (true, "hello".into())
        );
        assert_eq!(
            discord_mention("<@99> look:\n- a\n- b", &["99".into()], "99"),
            (true, "look:\n- a\n- b".into())
        );
        assert_eq!(
            discord_mention("<@99> hello", &["12".into()], "99"),
            (false, "<@99> hello".into())
        );
    }
}
