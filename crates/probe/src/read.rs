//! The one reader every probe goes through: a root path (so tests and offline analysis
//! read a captured tree), one reused buffer, and processes opened by directory fd so a
//! reused PID cannot mix two processes' data.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, CWD};

use crate::missing::{Missing, Val};

/// Reads files below a root (`/` on a live host) into one reused buffer.
#[derive(Debug)]
pub struct Reader {
    root: PathBuf,
    proc_fd: OwnedFd,
    buf: Vec<u8>,
    link: Vec<u8>,
}

/// An open /proc/PID (or /proc/PID/task/TID) directory. Every file of one sample is
/// read relative to this fd: once the process exits, reads fail with ESRCH instead of
/// silently reading a newcomer that reused the PID.
#[derive(Debug)]
pub struct PidDir {
    pub pid: i32,
    /// Set when this is a thread's directory below its process.
    pub tid: Option<i32>,
    fd: OwnedFd,
}

impl PidDir {
    /// Opens `task/TID` of this process.
    pub fn task(&self, tid: i32) -> Val<PidDir> {
        let mut name = [0u8; 24];
        let name = format_into(&mut name, b"task/", tid);
        let fd = rustix::fs::openat(&self.fd, name, dir_flags(), Mode::empty())
            .map_err(|e| exited_or(e.into(), || format!("/proc/{}/task/{tid}", self.pid)))?;
        Ok(PidDir {
            pid: self.pid,
            tid: Some(tid),
            fd,
        })
    }

    /// The host path of a file in this directory, for messages.
    pub fn path(&self, name: &str) -> String {
        match self.tid {
            Some(tid) => format!("/proc/{}/task/{tid}/{name}", self.pid),
            None => format!("/proc/{}/{name}", self.pid),
        }
    }
}

/// A file of a process held open to be read again in place (see [`Reader::reread`]).
#[derive(Debug)]
pub struct HeldFile(OwnedFd);

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

/// Writes `prefix` followed by the decimal `n` into `out` without allocating.
fn format_into<'a>(out: &'a mut [u8; 24], prefix: &[u8], n: i32) -> &'a str {
    let mut digits = [0u8; 11];
    let mut len = 0;
    let mut v = n.unsigned_abs();
    loop {
        digits[len] = b'0' + (v % 10) as u8;
        len += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut at = prefix.len().min(out.len());
    out[..at].copy_from_slice(&prefix[..at]);
    for d in digits[..len].iter().rev() {
        if at < out.len() {
            out[at] = *d;
            at += 1;
        }
    }
    std::str::from_utf8(&out[..at]).unwrap_or("")
}

/// ENOENT on a file inside a process directory means the process left (a dead
/// process's directory keeps its fd but loses its entries), unless the process is
/// still there, in which case the kernel simply lacks the file.
fn exited_or(err: io::Error, path: impl FnOnce() -> String) -> Missing {
    match err.raw_os_error() {
        Some(2) | Some(3) => Missing::Exited,
        _ => Missing::from_io(&path(), &err),
    }
}

impl Reader {
    /// A reader of the live host.
    pub fn host() -> io::Result<Reader> {
        Reader::new("/")
    }

