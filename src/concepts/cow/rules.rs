//! Doctor rules: copy-on-write.

use crate::catalogue::ConceptId;
use crate::model::doctor::{mib, DoctorView, Finding, Rule, Severity};

/// This concept's doctor rules (those that judge a change need a watch window).
pub const RULES: &[Rule] = &[Rule {
    id: "cow-blow-up",
    needs_window: true,
    check: cow_blow_up,
}];

/// A forked child whose private copies grow this much within the window is copying
/// its parent's memory page by page (a snapshot under writes).
const COW_GROWTH: u64 = 32 << 20;

fn cow_blow_up(v: &DoctorView) -> Vec<Finding> {
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
                    "this forked child of {}'s Private_Dirty grew {} in {:.0} s: the parent keeps writing shared pages and each write copies one",
                    v.proc(p.last.ppid).map_or_else(
                        || format!("pid {}", p.last.ppid),
                        |parent| format!(
                            "{} (RSS {})",
                            parent.subject(),
                            mib(parent.last.rss.clone().unwrap_or(0) as f64)
                        )
                    ),
                    mib(grew as f64),
                    v.watched_secs()
                ),
                evidence: vec![format!("/proc/{}/smaps_rollup Private_Dirty {before} -> {after}", p.last.pid)],
                advice: "a snapshot in a forked child (BGSAVE, a checkpoint) can double memory under heavy writes: schedule it off-peak, or leave headroom equal to the write rate times the snapshot time".into(),
            })
        })
        .collect()
}
