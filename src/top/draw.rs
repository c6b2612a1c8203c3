//! Laying the screen out: the tabs, the header meters, the table (columns dropped,
//! never cut, when narrow), the system view, the status and key lines, and the help
//! screen and menus over them.

use std::time::{Duration, Instant};

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Sparkline, Tabs, Wrap};
use ratatui::Frame;

use super::events::{Events, Status};
use super::keys::{Prompt, HELP};
use super::{settled, App, Col, Tab, TABS};
use crate::render::safe::clean;

/// Rows the table keeps below the meters (its header and five processes): on a
/// shorter screen the meters give way.
const MIN_TABLE_ROWS: u16 = 6;
/// Rows the system view keeps below the meters: its pressure, memory and buddy
/// panes whole, and a few slabs.
const MIN_SYSTEM_ROWS: u16 = 21;
/// The widest the meters go side by side; below, one column.
const TWO_COLUMN_METERS: u16 = 70;
/// Events shown under the meters at most (the newest).
const EVENT_LINES: usize = 3;
/// The narrowest a CPU meter is drawn (label, brackets, a few bars and `100.0%`).
const CPU_METER_MIN: usize = 16;

/// The display width of text in terminal cells. ASCII (nearly every cell) is counted
/// by its length: the grapheme walk for the rest was a tenth of a refresh's CPU.
fn width(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        Span::raw(s).width()
    }
}

/// The longest start of `s` that is at most `w` cells wide.
fn cut_end(s: &str, w: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += width(&s[i..i + c.len_utf8()]);
        if used > w {
            return &s[..i];
        }
    }
    s
}

/// `…` and the end of `s`, at most `w` cells in all (the leaf of a cgroup path is the
/// part that tells it apart).
fn cut_start(s: &str, w: usize) -> String {
    if width(s) <= w {
        return s.to_owned();
    }
    let mut used = 1;
    let mut from = s.len();
    for (i, c) in s.char_indices().rev() {
        used += width(&s[i..i + c.len_utf8()]);
        if used > w {
            break;
        }
        from = i;
    }
    format!("…{}", &s[from..])
}

/// `s` padded to `w` cells, on the left when `right` (numbers).
fn pad(s: &str, w: usize, right: bool) -> String {
    let gap = " ".repeat(w.saturating_sub(width(s)));
    if right {
        gap + s
    } else {
        format!("{s}{gap}")
    }
}

/// The pieces that fit in `w` cells, in order, joined by `sep`; a piece that does not
/// fit is left out whole.
fn fit_pieces(pieces: &[String], sep: &str, w: usize) -> String {
    let mut out = String::new();
    for p in pieces {
        let extra = if out.is_empty() { 0 } else { width(sep) };
        if width(&out) + extra + width(p) <= w {
            if !out.is_empty() {
                out.push_str(sep);
            }
            out.push_str(p);
        }
    }
    out
}

