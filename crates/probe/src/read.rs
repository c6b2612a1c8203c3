//! The one reader every probe goes through: a root path (so tests and offline analysis
//! read a captured tree), one reused buffer, and processes opened by directory fd so a
//! reused PID cannot mix two processes' data.
//!
//! A captured tree is untrusted input: trees are made to be shared, and one can hold a
//! FIFO, a device, a link to the host's /dev/zero or a sparse file of any size where a
//! /proc file is expected. Below a captured root every open is non-blocking and may
//! not resolve out of the tree, only regular files are read, and every read is capped;
//! anything else is [`Missing::Refused`] with the reason. The live host's /proc is
//! read as before (no extra system call on the hot path), with a cap as well.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, CWD};
use rustix::io::Errno;

use crate::missing::{Missing, Val};

/// Reads files below a root (`/` on a live host) into one reused buffer.
#[derive(Debug)]
pub struct Reader {
    root: PathBuf,
    /// The root directory of a captured tree (None on the live host), for
    /// [`Reader::read_host`].
    tree: Option<OwnedFd>,
    proc_fd: OwnedFd,
    buf: Vec<u8>,
    link: Vec<u8>,
}

/// An open /proc/PID (or /proc/PID/task/TID) directory. Every file of one sample is
/// read relative to this fd: once the process exits, reads fail with ESRCH instead of
/// silently reading a newcomer that reused the PID.
#[derive(Debug)]
pub struct PidDir {
    /// The process id.
    pub pid: i32,
    /// Set when this is a thread's directory below its process.
    pub tid: Option<i32>,
    fd: OwnedFd,
    /// Whether the directory is part of a captured tree (opened the untrusting way).
    captured: bool,
}

