//! The process table: the cheap figure of every concept for every process, fast.
//!
//! Tiers, as careful monitors do: the cheap tier (stat, status, schedstat and the fd
//! count by one stat of /proc/PID/fd) on every pass; files that rarely change (the
//! fd limit line, cgroup, oom_score) on a slower cadence when sampling repeatedly;
//! smaps_rollup only on request, because it stalls the target. The hot path reuses
//! every buffer: a steady-state pass allocates nothing per process.

use std::collections::HashMap;

use serde::Serialize;

use crate::fds::fd_count;
use crate::limits::{parse_nofile, LimitValue};
use crate::missing::{Missing, Val};
use crate::parse::{lines, InlineStr};
use crate::process::parse_oom_score;
use crate::read::{HeldFile, PidDir, Reader};
use crate::sched::{parse_schedstat, SchedStat};
use crate::smaps::MemUsage;
use crate::stat::Stat;
use crate::status::Status;

/// Index of an interned cgroup path (see [`Scanner::cgroup_path`]).
pub type CgroupId = u32;

/// One process: the cheap figures of every concept.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessRow {
    /// The process id.
    pub pid: i32,
    /// stat's command name.
    pub comm: InlineStr<64>,
    /// stat's state letter: R, S, D, Z, T, t, X, I.
    pub state: u8,
    /// stat's parent pid.
    pub ppid: i64,
    /// A kernel thread (stat's PF_KTHREAD flag): no memory, files or limits of its own.
    pub kernel_thread: bool,
    /// status's real uid.
    pub uid: Val<u64>,
    /// stat's start time, in clock ticks since boot.
    pub start_time_ticks: u64,
    /// status's VmSize, in bytes.
    pub vm_size: Val<u64>,
    /// status's VmRSS, in bytes.
    pub rss: Val<u64>,
    /// status's VmHWM (peak RSS), in bytes.
    pub hwm: Val<u64>,
    /// status's VmSwap, in bytes.
    pub swap: Val<u64>,
    /// status's RssAnon, in bytes: anonymous memory, what a leak grows.
    pub rss_anon: Val<u64>,
    /// status's RssFile, in bytes: mapped file pages (page cache the kernel can drop).
    pub rss_file: Val<u64>,
    /// status's RssShmem, in bytes: shared memory and tmpfs pages mapped.
    pub rss_shmem: Val<u64>,
    /// status's VmLck (mlocked), in bytes.
    pub locked: Val<u64>,
    /// stat's minor faults of the whole thread group.
    pub minflt: u64,
    /// stat's major faults (the ones that read from disk) of the whole thread group.
    pub majflt: u64,
    /// stat's user CPU time, in clock ticks.
    pub utime_ticks: u64,
    /// stat's system CPU time, in clock ticks.
    pub stime_ticks: u64,
    /// stat's thread count.
    pub threads: u64,
    /// stat's nice value, -20 to 19.
    pub nice: i64,
    /// status's voluntary context switches (the main thread's).
    pub voluntary_switches: Val<u64>,
    /// status's involuntary context switches (the main thread's).
    pub involuntary_switches: Val<u64>,
    /// status's SigIgn: signals the process ignores.
    pub sig_ign: Val<u64>,
    /// status's SigBlk: signals the main thread blocks.
    pub sig_blk: Val<u64>,
    /// status's ShdPnd: signals pending for the process as a whole.
    pub shd_pnd: Val<u64>,
    /// status's SigCgt: signals the process catches with a handler.
    pub sig_cgt: Val<u64>,
    /// Whether it is pid 1 of a nested PID namespace (NSpid ends in 1, more than one
    /// level): a container's init, to which the kernel drops unhandled SIGTERM.
    pub namespace_init: bool,
    /// status's NSpid, last entry: the pid inside the process's own (innermost) PID
    /// namespace (the same as `pid` on the host's).
    pub ns_pid: Val<u64>,
    /// status's NSpid, its entries: how many PID namespaces see the process (1 on the
    /// host's).
    pub ns_levels: Val<u64>,
    /// schedstat's time the main thread waited on a run queue, in ns.
    pub run_queue_wait_ns: Val<u64>,
    /// Open file descriptors.
    pub fds: Val<u64>,
    /// The soft RLIMIT_NOFILE (slow tier).
    pub fd_soft_limit: Val<LimitValue>,
    /// /proc/PID/oom_score: the OOM killer's badness now (slow tier).
    pub oom_score: Val<u64>,
    /// The memory controller's cgroup (v1), or the unified one (v2).
    #[serde(skip)]
    pub cgroup: Val<CgroupId>,
    /// smaps_rollup, only when asked for.
    pub rollup: Option<Val<MemUsage>>,
}

