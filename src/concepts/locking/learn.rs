//! The locking lesson: how many updates a racy counter loses, and what a mutex and an
//! atomic cost with and without contention.

use crate::lab::params::Value;
use crate::lab::report::LabReport;
use crate::learn::{
    metric, num, shown, AnswerKind, Draw, Exercise, Lesson, Measured, Question, Tolerance,
};

fn per_increment<'a>(
    r: &'a LabReport,
    kind: &str,
    threads: f64,
) -> Result<&'a crate::lab::report::Metric, String> {
    metric(r, &format!("{kind}, {threads} thread(s)"))
}

/// The lesson.
pub static LESSON: Lesson = Lesson {
    setup: "Two threads add to a shared counter with a separate load and store, with \
            fetch_add and under a mutex; mutex, spinlock and atomic increments are timed on \
            one thread and on several; two threads take two locks in opposite orders.",
    draws: &[
        Draw { key: "race_increments", values: &[Value::Int(200_000), Value::Int(1_000_000), Value::Int(4_000_000)] },
        Draw { key: "threads", values: &[Value::Int(2), Value::Int(4)] },
    ],
    questions: &[
        Question {
            id: "lost_updates",
            ask: |p| format!("Two threads each add 1 to a shared counter {} times with a separate atomic load and store (no read-modify-write). What share of the updates is lost, in %?", shown(p, "race_increments")),
            answer: AnswerKind::Number { unit: "%", tolerance: Tolerance::Absolute(15.0) },
            measure: |r, _| metric(r, "updates lost by the racy counter").map(|m| Measured::metric(m, 100.0)),
            explain: |_, _| "Whenever both threads load the same value, both store value + 1 and one update vanishes. How often depends on how much they overlap: on two busy CPUs, often; if one thread finishes before the other starts (short runs, one CPU, a VM descheduling a vCPU), almost never. Each atomic access is fine; the pair is not.".into(),
            quotes: &["a counter updated by a separate atomic load and store", "fetch_add and a mutex are exact"],
        },
        Question {
            id: "mutex_vs_atomic",
            ask: |_| "On one thread (no contention), how many times the cost of an atomic fetch_add is an increment under a mutex (lock, add, unlock)?".into(),
            answer: AnswerKind::Number { unit: "x", tolerance: Tolerance::Factor(2.0) },
            measure: |r, _| Measured::ratio(per_increment(r, "mutex", 1.0)?, per_increment(r, "atomic fetch_add", 1.0)?),
            explain: |_, _| "An uncontended mutex is two atomic operations (lock and unlock) in user space, no system call: futexes enter the kernel only when there is a waiter. So about twice a fetch_add.".into(),
            quotes: &[],
        },
        Question {
            id: "contended_atomic",
            ask: |p| format!("With {} threads hammering one atomic counter, how many times its one-thread cost per increment does fetch_add take?", shown(p, "threads")),
            answer: AnswerKind::Number { unit: "x", tolerance: Tolerance::Factor(2.5) },
            measure: |r, p| Measured::ratio(per_increment(r, "atomic fetch_add", num(p, "threads"))?, per_increment(r, "atomic fetch_add", 1.0)?),
            explain: |_, _| "Every increment needs the cache line in the writing core's cache, exclusive: under contention the line bounces between cores at each increment, and the cost is that transfer, tens of nanoseconds, not the add.".into(),
            quotes: &[],
        },
    ],
    exercise: Exercise {
        goal: "make the racy counter lose less than 5% of all its increments, still with two threads",
        hint: "a lost update needs the other thread to store between one thread's load and store: where do the threads run, and for how long? (--params lists race_cpus and race_increments)",
        reached: |r| {
            let (made, counted, _) = crate::learn::evidence(r, "increments made -> counted")?;
            if made <= 0.0 {
                return Err("no attempt of the racy counter".into());
            }
            let lost = (1.0 - counted / made) * 100.0;
            Ok((lost < 5.0, format!("{}% of {made} increments lost over every attempt", crate::learn::trim(lost))))
        },
        explain: "On one CPU the two threads take turns: an update is lost only when the scheduler preempts one between its load and its store, and a thread of a hundred thousand increments (tens of microseconds) nearly always finishes within its time slice; a million already straddles slices. The code is as wrong as before: when that preemption does land, the whole slice of the other thread's increments is lost. Pinning hides a race; only an atomic read-modify-write (fetch_add) or a lock fixes it.",
    },
};
