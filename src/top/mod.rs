//! `syslens top`: a live view organised by concept, in the spirit of htop. A collector
//! thread samples /proc and sends each sample over a channel; this loop owns the state,
//! reacts to keys and the mouse, and draws.
//!
//! `collect` reads, `App` (here) derives the rows and rates from two samples, `keys`
//! turns keys and clicks into changes of `App`, `draw` lays the screen out and `kill`
//! sends signals.

pub mod collect;
mod draw;
pub mod events;
mod keys;
mod kill;
pub mod source;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyCode, KeyEventKind, KeyModifiers,
};
use syslens_probe::limits::LimitValue;
use syslens_probe::table::ProcessRow;
use syslens_probe::{Reader, Val, USER_HZ};

use collect::{Sample, Wants};
pub use draw::draw;
pub use keys::{HelpEntry, HELP};
use keys::{Menu, Prompt};

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

    /// The table's columns, left to right: PID and USER first, COMMAND last (it takes
    /// the width left over, and the tree's branches), but for the isolation view's
    /// CGROUP, the longest text, which goes after it. The isolation view's CONTAINER
    /// comes before its CPU and pids columns: on a narrow screen, columns are kept left
    /// to right, and which container a process is in matters more.
    pub fn columns(self, pss: bool) -> Vec<Col> {
        use Col::*;
        let mut c = vec![Pid, User];
        c.extend_from_slice(match self {
            Tab::Memory => &[Cpu, Rss, Hwm, PeakSeen, Growth, Swap, MinFlt, MajFlt][..],
            Tab::Cpu => &[Cpu, Usr, Sys, Vcsw, Nvcsw, Runq, Nice, Threads],
            Tab::Files => &[Fds, Limit, FdPct, Deleted, Locks, Waiting],
            Tab::Isolation => &[
                Oom, Ns, MemLimit, LimitPct, Container, Cpus, CpusPct, PidLimit, PidsPct,
            ],
            Tab::System => return Vec::new(),
        });
        if pss && self == Tab::Memory {
            c.push(Pss);
        }
        c.push(Command);
        if self == Tab::Isolation {
            c.push(Cgroup);
        }
        c
    }

    /// The column a view sorts by when the one chosen is not among its columns.
    fn default_sort(self) -> Col {
        match self {
            Tab::Memory | Tab::System => Col::Rss,
            Tab::Cpu => Col::Cpu,
            Tab::Files => Col::Fds,
            Tab::Isolation => Col::Oom,
        }
    }
}

/// A column of the process table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // each is the column its header names
pub enum Col {
    Pid,
    User,
    Rss,
    Hwm,
    PeakSeen,
    Growth,
    Swap,
    MinFlt,
    MajFlt,
    Pss,
    Cpu,
    Usr,
    Sys,
    Vcsw,
    Nvcsw,
    Runq,
    Nice,
    Threads,
    Fds,
    Limit,
    FdPct,
    Deleted,
    Locks,
    Waiting,
    Oom,
    Ns,
    MemLimit,
    LimitPct,
    Cpus,
    CpusPct,
    PidLimit,
    PidsPct,
    Container,
    Command,
    Cgroup,
}

