//! The doctor's view: every process sampled over a watch window, with the one-shot
//! details the rules read (threads, fds, maps, cgroups), and the system-wide files.
//! The rules themselves live in each concept's room (`concepts/<id>/rules.rs`).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Serialize;
use syslens_probe::cgroup::{parse_proc_cgroup, CgroupDir, CgroupLayout, MemoryCgroup};
use syslens_probe::fds::{list_fds, OpenFd};
use syslens_probe::kmsg;
use syslens_probe::locks::{parse_locks, FileLock};
use syslens_probe::psi::{parse_psi, Psi};
use syslens_probe::smaps::{parse_maps, MapKind};
use syslens_probe::status::Status as ProcStatus;
use syslens_probe::system::{parse_buddyinfo, BuddyZone, Meminfo};
use syslens_probe::table::{ProcessRow, ScanOptions, Scanner};
use syslens_probe::{Files, Missing, Reader, Val};

use crate::catalogue::ConceptId;
use crate::model::limits::{lowest_memory, lowest_pids, Bound};
use crate::model::locks::{carriers, Carriers};

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing to fix.
    Info,
    /// Worth a look: it will hurt under load or over time.
    Warning,
    /// Broken now.
    Error,
}

impl Severity {
    /// Every level, lowest first.
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Error];

    /// The level as written on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// A doctor rule of a concept: its id (the `rule` of its findings) and whether it
/// judges a change over time, which needs a watch window (`--window` above zero).
#[derive(Debug)]
pub struct Rule {
    /// The rule's id, as findings carry it.
    pub id: &'static str,
    /// Whether the rule compares the first and last samples (rates, growth).
    pub needs_window: bool,
    /// The rule over the view.
    pub check: fn(&DoctorView) -> Vec<Finding>,
}

/// One finding: the rule, the concept, how bad, about what, the evidence, the advice.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The id of the rule that found it.
    pub rule: &'static str,
    /// The concept whose rule it is.
    pub concept: ConceptId,
    /// How much it matters.
    pub severity: Severity,
    /// "pid 812 (nginx)", "cgroup /app", "system".
    pub subject: String,
    /// What was seen, with figures.
    pub message: String,
    /// The figures and their sources.
    pub evidence: Vec<String>,
    /// What to do about it.
    pub advice: String,
}

/// One process as the rules see it: samples over the window, and the one-shot detail.
#[derive(Debug, Clone)]
pub struct Proc {
    /// The first scan's row.
    pub first: ProcessRow,
    /// The last scan's row.
    pub last: ProcessRow,
    /// (seconds since the first sample, RSS bytes)
    pub rss: Vec<(f64, f64)>,
    /// (seconds, RssAnon bytes): anonymous memory, only the process can free it.
    pub rss_anon: Vec<(f64, f64)>,
    /// (seconds, RssShmem bytes): shared memory and tmpfs pages mapped (memfd, SysV,
    /// shm_open): swappable but never dropped, and freed only when unmapped and removed.
    pub rss_shmem: Vec<(f64, f64)>,
    /// (seconds, RssFile bytes): mapped file pages, page cache the kernel can drop.
    pub rss_file: Vec<(f64, f64)>,
    /// The memory cgroup's path, when one is mounted.
    pub cgroup: Option<String>,
    /// /proc/PID/status, read once.
    pub status: Val<ProcStatus>,
    /// SigBlk of every thread.
    pub thread_blocked: Vec<u64>,
    /// (state, in a futex wait) of every thread.
    pub threads: Vec<(u8, bool)>,
    /// The open files.
    pub fds: Val<Vec<OpenFd>>,
    /// Libraries mapped from files deleted (replaced) on disk.
    pub deleted_libs: Vec<String>,
    /// Private_Dirty at the start and end of the window, for forked children of large
    /// processes (smaps_rollup is read only for them: it costs the target).
    pub private_dirty: Option<(u64, u64)>,
}

