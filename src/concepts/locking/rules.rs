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

/// Fewer threads than this parked is a single-threaded process asleep, not a pool.
const PARKED_THREADS: usize = 2;

fn all_threads_parked(v: &DoctorView) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in &v.procs {
        let cpu_before = p.first.utime_ticks.saturating_add(p.first.stime_ticks);
        let cpu_after = p.last.utime_ticks.saturating_add(p.last.stime_ticks);
        if p.threads.len() >= PARKED_THREADS
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::doctor::test_view::{fired, proc, view};
    use std::time::Duration;
    use syslens_probe::locks::parse_locks;

    fn parked(threads: Vec<(u8, bool)>) -> DoctorView {
        let mut p = proc(5, "pool");
        p.threads = threads;
        DoctorView {
            procs: vec![p],
            ..view(Duration::from_secs(10))
        }
    }

    #[test]
    fn issue_23_all_threads_parked_needs_every_thread_in_a_futex_wait_and_no_cpu() {
        let waiting = (b'S', true);
        assert_eq!(
            fired(all_threads_parked, &parked(vec![waiting; PARKED_THREADS])),
            [("pid 5 (pool)".to_owned(), Severity::Info)]
        );
        assert!(fired(
            all_threads_parked,
            &parked(vec![waiting; PARKED_THREADS - 1])
        )
        .is_empty());
        assert!(fired(all_threads_parked, &parked(vec![waiting, (b'S', false)])).is_empty());
        assert!(fired(all_threads_parked, &parked(vec![waiting, (b'R', true)])).is_empty());
        let mut v = parked(vec![waiting; 3]);
        v.procs[0].last.stime_ticks = 1;
        assert!(fired(all_threads_parked, &v).is_empty());
    }

    /// /proc/locks: pid 5 holds a POSIX write lock, pid 6 waits for it.
    const LOCKS: &str = "1: POSIX  ADVISORY  WRITE 5 08:01:1234 0 EOF\n1: -> POSIX  ADVISORY  WRITE 6 08:01:1234 0 EOF\n";

    #[test]
    fn issue_23_file_lock_wait_names_the_waiter_and_the_holder() {
        let mut v = DoctorView {
            locks: parse_locks(LOCKS.as_bytes()),
            procs: vec![proc(5, "holder"), proc(6, "waiter")],
            ..view(Duration::ZERO)
        };
        let f = file_lock_wait(&v);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].subject, "pid 6 (waiter)");
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(
            f[0].message.ends_with("taken by pid 5 (holder)"),
            "{}",
            f[0].message
        );
        // The taker no longer carries it: a child that inherited its fd does.
        let carried = |pid: i32| crate::model::locks::LockCarrier {
            lock_id: 1,
            pid,
            comm: "child".into(),
            fd: 9,
            path: "/var/lock/x".into(),
        };
        v.lock_carriers = Ok(crate::model::locks::Carriers {
            found: vec![carried(8)],
            unreadable: 0,
        });
        let m = &file_lock_wait(&v)[0].message;
        assert!(
            m.contains("/var/lock/x (08:01:1234)")
                && m.ends_with(
                    "pid 5, which no longer holds it: it is held through pid 8 (child) fd 9"
                ),
            "{m}"
        );
        v.lock_carriers = Ok(crate::model::locks::Carriers {
            found: vec![carried(5), carried(8)],
            unreadable: 0,
        });
        let m = &file_lock_wait(&v)[0].message;
        assert!(
            m.ends_with("pid 5 (holder), shared with pid 8 (child) fd 9"),
            "{m}"
        );
        v.lock_carriers = Ok(crate::model::locks::Carriers::default());
        // Scoped to other processes: neither side is in view, nothing to say.
        v.scoped = true;
        v.procs = vec![proc(7, "other")];
        assert!(fired(file_lock_wait, &v).is_empty());
        // Scoped to the holder: the waiter is named by pid.
        v.procs = vec![proc(5, "holder")];
        assert_eq!(
            fired(file_lock_wait, &v),
            [("pid 6".to_owned(), Severity::Warning)]
        );
    }
}