impl Col {
    /// The header.
    pub fn name(self) -> &'static str {
        match self {
            Col::Pid => "PID",
            Col::User => "USER",
            Col::Rss => "RSS",
            Col::Hwm => "HWM",
            Col::PeakSeen => "PEAK SEEN",
            Col::Growth => "GROWTH",
            Col::Swap => "SWAP",
            Col::MinFlt => "MINFLT/s",
            Col::MajFlt => "MAJFLT/s",
            Col::Pss => "PSS",
            Col::Cpu => "CPU%",
            Col::Usr => "USR%",
            Col::Sys => "SYS%",
            Col::Vcsw => "VCSW/s",
            Col::Nvcsw => "NVCSW/s",
            Col::Runq => "RUNQ%",
            Col::Nice => "NICE",
            Col::Threads => "THR",
            Col::Fds => "FDS",
            Col::Limit => "LIMIT",
            Col::FdPct => "FD%",
            Col::Deleted => "DELETED",
            Col::Locks => "LOCKS",
            Col::Waiting => "WAITING",
            Col::Oom => "OOM",
            Col::Ns => "NS",
            Col::MemLimit => "MEMLIMIT",
            Col::LimitPct => "LIMIT%",
            Col::Cpus => "CPUS",
            Col::CpusPct => "CPUS%",
            Col::PidLimit => "PIDLIMIT",
            Col::PidsPct => "PIDS%",
            Col::Container => "CONTAINER",
            Col::Command => "COMMAND",
            Col::Cgroup => "CGROUP",
        }
    }

    /// Text, left-aligned and sorted A to Z; numbers are right-aligned.
    pub fn is_text(self) -> bool {
        matches!(
            self,
            Col::User | Col::Ns | Col::Container | Col::Command | Col::Cgroup
        )
    }

    /// Sorted smallest first (text, PIDs, nice values); other numbers largest first.
    fn ascending(self) -> bool {
        self.is_text() || matches!(self, Col::Pid | Col::Nice)
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
    /// A number of CPUs, as people write it: 0.5, 1.5, 2.
    Cpus(f64),
    /// No limit: shown as `inf`.
    Unlimited,
    /// Text from the process (a command name, a cgroup), escaped when shown.
    Text(&'a str),
    /// A zombie's command name, shown as ps does: `name <defunct>`.
    Defunct(&'a str),
    /// A user: the name from the tree's etc/passwd (escaped when shown), else the uid.
    User(Option<&'a str>, u64),
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
            Value::Rate(x) | Value::Percent(x) | Value::Cpus(x) => x,
            Value::Unlimited => f64::INFINITY,
            Value::Text(_) | Value::Defunct(_) | Value::User(..) => 0.0,
            Value::Namespaces(n) => n.len() as f64,
        }
    }

    fn sort_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Value::Text(t) | Value::Defunct(t) | Value::User(Some(t), _) => (*t).into(),
            Value::User(None, uid) => uid.to_string().into(),
            Value::Namespaces(n) => n.join(",").into(),
            _ => "".into(),
        }
    }

    fn is_missing(&self) -> bool {
        matches!(self, Value::Missing)
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
            Value::Cpus(x) => {
                let s = format!("{x:.2}");
                s.trim_end_matches('0').trim_end_matches('.').to_owned()
            }
            Value::Unlimited => "inf".into(),
            Value::Text(t) | Value::User(Some(t), _) => crate::render::safe::clean(t).into_owned(),
            Value::Defunct(t) => format!("{} <defunct>", crate::render::safe::clean(t)),
            Value::User(None, uid) => uid.to_string(),
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

/// One row of the table as the current view shows it.
#[derive(Debug)]
pub struct TableRow<'a> {
    /// The process id.
    pub pid: i32,
    /// Its start time (with the pid, names one process: pids are reused).
    pub start_ticks: u64,
    /// The parent's pid.
    pub ppid: i64,
    /// The command name, raw (searches match it; shown through `Value::text`).
    pub comm: &'a str,
    /// In the tree view, the branches drawn before the command name (`│  ├─ `).
    pub branch: String,
    /// Pid 1, or the init of a PID namespace: the kernel drops the signals it has no
    /// handler for.
    pub init: bool,
    /// One value per column of the view.
    pub cells: Vec<Value<'a>>,
}

/// How many processes the table shows, and why not the others.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Processes in the sample.
    pub total: usize,
    /// Rows the table shows.
    pub shown: usize,
    /// Kernel threads left out (until `K`).
    pub kernel_hidden: usize,
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

/// Samples of RSS kept per process, for GROWTH (a minute at the default interval).
const HISTORY: usize = 60;
/// Pressure samples kept for the sparklines: more than the widest screen shows.
const PSI_HISTORY: usize = 600;
/// Exited processes kept, for as long as EXITED_FOR.
const EXITED_KEPT: usize = 200;
const EXITED_FOR: Duration = Duration::from_secs(300);
/// A message (a kill's outcome) stays this long, or until the next key.
const MESSAGE_FOR: Duration = Duration::from_secs(30);
/// Samples in flight from the collector: when the screen stops taking them, the
/// collector waits rather than queueing samples without bound.
const SAMPLES_IN_FLIGHT: usize = 2;
/// After SIGTERM, SIGHUP or SIGINT, how long beyond one interval the loop has to
/// restore the terminal before the process exits anyway.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Where the last frame put the table, so a click can be mapped to a row or column.
#[derive(Debug, Default, Clone)]
pub struct Geometry {
    /// The header line's row on screen; None when no table is drawn.
    pub header_y: Option<u16>,
    /// Rows of processes on screen.
    pub rows: u16,
    /// The first row index shown.
    pub offset: usize,
    /// Each column shown and the screen columns it spans (start, end exclusive).
    pub columns: Vec<(Col, u16, u16)>,
}

