//! /proc/PID/stat (and task/TID/stat).

use serde::Serialize;

use crate::missing::{Missing, Val};
use crate::parse::{i64_dec, tokens, u64_dec, InlineStr};

/// The fields of /proc/PID/stat that syslens uses. Times are in clock ticks.
#[derive(Debug, Clone, Serialize)]
pub struct Stat {
    /// Field 1: the process (or thread) id.
    pub pid: i64,
    /// The command name, as the kernel stores it (may itself contain parentheses).
    pub comm: InlineStr<64>,
    /// Field 3: the state letter (R, S, D, Z, T, t, X, I).
    pub state: u8,
    /// Field 4: the parent's pid.
    pub ppid: i64,
    /// The kernel's PF_* flags of the task.
    pub flags: u64,
    /// Field 10: minor faults (no disk read).
    pub minflt: u64,
    /// Field 12: major faults (a disk read).
    pub majflt: u64,
    /// Field 14: time in user mode.
    pub utime_ticks: u64,
    /// Field 15: time in kernel mode.
    pub stime_ticks: u64,
    /// Field 18: the kernel's priority (20 + nice for normal tasks).
    pub priority: i64,
    /// Field 19: nice, -20 to 19.
    pub nice: i64,
    /// Field 20: the number of threads.
    pub num_threads: u64,
    /// Field 22: start time after boot.
    pub start_time_ticks: u64,
    /// Field 23: virtual size, in bytes.
    pub vsize_bytes: u64,
    /// Field 24: resident pages.
    pub rss_pages: u64,
    /// The CPU the task last ran on.
    pub processor: Val<u64>,
    /// Field 40: real-time priority (0 for normal tasks).
    pub rt_priority: Val<u64>,
    /// Field 41: scheduling policy (SCHED_OTHER 0, FIFO 1, RR 2, BATCH 3, IDLE 5, DEADLINE 6).
    pub policy: Val<u64>,
}

impl Stat {
    /// Parses stat text. The command name sits between the first `(` and the *last*
    /// `)`: names may contain spaces and parentheses, like `(((bash process))`.
    pub fn parse(buf: &[u8]) -> Val<Stat> {
        let bad = |d: &'static str| Missing::malformed("stat", d);
        let open = buf
            .iter()
            .position(|&b| b == b'(')
            .ok_or_else(|| bad("no '('"))?;
        let close = buf
            .iter()
            .rposition(|&b| b == b')')
            .ok_or_else(|| bad("no ')'"))?;
        if close < open {
            return Err(bad("')' before '('"));
        }
        let pid = i64_dec(&buf[..open]).ok_or_else(|| bad("pid"))?;
        let comm = InlineStr::new(&buf[open + 1..close]);
        // Fields after the name, numbered as in proc(5): field 3 is the state.
        let mut f: [&[u8]; 40] = [b""; 40];
        let mut n = 0;
        for t in tokens(&buf[close + 1..]) {
            if n == f.len() {
                break;
            }
            f[n] = t;
            n += 1;
        }
        if n < 22 {
            return Err(bad("fewer than 24 fields"));
        }
        let field = |no: usize| f[no - 3];
        let num = |no: usize| u64_dec(field(no)).ok_or_else(|| bad("number"));
        let signed = |no: usize| i64_dec(field(no)).ok_or_else(|| bad("number"));
        let later = |no: usize| {
            if no - 3 < n {
                u64_dec(field(no)).ok_or_else(|| bad("number"))
            } else {
                Err(Missing::not_in_kernel("stat field"))
            }
        };
        Ok(Stat {
            pid,
            comm,
            state: *field(3).first().ok_or_else(|| bad("state"))?,
            ppid: signed(4)?,
            flags: num(9)?,
            minflt: num(10)?,
            majflt: num(12)?,
            utime_ticks: num(14)?,
            stime_ticks: num(15)?,
            priority: signed(18)?,
            nice: signed(19)?,
            num_threads: num(20)?,
            start_time_ticks: num(22)?,
            vsize_bytes: num(23)?,
            rss_pages: num(24)?,
            processor: later(39),
            rt_priority: later(40),
            policy: later(41),
        })
    }
}

impl Stat {
    /// A kernel thread (PF_KTHREAD): no address space, no files, no limits of its own.
    pub fn is_kernel_thread(&self) -> bool {
        const PF_KTHREAD: u64 = 0x0020_0000;
        self.flags & PF_KTHREAD != 0
    }
}

