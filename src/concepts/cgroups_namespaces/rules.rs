//! Doctor rules: cgroups and namespaces.

use crate::catalogue::ConceptId;
use crate::model::doctor::{DoctorView, Finding, Rule, Severity};

/// This concept's doctor rules.
pub const RULES: &[Rule] = &[Rule {
    id: "cgroup-pids-near-limit",
    needs_window: false,
    check: cgroup_pids_near_limit,
}];

/// Share of pids.max in use (pids.current of the cgroup that sets it) that gives a
/// warning, and an error: the same steps as fds-near-limit. Past the limit, fork and
/// clone fail with EAGAIN, so a thread pool or a forking server stops growing.
const PIDS_WARN: f64 = 0.8;
const PIDS_ERROR: f64 = 0.95;

/// Compares the tasks of the cgroup that sets the binding pids.max (the lowest up the
/// chain: a container's or a pod's, often above the process's own cgroup) with it: the
/// kernel counts every task below that cgroup against it.
fn cgroup_pids_near_limit(v: &DoctorView) -> Vec<Finding> {
    let mut out = Vec::new();
    for cg in &v.pids_limited {
        let (max, set_by) = (cg.limit.value, &cg.limit.set_by);
        let Some(Ok(current)) = cg.limit.used.clone() else {
            continue;
        };
        if max == 0 {
            continue;
        }
        let ratio = current as f64 / max as f64;
        if ratio < PIDS_WARN {
            continue;
        }
        let (subject, shared) = cg.limit.setter_subject(&cg.below);
        let severity = if ratio >= PIDS_ERROR {
            Severity::Error
        } else {
            Severity::Warning
        };
        out.push(Finding {
            rule: "cgroup-pids-near-limit",
            concept: ConceptId::CgroupsNamespaces,
            severity,
            subject,
            message: format!(
                "holds {:.0}% of {} pids limit ({current}/{max} tasks, set by {}, {}; a warning from {:.0}%, an error from {:.0}%){shared}: a fork or a new thread past it fails with EAGAIN",
                ratio * 100.0,
                cg.limit.whose(),
                set_by.path,
                cg.limit.file,
                PIDS_WARN * 100.0,
                PIDS_ERROR * 100.0,
            ),
            evidence: vec![format!(
                "{0}/pids.current {current}; {0}/{1} {max}",
                set_by.host_dir, cg.limit.file
            )],
            advice: "raise pids.max (TasksMax= in the unit, docker --pids-limit, the pod's pid limit) or find what forks or spawns threads without bound: syslens system --processes --container ID lists them".into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::doctor::test_view::{fired, view};
    use crate::model::doctor::PidsLimited;
    use crate::model::limits::Bound;
    use std::time::Duration;
    use syslens_probe::cgroup::{CgroupDir, CgroupVersion};

    /// A v2 pod cgroup setting pids.max `max` with `current` tasks (`None`: unread),
    /// binding itself and its `app` child.
    fn tasks(current: Option<u64>, max: u64) -> DoctorView {
        let dir = CgroupDir {
            version: CgroupVersion::V2,
            path: "/kubepods/pod1".into(),
            host_dir: "/sys/fs/cgroup/kubepods/pod1".into(),
        };
        DoctorView {
            pids_limited: vec![PidsLimited {
                limit: Bound {
                    value: max,
                    set_by: dir,
                    file: "pids.max",
                    used: Some(current.ok_or(syslens_probe::Missing::Exited)),
                },
                below: vec!["/kubepods/pod1".into(), "/kubepods/pod1/app".into()],
            }],
            ..view(Duration::ZERO)
        }
    }

    fn severity(current: u64) -> Option<Severity> {
        let found = fired(cgroup_pids_near_limit, &tasks(Some(current), 1000));
        assert!(found.len() <= 1);
        found.first().map(|(_, s)| *s)
    }

    #[test]
    fn issue_15_cgroup_pids_near_limit_warns_at_80_percent_and_errs_at_95() {
        assert_eq!(severity(799), None);
        assert_eq!(severity(800), Some(Severity::Warning));
        assert_eq!(severity(949), Some(Severity::Warning));
        assert_eq!(severity(950), Some(Severity::Error));
        assert_eq!(severity(1000), Some(Severity::Error));
        let f = &cgroup_pids_near_limit(&tasks(Some(8), 10))[0];
        assert!(
            f.subject.starts_with("cgroup /kubepods/pod1"),
            "{}",
            f.subject
        );
        assert!(
            f.message.contains(
                "pids limit (8/10 tasks, set by /kubepods/pod1, pids.max; a warning from 80%, an error from 95%); it binds the processes in /kubepods/pod1/app"
            ) && f.message.starts_with("holds 80% of the "),
            "{}",
            f.message
        );
        assert!(
            f.evidence[0].contains("/sys/fs/cgroup/kubepods/pod1/pids.current 8"),
            "{:?}",
            f.evidence
        );
        // Unread pids.current says nothing; a zero limit is not a share.
        assert!(fired(cgroup_pids_near_limit, &tasks(None, 10)).is_empty());
        assert!(fired(cgroup_pids_near_limit, &tasks(Some(0), 0)).is_empty());
    }
}
