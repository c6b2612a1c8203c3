//! Lab: the high-water mark. Memory malloc'ed in small chunks and freed stays with the
//! process while the heap's top is pinned by a live chunk; malloc_trim gives it back.
//! Large (mmap-threshold) allocations return at once.

use serde::{Deserialize, Serialize};

use crate::catalogue::ConceptId;
use crate::lab::mem::glibc_version;
use crate::lab::params::{Max, ParamError, ParamSpec, ParamValues, Value};
use crate::lab::report::{mib, pct, pct_text, Check, Cmp, LabReport};
use crate::lab::sandbox::{LabError, Link, Params};
use crate::lab::stats::Summary;
use crate::lab::{LabContext, LabDef, WATCHDOG};

/// The high-water-mark lab: its parameters, the parent side (`run`) and the child roles.
pub static LAB: LabDef = LabDef {
    id: ConceptId::HighWaterMark,
    summary:
        "malloc in small chunks, free all but the last: RSS stays at the peak until malloc_trim",
    headline: &[
        ("RSS kept after the frees", "kept after free"),
        ("RSS kept after malloc_trim", "after trim"),
    ],
    params: &PARAMS,
    check: |p| settings(p).map(drop),
    run,
    child,
};

static PARAMS: [ParamSpec; 4] = [
    ParamSpec::bytes(
        "size",
        "the bytes malloc'ed in each variant",
        256 << 20,
        64 << 20,
    )
    .main_size(),
    // Below glibc's mmap threshold (128 KiB) they come from the heap; above it, from
    // mmap, and the claims about the pinned heap no longer hold.
    ParamSpec::bytes(
        "small_chunk",
        "the chunk size of the small variant (heap chunks below the 128 KiB mmap threshold)",
        1 << 10,
        1 << 10,
    )
    .at_least(16)
    .at_most(Max::Fixed(Value::Int(1 << 20))),
    // Above the fixed mmap threshold each is its own mapping; below it, a heap chunk.
    ParamSpec::bytes(
        "large_chunk",
        "the chunk size of the large variant (own mappings above the 128 KiB mmap threshold)",
        1 << 20,
        1 << 20,
    )
    .at_least(4 << 10)
    .at_most(Max::Fixed(Value::Int(64 << 20))),
    ParamSpec::trials("trials, each in a fresh child", 3, 1),
];

/// The mmap threshold the large variant fixes, so glibc cannot raise it after a free
/// (measured: without it trial 0 returned 99%, trials 1-2 kept 100%).
const MMAP_THRESHOLD: i32 = 128 << 10;

/// The parameters of the child roles "small" and "large": the bytes to allocate in
/// chunks of `chunk` bytes.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SizeParams {
    size: u64,
    chunk: u64,
}

/// What a run is sized by.
struct Settings {
    size: u64,
    small_chunk: u64,
    large_chunk: u64,
    trials: usize,
}

fn settings(p: &ParamValues) -> Result<Settings, ParamError> {
    let s = Settings {
        size: p.bytes("size")?,
        small_chunk: p.bytes("small_chunk")?,
        large_chunk: p.bytes("large_chunk")?,
        trials: p.count("trials")? as usize,
    };
    // All but the last chunk is freed: there must be more than one.
    if s.size < 2 * s.small_chunk.max(s.large_chunk) {
        return Err(p.conflict("size must hold at least two chunks of each variant"));
    }
    Ok(s)
}

/// "allocated" from the small role: the bytes live at the peak.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Allocated {
    live: u64,
}

/// The kernel's view at each step of one trial: smaps_rollup Rss and status VmHWM.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Step {
    /// Rss from smaps_rollup (bytes).
    pub rss: u64,
    /// VmHWM from status, the peak Rss (bytes).
    pub hwm: u64,
}

/// One trial of the small-chunk variant.
#[derive(Debug, Clone, Default)]
pub struct SmallTrial {
    /// Bytes live at the peak (malloc_usable_size of every chunk).
    pub live_peak: u64,
    /// After allocating every chunk.
    pub allocated: Step,
    /// After freeing them all.
    pub freed: Step,
    /// After malloc_trim.
    pub trimmed: Step,
}

/// One trial of the large-chunk variant.
#[derive(Debug, Clone, Default)]
pub struct LargeTrial {
    /// After allocating every chunk.
    pub allocated: Step,
    /// After freeing them all.
    pub freed: Step,
}

