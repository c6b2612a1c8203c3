//! Text for `syslens learn`: the plan and its questions, the verdicts, the exercise
//! and the progress table. Plain lines (no TUI), wrapped to the width.

use std::io::{self, Write};

use super::{display_width, plain, width, wrap, wrap_hanging, Style};
use crate::commands::learn::{Graded, Plan, ProgressRow};
use crate::learn::{trim, Asked, Exercise, ExerciseOutcome, Given, Verdict};

/// `text` wrapped to the width after `indent`, each line styled by `paint` once
/// wrapped (a painted text would be wrapped with its escapes shown, `\x1b[2m`).
fn para(
    out: &mut dyn Write,
    indent: &str,
    text: &str,
    paint: impl Fn(&str) -> String,
) -> io::Result<()> {
    let w = width();
    for line in text.lines() {
        for l in wrap(line, w.saturating_sub(display_width(indent))) {
            writeln!(out, "{indent}{}", paint(&l))?;
        }
    }
    Ok(())
}

/// `mark` (`plain_mark` painted by `paint`) then `sep` and `text`, wrapped to the width
/// after `lead`; the text's further lines two columns deeper than `lead`.
fn marked(
    out: &mut dyn Write,
    lead: &str,
    plain_mark: &str,
    paint: impl Fn(&str) -> String,
    sep: &str,
    text: &str,
) -> io::Result<()> {
    let w = width();
    let hang = format!("{lead}  ");
    let first = w.saturating_sub(display_width(lead) + display_width(plain_mark) + sep.len());
    let lines = wrap_hanging(text, first, w.saturating_sub(hang.len()));
    let mark = paint(plain_mark);
    match lines.split_first() {
        None => writeln!(out, "{lead}{mark}")?,
        Some((head, rest)) => {
            writeln!(out, "{lead}{mark}{sep}{head}")?;
            for l in rest {
                writeln!(out, "{hang}{l}")?;
            }
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
    para(out, "", &format!("learn: {}", p.title), |l| {
        style.heading(l)
    })?;
    para(out, "", &again(p.concept, p.seed), |l| style.dim(l))?;
    writeln!(out)?;
    para(out, "", p.setup, plain)?;
    let params: Vec<String> = p
        .params
        .iter()
        .map(|q| format!("{} {}", q.key, q.shown))
        .collect();
    para(
        out,
        "",
        &format!("Parameters: {}.", params.join(", ")),
        plain,
    )?;
    writeln!(out)
}

/// One question as asked, numbered.
pub fn question(out: &mut dyn Write, n: usize, q: &Asked) -> io::Result<()> {
    item(out, n, &q.text)?;
    if let Some(options) = q.options {
        for o in options {
            para(out, "   ", &format!("{}) {}", o.id, o.text), plain)?;
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
            plain,
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
    let said = format!("you said {answer}; the lab measured {measured}");
    match v.correct {
        Some(true) => marked(out, "   ", "right", |l| style.good(l), ": ", &said)?,
        Some(false) => marked(out, "   ", "wrong", |l| style.bad(l), ": ", &said)?,
        None => marked(out, "   ", "not graded", |l| style.warn(l), ": ", &said)?,
    }
    if let Some([lo, hi]) = v.accepted {
        writeln!(
            out,
            "   {}",
            style.dim(&format!("accepted {} to {}", trim(lo), trim(hi)))
        )?;
    }
    if let Some(m) = &v.measured {
        para(out, "   ", &format!("from {}", m.evidence), |l| {
            style.dim(l)
        })?;
    }
    para(out, "   ", &v.explanation, plain)
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
    let again = again(g.concept, g.seed);
    if display_width(&line) + 3 + display_width(&again) <= width() {
        writeln!(out, "{}   {}", style.heading(&line), style.dim(&again))?;
    } else {
        // Too long for one line: how to ask again goes below.
        writeln!(out, "{}", style.heading(&line))?;
        para(out, "", &again, |l| style.dim(l))?;
    }
    for why in &g.skipped_claims {
        let why = format!("not checked on this host: {why}");
        para(out, "", &why, |l| style.dim(l))?;
    }
    if !g.failed_claims.is_empty() {
        let failed = format!(
            "the lab's own claims that failed on this run: {} (syslens lab {} shows why)",
            g.failed_claims.join("; "),
            g.concept
        );
        para(out, "", &failed, |l| style.warn(l))?;
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
    para(out, "", &format!("exercise: {}", ex.goal), |l| {
        style.heading(l)
    })?;
    para(out, "", &format!("Hint: {}", ex.hint), plain)?;
    para(
        out,
        "",
        &format!(
            "Change parameters with --set KEY=VALUE (syslens lab {concept} --params lists them and their ranges), e.g. syslens learn {concept} --exercise --set KEY=VALUE"
        ),
        plain,
    )
}

/// How an exercise attempt went.
pub fn exercise_outcome(out: &mut dyn Write, o: &ExerciseOutcome, style: &Style) -> io::Result<()> {
    para(out, "", &format!("exercise: {}", o.goal), |l| {
        style.heading(l)
    })?;
    let with = format!("with {}: {}", o.sets.join(" "), o.measured);
    match o.reached {
        Some(true) => marked(out, "", "flipped", |l| style.good(l), " ", &with)?,
        Some(false) => marked(out, "", "not yet", |l| style.bad(l), " ", &with)?,
        None => marked(out, "", "not measured", |l| style.warn(l), " ", &with)?,
    }
    para(out, "", o.explanation, plain)
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