impl Proc {
    /// "pid 812 (nginx)", as findings name their subject.
    pub fn subject(&self) -> String {
        let placed = self
            .cgroup
            .as_deref()
            .map(syslens_probe::container::placement)
            .filter(|p| p.container_id.is_some())
            .and_then(|p| p.describe());
        match placed {
            Some(c) => format!("pid {} ({}), {c}", self.last.pid, self.last.comm),
            None => format!("pid {} ({})", self.last.pid, self.last.comm),
        }
    }

    /// A kernel thread has no address space and no fd table.
    pub fn is_kernel_thread(&self) -> bool {
        matches!(self.first.vm_size, Err(Missing::NotApplicable { .. })) && self.first.fds.is_err()
    }
}

/// An OOM kill the kernel logged.
#[derive(Debug, Clone, Serialize)]
pub struct OomKill {
    /// The victim's pid.
    pub pid: u64,
    /// The victim's command name.
    pub comm: String,
    /// The victim's anonymous RSS when it was killed, in KiB.
    pub anon_rss_kb: Option<u64>,
    /// The victim's memory cgroup.
    pub memcg: Option<String>,
    /// How long ago the kill was logged.
    pub seconds_ago: Option<f64>,
    /// The task whose allocation made the kernel pick the victim (comm, pid), when the
    /// log named it.
    pub trigger: Option<(String, Option<i32>)>,
    /// CONSTRAINT_MEMCG (a cgroup's limit), CONSTRAINT_NONE (the whole host), ...
    pub constraint: Option<String>,
}

/// Everything the rules need.
#[derive(Debug)]
pub struct DoctorView {
    /// How long the processes were really watched, first scan to last (zero for
    /// `--window 0`): rates divide by this, never by the window asked for.
    pub watched: Duration,
    /// The processes in scope that lived through the window.
    pub procs: Vec<Proc>,
    /// The cgroups whose memory limit binds the processes in view (the lowest up each
    /// process's chain, often a parent's: a pod's, a container's own), with their usage.
    pub limited_cgroups: Vec<LimitedCgroup>,
    /// The cgroups whose pids.max binds the processes in view (the lowest up each
    /// process's pids chain), with the tasks each holds (its pids.current).
    pub pids_limited: Vec<PidsLimited>,
    /// /proc/meminfo.
    pub meminfo: Val<Meminfo>,
    /// /proc/buddyinfo.
    pub buddy: Val<Vec<BuddyZone>>,
    /// /proc/pressure/memory.
    pub psi_memory: Val<Psi>,
    /// /proc/locks.
    pub locks: Val<Vec<FileLock>>,
    /// The fds carrying the locks someone waits for (their path, who holds them now).
    pub lock_carriers: Val<Carriers>,
    /// OOM kills in the kernel log (missing for a captured tree).
    pub ooms: Val<Vec<OomKill>>,
    /// The page size of the host.
    pub page_size: u64,
    /// Whether the view was narrowed to some processes (`--pid`, `--name`).
    pub scoped: bool,
    /// The process the OOM killer would pick first among all (not only those in scope).
    pub oom_first: Option<i32>,
}

/// A cgroup that sets the memory limit binding some processes in view.
#[derive(Debug, Clone)]
pub struct LimitedCgroup {
    /// The limit and the file that sets it.
    pub limit: Bound<u64>,
    /// The memory controller's view of the cgroup that sets it (its working set is what
    /// the limit bounds: everything below it together).
    pub memory: MemoryCgroup,
    /// The memory cgroups of the processes it binds.
    pub below: Vec<String>,
}

/// The cgroups whose limits bind processes in these memory cgroups, one each.
fn limited_cgroups<'a>(
    reader: &mut Reader,
    layout: &CgroupLayout,
    dirs: impl Iterator<Item = &'a CgroupDir>,
) -> Vec<LimitedCgroup> {
    bound_by(reader, layout, dirs, lowest_memory)
        .into_iter()
        .map(|(limit, below)| LimitedCgroup {
            memory: MemoryCgroup::read(reader, limit.set_by.clone()),
            limit,
            below,
        })
        .collect()
}

