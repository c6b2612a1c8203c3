//! Events: what the kernel reports as it happens (tracepoints, taskstats exit records,
//! the kernel log), decoded per concept. A concept declares its [`EventSource`]s in its
//! room (`events.rs`); `syslens watch` opens what the selected sources need, hands each
//! raw record to the source's [`Decoder`], and prints the [`Event`]s that come out.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use syslens_probe::kmsg::OomKill;
use syslens_probe::trace::{Rate, Sample};
use syslens_probe::tracefs::EventFormat;

use crate::catalogue::ConceptId;

/// A field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A count, a pid, a byte size.
    Int(i64),
    /// Seconds, a ratio.
    Float(f64),
    /// A name, a path, a signal name.
    Text(String),
    /// A yes/no fact.
    Bool(bool),
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Int(v) => s.serialize_i64(*v),
            Value::Float(v) if v.is_finite() => s.serialize_f64(*v),
            Value::Float(_) => s.serialize_none(),
            Value::Text(v) => s.serialize_str(v),
            Value::Bool(v) => s.serialize_bool(*v),
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Int(v.into())
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(v.into())
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_string())
    }
}

/// One thing that happened, or a summary of many.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When it happened (a summary: the end of the span it covers).
    pub time: SystemTime,
    /// The concept it belongs to.
    pub concept: ConceptId,
    /// Its kind, as EVENTS.md names it (`oom-kill`, `signal`, `exit`, ...).
    pub kind: &'static str,
    /// The process it happened to, for `--pid` and `--cgroup`.
    pub subject: Option<i32>,
    /// Other processes it involves (a signal's sender), also matched by `--pid`.
    pub related: Option<i32>,
    /// Whether the text stream shows it (every event goes to JSON); routine ones are
    /// only counted in the summary.
    pub notable: bool,
    /// One line saying what happened, to whom, by whom (for the text stream).
    pub line: String,
    /// The kind's fields, with the plain names of EVENTS.md.
    pub fields: Vec<(&'static str, Value)>,
}

impl Event {
    /// A new event with no fields yet.
    pub fn new(
        time: SystemTime,
        concept: ConceptId,
        kind: &'static str,
        subject: Option<i32>,
    ) -> Event {
        Event {
            time,
            concept,
            kind,
            subject,
            related: None,
            notable: true,
            line: String::new(),
            fields: Vec::new(),
        }
    }

    /// Adds a field; a `None` is left out (JSON consumers test for the key).
    pub fn with(mut self, name: &'static str, value: Option<impl Into<Value>>) -> Event {
        if let Some(v) = value {
            self.fields.push((name, v.into()));
        }
        self
    }