/// The slow tier of one process, with the pass each part was read in.
#[derive(Debug, Clone)]
struct Slow {
    limit_pass: u64,
    fd_soft_limit: Val<LimitValue>,
    placement_pass: u64,
    oom_score: Val<u64>,
    cgroup: Val<CgroupId>,
}

/// The parts of the slow tier a pass re-reads when they are due. A part left out is
/// still read when a process is first seen, and kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowParts {
    /// The soft RLIMIT_NOFILE.
    pub fd_limit: bool,
    /// oom_score and the cgroup: where the process sits.
    pub placement: bool,
}

impl SlowParts {
    /// Both parts, every time they are due.
    pub const ALL: SlowParts = SlowParts {
        fd_limit: true,
        placement: true,
    };
}

impl ProcessRow {
    /// A row with the figures of status; the rest is filled by [`ProcessRow::set_stat`]
    /// and the scan (the placeholders below never reach a caller).
    fn with_status(pid: i32, s: Status) -> ProcessRow {
        ProcessRow {
            pid,
            comm: InlineStr::default(),
            state: 0,
            ppid: 0,
            kernel_thread: false,
            uid: s.uid_real,
            start_time_ticks: 0,
            vm_size: s.vm_size,
            rss: s.vm_rss,
            hwm: s.vm_hwm,
            swap: s.vm_swap,
            rss_anon: s.rss_anon,
            rss_file: s.rss_file,
            rss_shmem: s.rss_shmem,
            locked: s.vm_lck,
            minflt: 0,
            majflt: 0,
            utime_ticks: 0,
            stime_ticks: 0,
            threads: 0,
            nice: 0,
            voluntary_switches: s.voluntary_ctxt_switches,
            involuntary_switches: s.nonvoluntary_ctxt_switches,
            sig_ign: s.sig_ign,
            sig_blk: s.sig_blk,
            shd_pnd: s.shd_pnd,
            sig_cgt: s.sig_cgt,
            namespace_init: matches!(s.ns_pid, Ok(1)) && matches!(s.ns_levels, Ok(n) if n > 1),
            ns_pid: s.ns_pid,
            ns_levels: s.ns_levels,
            run_queue_wait_ns: Err(Missing::Exited),
            fds: Err(Missing::Exited),
            fd_soft_limit: Err(Missing::Exited),
            oom_score: Err(Missing::Exited),
            cgroup: Err(Missing::Exited),
            rollup: None,
        }
    }

    fn set_stat(&mut self, stat: &Stat) {
        self.comm = stat.comm;
        self.state = stat.state;
        self.ppid = stat.ppid;
        self.kernel_thread = stat.is_kernel_thread();
        self.start_time_ticks = stat.start_time_ticks;
        self.minflt = stat.minflt;
        self.majflt = stat.majflt;
        self.utime_ticks = stat.utime_ticks;
        self.stime_ticks = stat.stime_ticks;
        self.threads = stat.num_threads;
        self.nice = stat.nice;
    }

    fn set_slow(&mut self, slow: &Slow) {
        self.fd_soft_limit = slow.fd_soft_limit.clone();
        self.oom_score = slow.oom_score.clone();
        self.cgroup = slow.cgroup.clone();
    }
}

/// Every sign that a process ran or its memory changed. stat covers the whole thread
/// group (exact fault counts, run time in ticks, threads, RSS and size); schedstat the
/// main thread (run time in ns and times scheduled, which catch runs too short to add
/// a tick). Growing the RSS or its peak takes faults, a context switch takes a run,
/// reclaim and swap-out change the RSS: while these stay equal, status cannot have
/// changed, except what another process changes without the target running (pending
/// signals) and reclaim too small to move stat's RSS (the kernel's per-CPU counter,
/// folded every 32 pages or so per CPU; status sums it exactly), which `idle_every`
/// bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Activity {
    stat: [u64; 6],
    sched: Option<Ran>,
}

/// The main thread's run time and times scheduled, from schedstat. Absent when the
/// kernel reports zeros (sched_info off): no evidence either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ran(u64, u64);

impl Ran {
    fn of(sched: &Val<SchedStat>) -> Option<Ran> {
        match sched {
            Ok(s) if s.run_ns > 0 => Some(Ran(s.run_ns, s.slices)),
            _ => None,
        }
    }
}

impl Activity {
    fn of(stat: &Stat, sched: Option<Ran>) -> Activity {
        Activity {
            stat: [
                stat.minflt,
                stat.majflt,
                stat.utime_ticks.wrapping_add(stat.stime_ticks),
                stat.num_threads,
                stat.rss_pages,
                stat.vsize_bytes,
            ],
            sched,
        }
    }
}

