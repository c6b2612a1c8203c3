//! The cgroups and namespaces lesson: what a CPU quota gives, where pids.max stops
//! fork, and what PID a new namespace's first process sees.

use crate::lab::params::Value;
use crate::learn::{
    evidence, num, reading, shown, AnswerKind, Draw, Exercise, Lesson, Measured, Question,
    Tolerance,
};

fn cpu_share(r: &crate::lab::report::LabReport) -> Result<Measured, String> {
    let (_, got, from) = evidence(r, "share of one CPU under the quota")?;
    Ok(Measured::exact(got * 100.0, from))
}

/// The lesson.
pub static LESSON: Lesson = Lesson {
    setup: "A CPU hog runs in a cgroup with a CPU quota; a forker runs in a cgroup with \
            pids.max; children are started in new PID, UTS, mount, net and user namespaces \
            and report what they see.",
    draws: &[
        Draw { key: "quota", values: &[Value::Fraction(0.1), Value::Fraction(0.2), Value::Fraction(0.3), Value::Fraction(0.5)] },
        Draw { key: "pids_max", values: &[Value::Int(4), Value::Int(8), Value::Int(16)] },
    ],
    questions: &[
        Question {
            id: "cpu_share",
            ask: |p| format!("A CPU hog runs for {} in a cgroup whose quota is {:.0}% of one CPU per {} µs period. What share of one CPU does it get, in %?", shown(p, "hog"), num(p, "quota") * 100.0, shown(p, "period")),
            answer: AnswerKind::Number { unit: "%", tolerance: Tolerance::Absolute(5.0) },
            measure: |r, _| cpu_share(r),
            explain: |_, _| "The CFS bandwidth controller lets the cgroup run quota microseconds per period, then throttles it until the next period: the share is quota / period, however idle the other CPUs are. That is why a container with a CPU limit can be slow on an idle machine (throttled periods in cpu.stat).".into(),
            quotes: &["a CPU hog under a"],
        },
        Question {
            id: "forks",
            ask: |p| format!("A forker in a cgroup with pids.max {} forks children that stay alive. How many forks succeed before one fails?", shown(p, "pids_max")),
            answer: AnswerKind::Number { unit: "forks", tolerance: Tolerance::Absolute(0.0) },
            measure: |r, _| reading(r, "forks that succeeded", 1.0),
            explain: |_, _| "pids.max counts tasks (threads too) in the cgroup, the forker included: one fewer fork than the limit succeeds, and the next fails with EAGAIN, as a fork bomb inside a container would.".into(),
            quotes: &["a fork past pids.max fails with EAGAIN"],
        },
        Question {
            id: "pid_inside",
            ask: |_| "What PID does the first process of a new PID namespace get from getpid()?".into(),
            answer: AnswerKind::Number { unit: "pid", tolerance: Tolerance::Absolute(0.0) },
            measure: |r, _| reading(r, "PID inside the new PID namespace", 1.0),
            explain: |_, _| "PID 1: it is that namespace's init. The kernel gives it init's duties: orphans are re-parented to it, and signals it has no handler for are not delivered from inside, which is why a container whose PID 1 ignores SIGTERM will not stop until SIGKILL.".into(),
            quotes: &["new PID, UTS, mount and net namespaces"],
        },
    ],
    exercise: Exercise {
        goal: "let the hog run more than 90% of a CPU under its quota",
        hint: "--set quota=...",
        reached: |r| {
            let m = cpu_share(r)?;
            Ok((m.value > 90.0, format!("the hog got {}% of a CPU", crate::learn::trim(m.value))))
        },
        explain: "A quota of a whole CPU per period lets a single-threaded hog run unthrottled; the quota only bites when the cgroup wants more than it allows.",
    },
};