    /// A text field's value.
    pub fn text_of(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            Value::Text(t) => Some(t.clone()),
            _ => None,
        }
    }

    /// An integer field's value.
    pub fn int_of(&self, name: &str) -> Option<i64> {
        match self.get(name)? {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// A floating-point field's value.
    pub fn float_of(&self, name: &str) -> Option<f64> {
        match self.get(name)? {
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// A field's value, if present.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.fields.len() + 3))?;
        m.serialize_entry("time", &crate::model::units::rfc3339(self.time))?;
        m.serialize_entry("concept", self.concept.slug())?;
        m.serialize_entry("kind", self.kind)?;
        for (name, value) in &self.fields {
            m.serialize_entry(name, value)?;
        }
        m.end()
    }
}

/// A tracepoint a source needs.
#[derive(Debug, Clone, Copy)]
pub struct TracepointSpec {
    /// Its system (`oom`).
    pub system: &'static str,
    /// Its name (`mark_victim`).
    pub name: &'static str,
    /// An ftrace filter applied in the kernel (`ret == -24`).
    pub filter: Option<&'static str>,
    /// How often it is sampled.
    pub rate: Rate,
    /// Each sample also carries the kernel stack (for a rare event whose caller names
    /// it, like a lock's contention).
    pub kernel_stack: bool,
}

/// What feeds a source besides tracepoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// Tracepoints only.
    Tracepoints,
    /// Process exits: taskstats records (with the tracepoints listed as a fallback).
    Exits,
    /// The kernel log's OOM reports, beside the tracepoints (and alone when they are
    /// unavailable).
    KernelLog,
}

/// One kind of event a concept reports, and how to get it.
#[derive(Debug)]
pub struct EventSource {
    /// The kind it emits (`oom-kill`), for `--kind` and the README's table.
    pub kind: &'static str,
    /// The concepts it serves: the first owns its events; `watch C` opens it for any.
    pub concepts: &'static [ConceptId],
    /// The tracepoints it reads.
    pub tracepoints: &'static [TracepointSpec],
    /// Its other feed.
    pub feed: Feed,
    /// A fresh decoder.
    pub decoder: fn() -> Box<dyn Decoder>,
    /// What it costs the whole host, which decides when it runs (measured by
    /// bench/watch.sh).
    pub cost: Cost,
}

/// What an event source costs the host, and so when a watch opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// Rare events: on by default.
    Light,
    /// Slows every task a little (why): on when its concept or kind is named.
    Host(&'static str),
    /// Slows the loads it watches past the overhead a watch of every concept may cost
    /// (why): on only when its kind is named.
    Heavy(&'static str),
}

impl Cost {
    /// Why it is off by default, if it is.
    pub fn why(self) -> Option<&'static str> {
        match self {
            Cost::Light => None,
            Cost::Host(why) | Cost::Heavy(why) => Some(why),
        }
    }
}

/// A process exit, from taskstats (every field) or the exit tracepoint (fewer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessExit {
    /// The process (thread group) id.
    pub pid: i32,
    /// Its parent.
    pub ppid: Option<i32>,
    /// Its command name.
    pub comm: String,
    /// The exit status (`exit(N)`), when it exited.
    pub exit_code: Option<i32>,
    /// The signal that killed it, when one did.
    pub signal: Option<i32>,
    /// Whether that signal dumped core (the wait status's 0x80), when known.
    pub core_dumped: Option<bool>,
    /// From start to exit.
    pub lifetime: Option<Duration>,
    /// User plus system CPU time.
    pub cpu: Option<Duration>,
    /// Its resident set's high-water mark (VmHWM at exit).
    pub peak_rss_bytes: Option<u64>,
    /// Minor and major faults.
    pub minflt: Option<u64>,
    /// Major faults.
    pub majflt: Option<u64>,
    /// Bytes it made the block layer read.
    pub read_bytes: Option<u64>,
    /// Bytes it made the block layer write.
    pub write_bytes: Option<u64>,
}

/// What a decoder may ask of the host while decoding.
pub trait Context {
    /// Wall-clock time of a CLOCK_MONOTONIC timestamp.
    fn wall(&self, monotonic_ns: u64) -> SystemTime;
    /// A process's command name (cached; `None` once it is gone).
    fn comm(&mut self, pid: i32) -> Option<String>;
    /// A process's soft RLIMIT_NOFILE.
    fn nofile_limit(&mut self, pid: i32) -> Option<u64>;
    /// The kind of mapping `addr` falls in, in process `pid`.
    fn mapping(&mut self, pid: i32, addr: u64) -> Option<MappingKind>;
    /// The wall-clock time now.
    fn now(&self) -> SystemTime;
    /// The function of a kernel stack (innermost first) that called into the
    /// scheduler or the lock primitives, from /proc/kallsyms.
    fn kernel_caller(&mut self, stack: &[u64]) -> Option<String>;
    /// A process's resident memory now, from /proc/PID/status (`None` once it is gone).
    fn resident(&mut self, pid: i32) -> Option<Resident>;
    /// Whether two processes run in one address space (a CLONE_VM child before its
    /// exec); false when that cannot be known.
    fn same_address_space(&mut self, a: i32, b: i32) -> bool;
    /// A 32-bit word of a process's memory (a futex word, a lock's owner field).
    fn read_u32(&mut self, pid: i32, addr: u64) -> Result<u32, MemoryRead>;
    /// CLOCK_MONOTONIC now, the clock samples carry.
    fn monotonic_ns(&self) -> u64;
    /// Every thread blocked in system call `nr` now, as (pid, tid, arguments): what
    /// began before the tracepoints could see it.
    fn threads_in_syscall(&mut self, nr: i64) -> Vec<(i32, u32, [u64; 6])>;
    /// What a thread is doing now.
    fn thread_call(&mut self, pid: i32, tid: u32) -> ThreadCall;
    /// A process's threads by their TID inside its own PID namespace, to the TIDs the
    /// samples carry (what a lock word written in a container names); `None` when
    /// they are the same.
    fn namespace_tids(&mut self, pid: i32) -> Option<HashMap<u32, u32>>;
}

