//! The kernel's events as counters (issue 16): a thread of its own runs a [`Watcher`]
//! over the kinds asked for (`--events`) and counts OOM kills, fatal signals, exits
//! and EMFILE per process group, grouped as the process families are and capped by
//! `--max-groups` (first come, first kept: a counter's series never goes away); a
//! scrape copies the counts under a lock the thread holds only to replace them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use syslens_probe::Reader;

use super::metrics::{cmdline_text, GroupBy, Member};
use crate::model::event::{Event, Value};
use crate::watch::fatal::FatalSignals;
use crate::watch::{WatchOptions, Watcher};

/// The kinds serve can count, as `--events` names them.
pub const KINDS: [&str; 4] = ["oom-kill", "signal", "exit", "emfile"];
/// The kinds counted by default: those whose sources cost the host nothing while
/// nothing happens (emfile's syscall tracepoints slow every syscall).
pub const DEFAULT_KINDS: &str = "oom-kill,signal,exit";

/// Checks `--events`: known kinds, `none` alone, and `signal` only with `exit` (a
/// signal is counted fatal when its target's exit record says it died of it).
pub fn check_kinds(asked: &[String]) -> Result<Vec<&'static str>, String> {
    if asked.iter().any(|k| k == "none") {
        return match asked.len() {
            1 => Ok(Vec::new()),
            _ => Err("--events none goes alone".into()),
        };
    }
    let mut kinds = Vec::new();
    for a in asked {
        match KINDS.iter().find(|k| **k == a.as_str()) {
            Some(k) if !kinds.contains(k) => kinds.push(*k),
            Some(_) => {}
            None => {
                return Err(format!(
                    "--events: no kind {}; the kinds are {} (or none)",
                    crate::render::safe::clean(a),
                    KINDS.join(", ")
                ))
            }
        }
    }
    if kinds.contains(&"signal") && !kinds.contains(&"exit") {
        return Err(
            "--events signal needs exit too: a signal is fatal when its target's exit says it died of it"
                .into(),
        );
    }
    Ok(kinds)
}

