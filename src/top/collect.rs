//! The collector thread: one pass over /proc per refresh, sent to the UI loop over a
//! channel. The cheap tier every refresh, with each process's files kept open and
//! processes that did not run since the last pass read from their schedstat alone;
//! the slow tier (fd limit, cgroup, oom_score) every SLOW_EVERY refreshes while a
//! view shows it;
//! deleted-open files and namespaces slower still and only while their view is shown;
//! PSS only while the user asks for it, because smaps_rollup costs each target.
//! The header's figures (each CPU's ticks, load, uptime, pressure, meminfo) every
//! refresh; user names from the tree's etc/passwd at the slowest cadence.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use syslens_probe::cgroup::CgroupLayout;
use syslens_probe::fds::deleted_count;
use syslens_probe::kmsg::uptime;
use syslens_probe::locks::parse_locks;
use syslens_probe::names::parse_passwd;
use syslens_probe::ns::{initial_namespaces, kernel_version, parse_ns_link};
use syslens_probe::psi::{parse_psi, Psi};
use syslens_probe::system::{
    parse_buddyinfo, parse_cpus, parse_loadavg, parse_slabinfo, BuddyZone, CpuTicks, Meminfo,
    SlabCache,
};
use syslens_probe::table::{CgroupId, ProcessRow, ScanOptions, Scanner, SlowParts};
use syslens_probe::{Files, Reader, Val};

/// Refreshes between re-reads of the slow tier.
pub const SLOW_EVERY: u64 = 5;
/// Refreshes between listings of every process's fds and namespaces (a readlink per fd
/// and per namespace: the most expensive part of a pass).
const SLOWEST_EVERY: u64 = 30;
/// The namespaces the isolation view compares (a container differs in these).
const NS_KINDS: [&str; 4] = ["pid", "net", "mnt", "uts"];
/// Slab caches kept, largest first: more than the tallest pane shows.
const SLABS_KEPT: usize = 100;

/// One refresh. The parts that change rarely are shared with the previous sample
/// (Arc) rather than copied each refresh.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When the pass started.
    pub at: Instant,
    /// One row per process, from the scanner's pass.
    pub rows: Vec<ProcessRow>,
    /// Paths of the cgroup ids in the rows.
    pub cgroup_paths: Arc<[String]>,
    /// What each cgroup id names, by the same index: a container ("3f2a9c1b7d4e docker")
    /// or a systemd unit, empty for neither.
    pub containers: Arc<[String]>,
    /// The memory limit binding each cgroup id (the lowest up its chain) and what the
    /// cgroup that sets it uses against it, read at the slow cadence while the
    /// isolation view is shown.
    pub mem_limits: Arc<HashMap<CgroupId, (u64, Option<u64>)>>,
    /// The CPUs and the pids limit binding each cgroup id, read with `mem_limits`.
    pub cpu_pids: Arc<HashMap<CgroupId, CpuPids>>,
    /// /proc/meminfo.
    pub meminfo: Val<Meminfo>,
    /// /proc/pressure/{cpu,memory,io}, in that order.
    pub psi: [Val<Psi>; 3],
    /// Each online CPU's ticks (/proc/stat): busy shares come from two samples.
    pub cpus: Val<Vec<CpuTicks>>,
    /// /proc/loadavg: 1, 5 and 15 minutes.
    pub loadavg: Val<[f64; 3]>,
    /// /proc/uptime.
    pub uptime: Val<Duration>,
    /// User names by uid, from the tree's etc/passwd (empty when unreadable), read
    /// every SLOWEST_EVERY passes.
    pub users: Arc<HashMap<u32, String>>,
    /// The zone with the most free pages (buddyinfo), read every SLOW_EVERY passes.
    pub zone: Arc<Option<BuddyZone>>,
    /// The largest slab caches by bytes (slabinfo, root only), largest first, read
    /// every SLOW_EVERY passes.
    pub slabs: Arc<[SlabCache]>,
    /// pid -> (file locks held, awaited)
    pub locks: HashMap<i64, (u32, u32)>,
    /// pid -> deleted-but-open files (absent = not known yet)
    pub deleted_open: Arc<HashMap<i32, u32>>,
    /// pid -> namespaces that differ from the initial ones
    pub isolated: Arc<HashMap<i32, Vec<&'static str>>>,
    /// pids the kernel log reports as OOM-killed since the previous refresh
    pub oom_killed: Vec<u64>,
    /// CPU time this collector used for the pass, ns.
    pub pass_cpu_ns: u64,
}

impl Sample {
    /// The cgroup path of a row, when its cgroup was read.
    pub fn cgroup_path(&self, row: &ProcessRow) -> Option<&str> {
        let id = *row.cgroup.as_ref().ok()?;
        self.cgroup_paths.get(id as usize).map(String::as_str)
    }