/// Draws the whole screen: tabs, meters, the table or the system view, the status
/// line and the keys; the help screen instead of all that when it is open.
pub fn draw(f: &mut Frame, app: &mut App) {
    let area = f.area();
    app.geometry.header_y = None;
    if let Some(scroll) = app.help {
        draw_help(f, area, scroll);
        return;
    }
    // Where the samples come from (a replay's moment) leads the meters, and stays
    // when they give way.
    let source_h = u16::from(app.source_line.is_some());
    let mut meters = meters(app, area.width);
    meters.extend(
        event_lines(&app.events, usize::from(area.width), EVENT_LINES)
            .into_iter()
            .map(Line::from),
    );
    let meters_h = u16::try_from(meters.len()).unwrap_or(u16::MAX);
    let body_min = if app.tab == Tab::System {
        MIN_SYSTEM_ROWS
    } else {
        MIN_TABLE_ROWS
    };
    let meters_h = if area.height >= meters_h.saturating_add(3 + body_min) {
        meters_h
    } else {
        0
    };
    // A message (a kill's outcome) wraps onto up to three lines; the usual status
    // shows the pieces that fit.
    let (status, status_h) = match (&app.message, app.prompt) {
        (Some((m, _)), None) => {
            let lines = width(m).max(1).div_ceil(usize::from(area.width.max(1)));
            (m.clone(), lines.clamp(1, 3) as u16)
        }
        _ => (
            fit_pieces(&status_pieces(app), " · ", usize::from(area.width)),
            1,
        ),
    };
    let [tabs, source, head, body, status_area, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(source_h),
        Constraint::Length(meters_h),
        Constraint::Min(1),
        Constraint::Length(status_h),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_tabs(f, app, tabs);
    if let Some(line) = &app.source_line {
        f.render_widget(
            Paragraph::new(cut_end(line, usize::from(source.width)).to_owned())
                .style(Style::new().add_modifier(Modifier::BOLD)),
            source,
        );
    }
    if meters_h > 0 {
        f.render_widget(Paragraph::new(meters), head);
    }
    if let Some((pid, text, scroll)) = &app.inspect {
        let p = Paragraph::new(text.as_str())
            .block(
                Block::new()
                    .borders(Borders::TOP)
                    .title(format!(" inspect {pid} (Esc back, ↑↓ scroll) ")),
            )
            .scroll((*scroll, 0));
        f.render_widget(p, body);
    } else if app.tab == Tab::System {
        draw_system(f, app, body);
    } else {
        draw_table(f, app, body);
    }
    f.render_widget(
        Paragraph::new(status).wrap(Wrap { trim: false }),
        status_area,
    );
    f.render_widget(
        Paragraph::new(key_line(usize::from(keys.width))).style(Style::new().fg(Color::DarkGray)),
        keys,
    );
    if app.menu.is_some() {
        draw_menu(f, app, body);
    }
}

fn draw_tabs(f: &mut Frame, app: &App, area: Rect) {
    let titles: Vec<&str> = TABS.iter().map(|t| t.title()).collect();
    // Each title padded by a space either side, with a divider between.
    let full: usize = titles.iter().map(|t| width(t) + 2).sum::<usize>() + titles.len() - 1;
    if full <= usize::from(area.width) {
        let selected = TABS.iter().position(|t| *t == app.tab).unwrap_or(0);
        f.render_widget(
            Tabs::new(titles)
                .select(selected)
                .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
            area,
        );
    } else {
        let pieces = [
            format!(" {} ", app.tab.title()),
            "1-5 Tab: views".to_owned(),
        ];
        let text = fit_pieces(&pieces, " ", usize::from(area.width));
        f.render_widget(
            Paragraph::new(text).style(Style::new().add_modifier(Modifier::REVERSED)),
            area,
        );
    }
}

/// The keys line: the most used first, as many as fit.
fn key_line(w: usize) -> String {
    let pieces: Vec<String> = [
        "F1 help",
        "F3 search",
        "F4 filter",
        "F5 tree",
        "F6 sort",
        "F9 kill",
        "q quit",
        "1-5 views",
        "Enter inspect",
        "K kernel threads",
        "p PSS",
    ]
    .map(String::from)
    .to_vec();
    fit_pieces(&pieces, "  ", w)
}

/// The status line's pieces, the most telling first: the line being typed, else
/// what is shown of how many, and the collector's cost.
fn status_pieces(app: &App) -> Vec<String> {
    let mut pieces: Vec<String> = Vec::new();
    match app.prompt {
        Some(Prompt::Search) => {
            pieces.push(format!("search: {}_", clean(&app.search)));
            if app.search_failed() {
                pieces.push("not found".into());
            }
            pieces.extend(["F3 next".into(), "Enter keeps".into(), "Esc clears".into()]);
            return pieces;
        }
        Some(Prompt::Filter) => {
            pieces.push(format!("filter: {}_", clean(&app.filter)));
            pieces.extend(["Enter keeps".into(), "Esc clears".into()]);
            return pieces;
        }
        Some(Prompt::GoTo) => {
            pieces.push(format!("go to: {}_", clean(&app.goto)));
            pieces.extend([
                "03:00, -5m, @UNIX_SECONDS, RFC 3339".into(),
                "Enter goes".into(),
                "Esc cancels".into(),
            ]);
            return pieces;
        }
        None => {}
    }
    if app.sample.is_none() {
        return vec!["reading /proc: the first sample".into()];
    }
    let counts = app.counts();
    if counts.shown == counts.total {
        pieces.push(format!("{} processes", counts.total));
    } else {
        pieces.push(format!(
            "{} of {} processes shown",
            counts.shown, counts.total
        ));
    }
    if counts.kernel_hidden > 0 {
        pieces.push(format!(
            "{} kernel threads hidden (K)",
            counts.kernel_hidden
        ));
    }
    if !app.filter.is_empty() {
        pieces.push(format!("filter: {} (Esc clears)", clean(&app.filter)));
    }
    if app.tagged_count() > 0 {
        pieces.push(format!("{} tagged", app.tagged_count()));
    }
    if app.tree {
        pieces.push("tree".into());
    }
    if app.sample.is_some() && app.previous().is_none() {
        pieces.push(format!("rates: {}", app.no_rate_yet));
    }
    let unrecorded: Vec<&str> = app
        .columns()
        .into_iter()
        .filter(|c| app.unrecorded.contains(c))
        .map(Col::name)
        .collect();
    if !unrecorded.is_empty() {
        pieces.push(format!("not recorded: {}", unrecorded.join(" ")));
    }
    let cost = if app.cost_ms.is_empty() {
        0.0
    } else {
        app.cost_ms.iter().sum::<f64>() / app.cost_ms.len() as f64
    };
    pieces.push(format!("{} {cost:.1} ms CPU per refresh", app.cost_label));
    pieces
}

/// Widths of the columns that fit in `w` cells (None: dropped), given the width each
/// needs. PID goes first and COMMAND second, then the column sorted by, then the
/// others left to right: a column that does not fit whole is dropped, never cut,
/// except COMMAND (text, cut at its end) when even PID and COMMAND do not fit, and
/// CGROUP, cut at its start. The last column shown takes the width left over.
pub fn fit(cols: &[Col], need: &[usize], sort: Col, w: usize) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = Vec::with_capacity(cols.len());
    for want in [Col::Pid, Col::Command, sort] {
        if let Some(i) = cols.iter().position(|c| *c == want) {
            if !order.contains(&i) {
                order.push(i);
            }
        }
    }
    let rest: Vec<usize> = (0..cols.len()).filter(|i| !order.contains(i)).collect();
    order.extend(rest);
    let mut widths = vec![None; cols.len()];
    let mut used = 0;
    for i in order {
        let sep = usize::from(used > 0);
        let room = w.saturating_sub(used + sep);
        let take = if need[i] <= room {
            Some(need[i])
        } else {
            match cols[i] {
                Col::Command if room >= 1 => Some(room),
                Col::Cgroup if room >= 12 => Some(room),
                _ => None,
            }
        };
        if let Some(t) = take {
            widths[i] = Some(t);
            used += sep + t;
        }
    }
    if let Some(last) = widths.iter().rposition(Option::is_some) {
        if cols[last].is_text() {
            widths[last] = widths[last].map(|x| x + w.saturating_sub(used));
        }
    }
    widths
}

