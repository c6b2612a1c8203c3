//! `syslens doctor`: the catalogue's rules over the system and every process, turned
//! into findings a person can act on: what was seen (figures and their source), which
//! concept, why it matters, what to do. Rules that need a trend watch for a window.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Serialize;
use syslens_probe::cgroup::{parse_proc_cgroup, CgroupLayout, MemoryCgroup};
use syslens_probe::fds::{list_fds, OpenFd};
use syslens_probe::locks::{parse_locks, FileLock};
use syslens_probe::psi::{parse_psi, Psi};
use syslens_probe::smaps::{parse_maps, MapKind};
use syslens_probe::status::Status as ProcStatus;
use syslens_probe::system::{parse_buddyinfo, BuddyZone, Meminfo};
use syslens_probe::table::{ProcessRow, ScanOptions, Scanner};
use syslens_probe::{Missing, Reader, Val};

use crate::concepts::{self, ConceptId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// One finding: the rule, the concept, how bad, about what, the evidence, the advice.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub concept: ConceptId,
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
    pub first: ProcessRow,
    pub last: ProcessRow,
    /// (seconds since the first sample, RSS bytes)
    pub rss: Vec<(f64, f64)>,
    pub cgroup: Option<String>,
    pub status: Val<ProcStatus>,
    /// SigBlk of every thread.
    pub thread_blocked: Vec<u64>,
    /// (state, in a futex wait) of every thread.
    pub threads: Vec<(u8, bool)>,
    pub fds: Val<Vec<OpenFd>>,
    /// Libraries mapped from files deleted (replaced) on disk.
    pub deleted_libs: Vec<String>,
    /// Private_Dirty at the start and end of the window, for forked children of large
    /// processes (smaps_rollup is read only for them: it costs the target).
    pub private_dirty: Option<(u64, u64)>,
}

impl Proc {
    pub fn subject(&self) -> String {
        format!("pid {} ({})", self.last.pid, self.last.comm)
    }

    pub fn is_kernel_thread(&self) -> bool {
        matches!(self.first.vm_size, Err(Missing::NotApplicable { .. })) && self.first.fds.is_err()
    }
}

/// An OOM kill the kernel logged.
#[derive(Debug, Clone, Serialize)]
pub struct OomKill {
    pub pid: u64,
    pub comm: String,
    pub anon_rss_kb: Option<u64>,
    pub memcg: Option<String>,
    pub seconds_ago: Option<f64>,
}

/// Everything the rules need.
#[derive(Debug)]
pub struct DoctorView {
    pub window: Duration,
    pub procs: Vec<Proc>,
    pub memory_cgroups: Vec<MemoryCgroup>,
    pub meminfo: Val<Meminfo>,
    pub buddy: Val<Vec<BuddyZone>>,
    pub psi_memory: Val<Psi>,
    pub locks: Val<Vec<FileLock>>,
    pub ooms: Val<Vec<OomKill>>,
    pub page_size: u64,
    pub scoped: bool,
}

