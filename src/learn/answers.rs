//! Answers files (`syslens learn CONCEPT --answers FILE`, `syslens tour --answers FILE`):
//! a JSON object from question id to answer (a number, or an option's id), or for the
//! tour one such object per concept id. Every error names what is wrong and where.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value as Json;

use super::{AnswerKind, Given, Lesson};

/// The answers given, by question id.
pub type Answers = BTreeMap<&'static str, Given>;

/// Why an answers file cannot be used (exit status 2).
#[derive(Debug, Clone, PartialEq)]
pub enum AnswersError {
    /// Not JSON.
    NotJson(String),
    /// JSON, but not an object from ids to answers.
    NotAnObject(&'static str),
    /// A question id the lesson does not ask.
    UnknownQuestion {
        /// The id given.
        id: String,
        /// The ids the lesson asks.
        known: Vec<&'static str>,
    },
    /// A number question answered with something else, or a choice with a non-string.
    WrongType {
        /// The question.
        id: &'static str,
        /// What it takes.
        wanted: &'static str,
    },
    /// A choice answered with an option it does not have.
    NotAnOption {
        /// The question.
        id: &'static str,
        /// What was given.
        given: String,
        /// The option ids.
        options: Vec<&'static str>,
    },
    /// A concept id the tour does not know (tour answers files).
    UnknownConcept(String),
}

impl fmt::Display for AnswersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnswersError::NotJson(e) => write!(f, "not JSON: {e}"),
            AnswersError::NotAnObject(what) => write!(f, "expected {what}"),
            AnswersError::UnknownQuestion { id, known } => write!(
                f,
                "no question {id:?} in this lesson (its questions: {})",
                known.join(", ")
            ),
            AnswersError::WrongType { id, wanted } => write!(f, "{id}: expected {wanted}"),
            AnswersError::NotAnOption { id, given, options } => write!(
                f,
                "{id}: {given:?} is not one of its options ({})",
                options.join(", ")
            ),
            AnswersError::UnknownConcept(c) => write!(f, "no concept {c:?}"),
        }
    }
}

impl std::error::Error for AnswersError {}

/// Reads one lesson's answers from `text`.
pub fn parse(text: &str, lesson: &Lesson) -> Result<Answers, AnswersError> {
    let json: Json =
        serde_json::from_str(text).map_err(|e| AnswersError::NotJson(e.to_string()))?;
    of_object(&json, lesson)
}

/// Reads one lesson's answers from a parsed object.
pub fn of_object(json: &Json, lesson: &Lesson) -> Result<Answers, AnswersError> {
    let obj = json.as_object().ok_or(AnswersError::NotAnObject(
        "an object from question id to answer, e.g. {\"rss_read\": 0, \"victim\": \"b\"}",
    ))?;
    let mut out = Answers::new();
    for (id, given) in obj {
        let q = lesson
            .questions
            .iter()
            .find(|q| q.id == id)
            .ok_or_else(|| AnswersError::UnknownQuestion {
                id: id.clone(),
                known: lesson.questions.iter().map(|q| q.id).collect(),
            })?;
        let answer = match q.answer {
            AnswerKind::Number { .. } => given
                .as_f64()
                .filter(|x| x.is_finite())
                .map(Given::Number)
                .ok_or(AnswersError::WrongType {
                    id: q.id,
                    wanted: "a number",
                })?,
            AnswerKind::Choice(options) => {
                let given = given.as_str().ok_or(AnswersError::WrongType {
                    id: q.id,
                    wanted: "an option id (a string)",
                })?;
                let option = options
                    .iter()
                    .find(|o| o.id.eq_ignore_ascii_case(given.trim()))
                    .ok_or_else(|| AnswersError::NotAnOption {
                        id: q.id,
                        given: given.to_owned(),
                        options: options.iter().map(|o| o.id).collect(),
                    })?;
                Given::Choice(option.id.to_owned())
            }
        };
        out.insert(q.id, answer);
    }
    Ok(out)
}

/// One answer typed at the prompt, for `q`'s kind: Ok(None) for an empty line (skipped).
pub fn parse_typed(kind: AnswerKind, line: &str) -> Result<Option<Given>, String> {
    let t = line.trim();
    if t.is_empty() {
        return Ok(None);
    }
    match kind {
        AnswerKind::Number { unit, .. } => {
            // A trailing unit or % typed out of habit is allowed.
            let bare = t
                .trim_end_matches(unit)
                .trim_end_matches('%')
                .trim()
                .replace('_', "");
            bare.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(|x| Some(Given::Number(x)))
                .ok_or_else(|| format!("a number in {unit} is expected"))
        }
        AnswerKind::Choice(options) => options
            .iter()
            .find(|o| o.id.eq_ignore_ascii_case(t))
            .map(|o| Some(Given::Choice(o.id.to_owned())))
            .ok_or_else(|| {
                let ids: Vec<&str> = options.iter().map(|o| o.id).collect();
                format!("one of {} is expected", ids.join(", "))
            }),
    }
}
