//! The child sandbox. The risky part of a lab (allocations, forks, limits, signals,
//! namespaces) runs in a child started by re-executing the syslens binary with the
//! hidden `__lab-child` subcommand, never by a fork of the (possibly multi-threaded)
//! tool. The child gets PR_SET_PDEATHSIG, reports over its stdout as JSON lines, and
//! waits at each checkpoint until the parent, having read the kernel's evidence from
//! /proc, says go.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use syslens_probe::Missing;

use super::cleanup::{self, Guard, Resource};
use super::jail::Jail;
use crate::catalogue::ConceptId;

/// Asks the kernel to SIGKILL this process when its parent dies (PR_SET_PDEATHSIG), so
/// a lab's child or its forks never outlive a killed run. One system call, no
/// allocation: safe between fork and exec.
pub fn die_with_parent() -> io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(io::Error::from)
}

/// Why a lab could not finish.
#[derive(Debug)]
pub enum LabError {
    /// The child could not be started.
    Spawn(io::Error),
    /// The watchdog fired: the child hung and was killed.
    Timeout {
        /// The checkpoint the parent was waiting for.
        waiting_for: String,
        /// How long the parent waited.
        after: Duration,
    },
    /// The child exited before reaching a checkpoint.
    Died {
        /// The checkpoint the parent was waiting for.
        waiting_for: String,
        /// How the child exited (exit code or signal).
        status: String,
        /// What the child wrote to stderr.
        stderr: String,
    },
    /// The child reported an error.
    Child(String),
    /// A message that does not fit the protocol at `event`: not a message, another
    /// event, or data with a missing, unknown or mistyped field (serde names it).
    Protocol {
        /// The checkpoint the parent was at.
        event: String,
        /// What was wrong with the message.
        detail: String,
    },
    /// An I/O operation of the parent failed (scratch files, the pipe to the child).
    Io {
        /// What the parent was doing.
        what: String,
        /// The error.
        source: io::Error,
    },
    /// The parent could not read the kernel's evidence (a /proc file of the child).
    Read {
        /// What was read.
        what: String,
        /// Why it could not be read.
        why: Missing,
    },
    /// What the lab needs cannot be set up here (a cgroup, a swap file).
    Setup(String),
    /// The lab's parameters are not allowed on this host, or the lab read one it does
    /// not declare.
    Params(super::params::ParamError),
    /// The run was interrupted by a signal.
    Interrupted(i32),
}

impl From<super::params::ParamError> for LabError {
    fn from(e: super::params::ParamError) -> LabError {
        LabError::Params(e)
    }
}

impl LabError {
    /// An I/O error of the parent, with what it was doing.
    pub fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> LabError {
        let what = what.into();
        move |source| LabError::Io { what, source }
    }

    /// A failed read of the kernel's evidence, with what was read.
    pub fn read(what: impl Into<String>) -> impl FnOnce(Missing) -> LabError {
        let what = what.into();
        move |why| LabError::Read { what, why }
    }
}

impl std::fmt::Display for LabError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LabError::Spawn(e) => write!(f, "cannot start the lab child: {e}"),
            LabError::Timeout { waiting_for, after } => {
                write!(
                    f,
                    "watchdog: no '{waiting_for}' from the child after {:.1} s; it was killed",
                    after.as_secs_f64()
                )
            }
            LabError::Died {
                waiting_for,
                status,
                stderr,
            } => {
                write!(f, "the child exited ({status}) before '{waiting_for}'")?;
                if !stderr.trim().is_empty() {
                    write!(f, ": {}", stderr.trim())?;
                }
                Ok(())
            }
            LabError::Child(m) => write!(f, "the child failed: {m}"),
            LabError::Protocol { event, detail } => {
                write!(f, "lab protocol broken at '{event}': {detail}")
            }
            LabError::Io { what, source } => write!(f, "{what}: {source}"),
            LabError::Read { what, why } => write!(f, "cannot read {what}: {why}"),
            LabError::Setup(m) => f.write_str(m),
            LabError::Params(e) => write!(f, "parameters: {e}"),
            LabError::Interrupted(sig) => write!(f, "interrupted by signal {sig}"),
        }
    }
}

