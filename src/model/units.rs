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
        _ if v.abs() >= 100.0 => format!("{v:.0}"),
        _ => format!("{v:.2}"),
    }
}
