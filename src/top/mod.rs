//! `syslens top`: a live view organised by concept, in the spirit of htop. A collector
//! thread samples /proc and sends each sample over a channel; this loop owns the state,
//! reacts to keys and draws.

pub mod collect;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Cell, Paragraph, Row, Sparkline, Table, TableState, Tabs, Wrap,
};
use ratatui::Frame;
use syslens_probe::limits::LimitValue;
use syslens_probe::{Reader, Val, USER_HZ};

use collect::{Sample, Wants};

/// The views, by concept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// RSS, its peak, growth, swap and faults.
    Memory,
    /// CPU time, context switches, run-queue wait, nice, threads.
    Cpu,
    /// Open fds against their limit, deleted-but-open files, file locks.
    Files,
    /// OOM score, namespaces, cgroup.
    Isolation,
    /// The whole machine: pressure, memory, fragmentation, slabs; processes that left.
    System,
}

/// The tabs, in the order of their number keys.
pub const TABS: [Tab; 5] = [
    Tab::Memory,
    Tab::Cpu,
    Tab::Files,
    Tab::Isolation,
    Tab::System,
];

impl Tab {
    fn title(self) -> &'static str {
        match self {
            Tab::Memory => "1 memory",
            Tab::Cpu => "2 cpu & scheduling",
            Tab::Files => "3 files",
            Tab::Isolation => "4 isolation",
            Tab::System => "5 system",
        }
    }

    /// Column headers; the first two (PID, COMMAND) are shared.
    pub fn columns(self, pss: bool) -> Vec<&'static str> {
        let mut c = vec!["PID", "COMMAND"];
        c.extend(match self {
            Tab::Memory => vec![
                "RSS",
                "HWM",
                "PEAK SEEN",
                "GROWTH",
                "SWAP",
                "MINFLT/s",
                "MAJFLT/s",
            ],
            Tab::Cpu => vec![
                "CPU%", "USR%", "SYS%", "VCSW/s", "NVCSW/s", "RUNQ%", "NICE", "THR",
            ],
            Tab::Files => vec!["FDS", "LIMIT", "FD%", "DELETED", "LOCKS", "WAITING"],
            Tab::Isolation => vec!["OOM", "NS", "CGROUP"],
            Tab::System => vec![],
        });
        if pss && self == Tab::Memory {
            c.push("PSS");
        }
        c
    }
}

/// One cell: a number to sort by, and its text, formatted only for the rows on screen
/// (formatting every cell of every process was most of the UI's cost per refresh).
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// Not read, or unreadable: shown as `-`.
    Missing,
    /// A size in bytes, shown scaled.
    Bytes(u64),
    /// A change in bytes, signed.
    Growth(i64),
    /// A plain number.
    Count(i64),
    /// Per second, whole.
    Rate(f64),
    /// Percent, one decimal.
    Percent(f64),
    /// No limit: shown as `inf`.
    Unlimited,
    /// Text from the process (a command name, a cgroup), escaped when shown.
    Text(&'a str),
    /// Namespaces that differ from the host's, "host" when none.
    Namespaces(&'a [&'static str]),
}

impl Value<'_> {
    fn key(&self) -> f64 {
        match *self {
            Value::Missing => f64::NEG_INFINITY,
            Value::Bytes(b) => b as f64,
            Value::Growth(g) => g as f64,
            Value::Count(n) => n as f64,
            Value::Rate(x) | Value::Percent(x) => x,
            Value::Unlimited => f64::INFINITY,
            Value::Text(_) => 0.0,
            Value::Namespaces(n) => n.len() as f64,
        }
    }

    fn sort_text(&self) -> &str {
        match self {
            Value::Text(t) => t,
            _ => "",
        }
    }

    /// The cell's text as shown (control characters escaped).
    pub fn text(&self) -> String {
        match *self {
            Value::Missing => "-".into(),
            Value::Bytes(b) => crate::render::bytes(b as f64),
            Value::Growth(g) if g >= 0 => format!("+{}", crate::render::bytes(g as f64)),
            Value::Growth(g) => format!("-{}", crate::render::bytes(g.unsigned_abs() as f64)),
            Value::Count(n) => n.to_string(),
            Value::Rate(x) => format!("{x:.0}"),
            Value::Percent(x) => format!("{x:.1}"),
            Value::Unlimited => "inf".into(),
            Value::Text(t) => crate::render::safe::clean(t).into_owned(),
            Value::Namespaces([]) => "host".into(),
            Value::Namespaces(n) => n.join(","),
        }
    }
}

