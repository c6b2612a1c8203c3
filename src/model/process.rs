//! The lens of a live process: everything the concepts show of one PID, collected
//! once through the probe and handed to each concept's room to turn into a section.

use std::thread;
use std::time::{Duration, Instant};

use syslens_probe::cgroup::{CgroupLayout, CgroupMode, CpuCgroup, MemoryCgroup, PidsCgroup};
use syslens_probe::locks::{parse_locks, FileLock};
use syslens_probe::ns::{initial_namespaces, kernel_version, parse_ns_link, InitialNs};
use syslens_probe::process::{DetailOptions, ProcessDetail};
use syslens_probe::sched::{parse_schedstat, SchedStat};
use syslens_probe::stat::Stat;
use syslens_probe::status::Status;
use syslens_probe::{Missing, PidDir, Reader, Val};

use crate::model::figure::Sample;
pub use crate::model::figure::Section;
use crate::model::limits::EffectiveLimits;
use crate::model::locks::Carriers;

/// One cheap sample (stat, status, schedstat) taken during the watch window.
#[derive(Debug, Clone)]
pub struct WindowSample {
    /// When the sample was read.
    pub at: Instant,
    /// /proc/PID/stat.
    pub stat: Val<Stat>,
    /// /proc/PID/status.
    pub status: Val<Status>,
    /// /proc/PID/schedstat (the main thread).
    pub schedstat: Val<SchedStat>,
}

impl WindowSample {
    fn read(reader: &mut Reader, dir: &PidDir) -> WindowSample {
        let stat = reader.read_pid(dir, "stat").and_then(Stat::parse);
        let status = reader.read_pid(dir, "status").map(Status::parse);
        let schedstat = reader.read_pid(dir, "schedstat").and_then(parse_schedstat);
        WindowSample {
            at: Instant::now(),
            stat,
            status,
            schedstat,
        }
    }

    /// A counter of stat (faults, ticks) as a sample for rates.
    pub fn stat_counter(&self, f: impl Fn(&Stat) -> u64) -> Val<Sample> {
        let at = self.at;
        self.stat
            .as_ref()
            .map(|s| Sample { value: f(s), at })
            .map_err(Clone::clone)
    }

    /// A counter of status (context switches) as a sample for rates.
    pub fn status_counter(&self, f: impl Fn(&Status) -> &Val<u64>) -> Val<Sample> {
        let at = self.at;
        let status = self.status.as_ref().map_err(Clone::clone)?;
        f(status).clone().map(|value| Sample { value, at })
    }
}

/// Options for collecting a view.
#[derive(Debug, Clone, Copy)]
pub struct ViewOptions {
    /// How long to watch for rates and trends; zero takes one sample (no rates).
    pub window: Duration,
    /// Read smaps (PSS, sharing, per-mapping sizes); it stalls the target briefly.
    pub smaps: bool,
}

/// Everything the per-process lenses need.
#[derive(Debug)]
pub struct ProcessView {
    /// The process id.
    pub pid: i32,
    /// The one-shot reading of every file of the process.
    pub detail: ProcessDetail,
    /// Cheap samples over the window, first to last (one when the window is zero).
    pub window: Vec<WindowSample>,
    /// How the host mounts cgroups.
    pub cgroup_mode: CgroupMode,
    /// The memory controller's view of the process's cgroup.
    pub memory_cgroup: Val<MemoryCgroup>,
    /// The CPU controller's view of the process's cgroup.
    pub cpu_cgroup: Val<CpuCgroup>,
    /// The pids controller's view of the process's cgroup.
    pub pids_cgroup: Val<PidsCgroup>,
    /// The lowest memory, CPU and pids limits up the process's cgroup chains.
    pub limits: EffectiveLimits,
    /// The initial namespaces, to tell which of the process's are its own.
    pub initial_ns: Vec<InitialNs>,
    /// /proc/locks, for the locks the process holds or waits for.
    pub locks: Val<Vec<FileLock>>,
    /// The fds carrying the locks that concern the process, on every process.
    pub lock_carriers: Val<Carriers>,
    /// Whether smaps was read (not with `--no-smaps`).
    pub smaps_read: bool,
}

fn no_controller(what: &'static str) -> Missing {
    Missing::NotApplicable { why: what }
}