    /// The container or unit a row's cgroup names.
    pub fn container(&self, row: &ProcessRow) -> Option<&str> {
        let id = *row.cgroup.as_ref().ok()?;
        self.containers
            .get(id as usize)
            .map(String::as_str)
            .filter(|c| !c.is_empty())
    }

    /// The memory limit binding a row's cgroup, and the setter's usage.
    pub fn mem_limit(&self, row: &ProcessRow) -> Option<(u64, Option<u64>)> {
        self.mem_limits.get(row.cgroup.as_ref().ok()?).copied()
    }

    /// The CPUs and pids limit binding a row's cgroup.
    pub fn cpu_pids(&self, row: &ProcessRow) -> CpuPids {
        row.cgroup
            .as_ref()
            .ok()
            .and_then(|id| self.cpu_pids.get(id))
            .copied()
            .unwrap_or_default()
    }
}

/// What binds a cgroup's processes besides memory: the CPUs they can use and the
/// pids limit, each `None` when it could not be read (shown as `-`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuPids {
    /// The CPUs a process of the cgroup can use: the fewer of the binding quota's
    /// (quota / period, the lowest up the cpu chain) and those its Cpus_allowed_list
    /// allows (the cpuset and affinity; read from one process of the cgroup).
    pub cpus: Option<f64>,
    /// The binding pids.max and the tasks of the cgroup that sets it (pids.current,
    /// `None` when unreadable); `Some(None)` when nothing up the chain sets one.
    pub pids: Option<Option<(u64, Option<u64>)>>,
}

/// What the screen shows, so the collector reads the costly parts only while they
/// are on it, as monitors do for columns not displayed.
#[derive(Debug, Default)]
pub struct Wants {
    /// PSS (smaps_rollup of every process: a page-table walk in each target).
    pub pss: AtomicBool,
    /// The files view: fd limits (the slow tier) and deleted-but-open files (a
    /// readlink per fd of every process).
    pub files: AtomicBool,
    /// The isolation view: oom_score and cgroups (the slow tier) and namespaces (a
    /// readlink per namespace of every process).
    pub isolation: AtomicBool,
}

/// CPU time of the calling thread, ns.
pub(super) fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// A container ("3f2a9c1b7d4e docker") or systemd unit a cgroup path names, else empty.
pub(super) fn container_label(path: &str) -> String {
    let p = syslens_probe::container::placement(path);
    match (p.short_id(), p.runtime, &p.unit) {
        (Some(id), Some(rt), _) => format!("{id} {}", rt.name()),
        (Some(id), None, _) => id.to_owned(),
        (None, _, Some(unit)) => unit.clone(),
        _ => String::new(),
    }
}

/// The memory limit binding each cgroup the rows are in (one walk up the chain per
/// cgroup, not per process), with the setter's usage.
fn binding_limits(
    reader: &mut Reader,
    layout: &CgroupLayout,
    rows: &[ProcessRow],
    paths: &[String],
) -> HashMap<CgroupId, (u64, Option<u64>)> {
    let mut out = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for id in rows.iter().filter_map(|r| r.cgroup.as_ref().ok().copied()) {
        if !seen.insert(id) {
            continue;
        }
        let Some(dir) = paths
            .get(id as usize)
            .and_then(|p| layout.dir_at("memory", p))
        else {
            continue;
        };
        if let Ok(Some(b)) = crate::model::limits::lowest_memory(reader, layout, dir) {
            out.insert(id, (b.value, b.used.and_then(Result::ok)));
        }
    }
    out
}

/// The CPUs and pids limit binding each cgroup the rows are in, from one process of
/// each (its /proc/PID/cgroup places it in the cpu and pids hierarchies, which on v1
/// may differ from the memory one the rows are keyed by; its Cpus_allowed_list gives
/// the cpuset).
fn cpu_pids_limits(
    reader: &mut Reader,
    layout: &CgroupLayout,
    rows: &[ProcessRow],
) -> HashMap<CgroupId, CpuPids> {
    let mut out = HashMap::new();
    for r in rows.iter().filter(|r| r.state != b'Z') {
        let Ok(id) = r.cgroup.as_ref().map(|id| *id) else {
            continue;
        };
        if out.contains_key(&id) {
            continue;
        }
        let Ok(dir) = reader.open_pid(r.pid) else {
            continue;
        };
        let Ok(members) = reader
            .read_pid(&dir, "cgroup")
            .and_then(syslens_probe::cgroup::parse_proc_cgroup)
        else {
            continue;
        };
        let allowed = reader
            .read_pid(&dir, "status")
            .map(syslens_probe::status::Status::parse)
            .ok()
            .and_then(|st| st.cpus_allowed_list.ok())
            .and_then(|c| crate::model::host::count_cpu_list(c.as_str()));
        let quota = layout
            .locate(&members, "cpu")
            .map(|d| crate::model::limits::lowest_cpu(reader, layout, d));
        let cpus = match (allowed, quota) {
            (Some(a), Some(Ok(Some(q)))) => Some(q.value.cpus.min(a as f64)),
            // No cpu controller mounted, or none up the chain sets a quota.
            (Some(a), None | Some(Ok(None))) => Some(a as f64),
            _ => None,
        };
        let pids = layout.locate(&members, "pids").and_then(|d| {
            crate::model::limits::lowest_pids(reader, layout, d)
                .ok()
                .map(|b| b.map(|b| (b.value, b.used.and_then(Result::ok))))
        });
        out.insert(id, CpuPids { cpus, pids });
    }
    out
}

