//! Voice and audio messages: downloaded from Telegram, converted to 16 kHz mono WAV by
//! ffmpeg, transcribed by an OpenAI-compatible `/v1/audio/transcriptions` service
//! (`transcription_url`, `transcription_model`, key in the secrets store as
//! `TRANSCRIPTION_API_KEY`), then handled as the user's text.

use std::path::Path;
use std::time::Duration;

use teloxide_core::net::Download;
use teloxide_core::prelude::*;
use teloxide_core::types::FileId;

/// Largest voice file fetched (the Bot API serves at most 20 MB).
const MAX_BYTES: u32 = 20 * 1024 * 1024;
/// Longest ffmpeg and the transcription service may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);

/// Where and how to transcribe.
pub struct Transcriber {
    /// The service's base URL (with or without `/v1`).
    pub url: String,
    /// The model name.
    pub model: String,
    /// The service's key, if it needs one.
    pub key: Option<String>,
}

fn endpoint(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1") {
        format!("{base}/audio/transcriptions")
    } else {
        format!("{base}/v1/audio/transcriptions")
    }
}

/// Downloads `file_id`, converts it and returns the transcript.
pub async fn transcribe(bot: &Bot, file_id: FileId, t: &Transcriber) -> Result<String, String> {
    let file = bot
        .get_file(file_id)
        .await
        .map_err(|e| format!("cannot fetch the voice message: {e}"))?;
    if file.meta.size > MAX_BYTES {
        return Err("the voice message is larger than 20 MB".into());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let input = dir.path().join("voice.ogg");
    let output = dir.path().join("voice.wav");
    {
        let mut f = tokio::fs::File::create(&input)
            .await
            .map_err(|e| e.to_string())?;
        bot.download_file(&file.path, &mut f)
            .await
            .map_err(|e| format!("cannot download the voice message: {e}"))?;
    }
    to_wav(&input, &output).await?;
    let wav = tokio::fs::read(&output).await.map_err(|e| e.to_string())?;
    let form = reqwest::multipart::Form::new()
        .text("model", t.model.clone())
        .part(
            "file",
            reqwest::multipart::Part::bytes(wav)
                .file_name("voice.wav")
                .mime_str("audio/wav")
                .map_err(|e| e.to_string())?,
        );
    let mut req = reqwest::Client::new()
        .post(endpoint(&t.url))
        .multipart(form)
        .timeout(STEP_TIMEOUT);
    if let Some(k) = &t.key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await.map_err(|e| {
        format!(
            "the transcription service did not answer: {}",
            e.without_url()
        )
    })?;
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("the transcription service answered {status}"));
    }
    match body["text"].as_str().map(str::trim) {
        Some(t) if !t.is_empty() => Ok(t.to_string()),
        _ => Err("the transcription was empty".into()),
    }
}

/// ffmpeg: any audio → 16 kHz mono WAV.
async fn to_wav(input: &Path, output: &Path) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(input)
        .args(["-ar", "16000", "-ac", "1", "-f", "wav"])
        .arg(output)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(STEP_TIMEOUT, cmd.output())
        .await
        .map_err(|_| "ffmpeg took too long".to_string())?
        .map_err(|e| format!("ffmpeg cannot run ({e}); install ffmpeg for voice messages"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "ffmpeg could not convert the voice message: {}",
            err.trim().chars().take(300).collect::<String>()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_endpoint_is_found_with_or_without_v1() {
        assert_eq!(
            super::endpoint("http://h:1"),
            "http://h:1/v1/audio/transcriptions"
        );
        assert_eq!(
            super::endpoint("http://h:1/v1/"),
            "http://h:1/v1/audio/transcriptions"
        );
    }
}
