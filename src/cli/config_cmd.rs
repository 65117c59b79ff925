//! `parachute config show|get|set`.

use std::process::ExitCode;

use parachute_core::config::{
    validate_setting, write_yaml_key, ConfigError, Overrides, Settings, KNOWN_KEYS,
};

pub fn run(ov: &Overrides, action: super::ConfigAction) -> anyhow::Result<ExitCode> {
    match action {
        super::ConfigAction::Show => {
            let s = load_or_explain(ov)?;
            println!("vault:          {}", s.paths.vault.display());
            println!("PARACHUTE_HOME: {}", s.paths.home.display());
            // The value last, so a long one cannot push the other columns out of line.
            let rows: Vec<(&str, &str, &str)> = KNOWN_KEYS
                .iter()
                .filter_map(|(key, _)| {
                    let (v, src) = s.shown.get(*key)?;
                    Some((*key, src.as_str(), v.as_str()))
                })
                .collect();
            let kw = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
            let sw = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
            println!("{:<kw$}  {:<sw$}  VALUE", "KEY", "FROM");
            for (key, src, v) in rows {
                println!("{key:<kw$}  {src:<sw$}  {v}");
            }
            for w in &s.warnings {
                eprintln!("warning: {w}");
            }
            Ok(ExitCode::SUCCESS)
        }
        super::ConfigAction::Get { key } => {
            let s = load_or_explain(ov)?;
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
                    eprintln!("error: {}", ConfigError::UnknownKey(key, known));
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        super::ConfigAction::Set { key, value } => {
            let v = validate_setting(&key, &value)?;
            // Only the paths: a broken config.yaml must not stop the command that fixes it.
            let paths = Settings::load_paths(ov)?.paths;
            let file = if key == "vault_path" {
                let abs = parachute_core::config::paths::absolutize(std::path::Path::new(&value));
                write_yaml_key(
                    &paths.home_config_file(),
                    &key,
                    serde_json::Value::from(abs.display().to_string()),
                )?;
                paths.home_config_file()
            } else {
                std::fs::create_dir_all(paths.vault_dot())?;
                write_yaml_key(&paths.vault_config_file(), &key, v)?;
                paths.vault_config_file()
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

/// Loads the settings; an invalid value is reported with the command that fixes it.
fn load_or_explain(ov: &Overrides) -> anyhow::Result<Settings> {
    Settings::load(ov).map_err(|e| match &e {
        ConfigError::Invalid { key, .. } => anyhow::anyhow!(
            "{e}\nfix it with `parachute config set {key} VALUE` (or edit the file)"
        ),
        _ => e.into(),
    })
}
