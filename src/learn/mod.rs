//! The learn engine: predict, run, verdict. Each concept's room declares a [`Lesson`]:
//! the parameters a seed draws, the questions asked before its lab runs, how each
//! answer is measured from the lab's report, and one break-it [`Exercise`]. This
//! module draws the parameters, grades answers against the measured range widened by
//! each question's tolerance, and keeps the learner's progress ([`progress`]). It
//! knows no concept: the registry hands it the lessons.

use serde::Serialize;

use crate::lab::params::{self, HostLimits, ParamError, ParamValues, Setting, Value};
use crate::lab::report::{LabReport, Metric, Status};
use crate::lab::LabDef;

pub mod answers;
pub mod progress;

/// A concept's lesson.
#[derive(Debug)]
pub struct Lesson {
    /// The experiment in two or three sentences, shown before the questions.
    pub setup: &'static str,
    /// The parameters a seed draws, each from a few values within the lab's range.
    pub draws: &'static [Draw],
    /// The questions, asked before the lab runs (two to four).
    pub questions: &'static [Question],
    /// The break-it exercise (`syslens learn CONCEPT --exercise`).
    pub exercise: Exercise,
}

/// A parameter a seed draws, and the values it draws from.
#[derive(Debug)]
pub struct Draw {
    /// The lab parameter's key.
    pub key: &'static str,
    /// The values drawn from (those this host's range allows).
    pub values: &'static [Value],
}

/// One question of a lesson.
#[derive(Debug)]
pub struct Question {
    /// Stable id, the key in an answers file.
    pub id: &'static str,
    /// The question, with this run's parameters.
    pub ask: fn(&ParamValues) -> String,
    /// What kind of answer it takes.
    pub answer: AnswerKind,
    /// The measured answer, from the lab's report (Err: why it could not be measured).
    pub measure: fn(&LabReport, &ParamValues) -> Result<Measured, String>,
    /// Why the kernel behaves so: the surprise, where there is one.
    pub explain: fn(&LabReport, &Measured) -> String,
    /// Prefixes of the lab's claims whose lines the verdict quotes.
    pub quotes: &'static [&'static str],
}

/// What a question takes.
#[derive(Debug, Clone, Copy)]
pub enum AnswerKind {
    /// A number in `unit`, right within `tolerance` of the measured range.
    Number {
        /// The unit the answer is written in (`MiB`, `faults`, `%`, `x`, `ns`).
        unit: &'static str,
        /// How far outside the measured range an answer may fall.
        tolerance: Tolerance,
    },
    /// One of the options, by id.
    Choice(&'static [Choice]),
}

/// One option of a choice question.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Choice {
    /// What the answers file gives (`a`, `b`, ...).
    pub id: &'static str,
    /// The option's text.
    pub text: &'static str,
}

/// How far a numeric answer may fall outside the measured range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Tolerance {
    /// Plus or minus this many units (percentage points, MiB).
    Absolute(f64),
    /// Plus or minus this share of the range's ends (0.1: 10%).
    Relative(f64),
    /// Within this factor of the range's ends (timings: 3 means a third to three times).
    Factor(f64),
}

impl Tolerance {
    /// The answers accepted around the measured range `[low, high]`.
    pub fn widen(self, low: f64, high: f64) -> [f64; 2] {
        let (low, high) = (low.min(high), low.max(high));
        // A margin does not make a reading that cannot be negative (bytes, counts,
        // shares) accept a negative answer.
        let floor = |x: f64| if low >= 0.0 { x.max(0.0) } else { x };
        match self {
            Tolerance::Absolute(a) => [floor(low - a), high + a],
            Tolerance::Relative(r) => [low - low.abs() * r, high + high.abs() * r],
            Tolerance::Factor(f) if low > 0.0 => [low / f, high * f],
            // A factor of a range reaching zero or below: only the range itself widens
            // upwards (a factor says nothing about zero).
            Tolerance::Factor(f) => [low, high.max(0.0) * f],
        }
    }