/// Everything the screen shows, derived from samples.
#[derive(Debug)]
pub struct App {
    /// The tab shown.
    pub tab: Tab,
    /// The column sorted by.
    pub sort: Col,
    /// Reverse the sort order.
    pub reverse: bool,
    /// Only processes whose command name contains this (case-insensitive).
    pub filter: String,
    /// The text searched for (F3, `/`): the selection jumps to a match.
    pub search: String,
    /// A line being typed at the status line: a search or a filter.
    pub prompt: Option<Prompt>,
    /// Children under their parents.
    pub tree: bool,
    /// Show kernel threads (`K`).
    pub show_kernel: bool,
    /// Read and show PSS (smaps_rollup of every process).
    pub pss: bool,
    /// The help screen, scrolled to this line.
    pub help: Option<u16>,
    /// A menu over the table: the signal to send, the column to sort by.
    pub menu: Option<Menu>,
    /// What the last action did (a kill's outcome), with when it was said.
    pub message: Option<(String, Instant)>,
    /// The `inspect` view shown over the table: the pid, its text, and the line scrolled to.
    pub inspect: Option<(i32, String, u16)>,
    /// The selected process, followed across refreshes and re-sorts.
    selected: Option<i32>,
    /// The selected row's index when last seen (kept when the process leaves).
    cursor: usize,
    /// Processes tagged for kill, by pid and start time.
    tagged: HashSet<(i32, u64)>,
    /// Where the last frame drew the table.
    geometry: Geometry,
    prev: Option<Sample>,
    /// The latest sample.
    pub sample: Option<Sample>,
    rss_history: HashMap<i32, VecDeque<u64>>,
    peak_seen: HashMap<i32, u64>,
    /// Processes that left recently, newest first.
    pub exited: VecDeque<Exited>,
    /// Recent `some avg10` of cpu, memory and io pressure, in hundredths of a percent,
    /// with when each was read (None where the file was unreadable).
    pub psi_history: [VecDeque<(Instant, Option<u64>)>; 3],
    /// CPU time of recent collector passes, in ms.
    pub cost_ms: VecDeque<f64>,
    /// The recent-events lines under the meters.
    pub events: events::Events,
    /// The events thread's reports; none when events are off, and in tests.
    reports: Option<mpsc::Receiver<events::Report>>,
    /// A line above the meters about where the samples come from (a replay says
    /// which recorded sample is shown); none for the live view.
    pub source_line: Option<String>,
    /// Some for recorded samples: why the keys that act on a live process (kill,
    /// tag) are refused.
    pub frozen: Option<&'static str>,
    /// The columns the source does not have (shown as `-`, named in the status line).
    pub unrecorded: &'static [Col],
    /// What the CPU meters say before two samples give a rate.
    pub no_rate_yet: &'static str,
    /// What the status line calls the cost of a sample.
    pub cost_label: &'static str,
    /// A request a key made of the source (step, go to, inspect), taken by the loop.
    pub request: Option<source::Request>,
    /// The time being typed at the go-to prompt (`g`).
    pub goto: String,
    /// The reader `Enter` inspects a process with and `k` checks a process with
    /// before signalling it (the command line's, like the collector's): none in
    /// tests that only draw.
    inspector: Option<Reader>,
}