impl std::error::Error for LabError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LabError::Spawn(e) | LabError::Io { source: e, .. } => Some(e),
            LabError::Read { why, .. } => Some(why),
            LabError::Params(e) => Some(e),
            _ => None,
        }
    }
}

/// One message of the protocol, as the parent receives it: the event names the
/// checkpoint, the data is decoded into the type the parent expects there.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Msg {
    event: String,
    data: Value,
}

/// One message as the child sends it.
#[derive(Debug, Serialize)]
struct Outgoing<'a, T> {
    event: &'a str,
    data: T,
}

/// Decodes one line from the child, which must be `event` with data of type `T`
/// (or the child's own error report).
fn decode<T: DeserializeOwned>(line: &str, event: &str) -> Result<T, LabError> {
    let protocol = |detail: String| LabError::Protocol {
        event: event.to_owned(),
        detail,
    };
    let msg: Msg = serde_json::from_str(line)
        .map_err(|e| protocol(format!("the child said {line:?}: {e}")))?;
    match msg.event.as_str() {
        e if e == event => serde_json::from_value(msg.data).map_err(|e| protocol(e.to_string())),
        "error" => Err(LabError::Child(serde_json::from_value(msg.data).map_err(
            |e| protocol(format!("an error report that is not a string: {e}")),
        )?)),
        other => Err(protocol(format!("the child sent '{other}' instead"))),
    }
}

/// For an `Option` field of a message: `#[serde(deserialize_with = "present")]` makes
/// it required (null for None), where serde would read a missing one as None.
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::deserialize(d)
}

/// The parameters a child role was started with, as the parent sent them (JSON).
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    role: &'a str,
    json: &'a str,
}

impl<'a> Params<'a> {
    /// Parameters `json` for child role `role`.
    pub fn new(role: &'a str, json: &'a str) -> Params<'a> {
        Params { role, json }
    }

    /// The role's parameters: a missing, unknown or mistyped one is an error, never a
    /// default.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_str(self.json)
            .map_err(|e| format!("bad parameters for role '{}': {e}", self.role))
    }
}

/// The parent's handle on a lab child. Dropping it kills and reaps the child.
#[derive(Debug)]
pub struct LabChild {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Option<String>>,
    stderr: Arc<Mutex<String>>,
    guard: Option<Guard>,
    /// The child's process id.
    pub pid: i32,
}