    /// The tolerance as a person reads it.
    pub fn describe(self, unit: &str) -> String {
        match self {
            Tolerance::Absolute(a) if unit == "%" => {
                format!("within {} percentage points", trim(a))
            }
            Tolerance::Absolute(a) => format!("within {} {unit}", trim(a)),
            Tolerance::Relative(r) => format!("within {}%", trim(r * 100.0)),
            Tolerance::Factor(f) => format!("within a factor of {}", trim(f)),
        }
    }
}

/// What the lab measured for one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measured {
    /// The value (a number: in the question's unit; a choice: unused, 0).
    pub value: f64,
    /// The spread's low end (p10 of the trials, or the value).
    pub low: f64,
    /// The spread's high end (p90 of the trials, or the value).
    pub high: f64,
    /// The option the measurement selects, for a choice.
    pub option: Option<&'static str>,
    /// The reading it came from, as a person reads it.
    pub evidence: String,
}

impl Measured {
    /// One reading, no spread.
    pub fn exact(value: f64, evidence: impl Into<String>) -> Measured {
        Measured {
            value,
            low: value,
            high: value,
            option: None,
            evidence: evidence.into(),
        }
    }

    /// A choice the measurement selects.
    pub fn option(id: &'static str, evidence: impl Into<String>) -> Measured {
        Measured {
            option: Some(id),
            ..Measured::exact(0.0, evidence)
        }
    }

    /// A metric's median with its p10..p90 spread (min..max under five trials), times
    /// `scale` (to the question's unit).
    pub fn metric(m: &Metric, scale: f64) -> Measured {
        let s = &m.summary;
        let (low, high) = if s.n >= 5 {
            (s.p10, s.p90)
        } else {
            (s.min, s.max)
        };
        Measured {
            value: s.median * scale,
            low: low * scale,
            high: high * scale,
            option: None,
            evidence: format!(
                "metric \"{}\": median {} {}, n={} (p10 {}, p90 {})",
                m.name,
                trim(s.median),
                m.unit,
                s.n,
                trim(s.p10),
                trim(s.p90)
            ),
        }
    }

    /// The ratio of two metrics' medians, the spread from their p10 and p90.
    pub fn ratio(num: &Metric, den: &Metric) -> Result<Measured, String> {
        let (a, b) = (&num.summary, &den.summary);
        if b.median <= 0.0 || b.p10 <= 0.0 || b.p90 <= 0.0 {
            return Err(format!("\"{}\" measured zero", den.name));
        }
        let value = a.median / b.median;
        let ends = [a.p10 / b.p90, a.p90 / b.p10];
        Ok(Measured {
            value,
            low: ends[0].min(value),
            high: ends[1].max(value),
            option: None,
            evidence: format!(
                "metrics \"{}\" / \"{}\": medians {} / {} {}",
                num.name,
                den.name,
                trim(a.median),
                trim(b.median),
                den.unit
            ),
        })
    }
}

/// A metric of the report whose name starts with `prefix` (the last one: labs record
/// the largest size last).
pub fn metric<'a>(r: &'a LabReport, prefix: &str) -> Result<&'a Metric, String> {
    r.metrics
        .iter()
        .rev()
        .find(|m| m.name.starts_with(prefix))
        .ok_or_else(|| format!("the lab recorded no metric \"{prefix}…\""))
}

/// An evidence reading whose field contains `part`: (before, after, where it came from).
pub fn evidence(r: &LabReport, part: &str) -> Result<(f64, f64, String), String> {
    r.evidence
        .iter()
        .find(|e| e.field.contains(part))
        .map(|e| {
            let unit = if e.unit.is_empty() { "" } else { e.unit };
            (
                e.before,
                e.after,
                format!(
                    "{} {}: {} -> {} {unit}",
                    e.source,
                    e.field,
                    trim(e.before),
                    trim(e.after)
                )
                .trim_end()
                .to_owned(),
            )
        })
        .ok_or_else(|| format!("the lab recorded no reading \"{part}\""))
}

