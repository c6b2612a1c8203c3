//! The copy-on-write lesson: what a forked child's reads and writes add to its
//! Private_Dirty, and what fork costs a large parent.

use crate::lab::params::Value;
use crate::learn::{
    growth, metric, num, shown, AnswerKind, Draw, Exercise, Lesson, Measured, Question, Tolerance,
    MIB,
};

/// The lesson.
pub static LESSON: Lesson = Lesson {
    setup: "The parent writes memory, then forks. The child reads all of it, then writes a \
            share of its pages, while the parent reads the child's Private_Dirty from \
            smaps_rollup. Then fork + exit + wait is timed for parents of growing size.",
    draws: &[
        Draw { key: "size", values: &[Value::Int(32 << 20), Value::Int(64 << 20), Value::Int(128 << 20)] },
        Draw { key: "write_fraction", values: &[Value::Fraction(0.125), Value::Fraction(0.25), Value::Fraction(0.5)] },
    ],
    questions: &[
        Question {
            id: "read_dirty",
            ask: |p| format!("The parent wrote {} and forked; the child reads all of it. How much does the child's Private_Dirty grow, in MiB?", shown(p, "size")),
            answer: AnswerKind::Number { unit: "MiB", tolerance: Tolerance::Absolute(2.0) },
            measure: |r, _| growth(r, "Private_Dirty (forked -> read all)", MIB),
            explain: |_, _| "After fork both processes map the same physical pages read-only. Reads need no copy: the pages stay shared, counted as Shared_Dirty in both.".into(),
            quotes: &["the child reading all N MiB"],
        },
        Question {
            id: "write_dirty",
            ask: |p| format!("Then the child writes one byte in each of {:.1}% of the pages of the {}. How much does its Private_Dirty grow, in MiB?", num(p, "write_fraction") * 100.0, shown(p, "size")),
            answer: AnswerKind::Number { unit: "MiB", tolerance: Tolerance::Relative(0.1) },
            measure: |r, _| growth(r, "Private_Dirty (read -> wrote", MIB),
            explain: |_, _| "Each first write to a shared page takes a copy-on-write fault: the kernel copies that one 4 KiB page and maps the copy writable in the child (a transparent huge page is split first, and only 4 KiB copied). The child's Private_Dirty grows by the pages written, not by the whole region; the parent's next write to such a page finds it no longer shared and reuses it without a copy.".into(),
            quotes: &["writing k pages adds", "writing k pages in the child costs"],
        },
        Question {
            id: "fork_cost",
            ask: |p| format!("How many times the CPU time of forking (and reaping) a parent of 0 MiB does forking a parent of {} cost it?", shown(p, "fork_max")),
            answer: AnswerKind::Number { unit: "x", tolerance: Tolerance::Factor(3.0) },
            measure: |r, _| Measured::ratio(metric(r, "the parent's CPU time in fork + wait, parent")?, metric(r, "the parent's CPU time in fork + wait, parent 0 MiB")?),
            explain: |_, _| "fork copies no data pages, but it copies the page tables (and marks every writable page read-only in both), and exit tears them down: the cost grows with the memory the parent has mapped and touched. posix_spawn, or vfork, avoids it.".into(),
            quotes: &["fork costs the parent more CPU time"],
        },
    ],
    exercise: Exercise {
        goal: "make the child's writes add less than 1 MiB to its Private_Dirty",
        hint: "what is copied: the region, or the pages written? (--set write_fraction=..., --set size=...)",
        reached: |r| {
            let m = growth(r, "Private_Dirty (read -> wrote", MIB)?;
            Ok((m.value < 1.0, format!("Private_Dirty grew {} MiB", crate::learn::trim(m.value))))
        },
        explain: "Copy-on-write copies one page per page written: a small fraction of a large region costs only those pages.",
    },
};