/// Why a word of another process's memory was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryRead {
    /// No ptrace access to the process (process_vm_readv needs CAP_SYS_PTRACE, or the
    /// same user where Yama's ptrace_scope allows it).
    Refused,
    /// Not mapped, or the process is gone.
    Unreadable,
}

/// What a thread is doing now, as its /proc syscall file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadCall {
    /// Blocked in this system call, with its arguments.
    In {
        /// The system call's number.
        nr: i64,
        /// Its six arguments.
        args: [u64; 6],
    },
    /// Running, or blocked outside any system call.
    Elsewhere,
    /// The thread is gone.
    Gone,
    /// Its file is refused or unreadable: what it does is not known.
    Unknown,
}

/// A process's resident set by kind, in bytes (status's RssAnon, RssFile, RssShmem).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resident {
    /// Anonymous memory: heap, stacks, private anonymous maps.
    pub anon: u64,
    /// Pages of files mapped.
    pub file: u64,
    /// Shared memory: shmem, tmpfs, SysV, memfd.
    pub shmem: u64,
}

impl Resident {
    /// Their sum: VmRSS.
    pub fn total(&self) -> u64 {
        self.anon + self.file + self.shmem
    }
}

/// What kind of memory a faulting address is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingKind {
    /// Private anonymous memory (heap, stacks, anonymous mmap).
    Anon,
    /// A private mapping of a file.
    File,
    /// Shared memory (MAP_SHARED of a file or of tmpfs / memfd / SysV).
    Shared,
}

/// Turns one source's raw records into events. Decoders keep what a pairing needs
/// (a begin waiting for its end, a victim waiting for its log line) and per-process
/// tallies between summaries; all of it is bounded (see [`PENDING_MAX`]).
pub trait Decoder: Send {
    /// A tracepoint sample; `index` is the tracepoint's position in the source's list.
    fn sample(
        &mut self,
        ctx: &mut dyn Context,
        index: usize,
        format: &EventFormat,
        sample: &Sample<'_>,
        out: &mut Vec<Event>,
    );
    /// A process exit (only for [`Feed::Exits`]).
    fn exit(&mut self, _ctx: &mut dyn Context, _exit: &ProcessExit, _out: &mut Vec<Event>) {}
    /// An OOM kill read from the kernel log (only for [`Feed::KernelLog`]).
    fn oom_logged(&mut self, _ctx: &mut dyn Context, _kill: &OomKill, _out: &mut Vec<Event>) {}
    /// Samples of one of its tracepoints were lost (a full ring): a begin or an end
    /// may be missing, so pairings in flight are no longer to be trusted.
    fn lost(&mut self) {}
    /// Called about every 100 ms: emit what waited long enough for its other half.
    fn tick(&mut self, _ctx: &mut dyn Context, _out: &mut Vec<Event>) {}
    /// The summaries of the span since the last call, then start a new span.
    fn summarize(&mut self, _ctx: &mut dyn Context, _out: &mut Vec<Event>) {}
    /// The watch ends: emit whatever still waits (then the last summaries are asked).
    fn finish(&mut self, _ctx: &mut dyn Context, _out: &mut Vec<Event>) {}
}

/// Latency tallies a decoder keeps per summary: each holds up to [`SAMPLES_MAX`]
/// durations, so far fewer than [`PENDING_MAX`]; past it a decoder folds new keys into
/// one catch-all tally per process.
pub const TALLIES_MAX: usize = 1024;

/// How many pairings or per-process tallies a decoder keeps at most; past it the
/// oldest half is dropped (and counted by the decoder where it matters).
pub const PENDING_MAX: usize = 65536;

