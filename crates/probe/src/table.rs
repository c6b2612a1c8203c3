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
use crate::parse::{lines, u64_dec, InlineStr};
use crate::read::{PidDir, Reader};
use crate::sched::parse_schedstat;
use crate::smaps::MemUsage;
use crate::stat::Stat;
use crate::status::Status;

/// Index of an interned cgroup path (see [`Scanner::cgroup_path`]).
pub type CgroupId = u32;

/// One process: the cheap figures of every concept.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessRow {
    pub pid: i32,
    pub comm: InlineStr<64>,
    pub state: u8,
    pub ppid: i64,
    pub uid: Val<u64>,
    pub start_time_ticks: u64,
    pub vm_size: Val<u64>,
    pub rss: Val<u64>,
    pub hwm: Val<u64>,
    pub swap: Val<u64>,
    pub locked: Val<u64>,
    pub minflt: u64,
    pub majflt: u64,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    pub threads: u64,
    pub nice: i64,
    pub voluntary_switches: Val<u64>,
    pub involuntary_switches: Val<u64>,
    /// Signal masks of status: ignored (per process), blocked (main thread), pending
    /// for the process.
    pub sig_ign: Val<u64>,
    pub sig_blk: Val<u64>,
    pub shd_pnd: Val<u64>,
    pub run_queue_wait_ns: Val<u64>,
    pub fds: Val<u64>,
    pub fd_soft_limit: Val<LimitValue>,
    pub oom_score: Val<u64>,
    /// The memory controller's cgroup (v1), or the unified one (v2).
    #[serde(skip)]
    pub cgroup: Val<CgroupId>,
    /// smaps_rollup, only when asked for.
    pub rollup: Option<Val<MemUsage>>,
}

/// The slow tier of one process, kept between passes.
#[derive(Debug, Clone)]
struct Slow {
    start_time_ticks: u64,
    pass: u64,
    fd_soft_limit: Val<LimitValue>,
    oom_score: Val<u64>,
    cgroup: Val<CgroupId>,
}

/// Options of one pass.
#[derive(Debug, Clone, Copy)]
pub struct ScanOptions {
    /// Read smaps_rollup of every process (expensive for the targets).
    pub rollup: bool,
    /// Re-read the slow tier when it is this many passes old (1 = every pass).
    pub slow_every: u64,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            rollup: false,
            slow_every: 1,
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
    slow: HashMap<i32, Slow>,
    cgroup_ids: HashMap<Box<[u8]>, CgroupId>,
    cgroup_paths: Vec<String>,
    pass: u64,
}

impl Scanner {
    pub fn new(reader: Reader) -> Scanner {
        Scanner {
            reader,
            pids: Vec::with_capacity(1024),
            scratch: Vec::new(),
            rows: Vec::with_capacity(1024),
            slow: HashMap::with_capacity(1024),
            cgroup_ids: HashMap::new(),
            cgroup_paths: Vec::new(),
            pass: 0,
        }
    }

    pub fn reader(&mut self) -> &mut Reader {
        &mut self.reader
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
        for i in 0..self.pids.len() {
            let pid = self.pids[i];
            // A process that left between the listing and its read is simply not in
            // this pass; any other failure still yields a row with the reasons.
            if let Ok(row) = self.read_one(pid, opts) {
                self.rows.push(row);
            }
        }
        let pass = self.pass;
        let every = opts.slow_every.max(1);
        self.slow
            .retain(|_, s| pass - s.pass <= every.saturating_mul(4));
    }