/// Finds the lowest limit of one controller up a cgroup's chain (`lowest_memory`,
/// `lowest_pids`).
type LowestLimit = fn(&mut Reader, &CgroupLayout, CgroupDir) -> Val<Option<Bound<u64>>>;

/// The limits `lowest` finds binding `dirs`, one per cgroup that sets one, each with
/// the paths of the `dirs` it binds.
fn bound_by<'a>(
    reader: &mut Reader,
    layout: &CgroupLayout,
    dirs: impl Iterator<Item = &'a CgroupDir>,
    lowest: LowestLimit,
) -> Vec<(Bound<u64>, Vec<String>)> {
    let mut out: Vec<(Bound<u64>, Vec<String>)> = Vec::new();
    for d in dirs {
        let Ok(Some(limit)) = lowest(reader, layout, d.clone()) else {
            continue;
        };
        match out
            .iter_mut()
            .find(|(l, _)| l.set_by.path == limit.set_by.path)
        {
            Some((_, below)) => below.push(d.path.clone()),
            None => out.push((limit, vec![d.path.clone()])),
        }
    }
    out
}

/// A cgroup that sets the pids.max binding some processes in view.
#[derive(Debug, Clone)]
pub struct PidsLimited {
    /// The limit, the file that sets it, and the setter's pids.current (`used`): the
    /// tasks of everything below it together, what the kernel counts against it.
    pub limit: Bound<u64>,
    /// The pids cgroups of the processes it binds.
    pub below: Vec<String>,
}

/// The cgroups whose pids.max binds processes in these pids cgroups, one each.
fn pids_limited<'a>(
    reader: &mut Reader,
    layout: &CgroupLayout,
    dirs: impl Iterator<Item = &'a CgroupDir>,
) -> Vec<PidsLimited> {
    bound_by(reader, layout, dirs, lowest_pids)
        .into_iter()
        .map(|(limit, below)| PidsLimited { limit, below })
        .collect()
}

/// Which processes to examine.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Only this process.
    pub pid: Option<i32>,
    /// Only processes with this command name.
    pub name: Option<String>,
}

impl Scope {
    fn keeps(&self, r: &ProcessRow) -> bool {
        self.pid.is_none_or(|p| r.pid == p)
            && self.name.as_deref().is_none_or(|n| r.comm.as_str() == n)
    }

    fn is_scoped(&self) -> bool {
        self.pid.is_some() || self.name.is_some()
    }
}

const SAMPLES: u32 = 6;
/// A parent this large makes its forked children copy-on-write candidates.
const COW_PARENT: u64 = 64 << 20;

