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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::doctor::test_view::{fired, proc, view};
    use std::time::Duration;

    fn child_grew(grew: u64) -> DoctorView {
        let mut p = proc(20, "redis");
        p.last.ppid = 10;
        p.private_dirty = Some((1 << 20, (1 << 20) + grew));
        DoctorView {
            procs: vec![p],
            ..view(Duration::from_secs(10))
        }
    }

    #[test]
    fn issue_23_cow_blow_up_fires_from_its_growth_threshold() {
        assert!(fired(cow_blow_up, &child_grew(COW_GROWTH - 1)).is_empty());
        assert_eq!(
            fired(cow_blow_up, &child_grew(COW_GROWTH)),
            [("pid 20 (redis)".to_owned(), Severity::Warning)]
        );
        let f = &cow_blow_up(&child_grew(COW_GROWTH))[0];
        assert!(f.message.contains("pid 10"), "{}", f.message);
        // Shrinking private memory is no growth; no reading is no finding.
        let mut v = child_grew(0);
        v.procs[0].private_dirty = Some((COW_GROWTH * 2, 0));
        assert!(fired(cow_blow_up, &v).is_empty());
        v.procs[0].private_dirty = None;
        assert!(fired(cow_blow_up, &v).is_empty());
    }

    #[test]
    fn issue_15_cow_blow_up_names_the_parent_and_its_rss() {
        let mut v = child_grew(COW_GROWTH);
        let mut parent = proc(10, "redis-server");
        parent.last.rss = Ok(200 << 20);
        v.procs.push(parent);
        let f = cow_blow_up(&v);
        // The parent itself has no Private_Dirty reading: only the child is named.
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].subject, "pid 20 (redis)");
        assert!(
            f[0].message
                .contains("forked child of pid 10 (redis-server) (RSS 200.0 MiB)"),
            "{}",
            f[0].message
        );
        // The parent's container is named with it.
        v.procs[1].cgroup = Some(format!("/docker/{}", "3f2a9c1b7d4e".repeat(5) + "abcd"));
        let f = cow_blow_up(&v);
        assert!(
            f[0].message
                .contains("pid 10 (redis-server), container 3f2a9c1b7d4e (docker) (RSS 200.0 MiB)"),
            "{}",
            f[0].message
        );
    }
}
