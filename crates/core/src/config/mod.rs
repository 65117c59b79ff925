//! Settings: where the vault and the server home are, and every tunable,
//! loaded once into a typed [`Settings`] with the precedence
//! command-line flag > environment > `.env` in the working directory >
//! `{vault}/.parachute/config.yaml` > defaults.
//!
//! The defaults live here and only here; `parachute config show` prints them with the
//! layer each value came from.

pub mod paths;
pub mod secrets;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::auth::AuthMode;
pub use paths::{resolve_home, resolve_vault, Paths};

/// Default TCP port.
pub const DEFAULT_PORT: u16 = 3333;
/// Default bind address: the LAN, so the mobile app can reach the server.
pub const DEFAULT_HOST: &str = "0.0.0.0";
/// Longest chat message accepted, in characters.
pub const DEFAULT_MAX_MESSAGE_LENGTH: usize = 102_400;
/// Largest request body accepted, in bytes; larger bodies get 413.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Every key a `config.yaml` may hold, with a one-line description (used by
/// `config show` and to warn about unknown keys).
pub const KNOWN_KEYS: &[(&str, &str)] = &[
    (
        "vault_path",
        "the vault folder (read from $PARACHUTE_HOME/config.yaml)",
    ),
    ("port", "TCP port to listen on"),
    ("host", "address to bind"),
    (
        "default_model",
        "model used when neither request nor workspace names one",
    ),
    (
        "auth_mode",
        "remote | always | disabled (initial value; server.yaml wins)",
    ),
    ("log_level", "tracing filter, e.g. info or parachute=debug"),
    (
        "cors_origins",
        "comma-separated origins allowed by CORS; * = localhost only",
    ),
    ("max_message_length", "longest chat message, in characters"),
    ("max_body_bytes", "largest request body, in bytes"),
    ("db_path", "SQLite file (default {vault}/Chat/sessions.db)"),
    ("debug", "true/false: extra diagnostics"),
    (
        "claude_cli_path",
        "the `claude` executable (default: found on PATH)",
    ),
    (
        "anthropic_base_url",
        "model API base URL handed to the CLI (ANTHROPIC_BASE_URL)",
    ),
    (
        "claude_config_dir",
        "CLAUDE_CONFIG_DIR given to the CLI (default $PARACHUTE_HOME/claude)",
    ),
    (
        "warm_pool_size",
        "CLI processes kept warm between turns (least recently used evicted)",
    ),
    ("warm_idle_secs", "seconds an idle warm CLI process is kept"),
    (
        "spare_cli_processes",
        "CLI processes started ahead for the next new chats (0 disables)",
    ),
    (
        "spare_vault_cli_processes",
        "CLI processes started ahead for new chats at the vault trust level (default 0)",
    ),
    (
        "prewarm_recent",
        "most recently active sessions whose CLI is started when the server starts (0 = none)",
    ),
    (
        "max_cli_processes",
        "cap on CLI processes, running and warm (default min(8, memory / 300 MB))",
    ),
    (
        "max_queued_turns",
        "turns that may wait for a CLI process when the cap is reached; beyond, a busy error",
    ),
    (
        "import_max_entry_bytes",
        "largest conversation of an import, in bytes after decompression",
    ),
    (
        "import_max_total_bytes",
        "largest import in total, in bytes after decompression",
    ),
    (
        "header_read_timeout_secs",
        "seconds a connection may take to send its request headers",
    ),
    (
        "max_connections_per_peer",
        "open connections one client address may hold",
    ),
    (
        "claude_code_dir",
        "the Claude Code config dir sessions are imported from (default ~/.claude)",
    ),
    (
        "permission_timeout_secs",
        "seconds an unanswered question or permission prompt waits before it is denied",
    ),
    (
        "sse_heartbeat_secs",
        "seconds between heartbeat comments on an idle chat stream",
    ),
    (
        "model_timeout_secs",
        "seconds a turn waits for the model API with no progress (retries included) before it fails",
    ),
    (
        "sandbox_image",
        "the Docker image sandboxed sessions run in (never pulled; build it with `parachute sandbox build`)",
    ),
    (
        "sandbox_memory",
        "memory cap of a sandboxed session's container unless its workspace sets one (512m)",
    ),
    (
        "sandbox_cpus",
        "CPU cap, in cores, of a sandboxed session's container unless its workspace sets one (1.0)",
    ),
    (
        "sandbox_pids",
        "most processes a sandboxed session's container may hold (256)",
    ),
    (
        "sandbox_timeout_secs",
        "longest a sandboxed turn may run before its container is stopped, unless its workspace sets one (300)",
    ),
];

/// Keys `parachute config set` refuses because they are secrets.
pub const SECRET_KEYS: &[&str] = &[
    "token",
    "claude_code_oauth_token",
    "anthropic_api_key",
    "api_key",
];

