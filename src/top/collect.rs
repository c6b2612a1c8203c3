//! The collector thread: one pass over /proc per refresh, sent to the UI loop over a
//! channel. The cheap tier every refresh; the slow tier (fd limit, cgroup, oom_score)
//! every SLOW_EVERY refreshes; deleted-open files and namespaces slower still; PSS only
//! while the user asks for it, because smaps_rollup costs each target.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use syslens_probe::fds::list_fds;
use syslens_probe::locks::parse_locks;
use syslens_probe::ns::{initial_namespaces, kernel_version, parse_ns_link};
use syslens_probe::psi::{parse_psi, Psi};
use syslens_probe::system::{parse_buddyinfo, parse_slabinfo, BuddyZone, Meminfo, SlabCache};
use syslens_probe::table::{ProcessRow, ScanOptions, Scanner};
use syslens_probe::{Reader, Val};

/// Refreshes between re-reads of the slow tier.
pub const SLOW_EVERY: u64 = 5;
/// Refreshes between listings of every process's fds and namespaces (a readlink per fd
/// and per namespace: the most expensive part of a pass).
const SLOWEST_EVERY: u64 = 30;
/// The namespaces the isolation view compares (a container differs in these).
const NS_KINDS: [&str; 4] = ["pid", "net", "mnt", "uts"];

/// One refresh.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    pub rows: Vec<ProcessRow>,
    pub cgroups: HashMap<i32, String>,
    pub meminfo: Val<Meminfo>,
    pub psi: [Option<Psi>; 3],
    pub zone: Option<BuddyZone>,
    pub slabs: Vec<SlabCache>,
    /// pid -> (file locks held, awaited)
    pub locks: HashMap<i64, (u32, u32)>,
    /// pid -> deleted-but-open files (slowest cadence; absent = not known yet)
    pub deleted_open: HashMap<i32, u32>,
    /// pid -> namespaces that differ from the initial ones
    pub isolated: HashMap<i32, Vec<&'static str>>,
    /// pids the kernel log reports as OOM-killed since the previous refresh
    pub oom_killed: Vec<u64>,
    /// CPU time this collector used for the pass, ns.
    pub pass_cpu_ns: u64,
}

fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Runs until the receiver hangs up.
pub fn run(tx: Sender<Box<Sample>>, interval: Duration, pss: Arc<AtomicBool>) {
    let Ok(reader) = Reader::host() else { return };
    let mut scanner = Scanner::new(reader);
    let mut kmsg = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .ok();
    if let Some(k) = &kmsg {
        // Only kills from now on.
        // SAFETY: lseek on an fd we own; /dev/kmsg supports SEEK_END.
        unsafe { libc::lseek(std::os::fd::AsRawFd::as_raw_fd(k), 0, libc::SEEK_END) };
    }
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
    let (mut zone, mut slabs): (Option<BuddyZone>, Vec<SlabCache>) = (None, Vec::new());
    let mut deleted_open = HashMap::new();
    let mut isolated = HashMap::new();
    let mut pass: u64 = 0;
    loop {
        let started = Instant::now();
        let cpu0 = thread_cpu_ns();
        let opts = ScanOptions {
            rollup: pss.load(Ordering::Relaxed),
            slow_every: SLOW_EVERY,
        };
        let rows: Vec<ProcessRow> = scanner
            .scan(opts)
            .map(<[ProcessRow]>::to_vec)
            .unwrap_or_default();
        let cgroups = rows
            .iter()
            .filter_map(|r| {
                Some((
                    r.pid,
                    scanner.cgroup_path(*r.cgroup.as_ref().ok()?).to_owned(),
                ))
            })
            .collect();
        let reader = scanner.reader();
        if pass % SLOWEST_EVERY == 0 {
            deleted_open.clear();
            isolated.clear();
            for r in &rows {
                let Ok(dir) = reader.open_pid(r.pid) else {
                    continue;
                };
                if let Ok(fds) = list_fds(reader, &dir) {
                    deleted_open.insert(r.pid, fds.iter().filter(|f| f.deleted).count() as u32);
                }
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
                isolated.insert(r.pid, diff);
            }
        }
        let mut locks: HashMap<i64, (u32, u32)> = HashMap::new();
        if let Ok(all) = reader.read_proc("locks").and_then(parse_locks) {
            for l in all {
                let e = locks.entry(l.pid).or_default();
                if l.waiting {
                    e.1 += 1;
                } else {
                    e.0 += 1;
                }
            }
        }
        let psi = ["cpu", "memory", "io"].map(|r| {
            reader
                .read_proc(&format!("pressure/{r}"))
                .and_then(parse_psi)
                .ok()
        });
        // slabinfo makes the kernel walk every cache: the slow cadence.
        if pass % SLOW_EVERY == 0 {
            slabs = reader
                .read_proc("slabinfo")
                .and_then(parse_slabinfo)
                .unwrap_or_default();
            let page = rustix::param::page_size() as u64;
            slabs.sort_by_key(|c| std::cmp::Reverse(c.bytes(page)));
            slabs.truncate(5);
            zone = reader
                .read_proc("buddyinfo")
                .and_then(parse_buddyinfo)
                .ok()
                .and_then(|z| z.into_iter().max_by_key(BuddyZone::free_pages));
        }
        let sample = Sample {
            at: started,
            cgroups,
            meminfo: reader.read_proc("meminfo").map(Meminfo::parse),
            psi,
            zone: zone.clone(),
            slabs: slabs.clone(),
            locks,
            deleted_open: deleted_open.clone(),
            isolated: isolated.clone(),
            oom_killed: kmsg.as_mut().map(new_oom_kills).unwrap_or_default(),
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

/// pids of OOM kills logged since the last read.
fn new_oom_kills(kmsg: &mut std::fs::File) -> Vec<u64> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = kmsg.read(&mut buf) {
        if n == 0 {
            break;
        }
        let rec = String::from_utf8_lossy(&buf[..n]);
        if let Some((_, msg)) = rec.split_once(';') {
            if let Some(pid) = crate::doctor::oom_kill_pid(msg.trim()) {
                out.push(pid);
            }
        }
    }
    out
}