/// The last row of a process, with what it looked like when status was read.
#[derive(Debug)]
struct Last {
    status_pass: u64,
    activity: Activity,
    kthread: bool,
    row: ProcessRow,
}

/// The files a scan may keep open, in the order of [`Open::files`]: the cheap tier,
/// and the placement part of the slow tier.
#[derive(Debug, Clone, Copy)]
enum ProcFile {
    Stat,
    Status,
    Schedstat,
    OomScore,
    Cgroup,
}

impl ProcFile {
    fn name(self) -> &'static str {
        match self {
            ProcFile::Stat => "stat",
            ProcFile::Status => "status",
            ProcFile::Schedstat => "schedstat",
            ProcFile::OomScore => "oom_score",
            ProcFile::Cgroup => "cgroup",
        }
    }
}

/// An open /proc/PID and, when the scan keeps files open, the files it has read.
#[derive(Debug)]
struct Open {
    dir: PidDir,
    files: [Option<HeldFile>; 5],
    fd_dir: Option<HeldFile>,
}

/// Passes for which what is known about a process not seen is kept.
const UNSEEN_KEPT_PASSES: u64 = 4;

/// File descriptors one kept process costs at most: its directory, five files, fd/.
const FDS_PER_KEPT: u64 = 7;

impl Open {
    fn new(dir: PidDir) -> Open {
        Open {
            dir,
            files: [None, None, None, None, None],
            fd_dir: None,
        }
    }

    fn is_kept(&self) -> bool {
        self.files.iter().any(Option::is_some)
    }

    /// Reads a file: in place when held, else opening it, and holding it when `keep`.
    fn read<'r>(&mut self, reader: &'r mut Reader, file: ProcFile, keep: bool) -> Val<&'r [u8]> {
        let slot = &mut self.files[file as usize];
        if slot.is_none() && keep {
            *slot = Some(reader.hold_pid(&self.dir, file.name())?);
        }
        match slot {
            Some(held) => reader.reread(&self.dir, held, file.name()),
            None => reader.read_pid(&self.dir, file.name()),
        }
    }

    fn fd_count(&mut self, reader: &Reader, keep: bool, scratch: &mut Vec<i32>) -> Val<u64> {
        if self.fd_dir.is_none() && keep && reader.is_live() {
            // Unreadable (another user's process) stays unheld: the stat below then
            // reports why.
            self.fd_dir = reader.hold_pid(&self.dir, "fd").ok();
        }
        fd_count(reader, &self.dir, self.fd_dir.as_ref(), scratch)
    }
}

/// What the scanner knows about one process between passes.
#[derive(Debug, Default)]
struct Known {
    seen_pass: u64,
    slow: Option<Slow>,
    last: Option<Last>,
    open: Option<Open>,
}

/// Options of one pass.
#[derive(Debug, Clone, Copy)]
pub struct ScanOptions {
    /// Read smaps_rollup of every process (expensive for the targets).
    pub rollup: bool,
    /// Re-read the slow tier when it is this many passes old (1 = every pass).
    pub slow_every: u64,
    /// Which parts of the slow tier are re-read (a monitor reads what it shows).
    pub slow_parts: SlowParts,
    /// Keep each process's stat, status, schedstat and fd directory (and oom_score and
    /// cgroup, when the placement part is re-read) open between passes and re-read
    /// them in place: for monitors that scan repeatedly. At most
    /// half the soft RLIMIT_NOFILE is spent on them; processes beyond that are read
    /// by opening their files, as without this option.
    pub keep_open: bool,
    /// For a process that shows no sign of having run since its figures were read,
    /// re-read them only when they are this many passes old (1 = every pass). Signs
    /// of running: for a single-threaded process, its schedstat (run time in ns and
    /// times scheduled; then nothing else is read); otherwise stat's run time, faults,
    /// threads, RSS and size (then status is not read). Most processes of a host
    /// sleep through most refreshes, and status is the costliest file of the tier.
    /// What another process can change without the target running (its nice, its
    /// parent after a reparent, signals pending for it) can lag by this many passes.
    pub idle_every: u64,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            rollup: false,
            slow_every: 1,
            slow_parts: SlowParts::ALL,
            keep_open: false,
            idle_every: 1,
        }
    }
}

