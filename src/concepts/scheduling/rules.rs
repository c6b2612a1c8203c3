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
