//! What the exporter exports: per process group, per cgroup and for the system, only
//! what node_exporter, process-exporter and cAdvisor lack (peak memory, rlimit usage,
//! deleted libraries, signal dispositions, cgroup working set and peak, the buddy
//! allocator's fragmentation). Written in the Prometheus text format by hand: the
//! grouping and folding are ours, and the format is a few lines of rules.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use std::sync::{Arc, Mutex};

use regex::Regex;
use syslens_probe::cgroup::{CgroupLayout, CpuCgroup, MemoryCgroup};
use syslens_probe::limits::{find, parse_limits, Limit, LimitValue};
use syslens_probe::ns::parse_ns_link;
use syslens_probe::smaps::{parse_maps, MapKind, MemUsage};
use syslens_probe::system::{parse_buddyinfo, parse_slabinfo, BuddyZone};
use syslens_probe::table::{ProcessRow, ScanOptions, Scanner};
use syslens_probe::{Val, USER_HZ};

use super::events::{lock, EventCounts, EventFeed, KnownGroups};

/// How processes are grouped.
#[derive(Debug, Clone)]
pub enum GroupBy {
    /// The command name (comm).
    Comm,
    /// The first capture group of a regex over the command name (comm, or the command
    /// line with --cmdline); processes that do not match go to "other".
    Regex(Regex),
    /// The memory cgroup (v1) or unified cgroup (v2).
    Cgroup,
    /// One group per process: `comm/pid` (explicit opt-in: high cardinality).
    Pid,
    /// The container its cgroup names: `runtime/short-id` (`docker/3f2a9c1b7d4e`),
    /// `host` for processes in none.
    Container,
    /// The systemd unit its cgroup names (`nginx.service`), `(no unit)` otherwise.
    Unit,
}

/// What a process's group is made of: the process table's row, or an event's fields.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    /// The process id.
    pub pid: i32,
    /// A kernel thread (pid 2 or its child): they all share one group by comm.
    pub kernel_thread: bool,
    /// The command name.
    pub comm: &'a str,
    /// The memory (v1) or unified (v2) cgroup path; None when unknown.
    pub cgroup: Option<&'a str>,
    /// The command line (only read with --cmdline).
    pub cmdline: Option<&'a str>,
}

impl GroupBy {
    /// The group of a process: every family and event counter is labelled by this.
    pub fn group(&self, m: &Member<'_>) -> String {
        match self {
            // Kernel threads carry their work item in comm (kworker/0:1-events): one
            // group keeps them from churning series.
            GroupBy::Comm if m.kernel_thread => "[kernel threads]".into(),
            GroupBy::Comm => m.comm.to_owned(),
            GroupBy::Pid => format!("{}/{}", m.comm, m.pid),
            GroupBy::Cgroup | GroupBy::Container | GroupBy::Unit => {
                let Some(path) = m.cgroup else {
                    return "?".into();
                };
                if let GroupBy::Cgroup = self {
                    return path.to_owned();
                }
                let placed = syslens_probe::container::placement(path);
                match (self, placed.short_id(), placed.unit.clone()) {
                    (GroupBy::Container, Some(id), _) => format!(
                        "{}/{id}",
                        placed.runtime.map_or("container", |rt| rt.name())
                    ),
                    (GroupBy::Container, None, _) => "host".into(),
                    (_, _, Some(unit)) => unit,
                    _ => "(no unit)".into(),
                }
            }
            GroupBy::Regex(re) => {
                let subject = m.cmdline.unwrap_or(m.comm);
                re.captures(subject)
                    .and_then(|c| c.get(1).or_else(|| c.get(0)))
                    .map_or("other".into(), |m| m.as_str().to_owned())
            }
        }
    }

    /// Whether the group is read from the cgroup path.
    pub fn needs_cgroup(&self) -> bool {
        matches!(self, GroupBy::Cgroup | GroupBy::Container | GroupBy::Unit)
    }
}

/// A command line as the regex sees it: its NUL separators as spaces.
pub fn cmdline_text(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .replace('\0', " ")
        .trim_end()
        .to_owned()
}

/// How the exporter collects: its grouping, its bounds and what it may read.
#[derive(Debug, Clone)]
pub struct Options {
    /// How processes are grouped into the per-group families.
    pub group_by: GroupBy,
    /// At most this many groups, `other` included.
    pub max_groups: usize,
    /// Command lines may be read (for a regex over them).
    pub cmdline: bool,
    /// Read smaps_rollup for PSS, for processes with at most this RSS.
    pub pss_max_rss: Option<u64>,
    /// Re-read maps, limits and namespaces at most this often.
    pub slow_every: Duration,
}

/// Timing and errors of one collector, for the syslens_scrape_* metrics.
#[derive(Debug, Default, Clone)]
pub struct CollectorStats {
    /// Time the collector took in the last scrape (seconds).
    pub seconds: f64,
    /// Errors it has met since the exporter started.
    pub errors_total: u64,
}

/// What the slow collectors learn about one process; kept for `slow_every` and
/// dropped when the PID is reused (different start time).
#[derive(Debug, Clone, Default)]
struct SlowFacts {
    start_time_ticks: u64,
    /// None when maps was unreadable (another user's process, without root).
    deleted_library: Option<bool>,
    nproc_limit: Option<u64>,
    as_limit: Option<u64>,
    memlock_limit: Option<u64>,
    namespaces: Option<[u64; 7]>,
}

/// State kept between scrapes.
#[derive(Debug)]
pub struct Exporter {
    opts: Options,
    scanner: Scanner,
    slow: HashMap<i32, SlowFacts>,
    slow_read: Option<Instant>,
    stats: BTreeMap<&'static str, CollectorStats>,
    /// Last collection's processes (PID, start time) with their group and counters.
    members: Members,
    /// Per group, the final counters of its processes that exited.
    exited: HashMap<String, Counters>,
    /// The event counter thread's counts, when events are counted.
    events: Option<Arc<Mutex<EventCounts>>>,
    /// Where each collection leaves its pid -> group map for the event counters.
    known_groups: Option<KnownGroups>,
}

