//! `parachute config show|get|set`.

use std::process::ExitCode;

use parachute_core::config::{validate_setting, write_yaml_key, Overrides, Settings, KNOWN_KEYS};

pub fn run(ov: &Overrides, action: super::ConfigAction) -> anyhow::Result<ExitCode> {
    match action {
        super::ConfigAction::Show => {
            let s = Settings::load(ov)?;
            println!("vault:          {}", s.paths.vault.display());
            println!("PARACHUTE_HOME: {}", s.paths.home.display());
            for (key, _) in KNOWN_KEYS {
                if let Some((v, src)) = s.shown.get(*key) {
                    println!("{key:<20} {v:<40} ({})", src.as_str());
                }
            }
            for w in &s.warnings {
                eprintln!("warning: {w}");
            }
            Ok(ExitCode::SUCCESS)
        }
        super::ConfigAction::Get { key } => {
            let s = Settings::load(ov)?;
            match s.shown.get(&key) {
                Some((v, _)) => {
                    println!("{v}");
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    let known = KNOWN_KEYS
                        .iter()
                        .map(|(k, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", ");
                    eprintln!("error: unknown setting `{key}`; known settings: {known}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        super::ConfigAction::Set { key, value } => {
            let v = validate_setting(&key, &value)?;
            let s = Settings::load(ov)?;
            let file = if key == "vault_path" {
                let abs = parachute_core::config::paths::absolutize(std::path::Path::new(&value));
                write_yaml_key(
                    &s.paths.home_config_file(),
                    &key,
                    serde_json::Value::from(abs.display().to_string()),
                )?;
                s.paths.home_config_file()
            } else {
                std::fs::create_dir_all(s.paths.vault_dot())?;
                write_yaml_key(&s.paths.vault_config_file(), &key, v)?;
                s.paths.vault_config_file()
            };
            println!("{key} saved to {}", file.display());
            if std::env::var(key.to_ascii_uppercase()).is_ok() {
                eprintln!(
                    "note: {} is set in the environment and overrides this value",
                    key.to_ascii_uppercase()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
