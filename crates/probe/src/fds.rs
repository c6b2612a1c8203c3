//! Open file descriptors of a process: the count (cheap) and the listing (on request).

use serde::Serialize;

use crate::missing::Val;
use crate::read::{HeldFile, PidDir, Reader};

/// What an open descriptor points to, from its /proc/PID/fd link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FdKind {
    /// A path outside /dev.
    File,
    /// A path under /dev.
    Device,
    /// `socket:[inode]`.
    Socket,
    /// `pipe:[inode]`.
    Pipe,
    /// eventfd, epoll, inotify, signalfd, timerfd, pidfd...
    AnonInode,
    /// `/memfd:name`: an anonymous file from memfd_create.
    Memfd,
    /// Anything else.
    Other,
}

impl FdKind {
    /// The kind as shown to the user.
    pub fn name(self) -> &'static str {
        match self {
            FdKind::File => "file",
            FdKind::Device => "device",
            FdKind::Socket => "socket",
            FdKind::Pipe => "pipe",
            FdKind::AnonInode => "anon inode",
            FdKind::Memfd => "memfd",
            FdKind::Other => "other",
        }
    }

    /// The kind of a /proc/PID/fd link target.
    pub fn classify(target: &str) -> FdKind {
        if target.starts_with("socket:") {
            FdKind::Socket
        } else if target.starts_with("pipe:") {
            FdKind::Pipe
        } else if target.starts_with("anon_inode:") {
            FdKind::AnonInode
        } else if target.starts_with("/memfd:") {
            FdKind::Memfd
        } else if target.starts_with("/dev/") {
            FdKind::Device
        } else if target.starts_with('/') {
            FdKind::File
        } else {
            FdKind::Other
        }
    }
}

/// One open descriptor of a process.
#[derive(Debug, Clone, Serialize)]
pub struct OpenFd {
    /// The descriptor number.
    pub fd: i32,
    /// Where the descriptor points, without the ` (deleted)` suffix.
    pub target: String,
    /// What it points to.
    pub kind: FdKind,
    /// A regular file unlinked on disk but still open: its space is not freed.
    pub deleted: bool,
    /// Size of the open file (regular files only).
    pub size: Val<u64>,
}

/// The number of open fds. On 6.2+ the size of /proc/PID/fd is the count (one stat,
/// an fstat when the directory is `held` open); older kernels report 0 there, so they
/// are counted by listing, as is a captured tree (an ordinary directory's size is not
/// a count).
pub fn fd_count(
    reader: &Reader,
    dir: &PidDir,
    held: Option<&HeldFile>,
    scratch: &mut Vec<i32>,
) -> Val<u64> {
    if reader.is_live() {
        let st = match held {
            Some(fd_dir) => reader.stat_held(dir, fd_dir, "fd")?,
            None => reader.stat_pid(dir, "fd")?,
        };
        if st.st_size > 0 {
            return Ok(st.st_size as u64);
        }
    }
    reader.list_pid_numbers(dir, "fd", scratch)?;
    Ok(scratch.len() as u64)
}

/// What readlink appends to the target of a file unlinked on disk.
const DELETED: &str = " (deleted)";

/// A regular file unlinked on disk but still open: its space is not freed.
fn is_deleted_file(target: &str) -> bool {
    target.ends_with(DELETED) && FdKind::classify(target) == FdKind::File
}

/// Calls `each(reader, fd, "fd/N", target)` for every open fd, in fd order. An fd
/// closed between the listing and its readlink is simply gone.
fn each_target(
    reader: &mut Reader,
    dir: &PidDir,
    mut each: impl FnMut(&Reader, i32, &str, &str),
) -> Val<()> {
    let mut numbers = Vec::new();
    reader.list_pid_numbers(dir, "fd", &mut numbers)?;
    numbers.sort_unstable();
    let mut target = String::new();
    for fd in numbers {
        let name = format!("fd/{fd}");
        let Ok(link) = reader.readlink_pid(dir, &name) else {
            continue;
        };
        target.clear();
        target.push_str(&String::from_utf8_lossy(link));
        each(reader, fd, &name, &target);
    }
    Ok(())
}

