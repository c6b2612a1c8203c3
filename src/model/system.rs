//! The system view: the whole machine as the concepts read it, sampled at both ends
//! of a watch window for rates.

use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;
use syslens_probe::cgroup::{CgroupLayout, CpuCgroup, MemoryCgroup, PidsCgroup};
use syslens_probe::locks::{parse_locks, FileLock};
use syslens_probe::mountinfo::{parse_mountinfo, Mount};
use syslens_probe::psi::{parse_psi, Psi};
use syslens_probe::stat::Stat;
use syslens_probe::system::{
    parse_buddyinfo, parse_dentry_state, parse_slabinfo, parse_swaps, proc_u64, BuddyZone,
    DentryState, Meminfo, ProcStat, SlabCache, Swap, Vmstat,
};
use syslens_probe::{Files, Missing, Reader, Val};

use crate::model::figure::{rate, Sample};
use crate::model::host::Host;

/// The counters sampled at both ends of the window.
#[derive(Debug, Clone)]
pub struct SysSample {
    /// When the sample was read.
    pub at: Instant,
    /// /proc/meminfo.
    pub meminfo: Val<Meminfo>,
    /// /proc/vmstat.
    pub vmstat: Val<Vmstat>,
    /// /proc/stat.
    pub stat: Val<ProcStat>,
}

impl SysSample {
    /// Reads the counters now from `files`; `at` is when they were read.
    pub fn read(files: &mut impl Files, at: Instant) -> SysSample {
        SysSample {
            at,
            meminfo: files.proc_file("meminfo").map(Meminfo::parse),
            vmstat: files.proc_file("vmstat").map(Vmstat::parse),
            stat: files.proc_file("stat").and_then(ProcStat::parse),
        }
    }
}

/// Space on a mounted file system (statvfs).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FsUsage {
    /// Total size, in bytes (f_blocks * f_frsize).
    pub size: u64,
    /// Bytes in use (blocks not free).
    pub used: u64,
    /// Bytes an unprivileged user may still write (f_bavail; less than free by the reserve).
    pub available: u64,
}

/// A mount and its usage.
#[derive(Debug, Clone)]
pub struct MountUsage {
    /// The mount, from the reader's mountinfo.
    pub mount: Mount,
    /// Its statvfs; missing for network file systems and captured trees.
    pub usage: Val<FsUsage>,
}

/// Processes by state, from every /proc/PID/stat.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StateCounts {
    /// Processes (thread groups) whose stat was read.
    pub processes: u64,
    /// Threads of those processes.
    pub threads: u64,
    /// In state R: running or runnable.
    pub running: u64,
    /// In state S: interruptible sleep.
    pub sleeping: u64,
    /// In state D: uninterruptible sleep, usually I/O.
    pub disk_sleep: u64,
    /// In state Z: exited, not reaped.
    pub zombie: u64,
    /// In state T or t: stopped, or stopped by a tracer.
    pub stopped: u64,
    /// In state I: idle kernel threads.
    pub idle: u64,
}

/// The cgroup that `--cgroup PATH` scopes the view to.
#[derive(Debug)]
pub struct ScopedCgroup {
    /// The path as asked for.
    pub path: String,
    /// Whether the cgroup exists under any mounted controller.
    pub exists: bool,
    /// The cgroup's memory controller files.
    pub memory: Val<MemoryCgroup>,
    /// The cgroup's CPU controller files.
    pub cpu: Val<CpuCgroup>,
    /// The cgroup's pids controller files.
    pub pids: Val<PidsCgroup>,
}

impl ScopedCgroup {
    /// Reads the memory, CPU and pids files of the cgroup at `path` (as /proc/PID/cgroup
    /// writes it) under each controller's mount in `layout`.
    pub fn read(files: &mut impl Files, layout: &Val<CgroupLayout>, path: &str) -> ScopedCgroup {
        let dir = |c: &'static str| -> Val<syslens_probe::cgroup::CgroupDir> {
            let l = layout.as_ref().map_err(Clone::clone)?;
            l.dir_at(c, path).ok_or(Missing::NotApplicable {
                why: "controller not mounted",
            })
        };
        let exists = layout.as_ref().is_ok_and(|l| {
            ["memory", "cpu", "pids"]
                .iter()
                .filter_map(|c| l.dir_at(c, path))
                .any(|d| files.is_dir(&d.host_dir))
        });
        ScopedCgroup {
            path: path.to_owned(),
            exists,
            memory: dir("memory").map(|d| MemoryCgroup::read(files, d)),
            cpu: dir("cpu").map(|d| CpuCgroup::read(files, d)),
            pids: dir("pids").map(|d| PidsCgroup::read(files, d)),
        }
    }
}

