//! Cleanup that always happens. Every child, cgroup and scratch path a lab makes is
//! registered here; a guard releases it on success, failure and panic (drop), and the
//! signal thread releases everything on SIGINT and SIGTERM before exiting 130 / 143.
//! What the children themselves started is the [`Reaper`](super::reaper::Reaper)'s.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, Once};

/// Something a lab made that must not outlive it.
#[derive(Debug, Clone)]
pub enum Resource {
    /// A child process: killed with SIGKILL.
    Process(i32),
    /// A file or directory: removed, recursively.
    Path(PathBuf),
    /// A cgroup directory syslens created: emptied and removed.
    Cgroup(PathBuf),
    /// A swap file syslens added: swapoff, then deleted.
    SwapFile(PathBuf),
}

static NEXT: AtomicU64 = AtomicU64::new(1);
static LIVE: Mutex<BTreeMap<u64, Resource>> = Mutex::new(BTreeMap::new());
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);
static INSTALL: Once = Once::new();

/// Releases its resource when dropped.
#[derive(Debug)]
#[must_use = "dropping the guard releases the resource at once"]
pub struct Guard {
    id: u64,
}

/// Records `r` for release on drop or interruption; the guard releases it.
pub fn register(r: Resource) -> Guard {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut live) = LIVE.lock() {
        live.insert(id, r);
    }
    Guard { id }
}

impl Guard {
    /// Forgets the resource without releasing it (its owner released it already).
    pub fn disarm(self) {
        if let Ok(mut live) = LIVE.lock() {
            live.remove(&self.id);
        }
        std::mem::forget(self);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let r = LIVE.lock().ok().and_then(|mut live| live.remove(&self.id));
        if let Some(r) = r {
            release(&r);
        }
    }
}

fn release(r: &Resource) {
    match r {
        Resource::Process(pid) => {
            sigkill(*pid);
        }
        Resource::Path(p) => {
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(p)
            } else {
                std::fs::remove_file(p)
            };
        }
        Resource::Cgroup(p) => {
            let _ = super::cgroup::remove_dir(p);
        }
        Resource::SwapFile(p) => {
            let _ = super::swap::remove(p);
        }
    }
}

/// Releases everything still registered: children first (they may hold files and
/// sit in cgroups), then cgroups, then paths.
pub fn release_all() {
    let all: Vec<Resource> = LIVE
        .lock()
        .map(|mut l| std::mem::take(&mut *l).into_values().collect())
        .unwrap_or_default();
    let rank = |r: &Resource| match r {
        Resource::Process(_) => 0,
        Resource::Cgroup(_) => 1,
        Resource::SwapFile(_) => 2,
        Resource::Path(_) => 3,
    };
    let mut all = all;
    all.sort_by_key(rank);
    for r in &all {
        release(r);
    }
}

/// Removes what dead syslens runs left (a run killed with SIGKILL releases nothing):
/// their swap files first (swapoff, then delete: an active swap file cannot be
/// unlinked), then their scratch directories, then their lab cgroups. Each is named
/// `syslens-lab-PID-N` after the run that made it, and only those whose PID no longer
/// runs are touched. Returns one line per thing removed.
pub fn sweep_dead_runs(reader: &mut syslens_probe::Reader) -> Vec<String> {
    let mut removed: Vec<String> = super::swap::sweep_stale()
        .into_iter()
        .map(|p| format!("swap file {} (swapoff, deleted)", p.display()))
        .collect();
    removed.extend(
        super::scratch::sweep_all()
            .into_iter()
            .map(|p| format!("scratch directory {}", p.display())),
    );
    removed.extend(
        super::cgroup::sweep_stale(reader, &["memory", "cpu", "pids"])
            .into_iter()
            .map(|p| format!("cgroup {}", p.display())),
    );
    removed
}

/// How long the main thread has to unwind after a signal before the signal thread
/// releases everything itself and exits.
const UNWIND_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the SIGINT / SIGTERM handling once. The signal kills the lab's children and
/// their descendants at once and is recorded ([`interrupted`]); the main thread, which
/// checks it at every wait, unwinds (its guards release what it made, the reaper reaps
/// the rest), writes what finished and exits 128 + signal. Should it not manage within
/// a few seconds, this thread releases and reaps everything and exits itself.
pub fn install_signal_handler() {
    INSTALL.call_once(|| {
        let Ok(mut signals) = signal_hook::iterator::Signals::new([libc::SIGINT, libc::SIGTERM])
        else {
            return;
        };
        std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                INTERRUPTED.store(sig, Ordering::SeqCst);
                kill_children();
                super::reaper::kill_descendants();
                std::thread::sleep(UNWIND_GRACE);
                release_all();
                for line in super::reaper::sweep() {
                    super::reaper::warn(&line);
                }
                std::process::exit(128 + sig);
            }
        });
    });
}

fn kill_children() {
    let pids: Vec<i32> = LIVE
        .lock()
        .map(|l| {
            l.values()
                .filter_map(|r| {
                    if let Resource::Process(p) = r {
                        Some(*p)
                    } else {
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    for pid in pids {
        sigkill(pid);
    }
}

/// The signal that interrupted the run, if one did.
pub fn interrupted() -> Option<i32> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// SIGKILL to a process that may have left already (the error is of no use then).
pub fn sigkill(pid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid).filter(|p| p.as_raw_nonzero().get() > 0)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_removes_its_path_on_drop_and_disarm_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"x").unwrap();
        drop(register(Resource::Path(a.clone())));
        assert!(!a.exists());
        let b = dir.path().join("b");
        std::fs::write(&b, b"x").unwrap();
        register(Resource::Path(b.clone())).disarm();
        assert!(b.exists());
    }
}