/// One row on screen, its text made.
struct Shown {
    cells: Vec<String>,
    selected: bool,
    tagged: bool,
}

fn draw_table(f: &mut Frame, app: &mut App, area: Rect) {
    let cols = app.columns();
    let sort = app.sort_column();
    let height = usize::from(area.height.saturating_sub(1));
    let rows = app.table();
    let pids: Vec<i32> = rows.iter().map(|r| r.pid).collect();
    let (cursor, selected) = settled(app.selected, app.cursor, &pids);
    // Keep the selection on screen, and the page full when the list got shorter.
    let offset = app
        .geometry
        .offset
        .min(cursor)
        .max((cursor + 1).saturating_sub(height.max(1)))
        .min(rows.len().saturating_sub(height));
    let command = cols.iter().position(|c| *c == Col::Command);
    let shown: Vec<Shown> = rows
        .iter()
        .skip(offset)
        .take(height)
        .map(|r| Shown {
            cells: r
                .cells
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    if Some(i) == command {
                        format!("{}{}", r.branch, v.text())
                    } else {
                        v.text()
                    }
                })
                .collect(),
            selected: Some(r.pid) == selected,
            tagged: app.is_tagged(r.pid, r.start_ticks),
        })
        .collect();
    // Every PID of the list, not only those on screen: the column keeps its width
    // while scrolling.
    let pid_digits = pids
        .iter()
        .map(|p| {
            p.unsigned_abs()
                .checked_ilog10()
                .map_or(1, |d| d as usize + 1)
        })
        .max()
        .unwrap_or(1);
    drop(rows);
    app.cursor = cursor;
    app.selected = selected;
    let headers: Vec<String> = cols
        .iter()
        .map(|c| {
            let mark = match (*c == sort, app.reverse) {
                (false, _) => "",
                (true, false) => "▼",
                (true, true) => "▲",
            };
            format!("{}{mark}", c.name())
        })
        .collect();
    let need: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let cells = shown.iter().map(|s| width(&s.cells[i])).max().unwrap_or(0);
            let floor = if *c == Col::Pid { pid_digits } else { 0 };
            width(&headers[i]).max(cells).max(floor)
        })
        .collect();
    let w = usize::from(area.width);
    let widths = fit(&cols, &need, sort, w);
    // The last column shown is left as it is: padding it to the edge would only
    // draw spaces (for ratatui, each a grapheme to walk).
    let last = widths.iter().rposition(Option::is_some);
    let line_of = |cells: &[String]| -> String {
        let mut out = String::new();
        for (i, c) in cols.iter().enumerate() {
            let Some(cw) = widths[i] else { continue };
            if !out.is_empty() {
                out.push(' ');
            }
            let text = &cells[i];
            let fits = width(text) <= cw;
            match (fits, Some(i) == last) {
                (true, true) if c.is_text() => out.push_str(text),
                (true, _) => out.push_str(&pad(text, cw, !c.is_text())),
                (false, _) if *c == Col::Cgroup => out.push_str(&cut_start(text, cw)),
                (false, true) => out.push_str(cut_end(text, cw)),
                (false, false) => out.push_str(&pad(cut_end(text, cw), cw, false)),
            }
        }
        out
    };
    if area.is_empty() {
        return;
    }
    let buf = f.buffer_mut();
    let bold = Style::new().add_modifier(Modifier::BOLD);
    buf.set_stringn(area.x, area.y, line_of(&headers), w, bold);
    for (k, s) in shown.iter().enumerate() {
        let y = area.y + 1 + u16::try_from(k).unwrap_or(u16::MAX);
        if y >= area.bottom() {
            break;
        }
        let mut style = Style::new();
        if s.tagged {
            style = style.fg(Color::Yellow).add_modifier(Modifier::BOLD);
        }
        if s.selected {
            style = style.add_modifier(Modifier::REVERSED);
        }
        buf.set_stringn(area.x, y, line_of(&s.cells), w, style);
        // The whole row, past its text, in the row's style.
        buf.set_style(Rect::new(area.x, y, area.width, 1), style);
    }
    let mut x = area.x;
    let mut spans = Vec::new();
    for (i, c) in cols.iter().enumerate() {
        if let Some(cw) = widths[i] {
            let cw = u16::try_from(cw).unwrap_or(u16::MAX);
            spans.push((*c, x, x.saturating_add(cw)));
            x = x.saturating_add(cw).saturating_add(1);
        }
    }
    app.geometry.header_y = Some(area.y);
    app.geometry.rows = u16::try_from(height).unwrap_or(u16::MAX);
    app.geometry.offset = offset;
    app.geometry.columns = spans;
}

