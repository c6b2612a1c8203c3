//! The self-contained HTML report: inline CSS and SVG, no script, no network; opens
//! from disk and reads on a laptop and a phone. Charts are drawn here as SVG (axes,
//! ticks, units, labels, a legend) from the labs' measured series.

use std::fmt::Write as _;

use crate::catalogue::{ConceptId, CONCEPTS};
use crate::commands::explain::explanation;
use crate::commands::learn::Graded;
use crate::concepts::REGISTRY;
use crate::lab::report::{LabReport, Series, Status};
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

/// A line chart of one or more series sharing axes.
pub fn chart(series: &[&Series]) -> String {
    let (w, h) = (640.0, 300.0);
    let (ml, mr, mt, mb) = (70.0, 16.0, 30.0, 48.0);
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
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="plot" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        esc(&title)
    );
    if pts.is_empty() {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle" class="axis">no data</text></svg>"#,
            w / 2.0,
            h / 2.0
        );
        return svg;
    }
    let (mut x0, mut x1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p[0]), b.max(p[0])));
    let (mut y0, mut y1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p[1]), b.max(p[1])));
    if y0 >= 0.0 {
        y0 = 0.0;
    }
    if x1 == x0 {
        x0 -= 1.0;
        x1 += 1.0;
    }
    if y1 == y0 {
        y1 = y0 + 1.0;
    }
    let (ys, xs) = (nice_step(y1 - y0, 5.0), nice_step(x1 - x0, 6.0));
    y1 = (y1 / ys).ceil() * ys;
    y0 = (y0 / ys).floor() * ys;
    let px = |x: f64| ml + (x - x0) / (x1 - x0) * (w - ml - mr);
    let py = |y: f64| h - mb - (y - y0) / (y1 - y0) * (h - mt - mb);
    // Grid and y ticks.
    let mut y = y0;
    while y <= y1 + ys / 2.0 {
        let _ = write!(
            svg,
            r#"<line x1="{ml}" x2="{}" y1="{1:.1}" y2="{1:.1}" class="grid"/>"#,
            w - mr,
            py(y)
        );
        let _ = write!(
            svg,
            r#"<text x="{}" y="{:.1}" text-anchor="end" class="tick">{}</text>"#,
            ml - 6.0,
            py(y) + 4.0,
            tick_label(y, ys)
        );
        y += ys;
    }
    let mut x = (x0 / xs).ceil() * xs;
    while x <= x1 + xs / 1e6 {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle" class="tick">{}</text>"#,
            px(x),
            h - mb + 16.0,
            tick_label(x, xs)
        );
        x += xs;
    }
    let _ = write!(
        svg,
        r#"<line x1="{ml}" x2="{ml}" y1="{mt}" y2="{}" class="axisline"/>"#,
        h - mb
    );
    let _ = write!(
        svg,
        r#"<line x1="{ml}" x2="{}" y1="{1}" y2="{1}" class="axisline"/>"#,
        w - mr,
        h - mb
    );
    let (xl, yl) = (series[0].x.as_str(), series[0].y.as_str());
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle" class="axis">{}</text>"#,
        ml + (w - ml - mr) / 2.0,
        h - 8.0,
        esc(xl)
    );
    let _ = write!(
        svg,
        r#"<text transform="translate(16 {}) rotate(-90)" text-anchor="middle" class="axis">{}</text>"#,
        mt + (h - mt - mb) / 2.0,
        esc(yl)
    );
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let coords: Vec<String> = s
            .points
            .iter()
            .filter(|p| p[0].is_finite() && p[1].is_finite())
            .map(|p| format!("{:.1},{:.1}", px(p[0]), py(p[1])))
            .collect();
        if coords.len() > 1 {
            let _ = write!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
                coords.join(" ")
            );
        }
        if coords.len() <= 60 {
            for c in &coords {
                let (cx, cy) = c.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(svg, r#"<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>"#);
            }
        }
        let ly = mt - 12.0 + 14.0 * i as f64;
        let _ = write!(
            svg,
            r#"<rect x="{}" y="{:.1}" width="10" height="10" fill="{color}"/>"#,
            ml + 8.0,
            ly - 9.0
        );
        let _ = write!(
            svg,
            r#"<text x="{}" y="{ly:.1}" class="legend">{}</text>"#,
            ml + 22.0,
            esc(&s.name)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Series that share their axes are drawn in one chart.
fn charts(series: &[Series]) -> Vec<String> {
    let mut groups: Vec<Vec<&Series>> = Vec::new();
    for s in series {
        match groups
            .iter_mut()
            .find(|g| g[0].x == s.x && g[0].y == s.y && g.len() < COLORS.len())
        {
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
main{max-width:980px;margin:0 auto;padding:16px}
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.25em;margin:1.6em 0 .4em;border-top:1px solid var(--line);padding-top:1em}
h3{font-size:1em;margin:1em 0 .3em}summary{font-weight:600;cursor:pointer;margin:1em 0 .3em}
.host{color:var(--muted);font-size:.9em}
table{border-collapse:collapse;width:100%;font-size:.88em}td,th{border-bottom:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
th{font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.scroll{overflow-x:auto}
code{background:var(--code);padding:0 3px;border-radius:3px;font-size:.9em}pre{background:var(--code);padding:10px;overflow-x:auto;font-size:.82em;border-radius:6px}
.b{display:inline-block;padding:1px 7px;border-radius:9px;font-size:.8em;font-weight:600;white-space:nowrap}
.pass{background:#dcfce7;color:#166534}.fail{background:#fee2e2;color:#991b1b}.skip{background:#fef3c7;color:#92400e}
@media(max-width:640px){body{font-size:14px}}
.summary a{text-decoration:none}.note{color:var(--muted);font-size:.9em}
svg.plot{max-width:640px;display:block;margin:8px 0 16px}
svg .grid{stroke:#eef0f3}svg .axisline{stroke:#9ca3af}svg .tick{font-size:11px;fill:#4b5563}svg .axis{font-size:12px;fill:#111827}svg .legend{font-size:11px;fill:#111827}
"#;

fn unit_value(v: f64, unit: &str) -> String {
    crate::model::units::metric_value(v, unit)
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
            h.push_str("<h3>Metrics</h3><div class=\"scroll\"><table><tr><th>metric</th><th class=\"num\">n</th><th class=\"num\">min</th><th class=\"num\">median</th><th class=\"num\">p99</th><th class=\"num\">max</th><th class=\"num\">CV</th></tr>");
            for m in &r.metrics {
                let s = &m.summary;
                let u = |v: f64| esc(&unit_value(v, m.unit));
                let _ = write!(
                    h,
                    "<tr><td>{}{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}%</td></tr>",
                    esc(&m.name),
                    if m.noisy.is_some() { " <span class=\"b skip\">noisy</span>" } else { "" },
                    s.n,
                    u(s.min),
                    u(s.median),
                    u(s.p99),
                    u(s.max),
                    s.cv * 100.0
                );
            }
            h.push_str("</table></div>");
            noise_note(&mut h, r);
        }
        if !r.evidence.is_empty() {
            h.push_str("<h3>Evidence</h3><div class=\"scroll\"><table><tr><th>source</th><th>field</th><th class=\"num\">before</th><th class=\"num\">after</th></tr>");
            for ev in &r.evidence {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                    esc(&ev.source),
                    esc(&ev.field),
                    esc(&unit_value(ev.before, ev.unit)),
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
        assert!(page.contains("<td class=\"num\">3</td>"), "integer counts");
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
        let s = Series {
            name: "rss".into(),
            x: "step".into(),
            y: "MiB".into(),
            points: vec![[0.0, 5.0], [1.0, 261.0], [2.0, 6.0]],
        };
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
}