/// Scans /proc repeatedly with reused buffers.
#[derive(Debug)]
pub struct Scanner {
    reader: Reader,
    pids: Vec<i32>,
    scratch: Vec<i32>,
    rows: Vec<ProcessRow>,
    known: HashMap<i32, Known>,
    /// Processes whose files are kept open.
    kept: u64,
    cgroup_ids: HashMap<Box<[u8]>, CgroupId>,
    cgroup_paths: Vec<String>,
    /// Counts the changes of `cgroup_paths`: an interned path, a compaction.
    cgroup_epoch: u64,
    pass: u64,
}

/// Interned cgroup paths are compacted only beyond this many: below it the list
/// costs less than renumbering.
const CGROUPS_KEPT_BEFORE_COMPACTING: usize = 1024;

impl Scanner {
    /// A scanner over `reader`'s /proc, with nothing known yet.
    pub fn new(reader: Reader) -> Scanner {
        Scanner {
            reader,
            pids: Vec::with_capacity(1024),
            scratch: Vec::new(),
            rows: Vec::with_capacity(1024),
            known: HashMap::with_capacity(1024),
            kept: 0,
            cgroup_ids: HashMap::new(),
            cgroup_paths: Vec::new(),
            cgroup_epoch: 0,
            pass: 0,
        }
    }

    /// The reader the scanner reads through.
    pub fn reader(&mut self) -> &mut Reader {
        &mut self.reader
    }

    /// The paths of the interned cgroups, indexed by the ids of the last pass's rows.
    /// Paths no process is in any more are dropped once they outnumber the others
    /// (and there are over a thousand), renumbering the ids: an id is good until the
    /// next pass, and [`Scanner::cgroup_epoch`] says when to look again.
    pub fn cgroup_paths(&self) -> &[String] {
        &self.cgroup_paths
    }

    /// A number that changes whenever [`Scanner::cgroup_paths`] does.
    pub fn cgroup_epoch(&self) -> u64 {
        self.cgroup_epoch
    }

    /// The path of an interned cgroup.
    pub fn cgroup_path(&self, id: CgroupId) -> &str {
        self.cgroup_paths
            .get(id as usize)
            .map_or("?", String::as_str)
    }

    /// One pass over every process in /proc.
    pub fn scan(&mut self, opts: ScanOptions) -> Val<&[ProcessRow]> {
        let mut pids = std::mem::take(&mut self.pids);
        let listed = self.reader.pids(&mut pids);
        self.pids = pids;
        listed?;
        self.scan_listed(opts);
        Ok(&self.rows)
    }

    /// One pass over the given processes only.
    pub fn scan_pids(&mut self, pids: &[i32], opts: ScanOptions) -> &[ProcessRow] {
        self.pids.clear();
        self.pids.extend_from_slice(pids);
        self.scan_listed(opts);
        &self.rows
    }

    fn scan_listed(&mut self, opts: ScanOptions) {
        self.pass += 1;
        self.rows.clear();
        let keep_budget = if opts.keep_open {
            fd_soft_limit_of_self() / 2 / FDS_PER_KEPT
        } else {
            0
        };
        for i in 0..self.pids.len() {
            let pid = self.pids[i];
            // A process that left between the listing and its read is simply not in
            // this pass; any other failure still yields a row with the reasons.
            match self.read_one(pid, opts, keep_budget) {
                Ok(row) => self.rows.push(row),
                Err(Missing::Exited) => {
                    self.known.remove(&pid);
                }
                Err(_) => {}
            }
        }
        // Files of processes not seen this pass are closed now; what was read is kept
        // a few passes longer for callers that scan changing subsets.
        let pass = self.pass;
        let mut kept = 0;
        self.known.retain(|_, k| {
            if k.seen_pass != pass {
                k.open = None;
            }
            kept += u64::from(k.open.is_some());
            pass - k.seen_pass <= UNSEEN_KEPT_PASSES
        });
        self.kept = kept;
        self.compact_cgroups();
    }

    /// Drops the interned paths of cgroups that no known process is in once they
    /// outnumber those in use: a host that makes a cgroup per job (systemd scopes,
    /// pods, CI runners) would otherwise grow the list for as long as a monitor runs.
    fn compact_cgroups(&mut self) {
        let interned = self.cgroup_paths.len();
        if interned <= CGROUPS_KEPT_BEFORE_COMPACTING {
            return;
        }
        let mut used = vec![false; interned];
        for id in cgroup_ids_in_use(&mut self.known, &mut self.rows) {
            if let Some(u) = used.get_mut(*id as usize) {
                *u = true;
            }
        }
        if used.iter().filter(|u| **u).count() * 2 >= interned {
            return;
        }
        let renumbered = compact(&mut self.cgroup_ids, &mut self.cgroup_paths, &used);
        for id in cgroup_ids_in_use(&mut self.known, &mut self.rows) {
            *id = renumbered[*id as usize];
        }
        self.cgroup_epoch += 1;
    }