/// A settings failure the user can fix; always names the key and where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that does not parse or is out of range.
    #[error("invalid value for `{key}` (from {source_name}): {reason}")]
    Invalid {
        /// The settings key, e.g. `port`.
        key: String,
        /// The layer the value came from, as [`Source::as_str`] names it.
        source_name: String,
        /// What was expected.
        reason: String,
    },
    /// A YAML settings file that cannot be read, parsed, or is not a flat map.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The file that failed.
        path: PathBuf,
        /// The underlying I/O or parse error.
        reason: String,
    },
    /// `config set` was given a key that is not in [`KNOWN_KEYS`]: the key, then the
    /// comma-separated list of known keys.
    #[error("unknown setting `{0}`{hint}; known settings: {1}", hint = did_you_mean(.0))]
    UnknownKey(String, String),
    /// `config set` was given one of the [`SECRET_KEYS`], which never go in `config.yaml`.
    #[error("`{0}` is a secret: store it with `parachute setup-token` (it is never written to config.yaml)")]
    SecretKey(String),
    /// A YAML settings file that cannot be serialized or written.
    #[error("cannot write {path}: {source}")]
    Unwritable {
        /// The file that failed.
        path: PathBuf,
        /// The underlying serialization or I/O error.
        #[source]
        source: crate::util::disk_full::ErrorSource,
    },
    /// The effective auth mode is `disabled` but the server would bind a non-loopback
    /// address.
    #[error("refusing to listen on {host} with auth_mode `disabled`: bind to 127.0.0.1 or choose `remote`")]
    DisabledAuthOffLoopback {
        /// The configured bind address.
        host: String,
    },
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag (`--vault`, `--port`, `--host`).
    Flag,
    /// A process environment variable.
    Env,
    /// `.env` in the working directory.
    DotEnv,
    /// `{vault}/.parachute/config.yaml`.
    VaultConfig,
    /// `$PARACHUTE_HOME/config.yaml` (only consulted for `vault_path`).
    HomeConfig,
    /// The built-in default.
    Default,
    /// A value being checked by `parachute config set`, before it is written.
    ConfigSet,
}

impl Source {
    /// Human-readable name of the layer, as shown by `config show` and in errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Flag => "command-line flag",
            Source::Env => "environment",
            Source::DotEnv => ".env",
            Source::VaultConfig => "{vault}/.parachute/config.yaml",
            Source::HomeConfig => "$PARACHUTE_HOME/config.yaml",
            Source::Default => "default",
            Source::ConfigSet => "`parachute config set`",
        }
    }
}

/// Values given on the command line; they beat every other layer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--vault`: the vault folder.
    pub vault: Option<PathBuf>,
    /// `--port` of `parachute server`.
    pub port: Option<u16>,
    /// `--host` of `parachute server`: the bind address.
    pub host: Option<String>,
}

/// The server's effective settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The resolved vault and server home, and the files derived from them.
    pub paths: Paths,
    /// TCP port to listen on (`port`, `--port`; default [`DEFAULT_PORT`]).
    pub port: u16,
    /// Bind address: an IP or `localhost` (`host`, `--host`; default [`DEFAULT_HOST`]).
    pub host: String,
    /// `default_model`: model used when neither the request nor the workspace names one;
    /// `None` when unset or blank.
    pub default_model: Option<String>,
    /// `auth_mode` from config.yaml: only the initial value when `server.yaml` has none.
    pub auth_mode_default: AuthMode,
    /// `AUTH_MODE` from the environment (or `.env`): overrides `server.yaml` for this run.
    pub auth_mode_override: Option<AuthMode>,
    /// `log_level`: a tracing filter, lowercased (default `info`).
    pub log_level: String,
    /// Origins allowed by CORS, without trailing `/`; the default `*` expands to the
    /// local UI origins (localhost/127.0.0.1 on this port, 3333 and 3337, plus the tray app).
    pub cors_origins: Vec<String>,
    /// `max_message_length`: longest chat message accepted, in characters
    /// (default [`DEFAULT_MAX_MESSAGE_LENGTH`]).
    pub max_message_length: usize,
    /// `max_body_bytes`: largest request body accepted, in bytes; at least 1024
    /// (default [`DEFAULT_MAX_BODY_BYTES`]).
    pub max_body_bytes: usize,
    /// `db_path`: the SQLite file, relative paths taken from the vault
    /// (default `{vault}/Chat/sessions.db`).
    pub db_path: PathBuf,
    /// `debug`: extra diagnostics (default `false`).
    pub debug: bool,
    /// The `claude` executable.
    pub claude_cli_path: PathBuf,
    /// Model API base URL for the CLI, if not the default.
    pub anthropic_base_url: Option<String>,
    /// `CLAUDE_CONFIG_DIR` for the CLI (where transcripts live).
    pub claude_config_dir: PathBuf,
    /// The owner's own Claude Code config dir, read (never written) for imports.
    pub claude_code_dir: PathBuf,
    /// How long a question or permission prompt waits for an answer.
    pub permission_timeout: std::time::Duration,
    /// Heartbeat interval of idle SSE streams.
    pub sse_heartbeat: std::time::Duration,
    /// How long a turn waits for the model with no progress — no streamed output, no
    /// tool running, no prompt waiting for the owner — before it fails
    /// (`model_timeout_secs`, default 90). The CLI's own retries count as waiting.
    pub model_timeout: std::time::Duration,
    /// The Docker image of the `sandboxed` level (`sandbox_image`).
    pub sandbox_image: String,
    /// Container limits of the `sandboxed` level unless a workspace sets its own
    /// (`sandbox_memory`, `sandbox_cpus`, `sandbox_pids`, `sandbox_timeout_secs`).
    pub sandbox_limits: crate::agent::ContainerLimits,
    /// Warm CLI processes kept between turns.
    pub warm_pool_size: usize,
    /// How long an idle warm process is kept.
    pub warm_idle: std::time::Duration,
    /// CLI processes started ahead, each ready to become the next new chat.
    pub spare_cli_processes: usize,
    /// The same for new chats at `vault` (their CLI also starts the OS sandbox).
    pub spare_vault_cli_processes: usize,
    /// Sessions (most recently active first) whose CLI is started at server start.
    pub prewarm_recent: usize,
    /// Cap on CLI processes (running turns + warm), so parallel chats cannot exhaust
    /// memory (each CLI is ~200 MB).
    pub max_cli_processes: usize,
    /// Turns that may wait for a process at the cap; beyond, they get a busy error.
    pub max_queued_turns: usize,
    /// Largest conversation an import reads, after decompression.
    pub import_max_entry_bytes: u64,
    /// Largest import in total, after decompression (zip bombs).
    pub import_max_total_bytes: u64,
    /// Time a connection has to send its request headers.
    pub header_read_timeout: std::time::Duration,
    /// Open connections one peer address may hold.
    pub max_connections_per_peer: usize,
    /// Each key's value as shown by `config show`, with its source.
    pub shown: BTreeMap<String, (String, Source)>,
    /// Warnings found while loading (unknown keys…), logged once the logger exists.
    pub warnings: Vec<String>,
}

