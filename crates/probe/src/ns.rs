//! Namespace identities of a process, compared with the initial namespaces.

use serde::Serialize;

use crate::missing::{Missing, Val};

/// The namespace kinds /proc/PID/ns shows, with the fixed inode the kernel gives the
/// initial namespace and the first kernel version that fixes it. ipc, uts, user and
/// pid have had fixed numbers since 3.8, cgroup since 4.6, time since 5.6; net and
/// mnt were allocated like any other namespace before that (6.1-6.12 at least); 6.14
/// is taken as the first fixed version, so an in-between kernel falls back to PID 1.
pub const KINDS: [(&str, u64, (u32, u32)); 8] = [
    ("cgroup", 0xEFFF_FFFB, (4, 6)),
    ("ipc", 0xEFFF_FFFF, (3, 8)),
    ("mnt", 0xEFFF_FFF8, (6, 14)),
    ("net", 0xEFFF_FFF9, (6, 14)),
    ("pid", 0xEFFF_FFFC, (3, 8)),
    ("time", 0xEFFF_FFFA, (5, 6)),
    ("user", 0xEFFF_FFFD, (3, 8)),
    ("uts", 0xEFFF_FFFE, (3, 8)),
];

/// Parses a link target such as `net:[4026531833]` into the inode number.
pub fn parse_ns_link(target: &[u8]) -> Val<u64> {
    let open = target.iter().position(|&b| b == b'[');
    let close = target.iter().rposition(|&b| b == b']');
    match (open, close) {
        (Some(o), Some(c)) if c > o => crate::parse::u64_dec(&target[o + 1..c])
            .ok_or_else(|| Missing::malformed("ns link", crate::parse::text(target))),
        _ => Err(Missing::malformed("ns link", crate::parse::text(target))),
    }
}

/// Where the inode of an initial namespace came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// The kernel gives initial namespaces fixed inode numbers (by kernel version).
    FixedInode,
    /// Read from PID 1's /proc/1/ns links.
    Pid1,
}

/// The initial namespace of one kind, and how it was found.
#[derive(Debug, Clone, Serialize)]
pub struct InitialNs {
    /// The kind: one of the names of [`KINDS`].
    pub kind: &'static str,
    /// The initial namespace's inode.
    pub inode: Val<u64>,
    /// How the inode was found.
    pub baseline: Val<Baseline>,
}

/// Parses the release string of /proc/sys/kernel/osrelease into (major, minor).
pub fn kernel_version(release: &[u8]) -> Option<(u32, u32)> {
    let s = std::str::from_utf8(release).ok()?.trim();
    let mut parts = s.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Chooses the baseline for every kind: the fixed inode where this kernel has it,
/// else PID 1's link where readable (`pid1` is that lookup), else missing.
pub fn initial_namespaces(
    kernel: Option<(u32, u32)>,
    mut pid1: impl FnMut(&str) -> Val<u64>,
) -> Vec<InitialNs> {
    KINDS
        .iter()
        .map(|&(kind, fixed, since)| match kernel {
            Some(k) if k >= since => InitialNs {
                kind,
                inode: Ok(fixed),
                baseline: Ok(Baseline::FixedInode),
            },
            _ => match pid1(kind) {
                Ok(inode) => InitialNs {
                    kind,
                    inode: Ok(inode),
                    baseline: Ok(Baseline::Pid1),
                },
                Err(e) => InitialNs {
                    kind,
                    inode: Err(e.clone()),
                    baseline: Err(e),
                },
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_links() {
        assert_eq!(parse_ns_link(b"net:[4026531833]"), Ok(4026531833));
        assert!(parse_ns_link(b"net:4026531833").is_err());
    }

    #[test]
    fn versions() {
        assert_eq!(kernel_version(b"6.18.44-fc-v657\n"), Some((6, 18)));
        assert_eq!(kernel_version(b"5.10.0-28-amd64"), Some((5, 10)));
        assert_eq!(kernel_version(b"junk"), None);
    }

    #[test]
    fn old_kernel_falls_back_to_pid1_for_net_only() {
        let init = initial_namespaces(Some((6, 1)), |kind| {
            if kind == "net" {
                Ok(42)
            } else {
                Err(Missing::Exited)
            }
        });
        let net = init.iter().find(|n| n.kind == "net").unwrap();
        assert_eq!(
            (net.inode.clone(), net.baseline.clone()),
            (Ok(42), Ok(Baseline::Pid1))
        );
        let uts = init.iter().find(|n| n.kind == "uts").unwrap();
        assert_eq!(uts.baseline, Ok(Baseline::FixedInode));
        let mnt = init.iter().find(|n| n.kind == "mnt").unwrap();
        assert!(mnt.baseline.is_err());
    }
}
