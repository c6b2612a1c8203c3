//! Doctor rules: the high-water mark.

use crate::catalogue::ConceptId;
use crate::model::doctor::{mib, DoctorView, Finding, Rule, Severity};

/// This concept's doctor rules.
pub const RULES: &[Rule] = &[
    Rule {
        id: "rss-far-below-peak",
        needs_window: false,
        check: rss_far_below_peak,
    },
    Rule {
        id: "cgroup-sized-for-spike",
        needs_window: false,
        check: cgroup_sized_for_spike,
    },
];

/// A peak this large is worth a look when RSS has fallen to half of it.
const HWM_WORTH_NOTING: u64 = 256 << 20;
const HWM_GAP_SHARE: f64 = 0.5;
/// A cgroup whose peak came within 10% of the limit that binds it...
const PEAK_NEAR_LIMIT: f64 = 0.9;
/// ...while its working set is at most half of it, was sized for a spike.
const WORKING_SET_LOW: f64 = 0.5;

fn rss_far_below_peak(v: &DoctorView) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in &v.procs {
        let (Ok(rss), Ok(hwm)) = (p.last.rss.clone(), p.last.hwm.clone()) else {
            continue;
        };
        if hwm >= HWM_WORTH_NOTING && (rss as f64) < hwm as f64 * HWM_GAP_SHARE {
            out.push(Finding {
                rule: "rss-far-below-peak",
                concept: ConceptId::HighWaterMark,
                severity: Severity::Info,
                subject: p.subject(),
                message: format!("RSS {} is far below its peak VmHWM {}: a spike happened", mib(rss as f64), mib(hwm as f64)),
                evidence: vec![format!("/proc/{}/status VmRSS {}, VmHWM {}", p.last.pid, rss, hwm)],
                advice: "size memory limits for the peak, not the average; if the spike was a one-off (a large request, a cache rebuild), find it in the service's logs around the time it started".into(),
            });
        }
    }
    out
}

/// Judged against the limit that binds (the lowest up the chain, often a parent's: a
/// pod's, a container's), with the peak and working set of the cgroup that sets it: a
/// leaf without a limit of its own is still sized by its parent's.
fn cgroup_sized_for_spike(v: &DoctorView) -> Vec<Finding> {
    let mut out = Vec::new();
    for cg in &v.limited_cgroups {
        let (limit, set_by) = (cg.limit.value, &cg.limit.set_by);
        let (Ok(peak), Ok(ws)) = (cg.memory.peak.clone(), cg.memory.working_set.clone()) else {
            continue;
        };
        if sized_for_spike(peak, ws, limit) {
            out.push(Finding {
                rule: "cgroup-sized-for-spike",
                concept: ConceptId::HighWaterMark,
                severity: Severity::Warning,
                subject: format!("cgroup {}", set_by.path),
                message: format!(
                    "peak {} came within {:.0}% of the limit {} (set by {}, {}), while the working set is {}",
                    mib(peak as f64),
                    (1.0 - PEAK_NEAR_LIMIT) * 100.0,
                    mib(limit as f64),
                    set_by.path,
                    cg.limit.file,
                    mib(ws as f64)
                ),
                evidence: vec![format!("{}: peak {peak}, {} {limit}, working set {ws}", set_by.host_dir, cg.limit.file)],
                advice: "a spike nearly hit the limit: find what allocates in bursts, or raise the limit for the spike; the steady state needs far less".into(),
            });
        }
    }
    out
}

/// A peak within `1 - PEAK_NEAR_LIMIT` of the limit while the working set is at most
/// `WORKING_SET_LOW` of it.
fn sized_for_spike(peak: u64, working_set: u64, limit: u64) -> bool {
    peak as f64 >= limit as f64 * PEAK_NEAR_LIMIT
        && working_set as f64 <= limit as f64 * WORKING_SET_LOW
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::doctor::test_view::{self, fired, proc, view};
    use std::time::Duration;

    fn peaked(rss: u64, hwm: u64) -> DoctorView {
        let mut p = proc(3, "java");
        p.last.rss = Ok(rss);
        p.last.hwm = Ok(hwm);
        DoctorView {
            procs: vec![p],
            ..view(Duration::ZERO)
        }
    }

    #[test]
    fn issue_23_rss_far_below_peak_needs_a_large_peak_and_rss_below_half_of_it() {
        let peak = HWM_WORTH_NOTING;
        assert_eq!(
            fired(rss_far_below_peak, &peaked(peak / 2 - 1, peak)),
            [("pid 3 (java)".to_owned(), Severity::Info)]
        );
        // At half the peak, not below it.
        assert!(fired(rss_far_below_peak, &peaked(peak / 2, peak)).is_empty());
        // A peak just under the size worth noting, however far RSS fell.
        assert!(fired(rss_far_below_peak, &peaked(0, peak - 1)).is_empty());
        let mut v = peaked(0, peak);
        v.procs[0].last.hwm = Err(syslens_probe::Missing::Exited);
        assert!(fired(rss_far_below_peak, &v).is_empty());
    }

    #[test]
    fn issue_23_cgroup_sized_for_spike_at_its_boundaries() {
        let limit = 1000 << 20;
        let near = (limit as f64 * PEAK_NEAR_LIMIT) as u64;
        let low = (limit as f64 * WORKING_SET_LOW) as u64;
        assert!(sized_for_spike(near, low, limit));
        assert!(
            !sized_for_spike(near - 1, low, limit),
            "a peak just short of 90% is no spike"
        );
        assert!(
            !sized_for_spike(near, low + 1, limit),
            "a working set above half is not small"
        );
        assert!(sized_for_spike(limit, 0, limit));
    }

    #[test]
    fn issue_23_cgroup_sized_for_spike_names_the_cgroup_setting_the_limit() {
        let limit: u64 = 1000 << 20;
        let near = (limit as f64 * PEAK_NEAR_LIMIT) as u64;
        let low = (limit as f64 * WORKING_SET_LOW) as u64;
        let spiked = |ws, peak| DoctorView {
            limited_cgroups: vec![test_view::limited(ws, peak, limit)],
            ..view(Duration::ZERO)
        };
        let f = cgroup_sized_for_spike(&spiked(Some(low), Some(near)));
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].subject.as_str(), f[0].severity),
            ("cgroup /kubepods/pod1", Severity::Warning)
        );
        assert_eq!(
            f[0].message,
            "peak 900.0 MiB came within 10% of the limit 1000.0 MiB (set by /kubepods/pod1, memory.max), while the working set is 500.0 MiB"
        );
        assert_eq!(
            f[0].evidence,
            ["/sys/fs/cgroup/kubepods/pod1: peak 943718400, memory.max 1048576000, working set 524288000"]
        );
        assert!(cgroup_sized_for_spike(&spiked(Some(low + 1), Some(near))).is_empty());
        assert!(cgroup_sized_for_spike(&spiked(Some(low), Some(near - 1))).is_empty());
        // Either figure missing (memory.stat unreadable; v2 has no memory.peak before 5.19).
        assert!(cgroup_sized_for_spike(&spiked(None, Some(near))).is_empty());
        assert!(cgroup_sized_for_spike(&spiked(Some(low), None)).is_empty());
    }
}