/// What [`Settings::load_paths`] finds before any setting is read.
pub struct LoadedPaths {
    /// The resolved vault and server home.
    pub paths: Paths,
    /// The `.env` layer (empty when the file lies inside the vault).
    pub dotenv: BTreeMap<String, String>,
    /// Warnings to log once the logger exists.
    pub warnings: Vec<String>,
}

/// The raw layers, before typing.
struct Layers {
    env: BTreeMap<String, String>,
    dotenv: BTreeMap<String, String>,
    vault_config: BTreeMap<String, Value>,
}

impl Layers {
    fn lookup(&self, key: &str) -> Option<(String, Source)> {
        if let Some(v) = self.env.get(key) {
            return Some((v.clone(), Source::Env));
        }
        if let Some(v) = self.dotenv.get(key) {
            return Some((v.clone(), Source::DotEnv));
        }
        self.vault_config
            .get(key)
            .filter(|v| !v.is_null())
            .map(|v| (value_to_string(v), Source::VaultConfig))
    }
}

fn value_to_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(value_to_string)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// Reads the environment variable for a settings key: upper- or lower-case name.
fn env_lookup(key: &str) -> Option<String> {
    std::env::var(key.to_ascii_uppercase())
        .ok()
        .or_else(|| std::env::var(key).ok())
}

/// Default `import_max_entry_bytes`: 32 MiB, far above any real conversation.
pub const DEFAULT_IMPORT_MAX_ENTRY_BYTES: u64 = 32 * 1024 * 1024;
/// Default `import_max_total_bytes`: 1 GiB.
pub const DEFAULT_IMPORT_MAX_TOTAL_BYTES: u64 = 1024 * 1024 * 1024;

/// min(8, physical memory / 300 MB), at least 1: a CLI process takes ~200 MB.
pub fn default_max_cli_processes() -> usize {
    let per_process = 300 * 1024 * 1024;
    match crate::util::sys::physical_memory_bytes() {
        Some(m) => ((m / per_process) as usize).clamp(1, 8),
        None => 8,
    }
}

/// Whether `./.env` lies inside `vault` (resolved through symlinks).
fn dotenv_is_inside(vault: &Path) -> bool {
    let (Ok(env), Ok(vault)) = (Path::new(".env").canonicalize(), vault.canonicalize()) else {
        // A vault that does not exist yet holds no file.
        return false;
    };
    env.starts_with(vault)
}

/// Reads `.env` in the working directory (missing file = empty layer).
pub(crate) fn read_dotenv() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(iter) = dotenvy::from_path_iter(".env") {
        for (k, v) in iter.flatten() {
            out.insert(k.to_ascii_lowercase(), v);
        }
    }
    out
}

/// Reads a flat YAML map; a missing file is an empty map.
pub fn read_yaml_map(path: &Path) -> Result<BTreeMap<String, Value>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(ConfigError::Unreadable {
                path: path.into(),
                reason: e.to_string(),
            })
        }
    };
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let value: Value = serde_saphyr::from_str(&text).map_err(|e| ConfigError::Unreadable {
        path: path.into(),
        reason: e.to_string(),
    })?;
    match value {
        Value::Object(map) => Ok(map.into_iter().collect()),
        Value::Null => Ok(BTreeMap::new()),
        _ => Err(ConfigError::Unreadable {
            path: path.into(),
            reason: "expected a map of `key: value` lines".into(),
        }),
    }
}

impl Settings {
    /// The gate for every vault path a client or an agent names.
    pub fn vault_gate(&self) -> crate::vault::VaultGate {
        crate::vault::VaultGate::new(self.paths.vault.clone(), self.db_path.clone())
    }

