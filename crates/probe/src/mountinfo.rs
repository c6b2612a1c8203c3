//! /proc/PID/mountinfo: what is mounted where, with which file system.

use serde::Serialize;

use crate::missing::{Missing, Val};
use crate::parse::{lines, text, tokens, unescape_octal};

/// One line of /proc/PID/mountinfo.
#[derive(Debug, Clone, Serialize)]
pub struct Mount {
    /// The mount's id.
    pub id: u64,
    /// The parent mount's id.
    pub parent: u64,
    /// The path inside the file system that is mounted (a bind mount or a container's
    /// cgroup shows a non-`/` root).
    pub root: String,
    /// Where it is mounted, as this process sees it (octal escapes decoded).
    pub mount_point: String,
    /// The per-mount options (rw, nosuid, ...).
    pub options: String,
    /// The file system type (ext4, tmpfs, cgroup2, ...).
    pub fs_type: String,
    /// The source (a device, or the file system's name).
    pub source: String,
    /// The per-superblock options.
    pub super_options: String,
}

impl Mount {
    /// tmpfs and ramfs live in RAM (and swap): their content is gone at reboot.
    pub fn is_ephemeral(&self) -> bool {
        matches!(self.fs_type.as_str(), "tmpfs" | "ramfs" | "devtmpfs")
    }

    /// Pseudo file systems that hold no user data (proc, sysfs, cgroup...).
    pub fn is_pseudo(&self) -> bool {
        matches!(
            self.fs_type.as_str(),
            "proc"
                | "sysfs"
                | "cgroup"
                | "cgroup2"
                | "devpts"
                | "mqueue"
                | "debugfs"
                | "tracefs"
                | "securityfs"
                | "pstore"
                | "bpf"
                | "configfs"
                | "fusectl"
                | "hugetlbfs"
                | "autofs"
                | "binfmt_misc"
                | "nsfs"
                | "efivarfs"
                | "rpc_pipefs"
        )
    }

    /// Whether a super option (`memory`, `cpu`) is present, for cgroup v1 mounts.
    pub fn has_super_option(&self, opt: &str) -> bool {
        self.super_options.split(',').any(|o| o == opt)
    }
}

/// Parses mountinfo (proc(5)): ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - TYPE SRC SUPER.
/// A line that does not parse is skipped, not the whole table (a captured tree may be
/// damaged or hostile); a file of which no line parses is malformed.
pub fn parse_mountinfo(buf: &[u8]) -> Val<Vec<Mount>> {
    let mut out = Vec::new();
    let mut first_bad = None;
    for line in lines(buf) {
        match parse_line(line) {
            Some(m) => out.push(m),
            None => {
                first_bad.get_or_insert(line);
            }
        }
    }
    match first_bad {
        Some(line) if out.is_empty() => Err(Missing::malformed("mountinfo", text(line))),
        _ => Ok(out),
    }
}

fn parse_line(line: &[u8]) -> Option<Mount> {
    let toks: Vec<&[u8]> = tokens(line).collect();
    let sep = toks
        .iter()
        .position(|t| *t == b"-")
        .filter(|&s| s >= 6 && toks.len() >= s + 3)?;
    Some(Mount {
        id: crate::parse::u64_dec(toks[0])?,
        parent: crate::parse::u64_dec(toks[1])?,
        root: unescape_octal(toks[3]),
        mount_point: unescape_octal(toks[4]),
        options: text(toks[5]),
        fs_type: text(toks[sep + 1]),
        source: unescape_octal(toks[sep + 2]),
        super_options: toks.get(sep + 3).map(|t| text(t)).unwrap_or_default(),
    })
}

/// The mount that holds `path`: the longest mount point that prefixes it (the last
/// one mounted wins when several are stacked on one point).
pub fn mount_of<'a>(mounts: &'a [Mount], path: &str) -> Option<&'a Mount> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| {
            let p = m.mount_point.as_str();
            p == "/"
                || path == p
                || (path.starts_with(p) && path.as_bytes().get(p.len()) == Some(&b'/'))
        })
        .max_by_key(|(i, m)| (m.mount_point.len(), *i))
        .map(|(_, m)| m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
30 22 0:26 / /tmp rw,nosuid shared:5 - tmpfs tmpfs rw,size=100k\n\
35 22 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
36 22 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n\
40 22 0:40 / /mnt/my\\040disk rw - ext4 /dev/vdb rw\n";

    #[test]
    fn parses_and_unescapes() {
        let m = parse_mountinfo(SAMPLE).unwrap();
        assert_eq!(m.len(), 5);
        assert_eq!(m[1].fs_type, "tmpfs");
        assert!(m[1].is_ephemeral());
        assert!(m[2].has_super_option("memory"));
        assert!(m[3].has_super_option("cpuacct"));
        assert_eq!(m[4].mount_point, "/mnt/my disk");
    }

    #[test]
    fn longest_prefix_wins() {
        let m = parse_mountinfo(SAMPLE).unwrap();
        assert_eq!(mount_of(&m, "/tmp/x").unwrap().fs_type, "tmpfs");
        assert_eq!(mount_of(&m, "/tmpfoo").unwrap().fs_type, "ext4");
        assert_eq!(mount_of(&m, "/mnt/my disk/f").unwrap().source, "/dev/vdb");
    }

    #[test]
    fn missing_separator_is_malformed() {
        assert!(parse_mountinfo(b"1 2 3 4 5 6 7\n").is_err());
    }

    #[test]
    fn issue_14_bad_mountinfo_line_skips_only_that_line() {
        let mut text = SAMPLE.to_vec();
        text.splice(0..0, b"garbage without separator\n".iter().copied());
        text.extend_from_slice(b"x 22 0:41 / /mnt/b rw - ext4 /dev/vdc rw\n");
        text.extend_from_slice(b"41 22 0:42 / /mnt/c rw - ext4 /dev/vdd rw\n");
        let m = parse_mountinfo(&text).unwrap();
        assert_eq!(m.len(), 6, "the five good lines and the last one: {m:?}");
        assert_eq!(m[5].mount_point, "/mnt/c");
        assert!(m.iter().all(|m| m.mount_point != "/mnt/b"));
    }
}
