//! Doctor rules: leaks.

use crate::catalogue::ConceptId;
use crate::model::doctor::{mib, DoctorView, Finding, Proc, Rule, Severity};
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

/// A process's series of one kind: (seconds, bytes).
type SeriesOf = fn(&Proc) -> &[(f64, f64)];

/// The kinds of resident memory only the process can free, each with its own slope:
/// (status field, what it is, the series of a process).
const LEAK_KINDS: [(&str, &str, SeriesOf); 2] = [
    ("RssAnon", "anonymous memory", |p| &p.rss_anon),
    ("RssShmem", "shared memory (memfd, tmpfs, SysV)", |p| {
        &p.rss_shmem
    }),
];

/// One kind of memory growing steadily.
struct Growth {
    /// The status field.
    field: &'static str,
    /// What it is, in words.
    what: &'static str,
    /// Bytes per second.
    slope: f64,
    /// Bytes over the window.
    growth: f64,
    /// How close the samples lie to the line.
    r2: f64,
    /// Samples in the series.
    samples: usize,
}

/// The kinds of `p` that grow steadily, each from its own series.
fn leaking(p: &Proc) -> Vec<Growth> {
    LEAK_KINDS
        .iter()
        .filter_map(|&(field, what, series)| {
            let series = series(p);
            let (slope, growth, r2) = steady_growth(series)?;
            Some(Growth {
                field,
                what,
                slope,
                growth,
                r2,
                samples: series.len(),
            })
        })
        .collect()
}

/// Anonymous or shared memory growing on a line (each kind its own slope): only the
/// process can free it.
fn steady_rss_growth(v: &DoctorView) -> Vec<Finding> {
    v.procs
        .iter()
        .filter_map(|p| {
            let kinds = leaking(p);
            if kinds.is_empty() {
                return None;
            }
            let grew: Vec<String> = kinds
                .iter()
                .map(|g| {
                    format!(
                        "{} ({}) grew steadily by {}/s (+{}, R² {:.2})",
                        g.what,
                        g.field,
                        mib(g.slope),
                        mib(g.growth),
                        g.r2
                    )
                })
                .collect();
            let shmem = kinds.iter().any(|g| g.field == "RssShmem");
            Some(Finding {
                rule: "steady-rss-growth",
                concept: ConceptId::LeaksFragmentation,
                severity: Severity::Warning,
                subject: p.subject(),
                message: format!("{} over {:.0} s: a leak suspect", grew.join(" and "), v.watched_secs()),
                evidence: kinds
                    .iter()
                    .map(|g| {
                        format!(
                            "/proc/{}/status {}, {} samples, slope {}/s",
                            p.last.pid,
                            g.field,
                            g.samples,
                            mib(g.slope)
                        )
                    })
                    .collect(),
                advice: if shmem {
                    "watch longer (syslens doctor --window 60s): shared memory stays until every mapping is gone and the memfd, tmpfs file or SysV segment is removed; list them in /proc/PID/maps (memfd:, /dev/shm, SYSV) and ipcs -m".into()
                } else {
                    "watch longer (syslens doctor --window 60s): a leak keeps growing under steady load; a heap profiler (heaptrack, jemalloc prof, valgrind massif) finds where".into()
                },
            })
        })
        .collect()
}