impl PidDir {
    /// Opens `task/TID` of this process.
    pub fn task(&self, tid: i32) -> Val<PidDir> {
        let mut name = [0u8; 24];
        let name = format_into(&mut name, b"task/", tid);
        let fd = open_below(self.captured, self.fd.as_fd(), name, dir_flags())
            .map_err(|e| exited_or(e, || format!("/proc/{}/task/{tid}", self.pid)))?;
        Ok(PidDir {
            pid: self.pid,
            tid: Some(tid),
            fd,
            captured: self.captured,
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
fn exited_or(err: Failure, path: impl FnOnce() -> String) -> Missing {
    match err {
        Failure::Refused(why) => Missing::refused(path(), why),
        Failure::Io(e) if matches!(e.raw_os_error(), Some(2) | Some(3)) => Missing::Exited,
        Failure::Io(e) => Missing::from_io(&path(), &e),
    }
}

/// Why a read failed: the system call's error, or a file of a captured tree that is
/// not read at all.
#[derive(Debug)]
enum Failure {
    Io(io::Error),
    Refused(String),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

impl From<Errno> for Failure {
    fn from(e: Errno) -> Self {
        Failure::Io(e.into())
    }
}

impl Failure {
    fn into_missing(self, path: &str) -> Missing {
        match self {
            Failure::Io(e) => Missing::from_io(path, &e),
            Failure::Refused(why) => Missing::refused(path, why),
        }
    }
}

/// The most a captured tree's file may hold, and the larger allowance of the
/// per-mapping files (smaps of a process with 65530 mappings, the default
/// vm.max_map_count, is ~52 MB at ~790 bytes a mapping).
const CAPTURED_CAP: usize = 4 << 20;
const CAPTURED_MAP_CAP: usize = 64 << 20;
/// The same on the live host, where the kernel bounds each file but a raised
/// vm.max_map_count lets smaps of one process reach gigabytes.
const LIVE_CAP: usize = 64 << 20;
const LIVE_MAP_CAP: usize = 256 << 20;

/// The files with a line per mapping of the process.
fn is_map_file(name: &str) -> bool {
    matches!(
        name.rsplit('/').next(),
        Some("smaps" | "maps" | "numa_maps")
    )
}

/// The most [`slurp`] reads of `name`.
fn cap_of(captured: bool, name: &str) -> usize {
    match (captured, is_map_file(name)) {
        (true, false) => CAPTURED_CAP,
        (true, true) => CAPTURED_MAP_CAP,
        (false, false) => LIVE_CAP,
        (false, true) => LIVE_MAP_CAP,
    }
}

fn mib(bytes: usize) -> String {
    format!("{} MiB", bytes >> 20)
}

/// Opens `name` below `dir`. On the live host a plain openat. In a captured tree the
/// open cannot block (O_NONBLOCK: a FIFO opens at once and reads nothing) and the path
/// cannot leave the tree (RESOLVE_BENEATH: an absolute link, such as one to the
/// host's /dev/zero, or a `..` out of `dir` is refused; links inside the tree are
/// followed). Kernels before 5.6 lack openat2: there a link in place of the file
/// itself is refused (O_NOFOLLOW), but links among the directories on its path are
/// still followed.
fn open_below(
    captured: bool,
    dir: BorrowedFd<'_>,
    name: &str,
    flags: OFlags,
) -> Result<OwnedFd, Failure> {
    if !captured {
        return Ok(rustix::fs::openat(dir, name, flags, Mode::empty())?);
    }
    let flags = flags | OFlags::NONBLOCK | OFlags::NOCTTY;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    let opened = match rustix::fs::openat2(dir, name, flags, Mode::empty(), resolve) {
        // Before 5.6, or under a seccomp filter older than openat2.
        Err(Errno::NOSYS) => {
            let flags = flags | OFlags::NOFOLLOW;
            rustix::fs::openat(dir, name, flags, Mode::empty())
        }
        other => other,
    };
    let refused = |why: &str| Failure::Refused(why.to_owned());
    opened.map_err(|e| match e {
        Errno::XDEV => refused("a link that leads out of the captured tree"),
        Errno::LOOP => refused("a symbolic link that cannot be followed safely"),
        Errno::NXIO => refused("not a regular file (a socket or a device)"),
        e => e.into(),
    })
}

/// Refuses a captured tree's file that is not a regular file or is larger than `cap`:
/// one fstat, before any read.
fn check_captured(fd: &OwnedFd, cap: usize) -> Result<(), Failure> {
    let st = rustix::fs::fstat(fd)?;
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => None,
        FileType::Directory => Some("a directory"),
        FileType::Fifo => Some("a FIFO"),
        FileType::CharacterDevice => Some("a character device"),
        FileType::BlockDevice => Some("a block device"),
        FileType::Socket => Some("a socket"),
        FileType::Symlink => Some("a symbolic link"),
        FileType::Unknown => Some("of unknown type"),
    };
    if let Some(kind) = kind {
        return Err(Failure::Refused(format!("not a regular file ({kind})")));
    }
    if st.st_size as u64 > cap as u64 {
        return Err(Failure::Refused(format!(
            "{} bytes, larger than {}",
            st.st_size,
            mib(cap)
        )));
    }
    Ok(())
}

impl Reader {
    /// A reader of the live host.
    pub fn host() -> io::Result<Reader> {
        Reader::new("/")
    }

    /// A reader of the tree below `root`, which holds `proc/` (and `sys/` for cgroups).
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Reader> {
        let root = root.into();
        let tree = if root == Path::new("/") {
            None
        } else {
            Some(rustix::fs::openat(CWD, &root, dir_flags(), Mode::empty())?)
        };
        let proc_fd = rustix::fs::openat(CWD, root.join("proc"), dir_flags(), Mode::empty())?;
        Ok(Reader {
            root,
            tree,
            proc_fd,
            buf: Vec::with_capacity(64 * 1024),
            link: Vec::with_capacity(256),
        })
    }

    /// The root the reader reads below (`/` on a live host).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this reader looks at the live host rather than a captured tree.
    pub fn is_live(&self) -> bool {
        self.tree.is_none()
    }

    /// Opens `name` below `dir`, the untrusting way in a captured tree ([`open_below`]).
    fn open_in(&self, dir: BorrowedFd<'_>, name: &str, flags: OFlags) -> Result<OwnedFd, Failure> {
        open_below(!self.is_live(), dir, name, flags)
    }

    /// Reads the open file `fd` (named `name`, for its cap) into the buffer from its
    /// current position or its start; a captured tree's file is checked first.
    fn read_fd(&mut self, fd: &OwnedFd, name: &str, from: Offset) -> Result<(), Failure> {
        let cap = cap_of(!self.is_live(), name);
        if !self.is_live() {
            check_captured(fd, cap)?;
        }
        slurp(fd, &mut self.buf, single_record(name), from, cap)
    }

    /// Maps an absolute host path (as written in mountinfo) below the root.
    pub fn host_path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    /// Opens /proc/PID.
    pub fn open_pid(&self, pid: i32) -> Val<PidDir> {
        let mut name = [0u8; 24];
        let name = format_into(&mut name, b"", pid);
        match self.open_in(self.proc_fd.as_fd(), name, dir_flags()) {
            Ok(fd) => Ok(PidDir {
                pid,
                tid: None,
                fd,
                captured: !self.is_live(),
            }),
            Err(e) => Err(exited_or(e, || format!("/proc/{pid}"))),
        }
    }

    /// Reads /proc/PID/NAME (or task/TID/NAME) into the shared buffer.
    pub fn read_pid(&mut self, dir: &PidDir, name: &str) -> Val<&[u8]> {
        let path = || dir.path(name);
        let fd = match self.open_in(dir.fd.as_fd(), name, file_flags()) {
            Ok(fd) => fd,
            Err(e) => return Err(self.classify_pid_error(dir, e, path)),
        };
        match self.read_fd(&fd, name, Offset::Current) {
            Ok(()) => Ok(&self.buf),
            Err(e) => Err(self.classify_pid_error(dir, e, path)),
        }
    }

    /// Opens /proc/PID/NAME (a file or the fd directory) to keep it for later reads.
    pub fn hold_pid(&self, dir: &PidDir, name: &str) -> Val<HeldFile> {
        self.open_in(dir.fd.as_fd(), name, file_flags())
            .map(HeldFile)
            .map_err(|e| self.classify_pid_error(dir, e, || dir.path(name)))
    }

    /// Reads a held file again from its start. procfs generates the text anew on each
    /// read from offset 0, so a monitor that keeps its files open pays one pread per
    /// file and refresh instead of openat, read and close (the path walk and the file
    /// setup were a third of a scan's CPU). The fd stays bound to the process it was
    /// opened for: once that process exits, the read fails with ESRCH even when its
    /// PID has been reused, so a held file never reads a newcomer.
    pub fn reread(&mut self, dir: &PidDir, file: &HeldFile, name: &str) -> Val<&[u8]> {
        match self.read_fd(&file.0, name, Offset::Start) {
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
        err: Failure,
        path: impl FnOnce() -> String,
    ) -> Missing {
        let err = match err {
            Failure::Refused(why) => return Missing::refused(path(), why),
            Failure::Io(e) => e,
        };
        // A captured tree does not change while it is read: nothing in it exits.
        if err.raw_os_error() == Some(2) && self.is_live() && !self.pid_alive(dir) {
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

    /// Reads a symbolic link below /proc/PID (fd/N, ns/net, exe). In a captured tree
    /// the directory holding the link is opened first, so that it too stays inside the
    /// tree, and a file that is not a link is refused as such.
    pub fn readlink_pid(&mut self, dir: &PidDir, name: &str) -> Val<&[u8]> {
        let path = || dir.path(name);
        let parent;
        let (at, leaf) = match name.rsplit_once('/') {
            Some((sub, leaf)) if !self.is_live() => {
                parent = self
                    .open_in(dir.fd.as_fd(), sub, dir_flags())
                    .map_err(|e| self.classify_pid_error(dir, e, path))?;
                (parent.as_fd(), leaf)
            }
            _ => (dir.fd.as_fd(), name),
        };
        let reuse = std::mem::take(&mut self.link);
        match rustix::fs::readlinkat(at, leaf, reuse) {
            Ok(target) => {
                self.link = target.into_bytes();
                Ok(&self.link)
            }
            Err(Errno::INVAL) if !self.is_live() => {
                Err(Missing::refused(path(), "not a symbolic link"))
            }
            Err(e) => Err(self.classify_pid_error(dir, e.into(), path)),
        }
    }

    /// stat(2) of a path below /proc/PID, following links (fd/N gives the open file).
    pub fn stat_pid(&self, dir: &PidDir, name: &str) -> Val<rustix::fs::Stat> {
        rustix::fs::statat(&dir.fd, name, AtFlags::empty())
            .map_err(|e| self.classify_pid_error(dir, e.into(), || dir.path(name)))
    }

    /// Names in a directory below /proc/PID (fd, task), numeric entries only.
    pub fn list_pid_numbers(&self, dir: &PidDir, name: &str, out: &mut Vec<i32>) -> Val<()> {
        let fd = self
            .open_in(dir.fd.as_fd(), name, dir_flags())
            .map_err(|e| self.classify_pid_error(dir, e, || dir.path(name)))?;
        list_numbers(fd, out).map_err(|e| self.classify_pid_error(dir, e.into(), || dir.path(name)))
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
        let path = || format!("/proc/{name}");
        let fd = self
            .open_in(self.proc_fd.as_fd(), name, file_flags())
            .map_err(|e| e.into_missing(&path()))?;
        self.read_fd(&fd, name, Offset::Current)
            .map_err(|e| e.into_missing(&path()))?;
        Ok(&self.buf)
    }

    /// Opens the kernel log (/dev/kmsg) non-blocking, for [`crate::kmsg`]. A captured
    /// tree has none: the host's log is not the tree's.
    pub(crate) fn open_kernel_log(&self) -> Val<OwnedFd> {
        if !self.is_live() {
            return Err(Missing::NotApplicable {
                why: "a captured tree has no kernel log",
            });
        }
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
        rustix::fs::openat(CWD, "/dev/kmsg", flags, Mode::empty())
            .map_err(|e| Missing::from_io("/dev/kmsg", &e.into()))
    }

    /// Reads any file below the root, given as its host path (/sys/fs/cgroup/...).
    pub fn read_host(&mut self, abs: &str) -> Val<&[u8]> {
        let opened = match &self.tree {
            None => {
                rustix::fs::openat(CWD, abs, file_flags(), Mode::empty()).map_err(Failure::from)
            }
            Some(tree) => {
                let below = abs.trim_start_matches('/');
                open_below(
                    true,
                    tree.as_fd(),
                    if below.is_empty() { "." } else { below },
                    file_flags(),
                )
            }
        };
        let fd = opened.map_err(|e| e.into_missing(abs))?;
        self.read_fd(&fd, abs, Offset::Current)
            .map_err(|e| e.into_missing(abs))?;
        Ok(&self.buf)
    }
}

fn file_flags() -> OFlags {
    OFlags::RDONLY | OFlags::CLOEXEC
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

/// Reads a whole file into `buf` with plain read(2) or pread(2) calls, refusing it
/// once it holds more than `cap` bytes (the buffer then holds at most `cap` plus
/// one read). std's `read_to_end` would first fstat and lseek to size its buffer: two
/// wasted system calls per /proc file.
fn slurp(
    fd: &OwnedFd,
    buf: &mut Vec<u8>,
    single_record: bool,
    from: Offset,
    cap: usize,
) -> Result<(), Failure> {
    buf.clear();
    loop {
        if buf.len() > cap {
            return Err(Failure::Refused(format!("larger than {}", mib(cap))));
        }
        if buf.capacity() - buf.len() < 4096 {
            // Doubling, but never far past the cap.
            let more = buf.capacity().max(4096).min(cap - buf.len() + 4096);
            buf.reserve_exact(more);
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
            Err(Errno::INTR) => {}
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

/// System-wide files by name, wherever they come from: a [`Reader`] reads them below its
/// root; a recorded sample hands back the bytes it stored. The parsers of the system
/// view read through this, so the past is read by the same code as the present.
pub trait Files {
    /// /proc/NAME (meminfo, pressure/memory, sys/vm/swappiness).
    fn proc_file(&mut self, name: &str) -> Val<&[u8]>;
    /// Any other file, by its host path (/sys/kernel/mm/transparent_hugepage/enabled).
    fn host_file(&mut self, abs: &str) -> Val<&[u8]>;
    /// Whether the directory at this host path holds anything to read (a cgroup's).
    fn is_dir(&mut self, abs: &str) -> bool;
}

impl Files for Reader {
    fn proc_file(&mut self, name: &str) -> Val<&[u8]> {
        self.read_proc(name)
    }

    fn host_file(&mut self, abs: &str) -> Val<&[u8]> {
        self.read_host(abs)
    }

    fn is_dir(&mut self, abs: &str) -> bool {
        self.host_path(abs).is_dir()
    }
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

    /// A captured tree in a temp dir with one process, 100, whose files a test replaces
    /// by hostile ones.
    struct Tree {
        dir: tempfile::TempDir,
    }

    impl Tree {
        fn new() -> Tree {
            let dir = tempfile::tempdir().unwrap();
            for d in ["proc/100/ns", "proc/self", "sys/fs/cgroup/memory/a"] {
                std::fs::create_dir_all(dir.path().join(d)).unwrap();
            }
            std::fs::write(dir.path().join("proc/100/status"), "Name:\tok\n").unwrap();
            Tree { dir }
        }

        fn path(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }

        fn link(&self, rel: &str, target: &str) {
            std::os::unix::fs::symlink(target, self.path(rel)).unwrap();
        }

        fn fifo(&self, rel: &str) {
            rustix::fs::mknodat(
                CWD,
                self.path(rel),
                FileType::Fifo,
                Mode::RUSR | Mode::WUSR,
                0,
            )
            .unwrap();
        }

        fn sparse(&self, rel: &str, len: u64) {
            std::fs::File::create(self.path(rel))
                .unwrap()
                .set_len(len)
                .unwrap();
        }

        fn reader(&self) -> Reader {
            Reader::new(self.dir.path()).unwrap()
        }
    }

    /// The reason of a refused read, failing the test for any other outcome.
    fn refusal<T: std::fmt::Debug>(got: Val<T>) -> String {
        match got {
            Err(Missing::Refused { why, .. }) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// Runs `f`, failing the test when it takes more than a second (a read that
    /// blocks would never return: the test then fails by the harness's timeout).
    fn quickly<T>(f: impl FnOnce() -> T) -> T {
        let start = std::time::Instant::now();
        let out = f();
        assert!(
            start.elapsed() < std::time::Duration::from_secs(1),
            "took {:?}",
            start.elapsed()
        );
        out
    }

    #[test]
    fn issue_14_root_link_to_dev_zero_is_refused() {
        let t = Tree::new();
        t.link("proc/meminfo", "/dev/zero");
        t.link("proc/100/smaps", "/dev/zero");
        t.link("proc/100/smaps_rollup", "../../../../../../../../dev/zero");
        t.link("sys/fs/cgroup/memory/a/memory.stat", "/dev/zero");
        let mut r = t.reader();
        let dir = r.open_pid(100).unwrap();
        let out_of_tree = "a link that leads out of the captured tree";
        assert_eq!(quickly(|| refusal(r.read_proc("meminfo"))), out_of_tree);
        assert_eq!(quickly(|| refusal(r.read_pid(&dir, "smaps"))), out_of_tree);
        assert_eq!(
            quickly(|| refusal(r.read_pid(&dir, "smaps_rollup"))),
            out_of_tree
        );
        assert_eq!(
            quickly(|| refusal(r.read_host("/sys/fs/cgroup/memory/a/memory.stat"))),
            out_of_tree
        );
        assert!(r.buf.capacity() <= 64 * 1024, "{}", r.buf.capacity());
    }

    #[test]
    fn issue_14_root_device_node_is_refused() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIPPED: creating a device node needs root");
            return;
        }
        let t = Tree::new();
        // /dev/zero's numbers (1, 5), made inside the tree, as an unpacked tar can.
        let zero = rustix::fs::makedev(1, 5);
        rustix::fs::mknodat(
            CWD,
            t.path("proc/meminfo"),
            FileType::CharacterDevice,
            Mode::RUSR,
            zero,
        )
        .unwrap();
        let mut r = t.reader();
        assert_eq!(
            quickly(|| refusal(r.read_proc("meminfo"))),
            "not a regular file (a character device)"
        );
    }

    #[test]
    fn issue_14_root_fifo_does_not_hang() {
        let t = Tree::new();
        std::fs::remove_file(t.path("proc/100/status")).unwrap();
        t.fifo("proc/100/status");
        t.fifo("proc/meminfo");
        t.fifo("sys/fs/cgroup/memory/a/memory.limit_in_bytes");
        let mut r = t.reader();
        let dir = r.open_pid(100).unwrap();
        let fifo = "not a regular file (a FIFO)";
        assert_eq!(quickly(|| refusal(r.read_pid(&dir, "status"))), fifo);
        assert_eq!(quickly(|| refusal(r.read_proc("meminfo"))), fifo);
        assert_eq!(
            quickly(|| refusal(r.read_host("/sys/fs/cgroup/memory/a/memory.limit_in_bytes"))),
            fifo
        );
        // A monitor's held file is checked on every read as well.
        let held = quickly(|| r.hold_pid(&dir, "status")).unwrap();
        assert_eq!(quickly(|| refusal(r.reread(&dir, &held, "status"))), fifo);
    }

    #[test]
    fn issue_14_root_directory_is_refused() {
        let t = Tree::new();
        std::fs::create_dir(t.path("proc/100/stat")).unwrap();
        let mut r = t.reader();
        let dir = r.open_pid(100).unwrap();
        let got = r.read_pid(&dir, "stat");
        assert_eq!(refusal(got), "not a regular file (a directory)");
    }

    #[test]
    fn issue_14_root_oversized_file_is_refused_unread() {
        let t = Tree::new();
        t.sparse("proc/100/smaps", 100 << 20);
        t.sparse("proc/meminfo", (4 << 20) + 1);
        let mut r = t.reader();
        let dir = r.open_pid(100).unwrap();
        assert_eq!(
            quickly(|| refusal(r.read_pid(&dir, "smaps"))),
            "104857600 bytes, larger than 64 MiB"
        );
        assert_eq!(
            quickly(|| refusal(r.read_proc("meminfo"))),
            "4194305 bytes, larger than 4 MiB"
        );
        assert!(r.buf.capacity() <= 64 * 1024, "{}", r.buf.capacity());
        // Up to the cap a file is read, and smaps may be larger than the others.
        t.sparse("proc/100/maps", 5 << 20);
        assert_eq!(r.read_pid(&dir, "maps").unwrap().len(), 5 << 20);
    }

    #[test]
    fn issue_14_read_cap_bounds_a_file_that_never_ends() {
        // /dev/zero read live: what a file that grows while it is read, or lies about
        // its size, looks like to slurp.
        let zero = rustix::fs::open("/dev/zero", OFlags::RDONLY, Mode::empty()).unwrap();
        let mut buf = Vec::new();
        let got = quickly(|| slurp(&zero, &mut buf, false, Offset::Current, 1 << 20));
        assert!(
            matches!(got, Err(Failure::Refused(ref why)) if why == "larger than 1 MiB"),
            "{got:?}"
        );
        assert!(buf.capacity() <= (1 << 20) + 8192, "{}", buf.capacity());
    }

    #[test]
    fn issue_14_root_links_inside_the_tree_still_work() {
        let t = Tree::new();
        std::fs::write(
            t.path("proc/100/mountinfo"),
            "22 1 253:0 / / rw - ext4 /dev/vda rw\n",
        )
        .unwrap();
        t.link("proc/self/mountinfo", "../100/mountinfo");
        t.link("proc/100/exe", "/usr/bin/sleep");
        t.link("proc/100/ns/net", "net:[4026531840]");
        std::fs::write(t.path("proc/100/ns/mnt"), "not a link").unwrap();
        t.link("proc/100/fd", "/proc/self/fd");
        let mut r = t.reader();
        assert!(r.read_proc("self/mountinfo").unwrap().starts_with(b"22 1"));
        let dir = r.open_pid(100).unwrap();
        assert_eq!(r.readlink_pid(&dir, "exe").unwrap(), b"/usr/bin/sleep");
        assert_eq!(r.readlink_pid(&dir, "ns/net").unwrap(), b"net:[4026531840]");
        assert_eq!(
            refusal(r.readlink_pid(&dir, "ns/mnt")),
            "not a symbolic link"
        );
        // fd/ leading to the host's own /proc/self/fd is not read.
        assert_eq!(
            refusal(r.readlink_pid(&dir, "fd/0")),
            "a link that leads out of the captured tree"
        );
        let mut fds = Vec::new();
        assert!(matches!(
            r.list_pid_numbers(&dir, "fd", &mut fds),
            Err(Missing::Refused { .. })
        ));
    }

    #[test]
    fn vanished_pid_is_exited() {
        let r = Reader::host().unwrap();
        // PIDs above pid_max never exist.
        assert_eq!(r.open_pid(i32::MAX).unwrap_err(), Missing::Exited);
    }
}