    /// Where the vault and the home are, and the `.env` layer (empty when it lies inside
    /// the vault), without reading any setting: enough for `config set` to fix a broken
    /// `config.yaml`.
    pub fn load_paths(overrides: &Overrides) -> Result<LoadedPaths, ConfigError> {
        let mut dotenv = read_dotenv();
        let home = resolve_home();
        let mut vault = resolve_vault(overrides.vault.as_deref(), &dotenv, &home)?;
        let mut early_warnings = Vec::new();
        // `.env` is never read from inside the vault: anyone with a key can write vault
        // files, and this one would change the auth mode, CORS origins or model URL.
        // Judged against the vault with and without the file, so a planted `.env` cannot
        // escape by naming another vault.
        let without = resolve_vault(overrides.vault.as_deref(), &BTreeMap::new(), &home)?;
        if !dotenv.is_empty() && (dotenv_is_inside(&vault.0) || dotenv_is_inside(&without.0)) {
            dotenv.clear();
            vault = without;
            early_warnings.push(format!(
                ".env in {} ignored: the working directory is inside the vault, whose files are data, not settings",
                std::env::current_dir().unwrap_or_default().display()
            ));
        }
        Ok(LoadedPaths {
            paths: Paths::new(vault, home),
            dotenv,
            warnings: early_warnings,
        })
    }

    /// Loads settings once: resolves the vault and home, then every key by precedence.
    pub fn load(overrides: &Overrides) -> Result<Settings, ConfigError> {
        let LoadedPaths {
            paths,
            dotenv,
            warnings: early_warnings,
        } = Self::load_paths(overrides)?;
        let vault_config = read_yaml_map(&paths.vault_config_file())?;
        let mut env = BTreeMap::new();
        for (key, _) in KNOWN_KEYS {
            if let Some(v) = env_lookup(key) {
                env.insert((*key).to_string(), v);
            }
        }
        let layers = Layers {
            env,
            dotenv,
            vault_config,
        };
        let mut warnings = early_warnings;
        for key in layers.vault_config.keys() {
            if !KNOWN_KEYS.iter().any(|(k, _)| k == key) {
                warnings.push(format!(
                    "unknown key `{key}` in {} ignored{}",
                    paths.vault_config_file().display(),
                    did_you_mean(key)
                ));
            }
        }
        Self::from_layers(paths, &layers, overrides, warnings)
    }

    /// Defaults only, for a given vault and home (embedding and tests): no environment,
    /// `.env` or `config.yaml` is read.
    pub fn for_paths(vault: PathBuf, home: PathBuf) -> Result<Settings, ConfigError> {
        let paths = Paths::new((vault, Source::Flag), home);
        let layers = Layers {
            env: BTreeMap::new(),
            dotenv: BTreeMap::new(),
            vault_config: BTreeMap::new(),
        };
        let ov = Overrides {
            host: Some("127.0.0.1".into()),
            ..Default::default()
        };
        Self::from_layers(paths, &layers, &ov, Vec::new())
    }

