//! `syslens learn`: a lesson's plan (its parameters and questions), its run and
//! grading, the break-it exercise, and progress. The prompts and the flags live in
//! the command line; the formatting in `render::learn`.

use serde::Serialize;

use crate::concepts::{ConceptDef, REGISTRY};
use crate::lab::params::{HostLimits, ParamError, ParamValues, Setting, Value};
use crate::lab::report::LabReport;
use crate::lab::{self, LabContext};
use crate::learn::answers::Answers;
use crate::learn::progress::{Attempt, Progress};
use crate::learn::{self, Asked, ExerciseOutcome, Verdict};

/// One parameter of a lesson's run, as the plan shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanParam {
    /// The lab parameter's key.
    pub key: &'static str,
    /// Its value, in the base unit (bytes, ms).
    pub value: Value,
    /// The value as a person reads it.
    pub shown: String,
    /// Where the value came from: `seed`, `set` (by hand) or `default`.
    pub from: &'static str,
}

/// What a lesson will run and ask, before anything runs.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The concept's id.
    pub concept: &'static str,
    /// Its title.
    pub title: &'static str,
    /// The seed the parameters were drawn with (None: set by hand only).
    pub seed: Option<u64>,
    /// The experiment.
    pub setup: &'static str,
    /// Every parameter of the run.
    pub params: Vec<PlanParam>,
    /// The questions.
    pub questions: Vec<Asked>,
}

/// The parameters and questions of `c`'s lesson under `seed` and the learner's sets.
pub fn plan(
    c: &'static ConceptDef,
    seed: Option<u64>,
    quick: bool,
    sets: &[Setting],
    limits: &HostLimits,
) -> Result<(Plan, ParamValues), ParamError> {
    let p = learn::resolve(c.lab, c.lesson, seed, quick, sets, limits)?;
    let drawn: Vec<&str> = c.lesson.draws.iter().map(|d| d.key).collect();
    let params = p
        .iter()
        .map(|r| PlanParam {
            key: r.spec.key,
            value: r.value,
            shown: r.spec.kind.show(r.value),
            from: if sets.iter().any(|s| s.names(r.spec)) {
                "set"
            } else if seed.is_some() && r.set && drawn.contains(&r.spec.key) {
                "seed"
            } else {
                "default"
            },
        })
        .collect();
    let plan = Plan {
        concept: c.id.slug(),
        title: c.id.title(),
        seed,
        setup: c.lesson.setup,
        params,
        questions: learn::ask(c.lesson, &p),
    };
    Ok((plan, p))
}

/// A lesson's run, graded.
#[derive(Debug, Clone, Serialize)]
pub struct Graded {
    /// The concept's id.
    pub concept: &'static str,
    /// Its title.
    pub title: &'static str,
    /// The seed of the parameters.
    pub seed: Option<u64>,
    /// The run's parameters.
    pub params: Vec<PlanParam>,
    /// One verdict per question, in order.
    pub verdicts: Vec<Verdict>,
    /// Answers graded right.
    pub right: usize,
    /// Questions that could be graded (measured on this host).
    pub graded: usize,
    /// Questions asked.
    pub asked: usize,
    /// The lab's claims that failed (its report says why).
    pub failed_claims: Vec<String>,
    /// The lab's claims this host could not check, with the reason.
    pub skipped_claims: Vec<String>,
}

/// Grades every question of `plan` against `report`.
pub fn grade(
    c: &'static ConceptDef,
    plan: &Plan,
    p: &ParamValues,
    report: &LabReport,
    answers: &Answers,
) -> Graded {
    let verdicts: Vec<Verdict> = c
        .lesson
        .questions
        .iter()
        .map(|q| learn::grade(q, p, report, answers.get(q.id)))
        .collect();
    Graded {
        concept: plan.concept,
        title: plan.title,
        seed: plan.seed,
        params: plan.params.clone(),
        right: verdicts.iter().filter(|v| v.correct == Some(true)).count(),
        graded: verdicts.iter().filter(|v| v.correct.is_some()).count(),
        asked: verdicts.len(),
        verdicts,
        failed_claims: report
            .checks
            .iter()
            .filter(|c| c.status == lab::report::Status::Failed)
            .map(|c| c.claim.clone())
            .collect(),
        skipped_claims: report
            .checks
            .iter()
            .filter(|c| c.status == lab::report::Status::Skipped)
            .map(|c| {
                format!(
                    "{}: {}",
                    c.claim,
                    c.reason.as_deref().unwrap_or("no reason given")
                )
            })
            .collect(),
    }
}