#[derive(Debug, Default, Clone)]
struct Group {
    processes: u64,
    rss: u64,
    hwm_max: u64,
    hwm_gap_max: u64,
    fd_ratio_max: Option<f64>,
    nproc_ratio_max: Option<f64>,
    as_ratio_max: Option<f64>,
    memlock_ratio_max: Option<f64>,
    deleted_lib_processes: u64,
    maps_unreadable: u64,
    sigterm_ignored: u64,
    pending_signals: u64,
    counters: Counters,
    swap: u64,
    oom_score_max: u64,
    pss: Option<u64>,
}

/// Processes of one collection by (PID, start time), with their group and counters.
type Members = HashMap<(i32, u64), (String, Counters)>;

/// The per-process counters exported as `_total`: they include the final values of
/// the group's processes that have exited, so a group's counter never goes down when
/// a member exits (which Prometheus would take for a reset).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counters {
    minflt: u64,
    majflt: u64,
    vcsw: u64,
    nvcsw: u64,
    utime: u64,
    stime: u64,
}

impl Counters {
    fn of(r: &ProcessRow) -> Counters {
        Counters {
            minflt: r.minflt,
            majflt: r.majflt,
            vcsw: r.voluntary_switches.clone().unwrap_or(0),
            nvcsw: r.involuntary_switches.clone().unwrap_or(0),
            utime: r.utime_ticks,
            stime: r.stime_ticks,
        }
    }

    /// Adds another member's counters; odd /proc figures saturate rather than panic.
    fn add(&mut self, o: &Counters) {
        self.minflt = self.minflt.saturating_add(o.minflt);
        self.majflt = self.majflt.saturating_add(o.majflt);
        self.vcsw = self.vcsw.saturating_add(o.vcsw);
        self.nvcsw = self.nvcsw.saturating_add(o.nvcsw);
        self.utime = self.utime.saturating_add(o.utime);
        self.stime = self.stime.saturating_add(o.stime);
    }
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn ratio(used: Option<u64>, limit: Option<u64>) -> Option<f64> {
    match (used, limit) {
        (Some(u), Some(l)) if l > 0 => Some(u as f64 / l as f64),
        _ => None,
    }
}

impl Group {
    fn add(&mut self, o: &Group) {
        self.processes += o.processes;
        self.rss += o.rss;
        self.hwm_max = self.hwm_max.max(o.hwm_max);
        self.hwm_gap_max = self.hwm_gap_max.max(o.hwm_gap_max);
        self.fd_ratio_max = max_opt(self.fd_ratio_max, o.fd_ratio_max);
        self.nproc_ratio_max = max_opt(self.nproc_ratio_max, o.nproc_ratio_max);
        self.as_ratio_max = max_opt(self.as_ratio_max, o.as_ratio_max);
        self.memlock_ratio_max = max_opt(self.memlock_ratio_max, o.memlock_ratio_max);
        self.deleted_lib_processes += o.deleted_lib_processes;
        self.maps_unreadable += o.maps_unreadable;
        self.sigterm_ignored += o.sigterm_ignored;
        self.pending_signals += o.pending_signals;
        self.counters.add(&o.counters);
        self.swap += o.swap;
        self.oom_score_max = self.oom_score_max.max(o.oom_score_max);
        self.pss = match (self.pss, o.pss) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }
}

const SIGTERM: u64 = 1 << (15 - 1);

/// Escapes a label value (backslash, double quote, newline).
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition being written: the classic text format, or OpenMetrics, whose
/// counter families are named without `_total` while their samples keep it.
struct Exposition {
    out: String,
    openmetrics: bool,
}

impl Exposition {
    fn family(&mut self, family: &Family, samples: &[Sample]) {
        let Family {
            name,
            kind,
            help,
            labels,
            ..
        } = family;
        let meta = if self.openmetrics && *kind == Kind::Counter {
            name.trim_end_matches("_total")
        } else {
            name
        };
        let kind = kind.name();
        let _ = writeln!(self.out, "# HELP {meta} {help}");
        let _ = writeln!(self.out, "# TYPE {meta} {kind}");
        for (values, v) in samples {
            debug_assert_eq!(values.len(), labels.len(), "label values of {name}");
            let value = if v.is_finite() {
                format!("{v}")
            } else {
                "NaN".into()
            };
            self.out.push_str(name);
            for (i, (l, v)) in labels.iter().zip(values).enumerate() {
                let open = if i == 0 { '{' } else { ',' };
                let _ = write!(self.out, "{open}{l}=\"{}\"", label(v));
            }
            if !labels.is_empty() {
                self.out.push('}');
            }
            let _ = writeln!(self.out, " {value}");
        }
    }
}

/// A family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// One metric family: the exposition writes them in the order of [`FAMILIES`], and
/// the README's metric table lists them (a test keeps the two alike).
#[derive(Debug)]
struct Family {
    /// The name in the classic text format (counters end in `_total`).
    name: &'static str,
    kind: Kind,
    help: &'static str,
    /// The label names of its samples.
    labels: &'static [&'static str],
    samples: Samples,
}

/// Where a family's samples come from.
#[derive(Debug)]
enum Samples {
    /// One per exported group, labelled `group`.
    Group(fn(&Group) -> Option<f64>),
    /// One per cgroup whose memory controller was read, labelled `cgroup`; the family
    /// is absent when the cgroup collector failed.
    Memory(fn(&MemoryCgroup) -> Option<f64>),
    /// The same from the cpu controller.
    Cpu(fn(&CpuCgroup) -> Option<f64>),
    /// Made from the whole collection; None leaves the family out.
    Collection(fn(&Collection) -> Option<Vec<Sample>>),
}

impl Family {
    const fn group(
        name: &'static str,
        kind: Kind,
        help: &'static str,
        get: fn(&Group) -> Option<f64>,
    ) -> Family {
        Family {
            name,
            kind,
            help,
            labels: &["group"],
            samples: Samples::Group(get),
        }
    }

