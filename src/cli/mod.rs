//! The command line: every clap type, the conversion of flags into the plain option
//! structs the library takes, and the one place the reader is built (the live host, or
//! the captured tree `--root` names). Every command returns an exit status; output goes
//! through one writer so a closed pipe ends quietly.

pub mod learn;
pub mod specimen;

use std::io::{self, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use regex::Regex;
use syslens_probe::table::Scanner;
use syslens_probe::{Missing, Reader};

use crate::catalogue::{ConceptId, CONCEPTS};
use crate::commands::inspect::{inspect, pids_named};
pub use crate::commands::Status;
use crate::commands::{self, system};
use crate::concepts::REGISTRY;
use crate::lab;
use crate::model::doctor::{DoctorView, Scope, Severity};
use crate::model::process::ViewOptions;
use crate::model::ptable::{self, SortKey, TableQuery};
use crate::model::system::SystemView;
use crate::render::safe::TerminalSafe;
use crate::render::{self, ColorChoice, Style};
use crate::tour::TourOptions;

/// A flag whose values are the names of a library enum (clap's derive is not used on
/// library types: only this module knows clap).
fn choice<T: Copy + Send + Sync + 'static>(
    all: &'static [T],
    name: fn(T) -> &'static str,
) -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(all.iter().map(|v| name(*v))).try_map(move |s: String| {
        all.iter()
            .copied()
            .find(|v| name(*v) == s)
            .ok_or_else(|| format!("no such choice: {s}"))
    })
}

/// The command line: the global flags and the command.
#[derive(Debug, Parser)]
#[command(
    name = "syslens",
    version,
    about = "Make Linux system-programming concepts visible on a real machine",
    long_about = "syslens provokes, measures and shows the core concepts of Linux system \
programming (page faults, copy-on-write, signals, cgroups, ...) on the running kernel, with \
the kernel's own evidence from /proc and /sys.",
    after_help = "Exit status: 0 nothing failed, 1 a claim failed or a finding reached --fail-on, \
2 a usage error or an unreadable target."
)]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: Global,
    /// The command; none runs the tour.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags every command takes; a command that cannot use one refuses it (exit 2).
#[derive(Debug, Args)]
pub struct Global {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// When to colour text output [default: auto, which honours NO_COLOR].
    #[arg(long, global = true, value_name = "WHEN", value_parser = choice(&ColorChoice::ALL, ColorChoice::name))]
    pub color: Option<ColorChoice>,
    /// Read a captured tree instead of the live host: DIR holds proc/ (and sys/ for
    /// cgroups) laid out as on the host (system, inspect, doctor, top, serve).
    #[arg(long, global = true, value_name = "DIR", alias = "proc-root")]
    pub root: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every lab and write the HTML report (the default command).
    Tour(TourArgs),
    /// The whole machine by concept; with --processes, one row per process.
    System(SystemArgs),
    /// Show every concept's lens for one process, in catalogue order.
    Inspect(InspectArgs),
    /// A live view by concept (memory, CPU, files, isolation, system), like htop.
    Top {
        /// Seconds between refreshes.
        #[arg(long, default_value = "1", value_parser = parse_seconds)]
        interval: Duration,
        /// The kernel's events shown under the meters, comma-separated: oom-kill,
        /// signal (names who sent a kill), exit (killed, or a peak of 100 MiB or more),
        /// reclaim-stall, emfile (off by default: its syscall tracepoints slow every
        /// syscall), or none. Needs root (or CAP_PERFMON, CAP_NET_ADMIN, CAP_SYSLOG).
        #[arg(long, value_name = "KIND,...", value_delimiter = ',',
              default_value = crate::top::events::DEFAULT_KINDS,
              value_parser = top_event_kind)]
        events: Vec<&'static str>,
        /// Replay a store instead of the live host: `[` `]` a sample, `{` `}` a
        /// minute, `g` a time; from the sample at or before --at (the last without).
        #[command(flatten)]
        past: AtArgs,
    },
    /// Findings a person can act on, from every rule of the catalogue.
    Doctor(DoctorArgs),
    /// Run a lab: provoke a concept on this kernel, measure it, check the claims.
    Lab(LabArgs),
    /// Predict, run, verdict: questions before a lab runs, graded by what it measures.
    Learn(learn::LearnArgs),
    /// A Prometheus exporter of what node_exporter and process-exporter miss.
    Serve(ServeArgs),
    /// The kernel's own events, live: OOM kills, signals, exits with their peaks,
    /// EMFILE, classified page faults, fsync latency, stalls (needs root).
    Watch(WatchArgs),
    /// Record the process table, the system figures and the notable events into a
    /// store every interval, until SIGINT or SIGTERM; the views ask it with --store.
    Record(RecordArgs),
    /// The events a recorder stored (NDJSON with --json, the objects of watch).
    Events(EventsArgs),
    /// A recorded window: plots of memory, pressure, rates and the largest processes,
    /// the events on a timeline, the doctor's findings (one HTML page with --html).
    Report(ReportArgs),
    /// List the concepts with their ids.
    Concepts,
    /// Explain a concept: what it is, the lab code that provokes it, where to read next.
    Explain {
        /// The concept id; without it, the list.
        id: Option<String>,
    },
    /// Internal: the child side of a lab.
    #[command(name = "__lab-child", hide = true)]
    LabChild {
        /// The concept's id (slug).
        concept: String,
        /// The child's role in the lab (each lab names its own).
        role: String,
        /// The lab's parameters, as JSON.
        params: String,
    },
    /// Internal: a store of SAMPLES synthetic samples ending now, for the benchmarks.
    #[command(name = "__record-synth", hide = true)]
    RecordSynth {
        /// The store's directory (new).
        #[arg(long)]
        store: PathBuf,
        /// How many samples.
        #[arg(long, default_value = "17280")]
        samples: u64,
        /// Seconds between them.
        #[arg(long, default_value = "5", value_parser = parse_interval)]
        interval: Duration,
    },
    /// Internal: a process with known state, for syslens's own tests.
    #[command(name = "__specimen", hide = true)]
    Specimen(specimen::SpecimenArgs),
}

/// `syslens watch`'s flags.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Concept ids to watch (default: every concept that has events).
    pub concepts: Vec<String>,
    /// Only events of this process and its descendants.
    #[arg(long)]
    pub pid: Option<i32>,
    /// Only events of processes in this cgroup or below (its path below the
    /// hierarchy's root, as /proc/PID/cgroup gives it).
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long = "for", value_name = "SECS", value_parser = parse_watch_seconds)]
    pub duration: Option<Duration>,
    /// Only events of this kind (repeatable): oom-kill, signal, exit, emfile, faults, ...;
    /// the heaviest (futex-wait, rss-peak) run only when named here.
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<String>,
    /// Seconds between the per-process summaries.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_watch_seconds)]
    pub summary: Duration,
}