/// The header's figures of one moment, parsed from the kernel's files: the live
/// host's (through the reader) or a recorded sample's, with the same parsers.
pub(super) struct Figures {
    pub meminfo: Val<Meminfo>,
    pub psi: [Val<Psi>; 3],
    pub cpus: Val<Vec<CpuTicks>>,
    pub loadavg: Val<[f64; 3]>,
    /// pid -> (file locks held, awaited)
    pub locks: HashMap<i64, (u32, u32)>,
}

impl Figures {
    /// Reads meminfo, the three PSI files, stat's CPU lines, loadavg and locks.
    pub(super) fn read(files: &mut impl Files) -> Figures {
        let mut locks: HashMap<i64, (u32, u32)> = HashMap::new();
        if let Ok(all) = files.proc_file("locks").and_then(parse_locks) {
            for l in all {
                let e = locks.entry(l.pid).or_default();
                if l.waiting {
                    e.1 += 1;
                } else {
                    e.0 += 1;
                }
            }
        }
        Figures {
            meminfo: files.proc_file("meminfo").map(Meminfo::parse),
            psi: ["cpu", "memory", "io"].map(|r| {
                files
                    .proc_file(&format!("pressure/{r}"))
                    .and_then(parse_psi)
            }),
            cpus: files.proc_file("stat").and_then(parse_cpus),
            loadavg: files.proc_file("loadavg").and_then(parse_loadavg),
            locks,
        }
    }
}

/// The largest slab caches (SLABS_KEPT of them, by bytes with pages of `page` bytes)
/// and the zone with the most free pages.
pub(super) fn slabs_and_zone(
    files: &mut impl Files,
    page: u64,
) -> (Arc<[SlabCache]>, Arc<Option<BuddyZone>>) {
    let mut all = files
        .proc_file("slabinfo")
        .and_then(parse_slabinfo)
        .unwrap_or_default();
    all.sort_by_key(|c| std::cmp::Reverse(c.bytes(page)));
    all.truncate(SLABS_KEPT);
    let zone = files
        .proc_file("buddyinfo")
        .and_then(parse_buddyinfo)
        .ok()
        .and_then(|z| z.into_iter().max_by_key(BuddyZone::free_pages));
    (all.into(), Arc::new(zone))
}

/// Whether a part read at `last` (a pass number) is due at `pass`.
fn due(last: Option<u64>, pass: u64, every: u64) -> bool {
    last.is_none_or(|l| pass - l >= every)
}