/// Which processes to examine.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub pid: Option<i32>,
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
    pub fn collect(window: Duration, scope: &Scope) -> Val<DoctorView> {
        let reader = Reader::host().map_err(|e| Missing::from_io("/proc", &e))?;
        let mut scanner = Scanner::new(reader);
        let started = Instant::now();
        // The doctor itself is not a patient.
        let me = std::process::id() as i32;
        let first: Vec<ProcessRow> = scanner
            .scan(ScanOptions::default())?
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
        let mut rss: HashMap<i32, Vec<(f64, f64)>> = HashMap::new();
        let mut last: HashMap<i32, ProcessRow> = HashMap::new();
        let opts = ScanOptions {
            slow_every: u64::MAX,
            keep_open: true,
            ..ScanOptions::default()
        };
        for i in 0..=SAMPLES {
            if i > 0 {
                if let Some(wait) =
                    (started + window * i / SAMPLES).checked_duration_since(Instant::now())
                {
                    std::thread::sleep(wait);
                }
            }
            let t = started.elapsed().as_secs_f64();
            for r in scanner.scan_pids(&pids, opts) {
                if let Ok(b) = r.rss {
                    rss.entry(r.pid).or_default().push((t, b as f64));
                }
                last.insert(r.pid, r.clone());
            }
        }
        let mut procs = Vec::new();
        let layout = CgroupLayout::read(scanner.reader()).ok();
        let mut memcg_dirs: BTreeMap<String, syslens_probe::cgroup::CgroupDir> = BTreeMap::new();
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
                    Ok(syslens_probe::sched::Syscall::In { nr, .. }) if nr == concepts::locking::SYS_FUTEX
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
            let cgroup = match (
                &layout,
                reader.read_pid(&dir, "cgroup").and_then(parse_proc_cgroup),
            ) {
                (Some(layout), Ok(members)) => layout.locate(&members, "memory").map(|d| {
                    let path = d.path.clone();
                    memcg_dirs.entry(path.clone()).or_insert(d);
                    path
                }),
                _ => None,
            };
            let private_dirty = pd_before
                .get(&f.pid)
                .and_then(|b| Some((*b, private_dirty(scanner.reader(), f.pid)?)));
            procs.push(Proc {
                private_dirty,
                rss: rss.remove(&f.pid).unwrap_or_default(),
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
        let memory_cgroups = memcg_dirs
            .into_values()
            .filter(|d| d.path != "/")
            .map(|d| MemoryCgroup::read(reader, d))
            .collect();
        Ok(DoctorView {
            window,
            procs,
            memory_cgroups,
            meminfo: reader.read_proc("meminfo").map(Meminfo::parse),
            buddy: reader.read_proc("buddyinfo").and_then(parse_buddyinfo),
            psi_memory: reader.read_proc("pressure/memory").and_then(parse_psi),
            locks: reader.read_proc("locks").and_then(parse_locks),
            ooms: read_oom_kills(),
            page_size: rustix::param::page_size() as u64,
            scoped: scope.is_scoped(),
        })
    }

    pub fn proc(&self, pid: i64) -> Option<&Proc> {
        self.procs.iter().find(|p| i64::from(p.last.pid) == pid)
    }
}

/// The victim's pid of an `oom-kill:` kernel log record.
pub fn oom_kill_pid(msg: &str) -> Option<u64> {
    msg.strip_prefix("oom-kill:")?
        .split(',')
        .find_map(|kv| kv.strip_prefix("pid="))?
        .parse()
        .ok()
}

/// OOM kills in the kernel log (/dev/kmsg: CAP_SYSLOG or dmesg_restrict=0).
fn read_oom_kills() -> Val<Vec<OomKill>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .map_err(|e| Missing::from_io("/dev/kmsg", &e))?;
    let uptime_us = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|u| u.split_whitespace().next()?.parse::<f64>().ok())
        .map(|s| s * 1e6);
    let mut out: Vec<OomKill> = Vec::new();
    let mut buf = vec![0u8; 8192];
    // Each read returns one record; EAGAIN at the end of the buffer.
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        let rec = String::from_utf8_lossy(&buf[..n]);
        let Some((head, msg)) = rec.split_once(';') else {
            continue;
        };
        let ts_us: Option<f64> = head.split(',').nth(2).and_then(|t| t.parse().ok());
        let ago = match (uptime_us, ts_us) {
            (Some(u), Some(t)) => Some((u - t) / 1e6),
            _ => None,
        };
        let msg = msg.trim();
        if let Some(rest) = msg.strip_prefix("oom-kill:") {
            // oom-kill:constraint=...,oom_memcg=/a,task_memcg=/a/b,task=comm,pid=123,uid=0
            let field = |k: &str| {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(k))
                    .map(str::to_owned)
            };
            if let Some(pid) = field("pid=").and_then(|p| p.parse().ok()) {
                out.push(OomKill {
                    pid,
                    comm: field("task=").unwrap_or_default(),
                    anon_rss_kb: None,
                    memcg: field("task_memcg="),
                    seconds_ago: ago,
                });
            }
        } else if let Some(rest) = msg
            .strip_prefix("Out of memory: Killed process ")
            .or_else(|| msg.split_once("Killed process ").map(|x| x.1))
        {
            let pid: Option<u64> = rest.split_whitespace().next().and_then(|p| p.parse().ok());
            let anon = rest
                .split("anon-rss:")
                .nth(1)
                .and_then(|a| a.split("kB").next()?.trim().parse().ok());
            if let (Some(_), Some(k)) = (pid, out.iter_mut().rev().find(|k| Some(k.pid) == pid)) {
                k.anon_rss_kb = anon;
            } else if let Some(pid) = pid {
                let comm = rest
                    .split('(')
                    .nth(1)
                    .and_then(|c| c.split(')').next())
                    .unwrap_or("")
                    .to_owned();
                out.push(OomKill {
                    pid,
                    comm,
                    anon_rss_kb: anon,
                    memcg: None,
                    seconds_ago: ago,
                });
            }
        }
    }
    Ok(out)
}

/// Every rule of the catalogue, concept by concept.
pub fn diagnose(v: &DoctorView) -> Vec<Finding> {
    let mut f = Vec::new();
    f.extend(concepts::high_water_mark::rules::check(v));
    f.extend(concepts::cow::rules::check(v));
    f.extend(concepts::page_faults::rules::check(v));
    f.extend(concepts::kernel_user::rules::check(v));
    f.extend(concepts::signals::rules::check(v));
    f.extend(concepts::fds_limits::rules::check(v));
    f.extend(concepts::scheduling::rules::check(v));
    f.extend(concepts::swap_oom::rules::check(v));
    f.extend(concepts::leaks_fragmentation::rules::check(v));
    f.extend(concepts::shared_libs::rules::check(v));
    f.extend(concepts::locking::rules::check(v));
    f.extend(concepts::slab_buddy::rules::check(v));
    f.extend(concepts::storage::rules::check(v));
    // Scoped to processes: the system-wide and cgroup findings belong to a full run.
    if v.scoped {
        f.retain(|x| x.subject.starts_with("pid "));
    }
    // Worst first, then by concept (catalogue order).
    f.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.concept.cmp(&b.concept)));
    f
}

/// The doctor's report.
#[derive(Debug, Serialize)]
pub struct DoctorReport {
    pub window_seconds: f64,
    pub processes: usize,
    pub findings: Vec<Finding>,
    /// What could not be read, and why (it limits what the rules can see).
    pub unreadable: Vec<String>,
}

pub fn report(v: &DoctorView) -> DoctorReport {
    let mut unreadable = Vec::new();
    if let Err(e) = &v.ooms {
        unreadable.push(format!("OOM kills from the kernel log: {e}"));
    }
    let no_fds = v
        .procs
        .iter()
        .filter(|p| matches!(p.fds, Err(Missing::Permission { .. })))
        .count();
    if no_fds > 0 {
        unreadable.push(format!(
            "open files of {no_fds} processes: no permission (run as root)"
        ));
    }
    DoctorReport {
        window_seconds: v.window.as_secs_f64(),
        processes: v.procs.len(),
        findings: diagnose(v),
        unreadable,
    }
}

/// Bytes for messages.
pub fn mib(b: f64) -> String {
    crate::render::bytes(b)
}