fn bytes<'a>(b: Option<u64>) -> Value<'a> {
    b.map_or(Value::Missing, Value::Bytes)
}

fn count<'a>(n: Option<u64>) -> Value<'a> {
    n.map_or(Value::Missing, |n| Value::Count(n as i64))
}

/// A process that left, kept visible for a while.
#[derive(Debug, Clone)]
pub struct Exited {
    /// The process id.
    pub pid: i32,
    /// Its command name, escaped for the terminal.
    pub comm: String,
    /// Its last RSS, in bytes.
    pub rss: Option<u64>,
    /// Its last HWM (peak RSS), in bytes.
    pub hwm: Option<u64>,
    /// When it was first seen gone.
    pub at: Instant,
    /// `OOM kill` when the kernel log reported it killed, else `exited`.
    pub cause: &'static str,
}

const HISTORY: usize = 60;
const EXITED_KEPT: usize = 20;
const EXITED_FOR: Duration = Duration::from_secs(300);

/// Everything the screen shows, derived from samples.
#[derive(Debug)]
pub struct App {
    /// The tab shown.
    pub tab: Tab,
    /// The column sorted by, an index into the tab's columns.
    pub sort: usize,
    /// Reverse the sort order.
    pub reverse: bool,
    /// Only processes whose command name contains this.
    pub filter: String,
    /// The filter is being typed (keys go to it).
    pub editing_filter: bool,
    /// Read and show PSS (smaps_rollup of every process).
    pub pss: bool,
    /// The selected row.
    pub state: TableState,
    /// The `inspect` view shown over the table: the pid, its text, and the line scrolled to.
    pub inspect: Option<(i32, String, u16)>,
    prev: Option<Sample>,
    /// The latest sample.
    pub sample: Option<Sample>,
    rss_history: HashMap<i32, VecDeque<u64>>,
    peak_seen: HashMap<i32, u64>,
    /// Processes that left recently, newest first.
    pub exited: VecDeque<Exited>,
    /// Recent `some avg10` of cpu, memory and io pressure, in hundredths of a percent.
    pub psi_history: [VecDeque<u64>; 3],
    /// CPU time of recent collector passes, in ms.
    pub cost_ms: VecDeque<f64>,
    /// The reader `Enter` inspects a process with (the command line's, like the
    /// collector's): none in tests that only draw.
    inspector: Option<Reader>,
}

impl Default for App {
    fn default() -> Self {
        App {
            tab: Tab::Memory,
            sort: 2,
            reverse: false,
            filter: String::new(),
            editing_filter: false,
            pss: false,
            state: TableState::default().with_selected(Some(0)),
            inspect: None,
            inspector: None,
            prev: None,
            sample: None,
            rss_history: HashMap::new(),
            peak_seen: HashMap::new(),
            exited: VecDeque::new(),
            psi_history: Default::default(),
            cost_ms: VecDeque::new(),
        }
    }
}

