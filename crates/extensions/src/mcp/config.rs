//! `{vault}/.mcp.json`: the vault's MCP servers. Read in either shape (servers at the
//! top level, as the original wrote it, or under `mcpServers`), written back in the
//! shape found (top level for a new file), atomically. Each server is checked:
//! a name of `[A-Za-z0-9_-]`, 1–64; stdio needs a `command`; http (`url` present or
//! `type: http|sse`) needs an `http(s)://` URL and `auth` of `none` or `bearer` (bearer
//! needs `headers.Authorization`); `${VAR}` and `$VAR` in strings are replaced from the
//! server's environment when a session starts, and a variable that is not set makes the
//! server unusable (never an empty secret). Keys starting with `_` and `trust_level`
//! are ours and never reach the CLI.

use std::path::Path;

use serde_json::{Map, Value};

/// Most bytes `.mcp.json` may have.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Why `.mcp.json` could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum McpConfigError {
    /// The file is not valid.
    #[error(".mcp.json is not valid: {0}")]
    File(String),
    /// No such server.
    #[error("MCP server '{0}' not found")]
    NotFound(String),
    /// The server's config is refused.
    #[error("{0}")]
    Invalid(String),
    /// Writing failed.
    #[error("cannot write .mcp.json: {0}")]
    Io(#[source] parachute_core::util::disk_full::ErrorSource),
}

