//! Benchmark of the extensions: the Brain index at 10,000 entities and the module tree
//! hash of a 50 MB module.
//!
//! - Brain: 10,000 entity files written to a fresh vault; the time of the first index
//!   build (every file read and indexed in the store's SQLite FTS5 table); then 500
//!   searches of one or two words (p50/p99), once with the index fresh (checked less
//!   than a second ago) and once forcing the check of every file's size and time before
//!   each query (what a query pays at most once a second); and the time to notice one
//!   changed file among the 10,000.
//! - Modules: a 50 MB module of 200 files; the time to hash its whole tree cold (first
//!   read), and the time of the cheap check that finds it unchanged (metadata only).
//!
//! - Hooks: the cost of firing an event no hook listens to, and of one blocking hook (a
//!   shell script that exits at once) from the fire to its end (p50/p99 over 200).
//!
//! Figures are printed and written to `target/bench-extensions.json`. Nothing is
//! asserted. Run with `cargo bench --bench extensions`.

#![allow(clippy::unwrap_used, clippy::too_many_lines)]

mod common;
use common::{ms, percentile, progress, report_path};

use std::time::{Duration, Instant};

use anyhow::Result;
use parachute_core::db::Store;
use parachute_extensions::{Brain, Modules};
use serde_json::json;

const ENTITIES: usize = 10_000;
const QUERIES: usize = 500;
const WORDS: [&str; 12] = [
    "river", "falcon", "garden", "copper", "lantern", "meadow", "harbor", "violet", "summit",
    "cedar", "ember", "quartz",
];

fn entity(i: usize) -> String {
    let a = WORDS[i % WORDS.len()];
    let b = WORDS[(i / 12) % WORDS.len()];
    format!(
        "---\npara_id: e-{i}\nname: {a} {b} {i}\ntags: [{b}, t{}]\n---\n# {a} {b}\n\nNotes about {a} and the {b} near item {i}. {}\n",
        i % 50,
        "Some body text that makes the file look like a real note. ".repeat(8)
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("extensions: skipped (run it with `cargo bench --bench extensions`)");
        return Ok(());
    }
    let tmp = tempfile::tempdir()?;
    let vault = tmp.path().join("vault");
    let entities = vault.join("Brain/entities");
    progress(&format!("writing {ENTITIES} entities"));
    for i in 0..ENTITIES {
        let dir = entities.join(format!("group-{}", i % 100));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("e{i}.md")), entity(i))?;
    }
    let store = Store::open(&tmp.path().join("sessions.db")).await?;
    let brain = Brain::new(store.clone(), vault.clone());

    let t = Instant::now();
    let count = brain.reload().await?;
    let build = t.elapsed();
    progress(&format!("indexed {count} in {:.0} ms", ms(build)));

    let queries: Vec<String> = (0..QUERIES)
        .map(|i| {
            if i % 2 == 0 {
                WORDS[i % WORDS.len()].to_string()
            } else {
                format!(
                    "{} {}",
                    WORDS[i % WORDS.len()],
                    &WORDS[(i / 3) % WORDS.len()][..3]
                )
            }
        })
        .collect();
    let mut fresh = Vec::new();
    for q in &queries {
        brain.ensure_fresh().await?;
        let t = Instant::now();
        let r = brain.search(q, 20).await?;
        fresh.push(t.elapsed());
        assert!(!r.is_empty());
    }
    fresh.sort();
    let mut checked = Vec::new();
    for q in queries.iter().take(100) {
        tokio::time::sleep(parachute_extensions::brain::FRESH_FOR + Duration::from_millis(5)).await;
        let t = Instant::now();
        brain.search(q, 20).await?;
        checked.push(t.elapsed());
    }
    checked.sort();

    tokio::time::sleep(parachute_extensions::brain::FRESH_FOR).await;
    std::fs::write(
        entities.join("group-7/e7.md"),
        entity(7).replace("Notes about", "Changed notes about zebra"),
    )?;
    let t = Instant::now();
    let r = brain.search("zebra", 5).await?;
    let notice = t.elapsed();
    assert_eq!(r.len(), 1);

    progress("hashing a 50 MB module");
    let modules_dir = tmp.path().join("modules");
    let m = modules_dir.join("big");
    std::fs::create_dir_all(m.join("data"))?;
    std::fs::write(m.join("manifest.yaml"), "name: big\n")?;
    let chunk: Vec<u8> = (0..262_144u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for i in 0..200 {
        std::fs::write(m.join(format!("data/blob-{i}.bin")), &chunk)?;
    }
    let modules = Modules::new(modules_dir, tmp.path().join("module_hashes.json"));
    let t = Instant::now();
    let view = modules.get("big")?;
    let hash_time = t.elapsed();
    let t = Instant::now();
    let again = modules.get("big")?;
    let check_time = t.elapsed();
    assert_eq!(view.current_hash, again.current_hash);
    let size_mb = view.size as f64 / 1_048_576.0;

    progress("firing hook events");
    let (idle_fire, hook_fire) = hooks_dispatch(tmp.path()).await?;

    let report = json!({
        "hooks": {
            "fire_no_listener_p50_ms": ms(percentile(&idle_fire, 50.0)),
            "fire_no_listener_p99_ms": ms(percentile(&idle_fire, 99.0)),
            "one_blocking_hook_p50_ms": ms(percentile(&hook_fire, 50.0)),
            "one_blocking_hook_p99_ms": ms(percentile(&hook_fire, 99.0)),
        },
        "brain": {
            "entities": count,
            "index_build_ms": ms(build),
            "search_fresh_p50_ms": ms(percentile(&fresh, 50.0)),
            "search_fresh_p99_ms": ms(percentile(&fresh, 99.0)),
            "search_with_check_p50_ms": ms(percentile(&checked, 50.0)),
            "search_with_check_p99_ms": ms(percentile(&checked, 99.0)),
            "one_changed_file_noticed_ms": ms(notice),
        },
        "modules": {
            "module_mb": size_mb,
            "tree_hash_ms": ms(hash_time),
            "unchanged_check_ms": ms(check_time),
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    std::fs::write(
        report_path("bench-extensions.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    store.close().await;
    Ok(())
}

/// Fires 200 events nobody listens to and 200 with one blocking hook; both sorted.
async fn hooks_dispatch(base: &std::path::Path) -> Result<(Vec<Duration>, Vec<Duration>)> {
    use parachute_core::notify::EventListener;
    use std::os::unix::fs::PermissionsExt;
    let vault = base.join("hook-vault");
    let home = base.join("hook-home");
    let hooks_dir = vault.join(".parachute/hooks");
    std::fs::create_dir_all(&hooks_dir)?;
    std::fs::create_dir_all(&home)?;
    let script = hooks_dir.join("done.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n")?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    std::fs::write(
        hooks_dir.join("done.yaml"),
        "events: [message.sent]\nblocking: true\n",
    )?;
    let settings = std::sync::Arc::new(parachute_core::config::Settings::for_paths(vault, home)?);
    let modules = std::sync::Arc::new(Modules::for_paths(&settings.paths));
    let hooks = parachute_extensions::hooks::Hooks::new(settings, modules);
    let mut idle = Vec::new();
    let mut one = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        hooks.notify_blocking("session.created", json!({})).await;
        idle.push(t.elapsed());
        let t = Instant::now();
        hooks
            .notify_blocking("message.sent", json!({"session_id": "s"}))
            .await;
        one.push(t.elapsed());
    }
    assert!(hooks.errors().is_empty(), "{:?}", hooks.errors());
    idle.sort();
    one.sort();
    Ok((idle, one))
}
