//! `syslens tour`: every lab in catalogue order, a one-screen summary, and the HTML
//! report. The main job: `syslens` with no arguments runs it.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};

use crate::commands::learn;
use crate::commands::Status;
use crate::concepts::REGISTRY;
use crate::lab::{self, cleanup, LabContext, LabDef, LabOptions};
use crate::render::{self, Style};

/// How the tour runs.
#[derive(Debug, Clone)]
pub struct TourOptions {
    /// Smaller sizes and fewer trials (about a third of the time).
    pub quick: bool,
    /// Where to write the HTML report.
    pub html: PathBuf,
    /// Let the swap-oom lab add a temporary swap file (root; removed afterwards).
    pub allow_swapfile: bool,
    /// Print the lessons' questions for the tour's parameters and run nothing.
    pub questions: bool,
    /// Predictions to grade beside the outcomes (`--answers FILE`).
    pub answers: Option<PathBuf>,
}

impl Default for TourOptions {
    fn default() -> Self {
        TourOptions {
            quick: false,
            html: PathBuf::from("syslens-report.html"),
            allow_swapfile: false,
            questions: false,
            answers: None,
        }
    }
}

/// What the tour will do to this machine, said before it starts.
pub fn plan(a: &TourOptions) -> Vec<String> {
    let big = if a.quick { 128 } else { 256 };
    let mut p = vec![
        format!("allocate up to {big} MiB at a time in child processes, each inside a memory cgroup of its own limited to about twice that (an RLIMIT_AS cap where no cgroup can be made)"),
        format!("write up to {big} MiB of files in a syslens-lab-PID-N directory on a disk file system and on tmpfs, and evict its own files from the page cache (POSIX_FADV_DONTNEED)"),
        "fork and exec short-lived children; pin some to CPUs, raise their nice value, lower their own rlimits".into(),
        "kill its own children (SIGTERM, SIGKILL) and trigger the OOM killer inside its own 64 MiB cgroup".into(),
        "as root, make namespaces and cpu / pids cgroups of its own; no other cgroup is touched".into(),
    ];
    p.push(if a.allow_swapfile {
        "add a temporary 256 MiB swap file (--allow-swapfile), removed with swapoff afterwards".into()
    } else {
        "add no swap (the swap claims are skipped without swap; --allow-swapfile adds a temporary file)".into()
    });
    p
}

