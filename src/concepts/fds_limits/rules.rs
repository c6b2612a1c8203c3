//! Doctor rules: file descriptors and limits.

use syslens_probe::table::fd_ratio;

use crate::catalogue::ConceptId;
use crate::model::doctor::{DoctorView, Finding, Rule, Severity};

/// This concept's doctor rules.
pub const RULES: &[Rule] = &[Rule {
    id: "fds-near-limit",
    needs_window: false,
    check: fds_near_limit,
}];

/// Share of the soft fd limit in use that gives a warning, and an error.
const FD_WARN: f64 = 0.8;
const FD_ERROR: f64 = 0.95;

fn fds_near_limit(v: &DoctorView) -> Vec<Finding> {
    v.procs
        .iter()
        .filter_map(|p| {
            let ratio = fd_ratio(&p.last)?;
            (ratio >= FD_WARN).then(|| {
                let (n, l) = (p.last.fds.clone().unwrap_or(0), p.last.fd_soft_limit.clone().ok());
                let limit = match l {
                    Some(syslens_probe::limits::LimitValue::Value(x)) => x.to_string(),
                    _ => "unlimited".into(),
                };
                Finding {
                    rule: "fds-near-limit",
                    concept: ConceptId::FdsLimits,
                    severity: if ratio >= FD_ERROR { Severity::Error } else { Severity::Warning },
                    subject: p.subject(),
                    message: format!("holds {:.0}% of its fd limit ({n}/{limit}): the next accept or open will fail with EMFILE", ratio * 100.0),
                    evidence: vec![format!("/proc/{0}/fd: {n} open; /proc/{0}/limits Max open files {limit}", p.last.pid)],
                    advice: "raise the limit (LimitNOFILE= in the unit, ulimit -n) or find the leak: syslens inspect PID lists the fds by kind".into(),
                }
            })
        })
        .collect()
}
