//! `parachute logs [--no-follow] [-n N]`: the newest daemon log file, then follows it
//! (switching to the next file when the log rotates).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use parachute_core::config::{Overrides, Settings};
use parachute_core::logging::LOG_FILE_PREFIX;

fn newest_log(dir: &Path) -> Option<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(LOG_FILE_PREFIX))
        })
        .collect();
    files.sort();
    files.pop()
}

pub async fn run(ov: &Overrides, follow: bool, lines: usize) -> anyhow::Result<ExitCode> {
    let s = Settings::load(ov)?;
    let dir = s.paths.logs_dir();
    let Some(mut file) = newest_log(&dir) else {
        eprintln!(
            "no log files in {} yet (the daemon writes them; `server -f` logs to the terminal)",
            dir.display()
        );
        return Ok(if follow {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    };
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    for l in &all[all.len().saturating_sub(lines)..] {
        println!("{l}");
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut pos = text.len() as u64;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(newer) = newest_log(&dir).filter(|n| *n != file) {
            file = newer;
            pos = 0;
        }
        let Ok(mut f) = std::fs::File::open(&file) else {
            continue;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < pos {
            pos = 0;
        }
        if len > pos {
            f.seek(SeekFrom::Start(pos))?;
            let mut buf = String::new();
            f.read_to_string(&mut buf)?;
            print!("{buf}");
            pos = len;
        }
    }
}