/// Everything the high-water-mark lab measured, as `analyze` judges it.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// The trials of small chunks (from the heap).
    pub small: Vec<SmallTrial>,
    /// The trials of large chunks (each its own mapping).
    pub large: Vec<LargeTrial>,
}

fn step(ctx: &mut LabContext, pid: i32) -> Result<Step, LabError> {
    let rss = ctx.rss(pid)?;
    let hwm = ctx
        .status(pid)
        .and_then(|s| s.vm_hwm)
        .map_err(LabError::read(format!("VmHWM of {pid}")))?;
    Ok(Step { rss, hwm })
}

fn run(ctx: &mut LabContext, report: &mut LabReport) -> Result<(), LabError> {
    let Some(glibc) = glibc_version() else {
        for claim in claims() {
            report.check(Check::skipped(
                &claim,
                "the C library is not glibc: these claims are about glibc's malloc",
            ));
        }
        return Ok(());
    };
    let Settings {
        size,
        small_chunk,
        large_chunk,
        trials,
    } = settings(&ctx.params)?;
    report.param("glibc", &glibc);
    let jail = ctx.memory_jail(size, report)?;
    let mut m = Measured::default();
    // Every trial in a fresh child: glibc's allocator state must not carry over.
    for _ in 0..trials {
        let mut c = ctx.spawn_in(
            &jail,
            ConceptId::HighWaterMark,
            "small",
            &SizeParams {
                size,
                chunk: small_chunk,
            },
        )?;
        let live_peak = c.expect::<Allocated>("allocated", WATCHDOG)?.live;
        let allocated = step(ctx, c.pid)?;
        c.go()?;
        c.expect::<()>("freed", WATCHDOG)?;
        let freed = step(ctx, c.pid)?;
        c.go()?;
        c.expect::<()>("trimmed", WATCHDOG)?;
        let trimmed = step(ctx, c.pid)?;
        c.go()?;
        let pid = c.pid;
        c.wait(WATCHDOG)?;
        if m.small.is_empty() {
            let src = format!("/proc/{pid}/smaps_rollup");
            report.evidence(
                &src,
                "Rss (allocated -> freed)",
                allocated.rss as f64,
                freed.rss as f64,
                "bytes",
            );
            report.evidence(
                &src,
                "Rss (freed -> trimmed)",
                freed.rss as f64,
                trimmed.rss as f64,
                "bytes",
            );
            report.evidence(
                format!("/proc/{pid}/status"),
                "VmHWM (allocated -> trimmed)",
                allocated.hwm as f64,
                trimmed.hwm as f64,
                "bytes",
            );
        }
        m.small.push(SmallTrial {
            live_peak,
            allocated,
            freed,
            trimmed,
        });

        let mut c = ctx.spawn_in(
            &jail,
            ConceptId::HighWaterMark,
            "large",
            &SizeParams {
                size,
                chunk: large_chunk,
            },
        )?;
        c.expect::<()>("allocated", WATCHDOG)?;
        let allocated = step(ctx, c.pid)?;
        c.go()?;
        c.expect::<()>("freed", WATCHDOG)?;
        let freed = step(ctx, c.pid)?;
        c.go()?;
        let pid = c.pid;
        c.wait(WATCHDOG)?;
        if m.large.is_empty() {
            report.evidence(
                format!("/proc/{pid}/smaps_rollup"),
                "Rss, large chunks (allocated -> freed)",
                allocated.rss as f64,
                freed.rss as f64,
                "bytes",
            );
        }
        m.large.push(LargeTrial { allocated, freed });
    }
    analyze(&m, report);
    Ok(())
}

/// After the small frees RSS keeps at least this share of its peak (the heap top is pinned).
const KEPT_MIN: f64 = 0.80;
/// After malloc_trim, and after freeing large chunks, RSS is at most this share of its peak.
const RETURNED_MAX: f64 = 0.25;

/// The claims' texts, their thresholds from the constants the checks use.
fn claims() -> [String; 4] {
    [
        "VmHWM >= the peak of live bytes".into(),
        format!("after freeing all but the last small chunk, RSS stays >= {} of the peak (the heap top is pinned)", pct_text(KEPT_MIN)),
        format!("after malloc_trim(0), RSS <= {} of the peak", pct_text(RETURNED_MAX)),
        format!("large (mmap-threshold) chunks return at once: after free, RSS <= {} of the peak without trim", pct_text(RETURNED_MAX)),
    ]
}

