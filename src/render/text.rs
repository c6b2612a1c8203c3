//! Text rendering of sections (figures, tables, notes), laid out to the width every
//! text command shares ([`super::width`]): long text wraps at word boundaries with a
//! hanging indent, table cells wrap within their column, and no value or word is cut
//! (a word wider than the page stays whole on a line of its own).

use std::io::{self, Write};

use syslens_probe::Val;

use crate::commands::inspect::InspectReport;
use crate::model::figure::{Figure, Table, Unit, Value};
use crate::model::process::Section;

use super::safe::clean;
use super::{
    display_width, pad_end, pad_start, plain, value, width, wrap, wrap_hanging, write_wrapped,
    Style,
};
use crate::model::units::metric_value;

/// Where what does not fit beside a figure or a row goes: six columns in.
const BELOW: &str = "      ";

fn cell(v: &Val<Value>, unit: Unit) -> String {
    match v {
        Ok(v) => value(v, unit),
        Err(_) => "—".to_owned(),
    }
}

/// The median's 95% interval as its half-width over the median ("±2.1%"); "-" where
/// there is none (under 6 samples, or a median of 0).
fn ci_text(s: &crate::lab::stats::Summary) -> String {
    s.ci_half_rel()
        .map_or_else(|| "-".to_owned(), |h| format!("±{:.1}%", h * 100.0))
}

/// Writes `name` wrapped in a column of `name_w` display columns after `indent`, with
/// `cells` (laid out and painted by the caller) beside its first line and
/// the name's further lines below it, two columns further in. When the name's first
/// word alone is wider than its column, the name takes lines of its own and the cells
/// the next one, so nothing is cut and the columns stay aligned.
fn name_row(
    out: &mut dyn Write,
    indent: &str,
    name: &str,
    name_w: usize,
    cells: &str,
) -> io::Result<()> {
    let names = wrap_hanging(name, name_w, name_w.saturating_sub(2));
    let first_fits = names.first().is_none_or(|n| display_width(n) <= name_w);
    let (beside, below) = if first_fits {
        (
            names.first().map_or("", String::as_str),
            names.get(1..).unwrap_or(&[]),
        )
    } else {
        for n in &names {
            writeln!(out, "{indent}{n}")?;
        }
        ("", &[][..])
    };
    writeln!(
        out,
        "{}",
        format!("{indent}{}{cells}", pad_end(beside, name_w)).trim_end()
    )?;
    for n in below {
        writeln!(out, "{indent}  {n}")?;
    }
    Ok(())
}

/// The columns of a figure line: the name, then the value (40 and 20 at the default
/// width of 100, less when narrower), then the source in what is left.
#[derive(Debug, Clone, Copy)]
struct FigureColumns {
    name: usize,
    value: usize,
    width: usize,
}

impl FigureColumns {
    fn at(width: usize) -> FigureColumns {
        FigureColumns {
            name: (width * 2 / 5).clamp(16, 40),
            value: (width / 5).clamp(12, 20),
            width,
        }
    }
}

/// One figure: the name and the value with its unit on one line, the source beside
/// them where it fits, else on the line below; a value too long for its column, or
/// why the value is missing, on the lines below.
fn figure(out: &mut dyn Write, f: &Figure, cols: FigureColumns, style: &Style) -> io::Result<()> {
    let text = match &f.value {
        Ok(v) => value(v, f.unit),
        Err(_) => "missing".to_owned(),
    };
    let beside = display_width(&text) <= cols.value;
    let shown = if beside { text.as_str() } else { "" };
    let source = clean(&f.source);
    let row_w = 2 + cols.name + 1 + cols.value;
    let source_beside = row_w + 2 + display_width(&source) <= cols.width;
    let painted = match &f.value {
        Ok(_) => pad_start(shown, cols.value),
        Err(_) => format!(
            "{:pad$}{}",
            "",
            style.warn(shown),
            pad = cols.value.saturating_sub(display_width(shown))
        ),
    };
    let cells = if source_beside {
        format!(" {painted}  {}", style.dim(&source))
    } else {
        format!(" {painted}")
    };
    name_row(out, "  ", &f.name, cols.name, &cells)?;
    if !source_beside {
        write_wrapped(out, &source, cols.width, BELOW, BELOW, |l| style.dim(l))?;
    }
    match &f.value {
        Ok(_) if !beside => write_wrapped(out, &text, cols.width, BELOW, BELOW, plain),
        Ok(_) => Ok(()),
        Err(m) => write_wrapped(out, &m.to_string(), cols.width, BELOW, BELOW, |l| {
            style.dim(l)
        }),
    }
}

/// The longest word of `s`, in display columns.
fn longest_word(s: &str) -> usize {
    s.split(' ').map(display_width).max().unwrap_or(0)
}

