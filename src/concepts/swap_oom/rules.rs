//! Doctor rules: swap and the OOM killer.

use crate::catalogue::ConceptId;
use crate::model::doctor::{mib, DoctorView, Finding, Rule, Severity};

/// This concept's doctor rules.
pub const RULES: &[Rule] = &[
    Rule {
        id: "oom-first-victim",
        needs_window: false,
        check: oom_first_victim,
    },
    Rule {
        id: "cgroup-working-set-near-limit",
        needs_window: false,
        check: cgroup_working_set_near_limit,
    },
    Rule {
        id: "memory-pressure",
        needs_window: false,
        check: memory_pressure,
    },
    Rule {
        id: "oom-killed",
        needs_window: false,
        check: oom_killed,
    },
];

/// A cgroup whose working set (usage minus inactive file cache: usage alone counts
/// cache that the kernel drops at will) is this close to its limit will reclaim hard
/// or OOM soon.
const WORKING_SET_NEAR_LIMIT: f64 = 0.9;
/// Memory pressure (share of time some task stalled on memory, avg10) worth a warning.
const PRESSURE: f64 = 10.0;
/// OOM kills younger than this are reported.
const RECENT_OOM_SECONDS: f64 = 24.0 * 3600.0;

fn ago(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s ago")
    } else if s < 7200.0 {
        format!("{:.0} min ago", s / 60.0)
    } else {
        format!("{:.1} h ago", s / 3600.0)
    }
}

fn oom_first_victim(v: &DoctorView) -> Vec<Finding> {
    let mut out = Vec::new();
    // Chosen over every process when the view was collected; named only when it is
    // one the view shows (a scoped run says nothing of the others).
    if let Some(p) = v.oom_first.and_then(|pid| v.proc(i64::from(pid))) {
        let score = p.last.oom_score.clone().unwrap_or(0);
        if score > 0 {
            out.push(Finding {
                rule: "oom-first-victim",
                concept: ConceptId::SwapOom,
                severity: Severity::Info,
                subject: p.subject(),
                message: format!("the OOM killer would pick this process first (oom_score {score})"),
                evidence: vec![format!("/proc/{}/oom_score {score}; RSS {}", p.last.pid, mib(p.last.rss.clone().unwrap_or(0) as f64))],
                advice: "if it must survive, lower its oom_score_adj (needs CAP_SYS_RESOURCE) or raise that of expendable workers".into(),
            });
        }
    }
    out
}

/// Compares the working set of the cgroup that sets the binding limit (the lowest up
/// the chain, often a parent's) with that limit: a child's own usage says nothing of a
/// limit its parent shares among all its children.
fn cgroup_working_set_near_limit(v: &DoctorView) -> Vec<Finding> {
    let mut out = Vec::new();
    for cg in &v.limited_cgroups {
        let (limit, set_by) = (cg.limit.value, &cg.limit.set_by);
        let Ok(ws) = cg.memory.working_set.clone() else {
            continue;
        };
        if ws as f64 >= limit as f64 * WORKING_SET_NEAR_LIMIT {
            let (subject, shared) = cg.limit.setter_subject(&cg.below);
            out.push(Finding {
                rule: "cgroup-working-set-near-limit",
                concept: ConceptId::SwapOom,
                severity: Severity::Warning,
                subject,
                message: format!(
                    "working set {} is {:.0}% of the limit {} (set by {}, {}){shared}",
                    mib(ws as f64),
                    ws as f64 / limit as f64 * 100.0,
                    mib(limit as f64),
                    set_by.path,
                    cg.limit.file
                ),
                evidence: vec![format!(
                    "{}: usage minus inactive_file {ws}; {} {limit}",
                    set_by.host_dir, cg.limit.file
                )],
                advice: "it will reclaim hard and then OOM-kill inside the cgroup: raise the limit or reduce the working set".into(),
            });
        }
    }
    out
}

fn memory_pressure(v: &DoctorView) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Ok(psi) = &v.psi_memory {
        if psi.some.avg10 >= PRESSURE {
            out.push(Finding {
                rule: "memory-pressure",
                concept: ConceptId::SwapOom,
                severity: Severity::Warning,
                subject: "system".into(),
                message: format!("tasks stalled on memory {:.1}% of the last 10 s (full: {:.1}%)", psi.some.avg10, psi.full.map_or(0.0, |f| f.avg10)),
                evidence: vec![format!("/proc/pressure/memory some avg10={:.2}", psi.some.avg10)],
                advice: "reclaim is slowing work down: find the cgroups near their limits, or add memory".into(),
            });
        }
    }
    out
}

