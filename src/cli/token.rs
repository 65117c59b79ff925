//! `parachute setup-token`: reads the Claude credential from standard input (when piped)
//! or a hidden prompt — never from the command line, where other users could see it —
//! recognises its kind (OAuth token or API key) and stores it under that kind's name.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use parachute_core::config::paths;
use parachute_core::config::secrets::{SecretStore, SecretsError, TokenKind};

pub async fn run(force: bool) -> anyhow::Result<ExitCode> {
    let home = paths::resolve_home();
    std::fs::create_dir_all(&home)?;
    let token = if std::io::stdin().is_terminal() {
        eprintln!(
            "Paste your Claude token (from `claude setup-token`) or Anthropic API key; it will not be shown:"
        );
        rpassword::prompt_password("token: ")?
    } else {
        let mut s = String::new();
        std::io::stdin().take(64 * 1024).read_to_string(&mut s)?;
        s.lines().next().unwrap_or("").to_string()
    };
    let token = token.trim();
    if token.is_empty() {
        eprintln!("error: no token given; run `claude setup-token` to get one, then paste it here");
        return Ok(ExitCode::FAILURE);
    }
    let store = SecretStore::new(home.join("secrets.json"));
    let (kind, at, removed) = match store.set_claude_credential(token, force).await {
        Ok(r) => r,
        Err(SecretsError::UnknownCredential) => {
            eprintln!(
                "error: this looks like neither a Claude OAuth token (sk-ant-oat…, from `claude setup-token`) \
                 nor an Anthropic API key (sk-ant-api…); nothing was changed. Pass --force to store it anyway."
            );
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    if force && TokenKind::detect(token).is_none() {
        eprintln!("warning: this looks like neither an OAuth token (sk-ant-oat…) nor an API key (sk-ant-api…); stored as an OAuth token because of --force");
    }
    println!(
        "Claude {} stored in the {} (the CLI gets it as {}).",
        kind.label(),
        at.as_str(),
        kind.secret_name().env_var()
    );
    if removed {
        println!("The stored {} was removed.", kind.other().label());
    }
    for k in [TokenKind::OAuth, TokenKind::ApiKey] {
        if std::env::var(k.secret_name().env_var()).is_ok() {
            eprintln!(
                "note: {} is set in the environment and takes precedence over the stored value",
                k.secret_name().env_var()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line for `status`: which credential the server would use, of what kind, and from
/// where — never its value.
pub async fn describe(secrets: &SecretStore) -> String {
    match secrets.claude_credential().await {
        Ok(Some(c)) => format!(
            "set: {} ({}, sent as {})",
            c.kind.label(),
            c.location.as_str(),
            c.kind.secret_name().env_var()
        ),
        Ok(None) => "not set — run `parachute setup-token`".to_string(),
        Err(e) => format!("cannot be read: {e}"),
    }
}
