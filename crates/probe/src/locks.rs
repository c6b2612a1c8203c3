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
    let mut out = Vec::new();
    for line in lines(buf) {
        let t: Vec<&[u8]> = tokens(line).collect();
        let bad = || Missing::malformed("/proc/locks", text(line));
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
        out.push(FileLock {
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
        });
    }
    Ok(out)
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
}
