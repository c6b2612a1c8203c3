//! The mmap lesson: what MAP_POPULATE and a plain mapping cost in RSS, and read(2)
//! against mmap.

use crate::lab::params::Value;
use crate::learn::{
    growth, metric, shown, AnswerKind, Draw, Exercise, Lesson, Measured, Question, Tolerance, MIB,
};

fn read_vs_mmap(r: &crate::lab::report::LabReport) -> Result<Measured, String> {
    Measured::ratio(
        metric(r, "sequential read(2)")?,
        metric(r, "sequential read through mmap")?,
    )
}

/// The lesson.
pub static LESSON: Lesson = Lesson {
    setup: "A cached file is read with read(2) and through mmap, and each is timed; a child maps \
            it with and without MAP_POPULATE; two processes write through MAP_SHARED and \
            MAP_PRIVATE mappings of one file.",
    draws: &[
        Draw { key: "size", values: &[Value::Int(8 << 20), Value::Int(16 << 20), Value::Int(32 << 20), Value::Int(64 << 20)] },
        Draw { key: "read_buffer", values: &[Value::Int(4 << 10), Value::Int(64 << 10), Value::Int(128 << 10), Value::Int(1 << 20)] },
    ],
    questions: &[
        Question {
            id: "populate",
            ask: |p| format!("A child maps the {} cached file with MAP_POPULATE and touches nothing. How much does its RSS grow, in MiB?", shown(p, "size")),
            answer: AnswerKind::Number { unit: "MiB", tolerance: Tolerance::Relative(0.1) },
            measure: |r, _| growth(r, "Rss growth, MAP_POPULATE", MIB),
            explain: |_, _| "MAP_POPULATE faults every page in at mmap time: the file's pages are in the page cache already, so all of it is mapped at once and counted in RSS.".into(),
            quotes: &[],
        },
        Question {
            id: "plain",
            ask: |_| "Without MAP_POPULATE, the child maps the same file and touches nothing. How much does its RSS grow, in MiB?".into(),
            answer: AnswerKind::Number { unit: "MiB", tolerance: Tolerance::Absolute(0.5) },
            measure: |r, _| growth(r, "Rss growth, plain mmap", MIB),
            explain: |_, m| format!(
                "{} MiB: a plain mmap maps nothing yet, even of a file wholly in the page cache; each page is mapped at its first touch (with up to 16 cached neighbours, fault-around). What little grew is the child's own bookkeeping.",
                crate::learn::trim(m.value)
            ),
            quotes: &[],
        },
        Question {
            id: "read_vs_mmap",
            ask: |p| format!("Reading the {} cached file with read(2) into a {} buffer, against reading it through mmap: how many times mmap's throughput does read(2) reach?", shown(p, "size"), shown(p, "read_buffer")),
            answer: AnswerKind::Number { unit: "x", tolerance: Tolerance::Factor(2.0) },
            measure: |r, _| read_vs_mmap(r),
            explain: |_, _| "read(2) copies each byte from the page cache into the buffer, one system call per buffer; mmap copies nothing but pays a fault per 16 pages (fault-around), page-table setup and the munmap. For a cached file they are close; a small buffer makes read(2) pay a syscall per few KiB.".into(),
            quotes: &["both throughputs are reported"],
        },
    ],
    exercise: Exercise {
        goal: "make read(2) reach less than half of mmap's throughput",
        hint: "how many system calls does one pass take? (--set read_buffer=...)",
        reached: |r| {
            let m = read_vs_mmap(r)?;
            Ok((m.value < 0.5, format!("read(2) at {}x mmap's throughput", crate::learn::trim(m.value))))
        },
        explain: "With a buffer of a few hundred bytes, each system call's entry and exit costs more than the copy it does: read(2) falls far behind the mapping, which pays per page, not per call.",
    },
};
