//! /proc/PID/schedstat, wchan and syscall.

use serde::Serialize;

use crate::missing::{Missing, Val};
use crate::parse::{text, tokens, u64_dec};

/// Time on CPU, time waiting on a run queue (ns) and the number of time slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SchedStat {
    /// Time on a CPU, in ns.
    pub run_ns: u64,
    /// Time runnable but waiting on a run queue, in ns.
    pub wait_ns: u64,
    /// Time slices run (times scheduled onto a CPU).
    pub slices: u64,
}

/// Parses `run wait slices`.
pub fn parse_schedstat(buf: &[u8]) -> Val<SchedStat> {
    let mut t = tokens(buf);
    match (
        t.next().and_then(u64_dec),
        t.next().and_then(u64_dec),
        t.next().and_then(u64_dec),
    ) {
        (Some(run_ns), Some(wait_ns), Some(slices)) => Ok(SchedStat {
            run_ns,
            wait_ns,
            slices,
        }),
        _ => Err(Missing::malformed("schedstat", text(buf))),
    }
}

/// What /proc/PID/task/TID/syscall says the thread is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Syscall {
    /// Blocked in this system call, with its arguments (a futex wait's: the word, the
    /// operation, the value, the timeout, ...).
    In {
        /// The system call's number (x86_64: see [`syscall_name`]).
        nr: i64,
        /// Its six arguments, as the registers hold them.
        args: [u64; 6],
    },
    /// Running in user space.
    Running,
    /// Blocked, but not in a system call (a page fault, for instance).
    Blocked,
}

/// Parses /proc/PID/task/TID/syscall.
pub fn parse_syscall(buf: &[u8]) -> Val<Syscall> {
    let mut t = tokens(buf);
    let bad = || Missing::malformed("syscall", text(buf));
    match t.next() {
        Some(b"running") => Ok(Syscall::Running),
        Some(nr) if nr.first() == Some(&b'-') => Ok(Syscall::Blocked),
        Some(nr) => {
            let nr = crate::parse::i64_dec(nr).ok_or_else(bad)?;
            let mut args = [0u64; 6];
            for arg in &mut args {
                *arg = t
                    .next()
                    .and_then(|a| a.strip_prefix(b"0x"))
                    .and_then(|a| u64::from_str_radix(std::str::from_utf8(a).ok()?, 16).ok())
                    .ok_or_else(bad)?;
            }
            Ok(Syscall::In { nr, args })
        }
        None => Err(bad()),
    }
}

/// x86_64 system-call names for the numbers a blocked thread usually shows.
pub fn syscall_name(nr: i64) -> Option<&'static str> {
    Some(match nr {
        0 => "read",
        1 => "write",
        7 => "poll",
        23 => "select",
        34 => "pause",
        35 => "nanosleep",
        43 => "accept",
        61 => "wait4",
        72 => "fcntl",
        73 => "flock",
        202 => "futex",
        230 => "clock_nanosleep",
        232 => "epoll_wait",
        270 => "pselect6",
        271 => "ppoll",
        281 => "epoll_pwait",
        288 => "accept4",
        441 => "epoll_pwait2",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers come from outside the code: the kernel's uapi header (linux-libc-dev,
    /// which gcc brings; .ci/run installs gcc). Every name the table must know is looked
    /// up there, and every number the table names must be that name's there (a deleted
    /// arm or a wrong number fails: issue 23's surviving `delete match arm 288`).
    #[test]
    fn issue_23_syscall_names_are_the_kernels_x86_64_numbers() {
        const UNISTD: &str = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h";
        let Ok(header) = std::fs::read_to_string(UNISTD) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI lacks {UNISTD} (linux-libc-dev)"
            );
            eprintln!("SKIPPED: no {UNISTD} (linux-libc-dev)");
            return;
        };
        let numbers: std::collections::HashMap<&str, i64> = header
            .lines()
            .filter_map(|l| {
                let mut w = l.strip_prefix("#define __NR_")?.split_whitespace();
                Some((w.next()?, w.next()?.parse().ok()?))
            })
            .collect();
        assert!(
            numbers.len() > 300,
            "{UNISTD} parsed to {} names",
            numbers.len()
        );
        let names = [
            "read",
            "write",
            "poll",
            "select",
            "pause",
            "nanosleep",
            "accept",
            "wait4",
            "fcntl",
            "flock",
            "futex",
            "clock_nanosleep",
            "epoll_wait",
            "pselect6",
            "ppoll",
            "epoll_pwait",
            "accept4",
            "epoll_pwait2",
        ];
        for name in names {
            let nr = numbers[name];
            assert_eq!(syscall_name(nr), Some(name), "syscall {nr}");
        }
        for nr in -1..=600 {
            if let Some(name) = syscall_name(nr) {
                assert_eq!(numbers.get(name), Some(&nr), "{name}");
                assert!(names.contains(&name), "{name} is named but not tested");
            }
        }
    }

    #[test]
    fn schedstat() {
        assert_eq!(
            parse_schedstat(b"123 456 7\n"),
            Ok(SchedStat {
                run_ns: 123,
                wait_ns: 456,
                slices: 7
            })
        );
        assert!(parse_schedstat(b"1 2").is_err());
    }

    #[test]
    fn syscall_states() {
        assert_eq!(parse_syscall(b"running\n"), Ok(Syscall::Running));
        assert_eq!(parse_syscall(b"-1 0x7ffd 0x0\n"), Ok(Syscall::Blocked));
        assert_eq!(
            parse_syscall(b"202 0x55d0c0a21000 0x80 0x2 0x0 0x0 0x0 0x7ffc 0x7f00\n"),
            Ok(Syscall::In {
                nr: 202,
                args: [0x55d0c0a21000, 0x80, 0x2, 0, 0, 0]
            })
        );
        assert!(parse_syscall(b"").is_err());
        // The kernel always writes six arguments: fewer is not a system call's state.
        assert!(parse_syscall(b"202 0x55d0c0a21000 0x80\n").is_err());
    }
}
