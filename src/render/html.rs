//! The self-contained HTML report: inline CSS and SVG, no script, no network; opens
//! from disk and reads on a laptop and a phone. Charts are drawn here as SVG (axes,
//! ticks, units, labels, a legend) from the labs' measured series.

use std::fmt::Write as _;

use crate::catalogue::{ConceptId, CONCEPTS};
use crate::commands::explain::explanation;
use crate::commands::learn::Graded;
use crate::concepts::REGISTRY;
use crate::lab::report::{Axis, LabReport, Series, Status};
use crate::learn::{trim, Given};
use crate::model::host::Host;

/// Escapes text for HTML content and attributes.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Escapes prose and turns `code` spans into <code> elements.
fn prose(s: &str) -> String {
    esc(s)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_owned()
            }
        })
        .collect()
}

/// A tick step of 1, 2 or 5 times a power of ten, giving about `n` ticks over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

fn tick_label(v: f64, step: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if step < 1.0 && a < 1e4 {
        let decimals = (-step.log10().floor()) as usize;
        format!("{v:.decimals$}")
    } else if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

const COLORS: [&str; 6] = [
    "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2",
];

/// Dash patterns by series: a later line drawn over an equal earlier one leaves the
/// earlier one visible in its gaps.
const DASHES: [&str; 3] = ["", "7 4", "2 3"];

/// The viewBox width of every plot. The report's plots are at most 600 CSS px wide;
/// on a 390 px phone they are 358 px (main's 16 px padding), so text of `FONT` units
/// shows as 13 x 358 / 480 = 9.7 CSS px there (issue 19: at least ~9 px; chromium
/// measured 8.9 px at 12.5 units).
pub const VIEW_WIDTH: f64 = 480.0;
/// The size of every text in a plot, in viewBox units (see [`VIEW_WIDTH`]).
pub const FONT: f64 = 13.0;
// At 390 px a plot is 358 px wide: its text must show at 9 CSS px or more.
const _: () = assert!(FONT * 358.0 / VIEW_WIDTH >= 9.0);
/// Line height of plot text, in viewBox units.
const LINE: f64 = 16.0;
/// The average width of a character of plot text, in viewBox units (system-ui).
const CHAR: f64 = FONT * 0.56;

/// Splits `s` into lines of at most `width` viewBox units, at spaces (a word longer
/// than a line stays whole on its own line).
fn wrap_units(s: &str, width: f64) -> Vec<String> {
    let max = ((width / CHAR).floor() as usize).max(4);
    let mut lines: Vec<String> = Vec::new();
    for word in s.split_whitespace() {
        match lines.last_mut() {
            Some(l) if l.chars().count() + 1 + word.chars().count() <= max => {
                l.push(' ');
                l.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

/// A text element of `lines`, the first baseline at `y`, with the plot's font size.
fn text(svg: &mut String, x: f64, y: f64, anchor: &str, class: &str, lines: &[String]) {
    let fill = if class == "tick" {
        "#4b5563"
    } else {
        "#111827"
    };
    let _ = write!(
        svg,
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" class="{class}" font-size="{FONT}" fill="{fill}">"#
    );
    for (i, l) in lines.iter().enumerate() {
        let dy = if i == 0 { 0.0 } else { LINE };
        let _ = write!(svg, r#"<tspan x="{x:.1}" dy="{dy}">{}</tspan>"#, esc(l));
    }
    svg.push_str("</text>");
}

/// True when every value is a whole number: its axis gets whole ticks only.
fn whole(values: impl IntoIterator<Item = f64>) -> bool {
    values.into_iter().all(|v| v.fract() == 0.0)
}

/// A value written above its bar: whole numbers whole, others to three figures.
fn bar_label(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e4 {
        format!("{v:.0}")
    } else {
        let a = v.abs();
        let step = if a >= 1.0 {
            10f64.powf(a.log10().floor() - 2.0)
        } else {
            0.001
        };
        tick_label(v, step)
    }
}

/// A chart of one or more series sharing axes, drawn as their x axis asks: lines over
/// a continuous or integer axis (integer axes get whole ticks), bars over categories
/// (a group per category, a bar per series). Every series is named in a legend below
/// the data; text is [`FONT`] units in a [`VIEW_WIDTH`]-wide viewBox.
pub fn chart(series: &[&Series]) -> String {
    let w = VIEW_WIDTH;
    let (mr, mt, ph) = (12.0, 14.0, 200.0);
    // The y label runs up the left side, wrapped to the data's height; the ticks'
    // numbers sit between it and the axis.
    let y_label = wrap_units(series.first().map_or("", |s| s.y.as_str()), ph);
    let ml = 45.0 + LINE * y_label.len() as f64;
    let pw = w - ml - mr;
    let pts: Vec<[f64; 2]> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|p| p[0].is_finite() && p[1].is_finite())
        .collect();
    let title = series
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(" / ");
    let categories = match series.first().map(|s| &s.axis) {
        Some(Axis::Categories(labels)) => Some(labels.as_slice()),
        _ => None,
    };
    // Heights below the data: the x ticks (category labels may take lines), the axis
    // label, the legend.
    let group = categories.map_or(pw, |c| pw / c.len().max(1) as f64);
    let cat_lines: Vec<Vec<String>> = categories
        .unwrap_or_default()
        .iter()
        .map(|c| wrap_units(c, group - 6.0))
        .collect();
    let tick_rows = cat_lines.iter().map(Vec::len).max().unwrap_or(1) as f64;
    let legend: Vec<Vec<String>> = series
        .iter()
        .map(|s| wrap_units(&s.name, w - 40.0))
        .collect();
    let legend_rows: f64 = legend.iter().map(|l| l.len() as f64).sum();
    let base = mt + ph;
    let x_label = wrap_units(series.first().map_or("", |s| s.x.as_str()), pw);
    let axis_y = base + 6.0 + LINE * tick_rows + LINE;
    let legend_y = axis_y + LINE * (x_label.len() as f64 - 1.0) + 10.0 + LINE;
    let h = (legend_y + LINE * legend_rows).ceil();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="plot" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        esc(&title)
    );
    if pts.is_empty() {
        text(
            &mut svg,
            w / 2.0,
            base / 2.0,
            "middle",
            "axis",
            &["no data".into()],
        );
        svg.push_str("</svg>");
        return svg;
    }
    let (mut y0, mut y1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p[1]), b.max(p[1])));
    y0 = y0.min(0.0);
    if y1 == y0 {
        y1 = y0 + 1.0;
    }
    let mut ys = nice_step(y1 - y0, 5.0);
    if whole(pts.iter().map(|p| p[1])) {
        ys = ys.max(1.0);
    }
    y1 = (y1 / ys).ceil() * ys;
    y0 = (y0 / ys).floor() * ys;
    let py = |y: f64| base - (y - y0) / (y1 - y0) * ph;
    let mut y = y0;
    while y <= y1 + ys / 2.0 {
        let _ = write!(
            svg,
            r##"<line x1="{ml}" x2="{}" y1="{1:.1}" y2="{1:.1}" class="grid" stroke="#eef0f3"/>"##,
            w - mr,
            py(y)
        );
        text(
            &mut svg,
            ml - 6.0,
            py(y) + 4.0,
            "end",
            "tick",
            &[tick_label(y, ys)],
        );
        y += ys;
    }
    let axis = |svg: &mut String| {
        let _ = write!(
            svg,
            r##"<line x1="{ml}" x2="{ml}" y1="{mt}" y2="{base}" class="axisline" stroke="#9ca3af"/><line x1="{ml}" x2="{}" y1="{base}" y2="{base}" class="axisline" stroke="#9ca3af"/>"##,
            w - mr
        );
    };
    let tick_y = base + 6.0 + FONT;
    match categories {
        Some(labels) => {
            let k = series.len() as f64;
            let bw = group * 0.72 / k;
            for (i, lines) in cat_lines.iter().enumerate() {
                let cx = ml + group * (i as f64 + 0.5);
                text(&mut svg, cx, tick_y, "middle", "tick", lines);
            }
            for (j, s) in series.iter().enumerate() {
                let color = COLORS[j % COLORS.len()];
                for p in s.points.iter().filter(|p| p[1].is_finite()) {
                    let i = p[0];
                    if !(i >= 0.0 && (i as usize) < labels.len()) {
                        continue;
                    }
                    let x = ml + group * i.floor() + group * 0.14 + bw * j as f64;
                    let (top, bottom) = (py(p[1].max(0.0)), py(p[1].min(0.0)));
                    let _ = write!(
                        svg,
                        r#"<rect x="{x:.1}" y="{top:.1}" width="{bw:.1}" height="{:.1}" fill="{color}"><title>{}: {}</title></rect>"#,
                        (bottom - top).max(0.5),
                        esc(&labels[i as usize]),
                        bar_label(p[1])
                    );
                    if bw >= 34.0 {
                        text(
                            &mut svg,
                            x + bw / 2.0,
                            top - 4.0,
                            "middle",
                            "tick",
                            &[bar_label(p[1])],
                        );
                    }
                }
            }
        }
        None => {
            let integer = series.iter().all(|s| s.axis == Axis::Integer);
            let (mut x0, mut x1) = pts
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p[0]), b.max(p[0])));
            if x1 == x0 {
                x0 -= 1.0;
                x1 += 1.0;
            }
            let mut xs = nice_step(x1 - x0, 6.0);
            if integer {
                xs = xs.max(1.0);
            }
            let px = |x: f64| ml + (x - x0) / (x1 - x0) * pw;
            let mut x = (x0 / xs).ceil() * xs;
            while x <= x1 + xs / 1e6 {
                text(
                    &mut svg,
                    px(x),
                    tick_y,
                    "middle",
                    "tick",
                    &[tick_label(x, xs)],
                );
                x += xs;
            }
            for (i, s) in series.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                let coords: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .filter(|p| p[0].is_finite() && p[1].is_finite())
                    .map(|p| (px(p[0]), py(p[1])))
                    .collect();
                if coords.len() > 1 {
                    let line: Vec<String> = coords
                        .iter()
                        .map(|(x, y)| format!("{x:.1},{y:.1}"))
                        .collect();
                    let _ = write!(
                        svg,
                        r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2" stroke-dasharray="{}"/>"#,
                        line.join(" "),
                        DASHES[i % DASHES.len()]
                    );
                }
                if coords.len() <= 60 {
                    // Alternate filled and ringed markers, so equal points of two
                    // series both show.
                    let (r, fill) = if i % 2 == 0 {
                        (3.0, color)
                    } else {
                        (5.0, "none")
                    };
                    for (cx, cy) in &coords {
                        let _ = write!(
                            svg,
                            r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="{r}" fill="{fill}" stroke="{color}" stroke-width="1.5"/>"#
                        );
                    }
                }
            }
        }
    }
    axis(&mut svg);
    text(&mut svg, ml + pw / 2.0, axis_y, "middle", "axis", &x_label);
    let _ = write!(
        svg,
        r#"<g transform="translate(15 {:.1}) rotate(-90)">"#,
        mt + ph / 2.0
    );
    text(&mut svg, 0.0, 0.0, "middle", "axis", &y_label);
    svg.push_str("</g>");
    // The legend, below the data: every series named, each in its colour and dash.
    let mut ly = legend_y;
    for (i, lines) in legend.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let swatch = if categories.is_some() {
            format!(
                r#"<rect x="12" y="{:.1}" width="18" height="10" fill="{color}"/>"#,
                ly - 9.0
            )
        } else {
            format!(
                r#"<line x1="10" x2="30" y1="{0:.1}" y2="{0:.1}" stroke="{color}" stroke-width="2.5" stroke-dasharray="{1}"/>"#,
                ly - 4.0,
                DASHES[i % DASHES.len()]
            )
        };
        svg.push_str(&swatch);
        text(&mut svg, 36.0, ly, "start", "legend", lines);
        ly += LINE * lines.len() as f64;
    }
    svg.push_str("</svg>");
    svg
}