impl App {
    /// Takes a new sample: rates against the previous one, history, exits. Returns
    /// the sample no longer needed, whose buffers the collector can reuse.
    pub fn apply(&mut self, s: Sample) -> Option<Sample> {
        let now = s.at;
        let mut retired = None;
        if let Some(old) = self.sample.take() {
            let alive: std::collections::HashSet<i32> = s.rows.iter().map(|r| r.pid).collect();
            for r in old.rows.iter().filter(|r| !alive.contains(&r.pid)) {
                let cause = if s.oom_killed.contains(&(r.pid as u64)) {
                    "OOM kill"
                } else {
                    "exited"
                };
                self.exited.push_front(Exited {
                    pid: r.pid,
                    comm: crate::render::safe::clean(r.comm.as_str()).into_owned(),
                    rss: r.rss.clone().ok(),
                    hwm: r.hwm.clone().ok(),
                    at: now,
                    cause,
                });
                self.rss_history.remove(&r.pid);
                self.peak_seen.remove(&r.pid);
            }
            self.exited.truncate(EXITED_KEPT);
            self.exited
                .retain(|e| now.duration_since(e.at) < EXITED_FOR);
            retired = self.prev.replace(old);
        }
        for r in &s.rows {
            if let Ok(rss) = r.rss {
                let h = self.rss_history.entry(r.pid).or_default();
                h.push_back(rss);
                if h.len() > HISTORY {
                    h.pop_front();
                }
                let p = self.peak_seen.entry(r.pid).or_default();
                *p = (*p).max(rss);
            }
        }
        for (i, p) in s.psi.iter().enumerate() {
            let h = &mut self.psi_history[i];
            h.push_back(p.map_or(0, |p| (p.some.avg10 * 100.0) as u64));
            if h.len() > 120 {
                h.pop_front();
            }
        }
        self.cost_ms.push_back(s.pass_cpu_ns as f64 / 1e6);
        if self.cost_ms.len() > 30 {
            self.cost_ms.pop_front();
        }
        self.sample = Some(s);
        retired
    }

    /// Tells the collector what the screen shows now.
    pub fn publish(&self, wants: &Wants) {
        let table = self.inspect.is_none();
        wants.pss.store(self.pss, Ordering::Relaxed);
        wants
            .files
            .store(table && self.tab == Tab::Files, Ordering::Relaxed);
        wants
            .isolation
            .store(table && self.tab == Tab::Isolation, Ordering::Relaxed);
    }