impl ProcessView {
    /// Reads `pid` once in full, then samples it over `opts.window`; Exited when it is gone.
    pub fn collect(reader: &mut Reader, pid: i32, opts: ViewOptions) -> Val<ProcessView> {
        let dir = reader.open_pid(pid)?;
        let mut window = vec![WindowSample::read(reader, &dir)];
        if matches!(window[0].stat, Err(Missing::Exited)) {
            return Err(Missing::Exited);
        }
        let started = Instant::now();
        let detail = ProcessDetail::read(reader, pid, DetailOptions { smaps: opts.smaps })?;
        let layout = CgroupLayout::read(reader);
        let memberships = detail.cgroups.clone();
        let (cgroup_mode, memory_cgroup, cpu_cgroup, pids_cgroup, limits) =
            match (&layout, &memberships) {
                (Ok(layout), Ok(members)) => {
                    let mem = layout
                        .locate(members, "memory")
                        .map(|d| MemoryCgroup::read(reader, d))
                        .ok_or_else(|| no_controller("no memory controller mounted"));
                    let cpu = layout
                        .locate(members, "cpu")
                        .map(|d| CpuCgroup::read(reader, d))
                        .ok_or_else(|| no_controller("no cpu controller mounted"));
                    let pids = layout
                        .locate(members, "pids")
                        .map(|d| PidsCgroup::read(reader, d))
                        .ok_or_else(|| no_controller("no pids controller mounted"));
                    let limits = EffectiveLimits::collect(reader, layout, members);
                    (layout.mode, mem, cpu, pids, limits)
                }
                (Err(e), _) | (_, Err(e)) => (
                    CgroupMode::None,
                    Err(e.clone()),
                    Err(e.clone()),
                    Err(e.clone()),
                    EffectiveLimits::missing(e.clone()),
                ),
            };
        let kernel = reader
            .read_proc("sys/kernel/osrelease")
            .ok()
            .and_then(kernel_version);
        let initial_ns = initial_namespaces(kernel, |kind| {
            let one = reader.open_pid(1).map_err(|_| Missing::NotApplicable {
                why: "this kernel gives the initial namespace no fixed inode, and PID 1 is not in the tree",
            })?;
            reader
                .readlink_pid(&one, &format!("ns/{kind}"))
                .and_then(parse_ns_link)
        });
        let locks = reader.read_proc("locks").and_then(parse_locks);
        let lock_carriers = match &locks {
            Ok(all) => {
                let ids = crate::model::locks::concerning(reader, all, pid);
                crate::model::locks::carriers(reader, all, &ids)
            }
            Err(e) => Err(e.clone()),
        };

        // Spread the remaining cheap samples over the window for rates and trends.
        if !opts.window.is_zero() {
            let ticks = 10u32;
            let step = opts.window / ticks;
            for i in 1..=ticks {
                let due = started + step * i;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    thread::sleep(wait);
                }
                let s = WindowSample::read(reader, &dir);
                let gone = matches!(s.stat, Err(Missing::Exited));
                window.push(s);
                if gone {
                    break;
                }
            }
        }
        Ok(ProcessView {
            pid,
            detail,
            window,
            cgroup_mode,
            memory_cgroup,
            cpu_cgroup,
            pids_cgroup,
            limits,
            initial_ns,
            locks,
            lock_carriers,
            smaps_read: opts.smaps,
        })
    }

    /// The path of a file of this process, for figure sources.
    pub fn src(&self, file: &str) -> String {
        format!("/proc/{}/{file}", self.pid)
    }

    /// The process's status, from the one-shot read.
    pub fn status(&self) -> Val<&Status> {
        self.detail.status.as_ref().map_err(Clone::clone)
    }

    /// The process's stat, from the one-shot read.
    pub fn stat(&self) -> Val<&Stat> {
        self.detail.stat.as_ref().map_err(Clone::clone)
    }

    /// A status field in the one-shot detail read.
    pub fn status_field(&self, f: impl Fn(&Status) -> &Val<u64>) -> Val<u64> {
        f(self.status()?).clone()
    }

    /// The sample at the start of the window.
    pub fn first(&self) -> &WindowSample {
        &self.window[0]
    }

    /// The last sample, when the window took more than one.
    pub fn last(&self) -> Val<&WindowSample> {
        match self.window.len() {
            0 | 1 => Err(Missing::NotApplicable {
                why: "one sample only: rates need a watch window (--window)",
            }),
            n => Ok(&self.window[n - 1]),
        }
    }

    /// Seconds the window really lasted, first sample to last.
    pub fn window_secs(&self) -> Option<f64> {
        let last = self.last().ok()?;
        Some(last.at.duration_since(self.first().at).as_secs_f64())
    }
}

/// Sum of two Vals, missing if either is.
pub fn sum(a: &Val<u64>, b: &Val<u64>) -> Val<u64> {
    Ok(a.clone()?.saturating_add(b.clone()?))
}

/// a / b as a ratio, missing when either is missing or b is zero.
pub fn ratio(a: &Val<u64>, b: &Val<u64>) -> Val<f64> {
    let (a, b) = (a.clone()?, b.clone()?);
    if b == 0 {
        return Err(Missing::NotApplicable {
            why: "denominator is zero",
        });
    }
    Ok(a as f64 / b as f64)
}
