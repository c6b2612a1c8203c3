//! `syslens report --store`: a recorded window as one self-contained page (inline CSS
//! and SVG, no script, no network, as the tour report): the host's memory and
//! pressure, fault and switch rates, the largest processes' RSS and HWM, the events
//! marked on a timeline, and the doctor over the window; or a short text summary.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::commands::past::{WindowEvent, WindowReport};
use crate::lab::report::Series;
use crate::model::units::bytes;
use crate::render::html::{chart, esc, CSS};

/// The timeline's width and margins: those of a chart's plot area, so its marks line
/// up with the charts above and below it.
const W: f64 = 640.0;
const ML: f64 = 70.0;
const MR: f64 = 16.0;

/// The marked events on a strip as wide as a chart's plot area, from 0 to `seconds`,
/// each numbered as in the table of events.
fn timeline(seconds: f64, marked: &[(usize, &WindowEvent)]) -> String {
    let h = 64.0;
    let span = if seconds > 0.0 { seconds } else { 1.0 };
    let px = |t: f64| ML + t.clamp(0.0, span) / span * (W - ML - MR);
    let mut svg = format!(
        r#"<svg class="plot" viewBox="0 0 {W} {h}" width="100%" role="img" aria-label="events on the timeline" xmlns="http://www.w3.org/2000/svg"><line x1="{ML}" x2="{}" y1="40" y2="40" class="axisline"/><text x="{ML}" y="58" class="tick">0 s</text><text x="{}" y="58" text-anchor="end" class="tick">{seconds:.0} s</text>"#,
        W - MR,
        W - MR
    );
    for (n, e) in marked {
        let x = px(e.seconds);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="14" y2="44" stroke="#dc2626" stroke-width="2"/><text x="{x:.1}" y="11" text-anchor="middle" class="legend">{n}</text>"##
        );
    }
    svg.push_str("</svg>");
    svg
}

fn refs(s: &[Series]) -> Vec<&Series> {
    s.iter().collect()
}

/// One figure: a heading, a chart, a line saying what it is.
fn figure(h: &mut String, title: &str, series: &[&Series], note: &str) {
    let _ = write!(
        h,
        "<h3>{}</h3>{}<p class=\"note\">{}</p>",
        esc(title),
        chart(series),
        esc(note)
    );
}

/// The page.
pub fn html(r: &WindowReport) -> String {
    let mut h = String::new();
    let _ = write!(h, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>syslens window {}</title><style>{CSS}</style></head><body><main>", esc(&r.first));
    let _ = write!(
        h,
        "<h1>syslens: the recorded window</h1><p class=\"host\">{} to {} · {} samples over {:.0} s",
        esc(&r.first),
        esc(&r.last),
        r.note.samples,
        r.seconds
    );
    if r.plotted_every > 1 {
        let _ = write!(h, " · one sample in {} plotted", r.plotted_every);
    }
    h.push_str("</p>");
    if let Some(why) = &r.note.reboot {
        let _ = write!(h, "<p class=\"b skip\">{}</p>", esc(why));
    }
    let marked: Vec<(usize, &WindowEvent)> = r
        .events
        .iter()
        .filter(|e| e.mark.is_some())
        .enumerate()
        .map(|(i, e)| (i + 1, e))
        .collect();
    h.push_str("<h2>Events on the timeline</h2>");
    h.push_str(&timeline(r.seconds, &marked));
    if marked.is_empty() {
        h.push_str("<p class=\"note\">No OOM kill or death by a signal in the window.</p>");
    }
    h.push_str("<h2>The host</h2>");
    figure(
        &mut h,
        "Memory",
        &refs(&r.memory),
        "used = MemTotal − MemAvailable; available and cached as /proc/meminfo says",
    );
    figure(
        &mut h,
        "Pressure (PSI)",
        &refs(&r.pressure),
        "some avg10: the share of the last 10 s in which at least one task stalled",
    );
    let (faults, switches) = r.rates.split_at(2.min(r.rates.len()));
    figure(
        &mut h,
        "Page faults",
        &refs(faults),
        "from /proc/vmstat, over the interval before each sample",
    );
    figure(
        &mut h,
        "Context switches",
        &refs(switches),
        "from /proc/stat ctxt, over the interval before each sample",
    );
    h.push_str("<h2>The largest processes</h2>");
    if r.processes.is_empty() {
        h.push_str("<p class=\"note\">No process with a readable RSS in the window.</p>");
    } else {
        h.push_str("<div class=\"scroll\"><table><tr><th>process</th><th class=\"num\">peak RSS</th><th class=\"num\">peak HWM</th></tr>");
        for p in &r.processes {
            let _ = write!(
                h,
                "<tr><td><a href=\"#pid-{}\">pid {} ({})</a></td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                p.pid,
                p.pid,
                esc(&p.comm),
                bytes(p.peak_rss_bytes as f64),
                bytes(p.peak_hwm_bytes as f64)
            );
        }
        h.push_str("</table></div>");
        for p in &r.processes {
            let _ = write!(h, "<section id=\"pid-{}\">", p.pid);
            figure(
                &mut h,
                &format!("pid {} ({})", p.pid, p.comm),
                &[&p.rss, &p.hwm],
                &format!(
                    "peak RSS {}, peak HWM {} (VmHWM: the most it ever held)",
                    bytes(p.peak_rss_bytes as f64),
                    bytes(p.peak_hwm_bytes as f64)
                ),
            );
            h.push_str("</section>");
        }
    }
    h.push_str("<h2>Events</h2>");
    if r.events.is_empty() {
        h.push_str("<p class=\"note\">No event recorded in the window.</p>");
    } else {
        h.push_str("<div class=\"scroll\"><table><tr><th>#</th><th>time</th><th>kind</th><th>what</th></tr>");
        let mut n = 0;
        for e in &r.events {
            let num = if e.mark.is_some() {
                n += 1;
                n.to_string()
            } else {
                String::new()
            };
            let _ = write!(
                h,
                "<tr><td>{num}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.time),
                esc(&e.kind),
                esc(&e.line)
            );
        }
        h.push_str("</table></div>");
    }
    let _ = write!(
        h,
        "<h2>The doctor over the window</h2><p class=\"note\">{} processes over {:.0} s</p>",
        r.doctor.processes, r.doctor.window_seconds
    );
    if r.doctor.findings.is_empty() {
        h.push_str("<p>No findings.</p>");
    }
    for f in &r.doctor.findings {
        let _ = write!(
            h,
            "<h3><span class=\"b {}\">{}</span> {} · {} <code>{}</code></h3><p>{}</p><p class=\"note\">{}</p>",
            if f.severity >= crate::model::doctor::Severity::Warning { "fail" } else { "skip" },
            f.severity.name(),
            esc(f.concept.slug()),
            esc(&f.subject),
            esc(f.rule),
            esc(&f.message),
            esc(&f.advice)
        );
    }
    h.push_str("</main></body></html>\n");
    h
}

/// The largest and smallest value of a series.
fn range(s: &Series) -> Option<(f64, f64)> {
    s.points
        .iter()
        .map(|p| p[1])
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((a, b)) => Some((a.min(v), b.max(v))),
        })
}

