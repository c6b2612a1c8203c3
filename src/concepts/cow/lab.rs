//! Lab: copy-on-write. A parent writes N MiB and forks; the child reads all of it (no
//! private copies), then writes a fraction: each written page faults once and becomes
//! the child's private page. fork itself copies page tables, so it slows with size.

use std::io;

use serde::{Deserialize, Serialize};

use crate::catalogue::ConceptId;
use crate::lab::mem::{page_size, Region};
use crate::lab::meter::{faults_agree, trial, SystemMeter};
use crate::lab::params::{ParamError, ParamSpec, ParamValues};
use crate::lab::report::{mib, pct, pct_text, times_text, Axis, Check, Cmp, LabReport};
use crate::lab::sandbox::{os_result, wait_forked, LabError, Link, Params};
use crate::lab::settings::{read_setting, THP_ENABLED};
use crate::lab::stats::{Adaptive, Stop, Summary};
use crate::lab::{LabContext, LabDef, WATCHDOG};

/// The copy-on-write lab: its parameters, the parent side (`run`) and the child roles.
pub static LAB: LabDef = LabDef {
    id: ConceptId::Cow,
    summary: "fork after writing N MiB: the child's reads share, its writes copy page by page; fork time vs size",
    headline: &[("copy-on-write fault", "CoW fault"), ("fork + exit + wait", "fork, largest parent")],
    params: &PARAMS,
    check: |p| settings(p).map(drop),
    run,
    child,
};

static PARAMS: [ParamSpec; 5] = [
    ParamSpec::bytes(
        "size",
        "the memory the parent writes before it forks the child that reads and writes it",
        256 << 20,
        64 << 20,
    )
    .main_size(),
    ParamSpec::fraction(
        "write_fraction",
        "the smallest share of the pages the child writes; it doubles up to all of them",
        (0.125, 0.25),
        (0.01, 1.0),
    ),
    ParamSpec::bytes(
        "fork_max",
        "the largest parent timed in fork + exit + wait (from 0 MiB, then 16 MiB x4 up to it)",
        256 << 20,
        64 << 20,
    )
    .at_least(16 << 20),
    ParamSpec::trials(
        "timed forks and posix_spawns per parent size (at least)",
        11,
        5,
    ),
    ParamSpec::budget(1000, 300),
];

/// The parent's sizes for the fork timings: none, then 16 MiB times 4 up to `max`.
fn fork_ladder(max: u64) -> Vec<u64> {
    let max_mib = max >> 20;
    let mut sizes = vec![0];
    let mut s = 16;
    while s < max_mib {
        sizes.push(s);
        s *= 4;
    }
    sizes.push(max_mib);
    sizes
}

/// The shares the child writes: `smallest`, doubled until all of the pages.
fn fraction_ladder(smallest: f64) -> Vec<f64> {
    let mut k = vec![smallest];
    while k.last().is_some_and(|&x| x < 1.0) {
        k.push((k[k.len() - 1] * 2.0).min(1.0));
    }
    k
}

fn settings(p: &ParamValues) -> Result<ParentParams, ParamError> {
    Ok(ParentParams {
        size: p.bytes("size")?,
        fractions: fraction_ladder(p.fraction("write_fraction")?),
        fork_sizes: fork_ladder(p.bytes("fork_max")?),
        trials: p.count("trials")? as usize,
        budget_ms: p.millis("budget_ms")?.as_millis() as u64,
    })
}

/// What the parent read of the forked child at each step.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Fraction {
    /// Share of the pages the child wrote.
    pub k: f64,
    /// Pages the child wrote.
    pub pages_written: u64,
    /// The child's Private_Dirty (bytes) just after fork.
    pub private_dirty_forked: u64,
    /// The child's Private_Dirty (bytes) after it read every page.
    pub private_dirty_read: u64,
    /// The child's Private_Dirty (bytes) after it wrote its share.
    pub private_dirty_written: u64,
    /// Minor faults the child counted while writing its share (getrusage).
    pub write_faults: u64,
    /// Time the child took to write the first half of its share, the timed half (ns).
    pub write_ns: u64,
    /// Minor faults of the timed half (getrusage).
    #[serde(default)]
    pub timed_faults: u64,
    /// Minor faults of the second half (getrusage), written with the tracepoint counting.
    #[serde(default)]
    pub traced_half_faults: u64,
    /// The second half's faults as the tracepoint exceptions:page_fault_user counted
    /// them, or why it could not.
    #[serde(default)]
    pub write_faults_traced: Option<Result<u64, String>>,
}

