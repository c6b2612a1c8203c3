//! Lab: lazy initialization. Anonymous memory is reserved by mmap and backed only when
//! written; reads map the shared zero page. A value behind `OnceLock` is built on first
//! access only.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::catalogue::ConceptId;
use crate::lab::mem::{page_size, Region};
use crate::lab::meter::{trial, Meter, SystemMeter};
use crate::lab::params::{ParamError, ParamSpec, ParamValues};
use crate::lab::report::{mib, pct, pct_text, times_text, Check, Cmp, LabReport};
use crate::lab::sandbox::{LabError, Link, Params};
use crate::lab::settings::{read_setting, OVERCOMMIT_MEMORY};
use crate::lab::stats::{Adaptive, Stop};
use crate::lab::{LabContext, LabDef, WATCHDOG};

/// The lazy-initialisation lab: its parameters, the parent side (`run`) and the child role.
pub static LAB: LabDef = LabDef {
    id: ConceptId::LazyInit,
    summary: "map anonymous memory, read it (RSS flat), write it (RSS grows); first vs second touch; OnceLock",
    headline: &[("first touch", "first touch"), ("second touch", "second touch")],
    params: &PARAMS,
    check: |p| settings(p).map(drop),
    run,
    child,
};

static PARAMS: [ParamSpec; 5] = [
    ParamSpec::bytes(
        "size",
        "the mapping that is read, then written, while RSS is watched",
        256 << 20,
        64 << 20,
    )
    .main_size(),
    ParamSpec::bytes(
        "cost_region",
        "the fresh mapping whose first and second touch are timed, per trial",
        16 << 20,
        16 << 20,
    ),
    ParamSpec::trials("timed first / second touches (at least)", 15, 5),
    ParamSpec::budget(1500, 400),
    ParamSpec::choice(
        "mapping",
        "the mapping that is read, then written: private anonymous, or shared anonymous (shmem)",
        &["private", "shared"],
        ("private", "private"),
    ),
];
const WARMUP: usize = 2;

/// The parameters of the child role "touch".
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TouchParams {
    size: u64,
    cost_region: u64,
    trials: usize,
    /// Time budget of the adaptive trials (ms; 0: exactly `trials`).
    budget_ms: u64,
    /// Map the read-then-written region MAP_SHARED.
    shared: bool,
}

fn settings(p: &ParamValues) -> Result<TouchParams, ParamError> {
    Ok(TouchParams {
        size: p.bytes("size")?,
        cost_region: p.bytes("cost_region")?,
        trials: p.count("trials")? as usize,
        budget_ms: p.millis("budget_ms")?.as_millis() as u64,
        shared: p.choice("mapping")? == "shared",
    })
}

/// Timings the child measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TouchCosts {
    /// ns per page of the first write of each page, per trial.
    pub first_ns_per_page: Vec<f64>,
    /// ns per page of the second write (the page is resident: the loop's own cost).
    pub second_ns_per_page: Vec<f64>,
    /// Minor faults per page counted during the first touch (getrusage), per trial.
    pub faults_per_page: Vec<f64>,
    /// ns per fault: (first - second) x pages / faults, per trial.
    pub ns_per_fault: Vec<f64>,
    /// ns of the first OnceLock access (it builds the value), per trial.
    pub once_first_ns: Vec<f64>,
    /// ns of a later access, loop included (averaged over a batch), per trial. Not net
    /// of the loop: a later access costs about one loop iteration, and the difference
    /// of two near-equal figures is mostly noise.
    pub once_later_ns: Vec<f64>,
    /// ns of an empty loop iteration, the same batch, for comparison.
    pub empty_loop_ns: Vec<f64>,
    /// How the adaptive trials of the first touch ended.
    pub stop: Option<Stop>,
}

/// Everything the claims are computed from.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Size of the mapping the child touched (bytes).
    pub size: u64,
    /// The child's Rss (bytes) after mmap, before any touch.
    pub rss_mapped: u64,
    /// The child's Rss (bytes) after reading every page.
    pub rss_read: u64,
    /// The child's Rss (bytes) after writing every page.
    pub rss_written: u64,
    /// The child's timings.
    pub costs: TouchCosts,
}

