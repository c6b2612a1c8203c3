//! Scratch directories for labs: on a persistent (disk) file system when the lab needs
//! page-cache behaviour, on tmpfs when it needs RAM; always `syslens-lab-PID-START-N`,
//! always removed, and swept when a killed run left one behind.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::cleanup::{self, Guard, Resource};
use super::owner;

/// statfs magic numbers (linux/magic.h).
const TMPFS_MAGIC: i64 = 0x0102_1994;
const RAMFS_MAGIC: i64 = 0x8584_58f6;
const OVERLAYFS_MAGIC: i64 = 0x794c_7630;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// What a lab needs its files to sit on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// A disk file system with a page cache that can be evicted (not tmpfs, ramfs or
    /// overlayfs, whose pages cannot be dropped or are not the backing store's).
    Persistent,
    /// RAM-backed (tmpfs).
    Memory,
}

fn fs_type(path: &Path) -> Option<i64> {
    rustix::fs::statfs(path).ok().map(|s| s.f_type)
}

/// Whether `path` is on a file system that keeps data on disk (not tmpfs, ramfs or overlayfs).
pub fn is_persistent(path: &Path) -> bool {
    matches!(fs_type(path), Some(t) if t != TMPFS_MAGIC && t != RAMFS_MAGIC && t != OVERLAYFS_MAGIC)
}

/// Whether `path` is on a file system in memory (tmpfs or ramfs).
pub fn is_memory(path: &Path) -> bool {
    matches!(fs_type(path), Some(TMPFS_MAGIC) | Some(RAMFS_MAGIC))
}

/// Where to look, first to last. SYSLENS_TMPDIR wins when it fits.
fn candidates(backing: Backing) -> Vec<PathBuf> {
    let mut c: Vec<PathBuf> = std::env::var_os("SYSLENS_TMPDIR")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    match backing {
        Backing::Persistent => {
            c.extend(["/var/tmp", "/tmp"].map(PathBuf::from));
            if let Some(home) = std::env::var_os("HOME") {
                c.push(PathBuf::from(home));
            }
            if let Ok(cwd) = std::env::current_dir() {
                c.push(cwd);
            }
        }
        Backing::Memory => c.extend(["/dev/shm", "/run", "/tmp"].map(PathBuf::from)),
    }
    c
}

/// A directory the lab owns; removed (with its content) on drop or on a signal.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
    _guard: Guard,
}

impl ScratchDir {
    /// A fresh directory on the first candidate with `backing`, removed when dropped; stale ones are swept first.
    pub fn new(backing: Backing) -> io::Result<ScratchDir> {
        let fits = |p: &Path| match backing {
            Backing::Persistent => is_persistent(p),
            Backing::Memory => is_memory(p),
        };
        let base = candidates(backing)
            .into_iter()
            .find(|p| p.is_dir() && fits(p))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    match backing {
                        Backing::Persistent => {
                            "no writable disk file system found (set SYSLENS_TMPDIR to one)"
                        }
                        Backing::Memory => "no tmpfs found (set SYSLENS_TMPDIR to one)",
                    },
                )
            })?;
        sweep(&base);
        let path = base.join(owner::name(SEQ.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir(&path)?;
        let guard = cleanup::register(Resource::Path(path.clone()));
        Ok(ScratchDir {
            path,
            _guard: guard,
        })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Removes the `syslens-lab-*` directories of dead runs in every place a lab may
/// put one (disk and tmpfs, SYSLENS_TMPDIR included).
pub fn sweep_all() -> Vec<PathBuf> {
    let mut bases = candidates(Backing::Persistent);
    bases.extend(candidates(Backing::Memory));
    let mut seen = Vec::new();
    let mut removed = Vec::new();
    for base in bases {
        if !seen.contains(&base) {
            removed.extend(sweep(&base));
            seen.push(base);
        }
    }
    removed
}

/// Removes `syslens-lab-*` directories in `base` whose run is gone
/// ([`owner::made_by_dead_run`]).
pub fn sweep(base: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(base) else {
        return removed;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if owner::made_by_dead_run(&name) == Some(true) && std::fs::remove_dir_all(e.path()).is_ok()
        {
            removed.push(e.path());
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persistent_scratch_is_on_disk_and_removed() {
        let dir = match ScratchDir::new(Backing::Persistent) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("SKIPPED: {e}");
                return;
            }
        };
        let p = dir.path().to_owned();
        assert!(is_persistent(&p));
        std::fs::write(p.join("f"), b"x").unwrap();
        drop(dir);
        assert!(!p.exists());
    }

    #[test]
    fn sweep_removes_only_dead_owners() {
        let base = tempfile::tempdir().unwrap();
        let dead = base.path().join("syslens-lab-2147483646-0");
        let alive = base
            .path()
            .join(format!("syslens-lab-{}-0", std::process::id()));
        let other = base.path().join("unrelated");
        for d in [&dead, &alive, &other] {
            std::fs::create_dir(d).unwrap();
        }
        assert_eq!(sweep(base.path()), vec![dead.clone()]);
        assert!(alive.exists() && other.exists() && !dead.exists());
    }
}