    fn read_one(&mut self, pid: i32, opts: ScanOptions, keep_budget: u64) -> Val<ProcessRow> {
        let Scanner {
            reader,
            scratch,
            known,
            kept,
            cgroup_ids,
            cgroup_paths,
            cgroup_epoch,
            pass,
            ..
        } = self;
        let pass = *pass;
        let idle_every = opts.idle_every.max(1);
        let entry = known.entry(pid).or_default();
        entry.seen_pass = pass;
        let was_kept = entry.open.is_some();
        let keep = opts.keep_open && (was_kept || *kept < keep_budget);
        let mut open = match entry.open.take() {
            Some(open) => open,
            None => Open::new(reader.open_pid(pid)?),
        };
        let sched = match open.read(reader, ProcFile::Schedstat, keep) {
            // Held files of a process that exited; the PID may have a new owner.
            Err(Missing::Exited) if was_kept => {
                open = Open::new(reader.open_pid(pid)?);
                open.read(reader, ProcFile::Schedstat, keep)
            }
            read => read,
        }
        .and_then(parse_schedstat);
        let ran = Ran::of(&sched);
        // A single-threaded process whose only thread has not run: nothing in its
        // stat, status or fd table can have changed.
        let quiet = entry.last.as_ref().filter(|last| {
            !opts.rollup
                && last.row.threads == 1
                && ran.is_some()
                && ran == last.activity.sched
                && pass - last.status_pass < idle_every
        });
        let (mut row, kthread) = match quiet {
            Some(last) => (last.row.clone(), last.kthread),
            None => {
                let stat = open
                    .read(reader, ProcFile::Stat, keep)
                    .and_then(Stat::parse)?;
                if stat.pid != i64::from(pid) {
                    return Err(Missing::malformed(
                        "stat",
                        "pid field differs from the directory",
                    ));
                }
                let start = entry.last.as_ref().map(|l| l.row.start_time_ticks);
                if start != Some(stat.start_time_ticks) {
                    // A new process under a known PID, or one whose last read failed:
                    // nothing known applies.
                    *entry = Known {
                        seen_pass: pass,
                        ..Known::default()
                    };
                }
                let activity = Activity::of(&stat, ran);
                let (status_pass, mut row) = match entry.last.take() {
                    // The status figures still hold.
                    Some(last)
                        if last.activity == activity && pass - last.status_pass < idle_every =>
                    {
                        (last.status_pass, last.row)
                    }
                    _ => {
                        let status = Status::parse(open.read(reader, ProcFile::Status, keep)?);
                        (pass, ProcessRow::with_status(pid, status))
                    }
                };
                row.set_stat(&stat);
                let kthread = stat.is_kernel_thread();
                row.fds = if kthread {
                    Err(KTHREAD)
                } else {
                    open.fd_count(reader, keep, scratch)
                };
                row.rollup = opts
                    .rollup
                    .then(|| MemUsage::read_rollup(reader, &open.dir));
                entry.last = Some(Last {
                    status_pass,
                    activity,
                    kthread,
                    row: row.clone(),
                });
                (row, kthread)
            }
        };
        row.run_queue_wait_ns = sched.map(|s| s.wait_ns);
        let due = |read_in: u64, wanted: bool| wanted && pass - read_in >= opts.slow_every.max(1);
        // Placement files are held only by a scan that reads them again.
        let keep_placement = keep && opts.slow_parts.placement;
        // Both parts are read when a process is first seen.
        let first_sight = entry.slow.is_none();
        let slow = entry.slow.get_or_insert(Slow {
            limit_pass: pass,
            fd_soft_limit: Err(Missing::Exited),
            placement_pass: pass,
            oom_score: Err(Missing::Exited),
            cgroup: Err(Missing::Exited),
        });
        if first_sight || due(slow.limit_pass, opts.slow_parts.fd_limit) {
            slow.fd_soft_limit = read_fd_limit(reader, &open.dir, kthread);
            slow.limit_pass = pass;
        }
        if first_sight || due(slow.placement_pass, opts.slow_parts.placement) {
            let interned = cgroup_paths.len();
            (slow.oom_score, slow.cgroup) = read_placement(
                reader,
                &mut open,
                keep_placement,
                kthread,
                cgroup_ids,
                cgroup_paths,
            );
            *cgroup_epoch += u64::from(cgroup_paths.len() != interned);
            slow.placement_pass = pass;
        }
        row.set_slow(slow);
        if keep && open.is_kept() {
            *kept += u64::from(!was_kept);
            entry.open = Some(open);
        }
        Ok(row)
    }
}

