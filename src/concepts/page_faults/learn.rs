//! The page-faults lesson: minor faults per fresh page, huge pages, and what a major
//! fault costs.

use crate::lab::params::Value;
use crate::learn::{
    metric, num, reading, shown, AnswerKind, Draw, Exercise, Lesson, Measured, Question, Tolerance,
};

/// The lesson.
pub static LESSON: Lesson = Lesson {
    setup: "A child writes one byte into every 4 KiB page of fresh anonymous memory and counts \
            its faults (getrusage and a perf software counter); then the same with \
            MADV_HUGEPAGE; then it reads back a file evicted from the page cache.",
    draws: &[
        Draw { key: "anon", values: &[Value::Int(8 << 20), Value::Int(16 << 20), Value::Int(32 << 20), Value::Int(64 << 20)] },
        Draw { key: "file", values: &[Value::Int(4 << 20), Value::Int(8 << 20), Value::Int(16 << 20)] },
    ],
    questions: &[
        Question {
            id: "anon_faults",
            ask: |p| format!("The child writes one byte into each 4 KiB page of {} of fresh anonymous memory ({} pages). How many minor faults does that pass take?", shown(p, "anon"), num(p, "anon") as u64 / 4096),
            answer: AnswerKind::Number { unit: "faults", tolerance: Tolerance::Relative(0.05) },
            measure: |r, _| reading(r, "faults, one anonymous pass", 1.0),
            explain: |_, _| "One fault per page: anonymous memory has no fault-around (that is for file pages in the page cache), so each first write traps into the kernel, which allocates and zeroes one page.".into(),
            quotes: &["touching fresh anonymous pages takes a minor fault each"],
        },
        Question {
            id: "hugepage_faults",
            ask: |p| format!("The same {} with madvise(MADV_HUGEPAGE) first: how many faults per 4 KiB page?", shown(p, "anon")),
            answer: AnswerKind::Number { unit: "faults per page", tolerance: Tolerance::Absolute(0.05) },
            measure: |r, _| metric(r, "faults per 4 KiB page with MADV_HUGEPAGE").map(|m| Measured::metric(m, 1.0)),
            explain: |_, m| {
                if m.value < 0.1 {
                    "With transparent huge pages, one fault maps a whole 2 MiB page: 512 small pages for one fault, about 0.002 per page (more where an aligned 2 MiB range does not fit, or no huge page was free).".into()
                } else {
                    "Nearly one fault per page: no huge page was used (THP disabled, the region too small for an aligned 2 MiB range, or memory too fragmented for a free 2 MiB block).".into()
                }
            },
            quotes: &["with MADV_HUGEPAGE far fewer faults"],
        },
        Question {
            id: "major_vs_minor",
            ask: |p| format!("A {} file is evicted from the page cache and read back one page at a time (MADV_RANDOM: no readahead). How many times a minor fault does each major fault cost?", shown(p, "file")),
            answer: AnswerKind::Number { unit: "x", tolerance: Tolerance::Factor(3.0) },
            measure: |r, _| Measured::ratio(metric(r, "major fault (file")?, metric(r, "minor fault (anonymous")?),
            explain: |_, _| "A major fault is one that starts I/O: the kernel submits the read and sleeps until it completes; a minor fault finds the page in memory (a fault on a page that readahead is already reading counts as minor, yet still waits). On a virtual disk with a host cache the gap is tens of times; on a spinning disk, thousands.".into(),
            quotes: &["a major fault costs >= 5x a minor one"],
        },
    ],
    exercise: Exercise {
        goal: "make MADV_HUGEPAGE save no faults: at least half of the 4 KiB pages fault",
        hint: "what must the region hold for the kernel to map a 2 MiB page? (--set anon=...)",
        reached: |r| {
            let m = metric(r, "faults per 4 KiB page with MADV_HUGEPAGE")?;
            Ok((m.summary.median >= 0.5, format!("{} faults per 4 KiB page with MADV_HUGEPAGE", crate::learn::trim(m.summary.median))))
        },
        explain: "A transparent huge page needs a 2 MiB-aligned 2 MiB range inside the mapping: a region under 2 MiB (or 2 MiB not aligned) is mapped with small pages, one fault each.",
    },
};