    const fn memory(
        name: &'static str,
        kind: Kind,
        help: &'static str,
        get: fn(&MemoryCgroup) -> Option<f64>,
    ) -> Family {
        Family {
            name,
            kind,
            help,
            labels: &["cgroup"],
            samples: Samples::Memory(get),
        }
    }

    const fn cpu(
        name: &'static str,
        kind: Kind,
        help: &'static str,
        get: fn(&CpuCgroup) -> Option<f64>,
    ) -> Family {
        Family {
            name,
            kind,
            help,
            labels: &["cgroup"],
            samples: Samples::Cpu(get),
        }
    }

    const fn of(
        name: &'static str,
        kind: Kind,
        help: &'static str,
        labels: &'static [&'static str],
        get: fn(&Collection) -> Option<Vec<Sample>>,
    ) -> Family {
        Family {
            name,
            kind,
            help,
            labels,
            samples: Samples::Collection(get),
        }
    }

    /// The family's samples in this collection; None when it is absent.
    fn samples(&self, c: &Collection) -> Option<Vec<Sample>> {
        match self.samples {
            Samples::Group(get) => Some(c.per_group(get)),
            Samples::Memory(get) => c.per_cgroup(|(_, m, _)| m.as_ref(), get),
            Samples::Cpu(get) => c.per_cgroup(|(_, _, cpu)| cpu.as_ref(), get),
            Samples::Collection(get) => get(c),
        }
    }
}

/// One sample: its label values, in the order of its family's label names, and its
/// value.
type Sample = (Vec<String>, f64);

/// One cgroup's path and what its memory and cpu controllers hold.
type CgroupReading = (String, Option<MemoryCgroup>, Option<CpuCgroup>);

/// What one collection read, for the families to sample.
struct Collection<'a> {
    /// The exported groups, the smaller ones folded into "other".
    groups: Vec<(String, Group)>,
    folded: usize,
    pss: bool,
    /// Processes per namespace set, the largest first.
    namespace_sets: Vec<([u64; 7], u64)>,
    max_groups: usize,
    /// None when the cgroup collector failed.
    cgroups: Option<Vec<CgroupReading>>,
    /// None when buddyinfo was unreadable.
    buddy: Option<Vec<BuddyZone>>,
    /// The ten largest slab caches and their bytes; None without root.
    slabs: Option<Vec<(String, u64)>>,
    stats: &'a BTreeMap<&'static str, CollectorStats>,
    /// A copy of the event counts; None when no events are counted.
    events: Option<EventCounts>,
}

impl Collection<'_> {
    fn per_group(&self, get: fn(&Group) -> Option<f64>) -> Vec<Sample> {
        self.groups
            .iter()
            .filter_map(|(n, g)| Some((vec![n.clone()], get(g)?)))
            .collect()
    }

    fn per_cgroup<C>(
        &self,
        part: fn(&CgroupReading) -> Option<&C>,
        get: fn(&C) -> Option<f64>,
    ) -> Option<Vec<Sample>> {
        let cgroups = self.cgroups.as_ref()?;
        Some(
            cgroups
                .iter()
                .filter_map(|r| Some((vec![r.0.clone()], get(part(r)?)?)))
                .collect(),
        )
    }

    fn per_collector(&self, get: fn(&CollectorStats) -> f64) -> Option<Vec<Sample>> {
        Some(
            self.stats
                .iter()
                .map(|(k, s)| (vec![(*k).to_owned()], get(s)))
                .collect(),
        )
    }
}

/// A family of one sample without labels.
fn single(v: f64) -> Option<Vec<Sample>> {
    Some(vec![(Vec::new(), v)])
}

fn count(v: u64) -> Option<f64> {
    Some(v as f64)
}

fn opt_count(v: &Val<u64>) -> Option<f64> {
    v.as_ref().ok().map(|&v| v as f64)
}

use Kind::{Counter, Gauge};