impl DoctorView {
    /// Scans every process through `reader`, watches those in `scope` for `window`
    /// (a captured tree is read once), and reads what the rules need.
    pub fn collect(reader: Reader, window: Duration, scope: &Scope) -> Val<DoctorView> {
        let window = if reader.is_live() {
            window
        } else {
            Duration::ZERO
        };
        let samples = if window.is_zero() { 0 } else { SAMPLES };
        let mut scanner = Scanner::new(reader);
        let started = Instant::now();
        // The doctor itself is not a patient.
        let me = std::process::id() as i32;
        let everyone = scanner.scan(ScanOptions::default())?;
        // The OOM killer's first victim is chosen among every process, whatever the
        // scope shows: highest oom_score, then the larger RSS (badness counts memory).
        let oom_first = everyone
            .iter()
            .filter(|r| r.pid != me && matches!(r.oom_score, Ok(s) if s > 0))
            .max_by_key(|r| (r.oom_score.clone().unwrap_or(0), r.rss.clone().unwrap_or(0)))
            .map(|r| r.pid);
        let first: Vec<ProcessRow> = everyone
            .iter()
            .filter(|r| r.pid != me && scope.keeps(r))
            .cloned()
            .collect();
        let pids: Vec<i32> = first.iter().map(|r| r.pid).collect();
        // Forked children of large processes (same name as their parent): the only
        // ones whose smaps_rollup is read, at both ends of the window.
        let cow_candidates: Vec<i32> = first
            .iter()
            .filter(|r| {
                first.iter().any(|p| {
                    i64::from(p.pid) == r.ppid
                        && p.comm == r.comm
                        && p.rss.clone().unwrap_or(0) >= COW_PARENT
                })
            })
            .map(|r| r.pid)
            .collect();
        let private_dirty = |reader: &mut Reader, pid: i32| -> Option<u64> {
            let dir = reader.open_pid(pid).ok()?;
            syslens_probe::smaps::MemUsage::read_rollup(reader, &dir)
                .ok()?
                .private_dirty
                .ok()
        };
        let mut pd_before: HashMap<i32, u64> = HashMap::new();
        for &pid in &cow_candidates {
            if let Some(v) = private_dirty(scanner.reader(), pid) {
                pd_before.insert(pid, v);
            }
        }
        type Series = HashMap<i32, Vec<(f64, f64)>>;
        let (mut rss, mut rss_anon, mut rss_shmem, mut rss_file): (Series, Series, Series, Series) =
            Default::default();
        let mut last: HashMap<i32, ProcessRow> = HashMap::new();
        let opts = ScanOptions {
            slow_every: u64::MAX,
            keep_open: true,
            ..ScanOptions::default()
        };
        let (mut first_scan, mut last_scan) = (None, None);
        for i in 0..=samples {
            if i > 0 {
                if let Some(wait) =
                    (started + window * i / samples).checked_duration_since(Instant::now())
                {
                    std::thread::sleep(wait);
                }
            }
            let at = Instant::now();
            first_scan.get_or_insert(at);
            last_scan = Some(at);
            let t = at.duration_since(started).as_secs_f64();
            for r in scanner.scan_pids(&pids, opts) {
                if let Ok(b) = r.rss {
                    rss.entry(r.pid).or_default().push((t, b as f64));
                }
                if let Ok(a) = r.rss_anon {
                    rss_anon.entry(r.pid).or_default().push((t, a as f64));
                }
                if let Ok(sh) = r.rss_shmem {
                    rss_shmem.entry(r.pid).or_default().push((t, sh as f64));
                }
                if let Ok(f) = r.rss_file {
                    rss_file.entry(r.pid).or_default().push((t, f as f64));
                }
                last.insert(r.pid, r.clone());
            }
        }
        let mut procs = Vec::new();
        let layout = CgroupLayout::read(scanner.reader()).ok();
        let mut memcg_dirs: BTreeMap<String, syslens_probe::cgroup::CgroupDir> = BTreeMap::new();
        let mut pids_dirs: BTreeMap<String, syslens_probe::cgroup::CgroupDir> = BTreeMap::new();
        for f in first {
            // A process that left during the window has no last sample: nothing to say.
            let Some(l) = last.remove(&f.pid) else {
                continue;
            };
            if l.start_time_ticks != f.start_time_ticks {
                continue;
            }
            let reader = scanner.reader();
            let Ok(dir) = reader.open_pid(f.pid) else {
                continue;
            };
            let mut status = None;
            let mut tids = Vec::new();
            let _ = reader.list_pid_numbers(&dir, "task", &mut tids);
            let (mut thread_blocked, mut threads) = (Vec::new(), Vec::new());
            for tid in tids {
                let Ok(task) = dir.task(tid) else { continue };
                let st = reader.read_pid(&task, "status").map(ProcStatus::parse);
                if let Ok(st) = &st {
                    thread_blocked.push(st.sig_blk.clone().unwrap_or(0));
                }
                if tid == f.pid {
                    // The main thread's status is the process's.
                    status = Some(st.clone());
                }
                let state = st
                    .as_ref()
                    .ok()
                    .and_then(|s| s.state.clone().ok())
                    .unwrap_or(b'?');
                let futex = matches!(
                    reader.read_pid(&task, "syscall").and_then(syslens_probe::sched::parse_syscall),
                    Ok(syslens_probe::sched::Syscall::In { nr, .. }) if syslens_probe::sched::syscall_name(nr) == Some("futex")
                );
                threads.push((state, futex));
            }
            let status =
                status.unwrap_or_else(|| reader.read_pid(&dir, "status").map(ProcStatus::parse));
            let fds = list_fds(reader, &dir);
            let deleted_libs = reader
                .read_pid(&dir, "maps")
                .and_then(parse_maps)
                .map(|maps| {
                    let mut v: Vec<String> = maps
                        .into_iter()
                        .filter(|m| m.kind == MapKind::Library && m.deleted)
                        .map(|m| m.path)
                        .collect();
                    v.sort();
                    v.dedup();
                    v
                })
                .unwrap_or_default();
            let members = reader.read_pid(&dir, "cgroup").and_then(parse_proc_cgroup);
            let cgroup = match (&layout, &members) {
                (Some(layout), Ok(members)) => {
                    if let Some(d) = layout.locate(members, "pids") {
                        pids_dirs.entry(d.path.clone()).or_insert(d);
                    }
                    layout.locate(members, "memory").map(|d| {
                        let path = d.path.clone();
                        memcg_dirs.entry(path.clone()).or_insert(d);
                        path
                    })
                }
                _ => None,
            };
            let private_dirty = pd_before
                .get(&f.pid)
                .and_then(|b| Some((*b, private_dirty(scanner.reader(), f.pid)?)));
            procs.push(Proc {
                private_dirty,
                rss: rss.remove(&f.pid).unwrap_or_default(),
                rss_anon: rss_anon.remove(&f.pid).unwrap_or_default(),
                rss_shmem: rss_shmem.remove(&f.pid).unwrap_or_default(),
                rss_file: rss_file.remove(&f.pid).unwrap_or_default(),
                first: f,
                last: l,
                cgroup,
                status,
                thread_blocked,
                threads,
                fds,
                deleted_libs,
            });
        }
        let reader = scanner.reader();
        let limited_cgroups = layout
            .as_ref()
            .map(|l| limited_cgroups(reader, l, memcg_dirs.values()))
            .unwrap_or_default();
        let pids_limited = layout
            .as_ref()
            .map(|l| pids_limited(reader, l, pids_dirs.values()))
            .unwrap_or_default();
        let watched = match (first_scan, last_scan) {
            (Some(a), Some(b)) => b.duration_since(a),
            _ => Duration::ZERO,
        };
        let ooms = read_oom_kills(reader);
        let locks = reader.read_proc("locks").and_then(parse_locks);
        let lock_carriers = match &locks {
            Ok(all) => {
                let waited: Vec<u64> = all.iter().filter(|l| l.waiting).map(|l| l.id).collect();
                carriers(reader, all, &waited)
            }
            Err(e) => Err(e.clone()),
        };
        Ok(DoctorView {
            watched,
            procs,
            limited_cgroups,
            pids_limited,
            meminfo: reader.read_proc("meminfo").map(Meminfo::parse),
            buddy: reader.read_proc("buddyinfo").and_then(parse_buddyinfo),
            psi_memory: reader.read_proc("pressure/memory").and_then(parse_psi),
            locks,
            lock_carriers,
            ooms,
            page_size: rustix::param::page_size() as u64,
            scoped: scope.is_scoped(),
            oom_first,
        })
    }

