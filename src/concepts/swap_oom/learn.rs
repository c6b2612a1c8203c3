//! The swap and OOM lesson: who the cgroup's OOM killer picks, and what its counter
//! says.

use crate::lab::params::Value;
use crate::lab::report::LabReport;
use crate::learn::{
    evidence, reading, shown, AnswerKind, Choice, Draw, Exercise, Lesson, Measured, Question,
    Tolerance,
};

fn killed(r: &LabReport, which: &str) -> Result<(bool, String), String> {
    let (_, k, from) = evidence(r, which)?;
    Ok((k > 0.5, from))
}

/// The lesson.
pub static LESSON: Lesson = Lesson {
    setup: "A memory cgroup is made beneath the tool's own with a limit; a hog allocates past \
            it; then two children allocate together over the limit, one with a raised \
            oom_score_adj. The cgroup's oom_kill counter and the children's exit statuses \
            are read.",
    draws: &[
        Draw { key: "hog", values: &[Value::Int(96 << 20), Value::Int(128 << 20), Value::Int(192 << 20)] },
        Draw { key: "raised_adj", values: &[Value::Int(100), Value::Int(300), Value::Int(500), Value::Int(900)] },
    ],
    questions: &[
        Question {
            id: "victim",
            ask: |p| format!("Two children each allocate {} in a cgroup limited to {}: each alone fits, together they do not. One has oom_score_adj {}, the other 0. Which does the OOM killer kill?", shown(p, "pair"), shown(p, "limit"), shown(p, "raised_adj")),
            answer: AnswerKind::Choice(&[
                Choice { id: "raised", text: "the one with the raised oom_score_adj" },
                Choice { id: "plain", text: "the one with oom_score_adj 0" },
                Choice { id: "both", text: "both" },
                Choice { id: "neither", text: "neither: the allocation fails with ENOMEM" },
            ]),
            measure: |r, _| {
                let (raised, a) = killed(r, "child with the raised oom_score_adj killed")?;
                let (plain, b) = killed(r, "child with oom_score_adj 0 killed")?;
                let id = match (raised, plain) {
                    (true, false) => "raised",
                    (false, true) => "plain",
                    (true, true) => "both",
                    (false, false) => "neither",
                };
                Ok(Measured::option(id, format!("{a}; {b}")))
            },
            explain: |_, _| "The OOM killer scores each task in the cgroup by its memory (RSS, swap and page tables, in pages) plus oom_score_adj x total/1000, and kills the highest. With equal sizes the adjustment decides; one kill frees enough, so the other survives. malloc does not fail: Linux overcommits, and the limit is enforced when pages are touched.".into(),
            quotes: &["of two children over the limit"],
        },
        Question {
            id: "hog_kills",
            ask: |p| format!("Before that, one child allocates {} in the cgroup limited to {}. By how much does the cgroup's oom_kill counter rise?", shown(p, "hog"), shown(p, "limit")),
            answer: AnswerKind::Number { unit: "kills", tolerance: Tolerance::Absolute(0.0) },
            measure: |r, _| reading(r, "OOM kills for the hog", 1.0),
            explain: |_, _| "One kill for one victim: the hog is the only task over the limit, reclaim finds nothing to free (no swap), and the OOM killer ends it with SIGKILL. memory.events (v2) or memory.oom_control (v1) keeps the count: the way to tell, at 3 am, that a container's process was OOM-killed and did not crash.".into(),
            quotes: &["the cgroup's oom-kill counter rose by exactly one"],
        },
    ],
    exercise: Exercise {
        goal: "let the hog survive its cgroup",
        hint: "compare what it allocates with the limit (--set hog=..., --set limit=...)",
        reached: |r| {
            let (k, from) = killed(r, "hog killed by SIGKILL")?;
            Ok((!k, from))
        },
        explain: "Under its limit (with room for the program itself) nothing needs reclaiming and no OOM kill happens: the limit is a ceiling on what the cgroup's pages may use, not a reservation.",
    },
};
