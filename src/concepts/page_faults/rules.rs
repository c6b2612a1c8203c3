//! Doctor rules: page faults.

use crate::catalogue::ConceptId;
use crate::model::doctor::{DoctorView, Finding, Rule, Severity};

/// This concept's doctor rules (those that judge a change need a watch window).
pub const RULES: &[Rule] = &[Rule {
    id: "sustained-major-faults",
    needs_window: true,
    check: sustained_major_faults,
}];

/// Major faults per second that mean a process keeps waiting for the disk.
const MAJOR_FAULTS_PER_S: f64 = 100.0;

fn sustained_major_faults(v: &DoctorView) -> Vec<Finding> {
    let secs = v.watched_secs();
    v.procs
        .iter()
        .filter_map(|p| {
            let rate = p.last.majflt.saturating_sub(p.first.majflt) as f64 / secs;
            (rate >= MAJOR_FAULTS_PER_S).then(|| Finding {
                rule: "sustained-major-faults",
                concept: ConceptId::PageFaults,
                severity: Severity::Warning,
                subject: p.subject(),
                message: format!("{rate:.0} major faults/s over {secs:.0} s: it keeps waiting for pages to come from disk"),
                evidence: vec![format!("/proc/{}/stat majflt {} -> {}", p.last.pid, p.first.majflt, p.last.majflt)],
                advice: "a cold page cache after a restart settles; if it persists the working set does not fit in memory (thrashing): add memory, lower the cgroup's pressure, or shrink the working set".into(),
            })
        })
        .collect()
}
