//! Text for `syslens learn`: the plan and its questions, the verdicts, the exercise
//! and the progress table. Plain lines (no TUI), wrapped to the width.

use std::io::{self, Write};

use super::{width, wrap, Style};
use crate::commands::learn::{Graded, Plan, ProgressRow};
use crate::learn::{trim, Asked, Exercise, ExerciseOutcome, Given, Verdict};

fn para(out: &mut dyn Write, indent: &str, text: &str) -> io::Result<()> {
    let w = width();
    for line in text.lines() {
        for l in wrap(line, w.saturating_sub(indent.len())) {
            writeln!(out, "{indent}{l}")?;
        }
    }
    Ok(())
}

/// A numbered item: the first line after its number, the others under its text.
fn item(out: &mut dyn Write, n: usize, text: &str) -> io::Result<()> {
    let lead = format!("{n}. ");
    let hang = " ".repeat(lead.len());
    for (i, l) in wrap(text, width().saturating_sub(lead.len()))
        .iter()
        .enumerate()
    {
        writeln!(out, "{}{l}", if i == 0 { &lead } else { &hang })?;
    }
    Ok(())
}

/// How a question's unit reads after "a number".
fn in_unit(unit: &str) -> String {
    match unit {
        "x" => "times (3 for three times as much)".to_owned(),
        "%" => "percent".to_owned(),
        u => u.to_owned(),
    }
}

/// How to ask for the same lesson again.
fn again(plan_concept: &str, seed: Option<u64>) -> String {
    match seed {
        Some(s) => format!("seed {s} (syslens learn {plan_concept} --seed {s} asks the same)"),
        None => "parameters set by hand".to_owned(),
    }
}

/// The lesson's header, setup and parameters.
pub fn plan(out: &mut dyn Write, p: &Plan, style: &Style) -> io::Result<()> {
    writeln!(out, "{}", style.heading(&format!("learn: {}", p.title)))?;
    writeln!(out, "{}", style.dim(&again(p.concept, p.seed)))?;
    writeln!(out)?;
    para(out, "", p.setup)?;
    let params: Vec<String> = p
        .params
        .iter()
        .map(|q| format!("{} {}", q.key, q.shown))
        .collect();
    para(out, "", &format!("Parameters: {}.", params.join(", ")))?;
    writeln!(out)
}

/// One question as asked, numbered.
pub fn question(out: &mut dyn Write, n: usize, q: &Asked) -> io::Result<()> {
    item(out, n, &q.text)?;
    if let Some(options) = q.options {
        for o in options {
            para(out, "   ", &format!("{}) {}", o.id, o.text))?;
        }
    }
    if let (Some(unit), Some(tol)) = (q.unit, &q.tolerance_text) {
        para(
            out,
            "   ",
            &format!(
                "(a number, in {}; right {tol} of what the lab measures)",
                in_unit(unit)
            ),
        )?;
    }
    Ok(())
}

/// Every question, for `--questions`.
pub fn questions(out: &mut dyn Write, p: &Plan, style: &Style) -> io::Result<()> {
    plan(out, p, style)?;
    for (i, q) in p.questions.iter().enumerate() {
        question(out, i + 1, q)?;
    }
    Ok(())
}

/// A number with its unit: `3x`, `48%`, `16 MiB`.
fn with_unit(x: f64, unit: &str) -> String {
    match unit {
        "x" | "%" => format!("{}{unit}", trim(x)),
        "" => trim(x),
        u => format!("{} {u}", trim(x)),
    }
}

fn given(g: &Given, unit: Option<&str>) -> String {
    match g {
        Given::Number(x) => with_unit(*x, unit.unwrap_or("")),
        Given::Choice(c) => c.clone(),
    }
}