/// The counts, as a scrape exports them. Every map is bounded: groups by the cap,
/// signals by their numbers, the rest by fixed sets of values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventCounts {
    /// OOM kills by (victim group, constraint).
    pub oom_kills: BTreeMap<(String, &'static str), u64>,
    /// Fatal signals by (signal, target group).
    pub signals: BTreeMap<(String, String), u64>,
    /// Exits by (group, how).
    pub exits: BTreeMap<(String, &'static str), u64>,
    /// EMFILE failures by group.
    pub emfile: BTreeMap<String, u64>,
    /// Records the kernel dropped.
    pub lost: u64,
    /// Events counted under `other` because the cap was reached.
    pub folded: u64,
    /// Each kind asked for, and whether its source is open.
    pub sources: Vec<(&'static str, bool)>,
}

impl EventCounts {
    /// Whether `kind` was asked for (its families are exported, even at zero).
    pub fn watches(&self, kind: &str) -> bool {
        self.sources.iter().any(|(k, _)| *k == kind)
    }
}

/// The group names admitted as labels: the first `max - 1` seen, then `other`.
#[derive(Debug)]
struct Admitted {
    names: BTreeSet<String>,
    max: usize,
}

impl Admitted {
    /// The label for `group`; `folded` counts the events sent to `other`.
    fn label(&mut self, group: String, folded: &mut u64) -> String {
        if group == "other" || self.names.contains(&group) {
            return group;
        }
        if self.names.len() + 1 < self.max {
            self.names.insert(group.clone());
            return group;
        }
        *folded += 1;
        "other".into()
    }
}

/// Pid -> group of the exporter's last collection, for events of processes that are
/// gone before their cgroup or command line could be read (an exit's, usually).
pub type KnownGroups = Arc<Mutex<HashMap<i32, String>>>;

/// A lock whose holder panicked still holds good counts.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How events are turned into group labels.
#[derive(Debug)]
struct Resolver {
    by: GroupBy,
    cmdline: bool,
    known: KnownGroups,
}

/// Who an event is about, from its fields.
struct Who<'a> {
    pid: i32,
    ppid: Option<i32>,
    comm: Option<&'a str>,
    /// The cgroup the event itself names (an OOM victim's memcg).
    cgroup: Option<&'a str>,
}

impl Resolver {
    /// Whether the groups need /proc (the cgroup, the command line), not just the
    /// event's own fields; the exporter then shares its last collection's groups.
    fn reads_proc(by: &GroupBy, cmdline: bool) -> bool {
        by.needs_cgroup() || (cmdline && matches!(by, GroupBy::Regex(_)))
    }

    fn group(&self, reader: &mut Reader, w: &Who<'_>) -> String {
        let comm = w.comm.unwrap_or("?");
        let member = |cgroup, cmdline| Member {
            pid: w.pid,
            kernel_thread: w.pid == 2 || w.ppid == Some(2),
            comm,
            cgroup,
            cmdline,
        };
        let wants_cgroup = self.by.needs_cgroup() && w.cgroup.is_none();
        let wants_cmdline = self.cmdline && matches!(self.by, GroupBy::Regex(_));
        if !wants_cgroup && !wants_cmdline {
            return self.by.group(&member(w.cgroup, None));
        }
        let dir = reader.open_pid(w.pid).ok();
        let mut read = |name: &str| {
            let dir = dir.as_ref()?;
            reader.read_pid(dir, name).ok().map(<[u8]>::to_vec)
        };
        let cgroup = match wants_cgroup {
            true => read("cgroup").and_then(|b| memory_cgroup(&b)),
            false => w.cgroup.map(str::to_owned),
        };
        let cmdline = wants_cmdline
            .then(|| read("cmdline").map(|b| cmdline_text(&b)))
            .flatten();
        if (wants_cgroup && cgroup.is_none()) || (wants_cmdline && cmdline.is_none()) {
            if let Some(g) = lock(&self.known).get(&w.pid) {
                return g.clone();
            }
        }
        self.by
            .group(&member(cgroup.as_deref(), cmdline.as_deref()))
    }
}

/// The cgroup line the process families group by: the v1 memory controller's, else
/// the unified one's.
fn memory_cgroup(raw: &[u8]) -> Option<String> {
    let lines = syslens_probe::cgroup::parse_proc_cgroup(raw).ok()?;
    lines
        .iter()
        .find(|m| m.controllers.iter().any(|c| c == "memory"))
        .or_else(|| lines.iter().find(|m| m.hierarchy == 0))
        .map(|m| m.path.clone())
}

/// The constraint of an OOM kill as a label: the kernel's four, `unknown` when the
/// kernel log's line was not read (anyone root can write to /dev/kmsg: nothing else
/// becomes a label).
fn constraint(e: &Event) -> &'static str {
    match e.text_of("constraint").as_deref() {
        None => "unknown",
        Some("cgroup") => "cgroup",
        Some("global") => "global",
        Some("cpuset") => "cpuset",
        Some("memory_policy") => "memory_policy",
        Some(_) => "other",
    }
}

/// How a process ended, from its exit event.
fn how(e: &Event) -> &'static str {
    match (e.get("signal"), e.get("core_dumped"), e.get("exit_code")) {
        (Some(_), Some(Value::Bool(true)), _) => "core_dumped",
        (Some(_), _, _) => "signaled",
        (None, _, Some(_)) => "exited",
        // The exit tracepoint (taskstats refused) carries no status.
        (None, _, None) => "unknown",
    }
}

fn pid_of(e: &Event, field: &str) -> Option<i32> {
    i32::try_from(e.int_of(field)?).ok()
}

/// Turns events into counts.
#[derive(Debug)]
struct Counter {
    counts: EventCounts,
    admitted: Admitted,
    resolver: Resolver,
    /// Delivered signals waiting for their target's exit, with (signal, target group).
    fatal: FatalSignals<(String, String)>,
}

impl Counter {
    fn new(opts: &EventOptions, known: KnownGroups) -> Counter {
        Counter {
            counts: EventCounts {
                sources: opts.kinds.iter().map(|k| (*k, false)).collect(),
                ..EventCounts::default()
            },
            admitted: Admitted {
                names: BTreeSet::new(),
                max: opts.max_groups.max(1),
            },
            resolver: Resolver {
                by: opts.group_by.clone(),
                cmdline: opts.cmdline,
                known,
            },
            fatal: FatalSignals::default(),
        }
    }

    /// The label of a group, under the cap.
    fn label(&mut self, group: String) -> String {
        self.admitted.label(group, &mut self.counts.folded)
    }