impl LabChild {
    /// Starts `syslens __lab-child CONCEPT ROLE PARAMS`, the parameters as JSON.
    pub fn spawn(
        concept: ConceptId,
        role: &str,
        params: &impl Serialize,
        jail: &Jail,
    ) -> Result<LabChild, LabError> {
        let params = serde_json::to_string(params).map_err(|e| LabError::Protocol {
            event: format!("parameters of role '{role}'"),
            detail: e.to_string(),
        })?;
        let mut cmd = Command::new("/proc/self/exe");
        cmd.arg0("syslens")
            .args(["__lab-child", concept.slug(), role, &params])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let parent = rustix::process::getpid();
        let jail = jail.clone_for_child();
        // SAFETY: the closure only makes async-signal-safe system calls (prctl,
        // getppid, _exit, and the jail's open/write/setrlimit) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                jail.enter()?;
                die_with_parent()?;
                // The parent may have died before the prctl took effect.
                if rustix::process::getppid() != Some(parent) {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(LabError::Spawn)?;
        let pid = child.id() as i32;
        let guard = Some(cleanup::register(Resource::Process(pid)));
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| LabError::Spawn(io::Error::other("the child has no stdout")))?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(Some(l)).is_err() {
                            return;
                        }
                    }
                    Err(_) => break,
                }
            }
            let _ = tx.send(None);
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut err) = child.stderr.take() {
            let sink = stderr.clone();
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = err.read_to_string(&mut s);
                if let Ok(mut out) = sink.lock() {
                    out.push_str(&s);
                }
            });
        }
        let stdin = child.stdin.take();
        Ok(LabChild {
            child,
            stdin,
            lines,
            stderr,
            guard,
            pid,
        })
    }

    /// Waits for the next message, which must be `event`; returns its data decoded as
    /// `T` (`()` for a checkpoint without data). Data that does not fit `T` is a
    /// [`LabError::Protocol`] naming the event and the field.
    pub fn expect<T: DeserializeOwned>(
        &mut self,
        event: &str,
        timeout: Duration,
    ) -> Result<T, LabError> {
        let started = Instant::now();
        loop {
            if let Some(sig) = cleanup::interrupted() {
                return Err(LabError::Interrupted(sig));
            }
            let left = timeout.saturating_sub(started.elapsed());
            let slice = left.min(Duration::from_millis(200));
            match self.lines.recv_timeout(slice) {
                Ok(Some(line)) => return decode(&line, event),
                Ok(None) | Err(RecvTimeoutError::Disconnected) => return Err(self.died(event)),
                Err(RecvTimeoutError::Timeout) if left.is_zero() => {
                    self.kill();
                    return Err(LabError::Timeout {
                        waiting_for: event.to_owned(),
                        after: timeout,
                    });
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Like [`expect`](Self::expect), but gives up quietly after `wait`: Ok(None)
    /// means the child is still busy (the parent samples it meanwhile).
    pub fn poll<T: DeserializeOwned>(
        &mut self,
        event: &str,
        wait: Duration,
    ) -> Result<Option<T>, LabError> {
        if let Some(sig) = cleanup::interrupted() {
            return Err(LabError::Interrupted(sig));
        }
        match self.lines.recv_timeout(wait) {
            Ok(Some(line)) => decode(&line, event).map(Some),
            Ok(None) | Err(RecvTimeoutError::Disconnected) => Err(self.died(event)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
        }
    }

    fn died(&mut self, event: &str) -> LabError {
        if let Some(sig) = cleanup::interrupted() {
            let _ = self.child.wait();
            return LabError::Interrupted(sig);
        }
        let status = match self.child.wait() {
            Ok(s) => describe(s),
            Err(e) => e.to_string(),
        };
        // Give the stderr reader a moment to collect the last words.
        std::thread::sleep(Duration::from_millis(20));
        let stderr = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        LabError::Died {
            waiting_for: event.to_owned(),
            status,
            stderr,
        }
    }

    /// Lets the child go on from its checkpoint.
    pub fn go(&mut self) -> Result<(), LabError> {
        let reach = LabError::io("cannot reach the child");
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(reach(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "its stdin is closed",
            )));
        };
        stdin
            .write_all(b"go\n")
            .and_then(|_| stdin.flush())
            .map_err(reach)
    }

    /// Waits for the child to exit (killing it after `timeout`).
    pub fn wait(mut self, timeout: Duration) -> Result<ExitStatus, LabError> {
        self.stdin.take();
        let started = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(s)) => {
                    if let Some(g) = self.guard.take() {
                        g.disarm();
                    }
                    return Ok(s);
                }
                Ok(None) if started.elapsed() > timeout => {
                    self.kill();
                    return Err(LabError::Timeout {
                        waiting_for: "exit".into(),
                        after: timeout,
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return Err(LabError::io("waiting for the child")(e)),
            }
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LabChild {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.kill();
        }
        if let Some(g) = self.guard.take() {
            g.disarm();
        }
    }
}

/// "exit 0", "killed by SIGKILL".
pub fn describe(s: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(sig)) => format!(
            "killed by {}",
            syslens_probe::names::signal_name(sig as u32)
        ),
        _ => "unknown status".into(),
    }
}

/// The child's end: messages out on stdout, `go` in on stdin.
#[derive(Debug)]
pub struct Link {
    out: io::Stdout,
    inp: io::StdinLock<'static>,
}

impl Link {
    /// The child's link over its own stdin and stdout.
    pub fn new() -> Link {
        Link {
            out: io::stdout(),
            inp: io::stdin().lock(),
        }
    }

    /// Sends `event` with `data` (`()` for none).
    pub fn send(&mut self, event: &str, data: impl Serialize) -> io::Result<()> {
        let line = serde_json::to_string(&Outgoing { event, data })?;
        let mut out = self.out.lock();
        writeln!(out, "{line}")?;
        out.flush()
    }

    /// Sends `event` and waits until the parent says go.
    pub fn sync(&mut self, event: &str, data: impl Serialize) -> io::Result<()> {
        self.send(event, data)?;
        let mut line = String::new();
        if self.inp.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the parent went away",
            ));
        }
        Ok(())
    }
}