fn verdict(out: &mut dyn Write, n: usize, v: &Verdict, style: &Style) -> io::Result<()> {
    let mark = match v.correct {
        Some(true) => style.good("right"),
        Some(false) => style.bad("wrong"),
        None => style.warn("not graded"),
    };
    item(out, n, &v.question)?;
    let answer = v
        .answer
        .as_ref()
        .map_or("(no answer)".to_owned(), |a| given(a, v.unit));
    let measured = match (&v.measured, v.unit) {
        (Some(m), Some(unit)) if m.low != m.high => format!(
            "{} (spread {} to {})",
            with_unit(m.value, unit),
            trim(m.low),
            trim(m.high)
        ),
        (Some(m), Some(unit)) => with_unit(m.value, unit),
        (Some(m), None) => m.option.unwrap_or("?").to_owned(),
        (None, _) => format!(
            "not measured: {}",
            v.unmeasured.as_deref().unwrap_or("no reason given")
        ),
    };
    writeln!(
        out,
        "   {mark}: you said {answer}; the lab measured {measured}"
    )?;
    if let Some([lo, hi]) = v.accepted {
        writeln!(
            out,
            "   {}",
            style.dim(&format!("accepted {} to {}", trim(lo), trim(hi)))
        )?;
    }
    if let Some(m) = &v.measured {
        para(out, "   ", &style.dim(&format!("from {}", m.evidence)))?;
    }
    para(out, "   ", &v.explanation)
}

/// The verdicts of a graded run.
pub fn graded(out: &mut dyn Write, g: &Graded, style: &Style) -> io::Result<()> {
    writeln!(out, "{}", style.heading(&format!("verdicts: {}", g.title)))?;
    for (i, v) in g.verdicts.iter().enumerate() {
        verdict(out, i + 1, v, style)?;
        writeln!(out)?;
    }
    let ungraded = g.asked - g.graded;
    let mut line = format!("{} of {} right", g.right, g.graded);
    if ungraded > 0 {
        line.push_str(&format!("; {ungraded} not graded on this host"));
    }
    writeln!(
        out,
        "{}   {}",
        style.heading(&line),
        style.dim(&again(g.concept, g.seed))
    )?;
    for why in &g.skipped_claims {
        para(
            out,
            "",
            &style.dim(&format!("not checked on this host: {why}")),
        )?;
    }
    if !g.failed_claims.is_empty() {
        para(
            out,
            "",
            &style.warn(&format!(
                "the lab's own claims that failed on this run: {} (syslens lab {} shows why)",
                g.failed_claims.join("; "),
                g.concept
            )),
        )?;
    }
    Ok(())
}

/// The exercise's goal, before a run.
pub fn exercise_goal(
    out: &mut dyn Write,
    concept: &str,
    ex: &Exercise,
    style: &Style,
) -> io::Result<()> {
    writeln!(out, "{}", style.heading(&format!("exercise: {}", ex.goal)))?;
    para(out, "", &format!("Hint: {}", ex.hint))?;
    para(
        out,
        "",
        &format!(
            "Change parameters with --set KEY=VALUE (syslens lab {concept} --params lists them and their ranges), e.g. syslens learn {concept} --exercise --set KEY=VALUE"
        ),
    )
}

/// How an exercise attempt went.
pub fn exercise_outcome(out: &mut dyn Write, o: &ExerciseOutcome, style: &Style) -> io::Result<()> {
    writeln!(out, "{}", style.heading(&format!("exercise: {}", o.goal)))?;
    let mark = match o.reached {
        Some(true) => style.good("flipped"),
        Some(false) => style.bad("not yet"),
        None => style.warn("not measured"),
    };
    writeln!(out, "{mark} with {}: {}", o.sets.join(" "), o.measured)?;
    para(out, "", o.explanation)
}

/// The progress table.
pub fn progress(out: &mut dyn Write, rows: &[ProgressRow], style: &Style) -> io::Result<()> {
    writeln!(
        out,
        "{}",
        style.heading(&format!(
            "{:<20} {:>8} {:>6} {:>6} {:>9} {:>8}",
            "concept", "attempts", "last", "seeds", "mastered", "exercise"
        ))
    )?;
    for r in rows {
        let last = r.last.map_or("-".to_owned(), |[a, b]| format!("{a}/{b}"));
        writeln!(
            out,
            "{:<20} {:>8} {:>6} {:>6} {:>9} {:>8}",
            r.concept,
            r.attempts,
            last,
            r.perfect_seeds,
            if r.mastered { "yes" } else { "no" },
            if r.exercise_solved { "solved" } else { "-" }
        )?;
    }
    let done = rows.iter().filter(|r| r.mastered).count();
    writeln!(
        out,
        "{}",
        style.dim(&format!(
            "{done} of {} mastered (every question right under two seeds)",
            rows.len()
        ))
    )
}