    /// Seconds really watched (zero without a window).
    pub fn watched_secs(&self) -> f64 {
        self.watched.as_secs_f64()
    }

    /// The cgroups a scoped run's findings may be about: those of the processes in view
    /// and those whose limits bind them.
    pub fn scope_cgroups(&self) -> std::collections::BTreeSet<&str> {
        self.procs
            .iter()
            .filter_map(|p| p.cgroup.as_deref())
            .chain(
                self.limited_cgroups
                    .iter()
                    .map(|c| c.limit.set_by.path.as_str()),
            )
            .chain(
                self.pids_limited
                    .iter()
                    .map(|c| c.limit.set_by.path.as_str()),
            )
            .collect()
    }

    /// The process with this pid, if it is in the view.
    pub fn proc(&self, pid: i64) -> Option<&Proc> {
        self.procs.iter().find(|p| i64::from(p.last.pid) == pid)
    }
}

/// A process of the first recorded sample, with its cgroup path.
type ScopedRow = (ProcessRow, Option<String>);

/// The doctor's view of a recorded window, built one sample at a time (a day of
/// samples never sits in memory at once): the processes of the first sample that are
/// still the same processes in the last, their RSS series, and the system files of the
/// last. What is not recorded (status, threads, fds, maps) is missing, and the rules
/// that need it stay silent.
#[derive(Debug)]
pub struct PastWindow {
    scope: Scope,
    /// The first sample's time and its processes in scope, each with its cgroup path.
    first: Option<(std::time::SystemTime, Vec<ScopedRow>)>,
    last: HashMap<i32, ProcessRow>,
    last_at: Option<std::time::SystemTime>,
    series: HashMap<i32, [Vec<(f64, f64)>; 4]>,
    oom_first: Option<i32>,
}

