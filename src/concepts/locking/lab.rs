//! Lab: locking, races and deadlocks. A counter updated with a separate atomic load
//! and store (safe Rust, wrong result) loses updates on two CPUs, whenever the two
//! threads really run at the same time; fetch_add and a mutex do not. Mutex, spinlock and atomic throughput by thread count. Two threads
//! taking A then B and B then A deadlock; a watchdog finds it from /proc alone (both
//! asleep in futex on the two lock words, no progress) and kills the child. A flock
//! held by one process and awaited by another shows in /proc/locks.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use syslens_probe::locks::parse_locks;
use syslens_probe::sched::{parse_schedstat, parse_syscall, Syscall};
use syslens_probe::stat::Stat;

use super::SYS_FUTEX;
use crate::catalogue::ConceptId;
use crate::lab::meter::thread_cpu;
use crate::lab::params::{Max, ParamError, ParamSpec, ParamValues};
use crate::lab::report::{Axis, Check, Cmp, LabReport};
use crate::lab::sandbox::{LabError, Link, Params};
use crate::lab::scratch::{Backing, ScratchDir};
use crate::lab::stats::{Adaptive, Stop};
use crate::lab::{LabContext, LabDef, WATCHDOG};

/// The locking lab: its parameters, the parent side (`run`) and the child roles.
pub static LAB: LabDef = LabDef {
    id: ConceptId::Locking,
    summary: "a racy counter loses updates; mutex vs spinlock vs atomic; a deadlock found from /proc; flock",
    headline: &[("updates lost", "lost updates"), ("mutex, 2 thread", "mutex, 2 threads")],
    params: &PARAMS,
    check: |p| settings(p).map(drop),
    run,
    child,
};

static PARAMS: [ParamSpec; 6] = [
    // About 0.4 ms alone, a few ms when the two threads contend for the cache line.
    ParamSpec::int(
        "race_increments",
        "increments",
        "increments per thread of the racy, fetch_add and mutex counters (two threads)",
        (1_000_000, 1_000_000),
        (1_000, 100_000_000),
    ),
    ParamSpec::int(
        "increments",
        "increments",
        "increments per thread of each timed mutex, spinlock and atomic run",
        (1_000_000, 200_000),
        (1_000, 100_000_000),
    ),
    ParamSpec::int(
        "threads",
        "threads",
        "the thread count of the contended timings (each is also timed on 1 thread)",
        (2, 2),
        (2, 0),
    )
    .at_most(Max::CpusTimes(4)),
    ParamSpec::trials("race attempts that ran together, and timed runs", 7, 5),
    ParamSpec::budget(1000, 300),
    ParamSpec::choice(
        "race_cpus",
        "where the two racing threads run: any CPU the scheduler picks, or both pinned to one",
        &["any", "one"],
        ("any", "any"),
    ),
];

fn settings(p: &ParamValues) -> Result<RaceParams, ParamError> {
    Ok(RaceParams {
        race_n: p.count("race_increments")?,
        n: p.count("increments")?,
        threads: p.count("threads")?,
        trials: p.count("trials")? as usize,
        budget_ms: p.millis("budget_ms")?.as_millis() as u64,
        one_cpu: p.choice("race_cpus")? == "one",
    })
}
/// How long the two racing threads must have certainly run at the same time for an
/// attempt to test the claim; at about 1 ns per contended increment that is tens of
/// thousands of interleaved load-store pairs.
const RACE_TOGETHER_US: f64 = 100.0;
/// A busy machine may not give the two threads two CPUs at once: attempts go on until
/// `trials` of them ran together or this much time has passed.
const RACE_BUDGET: Duration = Duration::from_secs(2);

/// The deadlock must be found within this long.
const DETECT_WITHIN: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(20);

/// The parameters of the child role "race": increments per thread of the race and of
/// the timings, the timings' thread count, and the trials.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RaceParams {
    race_n: u64,
    n: u64,
    threads: u64,
    trials: usize,
    /// Time budget of the timed runs' adaptive trials (ms; 0: exactly `trials`); the
    /// race attempts keep their own rule ([`RACE_BUDGET`]).
    budget_ms: u64,
    /// Pin both racing threads to CPU 0.
    one_cpu: bool,
}

/// "locks": the addresses of the two futex words and the threads that deadlock on them.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Locks {
    a: u64,
    b: u64,
    tids: Vec<i32>,
}

