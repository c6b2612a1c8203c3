//! Doctor rules: locking. An idle thread pool and a deadlock look the same from /proc
//! (every thread asleep in a futex wait, no CPU used): that is information, never a
//! verdict. A process blocked in /proc/locks behind another is a real finding.

use crate::catalogue::ConceptId;
use crate::model::doctor::{DoctorView, Finding, Rule, Severity};

/// This concept's doctor rules (those that judge a change need a watch window).
pub const RULES: &[Rule] = &[
    Rule {
        id: "all-threads-parked",
        needs_window: true,
        check: all_threads_parked,
    },
    Rule {
        id: "file-lock-wait",
        needs_window: false,
        check: file_lock_wait,
    },
];

fn all_threads_parked(v: &DoctorView) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in &v.procs {
        let cpu_before = p.first.utime_ticks.saturating_add(p.first.stime_ticks);
        let cpu_after = p.last.utime_ticks.saturating_add(p.last.stime_ticks);
        if p.threads.len() >= 2
            && p.threads.iter().all(|(s, futex)| *s == b'S' && *futex)
            && cpu_after == cpu_before
        {
            out.push(Finding {
                rule: "all-threads-parked",
                concept: ConceptId::Locking,
                severity: Severity::Info,
                subject: p.subject(),
                message: format!(
                    "all {} threads parked in futex waits, no CPU progress for {:.0} s; an idle thread pool looks exactly the same",
                    p.threads.len(),
                    v.watched_secs()
                ),
                evidence: vec![format!("/proc/{}/task/*/syscall: futex; stat: state S; utime+stime unchanged", p.last.pid)],
                advice: "if the process should be working, take a stack dump (gdb -p PID -batch -ex 'thread apply all bt') to see which locks the threads wait on".into(),
            });
        }
    }
    out
}

fn file_lock_wait(v: &DoctorView) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Ok(locks) = &v.locks {
        for w in locks.iter().filter(|l| l.waiting) {
            let holder = locks.iter().find(|h| h.id == w.id && !h.waiting);
            let name = |pid: i64| {
                v.proc(pid)
                    .map_or_else(|| format!("pid {pid}"), |p| p.subject())
            };
            let carriers = v.lock_carriers.as_ref().ok();
            // Scoped: about the waiter, the taker or a process that carries the lock.
            let in_view = v.proc(w.pid).is_some()
                || holder.is_some_and(|h| v.proc(h.pid).is_some())
                || carriers.is_some_and(|c| c.of(w.id).any(|x| v.proc(i64::from(x.pid)).is_some()));
            if v.scoped && !in_view {
                continue;
            }
            let file = carriers
                .and_then(|c| c.path(w.id))
                .map_or_else(|| w.file.clone(), |p| format!("{p} ({})", w.file));
            // The pid /proc/locks names took the lock; who has it now is whoever's fds
            // carry it (a forked child keeps a flock its parent took).
            let held_by = holder.map_or_else(
                || "an unknown holder".to_owned(),
                |h| {
                    let others: Vec<String> = carriers
                        .map(|c| {
                            c.of(w.id)
                                .filter(|x| i64::from(x.pid) != h.pid)
                                .map(|x| format!("pid {} ({}) fd {}", x.pid, x.comm, x.fd))
                                .collect()
                        })
                        .unwrap_or_default();
                    let taker_carries =
                        carriers.is_some_and(|c| c.of(w.id).any(|x| i64::from(x.pid) == h.pid));
                    match (others.is_empty(), taker_carries) {
                        (true, _) => name(h.pid),
                        (false, true) => {
                            format!("{}, shared with {}", name(h.pid), others.join(", "))
                        }
                        (false, false) => format!(
                            "pid {}, which no longer holds it: it is held through {}",
                            h.pid,
                            others.join(", ")
                        ),
                    }
                },
            );
            out.push(Finding {
                rule: "file-lock-wait",
                concept: ConceptId::Locking,
                severity: Severity::Warning,
                subject: name(w.pid),
                message: format!("waits for a {} {} lock on {file} taken by {held_by}", w.class, w.access),
                evidence: vec![format!("/proc/locks: {}: -> {} {} {}", w.id, w.class, w.pid, w.file)],
                advice: "the holder keeps the lock: see what it is doing (syslens inspect on it); stale lock files from dead processes are released when their fd closes".into(),
            });
        }
    }
    out
}
