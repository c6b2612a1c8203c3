//! The demand-paging lesson: mapping reads nothing; touches read more than they touch.

use crate::lab::params::Value;
use crate::learn::{
    growth, num, shown, AnswerKind, Draw, Exercise, Lesson, Question, Tolerance, MIB,
};

fn resident_share(r: &crate::lab::report::LabReport) -> Result<f64, String> {
    let size = r
        .params
        .get("size_bytes")
        .and_then(|v| v.as_f64())
        .ok_or("the report has no size")?;
    Ok(growth(r, "Rss (mapped -> sparse touches)", 1.0)?.value / size * 100.0)
}

/// The lesson.
pub static LESSON: Lesson = Lesson {
    setup: "A file is written, evicted from the page cache, and mapped by a child; the parent \
            reads the child's RSS after the mmap call, after the child touches one page in \
            every `stride`, and after it touches every page.",
    draws: &[
        Draw { key: "size", values: &[Value::Int(32 << 20), Value::Int(64 << 20), Value::Int(128 << 20)] },
        Draw { key: "stride", values: &[Value::Int(16), Value::Int(64), Value::Int(256)] },
    ],
    questions: &[
        Question {
            id: "rss_at_mmap",
            ask: |p| format!("The child maps the evicted {} file. How much does its RSS grow at the mmap call, in MiB?", shown(p, "size")),
            answer: AnswerKind::Number { unit: "MiB", tolerance: Tolerance::Absolute(1.0) },
            measure: |r, _| growth(r, "Rss (before -> after mmap)", MIB),
            explain: |_, _| "mmap only creates the mapping (a VMA): no page is read until one is touched. That is demand paging.".into(),
            quotes: &["mapping the file grows RSS by < 1 MiB"],
        },
        Question {
            id: "rss_sparse",
            ask: |p| format!("It touches one page in every {} ({} pages of {}). How much does its RSS grow, in MiB?", shown(p, "stride"), (num(p, "size") / 4096.0 / num(p, "stride").max(1.0)).ceil(), (num(p, "size") / 4096.0)),
            answer: AnswerKind::Number { unit: "MiB", tolerance: Tolerance::Relative(0.15) },
            measure: |r, _| growth(r, "Rss (mapped -> sparse touches)", MIB),
            explain: |r, _| format!(
                "Far more than the pages touched: a fault on a file mapping reads ahead around the fault (read_ahead_kb = {} on this device) and maps up to 16 cached pages around it (fault-around), so sparse touches bring most of the file in.",
                r.params.get("read_ahead_kb").map_or("?".to_owned(), |v| v.to_string())
            ),
            quotes: &["after touching every 64th page, more pages", "after touching every"],
        },
    ],
    exercise: Exercise {
        goal: "make the sparse touches leave less than 75% of the file resident",
        hint: "compare the distance between touches with the device's read_ahead_kb (the lab prints it) (--set stride=...)",
        reached: |r| {
            let share = resident_share(r)?;
            Ok((share < 75.0, format!("{}% of the file resident after the sparse touches", crate::learn::trim(share))))
        },
        explain: "Each fault reads about read_ahead_kb around itself: when the touches are farther apart than that window, the pages between the windows are never read.",
    },
};
