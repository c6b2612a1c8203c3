//! /proc/locks: file locks held and awaited.

use serde::Serialize;

use crate::missing::{Missing, Val};
use crate::parse::{lines, text, tokens, u64_dec};

/// One line of /proc/locks.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileLock {
    /// The lock's ordinal in /proc/locks; a waiter shares its blocker's ordinal.
    pub id: u64,
    /// True for a `->` line: this process waits for the lock `id`.
    pub waiting: bool,
    /// POSIX, FLOCK, OFDLCK, LEASE...
    pub class: String,
    /// ADVISORY or MANDATORY.
    pub mode: String,
    /// READ or WRITE.
    pub access: String,
    /// The owning process; -1 for OFD locks not tied to a process.
    pub pid: i64,
    /// major:minor:inode of the locked file.
    pub file: String,
    /// The inode of the locked file (the last part of `file`).
    pub inode: u64,
    /// First byte locked.
    pub start: String,
    /// Last byte locked, or `EOF` (to the end, however far the file grows).
    pub end: String,
}

/// Parses /proc/locks.
pub fn parse_locks(buf: &[u8]) -> Val<Vec<FileLock>> {
    lines(buf)
        .map(|line| parse_lock_line(line, "/proc/locks"))
        .collect()
}

/// One lock line, as /proc/locks and the `lock:` lines of /proc/PID/fdinfo/N write it
/// (both come from the kernel's lock_get_status).
fn parse_lock_line(line: &[u8], source: &str) -> Val<FileLock> {
    let t: Vec<&[u8]> = tokens(line).collect();
    let bad = || Missing::malformed(source, text(line));
    let id = t
        .first()
        .and_then(|s| s.strip_suffix(b":"))
        .and_then(u64_dec)
        .ok_or_else(bad)?;
    let waiting = t.get(1) == Some(&&b"->"[..]);
    let f = &t[if waiting { 2 } else { 1 }..];
    if f.len() < 7 {
        return Err(bad());
    }
    let file = text(f[4]);
    let inode = file
        .rsplit(':')
        .next()
        .and_then(|i| i.parse().ok())
        .ok_or_else(bad)?;
    Ok(FileLock {
        id,
        waiting,
        class: text(f[0]),
        mode: text(f[1]),
        access: text(f[2]),
        pid: crate::parse::i64_dec(f[3]).ok_or_else(bad)?,
        file,
        inode,
        start: text(f[5]),
        end: text(f[6]),
    })
}

impl FileLock {
    /// Whether `other` is this same lock seen elsewhere (a fdinfo line and a /proc/locks
    /// line number them apart): same kind, owner pid, file and range.
    pub fn same_lock(&self, other: &FileLock) -> bool {
        self.waiting == other.waiting
            && self.class == other.class
            && self.access == other.access
            && self.pid == other.pid
            && self.file == other.file
            && self.start == other.start
            && self.end == other.end
    }
}

/// The locks an open file description carries, from the `lock:` lines of
/// /proc/PID/fdinfo/N. The kernel prints there the locks whose file is this one and
/// whose owner is this file (flock, OFD) or this process's fd table (POSIX): every
/// process sharing the description by fork or SCM_RIGHTS shows its flock, which is
/// how a lock outlives the pid /proc/locks names.
pub fn parse_fdinfo_locks(buf: &[u8], source: &str) -> Val<Vec<FileLock>> {
    lines(buf)
        .filter_map(|line| line.strip_prefix(b"lock:"))
        .map(|rest| parse_lock_line(rest, source))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_held_and_waiting() {
        let l = parse_locks(
            b"1: FLOCK  ADVISORY  WRITE 4242 fd:00:1234 0 EOF\n1: -> FLOCK  ADVISORY  WRITE 4343 fd:00:1234 0 EOF\n\
2: OFDLCK ADVISORY  READ  -1 00:1a:99 0 0\n",
        )
        .unwrap();
        assert_eq!(l.len(), 3);
        assert!(!l[0].waiting && l[1].waiting);
        assert_eq!((l[1].pid, l[1].id, l[1].inode), (4343, 1, 1234));
        assert_eq!(l[2].pid, -1);
        assert!(parse_locks(b"x: y\n").is_err());
    }

    #[test]
    fn issue_15_fdinfo_lock_lines_are_the_same_locks() {
        let fdinfo = b"pos:\t0\nflags:\t0100002\nmnt_id:\t31\nino:\t1234\n\
lock:\t1: FLOCK  ADVISORY  WRITE 4242 fd:00:1234 0 EOF\n";
        let mine = parse_fdinfo_locks(fdinfo, "/proc/9/fdinfo/3").unwrap();
        assert_eq!(mine.len(), 1);
        let all = parse_locks(
            b"7: POSIX  ADVISORY  WRITE 4242 fd:00:1234 0 EOF\n\
8: FLOCK  ADVISORY  WRITE 4242 fd:00:1234 0 EOF\n",
        )
        .unwrap();
        assert!(!mine[0].same_lock(&all[0]), "another class");
        assert!(mine[0].same_lock(&all[1]), "numbered apart, the same lock");
        assert!(parse_fdinfo_locks(b"pos:\t0\n", "x").unwrap().is_empty());
        assert!(parse_fdinfo_locks(b"lock:\tgarbage\n", "x").is_err());
    }
}