/// Keeps a map bounded: when it reaches [`PENDING_MAX`], it is emptied (a begin whose
/// end never comes, from a thread that exited, must not accumulate forever).
pub fn bound<K, V>(map: &mut HashMap<K, V>) -> bool {
    if map.len() >= PENDING_MAX {
        map.clear();
        return true;
    }
    false
}

/// Pairs a begin tracepoint with its end on the same thread (bounded).
#[derive(Debug, Default)]
pub struct Pairing {
    begun: HashMap<u32, u64>,
}

impl Pairing {
    /// The thread of `s` began.
    pub fn begin(&mut self, s: &Sample<'_>) {
        bound(&mut self.begun);
        self.begun.insert(s.tid, s.monotonic_ns);
    }

    /// The thread of `s` ended: the seconds since its begin, if one was seen.
    pub fn end(&mut self, s: &Sample<'_>) -> Option<f64> {
        let start = self.begun.remove(&s.tid)?;
        Some(s.monotonic_ns.saturating_sub(start) as f64 / 1e9)
    }
}

/// A stall: a begin/end tracepoint pair on one thread, an event when it lasted at
/// least [`STALL_MIN_SECONDS`] (reclaim, compaction).
#[derive(Debug)]
pub struct StallSpec {
    /// The concept it belongs to.
    pub concept: ConceptId,
    /// Its kind.
    pub kind: &'static str,
    /// What the thread was doing, for the line ("in direct reclaim").
    pub doing: &'static str,
    /// A field of the end record to report, and the name it is reported under.
    pub outcome: (&'static str, &'static str),
}

/// Stalls shorter than this are not events of their own (a busy host has many).
pub const STALL_MIN_SECONDS: f64 = 0.001;

/// The decoder of a [`StallSpec`]: tracepoint 0 begins, tracepoint 1 ends.
#[derive(Debug)]
pub struct Stalls {
    spec: &'static StallSpec,
    pairing: Pairing,
}

impl Stalls {
    /// A decoder for `spec`.
    pub fn new(spec: &'static StallSpec) -> Stalls {
        Stalls {
            spec,
            pairing: Pairing::default(),
        }
    }
}

impl Decoder for Stalls {
    fn sample(
        &mut self,
        ctx: &mut dyn Context,
        index: usize,
        f: &EventFormat,
        s: &Sample<'_>,
        out: &mut Vec<Event>,
    ) {
        if index == 0 {
            self.pairing.begin(s);
            return;
        }
        let Some(secs) = self.pairing.end(s).filter(|&t| t >= STALL_MIN_SECONDS) else {
            return;
        };
        let pid = s.pid as i32;
        let comm = ctx.comm(pid);
        let (field, name) = self.spec.outcome;
        let outcome = int(f, s.raw, field);
        let mut e = Event::new(
            ctx.wall(s.monotonic_ns),
            self.spec.concept,
            self.spec.kind,
            Some(pid),
        );
        e.line = format!(
            "{} stalled {} {}{}",
            who(comm.as_deref(), pid.into()),
            crate::model::units::duration(secs),
            self.spec.doing,
            outcome.map(|v| format!(", {name} {v}")).unwrap_or_default()
        );
        out.push(
            e.with("pid", Some(pid))
                .with("comm", comm)
                .with("stall_seconds", Some(secs))
                .with(name, outcome),
        );
    }
}

/// Latency percentiles of a bounded set of durations (the first [`SAMPLES_MAX`]
/// kept; the count and maximum cover all).
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    kept: Vec<f64>,
    /// How many were added.
    pub count: u64,
    /// The largest, in seconds.
    pub max: f64,
    /// The sum, in seconds.
    pub total: f64,
}

/// Durations kept per tally for the percentiles.
pub const SAMPLES_MAX: usize = 4096;

impl Latencies {
    /// Adds one duration in seconds.
    pub fn add(&mut self, seconds: f64) {
        self.count += 1;
        self.total += seconds;
        self.max = self.max.max(seconds);
        if self.kept.len() < SAMPLES_MAX {
            self.kept.push(seconds);
        }
    }

