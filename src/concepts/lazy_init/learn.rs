//! The lazy-initialization lesson: what reading and writing fresh anonymous memory
//! cost in RSS and time.

use crate::lab::params::Value;
use crate::learn::{
    growth, metric, shown, AnswerKind, Draw, Exercise, Lesson, Measured, Question, Tolerance, MIB,
};

/// The lesson.
pub static LESSON: Lesson = Lesson {
    setup: "A child maps anonymous memory, reads one byte of every page, then writes one byte \
            of every page, while the parent reads its RSS from /proc/PID/smaps_rollup. Then it \
            times the first and the second touch of fresh pages.",
    draws: &[Draw {
        key: "size",
        values: &[Value::Int(32 << 20), Value::Int(48 << 20), Value::Int(64 << 20), Value::Int(96 << 20), Value::Int(128 << 20)],
    }],
    questions: &[
        Question {
            id: "rss_read",
            ask: |p| format!("The child maps {} of anonymous memory and reads one byte of every page. How much does its RSS grow, in MiB?", shown(p, "size")),
            answer: AnswerKind::Number { unit: "MiB", tolerance: Tolerance::Absolute(2.0) },
            measure: |r, _| growth(r, "Rss (mapped -> read", MIB),
            explain: |_, m| {
                if m.value < 1.0 {
                    "Reading private anonymous memory that was never written maps the kernel's shared zero page, read-only: no page is allocated, so RSS stays flat (the zero page is not counted as the process's own). Shared anonymous memory is different: it is shmem, and a read allocates a real page.".into()
                } else {
                    "RSS grew on reads: something on this host backs read faults with real pages (a transparent huge zero page disabled with THP set to always allocates on read, or the mapping was populated).".into()
                }
            },
            quotes: &["reading fresh anonymous memory"],
        },
        Question {
            id: "rss_write",
            ask: |p| format!("Then it writes one byte of every page of the {}. How much does its RSS grow now, in MiB?", shown(p, "size")),
            answer: AnswerKind::Number { unit: "MiB", tolerance: Tolerance::Relative(0.1) },
            measure: |r, _| growth(r, "Rss (read -> wrote", MIB),
            explain: |_, _| "The first write to each page faults: the kernel allocates a page, zeroes it and maps it writable, replacing the zero page. One byte makes the whole 4 KiB page resident, so RSS grows by the full size.".into(),
            quotes: &["writing it makes it resident"],
        },
        Question {
            id: "first_vs_second",
            ask: |_| "How many times as long as the second touch of a page does its first touch take (per page, medians)?".into(),
            answer: AnswerKind::Number { unit: "x", tolerance: Tolerance::Factor(3.0) },
            measure: |r, _| Measured::ratio(metric(r, "first touch, per page")?, metric(r, "second touch, per page")?),
            explain: |_, m| format!(
                "The first touch is a page fault: the kernel entry and exit, allocating a page, zeroing 4 KiB and updating the page table, microseconds in all (more in a VM, where the hypervisor may fault too). The second is a store to memory already mapped, a few nanoseconds: {}x here.",
                crate::learn::trim(m.value.round())
            ),
            quotes: &["the first touch of a page costs"],
        },
    ],
    exercise: Exercise {
        goal: "make the child's reads of its fresh mapping grow its RSS by more than half the mapping",
        hint: "which anonymous memory has no zero page to map on a read? (--params lists mapping)",
        reached: |r| {
            let read = growth(r, "Rss (mapped -> read", MIB)?;
            let size = r.params.get("size_bytes").and_then(|v| v.as_f64()).ok_or("the report has no size")? / MIB;
            Ok((read.value > size / 2.0, format!("RSS grew {} MiB on reading {} MiB", crate::learn::trim(read.value), crate::learn::trim(size))))
        },
        explain: "Shared anonymous memory is shmem, a file with no name: a read fault must find or allocate the page every sharer would see, so reading makes it resident (RssShmem, Shmem in /proc/meminfo). Only private anonymous memory can map the zero page and wait for the first write.",
    },
};