impl Default for Link {
    fn default() -> Self {
        Link::new()
    }
}

/// The return value of a system call that signals failure with -1, as a `Result`
/// carrying errno: a failed fork, kill or read inside a timed loop fails the trial
/// instead of being timed as a (fast) sample.
pub fn os_result<T: PartialEq + From<i8>>(rc: T) -> io::Result<T> {
    if rc == T::from(-1) {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `raw` as a rustix [`Pid`](rustix::process::Pid): a process id is positive (0 and
/// negative numbers mean process groups to kill and waitpid).
pub fn pid_of(raw: i32) -> io::Result<rustix::process::Pid> {
    (raw > 0)
        .then(|| rustix::process::Pid::from_raw(raw))
        .flatten()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("pid {raw}")))
}

/// Waits for our own forked child `pid` to end (waitpid without options) and returns
/// its raw wait status: 0 when it exited with 0.
pub fn wait_forked(pid: i32) -> io::Result<i32> {
    let waited =
        rustix::process::waitpid(Some(pid_of(pid)?), rustix::process::WaitOptions::empty())?;
    waited
        .map(|(_, status)| status.as_raw())
        .ok_or_else(|| io::Error::other(format!("waitpid({pid}) returned no child")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Written {
        pages: u64,
        faults: u64,
    }

    fn protocol_detail<T: DeserializeOwned + std::fmt::Debug>(line: &str, event: &str) -> String {
        match decode::<T>(line, event) {
            Err(LabError::Protocol { event: at, detail }) => {
                assert_eq!(at, event);
                detail
            }
            other => panic!("{line}: expected a protocol error, got {other:?}"),
        }
    }

    #[test]
    fn issue_13_a_message_missing_a_field_is_a_protocol_error_not_a_zero() {
        let detail =
            protocol_detail::<Written>(r#"{"event":"written","data":{"faults":64}}"#, "written");
        assert!(detail.contains("missing field `pages`"), "{detail}");
        let e = decode::<Written>(r#"{"event":"written","data":{"faults":64}}"#, "written")
            .unwrap_err()
            .to_string();
        assert!(e.contains("'written'") && e.contains("`pages`"), "{e}");
        let ok: Written = decode(
            r#"{"event":"written","data":{"pages":3,"faults":64}}"#,
            "written",
        )
        .unwrap();
        assert_eq!(
            ok,
            Written {
                pages: 3,
                faults: 64
            }
        );
    }

    #[test]
    fn issue_13_mistyped_unknown_and_unexpected_messages_are_protocol_errors() {
        for (line, says) in [
            (
                r#"{"event":"written","data":{"pages":"3","faults":64}}"#,
                "invalid type: string \"3\"",
            ),
            (
                r#"{"event":"written","data":{"pages":3,"faults":64,"sum":1}}"#,
                "unknown field `sum`",
            ),
            (
                r#"{"event":"written","data":{"pages":-1,"faults":64}}"#,
                "invalid value",
            ),
            (r#"{"event":"written"}"#, "missing field `data`"),
            (r#"{"event":"read","data":null}"#, "sent 'read' instead"),
            ("half a line", "half a line"),
        ] {
            let detail = protocol_detail::<Written>(line, "written");
            assert!(detail.contains(says), "{line}: {detail}");
        }
        // A checkpoint without data takes none.
        let detail = protocol_detail::<()>(r#"{"event":"read","data":{"sum":0}}"#, "read");
        assert!(detail.contains("invalid type"), "{detail}");
    }

    #[test]
    fn issue_13_an_optional_field_must_be_present_too() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raised {
            #[serde(deserialize_with = "present")]
            hard: Option<u64>,
        }
        let detail = protocol_detail::<Raised>(r#"{"event":"raised","data":{}}"#, "raised");
        assert!(detail.contains("missing field `hard`"), "{detail}");
        let r: Raised = decode(r#"{"event":"raised","data":{"hard":null}}"#, "raised").unwrap();
        assert_eq!(r.hard, None);
        let r: Raised = decode(r#"{"event":"raised","data":{"hard":4096}}"#, "raised").unwrap();
        assert_eq!(r.hard, Some(4096));
    }

    #[test]
    fn the_childs_error_report_is_a_child_error() {
        match decode::<Written>(r#"{"event":"error","data":"mmap: ENOMEM"}"#, "written") {
            Err(LabError::Child(m)) => assert_eq!(m, "mmap: ENOMEM"),
            other => panic!("{other:?}"),
        }
        protocol_detail::<Written>(r#"{"event":"error","data":{"errno":12}}"#, "written");
    }

    #[test]
    fn what_the_child_sends_the_parent_decodes() {
        let line = serde_json::to_string(&Outgoing {
            event: "written",
            data: Written {
                pages: 7,
                faults: 9,
            },
        })
        .unwrap();
        assert_eq!(
            decode::<Written>(&line, "written").unwrap(),
            Written {
                pages: 7,
                faults: 9
            }
        );
        let line = serde_json::to_string(&Outgoing {
            event: "mapped",
            data: (),
        })
        .unwrap();
        decode::<()>(&line, "mapped").unwrap();
    }

    #[test]
    fn issue_13_a_missing_parameter_is_an_error_not_a_default() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Touch {
            size: u64,
        }
        let e = Params::new("touch", r#"{"trials":5}"#)
            .decode::<Touch>()
            .unwrap_err();
        assert!(e.contains("'touch'") && e.contains("`trials`"), "{e}");
        let e = Params::new("touch", "{}").decode::<Touch>().unwrap_err();
        assert!(e.contains("missing field `size`"), "{e}");
        let p: Touch = Params::new("touch", r#"{"size":5}"#).decode().unwrap();
        assert_eq!(p.size, 5);
    }

    #[test]
    fn wait_forked_returns_the_childs_wait_status() {
        // SAFETY: the forked copy of the test process only calls _exit.
        let pid = os_result(unsafe { libc::fork() }).unwrap();
        if pid == 0 {
            // SAFETY: leave at once, running nothing of the harness.
            unsafe { libc::_exit(3) };
        }
        let status = wait_forked(pid).unwrap();
        assert!(libc::WIFEXITED(status), "status {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), 3);
        let reaped = wait_forked(pid).unwrap_err();
        assert_eq!(
            reaped.raw_os_error(),
            Some(libc::ECHILD),
            "reaped once only"
        );
    }

    #[test]
    fn pid_of_refuses_what_is_not_a_process_id() {
        for raw in [0, -1, i32::MIN] {
            assert_eq!(pid_of(raw).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
        assert_eq!(pid_of(1).unwrap().as_raw_nonzero().get(), 1);
    }

    #[test]
    fn os_result_turns_minus_one_into_errno() {
        assert_eq!(os_result(7i32).unwrap(), 7);
        // SAFETY: closing an invalid fd only fails.
        let e = os_result(unsafe { libc::close(-1) }).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    }
}
