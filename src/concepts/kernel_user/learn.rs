//! The kernel-vs-user lesson: what a system call costs against the vDSO, and where a
//! loop's CPU time is charged.

use crate::lab::params::Value;
use crate::learn::{
    evidence, metric, shown, AnswerKind, Draw, Exercise, Lesson, Measured, Question, Tolerance,
};

/// System time's share of a loop's CPU time, in %, from its user -> system evidence.
fn system_share(r: &crate::lab::report::LabReport, part: &str) -> Result<Measured, String> {
    let (user, system, from) = evidence(r, part)?;
    if user + system <= 0.0 {
        return Err(format!("{from}: no CPU time"));
    }
    Ok(Measured::exact(system / (user + system) * 100.0, from))
}

/// The lesson.
pub static LESSON: Lesson = Lesson {
    setup: "Batches of calls are timed in one pinned thread: a plain function call, \
            clock_gettime through the vDSO, the same clock as a real system call, getppid. \
            Then loops run in fresh threads and getrusage tells their user and system time.",
    draws: &[Draw { key: "batch", values: &[Value::Int(20_000), Value::Int(50_000), Value::Int(100_000)] }],
    questions: &[
        Question {
            id: "syscall_vs_vdso",
            ask: |_| "How many times as long as clock_gettime through the vDSO does the same clock read take as a real system call (syscall(SYS_clock_gettime))?".into(),
            answer: AnswerKind::Number { unit: "x", tolerance: Tolerance::Factor(3.0) },
            measure: |r, _| Measured::ratio(metric(r, "syscall(SYS_clock_gettime)")?, metric(r, "clock_gettime through the vDSO")?),
            explain: |_, _| "The vDSO is kernel code mapped into every process: it reads the clock from a page the kernel keeps up to date, with no mode switch. The system call enters the kernel and leaves it (with the speculative-execution mitigations' costs on entry and exit); in a VM whose clocksource cannot be read from user space, the vDSO falls back to the syscall itself.".into(),
            quotes: &["the same clock read as a real syscall"],
        },
        Question {
            id: "getppid_ns",
            ask: |p| format!("How long does one getppid() system call take, in ns (timed in batches of {})?", shown(p, "batch")),
            answer: AnswerKind::Number { unit: "ns", tolerance: Tolerance::Factor(3.0) },
            measure: |r, _| metric(r, "syscall(SYS_getppid)").map(|m| Measured::metric(m, 1.0)),
            explain: |_, _| "getppid does almost nothing in the kernel: what is timed is the entry and exit themselves, about a hundred nanoseconds, a few hundred with the speculative-execution mitigations (page-table isolation, retpolines, buffer clearing). With hardware virtualisation a system call does not exit to the hypervisor.".into(),
            quotes: &[],
        },
        Question {
            id: "read_system_share",
            ask: |p| format!("A thread reads 64 KiB at a time from /dev/zero for {} of CPU. What share of its CPU time does getrusage report as system time, in %?", shown(p, "loop_cpu")),
            answer: AnswerKind::Number { unit: "%", tolerance: Tolerance::Absolute(15.0) },
            measure: |r, _| system_share(r, "read loop: user -> system time"),
            explain: |_, _| "Almost all of it: zeroing 64 KiB into the buffer happens inside read(2), in the kernel, so the tick-sampled accounting charges it to system time. The user side only loops.".into(),
            quotes: &["a loop of read(2) of 64 KiB from /dev/zero"],
        },
    ],
    exercise: Exercise {
        goal: "make the vDSO clock_gettime timing noisy: a spread (CV) above 5%",
        hint: "each trial times one batch; what weighs more when a batch is short? (--set batch=...)",
        reached: |r| {
            let m = metric(r, "clock_gettime through the vDSO")?;
            Ok((m.summary.cv > 0.05, format!("CV {}% over {} trials", crate::learn::trim(m.summary.cv * 100.0), m.summary.n)))
        },
        explain: "A batch of a hundred 30 ns calls lasts 3 us: the clock reads around it, a timer interrupt or a migration weigh on it as much as the calls do. Longer batches spread those costs over more calls: that is why the lab times batches.",
    },
};
