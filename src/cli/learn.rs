//! `syslens learn`: its flags, the plain prompts on a terminal, the answers file and
//! the state directory.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;

use crate::catalogue::ConceptId;
use crate::commands::learn as lesson;
use crate::commands::Status;
use crate::concepts::{def, ConceptDef};
use crate::lab::{self, params::Setting, LabContext, LabOptions};
use crate::learn::answers::{self, Answers};
use crate::learn::progress::Progress;
use crate::learn::{self as engine, AnswerKind};
use crate::render::{self, Style};

/// `syslens learn`: predict, run, verdict.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples: syslens learn cow; syslens learn cow --questions --seed 7 --json; \
syslens learn cow --answers answers.json --seed 7 --json; syslens learn locking --exercise \
--set race_increments=1000; syslens learn --progress"
)]
pub struct LearnArgs {
    /// The concept id; without it, the next concept not yet mastered, in catalogue order.
    pub id: Option<String>,
    /// Draw the lab's parameters (and so the questions) from this seed; without it a
    /// fresh one is drawn and printed, so that it can be shared.
    #[arg(long, value_name = "N", conflicts_with = "exercise")]
    pub seed: Option<u64>,
    /// Print the questions and run nothing (with --json: id, text, kind, unit,
    /// tolerance, options).
    #[arg(long, conflicts_with_all = ["answers", "exercise", "progress"])]
    pub questions: bool,
    /// Grade the answers in FILE (a JSON object from question id to a number or an
    /// option id) against a run of the lab; exit 0 whatever the grades, 2 for a bad file.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["exercise", "progress"])]
    pub answers: Option<PathBuf>,
    /// The break-it exercise: change parameters with --set so that a verdict flips.
    #[arg(long, conflicts_with = "progress")]
    pub exercise: bool,
    /// Attempts and results per concept; a concept is mastered when its questions were
    /// answered right under two seeds.
    #[arg(long)]
    pub progress: bool,
    /// Set a lab parameter (repeatable; syslens lab ID --params lists them).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Smaller sizes and fewer trials.
    #[arg(long)]
    pub quick: bool,
    /// Where progress is kept [default: the recorder's store directory if there is
    /// one, else $XDG_STATE_HOME/syslens].
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
}

/// The directory progress is kept in: the recorder's store if it exists, else the
/// user's state directory.
fn state_dir(given: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = given {
        return dir;
    }
    let store = crate::record::default_store();
    if store.is_dir() {
        return store;
    }
    match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("syslens"),
        None => std::env::var_os("HOME")
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
            .join(".local/state/syslens"),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs `syslens learn`.
pub fn learn_cmd(
    out: &mut dyn Write,
    err: &mut dyn Write,
    json: bool,
    style: &Style,
    a: LearnArgs,
) -> io::Result<Status> {
    let dir = state_dir(a.state.clone());
    let progress = match Progress::load(&dir) {
        Ok(p) => p,
        Err(e) => {
            writeln!(err, "syslens learn: {e}")?;
            return Ok(Status::Usage);
        }
    };
    if a.progress {
        let rows = lesson::progress_rows(&progress);
        if json {
            render::json(out, &rows)?;
        } else {
            render::learn::progress(out, &rows, style)?;
        }
        return Ok(Status::Ok);
    }
    if json && !(a.questions || a.answers.is_some() || a.exercise) {
        writeln!(
            err,
            "syslens learn: --json needs --questions, --answers FILE, --exercise or --progress (the prompts are for a person)"
        )?;
        return Ok(Status::Usage);
    }
    let concept: &'static ConceptDef = match &a.id {
        Some(id) => match ConceptId::lookup(id) {
            Ok(id) => def(id),
            Err(unknown) => {
                writeln!(err, "syslens: {unknown}")?;
                return Ok(Status::Usage);
            }
        },
        None => match lesson::next_unmastered(&progress) {
            Some(c) => c,
            None => {
                writeln!(
                    out,
                    "Every concept is mastered. syslens learn CONCEPT --seed N asks one again."
                )?;
                return Ok(Status::Ok);
            }
        },
    };
    let sets = match a
        .set
        .iter()
        .map(|s| Setting::parse(s))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(s) => s,
        Err(e) => {
            writeln!(err, "syslens learn: {e}")?;
            return Ok(Status::Usage);
        }
    };
    let mut ctx = LabContext::new(LabOptions {
        quick: a.quick,
        sets: sets.clone(),
        allow_swapfile: false,
    })?;
    let limits = ctx.limits();
    if a.exercise {
        return exercise(
            out, err, json, style, concept, &mut ctx, &sets, &dir, progress,
        );
    }
    let seed = a.seed.unwrap_or_else(engine::fresh_seed);
    let (plan, params) = match lesson::plan(concept, Some(seed), a.quick, &sets, &limits) {
        Ok(p) => p,
        Err(e) => {
            writeln!(err, "syslens learn: {e}")?;
            return Ok(Status::Usage);
        }
    };
    if a.questions {
        if json {
            render::json(out, &plan)?;
        } else {
            render::learn::questions(out, &plan, style)?;
        }
        return Ok(Status::Ok);
    }
    let given = match &a.answers {
        Some(path) => match read_answers(path, concept) {
            Ok(given) => given,
            Err(why) => {
                writeln!(err, "syslens learn: {}: {why}", path.display())?;
                return Ok(Status::Usage);
            }
        },
        None => {
            render::learn::plan(out, &plan, style)?;
            prompt_all(out, &plan)?
        }
    };
    if !json {
        writeln!(
            out,
            "{}",
            style.dim(&format!("running the {} lab...", concept.id.slug()))
        )?;
        out.flush()?;
    }
    let Some(report) = lesson::run_lab(concept, &mut ctx, params.clone()) else {
        return interrupted(err);
    };
    let graded = lesson::grade(concept, &plan, &params, &report, &given);
    let mut progress = progress;
    progress.record(concept.id.slug(), lesson::attempt(&graded, now()));
    if json {
        render::json(out, &graded)?;
    } else {
        writeln!(out)?;
        render::learn::graded(out, &graded, style)?;
    }
    save(err, &progress, &dir)?;
    Ok(Status::Ok)
}