/// The parameters of the child roles "flock-hold" and "flock-wait".
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlockParams {
    path: PathBuf,
}

/// What the race child counted: the racy, atomic and mutex counters and their costs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counters {
    /// Increments each thread makes.
    pub per_thread: u64,
    /// Threads that increment the shared counters.
    pub threads: u64,
    /// Totals of the racy counter, per attempt.
    pub racy: Vec<u64>,
    /// How long the two racing threads certainly ran at the same time, per attempt, in
    /// us ([`together`]); below [`RACE_TOGETHER_US`] the attempt shows nothing.
    pub together_us: Vec<f64>,
    /// Wall time spent on the race attempts, in seconds.
    pub race_seconds: f64,
    /// Totals per trial.
    pub fetch_add: Vec<u64>,
    /// Totals of the mutex-guarded counter, per trial.
    pub mutex: Vec<u64>,
    /// ns per increment at 1 and 2 threads: [threads, ns] per trial.
    pub mutex_ns: Vec<[f64; 2]>,
    /// ns per increment under a spinlock: [threads, ns] per trial.
    pub spin_ns: Vec<[f64; 2]>,
    /// ns per atomic fetch_add: [threads, ns] per trial.
    pub atomic_ns: Vec<[f64; 2]>,
    /// How the adaptive trials of the timed runs ended (they watch the mutex at the
    /// most threads; each trial times every lock at 1 thread and at the most).
    #[serde(default)]
    pub timed_stop: Option<Stop>,
}

/// Everything the locking lab measured, as `analyze` judges it.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// CPUs on the host (1 when unknown).
    pub cpus: u64,
    /// The race child's counters.
    pub counters: Counters,
    /// Seconds from the child's report of its locks to the watchdog's verdict.
    pub deadlock_detected_after: Option<f64>,
    /// What /proc showed of the deadlocked threads, or why no deadlock was seen.
    pub deadlock_evidence: String,
    /// /proc/locks showed the holder's FLOCK held.
    pub flock_held_by_holder: bool,
    /// /proc/locks showed the waiter waiting for it.
    pub flock_awaited_by_waiter: bool,
    /// The waiter got the lock once the holder released it.
    pub waiter_acquired_after_release: bool,
}

fn run(ctx: &mut LabContext, report: &mut LabReport) -> Result<(), LabError> {
    let params = settings(&ctx.params)?;
    let mut m = Measured {
        cpus: ctx.host.cpus.clone().unwrap_or(1),
        ..Measured::default()
    };
    let mut c = ctx.spawn(ConceptId::Locking, "race", &params)?;
    let budget = Duration::from_millis(params.budget_ms);
    m.counters = c.expect("counters", WATCHDOG + budget)?;
    c.wait(WATCHDOG)?;

    let mut c = ctx.spawn(ConceptId::Locking, "deadlock", &())?;
    let locks: Locks = c.expect("locks", WATCHDOG)?;
    let started = Instant::now();
    (m.deadlock_detected_after, m.deadlock_evidence) =
        watch_for_deadlock(ctx, c.pid, &locks.tids, &[locks.a, locks.b], started);
    c.kill();

    let dir = ScratchDir::new(Backing::Persistent)
        .or_else(|_| ScratchDir::new(Backing::Memory))
        .map_err(LabError::io("scratch directory"))?;
    let flock = FlockParams {
        path: dir.path().join("locked"),
    };
    let mut holder = ctx.spawn(ConceptId::Locking, "flock-hold", &flock)?;
    holder.expect::<()>("held", WATCHDOG)?;
    let mut waiter = ctx.spawn(ConceptId::Locking, "flock-wait", &flock)?;
    waiter.expect::<()>("waiting", WATCHDOG)?;
    let deadline = Instant::now() + DETECT_WITHIN;
    while Instant::now() < deadline {
        if let Ok(locks) = ctx.reader.read_proc("locks").and_then(parse_locks) {
            m.flock_held_by_holder = locks
                .iter()
                .any(|l| l.pid == i64::from(holder.pid) && !l.waiting && l.class == "FLOCK");
            m.flock_awaited_by_waiter = locks
                .iter()
                .any(|l| l.pid == i64::from(waiter.pid) && l.waiting);
        }
        if m.flock_held_by_holder && m.flock_awaited_by_waiter {
            break;
        }
        std::thread::sleep(POLL);
    }
    holder.go()?;
    holder.expect::<()>("released", WATCHDOG)?;
    m.waiter_acquired_after_release = waiter.expect::<()>("acquired", WATCHDOG).is_ok();
    holder.go()?;
    waiter.go()?;
    holder.wait(WATCHDOG)?;
    waiter.wait(WATCHDOG)?;
    analyze(&m, report);
    Ok(())
}