    /// The group of the process an event names in `pid_field` (and `comm_field`).
    fn group(
        &self,
        reader: &mut Reader,
        e: &Event,
        pid_field: &str,
        comm_field: &str,
    ) -> Option<String> {
        let comm = e.text_of(comm_field);
        let cgroup = (e.kind == "oom-kill")
            .then(|| e.text_of("cgroup"))
            .flatten();
        let who = Who {
            pid: pid_of(e, pid_field)?,
            ppid: pid_of(e, "ppid").filter(|_| e.kind == "exit"),
            comm: comm.as_deref(),
            cgroup: cgroup.as_deref(),
        };
        Some(self.resolver.group(reader, &who))
    }

    fn count(&mut self, e: &Event, reader: &mut Reader) {
        if !self.counts.watches(e.kind) {
            return;
        }
        match e.kind {
            "oom-kill" => {
                if let Some(g) = self.group(reader, e, "victim_pid", "victim_comm") {
                    let key = (self.label(g), constraint(e));
                    *self.counts.oom_kills.entry(key).or_default() += 1;
                }
            }
            "signal" => {
                let Counter {
                    fatal, resolver, ..
                } = self;
                let confirmed = fatal.feed(e, |e| {
                    let comm = e.text_of("target_comm");
                    let who = Who {
                        pid: pid_of(e, "target_pid").unwrap_or(0),
                        ppid: None,
                        comm: comm.as_deref(),
                        cgroup: None,
                    };
                    (
                        e.text_of("signal").unwrap_or_default(),
                        resolver.group(reader, &who),
                    )
                });
                self.fatal_signal(confirmed);
            }
            "exit" => {
                if self.counts.watches("signal") {
                    // The payload was made when the signal was seen.
                    let confirmed = self.fatal.feed(e, |_| Default::default());
                    self.fatal_signal(confirmed);
                }
                if let Some(g) = self.group(reader, e, "pid", "comm") {
                    let key = (self.label(g), how(e));
                    *self.counts.exits.entry(key).or_default() += 1;
                }
            }
            "emfile" => {
                if let Some(g) = self.group(reader, e, "pid", "comm") {
                    let key = self.label(g);
                    *self.counts.emfile.entry(key).or_default() += 1;
                }
            }
            _ => {}
        }
    }

    /// Counts a signal the pairing confirmed fatal.
    fn fatal_signal(&mut self, confirmed: Option<(String, String)>) {
        if let Some((signal, group)) = confirmed {
            let key = (signal, self.label(group));
            *self.counts.signals.entry(key).or_default() += 1;
        }
    }
}

/// What the event counters count, and how they are grouped.
#[derive(Debug, Clone)]
pub struct EventOptions {
    /// The kinds asked for (from [`check_kinds`]); empty: no event counters.
    pub kinds: Vec<&'static str>,
    /// As the process families group.
    pub group_by: GroupBy,
    /// At most this many groups, `other` included.
    pub max_groups: usize,
    /// Command lines may be read (for a regex over them).
    pub cmdline: bool,
}

/// The running counter thread: the counts it publishes, and the groups it borrows.
#[derive(Debug)]
pub struct EventFeed {
    /// The latest counts (a scrape clones them).
    pub counts: Arc<Mutex<EventCounts>>,
    /// Filled by the exporter when the groups need /proc; None otherwise.
    pub known: Option<KnownGroups>,
    thread: Option<JoinHandle<()>>,
}

/// How long the thread sleeps in the watcher's wait when nothing comes: it notices
/// `stop` within this.
const WAIT: Duration = Duration::from_millis(200);
/// The shortest pass: at most 100 a second, however often a ring says it is readable
/// (the rare-event rings hold 64 KiB per CPU; what overflows is counted as lost).
const GAP: Duration = Duration::from_millis(10);

