//! The storage lesson: tmpfs is RAM, fsync's price on each, and what a kill mid-write
//! leaves.

use crate::lab::params::Value;
use crate::learn::{
    evidence, growth, metric, shown, AnswerKind, Choice, Draw, Exercise, Lesson, Measured,
    Question, Tolerance, MIB,
};

/// The lesson.
pub static LESSON: Lesson = Lesson {
    setup: "A file is written to tmpfs and to a disk file system, with and without fsync, \
            while Shmem in /proc/meminfo is read; fsync is timed after small appends; a \
            rewrite in place and a write to a temporary file renamed over the old one are \
            each killed half way.",
    draws: &[Draw { key: "size", values: &[Value::Int(8 << 20), Value::Int(16 << 20), Value::Int(32 << 20), Value::Int(64 << 20)] }],
    questions: &[
        Question {
            id: "shmem",
            ask: |p| format!("The child writes {} to a file on tmpfs. By how much does Shmem in /proc/meminfo grow, in MiB?", shown(p, "size")),
            answer: AnswerKind::Number { unit: "MiB", tolerance: Tolerance::Relative(0.1) },
            measure: |r, _| growth(r, "Shmem growth after writing to tmpfs", MIB),
            explain: |_, _| "tmpfs files live in the page cache with nothing behind them but swap: every byte is RAM, counted as Shmem, until the file is removed. A container writing logs to a tmpfs /tmp is spending its memory limit.".into(),
            quotes: &["data written to tmpfs shows up as Shmem"],
        },
        Question {
            id: "fsync_ratio",
            ask: |_| "After appending 4 KiB, how many times an fsync on tmpfs does an fsync on the disk file system cost?".into(),
            answer: AnswerKind::Number { unit: "x", tolerance: Tolerance::Factor(5.0) },
            measure: |r, _| Measured::ratio(metric(r, "fsync after a 4 KiB append, disk")?, metric(r, "fsync after a 4 KiB append, tmpfs")?),
            explain: |_, _| "On tmpfs fsync has nothing to write: it returns at once. On disk it writes the data and the journal and waits for the device to say they are durable (a cache flush): hundreds of microseconds on a virtual disk, milliseconds on real ones.".into(),
            quotes: &["fsync on tmpfs is near free"],
        },
        Question {
            id: "torn",
            ask: |p| format!("A {} file is rewritten in place with new bytes, and the writer is killed half way. What does the file hold?", shown(p, "size")),
            answer: AnswerKind::Choice(&[
                Choice { id: "old", text: "the old contents" },
                Choice { id: "new", text: "the new contents" },
                Choice { id: "mixed", text: "new bytes at the start, old after them" },
                Choice { id: "empty", text: "nothing: it is empty" },
            ]),
            measure: |r, _| {
                let (old, new, from) = evidence(r, "old bytes -> new bytes")?;
                let id = match (old > 0.0, new > 0.0) {
                    (true, true) => "mixed",
                    (true, false) => "old",
                    (false, true) => "new",
                    (false, false) => "empty",
                };
                Ok(Measured::option(id, from))
            },
            explain: |_, _| "write(2) changes the file in place as it goes: what was written before the kill stays, the rest is the old file. A torn file. Writing a temporary file, fsyncing it and renaming it over the old one makes the change all or nothing.".into(),
            quotes: &["an in-place rewrite killed half way", "write temp + fsync + rename"],
        },
    ],
    exercise: Exercise {
        goal: "make the in-place rewrite, killed once half of it is written, leave a file that is not torn",
        hint: "what is half way when the rewrite is one write(2)? (--set chunk=..., --set size=...)",
        reached: |r| {
            let (old, new, from) = evidence(r, "old bytes -> new bytes")?;
            Ok((old == 0.0 || new == 0.0, from))
        },
        explain: "With one write(2) of the whole file, half way comes only after the call returned: the kill finds the new contents complete in the page cache. That is no fix: a kill can still cut a large write between pages (the kernel checks for a fatal signal as it copies), and a power loss before writeback tears anything. Only a temporary file, fsync and rename make it all or nothing.",
    },
};