/// Polls the child's threads until both sleep in futex waits on the two lock words
/// and neither makes progress over two polls. Returns the time it took and what /proc
/// showed.
fn watch_for_deadlock(
    ctx: &mut LabContext,
    pid: i32,
    tids: &[i32],
    words: &[u64],
    started: Instant,
) -> (Option<f64>, String) {
    let mut last_run: Vec<u64> = vec![u64::MAX; tids.len()];
    let mut still = 0;
    let mut seen = String::new();
    while started.elapsed() < DETECT_WITHIN * 2 {
        let Ok(dir) = ctx.reader.open_pid(pid) else {
            break;
        };
        let mut parked = 0;
        let mut progressed = false;
        let mut lines = Vec::new();
        for (i, &tid) in tids.iter().enumerate() {
            let Ok(task) = dir.task(tid) else { continue };
            let state = ctx
                .reader
                .read_pid(&task, "stat")
                .and_then(Stat::parse)
                .map(|s| s.state)
                .unwrap_or(b'?');
            let call = ctx
                .reader
                .read_pid(&task, "syscall")
                .and_then(parse_syscall);
            let run = ctx
                .reader
                .read_pid(&task, "schedstat")
                .and_then(parse_schedstat)
                .map(|s| s.run_ns)
                .unwrap_or(0);
            progressed |= run != last_run[i];
            last_run[i] = run;
            if let Ok(Syscall::In {
                nr,
                args: [arg0, ..],
            }) = call
            {
                if state == b'S' && nr == SYS_FUTEX && words.contains(&arg0) {
                    parked += 1;
                    lines.push(format!("tid {tid}: S, futex({arg0:#x})"));
                }
            }
        }
        still = if parked == tids.len() && !tids.is_empty() && !progressed {
            still + 1
        } else {
            0
        };
        if still >= 2 {
            seen = lines.join("; ");
            return (Some(started.elapsed().as_secs_f64()), seen);
        }
        std::thread::sleep(POLL);
    }
    (None, seen)
}

