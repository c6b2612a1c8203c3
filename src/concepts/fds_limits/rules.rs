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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::doctor::test_view::{fired, proc, view};
    use std::time::Duration;
    use syslens_probe::limits::LimitValue;

    fn holding(fds: u64, limit: LimitValue) -> DoctorView {
        let mut p = proc(7, "nginx");
        p.last.fds = Ok(fds);
        p.last.fd_soft_limit = Ok(limit);
        DoctorView {
            procs: vec![p],
            ..view(Duration::ZERO)
        }
    }

    fn severity(fds: u64) -> Option<Severity> {
        let found = fired(fds_near_limit, &holding(fds, LimitValue::Value(1000)));
        assert!(found.len() <= 1);
        found.first().map(|(_, s)| *s)
    }

    #[test]
    fn issue_23_fds_near_limit_warns_at_80_percent_and_errs_at_95() {
        assert_eq!(severity(799), None);
        assert_eq!(severity(800), Some(Severity::Warning));
        assert_eq!(severity(949), Some(Severity::Warning));
        assert_eq!(severity(950), Some(Severity::Error));
        assert_eq!(severity(1000), Some(Severity::Error));
        let f = &fds_near_limit(&holding(800, LimitValue::Value(1000)))[0];
        assert!(
            f.message.contains("80% of its fd limit (800/1000)"),
            "{}",
            f.message
        );
        assert!(fired(fds_near_limit, &holding(u64::MAX, LimitValue::Unlimited)).is_empty());
    }
}