/// The recent-events lines, at most `max`, each cut to `w` cells: the newest events
/// time-stamped as `watch` prints them, or one line saying what is watched, or why
/// nothing can be (never an empty line).
pub fn event_lines(ev: &Events, w: usize, max: usize) -> Vec<String> {
    let time = crate::render::text::clock_time;
    // To the second.
    let clock = |t| {
        let t = time(t);
        t.split('.').next().unwrap_or(&t).to_owned()
    };
    let one = |text: String| vec![cut_end(&text, w).to_owned()];
    let watching = match &ev.status {
        Status::Starting => return one("events: opening the kernel's event sources".into()),
        Status::Off(why) => return one(format!("events: off: {}", clean(why))),
        Status::Unavailable(why) => return one(format!("events: unavailable: {}", clean(why))),
        Status::Recorded { since, until } => {
            let between = match since {
                Some(s) => format!("recorded between {} and {}", clock(*s), clock(*until)),
                None => format!("recorded up to {}", clock(*until)),
            };
            if ev.recent.is_empty() {
                return one(format!("events: none {between}"));
            }
            between
        }
        Status::Watching {
            kinds,
            unavailable,
            since,
        } => {
            let mut watching = format!("watching {}", kinds.join(", "));
            if !unavailable.is_empty() {
                watching += &format!("; {} unavailable", unavailable.join(", "));
            }
            if ev.recent.is_empty() {
                return one(format!("events: none since {} ({watching})", clock(*since)));
            }
            watching
        }
    };
    let prefix = match ev.missed {
        0 => "events:".to_owned(),
        n => format!("events ({n} missed):"),
    };
    let indent = " ".repeat(width(&prefix));
    let mut lines: Vec<String> = ev
        .recent
        .iter()
        .take(max.max(1))
        .enumerate()
        .map(|(i, e)| {
            let lead = if i == 0 {
                prefix.as_str()
            } else {
                indent.as_str()
            };
            let text = format!("{lead} {}  {}  {}", time(e.time), e.kind, clean(&e.line));
            cut_end(&text, w).to_owned()
        })
        .collect();
    // A line to spare says what is watched.
    if lines.len() < max {
        lines.push(cut_end(&format!("{indent} ({watching})"), w).to_owned());
    }
    lines
}