/// Names of scheduling policies (sched(7)).
pub fn policy_name(policy: u64) -> &'static str {
    match policy {
        0 => "SCHED_OTHER",
        1 => "SCHED_FIFO",
        2 => "SCHED_RR",
        3 => "SCHED_BATCH",
        5 => "SCHED_IDLE",
        6 => "SCHED_DEADLINE",
        7 => "SCHED_EXT",
        _ => "unknown",
    }
}

/// What a state letter of stat/status means (proc(5)).
pub fn state_name(state: u8) -> &'static str {
    match state {
        b'R' => "running",
        b'S' => "sleeping",
        b'D' => "disk sleep",
        b'Z' => "zombie",
        b'T' => "stopped",
        b't' => "tracing stop",
        b'X' => "dead",
        b'I' => "idle",
        b'P' => "parked",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(comm: &str) -> Vec<u8> {
        format!(
            "4242 ({comm}) S 1 4242 4242 0 -1 4194560 1500 0 7 0 12 34 0 0 20 0 3 0 123456 \
             10485760 250 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
        )
        .into_bytes()
    }

    #[test]
    fn issue_23_fields_a_kernel_does_not_write_are_missing_not_malformed() {
        let full = line("bash");
        let s = Stat::parse(&full).unwrap();
        assert_eq!(s.processor, Ok(1));
        // Cut after field 38 (exit_signal): the processor and the rest are absent.
        let text = String::from_utf8(full).unwrap();
        let cut: Vec<&str> = text.split_whitespace().take(2 + 36).collect();
        let s = Stat::parse(cut.join(" ").as_bytes()).unwrap();
        assert_eq!(s.processor.unwrap_err().kind(), "not_in_kernel");
        assert_eq!(s.policy.unwrap_err().kind(), "not_in_kernel");
        // A ')' before the '(' is no stat line; 21 fields after the name are too few.
        assert!(Stat::parse(b"42 )x( S 1").is_err());
        let short: Vec<&str> = text.split_whitespace().take(2 + 21).collect();
        assert!(Stat::parse(short.join(" ").as_bytes()).is_err());
        let enough: Vec<&str> = text.split_whitespace().take(2 + 22).collect();
        assert!(Stat::parse(enough.join(" ").as_bytes()).is_ok());
    }

    #[test]
    fn issue_23_state_and_policy_names_follow_proc_5_and_sched_7() {
        let states: Vec<&str> = b"RSDZTtXIP?".iter().map(|&c| state_name(c)).collect();
        assert_eq!(
            states,
            [
                "running",
                "sleeping",
                "disk sleep",
                "zombie",
                "stopped",
                "tracing stop",
                "dead",
                "idle",
                "parked",
                "unknown"
            ]
        );
        let policies: Vec<&str> = (0..=8).map(policy_name).collect();
        assert_eq!(
            policies,
            [
                "SCHED_OTHER",
                "SCHED_FIFO",
                "SCHED_RR",
                "SCHED_BATCH",
                "unknown",
                "SCHED_IDLE",
                "SCHED_DEADLINE",
                "SCHED_EXT",
                "unknown"
            ]
        );
    }

    #[test]
    fn parses_plain_name() {
        let s = Stat::parse(&line("bash")).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.comm.as_str(), "bash");
        assert_eq!(s.state, b'S');
        assert_eq!((s.minflt, s.majflt), (1500, 7));
        assert_eq!((s.utime_ticks, s.stime_ticks), (12, 34));
        assert_eq!(s.nice, 0);
        assert_eq!(s.num_threads, 3);
        assert_eq!(s.rss_pages, 250);
        assert_eq!(s.processor, Ok(1));
        assert_eq!(s.policy, Ok(0));
    }

    #[test]
    fn parses_name_with_parentheses_and_spaces() {
        let s = Stat::parse(&line("((bash process) )")).unwrap();
        assert_eq!(s.comm.as_str(), "((bash process) )");
        assert_eq!(s.majflt, 7);
    }

    #[test]
    fn truncated_is_malformed() {
        assert!(Stat::parse(b"1 (x) S 1 2").is_err());
        assert!(Stat::parse(b"").is_err());
        assert!(Stat::parse(b") 1 (").is_err());
    }
}
