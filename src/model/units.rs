//! Quantities for people: bytes in binary units, durations scaled to ns..s, a lab
//! metric with its unit. Findings, claims and headlines are sentences with figures in
//! them, so these sit below every face that writes one.

/// Bytes in binary units, as ps and htop print them.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n;
    let mut i = 0;
    while v.abs() >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {}", UNITS[0])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Seconds scaled to ns, us, ms or s.
pub fn duration(secs: f64) -> String {
    let a = secs.abs();
    if a == 0.0 {
        "0 s".to_owned()
    } else if a < 1e-8 {
        format!("{:.1} ns", secs * 1e9)
    } else if a < 1e-6 {
        format!("{:.0} ns", secs * 1e9)
    } else if a < 1e-3 {
        format!("{:.1} us", secs * 1e6)
    } else if a < 1.0 {
        format!("{:.1} ms", secs * 1e3)
    } else {
        format!("{secs:.2} s")
    }
}

/// A value with the unit of a lab metric ("ns", "us", "bytes", "ratio", "MB/s", or a count).
pub fn metric_value(v: f64, unit: &str) -> String {
    match unit {
        "ns" => duration(v / 1e9),
        "us" => duration(v / 1e6),
        "bytes" => bytes(v),
        "ratio" => format!("{:.1}%", v * 100.0),
        "MB/s" => format!("{v:.0} MB/s"),
        // Counts are whole: "3", not "3.00" (issue 19).
        _ if v.abs() >= 100.0 || v.fract() == 0.0 => format!("{v:.0}"),
        _ => format!("{v:.2}"),
    }
}

/// A UTC instant split into its civil parts: (year, month, day, seconds into the day).
/// Written by hand: the civil-from-days conversion is a dozen lines (H. Hinnant's
/// algorithm), not a date crate's worth.
pub fn utc_civil(t: std::time::SystemTime) -> (i64, i64, i64, i64) {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day, rem)
}

/// RFC 3339 in UTC with microseconds (`2026-12-02T01:02:03.456789Z`).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let (year, month, day, rem) = utc_civil(t);
    let micros = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_micros());
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod rfc3339_tests {
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn known_instants() {
        assert_eq!(super::rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        // date -u -d @1796173323 +%FT%T: 2026-12-02T01:02:03
        assert_eq!(
            super::rfc3339(UNIX_EPOCH + Duration::from_micros(1_796_173_323_456_789)),
            "2026-12-02T01:02:03.456789Z"
        );
        // A leap day: date -u -d @951782400 -> 2000-02-29T00:00:00
        assert_eq!(
            super::rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000000Z"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_19_counts_are_printed_whole() {
        assert_eq!(metric_value(0.0, ""), "0");
        assert_eq!(metric_value(3.0, "pages"), "3");
        assert_eq!(metric_value(2.5, ""), "2.50");
        assert_eq!(metric_value(123.4, ""), "123");
    }
}