fn run(ctx: &mut LabContext, report: &mut LabReport) -> Result<(), LabError> {
    let params = settings(&ctx.params)?;
    let size = params.size;
    let overcommit = report.setting(OVERCOMMIT_MEMORY, read_setting(OVERCOMMIT_MEMORY));
    report.note(overcommit_note(overcommit.as_deref().ok()));
    if params.shared {
        report.note(
            "mapping=shared: the region read, then written, is shared anonymous memory (shmem)",
        );
    }
    let jail = ctx.memory_jail(size + params.cost_region, report)?;
    let mut c = ctx.spawn_in(&jail, ConceptId::LazyInit, "touch", &params)?;
    c.expect::<()>("mapped", WATCHDOG)?;
    let rss_mapped = ctx.rss(c.pid)?;
    c.go()?;
    c.expect::<()>("read", WATCHDOG)?;
    let rss_read = ctx.rss(c.pid)?;
    c.go()?;
    c.expect::<()>("written", WATCHDOG)?;
    let rss_written = ctx.rss(c.pid)?;
    c.go()?;
    let costs: TouchCosts = c.expect("costs", WATCHDOG)?;
    let pid = c.pid;
    c.wait(WATCHDOG)?;
    report.evidence(
        format!("/proc/{pid}/smaps_rollup"),
        "Rss (mapped -> read every page)",
        rss_mapped as f64,
        rss_read as f64,
        "bytes",
    );
    report.evidence(
        format!("/proc/{pid}/smaps_rollup"),
        "Rss (read -> wrote every page)",
        rss_read as f64,
        rss_written as f64,
        "bytes",
    );
    analyze(
        &Measured {
            size,
            rss_mapped,
            rss_read,
            rss_written,
            costs,
        },
        report,
    );
    Ok(())
}

/// What the overcommit mode (vm.overcommit_memory) does to the lab's mapping: it decides
/// whether mmap may refuse it, never when it is backed.
fn overcommit_note(mode: Option<&str>) -> String {
    let what = match mode {
        Some("0") => "mode 0 (heuristic): mmap refuses only a mapping larger than RAM + swap",
        Some("1") => "mode 1 (always): mmap never refuses for lack of memory",
        Some("2") => "mode 2 (strict): the mapping counts in Committed_AS at mmap and is refused past CommitLimit",
        _ => "mode unknown",
    };
    format!("overcommit {what}; in every mode pages are backed only when written")
}

/// Reading fresh memory may grow RSS by less than this share of the mapping.
const READ_GROWTH_MAX: f64 = 0.05;
/// Writing it must grow RSS by at least this share.
const WRITE_GROWTH_MIN: f64 = 0.90;
/// The first touch of a page costs at least this many times the second.
const FIRST_TOUCH_MIN: f64 = 5.0;

/// The claims, from measurements alone.
pub fn analyze(m: &Measured, report: &mut LabReport) {
    let size = m.size as f64;
    let grew_read = m.rss_read.saturating_sub(m.rss_mapped) as f64;
    let grew_written = m.rss_written.saturating_sub(m.rss_mapped) as f64;
    report.check(Check::compare(
        &format!("reading fresh anonymous memory leaves RSS flat (< {} of the size): reads map the shared zero page", pct_text(READ_GROWTH_MAX)),
        grew_read / size,
        Cmp::Less,
        READ_GROWTH_MAX,
        pct,
    ));
    report.check(Check::compare(
        &format!(
            "writing it makes it resident (RSS grows by >= {} of the size)",
            pct_text(WRITE_GROWTH_MIN)
        ),
        grew_written / size,
        Cmp::AtLeast,
        WRITE_GROWTH_MIN,
        pct,
    ));
    let second = report.metric(
        "second touch, per page (resident: the loop's own cost)",
        "ns",
        &m.costs.second_ns_per_page,
    );
    let first = report.metric_with_baseline(
        "first touch, per page (page fault + zeroing)",
        "ns",
        &m.costs.first_ns_per_page,
        second.as_ref().map(|s| s.median),
    );
    report.metric(
        "minor faults per page on first touch",
        "faults",
        &m.costs.faults_per_page,
    );
    report.metric(
        "cost per minor fault (first - second, per counted fault)",
        "ns",
        &m.costs.ns_per_fault,
    );
    report.metric(
        "OnceLock first access (builds the value)",
        "ns",
        &m.costs.once_first_ns,
    );
    report.metric(
        "OnceLock later access (per loop iteration)",
        "ns",
        &m.costs.once_later_ns,
    );
    report.metric(
        "empty loop iteration (for comparison)",
        "ns",
        &m.costs.empty_loop_ns,
    );
    let claim = format!(
        "the first touch of a page costs >= {} the second",
        times_text(FIRST_TOUCH_MIN)
    );
    match (first, second) {
        (Some(f), Some(s)) => report.check(Check::compare(
            &format!("{claim} (per page, medians)"),
            f.median / s.median.max(f64::MIN_POSITIVE),
            Cmp::AtLeast,
            FIRST_TOUCH_MIN,
            |x| format!("{x:.1}x"),
        )),
        _ => report.check(Check::failed(&claim, "no timings from the child")),
    }
    report.bars(
        "RSS as the mapping is read, then written",
        "step",
        "Rss (MiB)",
        &[
            ("mapped", m.rss_mapped as f64 / 1048576.0),
            ("read every page", m.rss_read as f64 / 1048576.0),
            ("wrote every page", m.rss_written as f64 / 1048576.0),
        ],
    );
    report.note(format!(
        "RSS grew {} after reading {} and {} after writing it",
        mib(grew_read),
        mib(size),
        mib(grew_written)
    ));
    if let Some(note) = m
        .costs
        .stop
        .and_then(|s| s.note("first touch, per page", m.costs.first_ns_per_page.len()))
    {
        report.note(note);
    }
}