/// Turns the readings into the report's checks and figures (unit tests feed it made-up ones).
pub fn analyze(m: &Measured, report: &mut LabReport) {
    let c = &m.counters;
    let expected = c.per_thread * c.threads;
    let claim_race =
        "a counter updated by a separate atomic load and store loses updates on two CPUs";
    if m.cpus < 2 {
        report.check(Check::skipped(
            claim_race,
            "one CPU: the threads never run at the same time",
        ));
    } else {
        // Only attempts whose threads certainly ran at the same time test the claim.
        let concurrent = ran_together(c);
        if concurrent.is_empty() {
            let most = c.together_us.iter().copied().fold(0.0, f64::max);
            report.check(Check::skipped(
                claim_race,
                format!(
                    "the two threads never ran at the same time in {} attempts over {:.1} s \
                     (at most {most:.0} us together, {RACE_TOGETHER_US:.0} us needed): \
                     the machine is too busy to give them two CPUs at once, or each \
                     run too short to overlap the other's start",
                    c.racy.len(),
                    c.race_seconds
                ),
            ));
        } else {
            report.check(Check::holds(
                claim_race,
                concurrent.iter().all(|t| *t < expected),
                format!(
                    "totals {concurrent:?} of {expected} in the {} of {} attempts where the \
                     threads ran at the same time (>= {RACE_TOGETHER_US:.0} us, from their CPU times)",
                    concurrent.len(),
                    c.racy.len()
                ),
                format!("< {expected} in each"),
            ));
        }
    }
    report.check(Check::holds(
        "fetch_add and a mutex are exact",
        !c.fetch_add.is_empty() && c.fetch_add.iter().chain(&c.mutex).all(|t| *t == expected),
        format!("fetch_add {:?}, mutex {:?}", c.fetch_add, c.mutex),
        format!("{expected} every time"),
    ));
    report.evidence(
        "the racy counter's totals, every attempt",
        "attempts -> attempts exact",
        c.racy.len() as f64,
        c.racy.iter().filter(|t| **t == expected).count() as f64,
        "",
    );
    report.evidence(
        "the racy counter's totals, every attempt",
        "increments made -> counted",
        (expected * c.racy.len() as u64) as f64,
        c.racy.iter().sum::<u64>() as f64,
        "",
    );
    let lost: Vec<f64> = ran_together(c)
        .iter()
        .map(|t| 1.0 - *t as f64 / expected.max(1) as f64)
        .collect();
    report.metric("updates lost by the racy counter", "ratio", &lost);
    let most = c.mutex_ns.iter().map(|p| p[0]).fold(1.0, f64::max);
    let timed = c.mutex_ns.iter().filter(|p| p[0] == most).count();
    if let Some(note) = c.timed_stop.and_then(|s| {
        s.note(
            &format!("mutex, {most:.0} thread(s) (every lock timed at 1 and {most:.0} per trial)"),
            timed,
        )
    }) {
        report.note(note);
    }
    let locks = [
        ("mutex", &c.mutex_ns),
        ("spinlock", &c.spin_ns),
        ("atomic fetch_add", &c.atomic_ns),
    ];
    // Every thread count measured, for any lock: the plot's categories.
    let mut counts: Vec<f64> = locks
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p[0]))
        .collect();
    counts.sort_by(f64::total_cmp);
    counts.dedup();
    let labels: Vec<String> = counts
        .iter()
        .map(|t| format!("{t:.0} thread{}", if *t == 1.0 { "" } else { "s" }))
        .collect();
    for (name, pts) in locks {
        let mut bars = Vec::new();
        for (i, threads) in counts.iter().enumerate() {
            let v: Vec<f64> = pts
                .iter()
                .filter(|p| p[0] == *threads)
                .map(|p| p[1])
                .collect();
            let summary = report.metric(
                &format!("{name}, {threads:.0} thread(s), wall time per increment"),
                "ns",
                &v,
            );
            if let Some(s) = summary {
                bars.push([i as f64, s.median]);
            }
        }
        report.series(
            &format!("{name}, median of the trials"),
            "threads",
            "ns per increment",
            Axis::Categories(labels.clone()),
            bars,
        );
    }
    let deadlock = &format!(
        "two threads taking A->B and B->A deadlock; the watchdog finds it from /proc within {} s",
        DETECT_WITHIN.as_secs_f64()
    );
    match m.deadlock_detected_after {
        Some(s) => report.check(
            Check::compare(deadlock, s, Cmp::AtMost, DETECT_WITHIN.as_secs_f64(), |x| {
                format!("{x:.2} s")
            })
            .observed(format!("{s:.2} s: {}", m.deadlock_evidence)),
        ),
        None => report.check(Check::failed(
            deadlock,
            "the watchdog never saw both threads parked in futex on the lock words",
        )),
    }
    report.check(Check::holds(
        "a flock held by one process and awaited by another shows in /proc/locks",
        m.flock_held_by_holder && m.flock_awaited_by_waiter,
        format!(
            "holder {}, waiter {}",
            if m.flock_held_by_holder {
                "listed"
            } else {
                "missing"
            },
            if m.flock_awaited_by_waiter {
                "listed as blocked (->)"
            } else {
                "missing"
            }
        ),
        "both listed",
    ));
    if m.flock_held_by_holder && !m.waiter_acquired_after_release {
        report.note("the waiter did not acquire the lock after the holder released it");
    }
}

/// A lock on one futex word, so the word's address, which /proc shows as the first
/// futex argument, is known. 0 free, 1 locked, 2 locked with waiters.
#[derive(Debug, Default)]
struct FutexLock {
    word: AtomicU32,
}

impl FutexLock {
    fn lock(&self) {
        if self
            .word
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        while self.word.swap(2, Ordering::Acquire) != 0 {
            // SAFETY: FUTEX_WAIT on a live word; returns on wake or if the word changed.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.word.as_ptr(),
                    libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                    2,
                    std::ptr::null::<libc::timespec>(),
                )
            };
        }
    }

    fn addr(&self) -> u64 {
        self.word.as_ptr() as u64
    }
}