/// The parameters of the child role "parent".
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParentParams {
    size: u64,
    fractions: Vec<f64>,
    fork_sizes: Vec<u64>,
    trials: usize,
    /// Time budget of each parent size's adaptive trials (ms; 0: exactly `trials`).
    budget_ms: u64,
}

/// "forked": the forked child's pid.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Forked {
    pid: i32,
}

/// "written": the pages the forked child wrote in two halves: the first timed (the clock
/// and getrusage), the second counted by the tracepoint too, untimed.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    pages: u64,
    timed_faults: u64,
    ns: u64,
    traced_half_faults: u64,
    traced: Result<u64, String>,
}

/// fork + exit + wait times (us) at each parent size, and posix_spawn for contrast.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForkTimes {
    /// The parent sizes timed (MiB), one per row of the tables below.
    pub sizes_mib: Vec<u64>,
    /// Wall time of fork + exit + wait (us), the trials at each parent size.
    pub fork_us: Vec<Vec<f64>>,
    /// The parent's own CPU time (CLOCK_THREAD_CPUTIME_ID) in the same fork + wait: the page-table
    /// copy, without the time the two spent waiting for a CPU on a busy machine.
    pub fork_cpu_us: Vec<Vec<f64>>,
    /// Wall time of posix_spawn(/bin/true) + wait (us), the trials at each parent size.
    pub spawn_us: Vec<Vec<f64>>,
    /// How each parent size's adaptive trials (watching fork + exit + wait) ended.
    pub stops: Vec<Stop>,
}

/// Everything the copy-on-write lab measured, as `analyze` judges it.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// The memory the parent wrote before forking (bytes).
    pub size: u64,
    /// One step per share of the pages the child wrote.
    pub fractions: Vec<Fraction>,
    /// The fork and posix_spawn timings.
    pub fork: ForkTimes,
}

fn private_dirty(ctx: &mut LabContext, pid: i32) -> Result<u64, LabError> {
    ctx.rollup(pid)
        .and_then(|u| u.private_dirty)
        .map_err(LabError::read(format!("Private_Dirty of {pid}")))
}

fn run(ctx: &mut LabContext, report: &mut LabReport) -> Result<(), LabError> {
    let params = settings(&ctx.params)?;
    let thp = report.setting(THP_ENABLED, read_setting(THP_ENABLED));
    report.note(format!(
        "the memory is MADV_NOHUGEPAGE, so each copy is one 4 KiB page whatever the THP mode (here {}); under a huge page the first write would split it and copy 4 KiB",
        thp.unwrap_or_else(|why| why)
    ));
    let (size, fractions) = (params.size, params.fractions.clone());
    report.param("fractions", &fractions);
    report.param("fork_sizes_mib", &params.fork_sizes);
    let largest_fork = params.fork_sizes.iter().max().copied().unwrap_or(0) << 20;
    let jail = ctx.memory_jail(size * 2 + largest_fork, report)?;
    let mut c = ctx.spawn_in(&jail, ConceptId::Cow, "parent", &params)?;
    let mut m = Measured {
        size,
        ..Measured::default()
    };
    for &k in &fractions {
        // The forked child speaks on the same pipe; its pid comes with its first message.
        let child = c.expect::<Forked>("forked", WATCHDOG)?.pid;
        let mut f = Fraction {
            k,
            private_dirty_forked: private_dirty(ctx, child)?,
            ..Fraction::default()
        };
        c.go()?;
        c.expect::<()>("read", WATCHDOG)?;
        f.private_dirty_read = private_dirty(ctx, child)?;
        c.go()?;
        let w: Written = c.expect("written", WATCHDOG)?;
        f.private_dirty_written = private_dirty(ctx, child)?;
        f.pages_written = w.pages;
        f.write_faults = w.timed_faults + w.traced_half_faults;
        f.timed_faults = w.timed_faults;
        f.traced_half_faults = w.traced_half_faults;
        f.write_faults_traced = Some(w.traced);
        f.write_ns = w.ns;
        c.go()?;
        if m.fractions.is_empty() {
            let src = format!("/proc/{child}/smaps_rollup");
            report.evidence(
                &src,
                "Private_Dirty (forked -> read all)",
                f.private_dirty_forked as f64,
                f.private_dirty_read as f64,
                "bytes",
            );
            report.evidence(
                &src,
                &format!("Private_Dirty (read -> wrote {})", pct(k)),
                f.private_dirty_read as f64,
                f.private_dirty_written as f64,
                "bytes",
            );
        }
        m.fractions.push(f);
    }
    m.fork = c.expect("fork-times", WATCHDOG * 4)?;
    c.wait(WATCHDOG)?;
    analyze(&m, report);
    Ok(())
}

