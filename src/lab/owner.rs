//! The names of what a run makes (scratch directories, lab cgroups, swap files) carry
//! the run's identity, so the next run can tell a dead run's leftovers from a live
//! one's. A PID alone is not an identity: after a SIGKILL the PID may be reused by an
//! unrelated process, which would keep the leftovers "alive" for ever. The start time
//! (/proc/PID/stat field 22) together with the PID is unique until reboot.

use std::sync::OnceLock;

/// The prefix of every name a run gives to what it makes.
pub const PREFIX: &str = "syslens-lab-";

/// This process's start time in clock ticks after boot, read once.
fn own_start() -> Option<u64> {
    static START: OnceLock<Option<u64>> = OnceLock::new();
    *START.get_or_init(|| start_of(std::process::id() as i32))
}

/// The start time of process `pid`, when it runs.
fn start_of(pid: i32) -> Option<u64> {
    let raw = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    syslens_probe::stat::Stat::parse(&raw)
        .ok()
        .map(|s| s.start_time_ticks)
}

/// `syslens-lab-PID-START-SEQ`: the name of this run's `seq`-th thing of a kind. Should
/// its own start time be unreadable, `syslens-lab-PID-SEQ`, which is judged by the PID
/// alone: a made-up start time would make another run sweep this live one's things.
pub fn name(seq: u32) -> String {
    let pid = std::process::id();
    match own_start() {
        Some(start) => format!("{PREFIX}{pid}-{start}-{seq}"),
        None => format!("{PREFIX}{pid}-{seq}"),
    }
}

/// Whether `name` (a file or directory name, or the component of a path) was made by
/// a run that is gone: its PID no longer runs, or now belongs to a process that
/// started at another time. None when `name` is not one of ours. Names of older
/// versions (`syslens-lab-PID-SEQ`, without the start time) are judged by PID alone.
pub fn made_by_dead_run(name: &str) -> Option<bool> {
    let parts: Vec<&str> = name.strip_prefix(PREFIX)?.split('-').collect();
    let pid = parts.first()?.parse::<i32>().ok().filter(|&p| p > 0)?;
    let started = match parts.len() {
        2 => None,
        3 => Some(parts[1].parse::<u64>().ok()?),
        _ => return None,
    };
    parts.last()?.parse::<u32>().ok()?;
    Some(match (start_of(pid), started) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(now), Some(then)) => now != then,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_14_a_reused_pid_does_not_keep_a_dead_runs_leftovers() {
        let me = std::process::id();
        let mine = name(3);
        assert_eq!(made_by_dead_run(&mine), Some(false), "{mine}");
        // The same PID with another start time: the PID was reused, the run is gone.
        let reused = format!("{PREFIX}{me}-{}-3", own_start().unwrap() + 1);
        assert_eq!(made_by_dead_run(&reused), Some(true));
        // A PID that does not run (above pid_max's ceiling).
        assert_eq!(
            made_by_dead_run(&format!("{PREFIX}2147483646-5-0")),
            Some(true)
        );
        // Names of older versions: by PID alone.
        assert_eq!(made_by_dead_run(&format!("{PREFIX}{me}-0")), Some(false));
        assert_eq!(
            made_by_dead_run(&format!("{PREFIX}2147483646-0")),
            Some(true)
        );
    }

    #[test]
    fn names_not_ours_are_left_alone() {
        for n in [
            "syslens-lab-",
            "syslens-lab-x-1",
            "syslens-lab-0-1",
            "syslens-lab--1",
            "syslens-lab-12-3-4-5",
            "syslens-lab-12-y-4",
            "syslens-lab-12-3-z",
            "other-12-3",
        ] {
            assert_eq!(made_by_dead_run(n), None, "{n}");
        }
    }
}