/// The growth an evidence reading shows, divided by `scale` (bytes to MiB: 1 MiB).
pub fn growth(r: &LabReport, part: &str, scale: f64) -> Result<Measured, String> {
    let (before, after, from) = evidence(r, part)?;
    Ok(Measured::exact((after - before) / scale, from))
}

/// The `after` value of an evidence reading divided by `scale`.
pub fn reading(r: &LabReport, part: &str, scale: f64) -> Result<Measured, String> {
    let (_, after, from) = evidence(r, part)?;
    Ok(Measured::exact(after / scale, from))
}

/// A claim of the report by its prefix, when it was checked (passed or failed).
pub fn claim<'a>(r: &'a LabReport, prefix: &str) -> Option<&'a crate::lab::report::Check> {
    r.checks
        .iter()
        .find(|c| c.claim.starts_with(prefix) && c.status != Status::Skipped)
}

/// One MiB, to scale bytes in answers.
pub const MIB: f64 = 1024.0 * 1024.0;

/// `x` without trailing zeros (3 significant decimals at most).
pub fn trim(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        return format!("{x:.0}");
    }
    let s = if x.abs() >= 1000.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    };
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A parameter's value as a question shows it (`64 MiB`, `0.25`); `?` when the run does
/// not have it (the registry's test asks every question of every draw and refuses `?`).
pub fn shown(p: &ParamValues, key: &str) -> String {
    p.iter()
        .find(|r| r.spec.key == key)
        .map_or_else(|| "?".to_owned(), |r| r.spec.kind.show(r.value))
}

/// A parameter's number (bytes, a count, ms, a fraction), 0 when absent.
pub fn num(p: &ParamValues, key: &str) -> f64 {
    p.iter()
        .find(|r| r.spec.key == key)
        .and_then(|r| match r.value {
            Value::Int(n) => Some(n as f64),
            Value::Fraction(x) => Some(x),
            Value::Choice(_) => None,
        })
        .unwrap_or(0.0)
}

/// A seed's pseudo-random stream: SplitMix64 (Steele, Lea and Flood, 2014), written
/// here because the draws must stay the same across versions and platforms, which no
/// crate's general-purpose generator promises.
#[derive(Debug, Clone)]
pub struct SeedStream(u64);

