//! syslens as the reaper of everything its labs start. While a [`Reaper`] lives, the
//! process is a child subreaper (PR_SET_CHILD_SUBREAPER): when a lab child dies first,
//! its own children (the zombie the signals lab keeps on purpose, forked helpers) are
//! handed to syslens instead of PID 1, which in a container may never reap them.
//! [`sweep`] kills what remains of the descendants and reaps every one; it runs after
//! each lab, when the guard drops (normal exit, error, panic) and on the signal path.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{self, Pid, Signal, WaitOptions};
use syslens_probe::stat::{state_name, Stat};
use syslens_probe::Reader;

use super::cleanup;

/// Whether a [`Reaper`] is alive: only then do sweeps run, so a library user's own
/// children are never touched.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// How long a sweep waits for killed descendants to exit before it gives up on them.
const SWEEP_WITHIN: Duration = Duration::from_secs(3);
/// Pause between two scans of a sweep.
const RESCAN: Duration = Duration::from_millis(10);

/// Makes syslens the reaper of its labs' descendants for as long as it lives; when
/// dropped, kills and reaps what remains and says on stderr what would not die. Create
/// one before the first lab runs, in the command that runs labs.
#[derive(Debug)]
#[must_use = "dropping the reaper sweeps at once and ends the subreaper role"]
pub struct Reaper {
    _private: (),
}

impl Reaper {
    /// Installs the SIGINT / SIGTERM handling and becomes the child subreaper.
    pub fn start() -> Reaper {
        cleanup::install_signal_handler();
        if let Err(e) = process::set_child_subreaper(Some(process::getpid())) {
            warn(&format!(
                "cannot become the subreaper of the labs' children ({e}): \
                 what a dying lab child leaves goes to PID 1"
            ));
        }
        ACTIVE.store(true, Ordering::SeqCst);
        Reaper { _private: () }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for line in sweep() {
            warn(&line);
        }
        ACTIVE.store(false, Ordering::SeqCst);
        let _ = process::set_child_subreaper(None);
    }
}

/// Writes one line to stderr; a closed stderr is not worth a panic.
pub(super) fn warn(line: &str) {
    let _ = writeln!(std::io::stderr(), "syslens: {line}");
}

/// A descendant of this process, from its /proc/PID/stat.
#[derive(Debug)]
struct Descendant {
    pid: i32,
    state: u8,
    comm: String,
}

/// Every descendant of this process, found by walking the PPIDs of /proc once.
fn descendants(reader: &mut Reader) -> Vec<Descendant> {
    let mut pids = Vec::new();
    if reader.pids(&mut pids).is_err() {
        return Vec::new();
    }
    let mut others: Vec<(i64, Descendant)> = pids
        .into_iter()
        .filter_map(|pid| {
            let dir = reader.open_pid(pid).ok()?;
            let stat = reader.read_pid(&dir, "stat").and_then(Stat::parse).ok()?;
            let d = Descendant {
                pid,
                state: stat.state,
                comm: stat.comm.to_string(),
            };
            Some((stat.ppid, d))
        })
        .collect();
    let mut parents = vec![i64::from(process::getpid().as_raw_nonzero().get())];
    let mut found = Vec::new();
    while let Some(parent) = parents.pop() {
        let (children, rest) = others
            .into_iter()
            .partition::<Vec<_>, _>(|(ppid, _)| *ppid == parent);
        others = rest;
        for (_, d) in children {
            parents.push(i64::from(d.pid));
            found.push(d);
        }
    }
    found
}

/// Reaps every child that has exited, without waiting for the others.
fn reap_exited() {
    while let Ok(Some(_)) = process::waitpid(None, WaitOptions::NOHANG) {}
}

fn kill(descendants: &[Descendant]) {
    for d in descendants.iter().filter(|d| d.state != b'Z') {
        if let Some(pid) = Pid::from_raw(d.pid) {
            let _ = process::kill_process(pid, Signal::KILL);
        }
    }
}

/// SIGKILL to every living descendant, at once, without reaping (the signal thread
/// calls it while the main thread may still wait for its children).
pub fn kill_descendants() {
    if !ACTIVE.load(Ordering::SeqCst) {
        return;
    }
    if let Ok(mut reader) = Reader::host() {
        kill(&descendants(&mut reader));
    }
}

/// Kills what remains of this process's descendants and reaps them, until none is
/// left or [`SWEEP_WITHIN`] has passed; returns one line per descendant that outlived
/// it (a D-state sleeper), saying why. Run it only where no child handle of the caller
/// is still waited for (between labs, at exit): it reaps any child. Does nothing
/// unless a [`Reaper`] is alive.
pub fn sweep() -> Vec<String> {
    if !ACTIVE.load(Ordering::SeqCst) {
        return Vec::new();
    }
    reap_exited();
    let Ok(mut reader) = Reader::host() else {
        return Vec::new();
    };
    let deadline = Instant::now() + SWEEP_WITHIN;
    loop {
        let left = descendants(&mut reader);
        if left.is_empty() {
            return Vec::new();
        }
        if Instant::now() >= deadline {
            return left.iter().map(|d| stuck(&mut reader, d)).collect();
        }
        kill(&left);
        std::thread::sleep(RESCAN);
        reap_exited();
    }
}

/// "process 123 (exe) would not die within 3 s: disk sleep (D) in folio_wait_bit".
fn stuck(reader: &mut Reader, d: &Descendant) -> String {
    let wchan = reader
        .open_pid(d.pid)
        .and_then(|dir| {
            reader
                .read_pid(&dir, "wchan")
                .map(syslens_probe::parse::text)
        })
        .map(|w| w.trim().to_owned())
        .ok()
        .filter(|w| !w.is_empty() && w != "0")
        .map_or(String::new(), |w| format!(" in {w}"));
    format!(
        "process {} ({}) would not die within {} s: {} ({}){wchan}; it is left behind",
        d.pid,
        d.comm,
        SWEEP_WITHIN.as_secs(),
        state_name(d.state),
        d.state as char
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_include_grandchildren_and_a_stuck_one_is_named_with_its_state() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .unwrap();
        let sh = child.id() as i32;
        let mut reader = Reader::host().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let sleep = loop {
            let found = descendants(&mut reader);
            // Until sleep has paged itself in and blocked, it reads as running (R):
            // a CI host under load showed `running (R) in folio_wait_bit_common`.
            if let Some(d) = found.iter().find(|d| d.comm == "sleep" && d.state == b'S') {
                assert!(found.iter().any(|d| d.pid == sh), "sh is a descendant too");
                break Descendant {
                    pid: d.pid,
                    state: d.state,
                    comm: d.comm.clone(),
                };
            }
            assert!(
                Instant::now() < deadline,
                "no sleeping grandchild found: {found:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let line = stuck(&mut reader, &sleep);
        assert!(
            line.starts_with(&format!(
                "process {} (sleep) would not die within 3 s: sleeping (S)",
                sleep.pid
            )),
            "{line}"
        );
        kill(&[sleep]);
        let _ = child.kill();
        child.wait().unwrap();
    }
}