    // One `get` and one check per key, read top to bottom: splitting it would only
    // scatter the list of settings.
    #[allow(clippy::too_many_lines)]
    fn from_layers(
        paths: Paths,
        layers: &Layers,
        overrides: &Overrides,
        warnings: Vec<String>,
    ) -> Result<Settings, ConfigError> {
        let mut shown = BTreeMap::new();
        shown.insert(
            "vault_path".to_string(),
            (paths.vault.display().to_string(), paths.vault_source),
        );
        let mut get = |key: &str, flag: Option<String>, default: String| -> (String, Source) {
            let (v, s) = match flag {
                Some(f) => (f, Source::Flag),
                None => layers.lookup(key).unwrap_or((default, Source::Default)),
            };
            shown.insert(key.to_string(), (v.clone(), s));
            (v, s)
        };

        let (port_s, port_src) = get(
            "port",
            overrides.port.map(|p| p.to_string()),
            DEFAULT_PORT.to_string(),
        );
        let port = parse_num::<u16>("port", &port_s, port_src)?;
        let (host, host_src) = get("host", overrides.host.clone(), DEFAULT_HOST.to_string());
        if host.parse::<IpAddr>().is_err() && host != "localhost" {
            return Err(invalid(
                "host",
                host_src,
                "expected an IP address such as 0.0.0.0 or 127.0.0.1",
            ));
        }
        let (model, _) = get("default_model", None, String::new());
        let (auth_s, auth_src) = get("auth_mode", None, "remote".into());
        let auth_mode: AuthMode = auth_s
            .parse()
            .map_err(|_| invalid("auth_mode", auth_src, "expected remote, always or disabled"))?;
        // The environment overrides server.yaml for this run; only config.yaml (or the
        // default) seeds server.yaml when it does not exist yet.
        let (auth_mode_override, auth_mode) = match auth_src {
            Source::Env | Source::DotEnv => {
                let seed = match layers.vault_config.get("auth_mode").map(value_to_string) {
                    Some(v) => v.parse().map_err(|_| {
                        invalid(
                            "auth_mode",
                            Source::VaultConfig,
                            "expected remote, always or disabled",
                        )
                    })?,
                    None => AuthMode::Remote,
                };
                (Some(auth_mode), seed)
            }
            _ => (None, auth_mode),
        };
        let (log_level, log_src) = get("log_level", None, "info".into());
        if tracing_subscriber::EnvFilter::try_new(log_level.to_ascii_lowercase()).is_err() {
            return Err(invalid(
                "log_level",
                log_src,
                "expected a level such as info, debug or warn",
            ));
        }
        let (cors, _) = get("cors_origins", None, "*".into());
        let cors_origins = parse_cors(&cors, port);
        let (mml, mml_src) = get(
            "max_message_length",
            None,
            DEFAULT_MAX_MESSAGE_LENGTH.to_string(),
        );
        let max_message_length = parse_num::<usize>("max_message_length", &mml, mml_src)?;
        let (mbb, mbb_src) = get("max_body_bytes", None, DEFAULT_MAX_BODY_BYTES.to_string());
        let max_body_bytes = parse_num::<usize>("max_body_bytes", &mbb, mbb_src)?;
        if max_body_bytes < 1024 {
            return Err(invalid("max_body_bytes", mbb_src, "must be at least 1024"));
        }
        let default_db = paths.vault.join("Chat").join("sessions.db");
        let (db_s, _) = get("db_path", None, default_db.display().to_string());
        let db_path = {
            let p = PathBuf::from(&db_s);
            if p.is_absolute() {
                p
            } else {
                paths.vault.join(p)
            }
        };
        let (debug_s, debug_src) = get("debug", None, "false".into());
        let debug = parse_bool(&debug_s)
            .ok_or_else(|| invalid("debug", debug_src, "expected true or false"))?;
        let (cli, _) = get("claude_cli_path", None, "claude".into());
        let (base_url, _) = get("anthropic_base_url", None, String::new());
        let default_ccd = paths.claude_config_dir().display().to_string();
        let (ccd, _) = get("claude_config_dir", None, default_ccd);
        let user_claude = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".claude");
        let (ccimp, _) = get("claude_code_dir", None, user_claude.display().to_string());
        let (pto, pto_src) = get("permission_timeout_secs", None, "300".into());
        let (hb, hb_src) = get("sse_heartbeat_secs", None, "15".into());
        let hb = parse_num::<u64>("sse_heartbeat_secs", &hb, hb_src)?;
        if hb == 0 {
            return Err(invalid("sse_heartbeat_secs", hb_src, "must be at least 1"));
        }
        let sse_heartbeat = std::time::Duration::from_secs(hb);
        let (mto, mto_src) = get("model_timeout_secs", None, "90".into());
        let mto = parse_num::<u64>("model_timeout_secs", &mto, mto_src)?;
        if mto == 0 {
            return Err(invalid("model_timeout_secs", mto_src, "must be at least 1"));
        }
        let model_timeout = std::time::Duration::from_secs(mto);
        let (sandbox_image, _) = get("sandbox_image", None, DEFAULT_SANDBOX_IMAGE.into());
        let sandbox = [
            get("sandbox_memory", None, "512m".into()),
            get("sandbox_cpus", None, "1.0".into()),
            get("sandbox_pids", None, "256".into()),
            get("sandbox_timeout_secs", None, "300".into()),
        ];
        let sandbox_limits = parse_sandbox_limits(&sandbox)?;
        let (wps, wps_src) = get("warm_pool_size", None, "4".into());
        let warm_pool_size = parse_num::<usize>("warm_pool_size", &wps, wps_src)?;
        let (wis, wis_src) = get("warm_idle_secs", None, "900".into());
        let warm_idle =
            std::time::Duration::from_secs(parse_num::<u64>("warm_idle_secs", &wis, wis_src)?);
        let (scp, scp_src) = get("spare_cli_processes", None, "1".into());
        let spare_cli_processes = parse_num::<usize>("spare_cli_processes", &scp, scp_src)?;
        let (svp, svp_src) = get("spare_vault_cli_processes", None, "0".into());
        let spare_vault_cli_processes =
            parse_num::<usize>("spare_vault_cli_processes", &svp, svp_src)?;
        let (pwr, pwr_src) = get("prewarm_recent", None, "0".into());
        let prewarm_recent = parse_num::<usize>("prewarm_recent", &pwr, pwr_src)?;
        let permission_timeout = std::time::Duration::from_secs(parse_num::<u64>(
            "permission_timeout_secs",
            &pto,
            pto_src,
        )?);
        let (mcp, mcp_src) = get(
            "max_cli_processes",
            None,
            default_max_cli_processes().to_string(),
        );
        let max_cli_processes = parse_num::<usize>("max_cli_processes", &mcp, mcp_src)?;
        if max_cli_processes == 0 {
            return Err(invalid("max_cli_processes", mcp_src, "must be at least 1"));
        }
        let (mqt, mqt_src) = get("max_queued_turns", None, "16".into());
        let max_queued_turns = parse_num::<usize>("max_queued_turns", &mqt, mqt_src)?;
        let (ieb, ieb_src) = get(
            "import_max_entry_bytes",
            None,
            DEFAULT_IMPORT_MAX_ENTRY_BYTES.to_string(),
        );
        let import_max_entry_bytes = parse_num::<u64>("import_max_entry_bytes", &ieb, ieb_src)?;
        let (itb, itb_src) = get(
            "import_max_total_bytes",
            None,
            DEFAULT_IMPORT_MAX_TOTAL_BYTES.to_string(),
        );
        let import_max_total_bytes = parse_num::<u64>("import_max_total_bytes", &itb, itb_src)?;
        let (hrt, hrt_src) = get("header_read_timeout_secs", None, "10".into());
        let hrt = parse_num::<u64>("header_read_timeout_secs", &hrt, hrt_src)?;
        if hrt == 0 {
            return Err(invalid(
                "header_read_timeout_secs",
                hrt_src,
                "must be at least 1",
            ));
        }
        let header_read_timeout = std::time::Duration::from_secs(hrt);
        let (mcpp, mcpp_src) = get("max_connections_per_peer", None, "128".into());
        let max_connections_per_peer =
            parse_num::<usize>("max_connections_per_peer", &mcpp, mcpp_src)?;
        if max_connections_per_peer == 0 {
            return Err(invalid(
                "max_connections_per_peer",
                mcpp_src,
                "must be at least 1",
            ));
        }