/// Runs `c`'s lab with `p`; None when a signal cut it short (what it made is removed).
pub fn run_lab(c: &'static ConceptDef, ctx: &mut LabContext, p: ParamValues) -> Option<LabReport> {
    let _reaper = lab::Reaper::start();
    let report = lab::run_with(c.lab, ctx, p);
    lab::cleanup::interrupted().is_none().then_some(report)
}

/// The attempt a graded run adds to the progress.
pub fn attempt(g: &Graded, at: i64) -> Attempt {
    Attempt {
        at,
        seed: g.seed,
        right: g.right as u32,
        // Questions this host could not measure are not held against the learner.
        asked: g.graded as u32,
        ungraded: (g.asked - g.graded) as u32,
    }
}

/// The first concept in catalogue order not yet mastered.
pub fn next_unmastered(p: &Progress) -> Option<&'static ConceptDef> {
    REGISTRY.iter().copied().find(|c| !p.mastered(c.id.slug()))
}

/// One concept's line of `syslens learn --progress`.
#[derive(Debug, Clone, Serialize)]
pub struct ProgressRow {
    /// The concept's id.
    pub concept: &'static str,
    /// Its title.
    pub title: &'static str,
    /// Attempts kept.
    pub attempts: usize,
    /// The latest attempt's right answers and graded questions.
    pub last: Option<[u32; 2]>,
    /// Seeds under which every question was right.
    pub perfect_seeds: usize,
    /// Mastered: every question right under two seeds.
    pub mastered: bool,
    /// The break-it exercise solved.
    pub exercise_solved: bool,
}

/// Every concept's progress, in catalogue order.
pub fn progress_rows(p: &Progress) -> Vec<ProgressRow> {
    REGISTRY
        .iter()
        .map(|c| {
            let e = p.concepts.get(c.id.slug());
            ProgressRow {
                concept: c.id.slug(),
                title: c.id.title(),
                attempts: e.map_or(0, |e| e.attempts.len()),
                last: e
                    .and_then(|e| e.attempts.last())
                    .map(|a| [a.right, a.asked]),
                perfect_seeds: e.map_or(0, |e| e.perfect_seeds.len()),
                mastered: e.is_some_and(|e| e.mastered()),
                exercise_solved: e.is_some_and(|e| e.exercise_solved),
            }
        })
        .collect()
}

/// Reads a tour's answers file: a JSON object from concept id to that lesson's answers.
pub fn tour_answers(
    text: &str,
) -> Result<Vec<(&'static ConceptDef, Answers)>, learn::answers::AnswersError> {
    use learn::answers::{of_object, AnswersError};
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| AnswersError::NotJson(e.to_string()))?;
    let obj = json.as_object().ok_or(AnswersError::NotAnObject(
        "an object from concept id to that lesson's answers, e.g. {\"cow\": {\"read_dirty\": 0}}",
    ))?;
    let mut out = Vec::new();
    for (id, answers) in obj {
        let c = crate::catalogue::ConceptId::lookup(id)
            .map(crate::concepts::def)
            .map_err(|_| AnswersError::UnknownConcept(id.clone()))?;
        let given = of_object(answers, c.lesson).map_err(|e| match e {
            AnswersError::UnknownQuestion { id: q, known } => AnswersError::UnknownQuestion {
                id: format!("{}.{q}", c.id.slug()),
                known,
            },
            other => other,
        })?;
        out.push((c, given));
    }
    Ok(out)
}