/// The window in a few lines, for the terminal, each wrapped to its width.
pub fn text(out: &mut dyn Write, r: &WindowReport) -> io::Result<()> {
    let width = crate::render::width();
    // `text` from `indent` on, its continuation lines 2 columns further in.
    let put = |out: &mut dyn Write, indent: usize, text: &str| -> io::Result<()> {
        let (first, rest) = (" ".repeat(indent), " ".repeat(indent + 2));
        let room = |i: usize| width.saturating_sub(i).max(1);
        let lines = crate::render::wrap_hanging(text, room(indent), room(indent + 2));
        for (i, line) in lines.iter().enumerate() {
            writeln!(out, "{}{line}", if i == 0 { &first } else { &rest })?;
        }
        Ok(())
    };
    put(
        out,
        0,
        &format!(
            "recorded window {} to {}: {} samples over {:.0} s",
            r.first, r.last, r.note.samples, r.seconds
        ),
    )?;
    if let Some(why) = &r.note.reboot {
        put(out, 0, why)?;
    }
    for s in r.memory.iter().chain(&r.pressure).chain(&r.rates) {
        match range(s) {
            Some((lo, hi)) => writeln!(out, "  {:<22} {lo:>10.1} to {hi:.1} {}", s.name, s.y)?,
            None => writeln!(out, "  {:<22} not recorded", s.name)?,
        }
    }
    writeln!(out, "largest processes (peak RSS, peak HWM):")?;
    for p in &r.processes {
        writeln!(
            out,
            "  {:>7} {:<16} {:>10} {:>10}",
            p.pid,
            crate::render::safe::clean(&p.comm),
            bytes(p.peak_rss_bytes as f64),
            bytes(p.peak_hwm_bytes as f64)
        )?;
    }
    let marked: Vec<&WindowEvent> = r.events.iter().filter(|e| e.mark.is_some()).collect();
    put(
        out,
        0,
        &format!(
            "{} events, {} of them OOM kills or deaths by a signal{}",
            r.events.len(),
            marked.len(),
            if marked.is_empty() { "" } else { ":" }
        ),
    )?;
    for e in marked {
        put(out, 2, &format!("{} {}", e.time, e.line))?;
    }
    put(
        out,
        0,
        &format!(
            "{} doctor finding(s) over the window (syslens doctor --since for them in full)",
            r.doctor.findings.len()
        ),
    )
}
