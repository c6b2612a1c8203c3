//! The signals lesson: a SIGSEGV handler that resumes, what SIGKILL leaves behind, and
//! what catching costs.

use crate::lab::params::Value;
use crate::learn::{
    evidence, metric, reading, shown, AnswerKind, Choice, Draw, Exercise, Lesson, Measured,
    Question, Tolerance,
};

const YES_NO: &[Choice] = &[
    Choice {
        id: "yes",
        text: "yes, it is still there",
    },
    Choice {
        id: "no",
        text: "no, it was removed",
    },
];

fn file_left(r: &crate::lab::report::LabReport, sig: &str) -> Result<Measured, String> {
    let (_, left, from) = evidence(r, &format!("file left after {sig}"))?;
    Ok(Measured::option(
        if left > 0.5 { "yes" } else { "no" },
        from,
    ))
}

/// The lesson.
pub static LESSON: Lesson = Lesson {
    setup: "Signals are timed between two processes and sent to oneself; a child protects \
            pages and maps each one from its SIGSEGV handler; children that remove a file in \
            their SIGTERM handler are sent SIGTERM and SIGKILL; a child is left unreaped.",
    draws: &[
        Draw { key: "segv_pages", values: &[Value::Int(16), Value::Int(64), Value::Int(256)] },
        Draw { key: "rounds", values: &[Value::Int(2_000), Value::Int(5_000)] },
    ],
    questions: &[
        Question {
            id: "segv_runs",
            ask: |p| format!("A child maps {} pages PROT_NONE and writes to each; its SIGSEGV handler makes the faulting page writable and returns. How many times does the handler run?", shown(p, "segv_pages")),
            answer: AnswerKind::Number { unit: "runs", tolerance: Tolerance::Absolute(0.0) },
            measure: |r, _| reading(r, "handler runs for the protected pages", 1.0),
            explain: |_, _| "Once per page: returning from the handler restarts the faulting instruction, which now succeeds. This is how user-space garbage collectors and userfault-style tricks track writes.".into(),
            quotes: &["a SIGSEGV handler that maps the faulting page"],
        },
        Question {
            id: "sigkill_file",
            ask: |_| "A child that removes its file in a SIGTERM handler is sent SIGKILL instead. Is its file still there after it died?".into(),
            answer: AnswerKind::Choice(YES_NO),
            measure: |r, _| file_left(r, "SIGKILL"),
            explain: |_, _| "SIGKILL cannot be caught, blocked or ignored: the kernel ends the process without running any of its code, so no user-space cleanup runs (the kernel still closes its fds and releases its file locks). Send SIGTERM first and give it time, as init systems and `docker stop` do.".into(),
            quotes: &["a child killed with SIGKILL could not"],
        },
        Question {
            id: "catch_cost",
            ask: |_| "kill(getpid(), sig) with the signal ignored, against one a handler catches: how many times the cost of the ignored send is the caught one?".into(),
            answer: AnswerKind::Number { unit: "x", tolerance: Tolerance::Factor(3.0) },
            measure: |r, _| Measured::ratio(metric(r, "kill(self) with a handler")?, metric(r, "kill(self) of an ignored signal")?),
            explain: |_, _| "An ignored signal is dropped at send time. A caught one makes the kernel build a signal frame on the user stack, switch to the handler, and take a second system call (rt_sigreturn) to restore the interrupted state.".into(),
            quotes: &[],
        },
    ],
    exercise: Exercise {
        goal: "make the child sent SIGTERM leave its file behind",
        hint: "what lets a process clean up on SIGTERM? (--params lists sigterm_handler)",
        reached: |r| {
            let m = file_left(r, "SIGTERM")?;
            Ok((m.option == Some("yes"), format!("after SIGTERM the file was {}", if m.option == Some("yes") { "still there" } else { "removed" })))
        },
        explain: "SIGTERM's default action is to terminate, like SIGKILL: only a handler turns it into a request. A service that installs none dies mid-write on `systemctl stop`.",
    },
};
