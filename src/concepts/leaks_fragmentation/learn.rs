//! The leaks and fragmentation lesson: a leak's rate read from RSS alone, and holes
//! that RSS cannot show.

use crate::lab::params::Value;
use crate::lab::report::LabReport;
use crate::learn::{
    evidence, shown, AnswerKind, Draw, Exercise, Lesson, Measured, Question, Tolerance, MIB,
};

/// RSS after a step as a share of the RSS before the frees, in %.
fn share_of_peak(r: &LabReport, part: &str) -> Result<Measured, String> {
    let (peak, _, _) = evidence(r, "Rss (peak -> alternate frees)")?;
    let (_, after, from) = evidence(r, part)?;
    if peak <= 0.0 {
        return Err("no peak RSS".into());
    }
    Ok(Measured::exact(after / peak * 100.0, from))
}

/// The lesson.
pub static LESSON: Lesson = Lesson {
    setup: "A child leaks objects at a steady rate while the parent samples its RSS every 50 \
            ms and fits a line; then it allocates many small objects, frees every other one, \
            and calls malloc_trim(0).",
    draws: &[
        Draw { key: "leak", values: &[Value::Int(16 << 20), Value::Int(32 << 20), Value::Int(64 << 20)] },
        Draw { key: "leak_duration", values: &[Value::Int(1000), Value::Int(2000)] },
        Draw { key: "fragment_object", values: &[Value::Int(64), Value::Int(256), Value::Int(1024)] },
    ],
    questions: &[
        Question {
            id: "slope",
            ask: |p| format!("The child leaks {} over {} at a steady rate. What slope does a line fitted to its RSS samples show, in MiB/s?", shown(p, "leak"), shown(p, "leak_duration")),
            answer: AnswerKind::Number { unit: "MiB/s", tolerance: Tolerance::Relative(0.15) },
            measure: |r, _| {
                let (_, fitted, from) = evidence(r, "leak rate, true -> fitted from RSS")?;
                Ok(Measured::exact(fitted / MIB, from))
            },
            explain: |_, _| "The leaked objects are written, so their pages are resident: RSS grows at the leak rate plus malloc's per-chunk overhead (16 bytes a chunk), and a least-squares slope over many samples recovers it. The kernel updates RSS counters per CPU in batches, so a single sample can lag; a fit over many does not.".into(),
            quotes: &["the RSS slope fitted from /proc alone"],
        },
        Question {
            id: "kept_after_frees",
            ask: |p| format!("Then it allocates {} in {} objects and frees every other one: half the live bytes. What share of its RSS before the frees stays, in %?", shown(p, "fragment"), shown(p, "fragment_object")),
            answer: AnswerKind::Number { unit: "%", tolerance: Tolerance::Absolute(10.0) },
            measure: |r, _| share_of_peak(r, "Rss (peak -> alternate frees)"),
            explain: |_, _| "Every page still holds a live object, so no page can be given back: freed bytes become holes inside resident pages. RSS says nothing of how full the pages are; malloc_usable_size (or the allocator's own statistics) does.".into(),
            quotes: &["after freeing every other small object"],
        },
    ],
    exercise: Exercise {
        goal: "make malloc_trim give memory back after the alternate frees (RSS under 70% of the peak)",
        hint: "what must a hole hold for its memory to be returned? (--set fragment_object=...)",
        reached: |r| {
            let m = share_of_peak(r, "Rss (frees -> malloc_trim)")?;
            Ok((m.value < 70.0, format!("RSS {}% of the peak after malloc_trim", crate::learn::trim(m.value))))
        },
        explain: "malloc_trim returns only whole free pages inside free chunks: holes of 16 KiB or more hold whole pages, holes of a few hundred bytes hold none.",
    },
};
