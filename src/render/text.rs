//! Text rendering of sections (figures, tables, notes) within 100 columns.

use std::io::{self, Write};

use syslens_probe::Val;

use crate::commands::inspect::InspectReport;
use crate::model::figure::{Figure, Table, Value};
use crate::model::process::Section;

use super::safe::clean;
use super::{fit_end, fit_start, value, wrap, Style, WIDTH};
use crate::model::units::metric_value;

const NAME_W: usize = 40;
const VALUE_W: usize = 20;
const SOURCE_W: usize = WIDTH - NAME_W - VALUE_W - 5;

fn cell(v: &Val<Value>, unit: crate::model::figure::Unit) -> String {
    match v {
        Ok(v) => value(v, unit),
        Err(_) => "—".to_owned(),
    }
}

/// One figure on one line: name, value with its unit, source.
pub fn figure(out: &mut dyn Write, f: &Figure, style: &Style) -> io::Result<()> {
    let name = fit_end(&f.name, NAME_W);
    let source = style.dim(&fit_start(&f.source, SOURCE_W));
    match &f.value {
        Ok(v) => {
            let text = value(v, f.unit);
            if text.chars().count() <= VALUE_W {
                writeln!(out, "  {name:<NAME_W$} {text:>VALUE_W$}  {source}")
            } else {
                writeln!(out, "  {name:<NAME_W$} {:>VALUE_W$}  {source}", "")?;
                for line in wrap(&text, WIDTH - 6) {
                    writeln!(out, "      {line}")?;
                }
                Ok(())
            }
        }
        Err(m) => {
            writeln!(
                out,
                "  {name:<NAME_W$} {:>VALUE_W$}  {source}",
                style.warn("missing")
            )?;
            for line in wrap(&m.to_string(), WIDTH - 6) {
                writeln!(out, "      {}", style.dim(&line))?;
            }
            Ok(())
        }
    }
}