/// One of `top --events`: a kind top shows, or `none` (kept as the empty string).
fn top_event_kind(s: &str) -> Result<&'static str, String> {
    if s == "none" {
        return Ok("");
    }
    crate::top::events::KINDS
        .iter()
        .find(|k| **k == s)
        .copied()
        .ok_or_else(|| {
            format!(
                "no event kind {s}; the kinds are {} (or none)",
                crate::top::events::KINDS.join(", ")
            )
        })
}

/// Seconds for watch: 0.1 s to a week.
fn parse_watch_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("not a number of seconds: {s}"))?;
    if !(0.1..=604_800.0).contains(&secs) {
        return Err("expected 0.1 to 604800 seconds".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `serve --group-by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupKey {
    /// The command name (comm).
    Comm,
    /// The memory cgroup (v1) or unified cgroup (v2).
    Cgroup,
    /// One group per process, labelled comm/pid (high cardinality: opt-in).
    Pid,
    /// The container its cgroup names (runtime/short id; `host` outside any).
    Container,
    /// The systemd unit its cgroup names.
    Unit,
}

/// `syslens serve`'s flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Loopback by default; any other address exposes
    /// process names and limits to whoever can reach it.
    #[arg(long, default_value = "127.0.0.1:9105")]
    pub listen: SocketAddr,
    /// How processes are grouped.
    #[arg(
        long,
        value_enum,
        default_value = "comm",
        conflicts_with = "group_regex"
    )]
    pub group_by: GroupKey,
    /// Group by the first capture group of this regex over the command name (or the
    /// command line with --cmdline); processes that do not match go to "other".
    #[arg(long, value_name = "REGEX")]
    pub group_regex: Option<Regex>,
    /// Export at most this many groups; the smaller ones are folded into "other".
    #[arg(long, default_value = "50", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_groups: u64,
    /// Read command lines for --group-regex (they can hold secrets: off by default).
    #[arg(long)]
    pub cmdline: bool,
    /// Export PSS from smaps_rollup, only for processes with at most this RSS (reading
    /// smaps stalls the target's memory map for a time that grows with its size).
    #[arg(long, value_name = "SIZE", value_parser = crate::serve::metrics::parse_size)]
    pub pss_rss_guard: Option<u64>,
    /// Serve a collection this recent instead of collecting again (seconds).
    #[arg(long, default_value = "1", value_parser = parse_seconds)]
    pub cache: Duration,
    /// Re-read maps, limits and namespaces of every process at most this often.
    #[arg(long, default_value = "60", value_parser = parse_seconds)]
    pub slow_every: Duration,
    /// Connections held at once (sending a request, waiting for a collection or reading
    /// the answer). When all are taken, a new one displaces the oldest that is not waiting
    /// for a collection; only when every one is waiting does the new one get 503.
    #[arg(long, default_value = "256", value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_connections: u64,
    /// An address's share when all connections are taken: room for a new one is made
    /// from the addresses holding more than this (those waiting for a collection aside),
    /// so one address cannot push out the others.
    #[arg(long, default_value = "16", value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_per_peer: u64,
    /// A request head must arrive whole within this time of connecting, or it gets 408;
    /// draining the input after an error answer ends by the same deadline.
    #[arg(long, default_value = "5", value_parser = parse_seconds)]
    pub request_timeout: Duration,
    /// The kernel's events to count, comma-separated: oom-kill, signal (fatal ones; needs
    /// exit), exit, emfile (off by default: its syscall tracepoints slow every syscall),
    /// or none.
    ///
    /// Exported as syslens_oom_kills_total{victim_group,constraint},
    /// syslens_signals_total{signal,group} (signals whose target died of them),
    /// syslens_exits_total{group,how} (how: exited, signaled, core_dumped) and
    /// syslens_emfile_total{group}, grouped as --group-by and capped by --max-groups
    /// (later groups count as "other", in syslens_event_groups_folded_total), with
    /// syslens_event_samples_lost_total and syslens_event_source_up{source}. Needs root
    /// (or CAP_PERFMON, CAP_NET_ADMIN for taskstats, CAP_SYSLOG for the kernel log):
    /// without it the sources say why on stderr and syslens_event_source_up is 0.
    #[arg(long, value_name = "KIND,...", value_delimiter = ',', default_value = crate::serve::events::DEFAULT_KINDS)]
    pub events: Vec<String>,
}

impl ServeArgs {
    /// The exporter's options, or why `--events` is refused.
    fn options(self) -> Result<crate::serve::ServeOptions, String> {
        use crate::serve::GroupBy;
        let events = crate::serve::events::check_kinds(&self.events)?;
        let a = self;
        let group_by = match (a.group_regex, a.group_by) {
            (Some(re), _) => GroupBy::Regex(re),
            (None, GroupKey::Comm) => GroupBy::Comm,
            (None, GroupKey::Cgroup) => GroupBy::Cgroup,
            (None, GroupKey::Pid) => GroupBy::Pid,
            (None, GroupKey::Container) => GroupBy::Container,
            (None, GroupKey::Unit) => GroupBy::Unit,
        };
        Ok(crate::serve::ServeOptions {
            listen: a.listen,
            group_by,
            max_groups: a.max_groups,
            cmdline: a.cmdline,
            pss_rss_guard: a.pss_rss_guard,
            cache: a.cache,
            slow_every: a.slow_every,
            max_connections: a.max_connections,
            max_per_peer: a.max_per_peer,
            request_timeout: a.request_timeout,
            events,
        })
    }
}

/// Flags of `syslens tour`.
#[derive(Debug, Clone, Args)]
pub struct TourArgs {
    /// Smaller sizes and fewer trials (about a third of the time).
    #[arg(long)]
    pub quick: bool,
    /// Where to write the HTML report.
    #[arg(long, value_name = "PATH", default_value = "syslens-report.html")]
    pub html: PathBuf,
    /// Let the swap-oom lab add a temporary swap file (root; removed afterwards).
    #[arg(long)]
    pub allow_swapfile: bool,
    /// Print every lesson's questions for the tour's parameters (what --answers
    /// answers) and run nothing.
    #[arg(long, conflicts_with = "answers")]
    pub questions: bool,
    /// Predictions to grade beside the outcomes in the report: a JSON object from
    /// concept id to that lesson's answers (syslens tour --questions --json lists them).
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
}

impl From<TourArgs> for TourOptions {
    fn from(a: TourArgs) -> TourOptions {
        TourOptions {
            quick: a.quick,
            html: a.html,
            allow_swapfile: a.allow_swapfile,
            questions: a.questions,
            answers: a.answers,
        }
    }
}

/// Flags of `syslens inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The process to inspect.
    #[arg(required_unless_present = "name", conflicts_with = "name", value_parser = clap::value_parser!(i32).range(1..))]
    pub pid: Option<i32>,
    /// Inspect the process with this command name (the lowest PID when several match).
    #[arg(long)]
    pub name: Option<String>,
    /// Watch this long for rates and trends (seconds; 0 takes one sample).
    #[arg(long, default_value = "0.5", value_parser = parse_seconds)]
    pub window: Duration,
    /// Do not read /proc/PID/smaps (it briefly stalls the target's memory map).
    #[arg(long)]
    pub no_smaps: bool,
    /// Ask a recorded store instead of the live host (PID only).
    #[command(flatten)]
    pub past: AtArgs,
}

/// The store a past view reads, and the moment it asks about.
#[derive(Debug, Args)]
pub struct AtArgs {
    /// Read a store `syslens record` wrote [default with --at: /var/lib/syslens as
    /// root, $XDG_STATE_HOME/syslens otherwise].
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// The recorded sample at or before TIME (RFC 3339, HH:MM[:SS] local today, -5m,
    /// -2h, -1d, @UNIX_SECONDS); without it, the last one.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub at: Option<String>,
}

/// `syslens record`'s flags.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The store's directory [default: /var/lib/syslens as root,
    /// $XDG_STATE_HOME/syslens otherwise].
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Seconds between two samples.
    #[arg(long, default_value = "5", value_parser = parse_interval)]
    pub interval: Duration,
    /// Drop what is older than this (30s, 90m, 12h, 7d).
    #[arg(long, default_value = "7d", value_parser = parse_span)]
    pub retain: Duration,
    /// The most the store may take on disk (500M, 1G); the oldest samples go first.
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    pub max_size: u64,
    /// Stop after this long (30s, 90m, 12h) instead of at SIGINT / SIGTERM.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_span)]
    pub duration: Option<Duration>,
    /// Also record these event sources, off by default because they slow the whole host
    /// while on (emfile, fsync, faults, runq, futex-wait, rss-peak: `syslens watch` says by how much), comma-separated.
    #[arg(long, value_name = "KIND,...", value_delimiter = ',')]
    pub with: Vec<String>,
}