impl EventFeed {
    /// Starts the counter thread on `reader` (the live host; a captured tree has no
    /// events). Returns once the sources are open (or refused), with the lines that
    /// say which are unavailable and why.
    pub fn start(
        opts: EventOptions,
        reader: Reader,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<(EventFeed, Vec<String>)> {
        let known: KnownGroups = Arc::default();
        let reads_proc = Resolver::reads_proc(&opts.group_by, opts.cmdline);
        let mut counter = Counter::new(&opts, Arc::clone(&known));
        let counts = Arc::new(Mutex::new(counter.counts.clone()));
        let shared = Arc::clone(&counts);
        let (said, hear) = mpsc::channel::<Vec<String>>();
        let thread = std::thread::Builder::new()
            .name("syslens-events".into())
            .spawn(move || {
                let (watcher, lines) = open(&opts, reader);
                if let Some(w) = &watcher {
                    for (kind, up) in counter.counts.sources.iter_mut() {
                        *up = w.is_open(kind);
                    }
                }
                // Published before the caller goes on: its first scrape says what is up.
                *lock(&shared) = counter.counts.clone();
                // The caller may have given up waiting.
                let _ = said.send(lines);
                let Some(mut watcher) = watcher else {
                    return;
                };
                if !counter.counts.sources.iter().any(|(_, up)| *up) {
                    return;
                }
                let mut events = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    watcher.wait_paced(WAIT, GAP);
                    watcher.poll(&mut events);
                    let lost = watcher.lost();
                    if events.is_empty() && lost == counter.counts.lost {
                        continue;
                    }
                    for e in events.drain(..) {
                        counter.count(&e, watcher.context().reader());
                    }
                    counter.counts.lost = lost;
                    *lock(&shared) = counter.counts.clone();
                }
            })?;
        let lines = hear
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| vec!["events: the sources took over 10 s to open".into()]);
        let known = reads_proc.then_some(known);
        Ok((
            EventFeed {
                counts,
                known,
                thread: Some(thread),
            },
            lines,
        ))
    }

    /// Waits for the thread (it stops within [`WAIT`] of `stop`).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Opens the watcher over the kinds asked for, with the lines that say what is