/// Series that share their axes (labels and kind) are drawn in one chart, up to one
/// colour each.
fn charts(series: &[Series]) -> Vec<String> {
    let mut groups: Vec<Vec<&Series>> = Vec::new();
    for s in series {
        match groups.iter_mut().find(|g| {
            g[0].x == s.x && g[0].y == s.y && g[0].axis == s.axis && g.len() < COLORS.len()
        }) {
            Some(g) => g.push(s),
            None => groups.push(vec![s]),
        }
    }
    groups.iter().map(|g| chart(g)).collect()
}

fn status_badge(s: Status) -> &'static str {
    match s {
        Status::Passed => r#"<span class="b pass">passed</span>"#,
        Status::Failed => r#"<span class="b fail">failed</span>"#,
        Status::Skipped => r#"<span class="b skip">skipped</span>"#,
    }
}

/// "all passed", "1 failed", "2 skipped", "not run".
pub fn verdict(r: Option<&LabReport>) -> (String, &'static str) {
    match r {
        None => ("not run".into(), "skip"),
        Some(r) => {
            let (f, s) = (r.count(Status::Failed), r.count(Status::Skipped));
            if f > 0 {
                (format!("{f} failed"), "fail")
            } else if s > 0 {
                (format!("passed, {s} skipped"), "skip")
            } else {
                ("all passed".into(), "pass")
            }
        }
    }
}