/// A table: its title and source, the columns, then the rows. Where the columns do not
/// fit the width, the widest text column narrows and its cells wrap within it; a number
/// is never wrapped or cut. A cell holding a word wider than its column is written
/// whole below its row, named by its column.
pub fn table(out: &mut dyn Write, t: &Table, style: &Style, width: usize) -> io::Result<()> {
    let (title, source) = (clean(&t.title), clean(&t.source));
    if 2 + display_width(&title) + 2 + display_width(&source) <= width {
        writeln!(out, "  {title}  {}", style.dim(&source))?;
    } else {
        write_wrapped(out, &title, width, "  ", "    ", plain)?;
        write_wrapped(out, &source, width, "    ", "    ", |l| style.dim(l))?;
    }
    let heads: Vec<String> = t
        .columns
        .iter()
        .map(|c| clean(&c.name).into_owned())
        .collect();
    let rows: Vec<Vec<String>> = t
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
    // Text wraps; numbers (and the missing mark), even those a lens gave as text (the
    // buddy table's "0.00"), keep their whole width.
    let is_text: Vec<bool> = (0..n)
        .map(|i| {
            t.rows.iter().any(|r| match r.get(i) {
                Some(Ok(Value::Text(s))) => !s.is_empty() && s.trim().parse::<f64>().is_err(),
                Some(Ok(Value::List(_))) => true,
                _ => false,
            })
        })
        .collect();
    let mut widths: Vec<usize> = heads.iter().map(|h| display_width(h)).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(display_width(c));
        }
    }
    let floors: Vec<usize> = (0..n)
        .map(|i| match is_text[i] {
            true => longest_word(&heads[i]).max(8).min(widths[i]),
            false => widths[i],
        })
        .collect();
    let budget = width.saturating_sub(4 + 2 * n.saturating_sub(1));
    while widths.iter().sum::<usize>() > budget {
        let widest = (0..n)
            .filter(|&i| widths[i] > floors[i])
            .max_by_key(|&i| widths[i]);
        let Some(i) = widest else { break };
        widths[i] -= 1;
    }
    // Numbers that still do not fit go to further bands, each after the leading text
    // columns that name the rows (buddyinfo's eleven orders at 80 columns).
    let keys: Vec<usize> = (0..n).take_while(|&i| is_text[i]).collect();
    let keys_w: usize = keys.iter().map(|&i| widths[i] + 2).sum();
    let mut bands: Vec<Vec<usize>> = Vec::new();
    let mut band: Vec<usize> = Vec::new();
    let mut used = keys_w;
    for (i, &w) in widths.iter().enumerate().skip(keys.len()) {
        if !band.is_empty() && 4 + used + w > width {
            bands.push(std::mem::take(&mut band));
            used = keys_w;
        }
        band.push(i);
        used += w + 2;
    }
    if !band.is_empty() || bands.is_empty() {
        bands.push(band);
    }
    let write_row = |out: &mut dyn Write, cols: &[usize], row: &[String], head: bool| {
        let mut below = Vec::new();
        let columns: Vec<Vec<String>> = cols
            .iter()
            .map(|&i| {
                let c = row.get(i).map_or("", String::as_str);
                if !is_text[i] {
                    return vec![c.to_owned()];
                }
                let lines = wrap(c, widths[i]);
                if lines.iter().any(|l| display_width(l) > widths[i]) {
                    below.push(format!("{}: {c}", heads[i]));
                    return Vec::new();
                }
                lines
            })
            .collect();
        let height = columns.iter().map(Vec::len).max().unwrap_or(0).max(1);
        for k in 0..height {
            let line = columns
                .iter()
                .zip(cols)
                .map(|(lines, &i)| {
                    let c = lines.get(k).map_or("", String::as_str);
                    match t.columns[i].unit {
                        Unit::None => pad_end(c, widths[i]),
                        _ => pad_start(c, widths[i]),
                    }
                })
                .collect::<Vec<_>>()
                .join("  ");
            let line = line.trim_end();
            if head {
                writeln!(out, "    {}", style.dim(line))?;
            } else {
                writeln!(out, "    {line}")?;
            }
        }
        for b in below {
            write_wrapped(out, &b, width, BELOW, "        ", plain)?;
        }
        io::Result::Ok(())
    };
    for (b, band) in bands.iter().enumerate() {
        if b > 0 {
            writeln!(out)?;
        }
        let cols: Vec<usize> = keys.iter().chain(band).copied().collect();
        write_row(out, &cols, &heads, true)?;
        for row in &rows {
            write_row(out, &cols, row, false)?;
        }
    }
    let missing = t.rows.iter().flatten().find_map(|c| c.as_ref().err());
    if let Some(first) = missing {
        write_wrapped(
            out,
            &format!("— missing: {first}"),
            width,
            "    ",
            BELOW,
            |l| style.dim(l),
        )?;
    }
    Ok(())
}

