//! What the bots say, in one place.

/// An unknown user's first message: a pairing request was made.
pub const REQUEST_SENT: &str =
    "Hi! I need approval before we can chat. Your request has been sent to the owner.";
/// An unknown user writes again while their request waits (rate-limited).
pub const REQUEST_PENDING: &str =
    "Your request is still pending. The owner will approve it shortly.";
/// A stranger addressed the bot in a group: access is asked for in a DM.
pub const ASK_IN_DM: &str =
    "I only answer people the owner has approved. Send me a direct message to ask for access.";
/// The owner approved the user.
pub const APPROVED: &str = "You've been approved! Send me a message to start chatting.";
/// First message in a chat whose session the owner has not activated yet.
pub const NUDGE_FIRST: &str = "Session created! Configure it in the Parachute app (set workspace and trust level), then activate it.";
/// Second message before activation (later ones get no reply).
pub const NUDGE_SECOND: &str = "Still being configured. Please activate in the Parachute app.";
/// The owner activated the chat's session.
pub const ACTIVATED: &str = "Session activated! You can start chatting now.";
/// `/new` archived the chat's session.
pub const NEW_SESSION: &str = "Starting fresh! Previous conversation archived.";
/// `/init` made a fresh session waiting for activation.
pub const REINITIALIZED: &str =
    "Session re-initialized! Configure it in the Parachute app, then activate it.";
/// `/start` from an allowed user.
pub const CONNECTED: &str = "Connected to Parachute. Send me a message to start chatting, or use /journal to create a journal entry.";
/// `/help`.
pub const HELP: &str = "Parachute bot commands:\n/new - start a new conversation (archives the current one)\n/init - re-initialize this chat's session\n/ask <question> - ask in a group without mentioning me\n/journal <text> (or /j) - save a Daily journal entry\n/help - this list";
/// A command that needs access, from someone without it.
pub const NO_ACCESS: &str = "You don't have access.";
/// `/ask` without a question.
pub const ASK_USAGE: &str = "Usage: /ask <your question>";
/// `/journal` without text.
pub const JOURNAL_USAGE: &str = "Usage: /journal <your journal entry>";
/// The turn ended without text.
pub const NO_RESPONSE: &str = "No response from agent.";
/// The agent asked something the owner must answer.
pub const NEEDS_OWNER: &str =
    "The agent is waiting for an answer only the owner can give in the Parachute app.";
/// Too many messages are waiting in the chat.
pub const BUSY: &str = "I'm still working on your earlier messages; please wait a moment.";
/// A voice message arrived but no transcription service is configured.
pub const NO_TRANSCRIPTION: &str = "Voice messages need a transcription service: the owner sets telegram.transcription_url in bots.yaml (and its key as TRANSCRIPTION_API_KEY).";