        Ok(Settings {
            paths,
            port,
            host,
            default_model: Some(model).filter(|m| !m.trim().is_empty()),
            auth_mode_default: auth_mode,
            auth_mode_override,
            log_level: log_level.to_ascii_lowercase(),
            cors_origins,
            max_message_length,
            max_body_bytes,
            db_path,
            debug,
            claude_cli_path: PathBuf::from(cli),
            anthropic_base_url: Some(base_url).filter(|u| !u.trim().is_empty()),
            claude_config_dir: PathBuf::from(ccd),
            claude_code_dir: PathBuf::from(ccimp),
            permission_timeout,
            warm_pool_size,
            spare_cli_processes,
            spare_vault_cli_processes,
            prewarm_recent,
            warm_idle,
            max_cli_processes,
            max_queued_turns,
            import_max_entry_bytes,
            import_max_total_bytes,
            header_read_timeout,
            max_connections_per_peer,
            sse_heartbeat,
            model_timeout,
            sandbox_image,
            sandbox_limits,
            shown,
            warnings,
        })
    }

    /// Whether the bind address only accepts loopback connections.
    pub fn binds_loopback_only(&self) -> bool {
        host_is_loopback(&self.host)
    }
}

/// True for `localhost` and loopback IPs.
pub fn host_is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// The image sandboxed sessions run in unless `sandbox_image` names another.
pub const DEFAULT_SANDBOX_IMAGE: &str = "parachute-sandbox:latest";

/// The default container limits from `sandbox_memory`, `sandbox_cpus`, `sandbox_pids`
/// and `sandbox_timeout_secs` (in that order), each with its source.
fn parse_sandbox_limits(
    v: &[(String, Source); 4],
) -> Result<crate::agent::ContainerLimits, ConfigError> {
    let [(mem, mem_src), (cpu, cpu_src), (pids, pids_src), (to, to_src)] = v;
    let memory_bytes = crate::agent::parse_memory(mem)
        .filter(|b| *b >= 6 << 20)
        .ok_or_else(|| {
            invalid(
                "sandbox_memory",
                *mem_src,
                "expected a size of at least 6m, e.g. 512m or 2g",
            )
        })?;
    let cores = cpu
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|c| *c > 0.0 && *c <= 256.0)
        .ok_or_else(|| invalid("sandbox_cpus", *cpu_src, "expected cores above 0, e.g. 1.0"))?;
    let pids = parse_num::<i64>("sandbox_pids", pids, *pids_src)?;
    if pids < 16 {
        return Err(invalid("sandbox_pids", *pids_src, "must be at least 16"));
    }
    let secs = parse_num::<u64>("sandbox_timeout_secs", to, *to_src)?;
    if secs == 0 || secs > 86_400 {
        return Err(invalid(
            "sandbox_timeout_secs",
            *to_src,
            "must be 1 to 86400",
        ));
    }
    Ok(crate::agent::ContainerLimits {
        memory_bytes,
        nano_cpus: (cores * 1e9) as i64,
        pids,
        timeout: std::time::Duration::from_secs(secs),
    })
}