fn interrupted(err: &mut dyn Write) -> io::Result<Status> {
    let sig = lab::cleanup::interrupted().unwrap_or(libc::SIGINT);
    let name = syslens_probe::names::signal_name(sig as u32);
    writeln!(
        err,
        "syslens: interrupted by {name}; what the lab made was removed"
    )?;
    Ok(Status::Signal(sig))
}

fn save(err: &mut dyn Write, progress: &Progress, dir: &Path) -> io::Result<()> {
    if let Err(e) = progress.save(dir) {
        writeln!(err, "syslens learn: progress not saved: {e}")?;
    }
    Ok(())
}

/// Reads an answers file: at most 1 MiB of JSON.
fn read_answers(path: &Path, c: &'static ConceptDef) -> Result<Answers, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    f.take((1 << 20) + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() > 1 << 20 {
        return Err("larger than 1 MiB".into());
    }
    answers::parse(&text, c.lesson).map_err(|e| e.to_string())
}

/// Asks every question on the terminal, before the lab runs: an empty line skips one;
/// end of input leaves the rest unanswered.
fn prompt_all(out: &mut dyn Write, plan: &lesson::Plan) -> io::Result<Answers> {
    let mut given = Answers::new();
    let stdin = io::stdin();
    let mut lines = stdin.lock();
    let mut line = String::new();
    let typed = io::stdin().is_terminal();
    'questions: for (i, q) in plan.questions.iter().enumerate() {
        render::learn::question(out, i + 1, q)?;
        let kind = match (q.kind, q.unit, q.tolerance, q.options) {
            ("number", Some(unit), Some(tolerance), _) => AnswerKind::Number { unit, tolerance },
            (_, _, _, Some(options)) => AnswerKind::Choice(options),
            _ => continue,
        };
        for _ in 0..3 {
            write!(out, "   your answer: ")?;
            out.flush()?;
            line.clear();
            // A line is at most 4 KiB: anything longer is not an answer.
            if io::Read::take(&mut lines, 4096).read_line(&mut line)? == 0 {
                writeln!(out)?;
                break 'questions;
            }
            if !typed {
                // Piped answers are not echoed by a terminal: show what was read.
                writeln!(out, "{}", line.trim())?;
            }
            match answers::parse_typed(kind, &line) {
                Ok(Some(a)) => {
                    given.insert(q.id, a);
                    break;
                }
                Ok(None) => break,
                Err(why) => writeln!(out, "   {why}")?,
            }
        }
    }
    Ok(given)
}

#[allow(clippy::too_many_arguments)]
fn exercise(
    out: &mut dyn Write,
    err: &mut dyn Write,
    json: bool,
    style: &Style,
    c: &'static ConceptDef,
    ctx: &mut LabContext,
    sets: &[Setting],
    dir: &Path,
    mut progress: Progress,
) -> io::Result<Status> {
    let ex = &c.lesson.exercise;
    if sets.is_empty() {
        if json {
            render::json(
                out,
                &serde_json::json!({"concept": c.id.slug(), "goal": ex.goal, "hint": ex.hint}),
            )?;
        } else {
            render::learn::exercise_goal(out, c.id.slug(), ex, style)?;
        }
        return Ok(Status::Ok);
    }
    let params = match ctx.resolve(c.lab) {
        Ok(p) => p,
        Err(e) => {
            writeln!(err, "syslens learn: {e}")?;
            return Ok(Status::Usage);
        }
    };
    if !json {
        writeln!(out, "{}", style.heading(&format!("exercise: {}", ex.goal)))?;
        writeln!(
            out,
            "{}",
            style.dim(&format!("running the {} lab...", c.id.slug()))
        )?;
        out.flush()?;
    }
    let Some(report) = lesson::run_lab(c, ctx, params) else {
        return interrupted(err);
    };
    let outcome = lesson::exercise(c, &report, sets);
    if outcome.reached == Some(true) {
        progress
            .concepts
            .entry(c.id.slug().to_owned())
            .or_default()
            .exercise_solved = true;
        save(err, &progress, dir)?;
    }
    if json {
        render::json(out, &outcome)?;
    } else {
        render::learn::exercise_outcome(out, &outcome, style)?;
    }
    Ok(Status::Ok)
}
