//! Doctor rules: kernel vs user space.

use syslens_probe::USER_HZ;

use crate::catalogue::ConceptId;
use crate::model::doctor::{DoctorView, Finding, Rule, Severity};

/// This concept's doctor rules (those that judge a change need a watch window).
pub const RULES: &[Rule] = &[Rule {
    id: "mostly-in-the-kernel",
    needs_window: true,
    check: mostly_in_the_kernel,
}];

/// Only processes using at least this share of a CPU are worth judging.
const BUSY: f64 = 0.2;
/// The share of that CPU time spent in the kernel that deserves a look.
const MOSTLY_KERNEL: f64 = 0.8;

fn mostly_in_the_kernel(v: &DoctorView) -> Vec<Finding> {
    let secs = v.watched_secs();
    v.procs
        .iter()
        .filter_map(|p| {
            let user = p.last.utime_ticks.saturating_sub(p.first.utime_ticks);
            let sys = p.last.stime_ticks.saturating_sub(p.first.stime_ticks);
            let cpu = (user + sys) as f64 / USER_HZ as f64 / secs;
            let share = sys as f64 / (user + sys).max(1) as f64;
            (cpu >= BUSY && share >= MOSTLY_KERNEL).then(|| Finding {
                rule: "mostly-in-the-kernel",
                concept: ConceptId::KernelUser,
                severity: Severity::Warning,
                subject: p.subject(),
                message: format!("uses {:.0}% of a CPU, {:.0}% of it in the kernel", cpu * 100.0, share * 100.0),
                evidence: vec![format!("/proc/{}/stat utime +{user}, stime +{sys} ticks in {secs:.0} s", p.last.pid)],
                advice: "many small system calls (tiny reads and writes, polling, clock reads through syscall) or page-fault storms: strace -c -p PID or perf trace -s -p PID shows which".into(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::doctor::test_view::{fired, proc, view};
    use std::time::Duration;

    /// A process that used `user` and `sys` ticks in 10 s (USER_HZ 100: 200 ticks are
    /// 20% of a CPU).
    fn used(user: u64, sys: u64) -> DoctorView {
        let mut p = proc(4, "poller");
        p.last.utime_ticks = user;
        p.last.stime_ticks = sys;
        DoctorView {
            procs: vec![p],
            ..view(Duration::from_secs(10))
        }
    }

    #[test]
    fn issue_23_mostly_in_the_kernel_needs_a_busy_process_mostly_in_sys() {
        assert_eq!(USER_HZ, 100);
        assert_eq!(
            fired(mostly_in_the_kernel, &used(40, 160)),
            [("pid 4 (poller)".to_owned(), Severity::Warning)]
        );
        // 79.5% in the kernel.
        assert!(fired(mostly_in_the_kernel, &used(41, 159)).is_empty());
        // 19.9% of a CPU, 80.4% of it in the kernel.
        assert!(fired(mostly_in_the_kernel, &used(39, 160)).is_empty());
        let f = &mostly_in_the_kernel(&used(40, 160))[0];
        assert!(
            f.message
                .contains("uses 20% of a CPU, 80% of it in the kernel"),
            "{}",
            f.message
        );
    }
}
