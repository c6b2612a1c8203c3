//! A temporary swap file, added only when the user asks (`--allow-swapfile`, root) and
//! removed whatever happens: swapoff and delete on drop and on a signal, and a later
//! run removes one that a killed run left.

use std::ffi::CString;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::cleanup::{self, Guard, Resource};
use super::owner;

/// An active swap file, removed when dropped.
#[derive(Debug)]
pub struct SwapFile {
    path: PathBuf,
    _guard: Guard,
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
}

/// Writes a swap area of `len` bytes: zeros (a swap file may have no holes) and the
/// version-1 header mkswap(8) writes: version, last page, no bad pages at offset 1024,
/// and the SWAPSPACE2 signature at the end of the first page.
fn write_swap_area(path: &Path, len: usize) -> io::Result<()> {
    let ps = rustix::param::page_size();
    let pages = len / ps;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    let zeros = vec![0u8; 1 << 20];
    let mut left = pages * ps;
    while left > 0 {
        let n = left.min(zeros.len());
        f.write_all(&zeros[..n])?;
        left -= n;
    }
    f.seek(SeekFrom::Start(1024))?;
    f.write_all(&1u32.to_le_bytes())?;
    f.write_all(&((pages - 1) as u32).to_le_bytes())?;
    f.write_all(&0u32.to_le_bytes())?;
    f.seek(SeekFrom::Start((ps - 10) as u64))?;
    f.write_all(b"SWAPSPACE2")?;
    f.sync_all()
}

/// The share of a file system's free space a temporary swap file may take: the rest
/// stays for the host (a full disk stops services; a swap file cannot be sparse).
pub const FREE_SHARE_PERCENT: u64 = 50;

/// Whether a swap file of `len` bytes may be written in `dir`: at most
/// [`FREE_SHARE_PERCENT`] of the space free to unprivileged users there. The reason
/// (sizes and path) when it may not.
pub fn fits(dir: &Path, len: u64) -> Result<(), String> {
    let st = rustix::fs::statvfs(dir)
        .map_err(|e| format!("free space of {} unreadable: {e}", dir.display()))?;
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    if len > free / 100 * FREE_SHARE_PERCENT {
        return Err(format!(
            "a {} MiB swap file would take more than {FREE_SHARE_PERCENT}% of the {} MiB free on {}",
            len >> 20,
            free >> 20,
            dir.display()
        ));
    }
    Ok(())
}

impl SwapFile {
    /// Creates and enables a swap file of `len` bytes at `path` (root only).
    pub fn add(path: &Path, len: usize) -> io::Result<SwapFile> {
        use std::os::unix::fs::PermissionsExt;
        // Registered before it exists, so an interrupt at any point removes it.
        let guard = cleanup::register(Resource::SwapFile(path.to_owned()));
        write_swap_area(path, len)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let c = cpath(path)?;
        // SAFETY: a valid path; swapon only reads it.
        if unsafe { libc::swapon(c.as_ptr(), 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(SwapFile {
            path: path.to_owned(),
            _guard: guard,
        })
    }

    /// The swap file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// swapoff (if active) and delete.
pub fn remove(path: &Path) -> io::Result<()> {
    if let Ok(c) = cpath(path) {
        if active().iter().any(|p| p == path) {
            // SAFETY: a valid path; the kernel moves its pages back to memory.
            unsafe { libc::swapoff(c.as_ptr()) };
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Paths of the active swap areas.
pub fn active() -> Vec<PathBuf> {
    std::fs::read("/proc/swaps")
        .ok()
        .and_then(|b| syslens_probe::system::parse_swaps(&b).ok())
        .map(|v| v.into_iter().map(|s| PathBuf::from(s.filename)).collect())
        .unwrap_or_default()
}

/// Removes active swap files of earlier syslens runs whose process is gone.
pub fn sweep_stale() -> Vec<PathBuf> {
    active()
        .into_iter()
        .filter(|p| {
            p.parent()
                .and_then(|d| d.file_name())
                .and_then(|n| owner::made_by_dead_run(&n.to_string_lossy()))
                == Some(true)
        })
        .filter(|p| remove(p).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_14_a_swap_file_is_bounded_by_the_free_disk() {
        let dir = tempfile::tempdir().unwrap();
        let st = rustix::fs::statvfs(dir.path()).unwrap();
        let free = st.f_bavail * st.f_frsize;
        assert_eq!(fits(dir.path(), 1 << 20), Ok(()));
        let half = free / 100 * FREE_SHARE_PERCENT;
        // Just under and over the share (the free space moves a little between reads:
        // a margin of 64 MiB each side).
        assert_eq!(fits(dir.path(), half.saturating_sub(64 << 20)), Ok(()));
        let e = fits(dir.path(), half + (64 << 20)).unwrap_err();
        assert!(
            e.contains("more than 50% of the") && e.contains("MiB free on"),
            "{e}"
        );
        assert!(fits(Path::new("/no/such/dir"), 1)
            .unwrap_err()
            .contains("unreadable"));
    }
}