/// Sizes with three figures: `512K`, `1.21G` (the meters are narrow).
fn short_bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    match v {
        _ if i == 0 || v >= 100.0 => format!("{v:.0}{}", UNITS[i]),
        _ if v >= 10.0 => format!("{v:.1}{}", UNITS[i]),
        _ => format!("{v:.2}{}", UNITS[i]),
    }
}

/// An htop meter: `label[|||||      text]`, `width` cells in all; the bars fill the
/// share `frac` of the room left of the text.
fn meter(label: &str, label_w: usize, frac: Option<f64>, text: &str, w: usize) -> Line<'static> {
    let inner = w.saturating_sub(label_w + 2);
    let text = cut_end(text, inner);
    let room = inner - width(text);
    let fill = frac.map_or(0, |x| (x.clamp(0.0, 1.0) * room as f64).round() as usize);
    let color = match frac {
        Some(x) if x >= 0.9 => Color::Red,
        Some(x) if x >= 0.6 => Color::Yellow,
        _ => Color::Green,
    };
    Line::from(vec![
        Span::styled(pad(label, label_w, false), Style::new().fg(Color::Cyan)),
        Span::raw("["),
        Span::styled("|".repeat(fill), Style::new().fg(color)),
        Span::raw(" ".repeat(room - fill)),
        Span::styled(text.to_owned(), Style::new().add_modifier(Modifier::BOLD)),
        Span::raw("]"),
    ])
}

