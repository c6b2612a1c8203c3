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