fn child(role: &str, params: &Params, link: &mut Link) -> Result<(), String> {
    if role != "touch" {
        return Err(format!("unknown role {role}"));
    }
    let p: TouchParams = params.decode()?;
    let io = |e: std::io::Error| e.to_string();
    let region = Region::anonymous(p.size as usize, p.shared).map_err(io)?;
    // 4 KiB pages, so "per page" is per fault whatever the THP mode.
    let _ = region.madvise(libc::MADV_NOHUGEPAGE);
    link.sync("mapped", ()).map_err(io)?;
    // explain-begin: the lines that provoke the concept
    region.read_pages(1);
    link.sync("read", ()).map_err(io)?;
    region.write_pages(1, region.pages(), 1);
    // explain-end
    link.sync("written", ()).map_err(io)?;
    drop(region);
    // The clock and getrusage only: perf counters would cost every timed fault about
    // 200 ns (a first touch of 1230 ns ran at 1430 ns under perf stat's page-faults and
    // exceptions:page_fault_user), and getrusage counts the faults.
    let mut meter = SystemMeter::without_perf();
    let plan = Adaptive::new(
        WARMUP,
        p.trials,
        std::time::Duration::from_millis(p.budget_ms),
    );
    let costs = touch_costs(&mut meter, p.cost_region as usize, &plan).map_err(io)?;
    link.send("costs", costs).map_err(io)
}

/// Times the first and second write of every page of a fresh mapping, and OnceLock,
/// trials as `plan` says (the first touch per page is the series it watches).
pub fn touch_costs<M: Meter>(
    meter: &mut M,
    region: usize,
    plan: &Adaptive,
) -> std::io::Result<TouchCosts> {
    let mut out = TouchCosts::default();
    let (_, stop) = plan.run(Adaptive::clock(), |kept| {
        let r = Region::anon(region)?;
        let _ = r.madvise(libc::MADV_NOHUGEPAGE);
        let pages = r.pages();
        let (first, _) = trial(meter, || r.write_pages(1, pages, 1));
        let (second, _) = trial(meter, || r.write_pages(1, pages, 2));
        let once = OnceLock::new();
        let (once_first, _) = trial(meter, || {
            std::hint::black_box(once.get_or_init(build_table)).len()
        });
        const BATCH: u64 = 10_000;
        let (later, _) = trial(meter, || {
            for _ in 0..BATCH {
                std::hint::black_box(std::hint::black_box(&once).get_or_init(build_table));
            }
        });
        let (empty, _) = trial(meter, || {
            for i in 0..BATCH {
                std::hint::black_box(i);
            }
        });
        let p = pages as f64;
        if !kept {
            return Ok(first.ns as f64 / p);
        }
        out.first_ns_per_page.push(first.ns as f64 / p);
        out.second_ns_per_page.push(second.ns as f64 / p);
        out.faults_per_page.push(first.counts.minflt as f64 / p);
        if first.counts.minflt > 0 {
            out.ns_per_fault
                .push(first.ns.saturating_sub(second.ns) as f64 / first.counts.minflt as f64);
        }
        out.once_first_ns.push(once_first.ns as f64);
        out.once_later_ns.push(later.ns as f64 / BATCH as f64);
        out.empty_loop_ns.push(empty.ns as f64 / BATCH as f64);
        Ok::<f64, std::io::Error>(first.ns as f64 / p)
    })?;
    debug_assert!(page_size() > 0);
    out.stop = Some(stop);
    Ok(out)
}