/// The exercise of `c`, checked against the run with the learner's sets.
pub fn exercise(c: &'static ConceptDef, report: &LabReport, sets: &[Setting]) -> ExerciseOutcome {
    learn::check_exercise(&c.lesson.exercise, report, sets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::params::Max;
    use crate::learn::{AnswerKind, Given};

    fn host() -> crate::model::host::Host {
        crate::model::host::Host::read(&mut syslens_probe::Reader::host().unwrap())
    }

    fn limits() -> HostLimits {
        HostLimits {
            mem_available: Ok(16 << 30),
            cgroup_limit: None,
            cpus: Ok(4),
        }
    }

    #[test]
    fn issue_18_every_lesson_asks_two_to_four_questions_one_numeric_each_explained() {
        for c in REGISTRY {
            let qs = c.lesson.questions;
            assert!(
                (2..=4).contains(&qs.len()),
                "{}: {} questions",
                c.id.slug(),
                qs.len()
            );
            assert!(
                qs.iter()
                    .any(|q| matches!(q.answer, AnswerKind::Number { .. })),
                "{}: no numeric question",
                c.id.slug()
            );
            let mut ids: Vec<_> = qs.iter().map(|q| q.id).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), qs.len(), "{}: duplicate ids", c.id.slug());
            assert!(!c.lesson.exercise.goal.is_empty());
        }
    }

    #[test]
    fn issue_18_every_draw_is_a_declared_parameter_within_its_range() {
        let l = limits();
        for c in REGISTRY {
            for d in c.lesson.draws {
                let spec = c.lab.params.iter().find(|p| p.key == d.key);
                let spec = spec.unwrap_or_else(|| {
                    panic!("{}: draws {} it does not declare", c.id.slug(), d.key)
                });
                assert!(
                    d.values.len() >= 2,
                    "{}: {} draws from one value",
                    c.id.slug(),
                    d.key
                );
                for v in d.values {
                    assert!(
                        spec.range(&l).contains(*v).unwrap_or(false),
                        "{}: {} = {v} outside its range",
                        c.id.slug(),
                        d.key
                    );
                }
                // A host bound is a share of memory or CPUs: a drawn size must fit a small host.
                if let Max::MemoryShare(_) = spec.max {
                    assert!(d
                        .values
                        .iter()
                        .all(|v| matches!(v, Value::Int(b) if *b <= 256 << 20)));
                }
            }
        }
    }

    #[test]
    fn issue_18_the_same_seed_gives_the_same_parameters_and_texts() {
        let l = limits();
        for c in REGISTRY {
            let a = plan(c, Some(42), true, &[], &l).unwrap().0;
            let b = plan(c, Some(42), true, &[], &l).unwrap().0;
            let texts = |p: &Plan| {
                p.questions
                    .iter()
                    .map(|q| q.text.clone())
                    .collect::<Vec<_>>()
            };
            assert_eq!(texts(&a), texts(&b), "{}", c.id.slug());
            let values = |p: &Plan| p.params.iter().map(|q| q.shown.clone()).collect::<Vec<_>>();
            assert_eq!(values(&a), values(&b));
            for q in &a.questions {
                assert!(
                    !q.text.contains('?') || q.text.ends_with('?'),
                    "{}: {}",
                    c.id.slug(),
                    q.text
                );
                assert!(
                    !q.text.contains(" ? "),
                    "{}: a parameter missing in {:?}",
                    c.id.slug(),
                    q.text
                );
            }
        }
    }

    #[test]
    fn issue_18_seeds_vary_the_parameters_and_a_set_wins_over_the_draw() {
        let l = limits();
        let c = crate::concepts::def(crate::catalogue::ConceptId::Cow);
        let sizes: std::collections::BTreeSet<String> = (0..40)
            .map(|s| {
                let (p, _) = plan(c, Some(s), true, &[], &l).unwrap();
                p.params
                    .iter()
                    .find(|p| p.key == "size")
                    .unwrap()
                    .shown
                    .clone()
            })
            .collect();
        assert!(sizes.len() >= 2, "40 seeds drew one size: {sizes:?}");
        let set = Setting::parse("size=20M").unwrap();
        let (p, values) = plan(c, Some(7), true, &[set], &l).unwrap();
        let size = p.params.iter().find(|p| p.key == "size").unwrap();
        assert_eq!((size.shown.as_str(), size.from), ("20 MiB", "set"));
        assert!(p.questions[0].text.contains("20 MiB"));
        assert_eq!(values.bytes("size").unwrap(), 20 << 20);
        // The other draw is the one the seed gives without the set.
        let (unset, _) = plan(c, Some(7), true, &[], &l).unwrap();
        let wf = |p: &Plan| {
            p.params
                .iter()
                .find(|p| p.key == "write_fraction")
                .unwrap()
                .shown
                .clone()
        };
        assert_eq!(wf(&p), wf(&unset));
    }

    #[test]
    fn issue_18_a_small_host_draws_only_what_it_allows() {
        let small = HostLimits {
            mem_available: Ok(200 << 20),
            ..limits()
        };
        let c = crate::concepts::def(crate::catalogue::ConceptId::LazyInit);
        for s in 0..20 {
            let (p, _) = plan(c, Some(s), true, &[], &small).unwrap();
            let size = p.params.iter().find(|p| p.key == "size").unwrap();
            assert!(
                matches!(size.value, Value::Int(b) if b <= 50 << 20),
                "seed {s}: {}",
                size.shown
            );
        }
    }

    #[test]
    fn issue_18_an_absurd_answer_is_wrong_and_the_measured_value_right() {
        let l = limits();
        let c = crate::concepts::def(crate::catalogue::ConceptId::LazyInit);
        let (plan, p) = plan(c, Some(3), true, &[], &l).unwrap();
        let mut report = LabReport::new(c.id, host());
        let size = p.bytes("size").unwrap() as f64;
        report.evidence(
            "/proc/1/smaps_rollup",
            "Rss (mapped -> read every page)",
            6e6,
            6e6,
            "bytes",
        );
        report.evidence(
            "/proc/1/smaps_rollup",
            "Rss (read -> wrote every page)",
            6e6,
            6e6 + size,
            "bytes",
        );
        report.metric(
            "second touch, per page (resident)",
            "ns",
            &[40.0, 45.0, 50.0, 44.0, 46.0],
        );
        report.metric(
            "first touch, per page (fault)",
            "ns",
            &[3000.0, 3500.0, 4000.0, 3400.0, 3600.0],
        );
        let mib = size / learn::MIB;
        let right: Answers = [
            ("rss_read", Given::Number(0.0)),
            ("rss_write", Given::Number(mib)),
            ("first_vs_second", Given::Number(78.0)),
        ]
        .into_iter()
        .collect();
        let g = grade(c, &plan, &p, &report, &right);
        assert_eq!((g.right, g.graded, g.asked), (3, 3, 3), "{:#?}", g.verdicts);
        let absurd: Answers = [
            ("rss_read", Given::Number(mib)),
            ("rss_write", Given::Number(-5.0)),
            ("first_vs_second", Given::Number(1e9)),
        ]
        .into_iter()
        .collect();
        let g = grade(c, &plan, &p, &report, &absurd);
        assert_eq!(g.right, 0, "{:#?}", g.verdicts);
        assert!(g.verdicts.iter().all(|v| !v.explanation.is_empty()));
        // Unanswered is wrong, not ungraded.
        let g = grade(c, &plan, &p, &report, &Answers::new());
        assert_eq!((g.right, g.graded), (0, 3));
        // Nothing measured: not graded, with the reason.
        let empty = LabReport::new(c.id, host());
        let g = grade(c, &plan, &p, &empty, &right);
        assert_eq!(g.graded, 0);
        assert!(g.verdicts.iter().all(|v| v.unmeasured.is_some()));
    }

    #[test]
    fn issue_18_next_unmastered_follows_the_catalogue() {
        let mut p = Progress::default();
        assert_eq!(next_unmastered(&p).map(|c| c.id.slug()), Some("lazy-init"));
        for seed in [1, 2] {
            p.record(
                "lazy-init",
                Attempt {
                    at: 0,
                    seed: Some(seed),
                    right: 3,
                    asked: 3,
                    ungraded: 0,
                },
            );
        }
        assert_eq!(
            next_unmastered(&p).map(|c| c.id.slug()),
            Some("high-water-mark")
        );
        let rows = progress_rows(&p);
        assert_eq!(rows.len(), 17);
        assert!(rows[0].mastered && !rows[1].mastered);
        assert_eq!(rows[0].last, Some([3, 3]));
    }
}