/// The style every syslens page shares.
pub const CSS: &str = r#"
:root{--fg:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#fff;--code:#f3f4f6}
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:980px;margin:0 auto;padding:16px;overflow-wrap:break-word}
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.25em;margin:1.6em 0 .4em;border-top:1px solid var(--line);padding-top:1em}
h3{font-size:1em;margin:1em 0 .3em}summary{font-weight:600;cursor:pointer;margin:1em 0 .3em}
.host{color:var(--muted);font-size:.9em}
table{border-collapse:collapse;width:100%;font-size:.88em}td,th{border-bottom:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
th{font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.scroll{overflow-x:auto}.scroll>table{min-width:34em}.ph{display:block;color:var(--muted);font-size:.8em;white-space:normal}
code{background:var(--code);padding:0 3px;border-radius:3px;font-size:.9em}pre{background:var(--code);padding:10px;overflow-x:auto;font-size:.82em;border-radius:6px}
.b{display:inline-block;padding:1px 7px;border-radius:9px;font-size:.8em;font-weight:600;white-space:nowrap}
.pass{background:#dcfce7;color:#166534}.fail{background:#fee2e2;color:#991b1b}.skip{background:#fef3c7;color:#92400e}
@media(max-width:640px){body{font-size:14px}}
.summary a{text-decoration:none}.note{color:var(--muted);font-size:.9em}
svg.plot{max-width:600px;width:100%;height:auto;display:block;margin:8px 0 16px}
"#;

fn unit_value(v: f64, unit: &str) -> String {
    crate::model::units::metric_value(v, unit)
}

/// An evidence field's name and the labels of its two readings: `Rss (allocated ->
/// freed)` gives `("Rss", "allocated", "freed")`, `Rss -> Pss` gives `("", "Rss",
/// "Pss")`; a field that names no phases reads before and after the event.
fn phases(field: &str) -> (&str, &str, &str) {
    let (name, inner) = match field.strip_suffix(')').and_then(|f| f.rsplit_once(" (")) {
        Some((name, inner)) if inner.contains(" -> ") => (name, inner),
        _ if field.contains(" -> ") => ("", field),
        _ => return (field, "before", "after"),
    };
    let (from, to) = inner.split_once(" -> ").unwrap_or((inner, ""));
    (name, from, to)
}

/// One note per section for its noisy metrics (named, with why each is noisy), rather
/// than the same advice under every row.
fn noise_note(h: &mut String, r: &LabReport) {
    let noisy: Vec<String> = r
        .metrics
        .iter()
        .filter_map(|m| {
            // The cause without its advice (the advice is given once below).
            let why = m.noisy.as_deref()?.split(':').next()?;
            Some(format!("{} ({why})", m.name))
        })
        .collect();
    if !noisy.is_empty() {
        let _ = write!(
            h,
            "<p class=\"note\">Noisy on this run: {}. A CV over 5% comes from other load, frequency changes or too few samples; two modes from runs on different CPUs or a descheduled vCPU. Close other programs, pin, or add trials (<code>--trials</code>).</p>",
            esc(&noisy.join("; "))
        );
    }
}

/// The whole report.
/// The learner's predictions for one concept beside what its lab measured.
fn predictions(h: &mut String, g: &Graded) {
    let _ = write!(
        h,
        "<h3>Your predictions: {} of {} right</h3><div class=\"scroll\"><table><tr><th></th><th>question</th><th>you said</th><th>measured</th><th>why</th></tr>",
        g.right, g.graded
    );
    for v in &g.verdicts {
        let badge = match v.correct {
            Some(true) => "<span class=\"b pass\">right</span>",
            Some(false) => "<span class=\"b fail\">wrong</span>",
            None => "<span class=\"b skip\">not graded</span>",
        };
        let unit = v.unit.unwrap_or("");
        let said = match &v.answer {
            Some(Given::Number(x)) => format!("{} {unit}", trim(*x)),
            Some(Given::Choice(c)) => c.clone(),
            None => "no answer".to_owned(),
        };
        let measured = match &v.measured {
            Some(m) => match m.option {
                Some(o) => o.to_owned(),
                None if m.low != m.high => format!(
                    "{} {unit} ({} to {})",
                    trim(m.value),
                    trim(m.low),
                    trim(m.high)
                ),
                None => format!("{} {unit}", trim(m.value)),
            },
            None => format!(
                "not measured: {}",
                v.unmeasured.as_deref().unwrap_or("no reason given")
            ),
        };
        let _ = write!(
            h,
            "<tr><td>{badge}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&v.question),
            esc(&said),
            esc(&measured),
            esc(&v.explanation)
        );
    }
    h.push_str("</table></div>");
}

/// The whole report: the summary, then one section per concept (with the learner's
/// predictions where `graded` has them).
pub fn report(
    host: &Host,
    reports: &[LabReport],
    graded: &[Graded],
    date: &str,
    interrupted: Option<&str>,
) -> String {
    let mut h = String::new();
    let _ = write!(h, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>syslens report</title><style>{CSS}</style></head><body><main>");
    let _ = write!(
        h,
        "<h1>syslens report</h1><p class=\"host\">{} · {}</p>",
        esc(&host.summary()),
        esc(date)
    );
    if let Some(c) = reports.iter().find_map(|r| r.calibration.as_ref()) {
        let _ = write!(h, "<p class=\"host\">{}</p>", esc(&c.summary()));
    }
    if let Some(why) = interrupted {
        let _ = write!(
            h,
            "<p class=\"b fail\">interrupted: {}; the labs that finished are below</p>",
            esc(why)
        );
    }
    let find = |id: ConceptId| reports.iter().find(|r| r.concept == id);
    // What was learnt first: the verdict and the headline figures of every lab, as the
    // terminal's summary gives them.
    h.push_str("<h2>Summary</h2><div class=\"scroll\"><table class=\"summary\"><tr><th>concept</th><th>verdict</th><th>headline</th></tr>");
    for c in &CONCEPTS {
        let r = find(c.id);
        let (v, class) = verdict(r);
        let head = r
            .map(|r| REGISTRY[c.id as usize].lab.headline_of(r))
            .unwrap_or_default();
        let _ = write!(
            h,
            "<tr><td><a href=\"#{}\">{}</a></td><td><span class=\"b {class}\">{}</span></td><td>{}</td></tr>",
            c.slug,
            esc(c.title),
            esc(&v),
            esc(&head)
        );
    }
    h.push_str("</table></div>");
    if !graded.is_empty() {
        let right: usize = graded.iter().map(|g| g.right).sum();
        let asked: usize = graded.iter().map(|g| g.graded).sum();
        let _ = write!(
            h,
            "<p class=\"host\">Predictions: {right} of {asked} right across {} concepts (each section shows them beside what was measured).</p>",
            graded.len()
        );
    }
    for c in &CONCEPTS {
        let e = explanation(c.id);
        let r = find(c.id);
        let (v, class) = verdict(r);
        let _ = write!(
            h,
            "<section id=\"{}\"><h2>{} <span class=\"b {class}\">{}</span></h2>",
            c.slug,
            esc(c.title),
            esc(&v)
        );
        for p in &e.paragraphs {
            let _ = write!(h, "<p>{}</p>", prose(p));
        }
        let _ = write!(
            h,
            "<h3>The lines of the lab that provoke it</h3><pre>{}</pre><p class=\"note\">{}</p>",
            esc(&e.code),
            esc(&e.code_file)
        );
        h.push_str("<details><summary>More</summary><ul>");
        for m in &e.more {
            let _ = write!(h, "<li>{}</li>", prose(m));
        }
        h.push_str("</ul></details>");
        let Some(r) = r else {
            let _ = write!(
                h,
                "<p class=\"note\">This lab did not run in this tour.</p></section>"
            );
            continue;
        };
        if let Some(g) = graded.iter().find(|g| g.concept == c.slug) {
            predictions(&mut h, g);
        }
        h.push_str("<h3>Claims</h3><div class=\"scroll\"><table><tr><th></th><th>claim</th><th>observed</th><th>expected</th></tr>");
        for k in &r.checks {
            let expected = k.reason.clone().unwrap_or_else(|| k.expected.clone());
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                status_badge(k.status),
                esc(&k.claim),
                esc(&k.observed),
                esc(&expected)
            );
        }
        h.push_str("</table></div>");
        if !r.metrics.is_empty() {
            h.push_str("<h3>Metrics</h3><div class=\"scroll\"><table><tr><th>metric</th><th class=\"num\">n</th><th class=\"num\">min</th><th class=\"num\">median</th><th class=\"num\">95% CI of the median</th><th class=\"num\">p99</th><th class=\"num\">max</th><th class=\"num\">CV</th></tr>");
            for m in &r.metrics {
                let s = &m.summary;
                let u = |v: f64| esc(&unit_value(v, m.unit));
                let _ = write!(
                    h,
                    "<tr><td>{}{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}%</td></tr>",
                    esc(&m.name),
                    if m.noisy.is_some() { " <span class=\"b skip\">noisy</span>" } else { "" },
                    s.n,
                    u(s.min),
                    u(s.median),
                    match (s.ci_low, s.ci_high) {
                        (Some(lo), Some(hi)) => format!("{}–{}", u(lo), u(hi)),
                        _ => "-".to_owned(),
                    },
                    u(s.p99),
                    u(s.max),
                    s.cv * 100.0
                );
            }
            h.push_str("</table></div>");
            noise_note(&mut h, r);
        }
        if !r.evidence.is_empty() {
            h.push_str("<h3>Evidence</h3><div class=\"scroll\"><table><tr><th>source</th><th>field</th><th class=\"num\">from</th><th class=\"num\">to</th></tr>");
            for ev in &r.evidence {
                let (field, from, to) = phases(&ev.field);
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td class=\"num\"><span class=\"ph\">{}</span>{}</td><td class=\"num\"><span class=\"ph\">{}</span>{}</td></tr>",
                    esc(&ev.source),
                    esc(field),
                    esc(from),
                    esc(&unit_value(ev.before, ev.unit)),
                    esc(to),
                    esc(&unit_value(ev.after, ev.unit))
                );
            }
            h.push_str("</table></div>");
        }
        if !r.series.is_empty() {
            h.push_str("<h3>Plots</h3>");
            for svg in charts(&r.series) {
                h.push_str(&svg);
            }
        }
        for n in &r.notes {
            let _ = write!(h, "<p class=\"note\">{}</p>", esc(n));
        }
        let _ = write!(
            h,
            "<p class=\"note\">Read next: {}</p></section>",
            esc(&e.read_next.join(" · "))
        );
    }
    h.push_str("</main></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::plot_check::{assert_plotted, legend_names, section_plots};

    #[test]
    fn issue_19_the_report_leads_with_headlines_and_notes_noise_once_per_section() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v2");
        let mut reader = syslens_probe::Reader::new(root).unwrap();
        let host = Host::read(&mut reader);
        let mut r = LabReport::new(ConceptId::KernelUser, host.clone());
        // A bimodal and a wide spread: both noisy.
        let wide: Vec<f64> = (0..20)
            .map(|i| if i % 2 == 0 { 10.0 } else { 90.0 })
            .collect();
        r.metric("clock_gettime through the vDSO", "ns", &wide);
        r.metric("getppid", "ns", &wide);
        r.evidence("/proc/self/stat", "pages", 0.0, 3.0, "");
        let page = report(&host, &[r], &[], "2026-12-02", None);
        let summary = &page[page.find("<h2>Summary</h2>").unwrap()..page.find("<section").unwrap()];
        assert!(summary.contains("Kernel vs user space"), "{summary}");
        assert!(
            summary.contains("vDSO clock"),
            "the headline figures lead: {summary}"
        );
        assert_eq!(page.matches("Noisy on this run").count(), 1);
        assert!(page.contains("clock_gettime through the vDSO (") && page.contains("getppid ("));
        assert_eq!(
            page.matches("close other programs or add trials").count(),
            0
        );
        // A count is whole.
        assert!(
            page.contains("<span class=\"ph\">after</span>3</td>"),
            "integer counts, with the phase"
        );
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(10.0, 5.0), 2.0);
        assert_eq!(nice_step(260.0, 5.0), 100.0);
        assert_eq!(nice_step(0.9, 5.0), 0.2);
    }

    #[test]
    fn chart_draws_axes_labels_and_every_point() {
        let s = Series::line(
            "rss",
            "step",
            "MiB",
            vec![[0.0, 5.0], [1.0, 261.0], [2.0, 6.0]],
        );
        let svg = chart(&[&s]);
        assert!(svg.starts_with("<svg class=\"plot\""));
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains(">step<") && svg.contains(">MiB<") && svg.contains(">rss<"));
        assert!(svg.contains("<polyline"));
        let empty = Series {
            points: vec![],
            ..s
        };
        assert!(chart(&[&empty]).contains("no data"));
    }

    /// The numbers of the x ticks of a line chart, in order.
    fn x_ticks(svg: &str, base: f64) -> Vec<String> {
        svg.split("<text ")
            .filter(|t| {
                t.contains("class=\"tick\"")
                    && t.split("y=\"")
                        .nth(1)
                        .and_then(|y| y.split('"').next())
                        .and_then(|y| y.parse::<f64>().ok())
                        .is_some_and(|y| y > base)
            })
            .filter_map(|t| t.split("\">").nth(2)?.split('<').next())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn issue_19_categories_draw_bars_with_their_labels_and_no_fractional_ticks() {
        let mut r = LabReport::new(ConceptId::LazyInit, host());
        r.bars(
            "rss",
            "step",
            "MiB",
            &[("mapped", 6.1), ("read", 6.2), ("written", 70.2)],
        );
        r.bars(
            "hwm",
            "step",
            "MiB",
            &[("mapped", 6.1), ("read", 6.2), ("written", 70.3)],
        );
        let svg = chart(&r.series.iter().collect::<Vec<_>>());
        assert_eq!(
            svg.matches("<rect").count(),
            6 + 2,
            "a bar per value and a legend swatch per series"
        );
        assert!(
            !svg.contains("<polyline"),
            "categories are not joined by a line"
        );
        for label in ["mapped", "read", "written"] {
            assert!(svg.contains(&format!(">{label}<")), "{label}");
        }
        assert!(!svg.contains(">0.5<") && !svg.contains(">1.5<"), "{svg}");
    }

    #[test]
    fn issue_19_an_integer_axis_gets_whole_ticks() {
        let s = Series {
            axis: Axis::Integer,
            ..Series::line(
                "faults",
                "trial",
                "faults per page",
                vec![[0.0, 1.0], [1.0, 1.0]],
            )
        };
        let ticks = x_ticks(&chart(&[&s]), 225.0);
        assert_eq!(ticks, ["0", "1"], "no 0.2, 0.4 between trials");
        // A continuous axis over the same span does get fractional ticks.
        let c = Series::line("share", "seconds", "share", vec![[0.0, 1.0], [1.0, 1.0]]);
        assert!(x_ticks(&chart(&[&c]), 225.0).contains(&"0.4".to_owned()));
        // Counts on y: whole ticks even over a small range.
        let counts = Series::line("rounds", "us", "rounds", vec![[0.0, 0.0], [1.0, 2.0]]);
        assert!(!chart(&[&counts]).contains(">0.5<"));
    }

    #[test]
    fn issue_19_the_legend_names_every_line_below_the_data() {
        let series: Vec<Series> = (0..6)
            .map(|i| {
                Series::line(
                    &format!("line number {i}"),
                    "x",
                    "y",
                    vec![[0.0, 1.0], [1.0, i as f64]],
                )
            })
            .collect();
        let svg = chart(&series.iter().collect::<Vec<_>>());
        assert_eq!(svg.matches("<polyline").count(), 6);
        for i in 0..6 {
            let at = svg.find(&format!(">line number {i}<")).expect("named");
            let y: f64 = svg[..at]
                .rsplit(" y=\"")
                .next()
                .and_then(|y| y.split('"').next())
                .and_then(|y| y.parse().ok())
                .unwrap();
            assert!(
                y > 214.0,
                "legend entry {i} at y {y}, inside the data (which ends at 214)"
            );
        }
    }

    #[test]
    fn issue_19_plot_text_is_at_least_9_px_on_a_390_px_phone() {
        let s = Series::line("rss", "step", "MiB", vec![[0.0, 5.0], [1.0, 6.0]]);
        let svg = chart(&[&s]);
        assert!(
            svg.contains(&format!("viewBox=\"0 0 {VIEW_WIDTH} ")) && svg.contains("width=\"100%\"")
        );
        let texts = svg.matches("<text ").count();
        assert_eq!(
            svg.matches(&format!("font-size=\"{FONT}\"")).count(),
            texts,
            "every text sized"
        );
    }

    #[test]
    fn issue_19_evidence_rows_name_their_phases() {
        assert_eq!(
            phases("Rss (allocated -> freed)"),
            ("Rss", "allocated", "freed")
        );
        assert_eq!(phases("Rss -> Pss"), ("", "Rss", "Pss"));
        assert_eq!(phases("pages"), ("pages", "before", "after"));
        assert_eq!(phases("PID (inside)"), ("PID (inside)", "before", "after"));
    }

    fn host() -> Host {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v2");
        Host::read(&mut syslens_probe::Reader::new(root).unwrap())
    }

    /// issue 19: every concept has a plot of the kind its data is, on the series of a
    /// recorded quick tour (`tests/fixtures/tour-quick-series.json`: each lab report's
    /// concept and series, from `syslens tour --quick --json` on the dev VM).
    #[test]
    fn issue_19_every_concept_has_a_plot_of_its_kind_in_the_report() {
        #[derive(serde::Deserialize)]
        struct Recorded {
            concept: String,
            series: Vec<Series>,
        }
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tour-quick-series.json"
        );
        let recorded: Vec<Recorded> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let host = host();
        let reports: Vec<LabReport> = recorded
            .into_iter()
            .map(|rec| {
                let id = ConceptId::from_slug(&rec.concept).expect("a concept");
                let mut r = LabReport::new(id, host.clone());
                r.series = rec.series;
                r
            })
            .collect();
        let ids: Vec<ConceptId> = reports.iter().map(|r| r.concept).collect();
        let all: Vec<ConceptId> = CONCEPTS.iter().map(|c| c.id).collect();
        assert_eq!(ids, all, "a report per concept, in catalogue order");
        let page = report(&host, &reports, &[], "2026-12-04", None);
        let sections: Vec<(&str, &[Series])> = reports
            .iter()
            .map(|r| (r.concept.slug(), r.series.as_slice()))
            .collect();
        assert_plotted(&page, &sections);
        // The issue's categories are there, as bars.
        for (slug, x) in [
            ("lazy-init", "step"),
            ("high-water-mark", "step"),
            ("scheduling", "nice level"),
            ("locking", "threads"),
            ("storage", "file system"),
        ] {
            let r = &reports[ConceptId::from_slug(slug).unwrap() as usize];
            assert!(
                r.series
                    .iter()
                    .any(|s| s.x == x && matches!(s.axis, Axis::Categories(_))),
                "{slug}: no bars over {x}"
            );
        }
    }

    /// issue 19: the buddy plot shows every zone, Normal included, before and while
    /// the memory was held (one bar group per zone), the zone that lost memory per
    /// order, and the allocator model on axes of its own, never beside measured data.
    #[test]
    fn issue_19_the_buddy_plot_has_a_group_per_zone_and_the_model_apart() {
        use crate::concepts::slab_buddy::lab::{analyze, Measured};
        use syslens_probe::system::BuddyZone;
        let zone = |zone: &str, blocks: u64| BuddyZone {
            node: 0,
            zone: zone.into(),
            free_blocks: vec![blocks; 11],
        };
        let mut model_after_free = vec![0; 11];
        model_after_free[10] = 1;
        let m = Measured {
            names: 1000,
            on_disk: true,
            held_bytes: 64 << 20,
            zones_before: vec![zone("DMA", 1), zone("DMA32", 700), zone("Normal", 900)],
            zones_held: vec![zone("DMA", 1), zone("DMA32", 690), zone("Normal", 800)],
            model_after_workload: vec![4, 3, 2, 1, 0, 0, 0, 0, 0, 1, 0],
            model_after_free,
            ..Measured::default()
        };
        let mut r = LabReport::new(ConceptId::SlabBuddy, host());
        analyze(&m, &mut r);
        let page = report(&host(), std::slice::from_ref(&r), &[], "2026-12-04", None);
        assert_plotted(&page, &[(r.concept.slug(), r.series.as_slice())]);
        let plots = section_plots(&page, "slab-buddy");
        let by_zone: Vec<&&str> = plots
            .iter()
            .filter(|p| {
                legend_names(p)
                    .iter()
                    .any(|n| n.starts_with("free memory per zone"))
            })
            .collect();
        assert_eq!(by_zone.len(), 1, "before and while held in one plot");
        for z in ["DMA", "DMA32", "Normal"] {
            assert_eq!(
                by_zone[0].matches(&format!("<title>node 0 {z}: ")).count(),
                2,
                "{z}: a bar before and one while held"
            );
        }
        let names: Vec<Vec<String>> = plots.iter().map(|p| legend_names(p)).collect();
        assert!(
            names.contains(&vec![
                "node 0 Normal before (measured)".to_owned(),
                "node 0 Normal while held (measured)".to_owned()
            ]),
            "the zone that lost memory, per order: {names:?}"
        );
        for n in &names {
            let measured = n.iter().any(|n| n.contains("(measured"));
            let model = n.iter().any(|n| n.starts_with("model:"));
            assert!(
                measured != model,
                "measured and model data on one axis: {n:?}"
            );
        }
        assert!(
            names
                .iter()
                .any(|n| n.len() == 2 && n.iter().all(|n| n.starts_with("model:"))),
            "{names:?}"
        );
    }
}