/// The value behind the OnceLock: a CRC-32 table, a classic lazily built constant.
fn build_table() -> Vec<u32> {
    (0..256u32)
        .map(|i| {
            (0..8).fold(i, |c, _| {
                if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::report::Status;

    fn good() -> Measured {
        Measured {
            size: 256 << 20,
            rss_mapped: 2 << 20,
            rss_read: 2 << 20,
            rss_written: 258 << 20,
            costs: TouchCosts {
                first_ns_per_page: vec![1300.0; 5],
                second_ns_per_page: vec![5.0; 5],
                faults_per_page: vec![1.0; 5],
                ns_per_fault: vec![1295.0; 5],
                once_first_ns: vec![900.0; 5],
                once_later_ns: vec![1.0; 5],
                empty_loop_ns: vec![1.0; 5],
                stop: None,
            },
        }
    }

    fn statuses(m: &Measured) -> Vec<Status> {
        crate::lab::report::claim_statuses(ConceptId::LazyInit, m, analyze)
    }

    #[test]
    fn claims_pass_on_lazy_behaviour() {
        assert_eq!(statuses(&good()), vec![Status::Passed; 3]);
    }

    #[test]
    fn claims_fail_on_contradicting_evidence() {
        let mut eager_reads = good();
        eager_reads.rss_read = 200 << 20;
        assert_eq!(statuses(&eager_reads)[0], Status::Failed);
        let mut no_growth = good();
        no_growth.rss_written = 100 << 20;
        assert_eq!(statuses(&no_growth)[1], Status::Failed);
        let mut cheap_first = good();
        cheap_first.costs.first_ns_per_page = vec![20.0; 5];
        assert_eq!(statuses(&cheap_first)[2], Status::Failed);
        let mut nothing = good();
        nothing.costs = TouchCosts::default();
        assert_eq!(statuses(&nothing)[2], Status::Failed);
    }

    /// Evidence just either side of each claim's threshold, worked out by hand.
    #[test]
    fn issue_23_each_claim_at_its_threshold() {
        let texts: Vec<String> = crate::lab::report::claims(ConceptId::LazyInit, &good(), analyze)
            .into_iter()
            .map(|c| c.claim)
            .collect();
        assert!(texts[0].contains("(< 5% of the size)"), "{}", texts[0]);
        assert!(texts[1].contains("by >= 90% of the size"), "{}", texts[1]);
        assert!(
            texts[2].starts_with("the first touch of a page costs >= 5x the second"),
            "{}",
            texts[2]
        );
        // 5% of 256 MiB is 13421772.8 bytes; 90% is 241591910.4.
        let read = |grew: u64| {
            let mut m = good();
            m.rss_read = m.rss_mapped + grew;
            statuses(&m)[0]
        };
        assert_eq!(read(13_421_772), Status::Passed);
        assert_eq!(read(13_421_773), Status::Failed);
        let written = |grew: u64| {
            let mut m = good();
            m.rss_written = m.rss_mapped + grew;
            statuses(&m)[1]
        };
        assert_eq!(written(241_591_911), Status::Passed);
        assert_eq!(written(241_591_910), Status::Failed);
        // Second touch 10 ns a page: the first must take 50.
        let first = |ns: f64| {
            let mut m = good();
            m.costs.second_ns_per_page = vec![10.0; 5];
            m.costs.first_ns_per_page = vec![ns; 5];
            statuses(&m)[2]
        };
        assert_eq!(first(50.0), Status::Passed);
        assert_eq!(first(49.9), Status::Failed);
    }

    #[test]
    fn costs_from_a_mock_meter_are_exact() {
        use crate::lab::meter::{Counters, MockMeter};
        // Five timed operations per trial, two readings of each source per operation.
        let mut m = MockMeter::default();
        for _ in 0..(1 + WARMUP) {
            for (ns, faults) in [
                (4096 * 1000, 4096),
                (4096 * 10, 0),
                (500, 0),
                (20_000, 0),
                (10_000, 0),
            ] {
                m.clock.extend([0, ns]);
                m.counters.extend([
                    Counters::default(),
                    Counters {
                        minflt: faults,
                        ..Default::default()
                    },
                ]);
            }
        }
        let c = touch_costs(
            &mut m,
            16 << 20,
            &Adaptive::new(WARMUP, 1, Default::default()),
        )
        .unwrap();
        assert_eq!(c.first_ns_per_page, vec![1000.0]);
        assert_eq!(c.second_ns_per_page, vec![10.0]);
        assert_eq!(c.faults_per_page, vec![1.0]);
        assert_eq!(c.ns_per_fault, vec![990.0]);
        assert_eq!(c.once_first_ns, vec![500.0]);
        assert_eq!(c.once_later_ns, vec![2.0]);
        assert_eq!(c.empty_loop_ns, vec![1.0]);
    }
}
