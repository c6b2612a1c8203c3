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
            let placed = syslens_probe::container::placement(&set_by.path)
                .describe()
                .map_or_else(String::new, |d| format!(", {d}"));
            let below: Vec<&str> = cg
                .below
                .iter()
                .map(String::as_str)
                .filter(|b| *b != set_by.path)
                .collect();
            let shared = if below.is_empty() {
                String::new()
            } else {
                format!("; it binds the processes in {}", below.join(", "))
            };
            out.push(Finding {
                rule: "cgroup-working-set-near-limit",
                concept: ConceptId::SwapOom,
                severity: Severity::Warning,
                subject: format!("cgroup {}{placed}", set_by.path),
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