/// The header: a meter per CPU, Mem and Swap on the left; tasks, load, uptime and
/// pressure on the right (below, when narrow). Rates come from the last two samples:
/// until there are two, the CPU meters say `measuring`.
fn meters(app: &App, screen_w: u16) -> Vec<Line<'static>> {
    let Some(s) = &app.sample else {
        return Vec::new();
    };
    let w = usize::from(screen_w);
    let two = screen_w >= TWO_COLUMN_METERS;
    let left_w = if two { w / 2 - 1 } else { w };
    let mut left: Vec<Line> = Vec::new();
    match &s.cpus {
        Ok(cpus) if !cpus.is_empty() => {
            let prev = app.previous().and_then(|p| p.cpus.as_ref().ok());
            let label_w = cpus
                .iter()
                .map(|c| width(&format!("cpu{}", c.cpu)))
                .max()
                .unwrap_or(4);
            let per_line = cpus
                .len()
                .div_ceil(8)
                .clamp(1, (left_w / CPU_METER_MIN).max(1));
            let meter_w = (left_w + 1) / per_line - 1;
            for chunk in cpus.chunks(per_line) {
                let mut spans: Vec<Span> = Vec::new();
                for (k, c) in chunk.iter().enumerate() {
                    let before = prev.and_then(|p| p.iter().find(|b| b.cpu == c.cpu));
                    let share = before.and_then(|b| {
                        let total = c.total.checked_sub(b.total).filter(|t| *t > 0)?;
                        Some(c.busy.checked_sub(b.busy)? as f64 / total as f64)
                    });
                    let text = match (prev, share) {
                        (None, _) => app.no_rate_yet.to_owned(),
                        (Some(_), None) => "-".to_owned(),
                        (Some(_), Some(x)) => format!("{:.1}%", x * 100.0),
                    };
                    if k > 0 {
                        spans.push(Span::raw(" "));
                    }
                    let label = format!("cpu{}", c.cpu);
                    spans.extend(meter(&label, label_w, share, &text, meter_w).spans);
                }
                left.push(Line::from(spans));
            }
        }
        Ok(_) => left.push(Line::from("cpu: no cpuN line in /proc/stat")),
        Err(e) => left.push(Line::from(format!("cpu: {e}"))),
    }
    match &s.meminfo {
        Ok(m) => {
            let pair = |total: &syslens_probe::Val<u64>, free: &syslens_probe::Val<u64>| {
                Some((*total.as_ref().ok()?, *free.as_ref().ok()?))
            };
            for (label, figures) in [
                ("Mem", pair(&m.mem_total, &m.mem_available)),
                ("Swp", pair(&m.swap_total, &m.swap_free)),
            ] {
                left.push(match figures {
                    Some((0, _)) => meter(label, 4, Some(0.0), "none", left_w),
                    Some((total, free)) => {
                        let used = total.saturating_sub(free);
                        let text = format!("{}/{}", short_bytes(used), short_bytes(total));
                        meter(label, 4, Some(used as f64 / total as f64), &text, left_w)
                    }
                    None => Line::from(format!("{label}: not in /proc/meminfo")),
                });
            }
        }
        Err(e) => left.push(Line::from(format!("Mem: {e}"))),
    }
    let right_w = if two { w - left_w - 2 } else { w };
    let right: Vec<Line> = info_lines(app, right_w)
        .into_iter()
        .map(Line::from)
        .collect();
    if !two {
        left.extend(right);
        return left;
    }
    let n = left.len().max(right.len());
    (0..n)
        .map(|i| {
            let mut spans = left.get(i).cloned().unwrap_or_default().spans;
            let used: usize = spans.iter().map(|s| s.width()).sum();
            spans.push(Span::raw(" ".repeat(left_w.saturating_sub(used) + 2)));
            spans.extend(right.get(i).cloned().unwrap_or_default().spans);
            Line::from(spans)
        })
        .collect()
}

/// Tasks, load average, uptime and pressure, each in the longest wording that fits.
fn info_lines(app: &App, w: usize) -> Vec<String> {
    let Some(s) = &app.sample else {
        return Vec::new();
    };
    let user: Vec<_> = s.rows.iter().filter(|r| !r.kernel_thread).collect();
    let threads: u64 = user.iter().map(|r| r.threads).sum();
    let kernel = s.rows.len() - user.len();
    let running = s.rows.iter().filter(|r| r.state == b'R').count();
    let tasks = [
        format!(
            "Tasks: {}, {threads} thr, {kernel} kthr; {running} running",
            user.len()
        ),
        format!("Tasks: {}, {kernel} kthr, {running} run", user.len()),
    ];
    let load = match s.loadavg {
        Ok([a, b, c]) => [
            format!("Load average: {a:.2} {b:.2} {c:.2}"),
            format!("Load: {a:.2} {b:.2} {c:.2}"),
        ],
        Err(ref e) => [format!("Load average: {e}"), "Load: -".into()],
    };
    let uptime = match s.uptime {
        Ok(d) => {
            let secs = d.as_secs();
            let (days, rest) = (secs / 86_400, secs % 86_400);
            let clock = format!(
                "{:02}:{:02}:{:02}",
                rest / 3600,
                rest % 3600 / 60,
                rest % 60
            );
            let days = match days {
                0 => String::new(),
                1 => "1 day, ".into(),
                n => format!("{n} days, "),
            };
            [
                format!("Uptime: {days}{clock}"),
                format!("Up {days}{clock}"),
            ]
        }
        Err(ref e) => [format!("Uptime: {e}"), "Up: -".into()],
    };
    let psi: Vec<String> = s
        .psi
        .iter()
        .map(|p| {
            p.as_ref()
                .map_or("-".into(), |p| format!("{:.2}%", p.some.avg10))
        })
        .collect();
    let pressure = match s.psi.iter().find_map(|p| p.as_ref().err()) {
        Some(e) if s.psi.iter().all(|p| p.is_err()) => {
            [format!("Pressure: {e}"), "PSI: unavailable".into()]
        }
        _ => [
            format!(
                "Pressure (some, 10 s): cpu {} mem {} io {}",
                psi[0], psi[1], psi[2]
            ),
            format!("PSI cpu {} mem {} io {}", psi[0], psi[1], psi[2]),
        ],
    };
    [tasks, load, uptime, pressure]
        .into_iter()
        .map(|[long, short]| if width(&long) <= w { long } else { short })
        .collect()
}

