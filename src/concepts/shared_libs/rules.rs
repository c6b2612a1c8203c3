//! Doctor rules: shared libraries.

use std::collections::BTreeMap;

use crate::catalogue::ConceptId;
use crate::model::doctor::{DoctorView, Finding, Rule, Severity};

/// This concept's doctor rules.
pub const RULES: &[Rule] = &[Rule {
    id: "deleted-library-mapped",
    needs_window: false,
    check: deleted_library_mapped,
}];

fn deleted_library_mapped(v: &DoctorView) -> Vec<Finding> {
    let mut by_lib: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for p in &v.procs {
        for lib in &p.deleted_libs {
            by_lib.entry(lib.as_str()).or_default().push(p.subject());
        }
    }
    by_lib
        .into_iter()
        .map(|(lib, procs)| {
            let name = lib.rsplit('/').next().unwrap_or(lib);
            Finding {
                rule: "deleted-library-mapped",
                concept: ConceptId::SharedLibs,
                severity: Severity::Warning,
                subject: if procs.len() == 1 { procs[0].clone() } else { format!("{} processes", procs.len()) },
                message: format!("{} {} a deleted {name}: the file was deleted or replaced on disk (an update renames a new one over it) but the old code still runs", procs.join(", "), if procs.len() == 1 { "maps" } else { "map" }),
                evidence: vec![format!("/proc/PID/maps: {lib} (deleted)")],
                advice: format!("restart {} to run the patched library", if procs.len() == 1 { "it" } else { "them" }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::doctor::test_view::{fired, proc, view};
    use std::time::Duration;

    const SSL: &str = "/usr/lib/libssl.so.3";

    fn mapping(pids: &[i32]) -> DoctorView {
        let procs = pids
            .iter()
            .map(|&pid| {
                let mut p = proc(pid, "sshd");
                p.deleted_libs = vec![SSL.into()];
                p
            })
            .chain([proc(99, "clean")])
            .collect();
        DoctorView {
            procs,
            ..view(Duration::ZERO)
        }
    }

    #[test]
    fn issue_23_deleted_library_mapped_is_one_finding_per_library() {
        assert!(fired(deleted_library_mapped, &mapping(&[])).is_empty());
        assert_eq!(
            fired(deleted_library_mapped, &mapping(&[3])),
            [("pid 3 (sshd)".to_owned(), Severity::Warning)]
        );
        let f = deleted_library_mapped(&mapping(&[3, 4]));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].subject, "2 processes");
        assert!(
            f[0].message.contains("map a deleted libssl.so.3"),
            "{}",
            f[0].message
        );
        assert_eq!(f[0].advice, "restart them to run the patched library");
    }
}
