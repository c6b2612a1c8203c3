//! The high-water-mark lesson: what share of the peak RSS stays after free, and after
//! malloc_trim.

use crate::lab::params::Value;
use crate::learn::{
    metric, shown, AnswerKind, Choice, Draw, Exercise, Lesson, Measured, Question, Tolerance,
};

fn kept(r: &crate::lab::report::LabReport, prefix: &str) -> Result<Measured, String> {
    metric(r, prefix).map(|m| Measured::metric(m, 100.0))
}

/// The lesson.
pub static LESSON: Lesson = Lesson {
    setup: "A child mallocs many small chunks, frees all but the last one allocated, then calls \
            malloc_trim(0); a second child does the same with chunks above glibc's 128 KiB mmap \
            threshold. The parent reads RSS and VmHWM at each step.",
    draws: &[
        Draw { key: "size", values: &[Value::Int(32 << 20), Value::Int(64 << 20), Value::Int(128 << 20)] },
        Draw { key: "small_chunk", values: &[Value::Int(256), Value::Int(1 << 10), Value::Int(4 << 10)] },
    ],
    questions: &[
        Question {
            id: "kept_after_free",
            ask: |p| format!("The child mallocs {} in {} chunks, then frees every chunk but the last one allocated. What share of the peak RSS stays resident, in %?", shown(p, "size"), shown(p, "small_chunk")),
            answer: AnswerKind::Number { unit: "%", tolerance: Tolerance::Absolute(10.0) },
            measure: |r, _| kept(r, "RSS kept after the frees"),
            explain: |_, _| "Small chunks come from the heap, which grows by moving the program break. free() puts chunks back in glibc's bins for reuse; the heap can shrink only from its top, and the last chunk pins the top, so nearly all the peak stays resident: the high-water mark.".into(),
            quotes: &["after freeing all but the last small chunk"],
        },
        Question {
            id: "kept_after_trim",
            ask: |_| "Then it calls malloc_trim(0). What share of the peak RSS stays now, in %?".into(),
            answer: AnswerKind::Number { unit: "%", tolerance: Tolerance::Absolute(10.0) },
            measure: |r, _| kept(r, "RSS kept after malloc_trim"),
            explain: |_, _| "Since glibc 2.8 malloc_trim also walks the free chunks inside the heap and gives their whole pages back with madvise(MADV_DONTNEED), not only the top: the pages go, the address space stays. What remains is the live chunk, glibc's own state and the program.".into(),
            quotes: &["after malloc_trim(0)"],
        },
        Question {
            id: "large_chunks",
            ask: |p| format!("A second child mallocs the same bytes in {} chunks and frees them all. What happens to its RSS, without malloc_trim?", shown(p, "large_chunk")),
            answer: AnswerKind::Choice(&[
                Choice { id: "a", text: "it stays near the peak until malloc_trim" },
                Choice { id: "b", text: "it drops at once" },
            ]),
            measure: |r, _| {
                let m = kept(r, "RSS kept after freeing large chunks")?;
                Ok(Measured::option(if m.value <= 50.0 { "b" } else { "a" }, format!("{} ({}% of the peak kept)", m.evidence, crate::learn::trim(m.value))))
            },
            explain: |_, _| "Chunks at or above the mmap threshold (128 KiB here, fixed so glibc cannot raise it) get a mapping of their own; free() unmaps it, and the pages leave RSS at once.".into(),
            quotes: &["large (mmap-threshold) chunks return at once"],
        },
    ],
    exercise: Exercise {
        goal: "make the small-chunk child's RSS fall after the frees, without malloc_trim (keep under 50% of the peak)",
        hint: "which chunks does glibc not take from the heap? (--set small_chunk=...)",
        reached: |r| {
            let m = kept(r, "RSS kept after the frees")?;
            Ok((m.value < 50.0, format!("{}% of the peak kept after the frees", crate::learn::trim(m.value))))
        },
        explain: "Chunks of 128 KiB and more are each mmap'ed on their own, and free() unmaps them: no high-water mark. Below the threshold they share the heap, which only shrinks from its top.",
    },
};
