//! What the decoders ask of the live host while decoding (names, limits, mappings,
//! ancestry, cgroups), cached and bounded; the exit feed; and the wait for readiness.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant, SystemTime};

use rustix::event::{poll, PollFd, PollFlags};
use syslens_probe::kallsyms::Kallsyms;
use syslens_probe::kmsg::OomWatch;
use syslens_probe::sched::Syscall;
use syslens_probe::smaps::{parse_maps, MapKind};
use syslens_probe::status::Status;
use syslens_probe::taskstats::{ExitStatus, ExitWatch, TaskExit};
use syslens_probe::trace::{Session, TaskRecord};
use syslens_probe::{Missing, Reader, Val};

use crate::model::event::{
    Context, MappingKind, MemoryRead, ProcessExit, Resident, ThreadCall, PENDING_MAX,
};

/// How long a cached name, map or membership is trusted.
const FRESH: Duration = Duration::from_secs(1);

type Ranges = Vec<(u64, u64, MappingKind)>;

/// The live host, as the decoders see it.
#[derive(Debug)]
pub struct HostContext {
    reader: Reader,
    /// Wall-clock time minus CLOCK_MONOTONIC, refreshed every loop (NTP steps it).
    wall_offset: Duration,
    comms: HashMap<i32, (Option<String>, Instant)>,
    maps: HashMap<i32, (Ranges, Instant)>,
    parents: HashMap<i32, Option<i32>>,
    cgroups: HashMap<i32, (Vec<String>, Instant)>,
    /// Names of live processes, from a scan at start and perf's task records after:
    /// a sample is named even when its process exited before it was read.
    names: HashMap<i32, String>,
    /// Processes that exited in the last drain: forgotten at the next, so samples
    /// read in the same drain still find their names.
    exited: Vec<i32>,
    /// Kernel functions, to name a stack's caller (read at the first stack).
    kallsyms: Option<Val<Kallsyms>>,
}

