//! Lab: kernel vs user space. The same clock read costs a few ns through the vDSO
//! (user space) and ~100 ns as a real system call; a loop that only computes runs in
//! user time, a loop of read(2) from /dev/zero runs in system time.

use std::fs::File;
use std::io::{self, Read};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::concepts::ConceptId;
use crate::lab::mem::pin_to;
use crate::lab::meter::{trial, Meter, SystemMeter};
use crate::lab::report::{pct, Check, Cmp, LabReport};
use crate::lab::sandbox::{LabError, Link, Params};
use crate::lab::{LabContext, LabDef, WATCHDOG};

pub static LAB: LabDef = LabDef {
    id: ConceptId::KernelUser,
    summary: "a call, the vDSO clock, the same clock as a real syscall, getppid; user vs system time of loops",
    headline: &[("clock_gettime through the vDSO", "vDSO clock"), ("syscall(SYS_clock_gettime)", "syscall clock")],
    run,
    child,
};

const WARMUP: usize = 2;

/// The parameters of the child role "calls".
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallsParams {
    batch: u64,
    trials: usize,
    loop_ms: u64,
}

/// Net ns per operation (loop overhead subtracted), per trial.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Costs {
    pub empty_loop: Vec<f64>,
    pub call: Vec<f64>,
    pub vdso_clock: Vec<f64>,
    pub syscall_clock: Vec<f64>,
    pub getppid: Vec<f64>,
}

/// user and system time of a loop.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    pub user_ns: u64,
    pub system_ns: u64,
}

impl Split {
    pub fn system_share(&self) -> f64 {
        self.system_ns as f64 / (self.user_ns + self.system_ns).max(1) as f64
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measured {
    pub batch: u64,
    pub costs: Costs,
    pub pure_loop: Split,
    pub getppid_loop: Split,
    pub read_loop: Split,
}

fn run(ctx: &mut LabContext, report: &mut LabReport) -> Result<(), LabError> {
    let batch: u64 = if ctx.opts.quick { 20_000 } else { 100_000 };
    let trials = ctx.trials(15, 5);
    let loop_ms: u64 = if ctx.opts.quick { 200 } else { 300 };
    report.param("batch", batch);
    report.param("trials", trials);
    report.param("loop_ms", loop_ms);
    report.param("cpu", 0);
    let mut c = ctx.spawn(
        ConceptId::KernelUser,
        "calls",
        &CallsParams {
            batch,
            trials,
            loop_ms,
        },
    )?;
    let m: Measured = c.expect("measured", WATCHDOG)?;
    c.wait(WATCHDOG)?;
    analyze(&m, report);
    Ok(())
}

pub fn analyze(m: &Measured, report: &mut LabReport) {
    let base = report
        .metric(
            "empty loop iteration (subtracted from the others)",
            "ns",
            &m.costs.empty_loop,
        )
        .map(|s| s.median);
    report.metric_with_baseline("function call (not inlined)", "ns", &m.costs.call, base);
    let vdso = report.metric_with_baseline(
        "clock_gettime through the vDSO",
        "ns",
        &m.costs.vdso_clock,
        base,
    );
    let sys = report.metric_with_baseline(
        "syscall(SYS_clock_gettime)",
        "ns",
        &m.costs.syscall_clock,
        base,
    );
    report.metric_with_baseline("syscall(SYS_getppid)", "ns", &m.costs.getppid, base);
    match (vdso, sys) {
        (Some(v), Some(s)) => report.check(Check::compare(
            "the same clock read as a real syscall costs >= 3x the vDSO call (medians, net of the loop)",
            s.median / v.median.max(f64::MIN_POSITIVE),
            Cmp::AtLeast,
            3.0,
            |x| format!("{x:.1}x"),
        )),
        _ => report.check(Check::failed("the syscall form costs >= 3x the vDSO form", "no timings")),
    }
    report.check(Check::compare(
        "a loop that only computes runs >= 90% in user time",
        1.0 - m.pure_loop.system_share(),
        Cmp::AtLeast,
        0.90,
        pct,
    ));
    report.check(Check::compare(
        "a loop of read(2) of 64 KiB from /dev/zero runs >= 80% in system time",
        m.read_loop.system_share(),
        Cmp::AtLeast,
        0.80,
        pct,
    ));
    for (name, s) in [
        ("pure loop", m.pure_loop),
        ("getppid loop", m.getppid_loop),
        ("read loop", m.read_loop),
    ] {
        report.evidence(
            "getrusage(RUSAGE_THREAD)",
            &format!("{name}: user -> system time"),
            s.user_ns as f64,
            s.system_ns as f64,
            "ns",
        );
    }
    report.note(format!(
        "a getppid loop spends {} in the kernel: entry and exit are cheap enough that the loop itself is a large part",
        pct(m.getppid_loop.system_share())
    ));
    let series = |v: &[f64]| v.iter().enumerate().map(|(i, x)| [i as f64, *x]).collect();
    report.series(
        "function call",
        "trial",
        "ns per call (gross)",
        series(&m.costs.call),
    );
    report.series(
        "vDSO clock_gettime",
        "trial",
        "ns per call (gross)",
        series(&m.costs.vdso_clock),
    );
    report.series(
        "syscall clock_gettime",
        "trial",
        "ns per call (gross)",
        series(&m.costs.syscall_clock),
    );
}

#[inline(never)]
fn plain_call(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_mul(3).wrapping_add(1)
}

// explain-begin: the lines that provoke the concept
fn vdso_clock() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out pointer; glibc serves CLOCK_MONOTONIC from the vDSO.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_nsec
}

fn syscall_clock() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: the raw system call with a valid out pointer: no vDSO.
    unsafe { libc::syscall(libc::SYS_clock_gettime, libc::CLOCK_MONOTONIC, &mut ts) };
    // explain-end
    ts.tv_nsec
}