/// Every family, in the order of the exposition.
#[rustfmt::skip]
static FAMILIES: &[Family] = &[
    Family::group("syslens_group_processes", Gauge,
        "Processes in the group.",
        |g| count(g.processes)),
    Family::group("syslens_group_resident_bytes", Gauge,
        "Sum of the resident memory (VmRSS) of the group's processes.",
        |g| count(g.rss)),
    Family::group("syslens_group_peak_resident_bytes", Gauge,
        "Largest resident peak (VmHWM) of a process in the group.",
        |g| count(g.hwm_max)),
    Family::group("syslens_group_below_peak_bytes", Gauge,
        "Largest VmHWM - VmRSS of a process in the group: memory it once held and may take again.",
        |g| count(g.hwm_gap_max)),
    Family::group("syslens_group_open_files_limit_ratio", Gauge,
        "Worst ratio of open fds to the soft RLIMIT_NOFILE in the group (0-1).",
        |g| g.fd_ratio_max),
    Family::group("syslens_group_tasks_limit_ratio", Gauge,
        "Worst ratio of the user's tasks (threads) to the soft RLIMIT_NPROC in the group (0-1).",
        |g| g.nproc_ratio_max),
    Family::group("syslens_group_address_space_limit_ratio", Gauge,
        "Worst ratio of VmSize to the soft RLIMIT_AS in the group (0-1).",
        |g| g.as_ratio_max),
    Family::group("syslens_group_locked_memory_limit_ratio", Gauge,
        "Worst ratio of VmLck to the soft RLIMIT_MEMLOCK in the group (0-1).",
        |g| g.memlock_ratio_max),
    Family::group("syslens_group_deleted_library_processes", Gauge,
        "Processes in the group mapping a library deleted on disk (they run old code until restarted); processes whose maps are unreadable are not counted.",
        |g| count(g.deleted_lib_processes)),
    Family::group("syslens_group_maps_unreadable_processes", Gauge,
        "Processes in the group whose maps syslens may not read (another user's, without root): unknown, not zero.",
        |g| count(g.maps_unreadable)),
    Family::group("syslens_group_sigterm_ignored_processes", Gauge,
        "Processes in the group that ignore or block SIGTERM, or drop it as a PID-namespace init without a handler.",
        |g| count(g.sigterm_ignored)),
    Family::group("syslens_group_pending_signals", Gauge,
        "Distinct signals pending for the group's processes (ShdPnd).",
        |g| count(g.pending_signals)),
    Family::group("syslens_group_minor_faults_total", Counter,
        "Minor page faults of the group's processes, exited ones included.",
        |g| count(g.counters.minflt)),
    Family::group("syslens_group_major_faults_total", Counter,
        "Major page faults of the group's processes, exited ones included.",
        |g| count(g.counters.majflt)),
    Family::group("syslens_group_voluntary_switches_total", Counter,
        "Voluntary context switches of the group's processes (main threads), exited ones included.",
        |g| count(g.counters.vcsw)),
    Family::group("syslens_group_involuntary_switches_total", Counter,
        "Involuntary context switches of the group's processes (main threads), exited ones included.",
        |g| count(g.counters.nvcsw)),
    Family::group("syslens_group_cpu_user_seconds_total", Counter,
        "User CPU time of the group's processes, exited ones included.",
        |g| Some(g.counters.utime as f64 / USER_HZ as f64)),
    Family::group("syslens_group_cpu_system_seconds_total", Counter,
        "System CPU time of the group's processes, exited ones included.",
        |g| Some(g.counters.stime as f64 / USER_HZ as f64)),
    Family::group("syslens_group_swap_bytes", Gauge,
        "Swap used by the group's processes (VmSwap).",
        |g| count(g.swap)),
    Family::group("syslens_group_oom_score_max", Gauge,
        "Highest oom_score in the group: the OOM killer's first choice scores highest.",
        |g| count(g.oom_score_max)),
    // Only with --pss-rss-guard.
    Family::of("syslens_group_proportional_bytes", Gauge,
        "Sum of PSS (smaps_rollup) of the group's processes under the RSS guard.",
        &["group"],
        |c| c.pss.then(|| c.per_group(|g| g.pss.map(|p| p as f64)))),
    Family::of("syslens_groups_folded", Gauge,
        "Groups folded into group=\"other\" by --max-groups.",
        &[],
        |c| single(c.folded as f64)),
    Family::of("syslens_namespace_sets", Gauge,
        "Distinct namespace sets (cgroup, ipc, mnt, net, pid, user, uts) among processes whose ns links are readable.",
        &[],
        |c| single(c.namespace_sets.len() as f64)),
    Family::of("syslens_namespace_set_processes", Gauge,
        "Processes per namespace set (the largest --max-groups sets), labelled by namespace inode.",
        &NS_LABELS,
        |c| Some(namespace_samples(&c.namespace_sets, c.max_groups))),
    Family::memory("syslens_cgroup_memory_usage_bytes", Gauge,
        "Memory usage of the cgroup (includes page cache).",
        |m| opt_count(&m.usage)),
    Family::memory("syslens_cgroup_memory_working_set_bytes", Gauge,
        "Usage minus inactive file cache: what the kernel cannot drop cheaply.",
        |m| opt_count(&m.working_set)),
    Family::memory("syslens_cgroup_memory_peak_bytes", Gauge,
        "Peak usage the kernel recorded (v2 memory.peak, v1 memory.max_usage_in_bytes).",
        |m| opt_count(&m.peak)),
    Family::memory("syslens_cgroup_memory_limit_bytes", Gauge,
        "Memory limit of the cgroup (absent when unlimited).",
        |m| m.limit.clone().ok().flatten().map(|v| v as f64)),
    Family::memory("syslens_cgroup_oom_kills_total", Counter,
        "OOM kills in the cgroup (memory.events oom_kill, memory.oom_control oom_kill).",
        |m| opt_count(&m.oom_kills)),
    Family::cpu("syslens_cgroup_cpu_throttled_periods_total", Counter,
        "CFS periods in which the cgroup was throttled.",
        |c| opt_count(&c.throttled_periods)),
    Family::cpu("syslens_cgroup_cpu_throttled_seconds_total", Counter,
        "Time the cgroup spent throttled.",
        |c| c.throttled_us.clone().ok().map(|v| v as f64 / 1e6)),
    Family::of("syslens_buddy_unusable_free_ratio", Gauge,
        "Share of free memory in blocks too small for an allocation of this order (0-1).",
        &["node", "zone", "order"],
        |c| c.buddy.as_deref().map(buddy_samples)),
    // slabinfo is root-only: without root the family is absent, not an error.
    Family::of("syslens_slab_cache_bytes", Gauge,
        "Memory of the ten largest slab caches.",
        &["cache"],
        |c| c.slabs.as_ref().map(|s| {
            s.iter().map(|(name, bytes)| (vec![name.clone()], *bytes as f64)).collect()
        })),
    // Only while the events are counted (serve --events, see src/serve/events.rs).
    Family::of("syslens_oom_kills_total", Counter,
        "OOM kills the kernel reported (oom:mark_victim, the kernel log), by the victim's group and the constraint (cgroup, global, cpuset, memory_policy; unknown without the log). Needs --events oom-kill (default).",
        &["victim_group", "constraint"],
        |c| event_samples(c, "oom-kill", |e| pairs(&e.oom_kills, |(g, k)| vec![g.clone(), (*k).to_owned()]))),
    Family::of("syslens_signals_total", Counter,
        "Fatal signals: signals delivered (signal:signal_generate) whose target then died of them (its exit record), by signal and the target's group. Needs --events signal,exit (default).",
        &["signal", "group"],
        |c| event_samples(c, "signal", |e| pairs(&e.signals, |(s, g)| vec![s.clone(), g.clone()]))),
    Family::of("syslens_exits_total", Counter,
        "Process exits (taskstats; the exit tracepoint where it is refused), by group and how: exited, signaled, core_dumped (unknown from the tracepoint). Needs --events exit (default).",
        &["group", "how"],
        |c| event_samples(c, "exit", |e| pairs(&e.exits, |(g, h)| vec![g.clone(), (*h).to_owned()]))),
    Family::of("syslens_emfile_total", Counter,
        "Calls that failed with EMFILE (syscall exit tracepoints, filtered in the kernel), by group. Only with --events ...,emfile: it slows every syscall.",
        &["group"],
        |c| event_samples(c, "emfile", |e| pairs(&e.emfile, |g| vec![g.clone()]))),
    Family::of("syslens_event_samples_lost_total", Counter,
        "Event records the kernel dropped (a full ring buffer or taskstats socket buffer): the event counters may be short by this many.",
        &[],
        |c| c.events.as_ref().and_then(|e| single(e.lost as f64))),
    Family::of("syslens_event_groups_folded_total", Counter,
        "Events counted under group=\"other\" because --max-groups groups had been seen first.",
        &[],
        |c| c.events.as_ref().and_then(|e| single(e.folded as f64))),
    Family::of("syslens_event_source_up", Gauge,
        "Whether the source of an event kind is open (1) or unavailable (0: it needs root, or CAP_PERFMON, CAP_NET_ADMIN and CAP_SYSLOG; serve says why on stderr).",
        &["source"],
        |c| c.events.as_ref().map(|e| {
            e.sources.iter().map(|(k, up)| (vec![(*k).to_owned()], f64::from(u8::from(*up)))).collect()
        })),
    Family::of("syslens_scrape_collector_duration_seconds", Gauge,
        "How long each collector took in its last run.",
        &["collector"],
        |c| c.per_collector(|s| s.seconds)),
    Family::of("syslens_scrape_collector_errors_total", Counter,
        "Failed runs per collector.",
        &["collector"],
        |c| c.per_collector(|s| s.errors_total as f64)),
];

