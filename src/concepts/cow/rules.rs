//! Doctor rules: copy-on-write.

use crate::concepts::ConceptId;
use crate::doctor::{mib, DoctorView, Finding, Severity};

/// A forked child whose private copies grow this much within the window is copying
/// its parent's memory page by page (a snapshot under writes).
const COW_GROWTH: u64 = 32 << 20;

pub fn check(v: &DoctorView) -> Vec<Finding> {
    v.procs
        .iter()
        .filter_map(|p| {
            let (before, after) = p.private_dirty?;
            let grew = after.saturating_sub(before);
            (grew >= COW_GROWTH).then(|| Finding {
                rule: "cow-blow-up",
                concept: ConceptId::Cow,
                severity: Severity::Warning,
                subject: p.subject(),
                message: format!(
                    "this forked child's Private_Dirty grew {} in {:.0} s: the parent keeps writing shared pages and each write copies one",
                    mib(grew as f64),
                    v.window.as_secs_f64()
                ),
                evidence: vec![format!("/proc/{}/smaps_rollup Private_Dirty {before} -> {after}", p.last.pid)],
                advice: "a snapshot in a forked child (BGSAVE, a checkpoint) can double memory under heavy writes: schedule it off-peak, or leave headroom equal to the write rate times the snapshot time".into(),
            })
        })
        .collect()
}