fn getppid() -> i64 {
    // SAFETY: no arguments.
    unsafe { libc::syscall(libc::SYS_getppid) }
}

/// Times `batch` calls of `op`, per trial, in ns per call (gross).
pub fn per_call<M: Meter>(
    meter: &mut M,
    trials: usize,
    batch: u64,
    op: impl Fn() -> i64,
) -> Vec<f64> {
    (0..trials + WARMUP)
        .map(|_| {
            let (t, _) = trial(meter, || {
                for _ in 0..batch {
                    std::hint::black_box(op());
                }
            });
            t.ns as f64 / batch as f64
        })
        .skip(WARMUP)
        .collect()
}

/// The user and system time of running `body` for `dur`; a failing `body` (a system
/// call that failed) fails the loop instead of being counted.
fn split_of(
    meter: &mut SystemMeter,
    dur: Duration,
    mut body: impl FnMut() -> io::Result<()>,
) -> io::Result<Split> {
    let (t, ran) = trial(meter, || -> io::Result<()> {
        let end = Instant::now() + dur;
        while Instant::now() < end {
            for _ in 0..64 {
                body()?;
            }
        }
        Ok(())
    });
    ran?;
    Ok(Split {
        user_ns: t.counts.utime_ns,
        system_ns: t.counts.stime_ns,
    })
}

/// The split of a loop of read(2) of 64 KiB from `file` (/dev/zero).
fn read_split(meter: &mut SystemMeter, dur: Duration, file: &mut File) -> io::Result<Split> {
    let mut buf = vec![0u8; 64 << 10];
    split_of(meter, dur, || {
        std::hint::black_box(file.read(&mut buf)?);
        Ok(())
    })
}

fn child(role: &str, params: &Params, link: &mut Link) -> Result<(), String> {
    if role != "calls" {
        return Err(format!("unknown role {role}"));
    }
    let CallsParams {
        batch,
        trials,
        loop_ms,
    } = params.decode()?;
    let dur = Duration::from_millis(loop_ms);
    let io = |e: io::Error| e.to_string();
    pin_to(0).map_err(io)?;
    let mut meter = SystemMeter::new();
    let costs = Costs {
        empty_loop: per_call(&mut meter, trials, batch, || 0),
        call: per_call(&mut meter, trials, batch, || plain_call(7) as i64),
        vdso_clock: per_call(&mut meter, trials, batch, vdso_clock),
        syscall_clock: per_call(&mut meter, trials, batch, syscall_clock),
        getppid: per_call(&mut meter, trials, batch, getppid),
    };
    let mut x = 1u64;
    let pure_loop = split_of(&mut meter, dur, || {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        Ok(())
    })
    .map_err(io)?;
    // getppid cannot fail.
    let getppid_loop = split_of(&mut meter, dur, || {
        std::hint::black_box(getppid());
        Ok(())
    })
    .map_err(io)?;
    let mut zero = File::open("/dev/zero").map_err(io)?;
    let read_loop =
        read_split(&mut meter, dur, &mut zero).map_err(|e| format!("read(2) of /dev/zero: {e}"))?;
    link.send(
        "measured",
        Measured {
            batch,
            costs,
            pure_loop,
            getppid_loop,
            read_loop,
        },
    )
    .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::report::Status;

    fn good() -> Measured {
        Measured {
            batch: 1000,
            costs: Costs {
                empty_loop: vec![1.0; 5],
                call: vec![2.0; 5],
                vdso_clock: vec![16.0; 5],
                syscall_clock: vec![120.0; 5],
                getppid: vec![80.0; 5],
            },
            pure_loop: Split {
                user_ns: 300_000_000,
                system_ns: 0,
            },
            getppid_loop: Split {
                user_ns: 140_000_000,
                system_ns: 160_000_000,
            },
            read_loop: Split {
                user_ns: 20_000_000,
                system_ns: 280_000_000,
            },
        }
    }

    fn statuses(m: &Measured) -> Vec<Status> {
        crate::lab::report::claim_statuses(ConceptId::KernelUser, m, analyze)
    }

    #[test]
    fn passes_on_the_kernel_boundary() {
        assert_eq!(statuses(&good()), vec![Status::Passed; 3]);
    }

    #[test]
    fn each_claim_fails_on_contradicting_evidence() {
        let mut m = good();
        m.costs.syscall_clock = vec![20.0; 5];
        assert_eq!(statuses(&m)[0], Status::Failed);
        let mut m = good();
        m.pure_loop.system_ns = 100_000_000;
        assert_eq!(statuses(&m)[1], Status::Failed);
        let mut m = good();
        m.read_loop.user_ns = 200_000_000;
        assert_eq!(statuses(&m)[2], Status::Failed);
    }

    #[test]
    fn per_call_divides_exact_mock_timings() {
        use crate::lab::meter::MockMeter;
        let mut m = MockMeter::default();
        for ns in [9_000, 9_000, 1_600, 1_700] {
            m.clock.extend([0, ns]);
        }
        assert_eq!(per_call(&mut m, 2, 100, || 0), vec![16.0, 17.0]);
    }

    #[test]
    fn issue_13_a_failed_read_fails_the_timed_loop_with_its_errno() {
        let mut meter = SystemMeter::without_perf();
        let dur = Duration::from_millis(5);
        let mut zero = File::open("/dev/zero").unwrap();
        assert!(read_split(&mut meter, dur, &mut zero).is_ok());
        // Opened for writing only: every read(2) fails with EBADF.
        let mut unreadable = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/zero")
            .unwrap();
        let e = read_split(&mut meter, dur, &mut unreadable).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    }
}