fn oom_killed(v: &DoctorView) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Ok(kills) = &v.ooms {
        // One finding per cgroup: a fleet of kills in one place is one problem.
        let mut by_cgroup: std::collections::BTreeMap<String, Vec<&crate::model::doctor::OomKill>> =
            std::collections::BTreeMap::new();
        for k in kills
            .iter()
            .filter(|k| k.seconds_ago.is_none_or(|s| s <= RECENT_OOM_SECONDS))
        {
            let cg = k.memcg.clone().unwrap_or_else(|| "(host)".into());
            // Every syslens lab makes its own cgroup: their kills are one group.
            let key = match cg.rsplit_once('/') {
                Some((parent, leaf)) if leaf.starts_with("syslens-lab-") => {
                    format!("{parent}/syslens-lab-*")
                }
                _ => cg,
            };
            by_cgroup.entry(key).or_default().push(k);
        }
        for (cg, ks) in by_cgroup {
            let Some(latest) = ks.iter().min_by(|a, b| {
                a.seconds_ago
                    .unwrap_or(f64::MAX)
                    .total_cmp(&b.seconds_ago.unwrap_or(f64::MAX))
            }) else {
                continue;
            };
            let when = latest
                .seconds_ago
                .map_or_else(String::new, |s| format!(" {}", ago(s)));
            let rss = latest.anon_rss_kb.map_or_else(String::new, |kb| {
                format!(" (anon-rss {})", mib(kb as f64 * 1024.0))
            });
            // Who asked for the memory, and whose limit it hit: the victim is often not
            // the process that grew.
            let trigger = match &latest.trigger {
                Some((comm, Some(pid))) if u64::try_from(*pid).ok() == Some(latest.pid) => {
                    format!(", its own allocation ({comm})")
                }
                Some((comm, Some(pid))) => format!(", allocation by {comm} (pid {pid})"),
                Some((comm, None)) => format!(", allocation by {comm}"),
                None => String::new(),
            };
            let constraint = match latest.constraint.as_deref() {
                Some("CONSTRAINT_MEMCG") => ", the cgroup's limit",
                Some("CONSTRAINT_NONE") => ", the whole host out of memory",
                _ => "",
            };
            // syslens's own labs kill in their own cgroups on purpose.
            let ours = cg.ends_with("/syslens-lab-*");
            out.push(Finding {
                rule: "oom-killed",
                concept: ConceptId::SwapOom,
                severity: if ours { Severity::Info } else { Severity::Warning },
                subject: format!("cgroup {cg}"),
                message: format!(
                    "{} OOM kill(s){}; latest pid {} ({}){when}{rss}{trigger}{constraint}",
                    ks.len(),
                    if ours { " by a syslens lab, on purpose" } else { "" },
                    latest.pid,
                    latest.comm
                ),
                evidence: vec!["/dev/kmsg: oom-kill / Out of memory: Killed process".into()],
                advice: "the cgroup or host ran out of memory: check its limit against its peak, and what grew before the kill".into(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::doctor::test_view::{self, fired, proc, view};
    use crate::model::doctor::OomKill;
    use std::time::Duration;
    use syslens_probe::psi::parse_psi;

    fn scored(first: Option<i32>, score: u64) -> DoctorView {
        let mut p = proc(14, "chrome");
        p.last.oom_score = Ok(score);
        DoctorView {
            oom_first: first,
            procs: vec![p, proc(15, "bash")],
            ..view(Duration::ZERO)
        }
    }

    #[test]
    fn issue_23_oom_first_victim_is_named_only_in_view_and_with_a_score() {
        assert_eq!(
            fired(oom_first_victim, &scored(Some(14), 1)),
            [("pid 14 (chrome)".to_owned(), Severity::Info)]
        );
        assert!(fired(oom_first_victim, &scored(Some(14), 0)).is_empty());
        // Picked among every process, but not one this (scoped) view shows.
        assert!(fired(oom_first_victim, &scored(Some(99), 500)).is_empty());
        assert!(fired(oom_first_victim, &scored(None, 500)).is_empty());
    }

    fn pressure(avg10: &str) -> DoctorView {
        let text = format!(
            "some avg10={avg10} avg60=1.00 avg300=0.50 total=12345\nfull avg10=2.00 avg60=0.00 avg300=0.00 total=100\n"
        );
        DoctorView {
            psi_memory: parse_psi(text.as_bytes()),
            ..view(Duration::ZERO)
        }
    }

    #[test]
    fn issue_23_memory_pressure_warns_from_10_percent_stalled() {
        assert!(fired(memory_pressure, &pressure("9.99")).is_empty());
        assert_eq!(
            fired(memory_pressure, &pressure("10.00")),
            [("system".to_owned(), Severity::Warning)]
        );
        let f = &memory_pressure(&pressure("10.00"))[0];
        assert_eq!(
            f.message,
            "tasks stalled on memory 10.0% of the last 10 s (full: 2.0%)"
        );
    }

    fn kill(pid: u64, memcg: &str, seconds_ago: Option<f64>) -> OomKill {
        OomKill {
            pid,
            comm: "hog".into(),
            anon_rss_kb: Some(2048),
            memcg: Some(memcg.into()),
            seconds_ago,
            trigger: Some(("hog".into(), i32::try_from(pid).ok())),
            constraint: Some("CONSTRAINT_MEMCG".into()),
        }
    }

    fn killed(kills: Vec<OomKill>) -> Vec<Finding> {
        oom_killed(&DoctorView {
            ooms: Ok(kills),
            ..view(Duration::ZERO)
        })
    }

    #[test]
    fn issue_23_oom_killed_reports_a_day_of_kills_one_finding_per_cgroup() {
        let day = RECENT_OOM_SECONDS;
        assert!(killed(vec![kill(1, "/app", Some(day + 1.0))]).is_empty());
        let f = killed(vec![kill(1, "/app", Some(day))]);
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].subject.as_str(), f[0].severity),
            ("cgroup /app", Severity::Warning)
        );
        assert_eq!(
            f[0].message,
            "1 OOM kill(s); latest pid 1 (hog) 24.0 h ago (anon-rss 2.0 MiB), its own allocation (hog), the cgroup's limit"
        );
        // An unknown age is reported (a captured log has no uptime to age it by).
        assert_eq!(killed(vec![kill(1, "/app", None)]).len(), 1);
        // Two kills in one cgroup, the latest named; the labs' cgroups are one group,
        // and their kills are information.
        let f = killed(vec![
            kill(1, "/app", Some(3000.0)),
            kill(2, "/app", Some(30.0)),
            kill(3, "/u/syslens-lab-1-2", Some(5.0)),
            kill(4, "/u/syslens-lab-3-4", Some(6.0)),
        ]);
        let got: Vec<_> = f.iter().map(|f| (f.subject.as_str(), f.severity)).collect();
        assert_eq!(
            got,
            [
                ("cgroup /app", Severity::Warning),
                ("cgroup /u/syslens-lab-*", Severity::Info)
            ]
        );
        assert!(
            f[0].message
                .starts_with("2 OOM kill(s); latest pid 2 (hog) 30 s ago"),
            "{}",
            f[0].message
        );
        assert!(
            f[1].message.contains("by a syslens lab, on purpose"),
            "{}",
            f[1].message
        );
    }

    /// Whose limit was hit and who asked for the memory, each way the kernel log says
    /// it (issue 23: the CONSTRAINT_NONE wording survived a mutation run).
    #[test]
    fn issue_23_oom_killed_names_the_constraint_and_the_trigger() {
        let message = |trigger: Option<(&str, Option<i32>)>, constraint: Option<&str>| {
            let mut k = kill(7, "/app", Some(30.0));
            k.trigger = trigger.map(|(c, p)| (c.to_owned(), p));
            k.constraint = constraint.map(str::to_owned);
            killed(vec![k])[0].message.clone()
        };
        let base = "1 OOM kill(s); latest pid 7 (hog) 30 s ago (anon-rss 2.0 MiB)";
        assert_eq!(
            message(Some(("java", Some(9))), Some("CONSTRAINT_NONE")),
            format!("{base}, allocation by java (pid 9), the whole host out of memory")
        );
        assert_eq!(
            message(Some(("java", None)), Some("CONSTRAINT_CPUSET")),
            format!("{base}, allocation by java")
        );
        assert_eq!(message(None, None), base);
    }

    fn limited(ws: u64, limit: u64) -> DoctorView {
        DoctorView {
            limited_cgroups: vec![test_view::limited(Some(ws), None, limit)],
            ..view(Duration::ZERO)
        }
    }

    #[test]
    fn issue_23_cgroup_working_set_near_limit_warns_from_90_percent() {
        // 90% of 1000 MiB is 943718400 bytes exactly.
        let limit = 1000 << 20;
        let near = 943_718_400;
        assert_eq!(near as f64, limit as f64 * WORKING_SET_NEAR_LIMIT);
        assert!(fired(cgroup_working_set_near_limit, &limited(near - 1, limit)).is_empty());
        let want = [("cgroup /kubepods/pod1".to_owned(), Severity::Warning)];
        assert_eq!(
            fired(cgroup_working_set_near_limit, &limited(near, limit)),
            want
        );
        assert_eq!(
            fired(cgroup_working_set_near_limit, &limited(limit, limit)),
            want
        );
        let f = &cgroup_working_set_near_limit(&limited(near, limit))[0];
        assert_eq!(
            f.message,
            "working set 900.0 MiB is 90% of the limit 1000.0 MiB (set by /kubepods/pod1, memory.max); \
             it binds the processes in /kubepods/pod1/app"
        );
        assert_eq!(
            f.evidence,
            ["/sys/fs/cgroup/kubepods/pod1: usage minus inactive_file 943718400; memory.max 1048576000"]
        );
        // No working set read (memory.stat refused): nothing said.
        let v = DoctorView {
            limited_cgroups: vec![test_view::limited(None, None, limit)],
            ..view(Duration::ZERO)
        };
        assert!(fired(cgroup_working_set_near_limit, &v).is_empty());
    }

    #[test]
    fn issue_23_ages_read_in_seconds_minutes_then_hours() {
        assert_eq!(ago(119.0), "119 s ago");
        assert_eq!(ago(120.0), "2 min ago");
        assert_eq!(ago(7199.0), "120 min ago");
        assert_eq!(ago(7200.0), "2.0 h ago");
    }
}
