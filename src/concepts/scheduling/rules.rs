//! Doctor rules: scheduling.

use crate::catalogue::ConceptId;
use crate::model::doctor::{DoctorView, Finding, Rule, Severity};

/// This concept's doctor rules (those that judge a change need a watch window).
pub const RULES: &[Rule] = &[Rule {
    id: "long-run-queue-delay",
    needs_window: true,
    check: long_run_queue_delay,
}];

/// Share of the window a process spent runnable but waiting for a CPU.
const RUNQUEUE_WAIT: f64 = 0.2;

fn long_run_queue_delay(v: &DoctorView) -> Vec<Finding> {
    let secs = v.watched_secs();
    v.procs
        .iter()
        .filter_map(|p| {
            let (Ok(a), Ok(b)) = (p.first.run_queue_wait_ns.clone(), p.last.run_queue_wait_ns.clone()) else { return None };
            let share = b.saturating_sub(a) as f64 / 1e9 / secs;
            (share >= RUNQUEUE_WAIT).then(|| Finding {
                rule: "long-run-queue-delay",
                concept: ConceptId::Scheduling,
                severity: Severity::Warning,
                subject: p.subject(),
                message: format!("waited for a CPU {:.0}% of the time over {secs:.0} s (runnable, not running)", share * 100.0),
                evidence: vec![format!("/proc/{}/schedstat run-queue wait +{} ns", p.last.pid, b.saturating_sub(a))],
                advice: "more runnable threads than CPUs, a CPU quota (cgroup throttling) or pinning to busy CPUs: check the load average, cpu.stat nr_throttled and the affinity in syslens inspect PID".into(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::doctor::test_view::{fired, proc, view};
    use std::time::Duration;

    fn waited(ns: u64) -> DoctorView {
        let mut p = proc(6, "worker");
        p.first.run_queue_wait_ns = Ok(1_000);
        p.last.run_queue_wait_ns = Ok(1_000 + ns);
        DoctorView {
            procs: vec![p],
            ..view(Duration::from_secs(10))
        }
    }

    #[test]
    fn issue_23_long_run_queue_delay_fires_from_a_fifth_of_the_window() {
        assert!(fired(long_run_queue_delay, &waited(1_999_999_999)).is_empty());
        assert_eq!(
            fired(long_run_queue_delay, &waited(2_000_000_000)),
            [("pid 6 (worker)".to_owned(), Severity::Warning)]
        );
        let f = &long_run_queue_delay(&waited(2_000_000_000))[0];
        assert!(
            f.message
                .starts_with("waited for a CPU 20% of the time over 10 s"),
            "{}",
            f.message
        );
        let mut v = waited(5_000_000_000);
        v.procs[0].last.run_queue_wait_ns = Err(syslens_probe::Missing::Exited);
        assert!(fired(long_run_queue_delay, &v).is_empty());
    }
}