/// The known setting closest to a misspelt `key`, if one is close enough to be meant.
pub fn suggest_key(key: &str) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    KNOWN_KEYS
        .iter()
        .map(|(k, _)| (strsim::damerau_levenshtein(&key, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// `; did you mean `port`?` for a misspelt key, else nothing.
fn did_you_mean(key: &str) -> String {
    suggest_key(key)
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}

fn invalid(key: &str, src: Source, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        source_name: src.as_str().into(),
        reason: reason.into(),
    }
}

/// The longest duration any `*_secs` setting may name: a year. Longer ones would
/// overflow the clocks they are added to.
const MAX_SECS: u64 = 31_536_000;

fn parse_num<T: std::str::FromStr>(key: &str, s: &str, src: Source) -> Result<T, ConfigError> {
    if key.ends_with("_secs") && s.trim().parse::<u64>().is_ok_and(|n| n > MAX_SECS) {
        return Err(invalid(
            key,
            src,
            &format!("must be at most {MAX_SECS} (a year)"),
        ));
    }
    s.trim()
        .parse::<T>()
        .map_err(|_| invalid(key, src, &format!("`{s}` is not a valid number")))
}

/// Parses the boolean spellings pydantic accepted.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// `*` means the local UI origins only (as the original did); otherwise a comma list.
fn parse_cors(s: &str, port: u16) -> Vec<String> {
    if s.trim() == "*" {
        let mut out = Vec::new();
        for p in [port, 3333, 3337] {
            for h in ["localhost", "127.0.0.1"] {
                let o = format!("http://{h}:{p}");
                if !out.contains(&o) {
                    out.push(o);
                }
            }
        }
        // The tray app's window.
        for o in ["tauri://localhost", "http://tauri.localhost"] {
            out.push(o.to_string());
        }
        return out;
    }
    s.split(',')
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty() && o != "*")
        .collect()
}

/// Settings whose value is a whole number (a count, a size in bytes, seconds).
fn is_count_key(key: &str) -> bool {
    [
        "_secs",
        "_size",
        "_processes",
        "_turns",
        "_bytes",
        "_pids",
        "_per_peer",
    ]
    .iter()
    .any(|suffix| key.ends_with(suffix))
        || key == "prewarm_recent"
}

/// Validates one `config set KEY VALUE` pair and returns the YAML value to store.
pub fn validate_setting(key: &str, value: &str) -> Result<Value, ConfigError> {
    if SECRET_KEYS.contains(&key) {
        return Err(ConfigError::SecretKey(key.into()));
    }
    if !KNOWN_KEYS.iter().any(|(k, _)| *k == key) {
        let known = KNOWN_KEYS
            .iter()
            .map(|(k, _)| *k)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ConfigError::UnknownKey(key.into(), known));
    }
    let src = Source::ConfigSet;
    let typed = match key {
        "port" => Value::from(parse_num::<u16>(key, value, src)?),
        "max_message_length" | "max_body_bytes" => Value::from(parse_num::<u64>(key, value, src)?),
        // Counts and durations are written as numbers, so the file reads as people write it.
        k if is_count_key(k) && value.trim().parse::<u64>().is_ok() => {
            Value::from(parse_num::<u64>(key, value, src)?)
        }
        "debug" => Value::from(
            parse_bool(value).ok_or_else(|| invalid(key, src, "expected true or false"))?,
        ),
        "auth_mode" => {
            value
                .parse::<AuthMode>()
                .map_err(|_| invalid(key, src, "expected remote, always or disabled"))?;
            Value::from(value)
        }
        "vault_path" => {
            if value.trim().is_empty() {
                return Err(invalid(key, src, "expected the vault folder's path"));
            }
            Value::from(value)
        }
        "host" => {
            if value.parse::<IpAddr>().is_err() && value != "localhost" {
                return Err(invalid(key, src, "expected an IP address"));
            }
            Value::from(value)
        }
        _ => Value::from(value),
    };
    // The same parser the server runs at start, on this one value: whatever it would
    // refuse is refused now, before it is written.
    let layers = Layers {
        env: BTreeMap::new(),
        dotenv: BTreeMap::new(),
        vault_config: BTreeMap::from([(key.to_string(), typed.clone())]),
    };
    let paths = Paths::new(
        (PathBuf::from("/nonexistent/vault"), Source::Default),
        PathBuf::from("/nonexistent/home"),
    );
    Settings::from_layers(paths, &layers, &Overrides::default(), Vec::new()).map_err(
        |e| match e {
            ConfigError::Invalid { reason, .. } => invalid(key, src, &reason),
            other => other,
        },
    )?;
    Ok(typed)
}

/// One setting as the settings screen and `GET /api/settings` show it.
#[derive(Debug, Clone)]
pub struct SettingView {
    /// The key, as `parachute config set` takes it.
    pub key: &'static str,
    /// What it does.
    pub description: &'static str,
    /// The value in force.
    pub value: String,
    /// Where the value in force comes from.
    pub source: Source,
    /// The value saved in its settings file when it differs from the one in force
    /// (it takes effect at the next start).
    pub saved: Option<String>,
}

/// Every known setting with its value in force and any saved change (reads the two
/// small settings files: call it off the async runtime).
pub fn setting_views(s: &Settings) -> Vec<SettingView> {
    let vault_file = read_yaml_map(&s.paths.vault_config_file()).unwrap_or_default();
    let home_file = read_yaml_map(&s.paths.home_config_file()).unwrap_or_default();
    KNOWN_KEYS
        .iter()
        .filter_map(|(key, description)| {
            let (value, source) = s.shown.get(*key)?;
            let file = if *key == "vault_path" {
                &home_file
            } else {
                &vault_file
            };
            let saved = file
                .get(*key)
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .filter(|v| v != value);
            Some(SettingView {
                key,
                description,
                value: value.clone(),
                source: *source,
                saved,
            })
        })
        .collect()
}