/// The soft RLIMIT_NOFILE: by prlimit(2) where allowed, else from the limits file.
fn read_fd_limit(reader: &mut Reader, dir: &PidDir, kthread: bool) -> Val<LimitValue> {
    if kthread {
        return Err(KTHREAD);
    }
    match reader
        .is_live()
        .then(|| nofile_by_prlimit(dir.pid))
        .flatten()
    {
        Some(soft) => Ok(soft),
        None => reader
            .read_pid(dir, "limits")
            .and_then(parse_nofile)
            .map(|(soft, _)| soft),
    }
}

/// oom_score and the cgroup of interest.
fn read_placement(
    reader: &mut Reader,
    open: &mut Open,
    keep: bool,
    kthread: bool,
    cgroup_ids: &mut HashMap<Box<[u8]>, CgroupId>,
    cgroup_paths: &mut Vec<String>,
) -> (Val<u64>, Val<CgroupId>) {
    let oom_score = if kthread {
        Err(KTHREAD)
    } else {
        open.read(reader, ProcFile::OomScore, keep)
            .and_then(parse_oom_score)
    };
    let cgroup = open
        .read(reader, ProcFile::Cgroup, keep)
        .map(|b| intern(cgroup_ids, cgroup_paths, cgroup_of_interest(b)));
    (oom_score, cgroup)
}

/// Our own soft RLIMIT_NOFILE (a large stand-in when unlimited).
fn fd_soft_limit_of_self() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1 << 20)
}

/// Raises our own soft RLIMIT_NOFILE to the hard limit, for monitors that keep many
/// processes' files open (see [`ScanOptions::keep_open`]). Only the soft limit of
/// this process moves, as far as its hard limit allows; nothing else changes.
pub fn raise_fd_limit() {
    let mut lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if lim.current != lim.maximum {
        lim.current = lim.maximum;
        // Failure only leaves the limit as it was: fewer processes are kept open.
        let _ = rustix::process::setrlimit(rustix::process::Resource::Nofile, lim);
    }
}

const KTHREAD: Missing = Missing::NotApplicable {
    why: "kernel thread",
};

/// The soft RLIMIT_NOFILE of another process by prlimit(2): one system call instead
/// of the kernel formatting all sixteen lines of /proc/PID/limits. Allowed for
/// processes of the same user (or with CAP_SYS_RESOURCE); None sends the caller to
/// the file.
fn nofile_by_prlimit(pid: i32) -> Option<LimitValue> {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a null new limit only reads; `old` is a valid out pointer.
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, std::ptr::null(), &mut old) };
    let soft = if old.rlim_cur == libc::RLIM_INFINITY {
        LimitValue::Unlimited
    } else {
        LimitValue::Value(old.rlim_cur)
    };
    (rc == 0).then_some(soft)
}

/// The cgroup line that says most about memory: the v1 memory controller's, else the
/// unified (v2) line's. Borrowed from the buffer; no allocation.
fn cgroup_of_interest(buf: &[u8]) -> &[u8] {
    let mut unified: &[u8] = b"?";
    for line in lines(buf) {
        let mut parts = line.splitn(3, |&b| b == b':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if ctrls.split(|&b| b == b',').any(|c| c == b"memory") {
            return path;
        }
        if ctrls.is_empty() {
            unified = path;
        }
    }
    unified
}

fn intern(
    ids: &mut HashMap<Box<[u8]>, CgroupId>,
    paths: &mut Vec<String>,
    path: &[u8],
) -> CgroupId {
    if let Some(&id) = ids.get(path) {
        return id;
    }
    let id = paths.len() as CgroupId;
    paths.push(String::from_utf8_lossy(path).into_owned());
    ids.insert(path.into(), id);
    id
}

/// Every cgroup id the scanner holds: in what it knows of each process, and in the
/// rows of the last pass.
fn cgroup_ids_in_use<'a>(
    known: &'a mut HashMap<i32, Known>,
    rows: &'a mut [ProcessRow],
) -> impl Iterator<Item = &'a mut CgroupId> {
    known
        .values_mut()
        .filter_map(|k| k.slow.as_mut()?.cgroup.as_mut().ok())
        .chain(rows.iter_mut().filter_map(|r| r.cgroup.as_mut().ok()))
}