/// Reading all N may add less than this share of N to the child's Private_Dirty.
const READ_GROWTH_MAX: f64 = 0.02;
/// Copy-on-write faults per page written, at least (the claim's ">= k faults" for k pages).
const FAULTS_PER_PAGE: f64 = 1.0;
/// Share of the written pages that must show up in the child's Private_Dirty.
const PRIVATE_SHARE_MIN: f64 = 0.90;
/// The parent's CPU time in fork, largest parent over the smallest, at least.
const FORK_GROWTH_MIN: f64 = 2.0;

/// Turns the readings into the report's checks and figures (unit tests feed it made-up ones).
pub fn analyze(m: &Measured, report: &mut LabReport) {
    let ps = page_size() as f64;
    let n = m.size as f64;
    let read_growth = m
        .fractions
        .iter()
        .map(|f| f.private_dirty_read.saturating_sub(f.private_dirty_forked) as f64 / n)
        .fold(f64::NAN, f64::max);
    report.check(Check::compare(
        &format!(
            "the child reading all N MiB adds < {} of N to its Private_Dirty (reads share the parent's pages)",
            pct_text(READ_GROWTH_MAX)
        ),
        read_growth,
        Cmp::Less,
        READ_GROWTH_MAX,
        pct,
    ));
    let faults_per_page = m
        .fractions
        .iter()
        .map(|f| f.write_faults as f64 / f.pages_written.max(1) as f64)
        .fold(f64::NAN, f64::min);
    report.check(Check::compare(
        "writing k pages in the child costs >= k minor faults (one copy-on-write fault per page)",
        faults_per_page,
        Cmp::AtLeast,
        FAULTS_PER_PAGE,
        |x| format!("{x:.3} faults per written page"),
    )
    .observed(format!("{faults_per_page:.3} faults per written page (worst fraction)")));
    let private_share = m
        .fractions
        .iter()
        .map(|f| {
            f.private_dirty_written.saturating_sub(f.private_dirty_read) as f64
                / (f.pages_written as f64 * ps)
        })
        .fold(f64::NAN, f64::min);
    report.check(
        Check::compare(
            &format!(
                "writing k pages adds >= {} of k pages to the child's Private_Dirty",
                pct_text(PRIVATE_SHARE_MIN)
            ),
            private_share,
            Cmp::AtLeast,
            PRIVATE_SHARE_MIN,
            pct,
        )
        .observed(format!(
            "{} of the written bytes (worst fraction)",
            pct(private_share)
        )),
    );
    let median_of = |v: &[Vec<f64>]| -> Vec<f64> {
        v.iter()
            .map(|t| Summary::of(t).map_or(f64::NAN, |s| s.median))
            .collect()
    };
    let medians = median_of(&m.fork.fork_us);
    // Judged by the parent's CPU time: the wall time of fork + exit + wait also holds
    // both processes' waits for a CPU, which on a busy machine drown the copy.
    let cpu = median_of(&m.fork.fork_cpu_us);
    match (cpu.first(), cpu.last(), medians.first(), medians.last()) {
        (Some(&small), Some(&large), Some(&wall_small), Some(&wall_large)) if cpu.len() > 1 => {
            report.check(
                Check::compare(
                    &format!("fork costs the parent more CPU time the larger it is (page tables are copied): largest >= {} the smallest", times_text(FORK_GROWTH_MIN)),
                    large / small,
                    Cmp::AtLeast,
                    FORK_GROWTH_MIN,
                    |x| format!("{x:.1}x"),
                )
                .observed(format!(
                    "{:.1}x ({small:.0} -> {large:.0} us of CPU; wall time {:.1}x)",
                    large / small,
                    wall_large / wall_small
                )),
            )
        }
        _ => report.check(Check::failed(
            "fork costs the parent more CPU time the larger it is",
            "no fork timings from the child",
        )),
    }
    let cow_ns: Vec<f64> = m
        .fractions
        .iter()
        .filter(|f| f.timed_faults > 0)
        .map(|f| f.write_ns as f64 / f.timed_faults as f64)
        .collect();
    report.metric(
        "copy-on-write fault (write time / counted faults)",
        "ns",
        &cow_ns,
    );
    for (i, mib_) in m.fork.sizes_mib.iter().enumerate() {
        if let Some(t) = m.fork.fork_us.get(i) {
            let what = format!("fork + exit + wait, parent {mib_} MiB");
            report.metric(&what, "us", t);
            if let Some(note) = m.fork.stops.get(i).and_then(|s| s.note(&what, t.len())) {
                report.note(note);
            }
        }
        if let Some(t) = m.fork.fork_cpu_us.get(i) {
            report.metric(
                &format!("the parent's CPU time in fork + wait, parent {mib_} MiB"),
                "us",
                t,
            );
        }
    }
    if let Some(t) = m.fork.spawn_us.last() {
        report.metric(
            &format!(
                "posix_spawn(/bin/true) + wait, parent {} MiB",
                m.fork.sizes_mib.last().unwrap_or(&0)
            ),
            "us",
            t,
        );
    }
    report.series(
        "the child's private memory vs the fraction it wrote",
        "fraction of N written",
        "Private_Dirty added (MiB)",
        Axis::Continuous,
        m.fractions
            .iter()
            .map(|f| {
                [
                    f.k,
                    f.private_dirty_written.saturating_sub(f.private_dirty_read) as f64 / 1048576.0,
                ]
            })
            .collect(),
    );
    report.series(
        "fork time vs parent size",
        "parent size (MiB)",
        "fork + exit + wait, median (us)",
        Axis::Continuous,
        m.fork
            .sizes_mib
            .iter()
            .zip(&medians)
            .map(|(s, t)| [*s as f64, *t])
            .collect(),
    );
    report.note(format!(
        "after fork the child's {} are shared with the parent (Shared_Dirty); a write copies one page",
        mib(n)
    ));
    // The copy-on-write faults counted a second way, by the fault handler's tracepoint.
    let traced: Result<Vec<u64>, String> = m
        .fractions
        .iter()
        .map(|f| match &f.write_faults_traced {
            Some(t) => t.clone(),
            None => Err("the child did not report the tracepoint".into()),
        })
        .collect();
    let rusage: u64 = m.fractions.iter().map(|f| f.traced_half_faults).sum();
    match traced {
        Ok(t) => report.check(faults_agree(
            "the child's copy-on-write faults (the half written with the tracepoint on)",
            Some(t.iter().sum()),
            rusage,
            None,
        )),
        Err(why) => report.check(faults_agree(
            "the child's copy-on-write faults",
            None,
            rusage,
            Some(&why),
        )),
    }
}

