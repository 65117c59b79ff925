//! The contract's timestamp formats: sessions are naive UTC
//! with a `Z`, API keys naive without zone.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// Now, as stored in the database and shown for sessions: `2026-11-22T08:28:25.683545Z`.
pub fn now_session() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Now, as shown for API keys: `2026-11-22T08:28:37.472453`.
pub fn now_naive() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// Normalises any stored timestamp (ours, or a Python-era `+00:00` one) to the session
/// format; unparseable text is passed through unchanged rather than lost.
pub fn to_session_format(stored: &str) -> String {
    if let Ok(dt) = DateTime::parse_from_rfc3339(stored) {
        return dt
            .with_timezone(&Utc)
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(stored, fmt) {
            return n.and_utc().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        }
    }
    stored.to_string()
}

/// RFC 3339 with offset, for logs and runtime files.
pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_era_timestamps_are_normalised() {
        assert_eq!(
            to_session_format("2026-02-09T18:06:07.123456+00:00"),
            "2026-02-09T18:06:07.123456Z"
        );
        assert_eq!(
            to_session_format("2026-02-09T18:06:07"),
            "2026-02-09T18:06:07.000000Z"
        );
        assert_eq!(to_session_format("garbage"), "garbage");
    }
}