/// A table: its title and source, the columns, then one line per row.
pub fn table(out: &mut dyn Write, t: &Table, style: &Style) -> io::Result<()> {
    writeln!(
        out,
        "  {}  {}",
        t.title,
        style.dim(&fit_start(&t.source, 40))
    )?;
    let cells: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .zip(&t.columns)
                .map(|(c, col)| cell(c, col.unit))
                .collect()
        })
        .collect();
    let n = t.columns.len();
    let mut widths: Vec<usize> = t.columns.iter().map(|c| c.name.chars().count()).collect();
    for row in &cells {
        for (i, c) in row.iter().enumerate().take(n) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    // Shrink the widest column until the row fits; it is usually a path.
    let budget = WIDTH - 4 - 2 * n.saturating_sub(1);
    while widths.iter().sum::<usize>() > budget {
        let Some((i, _)) = widths.iter().enumerate().max_by_key(|(_, w)| **w) else {
            break;
        };
        widths[i] -= 1;
    }
    let line = |cols: Vec<String>| -> String {
        cols.iter()
            .enumerate()
            .map(|(i, c)| {
                let w = widths[i];
                let c = if i == 0 || t.columns[i].unit == crate::model::figure::Unit::None {
                    fit_start(c, w)
                } else {
                    fit_end(c, w)
                };
                if t.columns[i].unit == crate::model::figure::Unit::None {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(
        out,
        "    {}",
        style.dim(line(t.columns.iter().map(|c| c.name.clone()).collect()).trim_end())
    )?;
    for row in cells {
        writeln!(out, "    {}", line(row).trim_end())?;
    }
    let missing: Vec<String> = t
        .rows
        .iter()
        .flatten()
        .filter_map(|c| c.as_ref().err())
        .map(|m| m.to_string())
        .collect();
    if let Some(first) = missing.first() {
        writeln!(
            out,
            "    {}",
            style.dim(&fit_end(&format!("— missing: {first}"), WIDTH - 4))
        )?;
    }
    Ok(())
}

/// A section: the concept's heading rule, its figures, tables and notes.
pub fn section(out: &mut dyn Write, s: &Section, style: &Style) -> io::Result<()> {
    let head = format!("{} · {} ", s.concept.slug(), s.title);
    let rule = "─".repeat(WIDTH.saturating_sub(head.chars().count() + 4));
    writeln!(
        out,
        "\n{} {}",
        style.heading(&format!("── {head}")),
        style.dim(&rule)
    )?;
    for f in &s.figures {
        figure(out, f, style)?;
    }
    for t in &s.tables {
        table(out, t, style)?;
    }
    for n in &s.notes {
        for (i, line) in wrap(n, WIDTH - 6).iter().enumerate() {
            let lead = if i == 0 { "  ▸ " } else { "    " };
            writeln!(out, "{lead}{}", style.dim(line))?;
        }
    }
    Ok(())
}

/// The inspect report: the process, then every section, then what could not be read.
pub fn inspect(out: &mut dyn Write, r: &InspectReport, style: &Style) -> io::Result<()> {
    let name = super::safe::clean(r.name.as_deref().unwrap_or("?"));
    let state = r.state.as_deref().unwrap_or("?");
    let uid = r.uid.as_ref().map_or("?".to_owned(), u64::to_string);
    writeln!(
        out,
        "{}",
        style.heading(&format!("pid {}  {name}  {state}  uid {uid}", r.pid))
    )?;
    if let Ok(cmd) = &r.cmdline {
        writeln!(out, "{}", fit_end(cmd, WIDTH))?;
    }
    let parent = match (&r.ppid, &r.parent_name) {
        (Ok(p), Ok(n)) => format!("parent {p} ({})", super::safe::clean(n)),
        (Ok(p), Err(_)) => format!("parent {p}"),
        (Err(_), _) => "parent ?".into(),
    };
    let kids = match &r.children {
        Ok(c) if c.is_empty() => "no children".to_owned(),
        Ok(c) => {
            let named: Vec<String> = c
                .iter()
                .take(8)
                .map(|k| format!("{} ({})", k.pid, k.name))
                .collect();
            let more = c.len().saturating_sub(8);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("children {}{more}", named.join(", "))
        }
        Err(e) => format!("children unknown ({e})"),
    };
    let ns = match (&r.pid_in_namespace, &r.pid_namespace_levels) {
        (Ok(p), Ok(n)) if *n > 1 => format!("; pid {p} inside its PID namespace ({n} levels)"),
        _ => String::new(),
    };
    for l in wrap(&format!("{parent}; {kids}{ns}"), WIDTH) {
        writeln!(out, "{l}")?;
    }
    if let Some(c) = &r.container {
        let mut parts = Vec::new();
        if let (Some(rt), Some(id)) = (c.runtime, c.short_id()) {
            parts.push(format!("container {id} ({})", rt.name()));
        }
        if let Some(uid) = &c.pod_uid {
            let qos = c.qos.map_or(String::new(), |q| {
                format!(", QoS {}", format!("{q:?}").to_lowercase())
            });
            parts.push(format!("pod {uid}{qos}"));
        }
        if let Some(u) = &c.unit {
            parts.push(format!("unit {u}"));
        }
        if !parts.is_empty() {
            writeln!(out, "{}", fit_end(&parts.join("; "), WIDTH))?;
        }
    }
    let watched = match r.window_seconds {
        Some(w) => format!(
            "watched {:.2} s ({} samples); rates are over that window",
            w, r.samples
        ),
        None => "one sample (--window 0): no rates".to_owned(),
    };
    let smaps = if r.smaps_read {
        "smaps read once"
    } else {
        "smaps not read (--no-smaps)"
    };
    writeln!(out, "{}", style.dim(&format!("{watched}; {smaps}")))?;
    if !r.other_matches.is_empty() {
        let others: Vec<String> = r.other_matches.iter().map(i32::to_string).collect();
        writeln!(
            out,
            "{}",
            style.dim(&fit_end(
                &format!("also matched: {}", others.join(" ")),
                WIDTH
            ))
        )?;
    }
    for s in &r.sections {
        section(out, s, style)?;
    }
    if !r.unreadable.is_empty() {
        writeln!(
            out,
            "\n{}",
            style.warn("Could not read (values above shown as missing):")
        )?;
        for reason in &r.unreadable {
            for (i, line) in wrap(reason, WIDTH - 4).iter().enumerate() {
                writeln!(out, "{}{line}", if i == 0 { "  - " } else { "    " })?;
            }
        }
    }
    Ok(())
}

/// The system report: the host, then every section.
pub fn system(
    out: &mut dyn Write,
    r: &crate::commands::system::SystemReport,
    style: &Style,
) -> io::Result<()> {
    writeln!(out, "{}", style.heading("syslens system"))?;
    writeln!(out, "{}", fit_end(&r.host.summary(), WIDTH))?;
    let watched = match r.window_seconds {
        Some(w) => format!("watched {w:.2} s; rates are over that window"),
        None => "one sample: no rates".to_owned(),
    };
    let scope = match &r.cgroup {
        Ok(p) => format!("; scoped to cgroup {p}"),
        Err(_) => String::new(),
    };
    writeln!(
        out,
        "{}",
        style.dim(&fit_end(&format!("{watched}{scope}"), WIDTH))
    )?;
    for s in &r.sections {
        section(out, s, style)?;
    }
    Ok(())
}

/// Compact sizes for the process table, as top prints them (1024-based).
fn compact_bytes(v: &Val<u64>) -> String {
    match v {
        Ok(0) => "0".to_owned(),
        Ok(b) => {
            let b = *b as f64;
            let (n, u) = if b >= 1024.0 * 1024.0 * 1024.0 {
                (b / (1024.0 * 1024.0 * 1024.0), "G")
            } else if b >= 1024.0 * 1024.0 {
                (b / (1024.0 * 1024.0), "M")
            } else {
                (b / 1024.0, "K")
            };
            if n >= 100.0 || n == n.trunc() {
                format!("{n:.0}{u}")
            } else {
                format!("{n:.1}{u}")
            }
        }
        Err(_) => "-".to_owned(),
    }
}

fn compact_count(n: u64) -> String {
    match n {
        0..=99_999 => n.to_string(),
        100_000..=9_999_999 => format!("{}K", n / 1000),
        _ => format!("{}M", n / 1_000_000),
    }
}

fn count_or_dash(v: &Val<u64>) -> String {
    v.as_ref().map_or("-".to_owned(), |n| compact_count(*n))
}

/// The process table of `system --processes`, one line per row.
pub fn processes(
    out: &mut dyn Write,
    rows: &[crate::model::ptable::Row],
    pss: bool,
    style: &Style,
) -> io::Result<()> {
    let pss_head = if pss { "   PSS" } else { "" };
    let fixed = 7 + 8 + 1 + 15 + 2 + 6 * 3 + 7 + 7 + 11 + 6 + 6 + 5 + if pss { 6 } else { 0 };
    // The cgroup column takes what is left; too little left, and it is left out (the
    // JSON has it in full).
    let cg_w = super::table_width().saturating_sub(fixed + 1);
    let cg_w = if cg_w >= 6 { cg_w } else { 0 };
    let head = format!(
        "{:>7}{:>8} {:<15}{:>2}{:>6}{:>6}{:>6}{pss_head}{:>7}{:>7}{:>11}{:>6}{:>6}{:>5} {}",
        "PID",
        "PPID",
        "COMMAND",
        "S",
        "RSS",
        "HWM",
        "SWAP",
        "MINFLT",
        "MAJFLT",
        "FDS/LIM",
        "VCSW",
        "NVCSW",
        "OOM",
        if cg_w == 0 {
            ""
        } else if cg_w >= 18 {
            "CGROUP / CONTAINER"
        } else {
            "CGROUP"
        }
    );
    writeln!(out, "{}", style.heading(head.trim_end()))?;
    let mut missing: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for r in rows {
        let fds = match (&r.fds, &r.fd_soft_limit) {
            (Ok(n), Ok(Some(l))) => format!("{}/{}", compact_count(*n), compact_count(*l)),
            (Ok(n), Ok(None)) => format!("{}/inf", compact_count(*n)),
            (Ok(n), Err(_)) => format!("{}/-", compact_count(*n)),
            (Err(_), _) => "-".to_owned(),
        };
        let pss_cell = match &r.pss_bytes {
            Some(v) if pss => format!("{:>6}", compact_bytes(v)),
            _ => String::new(),
        };
        // A container is named by runtime and short id, as `docker ps` does; a unit or
        // the bare path otherwise.
        let placed = r
            .container
            .as_ref()
            .and_then(|c| Some(format!("{} {}", c.runtime?.name(), c.short_id()?)));
        let cgroup = match &placed {
            _ if cg_w == 0 => String::new(),
            // The runtime and the id's start matter most.
            Some(p) => fit_end(p, cg_w),
            None => fit_start(r.cgroup.as_deref().unwrap_or("-"), cg_w),
        };
        // In a tree, each level indents the name by two.
        let name = format!("{:indent$}{}", "", r.name, indent = (r.depth * 2).min(10));
        let line = format!(
            "{:>7}{:>8} {:<15}{:>2}{:>6}{:>6}{:>6}{pss_cell}{:>7}{:>7}{:>11}{:>6}{:>6}{:>5} {}",
            r.pid,
            r.ppid,
            fit_end(&name, 15),
            r.state,
            compact_bytes(&r.rss_bytes),
            compact_bytes(&r.hwm_bytes),
            compact_bytes(&r.swap_bytes),
            compact_count(r.minflt),
            compact_count(r.majflt),
            fds,
            count_or_dash(&r.voluntary_switches),
            count_or_dash(&r.involuntary_switches),
            count_or_dash(&r.oom_score),
            cgroup,
        );
        writeln!(out, "{}", line.trim_end())?;
        for (col, v) in [
            ("fds", &r.fds),
            ("oom_score", &r.oom_score),
            ("RSS", &r.rss_bytes),
        ] {
            if let Err(m) = v {
                if m.kind() != "not_applicable" {
                    *missing
                        .entry(format!("{col}: {}", m.kind_reason()))
                        .or_default() += 1;
                }
            }
        }
        if let Some(Err(m)) = &r.pss_bytes {
            if m.kind() != "not_applicable" {
                *missing
                    .entry(format!("PSS: {}", m.kind_reason()))
                    .or_default() += 1;
            }
        }
    }
    writeln!(out, "{}", style.dim(&format!("{} processes", rows.len())))?;
    for (what, n) in missing {
        let n = if n == 1 {
            "1 process".to_owned()
        } else {
            format!("{n} processes")
        };
        writeln!(
            out,
            "{}",
            style.dim(&fit_end(&format!("- {what} ({n})"), WIDTH))
        )?;
    }
    Ok(())
}

/// Units that the value column shows itself; others go into the metric's name.
fn shows_unit(unit: &str) -> bool {
    matches!(unit, "ns" | "us" | "bytes" | "ratio" | "MB/s" | "")
}

/// A lab report: the host, each claim with its verdict, the metrics, the evidence and
/// the notes.
pub fn lab(
    out: &mut dyn Write,
    r: &crate::lab::report::LabReport,
    style: &Style,
) -> io::Result<()> {
    use crate::lab::report::Status;
    let head = format!("lab {} · {} ", r.concept.slug(), r.title);
    let rule = "─".repeat(WIDTH.saturating_sub(head.chars().count() + 4));
    writeln!(
        out,
        "\n{} {}",
        style.heading(&format!("── {head}")),
        style.dim(&rule)
    )?;
    writeln!(out, "{}", style.dim(&fit_end(&r.host.summary(), WIDTH)))?;
    for c in &r.checks {
        let mark = match c.status {
            Status::Passed => style.good("passed "),
            Status::Failed => style.bad("FAILED "),
            Status::Skipped => style.warn("skipped"),
        };
        let lines = wrap(&c.claim, WIDTH - 12);
        for (i, l) in lines.iter().enumerate() {
            if i == 0 {
                writeln!(out, "  {mark}  {l}")?;
            } else {
                writeln!(out, "           {l}")?;
            }
        }
        if !c.observed.is_empty() || !c.expected.is_empty() {
            writeln!(
                out,
                "           {}",
                style.dim(&fit_end(
                    &format!("observed {}, expected {}", c.observed, c.expected),
                    WIDTH - 11
                ))
            )?;
        }
        if let Some(reason) = &c.reason {
            for l in wrap(reason, WIDTH - 11) {
                writeln!(out, "           {}", style.dim(&l))?;
            }
        }
    }
    if !r.metrics.is_empty() {
        writeln!(out, "  {}", style.heading("metrics"))?;
        writeln!(
            out,
            "    {}",
            style.dim(&format!(
                "{:<44} {:>4} {:>10} {:>10} {:>10} {:>10}",
                "", "n", "min", "median", "p99", "max"
            ))
        )?;
        for m in &r.metrics {
            let s = &m.summary;
            writeln!(
                out,
                "    {:<44} {:>4} {:>10} {:>10} {:>10} {:>10}",
                fit_end(
                    &if shows_unit(m.unit) {
                        m.name.clone()
                    } else {
                        format!("{} ({})", m.name, m.unit)
                    },
                    44
                ),
                s.n,
                metric_value(s.min, m.unit),
                metric_value(s.median, m.unit),
                metric_value(s.p99, m.unit),
                metric_value(s.max, m.unit)
            )?;
            if let Some(b) = m.baseline {
                writeln!(
                    out,
                    "      {}",
                    style.dim(&format!(
                        "baseline {} subtracted: net {}",
                        metric_value(b, m.unit),
                        metric_value(s.median - b, m.unit)
                    ))
                )?;
            }
            if let Some(noise) = &m.noisy {
                for l in wrap(&format!("noisy: {noise}"), WIDTH - 8) {
                    writeln!(out, "      {}", style.warn(&l))?;
                }
            }
        }
    }
    if !r.evidence.is_empty() {
        writeln!(out, "  {}", style.heading("evidence"))?;
        for e in &r.evidence {
            let v = |x: f64| metric_value(x, e.unit);
            writeln!(
                out,
                "    {:<26} {:>12} -> {:<12} {}",
                fit_end(&e.field, 26),
                v(e.before),
                v(e.after),
                style.dim(&fit_start(&e.source, 40))
            )?;
        }
    }
    for n in &r.notes {
        for (i, l) in wrap(n, WIDTH - 6).iter().enumerate() {
            writeln!(
                out,
                "{}{}",
                if i == 0 { "  ▸ " } else { "    " },
                style.dim(l)
            )?;
        }
    }
    let (p, f, s) = (
        r.count(Status::Passed),
        r.count(Status::Failed),
        r.count(Status::Skipped),
    );
    writeln!(
        out,
        "  {}",
        style.dim(&format!(
            "{p} passed, {f} failed, {s} skipped in {:.1} s",
            r.duration_seconds
        ))
    )?;
    Ok(())
}

/// An explanation: the paragraphs, the lab's code, what to learn next, where to read.
pub fn explain(
    out: &mut dyn Write,
    e: &crate::commands::explain::Explanation,
    style: &Style,
) -> io::Result<()> {
    writeln!(
        out,
        "{}",
        style.heading(&format!("{} · {}", e.concept.slug(), e.title))
    )?;
    for p in &e.paragraphs {
        writeln!(out)?;
        for line in wrap(p, WIDTH) {
            writeln!(out, "{line}")?;
        }
    }
    writeln!(
        out,
        "\n{}",
        style.heading(&format!(
            "The lines of the lab that provoke it ({})",
            e.code_file
        ))
    )?;
    for line in e.code.lines() {
        writeln!(out, "    {}", fit_end(line, WIDTH - 4))?;
    }
    writeln!(out, "\n{}", style.heading("More"))?;
    for m in &e.more {
        for (i, line) in wrap(m, WIDTH - 4).iter().enumerate() {
            writeln!(out, "  {} {line}", if i == 0 { "-" } else { " " })?;
        }
    }
    writeln!(out, "\n{}", style.heading("Read next"))?;
    for r in &e.read_next {
        writeln!(out, "  - {r}")?;
    }
    Ok(())
}

/// The doctor report: what was watched, each finding with its evidence and advice, the
/// rules not run and what could not be read.
pub fn doctor(
    out: &mut dyn Write,
    r: &crate::commands::doctor::DoctorReport,
    style: &Style,
) -> io::Result<()> {
    use crate::model::doctor::Severity;
    let head = if r.window_seconds > 0.0 {
        format!(
            "syslens doctor: {} processes watched for {:.1} s",
            r.processes, r.window_seconds
        )
    } else {
        format!("syslens doctor: {} processes, one sample", r.processes)
    };
    writeln!(out, "{}", style.heading(&head))?;
    if r.findings.is_empty() {
        writeln!(out, "{}", style.good("no findings"))?;
    }
    for f in &r.findings {
        let sev = match f.severity {
            Severity::Error => style.bad("ERROR  "),
            Severity::Warning => style.warn("warning"),
            Severity::Info => style.dim("info   "),
        };
        writeln!(
            out,
            "\n{sev} {} · {}  {}",
            f.concept.slug(),
            f.subject,
            style.dim(f.rule)
        )?;
        for l in wrap(&f.message, WIDTH - 10) {
            writeln!(out, "        {l}")?;
        }
        for e in &f.evidence {
            writeln!(out, "        {}", style.dim(&fit_end(e, WIDTH - 8)))?;
        }
        for (i, l) in wrap(&f.advice, WIDTH - 12).iter().enumerate() {
            writeln!(out, "        {}{l}", if i == 0 { "→ " } else { "  " })?;
        }
    }
    for n in &r.rules_not_run {
        for l in wrap(&format!("not run: {n}"), WIDTH) {
            writeln!(out, "{}", style.dim(&l))?;
        }
    }
    for u in &r.unreadable {
        writeln!(
            out,
            "{}",
            style.dim(&fit_end(&format!("not read: {u}"), WIDTH))
        )?;
    }
    Ok(())
}

/// Local wall-clock time of day with milliseconds (`14:03:27.125`), as event streams
/// print it; UTC where the local zone cannot be had.
pub fn clock_time(t: std::time::SystemTime) -> String {
    let since = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    // jiff reads the zone once (TZ, /etc/localtime) and caches it.
    let clock = jiff::Timestamp::try_from(t)
        .map(|ts| {
            ts.to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime("%H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| {
            let d = since.as_secs() % 86_400;
            format!("{:02}:{:02}:{:02}", d / 3600, d % 3600 / 60, d % 60)
        });
    format!("{clock}.{:03}", since.subsec_millis())
}

/// `inspect --at`: one recorded process, the sample it comes from, its events.
pub fn recorded_process(
    out: &mut dyn Write,
    p: &crate::commands::past::PastProcess,
    style: &Style,
) -> io::Result<()> {
    let r = &p.row;
    writeln!(
        out,
        "{} {} ({})",
        style.heading("pid"),
        r.pid,
        clean(&r.name)
    )?;
    writeln!(out, "  {}", p.sample.line)?;
    let bytes =
        |v: Option<u64>| v.map_or("-".to_string(), |b| crate::model::units::bytes(b as f64));
    let val = |v: &Val<u64>| v.as_ref().ok().copied();
    let lines = [
        ("state", r.state.clone()),
        ("parent", r.ppid.to_string()),
        ("user", val(&r.uid).map_or("-".into(), |u| u.to_string())),
        ("threads", p.threads.to_string()),
        ("nice", p.nice.to_string()),
        (
            "cpu",
            format!(
                "{:.2} s user, {:.2} s system",
                p.cpu_user_seconds, p.cpu_system_seconds
            ),
        ),
        (
            "memory",
            format!(
                "RSS {} (anon {}, file {}, shmem {}), peak {}, swap {}",
                bytes(val(&r.rss_bytes)),
                bytes(p.rss_anon_bytes),
                bytes(p.rss_file_bytes),
                bytes(p.rss_shmem_bytes),
                bytes(val(&r.hwm_bytes)),
                bytes(val(&r.swap_bytes))
            ),
        ),
        ("faults", format!("{} minor, {} major", r.minflt, r.majflt)),
        (
            "files",
            match (val(&r.fds), &r.fd_soft_limit) {
                (Some(n), Ok(Some(l))) => format!("{n} open of a soft limit of {l}"),
                (Some(n), _) => format!("{n} open"),
                (None, _) => "-".into(),
            },
        ),
        (
            "switches",
            format!(
                "{} voluntary, {} involuntary",
                val(&r.voluntary_switches).map_or("-".into(), |v| v.to_string()),
                val(&r.involuntary_switches).map_or("-".into(), |v| v.to_string())
            ),
        ),
        (
            "oom score",
            val(&r.oom_score).map_or("-".into(), |v| v.to_string()),
        ),
        (
            "cgroup",
            r.cgroup
                .as_ref()
                .map_or("-".into(), |c| clean(c).to_string()),
        ),
        (
            "recorded since",
            p.first_recorded.clone().unwrap_or_else(|| "-".into()),
        ),
    ];
    for (k, v) in lines {
        writeln!(out, "  {k:<15} {v}")?;
    }
    if p.events.is_empty() {
        writeln!(out, "  no recorded events")?;
    } else {
        writeln!(out, "  {}", style.heading("events"))?;
        for e in &p.events {
            let text = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("");
            writeln!(
                out,
                "    {}  {:<10} {}",
                text("time"),
                text("kind"),
                clean(text("line"))
            )?;
        }
    }
    Ok(())
}

/// `events --store`: one line per recorded event, as `watch` prints them.
pub fn recorded_events(
    out: &mut dyn Write,
    events: &[crate::record::store::StoredEvent],
) -> io::Result<()> {
    for e in events {
        let t = crate::record::store::from_unix_ns(e.time_ns);
        writeln!(
            out,
            "{}  {:<18} {:<16} {}",
            crate::record::time::local(t),
            clean(&e.concept),
            clean(&e.kind),
            clean(&e.line)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::CONCEPTS;
    use crate::commands::explain::explanation;
    use crate::render::ColorChoice;

    #[test]
    fn issue_21_explain_pages_have_their_sections_and_fit_the_width() {
        for c in &CONCEPTS {
            let e = explanation(c.id);
            let mut out = Vec::new();
            explain(&mut out, &e, &Style::new(ColorChoice::Never)).unwrap();
            let text = String::from_utf8(out).unwrap();
            let at = |heading: &str| text.find(&format!("\n{heading}\n"));
            let quote = format!("The lines of the lab that provoke it ({})", e.code_file);
            let (code, more, read) = (at(&quote), at("More"), at("Read next"));
            assert!(
                matches!((code, more, read), (Some(a), Some(b), Some(c)) if a < b && b < c),
                "{}: sections missing or out of order:\n{text}",
                c.slug
            );
            let items = text[more.unwrap_or(0)..read.unwrap_or(0)]
                .lines()
                .filter(|l| l.starts_with("  - "))
                .count();
            assert_eq!(items, e.more.len(), "{}", c.slug);
            for line in text.lines() {
                assert!(
                    line.chars().count() <= WIDTH,
                    "{}: too wide: {line}",
                    c.slug
                );
            }
            // No quoted line is cut: the quote is the lab's code, whole.
            for line in e.code.lines() {
                assert!(line.chars().count() <= WIDTH - 4, "{}: cut: {line}", c.slug);
            }
        }
    }

    #[test]
    fn clock_time_is_the_local_time_of_day_with_milliseconds() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(3_601_125);
        let c = clock_time(t);
        assert_eq!(c.len(), "01:00:01.125".len(), "{c}");
        // Zones differ by whole quarter hours at most: the seconds and milliseconds
        // are the same everywhere.
        assert!(c.ends_with(":01.125"), "{c}");
    }
}
