//! Doctor rules: signals.

use std::collections::HashMap;

use crate::catalogue::ConceptId;
use crate::model::doctor::{DoctorView, Finding, Rule, Severity};

/// This concept's doctor rules.
pub const RULES: &[Rule] = &[
    Rule {
        id: "sigterm-ignored",
        needs_window: false,
        check: sigterm_ignored,
    },
    Rule {
        id: "zombies-piling-up",
        needs_window: false,
        check: zombies_piling_up,
    },
];

const SIGTERM: u64 = 1 << (15 - 1);
/// Zombies under one parent that show it does not reap its children.
const ZOMBIES: usize = 5;

fn sigterm_ignored(v: &DoctorView) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in v.procs.iter().filter(|p| !p.is_kernel_thread()) {
        let Ok(st) = &p.status else { continue };
        let ignored = st.sig_ign.clone().unwrap_or(0) & SIGTERM != 0;
        let blocked =
            !p.thread_blocked.is_empty() && p.thread_blocked.iter().all(|m| m & SIGTERM != 0);
        // The init of a nested PID namespace (a container's pid 1) without a handler:
        // the kernel drops SIGTERM (`docker stop` waits, then SIGKILLs). The host's own
        // init is left out: it is meant to be unkillable.
        let caught = st.sig_cgt.clone().unwrap_or(0) & SIGTERM != 0;
        let dropped = !ignored
            && !caught
            && super::is_namespace_init(st)
            && st.ns_levels.clone().is_ok_and(|n| n > 1);
        if ignored || blocked || dropped {
            let how = if ignored {
                "ignores"
            } else if blocked {
                "blocks in every thread"
            } else {
                "is pid 1 of its PID namespace with no handler, so the kernel drops"
            };
            let advice = if dropped {
                "handle SIGTERM in the program, or run it under an init that forwards signals and reaps (tini, dumb-init, `docker run --init`, shareProcessNamespace in Kubernetes)"
            } else {
                "handle SIGTERM (finish or abandon work, flush, exit); if it is on purpose (a shell's job control), expect the stop timeout and a SIGKILL"
            };
            out.push(Finding {
                rule: "sigterm-ignored",
                concept: ConceptId::Signals,
                severity: Severity::Warning,
                subject: p.subject(),
                message: format!("{how} SIGTERM: `kill PID`, `systemctl stop` and `docker stop` will not stop it; only SIGKILL will, with no cleanup"),
                evidence: vec![format!(
                    "/proc/{}/status SigIgn {:#x}, SigCgt {:#x}, SigBlk per thread {:x?}, NSpid ..{}",
                    p.last.pid,
                    st.sig_ign.clone().unwrap_or(0),
                    st.sig_cgt.clone().unwrap_or(0),
                    p.thread_blocked,
                    st.ns_pid.clone().map_or("?".into(), |n| n.to_string())
                )],
                advice: advice.into(),
            });
        }
    }
    out
}

fn zombies_piling_up(v: &DoctorView) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut zombies: HashMap<i64, Vec<i32>> = HashMap::new();
    for p in v.procs.iter().filter(|p| p.last.state == b'Z') {
        zombies.entry(p.last.ppid).or_default().push(p.last.pid);
    }
    for (parent, kids) in zombies.into_iter().filter(|(_, k)| k.len() >= ZOMBIES) {
        let name = v
            .proc(parent)
            .map_or_else(|| format!("pid {parent}"), |p| p.subject());
        out.push(Finding {
            rule: "zombies-piling-up",
            concept: ConceptId::Signals,
            severity: Severity::Warning,
            subject: name,
            message: format!("{} exited children are not reaped (state Z)", kids.len()),
            evidence: vec![format!("/proc/*/stat: pids {kids:?} in state Z with ppid {parent}")],
            advice: "the parent does not wait(2) for its children: fix it to reap (or ignore SIGCHLD); zombies hold a PID each until then".into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::doctor::test_view::{fired, proc, view};
    use std::time::Duration;
    use syslens_probe::status::Status;

    /// A process whose status has these lines, with `blocked` as its threads' SigBlk.
    fn with_status(status: &str, blocked: Vec<u64>) -> DoctorView {
        let mut p = proc(12, "daemon");
        p.status = Ok(Status::parse(status.as_bytes()));
        p.thread_blocked = blocked;
        DoctorView {
            procs: vec![p],
            ..view(Duration::ZERO)
        }
    }

    const PLAIN: &str = "SigIgn:\t0000000000000000\nSigCgt:\t0000000000000000\nNSpid:\t12\n";

    #[test]
    fn issue_23_sigterm_ignored_by_disposition_mask_or_namespace_init() {
        let warned = [("pid 12 (daemon)".to_owned(), Severity::Warning)];
        assert!(fired(sigterm_ignored, &with_status(PLAIN, vec![0, 0])).is_empty());
        let ignores = "SigIgn:\t0000000000004000\nSigCgt:\t0000000000000000\n";
        assert_eq!(
            fired(sigterm_ignored, &with_status(ignores, vec![0])),
            warned
        );
        // SIGTERM is bit 14; the bits beside it are other signals.
        let others = "SigIgn:\t000000000000a000\nSigCgt:\t0000000000000000\n";
        assert!(fired(sigterm_ignored, &with_status(others, vec![0])).is_empty());
        // Blocked in every thread, not in only some.
        assert_eq!(
            fired(sigterm_ignored, &with_status(PLAIN, vec![SIGTERM; 2])),
            warned
        );
        assert!(fired(sigterm_ignored, &with_status(PLAIN, vec![SIGTERM, 0])).is_empty());
        // A container's init without a handler; the host's init, or one with a handler, not.
        let init = "SigIgn:\t0000000000000000\nSigCgt:\t0000000000000000\nNSpid:\t812\t1\n";
        let f = sigterm_ignored(&with_status(init, vec![0]));
        assert_eq!(f.len(), 1);
        assert!(
            f[0].message.starts_with("is pid 1 of its PID namespace"),
            "{}",
            f[0].message
        );
        let host_init = "SigIgn:\t0000000000000000\nSigCgt:\t0000000000000000\nNSpid:\t1\n";
        assert!(fired(sigterm_ignored, &with_status(host_init, vec![0])).is_empty());
        let handled = "SigIgn:\t0000000000000000\nSigCgt:\t0000000000004000\nNSpid:\t812\t1\n";
        assert!(fired(sigterm_ignored, &with_status(handled, vec![0])).is_empty());
    }

    fn zombies(n: i32) -> DoctorView {
        let mut procs = vec![proc(2, "parent")];
        procs.extend((0..n).map(|i| {
            let mut p = proc(100 + i, "child");
            p.last.state = b'Z';
            p.last.ppid = 2;
            p
        }));
        DoctorView {
            procs,
            ..view(Duration::ZERO)
        }
    }

    #[test]
    fn issue_23_zombies_piling_up_from_five_under_one_parent() {
        let n = i32::try_from(ZOMBIES).unwrap();
        assert!(fired(zombies_piling_up, &zombies(n - 1)).is_empty());
        assert_eq!(
            fired(zombies_piling_up, &zombies(n)),
            [("pid 2 (parent)".to_owned(), Severity::Warning)]
        );
        let f = &zombies_piling_up(&zombies(n))[0];
        assert_eq!(
            f.message,
            format!("{ZOMBIES} exited children are not reaped (state Z)")
        );
    }
}
