//! `parachute sandbox status|build`: whether sessions at trust level `sandboxed` can run
//! here, and building their image offline — a Debian root filesystem from this
//! machine's mirror plus the host's `claude` binary, `docker import`ed; nothing pulled.

use std::process::ExitCode;

use parachute_core::config::{Overrides, Settings};

pub async fn status(ov: &Overrides) -> anyhow::Result<ExitCode> {
    let s = Settings::load(ov)?;
    let st = parachute_sandbox::engine::status(&s.sandbox_image).await;
    let (available, exists) = (st.available, st.image_exists);
    println!(
        "docker: {}",
        if available {
            "answers"
        } else {
            "not available"
        }
    );
    println!(
        "image:  {} ({})",
        s.sandbox_image,
        if exists {
            "present"
        } else {
            "missing: run `parachute sandbox build`"
        }
    );
    Ok(if available && exists {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

pub async fn build(ov: &Overrides) -> anyhow::Result<ExitCode> {
    let s = Settings::load(ov)?;
    let docker = parachute_sandbox::engine::connect()?;
    let mut progress = |line: String| println!("{line}");
    match parachute_sandbox::image::build_offline(
        &docker,
        &s.sandbox_image,
        &s.claude_cli_path,
        &mut progress,
    )
    .await
    {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
