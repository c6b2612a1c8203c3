//! The command line: every clap type, the conversion of flags into the plain option
//! structs the library takes, and the one place the reader is built (the live host, or
//! the captured tree `--root` names). Every command returns an exit status; output goes
//! through one writer so a closed pipe ends quietly.

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
    long_about = "syslens provokes, measures and shows seventeen core concepts of Linux system \
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
    },
    /// Findings a person can act on, from every rule of the catalogue.
    Doctor(DoctorArgs),
    /// Run a lab: provoke a concept on this kernel, measure it, check the claims.
    Lab(LabArgs),
    /// A Prometheus exporter of what node_exporter and process-exporter miss.
    Serve(ServeArgs),
    /// The kernel's own events, live: OOM kills, signals, exits with their peaks,
    /// EMFILE, classified page faults, fsync latency, stalls (needs root).
    Watch(WatchArgs),
    /// List the seventeen concepts with their ids.
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
    /// Internal: a process with known state, for syslens's own tests.
    #[command(name = "__specimen", hide = true)]
    Specimen(specimen::SpecimenArgs),
}

/// Flags of `syslens tour`.
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
    /// Only events of this kind (repeatable): oom-kill, signal, exit, emfile, faults, ...
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
}

impl From<TourArgs> for TourOptions {
    fn from(a: TourArgs) -> TourOptions {
        TourOptions {
            quick: a.quick,
            html: a.html,
            allow_swapfile: a.allow_swapfile,
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
}

/// Flags of `syslens system`.
#[derive(Debug, Args)]
pub struct SystemArgs {
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
}

/// Flags of `syslens lab`.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// The concept id (see --list), or `all`.
    #[arg(required_unless_present = "list")]
    pub id: Option<String>,
    /// List the labs with a one-line summary.
    #[arg(long)]
    pub list: bool,
    /// Smaller sizes and fewer trials.
    #[arg(long)]
    pub quick: bool,
    /// The lab's main size in MiB (each lab says what it sizes); at most a quarter of
    /// MemAvailable, checked before anything is allocated.
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub size: Option<u64>,
    /// Number of timed trials.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=MAX_TRIALS))]
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

/// The most timed trials a lab takes: at the slowest lab's few ms a trial, minutes.
const MAX_TRIALS: u64 = 10_000;

/// A lab may allocate its size about twice over (a parent and a child, a memory jail of
/// twice the need): a quarter of MemAvailable keeps that within half of what the host
/// can give.
const SIZE_SHARE_OF_AVAILABLE: u64 = 4;

/// Checks `--size` against what this host can give, before any lab allocates.
fn check_lab_size(size_mib: Option<u64>) -> Result<(), String> {
    let Some(size) = size_mib else { return Ok(()) };
    let mut reader = Reader::host().map_err(|e| format!("cannot read /proc: {e}"))?;
    let available = reader
        .read_proc("meminfo")
        .map(syslens_probe::system::Meminfo::parse)
        .and_then(|m| m.mem_available)
        .map_err(|e| format!("--size needs MemAvailable to be bounded: {e}"))?;
    let max = (available / SIZE_SHARE_OF_AVAILABLE) >> 20;
    if size > max {
        return Err(format!(
            "--size {size} MiB: at most {max} MiB on this host (a quarter of MemAvailable, {})",
            crate::model::units::bytes(available as f64)
        ));
    }
    Ok(())
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
        Some(Command::Serve(_)) => ("serve", false, true),
        Some(Command::Watch(_)) => ("watch", true, false),
        Some(Command::Concepts) => ("concepts", true, false),
        Some(Command::Explain { .. }) => ("explain", true, false),
        Some(Command::LabChild { .. }) | Some(Command::Specimen(_)) => ("internal", true, true),
    };
    (name, Applies { json, root })
}

/// Refuses a global flag the command cannot use, with the reason (exit 2).
fn refuse_flags(g: &Global, command: &Option<Command>, err: &mut dyn Write) -> io::Result<bool> {
    let (name, ok) = applies(command);
    let why = if g.root.is_some() && !ok.root {
        match name {
            "tour" | "lab" => {
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
        Some(Command::Top { interval, events }) => {
            // ratatui panics without a terminal (cron, a pipe, ssh without -t).
            if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
                writeln!(
                    err,
                    "syslens top needs a terminal (try syslens system --processes)"
                )?;
                return Ok(Status::Usage);
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
                scope.path
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
    let id = a.id.unwrap_or_default();
    let selected = match commands::labs::select(&id) {
        Ok(labs) => labs,
        Err(unknown) => {
            writeln!(err, "syslens: {unknown}")?;
            return Ok(Status::Usage);
        }
    };
    if let Err(why) = check_lab_size(a.size) {
        writeln!(err, "syslens lab: {why}")?;
        return Ok(Status::Usage);
    }
    let opts = lab::LabOptions {
        quick: a.quick,
        size_mib: a.size,
        trials: a.trials.map(|t| t as usize),
        allow_swapfile: a.allow_swapfile,
    };
    let _reaper = lab::Reaper::start();
    let mut ctx = lab::LabContext::new(opts)?;
    let mut reports = Vec::new();
    for def in selected {
        if lab::cleanup::interrupted().is_some() {
            break;
        }
        let report = lab::run(def, &mut ctx);
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

fn concepts(out: &mut dyn Write, g: &Global, style: &Style) -> io::Result<Status> {
    if !g.json {
        writeln!(out, "{}", style.heading("The seventeen concepts"))?;
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
    for r in rows {
        writeln!(
            out,
            "  {:<20} {}",
            r.id,
            render::fit_end(r.summary, render::WIDTH - 23)
        )?;
    }
    Ok(())
}

/// The reader every command reads through: the live host, or the tree `--root` names.
/// This is the only place one is built for the commands (the lab engine builds its own:
/// a lab provokes the live kernel).
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