/// File-backed resident pages growing while the anonymous and shared parts do not: a
/// mapped file being read, page cache the kernel drops under pressure. Information,
/// not a leak.
fn mapped_file_growth(v: &DoctorView) -> Vec<Finding> {
    v.procs
        .iter()
        .filter(|p| leaking(p).is_empty())
        .filter_map(|p| {
            let (s, growth, _) = steady_growth(&p.rss_file)?;
            Some(Finding {
                rule: "mapped-file-growth",
                concept: ConceptId::LeaksFragmentation,
                severity: Severity::Info,
                subject: p.subject(),
                message: format!("RSS grows by {}/s over {:.0} s (+{}), all of it mapped file pages (RssFile); the anonymous and shared parts (RssAnon, RssShmem) are flat: page cache of a mapped file, not a leak", mib(s), v.watched_secs(), mib(growth)),
                evidence: vec![format!("/proc/{}/status RssFile +{}, RssAnon and RssShmem flat, {} samples", p.last.pid, mib(growth), p.rss_file.len())],
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

    /// A process whose RssShmem follows `shmem`, RssAnon `anon` and RssFile `file`.
    fn with_shmem(
        anon: Vec<(f64, f64)>,
        shmem: Vec<(f64, f64)>,
        file: Vec<(f64, f64)>,
    ) -> DoctorView {
        let mut v = growing(anon, file);
        v.procs[0].rss_shmem = shmem;
        v
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

    #[test]
    fn issue_15_shmem_growth_alone_is_a_leak_suspect_at_its_own_threshold() {
        let xs = [0.0, 1.0, 2.0, 3.0, 4.0];
        let flat = line(0.0, &xs);
        // A memfd or tmpfs mapping filled at 512 KiB/s, anonymous memory and file
        // pages flat: a leak suspect, named as shared memory.
        let v = with_shmem(flat.clone(), line(LEAK_RATE, &xs), flat.clone());
        assert!(is_warned(fired(steady_rss_growth, &v)));
        let f = &steady_rss_growth(&v)[0];
        assert!(
            f.message.starts_with(
                "shared memory (memfd, tmpfs, SysV) (RssShmem) grew steadily by 512.0 KiB/s"
            ),
            "{}",
            f.message
        );
        assert!(!f.message.contains("RssAnon"), "{}", f.message);
        assert!(
            f.evidence[0].contains("RssShmem, 5 samples"),
            "{:?}",
            f.evidence
        );
        assert!(f.advice.contains("memfd"), "{}", f.advice);
        // Just below the rate (over the same growth): silent.
        let xs = [0.0, 2.0, 4.0, 6.0, 8.0];
        let flat = line(0.0, &xs);
        let v = with_shmem(flat.clone(), line(LEAK_RATE - 1.0, &xs), flat);
        assert!(fired(steady_rss_growth, &v).is_empty());
    }

    #[test]
    fn issue_15_anon_and_shmem_each_have_their_own_slope() {
        let xs = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let flat = line(0.0, &xs);
        // Each just below the threshold: their sum (2 x 511 KiB/s) would have been a
        // leak; neither kind alone is.
        let v = with_shmem(
            line(LEAK_RATE - 1024.0, &xs),
            line(LEAK_RATE - 1024.0, &xs),
            flat.clone(),
        );
        assert!(fired(steady_rss_growth, &v).is_empty());
        // Anonymous growth alone: named as anonymous, with its slope.
        let v = with_shmem(line(LEAK_RATE, &xs), flat.clone(), flat.clone());
        let f = steady_rss_growth(&v);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].message
                .starts_with("anonymous memory (RssAnon) grew steadily by 512.0 KiB/s"),
            "{}",
            f[0].message
        );
        assert!(!f[0].message.contains("RssShmem"), "{}", f[0].message);
        assert!(f[0].advice.contains("heap profiler"), "{}", f[0].advice);
        // Both: one finding naming both, each with its own slope.
        let v = with_shmem(line(LEAK_RATE, &xs), line(2.0 * LEAK_RATE, &xs), flat);
        let f = steady_rss_growth(&v);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].message
                .contains("(RssAnon) grew steadily by 512.0 KiB/s")
                && f[0]
                    .message
                    .contains("(RssShmem) grew steadily by 1.0 MiB/s"),
            "{}",
            f[0].message
        );
        assert_eq!(f[0].evidence.len(), 2);
    }

    #[test]
    fn issue_15_file_growth_is_information_only_while_shmem_is_flat_too() {
        let xs = [0.0, 1.0, 2.0, 3.0, 4.0];
        let flat = line(0.0, &xs);
        let v = with_shmem(flat.clone(), flat.clone(), line(LEAK_RATE, &xs));
        assert_eq!(
            fired(mapped_file_growth, &v),
            [("pid 9 (leaky)".to_owned(), Severity::Info)]
        );
        // Shared memory growing with the file pages: the leak rule speaks, not this one.
        let v = with_shmem(flat, line(LEAK_RATE, &xs), line(LEAK_RATE, &xs));
        assert!(fired(mapped_file_growth, &v).is_empty());
        assert!(is_warned(fired(steady_rss_growth, &v)));
    }
}