const NS_KINDS: [&str; 7] = ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"];
/// The label name of each of NS_KINDS.
const NS_LABELS: [&str; 7] = [
    "cgroup_ns",
    "ipc_ns",
    "mnt_ns",
    "net_ns",
    "pid_ns",
    "user_ns",
    "uts_ns",
];

/// The samples of an event family, when its kind is counted.
fn event_samples(
    c: &Collection,
    kind: &str,
    get: fn(&EventCounts) -> Vec<Sample>,
) -> Option<Vec<Sample>> {
    c.events.as_ref().filter(|e| e.watches(kind)).map(get)
}

/// A counter map as samples, its key made into label values.
fn pairs<K>(map: &BTreeMap<K, u64>, labels: impl Fn(&K) -> Vec<String>) -> Vec<Sample> {
    map.iter().map(|(k, n)| (labels(k), *n as f64)).collect()
}

fn namespace_samples(sets: &[([u64; 7], u64)], max: usize) -> Vec<Sample> {
    sets.iter()
        .take(max)
        .map(|(set, n)| (set.iter().map(u64::to_string).collect(), *n as f64))
        .collect()
}

fn buddy_samples(zones: &[BuddyZone]) -> Vec<Sample> {
    let mut samples = Vec::new();
    for z in zones {
        for (order, idx) in z.unusable_index().into_iter().enumerate() {
            if let Some(i) = idx {
                samples.push((
                    vec![z.node.to_string(), z.zone.clone(), order.to_string()],
                    i,
                ));
            }
        }
    }
    samples
}

impl Exporter {
    /// An exporter reading `reader`'s tree (the host, or a captured one with --root).
    pub fn new(opts: Options, reader: syslens_probe::Reader) -> Exporter {
        Exporter {
            opts,
            scanner: Scanner::new(reader),
            slow: HashMap::new(),
            slow_read: None,
            members: HashMap::new(),
            exited: HashMap::new(),
            stats: BTreeMap::new(),
            events: None,
            known_groups: None,
        }
    }

    /// Exports the counts of an event counter thread, and shares this exporter's
    /// groups with it when `known` asks for them.
    pub fn with_events(mut self, feed: &EventFeed) -> Exporter {
        self.events = Some(Arc::clone(&feed.counts));
        self.known_groups = feed.known.clone();
        self
    }