    /// The rows of the current tab, filtered and sorted.
    pub fn table(&self) -> Vec<(i32, Vec<Value<'_>>)> {
        let Some(s) = &self.sample else {
            return Vec::new();
        };
        let prev: HashMap<i32, &syslens_probe::table::ProcessRow> = self
            .prev
            .as_ref()
            .map(|p| p.rows.iter().map(|r| (r.pid, r)).collect())
            .unwrap_or_default();
        let secs = self
            .prev
            .as_ref()
            .map_or(0.0, |p| s.at.duration_since(p.at).as_secs_f64());
        // Per second of the counter's growth since the previous sample, scaled.
        let per_sec = |now: u64, before: Option<u64>, scale: f64| -> Option<f64> {
            match before {
                Some(b) if secs > 0.0 && now >= b => Some((now - b) as f64 * scale / secs),
                _ => None,
            }
        };
        let rate = |now: u64, before: Option<u64>| {
            per_sec(now, before, 1.0).map_or(Value::Missing, Value::Rate)
        };
        let mut out: Vec<(i32, Vec<Value>)> = s
            .rows
            .iter()
            .filter(|r| self.filter.is_empty() || r.comm.as_str().contains(&self.filter))
            .map(|r| {
                let p = prev
                    .get(&r.pid)
                    .filter(|p| p.start_time_ticks == r.start_time_ticks);
                let mut cells = Vec::with_capacity(10);
                cells.extend([Value::Count(i64::from(r.pid)), Value::Text(r.comm.as_str())]);
                match self.tab {
                    Tab::Memory => {
                        let growth = self
                            .rss_history
                            .get(&r.pid)
                            .and_then(|h| Some(*h.back()? as i64 - *h.front()? as i64));
                        cells.extend([
                            bytes(r.rss.clone().ok()),
                            bytes(r.hwm.clone().ok()),
                            bytes(self.peak_seen.get(&r.pid).copied()),
                            growth.map_or(Value::Missing, Value::Growth),
                            bytes(r.swap.clone().ok()),
                            rate(r.minflt, p.map(|p| p.minflt)),
                            rate(r.majflt, p.map(|p| p.majflt)),
                        ]);
                        if self.pss {
                            cells.push(bytes(
                                r.rollup
                                    .as_ref()
                                    .and_then(|u| u.as_ref().ok()?.pss.clone().ok()),
                            ));
                        }
                    }
                    Tab::Cpu => {
                        let pct = |now: u64, before: Option<u64>, scale: f64| {
                            per_sec(now, before, scale).map_or(Value::Missing, Value::Percent)
                        };
                        let tick = 100.0 / USER_HZ as f64;
                        let counter = |now: &Val<u64>, before: Option<&Val<u64>>| match now {
                            Ok(n) => rate(*n, before.and_then(|b| b.clone().ok())),
                            Err(_) => Value::Missing,
                        };
                        cells.extend([
                            pct(
                                r.utime_ticks.saturating_add(r.stime_ticks),
                                p.map(|p| p.utime_ticks.saturating_add(p.stime_ticks)),
                                tick,
                            ),
                            pct(r.utime_ticks, p.map(|p| p.utime_ticks), tick),
                            pct(r.stime_ticks, p.map(|p| p.stime_ticks), tick),
                            counter(&r.voluntary_switches, p.map(|p| &p.voluntary_switches)),
                            counter(&r.involuntary_switches, p.map(|p| &p.involuntary_switches)),
                            match (&r.run_queue_wait_ns, p.map(|p| &p.run_queue_wait_ns)) {
                                (Ok(a), Some(Ok(b))) => pct(*a, Some(*b), 100.0 / 1e9),
                                _ => Value::Missing,
                            },
                            Value::Count(r.nice),
                            count(Some(r.threads)),
                        ]);
                    }
                    Tab::Files => {
                        let limit = match r.fd_soft_limit {
                            Ok(LimitValue::Value(l)) => count(Some(l)),
                            Ok(LimitValue::Unlimited) => Value::Unlimited,
                            Err(_) => Value::Missing,
                        };
                        let ratio = syslens_probe::table::fd_ratio(r)
                            .map_or(Value::Missing, |x| Value::Percent(x * 100.0));
                        let (held, waiting) =
                            s.locks.get(&i64::from(r.pid)).copied().unwrap_or((0, 0));
                        cells.extend([
                            count(r.fds.clone().ok()),
                            limit,
                            ratio,
                            count(s.deleted_open.get(&r.pid).map(|n| u64::from(*n))),
                            count(Some(u64::from(held))),
                            count(Some(u64::from(waiting))),
                        ]);
                    }
                    Tab::Isolation => {
                        cells.extend([
                            count(r.oom_score.clone().ok()),
                            s.isolated
                                .get(&r.pid)
                                .map_or(Value::Missing, |n| Value::Namespaces(n)),
                            s.cgroup_path(r).map_or(Value::Missing, Value::Text),
                        ]);
                    }
                    Tab::System => {}
                }
                (r.pid, cells)
            })
            .collect();
        let col = self.sort;
        let text_col = col == 1 || (self.tab == Tab::Isolation && col == 4);
        out.sort_by(|a, b| {
            let (x, y) = (&a.1.get(col), &b.1.get(col));
            let ord = match (x, y) {
                (Some(x), Some(y)) if text_col => x.sort_text().cmp(y.sort_text()),
                (Some(x), Some(y)) if col == 0 => x.key().total_cmp(&y.key()),
                (Some(x), Some(y)) => y.key().total_cmp(&x.key()),
                _ => std::cmp::Ordering::Equal,
            };
            let ord = ord.then(a.0.cmp(&b.0));
            if self.reverse {
                ord.reverse()
            } else {
                ord
            }
        });
        out
    }

    fn selected_pid(&self) -> Option<i32> {
        let rows = self.table();
        rows.get(self.state.selected()?).map(|r| r.0)
    }