/// The servers of `.mcp.json` (none when the file is missing), and whether they were
/// under `mcpServers`.
pub fn read(path: &Path) -> Result<(Map<String, Value>, bool), McpConfigError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Map::new(), false)),
        Err(e) => return Err(McpConfigError::File(e.to_string())),
    };
    if !meta.is_file() {
        return Err(McpConfigError::File("not a regular file".into()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(McpConfigError::File("larger than 1 MB".into()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| McpConfigError::File(e.to_string()))?;
    if text.trim().is_empty() {
        return Ok((Map::new(), false));
    }
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| McpConfigError::File(format!("JSON error at line {}", e.line())))?;
    let Value::Object(mut top) = value else {
        return Err(McpConfigError::File(
            "the top level must be an object".into(),
        ));
    };
    match top.remove("mcpServers") {
        Some(Value::Object(s)) => Ok((s, true)),
        Some(_) => Err(McpConfigError::File("mcpServers must be an object".into())),
        None => Ok((top, false)),
    }
}

/// Writes `servers` to `.mcp.json` (under `mcpServers` when `nested`).
pub fn write(
    path: &Path,
    servers: &Map<String, Value>,
    nested: bool,
) -> Result<(), McpConfigError> {
    let doc = if nested {
        serde_json::json!({"mcpServers": servers})
    } else {
        Value::Object(servers.clone())
    };
    let text = serde_json::to_vec_pretty(&doc).map_err(|e| McpConfigError::Io(e.into()))?;
    parachute_core::util::fs::write_atomic(path, &text, Some(0o600))
        .map_err(|e| McpConfigError::Io(e.into()))
}

/// Whether `name` may name a server.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `stdio`, `http`, `sse`, or what the config says.
pub fn kind(config: &Value) -> String {
    match config.get("type").and_then(Value::as_str) {
        Some(t) => t.to_string(),
        None if config.get("url").is_some() => "http".into(),
        None if config.get("command").is_some() => "stdio".into(),
        None => "unknown".into(),
    }
}

/// What is wrong with a server's config (empty: nothing).
pub fn validate(name: &str, config: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    if !valid_name(name) {
        errors.push("the name must be 1–64 letters, digits, '-' or '_'".into());
    }
    let Some(c) = config.as_object() else {
        errors.push("the config must be an object".into());
        return errors;
    };
    match kind(config).as_str() {
        "stdio" => {
            match c.get("command") {
                Some(Value::String(s)) if !s.trim().is_empty() => {}
                _ => errors.push("a stdio server needs a command".into()),
            }
            if let Some(a) = c.get("args") {
                if !a.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                    errors.push("args must be a list of strings".into());
                }
            }
            if let Some(e) = c.get("env") {
                if !e
                    .as_object()
                    .is_some_and(|e| e.values().all(Value::is_string))
                {
                    errors.push("env must map names to strings".into());
                }
            }
        }
        "http" | "sse" => {
            match c.get("url").and_then(Value::as_str) {
                Some(u) if u.starts_with("http://") || u.starts_with("https://") => {}
                _ => errors.push("an http server needs an http:// or https:// url".into()),
            }
            match c.get("auth").and_then(Value::as_str).unwrap_or("none") {
                "none" => {}
                "bearer" => {
                    if c.get("headers")
                        .and_then(|h| h.get("Authorization"))
                        .is_none()
                    {
                        errors.push("bearer auth needs headers.Authorization".into());
                    }
                }
                other => errors.push(format!("auth must be none or bearer, not '{other}'")),
            }
            if let Some(h) = c.get("headers") {
                if !h
                    .as_object()
                    .is_some_and(|h| h.values().all(Value::is_string))
                {
                    errors.push("headers must map names to strings".into());
                }
            }
        }
        other => errors.push(format!("unknown server type '{other}'")),
    }
    if let Some(t) = c.get("trust_level") {
        let level = t
            .as_str()
            .map(str::parse::<parachute_core::trust::TrustLevel>);
        if !matches!(level, Some(Ok(_))) {
            errors.push("trust_level must be full, vault or sandboxed".into());
        }
    }
    errors
}

/// Whether `name` is one of the server's own secrets (the Claude credential, bot tokens,
/// the transcription key) or settings: never substituted into an MCP server's config,
/// which would hand them to any program or URL a key holder names.
pub fn reserved_var(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    [
        "ANTHROPIC_",
        "CLAUDE_",
        "PARACHUTE_",
        "TELEGRAM_",
        "DISCORD_",
        "TRANSCRIPTION_",
        "OPENAI_",
    ]
    .iter()
    .any(|p| n.starts_with(p))
        || n.ends_with("_BOT_TOKEN")
}

/// The environment lookup for substitutions: the server's environment, without its
/// reserved variables ([`reserved_var`]).
pub fn env_lookup(name: &str) -> Option<String> {
    if reserved_var(name) {
        return None;
    }
    std::env::var(name).ok()
}

/// `${VAR}` and `$VAR` in `s` replaced by `lookup`; the first unset name is the error.
pub fn substitute(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, consumed) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty()
            || !name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        {
            out.push('$');
            rest = after;
            continue;
        }
        out.push_str(&lookup(name).ok_or_else(|| name.to_string())?);
        rest = &after[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The config the CLI gets: our keys removed, variables substituted everywhere.
pub fn resolve(config: &Value, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Value, String> {
    fn walk(v: &Value, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Value, String> {
        Ok(match v {
            Value::String(s) => Value::String(
                substitute(s, lookup).map_err(|n| format!("uses ${{{n}}}, which is not set"))?,
            ),
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| walk(x, lookup))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| Ok((k.clone(), walk(x, lookup)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }
    let mut c: Map<String, Value> = config
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| {
                    !k.starts_with('_') && k.as_str() != "trust_level" && k.as_str() != "auth"
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    if !c.contains_key("type") && c.contains_key("url") {
        c.insert("type".into(), "http".into());
    }
    walk(&Value::Object(c), lookup)
}

/// Whether `s` only names an environment variable (`${NAME}` or `$NAME`).
fn only_variable(s: &str) -> bool {
    let t = s.trim();
    (t.starts_with("${") && t.ends_with('}') && !t[2..t.len() - 1].contains(['$', '{', '}']))
        || (t.len() > 1
            && t.starts_with('$')
            && t[1..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

const HIDDEN: &str = "********";

/// Whether a flag's name says its value is a credential.
fn secret_flag(flag: &str) -> bool {
    let f = flag.trim_start_matches('-').to_ascii_lowercase();
    [
        "token",
        "key",
        "secret",
        "password",
        "passwd",
        "auth",
        "credential",
    ]
    .iter()
    .any(|w| f.contains(w))
}

/// A URL with any password and every query value hidden (unless it names a variable).
fn redacted_url(url: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
            let authority = match authority.rsplit_once('@') {
                Some((user, host)) => {
                    let user = user.split_once(':').map_or(user, |(u, _)| u);
                    format!("{user}:{HIDDEN}@{host}")
                }
                None => authority.to_string(),
            };
            if rest.contains('/') {
                format!("{scheme}://{authority}/{path}")
            } else {
                format!("{scheme}://{authority}")
            }
        }
        None => base.to_string(),
    };
    if query.is_empty() {
        return base;
    }
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !only_variable(v) => format!("{k}={HIDDEN}"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

/// Arguments with credentials hidden: the value of `--api-key=…`/`--token …`-like flags,
/// and passwords and query values of URLs.
fn redacted_args(args: &[Value]) -> Vec<Value> {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for a in args {
        let Some(s) = a.as_str() else {
            out.push(a.clone());
            continue;
        };
        let shown = if hide_next && !only_variable(s) {
            HIDDEN.to_string()
        } else if let Some((flag, value)) = s.split_once('=').filter(|(f, _)| f.starts_with('-')) {
            if secret_flag(flag) && !only_variable(value) {
                format!("{flag}={HIDDEN}")
            } else {
                format!("{flag}={}", redacted_arg_value(value))
            }
        } else {
            redacted_arg_value(s)
        };
        hide_next = s.starts_with('-') && !s.contains('=') && secret_flag(s);
        out.push(Value::String(shown));
    }
    out
}

fn redacted_arg_value(s: &str) -> String {
    if s.contains("://") {
        redacted_url(s)
    } else {
        s.to_string()
    }
}

/// A server's config as the API shows it: our keys kept, the values of `env` and
/// `headers` hidden unless they only name a variable, and credentials in arguments and
/// URLs hidden (the file may hold secrets).
pub fn redacted(config: &Value) -> Map<String, Value> {
    let mut m: Map<String, Value> = config
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    for key in ["env", "headers"] {
        match m.get_mut(key) {
            Some(Value::Object(vars)) => {
                for v in vars.values_mut() {
                    if !v.as_str().is_some_and(only_variable) {
                        *v = Value::String(HIDDEN.into());
                    }
                }
            }
            Some(other) => *other = Value::String(HIDDEN.into()),
            None => {}
        }
    }
    match m.get_mut("args") {
        Some(Value::Array(args)) => *args = redacted_args(args),
        Some(other) if !other.is_null() => *other = Value::String(HIDDEN.into()),
        _ => {}
    }
    if let Some(Value::String(url)) = m.get_mut("url") {
        *url = redacted_url(url);
    }
    m
}

/// The command line shown for a server (`command args…` or the URL).
pub fn display_command(config: &Value) -> String {
    match kind(config).as_str() {
        "stdio" => {
            let mut parts = vec![config
                .get("command")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()];
            if let Some(a) = config.get("args").and_then(Value::as_array) {
                parts.extend(a.iter().filter_map(Value::as_str).map(str::to_string));
            }
            parts.join(" ")
        }
        _ => config
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(n: &str) -> Option<String> {
        (n == "TOKEN" || n == "HOME_DIR").then(|| format!("<{n}>"))
    }

    #[test]
    fn substitutes_both_forms_and_refuses_unset_names() {
        assert_eq!(
            substitute("a ${TOKEN} $HOME_DIR/x $5 $", &env).unwrap(),
            "a <TOKEN> <HOME_DIR>/x $5 $"
        );
        assert_eq!(substitute("${MISSING}", &env), Err("MISSING".into()));
        let r = resolve(
            &json!({"url": "https://x/${TOKEN}", "trust_level": "vault", "_builtin": true}),
            &env,
        )
        .unwrap();
        assert_eq!(r, json!({"url": "https://x/<TOKEN>", "type": "http"}));
        assert!(
            resolve(&json!({"command": "x", "env": {"K": "$NOPE"}}), &env)
                .unwrap_err()
                .contains("NOPE")
        );
    }

    #[test]
    fn the_servers_own_secrets_are_never_substituted() {
        for n in [
            "ANTHROPIC_API_KEY",
            "CLAUDE_CODE_OAUTH_TOKEN",
            "TELEGRAM_BOT_TOKEN",
            "parachute_home",
            "MY_BOT_TOKEN",
        ] {
            assert!(reserved_var(n), "{n}");
            assert_eq!(env_lookup(n), None);
        }
        assert!(!reserved_var("GITHUB_TOKEN"));
        assert!(resolve(&json!({"command": "${ANTHROPIC_API_KEY}"}), &env_lookup).is_err());
    }

    #[test]
    fn validates_each_kind() {
        assert!(validate("ok", &json!({"command": "node", "args": ["s.js"]})).is_empty());
        assert!(!validate("ok", &json!({"command": ""})).is_empty());
        assert!(!validate("bad name!", &json!({"command": "x"})).is_empty());
        assert!(validate("h", &json!({"url": "https://x", "auth": "bearer", "headers": {"Authorization": "Bearer ${T}"}})).is_empty());
        assert!(!validate("h", &json!({"url": "ftp://x"})).is_empty());
        assert!(!validate("h", &json!({"url": "https://x", "auth": "bearer"})).is_empty());
        assert!(!validate("h", &json!({"type": "carrier-pigeon"})).is_empty());
        assert!(!validate("h", &json!({"command": "x", "trust_level": "root"})).is_empty());
    }

    #[test]
    fn hides_secret_values() {
        let r = redacted(
            &json!({"command": "x", "env": {"A": "${TOKEN}", "B": "sk-live-123", "C": "$HOME_DIR"}, "_builtin": true}),
        );
        assert_eq!(
            r["env"],
            json!({"A": "${TOKEN}", "B": "********", "C": "$HOME_DIR"})
        );
        assert!(!r.contains_key("_builtin"));

        let r = redacted(&json!({"command": "npx", "args": [
            "-y", "@org/server", "--api-key=sk-123", "--token", "abc", "--token", "${T}",
            "--db", "postgres://me:pw@db/x?sslmode=require&password=pw", "--verbose=true"],
            "headers": "Bearer sk-9"}));
        assert_eq!(
            r["args"],
            json!([
                "-y",
                "@org/server",
                "--api-key=********",
                "--token",
                "********",
                "--token",
                "${T}",
                "--db",
                "postgres://me:********@db/x?sslmode=********&password=********",
                "--verbose=true"
            ])
        );
        assert_eq!(r["headers"], "********");
        let r = redacted(&json!({"url": "https://api.example/mcp?key=${K}&t=secret"}));
        assert_eq!(r["url"], "https://api.example/mcp?key=${K}&t=********");
    }

    #[test]
    fn reads_and_writes_both_shapes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".mcp.json");
        assert!(read(&p).unwrap().0.is_empty());
        std::fs::write(&p, r#"{"mcpServers": {"a": {"command": "x"}}}"#).unwrap();
        let (s, nested) = read(&p).unwrap();
        assert!(nested && s.contains_key("a"));
        write(&p, &s, nested).unwrap();
        assert_eq!(read(&p).unwrap(), (s, true));
        std::fs::write(&p, "[]").unwrap();
        assert!(read(&p).is_err());
    }
}
