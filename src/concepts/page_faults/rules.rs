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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::doctor::test_view::{fired, proc, view};
    use std::time::Duration;

    fn faulted(majflt: u64) -> DoctorView {
        let mut p = proc(8, "db");
        p.first.majflt = 50;
        p.last.majflt = 50 + majflt;
        DoctorView {
            procs: vec![p],
            ..view(Duration::from_secs(10))
        }
    }

    #[test]
    fn issue_23_sustained_major_faults_fires_from_100_per_second() {
        assert!(fired(sustained_major_faults, &faulted(999)).is_empty());
        assert_eq!(
            fired(sustained_major_faults, &faulted(1000)),
            [("pid 8 (db)".to_owned(), Severity::Warning)]
        );
        let f = &sustained_major_faults(&faulted(1000))[0];
        assert!(
            f.message.starts_with("100 major faults/s over 10 s"),
            "{}",
            f.message
        );
    }
}