fn monotonic() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Empties a cache that reached its bound (processes come and go; stale entries are
/// cheap to read again).
fn bounded<K, V>(map: &mut HashMap<K, V>) {
    if map.len() >= PENDING_MAX / 16 {
        map.clear();
    }
}

impl HostContext {
    /// A context reading through `reader` (the live host).
    pub fn new(reader: Reader) -> HostContext {
        let mut ctx = HostContext {
            reader,
            wall_offset: Duration::ZERO,
            comms: HashMap::new(),
            maps: HashMap::new(),
            parents: HashMap::new(),
            cgroups: HashMap::new(),
            names: HashMap::new(),
            exited: Vec::new(),
            kallsyms: None,
        };
        ctx.refresh_clock();
        ctx
    }

    /// Names every process alive now (the task records name those that come later).
    pub fn scan_names(&mut self) {
        let mut pids = Vec::new();
        if self.reader.pids(&mut pids).is_ok() {
            for pid in pids {
                if let Some(comm) = self.read_text(pid, "comm") {
                    self.names.insert(pid, comm.trim_end().to_string());
                }
            }
        }
    }

    /// Learns from a task record: a process's new name, its parent, its exit.
    pub fn task(&mut self, record: &TaskRecord<'_>) {
        match *record {
            TaskRecord::Comm { pid, tid, comm } if pid == tid => {
                self.names
                    .insert(pid as i32, String::from_utf8_lossy(comm).into_owned());
            }
            TaskRecord::Fork { pid, tid, ppid } if pid == tid => {
                // A new process starts with its parent's name (until it execs); records
                // come in time order, so a name known for this pid is an older process's.
                if let Some(name) = self.names.get(&(ppid as i32)).cloned() {
                    self.names.insert(pid as i32, name);
                }
                bounded(&mut self.parents);
                self.parents.insert(pid as i32, Some(ppid as i32));
            }
            TaskRecord::Exit { pid, tid } if pid == tid => self.exited.push(pid as i32),
            _ => {}
        }
    }

    /// Forgets the processes that exited before the last drain.
    pub fn forget_exited(&mut self) {
        for pid in std::mem::take(&mut self.exited) {
            self.names.remove(&pid);
            self.parents.remove(&pid);
        }
    }

    /// The reader.
    pub fn reader(&mut self) -> &mut Reader {
        &mut self.reader
    }

    /// Re-reads the offset between the wall clock and CLOCK_MONOTONIC.
    pub fn refresh_clock(&mut self) {
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        self.wall_offset = wall.saturating_sub(monotonic());
    }

    /// The CPUs online (every one gets a ring buffer); CPU 0 alone if the list is unreadable.
    pub fn online_cpus(&mut self) -> Vec<u32> {
        self.reader
            .read_host("/sys/devices/system/cpu/online")
            .ok()
            .and_then(|b| crate::model::host::cpu_list(&String::from_utf8_lossy(b)))
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| vec![0])
    }

    fn read_text(&mut self, pid: i32, name: &str) -> Option<String> {
        let dir = self.reader.open_pid(pid).ok()?;
        self.reader
            .read_pid(&dir, name)
            .ok()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// Whether `pid` is `root` or descends from it (parents cached: a process that
    /// exited keeps the parent it was last seen with).
    pub fn descends_from(&mut self, pid: i32, root: i32) -> bool {
        let mut p = pid;
        for _ in 0..64 {
            if p == root {
                return true;
            }
            if p <= 1 {
                return false;
            }
            let parent = match self.parents.get(&p) {
                Some(&parent) => parent,
                None => {
                    let parent = self.read_text(p, "stat").and_then(|s| {
                        let ppid = syslens_probe::stat::Stat::parse(s.as_bytes()).ok()?.ppid;
                        i32::try_from(ppid).ok()
                    });
                    bounded(&mut self.parents);
                    self.parents.insert(p, parent);
                    parent
                }
            };
            match parent {
                Some(parent) => p = parent,
                None => return false,
            }
        }
        false
    }

    /// Whether `pid` is in `cgroup` (a path below a hierarchy's root) or below it, in
    /// any hierarchy.
    pub fn in_cgroup(&mut self, pid: i32, cgroup: &str) -> bool {
        let fresh = self
            .cgroups
            .get(&pid)
            .is_some_and(|(_, at)| at.elapsed() < FRESH);
        if !fresh {
            let paths = self
                .read_text(pid, "cgroup")
                .and_then(|t| syslens_probe::cgroup::parse_proc_cgroup(t.as_bytes()).ok())
                .map(|ms| ms.into_iter().map(|m| m.path).collect())
                .unwrap_or_default();
            bounded(&mut self.cgroups);
            self.cgroups.insert(pid, (paths, Instant::now()));
        }
        let want = cgroup.trim_end_matches('/');
        self.cgroups.get(&pid).is_some_and(|(paths, _)| {
            paths.iter().any(|p| {
                p == want
                    || p.strip_prefix(want)
                        .is_some_and(|rest| rest.starts_with('/'))
                    || want.is_empty()
            })
        })
    }
}

fn classify(kind: MapKind, perms: &str) -> MappingKind {
    if perms.as_bytes().get(3) == Some(&b's') || kind == MapKind::SharedMemory {
        MappingKind::Shared
    } else if matches!(kind, MapKind::Library | MapKind::File) {
        MappingKind::File
    } else {
        MappingKind::Anon
    }
}

impl Context for HostContext {
    fn wall(&self, monotonic_ns: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + self.wall_offset + Duration::from_nanos(monotonic_ns)
    }

    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn kernel_caller(&mut self, stack: &[u64]) -> Option<String> {
        // Read once, when the first stack comes: 120 000 functions, a few MiB.
        let reader = &mut self.reader;
        let table = self.kallsyms.get_or_insert_with(|| Kallsyms::read(reader));
        table.as_ref().ok()?.caller(stack).map(str::to_owned)
    }

    fn resident(&mut self, pid: i32) -> Option<Resident> {
        let dir = self.reader.open_pid(pid).ok()?;
        let status = Status::parse(self.reader.read_pid(&dir, "status").ok()?);
        Some(Resident {
            anon: status.rss_anon.ok()?,
            file: status.rss_file.ok()?,
            shmem: status.rss_shmem.ok()?,
        })
    }

    fn same_address_space(&mut self, a: i32, b: i32) -> bool {
        syslens_probe::process::same_address_space(a, b).unwrap_or(false)
    }

    fn read_u32(&mut self, pid: i32, addr: u64) -> Result<u32, MemoryRead> {
        syslens_probe::process::read_u32(pid, addr).map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) => MemoryRead::Refused,
            _ => MemoryRead::Unreadable,
        })
    }

    fn monotonic_ns(&self) -> u64 {
        monotonic().as_nanos() as u64
    }

    fn threads_in_syscall(&mut self, nr: i64) -> Vec<(i32, u32, [u64; 6])> {
        let mut found = Vec::new();
        syslens_probe::process::threads_in_syscall(&mut self.reader, nr, &mut found);
        found
            .into_iter()
            .map(|(pid, tid, args)| (pid, tid as u32, args))
            .collect()
    }

    fn thread_call(&mut self, pid: i32, tid: u32) -> ThreadCall {
        match syslens_probe::process::thread_syscall(&mut self.reader, pid, tid as i32) {
            Ok(Syscall::In { nr, args }) => ThreadCall::In { nr, args },
            Ok(Syscall::Running | Syscall::Blocked) => ThreadCall::Elsewhere,
            Err(Missing::Exited) => ThreadCall::Gone,
            Err(_) => ThreadCall::Unknown,
        }
    }

    fn namespace_tids(&mut self, pid: i32) -> Option<HashMap<u32, u32>> {
        syslens_probe::process::namespace_tids(&mut self.reader, pid)
    }

    fn comm(&mut self, pid: i32) -> Option<String> {
        if let Some(name) = self.names.get(&pid) {
            return Some(name.clone());
        }
        if let Some((comm, at)) = self.comms.get(&pid) {
            if at.elapsed() < FRESH {
                return comm.clone();
            }
        }
        let comm = self
            .read_text(pid, "comm")
            .map(|c| c.trim_end().to_string());
        // A process that is gone keeps its last known name.
        let comm = comm.or_else(|| self.comms.get(&pid).and_then(|(c, _)| c.clone()));
        bounded(&mut self.comms);
        self.comms.insert(pid, (comm.clone(), Instant::now()));
        comm
    }

    fn nofile_limit(&mut self, pid: i32) -> Option<u64> {
        let text = self.read_text(pid, "limits")?;
        let (soft, _) = syslens_probe::limits::parse_nofile(text.as_bytes()).ok()?;
        match soft {
            syslens_probe::limits::LimitValue::Value(v) => Some(v),
            syslens_probe::limits::LimitValue::Unlimited => None,
        }
    }

    fn mapping(&mut self, pid: i32, addr: u64) -> Option<MappingKind> {
        let find = |r: &Ranges| {
            r.iter()
                .find(|(s, e, _)| (*s..*e).contains(&addr))
                .map(|(_, _, k)| *k)
        };
        if let Some((ranges, at)) = self.maps.get(&pid) {
            // A hit is trusted; a miss re-reads the maps, at most once per FRESH.
            if let Some(k) = find(ranges) {
                return Some(k);
            }
            if at.elapsed() < FRESH {
                return None;
            }
        }
        let ranges: Ranges = self
            .read_text(pid, "maps")
            .and_then(|t| parse_maps(t.as_bytes()).ok())
            .map(|ms| {
                ms.into_iter()
                    .map(|m| (m.start, m.end, classify(m.kind, &m.perms)))
                    .collect()
            })
            .unwrap_or_default();
        let kind = find(&ranges);
        bounded(&mut self.maps);
        self.maps.insert(pid, (ranges, Instant::now()));
        kind
    }
}

