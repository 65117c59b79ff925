//! The command line: settings precedence and validation, the vault order, the daemon
//! (PID-file manager), logs and doctor.

use std::time::Duration;

use crate::support::{free_port, Dirs};

fn run(d: &Dirs, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = d.cmd();
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_set_get_show_and_precedence() {
    let d = Dirs::new();
    let (code, _, err) = run(&d, &["config", "set", "port", "4555"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read_to_string(d.vault.join(".parachute/config.yaml"))
            .unwrap()
            .contains("port: 4555")
    );
    assert_eq!(run(&d, &["config", "get", "port"], &[]).1.trim(), "4555");
    // Environment beats config.yaml.
    assert_eq!(
        run(&d, &["config", "get", "port"], &[("PORT", "4666")])
            .1
            .trim(),
        "4666"
    );
    // .env in the working directory sits between them.
    std::fs::write(d.tmp.path().join(".env"), "PORT=4777\n").unwrap();
    assert_eq!(run(&d, &["config", "get", "port"], &[]).1.trim(), "4777");
    assert_eq!(
        run(&d, &["config", "get", "port"], &[("PORT", "4666")])
            .1
            .trim(),
        "4666"
    );
    let (_, show, _) = run(&d, &["config", "show"], &[]);
    assert!(
        show.contains("port") && show.contains("4777") && show.contains(".env"),
        "{show}"
    );

    let (code, _, err) = run(&d, &["config", "set", "token", "sk-ant-x"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("secret"), "{err}");
    let (code, _, err) = run(&d, &["config", "set", "port", "http"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("port"), "{err}");
    let (code, _, err) = run(&d, &["config", "set", "colour", "blue"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown setting"), "{err}");
}

#[test]
fn invalid_and_unknown_config_keys_are_reported_by_name() {
    let d = Dirs::new();
    std::fs::create_dir_all(d.vault.join(".parachute")).unwrap();
    std::fs::write(
        d.vault.join(".parachute/config.yaml"),
        "port: 3333\nfavourite_colour: blue\n",
    )
    .unwrap();
    let (code, _, err) = run(&d, &["config", "show"], &[]);
    assert_eq!(code, 0);
    assert!(
        err.contains("favourite_colour"),
        "unknown key warned: {err}"
    );
    std::fs::write(
        d.vault.join(".parachute/config.yaml"),
        "auth_mode: sometimes\n",
    )
    .unwrap();
    let (code, _, err) = run(
        &d,
        &["server", "-f", "--port", &free_port().to_string()],
        &[],
    );
    assert_ne!(code, 0);
    assert!(err.contains("auth_mode"), "{err}");
    std::fs::write(d.vault.join(".parachute/config.yaml"), "port: [unclosed\n").unwrap();
    let (code, _, err) = run(&d, &["config", "show"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("config.yaml"), "{err}");
}

#[test]
fn config_set_validates_like_the_server_and_repairs_a_broken_file() {
    let d = Dirs::new();
    // Every key is checked by the parser the server runs, not only a few.
    for (key, bad) in [
        ("warm_idle_secs", "abc"),
        ("sse_heartbeat_secs", "0"),
        ("max_cli_processes", "0"),
        ("log_level", "parachute=loud"),
    ] {
        let (code, _, err) = run(&d, &["config", "set", key, bad], &[]);
        assert_ne!(code, 0, "{key}={bad} accepted");
        assert!(err.contains(key), "{err}");
    }
    assert!(!d.vault.join(".parachute/config.yaml").exists());
    // A file broken by hand: reading commands say which key and how to fix it…
    std::fs::create_dir_all(d.vault.join(".parachute")).unwrap();
    std::fs::write(
        d.vault.join(".parachute/config.yaml"),
        "warm_idle_secs: abc\n",
    )
    .unwrap();
    let (code, _, err) = run(&d, &["config", "show"], &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("warm_idle_secs") && err.contains("config set"),
        "{err}"
    );
    // …and `config set` still runs, and repairs it.
    let (code, _, err) = run(&d, &["config", "set", "warm_idle_secs", "60"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        run(&d, &["config", "get", "warm_idle_secs"], &[]).1.trim(),
        "60"
    );
}

#[test]
fn vault_resolution_order() {
    let d = Dirs::new();
    let other = d.tmp.path().join("other-vault");
    let third = d.tmp.path().join("third-vault");
    std::fs::write(
        d.home.join("config.yaml"),
        format!("vault_path: {}\n", third.display()),
    )
    .unwrap();
    let mut c = std::process::Command::new(crate::support::BIN);
    c.env("PARACHUTE_HOME", &d.home)
        .env_remove("VAULT_PATH")
        .current_dir(d.tmp.path())
        .args(["config", "get", "vault_path"]);
    assert_eq!(
        String::from_utf8_lossy(&c.output().unwrap().stdout).trim(),
        third.display().to_string()
    );
    c.env("VAULT_PATH", &other);
    assert_eq!(
        String::from_utf8_lossy(&c.output().unwrap().stdout).trim(),
        other.display().to_string()
    );
    // --vault beats VAULT_PATH, on every subcommand.
    let (_, out, _) = run(
        &d,
        &["config", "get", "vault_path"],
        &[("VAULT_PATH", other.to_str().unwrap())],
    );
    assert_eq!(out.trim(), d.vault.display().to_string());
}

#[test]
fn daemon_start_status_logs_stop_with_a_pid_file() {
    let d = Dirs::new();
    let port = free_port().to_string();
    let env = [("PARACHUTE_DAEMON", "pidfile")];
    let (code, out, err) = run(
        &d,
        &["server", "start", "--port", &port, "--host", "127.0.0.1"],
        &env,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("started"), "{out}");
    let pid: i32 = std::fs::read_to_string(d.home.join("parachute.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        parachute_core::util::sys::pid_alive(pid as u32),
        "daemon alive"
    );
    let (code, out, _) = run(&d, &["server", "status"], &env);
    assert_eq!(code, 0);
    assert!(out.contains("running") && out.contains("healthy"), "{out}");
    let (code, out, _) = run(&d, &["status"], &env);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("server: running"), "{out}");
    let (_, again, _) = run(&d, &["server", "start", "--port", &port], &env);
    assert!(again.contains("already running"), "{again}");
    // The daemon logs to files under PARACHUTE_HOME/logs.
    let mut logs = String::new();
    let logged = crate::support::wait_until_blocking(Duration::from_secs(5), || {
        let (code, out, _) = run(&d, &["logs", "--no-follow", "-n", "20"], &env);
        logs = out;
        code == 0 && logs.contains("listening")
    });
    assert!(logged, "{logs}");

    let (code, out, _) = run(&d, &["server", "stop"], &env);
    assert_eq!(code, 0);
    assert!(out.contains("stopped"), "{out}");
    assert!(
        !parachute_core::util::sys::pid_alive(pid as u32),
        "daemon gone"
    );
    assert!(!d.home.join("parachute.pid").exists());
    assert!(
        !d.home.join("server.json").exists(),
        "clean shutdown removes the runtime file"
    );
    let (code, out, _) = run(&d, &["server", "status"], &env);
    assert_eq!(code, 3);
    assert!(out.contains("not running"));
}

#[test]
fn doctor_reports_each_check() {
    let d = Dirs::new();
    let (_, out, _) = run(&d, &["doctor"], &[]);
    for what in [
        "config",
        "vault",
        "port",
        "database",
        "claude CLI",
        "token",
        "OS sandbox",
        "docker",
        "disk",
        "keychain",
    ] {
        assert!(
            out.contains(&format!("] {what}:")),
            "{what} missing:\n{out}"
        );
    }
    assert!(out.contains("[PASS] vault"), "{out}");
    // bubblewrap is installed with the test dependencies: the sandbox check passes.
    assert!(out.contains("[PASS] OS sandbox: bubblewrap works"), "{out}");
}

#[test]
fn config_errors_suggest_the_key_and_blame_the_command() {
    let d = Dirs::new();
    let (code, _, err) = run(&d, &["config", "set", "prot", "4555"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("did you mean `port`?"), "{err}");
    let (code, _, err) = run(&d, &["config", "get", "warm_pool_sise"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("did you mean `warm_pool_size`?"), "{err}");
    let (code, _, err) = run(&d, &["config", "set", "port", "abc"], &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("`parachute config set`") && !err.contains("command-line flag"),
        "{err}"
    );
    let (code, _, err) = run(&d, &["config", "set", "model_timeout_secs", "0"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("model_timeout_secs"), "{err}");
    // A misspelt key in config.yaml is a warning with the suggestion, not a failure.
    std::fs::create_dir_all(d.vault.join(".parachute")).unwrap();
    std::fs::write(
        d.vault.join(".parachute/config.yaml"),
        "warm_idel_secs: 5\n",
    )
    .unwrap();
    let (code, _, err) = run(&d, &["config", "show"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("did you mean `warm_idle_secs`?"), "{err}");

    // Long values cannot break the columns: the value comes last.
    let long = format!("http://127.0.0.1:9/{}", "x".repeat(80));
    let (code, _, err) = run(&d, &["config", "set", "anthropic_base_url", &long], &[]);
    assert_eq!(code, 0, "{err}");
    let (_, show, _) = run(&d, &["config", "show"], &[]);
    let rows: Vec<&str> = show.lines().skip_while(|l| !l.starts_with("KEY")).collect();
    let from_col = rows[0].find("FROM").unwrap();
    let value_col = rows[0].find("VALUE").unwrap();
    for r in &rows[1..] {
        assert!(
            r[from_col..].starts_with(|c: char| c != ' ') && r[from_col - 1..].starts_with(' '),
            "FROM column out of line: {r}\n{show}"
        );
        assert!(r.len() >= value_col, "{r}");
    }
    assert!(rows.iter().any(|r| r.ends_with(&long)), "{show}");
}

/// A `parachute` command that names no vault: it finds one the way a user's shell would.
fn bare_cmd(d: &Dirs, fake_home: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(crate::support::BIN);
    c.env("PARACHUTE_HOME", &d.home)
        .env("HOME", fake_home)
        .env("PARACHUTE_KEYRING", "off")
        .env_remove("VAULT_PATH")
        .env_remove("CLAUDE_CODE_OAUTH_TOKEN")
        .env_remove("ANTHROPIC_API_KEY")
        .current_dir(d.tmp.path());
    c
}

fn output(mut c: std::process::Command, args: &[&str]) -> (i32, String) {
    let out = c.args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn status_and_doctor_describe_the_vault_the_running_server_serves() {
    let d = Dirs::new();
    let fake_home = d.tmp.path().join("user-home");
    std::fs::create_dir_all(&fake_home).unwrap();
    // A fresh machine: the default vault does not exist yet — a note, not a failure —
    // and with the keychain off, doctor says so instead of reporting a D-Bus error.
    let (code, out) = output(bare_cmd(&d, &fake_home), &["doctor"]);
    assert!(
        out.contains("[NOTE] vault:") && out.contains("creates it on first start"),
        "{out}"
    );
    assert!(
        out.contains("[NOTE] keychain: off (PARACHUTE_KEYRING=off)"),
        "{out}"
    );
    assert!(
        !out.contains("D-Bus") && !out.contains("[FAIL] vault"),
        "{out}"
    );
    assert!(
        out.contains("the default vault; no server is running"),
        "{out}"
    );
    let _ = code;

    let mut s = crate::support::Server::start(&d).await;
    let vault = d.vault.display().to_string();
    let (code, out) = output(bare_cmd(&d, &fake_home), &["status"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "vault:  {vault} (ok) — served by the running server (pid {})",
            s.pid()
        )),
        "{out}"
    );
    assert!(out.contains(&format!("serving {vault}")), "{out}");
    let (_, out) = output(bare_cmd(&d, &fake_home), &["doctor"]);
    assert!(
        out.contains(&format!(
            "Checking vault {vault} (served by the running server"
        )),
        "{out}"
    );
    assert!(out.contains("[PASS] vault:"), "{out}");
    let (code, out) = output(bare_cmd(&d, &fake_home), &["server", "status"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("a foreground server (`parachute server -f`)"),
        "{out}"
    );
    // --vault still names the vault; the server line says it serves another one.
    let other = d.tmp.path().join("other-vault");
    std::fs::create_dir_all(&other).unwrap();
    let (_, out) = output(
        bare_cmd(&d, &fake_home),
        &["--vault", other.to_str().unwrap(), "status"],
    );
    assert!(out.contains("given by --vault"), "{out}");
    assert!(
        out.contains(&format!("serving another vault: {vault}")),
        "{out}"
    );
    s.stop().await;

    // The startup line names the URLs; a log that is not a terminal has no colour codes.
    let log = s.log_text();
    assert!(
        log.contains(&format!("docs=http://localhost:{}/api/docs", s.port)),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "ANSI codes in a non-terminal log");
    assert!(log.contains("no Claude credential"), "{log}");
}

#[test]
fn bare_server_says_it_starts_the_daemon_and_creates_the_vault() {
    let d = Dirs::new();
    let fake_home = d.tmp.path().join("user-home");
    let fresh = d.tmp.path().join("fresh-vault");
    let port = free_port().to_string();
    let vault = fresh.to_str().unwrap();
    let with_env = || {
        let mut c = bare_cmd(&d, &fake_home);
        c.env("PARACHUTE_DAEMON", "pidfile");
        c
    };
    let (code, said) = output(
        with_env(),
        &[
            "--vault",
            vault,
            "server",
            "--port",
            &port,
            "--host",
            "127.0.0.1",
        ],
    );
    let stopped = output(with_env(), &["--vault", vault, "server", "stop"]);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("Starting the background daemon"), "{said}");
    assert!(
        said.contains(&format!("Created the vault {vault}")),
        "{said}"
    );
    assert!(fresh.is_dir());
    assert_eq!(stopped.0, 0, "{stopped:?}");
    let help = output(with_env(), &["server", "--help"]).1;
    assert!(help.contains("starts the daemon"), "{help}");
}

#[test]
fn install_sets_up_a_fresh_machine_and_running_it_again_changes_nothing() {
    let d = Dirs::new();
    let fake_home = d.tmp.path().join("user-home");
    let vault = d.tmp.path().join("my-notes");
    std::fs::create_dir_all(vault.join("Daily")).unwrap();
    std::fs::write(vault.join("Daily/today.md"), "# Today\n").unwrap();
    let port = free_port().to_string();
    let cmd = || {
        let mut c = bare_cmd(&d, &fake_home);
        c.env("PARACHUTE_DAEMON", "pidfile").env("PORT", &port);
        c
    };
    let v = vault.to_str().unwrap();
    let (code, first) = output(cmd(), &["--vault", v, "install"]);
    let (code2, second) = output(cmd(), &["--vault", v, "install"]);
    // Later commands find the vault without --vault.
    let (_, status) = output(cmd(), &["status"]);
    let (_, stopped) = output(cmd(), &["server", "stop"]);
    assert_eq!(code, 0, "{first}");
    assert!(
        first.contains(&format!("adopted {v} (1 Markdown files)")),
        "{first}"
    );
    assert!(first.contains("remembered as vault_path"), "{first}");
    assert!(
        first.contains("none yet: run `parachute setup-token`"),
        "{first}"
    );
    assert!(first.contains("(Claude Code)"), "the CLI check: {first}");
    assert!(first.contains("parachute started"), "{first}");
    assert!(
        first.contains(&format!("http://localhost:{port}/api/docs")),
        "{first}"
    );
    assert_eq!(code2, 0, "{second}");
    assert!(!second.contains("remembered"), "{second}");
    assert!(second.contains("already running"), "{second}");
    assert!(status.contains(&format!("vault:  {v} (ok)")), "{status}");
    assert!(stopped.contains("stopped"), "{stopped}");
}

#[test]
fn update_reinstalls_from_the_checkout_and_restarts_the_daemon_on_the_new_build() {
    use std::os::unix::fs::PermissionsExt;
    let d = Dirs::new();
    let fake_home = d.tmp.path().join("user-home");
    let root = d.tmp.path().join("install-root");
    let calls = d.tmp.path().join("cargo-calls");
    // A stand-in for `cargo install` (a real release build takes minutes): it records
    // its arguments and installs this build's binary where cargo would.
    let cargo = d.tmp.path().join("fake-cargo");
    std::fs::write(
        &cargo,
        format!(
            "#!/bin/sh\necho \"$@\" >> {calls}\nmkdir -p \"$CARGO_INSTALL_ROOT/bin\"\ncp {bin} \"$CARGO_INSTALL_ROOT/bin/parachute\"\n",
            calls = calls.display(),
            bin = crate::support::BIN
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = free_port().to_string();
    let cmd = || {
        let mut c = bare_cmd(&d, &fake_home);
        c.env("PARACHUTE_DAEMON", "pidfile")
            .env("PORT", &port)
            .env("PARACHUTE_CARGO", &cargo)
            .env("CARGO_INSTALL_ROOT", &root)
            .args(["--vault", d.vault.to_str().unwrap()]);
        c
    };
    let (code, out) = output(cmd(), &["server", "start"]);
    assert_eq!(code, 0, "{out}");
    let old_pid = std::fs::read_to_string(d.home.join("parachute.pid")).unwrap();
    let checkout = env!("CARGO_MANIFEST_DIR");
    let (code, out) = output(cmd(), &["update", "--from", checkout]);
    let new_pid = std::fs::read_to_string(d.home.join("parachute.pid")).unwrap_or_default();
    let exe = std::fs::read_link(format!("/proc/{}/exe", new_pid.trim()));
    let (_, stopped) = output(cmd(), &["server", "stop"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap().trim(),
        format!("install --locked --path {checkout}")
    );
    assert!(
        out.contains("Restarting the server on the new build"),
        "{out}"
    );
    assert_ne!(old_pid.trim(), new_pid.trim(), "the daemon was restarted");
    assert_eq!(
        exe.unwrap(),
        root.join("bin/parachute"),
        "it runs the new build"
    );
    assert!(stopped.contains("stopped"), "{stopped}");
    // With nothing running, update only installs.
    let (code, out) = output(cmd(), &["update", "--from", checkout]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("No server is running"), "{out}");
}

#[test]
fn doctor_security_passes_a_fresh_install() {
    let d = Dirs::new();
    let (code, out, err) = run(&d, &["doctor", "--security"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    for what in [
        "auth",
        "API keys",
        "bots",
        "secrets",
        "CLI settings",
        "isolation",
    ] {
        assert!(out.contains(&format!("[PASS] {what}:")), "{what}:\n{out}");
    }
    assert!(!out.contains("[WARN]") && !out.contains("[FAIL]"), "{out}");
}

#[tokio::test]
async fn doctor_security_names_each_risky_setting() {
    let d = Dirs::new();
    let dot = d.vault.join(".parachute");
    std::fs::create_dir_all(&dot).unwrap();
    // Auth off on a network bind, and a key last used in January.
    std::fs::write(
        dot.join("server.yaml"),
        "security:\n  require_auth: disabled\n  api_keys:\n  - id: k_oldphone0001\n    label: old phone\n    key_hash: sha256:00\n    created_at: '2000-01-01T00:00:00.000000'\n    last_used_at: '2000-01-02T00:00:00.000000'\n",
    )
    .unwrap();
    // Groups at `full` and a token written into bots.yaml.
    std::fs::write(
        dot.join("bots.yaml"),
        "telegram:\n  enabled: true\n  bot_token: '123456:plaintext'\n  group_trust_level: full\n",
    )
    .unwrap();
    // A secrets file others can read, a token file inside the vault.
    let secrets = d.home.join("secrets.json");
    std::fs::write(&secrets, r#"{"anthropic_api_key":"sk-ant-api03-x"}"#).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(dot.join(".token"), "sk-ant-oat01-x").unwrap();
    // Hooks in the CLI's settings reach every agent.
    let claude = d.home.join("claude");
    std::fs::create_dir_all(&claude).unwrap();
    std::fs::write(claude.join("settings.json"), r#"{"hooks":{"Stop":[]}}"#).unwrap();
    // Sessions at `sandboxed` with no Docker to run them.
    crate::support::seed_sessions(&d, 2, |_, s| s.trust_level = Some("sandboxed".into())).await;

    let no_docker = format!("unix://{}/no-docker.sock", d.tmp.path().display());
    let (code, out, err) = run(
        &d,
        &["doctor", "--security"],
        // The default bind is every interface; said here for the reader.
        &[("HOST", "0.0.0.0"), ("DOCKER_HOST", &no_docker)],
    );
    assert_eq!(code, 1, "a failure exits 1:\n{out}{err}");
    for line in [
        "[FAIL] auth: auth_mode `disabled` with host 0.0.0.0",
        "[WARN] API keys: unused for 90+ days: k_oldphone0001 \"old phone\"",
        "[WARN] bots: telegram: group chats run at trust level `full`",
        "[WARN] bots: telegram: a bot token is written in bots.yaml",
        "[FAIL] secrets: ",
        "[WARN] secrets: ",
        "[WARN] CLI settings: ",
        "[WARN] isolation: 2 session(s) ask for `sandboxed`",
    ] {
        assert!(out.contains(line), "missing {line}:\n{out}");
    }
    assert!(out.contains("(mode 644)"), "{out}");
    assert!(
        !out.contains("123456:") && !out.contains("sk-ant"),
        "no secret is printed:\n{out}"
    );

    // Fixed: the file is private again; keychain off here, so it is only worth a note.
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_, out, _) = run(
        &d,
        &["doctor", "--security"],
        &[("HOST", "127.0.0.1"), ("DOCKER_HOST", &no_docker)],
    );
    assert!(
        out.contains("[NOTE] secrets: 1 secret(s) in the plaintext file"),
        "{out}"
    );
    assert!(
        out.contains("[WARN] auth: auth_mode `disabled`: every program"),
        "{out}"
    );
}