fn child(role: &str, params: &Params, link: &mut Link) -> Result<(), String> {
    if role != "parent" {
        return Err(format!("unknown role {role}"));
    }
    let p: ParentParams = params.decode()?;
    let io = |e: io::Error| e.to_string();
    let region = Region::anon(p.size as usize).map_err(io)?;
    let _ = region.madvise(libc::MADV_NOHUGEPAGE);
    region.write_pages(1, region.pages(), 1);
    for k in p.fractions {
        let pages = ((region.pages() as f64) * k).round() as usize;
        // SAFETY: this process is single-threaded (a re-executed lab child), so the
        // forked copy may run any code.
        match unsafe { libc::fork() } {
            -1 => return Err(io(io::Error::last_os_error())),
            0 => {
                let _ = crate::lab::sandbox::die_with_parent();
                let code = i32::from(forked_child(&region, pages, link).is_err());
                // SAFETY: leave without running the parent's destructors twice.
                unsafe { libc::_exit(code) };
            }
            pid => {
                let status = wait_forked(pid).map_err(io)?;
                if status != 0 {
                    return Err(format!("the forked child failed (status {status})"));
                }
            }
        }
    }
    drop(region);
    let plan = Adaptive::new(1, p.trials, std::time::Duration::from_millis(p.budget_ms));
    let times = fork_times(&p.fork_sizes, &plan)?;
    link.send("fork-times", times).map_err(io)
}