impl SeedStream {
    /// The stream of `seed`.
    pub fn new(seed: u64) -> SeedStream {
        SeedStream(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// An index below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// A fresh seed to print and share: small enough to type (1 to 999999).
pub fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is keyed from the OS's random source once per process.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish() % 999_999 + 1
}

/// The settings `seed` draws for `lesson`: one value per draw, among those this host's
/// range allows; keys the learner set by hand are not drawn.
pub fn draw(
    def: &'static LabDef,
    lesson: &Lesson,
    seed: u64,
    limits: &HostLimits,
    by_hand: &[Setting],
) -> Vec<Setting> {
    let mut stream = SeedStream::new(seed);
    let mut sets = Vec::new();
    for d in lesson.draws {
        // Every draw takes its number from the stream, so one key set by hand does not
        // change what the others draw.
        let pick = stream.next_u64();
        let Some(spec) = def.params.iter().find(|p| p.key == d.key) else {
            continue;
        };
        if by_hand.iter().any(|s| s.names(spec)) {
            continue;
        }
        let range = spec.range(limits);
        let allowed: Vec<Value> = d
            .values
            .iter()
            .copied()
            .filter(|v| range.contains(*v).unwrap_or(false))
            .collect();
        if allowed.is_empty() {
            continue;
        }
        let v = allowed[(pick % allowed.len() as u64) as usize];
        sets.push(Setting::value(spec, v));
    }
    sets
}

/// The parameters a lesson's run uses: the seed's draws, then what the learner set.
pub fn resolve(
    def: &'static LabDef,
    lesson: &Lesson,
    seed: Option<u64>,
    quick: bool,
    by_hand: &[Setting],
    limits: &HostLimits,
) -> Result<ParamValues, ParamError> {
    let mut sets = seed.map_or_else(Vec::new, |s| draw(def, lesson, s, limits, by_hand));
    sets.extend(by_hand.iter().cloned());
    params::resolve(def, quick, &sets, limits)
}

/// A question as the learner (or an autograder) sees it, before anything runs.
#[derive(Debug, Clone, Serialize)]
pub struct Asked {
    /// The question's id.
    pub id: &'static str,
    /// The question.
    pub text: String,
    /// `number` or `choice`.
    pub kind: &'static str,
    /// The unit of a number.
    pub unit: Option<&'static str>,
    /// How close a number must be.
    pub tolerance: Option<Tolerance>,
    /// The tolerance as a person reads it.
    pub tolerance_text: Option<String>,
    /// The options of a choice.
    pub options: Option<&'static [Choice]>,
}

/// The questions of `lesson` with the run's parameters.
pub fn ask(lesson: &Lesson, p: &ParamValues) -> Vec<Asked> {
    lesson
        .questions
        .iter()
        .map(|q| {
            let (kind, unit, tolerance, options) = match q.answer {
                AnswerKind::Number { unit, tolerance } => {
                    ("number", Some(unit), Some(tolerance), None)
                }
                AnswerKind::Choice(options) => ("choice", None, None, Some(options)),
            };
            Asked {
                id: q.id,
                text: (q.ask)(p),
                kind,
                unit,
                tolerance,
                tolerance_text: tolerance.map(|t| t.describe(unit.unwrap_or(""))),
                options,
            }
        })
        .collect()
}

/// A learner's answer to one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Given {
    /// A number, in the question's unit.
    Number(f64),
    /// An option's id.
    Choice(String),
}

/// The grade of one answer.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The question's id.
    pub id: &'static str,
    /// The question, as it was asked.
    pub question: String,
    /// What the learner answered (None: not answered).
    pub answer: Option<Given>,
    /// What the lab measured (None: it could not, `unmeasured` says why).
    pub measured: Option<Measured>,
    /// The unit of a number.
    pub unit: Option<&'static str>,
    /// The answers accepted for a number: the measured range widened by the tolerance.
    pub accepted: Option<[f64; 2]>,
    /// Whether the answer was right; None when nothing could be measured.
    pub correct: Option<bool>,
    /// Why the answer could not be graded.
    pub unmeasured: Option<String>,
    /// Why the kernel behaved so, with the lab's own lines.
    pub explanation: String,
}

/// Grades `answer` to `q` against `report`.
pub fn grade(q: &Question, p: &ParamValues, report: &LabReport, answer: Option<&Given>) -> Verdict {
    let measured = (q.measure)(report, p).and_then(|m| {
        if m.value.is_finite() && m.low.is_finite() && m.high.is_finite() {
            Ok(m)
        } else {
            Err(format!("the measurement is not a number ({})", m.evidence))
        }
    });
    let (unit, tolerance) = match q.answer {
        AnswerKind::Number { unit, tolerance } => (Some(unit), Some(tolerance)),
        AnswerKind::Choice(_) => (None, None),
    };
    let mut v = Verdict {
        id: q.id,
        question: (q.ask)(p),
        answer: answer.cloned(),
        measured: None,
        unit,
        accepted: None,
        correct: None,
        unmeasured: None,
        explanation: String::new(),
    };
    let m = match measured {
        Ok(m) => m,
        Err(why) => {
            v.unmeasured = Some(why);
            v.explanation = quoted(report, q.quotes);
            return v;
        }
    };
    v.accepted = tolerance.map(|t| t.widen(m.low, m.high));
    v.correct = Some(match (answer, v.accepted, m.option) {
        (Some(Given::Number(x)), Some([lo, hi]), _) => x.is_finite() && (lo..=hi).contains(x),
        (Some(Given::Choice(c)), None, Some(o)) => c.eq_ignore_ascii_case(o),
        _ => false,
    });
    let mut text = (q.explain)(report, &m);
    let quotes = quoted(report, q.quotes);
    if !quotes.is_empty() {
        text.push('\n');
        text.push_str(&quotes);
    }
    v.explanation = text;
    v.measured = Some(m);
    v
}