    fn read_one(&mut self, pid: i32, opts: ScanOptions) -> Val<ProcessRow> {
        let dir = self.reader.open_pid(pid)?;
        let stat = Stat::parse(self.reader.read_pid(&dir, "stat")?)?;
        if stat.pid != i64::from(pid) {
            return Err(Missing::malformed(
                "stat",
                "pid field differs from the directory",
            ));
        }
        let status = match self.reader.read_pid(&dir, "status") {
            Ok(b) => Status::parse(b),
            Err(Missing::Exited) => return Err(Missing::Exited),
            Err(e) => return Err(e),
        };
        let run_queue_wait_ns = self
            .reader
            .read_pid(&dir, "schedstat")
            .and_then(parse_schedstat)
            .map(|s| s.wait_ns);
        let kthread = stat.is_kernel_thread();
        let fds = if kthread {
            Err(KTHREAD)
        } else {
            fd_count(&self.reader, &dir, &mut self.scratch)
        };
        let slow = self.slow_tier(&dir, stat.start_time_ticks, kthread, opts.slow_every.max(1));
        let rollup = opts
            .rollup
            .then(|| match self.reader.read_pid(&dir, "smaps_rollup") {
                Ok(b) => MemUsage::parse_rollup(b),
                Err(e) => Err(e),
            });
        Ok(ProcessRow {
            pid,
            comm: stat.comm,
            state: stat.state,
            ppid: stat.ppid,
            uid: status.uid_real,
            start_time_ticks: stat.start_time_ticks,
            vm_size: status.vm_size,
            rss: status.vm_rss,
            hwm: status.vm_hwm,
            swap: status.vm_swap,
            locked: status.vm_lck,
            minflt: stat.minflt,
            majflt: stat.majflt,
            utime_ticks: stat.utime_ticks,
            stime_ticks: stat.stime_ticks,
            threads: stat.num_threads,
            nice: stat.nice,
            voluntary_switches: status.voluntary_ctxt_switches,
            involuntary_switches: status.nonvoluntary_ctxt_switches,
            sig_ign: status.sig_ign,
            sig_blk: status.sig_blk,
            shd_pnd: status.shd_pnd,
            run_queue_wait_ns,
            fds,
            fd_soft_limit: slow.fd_soft_limit,
            oom_score: slow.oom_score,
            cgroup: slow.cgroup,
            rollup,
        })
    }

    /// The slow tier, from the cache when fresh enough and the process is the same one
    /// (same start time: a reused PID is a new process).
    fn slow_tier(&mut self, dir: &PidDir, start: u64, kthread: bool, every: u64) -> Slow {
        if let Some(s) = self.slow.get(&dir.pid) {
            if s.start_time_ticks == start && self.pass - s.pass < every {
                return s.clone();
            }
        }
        let fd_soft_limit = if kthread {
            Err(KTHREAD)
        } else {
            match self
                .reader
                .is_live()
                .then(|| nofile_by_prlimit(dir.pid))
                .flatten()
            {
                Some(soft) => Ok(soft),
                None => self
                    .reader
                    .read_pid(dir, "limits")
                    .and_then(parse_nofile)
                    .map(|(soft, _)| soft),
            }
        };
        let oom_score = if kthread {
            Err(KTHREAD)
        } else {
            self.reader.read_pid(dir, "oom_score").and_then(|b| {
                u64_dec(b).ok_or_else(|| Missing::malformed("oom_score", crate::parse::text(b)))
            })
        };
        let cgroup = match self.reader.read_pid(dir, "cgroup") {
            Ok(b) => Ok(intern(
                &mut self.cgroup_ids,
                &mut self.cgroup_paths,
                cgroup_of_interest(b),
            )),
            Err(e) => Err(e),
        };
        let s = Slow {
            start_time_ticks: start,
            pass: self.pass,
            fd_soft_limit,
            oom_score,
            cgroup,
        };
        self.slow.insert(dir.pid, s.clone());
        s
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
                rollup: false,
                slow_every: u64::MAX,
            },
        );
        assert_eq!(rows.len(), 1);
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
        let rows = s.scan_pids(&[2], ScanOptions::default());
        assert_eq!(rows[0].fds.clone().unwrap_err().kind(), "not_applicable");
        assert_eq!(rows[0].oom_score.clone().unwrap_err(), KTHREAD);
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
