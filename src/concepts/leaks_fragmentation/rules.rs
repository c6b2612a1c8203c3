//! Doctor rules: leaks.

use crate::catalogue::ConceptId;
use crate::model::doctor::{mib, DoctorView, Finding, Rule, Severity};
use crate::model::figure::slope;

/// This concept's doctor rules (those that judge a change need a watch window).
pub const RULES: &[Rule] = &[Rule {
    id: "steady-rss-growth",
    needs_window: true,
    check: steady_rss_growth,
}];

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

fn steady_rss_growth(v: &DoctorView) -> Vec<Finding> {
    v.procs
        .iter()
        .filter_map(|p| {
            let s = slope(&p.rss).ok()?;
            let growth = p.rss.last()?.1 - p.rss.first()?.1;
            let r2 = r_squared(&p.rss, s);
            (s >= LEAK_RATE && growth >= LEAK_MIN_GROWTH && r2 >= STEADY_R2).then(|| Finding {
                rule: "steady-rss-growth",
                concept: ConceptId::LeaksFragmentation,
                severity: Severity::Warning,
                subject: p.subject(),
                message: format!("RSS grew steadily by {}/s over {:.0} s (+{}, R² {r2:.2}): a leak suspect", mib(s), v.watched_secs(), mib(growth)),
                evidence: vec![format!("/proc/{}/status VmRSS, {} samples", p.last.pid, p.rss.len())],
                advice: "watch longer (syslens doctor --window 60s): a leak keeps growing under steady load; a heap profiler (heaptrack, jemalloc prof, valgrind massif) finds where".into(),
            })
        })
        .collect()
}
