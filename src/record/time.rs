//! The TIME of `--at`, `--since` and `--until`: RFC 3339, `HH:MM[:SS]` (local time,
//! today), relative to now (`-90s`, `-5m`, `-2h`, `-1d`) or `@UNIX_SECONDS`; and the
//! local time a stored moment is shown in. jiff does the calendar and the zone.

use std::time::{Duration, SystemTime};

use jiff::tz::TimeZone;
use jiff::{civil, Timestamp};

/// Parses a TIME relative to `now`; the error says which forms are accepted.
pub fn parse(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let t = text.trim();
    let forms = "the forms are 2026-12-01T03:00:00Z (RFC 3339), 03:00[:00] (local, today), \
                 -90s / -5m / -2h / -1d (before now) and @1764558000 (Unix seconds)";
    let bad = || format!("cannot read the time {t:?}: {forms}");
    if let Some(secs) = t.strip_prefix('@') {
        let s: u64 = secs.parse().map_err(|_| bad())?;
        return SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_secs(s))
            .ok_or_else(bad);
    }
    if let Some(rel) = t.strip_prefix('-') {
        let split = rel.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (n, unit) = rel.split_at(split);
        let n: u64 = n.parse().map_err(|_| bad())?;
        let per = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => return Err(bad()),
        };
        let back = n
            .checked_mul(per)
            .map(Duration::from_secs)
            .ok_or_else(bad)?;
        return now.checked_sub(back).ok_or_else(bad);
    }
    if let Ok(ts) = t.parse::<Timestamp>() {
        return SystemTime::try_from(ts).map_err(|_| bad());
    }
    if t.len() <= 8 && t.contains(':') {
        let clock: civil::Time = t.parse().map_err(|_| bad())?;
        let tz = TimeZone::system();
        let today = Timestamp::try_from(now)
            .map_err(|_| bad())?
            .to_zoned_datetime(tz.clone())
            .date();
        let zoned = today
            .to_datetime(clock)
            .to_zoned_datetime(tz)
            .map_err(|_| bad())?;
        return SystemTime::try_from(zoned.timestamp()).map_err(|_| bad());
    }
    Err(bad())
}

/// A moment in local time, to the second, with the zone: `2026-12-02 04:31:05 UTC`.
pub fn local(t: SystemTime) -> String {
    match Timestamp::try_from(t) {
        Ok(ts) => ts
            .to_zoned_datetime(TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        Err(_) => "?".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_is_read_and_garbage_is_refused() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_558_000);
        assert_eq!(
            parse("@1764558000", now).unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_558_000)
        );
        assert_eq!(parse("-90s", now).unwrap(), now - Duration::from_secs(90));
        assert_eq!(parse("-5m", now).unwrap(), now - Duration::from_secs(300));
        assert_eq!(parse("-2h", now).unwrap(), now - Duration::from_secs(7200));
        assert_eq!(parse("-1d", now).unwrap(), now - Duration::from_secs(86400));
        assert_eq!(
            parse("2025-12-01T03:00:00Z", now).unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_558_000)
        );
        assert_eq!(
            parse("2025-12-01T04:00:00+01:00", now).unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_558_000)
        );
        let clock = parse("03:00", now).unwrap();
        let day = Duration::from_secs(86400);
        assert!(clock + day > now - day && clock < now + day, "{clock:?}");
        for bad in [
            "",
            "yesterday",
            "-5",
            "-5y",
            "@-1",
            "25:00",
            "-99999999999999999d",
        ] {
            let e = parse(bad, now).unwrap_err();
            assert!(e.contains("RFC 3339"), "{bad}: {e}");
        }
    }
}