    /// A reader of the tree below `root`, which holds `proc/` (and `sys/` for cgroups).
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Reader> {
        let root = root.into();
        let proc_fd = rustix::fs::openat(CWD, root.join("proc"), dir_flags(), Mode::empty())?;
        Ok(Reader {
            root,
            proc_fd,
            buf: Vec::with_capacity(64 * 1024),
            link: Vec::with_capacity(256),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this reader looks at the live host rather than a captured tree.
    pub fn is_live(&self) -> bool {
        self.root == Path::new("/")
    }

    /// Maps an absolute host path (as written in mountinfo) below the root.
    pub fn host_path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    /// Opens /proc/PID.
    pub fn open_pid(&self, pid: i32) -> Val<PidDir> {
        let mut name = [0u8; 24];
        let name = format_into(&mut name, b"", pid);
        match rustix::fs::openat(&self.proc_fd, name, dir_flags(), Mode::empty()) {
            Ok(fd) => Ok(PidDir { pid, tid: None, fd }),
            Err(e) => Err(exited_or(e.into(), || format!("/proc/{pid}"))),
        }
    }

    /// Reads /proc/PID/NAME (or task/TID/NAME) into the shared buffer.
    pub fn read_pid(&mut self, dir: &PidDir, name: &str) -> Val<&[u8]> {
        let opened = rustix::fs::openat(
            &dir.fd,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        );
        let path = || dir.path(name);
        let fd = match opened {
            Ok(fd) => fd,
            Err(e) => return Err(self.classify_pid_error(dir, e.into(), path)),
        };
        match slurp(&fd, &mut self.buf, single_record(name), Offset::Current) {
            Ok(()) => Ok(&self.buf),
            Err(e) => Err(self.classify_pid_error(dir, e, path)),
        }
    }

    /// Opens /proc/PID/NAME (a file or the fd directory) to keep it for later reads.
    pub fn hold_pid(&self, dir: &PidDir, name: &str) -> Val<HeldFile> {
        rustix::fs::openat(
            &dir.fd,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map(HeldFile)
        .map_err(|e| self.classify_pid_error(dir, e.into(), || dir.path(name)))
    }

    /// Reads a held file again from its start. procfs generates the text anew on each
    /// read from offset 0, so a monitor that keeps its files open pays one pread per
    /// file and refresh instead of openat, read and close (the path walk and the file
    /// setup were a third of a scan's CPU). The fd stays bound to the process it was
    /// opened for: once that process exits, the read fails with ESRCH even when its
    /// PID has been reused, so a held file never reads a newcomer.
    pub fn reread(&mut self, dir: &PidDir, file: &HeldFile, name: &str) -> Val<&[u8]> {
        match slurp(&file.0, &mut self.buf, single_record(name), Offset::Start) {
            Ok(()) => Ok(&self.buf),
            Err(e) => Err(self.classify_pid_error(dir, e, || dir.path(name))),
        }
    }

    /// fstat(2) of a held file: for the fd directory, its size is the fd count now.
    pub fn stat_held(&self, dir: &PidDir, file: &HeldFile, name: &str) -> Val<rustix::fs::Stat> {
        rustix::fs::fstat(&file.0)
            .map_err(|e| self.classify_pid_error(dir, e.into(), || dir.path(name)))
    }

    fn classify_pid_error(
        &self,
        dir: &PidDir,
        err: io::Error,
        path: impl FnOnce() -> String,
    ) -> Missing {
        if err.raw_os_error() == Some(2) && !self.pid_alive(dir) {
            return Missing::Exited;
        }
        match err.raw_os_error() {
            Some(3) => Missing::Exited,
            Some(2) if !self.is_live() => {
                Missing::not_in_kernel(format!("{} (absent from the captured tree)", path()))
            }
            Some(2) => Missing::not_in_kernel(path()),
            _ => Missing::from_io(&path(), &err),
        }
    }

    fn pid_alive(&self, dir: &PidDir) -> bool {
        rustix::fs::statat(&dir.fd, "stat", AtFlags::empty()).is_ok()
    }

    /// Reads a symbolic link below /proc/PID (fd/N, ns/net, exe).
    pub fn readlink_pid(&mut self, dir: &PidDir, name: &str) -> Val<&[u8]> {
        let reuse = std::mem::take(&mut self.link);
        match rustix::fs::readlinkat(&dir.fd, name, reuse) {
            Ok(target) => {
                self.link = target.into_bytes();
                Ok(&self.link)
            }
            Err(e) => Err(self.classify_pid_error(dir, e.into(), || dir.path(name))),
        }
    }

    /// stat(2) of a path below /proc/PID, following links (fd/N gives the open file).
    pub fn stat_pid(&self, dir: &PidDir, name: &str) -> Val<rustix::fs::Stat> {
        rustix::fs::statat(&dir.fd, name, AtFlags::empty())
            .map_err(|e| self.classify_pid_error(dir, e.into(), || dir.path(name)))
    }

    /// Names in a directory below /proc/PID (fd, task), numeric entries only.
    pub fn list_pid_numbers(&self, dir: &PidDir, name: &str, out: &mut Vec<i32>) -> Val<()> {
        let pid = dir.pid;
        let fd = rustix::fs::openat(&dir.fd, name, dir_flags(), Mode::empty()).map_err(|e| {
            self.classify_pid_error(dir, e.into(), || format!("/proc/{pid}/{name}"))
        })?;
        list_numbers(fd, out)
            .map_err(|e| self.classify_pid_error(dir, e, || format!("/proc/{pid}/{name}")))
    }

    /// Every PID in /proc, ascending.
    pub fn pids(&self, out: &mut Vec<i32>) -> Val<()> {
        let fd = rustix::fs::openat(&self.proc_fd, ".", dir_flags(), Mode::empty())
            .map_err(|e| Missing::from_io("/proc", &e.into()))?;
        list_numbers(fd, out).map_err(|e| Missing::from_io("/proc", &e))?;
        out.sort_unstable();
        Ok(())
    }

    /// Reads /proc/NAME (meminfo, locks, self/mountinfo).
    pub fn read_proc(&mut self, name: &str) -> Val<&[u8]> {
        let fd = rustix::fs::openat(
            &self.proc_fd,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Missing::from_io(&format!("/proc/{name}"), &e.into()))?;
        slurp(&fd, &mut self.buf, false, Offset::Current)
            .map_err(|e| Missing::from_io(&format!("/proc/{name}"), &e))?;
        Ok(&self.buf)
    }

    /// Reads any file below the root, given as its host path (/sys/fs/cgroup/...).
    pub fn read_host(&mut self, abs: &str) -> Val<&[u8]> {
        let path = self.host_path(abs);
        self.buf.clear();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut self.buf))
            .map_err(|e| Missing::from_io(abs, &e))?;
        Ok(&self.buf)
    }
}

/// Files the kernel generates in one `show` call (single_open / ONE entries in
/// fs/proc/base.c): one read returns all of it when the buffer is larger, so a short
/// read is the end and the extra read that would return 0 is saved.
fn single_record(name: &str) -> bool {
    matches!(
        name.rsplit('/').next(),
        Some(
            "stat"
                | "status"
                | "statm"
                | "schedstat"
                | "oom_score"
                | "oom_score_adj"
                | "cgroup"
                | "limits"
                | "wchan"
                | "syscall"
        )
    )
}

/// Where [`slurp`] reads from.
#[derive(Clone, Copy)]
enum Offset {
    /// The file position (a freshly opened file).
    Current,
    /// The start of the file, whatever was read before (a held file).
    Start,
}

/// Reads a whole file into `buf` with plain read(2) or pread(2) calls. std's
/// `read_to_end` would first fstat and lseek to size its buffer: two wasted system
/// calls per /proc file.
fn slurp(fd: &OwnedFd, buf: &mut Vec<u8>, single_record: bool, from: Offset) -> io::Result<()> {
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(buf.capacity().max(4096));
        }
        let spare = buf.capacity() - buf.len();
        let at = buf.len() as u64;
        let into = rustix::buffer::spare_capacity(buf);
        let got = match from {
            Offset::Current => rustix::io::read(fd, into),
            Offset::Start => rustix::io::pread(fd, into, at),
        };
        match got {
            Ok(0) => return Ok(()),
            Ok(n) if single_record && n < spare => return Ok(()),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

fn list_numbers(fd: OwnedFd, out: &mut Vec<i32>) -> io::Result<()> {
    out.clear();
    let mut dir = rustix::fs::Dir::read_from(fd.as_fd())?;
    for entry in dir.by_ref() {
        let entry = entry?;
        if let Some(n) = std::str::from_utf8(entry.file_name().to_bytes())
            .ok()
            .and_then(|s| s.parse::<i32>().ok())
        {
            out.push(n);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_without_allocating() {
        let mut b = [0u8; 24];
        assert_eq!(format_into(&mut b, b"task/", 12345), "task/12345");
        assert_eq!(format_into(&mut b, b"", 0), "0");
    }

    #[test]
    fn reads_own_status_live() {
        let mut r = Reader::host().unwrap();
        let me = std::process::id() as i32;
        let dir = r.open_pid(me).unwrap();
        let text = r.read_pid(&dir, "status").unwrap();
        assert!(text.starts_with(b"Name:"));
    }

    #[test]
    fn vanished_pid_is_exited() {
        let r = Reader::host().unwrap();
        // PIDs above pid_max never exist.
        assert_eq!(r.open_pid(i32::MAX).unwrap_err(), Missing::Exited);
    }
}
