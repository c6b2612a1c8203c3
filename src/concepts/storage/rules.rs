//! Doctor rules: ephemeral and persistent storage.

use crate::catalogue::ConceptId;
use crate::model::doctor::{mib, DoctorView, Finding, Rule, Severity};

/// This concept's doctor rules.
pub const RULES: &[Rule] = &[
    Rule {
        id: "tmpfs-eating-ram",
        needs_window: false,
        check: tmpfs_eating_ram,
    },
    Rule {
        id: "deleted-file-held-open",
        needs_window: false,
        check: deleted_file_held_open,
    },
];

/// tmpfs and shared memory as a share of RAM that is worth a warning: it is RAM that
/// the kernel can only swap, never drop.
const SHMEM_SHARE: f64 = 0.25;
/// Space held by deleted-but-open files that turns information into a warning.
const DELETED_HELD: u64 = 100 << 20;

fn tmpfs_eating_ram(v: &DoctorView) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Ok(m) = &v.meminfo {
        if let (Ok(shmem), Ok(total)) = (m.shmem.clone(), m.mem_total.clone()) {
            if shmem as f64 >= total as f64 * SHMEM_SHARE {
                out.push(Finding {
                    rule: "tmpfs-eating-ram",
                    concept: ConceptId::Storage,
                    severity: Severity::Warning,
                    subject: "system".into(),
                    message: format!("tmpfs and shared memory hold {} ({:.0}% of RAM)", mib(shmem as f64), shmem as f64 / total as f64 * 100.0),
                    evidence: vec![format!("/proc/meminfo Shmem {shmem}")],
                    advice: "files on tmpfs (/tmp, /dev/shm, /run) live in RAM until deleted: syslens system lists the mounts by usage".into(),
                });
            }
        }
    }
    out
}

fn deleted_file_held_open(v: &DoctorView) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in &v.procs {
        let Ok(fds) = &p.fds else { continue };
        // A held /proc/N directory of an exited process (a monitor's handle) is shown
        // as deleted too, but holds no space: not a finding.
        let deleted: Vec<_> = fds
            .iter()
            .filter(|f| f.deleted && !f.target.starts_with("/proc/"))
            .collect();
        if deleted.is_empty() {
            continue;
        }
        let held: u64 = deleted.iter().filter_map(|f| f.size.clone().ok()).sum();
        out.push(Finding {
            rule: "deleted-file-held-open",
            concept: ConceptId::Storage,
            severity: if held >= DELETED_HELD { Severity::Warning } else { Severity::Info },
            subject: p.subject(),
            message: format!("holds {} deleted file(s) open, {} of space not freed until they are closed", deleted.len(), mib(held as f64)),
            evidence: deleted.iter().take(5).map(|f| format!("/proc/{}/fd/{} -> {} (deleted)", p.last.pid, f.fd, f.target)).collect(),
            advice: "a rotated log or a replaced file still open: reload or restart the process (or truncate via /proc/PID/fd/N) to free the space".into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::doctor::test_view::{fired, meminfo, proc, view};
    use std::time::Duration;
    use syslens_probe::fds::{FdKind, OpenFd};

    fn shmem(kb: u64) -> DoctorView {
        DoctorView {
            meminfo: meminfo(&[("MemTotal", 1000), ("Shmem", kb)]),
            ..view(Duration::ZERO)
        }
    }

    #[test]
    fn issue_23_tmpfs_eating_ram_from_a_quarter_of_ram() {
        assert!(fired(tmpfs_eating_ram, &shmem(249)).is_empty());
        assert_eq!(
            fired(tmpfs_eating_ram, &shmem(250)),
            [("system".to_owned(), Severity::Warning)]
        );
    }

    fn holding(files: &[(&str, u64)]) -> DoctorView {
        let mut p = proc(11, "logger");
        p.fds = Ok(files
            .iter()
            .zip(3..)
            .map(|((target, size), fd)| OpenFd {
                fd,
                target: (*target).into(),
                kind: FdKind::File,
                deleted: true,
                size: Ok(*size),
            })
            .collect());
        DoctorView {
            procs: vec![p],
            ..view(Duration::ZERO)
        }
    }

    #[test]
    fn issue_23_deleted_file_held_open_warns_from_100_mib_held() {
        let at = |files: &[(&str, u64)]| fired(deleted_file_held_open, &holding(files));
        let subject = "pid 11 (logger)".to_owned();
        assert_eq!(
            at(&[("/var/log/a.log", 1)]),
            [(subject.clone(), Severity::Info)]
        );
        // Two files together just under, and just at, the threshold.
        let half = DELETED_HELD / 2;
        assert_eq!(
            at(&[("/var/log/a.log", half), ("/var/log/b.log", half - 1)]),
            [(subject.clone(), Severity::Info)]
        );
        assert_eq!(
            at(&[("/var/log/a.log", half), ("/var/log/b.log", half)]),
            [(subject, Severity::Warning)]
        );
        // A held /proc/N directory of an exited process holds no space.
        assert!(at(&[("/proc/4242", DELETED_HELD)]).is_empty());
        assert!(at(&[]).is_empty());
    }
}