/// A test-and-test-and-set spinlock.
#[derive(Debug, Default)]
struct SpinLock {
    held: AtomicBool,
}

impl SpinLock {
    fn with(&self, f: impl FnOnce()) {
        loop {
            if !self.held.swap(true, Ordering::Acquire) {
                break;
            }
            while self.held.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        }
        f();
        self.held.store(false, Ordering::Release);
    }
}

/// The totals of the attempts whose threads ran together long enough to show the race.
fn ran_together(c: &Counters) -> Vec<u64> {
    c.racy
        .iter()
        .zip(&c.together_us)
        .filter(|(_, us)| **us >= RACE_TOGETHER_US)
        .map(|(t, _)| *t)
        .collect()
}

/// When a thread ran, by the wall clock from a common origin, and the CPU time it used
/// in between (read inside the wall interval, so never more than it really used there).
#[derive(Debug, Clone, Copy)]
struct Span {
    start: Duration,
    end: Duration,
    cpu: Duration,
}

/// How long two threads certainly ran at the same time: one CPU gives at most the wall
/// time they spanned, so CPU time beyond it was spent in parallel. Spans that only
/// overlap on the clock (a busy machine time-slicing both on one CPU) give zero.
fn together(spans: &[Span]) -> Duration {
    match spans {
        [a, b] => {
            let wall = a.end.max(b.end).saturating_sub(a.start.min(b.start));
            (a.cpu + b.cpu).saturating_sub(wall)
        }
        _ => Duration::ZERO,
    }
}

/// One race: two threads each add `n` to one counter by a separate load and store
/// (both on CPU 0 when `one_cpu`). Returns the total and how long the threads
/// certainly ran at the same time.
fn race_once(n: u64, one_cpu: bool) -> (u64, Duration) {
    let racy = AtomicU64::new(0);
    let spans = Mutex::new(Vec::new());
    let origin = Instant::now();
    in_threads(2, || {
        // A failed pin leaves the thread where it is: the attempt still races.
        if one_cpu {
            let _ = crate::lab::mem::pin_to(0);
        }
        let start = origin.elapsed();
        let cpu0 = thread_cpu();
        // explain-begin: the lines that provoke the concept
        for _ in 0..n {
            // Safe Rust, and wrong: another thread can store between the two.
            let v = racy.load(Ordering::Relaxed);
            racy.store(v + 1, Ordering::Relaxed);
        }
        // explain-end
        let cpu = thread_cpu().saturating_sub(cpu0);
        let end = origin.elapsed();
        if let Ok(mut s) = spans.lock() {
            s.push(Span { start, end, cpu });
        }
    });
    (
        racy.into_inner(),
        together(&spans.into_inner().unwrap_or_default()),
    )
}

/// Runs `f` on `threads` threads that start together: each spins once it is running
/// until all are, and the last to arrive starts them (a sleeping barrier would wake
/// them tens of us apart on a VM, long enough for one to finish alone; a spinning
/// coordinator would take a CPU from them). Returns the wall time from the start.
fn in_threads(threads: u64, f: impl Fn() + Sync) -> Duration {
    let ready = AtomicU64::new(0);
    let go = AtomicBool::new(false);
    let start = std::sync::OnceLock::new();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                if ready.fetch_add(1, Ordering::AcqRel) + 1 == threads {
                    let _ = start.set(Instant::now());
                    go.store(true, Ordering::Release);
                }
                while !go.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
                f();
            });
        }
    });
    start.get().map_or(Duration::ZERO, Instant::elapsed)
}

/// The timed runs: ns per increment, [threads, ns] per run, and how the trials ended.
struct Timed {
    mutex: Vec<[f64; 2]>,
    spin: Vec<[f64; 2]>,
    atomic: Vec<[f64; 2]>,
    stop: Stop,
}