    /// The `q` quantile (0..=1) of the kept durations, nearest rank.
    pub fn quantile(&mut self, q: f64) -> Option<f64> {
        if self.kept.is_empty() {
            return None;
        }
        self.kept.sort_by(f64::total_cmp);
        let rank = ((q * self.kept.len() as f64).ceil() as usize).clamp(1, self.kept.len());
        Some(self.kept[rank - 1])
    }

    /// The median, 99th percentile and maximum; `None` when nothing was added.
    pub fn spread(&mut self) -> Option<Spread> {
        Some(Spread {
            p50: self.quantile(0.5)?,
            p99: self.quantile(0.99)?,
            max: self.max,
        })
    }
}

/// The summary figures of [`Latencies`], in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The median.
    pub p50: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The largest.
    pub max: f64,
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::model::units::duration;
        write!(
            f,
            "p50 {}, p99 {}, max {}",
            duration(self.p50),
            duration(self.p99),
            duration(self.max)
        )
    }
}

/// A field of a raw record as an integer, by name (`None` when this kernel's layout has
/// no such field).
pub fn int(format: &EventFormat, raw: &[u8], name: &str) -> Option<i64> {
    format.field(name)?.signed(raw)
}

/// A field of a raw record as text, by name.
pub fn text(format: &EventFormat, raw: &[u8], name: &str) -> Option<String> {
    format.field(name)?.text(raw)
}

/// A process's command name with its pid, as the text stream shows it (`sleep[42]`).
pub fn who(comm: Option<&str>, pid: i64) -> String {
    format!("{}[{pid}]", comm.unwrap_or("?"))
}

/// The name of a signal number ("SIGKILL"); a negative number is not a signal.
pub fn signal_name(sig: i32) -> String {
    u32::try_from(sig)
        .map(syslens_probe::names::signal_name)
        .unwrap_or_else(|_| format!("SIG{sig}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut l = Latencies::default();
        for i in 1..=100 {
            l.add(i as f64);
        }
        assert_eq!(l.quantile(0.5), Some(50.0));
        assert_eq!(l.quantile(0.99), Some(99.0));
        assert_eq!(l.max, 100.0);
        assert_eq!(Latencies::default().quantile(0.5), None);
        let s = l.spread().unwrap();
        assert_eq!((s.p50, s.p99, s.max), (50.0, 99.0, 100.0));
        assert_eq!(s.to_string(), "p50 50.00 s, p99 99.00 s, max 100.00 s");
        assert_eq!(Latencies::default().spread(), None);
    }

    #[test]
    fn a_pairing_times_each_thread_from_its_begin() {
        let at = |tid, ns| Sample {
            sub: 0,
            cpu: 0,
            pid: 1,
            tid,
            monotonic_ns: ns,
            period: 1,
            raw: &[],
            kernel_stack: &[],
        };
        let mut p = Pairing::default();
        p.begin(&at(7, 1_000_000));
        p.begin(&at(8, 5_000_000));
        assert_eq!(p.end(&at(8, 6_000_000)), Some(0.001));
        assert_eq!(p.end(&at(7, 4_000_000)), Some(0.003));
        // An end without its begin (the watch started in between) times nothing.
        assert_eq!(p.end(&at(7, 9_000_000)), None);
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(10), "SIGUSR1");
        assert_eq!(signal_name(34), "SIGRTMIN+2");
        assert_eq!(signal_name(-1), "SIG-1");
    }

    #[test]
    fn json_has_time_concept_kind_then_fields() {
        let e = Event::new(
            SystemTime::UNIX_EPOCH + Duration::from_millis(1500),
            ConceptId::Signals,
            "signal",
            Some(7),
        )
        .with("signal", Some("SIGKILL"))
        .with("target_pid", Some(7))
        .with("absent", None::<i64>);
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"time":"1970-01-01T00:00:01.500000Z","concept":"signals","kind":"signal","signal":"SIGKILL","target_pid":7}"#
        );
    }
}

/// What decoder tests share: a context that names every process `p<pid>` and every
/// stack by its innermost address, gives each the same resident set (and a CLONE_VM
/// child pid + 1000), whose clock reads 100 ms, and records of recorded
/// format files.
#[cfg(test)]
pub mod testing {
    use std::time::{Duration, SystemTime};

