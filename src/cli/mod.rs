//! The `parachute` command line: clap definitions and dispatch. Each
//! command lives in its own file; all of them are thin over the library.

mod agents;
mod bot;
mod config_cmd;
mod daemon;
mod doctor;
mod doctor_security;
mod install;
mod launchd;
mod logs;
mod mcp;
mod module;
mod sandbox;
mod server_api;
mod status;
mod token;
mod update;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use parachute_core::config::{Overrides, Settings};

#[derive(Parser, Debug)]
#[command(
    name = "parachute",
    version,
    about = "Parachute: a personal AI computer — Claude agents on your vault"
)]
pub struct Cli {
    /// The vault folder (beats VAULT_PATH, .env and $PARACHUTE_HOME/config.yaml).
    #[arg(long, global = true, value_name = "PATH")]
    pub vault: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server: `-f` in the foreground, or manage the background daemon. Bare
    /// `parachute server` starts the daemon (as `server start`) and creates the vault
    /// (default ~/Parachute) if it does not exist yet.
    Server(ServerArgs),
    /// Show the vault, token, daemon and server health.
    Status,
    /// Check the installation: vault, config, port, database, Claude CLI, token, Docker, disk, keychain.
    Doctor {
        /// Instead, report risky settings: auth off on a network bind, bots' groups at
        /// `full`, plaintext secrets, CLI settings that reach every agent, API keys unused
        /// for 90 days, a missing OS sandbox or Docker that sessions ask for.
        #[arg(long)]
        security: bool,
    },
    /// Show, get or set settings.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Print the daemon's log (and follow it).
    Logs {
        /// Print and exit instead of following.
        #[arg(long)]
        no_follow: bool,
        /// Lines to show first.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
    },
    /// Set this machine up: create or adopt the vault (and remember it), store the Claude
    /// credential if none is set, check the Claude CLI, start the background daemon, and
    /// print what to do next. Safe to run again.
    Install {
        /// Do not install or start the background daemon.
        #[arg(long)]
        no_daemon: bool,
    },
    /// Rebuild and reinstall parachute from its source checkout (`cargo install --path`),
    /// then restart the daemon if it runs. Safe to run again.
    Update {
        /// The checkout to build (default: the one this binary was built from).
        #[arg(long, value_name = "PATH")]
        from: Option<PathBuf>,
        /// Fast-forward the checkout with `git pull --ff-only` first.
        #[arg(long)]
        pull: bool,
    },
    /// The Docker sandbox of trust level `sandboxed`: `status`, or `build` its image
    /// offline (a Debian root filesystem from this machine's mirror with the host's
    /// `claude`; needs mmdebstrap; nothing is pulled).
    Sandbox {
        #[command(subcommand)]
        action: SandboxAction,
    },
    /// The Telegram and Discord connectors of the running server: status, start, stop,
    /// test, pending pairing requests, approve, deny, allowlists.
    Bot {
        #[command(subcommand)]
        action: BotAction,
    },
    /// The vault's modules (`{vault}/.modules/`): list them, show one (what it provides
    /// and asks for, what changed), approve a new or changed one. Works on the vault
    /// directly; a running server sees an approval at once.
    Module {
        #[command(subcommand)]
        action: ModuleAction,
    },
    /// The running server's scheduled agents (`Daily/.agents/` and approved modules):
    /// list them, run one now, show the run history, resume one paused after failures.
    Agents {
        #[command(subcommand)]
        action: AgentsAction,
    },
    /// Serve Parachute's MCP server (sessions, tags, journals, Brain, notes) on standard
    /// input and output, for an MCP client on this machine. A running server offers the
    /// same tools over HTTP at `/mcp`.
    Mcp {
        /// The confinement of the client: `full` (every tool), `vault` (no session
        /// database tools) or `sandboxed` (none).
        #[arg(long, default_value = "full", value_name = "LEVEL")]
        trust: String,
    },
    /// Store the Claude credential: an OAuth token from `claude setup-token` (sk-ant-oat…)
    /// or an Anthropic API key (sk-ant-api…), read from standard input or a hidden
    /// prompt, never from arguments. The kind is recognised and stored under its own name.
    SetupToken {
        /// Store a value that looks like neither kind (as an OAuth token).
        #[arg(long)]
        force: bool,
    },
}

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Run in the foreground, logging to stderr.
    #[arg(short = 'f', long)]
    pub foreground: bool,
    /// Port to listen on.
    #[arg(long, global = true)]
    pub port: Option<u16>,
    /// Address to bind.
    #[arg(long, global = true)]
    pub host: Option<String>,
    /// Log to rotating files under $PARACHUTE_HOME/logs (used by the daemon).
    #[arg(long, hide = true)]
    pub log_to_file: bool,
    #[command(subcommand)]
    pub action: Option<DaemonAction>,
}

#[derive(Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonAction {
    /// Start the daemon (systemd user unit where systemd runs, else a PID file).
    Start,
    /// Stop the daemon.
    Stop,
    /// Stop, then start the daemon.
    Restart,
    /// Is the daemon running and healthy?
    Status,
}

