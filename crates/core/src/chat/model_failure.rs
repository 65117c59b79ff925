//! What a turn says when the model API fails: the CLI's failed `result` or a wait past
//! `model_timeout_secs`, each turned into one message that names what to check — the
//! network, `anthropic_base_url`, or the Claude credential.

use crate::agent::ApiRetry;

/// The model API the CLI talks to, as the messages name it.
fn api_name(base_url: Option<&str>) -> String {
    match base_url {
        Some(u) => format!("the model API at {u} (anthropic_base_url)"),
        None => {
            "the model API (api.anthropic.com; set anthropic_base_url to use another)".to_string()
        }
    }
}

/// What to check for a failure with this HTTP status (`None`: no answer at all).
fn what_to_check(status: Option<u64>, base_url: Option<&str>) -> String {
    match status {
        Some(401 | 403) => "Check the Claude credential: `parachute status` shows which one is \
                            used; store a new one with `parachute setup-token`."
            .to_string(),
        Some(429) => "The account's rate limit or quota is used up; try again later.".to_string(),
        Some(s) if s >= 500 => format!("{} is failing; try again later.", api_name(base_url)),
        Some(_) => String::new(),
        None => format!(
            "Check the network and that {} is reachable.",
            api_name(base_url)
        ),
    }
}

/// The error for a turn whose CLI ended with an error `result`: the CLI's own text, then
/// what to check.
pub fn failed_result(text: &str, status: Option<u64>, base_url: Option<&str>) -> String {
    let text = text.trim();
    let head = if text.is_empty() {
        "The model request failed".to_string()
    } else {
        text.to_string()
    };
    let hint = what_to_check(status, base_url);
    if hint.is_empty() {
        head
    } else {
        format!("{head}. {hint}")
    }
}

/// The error for a turn that waited `secs` seconds with no progress from the model.
pub fn timed_out(secs: u64, last_retry: Option<&ApiRetry>, base_url: Option<&str>) -> String {
    let mut msg = format!("No answer from {} within {secs} s", api_name(base_url));
    if let Some(r) = last_retry {
        let why = match (r.error_status, r.error.as_deref()) {
            (Some(s), Some(e)) => format!("HTTP {s}, {e}"),
            (Some(s), None) => format!("HTTP {s}"),
            (None, Some(e)) => e.to_string(),
            (None, None) => "no answer".to_string(),
        };
        msg += &format!(" ({} failed attempts; last: {why})", r.attempt);
    }
    let status = last_retry.and_then(|r| r.error_status);
    format!(
        "{msg}. {} The limit is model_timeout_secs.",
        what_to_check(status, base_url)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_what_to_check() {
        let auth = failed_result("Invalid API key · Fix external API key", Some(401), None);
        assert!(auth.starts_with("Invalid API key"), "{auth}");
        assert!(auth.contains("parachute setup-token"), "{auth}");
        let down = failed_result("API Error: 500 boom", Some(500), Some("http://127.0.0.1:9"));
        assert!(down.contains("http://127.0.0.1:9"), "{down}");
        assert_eq!(
            failed_result("Prompt is too long", Some(400), None),
            "Prompt is too long"
        );
        assert_eq!(
            failed_result("", Some(400), None),
            "The model request failed"
        );
    }

    #[test]
    fn a_timeout_says_how_long_what_failed_and_the_setting() {
        let r = ApiRetry {
            attempt: 3,
            max_retries: 10,
            retry_delay_ms: 2000,
            error_status: None,
            error: Some("connection_error".into()),
        };
        let m = timed_out(90, Some(&r), Some("http://10.0.0.1"));
        assert!(m.contains("within 90 s"), "{m}");
        assert!(
            m.contains("3 failed attempts; last: connection_error"),
            "{m}"
        );
        assert!(
            m.contains("Check the network") && m.contains("http://10.0.0.1"),
            "{m}"
        );
        assert!(m.contains("model_timeout_secs"), "{m}");
        let plain = timed_out(5, None, None);
        assert!(plain.contains("api.anthropic.com"), "{plain}");
    }
}