/// Runs until the receiver hangs up. Row buffers of samples the screen is done with
/// come back on `spent` and are refilled, so a refresh maps no new memory.
pub fn run(
    reader: Reader,
    tx: SyncSender<Box<Sample>>,
    spent: Receiver<Vec<ProcessRow>>,
    interval: Duration,
    wants: Arc<Wants>,
) {
    // Kills from now on; a captured tree has no kernel log (the watch is then absent).
    let mut oom_watch = syslens_probe::kmsg::OomWatch::open(&reader).ok();
    let mut scanner = Scanner::new(reader);
    let kernel = scanner
        .reader()
        .read_proc("sys/kernel/osrelease")
        .ok()
        .and_then(kernel_version);
    let initial: Vec<(&'static str, u64)> =
        initial_namespaces(kernel, |_| Err(syslens_probe::Missing::Exited))
            .into_iter()
            .filter(|n| NS_KINDS.contains(&n.kind))
            .filter_map(|n| Some((n.kind, n.inode.ok()?)))
            .collect();
    let mut zone = Arc::new(None);
    let mut slabs: Arc<[SlabCache]> = Arc::new([]);
    let mut cgroup_paths: Arc<[String]> = Arc::new([]);
    let mut cgroup_epoch = 0;
    let mut containers: Arc<[String]> = Arc::new([]);
    let mut mem_limits = Arc::new(HashMap::new());
    let mut cpu_pids = Arc::new(HashMap::new());
    let layout = CgroupLayout::read(scanner.reader()).ok();
    let mut deleted_open = Arc::new(HashMap::new());
    let mut isolated = Arc::new(HashMap::new());
    let mut users = Arc::new(HashMap::new());
    let (mut fd_targets_pass, mut namespaces_pass) = (None, None);
    let mut pass: u64 = 0;
    loop {
        let started = Instant::now();
        let cpu0 = thread_cpu_ns();
        let opts = ScanOptions {
            rollup: wants.pss.load(Ordering::Relaxed),
            // Hidden, a part of the slow tier is read for new processes only; shown,
            // whatever is older than SLOW_EVERY is read again at once.
            slow_every: SLOW_EVERY,
            slow_parts: SlowParts {
                fd_limit: wants.files.load(Ordering::Relaxed),
                placement: wants.isolation.load(Ordering::Relaxed),
            },
            keep_open: true,
            idle_every: SLOW_EVERY,
        };
        let mut rows = spent.try_recv().unwrap_or_default();
        rows.clear();
        if let Ok(scanned) = scanner.scan(opts) {
            rows.extend_from_slice(scanned);
        }
        if scanner.cgroup_epoch() != cgroup_epoch {
            cgroup_epoch = scanner.cgroup_epoch();
            cgroup_paths = scanner.cgroup_paths().into();
            containers = cgroup_paths.iter().map(|p| container_label(p)).collect();
        }
        let reader = scanner.reader();
        let want_fds =
            wants.files.load(Ordering::Relaxed) && due(fd_targets_pass, pass, SLOWEST_EVERY);
        let want_ns =
            wants.isolation.load(Ordering::Relaxed) && due(namespaces_pass, pass, SLOWEST_EVERY);
        if want_fds || want_ns {
            let mut deleted = HashMap::new();
            let mut ns = HashMap::new();
            for r in &rows {
                let Ok(dir) = reader.open_pid(r.pid) else {
                    continue;
                };
                if want_fds {
                    if let Ok(n) = deleted_count(reader, &dir) {
                        deleted.insert(r.pid, n);
                    }
                }
                if want_ns {
                    let diff: Vec<&'static str> = initial
                        .iter()
                        .filter(|(kind, init)| {
                            reader
                                .readlink_pid(&dir, &format!("ns/{kind}"))
                                .and_then(parse_ns_link)
                                .is_ok_and(|i| i != *init)
                        })
                        .map(|(k, _)| *k)
                        .collect();
                    ns.insert(r.pid, diff);
                }
            }
            if want_fds {
                deleted_open = Arc::new(deleted);
                fd_targets_pass = Some(pass);
            }
            if want_ns {
                isolated = Arc::new(ns);
                namespaces_pass = Some(pass);
            }
        }
        if let Some(layout) = layout
            .as_ref()
            .filter(|_| wants.isolation.load(Ordering::Relaxed) && pass % SLOW_EVERY == 0)
        {
            mem_limits = Arc::new(binding_limits(reader, layout, &rows, &cgroup_paths));
            cpu_pids = Arc::new(cpu_pids_limits(reader, layout, &rows));
        }
        let figures = Figures::read(reader);
        if pass % SLOWEST_EVERY == 0 {
            users = Arc::new(
                reader
                    .read_host("/etc/passwd")
                    .map_or_else(|_| HashMap::new(), parse_passwd),
            );
        }
        // slabinfo makes the kernel walk every cache: the slow cadence.
        if pass % SLOW_EVERY == 0 {
            (slabs, zone) = slabs_and_zone(reader, rustix::param::page_size() as u64);
        }
        let sample = Sample {
            at: started,
            cgroup_paths: cgroup_paths.clone(),
            containers: containers.clone(),
            mem_limits: mem_limits.clone(),
            cpu_pids: cpu_pids.clone(),
            meminfo: figures.meminfo,
            psi: figures.psi,
            cpus: figures.cpus,
            loadavg: figures.loadavg,
            uptime: uptime(reader),
            users: users.clone(),
            zone: zone.clone(),
            slabs: slabs.clone(),
            locks: figures.locks,
            deleted_open: deleted_open.clone(),
            isolated: isolated.clone(),
            oom_killed: oom_watch.as_mut().map_or_else(Vec::new, |w| {
                w.new_kills()
                    .iter()
                    .filter_map(|k| u64::try_from(k.pid).ok())
                    .collect()
            }),
            rows,
            pass_cpu_ns: thread_cpu_ns().saturating_sub(cpu0),
        };
        if tx.send(Box::new(sample)).is_err() {
            return;
        }
        pass += 1;
        if let Some(wait) = (started + interval).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}