/// Checks and saves settings as `parachute config set` does: every value is checked
/// before any is written; `vault_path` goes to the home config, the rest to the
/// vault's. Returns each refused key with the reason, or the keys written. Each file is
/// written atomically, the vault's first: should the home config then fail, the error
/// names that file and the vault's changes stay saved.
pub fn save_settings(
    paths: &Paths,
    values: &BTreeMap<String, String>,
) -> Result<Vec<String>, SaveError> {
    let mut checked = Vec::new();
    let mut refused = Vec::new();
    for (key, value) in values {
        match validate_setting(key, value) {
            Ok(v) => checked.push((key.clone(), v, value.clone())),
            Err(ConfigError::Invalid { reason, .. }) => refused.push((key.clone(), reason)),
            Err(e) => refused.push((key.clone(), e.to_string())),
        }
    }
    if !refused.is_empty() {
        return Err(SaveError::Refused(refused));
    }
    // One save at a time, and each file written once with all its keys.
    static SAVING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = SAVING.lock().unwrap_or_else(|e| e.into_inner());
    let mut home_keys = BTreeMap::new();
    let mut vault_keys = BTreeMap::new();
    for (key, typed, raw) in checked {
        if key == "vault_path" {
            let abs = paths::absolutize(Path::new(raw.trim()));
            home_keys.insert(key, Value::from(abs.display().to_string()));
        } else {
            vault_keys.insert(key, typed);
        }
    }
    let saved: Vec<String> = home_keys.keys().chain(vault_keys.keys()).cloned().collect();
    if !vault_keys.is_empty() {
        std::fs::create_dir_all(paths.vault_dot()).map_err(|e| ConfigError::Unwritable {
            path: paths.vault_dot(),
            source: e.into(),
        })?;
        write_yaml_keys(&paths.vault_config_file(), vault_keys)?;
    }
    if !home_keys.is_empty() {
        write_yaml_keys(&paths.home_config_file(), home_keys)?;
    }
    Ok(saved)
}

/// Why [`save_settings`] wrote nothing (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// These keys were refused, each with the reason; nothing was written.
    #[error("settings refused: {0:?}")]
    Refused(Vec<(String, String)>),
    /// A file could not be written.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Sets one key in a flat YAML file (atomically), keeping the other keys.
pub fn write_yaml_key(path: &Path, key: &str, value: Value) -> Result<(), ConfigError> {
    write_yaml_keys(path, BTreeMap::from([(key.to_string(), value)]))
}

/// Sets keys in a flat YAML file in one atomic write, keeping the other keys.
pub fn write_yaml_keys(path: &Path, values: BTreeMap<String, Value>) -> Result<(), ConfigError> {
    let mut map = read_yaml_map(path)?;
    map.extend(values);
    let text = serde_saphyr::to_string(&map).map_err(|e| ConfigError::Unwritable {
        path: path.into(),
        source: e.into(),
    })?;
    crate::util::fs::write_atomic(path, text.as_bytes(), None).map_err(|e| {
        ConfigError::Unwritable {
            path: path.into(),
            source: e.into(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_read_is_a_known_key() {
        // A key read by `from_layers` but missing from KNOWN_KEYS would ignore its
        // environment variable and be reported as unknown in config.yaml.
        let s = Settings::for_paths("/tmp/v".into(), "/tmp/h".into()).unwrap();
        for key in s.shown.keys() {
            assert!(
                KNOWN_KEYS.iter().any(|(k, _)| k == key),
                "{key} missing from KNOWN_KEYS"
            );
        }
        assert_eq!(s.shown.len(), KNOWN_KEYS.len());
    }

    #[test]
    fn star_cors_means_local_origins_only() {
        let o = parse_cors("*", 3333);
        assert!(o.contains(&"http://localhost:3333".to_string()));
        assert!(o
            .iter()
            .all(|x| x.contains("localhost") || x.contains("127.0.0.1")));
    }

    #[test]
    fn config_set_refuses_secrets_and_unknown_keys() {
        assert!(matches!(
            validate_setting("token", "x"),
            Err(ConfigError::SecretKey(_))
        ));
        assert!(matches!(
            validate_setting("nope", "x"),
            Err(ConfigError::UnknownKey(..))
        ));
        assert!(matches!(
            validate_setting("port", "99999"),
            Err(ConfigError::Invalid { .. })
        ));
        assert_eq!(validate_setting("port", "4000").unwrap(), Value::from(4000));
        // Counts are stored as numbers; durations beyond a year and an empty vault are refused.
        assert_eq!(
            validate_setting("warm_pool_size", "3").unwrap(),
            Value::from(3)
        );
        assert!(validate_setting("model_timeout_secs", "99999999999").is_err());
        assert!(validate_setting("vault_path", " ").is_err());
    }
}

/// `config set` over every key and generated values: a value is stored or refused with
/// the key named, never a panic.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn every_value_of_every_key_is_stored_or_refused_by_name(
            key in prop_oneof![
                prop::sample::select(KNOWN_KEYS.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>()),
                prop::sample::select(SECRET_KEYS.iter().map(|k| k.to_string()).collect::<Vec<_>>()),
                "[a-z_]{0,12}",
            ],
            value in prop_oneof![
                "-?[0-9]{0,25}(\\.[0-9]{0,3})?",
                Just("true".to_string()), Just("0".to_string()), Just("".to_string()),
                "[a-zA-Z0-9:/._ -]{0,30}",
                "\\PC{0,20}",
            ],
        ) {
            match validate_setting(&key, &value) {
                Ok(v) => prop_assert!(!v.is_null() || value.trim().is_empty(), "{key}={value:?} -> {v}"),
                Err(e) => prop_assert!(e.to_string().contains(&key), "{key}={value:?}: {e}"),
            }
        }
    }
}
