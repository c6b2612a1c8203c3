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