/// Single-value settings of /proc/sys.
#[derive(Debug, Clone)]
pub struct Sysctls {
    /// vm.overcommit_memory: 0 heuristic, 1 always, 2 strict.
    pub overcommit_memory: Val<u64>,
    /// vm.overcommit_ratio: percent of RAM CommitLimit counts under strict overcommit.
    pub overcommit_ratio: Val<u64>,
    /// vm.swappiness: 0 to 200, how readily anonymous memory is swapped rather than cache dropped.
    pub swappiness: Val<u64>,
    /// vm.max_map_count: mappings a process may have.
    pub max_map_count: Val<u64>,
    /// allocated, unused, max file handles.
    pub file_nr: Val<[u64; 3]>,
    /// fs.nr_open: the ceiling of any process's RLIMIT_NOFILE.
    pub nr_open: Val<u64>,
    /// kernel.pid_max: pids wrap around below this.
    pub pid_max: Val<u64>,
    /// kernel.threads-max: threads the kernel allows in all.
    pub threads_max: Val<u64>,
}

/// Everything the system lenses need.
#[derive(Debug)]
pub struct SystemView {
    /// The machine: kernel, CPUs, memory, cgroup mode, settings.
    pub host: Host,
    /// Samples over the window, first to last.
    pub samples: Vec<SysSample>,
    /// /proc/pressure/{cpu,memory,io}, by resource name.
    pub pressure: [(&'static str, Val<Psi>); 3],
    /// /proc/swaps.
    pub swaps: Val<Vec<Swap>>,
    /// /proc/buddyinfo.
    pub buddy: Val<Vec<BuddyZone>>,
    /// /proc/slabinfo (root only).
    pub slabs: Val<Vec<SlabCache>>,
    /// /proc/sys/fs/dentry-state.
    pub dentry: Val<DentryState>,
    /// Mounted real file systems (pseudo ones left out), the topmost of each mount point.
    pub mounts: Val<Vec<MountUsage>>,
    /// The host's cgroup mounts.
    pub layout: Val<CgroupLayout>,
    /// The cgroup of `--cgroup`, when asked for.
    pub scope: Option<ScopedCgroup>,
    /// Single-value settings of /proc/sys.
    pub sysctl: Sysctls,
    /// Processes by state, counted from every /proc/PID/stat.
    pub states: Val<StateCounts>,
    /// /proc/locks.
    pub locks: Val<Vec<FileLock>>,
    /// The page size, in bytes.
    pub page_size: u64,
    /// True when read from the live host, false for a captured tree.
    pub live: bool,
}

fn statvfs(reader: &Reader, m: &Mount) -> Val<FsUsage> {
    if !reader.is_live() {
        return Err(Missing::NotApplicable {
            why: "a captured tree records no file-system usage",
        });
    }
    // statvfs on a network file system can hang for minutes when the server is away
    // (the reason `df` has -l): those are not queried.
    if matches!(
        m.fs_type.as_str(),
        "nfs" | "nfs4" | "cifs" | "smb3" | "9p" | "afs" | "ceph" | "glusterfs"
    ) || m.fs_type.starts_with("fuse.")
    {
        return Err(Missing::NotApplicable {
            why: "network file system: not queried (it could hang)",
        });
    }
    let st = rustix::fs::statvfs(reader.host_path(&m.mount_point))
        .map_err(|e| Missing::from_io(&m.mount_point, &e.into()))?;
    let unit = st.f_frsize;
    Ok(FsUsage {
        size: st.f_blocks * unit,
        used: (st.f_blocks - st.f_bfree) * unit,
        available: st.f_bavail * unit,
    })
}

fn count_states(reader: &mut Reader) -> Val<StateCounts> {
    let mut pids = Vec::new();
    reader.pids(&mut pids)?;
    let mut c = StateCounts::default();
    for pid in pids {
        let Ok(dir) = reader.open_pid(pid) else {
            continue;
        };
        let Ok(stat) = reader.read_pid(&dir, "stat").and_then(Stat::parse) else {
            continue;
        };
        c.count(stat.state, stat.num_threads);
    }
    Ok(c)
}

impl StateCounts {
    /// Counts one process in `state` with `threads` threads.
    pub fn count(&mut self, state: u8, threads: u64) {
        self.processes += 1;
        self.threads += threads;
        match state {
            b'R' => self.running += 1,
            b'S' => self.sleeping += 1,
            b'D' => self.disk_sleep += 1,
            b'Z' => self.zombie += 1,
            b'T' | b't' => self.stopped += 1,
            b'I' => self.idle += 1,
            _ => {}
        }
    }
}

impl SystemView {
    /// Reads the machine; on the live host, samples the counters five more times over
    /// `window` (none for a zero window).
    pub fn collect(reader: &mut Reader, window: Duration, cgroup: Option<&str>) -> SystemView {
        let started = Instant::now();
        let first = SysSample::read(reader, started);
        let host = Host::read(reader);
        let layout = CgroupLayout::read(reader);
        let scope = cgroup.map(|path| ScopedCgroup::read(reader, &layout, path));
        let mounts = reader
            .read_proc("self/mountinfo")
            .and_then(parse_mountinfo)
            .map(|ms| {
                // Of mounts stacked on one point only the last is visible.
                let visible: Vec<Mount> = ms
                    .iter()
                    .enumerate()
                    .filter(|(i, m)| {
                        !ms[i + 1..]
                            .iter()
                            .any(|later| later.mount_point == m.mount_point)
                    })
                    .map(|(_, m)| m.clone())
                    .collect();
                visible
                    .into_iter()
                    .filter(|m| !m.is_pseudo())
                    .map(|m| MountUsage {
                        usage: statvfs(reader, &m),
                        mount: m,
                    })
                    .collect()
            });
        let mut view = SystemView {
            states: count_states(reader),
            page_size: rustix::param::page_size() as u64,
            live: reader.is_live(),
            samples: vec![first],
            mounts,
            layout,
            scope,
            ..SystemView::files_only(reader, host)
        };
        if reader.is_live() && !window.is_zero() {
            let ticks = 5u32;
            for i in 1..=ticks {
                if let Some(wait) =
                    (started + window / ticks * i).checked_duration_since(Instant::now())
                {
                    thread::sleep(wait);
                }
                view.samples.push(SysSample::read(reader, Instant::now()));
            }
        }
        view
    }

    /// The parts every source of files has: the pressure, swaps, buddy, slab, dentry and
    /// lock files and the sysctls, beside `host`. The samples, process states, mounts and
    /// cgroups are left missing for the caller to fill.
    fn files_only(files: &mut impl Files, host: Host) -> SystemView {
        let sysctl = Sysctls {
            overcommit_memory: proc_u64(files, "sys/vm/overcommit_memory"),
            overcommit_ratio: proc_u64(files, "sys/vm/overcommit_ratio"),
            swappiness: proc_u64(files, "sys/vm/swappiness"),
            max_map_count: proc_u64(files, "sys/vm/max_map_count"),
            file_nr: files.proc_file("sys/fs/file-nr").and_then(|b| {
                let v: Vec<u64> = syslens_probe::parse::tokens(b)
                    .filter_map(syslens_probe::parse::u64_dec)
                    .collect();
                match v.as_slice() {
                    [a, b, c] => Ok([*a, *b, *c]),
                    _ => Err(Missing::malformed(
                        "/proc/sys/fs/file-nr",
                        syslens_probe::parse::text(b),
                    )),
                }
            }),
            nr_open: proc_u64(files, "sys/fs/nr_open"),
            pid_max: proc_u64(files, "sys/kernel/pid_max"),
            threads_max: proc_u64(files, "sys/kernel/threads-max"),
        };
        let unread = || Missing::NotApplicable {
            why: "not part of this view",
        };
        SystemView {
            pressure: [
                ("cpu", files.proc_file("pressure/cpu").and_then(parse_psi)),
                (
                    "memory",
                    files.proc_file("pressure/memory").and_then(parse_psi),
                ),
                ("io", files.proc_file("pressure/io").and_then(parse_psi)),
            ],
            swaps: files.proc_file("swaps").and_then(parse_swaps),
            buddy: files.proc_file("buddyinfo").and_then(parse_buddyinfo),
            slabs: files.proc_file("slabinfo").and_then(parse_slabinfo),
            dentry: files
                .proc_file("sys/fs/dentry-state")
                .and_then(parse_dentry_state),
            locks: files.proc_file("locks").and_then(parse_locks),
            sysctl,
            host,
            samples: Vec::new(),
            mounts: Err(unread()),
            layout: Err(unread()),
            scope: None,
            states: Err(unread()),
            page_size: rustix::param::page_size() as u64,
            live: false,
        }
    }

    /// The view of a recorded moment: `then` the files stored with the sample, `before`
    /// those of the sample one interval earlier (rates over the interval between them),
    /// `states` counted from the recorded process table.
    pub fn recorded(
        then: (&mut impl Files, Instant),
        before: Option<(&mut impl Files, Instant)>,
        states: StateCounts,
        page_size: u64,
        cgroup: Option<&str>,
    ) -> SystemView {
        let (files, at) = then;
        let host = Host::read(files);
        let layout = CgroupLayout::read(files);
        let scope = cgroup.map(|path| ScopedCgroup::read(files, &layout, path));
        let mut samples: Vec<SysSample> = before
            .map(|(f, at)| SysSample::read(f, at))
            .into_iter()
            .collect();
        samples.push(SysSample::read(files, at));
        let not_recorded = || Missing::NotApplicable {
            why: "not recorded",
        };
        SystemView {
            samples,
            layout,
            scope,
            mounts: Err(not_recorded()),
            states: Ok(states),
            page_size,
            ..SystemView::files_only(files, host)
        }
    }

    /// The sample at the start of the window.
    pub fn first(&self) -> &SysSample {
        &self.samples[0]
    }

    /// The sample at the end of the window; missing with one sample only.
    pub fn last(&self) -> Val<&SysSample> {
        match self.samples.len() {
            0 | 1 => Err(Missing::NotApplicable {
                why: "one sample only: rates need a watch window (--window)",
            }),
            n => Ok(&self.samples[n - 1]),
        }
    }

    /// Seconds between the first and the last sample, as measured; None with one sample.
    pub fn window_secs(&self) -> Option<f64> {
        Some(
            self.last()
                .ok()?
                .at
                .duration_since(self.first().at)
                .as_secs_f64(),
        )
    }

    /// /proc/meminfo at the first sample.
    pub fn meminfo(&self) -> Val<&Meminfo> {
        self.figures().meminfo.as_ref().map_err(Clone::clone)
    }

    /// The sample single figures come from: the window's first on the host; in a
    /// recorded view the sample asked for (the one before it serves only the rates).
    fn figures(&self) -> &SysSample {
        match self.samples.last() {
            Some(last) if !self.live => last,
            _ => self.first(),
        }
    }

    /// One meminfo field at the first sample.
    pub fn mem_field(&self, f: impl Fn(&Meminfo) -> &Val<u64>) -> Val<u64> {
        f(self.meminfo()?).clone()
    }

    /// A vmstat counter at the first sample.
    pub fn vm_total(&self, f: fn(&Vmstat) -> &Val<u64>) -> Val<u64> {
        f(self.figures().vmstat.as_ref().map_err(Clone::clone)?).clone()
    }

    fn vm_sample(s: &SysSample, f: fn(&Vmstat) -> &Val<u64>) -> Val<Sample> {
        let value = f(s.vmstat.as_ref().map_err(Clone::clone)?).clone()?;
        Ok(Sample { value, at: s.at })
    }

    /// The rate of a vmstat counter over the window.
    pub fn vm_rate(&self, f: fn(&Vmstat) -> &Val<u64>) -> Val<f64> {
        rate(
            Self::vm_sample(self.first(), f),
            Self::vm_sample(self.last()?, f),
        )
    }

    /// The rate of a /proc/stat counter (ctxt) over the window.
    pub fn stat_rate(&self, f: fn(&ProcStat) -> &Val<u64>) -> Val<f64> {
        let sample = |s: &SysSample| -> Val<Sample> {
            let value = f(s.stat.as_ref().map_err(Clone::clone)?).clone()?;
            Ok(Sample { value, at: s.at })
        };
        rate(sample(self.first()), sample(self.last()?))
    }

    /// The share of all CPU time spent in one state over the window.
    pub fn cpu_share(&self, f: fn(&ProcStat) -> u64) -> Val<f64> {
        let a = self.first().stat.as_ref().map_err(Clone::clone)?;
        let b = self.last()?.stat.as_ref().map_err(Clone::clone)?;
        let total = b.total().saturating_sub(a.total());
        if total == 0 {
            return Err(Missing::NotApplicable {
                why: "no CPU time passed in the window",
            });
        }
        Ok(f(b).saturating_sub(f(a)) as f64 / total as f64)
    }
}
