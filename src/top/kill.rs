//! Sending a signal to the processes the user chose (`k`, F9), through a pidfd so that
//! a process that exited, and a newcomer under its pid, is never signalled instead.

use rustix::io::Errno;
use rustix::process::{kill_process, pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};
use syslens_probe::stat::Stat;
use syslens_probe::Reader;

/// The signal menu, SIGTERM first (what `kill` sends by default): the signal, its
/// name, and what it asks of the process.
pub const SIGNALS: [(Signal, &str, &str); 9] = [
    (
        Signal::TERM,
        "SIGTERM",
        "ask it to end (it may clean up, or ignore it)",
    ),
    (
        Signal::KILL,
        "SIGKILL",
        "end it now (cannot be caught or ignored)",
    ),
    (Signal::INT, "SIGINT", "interrupt, as Ctrl-C does"),
    (
        Signal::HUP,
        "SIGHUP",
        "hang up (many daemons reload their settings)",
    ),
    (Signal::QUIT, "SIGQUIT", "quit with a core dump"),
    (
        Signal::USR1,
        "SIGUSR1",
        "user-defined: what the program says",
    ),
    (
        Signal::USR2,
        "SIGUSR2",
        "user-defined: what the program says",
    ),
    (
        Signal::STOP,
        "SIGSTOP",
        "stop it (cannot be caught; SIGCONT resumes)",
    ),
    (Signal::CONT, "SIGCONT", "continue a stopped process"),
];

/// A process chosen for a signal, as it was when chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The process id.
    pub pid: i32,
    /// Its start time: a process under the same pid started later is another one.
    pub start_ticks: u64,
    /// Its command name, escaped for the terminal.
    pub comm: String,
    /// Pid 1 or a PID namespace's init, which the kernel shields from signals it has
    /// no handler for.
    pub init: bool,
}

const GONE: &str = "ESRCH: the process is gone";

/// Sends `sig` to `target`, if it is still the process chosen. The error says why
/// not, in the words the status line shows.
pub fn send(reader: Option<&mut Reader>, target: &Target, sig: Signal) -> Result<(), String> {
    let Some(reader) = reader else {
        return Err("no reader to check the process with".into());
    };
    if !reader.is_live() {
        return Err("a captured tree (--root): its processes do not run here".into());
    }
    let pid = Pid::from_raw(target.pid).ok_or("not a process id")?;
    // The pidfd names whoever holds the pid now; checked below to be the process
    // chosen, it stays that process even if it exits and the pid is reused.
    let pidfd = match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => Some(fd),
        Err(Errno::SRCH) => return Err(GONE.into()),
        // Before Linux 5.3: kill(2) after the same check, with a small race left.
        Err(Errno::NOSYS) => None,
        Err(e) => return Err(format!("pidfd_open: {e}")),
    };
    let started = reader
        .open_pid(target.pid)
        .and_then(|dir| reader.read_pid(&dir, "stat").and_then(Stat::parse))
        .map(|s| s.start_time_ticks);
    match started {
        Ok(t) if t == target.start_ticks => {}
        Ok(_) => return Err("ESRCH: the process is gone (its pid is another's now)".into()),
        Err(_) => return Err(GONE.into()),
    }
    let sent = match &pidfd {
        Some(fd) => pidfd_send_signal(fd, sig),
        None => kill_process(pid, sig),
    };
    match sent {
        Ok(()) => Ok(()),
        Err(Errno::PERM) => Err(
            "EPERM: not permitted (another user's process: signalling it takes CAP_KILL)".into(),
        ),
        Err(Errno::SRCH) => Err(GONE.into()),
        Err(e) => Err(format!("{e}")),
    }
}

/// Sends `sig` to every target; the line the status bar shows: what was sent to whom,
/// and each refusal with its reason.
pub fn send_all(mut reader: Option<&mut Reader>, targets: &[Target], sig: usize) -> String {
    let (signal, name, _) = SIGNALS[sig.min(SIGNALS.len() - 1)];
    let mut sent = Vec::new();
    let mut refused = Vec::new();
    for t in targets {
        match send(reader.as_deref_mut(), t, signal) {
            Ok(()) => sent.push(t),
            Err(why) => refused.push(format!("{} ({}): {why}", t.pid, t.comm)),
        }
    }
    let mut parts = Vec::new();
    match sent.as_slice() {
        [] => {}
        [one] => parts.push(format!("{name} sent to {} ({})", one.pid, one.comm)),
        many => parts.push(format!("{name} sent to {} processes", many.len())),
    }
    if sent.iter().any(|t| t.init) && signal != Signal::KILL && signal != Signal::STOP {
        parts.push("an init ignores the signals it has no handler for".into());
    }
    if !refused.is_empty() {
        parts.push(format!("{name} refused to {}", refused.join("; ")));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(child: &std::process::Child) -> Target {
        let stat = std::fs::read(format!("/proc/{}/stat", child.id())).unwrap();
        Target {
            pid: child.id() as i32,
            start_ticks: Stat::parse(&stat).unwrap().start_time_ticks,
            comm: "sleep".into(),
            init: false,
        }
    }

    #[test]
    fn sigterm_reaches_the_process_chosen() {
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let t = target(&child);
        let mut reader = Reader::host().unwrap();
        let said = send_all(Some(&mut reader), &[t], 0);
        assert_eq!(said, format!("SIGTERM sent to {} (sleep)", child.id()));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGTERM));
    }

    #[test]
    fn a_newcomer_under_the_pid_is_not_signalled() {
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let mut t = target(&child);
        t.start_ticks += 1;
        let mut reader = Reader::host().unwrap();
        let said = send_all(Some(&mut reader), &[t], 1);
        assert!(said.contains("refused") && said.contains("ESRCH"), "{said}");
        assert!(child.try_wait().unwrap().is_none(), "the child was killed");
        child.kill().unwrap();
        child.wait().unwrap();
        let gone = target_of_reaped(&mut child);
        assert!(send(Some(&mut reader), &gone, Signal::TERM)
            .unwrap_err()
            .starts_with("ESRCH"));
    }

    fn target_of_reaped(child: &mut std::process::Child) -> Target {
        Target {
            pid: child.id() as i32,
            start_ticks: 0,
            comm: "sleep".into(),
            init: false,
        }
    }

    #[test]
    fn a_captured_tree_is_never_signalled() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        let mut reader = Reader::new(dir.path()).unwrap();
        let t = Target {
            pid: std::process::id() as i32,
            start_ticks: 0,
            comm: "me".into(),
            init: false,
        };
        let said = send(Some(&mut reader), &t, Signal::CONT).unwrap_err();
        assert!(said.contains("captured tree"), "{said}");
    }
}