// explain-begin: the lines that provoke the concept
fn forked_child(region: &Region, pages: usize, link: &mut Link) -> io::Result<()> {
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    link.sync("forked", Forked { pid })?;
    region.read_pages(1);
    link.sync("read", ())?;
    // The timed half runs without perf counters, which cost every fault they count
    // (about 200 ns of a 1230 ns first touch here); the tracepoint counts the other
    // half, untimed.
    let half = pages.div_ceil(2);
    let (timed, _) = trial(&mut SystemMeter::without_perf(), || {
        region.write_page_range(0..half, 1, 2)
    });
    let mut counter = SystemMeter::new();
    let (counted, _) = trial(&mut counter, || region.write_page_range(half..pages, 1, 2));
    link.sync(
        "written",
        Written {
            pages: pages as u64,
            timed_faults: timed.counts.minflt,
            ns: timed.ns,
            traced_half_faults: counted.counts.minflt,
            traced: counted.counts.trace_page_faults.ok_or_else(|| {
                counter
                    .tracepoint_refused
                    .clone()
                    .unwrap_or_else(|| "the tracepoint was not read".into())
            }),
        },
    )
}
// explain-end

/// lmbench's method: fork, the child exits at once, the parent waits; per parent size,
/// trials as `plan` says. A fork or posix_spawn that fails fails the run with its
/// errno: a failed call is never timed as a (fast) sample.
fn fork_times(sizes_mib: &[u64], plan: &Adaptive) -> Result<ForkTimes, String> {
    let io = |e: io::Error| e.to_string();
    let mut out = ForkTimes {
        sizes_mib: sizes_mib.to_vec(),
        ..ForkTimes::default()
    };
    let mut meter = SystemMeter::new();
    for &s in sizes_mib {
        let region = if s > 0 {
            Some(Region::anon((s as usize) << 20).map_err(io)?)
        } else {
            None
        };
        if let Some(r) = &region {
            let _ = r.madvise(libc::MADV_NOHUGEPAGE);
            r.write_pages(1, r.pages(), 1);
        }
        let mut forks = Vec::new();
        let mut fork_cpu = Vec::new();
        let mut spawns = Vec::new();
        let (_, stop) = plan.run(Adaptive::clock(), |kept| {
            let (f, forked) = trial(&mut meter, fork_exit_wait);
            forked.map_err(|e| format!("fork + exit + wait, parent {s} MiB: {e}"))?;
            let (sp, spawned) = trial(&mut meter, spawn_true);
            spawned.map_err(|e| format!("posix_spawn(/bin/true) + wait, parent {s} MiB: {e}"))?;
            if kept {
                forks.push(f.ns as f64 / 1000.0);
                fork_cpu.push(f.counts.cpu_ns as f64 / 1000.0);
                spawns.push(sp.ns as f64 / 1000.0);
            }
            Ok::<f64, String>(f.ns as f64 / 1000.0)
        })?;
        out.stops.push(stop);
        out.fork_us.push(forks);
        out.fork_cpu_us.push(fork_cpu);
        out.spawn_us.push(spawns);
        drop(region);
    }
    Ok(out)
}

fn fork_exit_wait() -> io::Result<()> {
    // SAFETY: single-threaded process; the child only calls _exit.
    match os_result(unsafe { libc::fork() })? {
        // SAFETY: leave at once.
        0 => unsafe { libc::_exit(0) },
        pid => reap(pid),
    }
}

/// Waits for our child `pid`; an exit status other than 0 is an error.
fn reap(pid: libc::pid_t) -> io::Result<()> {
    let st = wait_forked(pid)?;
    if st != 0 {
        return Err(io::Error::other(format!(
            "child {pid} ended with wait status {st:#x}"
        )));
    }
    Ok(())
}

