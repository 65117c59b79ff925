//! When an agent runs: `H:MM` (every day at that local time; the contract's form) or a
//! cron expression (5 fields, or 6 with seconds first), in an IANA time zone. The next
//! and previous occurrences are computed in that zone, so daylight-saving changes move
//! nothing: a time that does not exist on the day clocks spring forward runs at the
//! first instant after it, and one that exists twice when they fall back runs once.

use chrono::{DateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::parser::CronParser;
use croner::Cron;

/// An agent's schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// As written (`3:00`, `0 7 * * 1-5`).
    pub text: String,
    cron: Cron,
}

/// The machine's time zone (UTC when it cannot be told).
pub fn local_zone() -> Tz {
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(Tz::UTC)
}

/// `H:MM` → (hour, minute): hours past 23 wrap, as minutes past 59 do (the contract's
/// rule); `None` when it is not that shape.
pub fn parse_clock(s: &str) -> Option<(u32, u32)> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.trim().parse().ok()?, m.trim().parse().ok()?);
    Some((h % 24, m % 60))
}

impl Schedule {
    /// Parses `H:MM` or a cron expression.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        let expr = match parse_clock(text) {
            Some((h, m)) => format!("0 {m} {h} * * *"),
            None => text.to_string(),
        };
        let cron = CronParser::builder()
            .build()
            .parse(&expr)
            .map_err(|e| format!("'{text}' is neither H:MM nor a cron expression ({e})"))?;
        Ok(Schedule {
            text: text.to_string(),
            cron,
        })
    }

    /// The first occurrence strictly after `t`, in `tz` (whole seconds).
    pub fn next_after(&self, t: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let t = t.with_nanosecond(0)?;
        self.cron
            .find_next_occurrence(&tz.from_utc_datetime(&t.naive_utc()), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The last occurrence at or before `t`, in `tz` (whole seconds).
    pub fn last_at_or_before(&self, t: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let t = t.with_nanosecond(0)?;
        self.cron
            .find_previous_occurrence(&tz.from_utc_datetime(&t.naive_utc()), true)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn clock_times_wrap_and_cron_expressions_parse() {
        assert_eq!(parse_clock("3:00"), Some((3, 0)));
        assert_eq!(parse_clock("25:61"), Some((1, 1)));
        assert_eq!(parse_clock("x"), None);
        assert!(Schedule::parse("0 7 * * 1-5").is_ok());
        assert!(Schedule::parse("*/5 * * * * *").is_ok());
        assert!(Schedule::parse("every day").is_err());
    }

    #[test]
    fn next_run_in_a_zone_and_across_daylight_saving() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let s = Schedule::parse("7:30").unwrap();
        // Winter: UTC+1.
        assert_eq!(
            s.next_after(utc("2026-01-10T12:00:00Z"), berlin),
            Some(utc("2026-01-11T06:30:00Z"))
        );
        // Summer: UTC+2; the same local time is an hour earlier in UTC.
        assert_eq!(
            s.next_after(utc("2026-07-10T12:00:00Z"), berlin),
            Some(utc("2026-07-11T05:30:00Z"))
        );
        // Across the spring change (29 March 2026): 7:30 local on both sides.
        assert_eq!(
            s.next_after(utc("2026-03-28T12:00:00Z"), berlin),
            Some(utc("2026-03-29T05:30:00Z"))
        );
        // 2:30 does not exist on 29 March in Berlin: it runs once, at the first
        // instant after the gap (3:00 CEST = 01:00 UTC), then at 2:30 again next day.
        let gap = Schedule::parse("2:30").unwrap();
        let first = gap.next_after(utc("2026-03-28T12:00:00Z"), berlin).unwrap();
        assert_eq!(first, utc("2026-03-29T01:00:00Z"));
        assert_eq!(
            gap.next_after(first, berlin),
            Some(utc("2026-03-30T00:30:00Z"))
        );
        // 2:30 exists twice on 25 October 2026: it runs once.
        let first = gap.next_after(utc("2026-10-24T12:00:00Z"), berlin).unwrap();
        assert_eq!(first, utc("2026-10-25T00:30:00Z"));
        assert_eq!(
            gap.next_after(first, berlin),
            Some(utc("2026-10-26T01:30:00Z"))
        );
        // New York on the day its clocks fall back (1 November 2026: 12:00 UTC is 7:00
        // EST) and Tokyo (no daylight saving) see their own local times.
        let ny: Tz = "America/New_York".parse().unwrap();
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        assert_eq!(
            s.next_after(utc("2026-11-01T12:00:00Z"), ny),
            Some(utc("2026-11-01T12:30:00Z"))
        );
        assert_eq!(
            s.next_after(utc("2026-10-31T12:00:00Z"), ny),
            Some(utc("2026-11-01T12:30:00Z"))
        );
        assert_eq!(
            s.next_after(utc("2026-11-01T12:00:00Z"), tokyo),
            Some(utc("2026-11-01T22:30:00Z"))
        );
        // The last occurrence at or before a time.
        assert_eq!(
            s.last_at_or_before(utc("2026-01-11T06:30:00Z"), berlin),
            Some(utc("2026-01-11T06:30:00Z"))
        );
        assert_eq!(
            s.last_at_or_before(utc("2026-01-11T06:00:00Z"), berlin),
            Some(utc("2026-01-10T06:30:00Z"))
        );
    }
}

/// Schedules as written in agent files: parsed or refused, never a panic; the next
/// time of a parsed one lies after now.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn a_schedule_parses_or_is_refused_and_its_next_time_lies_ahead(
            text in prop_oneof![
                "[0-9]{1,3}:[0-9]{1,3}",
                "[0-9*/,-]{1,4} [0-9*/,-]{1,4} [0-9*/,-]{1,4} [0-9*/,?-]{1,4} [0-9*/,-]{1,4}",
                "[0-9*/,-]{1,4} [0-9*/,-]{1,4} [0-9*/,-]{1,4} [0-9*/,?-]{1,4} [0-9A-Za-z*/,-]{1,4} [0-9A-Za-z*/,-]{1,4}",
                "\\PC{0,20}",
            ],
        ) {
            let now = chrono::DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z").unwrap().to_utc();
            if let Ok(s) = Schedule::parse(&text) {
                if let Some(next) = s.next_after(now, Tz::UTC) {
                    prop_assert!(next > now);
                }
            }
        }
    }
}