/// A span of time in words: `45 s`, `3 min 20 s`.
fn span_words(d: Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    if s < 60 {
        format!("{s} s")
    } else if s % 60 == 0 {
        format!("{} min", s / 60)
    } else {
        format!("{} min {} s", s / 60, s % 60)
    }
}

fn draw_system(f: &mut Frame, app: &App, area: Rect) {
    // Pressure on top, memory and buddy below, then slabs and exits take the rest.
    let h = area.height;
    let psi_h = (h / 3).clamp(3, 7);
    // Memory and buddy whole (nine rows) when three are left for slabs and exits.
    let mid_h = 9.min(h.saturating_sub(psi_h + 3));
    let [psi, mid, bottom] = Layout::vertical([
        Constraint::Length(psi_h),
        Constraint::Length(mid_h),
        Constraint::Fill(1),
    ])
    .areas(area);
    let parts = Layout::horizontal([Constraint::Ratio(1, 3); 3]).split(psi);
    let current = app.sample.as_ref();
    for (i, name) in ["cpu", "memory", "io"].iter().enumerate() {
        let history = &app.psi_history[i];
        // The newest points that fit: the line ends at now.
        let room = usize::from(parts[i].width.saturating_sub(2));
        let shown: Vec<&(Instant, Option<u64>)> = history
            .iter()
            .skip(history.len().saturating_sub(room))
            .collect();
        let data: Vec<Option<u64>> = shown.iter().map(|p| p.1).collect();
        let title = match current.map(|s| &s.psi[i]) {
            Some(Ok(p)) => format!(" {name} pressure {:.2}% ", p.some.avg10),
            Some(Err(e)) => format!(" {name} pressure: {e} "),
            None => format!(" {name} pressure "),
        };
        let peak = data.iter().flatten().max().map(|p| *p as f64 / 100.0);
        let span = match (shown.first(), shown.last()) {
            (Some(a), Some(b)) if shown.len() > 1 => format!(
                " last {}, peak {:.2}% ",
                span_words(b.0.duration_since(a.0)),
                peak.unwrap_or(0.0)
            ),
            _ => " measuring ".to_owned(),
        };
        let spark = Sparkline::default()
            .block(Block::bordered().title(title).title_bottom(span))
            .absent_value_symbol("·")
            .data(data);
        f.render_widget(spark, parts[i]);
    }
    let [mem, buddy] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(mid);
    let mut lines = Vec::new();
    match current.map(|s| &s.meminfo) {
        Some(Ok(m)) => {
            for (name, val) in [
                ("MemTotal", &m.mem_total),
                ("MemAvailable", &m.mem_available),
                ("Cached", &m.cached),
                ("AnonPages", &m.anon_pages),
                ("Shmem", &m.shmem),
                ("Slab reclaim.", &m.s_reclaimable),
                ("Slab unreclaim.", &m.s_unreclaim),
            ] {
                lines.push(Line::from(format!(
                    "{name:<16}{:>12}",
                    val.clone()
                        .map_or("-".into(), |b| crate::render::bytes(b as f64))
                )));
            }
        }
        Some(Err(e)) => lines.push(Line::from(format!("{e}"))),
        None => {}
    }
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" memory ")),
        mem,
    );
    let mut lines = Vec::new();
    if let Some(z) = current.and_then(|s| s.zone.as_ref().as_ref()) {
        lines.push(Line::from(format!(
            "{}: order, blocks, unusable index",
            clean(&z.zone)
        )));
        let cells: Vec<String> = z
            .free_blocks
            .iter()
            .zip(z.unusable_index())
            .enumerate()
            .map(|(o, (n, u))| {
                format!(
                    "{o:>2} {n:>7} {:>4}",
                    u.map_or("-".into(), |u| format!("{u:.2}"))
                )
            })
            .collect();
        for pair in cells.chunks(2) {
            lines.push(Line::from(pair.join("   ")));
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(" buddy: free blocks by order "))
            .wrap(Wrap { trim: false }),
        buddy,
    );
    let [slabs, exited] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    let page = rustix::param::page_size() as u64;
    // As many caches as the pane holds, largest first.
    let room = usize::from(slabs.height.saturating_sub(2));
    let lines: Vec<Line> = current
        .map(|s| {
            s.slabs
                .iter()
                .take(room)
                .map(|c| {
                    Line::from(format!(
                        "{:<22}{:>11}",
                        clean(&c.name),
                        crate::render::bytes(c.bytes(page) as f64)
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let title = if lines.is_empty() {
        " top slabs (root only) ".to_owned()
    } else {
        format!(" top {} slabs by size ", lines.len())
    };
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        slabs,
    );
    // Ages from the sample shown (a replay's is in the past).
    let now = current.map_or_else(Instant::now, |s| s.at);
    let room = usize::from(exited.width.saturating_sub(2));
    let size = |b: Option<u64>| b.map_or("-".into(), |b| crate::render::bytes(b as f64));
    let lines: Vec<Line> = app
        .exited
        .iter()
        .map(|e| {
            let style = if e.cause == "OOM kill" {
                Style::new().fg(Color::Red)
            } else {
                Style::new()
            };
            // Padded pieces: the same ones fit on every line, so they stay aligned.
            let pieces = [
                format!("{:>7}", e.pid),
                format!("{:<15}", e.comm),
                format!("{:<8}", e.cause),
                format!("{:>10}", size(e.rss)),
                format!("{:>4.0}s ago", now.duration_since(e.at).as_secs_f64()),
                format!("hwm {:>10}", size(e.hwm)),
            ];
            Line::styled(fit_pieces(&pieces, " ", room), style)
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" recently exited ")),
        exited,
    );
}

/// The help screen: every key (keys::HELP), over the whole screen.
fn draw_help(f: &mut Frame, area: Rect, scroll: u16) {
    let keys_w = HELP.iter().map(|e| width(e.keys)).max().unwrap_or(0);
    let lines: Vec<Line> = HELP
        .iter()
        .map(|e| {
            Line::from(vec![
                Span::styled(
                    pad(e.keys, keys_w, false),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw("  "),
                Span::raw(e.what),
            ])
        })
        .collect();
    let most = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines)
            .block(
                Block::new()
                    .borders(Borders::TOP)
                    .title(" syslens top: keys (↑↓ scroll, any other key closes) "),
            )
            .wrap(Wrap { trim: false })
            .scroll((scroll.min(most.saturating_sub(1)), 0)),
        area,
    );
}

fn draw_menu(f: &mut Frame, app: &App, body: Rect) {
    let Some(menu) = &app.menu else {
        return;
    };
    let items = menu.items();
    let title = menu.title();
    let w = items
        .iter()
        .map(|i| width(i))
        .chain([width(&title)])
        .max()
        .unwrap_or(0)
        + 2;
    let w = u16::try_from(w).unwrap_or(u16::MAX).min(body.width);
    let h = u16::try_from(items.len() + 2)
        .unwrap_or(u16::MAX)
        .min(body.height);
    let area = Rect {
        x: body.x + (body.width - w) / 2,
        y: body.y + (body.height - h) / 2,
        width: w,
        height: h,
    };
    let room = usize::from(h.saturating_sub(2)).max(1);
    let first = (menu.selected + 1).saturating_sub(room);
    let lines: Vec<Line> = items
        .iter()
        .enumerate()
        .skip(first)
        .take(room)
        .map(|(i, text)| {
            let style = if i == menu.selected {
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                Style::new()
            };
            Line::styled(pad(text, usize::from(w.saturating_sub(2)), false), style)
        })
        .collect();
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
}