/// The median over trials of a ratio; NaN (a failed claim) when there are no trials.
fn median_of(v: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.collect();
    Summary::of(&v).map_or(f64::NAN, |s| s.median)
}

/// Turns the readings into the report's checks and figures (unit tests feed it made-up ones).
pub fn analyze(m: &Measured, report: &mut LabReport) {
    let ratio = |a: u64, b: u64| {
        if b == 0 {
            f64::NAN
        } else {
            a as f64 / b as f64
        }
    };
    let claims = claims();
    let hwm_over_live = median_of(m.small.iter().map(|t| ratio(t.allocated.hwm, t.live_peak)));
    report.check(Check::compare(
        &claims[0],
        hwm_over_live,
        Cmp::AtLeast,
        1.0,
        |x| format!("{x:.3}x the live bytes"),
    ));
    let kept = median_of(m.small.iter().map(|t| ratio(t.freed.rss, t.allocated.rss)));
    report.check(Check::compare(
        &claims[1],
        kept,
        Cmp::AtLeast,
        KEPT_MIN,
        pct,
    ));
    let trimmed = median_of(
        m.small
            .iter()
            .map(|t| ratio(t.trimmed.rss, t.allocated.rss)),
    );
    report.check(Check::compare(
        &claims[2],
        trimmed,
        Cmp::AtMost,
        RETURNED_MAX,
        pct,
    ));
    let large = median_of(m.large.iter().map(|t| ratio(t.freed.rss, t.allocated.rss)));
    report.check(Check::compare(
        &claims[3],
        large,
        Cmp::AtMost,
        RETURNED_MAX,
        pct,
    ));
    let per_trial = |f: &dyn Fn(&SmallTrial) -> f64| m.small.iter().map(f).collect::<Vec<f64>>();
    report.metric(
        "RSS kept after the frees (share of peak)",
        "ratio",
        &per_trial(&|t| ratio(t.freed.rss, t.allocated.rss)),
    );
    report.metric(
        "RSS kept after malloc_trim (share of peak)",
        "ratio",
        &per_trial(&|t| ratio(t.trimmed.rss, t.allocated.rss)),
    );
    report.metric(
        "RSS kept after freeing large chunks (share of peak)",
        "ratio",
        &m.large
            .iter()
            .map(|t| ratio(t.freed.rss, t.allocated.rss))
            .collect::<Vec<_>>(),
    );
    if let Some(t) = m.small.first() {
        let to_mib = |b: u64| b as f64 / 1048576.0;
        let steps = [
            ("allocated", &t.allocated),
            ("freed all but the last", &t.freed),
            ("after malloc_trim", &t.trimmed),
        ];
        for (name, field) in [
            (
                "RSS over the steps (small chunks)",
                (|s: &Step| s.rss) as fn(&Step) -> u64,
            ),
            ("VmHWM over the steps (small chunks)", |s| s.hwm),
        ] {
            let bars: Vec<(&str, f64)> =
                steps.iter().map(|(l, s)| (*l, to_mib(field(s)))).collect();
            report.bars(name, "step", "MiB", &bars);
        }
        report.note(format!(
            "small chunks: RSS {} at the peak, {} after the frees, {} after malloc_trim; VmHWM stays {}",
            mib(t.allocated.rss as f64),
            mib(t.freed.rss as f64),
            mib(t.trimmed.rss as f64),
            mib(t.trimmed.hwm as f64)
        ));
    }
}