/// `syslens events`' flags.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The store [default: as `record`'s].
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// From this TIME on [default: the store's beginning].
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Up to this TIME [default: now].
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Only events of this kind (oom-kill, signal, exit, emfile, ...).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only events of this process (as subject, or as sender of a signal).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    pub pid: Option<i32>,
}

/// `syslens report`'s flags.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The store [default: as `record`'s].
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// The window's start (TIME as for --at).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: String,
    /// The window's end [default: now].
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Write the window as one self-contained HTML page here (no script, no network)
    /// instead of the text summary.
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
    /// How many of the largest processes (by peak HWM) to plot.
    #[arg(long, value_name = "N", default_value = "5",
          value_parser = clap::value_parser!(u16).range(1..=50))]
    pub processes: u16,
}

/// Flags of `syslens system`.
#[derive(Debug, Args)]
pub struct SystemArgs {
    /// Ask a recorded store instead of the live host.
    #[command(flatten)]
    pub past: AtArgs,
    /// One row per process with the cheap figure of each concept.
    #[arg(long)]
    pub processes: bool,
    /// Sort the process table by this column (numbers largest first).
    #[arg(long, default_value = "rss", requires = "processes", value_parser = choice(&SortKey::ALL, SortKey::name))]
    pub sort: SortKey,
    /// Reverse the sort order.
    #[arg(long, requires = "processes")]
    pub reverse: bool,
    /// Only processes whose command name contains NAME.
    #[arg(long, requires = "processes")]
    pub name: Option<String>,
    /// Scope everything to one cgroup (as /proc/PID/cgroup writes it, e.g.
    /// /system.slice/nginx.service): its limits in the system view, its processes in the
    /// table.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,
    /// Only the processes of the container whose id starts with ID.
    #[arg(long, value_name = "ID", requires = "processes")]
    pub container: Option<String>,
    /// Show the rows as a process tree (children under their parent).
    #[arg(long, requires = "processes")]
    pub tree: bool,
    /// Add PSS and shared memory (reads smaps_rollup of each listed process, which
    /// briefly stalls each one).
    #[arg(long, requires = "processes")]
    pub pss: bool,
    /// Show at most N processes.
    #[arg(long, value_name = "N", requires = "processes")]
    pub limit: Option<usize>,
    /// Watch this long for rates (seconds; 0 takes one sample).
    #[arg(long, default_value = "0.5", value_parser = parse_seconds)]
    pub window: Duration,
}

/// Flags of `syslens doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Only this process.
    #[arg(long, conflicts_with = "name", value_parser = clap::value_parser!(i32).range(1..))]
    pub pid: Option<i32>,
    /// Only processes with this command name.
    #[arg(long)]
    pub name: Option<String>,
    /// How long to watch for trends (fault rates, RSS growth, run-queue delay).
    #[arg(long, default_value = "3", value_parser = parse_seconds)]
    pub window: Duration,
    /// Exit 1 when a finding at or above this level exists.
    #[arg(long, default_value = "error", value_parser = choice(&Severity::ALL, Severity::name))]
    pub fail_on: Severity,
    /// Run the rules over a recorded store instead of watching the live host.
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// The recorded window's start (TIME as for --at; with --store).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// The recorded window's end [default: now].
    #[arg(
        long,
        value_name = "TIME",
        requires = "since",
        allow_hyphen_values = true
    )]
    pub until: Option<String>,
}

/// Flags of `syslens lab`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example: syslens lab cow --params; syslens lab cow --quick --set \
write_fraction=0.5 --set size=32M"
)]
pub struct LabArgs {
    /// The concept id (see --list), or `all`.
    #[arg(required_unless_present = "list")]
    pub id: Option<String>,
    /// List the labs with a one-line summary.
    #[arg(long)]
    pub list: bool,
    /// List the lab's parameters: key, unit, default, quick value, the range allowed on
    /// this host, what each changes. Runs nothing.
    #[arg(long, conflicts_with_all = ["list", "set", "size", "trials", "quick", "allow_swapfile"])]
    pub params: bool,
    /// Set a parameter (repeatable; --params lists them). Sizes are plain MiB or take a
    /// unit (64M, 1G, 512K); checked against the host before anything is allocated.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Smaller sizes and fewer trials.
    #[arg(long)]
    pub quick: bool,
    /// The lab's main size in MiB (`--set` of the parameter --params marks `--size`);
    /// at most a quarter of MemAvailable, checked before anything is allocated.
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub size: Option<u64>,
    /// Number of timed trials (`--set trials=N`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=lab::params::MAX_TRIALS as u64))]
    pub trials: Option<u64>,
    /// Allow the swap-oom lab to add a temporary swap file (root; removed afterwards).
    #[arg(long)]
    pub allow_swapfile: bool,
}

