//! Doctor rules: leaks.

use crate::catalogue::ConceptId;
use crate::model::doctor::{mib, DoctorView, Finding, Rule, Severity};
use crate::model::figure::slope;

/// This concept's doctor rules (those that judge a change need a watch window).
pub const RULES: &[Rule] = &[
    Rule {
        id: "steady-rss-growth",
        needs_window: true,
        check: steady_rss_growth,
    },
    Rule {
        id: "mapped-file-growth",
        needs_window: true,
        check: mapped_file_growth,
    },
];

/// Growth rate and total that make a process a leak suspect over the window...
const LEAK_RATE: f64 = 512.0 * 1024.0;
const LEAK_MIN_GROWTH: f64 = 2.0 * 1024.0 * 1024.0;
/// ...when the growth is steady (the samples lie close to a line).
const STEADY_R2: f64 = 0.9;

fn r_squared(pts: &[(f64, f64)], slope: f64) -> f64 {
    let n = pts.len() as f64;
    let (mx, my) = (
        pts.iter().map(|p| p.0).sum::<f64>() / n,
        pts.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let ss_tot: f64 = pts.iter().map(|p| (p.1 - my).powi(2)).sum();
    let ss_res: f64 = pts
        .iter()
        .map(|p| (p.1 - (my + slope * (p.0 - mx))).powi(2))
        .sum();
    if ss_tot == 0.0 {
        0.0
    } else {
        1.0 - ss_res / ss_tot
    }
}

/// A series that grows steadily enough: (slope per second, growth, R²).
fn steady_growth(series: &[(f64, f64)]) -> Option<(f64, f64, f64)> {
    let s = slope(series).ok()?;
    let growth = series.last()?.1 - series.first()?.1;
    let r2 = r_squared(series, s);
    (s >= LEAK_RATE && growth >= LEAK_MIN_GROWTH && r2 >= STEADY_R2).then_some((s, growth, r2))
}

/// Anonymous (and shmem) memory growing on a line: only the process can free it.
fn steady_rss_growth(v: &DoctorView) -> Vec<Finding> {
    v.procs
        .iter()
        .filter_map(|p| {
            let (s, growth, r2) = steady_growth(&p.rss_anon)?;
            Some(Finding {
                rule: "steady-rss-growth",
                concept: ConceptId::LeaksFragmentation,
                severity: Severity::Warning,
                subject: p.subject(),
                message: format!("anonymous memory (RssAnon + RssShmem) grew steadily by {}/s over {:.0} s (+{}, R² {r2:.2}): a leak suspect", mib(s), v.watched_secs(), mib(growth)),
                evidence: vec![format!("/proc/{}/status RssAnon + RssShmem, {} samples", p.last.pid, p.rss_anon.len())],
                advice: "watch longer (syslens doctor --window 60s): a leak keeps growing under steady load; a heap profiler (heaptrack, jemalloc prof, valgrind massif) finds where".into(),
            })
        })
        .collect()
}

/// File-backed resident pages growing while the anonymous part does not: a mapped file
/// being read, page cache the kernel drops under pressure. Information, not a leak.
fn mapped_file_growth(v: &DoctorView) -> Vec<Finding> {
    v.procs
        .iter()
        .filter(|p| steady_growth(&p.rss_anon).is_none())
        .filter_map(|p| {
            let (s, growth, _) = steady_growth(&p.rss_file)?;
            Some(Finding {
                rule: "mapped-file-growth",
                concept: ConceptId::LeaksFragmentation,
                severity: Severity::Info,
                subject: p.subject(),
                message: format!("RSS grows by {}/s over {:.0} s (+{}), all of it mapped file pages (RssFile); the anonymous part is flat: page cache of a mapped file, not a leak", mib(s), v.watched_secs(), mib(growth)),
                evidence: vec![format!("/proc/{}/status RssFile +{}, RssAnon + RssShmem flat, {} samples", p.last.pid, mib(growth), p.rss_file.len())],
                advice: "the kernel reclaims these pages under pressure (they are clean file cache); if the cgroup's limit is near, its working set excludes them only once inactive".into(),
            })
        })
        .collect()
}