impl Default for App {
    fn default() -> Self {
        App {
            tab: Tab::Memory,
            sort: Col::Rss,
            reverse: false,
            filter: String::new(),
            search: String::new(),
            prompt: None,
            tree: false,
            show_kernel: false,
            pss: false,
            help: None,
            menu: None,
            message: None,
            inspect: None,
            selected: None,
            cursor: 0,
            tagged: HashSet::new(),
            geometry: Geometry::default(),
            inspector: None,
            source_line: None,
            frozen: None,
            unrecorded: &[],
            no_rate_yet: "measuring",
            cost_label: "collector",
            request: None,
            goto: String::new(),
            prev: None,
            sample: None,
            rss_history: HashMap::new(),
            peak_seen: HashMap::new(),
            exited: VecDeque::new(),
            psi_history: Default::default(),
            cost_ms: VecDeque::new(),
            events: events::Events::default(),
            reports: None,
        }
    }
}

/// Per second of a counter's growth over `secs`, scaled; None without a previous
/// value, or when the counter went back (a new process under the pid).
fn per_sec(now: u64, before: Option<u64>, scale: f64, secs: f64) -> Option<f64> {
    match before {
        Some(b) if secs > 0.0 && now >= b => Some((now - b) as f64 * scale / secs),
        _ => None,
    }
}

