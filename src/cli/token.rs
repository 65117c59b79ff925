//! `parachute setup-token`: reads the Claude token from standard input (when piped) or a
//! hidden prompt — never from the command line, where other users could see it.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use parachute_core::config::secrets::{SecretName, SecretStore};
use parachute_core::config::{paths, Overrides};

pub async fn run(_ov: &Overrides) -> anyhow::Result<ExitCode> {
    let home = paths::resolve_home();
    std::fs::create_dir_all(&home)?;
    let token = if std::io::stdin().is_terminal() {
        eprintln!("Paste your Claude token (from `claude setup-token`); it will not be shown:");
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
    if !token.starts_with("sk-ant-") {
        eprintln!("warning: Claude tokens usually start with `sk-ant-`; storing it anyway");
    }
    let store = SecretStore::new(home.join("secrets.json"));
    let at = store.set(SecretName::ClaudeOauthToken, token).await?;
    println!("Claude token stored in the {}.", at.as_str());
    if std::env::var(SecretName::ClaudeOauthToken.env_var()).is_ok() {
        eprintln!("note: CLAUDE_CODE_OAUTH_TOKEN is set in the environment and takes precedence");
    }
    Ok(ExitCode::SUCCESS)
}
