//! Doctor rules: the kernel's allocators.

use crate::catalogue::ConceptId;
use crate::model::doctor::{mib, DoctorView, Finding, Rule, Severity};

/// This concept's doctor rules.
pub const RULES: &[Rule] = &[
    Rule {
        id: "high-orders-exhausted",
        needs_window: false,
        check: high_orders_exhausted,
    },
    Rule {
        id: "large-reclaimable-slab",
        needs_window: false,
        check: large_reclaimable_slab,
    },
];

/// The order of a 2 MiB huge page (with 4 KiB pages).
const HUGE_ORDER: usize = 9;
/// Unusable free space index above which allocations of that order wait for compaction.
const EXHAUSTED: f64 = 0.95;
/// Reclaimable slab as a share of RAM worth mentioning (dentry and inode caches grown by
/// file scans: the kernel frees them under pressure, but they distort "used" memory).
const SLAB_SHARE: f64 = 0.25;

fn high_orders_exhausted(v: &DoctorView) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Ok(zones) = &v.buddy {
        if let Some(z) = zones.iter().max_by_key(|z| z.free_pages()) {
            if let Some(Some(idx)) = z.unusable_index().get(HUGE_ORDER) {
                if *idx >= EXHAUSTED {
                    out.push(Finding {
                        rule: "high-orders-exhausted",
                        concept: ConceptId::SlabBuddy,
                        severity: Severity::Warning,
                        subject: format!("zone {}", z.zone),
                        message: format!("{:.0}% of free memory is in blocks smaller than {}: huge pages and large allocations will fail or wait for compaction", idx * 100.0, mib((v.page_size << HUGE_ORDER) as f64)),
                        evidence: vec![format!("/proc/buddyinfo node {} zone {}: free blocks per order {:?}", z.node, z.zone, z.free_blocks)],
                        advice: "memory is fragmented: compaction (vm.compaction_proactiveness) or reserving huge pages at boot helps workloads that need them".into(),
                    });
                }
            }
        }
    }
    out
}

fn large_reclaimable_slab(v: &DoctorView) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Ok(m) = &v.meminfo {
        if let (Ok(slab), Ok(total)) = (m.s_reclaimable.clone(), m.mem_total.clone()) {
            if slab as f64 >= total as f64 * SLAB_SHARE {
                out.push(Finding {
                    rule: "large-reclaimable-slab",
                    concept: ConceptId::SlabBuddy,
                    severity: Severity::Info,
                    subject: "system".into(),
                    message: format!("reclaimable slab holds {} ({:.0}% of RAM)", mib(slab as f64), slab as f64 / total as f64 * 100.0),
                    evidence: vec![format!("/proc/meminfo SReclaimable {slab}, MemTotal {total}")],
                    advice: "usually dentry and inode caches from file scans: the kernel frees them under pressure; /proc/slabinfo (root) names the cache".into(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::doctor::test_view::{fired, meminfo, view};
    use std::time::Duration;
    use syslens_probe::system::parse_buddyinfo;

    /// A Normal zone with `small` free single pages and `huge` free order-9 blocks
    /// (512 pages each), beside a DMA zone with less free memory, all of it fragmented.
    fn buddy(small: u64, huge: u64) -> DoctorView {
        let text = format!(
            "Node 0, zone      DMA 3 0 0 0 0 0 0 0 0 0 0\nNode 0, zone   Normal {small} 0 0 0 0 0 0 0 0 {huge} 0\n"
        );
        DoctorView {
            buddy: parse_buddyinfo(text.as_bytes()),
            ..view(Duration::ZERO)
        }
    }

    #[test]
    fn issue_23_high_orders_exhausted_from_95_percent_unusable_at_order_9() {
        assert_eq!(HUGE_ORDER, 9);
        // 95 of every 100 free pages single: unusable index 0.95 at order 9.
        assert_eq!(
            fired(high_orders_exhausted, &buddy(95 * 512, 5)),
            [("zone Normal".to_owned(), Severity::Warning)]
        );
        assert!(fired(high_orders_exhausted, &buddy(94 * 512, 6)).is_empty());
        // 94.99% unusable: just below the threshold.
        assert!(fired(high_orders_exhausted, &buddy(9499 * 512, 501)).is_empty());
        let f = &high_orders_exhausted(&buddy(95 * 512, 5))[0];
        assert!(
            f.message
                .starts_with("95% of free memory is in blocks smaller than 2.0 MiB"),
            "{}",
            f.message
        );
        // The zone with the most free memory is judged: with Normal empty, the DMA
        // zone's three single pages are.
        assert_eq!(
            fired(high_orders_exhausted, &buddy(0, 0)),
            [("zone DMA".to_owned(), Severity::Warning)]
        );
    }

    fn slab(reclaimable_kb: u64) -> DoctorView {
        DoctorView {
            meminfo: meminfo(&[("MemTotal", 1000), ("SReclaimable", reclaimable_kb)]),
            ..view(Duration::ZERO)
        }
    }

    #[test]
    fn issue_23_large_reclaimable_slab_from_a_quarter_of_ram() {
        assert!(fired(large_reclaimable_slab, &slab(249)).is_empty());
        assert_eq!(
            fired(large_reclaimable_slab, &slab(250)),
            [("system".to_owned(), Severity::Info)]
        );
        let f = &large_reclaimable_slab(&slab(250))[0];
        assert!(f.message.ends_with("(25% of RAM)"), "{}", f.message);
    }
}