pub(crate) fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("not a number of seconds: {s}"))?;
    if !(0.0..=3600.0).contains(&secs) {
        return Err("expected 0 to 3600 seconds".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// An interval of the recorder: 0.1 s to an hour.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_seconds(s)?;
    if d < Duration::from_millis(100) {
        return Err("at least 0.1 seconds".into());
    }
    Ok(d)
}

/// A span such as 30s, 90m, 12h, 7d (plain numbers are seconds); at most ten years.
fn parse_span(s: &str) -> Result<Duration, String> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let per = match &s[digits.len()..] {
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        unit => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    };
    let n: f64 = digits
        .parse()
        .map_err(|_| format!("not a duration: {s} (30s, 90m, 12h, 7d)"))?;
    let secs = n * per;
    if !(secs > 0.0 && secs <= 10.0 * 365.0 * 86400.0) {
        return Err("expected more than 0 and at most ten years".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A size such as 500M or 1G (K, M, G, T in powers of 1024; plain numbers are bytes);
/// at least 64 KiB.
fn parse_size(s: &str) -> Result<u64, String> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let shift = match s[digits.len()..]
        .to_ascii_uppercase()
        .trim_end_matches(['B', 'I'])
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        unit => return Err(format!("unknown unit {unit:?}: use K, M, G or T")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("not a size: {s} (500M, 1G)"))?;
    let bytes = n
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{s} is too large"))?;
    if bytes < 64 << 10 {
        return Err("at least 64K".into());
    }
    Ok(bytes)
}

/// Which global flags a command can use.
struct Applies {
    json: bool,
    root: bool,
}

fn applies(command: &Option<Command>) -> (&'static str, Applies) {
    let (name, json, root) = match command {
        None | Some(Command::Tour(_)) => ("tour", true, false),
        Some(Command::System(_)) => ("system", true, true),
        Some(Command::Inspect(_)) => ("inspect", true, true),
        Some(Command::Top { .. }) => ("top", false, true),
        Some(Command::Doctor(_)) => ("doctor", true, true),
        Some(Command::Lab(_)) => ("lab", true, false),
        Some(Command::Learn(_)) => ("learn", true, false),
        Some(Command::Serve(_)) => ("serve", false, true),
        Some(Command::Watch(_)) => ("watch", true, false),
        Some(Command::Record(_)) => ("record", false, true),
        Some(Command::Events(_)) => ("events", true, false),
        Some(Command::Report(_)) => ("report", true, false),
        Some(Command::Concepts) => ("concepts", true, false),
        Some(Command::Explain { .. }) => ("explain", true, false),
        Some(Command::LabChild { .. })
        | Some(Command::Specimen(_))
        | Some(Command::RecordSynth { .. }) => ("internal", true, true),
    };
    (name, Applies { json, root })
}

/// Refuses a global flag the command cannot use, with the reason (exit 2).
fn refuse_flags(g: &Global, command: &Option<Command>, err: &mut dyn Write) -> io::Result<bool> {
    let (name, ok) = applies(command);
    let why = if g.root.is_some() && !ok.root {
        match name {
            "tour" | "lab" | "learn" => {
                Some("--root: a lab provokes the live kernel; it cannot run on a captured tree")
            }
            "watch" => {
                Some("--root: watch reads the live kernel's events; a captured tree has none")
            }
            _ => Some("--root: this command reads no process or system files"),
        }
    } else if g.json && !ok.json {
        Some("--json: this command has no JSON output (serve exports Prometheus text; top is interactive)")
    } else {
        None
    };
    match why {
        Some(why) => {
            writeln!(err, "syslens {name}: {why}")?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Runs the parsed command, writing to `out` and errors to `err`.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Status> {
    let style = Style::new(cli.global.color.unwrap_or(ColorChoice::Auto));
    // Nothing a user controls reaches the terminal raw (a comm, a path, a cgroup).
    let (mut safe_out, mut safe_err) = (
        TerminalSafe::new(out, style.color),
        TerminalSafe::new(err, false),
    );
    let (out, err): (&mut dyn Write, &mut dyn Write) = (&mut safe_out, &mut safe_err);
    let g = &cli.global;
    if refuse_flags(g, &cli.command, err)? {
        return Ok(Status::Usage);
    }
    match cli.command {
        None => crate::tour::run(out, err, g.json, &style, TourOptions::default()),
        Some(Command::Tour(args)) => crate::tour::run(out, err, g.json, &style, args.into()),
        Some(Command::System(args)) => system_cmd(out, err, g, &style, args),
        Some(Command::Concepts) | Some(Command::Explain { id: None }) => concepts(out, g, &style),
        Some(Command::Explain { id: Some(id) }) => match ConceptId::lookup(&id) {
            Ok(c) => {
                let e = commands::explain::explanation(c);
                if g.json {
                    render::json(out, &e)?;
                } else {
                    render::text::explain(out, &e, &style)?;
                }
                Ok(Status::Ok)
            }
            Err(unknown) => {
                writeln!(err, "syslens: {unknown}")?;
                Ok(Status::Usage)
            }
        },
        Some(Command::Inspect(args)) => inspect_cmd(out, err, g, &style, args),
        Some(Command::Specimen(args)) => specimen::run(args, out),
        Some(Command::Lab(args)) => lab_cmd(out, err, g, &style, args),
        Some(Command::Learn(args)) => learn::learn_cmd(out, err, g.json, &style, args),
        Some(Command::Doctor(args)) => doctor_cmd(out, err, g, &style, args),
        Some(Command::Serve(args)) => {
            let opts = match args.options() {
                Ok(o) => o,
                Err(why) => {
                    writeln!(err, "syslens serve: {why}")?;
                    return Ok(Status::Usage);
                }
            };
            let Some(reader) = open_reader(g, err)? else {
                return Ok(Status::Usage);
            };
            // The event counters read through a reader of their own, on their thread.
            let events = match opts.events.is_empty() {
                true => None,
                false => open_reader(g, err)?,
            };
            crate::serve::run(opts, reader, events, err).map(|_| Status::Ok)
        }
        Some(Command::Watch(args)) => watch_cmd(out, err, g, args),
        Some(Command::Record(args)) => record_cmd(err, g, args),
        Some(Command::RecordSynth {
            store,
            samples,
            interval,
        }) => match Reader::host()
            .map_err(|e| crate::record::store::StoreError::Other(e.to_string()))
            .and_then(|r| crate::record::synthesize(&store, samples, interval, r))
        {
            Ok(()) => Ok(Status::Ok),
            Err(e) => {
                writeln!(err, "syslens: {e}")?;
                Ok(Status::Failed)
            }
        },
        Some(Command::Events(args)) => events_cmd(out, err, g, args),
        Some(Command::Report(args)) => report_cmd(out, err, g, args),
        Some(Command::Top {
            interval,
            events,
            past,
        }) => {
            let replay = match past_store(&past, g, err)? {
                Past::Live => None,
                Past::Store(store) => match top_replay(*store, past.at.as_deref(), err)? {
                    Some(r) => Some(r),
                    None => return Ok(Status::Usage),
                },
                Past::Refused => return Ok(Status::Usage),
            };
            // ratatui panics without a terminal (cron, a pipe, ssh without -t).
            if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
                writeln!(
                    err,
                    "syslens top needs a terminal (try syslens system --processes)"
                )?;
                return Ok(Status::Usage);
            }
            if let Some((replay, at)) = replay {
                return crate::top::replay(replay, at).map(|_| Status::Ok);
            }
            let (Some(collector), Some(inspector), Some(watcher)) = (
                open_reader(g, err)?,
                open_reader(g, err)?,
                open_reader(g, err)?,
            ) else {
                return Ok(Status::Usage);
            };
            let kinds: Vec<&'static str> = events.into_iter().filter(|k| !k.is_empty()).collect();
            crate::top::run(
                collector,
                inspector,
                (watcher, kinds),
                interval.max(Duration::from_millis(100)),
            )
            .map(|_| Status::Ok)
        }
        Some(Command::LabChild {
            concept,
            role,
            params,
        }) => {
            let code = commands::labs::child_main(&concept, &role, &params);
            Ok(if code == 0 {
                Status::Ok
            } else {
                Status::Failed
            })
        }
    }
}

fn watch_cmd(
    out: &mut dyn Write,
    err: &mut dyn Write,
    g: &Global,
    args: WatchArgs,
) -> io::Result<Status> {
    let mut concepts = Vec::new();
    for name in &args.concepts {
        match ConceptId::lookup(name) {
            Ok(c) => concepts.push(c),
            Err(unknown) => {
                writeln!(err, "syslens watch: {unknown}")?;
                return Ok(Status::Usage);
            }
        }
    }
    let known: Vec<&str> = crate::watch::sources(&[]).iter().map(|s| s.kind).collect();
    if let Some(bad) = args.kinds.iter().find(|k| !known.contains(&k.as_str())) {
        writeln!(
            err,
            "syslens watch: no event kind {}; the kinds are {}",
            render::safe::clean(bad),
            known.join(", ")
        )?;
        return Ok(Status::Usage);
    }
    if !concepts.is_empty() && crate::watch::sources(&concepts).is_empty() {
        writeln!(
            err,
            "syslens watch: no events for these concepts yet; the kinds are {}",
            known.join(", ")
        )?;
        return Ok(Status::Usage);
    }
    if let Some(pid) = args.pid {
        if pid <= 0 || !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            writeln!(err, "syslens watch: no process {pid}")?;
            return Ok(Status::Usage);
        }
    }
    let Some(reader) = open_reader(g, err)? else {
        return Ok(Status::Usage);
    };
    let opts = crate::watch::WatchOptions {
        concepts,
        pid: args.pid,
        cgroup: args.cgroup,
        duration: args.duration,
        kinds: args.kinds,
        json: g.json,
        summary_every: args.summary,
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [libc::SIGTERM, libc::SIGINT] {
        signal_hook::flag::register(sig, std::sync::Arc::clone(&stop))?;
    }
    crate::watch::run(&opts, reader, out, err, &stop)?;
    Ok(Status::Ok)
}

fn system_cmd(
    out: &mut dyn Write,
    err: &mut dyn Write,
    g: &Global,
    style: &Style,
    a: SystemArgs,
) -> io::Result<Status> {
    match past_store(&a.past, g, err)? {
        Past::Live => {}
        Past::Store(store) => return system_past(out, err, g, style, a, *store),
        Past::Refused => return Ok(Status::Usage),
    }
    let Some(mut reader) = open_reader(g, err)? else {
        return Ok(Status::Usage);
    };
    if a.processes {
        let query = TableQuery {
            sort: a.sort,
            reverse: a.reverse,
            name: a.name,
            cgroup: a.cgroup,
            container: a.container,
            pss: a.pss,
            limit: a.limit,
            tree: a.tree,
        };
        let mut scanner = Scanner::new(reader);
        return match ptable::collect(&mut scanner, &query) {
            Ok(rows) if g.json => render::json(out, &rows).map(|_| Status::Ok),
            Ok(rows) => render::text::processes(out, &rows, query.pss, style).map(|_| Status::Ok),
            Err(e) => {
                writeln!(err, "syslens: {e}")?;
                Ok(Status::Usage)
            }
        };
    }
    let window = if reader.is_live() {
        a.window
    } else {
        Duration::ZERO
    };
    let view = SystemView::collect(&mut reader, window, a.cgroup.as_deref());
    if let Some(scope) = &view.scope {
        if !scope.exists {
            writeln!(
                err,
                "syslens: no cgroup {} (as /proc/PID/cgroup writes it, e.g. /system.slice/nginx.service)",
                render::safe::clean(&scope.path)
            )?;
            return Ok(Status::Usage);
        }
    }
    let report = system::report(view);
    if g.json {
        render::json(out, &report)?;
    } else {
        render::text::system(out, &report, style)?;
    }
    Ok(Status::Ok)
}

fn doctor_cmd(
    out: &mut dyn Write,
    err: &mut dyn Write,
    g: &Global,
    style: &Style,
    a: DoctorArgs,
) -> io::Result<Status> {
    let scope = Scope {
        pid: a.pid,
        name: a.name,
    };
    if a.store.is_some() || a.since.is_some() {
        let past = AtArgs {
            store: a.store.clone(),
            at: a.since.clone(),
        };
        let Past::Store(store) = past_store(&past, g, err)? else {
            return Ok(Status::Usage);
        };
        let Some(since) = past_time(a.since.as_deref(), "--since", err)? else {
            return Ok(Status::Usage);
        };
        let Some(until) = past_time(a.until.as_deref(), "--until", err)? else {
            return Ok(Status::Usage);
        };
        let since = since.unwrap_or(std::time::UNIX_EPOCH);
        let until = until.unwrap_or_else(std::time::SystemTime::now);
        let (report, note) = match commands::past::doctor_window(&store, since, until, scope) {
            Ok(r) => r,
            Err(e) => {
                writeln!(err, "syslens doctor: {e}")?;
                return Ok(Status::Usage);
            }
        };
        if g.json {
            if let Some(why) = &note.reboot {
                writeln!(err, "syslens doctor: {why}")?;
            }
            render::json(out, &report)?;
        } else {
            writeln!(
                out,
                "over {} recorded samples, {} to {}",
                note.samples,
                crate::record::time::local(
                    since.max(store.span().ok().flatten().map_or(since, |s| s.0))
                ),
                crate::record::time::local(until)
            )?;
            if let Some(why) = &note.reboot {
                writeln!(
                    out,
                    "{why}: the process rules read its {} samples",
                    note.samples_of_last_boot
                )?;
            }
            render::text::doctor(out, &report, style)?;
        }
        return Ok(if report.findings.iter().any(|f| f.severity >= a.fail_on) {
            Status::Failed
        } else {
            Status::Ok
        });
    }
    let Some(reader) = open_reader(g, err)? else {
        return Ok(Status::Usage);
    };
    let view = match DoctorView::collect(reader, a.window, &scope) {
        Ok(v) => v,
        Err(e) => {
            writeln!(err, "syslens: cannot read processes: {e}")?;
            return Ok(Status::Usage);
        }
    };
    if scope.pid.is_some() && view.procs.is_empty() {
        writeln!(err, "syslens: no process {}", scope.pid.unwrap_or(0))?;
        return Ok(Status::Usage);
    }
    let report = commands::doctor::report(&view);
    if g.json {
        render::json(out, &report)?;
    } else {
        render::text::doctor(out, &report, style)?;
    }
    Ok(if report.findings.iter().any(|f| f.severity >= a.fail_on) {
        Status::Failed
    } else {
        Status::Ok
    })
}

fn lab_cmd(
    out: &mut dyn Write,
    err: &mut dyn Write,
    g: &Global,
    style: &Style,
    a: LabArgs,
) -> io::Result<Status> {
    if a.list {
        let rows = REGISTRY.iter().map(|c| CatalogueRow {
            id: c.id.slug(),
            title: c.id.title(),
            summary: c.lab.summary,
        });
        write_catalogue(out, g.json, rows.collect())?;
        return Ok(Status::Ok);
    }
    let id = a.id.clone().unwrap_or_default();
    let selected = match commands::labs::select(&id) {
        Ok(labs) => labs,
        Err(unknown) => {
            writeln!(err, "syslens: {unknown}")?;
            return Ok(Status::Usage);
        }
    };
    let sets = match lab_settings(&a) {
        Ok(sets) => sets,
        Err(e) => {
            writeln!(err, "syslens lab: {e}")?;
            return Ok(Status::Usage);
        }
    };
    let opts = lab::LabOptions {
        quick: a.quick,
        sets,
        allow_swapfile: a.allow_swapfile,
    };
    let mut ctx = lab::LabContext::new(opts)?;
    let limits = ctx.limits();
    if a.params {
        let listing = commands::labs::params_listing(&selected, &limits);
        if g.json {
            match listing.as_slice() {
                [one] => render::json(out, one)?,
                all => render::json(out, &all)?,
            }
        } else {
            write_params(out, &listing, style)?;
        }
        return Ok(Status::Ok);
    }
    // Every parameter is checked before the first lab makes anything.
    let resolved =
        match lab::params::resolve_all(&selected, ctx.opts.quick, &ctx.opts.sets, &limits) {
            Ok(r) => r,
            Err(e) => {
                writeln!(err, "syslens lab: {e}")?;
                return Ok(Status::Usage);
            }
        };
    let _reaper = lab::Reaper::start();
    let mut reports = Vec::new();
    for (def, params) in selected.into_iter().zip(resolved) {
        if lab::cleanup::interrupted().is_some() {
            break;
        }
        let report = lab::run_with(def, &mut ctx, params);
        // A lab cut short by a signal has no report worth printing.
        if lab::cleanup::interrupted().is_some() {
            break;
        }
        if !g.json {
            render::text::lab(out, &report, style)?;
            out.flush()?;
        }
        reports.push(report);
    }
    if g.json {
        if reports.len() == 1 {
            render::json(out, &reports[0])?;
        } else {
            render::json(out, &reports)?;
        }
    }
    if let Some(sig) = lab::cleanup::interrupted() {
        let name = syslens_probe::names::signal_name(sig as u32);
        writeln!(
            err,
            "syslens: interrupted by {name}; what the labs made was removed"
        )?;
        return Ok(Status::Signal(sig));
    }
    Ok(if reports.iter().any(|r| r.failed()) {
        Status::Failed
    } else {
        Status::Ok
    })
}

/// `--set KEY=VALUE`, `--size` and `--trials` as the lab engine takes them.
fn lab_settings(a: &LabArgs) -> Result<Vec<lab::params::Setting>, lab::params::ParamError> {
    use lab::params::{Alias, SetKey, Setting};
    let alias = |a: Alias, v: Option<u64>| {
        v.map(|v| Setting {
            key: SetKey::Alias(a),
            value: v.to_string(),
        })
    };
    let mut sets: Vec<Setting> = [alias(Alias::Size, a.size), alias(Alias::Trials, a.trials)]
        .into_iter()
        .flatten()
        .collect();
    for s in &a.set {
        sets.push(Setting::parse(s)?);
    }
    Ok(sets)
}

/// `syslens lab ID --params` as text: per parameter its key, unit, flag, default and
/// quick value, then its range on this host, then what it changes.
fn write_params(
    out: &mut dyn Write,
    labs: &[commands::labs::LabParams],
    style: &Style,
) -> io::Result<()> {
    let width = render::width();
    for l in labs {
        // Wrapped like the rest (leaks-fragmentation's ran to 81 columns at 80).
        let head = format!(
            "{}: parameters (syslens lab {} --set KEY=VALUE)",
            l.lab, l.lab
        );
        render::write_wrapped(out, &head, width, "", "    ", |h| style.heading(h))?;
        for p in &l.params {
            let alias = p.alias.map(|a| format!(", also {a}")).unwrap_or_default();
            let line = format!(
                "{} ({}{alias})  default {}, quick {}",
                p.key, p.unit, p.shown[0], p.shown[1]
            );
            render::write_wrapped(out, &line, width, "  ", "      ", render::plain)?;
            let allowed = format!("allowed {}", p.range);
            for text in [allowed.as_str(), p.help] {
                render::write_wrapped(out, text, width, "      ", "      ", render::plain)?;
            }
        }
    }
    Ok(())
}

fn concepts(out: &mut dyn Write, g: &Global, style: &Style) -> io::Result<Status> {
    if !g.json {
        // The count from the catalogue: a new concept must not leave a stale number.
        let heading = format!("The {} concepts", CONCEPTS.len());
        writeln!(out, "{}", style.heading(&heading))?;
    }
    let rows = CONCEPTS.iter().map(|c| CatalogueRow {
        id: c.slug,
        title: c.title,
        summary: c.summary,
    });
    write_catalogue(out, g.json, rows.collect())?;
    Ok(Status::Ok)
}

/// A concept or a lab in a list.
#[derive(serde::Serialize)]
struct CatalogueRow {
    id: &'static str,
    title: &'static str,
    summary: &'static str,
}

/// The list as JSON (id, title, summary), or one line per row (id and summary).
fn write_catalogue(out: &mut dyn Write, json: bool, rows: Vec<CatalogueRow>) -> io::Result<()> {
    if json {
        return render::json(out, &rows);
    }
    let width = render::width();
    for r in rows {
        let id = format!("  {:<20} ", r.id);
        render::write_wrapped(out, r.summary, width, &id, &" ".repeat(23), render::plain)?;
    }
    Ok(())
}

/// The store a past view reads: `None` for a live view (neither --store nor --at).
/// `--root` and a store are two different pasts: refused together.
fn past_store(a: &AtArgs, g: &Global, err: &mut dyn Write) -> io::Result<Past> {
    if a.store.is_none() && a.at.is_none() {
        return Ok(Past::Live);
    }
    if g.root.is_some() {
        writeln!(
            err,
            "syslens: --root and --store/--at read two different pasts; pick one"
        )?;
        return Ok(Past::Refused);
    }
    let dir = a.store.clone().unwrap_or_else(crate::record::default_store);
    match crate::record::store::Store::open_reader(&dir) {
        Ok(s) => Ok(Past::Store(Box::new(s))),
        Err(e) => {
            writeln!(
                err,
                "syslens: {}: {e}",
                render::safe::clean(&dir.display().to_string())
            )?;
            Ok(Past::Refused)
        }
    }
}

/// Whether a view reads the live host or a store.
enum Past {
    /// No --store or --at: the live host (or --root).
    Live,
    /// The store to read.
    Store(Box<crate::record::store::Store>),
    /// Said why not; exit 2.
    Refused,
}

/// A TIME flag, read against now; `None` inside when the flag was not given, `None`
/// outside after saying why it does not parse.
fn past_time(
    text: Option<&str>,
    flag: &str,
    err: &mut dyn Write,
) -> io::Result<Option<Option<std::time::SystemTime>>> {
    let Some(text) = text else {
        return Ok(Some(None));
    };
    match crate::record::time::parse(text, std::time::SystemTime::now()) {
        Ok(t) => Ok(Some(Some(t))),
        Err(e) => {
            writeln!(err, "syslens: {flag}: {}", render::safe::clean(&e))?;
            Ok(None)
        }
    }
}

/// The replay `top --store` shows and the sample it starts at (the one at or before
/// `at`, the last without); None after saying why there is none.
fn top_replay(
    store: crate::record::store::Store,
    at: Option<&str>,
    err: &mut dyn Write,
) -> io::Result<Option<(commands::past::Replay, usize)>> {
    let Some(at) = past_time(at, "--at", err)? else {
        return Ok(None);
    };
    let replay = match commands::past::Replay::open(store) {
        Ok(r) => r,
        Err(e) => {
            writeln!(err, "syslens top: {}", render::safe::clean(&e))?;
            return Ok(None);
        }
    };
    let start = match at.map(|t| replay.index_at(t)) {
        None => replay.samples().len() - 1,
        Some(Ok(i)) => i,
        Some(Err(e)) => {
            writeln!(err, "syslens top: {}", render::safe::clean(&e))?;
            return Ok(None);
        }
    };
    Ok(Some((replay, start)))
}

/// The recorded system view, or the recorded process table with --processes.
fn system_past(
    out: &mut dyn Write,
    err: &mut dyn Write,
    g: &Global,
    style: &Style,
    a: SystemArgs,
    store: crate::record::store::Store,
) -> io::Result<Status> {
    let Some(at) = past_time(a.past.at.as_deref(), "--at", err)? else {
        return Ok(Status::Usage);
    };
    if a.processes {
        let query = TableQuery {
            sort: a.sort,
            reverse: a.reverse,
            name: a.name,
            cgroup: a.cgroup,
            container: a.container,
            pss: a.pss,
            limit: a.limit,
            tree: a.tree,
        };
        return match commands::past::processes_at(&store, at, &query) {
            Ok((rows, note)) if g.json => {
                writeln!(err, "syslens: {}", note.line)?;
                render::json(out, &rows).map(|_| Status::Ok)
            }
            Ok((rows, note)) => {
                writeln!(out, "{}", note.line)?;
                render::text::processes(out, &rows, query.pss, style).map(|_| Status::Ok)
            }
            Err(e) => {
                writeln!(err, "syslens system: {e}")?;
                Ok(Status::Usage)
            }
        };
    }
    match commands::past::system_at(&store, at, a.cgroup.as_deref()) {
        Ok((report, note)) if g.json => {
            writeln!(err, "syslens: {}", note.line)?;
            render::json(out, &report).map(|_| Status::Ok)
        }
        Ok((report, note)) => {
            writeln!(out, "{}", note.line)?;
            render::text::system(out, &report, style).map(|_| Status::Ok)
        }
        Err(e) => {
            writeln!(err, "syslens system: {e}")?;
            Ok(Status::Usage)
        }
    }
}

fn record_cmd(err: &mut dyn Write, g: &Global, a: RecordArgs) -> io::Result<Status> {
    let Some(reader) = open_reader(g, err)? else {
        return Ok(Status::Usage);
    };
    if !reader.is_live() {
        writeln!(
            err,
            "syslens record: records the live host; a captured tree does not change"
        )?;
        return Ok(Status::Usage);
    }
    let opts = crate::record::RecordOptions {
        store: a.store.unwrap_or_else(crate::record::default_store),
        interval: a.interval,
        limits: crate::record::store::Limits {
            max_size: a.max_size,
            retain: a.retain,
        },
        duration: a.duration,
        with: match crate::record::costly_kinds(&a.with) {
            Ok(k) => k,
            Err(why) => {
                writeln!(err, "syslens record: --with: {why}")?;
                return Ok(Status::Usage);
            }
        },
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [libc::SIGTERM, libc::SIGINT] {
        signal_hook::flag::register(sig, std::sync::Arc::clone(&stop))?;
    }
    match crate::record::run(&opts, reader, err, &stop) {
        Ok(r) => {
            writeln!(
                err,
                "syslens record: {} samples and {} events recorded",
                r.samples, r.events
            )?;
            Ok(Status::Ok)
        }
        Err(e @ crate::record::store::StoreError::Locked { .. }) => {
            writeln!(err, "syslens record: {e}")?;
            Ok(Status::Usage)
        }
        Err(e) => {
            writeln!(err, "syslens record: {e}")?;
            Ok(Status::Failed)
        }
    }
}

/// A recorded window's store (`--store`, else the default) and its `--since` and
/// `--until`; None when refused or unparsable (said on `err`: exit 2).
#[allow(clippy::type_complexity)] // the three parts a window command needs, once
fn window_store(
    store: Option<std::path::PathBuf>,
    since: Option<&str>,
    until: Option<&str>,
    g: &Global,
    err: &mut dyn Write,
) -> io::Result<
    Option<(
        Box<crate::record::store::Store>,
        Option<std::time::SystemTime>,
        Option<std::time::SystemTime>,
    )>,
> {
    let past = AtArgs {
        store: Some(store.unwrap_or_else(crate::record::default_store)),
        at: None,
    };
    let Past::Store(store) = past_store(&past, g, err)? else {
        return Ok(None);
    };
    let (Some(since), Some(until)) = (
        past_time(since, "--since", err)?,
        past_time(until, "--until", err)?,
    ) else {
        return Ok(None);
    };
    Ok(Some((store, since, until)))
}

fn events_cmd(
    out: &mut dyn Write,
    err: &mut dyn Write,
    g: &Global,
    a: EventsArgs,
) -> io::Result<Status> {
    let Some((store, since, until)) = window_store(
        a.store.clone(),
        a.since.as_deref(),
        a.until.as_deref(),
        g,
        err,
    )?
    else {
        return Ok(Status::Usage);
    };
    let ns = crate::record::store::unix_ns;
    let events = match store.events(
        since.map_or(0, ns),
        until.map_or(i64::MAX, ns),
        a.kind.as_deref(),
        a.pid,
    ) {
        Ok(e) => e,
        Err(e) => {
            writeln!(err, "syslens events: {e}")?;
            return Ok(Status::Usage);
        }
    };
    if g.json {
        for e in &events {
            writeln!(out, "{}", e.json)?;
        }
    } else {
        render::text::recorded_events(out, &events)?;
    }
    Ok(Status::Ok)
}

fn report_cmd(
    out: &mut dyn Write,
    err: &mut dyn Write,
    g: &Global,
    a: ReportArgs,
) -> io::Result<Status> {
    let Some((store, Some(since), until)) =
        window_store(a.store.clone(), Some(&a.since), a.until.as_deref(), g, err)?
    else {
        return Ok(Status::Usage);
    };
    let until = until.unwrap_or_else(std::time::SystemTime::now);
    let report = match commands::past::report_window(&store, since, until, usize::from(a.processes))
    {
        Ok(r) => r,
        Err(e) => {
            writeln!(err, "syslens report: {}", render::safe::clean(&e))?;
            return Ok(Status::Usage);
        }
    };
    match a.html {
        Some(path) => {
            if let Err(e) = std::fs::write(&path, render::window::html(&report)) {
                writeln!(
                    err,
                    "syslens report: cannot write {}: {e}",
                    render::safe::clean(&path.display().to_string())
                )?;
                return Ok(Status::Failed);
            }
            writeln!(
                err,
                "syslens report: {} written ({} samples, {} events)",
                render::safe::clean(&path.display().to_string()),
                report.note.samples,
                report.events.len()
            )?;
        }
        None if g.json => render::json(out, &report)?,
        None => render::window::text(out, &report)?,
    }
    Ok(Status::Ok)
}

fn open_reader(g: &Global, err: &mut dyn Write) -> io::Result<Option<Reader>> {
    let root = g.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    match Reader::new(&root) {
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            writeln!(
                err,
                "syslens: cannot read {}: {e}",
                root.join("proc").display()
            )?;
            Ok(None)
        }
    }
}

fn inspect_cmd(
    out: &mut dyn Write,
    err: &mut dyn Write,
    g: &Global,
    style: &Style,
    a: InspectArgs,
) -> io::Result<Status> {
    if let Some(store) = match past_store(&a.past, g, err)? {
        Past::Live => None,
        Past::Store(store) => Some(*store),
        Past::Refused => return Ok(Status::Usage),
    } {
        let Some(pid) = a.pid else {
            writeln!(
                err,
                "syslens inspect: --at takes a PID (names change; pids are recorded)"
            )?;
            return Ok(Status::Usage);
        };
        let Some(at) = past_time(a.past.at.as_deref(), "--at", err)? else {
            return Ok(Status::Usage);
        };
        return match commands::past::inspect_at(&store, at, pid) {
            Ok(p) if g.json => render::json(out, &p).map(|_| Status::Ok),
            Ok(p) => render::text::recorded_process(out, &p, style).map(|_| Status::Ok),
            Err(e) => {
                writeln!(err, "syslens inspect: {e}")?;
                Ok(Status::Usage)
            }
        };
    }
    let Some(mut reader) = open_reader(g, err)? else {
        return Ok(Status::Usage);
    };
    // A captured tree does not change: there is nothing to watch.
    let window = if reader.is_live() {
        a.window
    } else {
        Duration::ZERO
    };
    let (pid, others) = match (a.pid, &a.name) {
        (Some(pid), _) => (pid, Vec::new()),
        (None, Some(name)) => match pids_named(&mut reader, name) {
            Ok(pids) if !pids.is_empty() => (pids[0], pids[1..].to_vec()),
            Ok(_) => {
                writeln!(err, "syslens: no process named {name}")?;
                return Ok(Status::Usage);
            }
            Err(e) => {
                writeln!(err, "syslens: cannot list processes: {e}")?;
                return Ok(Status::Usage);
            }
        },
        (None, None) => return Ok(Status::Usage),
    };
    match inspect(
        &mut reader,
        pid,
        others,
        ViewOptions {
            window,
            smaps: !a.no_smaps,
        },
    ) {
        Ok(report) if g.json => render::json(out, &report).map(|_| Status::Ok),
        Ok(report) => render::text::inspect(out, &report, style).map(|_| Status::Ok),
        Err(Missing::Exited) => {
            writeln!(
                err,
                "syslens: no process {pid} (or it exited while it was read)"
            )?;
            Ok(Status::Usage)
        }
        Err(e) => {
            writeln!(err, "syslens: cannot inspect {pid}: {e}")?;
            Ok(Status::Usage)
        }
    }
}
