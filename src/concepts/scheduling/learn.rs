//! The scheduling lesson: how CFS/EEVDF weights split a CPU between nice levels, which
//! switches a sleeper shows, and what a round trip through the scheduler costs.

use crate::lab::params::Value;
use crate::lab::report::LabReport;
use crate::learn::{
    evidence, metric, shown, AnswerKind, Choice, Draw, Exercise, Lesson, Measured, Question,
    Tolerance,
};

/// The nice 0 hog's share of the CPU time both hogs got, in %.
fn nice0_share(r: &LabReport) -> Result<Measured, String> {
    let (_, zero, from) = evidence(r, "CPU time, nice 0 hog")?;
    let other = r
        .evidence
        .iter()
        .find(|e| e.field.starts_with("CPU time, nice ") && e.field != "CPU time, nice 0 hog")
        .ok_or("the lab recorded no second hog")?;
    let total = zero + other.after;
    if total <= 0.0 {
        return Err("the hogs ran no CPU time".into());
    }
    Ok(Measured::exact(
        zero / total * 100.0,
        format!("{from}; {}: {} ns", other.field, other.after),
    ))
}

/// The lesson.
pub static LESSON: Lesson = Lesson {
    setup: "Two processes bounce a byte through pipes on one CPU, then across CPUs; two CPU \
            hogs share CPU 0, one at nice 0 and one at a higher nice value; a hog and a \
            sleeper show their context switches in /proc/PID/status.",
    draws: &[Draw { key: "nice", values: &[Value::Int(1), Value::Int(3), Value::Int(5), Value::Int(10)] }],
    questions: &[
        Question {
            id: "nice0_share",
            ask: |p| format!("Two CPU hogs share CPU 0 for {}, one at nice 0, one at nice {}. What share of their CPU time does the nice 0 hog get, in %?", shown(p, "hog"), shown(p, "nice")),
            answer: AnswerKind::Number { unit: "%", tolerance: Tolerance::Absolute(5.0) },
            measure: |r, _| nice0_share(r),
            explain: |_, _| "The fair scheduler (EEVDF since 6.6, CFS before) splits a CPU by weight among the tasks of one group, and each nice level is about 1.25x the weight of the next (nice 0 = 1024, nice 5 = 335, nice 10 = 110): the share is 1024 / (1024 + weight). Nice is not a priority that starves the other: it is a ratio. Between sessions (autogroup) or cgroups, the groups share first, so nice barely matters there.".into(),
            quotes: &["two hogs on one CPU at nice 0"],
        },
        Question {
            id: "sleeper_switches",
            ask: |_| "A process that sleeps and wakes over and over: which context switches does /proc/PID/status show most of?".into(),
            answer: AnswerKind::Choice(&[
                Choice { id: "voluntary", text: "voluntary_ctxt_switches" },
                Choice { id: "nonvoluntary", text: "nonvoluntary_ctxt_switches" },
            ]),
            measure: |r, _| {
                let (voluntary, involuntary, from) = evidence(r, "sleeper: voluntary -> involuntary")?;
                Ok(Measured::option(if voluntary >= involuntary { "voluntary" } else { "nonvoluntary" }, from))
            },
            explain: |_, _| "A process that blocks (sleep, read on an empty pipe, a lock) gives the CPU up: a voluntary switch. Preemption by the scheduler, because its slice ran out or a task with a better claim woke, is involuntary: CPU hogs show those.".into(),
            quotes: &["a sleeper shows voluntary switches", "a CPU hog shows involuntary switches"],
        },
        Question {
            id: "round_trip_us",
            ask: |_| "Two processes pinned to the same CPU pass a byte back and forth through two pipes. How long does a round trip take, in µs?".into(),
            answer: AnswerKind::Number { unit: "us", tolerance: Tolerance::Factor(3.0) },
            measure: |r, _| metric(r, "pipe round trip, same CPU").map(|m| Measured::metric(m, 1.0)),
            explain: |_, _| "A round trip is four system calls and two context switches: each switch saves one task's registers, picks the next, and changes the address space. A few microseconds on bare metal; more in a VM.".into(),
            quotes: &[],
        },
    ],
    exercise: Exercise {
        goal: "make the two hogs split CPU 0 evenly: the nice 0 hog between 45% and 55%",
        hint: "what decides the split? (--set nice=...)",
        reached: |r| {
            let m = nice0_share(r)?;
            Ok(((45.0..=55.0).contains(&m.value), format!("the nice 0 hog got {}%", crate::learn::trim(m.value))))
        },
        explain: "Equal weights share equally: at the same nice value each hog gets half of the CPU over any interval long enough for a few slices.",
    },
};