/// A mutex, a spinlock and an atomic fetch_add, `n` increments per thread on 1 thread
/// and on `most`, per trial, trials as `plan` says (the mutex on `most` threads drives
/// the rule, the headline of the lab).
fn timed_runs(plan: &Adaptive, n: u64, most: u64) -> Timed {
    let (mut mutex, mut spin, mut atomic) = (Vec::new(), Vec::new(), Vec::new());
    let run = plan.run(Adaptive::clock(), |kept| -> Result<f64, Infallible> {
        let mut headline = 0.0;
        for threads in [1, most] {
            let per = |d: Duration| d.as_nanos() as f64 / (n * threads) as f64;
            let m = Mutex::new(0u64);
            let mutex_ns = per(in_threads(threads, || {
                (0..n).for_each(|_| {
                    if let Ok(mut g) = m.lock() {
                        *g += 1
                    }
                })
            }));
            let s = SpinLock::default();
            let v = AtomicU64::new(0);
            let spin_ns = per(in_threads(threads, || {
                (0..n).for_each(|_| {
                    s.with(|| {
                        v.fetch_add(1, Ordering::Relaxed);
                    })
                })
            }));
            let a = AtomicU64::new(0);
            let atomic_ns = per(in_threads(threads, || {
                (0..n).for_each(|_| {
                    a.fetch_add(1, Ordering::Relaxed);
                })
            }));
            if kept {
                mutex.push([threads as f64, mutex_ns]);
                spin.push([threads as f64, spin_ns]);
                atomic.push([threads as f64, atomic_ns]);
            }
            headline = mutex_ns;
        }
        Ok(headline)
    });
    let (_, stop) = run.unwrap_or_else(|never| match never {});
    Timed {
        mutex,
        spin,
        atomic,
        stop,
    }
}