/// unavailable (everything, on a captured tree or when opening failed).
fn open(opts: &EventOptions, reader: Reader) -> (Option<Watcher>, Vec<String>) {
    let mut lines = Vec::new();
    let watcher = if !reader.is_live() {
        lines.push("events: off: --root reads a captured tree, which has no events".into());
        None
    } else {
        let wopts = WatchOptions {
            concepts: Vec::new(),
            pid: None,
            cgroup: None,
            duration: None,
            kinds: opts.kinds.iter().map(|k| (*k).to_owned()).collect(),
            json: false,
            // The counted kinds have no summaries.
            summary_every: Duration::from_secs(3600),
        };
        match Watcher::open(&wopts, reader) {
            Ok(w) => {
                for u in w.unavailable() {
                    lines.push(format!(
                        "events: unavailable: {}: {}",
                        u.what,
                        crate::render::safe::clean(&u.why)
                    ));
                }
                Some(w)
            }
            Err(e) => {
                lines.push(format!("events: unavailable: {e}"));
                None
            }
        }
    };
    (watcher, lines)
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::catalogue::ConceptId;

    fn counter(max_groups: usize, kinds: &[&'static str]) -> Counter {
        let opts = EventOptions {
            kinds: kinds.to_vec(),
            group_by: GroupBy::Comm,
            max_groups,
            cmdline: false,
        };
        Counter::new(&opts, Arc::default())
    }

    fn exit(pid: i32, comm: &str, signal: Option<&str>) -> Event {
        Event::new(
            SystemTime::now(),
            ConceptId::HighWaterMark,
            "exit",
            Some(pid),
        )
        .with("pid", Some(pid))
        .with("ppid", Some(1))
        .with("comm", Some(comm))
        .with("signal", signal)
        .with("exit_code", signal.is_none().then_some(0))
    }

    #[test]
    fn issue_16_event_groups_are_capped_first_come_with_other_and_a_fold_count() {
        let mut c = counter(3, &["exit"]);
        let mut reader = Reader::host().unwrap();
        for (pid, comm) in [
            (10, "a"),
            (11, "b"),
            (12, "c"),
            (13, "d"),
            (14, "a"),
            (15, "other"),
        ] {
            c.count(&exit(pid, comm, None), &mut reader);
        }
        let exited = |g: &str| c.counts.exits.get(&(g.to_owned(), "exited")).copied();
        assert_eq!(exited("a"), Some(2));
        assert_eq!(exited("b"), Some(1));
        assert_eq!(exited("c"), None, "the cap of 3 is a, b and other");
        assert_eq!(exited("other"), Some(3), "c, d and a group named other");
        assert_eq!(c.counts.folded, 2, "c and d were folded; other is no fold");
        // First come, first kept: a group admitted keeps its series.
        c.count(&exit(16, "b", Some("SIGKILL")), &mut reader);
        assert_eq!(c.counts.exits.get(&("b".to_owned(), "signaled")), Some(&1));
        assert_eq!(c.counts.exits.len(), 4);
    }

    #[test]
    fn issue_16_a_delivered_signal_counts_once_its_target_dies_of_it() {
        let mut c = counter(50, &["signal", "exit"]);
        let mut reader = Reader::host().unwrap();
        let signal = |target: i32, name: &str| {
            Event::new(
                SystemTime::now(),
                ConceptId::Signals,
                "signal",
                Some(target),
            )
            .with("signal", Some(name))
            .with("target_pid", Some(target))
            .with("target_comm", Some("victim"))
            .with("sender_pid", Some(1))
            .with("result", Some("delivered"))
        };
        c.count(&signal(20, "SIGTERM"), &mut reader);
        c.count(&signal(21, "SIGKILL"), &mut reader);
        // 20 handled its SIGTERM and exited; 21 died of the SIGKILL.
        c.count(&exit(20, "victim", None), &mut reader);
        c.count(&exit(21, "victim", Some("SIGKILL")), &mut reader);
        let signals: Vec<_> = c.counts.signals.iter().collect();
        assert_eq!(
            signals,
            [(&("SIGKILL".to_owned(), "victim".to_owned()), &1)]
        );
        assert_eq!(c.counts.exits.len(), 2, "{:?}", c.counts.exits);
    }

    #[test]
    fn issue_16_exit_how_and_oom_constraint_are_bounded_labels() {
        let core = exit(1, "x", Some("SIGSEGV")).with("core_dumped", Some(true));
        assert_eq!(how(&core), "core_dumped");
        assert_eq!(how(&exit(1, "x", Some("SIGKILL"))), "signaled");
        assert_eq!(how(&exit(1, "x", None)), "exited");
        let bare = Event::new(SystemTime::now(), ConceptId::HighWaterMark, "exit", Some(1));
        assert_eq!(how(&bare), "unknown", "the exit tracepoint has no status");
        let oom = |c: Option<&str>| {
            Event::new(SystemTime::now(), ConceptId::SwapOom, "oom-kill", Some(1))
                .with("constraint", c)
        };
        assert_eq!(constraint(&oom(Some("cgroup"))), "cgroup");
        assert_eq!(constraint(&oom(None)), "unknown");
        assert_eq!(
            constraint(&oom(Some("written\"by root to /dev/kmsg"))),
            "other"
        );
    }

    #[test]
    fn issue_16_cgroup_groups_of_gone_processes_come_from_the_last_collection() {
        let known: KnownGroups = Arc::default();
        let resolver = Resolver {
            by: GroupBy::Cgroup,
            cmdline: false,
            known: Arc::clone(&known),
        };
        let mut reader = Reader::host().unwrap();
        // Past any pid_max: a process that is gone.
        let gone = |comm| Who {
            pid: i32::MAX,
            ppid: None,
            comm: Some(comm),
            cgroup: None,
        };
        assert_eq!(resolver.group(&mut reader, &gone("x")), "?", "never seen");
        lock(&known).insert(i32::MAX, "/system.slice/x.service".into());
        assert_eq!(
            resolver.group(&mut reader, &gone("x")),
            "/system.slice/x.service"
        );
        // The cgroup an event names (an OOM victim's) is taken as it is.
        let named = Who {
            cgroup: Some("/jail"),
            ..gone("x")
        };
        assert_eq!(resolver.group(&mut reader, &named), "/jail");
        // A live process: its own cgroup file.
        let me = Who {
            pid: std::process::id() as i32,
            ..gone("x")
        };
        let own = memory_cgroup(&std::fs::read("/proc/self/cgroup").unwrap()).unwrap();
        assert_eq!(resolver.group(&mut reader, &me), own);
    }

    #[test]
    fn events_flag_is_checked() {
        let asked = |s: &str| check_kinds(&s.split(',').map(str::to_owned).collect::<Vec<_>>());
        assert_eq!(asked(DEFAULT_KINDS), Ok(vec!["oom-kill", "signal", "exit"]));
        assert_eq!(asked("none"), Ok(vec![]));
        assert_eq!(asked("exit,exit,emfile"), Ok(vec!["exit", "emfile"]));
        assert!(asked("signal").is_err(), "a fatal signal needs its exit");
        assert!(asked("none,exit").is_err());
        assert!(asked("forks").is_err());
    }
}
