//! Names for the numbers the kernel prints: signals and capabilities (the bit masks of
//! status), and users (uids, by the tree's etc/passwd).

use std::collections::HashMap;

/// Signal names by number (signal(7), x86_64).
const SIGNALS: [&str; 31] = [
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// The name of signal `n` (1-based); real-time signals as `SIGRTMIN+k` counted from
/// the kernel's 32 (glibc reserves 32 and 33 for itself).
pub fn signal_name(n: u32) -> String {
    match n {
        1..=31 => SIGNALS[(n - 1) as usize].to_owned(),
        32..=64 => format!("SIGRTMIN+{}", n - 32),
        _ => format!("SIG{n}"),
    }
}

/// The signals set in a SigXxx mask (bit n-1 is signal n).
pub fn signals_in(mask: u64) -> Vec<String> {
    (1..=64u32)
        .filter(|n| mask & (1u64 << (n - 1)) != 0)
        .map(signal_name)
        .collect()
}

/// Signal number of a name (`SIGTERM` or `TERM`), for tests and filters.
pub fn signal_number(name: &str) -> Option<u32> {
    let name = name.strip_prefix("SIG").unwrap_or(name);
    SIGNALS
        .iter()
        .position(|s| &s[3..] == name)
        .map(|i| i as u32 + 1)
}

/// Capability names by bit (capabilities(7)).
const CAPS: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// The capabilities set in a CapXxx mask, as `cap_sys_admin`.
pub fn caps_in(mask: u64) -> Vec<String> {
    (0..64u32)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|b| match CAPS.get(b as usize) {
            Some(n) => format!("cap_{n}"),
            None => format!("cap_{b}"),
        })
        .collect()
}

/// A readable summary of a mask: `all`, `all except cap_x, cap_y` (up to three
/// missing), `none`, or the list.
pub fn describe_caps(mask: u64) -> Vec<String> {
    let missing = ALL_KNOWN_CAPS & !mask;
    match missing.count_ones() {
        0 => vec!["all".to_owned()],
        1..=3 => vec![format!("all except {}", caps_in(missing).join(", "))],
        _ if mask == 0 => vec!["none".to_owned()],
        _ => caps_in(mask),
    }
}

/// Bit of a capability by name, without the `cap_` prefix.
pub fn cap_bit(name: &str) -> Option<u32> {
    let name = name.strip_prefix("cap_").unwrap_or(name);
    CAPS.iter().position(|c| *c == name).map(|i| i as u32)
}

/// Every capability this table knows, as a mask: a process holding all of them is
/// fully privileged.
pub const ALL_KNOWN_CAPS: u64 = (1u64 << CAPS.len()) - 1;

/// User names by uid, from the text of an etc/passwd (`name:x:uid:gid:...`). Lines that
/// are not of that form (comments, NIS `+` entries, garbage) are skipped; the first
/// line of a uid wins, as getpwuid(3) finds it first.
pub fn parse_passwd(buf: &[u8]) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    for line in buf.split(|b| *b == b'\n') {
        let mut fields = line.split(|b| *b == b':');
        let (Some(name), Some(_), Some(uid)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let uid = std::str::from_utf8(uid).ok().and_then(|u| u.parse().ok());
        if let (Some(uid), false) = (uid, name.is_empty()) {
            out.entry(uid)
                .or_insert_with(|| String::from_utf8_lossy(name).into_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_names() {
        let users = parse_passwd(
            b"root:x:0:0:root:/root:/bin/bash\n# comment\n+nis\n\
              nobody:x:65534:65534::/:/usr/sbin/nologin\n:x:7:7::/:\n\
              again:x:0:0::/:\nodd:x:notanumber:0::/:\n",
        );
        assert_eq!(users.get(&0).map(String::as_str), Some("root"));
        assert_eq!(users.get(&65534).map(String::as_str), Some("nobody"));
        assert_eq!(users.len(), 2, "{users:?}");
    }

    #[test]
    fn decodes_signals() {
        assert_eq!(signals_in(1 << 14), vec!["SIGTERM"]);
        assert_eq!(
            signals_in((1 << 9) | (1 << 33)),
            vec!["SIGUSR1", "SIGRTMIN+2"]
        );
        assert_eq!(signal_number("SIGTERM"), Some(15));
        assert_eq!(signal_number("USR1"), Some(10));
    }

    #[test]
    fn decodes_caps() {
        assert_eq!(caps_in(1 << 21), vec!["cap_sys_admin"]);
        assert_eq!(cap_bit("cap_sys_resource"), Some(24));
        assert_eq!(caps_in(1 << 50), vec!["cap_50"]);
        assert_eq!(describe_caps(ALL_KNOWN_CAPS), vec!["all"]);
        assert_eq!(
            describe_caps(ALL_KNOWN_CAPS & !(1 << 24)),
            vec!["all except cap_sys_resource"]
        );
        assert_eq!(describe_caps(0), vec!["none"]);
        assert_eq!(describe_caps(1 << 10), vec!["cap_net_bind_service"]);
    }
}