impl PastWindow {
    /// An empty window over the processes of `scope`.
    pub fn new(scope: Scope) -> PastWindow {
        PastWindow {
            scope,
            first: None,
            last: HashMap::new(),
            last_at: None,
            series: HashMap::new(),
            oom_first: None,
        }
    }

    /// Adds the next sample: taken `at`, its rows (by pid) naming cgroups of `paths`.
    pub fn add(&mut self, at: std::time::SystemTime, rows: &[ProcessRow], paths: &[String]) {
        let (t0, first) = self.first.get_or_insert_with(|| {
            let kept = rows
                .iter()
                .filter(|r| self.scope.keeps(r))
                .map(|r| {
                    let cg = r
                        .cgroup
                        .as_ref()
                        .ok()
                        .and_then(|id| paths.get(*id as usize));
                    (r.clone(), cg.cloned())
                })
                .collect();
            (at, kept)
        });
        let t = at.duration_since(*t0).unwrap_or_default().as_secs_f64();
        self.last.clear();
        for (f, _) in first.iter() {
            let Ok(i) = rows.binary_search_by_key(&f.pid, |r| r.pid) else {
                continue;
            };
            let r = &rows[i];
            if r.start_time_ticks != f.start_time_ticks {
                continue;
            }
            let s = self.series.entry(r.pid).or_default();
            if let Ok(b) = r.rss {
                s[0].push((t, b as f64));
            }
            if let Ok(a) = r.rss_anon {
                s[1].push((t, a as f64));
            }
            if let Ok(b) = r.rss_file {
                s[2].push((t, b as f64));
            }
            if let Ok(sh) = r.rss_shmem {
                s[3].push((t, sh as f64));
            }
            self.last.insert(r.pid, r.clone());
        }
        self.last_at = Some(at);
        self.oom_first = rows
            .iter()
            .filter(|r| matches!(r.oom_score, Ok(s) if s > 0))
            .max_by_key(|r| (r.oom_score.clone().unwrap_or(0), r.rss.clone().unwrap_or(0)))
            .map(|r| r.pid);
    }