/// A heading with a rule to the width: `── head ───…`.
/// The display width of a column: its widest value, or its heading when wider.
fn widest(values: &[impl AsRef<str>], heading: &str) -> usize {
    values
        .iter()
        .map(|v| display_width(v.as_ref()))
        .max()
        .unwrap_or(0)
        .max(display_width(heading))
}

/// Packs labelled figures ("median 17 ns") into lines of at most `width` columns, two
/// spaces apart; a figure is never split across lines.
fn pack(figures: &[String], width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for f in figures {
        match lines.last_mut() {
            Some(l) if display_width(l) + 2 + display_width(f) <= width => {
                l.push_str("  ");
                l.push_str(f);
            }
            _ => lines.push(f.clone()),
        }
    }
    lines
}

fn heading_rule(out: &mut dyn Write, head: &str, style: &Style, width: usize) -> io::Result<()> {
    if display_width(head) + 3 > width {
        // Too narrow for a rule: the heading wraps beneath its "── " rather than overflow.
        writeln!(out)?;
        return write_wrapped(out, head.trim_end(), width, "── ", "   ", |l| {
            style.heading(l)
        });
    }
    let rule = "─".repeat(width.saturating_sub(display_width(head) + 4));
    writeln!(
        out,
        "\n{} {}",
        style.heading(&format!("── {head}")),
        style.dim(&rule)
    )
}

/// A section: the concept's heading rule, its figures, tables and notes.
pub fn section(out: &mut dyn Write, s: &Section, style: &Style, width: usize) -> io::Result<()> {
    let head = format!("{} · {} ", s.concept.slug(), clean(s.title));
    heading_rule(out, &head, style, width)?;
    let cols = FigureColumns::at(width);
    for f in &s.figures {
        figure(out, f, cols, style)?;
    }
    for t in &s.tables {
        table(out, t, style, width)?;
    }
    for n in &s.notes {
        write_wrapped(out, n, width, "  ▸ ", "    ", |l| style.dim(l))?;
    }
    Ok(())
}