    /// Runs one collector, recording its duration and counting its failure.
    fn timed<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce(&mut Self) -> Result<T, String>,
    ) -> Option<T> {
        let t = Instant::now();
        let r = f(self);
        let s = self.stats.entry(name).or_default();
        s.seconds = t.elapsed().as_secs_f64();
        match r {
            Ok(v) => Some(v),
            Err(_) => {
                s.errors_total += 1;
                None
            }
        }
    }

    fn group_name(&self, r: &ProcessRow, cmdline: Option<&str>) -> String {
        self.opts.group_by.group(&Member {
            pid: r.pid,
            kernel_thread: r.pid == 2 || r.ppid == 2,
            comm: r.comm.as_str(),
            cgroup: r
                .cgroup
                .as_ref()
                .ok()
                .map(|id| self.scanner.cgroup_path(*id)),
            cmdline,
        })
    }

    /// The slow collector: maps (deleted libraries), limits and namespaces of every
    /// process, through one open of its /proc directory, at most every `slow_every`
    /// (they cost the kernel more than status does, and change rarely).
    fn refresh_slow(&mut self, rows: &[ProcessRow]) {
        if self
            .slow_read
            .is_some_and(|t| t.elapsed() < self.opts.slow_every)
        {
            return;
        }
        let slow = self.timed("process_details", |e| {
            let reader = e.scanner.reader();
            let soft = |limits: &[Limit], name: &str| match find(limits, name)?.soft {
                LimitValue::Value(v) => Some(v),
                LimitValue::Unlimited => None,
            };
            let mut slow = HashMap::with_capacity(rows.len());
            for r in rows {
                let mut f = SlowFacts {
                    start_time_ticks: r.start_time_ticks,
                    ..SlowFacts::default()
                };
                if let Ok(dir) = reader.open_pid(r.pid) {
                    f.deleted_library = reader
                        .read_pid(&dir, "maps")
                        .and_then(parse_maps)
                        .ok()
                        .map(|m| m.iter().any(|x| x.kind == MapKind::Library && x.deleted));
                    if let Ok(limits) = reader.read_pid(&dir, "limits").and_then(parse_limits) {
                        f.nproc_limit = soft(&limits, "Max processes");
                        f.as_limit = soft(&limits, "Max address space");
                        f.memlock_limit = soft(&limits, "Max locked memory");
                    }
                    let mut set = [0u64; 7];
                    let all_read = NS_KINDS.iter().zip(&mut set).all(|(kind, slot)| {
                        reader
                            .readlink_pid(&dir, &format!("ns/{kind}"))
                            .and_then(parse_ns_link)
                            .map(|ino| *slot = ino)
                            .is_ok()
                    });
                    f.namespaces = all_read.then_some(set);
                }
                slow.insert(r.pid, f);
            }
            Ok(slow)
        });
        self.slow = slow.unwrap_or_default();
        self.slow_read = Some(Instant::now());
    }

    /// One collection, as exposition text; `openmetrics` selects that format.
    pub fn collect(&mut self, openmetrics: bool) -> String {
        let rows: Vec<ProcessRow> = self
            .timed("processes", |e| {
                e.scanner
                    .scan(ScanOptions {
                        slow_every: 10,
                        keep_open: true,
                        ..ScanOptions::default()
                    })
                    .map(<[ProcessRow]>::to_vec)
                    .map_err(|e| e.to_string())
            })
            .unwrap_or_default();
        self.refresh_slow(&rows);
        let (groups, folded) = self.groups(&rows);
        let namespace_sets = self.namespace_sets();
        let cgroups = self.cgroups(&rows);
        let buddy = self.timed("buddyinfo", |e| {
            e.scanner
                .reader()
                .read_proc("buddyinfo")
                .and_then(parse_buddyinfo)
                .map_err(|e| e.to_string())
        });
        let slabs = self.slabs();
        let c = Collection {
            groups,
            folded,
            pss: self.opts.pss_max_rss.is_some(),
            namespace_sets,
            max_groups: self.opts.max_groups,
            cgroups,
            buddy,
            slabs,
            stats: &self.stats,
            events: self.events.as_deref().map(|c| lock(c).clone()),
        };
        let mut x = Exposition {
            out: String::with_capacity(64 << 10),
            openmetrics,
        };
        for f in FAMILIES {
            if let Some(samples) = f.samples(&c) {
                x.family(f, &samples);
            }
        }
        if openmetrics {
            x.out.push_str("# EOF\n");
        }
        x.out
    }

    /// The processes by group, the smaller groups folded into "other", and how many
    /// were folded.
    fn groups(&mut self, rows: &[ProcessRow]) -> (Vec<(String, Group)>, usize) {
        // RLIMIT_NPROC counts the tasks (threads) of a real user.
        let mut tasks_per_uid: HashMap<u64, u64> = HashMap::new();
        for r in rows {
            if let Ok(uid) = r.uid {
                *tasks_per_uid.entry(uid).or_default() += r.threads;
            }
        }
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        let mut live = Members::with_capacity(rows.len());
        for r in rows {
            let rss = r.rss.clone().unwrap_or(0);
            let hwm = r.hwm.clone().unwrap_or(0);
            let wants_pss = self
                .opts
                .pss_max_rss
                .is_some_and(|guard| rss > 0 && rss <= guard);
            let wants_cmdline = self.opts.cmdline;
            let reader = self.scanner.reader();
            let dir = (wants_cmdline || wants_pss)
                .then(|| reader.open_pid(r.pid).ok())
                .flatten();
            let cmdline = dir
                .as_ref()
                .filter(|_| wants_cmdline)
                .and_then(|d| reader.read_pid(d, "cmdline").ok().map(cmdline_text));
            let pss = dir
                .as_ref()
                .filter(|_| wants_pss)
                .and_then(|d| MemUsage::read_rollup(reader, d).ok()?.pss.ok());
            let name = self.group_name(r, cmdline.as_deref());
            let slow = self
                .slow
                .get(&r.pid)
                .filter(|f| f.start_time_ticks == r.start_time_ticks);
            let blocked_or_ignored =
                r.sig_ign.clone().unwrap_or(0) | r.sig_blk.clone().unwrap_or(0);
            let g = Group {
                processes: 1,
                rss,
                hwm_max: hwm,
                hwm_gap_max: hwm.saturating_sub(rss),
                fd_ratio_max: syslens_probe::table::fd_ratio(r),
                nproc_ratio_max: ratio(
                    r.uid
                        .clone()
                        .ok()
                        .and_then(|u| tasks_per_uid.get(&u).copied()),
                    slow.and_then(|f| f.nproc_limit),
                ),
                as_ratio_max: ratio(r.vm_size.clone().ok(), slow.and_then(|f| f.as_limit)),
                memlock_ratio_max: ratio(r.locked.clone().ok(), slow.and_then(|f| f.memlock_limit)),
                deleted_lib_processes: u64::from(
                    slow.and_then(|f| f.deleted_library) == Some(true),
                ),
                maps_unreadable: u64::from(slow.is_some_and(|f| f.deleted_library.is_none())),
                // A container's init without a handler: the kernel drops SIGTERM.
                sigterm_ignored: u64::from(
                    blocked_or_ignored & SIGTERM != 0
                        || (r.namespace_init && r.sig_cgt.clone().unwrap_or(0) & SIGTERM == 0),
                ),
                pending_signals: u64::from(r.shd_pnd.clone().unwrap_or(0).count_ones()),
                counters: Counters::of(r),
                swap: r.swap.clone().unwrap_or(0),
                oom_score_max: r.oom_score.clone().unwrap_or(0),
                pss,
            };
            live.insert((r.pid, r.start_time_ticks), (name.clone(), g.counters));
            groups.entry(name).or_default().add(&g);
        }
        if let Some(known) = &self.known_groups {
            *lock(known) = live
                .iter()
                .map(|((pid, _), (g, _))| (*pid, g.clone()))
                .collect();
        }
        self.carry_exited_counters(live, &mut groups);
        fold_groups(groups, self.opts.max_groups)
    }

    /// Adds to each group the last counters of its members that exited since the
    /// previous collection, then remembers this collection's members.
    fn carry_exited_counters(&mut self, live: Members, groups: &mut BTreeMap<String, Group>) {
        for (key, (group, last)) in self.members.drain() {
            if !live.contains_key(&key) {
                self.exited.entry(group).or_default().add(&last);
            }
        }
        // A group with no live member has no series: forget its exited total, so the
        // map stays bounded (with --group-by pid every exit would add a group).
        self.exited.retain(|name, _| groups.contains_key(name));
        for (name, gone) in &self.exited {
            if let Some(g) = groups.get_mut(name) {
                g.counters.add(gone);
            }
        }
        self.members = live;
    }

    /// Processes per namespace set, the largest first.
    fn namespace_sets(&self) -> Vec<([u64; 7], u64)> {
        let mut sets: HashMap<[u64; 7], u64> = HashMap::new();
        for f in self.slow.values() {
            if let Some(set) = f.namespaces {
                *sets.entry(set).or_default() += 1;
            }
        }
        let mut ranked: Vec<([u64; 7], u64)> = sets.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked
    }

    /// The memory and cpu controllers of every cgroup a process is in (the root
    /// aside); None when the cgroup layout is unreadable.
    fn cgroups(&mut self, rows: &[ProcessRow]) -> Option<Vec<CgroupReading>> {
        self.timed("cgroups", |e| {
            let mut paths: Vec<String> = rows
                .iter()
                .filter_map(|r| Some(e.scanner.cgroup_path(*r.cgroup.as_ref().ok()?).to_owned()))
                .collect();
            paths.sort();
            paths.dedup();
            let reader = e.scanner.reader();
            let layout = CgroupLayout::read(reader).map_err(|e| e.to_string())?;
            let mut v = Vec::new();
            for p in paths.into_iter().filter(|p| p != "/" && p != "?") {
                let mem = layout
                    .dir_at("memory", &p)
                    .map(|d| MemoryCgroup::read(reader, d));
                let cpu = layout.dir_at("cpu", &p).map(|d| CpuCgroup::read(reader, d));
                v.push((p, mem, cpu));
            }
            Ok(v)
        })
    }

    /// The ten largest slab caches and their bytes; None when slabinfo is unreadable
    /// (it is root-only).
    fn slabs(&mut self) -> Option<Vec<(String, u64)>> {
        let mut caches = self
            .scanner
            .reader()
            .read_proc("slabinfo")
            .and_then(parse_slabinfo)
            .ok()?;
        let page = rustix::param::page_size() as u64;
        caches.sort_by_key(|c| std::cmp::Reverse(c.bytes(page)));
        Some(
            caches
                .iter()
                .take(10)
                .map(|c| (c.name.clone(), c.bytes(page)))
                .collect(),
        )
    }
}