/// Lists every fd with its target; regular files and memfds get their size.
pub fn list_fds(reader: &mut Reader, dir: &PidDir) -> Val<Vec<OpenFd>> {
    let mut out = Vec::new();
    each_target(reader, dir, |reader, fd, name, target| {
        let kind = FdKind::classify(target);
        let size = match kind {
            _ if !reader.is_live() => Err(crate::Missing::NotApplicable {
                why: "a captured tree records no file sizes",
            }),
            FdKind::File | FdKind::Memfd => reader.stat_pid(dir, name).map(|st| st.st_size as u64),
            _ => Err(crate::Missing::NotApplicable {
                why: "not a regular file",
            }),
        };
        out.push(OpenFd {
            fd,
            target: target.strip_suffix(DELETED).unwrap_or(target).to_owned(),
            kind,
            deleted: is_deleted_file(target),
            size,
        });
    })?;
    Ok(out)
}

/// A lock an open fd carries, with where the fd points.
#[derive(Debug, Clone, Serialize)]
pub struct FdLock {
    /// The descriptor number.
    pub fd: i32,
    /// Where it points (the locked file's path as this process opened it).
    pub target: String,
    /// The lock, as fdinfo prints it.
    pub lock: crate::locks::FileLock,
}

/// The locks the open fds of a process carry (`lock:` lines of fdinfo/N): one read per
/// fd, and a readlink for those that carry one. An fd closed meanwhile is skipped.
pub fn fd_locks(reader: &mut Reader, dir: &PidDir) -> Val<Vec<FdLock>> {
    let mut numbers = Vec::new();
    reader.list_pid_numbers(dir, "fd", &mut numbers)?;
    numbers.sort_unstable();
    let mut out = Vec::new();
    for fd in numbers {
        let info = format!("fdinfo/{fd}");
        let Ok(buf) = reader.read_pid(dir, &info) else {
            continue;
        };
        let locks = crate::locks::parse_fdinfo_locks(buf, &dir.path(&info))?;
        if locks.is_empty() {
            continue;
        }
        let target = match reader.readlink_pid(dir, &format!("fd/{fd}")) {
            Ok(link) => String::from_utf8_lossy(link).into_owned(),
            Err(_) => continue,
        };
        out.extend(locks.into_iter().map(|lock| FdLock {
            fd,
            target: target.strip_suffix(DELETED).unwrap_or(&target).to_owned(),
            lock,
        }));
    }
    Ok(out)
}

/// How many open fds point to deleted regular files: a readlink per fd and nothing
/// else (no sizes, no listing kept), for monitors that show the count.
pub fn deleted_count(reader: &mut Reader, dir: &PidDir) -> Val<u32> {
    let mut n = 0;
    each_target(reader, dir, |_, _, _, target| {
        n += u32::from(is_deleted_file(target));
    })?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_23_every_kind_has_its_own_name() {
        let names = [
            (FdKind::File, "file"),
            (FdKind::Device, "device"),
            (FdKind::Socket, "socket"),
            (FdKind::Pipe, "pipe"),
            (FdKind::AnonInode, "anon inode"),
            (FdKind::Memfd, "memfd"),
            (FdKind::Other, "other"),
        ];
        for (kind, name) in names {
            assert_eq!(kind.name(), name);
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(FdKind::classify("socket:[123]"), FdKind::Socket);
        assert_eq!(FdKind::classify("pipe:[9]"), FdKind::Pipe);
        assert_eq!(FdKind::classify("anon_inode:[eventfd]"), FdKind::AnonInode);
        assert_eq!(FdKind::classify("/memfd:x (deleted)"), FdKind::Memfd);
        assert_eq!(FdKind::classify("/dev/null"), FdKind::Device);
        assert_eq!(FdKind::classify("/tmp/x (deleted)"), FdKind::File);
        assert_eq!(FdKind::classify("net:[4026531833]"), FdKind::Other);
    }

    #[test]
    fn lists_own_fds_live() {
        let file = tempfile::tempfile().unwrap();
        let mut r = Reader::host().unwrap();
        let dir = r.open_pid(std::process::id() as i32).unwrap();
        let fds = list_fds(&mut r, &dir).unwrap();
        let mut scratch = Vec::new();
        let count = fd_count(&r, &dir, None, &mut scratch).unwrap();
        let held = r.hold_pid(&dir, "fd").unwrap();
        assert_eq!(
            fd_count(&r, &dir, Some(&held), &mut scratch).unwrap(),
            count + 1
        );
        // tempfile() is unlinked at once: a deleted-but-open file.
        assert!(fds.iter().any(|f| f.deleted && f.kind == FdKind::File));
        let deleted = fds.iter().filter(|f| f.deleted).count() as u32;
        assert_eq!(deleted_count(&mut r, &dir).unwrap(), deleted);
        assert!(count >= fds.len() as u64 - 1);
        drop(file);
    }
}
