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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::doctor::test_view::{fired, proc, view};
    use std::time::Duration;

    /// `rate` bytes per second at the times `xs`.
    fn line(rate: f64, xs: &[f64]) -> Vec<(f64, f64)> {
        xs.iter().map(|&x| (x, 100e6 + rate * x)).collect()
    }

    fn growing(anon: Vec<(f64, f64)>, file: Vec<(f64, f64)>) -> DoctorView {
        let mut p = proc(9, "leaky");
        p.rss_anon = anon;
        p.rss_file = file;
        DoctorView {
            procs: vec![p],
            ..view(Duration::from_secs(10))
        }
    }

    fn anon(series: Vec<(f64, f64)>) -> Vec<(String, Severity)> {
        fired(steady_rss_growth, &growing(series, Vec::new()))
    }

    const WARNED: [(&str, Severity); 1] = [("pid 9 (leaky)", Severity::Warning)];

    fn is_warned(found: Vec<(String, Severity)>) -> bool {
        found.iter().map(|(s, v)| (s.as_str(), *v)).eq(WARNED)
    }

    #[test]
    fn issue_23_steady_growth_fires_from_its_rate() {
        let xs = [0.0, 1.0, 2.0, 3.0, 4.0];
        // 512 KiB/s for 4 s: the rate and the growth (2 MiB) both just at the threshold.
        assert!(is_warned(anon(line(LEAK_RATE, &xs))));
        let xs = [0.0, 2.0, 4.0, 6.0, 8.0];
        assert!(anon(line(LEAK_RATE - 1.0, &xs)).is_empty());
    }

    #[test]
    fn issue_23_steady_growth_needs_its_total_growth() {
        // 4 MiB/s over half a second: 2 MiB.
        let xs = [0.0, 0.25, 0.5];
        assert!(is_warned(anon(line(4.0 * 1024.0 * 1024.0, &xs))));
        let mut short = line(4.0 * 1024.0 * 1024.0, &xs);
        short[2].1 -= 1.0;
        assert!(anon(short).is_empty());
        // Fewer than three samples: no slope.
        assert!(anon(line(4.0 * 1024.0 * 1024.0, &[0.0, 0.5])).is_empty());
    }

    /// 1 MiB/s at t = 0..3 with deviations +d, -d, -d, +d (orthogonal to the line, so
    /// the fitted slope stays 1 MiB/s): R² = 5a² / (5a² + 4d²), solved for d.
    fn with_r2(r2: f64) -> Vec<(f64, f64)> {
        let a = 1024.0 * 1024.0;
        let d = a * (5.0 * (1.0 / r2 - 1.0) / 4.0).sqrt();
        let mut pts = line(a, &[0.0, 1.0, 2.0, 3.0]);
        for (p, e) in pts.iter_mut().zip([d, -d, -d, d]) {
            p.1 += e;
        }
        pts
    }

    #[test]
    fn issue_23_steady_growth_needs_the_samples_close_to_a_line() {
        assert!((r_squared(&with_r2(0.5), 1024.0 * 1024.0) - 0.5).abs() < 1e-9);
        assert!(is_warned(anon(with_r2(0.9001))));
        assert!(anon(with_r2(0.8999)).is_empty());
        // A flat series has no R² worth the name.
        assert_eq!(r_squared(&line(0.0, &[0.0, 1.0, 2.0]), 0.0), 0.0);
    }

    #[test]
    fn issue_23_mapped_file_growth_is_information_only_while_anon_is_flat() {
        let xs = [0.0, 1.0, 2.0, 3.0, 4.0];
        let flat = line(0.0, &xs);
        let v = growing(flat.clone(), line(LEAK_RATE, &xs));
        assert_eq!(
            fired(mapped_file_growth, &v),
            [("pid 9 (leaky)".to_owned(), Severity::Info)]
        );
        assert!(fired(steady_rss_growth, &v).is_empty());
        // Both growing: the leak rule speaks, not this one.
        let v = growing(line(LEAK_RATE, &xs), line(LEAK_RATE, &xs));
        assert!(fired(mapped_file_growth, &v).is_empty());
        let v = growing(flat, line(LEAK_RATE - 1.0, &xs));
        assert!(fired(mapped_file_growth, &v).is_empty());
    }
}