    /// The view: `files` are the last sample's system files, `ooms` the kills recorded
    /// in the window. Missing when no sample was added.
    pub fn finish(mut self, files: &mut impl Files, ooms: Vec<OomKill>) -> Val<DoctorView> {
        let not_recorded = || Missing::NotApplicable {
            why: "not recorded",
        };
        let (t0, first) = self.first.take().ok_or(Missing::NotApplicable {
            why: "no sample recorded in the window",
        })?;
        let watched = self
            .last_at
            .and_then(|l| l.duration_since(t0).ok())
            .unwrap_or_default();
        let procs = first
            .into_iter()
            .filter_map(|(f, cgroup)| {
                let last = self.last.remove(&f.pid)?;
                let [rss, rss_anon, rss_file, rss_shmem] =
                    self.series.remove(&f.pid).unwrap_or_default();
                Some(Proc {
                    first: f,
                    last,
                    rss,
                    rss_anon,
                    rss_shmem,
                    rss_file,
                    cgroup,
                    status: Err(not_recorded()),
                    thread_blocked: Vec::new(),
                    threads: Vec::new(),
                    fds: Err(not_recorded()),
                    deleted_libs: Vec::new(),
                    private_dirty: None,
                })
            })
            .collect();
        Ok(DoctorView {
            watched,
            procs,
            limited_cgroups: Vec::new(),
            pids_limited: Vec::new(),
            meminfo: files.proc_file("meminfo").map(Meminfo::parse),
            buddy: files.proc_file("buddyinfo").and_then(parse_buddyinfo),
            psi_memory: files.proc_file("pressure/memory").and_then(parse_psi),
            locks: files.proc_file("locks").and_then(parse_locks),
            lock_carriers: Err(not_recorded()),
            ooms: Ok(ooms),
            page_size: rustix::param::page_size() as u64,
            scoped: self.scope.is_scoped(),
            oom_first: self.oom_first,
        })
    }
}

/// OOM kills in the kernel log (/dev/kmsg: CAP_SYSLOG or dmesg_restrict=0), with how
/// long ago each was logged; missing for a captured tree, which has no kernel log.
fn read_oom_kills(reader: &mut Reader) -> Val<Vec<OomKill>> {
    let kills = kmsg::oom_kills(reader)?;
    let uptime = kmsg::uptime(reader).ok();
    Ok(kills
        .into_iter()
        .map(|k| OomKill {
            pid: u64::try_from(k.pid).unwrap_or(0),
            seconds_ago: uptime.map(|u| k.seconds_ago(u)),
            anon_rss_kb: k.anon_rss_kb,
            memcg: k.task_memcg.clone(),
            trigger: k.trigger.as_ref().map(|t| (t.comm.clone(), t.pid)),
            constraint: k.constraint.clone(),
            comm: k.comm,
        })
        .collect())
}

/// Bytes for messages.
pub fn mib(b: f64) -> String {
    crate::model::units::bytes(b)
}

/// Views for the rules' unit tests: empty but for what a test sets, so a rule's test
/// states just the fields that rule reads (`DoctorView { procs, ..view() }`).
#[cfg(test)]
pub mod test_view {
    use super::*;
    use syslens_probe::parse::InlineStr;

    fn unset<T>() -> Val<T> {
        Err(Missing::NotApplicable {
            why: "not set by the test",
        })
    }

    /// A view with no process, no cgroup and every system file missing, watched for
    /// `watched` (rates divide by it).
    pub fn view(watched: Duration) -> DoctorView {
        DoctorView {
            watched,
            procs: Vec::new(),
            limited_cgroups: Vec::new(),
            pids_limited: Vec::new(),
            meminfo: unset(),
            buddy: unset(),
            psi_memory: unset(),
            locks: unset(),
            lock_carriers: unset(),
            ooms: unset(),
            page_size: 4096,
            scoped: false,
            oom_first: None,
        }
    }

    /// A sleeping process `pid` named `comm`, child of pid 1: every counter zero,
    /// every optional figure missing.
    pub fn row(pid: i32, comm: &str) -> ProcessRow {
        ProcessRow {
            pid,
            comm: InlineStr::new(comm.as_bytes()),
            state: b'S',
            ppid: 1,
            kernel_thread: false,
            uid: unset(),
            start_time_ticks: 100,
            vm_size: Ok(64 << 20),
            rss: unset(),
            hwm: unset(),
            swap: unset(),
            rss_anon: unset(),
            rss_file: unset(),
            rss_shmem: unset(),
            locked: unset(),
            minflt: 0,
            majflt: 0,
            utime_ticks: 0,
            stime_ticks: 0,
            threads: 1,
            nice: 0,
            voluntary_switches: unset(),
            involuntary_switches: unset(),
            sig_ign: unset(),
            sig_blk: unset(),
            shd_pnd: unset(),
            sig_cgt: unset(),
            namespace_init: false,
            ns_pid: unset(),
            ns_levels: unset(),
            run_queue_wait_ns: unset(),
            fds: unset(),
            fd_soft_limit: unset(),
            oom_score: unset(),
            cgroup: unset(),
            rollup: None,
        }
    }

