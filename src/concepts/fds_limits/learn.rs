//! The file-descriptor lesson: when open fails under a lowered soft limit, with what,
//! and what exec inherits.

use crate::lab::params::Value;
use crate::learn::{
    evidence, reading, shown, AnswerKind, Choice, Draw, Exercise, Lesson, Measured, Question,
    Tolerance,
};

/// The lesson.
pub static LESSON: Lesson = Lesson {
    setup: "A child holds a few fds open (stdin, stdout, stderr, its link to the parent, and \
            one high fd number), lowers its soft RLIMIT_NOFILE and opens files until open \
            fails; then it raises the limit back, and execs a program with one fd opened \
            with O_CLOEXEC and one without.",
    draws: &[
        Draw { key: "soft_limit", values: &[Value::Int(16), Value::Int(32), Value::Int(64), Value::Int(128)] },
        Draw { key: "high_fd", values: &[Value::Int(100), Value::Int(200), Value::Int(300)] },
    ],
    questions: &[
        Question {
            id: "fds_at_limit",
            ask: |p| format!("The child holds fd {} open, lowers its soft limit to {} and opens until open fails. How many fds does /proc/PID/fd list at that moment?", shown(p, "high_fd"), shown(p, "soft_limit")),
            answer: AnswerKind::Number { unit: "fds", tolerance: Tolerance::Absolute(0.0) },
            measure: |r, _| reading(r, "open fds at EMFILE", 1.0),
            explain: |_, _| "The soft limit bounds the fd *numbers* open can hand out (it takes the lowest free number, and fails when none below the limit is free), not how many are open: fd numbers above the limit, opened before it was lowered, stay open and are counted too. Hence the limit plus one.".into(),
            quotes: &["open fails with EMFILE exactly when"],
        },
        Question {
            id: "errno",
            ask: |_| "Which error does that failing open return?".into(),
            answer: AnswerKind::Choice(&[
                Choice { id: "emfile", text: "EMFILE: too many open files (this process)" },
                Choice { id: "enfile", text: "ENFILE: too many open files in the system" },
                Choice { id: "enomem", text: "ENOMEM: out of memory" },
                Choice { id: "eacces", text: "EACCES: permission denied" },
            ]),
            measure: |r, _| {
                let (_, errno, from) = evidence(r, "opens until it failed")?;
                let id = match errno as i32 {
                    libc::EMFILE => "emfile",
                    libc::ENFILE => "enfile",
                    libc::ENOMEM => "enomem",
                    libc::EACCES => "eacces",
                    other => return Err(format!("open failed with errno {other}, none of the options")),
                };
                Ok(Measured::option(id, from))
            },
            explain: |_, _| "EMFILE is the per-process limit (RLIMIT_NOFILE); ENFILE is the system-wide fs.file-max. Servers that leak fds, or accept faster than they close, hit EMFILE first.".into(),
            quotes: &[],
        },
        Question {
            id: "inherited",
            ask: |_| "An fd opened without O_CLOEXEC, then the process execs another program. Is that fd open in the new program?".into(),
            answer: AnswerKind::Choice(&[Choice { id: "yes", text: "yes" }, Choice { id: "no", text: "no" }]),
            measure: |r, _| {
                let (_, open, from) = evidence(r, "fd opened without O_CLOEXEC open after exec")?;
                Ok(Measured::option(if open > 0.5 { "yes" } else { "no" }, from))
            },
            explain: |_, _| "exec replaces the program, not the process: the fd table is kept, except the fds marked close-on-exec. A leaked fd keeps a file, a socket or a pipe's write end alive in every child: open everything with O_CLOEXEC (Rust's std does).".into(),
            quotes: &["an fd opened without O_CLOEXEC", "an fd opened with O_CLOEXEC is not"],
        },
    ],
    exercise: Exercise {
        goal: "make open fail after fewer than 10 opens",
        hint: "the fds already open count against the limit (--set soft_limit=...)",
        reached: |r| {
            let (opened, _, _) = evidence(r, "opens until it failed")?;
            Ok((opened < 10.0, format!("open failed after {opened} opens")))
        },
        explain: "The opens that succeed are the numbers below the soft limit that were free: with the standard three, the lab's link and a lowered limit of 8, only a handful remain.",
    },
};