    /// Handles one key; returns false to quit.
    pub fn key(&mut self, code: KeyCode) -> bool {
        if self.editing_filter {
            match code {
                KeyCode::Enter => self.editing_filter = false,
                KeyCode::Esc => {
                    self.editing_filter = false;
                    self.filter.clear();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            }
            return true;
        }
        if self.inspect.is_some() {
            match code {
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => self.inspect = None,
                KeyCode::Down | KeyCode::Char('j') => {
                    if let Some(i) = &mut self.inspect {
                        i.2 = i.2.saturating_add(1);
                    }
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    if let Some(i) = &mut self.inspect {
                        i.2 = i.2.saturating_sub(1);
                    }
                }
                KeyCode::PageDown => {
                    if let Some(i) = &mut self.inspect {
                        i.2 = i.2.saturating_add(20);
                    }
                }
                KeyCode::PageUp => {
                    if let Some(i) = &mut self.inspect {
                        i.2 = i.2.saturating_sub(20);
                    }
                }
                _ => {}
            }
            return true;
        }
        let columns = self.tab.columns(self.pss).len();
        match code {
            KeyCode::Char('q') => return false,
            KeyCode::Char(c @ '1'..='5') => {
                self.tab = TABS[c as usize - '1' as usize];
                self.sort = self
                    .sort
                    .min(self.tab.columns(self.pss).len().saturating_sub(1))
                    .max(if self.tab == Tab::System { 0 } else { 2 }.min(columns));
            }
            KeyCode::Tab => {
                let i = TABS.iter().position(|t| *t == self.tab).unwrap_or(0);
                self.tab = TABS[(i + 1) % TABS.len()];
                self.sort = 2;
            }
            KeyCode::Char('>') | KeyCode::Right | KeyCode::Char('s') => {
                self.sort = (self.sort + 1) % columns.max(1)
            }
            KeyCode::Char('<') | KeyCode::Left => {
                self.sort = (self.sort + columns.max(1) - 1) % columns.max(1)
            }
            KeyCode::Char('r') => self.reverse = !self.reverse,
            KeyCode::Char('/') => self.editing_filter = true,
            KeyCode::Char('p') => self.pss = !self.pss,
            KeyCode::Down | KeyCode::Char('j') => self.state.select_next(),
            KeyCode::Up | KeyCode::Char('k') => self.state.select_previous(),
            KeyCode::Home => self.state.select_first(),
            KeyCode::Enter => {
                if let Some(pid) = self.selected_pid() {
                    let text = match self.inspector.as_mut() {
                        Some(reader) => inspect_text(reader, pid),
                        None => "no reader to inspect with".into(),
                    };
                    self.inspect = Some((pid, text, 0));
                }
            }
            _ => {}
        }
        true
    }
}

/// The `inspect` view of a process, as plain text.
fn inspect_text(reader: &mut Reader, pid: i32) -> String {
    let opts = crate::model::process::ViewOptions {
        window: Duration::ZERO,
        smaps: true,
    };
    match crate::commands::inspect::inspect(reader, pid, Vec::new(), opts) {
        Ok(report) => {
            let mut buf = Vec::new();
            let _ = crate::render::text::inspect(
                &mut buf,
                &report,
                &crate::render::Style { color: false },
            );
            crate::render::safe::clean_lines(&String::from_utf8_lossy(&buf)).into_owned()
        }
        Err(e) => format!("pid {pid}: {e}"),
    }
}

const KEYS: &str =
    "q quit · 1-5/Tab views · </> sort · r reverse · / filter · ↑↓ select · Enter inspect · p PSS";

/// Draws the whole screen: tabs, the table or the system view, status line and keys.
pub fn draw(f: &mut Frame, app: &mut App) {
    let [tabs, body, status, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let titles: Vec<&str> = TABS.iter().map(|t| t.title()).collect();
    let selected = TABS.iter().position(|t| *t == app.tab).unwrap_or(0);
    f.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
        tabs,
    );
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
    let cost = if app.cost_ms.is_empty() {
        0.0
    } else {
        app.cost_ms.iter().sum::<f64>() / app.cost_ms.len() as f64
    };
    let n = app.sample.as_ref().map_or(0, |s| s.rows.len());
    let filter = if app.editing_filter || !app.filter.is_empty() {
        format!(
            " · filter: {}{}",
            app.filter,
            if app.editing_filter { "_" } else { "" }
        )
    } else {
        String::new()
    };
    f.render_widget(
        Paragraph::new(format!(
            "{n} processes · collector {cost:.1} ms CPU per refresh{filter}"
        )),
        status,
    );
    f.render_widget(
        Paragraph::new(KEYS).style(Style::new().fg(Color::DarkGray)),
        keys,
    );
}

fn draw_table(f: &mut Frame, app: &mut App, area: Rect) {
    let cols = app.tab.columns(app.pss);
    let header = Row::new(cols.iter().enumerate().map(|(i, c)| {
        let mark = if i == app.sort {
            if app.reverse {
                "▲"
            } else {
                "▼"
            }
        } else {
            ""
        };
        Cell::from(format!("{c}{mark}"))
    }))
    .style(Style::new().add_modifier(Modifier::BOLD));
    let table = app.table();
    // Only the rows on screen get text; the offset is settled here, as the table
    // widget would (keep the selection visible), so the two agree.
    let height = usize::from(area.height.saturating_sub(1)).max(1);
    let last = table.len().saturating_sub(1);
    let selected = app.state.selected().unwrap_or(0).min(last);
    let offset = app
        .state
        .offset()
        .min(selected)
        .max((selected + 1).saturating_sub(height));
    let rows: Vec<Row> = table
        .iter()
        .enumerate()
        .map(|(i, (_, cells))| {
            if (offset..offset + height).contains(&i) {
                Row::new(cells.iter().map(|c| Cell::from(c.text())))
            } else {
                Row::default()
            }
        })
        .collect();
    drop(table);
    app.state.select(Some(selected));
    *app.state.offset_mut() = offset;
    let widths: Vec<Constraint> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| match (i, *c) {
            (0, _) => Constraint::Length(7),
            (1, _) => Constraint::Length(16),
            (_, "CGROUP") => Constraint::Min(20),
            (_, "NS") => Constraint::Length(18),
            _ => Constraint::Length(10),
        })
        .collect();
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    f.render_stateful_widget(table, area, &mut app.state);
}

