//! `syslens doctor`: every concept's rules over the doctor's view, turned into findings
//! a person can act on (what was seen, with figures and their source; which concept; why
//! it matters; what to do), worst first.

use std::collections::BTreeSet;

use serde::Serialize;
use syslens_probe::Missing;

use crate::concepts::REGISTRY;
use crate::model::doctor::{DoctorView, Finding};

/// The doctor's report.
#[derive(Debug, Serialize)]
pub struct DoctorReport {
    /// Seconds the processes were really watched, first scan to last.
    pub window_seconds: f64,
    /// How many processes the rules saw.
    pub processes: usize,
    /// The findings, worst first, then in catalogue order.
    pub findings: Vec<Finding>,
    /// Rules that did not run, and why (without a watch window, the rules that judge a
    /// change over time).
    pub rules_not_run: Vec<String>,
    /// What could not be read, and why (it limits what the rules can see).
    pub unreadable: Vec<String>,
}

/// Every rule of every concept over `v`. Rules that judge a change need a window: with
/// none they are listed in `rules_not_run` instead of dividing by zero.
pub fn report(v: &DoctorView) -> DoctorReport {
    let watched = v.watched_secs() > 0.0;
    let mut findings = Vec::new();
    let mut rules_not_run = Vec::new();
    for rule in REGISTRY.iter().flat_map(|c| c.rules) {
        if rule.needs_window && !watched {
            rules_not_run.push(rule.id.to_owned());
            continue;
        }
        findings.extend((rule.check)(v));
    }
    // Scoped to processes: the findings about them, and about the cgroups they run in
    // or whose limits bind them; the system-wide ones belong to a full run.
    if v.scoped {
        let cgroups = v.scope_cgroups();
        findings.retain(|x| in_scope(&x.subject, &cgroups));
    }
    // Worst first, then by concept (catalogue order).
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.concept.cmp(&b.concept)));
    if !rules_not_run.is_empty() {
        rules_not_run = vec![format!(
            "{} (they compare samples over a watch window: --window above 0)",
            rules_not_run.join(", ")
        )];
    }
    let mut unreadable = Vec::new();
    if let Err(e) = &v.ooms {
        unreadable.push(format!("OOM kills from the kernel log: {e}"));
    }
    let no_fds = v
        .procs
        .iter()
        .filter(|p| matches!(p.fds, Err(Missing::Permission { .. })))
        .count();
    if no_fds > 0 {
        unreadable.push(format!(
            "open files of {no_fds} processes: no permission (run as root)"
        ));
    }
    DoctorReport {
        window_seconds: v.watched_secs(),
        processes: v.procs.len(),
        findings,
        rules_not_run,
        unreadable,
    }
}

/// Whether a finding's subject is about the processes in scope (rules look only at
/// those: "pid 812 (nginx)", or "3 processes" of them) or one of their `cgroups`. A
/// cgroup subject is matched whole against the known paths (a container's
/// description may follow after a comma), never parsed.
fn in_scope(subject: &str, cgroups: &BTreeSet<&str>) -> bool {
    let some_of_them = subject
        .strip_suffix(" processes")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if subject.starts_with("pid ") || some_of_them {
        return true;
    }
    subject.strip_prefix("cgroup ").is_some_and(|rest| {
        cgroups.iter().any(|c| {
            rest.strip_prefix(c)
                .is_some_and(|tail| tail.is_empty() || tail.starts_with(", "))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_15_doctor_pid_keeps_the_findings_of_its_cgroups() {
        let cgroups: BTreeSet<&str> = ["/app", "/app/web"].into();
        assert!(in_scope("pid 812 (nginx)", &cgroups));
        assert!(in_scope("cgroup /app", &cgroups));
        assert!(in_scope(
            "cgroup /app/web, container 3f2a9c1b7d4e (docker)",
            &cgroups
        ));
        assert!(
            !in_scope("cgroup /app/webby", &cgroups),
            "a sibling with a longer name"
        );
        assert!(!in_scope("cgroup /other", &cgroups));
        assert!(!in_scope("system", &cgroups));
        assert!(!in_scope("zone Normal", &cgroups));
        assert!(in_scope("2 processes", &cgroups), "two of those in view");
        assert!(!in_scope("processes", &cgroups));
    }

    #[test]
    fn rule_ids_are_unique_and_named_like_their_findings() {
        let mut seen = BTreeSet::new();
        for c in REGISTRY.iter() {
            for r in c.rules {
                assert!(seen.insert(r.id), "rule {} twice", r.id);
                assert!(
                    r.id.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                    "{}",
                    r.id
                );
            }
        }
        assert!(seen.len() >= 21, "{} rules", seen.len());
    }
}