#[derive(Subcommand, Debug)]
pub enum AgentsAction {
    /// Every agent: schedule, time zone, trust level, next run or why it does not run.
    List,
    /// Run an agent now and wait for it to end.
    Run { name: String },
    /// The run history, newest first.
    Runs {
        /// Only this agent's runs.
        #[arg(long)]
        agent: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Resume an agent paused after repeated failures.
    Resume { name: String },
}

#[derive(Subcommand, Debug)]
pub enum BotAction {
    /// Each connector: enabled, running, token set, allowlist size, restarts, last error.
    Status,
    /// Start a connector (`telegram`).
    Start { platform: String },
    /// Stop a connector.
    Stop { platform: String },
    /// Check a connector's token with its platform.
    Test { platform: String },
    /// Pending pairing requests.
    Pairing,
    /// Approve a pairing request; the user is told and may chat.
    Approve {
        /// The request id (from `parachute bot pairing`).
        id: String,
        /// Trust level: full, vault or sandboxed.
        #[arg(long, default_value = "vault")]
        trust: String,
    },
    /// Deny a pairing request.
    Deny { id: String },
    /// The allowlists.
    Users,
}

#[derive(Subcommand, Debug)]
pub enum ModuleAction {
    /// Every module: status, version, trust level, hash.
    List,
    /// One module in full: what it provides and asks for, and what changed since its
    /// last approval.
    Status { name: String },
    /// Approve a module as it is now (it is enabled at once).
    Approve {
        name: String,
        /// Approve at this level (full, vault or sandboxed); default: the level it asks
        /// for, which is also the highest allowed.
        #[arg(long)]
        trust: Option<String>,
    },
}

#[derive(Subcommand, Debug, Clone, Copy)]
pub enum SandboxAction {
    /// Does the Docker engine answer, and is the image there?
    Status,
    /// Build the sandbox image offline.
    Build,
}

#[derive(Subcommand, Debug)]
pub enum ConfigAction {
    /// Every setting with its value and where it came from.
    Show,
    /// One setting's value.
    Get { key: String },
    /// Store a setting in {vault}/.parachute/config.yaml (vault_path: in $PARACHUTE_HOME/config.yaml).
    Set { key: String, value: String },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The settings `status` and `doctor` describe, and a phrase saying why that vault:
/// `--vault` or `VAULT_PATH` when given; else the vault of the server running from this
/// `PARACHUTE_HOME` (its `server.json`), when that differs from the configured one; else
/// the configured vault.
fn described_settings(ov: &Overrides) -> anyhow::Result<(Settings, String)> {
    use parachute_core::config::Source;
    let s = Settings::load(ov)?;
    let source = s.paths.vault_source;
    if matches!(source, Source::Flag | Source::Env) {
        return Ok((s, vault_origin(source).to_string()));
    }
    if let Some(info) = daemon::running_server(&s) {
        let running = PathBuf::from(&info.vault);
        if running != s.paths.vault {
            let ov = Overrides {
                vault: Some(running),
                ..ov.clone()
            };
            let why = format!(
                "served by the running server (pid {}); the configured vault is {}",
                info.pid,
                s.paths.vault.display()
            );
            return Ok((Settings::load(&ov)?, why));
        }
        return Ok((
            s,
            format!("served by the running server (pid {})", info.pid),
        ));
    }
    Ok((s, format!("{}; no server is running", vault_origin(source))))
}

fn vault_origin(source: parachute_core::config::Source) -> &'static str {
    use parachute_core::config::Source;
    match source {
        Source::Flag => "given by --vault",
        Source::Env => "given by VAULT_PATH",
        Source::DotEnv => "given by VAULT_PATH in ./.env",
        Source::HomeConfig | Source::VaultConfig => "vault_path in $PARACHUTE_HOME/config.yaml",
        Source::Default | Source::ConfigSet => "the default vault",
    }
}

fn overrides(cli: &Cli) -> Overrides {
    let (port, host) = match &cli.command {
        Command::Server(a) => (a.port, a.host.clone()),
        _ => (None, None),
    };
    Overrides {
        vault: cli.vault.clone(),
        port,
        host,
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ov = overrides(&cli);
    match cli.command {
        Command::Server(args) if args.foreground => {
            let settings = Settings::load(&ov)?;
            let dir = settings.paths.logs_dir();
            if args.log_to_file {
                std::fs::create_dir_all(&dir)?;
            }
            let _guard = parachute_core::logging::init(
                &settings.log_level,
                args.log_to_file.then_some(dir.as_path()),
            );
            parachute_api::server::serve(settings).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Server(args) => daemon::run(&ov, args.action).await,
        Command::Status => status::run(&ov).await,
        Command::Doctor { security: false } => doctor::run(&ov).await,
        Command::Doctor { security: true } => doctor_security::run(&ov).await,
        Command::Config { action } => config_cmd::run(&ov, action),
        Command::Logs { no_follow, lines } => logs::run(&ov, !no_follow, lines).await,
        Command::SetupToken { force } => token::run(force).await,
        Command::Bot { action } => bot::run(&ov, action).await,
        Command::Module { action } => module::run(&ov, action),
        Command::Mcp { trust } => mcp::run(&ov, &trust).await,
        Command::Agents { action } => agents::run(&ov, action).await,
        Command::Sandbox { action } => match action {
            SandboxAction::Status => sandbox::status(&ov).await,
            SandboxAction::Build => sandbox::build(&ov).await,
        },
        Command::Install { no_daemon } => {
            install::run(&ov, install::InstallOptions { no_daemon }).await
        }
        Command::Update { from, pull } => {
            update::run(&ov, update::UpdateOptions { from, pull }).await
        }
    }
}
