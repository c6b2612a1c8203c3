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

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cleanup::{self, Guard, Resource};
use super::jail::Jail;
use crate::catalogue::ConceptId;

/// Why a lab could not finish.
#[derive(Debug)]
pub enum LabError {
    Spawn(io::Error),
    /// The watchdog fired: the child hung and was killed.
    Timeout {
        waiting_for: String,
        after: Duration,
    },
    /// The child exited before reaching a checkpoint.
    Died {
        waiting_for: String,
        status: String,
        stderr: String,
    },
    /// The child reported an error.
    Child(String),
    /// Anything the parent could not set up.
    Setup(String),
    /// The run was interrupted by a signal.
    Interrupted(i32),
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
            LabError::Setup(m) => f.write_str(m),
            LabError::Interrupted(sig) => write!(f, "interrupted by signal {sig}"),
        }
    }
}

impl std::error::Error for LabError {}

/// One message of the protocol.
#[derive(Debug, Serialize, Deserialize)]
pub struct Msg {
    pub event: String,
    #[serde(default)]
    pub data: Value,
}

/// The parent's handle on a lab child. Dropping it kills and reaps the child.
#[derive(Debug)]
pub struct LabChild {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Option<String>>,
    stderr: Arc<Mutex<String>>,
    guard: Option<Guard>,
    pub pid: i32,
}

impl LabChild {
    /// Starts `syslens __lab-child CONCEPT ROLE PARAMS`.
    pub fn spawn(
        concept: ConceptId,
        role: &str,
        params: &Value,
        jail: &Jail,
    ) -> Result<LabChild, LabError> {
        let mut cmd = Command::new("/proc/self/exe");
        cmd.arg0("syslens")
            .args(["__lab-child", concept.slug(), role, &params.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: getpid is async-signal-safe.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the closure only makes async-signal-safe system calls (prctl,
        // getppid, _exit, and the jail's open/write/setrlimit) between fork and exec.
        let jail = jail.clone_for_child();
        unsafe {
            cmd.pre_exec(move || {
                jail.enter()?;
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before the prctl took effect.
                if libc::getppid() != parent {
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
            .ok_or_else(|| LabError::Setup("child has no stdout".into()))?;
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

    /// Waits for the next message, which must be `event`; returns its data.
    pub fn expect(&mut self, event: &str, timeout: Duration) -> Result<Value, LabError> {
        let started = Instant::now();
        loop {
            if let Some(sig) = cleanup::interrupted() {
                return Err(LabError::Interrupted(sig));
            }
            let left = timeout.saturating_sub(started.elapsed());
            let slice = left.min(Duration::from_millis(200));
            match self.lines.recv_timeout(slice) {
                Ok(Some(line)) => {
                    let msg: Msg = serde_json::from_str(&line)
                        .map_err(|e| LabError::Setup(format!("child said {line:?}: {e}")))?;
                    return match msg.event.as_str() {
                        e if e == event => Ok(msg.data),
                        "error" => Err(LabError::Child(
                            msg.data.as_str().unwrap_or("unknown").to_owned(),
                        )),
                        other => Err(LabError::Setup(format!(
                            "expected '{event}' from the child, got '{other}'"
                        ))),
                    };
                }
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
    pub fn poll(&mut self, event: &str, wait: Duration) -> Result<Option<Value>, LabError> {
        if let Some(sig) = cleanup::interrupted() {
            return Err(LabError::Interrupted(sig));
        }
        match self.lines.recv_timeout(wait) {
            Ok(Some(line)) => {
                let msg: Msg = serde_json::from_str(&line)
                    .map_err(|e| LabError::Setup(format!("child said {line:?}: {e}")))?;
                match msg.event.as_str() {
                    e if e == event => Ok(Some(msg.data)),
                    "error" => Err(LabError::Child(
                        msg.data.as_str().unwrap_or("unknown").to_owned(),
                    )),
                    other => Err(LabError::Setup(format!(
                        "expected '{event}' from the child, got '{other}'"
                    ))),
                }
            }
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
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| LabError::Setup("child stdin closed".into()))?;
        stdin
            .write_all(b"go\n")
            .and_then(|_| stdin.flush())
            .map_err(|e| LabError::Setup(format!("cannot reach the child: {e}")))
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
                Err(e) => return Err(LabError::Setup(e.to_string())),
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
    pub fn new() -> Link {
        Link {
            out: io::stdout(),
            inp: io::stdin().lock(),
        }
    }

    pub fn send(&mut self, event: &str, data: impl Serialize) -> io::Result<()> {
        let msg = serde_json::json!({ "event": event, "data": data });
        let mut out = self.out.lock();
        writeln!(out, "{msg}")?;
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
