//! The host settings a lab's outcome depends on (THP mode, overcommit, autogroup,
//! swappiness, clocksource): read at the lab's start, recorded in its report, and named in
//! the claims that only hold under them.

use std::io::Read;

use syslens_probe::system::bracketed_choice;

/// Transparent huge pages for anonymous memory: always, madvise or never.
pub const THP_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/enabled";
/// Whether a THP fault stalls to compact memory: always, defer, defer+madvise, madvise, never.
pub const THP_DEFRAG: &str = "/sys/kernel/mm/transparent_hugepage/defrag";
/// The overcommit policy: 0 heuristic, 1 always, 2 strict (CommitLimit).
pub const OVERCOMMIT_MEMORY: &str = "/proc/sys/vm/overcommit_memory";
/// Whether each session is its own scheduling group (1) or all tasks compete by nice (0).
pub const SCHED_AUTOGROUP: &str = "/proc/sys/kernel/sched_autogroup_enabled";
/// How readily anonymous memory is swapped against page cache (0-200).
pub const SWAPPINESS: &str = "/proc/sys/vm/swappiness";
/// The clocksource the vDSO reads the time from (tsc, kvm-clock: vDSO-capable; hpet,
/// acpi_pm: every clock_gettime enters the kernel).
pub const CLOCKSOURCE: &str = "/sys/devices/system/clocksource/clocksource0/current_clocksource";

/// A setting's file is a word or a short list: more than this is not a setting.
const MAX_SETTING_BYTES: u64 = 4096;

/// The value of the setting in `path`: the bracketed choice of a list such as
/// `always [madvise] never`, else the file's trimmed text; or why it could not be read.
pub fn read_setting(path: &str) -> Result<String, String> {
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SETTING_BYTES).read_to_end(&mut buf))
        .map_err(|e| format!("{path}: {e}"))?;
    if buf.contains(&b'[') {
        return bracketed_choice(&buf).map_err(|m| format!("{path}: {m}"));
    }
    let text = String::from_utf8_lossy(&buf).trim().to_owned();
    if text.is_empty() {
        return Err(format!("{path}: empty"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_or_say_why_not() {
        let thp = std::fs::read_to_string(THP_ENABLED);
        match read_setting(THP_ENABLED) {
            Ok(mode) => assert!(["always", "madvise", "never"].contains(&mode.as_str())),
            Err(why) => assert!(thp.is_err(), "{why}"),
        }
        if let Ok(text) = std::fs::read_to_string(OVERCOMMIT_MEMORY) {
            assert_eq!(read_setting(OVERCOMMIT_MEMORY).as_deref(), Ok(text.trim()));
        }
        let missing = read_setting("/proc/sys/no/such/setting").unwrap_err();
        assert!(
            missing.starts_with("/proc/sys/no/such/setting: "),
            "{missing}"
        );
    }
}