/// The lab's lines for the claims `prefixes` name: `the lab: CLAIM: OBSERVED`.
fn quoted(report: &LabReport, prefixes: &[&str]) -> String {
    prefixes
        .iter()
        .filter_map(|p| report.checks.iter().find(|c| c.claim.starts_with(p)))
        .map(|c| {
            let seen = if c.observed.is_empty() {
                c.reason.clone().unwrap_or_default()
            } else {
                c.observed.clone()
            };
            format!("the lab: \"{}\": {seen}", c.claim)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A break-it exercise: parameters to change so that a verdict flips.
#[derive(Debug)]
pub struct Exercise {
    /// What to make happen ("make the racy counter exact with two threads").
    pub goal: &'static str,
    /// Which parameters matter, without giving the values away.
    pub hint: &'static str,
    /// Whether a run reached the goal, and what was measured (Err: not measured).
    pub reached: fn(&LabReport) -> Result<(bool, String), String>,
    /// Why the parameters flip it.
    pub explain: &'static str,
}

/// How an exercise attempt went.
#[derive(Debug, Clone, Serialize)]
pub struct ExerciseOutcome {
    /// The goal.
    pub goal: &'static str,
    /// The settings the learner gave.
    pub sets: Vec<String>,
    /// Whether the goal was reached (None: not measured).
    pub reached: Option<bool>,
    /// What was measured, or why not.
    pub measured: String,
    /// Why the parameters flip it.
    pub explanation: &'static str,
}

/// Checks an exercise against the report of the learner's run.
pub fn check_exercise(ex: &Exercise, report: &LabReport, sets: &[Setting]) -> ExerciseOutcome {
    let (reached, measured) = match (ex.reached)(report) {
        Ok((ok, seen)) => (Some(ok), seen),
        Err(why) => (None, why),
    };
    ExerciseOutcome {
        goal: ex.goal,
        sets: sets
            .iter()
            .map(|s| format!("{}={}", s.key, s.value))
            .collect(),
        reached,
        measured,
        explanation: ex.explain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_widens_the_measured_range() {
        assert_eq!(Tolerance::Absolute(2.0).widen(10.0, 12.0), [8.0, 14.0]);
        assert_eq!(Tolerance::Absolute(2.0).widen(0.5, 1.0), [0.0, 3.0]);
        assert_eq!(Tolerance::Absolute(2.0).widen(-1.0, 1.0), [-3.0, 3.0]);
        assert_eq!(Tolerance::Relative(0.1).widen(10.0, 20.0), [9.0, 22.0]);
        assert_eq!(Tolerance::Factor(2.0).widen(10.0, 20.0), [5.0, 40.0]);
        assert_eq!(Tolerance::Factor(2.0).widen(0.0, 3.0), [0.0, 6.0]);
        // Ends given the wrong way round are put in order.
        assert_eq!(Tolerance::Absolute(1.0).widen(5.0, 3.0), [2.0, 6.0]);
    }

    #[test]
    fn the_seed_stream_is_splitmix64() {
        // The reference outputs of SplitMix64 from seed 0 (Vigna's splitmix64.c).
        let mut s = SeedStream::new(0);
        assert_eq!(s.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(s.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert!((0..1000).all(|_| s.below(7) < 7));
    }

    #[test]
    fn fresh_seeds_are_short() {
        let s = fresh_seed();
        assert!((1..=999_999).contains(&s));
    }

    #[test]
    fn trim_drops_trailing_zeros() {
        assert_eq!(trim(16.0), "16");
        assert_eq!(trim(0.25), "0.25");
        assert_eq!(trim(1.23456), "1.235");
        assert_eq!(trim(1234.56), "1235");
        assert_eq!(trim(11.594), "11.6");
    }
}