/// Keeps the paths whose id is `used`, in their order, and returns each old id's new
/// one (an unused id maps to 0: nothing names it).
fn compact(
    ids: &mut HashMap<Box<[u8]>, CgroupId>,
    paths: &mut Vec<String>,
    used: &[bool],
) -> Vec<CgroupId> {
    let mut renumbered = vec![0; paths.len()];
    let mut next = 0;
    for (old, keep) in used.iter().enumerate() {
        if *keep {
            renumbered[old] = next;
            next += 1;
        }
    }
    let mut old = 0;
    paths.retain(|_| {
        old += 1;
        used.get(old - 1).copied().unwrap_or(false)
    });
    ids.retain(|_, id| used.get(*id as usize).copied().unwrap_or(false));
    for id in ids.values_mut() {
        *id = renumbered[*id as usize];
    }
    renumbered
}

/// Usage of the fd soft limit, 0-1, when both are known and the limit is finite.
pub fn fd_ratio(row: &ProcessRow) -> Option<f64> {
    match (&row.fds, &row.fd_soft_limit) {
        (Ok(n), Ok(LimitValue::Value(l))) if *l > 0 => Some(*n as f64 / *l as f64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// issue 17: interned paths of cgroups gone are dropped, the rest renumbered in
    /// order, and each kept path still found by its bytes.
    #[test]
    fn issue_17_compacting_cgroups_keeps_the_used_paths_in_order() {
        let (mut ids, mut paths) = (HashMap::new(), Vec::new());
        for p in ["/a", "/gone1", "/b", "/gone2", "/c"] {
            intern(&mut ids, &mut paths, p.as_bytes());
        }
        let renumbered = compact(&mut ids, &mut paths, &[true, false, true, false, true]);
        assert_eq!(paths, ["/a", "/b", "/c"]);
        assert_eq!((renumbered[0], renumbered[2], renumbered[4]), (0, 1, 2));
        assert_eq!(intern(&mut ids, &mut paths, b"/c"), 2);
        assert_eq!(intern(&mut ids, &mut paths, b"/gone1"), 3, "a new id");
        assert_eq!(paths.len(), 4);
    }

    /// issue 17: a scanner over many short-lived cgroups keeps a bounded list, and its
    /// rows' ids still name their paths.
    #[test]
    fn issue_17_the_scanners_cgroup_list_is_bounded() {
        let mut s = Scanner::new(Reader::host().unwrap());
        let me = std::process::id() as i32;
        s.scan_pids(&[me], ScanOptions::default());
        let mine = s
            .cgroup_path(*s.rows[0].cgroup.as_ref().unwrap())
            .to_owned();
        // Cgroups of processes long gone, as a day of systemd scopes leaves them.
        for i in 0..5000 {
            intern(
                &mut s.cgroup_ids,
                &mut s.cgroup_paths,
                format!("/run-{i}.scope").as_bytes(),
            );
        }
        let epoch = s.cgroup_epoch();
        let rows = s.scan_pids(&[me], ScanOptions::default());
        let id = *rows[0].cgroup.as_ref().unwrap();
        assert!(
            s.cgroup_paths().len() <= CGROUPS_KEPT_BEFORE_COMPACTING,
            "{}",
            s.cgroup_paths().len()
        );
        assert_eq!(s.cgroup_path(id), mine);
        assert_ne!(s.cgroup_epoch(), epoch, "a compaction changes the epoch");
    }

    #[test]
    fn picks_memory_line_then_unified() {
        assert_eq!(
            cgroup_of_interest(b"9:name=systemd:/\n4:memory:/app\n0::/\n"),
            b"/app"
        );
        assert_eq!(
            cgroup_of_interest(b"0::/system.slice/x.service\n"),
            b"/system.slice/x.service"
        );
        assert_eq!(cgroup_of_interest(b"garbage"), b"?");
    }

    /// `slow_every: u64::MAX` (never refresh) overflowed the cache pruning.
    #[test]
    fn regression_slow_every_max_does_not_overflow() {
        let mut s = Scanner::new(Reader::host().unwrap());
        let me = std::process::id() as i32;
        s.scan_pids(&[me], ScanOptions::default());
        let rows = s.scan_pids(
            &[me],
            ScanOptions {
                slow_every: u64::MAX,
                idle_every: u64::MAX,
                keep_open: true,
                ..ScanOptions::default()
            },
        );
        assert_eq!(rows.len(), 1);
    }

    /// With `slow_every: u64::MAX` the cache was kept for u64::MAX passes: what was
    /// known about every process that ever lived stayed in memory.
    #[test]
    fn regression_exited_processes_are_forgotten_with_slow_every_max() {
        let mut s = Scanner::new(Reader::host().unwrap());
        let opts = ScanOptions {
            slow_every: u64::MAX,
            keep_open: true,
            ..ScanOptions::default()
        };
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let me = std::process::id() as i32;
        assert_eq!(s.scan_pids(&[pid, me], opts).len(), 2);
        assert!(s.known.contains_key(&pid) && s.kept == 2);
        // Not listed any more (as when a scan of /proc no longer sees it).
        for _ in 0..=UNSEEN_KEPT_PASSES {
            assert_eq!(s.scan_pids(&[me], opts).len(), 1);
        }
        assert!(
            !s.known.contains_key(&pid),
            "an unlisted process is still known"
        );
        assert_eq!(s.kept, 1, "its files are still open");
        // Listed but gone: forgotten at once, its held files closed.
        assert_eq!(s.scan_pids(&[pid, me], opts).len(), 2);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(s.scan_pids(&[pid, me], opts).len(), 1);
        assert!(
            !s.known.contains_key(&pid),
            "an exited process is still known"
        );
        assert_eq!(s.kept, 1);
    }

    /// Odd /proc content must not panic the collector: the sum of two huge tick
    /// counts overflowed.
    #[test]
    fn regression_huge_cpu_times_do_not_overflow_the_activity() {
        let line = format!(
            "1 (x) S 0 1 1 0 -1 0 0 0 0 0 {m} {m} 0 0 20 0 1 0 5 0 0",
            m = u64::MAX
        );
        let stat = Stat::parse(line.as_bytes()).unwrap();
        assert_ne!(
            Activity::of(&stat, None),
            Activity::of(
                &Stat {
                    utime_ticks: 0,
                    ..stat.clone()
                },
                None
            )
        );
    }

    #[test]
    fn only_the_wanted_slow_parts_are_read_again() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let everything = ScanOptions {
            keep_open: true,
            ..ScanOptions::default()
        };
        let limits_only = ScanOptions {
            slow_parts: SlowParts {
                fd_limit: true,
                placement: false,
            },
            ..everything
        };
        let mut s = Scanner::new(Reader::host().unwrap());
        let first = s.scan_pids(&[pid], limits_only)[0].clone();
        // Another process lowers its soft fd limit and raises its oom_score_adj.
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: reads, then writes, a valid rlimit of our own child.
        unsafe {
            assert_eq!(
                libc::prlimit(pid, libc::RLIMIT_NOFILE, std::ptr::null(), &mut lim),
                0
            );
            lim.rlim_cur = 50;
            assert_eq!(
                libc::prlimit(pid, libc::RLIMIT_NOFILE, &lim, std::ptr::null_mut()),
                0
            );
        }
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), "500").unwrap();
        let second = s.scan_pids(&[pid], limits_only)[0].clone();
        let third = s.scan_pids(&[pid], everything)[0].clone();
        // Now read through the held oom_score file.
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), "900").unwrap();
        let fourth = s.scan_pids(&[pid], everything)[0].clone();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(second.fd_soft_limit, Ok(LimitValue::Value(50)));
        assert_eq!(
            second.oom_score, first.oom_score,
            "placement was read again"
        );
        assert!(third.oom_score.clone().unwrap() > first.oom_score.unwrap());
        assert!(fourth.oom_score.unwrap() > third.oom_score.unwrap());
    }

    #[test]
    fn prlimit_agrees_with_the_limits_file() {
        let me = std::process::id() as i32;
        let file = std::fs::read("/proc/self/limits").unwrap();
        let (soft, _) = parse_nofile(&file).unwrap();
        assert_eq!(nofile_by_prlimit(me), Some(soft));
        // PIDs above pid_max never exist.
        assert_eq!(nofile_by_prlimit(i32::MAX), None);
    }

    #[test]
    fn kernel_threads_have_no_fd_figures() {
        let mut s = Scanner::new(Reader::host().unwrap());
        let me = std::process::id() as i32;
        let rows = s.scan_pids(&[2, me], ScanOptions::default());
        assert_eq!(rows[0].fds.clone().unwrap_err().kind(), "not_applicable");
        assert_eq!(rows[0].oom_score.clone().unwrap_err(), KTHREAD);
        assert!(rows[0].kernel_thread, "kthreadd is a kernel thread");
        assert!(!rows[1].kernel_thread, "this test is not");
    }

    #[test]
    fn scans_self_live() {
        let mut s = Scanner::new(Reader::host().unwrap());
        let me = std::process::id() as i32;
        let rows = s.scan(ScanOptions::default()).unwrap();
        let row = rows.iter().find(|r| r.pid == me).unwrap();
        assert!(row.rss.clone().unwrap() > 0);
        assert!(row.fds.clone().unwrap() >= 3);
        assert!(row.cgroup.is_ok());
    }
}