/// The inspect report: the process, then every section, then what could not be read.
pub fn inspect(out: &mut dyn Write, r: &InspectReport, style: &Style) -> io::Result<()> {
    let width = width();
    let name = clean(r.name.as_deref().unwrap_or("?"));
    let state = r.state.as_deref().unwrap_or("?");
    let uid = r.uid.as_ref().map_or("?".to_owned(), u64::to_string);
    let head = format!("pid {}  {name}  {state}  uid {uid}", r.pid);
    write_wrapped(out, &head, width, "", "    ", |l| style.heading(l))?;
    if let Ok(cmd) = &r.cmdline {
        write_wrapped(out, cmd, width, "", "    ", plain)?;
    }
    let parent = match (&r.ppid, &r.parent_name) {
        (Ok(p), Ok(n)) => format!("parent {p} ({})", clean(n)),
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
    write_wrapped(
        out,
        &format!("{parent}; {kids}{ns}"),
        width,
        "",
        "    ",
        plain,
    )?;
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
        write_wrapped(out, &parts.join("; "), width, "", "    ", plain)?;
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
    let dim = |l: &str| style.dim(l);
    write_wrapped(out, &format!("{watched}; {smaps}"), width, "", "    ", dim)?;
    if !r.other_matches.is_empty() {
        let others: Vec<String> = r.other_matches.iter().map(i32::to_string).collect();
        let also = format!("also matched: {}", others.join(" "));
        write_wrapped(out, &also, width, "", "    ", dim)?;
    }
    for s in &r.sections {
        section(out, s, style, width)?;
    }
    if !r.unreadable.is_empty() {
        writeln!(out)?;
        let head = "Could not read (values above shown as missing):";
        write_wrapped(out, head, width, "", "", |l| style.warn(l))?;
        for reason in &r.unreadable {
            write_wrapped(out, reason, width, "  - ", "    ", plain)?;
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
    let width = width();
    writeln!(out, "{}", style.heading("syslens system"))?;
    write_wrapped(out, &r.host.summary(), width, "", "    ", plain)?;
    let watched = match r.window_seconds {
        Some(w) => format!("watched {w:.2} s; rates are over that window"),
        None => "one sample: no rates".to_owned(),
    };
    let scope = match &r.cgroup {
        Ok(p) => format!("; scoped to cgroup {p}"),
        Err(_) => String::new(),
    };
    let dim = |l: &str| style.dim(l);
    write_wrapped(out, &format!("{watched}{scope}"), width, "", "    ", dim)?;
    for s in &r.sections {
        section(out, s, style, width)?;
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
    // In a tree, each level indents the name by two.
    let names: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{:indent$}{}",
                "",
                clean(&r.name),
                indent = (r.depth * 2).min(10)
            )
        })
        .collect();
    // COMMAND is as wide as its longest name (a kernel thread's reaches 64 bytes, not
    // the 15 of a task's comm), so no name is cut while the width has room for it.
    let command_w = widest(&names, "COMMAND");
    // (heading, width, rank): when the line is too wide the lowest rank goes first, as
    // htop drops columns; PID and COMMAND are never dropped.
    let all: [(&str, usize, u8); 14] = [
        ("PID", 7, u8::MAX),
        ("PPID", 8, 9),
        ("COMMAND", command_w + 1, u8::MAX),
        ("S", 2, 10),
        ("RSS", 6, 11),
        ("HWM", 6, 4),
        ("SWAP", 6, 3),
        ("PSS", if pss { 6 } else { 0 }, 8),
        ("MINFLT", 7, 5),
        ("MAJFLT", 7, 6),
        ("FDS/LIM", 11, 7),
        ("VCSW", 6, 2),
        ("NVCSW", 6, 1),
        ("OOM", 5, 4),
    ];
    let width = width();
    let mut keep: Vec<bool> = all.iter().map(|c| c.1 > 0).collect();
    let used = |keep: &[bool]| -> usize {
        all.iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c.1)
            .sum()
    };
    while used(&keep) > width {
        let Some(i) = (0..all.len())
            .filter(|i| keep[*i] && all[*i].2 < u8::MAX)
            .min_by_key(|i| all[*i].2)
        else {
            break;
        };
        keep[i] = false;
    }
    // A name wider than all the width the kept columns leave continues on the next
    // lines, under COMMAND: a name is never cut.
    let others = used(&keep) - (command_w + 1);
    let command_w = command_w.min(width.saturating_sub(others + 1)).max(7);
    let command_at = all
        .iter()
        .zip(&keep)
        .take_while(|(c, _)| c.0 != "COMMAND")
        .filter(|(_, k)| **k)
        .map(|(c, _)| c.1)
        .sum::<usize>()
        + 1;
    // A container is named by runtime and short id, as `docker ps` does; the cgroup's
    // path otherwise.
    let placements: Vec<String> = rows
        .iter()
        .map(|r| {
            r.container
                .as_ref()
                .and_then(|c| Some(format!("{} {}", c.runtime?.name(), c.short_id()?)))
                .unwrap_or_else(|| clean(r.cgroup.as_deref().unwrap_or("-")).into_owned())
        })
        .collect();
    // The cgroup column takes what is left when its longest value fits there; else it
    // is left out, and said so (the JSON has it in full).
    let cg_need = widest(&placements, "CGROUP");
    let cg_room = width.saturating_sub(others + command_w + 2);
    let cg_w = if cg_room >= cg_need { cg_room } else { 0 };
    let line_of = |cells: [&str; 14], cgroup: &str| -> String {
        let mut line = String::new();
        for ((c, cell), k) in all.iter().zip(cells).zip(&keep) {
            if !k {
                continue;
            }
            if c.0 == "COMMAND" {
                line.push(' ');
                line.push_str(&pad_end(cell, command_w));
            } else {
                line.push_str(&format!("{cell:>w$}", w = c.1));
            }
        }
        if !cgroup.is_empty() {
            line.push(' ');
            line.push_str(cgroup);
        }
        line
    };
    let heads = all.map(|c| c.0);
    let head = line_of(
        heads,
        if cg_w == 0 {
            ""
        } else if cg_w >= 18 {
            "CGROUP / CONTAINER"
        } else {
            "CGROUP"
        },
    );
    writeln!(out, "{}", style.heading(head.trim_end()))?;
    let mut missing: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for ((r, name), placed) in rows.iter().zip(&names).zip(&placements) {
        let fds = match (&r.fds, &r.fd_soft_limit) {
            (Ok(n), Ok(Some(l))) => format!("{}/{}", compact_count(*n), compact_count(*l)),
            (Ok(n), Ok(None)) => format!("{}/inf", compact_count(*n)),
            (Ok(n), Err(_)) => format!("{}/-", compact_count(*n)),
            (Err(_), _) => "-".to_owned(),
        };
        let pss_cell = match &r.pss_bytes {
            Some(v) => compact_bytes(v),
            None => String::new(),
        };
        let cgroup = if cg_w == 0 { "" } else { placed.as_str() };
        let mut name_pieces = super::break_value(name, command_w).into_iter();
        let name = name_pieces.next().unwrap_or_default();
        let (pid, ppid) = (r.pid.to_string(), r.ppid.to_string());
        let (state, rss, hwm, swap) = (
            r.state.to_string(),
            compact_bytes(&r.rss_bytes),
            compact_bytes(&r.hwm_bytes),
            compact_bytes(&r.swap_bytes),
        );
        let (minflt, majflt) = (compact_count(r.minflt), compact_count(r.majflt));
        let (vcsw, nvcsw, oom) = (
            count_or_dash(&r.voluntary_switches),
            count_or_dash(&r.involuntary_switches),
            count_or_dash(&r.oom_score),
        );
        let line = line_of(
            [
                &pid, &ppid, &name, &state, &rss, &hwm, &swap, &pss_cell, &minflt, &majflt, &fds,
                &vcsw, &nvcsw, &oom,
            ],
            cgroup,
        );
        writeln!(out, "{}", line.trim_end())?;
        for piece in name_pieces {
            writeln!(out, "{:command_at$}{piece}", "")?;
        }
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
    let count = match rows.len() {
        1 => "1 process".to_owned(),
        n => format!("{n} processes"),
    };
    writeln!(out, "{}", style.dim(&count))?;
    if cg_w == 0 && cg_room >= "CGROUP".len() {
        write_wrapped(
            out,
            &format!(
                "- CGROUP left out: its longest value needs {cg_need} columns, {cg_room} are left (a wider terminal, or --json)"
            ),
            width,
            "",
            "  ",
            |l| style.dim(l),
        )?;
    }
    for (what, n) in missing {
        let n = if n == 1 {
            "1 process".to_owned()
        } else {
            format!("{n} processes")
        };
        write_wrapped(out, &format!("- {what} ({n})"), width, "", "  ", |l| {
            style.dim(l)
        })?;
    }
    Ok(())
}

/// Units that the value column shows itself; others go into the metric's name.
fn shows_unit(unit: &str) -> bool {
    matches!(unit, "ns" | "us" | "bytes" | "ratio" | "MB/s" | "")
}

/// Where a lab check's text starts: after `  passed   `.
const CHECK_INDENT: &str = "           ";

/// A lab report: the host, each claim with its verdict, the metrics, the evidence and
/// the notes.
pub fn lab(
    out: &mut dyn Write,
    r: &crate::lab::report::LabReport,
    style: &Style,
) -> io::Result<()> {
    use crate::lab::report::Status;
    let width = width();
    let dim = |l: &str| style.dim(l);
    let head = format!("lab {} · {} ", r.concept.slug(), r.title);
    heading_rule(out, &head, style, width)?;
    write_wrapped(out, &r.host.summary(), width, "", "    ", dim)?;
    if let Some(c) = &r.calibration {
        write_wrapped(out, &c.summary(), width, "", "    ", dim)?;
    }
    let text_w = width.saturating_sub(CHECK_INDENT.len());
    for c in &r.checks {
        let mark = match c.status {
            Status::Passed => style.good("passed "),
            Status::Failed => style.bad("FAILED "),
            Status::Skipped => style.warn("skipped"),
        };
        // The mark is painted: the claim is wrapped beside it by hand.
        for (i, l) in wrap(&c.claim, text_w).iter().enumerate() {
            if i == 0 {
                writeln!(out, "  {mark}  {l}")?;
            } else {
                writeln!(out, "{CHECK_INDENT}{l}")?;
            }
        }
        if !c.observed.is_empty() || !c.expected.is_empty() {
            let seen = format!("observed {}, expected {}", c.observed, c.expected);
            write_wrapped(out, &seen, width, CHECK_INDENT, "             ", dim)?;
        }
        if let Some(reason) = &c.reason {
            write_wrapped(out, reason, width, CHECK_INDENT, CHECK_INDENT, dim)?;
        }
    }
    if !r.metrics.is_empty() {
        writeln!(out, "  {}", style.heading("metrics"))?;
        // n, four figures of up to 10 columns and the median's interval (7) take 57;
        // the name what is left, at least 12. Narrower than that, each metric is its
        // name, then its figures labelled and packed beneath it.
        let table = width >= 4 + 12 + 57;
        let name_w = width.saturating_sub(4 + 57).clamp(12, 44);
        let figures = |n: &str, v: [&str; 5]| {
            format!(
                " {} {} {} {} {} {}",
                pad_start(n, 4),
                pad_start(v[0], 10),
                pad_start(v[1], 10),
                pad_start(v[2], 7),
                pad_start(v[3], 10),
                pad_start(v[4], 10)
            )
        };
        if table {
            let head = figures("n", ["min", "median", "95% CI", "p99", "max"]);
            writeln!(out, "    {}", style.dim(&format!("{:name_w$}{head}", "")))?;
        }
        for m in &r.metrics {
            let s = &m.summary;
            let name = if shows_unit(m.unit) {
                m.name.clone()
            } else {
                format!("{} ({})", m.name, m.unit)
            };
            let v = |x: f64| metric_value(x, m.unit);
            let (min, median, p99, max) = (v(s.min), v(s.median), v(s.p99), v(s.max));
            let ci = ci_text(s);
            if table {
                let cells = figures(&s.n.to_string(), [&min, &median, &ci, &p99, &max]);
                name_row(out, "    ", &name, name_w, &cells)?;
            } else {
                write_wrapped(out, &name, width, "    ", "      ", plain)?;
                let labelled = [
                    format!("n {}", s.n),
                    format!("min {min}"),
                    format!("median {median}"),
                    format!("95% CI {ci}"),
                    format!("p99 {p99}"),
                    format!("max {max}"),
                ];
                for l in pack(&labelled, width.saturating_sub(BELOW.len())) {
                    writeln!(out, "{BELOW}{l}")?;
                }
            }
            if let Some(b) = m.baseline {
                let net = format!(
                    "baseline {} subtracted: net {}",
                    metric_value(b, m.unit),
                    metric_value(s.median - b, m.unit)
                );
                write_wrapped(out, &net, width, BELOW, "        ", dim)?;
            }
            if let Some(noise) = &m.noisy {
                let noise = format!("noisy: {noise}");
                write_wrapped(out, &noise, width, BELOW, "        ", |l| style.warn(l))?;
            }
        }
    }
    if !r.evidence.is_empty() {
        writeln!(out, "  {}", style.heading("evidence"))?;
        let field_w = 26;
        for e in &r.evidence {
            let v = |x: f64| metric_value(x, e.unit);
            let change = format!(
                " {} -> {}",
                pad_start(&v(e.before), 12),
                pad_end(&v(e.after), 12)
            );
            let source = clean(&e.source);
            if 4 + field_w + display_width(&change) > width {
                // Too narrow for the row: the field, then its change beneath it.
                write_wrapped(out, &e.field, width, "    ", "      ", plain)?;
                let change = format!("{} -> {}", v(e.before), v(e.after));
                write_wrapped(out, &change, width, BELOW, BELOW, plain)?;
                write_wrapped(out, &source, width, BELOW, BELOW, dim)?;
                continue;
            }
            let beside = 4 + field_w + display_width(&change) + 1 + display_width(&source) <= width;
            let cells = match beside {
                true => format!("{change} {}", style.dim(&source)),
                false => change,
            };
            name_row(out, "    ", &e.field, field_w, &cells)?;
            if !beside {
                write_wrapped(out, &source, width, BELOW, BELOW, dim)?;
            }
        }
    }
    for n in &r.notes {
        write_wrapped(out, n, width, "  ▸ ", "    ", dim)?;
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
    explain_at(out, e, style, width())
}

/// [`explain`] at a given width.
fn explain_at(
    out: &mut dyn Write,
    e: &crate::commands::explain::Explanation,
    style: &Style,
    width: usize,
) -> io::Result<()> {
    let heading = |l: &str| style.heading(l);
    let title = format!("{} · {}", e.concept.slug(), e.title);
    write_wrapped(out, &title, width, "", "  ", heading)?;
    for p in &e.paragraphs {
        writeln!(out)?;
        write_wrapped(out, p, width, "", "", plain)?;
    }
    writeln!(out)?;
    let quote = format!("The lines of the lab that provoke it ({})", e.code_file);
    write_wrapped(out, &quote, width, "", "  ", heading)?;
    for line in e.code.lines() {
        code_line(out, line, width)?;
    }
    writeln!(out, "\n{}", style.heading("More"))?;
    for m in &e.more {
        write_wrapped(out, m, width, "  - ", "    ", plain)?;
    }
    writeln!(out, "\n{}", style.heading("Read next"))?;
    for r in &e.read_next {
        write_wrapped(out, r, width, "  - ", "    ", plain)?;
    }
    Ok(())
}

/// One line of quoted code, four columns in. A line too long for the width breaks at
/// its spaces, the rest four columns deeper than its own indentation, as rustfmt
/// continues an expression.
fn code_line(out: &mut dyn Write, line: &str, width: usize) -> io::Result<()> {
    let line = clean(line);
    if 4 + display_width(&line) <= width {
        return writeln!(out, "{}", format!("    {line}").trim_end());
    }
    let code = line.trim_start_matches(' ');
    let lead = " ".repeat(4 + line.len() - code.len());
    let indent = format!("{lead}    ");
    write_wrapped(out, code, width, &lead, &indent, plain)
}

/// The doctor report: what was watched, each finding with its evidence and advice, the
/// rules not run and what could not be read.
pub fn doctor(
    out: &mut dyn Write,
    r: &crate::commands::doctor::DoctorReport,
    style: &Style,
) -> io::Result<()> {
    use crate::model::doctor::Severity;
    let width = width();
    let dim = |l: &str| style.dim(l);
    let head = if r.window_seconds > 0.0 {
        format!(
            "syslens doctor: {} processes watched for {:.1} s",
            r.processes, r.window_seconds
        )
    } else {
        format!("syslens doctor: {} processes, one sample", r.processes)
    };
    write_wrapped(out, &head, width, "", "    ", |l| style.heading(l))?;
    if r.findings.is_empty() {
        writeln!(out, "{}", style.good("no findings"))?;
    }
    const TEXT: &str = "        ";
    for f in &r.findings {
        let sev = match f.severity {
            Severity::Error => style.bad("ERROR  "),
            Severity::Warning => style.warn("warning"),
            Severity::Info => style.dim("info   "),
        };
        // The severity is painted (7 columns and a space): the subject is wrapped
        // beside it by hand, the rule's id after it where it fits.
        let subject = format!("{} · {}", f.concept.slug(), f.subject);
        let room = width.saturating_sub(TEXT.len());
        let mut lines = wrap_hanging(&subject, room, room.saturating_sub(2));
        let last_w = lines.last().map_or(0, |l| display_width(l));
        let lead_w = TEXT.len() + if lines.len() > 1 { 2 } else { 0 };
        let rule_beside = lead_w + last_w + 2 + f.rule.len() <= width;
        if let Some(last) = lines.last_mut().filter(|_| rule_beside) {
            *last = format!("{last}  {}", style.dim(f.rule));
        }
        for (i, l) in lines.iter().enumerate() {
            match i {
                0 => writeln!(out, "\n{sev} {l}")?,
                _ => writeln!(out, "{TEXT}  {l}")?,
            }
        }
        if !rule_beside {
            writeln!(out, "{TEXT}{}", style.dim(f.rule))?;
        }
        write_wrapped(out, &f.message, width, TEXT, TEXT, plain)?;
        for e in &f.evidence {
            write_wrapped(out, e, width, TEXT, "          ", dim)?;
        }
        write_wrapped(out, &f.advice, width, "        → ", "          ", plain)?;
    }
    for n in &r.rules_not_run {
        write_wrapped(out, &format!("not run: {n}"), width, "", "  ", dim)?;
    }
    for u in &r.unreadable {
        write_wrapped(out, &format!("not read: {u}"), width, "", "  ", dim)?;
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
    let width = crate::render::width();
    for e in events {
        let t = crate::record::store::from_unix_ns(e.time_ns);
        let time = crate::record::time::local(t);
        out.write_all(event_line(&time, &e.concept, &e.kind, &e.line, width).as_bytes())?;
    }
    Ok(())
}

/// Narrowest message column worth keeping beside the time, concept and kind.
const EVENT_MESSAGE_MIN: usize = 30;

/// One event as `watch` and `events` print it: time, concept and kind in columns, then
/// what happened, wrapped under its own column, or below them, indented, where
/// `width` leaves it fewer than [`EVENT_MESSAGE_MIN`] columns; ends with a newline.
pub fn event_line(time: &str, concept: &str, kind: &str, message: &str, width: usize) -> String {
    let head = format!("{time}  {:<18} {:<16} ", clean(concept), clean(kind));
    let head_w = crate::render::display_width(&head);
    let mut text = String::new();
    if width >= head_w + EVENT_MESSAGE_MIN {
        let pad = " ".repeat(head_w);
        for (i, part) in crate::render::wrap(message, width - head_w)
            .into_iter()
            .enumerate()
        {
            text += if i == 0 { &head } else { &pad };
            text += &part;
            text.push('\n');
        }
    } else {
        for part in crate::render::wrap(head.trim_end(), width) {
            text += &part;
            text.push('\n');
        }
        for part in crate::render::wrap(message, width.saturating_sub(4)) {
            text += "    ";
            text += &part;
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// issue 19: an event's message wraps under its own column, or below the columns,
    /// indented, where they leave it too little room; no line is over the width.
    #[test]
    fn issue_19_an_event_line_wraps_within_the_width() {
        let message = "sh[32603] killed by SIGKILL after 987.0 us, peak RSS 1.5 MiB";
        let one = event_line("19:55:22.123", "high-water-mark", "exit", message, 120);
        assert_eq!(one.lines().count(), 1, "{one}");
        assert!(one.ends_with(&format!(" {message}\n")), "{one}");
        let hanging = event_line("19:55:22.123", "high-water-mark", "exit", message, 80);
        let lines: Vec<&str> = hanging.lines().collect();
        assert!(lines.len() >= 2, "{hanging}");
        let column = lines[0].find("sh[").unwrap();
        assert_eq!(
            lines[1].len() - lines[1].trim_start().len(),
            column,
            "{hanging}"
        );
        let below = event_line(
            "2026-12-04 19:55:22 UTC",
            "high-water-mark",
            "exit",
            message,
            80,
        );
        assert!(
            below.lines().nth(1).unwrap().starts_with("    sh["),
            "{below}"
        );
        for text in [
            &hanging,
            &below,
            &event_line("2026-12-04 19:55:22 UTC", "signals", "signal", message, 40),
        ] {
            for l in text.lines() {
                assert!(crate::render::display_width(l) <= 80, "{l}");
            }
            let words: Vec<&str> = text.split_whitespace().collect();
            for w in message.split_whitespace() {
                assert!(words.contains(&w), "{w} cut in {text}");
            }
        }
    }
    use crate::catalogue::CONCEPTS;
    use crate::commands::explain::explanation;
    use crate::model::figure::Table;
    use crate::render::{ColorChoice, WIDTH};

    #[test]
    fn issue_21_explain_pages_have_their_sections_and_fit_the_width() {
        for c in &CONCEPTS {
            let e = explanation(c.id);
            let mut out = Vec::new();
            explain_at(&mut out, &e, &Style::new(ColorChoice::Never), WIDTH).unwrap();
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
                assert!(display_width(line) <= WIDTH, "{}: too wide: {line}", c.slug);
            }
            // No quoted line is cut: the quote is the lab's code, whole.
            for line in e.code.lines() {
                assert!(line.chars().count() <= WIDTH - 4, "{}: cut: {line}", c.slug);
            }
        }
    }

    fn rendered_table(t: &Table, width: usize) -> String {
        let mut out = Vec::new();
        table(&mut out, t, &Style::new(ColorChoice::Never), width).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn issue_19_a_table_wraps_its_text_column_and_never_cuts_a_number() {
        let mut t = Table::new(
            "blocked signals per thread",
            &[
                ("tid", Unit::None),
                ("name", Unit::None),
                ("blocked", Unit::None),
                ("bytes", Unit::Bytes),
            ],
            "/proc/PID/task/TID/status",
        );
        let signals = "SIGRTMIN+28, SIGRTMIN+29, SIGRTMIN+30, SIGRTMIN+31, SIGRTMIN+32";
        t.push(vec![
            Ok(Value::Unsigned(1234567)),
            Ok(Value::Text("worker".into())),
            Ok(Value::Text(signals.into())),
            Ok(Value::Unsigned(123_456_789)),
        ]);
        let path = "/sys/fs/cgroup/memory/process_api/91cc959324d424d95c0e6c2f691b21d8/x";
        t.push(vec![
            Ok(Value::Unsigned(7)),
            Ok(Value::Text("io".into())),
            Ok(Value::Text(path.into())),
            Ok(Value::Unsigned(1)),
        ]);
        let text = rendered_table(&t, 60);
        for line in text.lines() {
            assert!(
                display_width(line) <= 60 || !line.trim().contains(' '),
                "{line}\n{text}"
            );
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        for w in signals.split(' ').chain(["1234567", "117.7", "MiB", path]) {
            assert!(words.contains(&w), "{w} cut:\n{text}");
        }
        // The signals wrap within their column, beside the row's numbers.
        assert!(
            text.lines()
                .any(|l| l.starts_with("    1234567  worker  SIGRTMIN+28,")),
            "{text}"
        );
        // The path, a word wider than its column, is written whole below its row.
        assert!(
            text.contains(&format!("\n      blocked:\n        {path}\n")),
            "{text}"
        );
    }

    #[test]
    fn issue_19_columns_of_numbers_that_do_not_fit_continue_in_a_band() {
        let orders: Vec<String> = (0..11).map(|o| o.to_string()).collect();
        let mut cols = vec![("zone", Unit::None)];
        cols.extend(orders.iter().map(|o| (o.as_str(), Unit::Count)));
        let mut t = Table::new("free blocks per order", &cols, "/proc/buddyinfo");
        let mut row = vec![Ok(Value::Text("0/Normal".into()))];
        row.extend((0..11).map(|o| Ok(Value::Unsigned(100_000 + o))));
        t.push(row);
        let text = rendered_table(&t, 60);
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("    0/Normal"))
            .collect();
        assert_eq!(rows.len(), 2, "two bands:\n{text}");
        for o in 0..11 {
            assert!(text.contains(&(100_000 + o).to_string()), "{o}:\n{text}");
        }
        assert!(text.lines().all(|l| display_width(l) <= 60), "{text}");
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