/// Keeps the `max_groups - 1` largest groups by RSS and folds the rest into "other"
/// (a group of that name, such as regex misses, joins it). Returns how many groups
/// were folded.
fn fold_groups(
    groups: BTreeMap<String, Group>,
    max_groups: usize,
) -> (Vec<(String, Group)>, usize) {
    let keep = max_groups.max(1);
    if groups.len() <= keep {
        return (groups.into_iter().collect(), 0);
    }
    let mut ranked: Vec<(String, Group)> = groups.into_iter().collect();
    ranked.sort_by(|a, b| b.1.rss.cmp(&a.1.rss).then(a.0.cmp(&b.0)));
    let mut other = ranked
        .iter()
        .position(|(n, _)| n == "other")
        .map(|i| ranked.remove(i).1)
        .unwrap_or_default();
    let rest = ranked.split_off((keep - 1).min(ranked.len()));
    for (_, g) in &rest {
        other.add(g);
    }
    ranked.push(("other".into(), other));
    (ranked, rest.len())
}

/// Parses `--rss-guard`-style sizes like `512M` or `2G` (bytes without a suffix).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (n, mult) = match s.trim().chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    n.trim()
        .parse::<u64>()
        .map(|n| n * mult)
        .map_err(|_| format!("not a size: {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_escaping() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
    }

    fn comm_exporter(max_groups: usize) -> Exporter {
        Exporter::new(
            Options {
                group_by: GroupBy::Comm,
                max_groups,
                cmdline: false,
                pss_max_rss: None,
                slow_every: Duration::from_secs(60),
            },
            syslens_probe::Reader::host().unwrap(),
        )
    }

    fn group(rss: u64) -> Group {
        Group {
            processes: 1,
            rss,
            ..Group::default()
        }
    }

    #[test]
    fn folding_keeps_the_largest_and_sums_the_rest_into_other() {
        let groups: BTreeMap<String, Group> =
            [("a", 10), ("b", 30), ("c", 20), ("other", 5), ("d", 1)]
                .into_iter()
                .map(|(n, r)| (n.to_owned(), group(r)))
                .collect();
        let (shown, folded) = fold_groups(groups, 3);
        let names: Vec<&str> = shown.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["b", "c", "other"]);
        assert_eq!(folded, 2, "a and d folded");
        let other = &shown[2].1;
        assert_eq!(
            (other.processes, other.rss),
            (3, 5 + 10 + 1),
            "the existing other group joins the folded ones"
        );
        let few: BTreeMap<String, Group> = [("x".to_owned(), group(1))].into_iter().collect();
        assert_eq!(fold_groups(few, 3).1, 0);
    }

    #[test]
    fn a_member_exiting_does_not_lower_the_group_counters() {
        let mut e = comm_exporter(5);
        let c = |n: u64| Counters {
            minflt: n,
            majflt: n,
            vcsw: n,
            nvcsw: n,
            utime: n,
            stime: n,
        };
        let grouped = |members: &[(i32, u64)]| -> (Members, BTreeMap<String, Group>) {
            let live = members
                .iter()
                .map(|&(pid, n)| ((pid, 0), ("g".to_owned(), c(n))))
                .collect();
            let mut g = Group::default();
            for &(_, n) in members {
                g.counters.add(&c(n));
            }
            (live, [("g".to_owned(), g)].into_iter().collect())
        };
        let (live, mut groups) = grouped(&[(1, 10), (2, 5)]);
        e.carry_exited_counters(live, &mut groups);
        assert_eq!(groups["g"].counters, c(15));
        // PID 2 exited; PID 1 went on to 12.
        let (live, mut groups) = grouped(&[(1, 12)]);
        e.carry_exited_counters(live, &mut groups);
        assert_eq!(
            groups["g"].counters,
            c(17),
            "5 from the exited member are kept"
        );
        // The group empties: its total is forgotten.
        e.carry_exited_counters(HashMap::new(), &mut BTreeMap::new());
        assert!(e.exited.is_empty());
    }

    /// Summing the members' counters overflowed (a panic in debug builds) on huge
    /// /proc figures.
    #[test]
    fn regression_group_counters_saturate_instead_of_overflowing() {
        let huge = Counters {
            minflt: u64::MAX,
            majflt: u64::MAX,
            vcsw: u64::MAX,
            nvcsw: u64::MAX,
            utime: u64::MAX,
            stime: u64::MAX,
        };
        let mut sum = huge;
        sum.add(&huge);
        assert_eq!(sum, huge);
    }

    #[test]
    fn issue_16_event_families_escape_their_labels_and_say_which_sources_are_up() {
        let mut e = comm_exporter(5);
        let mut counts = EventCounts {
            sources: vec![("exit", true), ("signal", false)],
            ..EventCounts::default()
        };
        counts
            .exits
            .insert(("a\"b\\c\nd".to_owned(), "signaled"), 2);
        e.events = Some(Arc::new(Mutex::new(counts)));
        let text = e.collect(false);
        assert!(
            text.contains("syslens_exits_total{group=\"a\\\"b\\\\c\\nd\",how=\"signaled\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("syslens_event_source_up{source=\"exit\"} 1\n"));
        assert!(text.contains("syslens_event_source_up{source=\"signal\"} 0\n"));
        assert!(text.contains("# TYPE syslens_signals_total counter\n"));
        assert!(
            !text.contains("syslens_oom_kills_total"),
            "a kind not asked for has no family"
        );
        assert!(!comm_exporter(5).collect(false).contains("syslens_event_"));
    }

    #[test]
    fn openmetrics_names_counter_families_without_total() {
        let mut x = Exposition {
            out: String::new(),
            openmetrics: true,
        };
        let counter = Family::of(
            "syslens_x_total",
            Counter,
            "Help.",
            &["group", "zone"],
            |_| None,
        );
        x.family(&counter, &[(vec!["a".into(), "b\"c".into()], 2.0)]);
        let gauge = Family::of("syslens_y_total_bytes", Gauge, "Help.", &[], |_| None);
        x.family(&gauge, &[(Vec::new(), f64::NAN)]);
        assert_eq!(
            x.out,
            "# HELP syslens_x Help.\n# TYPE syslens_x counter\nsyslens_x_total{group=\"a\",zone=\"b\\\"c\"} 2\n\
             # HELP syslens_y_total_bytes Help.\n# TYPE syslens_y_total_bytes gauge\nsyslens_y_total_bytes NaN\n"
        );
    }

    /// The README's metric table as FAMILIES makes it.
    fn readme_rows() -> String {
        FAMILIES
            .iter()
            .map(|f| {
                format!(
                    "| `{}` | {} | {} | {} |\n",
                    f.name,
                    f.kind.name(),
                    f.labels.join(", "),
                    f.help
                )
            })
            .collect()
    }

    #[test]
    fn issue_13_the_readme_lists_every_metric_family_and_no_other() {
        let readme = include_str!("../../README.md");
        let listed: String = readme
            .lines()
            .filter(|l| l.starts_with("| `syslens_"))
            .flat_map(|l| [l, "\n"])
            .collect();
        assert!(
            listed == readme_rows(),
            "README.md's metric table (section `syslens serve`) differs from FAMILIES in \
             src/serve/metrics.rs; it should read:\n\n| metric | type | labels | meaning |\n\
             |---|---|---|---|\n{}",
            readme_rows()
        );
    }

    #[test]
    fn family_names_are_unique_and_follow_the_naming_rules() {
        let mut names: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FAMILIES.len(), "a family listed twice");
        for f in FAMILIES {
            assert!(f.name.starts_with("syslens_"), "{}", f.name);
            assert_eq!(
                f.name.ends_with("_total"),
                f.kind == Counter,
                "{}: counters, and only they, end in _total",
                f.name
            );
            assert!(
                !f.help.contains(['|', '\n']),
                "{}: help breaks the README table",
                f.name
            );
        }
    }

    #[test]
    fn namespace_labels_name_the_kinds_read() {
        for (kind, label) in NS_KINDS.iter().zip(NS_LABELS) {
            assert_eq!(format!("{kind}_ns"), label);
        }
    }

    #[test]
    fn a_real_collection_has_help_and_type_on_every_family() {
        let mut e = comm_exporter(5);
        let text = e.collect(false);
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        assert!(families.len() >= 20);
        for f in &families {
            let name = f.split(' ').next().unwrap();
            assert!(
                FAMILIES.iter().any(|x| x.name == name),
                "{name} is not in FAMILIES"
            );
        }
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "no HELP for {name}"
            );
        }
        let groups = text
            .lines()
            .filter(|l| l.starts_with("syslens_group_processes{"))
            .count();
        assert!(groups <= 5, "--max-groups 5 gave {groups} groups");
        assert!(
            text.contains("group=\"other\""),
            "the rest is folded into other"
        );
        assert!(e.collect(true).ends_with("# EOF\n"));
    }
}
