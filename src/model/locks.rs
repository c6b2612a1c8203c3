//! Who really holds a file lock. /proc/locks names a lock by device and inode and by the
//! pid that took it; that pid may be gone while a forked child still holds the lock
//! through the open file description they shared (flock and OFD locks belong to the
//! description, not to a process). The `lock:` lines of /proc/PID/fdinfo/N name every
//! fd that carries a lock, and the fd's link gives the file's path.

use serde::Serialize;
use syslens_probe::fds::{fd_locks, FdLock};
use syslens_probe::locks::FileLock;
use syslens_probe::{Missing, Reader, Val};

/// An open fd that carries a lock.
#[derive(Debug, Clone, Serialize)]
pub struct LockCarrier {
    /// The /proc/locks ordinal of the lock carried.
    pub lock_id: u64,
    /// The process whose fd it is.
    pub pid: i32,
    /// Its command name.
    pub comm: String,
    /// The descriptor number.
    pub fd: i32,
    /// The locked file's path, as that process opened it.
    pub path: String,
}

/// The carriers found, and how many processes could not be searched.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Carriers {
    /// Every fd found carrying one of the locks asked about.
    pub found: Vec<LockCarrier>,
    /// Processes whose fds could not be read (another user's, without root).
    pub unreadable: usize,
}

impl Carriers {
    /// The carriers of lock `id`.
    pub fn of(&self, id: u64) -> impl Iterator<Item = &LockCarrier> {
        self.found.iter().filter(move |c| c.lock_id == id)
    }

    /// The path of lock `id`, from any of its carriers.
    pub fn path(&self, id: u64) -> Option<&str> {
        self.of(id).next().map(|c| c.path.as_str())
    }
}

/// Searches every process's fds for the carriers of the held locks in `wanted`. It
/// reads one fdinfo file per open fd on the host, so it runs only for the few locks a
/// view asks about (a process's own, those waited on), never per refresh.
pub fn carriers(reader: &mut Reader, all: &[FileLock], wanted: &[u64]) -> Val<Carriers> {
    let mut out = Carriers::default();
    if wanted.is_empty() {
        return Ok(out);
    }
    let held: Vec<&FileLock> = all
        .iter()
        .filter(|l| !l.waiting && wanted.contains(&l.id))
        .collect();
    let mut pids = Vec::new();
    reader.pids(&mut pids)?;
    for pid in pids {
        let Ok(dir) = reader.open_pid(pid) else {
            continue;
        };
        let carried = match fd_locks(reader, &dir) {
            Ok(c) => c,
            Err(Missing::Exited) => continue,
            Err(_) => {
                out.unreadable += 1;
                continue;
            }
        };
        let mut comm = None;
        for FdLock { fd, target, lock } in carried {
            let Some(h) = held.iter().find(|h| h.same_lock(&lock)) else {
                continue;
            };
            let comm = comm
                .get_or_insert_with(|| {
                    reader
                        .read_pid(&dir, "comm")
                        .map(|b| String::from_utf8_lossy(b).trim_end().to_owned())
                        .unwrap_or_default()
                })
                .clone();
            out.found.push(LockCarrier {
                lock_id: h.id,
                pid,
                comm,
                fd,
                path: target,
            });
        }
    }
    Ok(out)
}

/// The locks that concern process `pid`: those it took, those it waits for, and those
/// its own fds carry though /proc/locks names another pid (inherited over fork). Reads
/// only `pid`'s own fdinfo.
pub fn concerning(reader: &mut Reader, all: &[FileLock], pid: i32) -> Vec<u64> {
    let own: Vec<FdLock> = reader
        .open_pid(pid)
        .and_then(|d| fd_locks(reader, &d))
        .unwrap_or_default();
    let mut ids: Vec<u64> = all
        .iter()
        .filter(|l| l.pid == i64::from(pid) || own.iter().any(|o| o.lock.same_lock(l)))
        .map(|l| l.id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}