fn child(role: &str, params: &Params, link: &mut Link) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    match role {
        "race" => {
            let RaceParams {
                race_n,
                n,
                threads: most,
                trials,
                budget_ms,
                one_cpu,
            } = params.decode()?;
            let mut c = Counters {
                per_thread: race_n,
                threads: 2,
                ..Counters::default()
            };
            let started = Instant::now();
            while c.racy.is_empty()
                || (ran_together(&c).len() < trials && started.elapsed() < RACE_BUDGET)
            {
                let (total, together) = race_once(race_n, one_cpu);
                c.racy.push(total);
                c.together_us.push(together.as_secs_f64() * 1e6);
            }
            c.race_seconds = started.elapsed().as_secs_f64();
            for _ in 0..trials {
                let exact = AtomicU64::new(0);
                in_threads(2, || {
                    for _ in 0..race_n {
                        exact.fetch_add(1, Ordering::Relaxed);
                    }
                });
                c.fetch_add.push(exact.into_inner());
                let locked = Mutex::new(0u64);
                in_threads(2, || {
                    for _ in 0..race_n {
                        if let Ok(mut g) = locked.lock() {
                            *g += 1;
                        }
                    }
                });
                c.mutex.push(locked.into_inner().unwrap_or(0));
            }
            // No warm-up, as before: each run starts its threads afresh.
            let plan = Adaptive::new(0, trials, Duration::from_millis(budget_ms));
            let timed = timed_runs(&plan, n, most);
            (c.mutex_ns, c.spin_ns, c.atomic_ns) = (timed.mutex, timed.spin, timed.atomic);
            c.timed_stop = Some(timed.stop);
            link.send("counters", c).map_err(io)
        }
        "deadlock" => {
            let a = Arc::new(FutexLock::default());
            let b = Arc::new(FutexLock::default());
            let barrier = Arc::new(Barrier::new(2));
            let (tx, rx) = std::sync::mpsc::channel();
            for (first, second) in [(a.clone(), b.clone()), (b.clone(), a.clone())] {
                let (barrier, tx) = (barrier.clone(), tx.clone());
                std::thread::spawn(move || {
                    let _ = tx.send(rustix::thread::gettid().as_raw_nonzero().get());
                    first.lock();
                    // Both hold their first lock before either asks for its second.
                    barrier.wait();
                    second.lock();
                });
            }
            let tids: Vec<i32> = (0..2).filter_map(|_| rx.recv().ok()).collect();
            link.send(
                "locks",
                Locks {
                    a: a.addr(),
                    b: b.addr(),
                    tids,
                },
            )
            .map_err(io)?;
            // Deadlocked: the parent's watchdog kills this process.
            loop {
                std::thread::park();
            }
        }
        "flock-hold" | "flock-wait" => {
            use rustix::fs::{flock, FlockOperation};
            let path = params.decode::<FlockParams>()?.path;
            let f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io)?;
            if role == "flock-wait" {
                link.send("waiting", ()).map_err(io)?;
            }
            flock(&f, FlockOperation::LockExclusive).map_err(|e| io(e.into()))?;
            if role == "flock-hold" {
                link.sync("held", ()).map_err(io)?;
                let _ = flock(&f, FlockOperation::Unlock);
                link.sync("released", ()).map_err(io)
            } else {
                link.sync("acquired", ()).map_err(io)
            }
        }
        other => Err(format!("unknown role {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::report::Status;

    fn good() -> Measured {
        Measured {
            cpus: 2,
            counters: Counters {
                per_thread: 100,
                threads: 2,
                racy: vec![150, 160],
                together_us: vec![900.0, 1200.0],
                race_seconds: 0.02,
                fetch_add: vec![200, 200],
                mutex: vec![200, 200],
                mutex_ns: vec![[1.0, 13.0], [2.0, 22.0]],
                spin_ns: vec![[1.0, 9.0], [2.0, 67.0]],
                atomic_ns: vec![[1.0, 4.5], [2.0, 29.0]],
                timed_stop: None,
            },
            deadlock_detected_after: Some(0.06),
            deadlock_evidence: "tid 1: S, futex(0x1); tid 2: S, futex(0x2)".into(),
            flock_held_by_holder: true,
            flock_awaited_by_waiter: true,
            waiter_acquired_after_release: true,
        }
    }

    fn statuses(m: &Measured) -> Vec<Status> {
        crate::lab::report::claim_statuses(ConceptId::Locking, m, analyze)
    }

    /// The racy counter's evidence, its lost share and the plot's labels, from figures
    /// worked out by hand (issue 23: `==` as `!=`, the lost share's `-` and `/`, and the
    /// plural of "thread" survived a mutation run).
    #[test]
    fn issue_23_the_racy_counters_figures_and_the_thread_labels() {
        let mut m = good();
        // 200 increments expected; the middle attempt did not run together.
        m.counters.racy = vec![150, 200, 160];
        m.counters.together_us = vec![900.0, 50.0, 1200.0];
        let r = crate::lab::report::analyzed(ConceptId::Locking, &m, analyze);
        let evidence = |field: &str| {
            let e = r.evidence.iter().find(|e| e.field == field).expect(field);
            (e.before, e.after)
        };
        assert_eq!(evidence("attempts -> attempts exact"), (3.0, 1.0));
        assert_eq!(evidence("increments made -> counted"), (600.0, 510.0));
        let lost = &r
            .metrics
            .iter()
            .find(|x| x.name == "updates lost by the racy counter")
            .expect("the lost share")
            .summary;
        // 1 - 160/200 and 1 - 150/200.
        assert_eq!(lost.n, 2);
        assert!(
            (lost.min - 0.2).abs() < 1e-12 && (lost.max - 0.25).abs() < 1e-12,
            "{lost:?}"
        );
        let mutex = r
            .series
            .iter()
            .find(|s| s.name == "mutex, median of the trials")
            .expect("the mutex plot");
        assert_eq!(
            mutex.axis,
            Axis::Categories(vec!["1 thread".into(), "2 threads".into()])
        );
    }

    /// The note on a waiter that never got the lock appears only then (issue 23: the
    /// deleted `!` survived a mutation run).
    #[test]
    fn issue_23_a_waiter_that_never_acquired_the_flock_is_noted() {
        let note = "the waiter did not acquire the lock after the holder released it";
        let notes = |acquired: bool| {
            let mut m = good();
            m.waiter_acquired_after_release = acquired;
            crate::lab::report::analyzed(ConceptId::Locking, &m, analyze).notes
        };
        assert!(!notes(true).iter().any(|n| n == note));
        assert!(notes(false).iter().any(|n| n == note));
    }

    /// issue 20: the timed runs take adaptive trials, and a budget that ran out is named
    /// in the notes with its interval.
    #[test]
    fn issue_20_a_lock_timing_series_whose_budget_ran_out_is_named_in_the_notes() {
        let budget = |stop: Option<Stop>| -> Vec<String> {
            let mut m = good();
            m.counters.timed_stop = stop;
            crate::lab::report::budget_notes(ConceptId::Locking, &m, analyze)
        };
        let notes = budget(Some(Stop::Budget {
            half_rel: Some(0.31),
        }));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with(
                "mutex, 2 thread(s) (every lock timed at 1 and 2 per trial): the time budget ran out after 1 trials with the median's 95% interval at +/-31.0%"
            ),
            "{}",
            notes[0]
        );
        for quiet in [None, Some(Stop::Converged), Some(Stop::Fixed)] {
            assert!(budget(quiet).is_empty(), "{quiet:?}");
        }
    }

    /// issue 20: a budget of 0 takes exactly `trials` timed runs of each lock at each
    /// thread count.
    #[test]
    fn issue_20_timed_runs_with_no_budget_take_exactly_the_trials() {
        let t = timed_runs(&Adaptive::new(0, 3, Duration::ZERO), 1000, 2);
        assert_eq!(t.stop, Stop::Fixed);
        for runs in [&t.mutex, &t.spin, &t.atomic] {
            let threads: Vec<f64> = runs.iter().map(|p| p[0]).collect();
            assert_eq!(threads, [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
            assert!(runs.iter().all(|p| p[1] > 0.0), "{runs:?}");
        }
    }

    #[test]
    fn passes_on_races_and_locks() {
        assert_eq!(statuses(&good()), vec![Status::Passed; 4]);
    }

    #[test]
    fn each_claim_fails_on_contradicting_evidence() {
        let mut m = good();
        m.counters.racy = vec![150, 200];
        assert_eq!(
            statuses(&m)[0],
            Status::Failed,
            "one exact racy trial contradicts the claim"
        );
        let mut m = good();
        m.counters.mutex = vec![199];
        assert_eq!(statuses(&m)[1], Status::Failed);
        let mut m = good();
        m.deadlock_detected_after = Some(3.5);
        assert_eq!(statuses(&m)[2], Status::Failed);
        let mut m = good();
        m.deadlock_detected_after = None;
        assert_eq!(statuses(&m)[2], Status::Failed);
        let mut m = good();
        m.flock_awaited_by_waiter = false;
        assert_eq!(statuses(&m)[3], Status::Failed);
    }

    /// The deadlock claim at its threshold: found within 2 s, not after.
    #[test]
    fn issue_23_the_deadlock_claim_at_its_threshold() {
        let claims = crate::lab::report::claims(ConceptId::Locking, &good(), analyze);
        assert!(
            claims[2].claim.ends_with("from /proc within 2 s"),
            "{}",
            claims[2].claim
        );
        let found = |after: f64| {
            let mut m = good();
            m.deadlock_detected_after = Some(after);
            statuses(&m)[2]
        };
        assert_eq!(found(2.0), Status::Passed);
        assert_eq!(found(2.01), Status::Failed);
    }

    #[test]
    fn issue_14_a_race_whose_threads_never_ran_together_is_skipped_not_failed() {
        let mut m = good();
        m.counters.racy = vec![200, 200, 200];
        m.counters.together_us = vec![0.0, 40.0, 0.0];
        let report = crate::lab::report::analyzed(ConceptId::Locking, &m, analyze);
        let race = &report.checks[0];
        assert_eq!(race.status, Status::Skipped);
        let why = race.reason.as_deref().unwrap_or_default();
        assert!(
            why.contains("never ran at the same time in 3 attempts") && why.contains("40 us"),
            "{why}"
        );
    }

    #[test]
    fn an_exact_total_counts_only_when_the_threads_ran_together() {
        let mut m = good();
        m.counters.racy = vec![150, 200];
        m.counters.together_us = vec![900.0, 0.0];
        assert_eq!(statuses(&m)[0], Status::Passed);
    }

    #[test]
    fn together_is_cpu_time_beyond_the_wall_span() {
        let ms = Duration::from_millis;
        let span = |start, end, cpu| Span {
            start: ms(start),
            end: ms(end),
            cpu: ms(cpu),
        };
        // Both busy for the whole of their overlapping spans: 8 ms in parallel.
        assert_eq!(together(&[span(0, 10, 10), span(2, 12, 10)]), ms(8));
        // Time-sliced on one CPU: the spans coincide, the CPU times fill them once.
        assert_eq!(together(&[span(0, 10, 5), span(0, 10, 5)]), Duration::ZERO);
        assert_eq!(together(&[span(0, 10, 10)]), Duration::ZERO);
    }

    #[test]
    fn one_cpu_skips_the_race() {
        let mut m = good();
        m.cpus = 1;
        assert_eq!(statuses(&m)[0], Status::Skipped);
    }
}