/// Whether `name` contains `needle`, ignoring ASCII case (as htop's search and filter).
fn matches(name: &str, needle: &str) -> bool {
    needle.is_empty()
        || name
            .as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

impl App {
    /// Takes a new sample: rates against the previous one, history, exits. Returns
    /// the sample no longer needed, whose buffers the collector can reuse.
    pub fn apply(&mut self, s: Sample) -> Option<Sample> {
        let now = s.at;
        let mut retired = None;
        if let Some(old) = self.sample.take() {
            let alive: HashSet<i32> = s.rows.iter().map(|r| r.pid).collect();
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
        let starts: HashSet<(i32, u64)> =
            s.rows.iter().map(|r| (r.pid, r.start_time_ticks)).collect();
        self.tagged.retain(|t| starts.contains(t));
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
            let hundredths = p.as_ref().ok().map(|p| (p.some.avg10 * 100.0) as u64);
            h.push_back((now, hundredths));
            if h.len() > PSI_HISTORY {
                h.pop_front();
            }
        }
        self.cost_ms.push_back(s.pass_cpu_ns as f64 / 1e6);
        if self.cost_ms.len() > 30 {
            self.cost_ms.pop_front();
        }
        if self
            .message
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() > MESSAGE_FOR)
        {
            self.message = None;
        }
        self.sample = Some(s);
        retired
    }

    /// Forgets every sample and what was derived from them (rates, history, exits),
    /// keeping the view, sort, filter and selection: a replay jumping to another
    /// moment starts over from the samples before it.
    pub fn restart(&mut self) {
        self.prev = None;
        self.sample = None;
        self.rss_history.clear();
        self.peak_seen.clear();
        self.exited.clear();
        for h in &mut self.psi_history {
            h.clear();
        }
        self.cost_ms.clear();
    }

    /// Takes the events thread's reports that have arrived; whether there were any.
    pub fn take_reports(&mut self) -> bool {
        let Some(rx) = &self.reports else {
            return false;
        };
        let mut any = false;
        for r in rx.try_iter() {
            self.events.take(r);
            any = true;
        }
        any
    }

    /// The previous sample, which rates are computed against.
    pub fn previous(&self) -> Option<&Sample> {
        self.prev.as_ref()
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

    /// The columns of the view shown.
    pub fn columns(&self) -> Vec<Col> {
        self.tab.columns(self.pss)
    }

    /// The column sorted by in the view shown (the view's own when the one chosen is
    /// not among its columns).
    pub fn sort_column(&self) -> Col {
        let cols = self.columns();
        if cols.contains(&self.sort) {
            self.sort
        } else {
            self.tab.default_sort()
        }
    }

    fn cell<'a>(
        &'a self,
        col: Col,
        r: &'a ProcessRow,
        p: Option<&ProcessRow>,
        s: &'a Sample,
        secs: f64,
    ) -> Value<'a> {
        let rate = |now: u64, before: Option<u64>| {
            per_sec(now, before, 1.0, secs).map_or(Value::Missing, Value::Rate)
        };
        let counter = |now: &Val<u64>, before: Option<&Val<u64>>| match now {
            Ok(n) => rate(*n, before.and_then(|b| b.clone().ok())),
            Err(_) => Value::Missing,
        };
        let tick = 100.0 / USER_HZ as f64;
        let pct = |now: u64, before: Option<u64>, scale: f64| {
            per_sec(now, before, scale, secs).map_or(Value::Missing, Value::Percent)
        };
        // A zombie has released its memory, files, namespaces and cgroup: what /proc
        // still shows of them (cgroup "/", an fd limit) describes no live process.
        let zombie = r.state == b'Z';
        if zombie
            && !matches!(
                col,
                Col::Pid | Col::User | Col::Command | Col::Cpu | Col::Usr | Col::Sys | Col::Nice
            )
        {
            return Value::Missing;
        }
        match col {
            Col::Pid => Value::Count(i64::from(r.pid)),
            Col::User => match r.uid {
                Ok(uid) => Value::User(
                    u32::try_from(uid)
                        .ok()
                        .and_then(|u| s.users.get(&u))
                        .map(String::as_str),
                    uid,
                ),
                Err(_) => Value::Missing,
            },
            Col::Rss => bytes(r.rss.clone().ok()),
            Col::Hwm => bytes(r.hwm.clone().ok()),
            Col::PeakSeen => bytes(self.peak_seen.get(&r.pid).copied()),
            Col::Growth => self
                .rss_history
                .get(&r.pid)
                .and_then(|h| Some(*h.back()? as i64 - *h.front()? as i64))
                .map_or(Value::Missing, Value::Growth),
            Col::Swap => bytes(r.swap.clone().ok()),
            Col::MinFlt => rate(r.minflt, p.map(|p| p.minflt)),
            Col::MajFlt => rate(r.majflt, p.map(|p| p.majflt)),
            Col::Pss => bytes(
                r.rollup
                    .as_ref()
                    .and_then(|u| u.as_ref().ok()?.pss.clone().ok()),
            ),
            Col::Cpu => pct(
                r.utime_ticks.saturating_add(r.stime_ticks),
                p.map(|p| p.utime_ticks.saturating_add(p.stime_ticks)),
                tick,
            ),
            Col::Usr => pct(r.utime_ticks, p.map(|p| p.utime_ticks), tick),
            Col::Sys => pct(r.stime_ticks, p.map(|p| p.stime_ticks), tick),
            Col::Vcsw => counter(&r.voluntary_switches, p.map(|p| &p.voluntary_switches)),
            Col::Nvcsw => counter(&r.involuntary_switches, p.map(|p| &p.involuntary_switches)),
            Col::Runq => match (&r.run_queue_wait_ns, p.map(|p| &p.run_queue_wait_ns)) {
                (Ok(a), Some(Ok(b))) => pct(*a, Some(*b), 100.0 / 1e9),
                _ => Value::Missing,
            },
            Col::Nice => Value::Count(r.nice),
            Col::Threads => count(Some(r.threads)),
            Col::Fds => count(r.fds.clone().ok()),
            Col::Limit => match r.fd_soft_limit {
                Ok(LimitValue::Value(l)) => count(Some(l)),
                Ok(LimitValue::Unlimited) => Value::Unlimited,
                Err(_) => Value::Missing,
            },
            Col::FdPct => syslens_probe::table::fd_ratio(r)
                .map_or(Value::Missing, |x| Value::Percent(x * 100.0)),
            Col::Deleted => count(s.deleted_open.get(&r.pid).map(|n| u64::from(*n))),
            Col::Locks | Col::Waiting => {
                let (held, waiting) = s.locks.get(&i64::from(r.pid)).copied().unwrap_or((0, 0));
                count(Some(u64::from(if col == Col::Locks {
                    held
                } else {
                    waiting
                })))
            }
            Col::Oom => count(r.oom_score.clone().ok()),
            Col::Ns => s
                .isolated
                .get(&r.pid)
                .map_or(Value::Missing, |n| Value::Namespaces(n)),
            Col::MemLimit => bytes(s.mem_limit(r).map(|(limit, _)| limit)),
            Col::LimitPct => match s.mem_limit(r) {
                Some((limit, Some(used))) if limit > 0 => {
                    Value::Percent(used as f64 / limit as f64 * 100.0)
                }
                _ => Value::Missing,
            },
            Col::Cpus => s.cpu_pids(r).cpus.map_or(Value::Missing, Value::Cpus),
            // The process's CPU% (100 = one CPU) against the CPUs it can use.
            Col::CpusPct => match (s.cpu_pids(r).cpus, self.cell(Col::Cpu, r, p, s, secs)) {
                (Some(cpus), Value::Percent(pct)) if cpus > 0.0 => Value::Percent(pct / cpus),
                _ => Value::Missing,
            },
            Col::PidLimit => match s.cpu_pids(r).pids {
                Some(Some((max, _))) => count(Some(max)),
                Some(None) => Value::Unlimited,
                None => Value::Missing,
            },
            Col::PidsPct => match s.cpu_pids(r).pids {
                Some(Some((max, Some(used)))) if max > 0 => {
                    Value::Percent(used as f64 / max as f64 * 100.0)
                }
                _ => Value::Missing,
            },
            Col::Container => s.container(r).map_or(Value::Missing, Value::Text),
            Col::Command if zombie => Value::Defunct(r.comm.as_str()),
            Col::Command => Value::Text(r.comm.as_str()),
            Col::Cgroup => s.cgroup_path(r).map_or(Value::Missing, Value::Text),
        }
    }

    /// Whether the table lists a process: kernel threads only when shown (`K`), and
    /// only names that contain the filter.
    fn lists(&self, r: &ProcessRow) -> bool {
        (self.show_kernel || !r.kernel_thread) && matches(r.comm.as_str(), &self.filter)
    }

    /// How many processes the table lists, of how many, and the kernel threads left out.
    pub fn counts(&self) -> Counts {
        let Some(s) = &self.sample else {
            return Counts::default();
        };
        Counts {
            total: s.rows.len(),
            shown: s.rows.iter().filter(|r| self.lists(r)).count(),
            kernel_hidden: s
                .rows
                .iter()
                .filter(|r| r.kernel_thread && !self.show_kernel)
                .count(),
        }
    }

    /// The rows of the current tab: kernel threads left out unless shown, filtered,
    /// sorted (missing values last in either direction), as a tree when asked.
    pub fn table(&self) -> Vec<TableRow<'_>> {
        let Some(s) = &self.sample else {
            return Vec::new();
        };
        let cols = self.columns();
        let prev: HashMap<i32, &ProcessRow> = self
            .prev
            .as_ref()
            .map(|p| p.rows.iter().map(|r| (r.pid, r)).collect())
            .unwrap_or_default();
        let secs = self
            .prev
            .as_ref()
            .map_or(0.0, |p| s.at.duration_since(p.at).as_secs_f64());
        let mut out: Vec<TableRow> = Vec::with_capacity(s.rows.len());
        for r in s.rows.iter().filter(|r| self.lists(r)) {
            let p = prev
                .get(&r.pid)
                .copied()
                .filter(|p| p.start_time_ticks == r.start_time_ticks);
            out.push(TableRow {
                pid: r.pid,
                start_ticks: r.start_time_ticks,
                ppid: r.ppid,
                comm: r.comm.as_str(),
                branch: String::new(),
                init: r.pid == 1 || r.namespace_init,
                cells: cols.iter().map(|c| self.cell(*c, r, p, s, secs)).collect(),
            });
        }
        let sort = self.sort_column();
        let at = cols.iter().position(|c| *c == sort).unwrap_or(0);
        out.sort_by(|a, b| {
            // The system view has no columns: pid order.
            let (Some(x), Some(y)) = (a.cells.get(at), b.cells.get(at)) else {
                return a.pid.cmp(&b.pid);
            };
            // Missing values last whichever the direction: a reversed sort must not
            // bring the rows that have nothing to show to the top.
            match (x.is_missing(), y.is_missing()) {
                (false, true) => return std::cmp::Ordering::Less,
                (true, false) => return std::cmp::Ordering::Greater,
                (true, true) => return a.pid.cmp(&b.pid),
                (false, false) => {}
            }
            let ord = if sort.is_text() {
                x.sort_text().cmp(&y.sort_text())
            } else {
                x.key().total_cmp(&y.key())
            };
            let ord = if sort.ascending() { ord } else { ord.reverse() };
            let ord = ord.then(a.pid.cmp(&b.pid));
            if self.reverse {
                ord.reverse()
            } else {
                ord
            }
        });
        if self.tree {
            out = as_tree(out);
        }
        out
    }

    /// The pids of the table, in its order.
    fn order(&self) -> Vec<i32> {
        self.table().iter().map(|r| r.pid).collect()
    }

    /// The selected row's index in `pids`, settling the selection on a row: the same
    /// process when it is still listed, else the row where it was.
    fn settle(&mut self, pids: &[i32]) -> usize {
        (self.cursor, self.selected) = settled(self.selected, self.cursor, pids);
        self.cursor
    }

    /// Selects the row at `index` of `pids` (clamped).
    fn select_index(&mut self, pids: &[i32], index: usize) {
        self.cursor = index.min(pids.len().saturating_sub(1));
        self.selected = pids.get(self.cursor).copied();
    }

    /// The selected process's pid.
    pub fn selected_pid(&self) -> Option<i32> {
        self.selected
    }

    /// Whether a process is tagged for kill.
    pub fn is_tagged(&self, pid: i32, start_ticks: u64) -> bool {
        self.tagged.contains(&(pid, start_ticks))
    }

    /// How many processes are tagged.
    pub fn tagged_count(&self) -> usize {
        self.tagged.len()
    }
}