/// Process exits from taskstats: one record per process, however short its life.
#[derive(Debug)]
pub struct ExitFeed {
    watch: ExitWatch,
    records: Vec<TaskExit>,
}

impl ExitFeed {
    /// Registers for every CPU's exit records, or says why it cannot.
    pub fn open(cpus: &[u32]) -> Result<ExitFeed, String> {
        let list: Vec<String> = cpus.iter().map(u32::to_string).collect();
        ExitWatch::open(&list.join(","))
            .map(|watch| ExitFeed {
                watch,
                records: Vec::new(),
            })
            .map_err(|e| e.to_string())
    }

    /// The processes that exited since the last call.
    pub fn drain(&mut self) -> Vec<ProcessExit> {
        self.records.clear();
        // A failed read leaves what was decoded before it; the next call goes on.
        let _ = self.watch.drain(&mut self.records);
        self.records.iter().filter_map(process_exit).collect()
    }

    /// Times the socket's buffer overflowed (each lost at least one record).
    pub fn overruns(&self) -> u64 {
        self.watch.overruns()
    }
}

impl AsFd for ExitFeed {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.watch.as_fd()
    }
}

/// A taskstats record as a process exit: only the record that ends a process (a
/// single-threaded one's own, or a group's last thread's), not each thread's.
fn process_exit(r: &TaskExit) -> Option<ProcessExit> {
    if r.ends_process != Some(true) {
        return None;
    }
    let (exit_code, signal, core_dumped) = match r.exit {
        Some(ExitStatus::Exited { code }) => (Some(code), None, None),
        Some(ExitStatus::Killed {
            signal,
            core_dumped,
        }) => (None, i32::try_from(signal).ok(), Some(core_dumped)),
        None => (None, None, None),
    };
    Some(ProcessExit {
        pid: r.tgid.unwrap_or(r.pid) as i32,
        ppid: r.ppid.map(|p| p as i32),
        comm: r.comm.clone().unwrap_or_default(),
        exit_code,
        signal,
        core_dumped,
        lifetime: r
            .process_elapsed_us
            .or(r.elapsed_us)
            .map(Duration::from_micros),
        cpu: r.process_cpu_us().map(Duration::from_micros),
        peak_rss_bytes: r.hiwater_rss_bytes,
        minflt: r.minflt,
        majflt: r.majflt,
        read_bytes: r.read_bytes,
        write_bytes: r.write_bytes,
    })
}

/// Waits until a ring buffer, the exit feed or the kernel log is readable, or `timeout`.
pub fn wait_readable(
    session: &Session,
    exits: Option<&ExitFeed>,
    kmsg: Option<&OomWatch>,
    timeout: Duration,
) {
    let mut fds: Vec<PollFd<'_>> = session
        .fds()
        .map(|fd| PollFd::from_borrowed_fd(fd, PollFlags::IN))
        .collect();
    if let Some(e) = exits {
        fds.push(PollFd::from_borrowed_fd(e.as_fd(), PollFlags::IN));
    }
    if let Some(k) = kmsg {
        fds.push(PollFd::from_borrowed_fd(k.as_fd(), PollFlags::IN));
    }
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos() as i64,
    };
    // EINTR (a signal) ends the wait early, which is what the caller wants.
    let _ = poll(&mut fds, Some(&ts));
}