/// "2026-11-27 00:53 UTC" from the system clock.
pub fn utc_now() -> String {
    let (y, m, d, rem) = crate::model::units::utc_civil(SystemTime::now());
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Runs every lab, prints the summary and writes the HTML report. The report's path is
/// opened before the first lab, so an unwritable one fails at once, naming it.
pub fn run(
    out: &mut dyn Write,
    err: &mut dyn Write,
    json: bool,
    style: &Style,
    a: TourOptions,
) -> io::Result<Status> {
    let opts = LabOptions {
        quick: a.quick,
        sets: Vec::new(),
        allow_swapfile: a.allow_swapfile,
    };
    let mut ctx = LabContext::new(opts)?;
    let limits = ctx.limits();
    if a.questions {
        let plans: Vec<learn::Plan> = REGISTRY
            .iter()
            .filter_map(|c| learn::plan(c, None, a.quick, &[], &limits).ok())
            .map(|(p, _)| p)
            .collect();
        if json {
            render::json(out, &plans)?;
        } else {
            for p in &plans {
                render::learn::questions(out, p, style)?;
                writeln!(out)?;
            }
        }
        return Ok(Status::Ok);
    }
    let predictions = match &a.answers {
        None => Vec::new(),
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| learn::tour_answers(&t).map_err(|e| e.to_string()))
        {
            Ok(p) => p,
            Err(why) => {
                writeln!(err, "syslens tour: {}: {why}", path.display())?;
                return Ok(Status::Usage);
            }
        },
    };
    let mut html_file = match std::fs::File::create(&a.html) {
        Ok(f) => f,
        Err(e) => {
            writeln!(
                err,
                "syslens: cannot write the report {}: {e}",
                a.html.display()
            )?;
            return Ok(Status::Usage);
        }
    };
    // Chatter goes to stderr when stdout carries JSON.
    let chatter: &mut dyn Write = if json { err } else { out };
    writeln!(
        chatter,
        "{}",
        style.heading("syslens tour: every lab on this kernel, then an HTML report")
    )?;
    writeln!(
        chatter,
        "What it will do (all of it contained, all of it undone):"
    )?;
    let width = render::width();
    for line in plan(&a) {
        render::write_wrapped(chatter, &line, width, "  - ", "    ", render::plain)?;
    }
    let stops = "Ctrl-C stops cleanly: what the labs made is removed and the report of what finished is written.";
    render::write_wrapped(chatter, stops, width, "", "", |l| style.dim(l))?;
    let _reaper = lab::Reaper::start();
    let defs: Vec<&LabDef> = REGISTRY.iter().map(|c| c.lab).collect();
    let bar = (!json && io::stdout().is_terminal()).then(|| {
        let b = ProgressBar::new(defs.len() as u64);
        b.set_style(
            ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.enable_steady_tick(Duration::from_millis(120));
        b
    });
    let started = Instant::now();
    let mut reports = Vec::new();
    let mut graded = Vec::new();
    for (i, def) in defs.iter().enumerate() {
        if cleanup::interrupted().is_some() {
            break;
        }
        let next = defs
            .get(i + 1)
            .map_or("the report".to_owned(), |d| d.id.slug().to_owned());
        let msg = format!("{} · next: {next}", def.id.slug());
        match &bar {
            Some(b) => b.set_message(msg),
            None => writeln!(chatter, "[{:>2}/{}] {}", i + 1, defs.len(), def.id.slug())?,
        }
        let t = Instant::now();
        let report = lab::run(def, &mut ctx);
        if cleanup::interrupted().is_some() {
            break;
        }
        let (verdict, _) = render::html::verdict(Some(&report));
        match &bar {
            Some(b) => {
                b.println(format!(
                    "  {:<20} {verdict} ({:.1} s)",
                    def.id.slug(),
                    t.elapsed().as_secs_f64()
                ));
                b.inc(1);
            }
            None => writeln!(
                chatter,
                "        {verdict} ({:.1} s)",
                t.elapsed().as_secs_f64()
            )?,
        }
        if let Some((c, given)) = predictions.iter().find(|(c, _)| c.lab.id == def.id) {
            if let Ok((plan, params)) = learn::plan(c, None, a.quick, &[], &limits) {
                graded.push(learn::grade(c, &plan, &params, &report, given));
            }
        }
        reports.push(report);
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let interrupted = cleanup::interrupted().map(|sig| {
        format!(
            "stopped by {}",
            syslens_probe::names::signal_name(sig as u32)
        )
    });
    writeln!(
        chatter,
        "\n{}",
        style.heading(&format!(
            "Summary ({:.0} s)",
            started.elapsed().as_secs_f64()
        ))
    )?;
    if let Some(c) = reports.iter().find_map(|r| r.calibration.as_ref()) {
        for l in render::wrap(&c.summary(), width.saturating_sub(2)) {
            writeln!(chatter, "  {}", style.dim(&l))?;
        }
    }
    for c in REGISTRY.iter() {
        let r = reports.iter().find(|r| r.concept == c.id);
        let (verdict, class) = render::html::verdict(r);
        let painted = match class {
            "pass" => style.good(&format!("{verdict:<18}")),
            "fail" => style.bad(&format!("{verdict:<18}")),
            _ => style.warn(&format!("{verdict:<18}")),
        };
        let head = r.map_or_else(String::new, |r| c.lab.headline_of(r));
        // The headline wraps in the room after the id and the verdict (42 columns).
        let lines = render::wrap(&head, width.saturating_sub(42));
        let first = lines.first().map_or("", String::as_str);
        let line = format!("  {:<20} {painted} {first}", c.id.slug());
        writeln!(chatter, "{}", line.trim_end())?;
        for l in lines.iter().skip(1) {
            writeln!(chatter, "{:42}{l}", "")?;
        }
    }
    if !graded.is_empty() {
        let right: usize = graded.iter().map(|g| g.right).sum();
        let asked: usize = graded.iter().map(|g| g.graded).sum();
        writeln!(
            chatter,
            "  {}",
            style.heading(&format!(
                "predictions: {right} of {asked} right (in the report)"
            ))
        )?;
    }
    let html = render::html::report(
        &ctx.host,
        &reports,
        &graded,
        &utc_now(),
        interrupted.as_deref(),
    );
    io::Write::write_all(&mut html_file, html.as_bytes())
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", a.html.display())))?;
    writeln!(chatter, "\nReport: {}", a.html.display())?;
    if json {
        render::json(out, &reports)?;
    }
    if let Some(sig) = cleanup::interrupted() {
        return Ok(Status::Signal(sig));
    }
    Ok(if reports.iter().any(|r| r.failed()) {
        Status::Failed
    } else {
        Status::Ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_says_what_is_killed_and_allocated() {
        let p = plan(&TourOptions::default()).join("\n");
        assert!(p.contains("256 MiB") && p.contains("kill") && p.contains("memory cgroup"));
        assert!(plan(&TourOptions {
            allow_swapfile: true,
            ..TourOptions::default()
        })
        .iter()
        .any(|l| l.contains("swap file")));
    }

    #[test]
    fn utc_date_is_well_formed() {
        let d = utc_now();
        assert_eq!(d.len(), "2026-11-27 00:53 UTC".len());
        assert!(d.ends_with(" UTC") && d.starts_with("20"));
    }
}