fn draw_system(f: &mut Frame, app: &App, area: Rect) {
    let [psi, mid, bottom] = Layout::vertical([
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Min(3),
    ])
    .areas(area);
    let parts = Layout::horizontal([Constraint::Ratio(1, 3); 3]).split(psi);
    for (i, name) in ["cpu", "memory", "io"].iter().enumerate() {
        let data: Vec<u64> = app.psi_history[i].iter().copied().collect();
        let last = data.last().map_or(0.0, |x| *x as f64 / 100.0);
        let spark = Sparkline::default()
            .block(Block::bordered().title(format!(" {name} pressure {last:.1}% ")))
            .data(&data);
        f.render_widget(spark, parts[i]);
    }
    let [mem, buddy] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(mid);
    let mut lines = Vec::new();
    if let Some(Ok(m)) = app.sample.as_ref().map(|s| &s.meminfo) {
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
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" memory ")),
        mem,
    );
    let mut lines = Vec::new();
    if let Some(z) = app.sample.as_ref().and_then(|s| s.zone.as_ref().as_ref()) {
        lines.push(Line::from(format!(
            "zone {}: order, free blocks, unusable index",
            z.zone
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
            .block(Block::bordered().title(" buddy "))
            .wrap(Wrap { trim: false }),
        buddy,
    );
    let [slabs, exited] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    let page = rustix::param::page_size() as u64;
    let lines: Vec<Line> = app
        .sample
        .as_ref()
        .map(|s| {
            s.slabs
                .iter()
                .map(|c| {
                    Line::from(format!(
                        "{:<22}{:>10}",
                        c.name,
                        crate::render::bytes(c.bytes(page) as f64)
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let title = if lines.is_empty() {
        " top slabs (root only) "
    } else {
        " top slabs "
    };
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        slabs,
    );
    let now = Instant::now();
    let lines: Vec<Line> = app
        .exited
        .iter()
        .map(|e| {
            let style = if e.cause == "OOM kill" {
                Style::new().fg(Color::Red)
            } else {
                Style::new()
            };
            Line::from(vec![Span::styled(
                format!(
                    "{:>7} {:<14} {:>9} hwm {:>9} {} {:.0}s ago",
                    e.pid,
                    e.comm,
                    e.rss.map_or("-".into(), |b| crate::render::bytes(b as f64)),
                    e.hwm.map_or("-".into(), |b| crate::render::bytes(b as f64)),
                    e.cause,
                    now.duration_since(e.at).as_secs_f64()
                ),
                style,
            )])
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" recently exited ")),
        exited,
    );
}

/// Runs the UI until `q`. The terminal is restored on exit and on panic (ratatui::init
/// installs the hook).
/// Runs the TUI until `q`: `collector` feeds the samples (in its own thread),
/// `inspector` serves `Enter`; both read the tree the command line chose.
pub fn run(collector: Reader, inspector: Reader, interval: Duration) -> std::io::Result<()> {
    let (tx, rx) = mpsc::channel::<Box<Sample>>();
    let (spent_tx, spent_rx) = mpsc::channel();
    let wants = Arc::new(Wants::default());
    let app = App {
        inspector: Some(inspector),
        ..App::default()
    };
    app.publish(&wants);
    // Each process's cheap-tier files stay open between refreshes (ScanOptions::keep_open).
    syslens_probe::table::raise_fd_limit();
    let collector_wants = wants.clone();
    std::thread::spawn(move || collect::run(collector, tx, spent_rx, interval, collector_wants));
    let mut terminal = ratatui::init();
    let mut app = app;
    let result = (|| -> std::io::Result<()> {
        // Draw only when something changed: a new sample, a key, a resize.
        let mut dirty = true;
        let mut last_sample = Instant::now();
        loop {
            while let Ok(s) = rx.try_recv() {
                last_sample = Instant::now();
                if let Some(done) = app.apply(*s) {
                    // The collector may have stopped; the buffer is then just dropped.
                    let _ = spent_tx.send(done.rows);
                }
                dirty = true;
            }
            if dirty {
                terminal.draw(|f| draw(f, &mut app))?;
                dirty = false;
            }
            // Wake when the next sample is due (the collector keeps a fixed period) or
            // on a key, rather than on a fixed tick: every wake-up costs CPU.
            let next = last_sample + interval + Duration::from_millis(5);
            let wait = next.saturating_duration_since(Instant::now()).clamp(
                Duration::from_millis(20),
                interval.max(Duration::from_millis(20)),
            );
            if event::poll(wait)? {
                match event::read()? {
                    Event::Key(k) if k.kind == KeyEventKind::Press => {
                        if !app.key(k.code) {
                            return Ok(());
                        }
                        app.publish(&wants);
                        dirty = true;
                    }
                    Event::Resize(..) => dirty = true,
                    _ => {}
                }
            }
        }
    })();
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use syslens_probe::table::ProcessRow;

    use super::*;

    fn sample(pass: u64) -> Sample {
        let mut scanner =
            syslens_probe::table::Scanner::new(syslens_probe::Reader::host().unwrap());
        let rows = scanner
            .scan_pids(&[std::process::id() as i32, 1], Default::default())
            .to_vec();
        Sample {
            at: Instant::now() + Duration::from_secs(pass),
            rows,
            cgroup_paths: Arc::new([]),
            meminfo: Err(syslens_probe::Missing::Exited),
            psi: [None, None, None],
            zone: Arc::new(None),
            slabs: Arc::new([]),
            locks: HashMap::new(),
            deleted_open: Arc::default(),
            isolated: Arc::default(),
            oom_killed: Vec::new(),
            pass_cpu_ns: 2_000_000,
        }
    }

    fn screen(app: &mut App) -> String {
        let mut t = Terminal::new(TestBackend::new(120, 30)).unwrap();
        t.draw(|f| draw(f, app)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
                    + "\n"
            })
            .collect()
    }

    #[test]
    fn layout_shows_tabs_columns_rows_and_keys() {
        let mut app = App::default();
        app.apply(sample(0));
        app.apply(sample(1));
        let s = screen(&mut app);
        assert!(s.contains("1 memory") && s.contains("5 system"));
        assert!(s.contains("PID") && s.contains("RSS▼") && s.contains("MAJFLT/s"));
        assert!(s.contains(&std::process::id().to_string()));
        assert!(s.contains("q quit"));
        assert!(s.contains("2.0 ms CPU per refresh"));
    }

    #[test]
    fn rows_below_the_screen_get_text_when_scrolled_to() {
        let mut app = App::default();
        let mut s = sample(0);
        let base = s.rows[0].clone();
        s.rows = (1..=200)
            .map(|pid| ProcessRow {
                pid,
                ..base.clone()
            })
            .collect();
        assert!(app.apply(s).is_none());
        app.sort = 0;
        for _ in 0..150 {
            app.key(KeyCode::Down);
        }
        let screen = screen(&mut app);
        let pids: Vec<i32> = screen
            .lines()
            .skip(1) // the tabs: " 1 memory │ ..."
            .filter(|l| !l.contains("processes"))
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        // 30 lines: tabs, header, status and keys leave 26 rows, ending at the selection.
        assert_eq!(pids, (126..=151).collect::<Vec<_>>(), "{screen}");
    }

    /// Odd /proc content must not panic the UI: CPU% summed two huge tick counts.
    #[test]
    fn regression_huge_cpu_times_do_not_overflow_cpu_percent() {
        let mut app = App::default();
        for pass in 0..2 {
            let mut s = sample(pass);
            s.rows[0].utime_ticks = u64::MAX;
            s.rows[0].stime_ticks = u64::MAX;
            app.apply(s);
        }
        app.key(KeyCode::Char('2'));
        assert!(screen(&mut app).contains("CPU%"));
    }

    #[test]
    fn a_sample_is_handed_back_once_no_rate_needs_it() {
        let mut app = App::default();
        let marked = |pass: u64| Sample {
            pass_cpu_ns: pass,
            ..sample(pass)
        };
        assert!(app.apply(marked(0)).is_none());
        assert!(app.apply(marked(1)).is_none());
        // The current sample and the previous one (for rates) stay.
        let back = app.apply(marked(2)).expect("the first sample");
        assert_eq!(back.pass_cpu_ns, 0);
    }

    #[test]
    fn keys_switch_views_sort_and_filter() {
        let mut app = App::default();
        let wants = Wants::default();
        app.apply(sample(0));
        assert!(app.key(KeyCode::Char('2')));
        assert!(screen(&mut app).contains("NVCSW/s"));
        app.key(KeyCode::Char('>'));
        assert_eq!(app.sort, 3);
        app.key(KeyCode::Char('r'));
        assert!(screen(&mut app).contains('▲'));
        app.key(KeyCode::Char('/'));
        for c in "no-such-name".chars() {
            app.key(KeyCode::Char(c));
        }
        app.key(KeyCode::Enter);
        assert!(app.table().is_empty());
        app.publish(&wants);
        assert!(!wants.pss.load(Ordering::Relaxed));
        app.key(KeyCode::Char('p'));
        app.publish(&wants);
        assert!(
            wants.pss.load(Ordering::Relaxed),
            "PSS is read only when asked for"
        );
        assert!(!app.key(KeyCode::Char('q')));
    }

    #[test]
    fn a_process_that_left_stays_visible_with_its_cause() {
        let mut app = App::default();
        let mut s = sample(0);
        let mut gone = s.rows[0].clone();
        gone.pid = 999_999;
        s.rows.push(gone);
        app.apply(s);
        let mut next = sample(1);
        next.oom_killed = vec![999_999];
        app.apply(next);
        assert_eq!(app.exited.len(), 1);
        assert_eq!(
            (app.exited[0].pid, app.exited[0].cause),
            (999_999, "OOM kill")
        );
        app.key(KeyCode::Char('5'));
        assert!(screen(&mut app).contains("OOM kill"));
    }
}