/// Where the selection lands in `pids`: on the process selected when it is still
/// listed, else on the row where it was (clamped). Returns the row and its pid.
fn settled(selected: Option<i32>, cursor: usize, pids: &[i32]) -> (usize, Option<i32>) {
    match selected.and_then(|sel| pids.iter().position(|p| *p == sel)) {
        Some(i) => (i, selected),
        None => {
            let i = cursor.min(pids.len().saturating_sub(1));
            (i, pids.get(i).copied())
        }
    }
}

/// Orders sorted rows as a tree (`model::ptable::tree_order`) and draws the branches:
/// `├─ ` before a child with a sibling after it, `└─ ` before the last, `│  ` below an
/// ancestor whose siblings continue.
fn as_tree(rows: Vec<TableRow<'_>>) -> Vec<TableRow<'_>> {
    let order = crate::model::ptable::tree_order(rows.iter().map(|r| (i64::from(r.pid), r.ppid)));
    let depths: Vec<usize> = order.iter().map(|o| o.1).collect();
    // A row is the last of its siblings when no later row of its depth comes before
    // one shallower: found walking back, a flag per depth.
    let mut last = vec![false; depths.len()];
    let mut later_sibling: Vec<bool> = Vec::new();
    for (i, &d) in depths.iter().enumerate().rev() {
        if later_sibling.len() <= d {
            later_sibling.resize(d + 1, false);
        }
        last[i] = !later_sibling[d];
        later_sibling[d] = true;
        later_sibling.truncate(d + 1);
    }
    let mut slots: Vec<Option<TableRow>> = rows.into_iter().map(Some).collect();
    // Per depth above the row: whether that ancestor has siblings still to come.
    let mut open: Vec<bool> = Vec::new();
    let mut out = Vec::with_capacity(slots.len());
    for (k, (i, d)) in order.into_iter().enumerate() {
        let Some(mut row) = slots[i].take() else {
            continue;
        };
        open.truncate(d);
        if d > 0 {
            for up in open.iter().skip(1) {
                row.branch.push_str(if *up { "│  " } else { "   " });
            }
            row.branch.push_str(if last[k] { "└─ " } else { "├─ " });
        }
        open.push(!last[k]);
        out.push(row);
    }
    out
}

/// Runs the live TUI until `q` or F10: `collector` feeds the samples (in its own
/// thread), `inspector` serves `Enter` and checks a process before `k` signals it;
/// both read the tree the command line chose. `events` reads the kernel's events of
/// the kinds given (`--events`) for the lines under the meters, on a thread of its own.
pub fn run(
    collector: Reader,
    inspector: Reader,
    events: (Reader, Vec<&'static str>),
    interval: Duration,
) -> std::io::Result<()> {
    let (tx, rx) = mpsc::sync_channel::<Box<Sample>>(SAMPLES_IN_FLIGHT);
    let (spent_tx, spent_rx) = mpsc::channel();
    let wants = Arc::new(Wants::default());
    let mut app = App {
        inspector: Some(inspector),
        ..App::default()
    };
    app.publish(&wants);
    // Each process's cheap-tier files stay open between refreshes (ScanOptions::keep_open).
    syslens_probe::table::raise_fd_limit();
    let stop = Arc::new(AtomicBool::new(false));
    let (events_reader, kinds) = events;
    if kinds.is_empty() {
        app.events.status = events::Status::Off("--events none".into());
    } else if !events_reader.is_live() {
        app.events.status =
            events::Status::Off("--root reads a captured tree, which has no events".into());
    } else {
        app.reports = Some(events::spawn(events_reader, kinds, Arc::clone(&stop)));
    }
    let collector_wants = wants.clone();
    std::thread::spawn(move || collect::run(collector, tx, spent_rx, interval, collector_wants));
    let mut live = source::Live {
        rx,
        spent: spent_tx,
        wants,
        interval,
        last: Instant::now(),
    };
    run_tui(&mut app, &mut live, &stop, interval)
}

/// Replays a store (`top --store`) from sample `at` (counted from 0) until `q` or
/// F10: the same views as live, stepped with `[` `]` `{` `}` and `g`. Nothing is
/// read from the live host.
pub fn replay(replay: crate::commands::past::Replay, at: usize) -> std::io::Result<()> {
    let mut app = App {
        frozen: Some(source::RECORDED),
        unrecorded: source::UNRECORDED,
        no_rate_yet: "no sample before",
        cost_label: "decoding",
        ..App::default()
    };
    let mut recorded = source::Recorded::new(replay, at);
    let stop = Arc::new(AtomicBool::new(false));
    run_tui(&mut app, &mut recorded, &stop, Duration::from_millis(250))
}

/// Runs the screen over `source` until a key quits. The terminal is restored on
/// every way out: a key, SIGTERM, SIGHUP or SIGINT (checked between events, within
/// `tick`), an error, and a panic (ratatui's hook, and ours for the mouse).
fn run_tui(
    app: &mut App,
    source: &mut dyn source::Source,
    stop: &Arc<AtomicBool>,
    tick: Duration,
) -> std::io::Result<()> {
    let mut signals =
        signal_hook::iterator::Signals::new([libc::SIGTERM, libc::SIGHUP, libc::SIGINT])?;
    let stopping = Arc::clone(stop);
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            stopping.store(true, Ordering::Relaxed);
            // The loop sees the flag within a tick and restores the terminal.
            // A terminal that hung up can keep it in crossterm's read for good (it
            // reads the end of file again and again): exit then all the same, with
            // no terminal left to restore.
            std::thread::sleep(tick + STOP_GRACE);
            std::process::exit(128 + sig);
        }
    });
    let mut terminal = ratatui::init();
    // ratatui's hook leaves raw mode and the alternate screen; mouse reporting is ours
    // to turn off, first.
    let restore_terminal = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = ratatui::crossterm::execute!(std::io::stdout(), DisableMouseCapture);
        restore_terminal(info);
    }));
    let result = ratatui::crossterm::execute!(std::io::stdout(), EnableMouseCapture)
        .and_then(|()| event_loop(&mut terminal, app, source, stop));
    // The events thread ends at its next wake.
    stop.store(true, Ordering::Relaxed);
    let _ = ratatui::crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    let _ = std::io::stdout().flush();
    ratatui::restore();
    result
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    source: &mut dyn source::Source,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    // Draw only when something changed: a new sample, a key, a click, a resize.
    let mut dirty = true;
    while !stop.load(Ordering::Relaxed) {
        dirty |= source.feed(app);
        if dirty {
            terminal.draw(|f| draw(f, app))?;
            dirty = false;
        }
        if !event::poll(source.wait())? {
            continue;
        }
        match event::read()? {
            Event::Key(k) if k.kind == KeyEventKind::Press => {
                // Raw mode turns Ctrl-C into a key.
                let ctrl_c =
                    k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c');
                if ctrl_c || !app.key(k.code) {
                    return Ok(());
                }
                if let Some(r) = app.request.take() {
                    source.request(app, r);
                }
                source.publish(app);
                dirty = true;
            }
            Event::Mouse(m) => dirty |= app.mouse(m),
            Event::Resize(..) => dirty = true,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