fn spawn_true() -> io::Result<()> {
    let path = c"/bin/true";
    let argv = [path.as_ptr() as *mut libc::c_char, std::ptr::null_mut()];
    let envp = [std::ptr::null_mut::<libc::c_char>()];
    let mut pid = 0;
    // SAFETY: valid NUL-terminated argv/envp arrays; no file actions or attributes.
    let rc = unsafe {
        libc::posix_spawn(
            &mut pid,
            path.as_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            argv.as_ptr(),
            envp.as_ptr(),
        )
    };
    // posix_spawn returns the error number instead of setting errno.
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    reap(pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::report::Status;

    #[test]
    fn issue_18_the_ladders_keep_the_defaults_and_follow_the_parameters() {
        assert_eq!(fraction_ladder(0.125), [0.125, 0.25, 0.5, 1.0]);
        assert_eq!(fraction_ladder(0.3), [0.3, 0.6, 1.0]);
        assert_eq!(fraction_ladder(1.0), [1.0]);
        assert_eq!(fork_ladder(256 << 20), [0, 16, 64, 256]);
        assert_eq!(fork_ladder(64 << 20), [0, 16, 64]);
        assert_eq!(fork_ladder(100 << 20), [0, 16, 64, 100]);
        assert_eq!(fork_ladder(16 << 20), [0, 16]);
    }

    fn good() -> Measured {
        let pages = |mib: u64| mib * 256;
        Measured {
            size: 64 << 20,
            fractions: vec![Fraction {
                k: 0.25,
                pages_written: pages(16),
                private_dirty_forked: 100 << 10,
                private_dirty_read: 104 << 10,
                private_dirty_written: (104 << 10) + (16 << 20),
                write_faults: pages(16),
                write_ns: pages(8) * 2200,
                timed_faults: pages(8),
                traced_half_faults: pages(8),
                write_faults_traced: Some(Ok(pages(8) + 3)),
            }],
            fork: ForkTimes {
                sizes_mib: vec![0, 64],
                fork_us: vec![vec![130.0; 5], vec![1100.0; 5]],
                fork_cpu_us: vec![vec![60.0; 5], vec![400.0; 5]],
                spawn_us: vec![vec![600.0; 5]; 2],
                stops: vec![Stop::Converged; 2],
            },
        }
    }

    fn statuses(m: &Measured) -> Vec<Status> {
        crate::lab::report::claim_statuses(ConceptId::Cow, m, analyze)
    }

    fn pages_of(m: &Measured) -> u64 {
        m.fractions[0].write_faults
    }

    #[test]
    fn passes_on_copy_on_write() {
        assert_eq!(statuses(&good()), vec![Status::Passed; 5]);
    }

    #[test]
    fn each_claim_fails_on_contradicting_evidence() {
        let mut m = good();
        m.fractions[0].write_faults_traced = Some(Ok(pages_of(&m) * 2));
        assert_eq!(statuses(&m)[4], Status::Failed, "the two counts disagree");
        m.fractions[0].write_faults_traced = Some(Err("no tracefs".into()));
        assert_eq!(statuses(&m)[4], Status::Skipped);
        let mut m = good();
        m.fractions[0].private_dirty_read = 10 << 20;
        assert_eq!(statuses(&m)[0], Status::Failed);
        let mut m = good();
        m.fractions[0].write_faults = 10;
        assert_eq!(statuses(&m)[1], Status::Failed);
        let mut m = good();
        m.fractions[0].private_dirty_written = 5 << 20;
        assert_eq!(statuses(&m)[2], Status::Failed);
        let mut m = good();
        m.fork.fork_cpu_us[1] = vec![70.0; 5];
        assert_eq!(statuses(&m)[3], Status::Failed);
        assert!(statuses(&Measured::default())
            .iter()
            .all(|s| *s == Status::Failed));
    }

    /// Claim texts with their thresholds, and evidence just either side of each: the
    /// figures are worked out by hand, never from the constants.
    #[test]
    fn issue_23_each_claim_at_its_threshold() {
        let texts: Vec<String> = crate::lab::report::claims(ConceptId::Cow, &good(), analyze)
            .into_iter()
            .map(|c| c.claim)
            .collect();
        assert!(texts[0].contains("adds < 2% of N"), "{}", texts[0]);
        assert!(texts[1].contains(">= k minor faults"), "{}", texts[1]);
        assert!(texts[2].contains(">= 90% of k pages"), "{}", texts[2]);
        assert!(
            texts[3].contains("largest >= 2x the smallest"),
            "{}",
            texts[3]
        );
        // Read growth: 2% of 64 MiB is 1342177.28 bytes.
        let read = |added: u64| {
            let mut m = good();
            m.fractions[0].private_dirty_read = m.fractions[0].private_dirty_forked + added;
            m.fractions[0].private_dirty_written = m.fractions[0].private_dirty_read + (16 << 20);
            statuses(&m)[0]
        };
        assert_eq!(read(1_342_177), Status::Passed);
        assert_eq!(read(1_342_178), Status::Failed);
        // One fault per written page: 4096 pages written.
        let faults = |n: u64| {
            let mut m = good();
            m.fractions[0].write_faults = n;
            statuses(&m)[1]
        };
        assert_eq!(faults(4096), Status::Passed);
        assert_eq!(faults(4095), Status::Failed);
        // 90% of the 4096 pages written, in bytes of this host's pages.
        let ps = page_size() as f64;
        let private = |bytes: f64| {
            let mut m = good();
            m.fractions[0].private_dirty_written = m.fractions[0].private_dirty_read + bytes as u64;
            statuses(&m)[2]
        };
        assert_eq!(private((4096.0 * ps * 0.9).ceil()), Status::Passed);
        assert_eq!(private((4096.0 * ps * 0.899).floor()), Status::Failed);
        // The parent's CPU time in fork: 100 us small, 200 us large is 2x.
        let fork = |large: f64| {
            let mut m = good();
            m.fork.fork_cpu_us = vec![vec![100.0; 5], vec![large; 5]];
            statuses(&m)[3]
        };
        assert_eq!(fork(200.0), Status::Passed);
        assert_eq!(fork(199.0), Status::Failed);
    }

    #[test]
    fn issue_14_fork_growth_is_judged_by_cpu_time_not_by_waits_for_a_cpu() {
        let mut m = good();
        // A busy machine: both forks wait milliseconds for a CPU, the copy still grows.
        m.fork.fork_us = vec![vec![4000.0; 5], vec![3500.0; 5]];
        assert_eq!(statuses(&m)[3], Status::Passed);
    }

    /// Runs `check` in a forked copy of this test process that may not create
    /// processes: RLIMIT_NPROC 0, as user nobody where the test runs as root (root is
    /// exempt from the limit). True when the limit took hold and `check` held there.
    fn holds_without_new_processes(check: fn() -> bool) -> bool {
        // SAFETY: the forked copy makes plain system calls and runs `check`, which
        // only forks, spawns and allocates (glibc's malloc is fork-safe); it never
        // returns into the test harness.
        match unsafe { libc::fork() } {
            0 => {
                use rustix::process::{geteuid, setrlimit, Resource, Rlimit};
                let none = Rlimit {
                    current: Some(0),
                    maximum: Some(0),
                };
                // SAFETY: setuid as the raw system call changes just the calling (and
                // only) thread of this process.
                let limited = (!geteuid().is_root()
                    || unsafe { libc::syscall(libc::SYS_setuid, 65534) } == 0)
                    && setrlimit(Resource::Nproc, none).is_ok();
                let code = i32::from(!(limited && check()));
                // SAFETY: leave without running the harness's destructors.
                unsafe { libc::_exit(code) }
            }
            -1 => panic!("fork: {}", io::Error::last_os_error()),
            pid => matches!(wait_forked(pid), Ok(0)),
        }
    }

    #[test]
    fn issue_13_a_failed_fork_fails_the_timed_loop_with_its_errno() {
        assert!(fork_exit_wait().is_ok(), "fork works without the limit");
        assert!(holds_without_new_processes(|| {
            matches!(fork_times(&[0], &Adaptive::new(1, 2, Default::default())), Err(e)
                if e.starts_with("fork + exit + wait") && e.contains("os error 11"))
        }));
    }

    #[test]
    fn issue_13_a_failed_posix_spawn_is_an_error_not_a_sample() {
        assert!(spawn_true().is_ok(), "posix_spawn works without the limit");
        assert!(holds_without_new_processes(|| {
            matches!(spawn_true(), Err(e) if e.raw_os_error() == Some(libc::EAGAIN))
        }));
    }
}