    use syslens_probe::trace::Sample;
    use syslens_probe::tracefs::EventFormat;

    use std::collections::HashMap;

    use super::{Context, MappingKind, MemoryRead, Resident, ThreadCall};

    /// A context with made-up names and nothing else.
    #[derive(Debug)]
    pub struct Names;

    impl Context for Names {
        fn wall(&self, monotonic_ns: u64) -> SystemTime {
            SystemTime::UNIX_EPOCH + Duration::from_nanos(monotonic_ns)
        }
        fn comm(&mut self, pid: i32) -> Option<String> {
            Some(format!("p{pid}"))
        }
        fn nofile_limit(&mut self, _: i32) -> Option<u64> {
            None
        }
        fn mapping(&mut self, _: i32, _: u64) -> Option<MappingKind> {
            None
        }
        /// 100 ms after the monotonic clock's zero.
        fn now(&self) -> SystemTime {
            SystemTime::UNIX_EPOCH + Duration::from_millis(100)
        }
        fn kernel_caller(&mut self, stack: &[u64]) -> Option<String> {
            stack.first().map(|a| format!("f{a:x}"))
        }
        /// [`RESIDENT`] for every process.
        fn resident(&mut self, _: i32) -> Option<Resident> {
            Some(RESIDENT)
        }
        /// A process and the one [`CLONE_VM_CHILD`] above it share one.
        fn same_address_space(&mut self, a: i32, b: i32) -> bool {
            (a - b).abs() == CLONE_VM_CHILD
        }
        /// No memory is readable.
        fn read_u32(&mut self, _: i32, _: u64) -> Result<u32, MemoryRead> {
            Err(MemoryRead::Unreadable)
        }
        /// The clock [`Names::now`] shows.
        fn monotonic_ns(&self) -> u64 {
            100_000_000
        }
        /// No thread is found in any system call.
        fn threads_in_syscall(&mut self, _: i64) -> Vec<(i32, u32, [u64; 6])> {
            Vec::new()
        }
        /// What every thread does is unknown.
        fn thread_call(&mut self, _: i32, _: u32) -> ThreadCall {
            ThreadCall::Unknown
        }
        /// Every process lives in the samples' PID namespace.
        fn namespace_tids(&mut self, _: i32) -> Option<HashMap<u32, u32>> {
            None
        }
    }

    /// How far above its parent's pid [`Names`] puts a child running in the parent's
    /// address space.
    pub const CLONE_VM_CHILD: i32 = 1000;

    /// What [`Names`] says every process has resident: 1 MiB anonymous, 2 MiB of files.
    pub const RESIDENT: Resident = Resident {
        anon: 1 << 20,
        file: 2 << 20,
        shmem: 0,
    };

    /// The 6.18 format file of `system:name`, as recorded.
    pub fn format(system: &str, name: &str) -> EventFormat {
        let path = format!(
            "{}/crates/probe/tests/fixtures/tracefs/6.18/{system}/{name}/format",
            env!("CARGO_MANIFEST_DIR")
        );
        EventFormat::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// A sample of tracepoint `index` on CPU 0 at `ms` milliseconds, standing for one
    /// hit, with no kernel stack.
    pub fn sample_at(index: usize, pid: u32, tid: u32, ms: u64, raw: &[u8]) -> Sample<'_> {
        Sample {
            sub: index,
            cpu: 0,
            pid,
            tid,
            monotonic_ns: ms * 1_000_000,
            period: 1,
            raw,
            kernel_stack: &[],
        }
    }

    /// A raw record of `f` with the integer fields set.
    pub fn record(f: &EventFormat, set: &[(&str, i64)]) -> Vec<u8> {
        let mut raw = vec![0u8; f.fields.iter().map(|x| x.offset + x.size).max().unwrap()];
        for (name, v) in set {
            let x = f.fields.iter().find(|x| x.name == *name).unwrap();
            raw[x.offset..x.offset + x.size].copy_from_slice(&v.to_le_bytes()[..x.size]);
        }
        raw
    }
}