#[cfg(target_env = "gnu")]
fn child(role: &str, params: &Params, link: &mut Link) -> Result<(), String> {
    use crate::lab::mem::glibc;
    let p = params.decode::<SizeParams>()?;
    let (size, chunk) = (p.size as usize, p.chunk as usize);
    let io = |e: std::io::Error| e.to_string();
    match role {
        "small" => {
            // explain-begin: the lines that provoke the concept
            let n = size / chunk;
            let mut chunks: Vec<glibc::Chunk> = Vec::with_capacity(n);
            for _ in 0..n {
                chunks.push(glibc::Chunk::new(chunk).ok_or("malloc failed")?);
            }
            let live: u64 = chunks.iter().map(|c| c.usable() as u64).sum();
            link.sync("allocated", Allocated { live }).map_err(io)?;
            // Free all but the last: it pins the top of the heap.
            let last = chunks.pop();
            drop(chunks);
            link.sync("freed", ()).map_err(io)?;
            glibc::trim();
            // explain-end
            link.sync("trimmed", ()).map_err(io)?;
            drop(last);
            Ok(())
        }
        "large" => {
            if !glibc::fix_mmap_threshold(MMAP_THRESHOLD) {
                return Err("mallopt(M_MMAP_THRESHOLD) refused".into());
            }
            let chunks = (0..size / chunk)
                .map(|_| glibc::Chunk::new(chunk).ok_or("malloc failed"))
                .collect::<Result<Vec<_>, _>>()?;
            link.sync("allocated", ()).map_err(io)?;
            drop(chunks);
            link.sync("freed", ()).map_err(io)
        }
        other => Err(format!("unknown role {other}")),
    }
}

#[cfg(not(target_env = "gnu"))]
fn child(_role: &str, _params: &Params, _link: &mut Link) -> Result<(), String> {
    Err("the allocator lab needs glibc".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::report::Status;

    fn s(rss: u64, hwm: u64) -> Step {
        Step {
            rss: rss << 20,
            hwm: hwm << 20,
        }
    }

    fn good() -> Measured {
        Measured {
            small: vec![SmallTrial {
                live_peak: 256 << 20,
                allocated: s(265, 265),
                freed: s(265, 265),
                trimmed: s(9, 265),
            }],
            large: vec![LargeTrial {
                allocated: s(262, 262),
                freed: s(5, 262),
            }],
        }
    }

    fn statuses(m: &Measured) -> Vec<Status> {
        crate::lab::report::claim_statuses(ConceptId::HighWaterMark, m, analyze)
    }

    #[test]
    fn passes_on_the_high_water_mark() {
        assert_eq!(statuses(&good()), vec![Status::Passed; 4]);
    }

    #[test]
    fn each_claim_fails_on_contradicting_evidence() {
        let mut m = good();
        m.small[0].allocated.hwm = 100 << 20;
        assert_eq!(statuses(&m)[0], Status::Failed);
        let mut m = good();
        m.small[0].freed.rss = 100 << 20;
        assert_eq!(statuses(&m)[1], Status::Failed);
        let mut m = good();
        m.small[0].trimmed.rss = 200 << 20;
        assert_eq!(statuses(&m)[2], Status::Failed);
        let mut m = good();
        m.large[0].freed.rss = 250 << 20;
        assert_eq!(statuses(&m)[3], Status::Failed);
        assert!(statuses(&Measured::default())
            .iter()
            .all(|s| *s == Status::Failed));
    }

    /// Evidence just either side of each claim's threshold, worked out by hand: peaks
    /// of 1000 KiB, so a KiB is 0.1%.
    #[test]
    fn issue_23_each_claim_at_its_threshold() {
        let texts = claims();
        assert!(
            texts[1].contains("RSS stays >= 80% of the peak"),
            "{}",
            texts[1]
        );
        assert!(texts[2].ends_with("RSS <= 25% of the peak"), "{}", texts[2]);
        assert!(
            texts[3].contains("RSS <= 25% of the peak without trim"),
            "{}",
            texts[3]
        );
        let kib = |k: u64| Step {
            rss: k << 10,
            hwm: 1000 << 10,
        };
        let small = |live: u64, freed: u64, trimmed: u64| {
            let mut m = good();
            m.small[0] = SmallTrial {
                live_peak: live << 10,
                allocated: kib(1000),
                freed: kib(freed),
                trimmed: kib(trimmed),
            };
            statuses(&m)
        };
        assert_eq!(small(1000, 800, 250)[..3], [Status::Passed; 3]);
        assert_eq!(small(1001, 799, 251)[..3], [Status::Failed; 3]);
        let large = |freed: u64| {
            let mut m = good();
            m.large[0] = LargeTrial {
                allocated: kib(1000),
                freed: kib(freed),
            };
            statuses(&m)[3]
        };
        assert_eq!(large(250), Status::Passed);
        assert_eq!(large(251), Status::Failed);
    }
}