    /// Process `pid` as the rules see it: the same row first and last, no series, no
    /// status, threads, fds or libraries.
    pub fn proc(pid: i32, comm: &str) -> Proc {
        Proc {
            first: row(pid, comm),
            last: row(pid, comm),
            rss: Vec::new(),
            rss_anon: Vec::new(),
            rss_shmem: Vec::new(),
            rss_file: Vec::new(),
            cgroup: None,
            status: unset(),
            thread_blocked: Vec::new(),
            threads: Vec::new(),
            fds: unset(),
            deleted_libs: Vec::new(),
            private_dirty: None,
        }
    }

    /// /proc/meminfo with these `(key, kB)` lines.
    pub fn meminfo(lines: &[(&str, u64)]) -> Val<Meminfo> {
        let text: String = lines
            .iter()
            .map(|(k, kb)| format!("{k}: {kb} kB\n"))
            .collect();
        Ok(Meminfo::parse(text.as_bytes()))
    }

    /// A v2 cgroup `/kubepods/pod1` setting the memory limit (memory.max) `limit` that
    /// binds the processes of itself and of `/kubepods/pod1/app`; its working set and
    /// peak as given (`None`: missing).
    pub fn limited(ws: Option<u64>, peak: Option<u64>, limit: u64) -> LimitedCgroup {
        use syslens_probe::cgroup::CgroupVersion;
        let dir = CgroupDir {
            version: CgroupVersion::V2,
            path: "/kubepods/pod1".into(),
            host_dir: "/sys/fs/cgroup/kubepods/pod1".into(),
        };
        let or_unset = |v: Option<u64>| v.map_or_else(unset, Ok);
        LimitedCgroup {
            memory: MemoryCgroup {
                dir: dir.clone(),
                usage: unset(),
                working_set: or_unset(ws),
                peak: or_unset(peak),
                limit: Ok(Some(limit)),
                limit_hits: unset(),
                oom_kills: unset(),
                pressure: unset(),
            },
            limit: Bound {
                value: limit,
                set_by: dir,
                file: "memory.max",
                used: None,
            },
            below: vec!["/kubepods/pod1".into(), "/kubepods/pod1/app".into()],
        }
    }

    /// The rule's findings as (subject, severity).
    pub fn fired(rule: fn(&DoctorView) -> Vec<Finding>, v: &DoctorView) -> Vec<(String, Severity)> {
        rule(v)
            .into_iter()
            .map(|f| (f.subject, f.severity))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_view::proc;

    #[test]
    fn issue_15_a_process_subject_names_its_container() {
        let id = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4";
        let mut p = proc(812, "nginx");
        let subject = |p: &super::Proc| p.subject();
        assert_eq!(subject(&p), "pid 812 (nginx)", "no cgroup known");
        for (path, named) in [
            (format!("/docker/{id}"), "container 3f2a9c1b7d4e (docker)"),
            (
                format!("/system.slice/docker-{id}.scope"),
                "container 3f2a9c1b7d4e (docker)",
            ),
            (
                format!("/system.slice/cri-containerd-{id}.scope"),
                "container 3f2a9c1b7d4e (containerd)",
            ),
        ] {
            p.cgroup = Some(path.clone());
            assert_eq!(subject(&p), format!("pid 812 (nginx), {named}"), "{path}");
        }
        // On the host, a systemd unit is no container: the subject stays the process.
        p.cgroup = Some("/system.slice/nginx.service".into());
        assert_eq!(subject(&p), "pid 812 (nginx)");
        p.cgroup = Some("/".into());
        assert_eq!(subject(&p), "pid 812 (nginx)");
    }
}
