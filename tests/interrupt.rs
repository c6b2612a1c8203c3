//! Interrupting a lab leaves no process behind, zombies included (issue 22). Every lab
//! runs twice in a process group of its own to measure its quick duration, then is
//! interrupted with SIGINT to the whole group (as Ctrl-C does) early, half way, late
//! and as soon as its first child runs; once syslens has exited, no process of that
//! group may remain, and at least one of the four must have interrupted the lab.
//!
//! The test process makes itself a child subreaper, so that whatever syslens fails to
//! reap is handed to the test (and stays visible as a zombie of it) instead of to PID 1,
//! which may reap it before anyone looks.

use std::collections::HashSet;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common::syslens;

/// When, as a share of the lab's measured quick duration, SIGINT is sent.
const MOMENTS: [f64; 3] = [0.1, 0.5, 0.9];

#[derive(Debug)]
struct Proc {
    pid: i32,
    ppid: i32,
    pgid: i32,
    state: char,
    comm: String,
}

/// Every process now, from /proc/PID/stat (zombies included).
fn processes() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (open, close) = (stat.find('(')?, stat.rfind(')')?);
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        Some(Proc {
            pid,
            comm: stat[open + 1..close].to_owned(),
            state: rest.first()?.chars().next()?,
            ppid: rest.get(1)?.parse().ok()?,
            pgid: rest.get(2)?.parse().ok()?,
        })
    })
    .collect()
}

/// What a run of syslens with process group `pgid` left: any process of that group,
/// and any zombie of the binary (comm `syslens`, or `exe` for the re-executed lab
/// children) handed to PID 1 or to this test that was not there before the run.
fn leftovers(pgid: i32, before: &HashSet<i32>) -> Vec<Proc> {
    let me = std::process::id() as i32;
    processes()
        .into_iter()
        .filter(|p| {
            p.pgid == pgid
                || (p.state == 'Z'
                    && (p.ppid == 1 || p.ppid == me)
                    && (p.comm == "exe" || p.comm == "syslens")
                    && !before.contains(&p.pid))
        })
        .collect()
}

/// Kills and reaps what a failed run left, so that the next lab starts clean.
fn clear(left: &[Proc]) {
    let me = std::process::id() as i32;
    for p in left {
        // SAFETY: kill and waitpid take plain numbers; only processes the run left.
        unsafe {
            libc::kill(p.pid, libc::SIGKILL);
            if p.ppid == me {
                libc::waitpid(p.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

fn describe(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (_, Some(sig)) => format!("killed by signal {sig}"),
        _ => "?".into(),
    }
}

/// When a run is sent SIGINT.
#[derive(Clone, Copy)]
enum Moment {
    /// Never: the run measures the lab's duration.
    Never,
    /// This long after the start.
    After(Duration),
    /// As soon as the first lab child runs: then the lab is surely under way (a lab of
    /// 30 ms may be over, or not yet have its handler, at any fixed moment).
    FirstChild,
}

/// Whether a process of group `pgid` other than its leader runs (a lab child).
fn has_child(pgid: i32) -> bool {
    processes().iter().any(|p| p.pgid == pgid && p.pid != pgid)
}

/// Runs `syslens lab ID --quick` in a process group of its own, sends SIGINT to the
/// group at `moment`, and returns its exit status, its wall time and what it left.
fn run(id: &str, moment: Moment) -> (ExitStatus, Duration, Vec<Proc>) {
    let before: HashSet<i32> = processes().iter().map(|p| p.pid).collect();
    let started = Instant::now();
    let mut child = syslens()
        .args(["lab", id, "--quick"])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start syslens");
    let pgid = child.id() as i32;
    let send = match moment {
        Moment::Never => false,
        Moment::After(after) => {
            std::thread::sleep(after);
            true
        }
        Moment::FirstChild => loop {
            if has_child(pgid) {
                break true;
            }
            if child.try_wait().expect("poll syslens").is_some() {
                break false;
            }
            std::thread::sleep(Duration::from_micros(500));
        },
    };
    if send {
        // SAFETY: signals the process group this test just made.
        unsafe { libc::killpg(pgid, libc::SIGINT) };
    }
    let status = child.wait().expect("wait for syslens");
    let took = started.elapsed();
    (status, took, leftovers(pgid, &before))
}

fn show(left: &[Proc]) -> String {
    left.iter()
        .map(|p| format!("{} ({}) {} ppid {}", p.pid, p.comm, p.state, p.ppid))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn issue_22_interrupted_labs_leave_no_process_or_zombie() {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .expect("PR_SET_CHILD_SUBREAPER");
    let out = syslens()
        .args(["lab", "--list", "--json"])
        .output()
        .expect("syslens lab --list");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON list");
    let ids: Vec<String> = list
        .as_array()
        .expect("an array of labs")
        .iter()
        .map(|l| l["id"].as_str().expect("an id").to_owned())
        .collect();
    assert_eq!(ids.len(), 17, "the seventeen labs: {ids:?}");
    let started = Instant::now();
    let mut failures = Vec::new();
    for id in &ids {
        // The faster of two runs: the first may pay for cold caches, and a moment late
        // in a slow run would fall after the end of the next one.
        let mut quick = Duration::MAX;
        let mut outcomes = Vec::new();
        for _ in 0..2 {
            let (status, took, left) = run(id, Moment::Never);
            if !left.is_empty() {
                failures.push(format!("{id}, uninterrupted: left {}", show(&left)));
                clear(&left);
            }
            quick = quick.min(took);
            outcomes.push(format!(
                "run {:.2} s, {}",
                took.as_secs_f64(),
                describe(status)
            ));
        }
        let mut interrupted = 0;
        let moments = MOMENTS
            .iter()
            .map(|&share| {
                let at = quick.mul_f64(share);
                let name = format!("{:.0}% ({:.0} ms)", share * 100.0, at.as_secs_f64() * 1e3);
                (name, Moment::After(at))
            })
            .chain([("the first lab child".to_owned(), Moment::FirstChild)]);
        for (name, moment) in moments {
            let (status, _, left) = run(id, moment);
            outcomes.push(format!("SIGINT at {name}: {}", describe(status)));
            if !left.is_empty() {
                failures.push(format!(
                    "{id}, SIGINT at {name} ({}): left {}",
                    describe(status),
                    show(&left)
                ));
                clear(&left);
            }
            match (status.code(), status.signal()) {
                (Some(130), _) => interrupted += 1,
                // Finished before the signal, or killed before the handler was in
                // place (no lab child exists yet then).
                (Some(0 | 1), _) | (None, Some(libc::SIGINT)) => {}
                _ => failures.push(format!(
                    "{id}, SIGINT at {name}: {} (want 130)",
                    describe(status)
                )),
            }
        }
        eprintln!("{id}: {}", outcomes.join("; "));
        if interrupted == 0 {
            failures.push(format!(
                "{id}: no SIGINT landed while the lab ran ({})",
                outcomes.join("; ")
            ));
        }
    }
    eprintln!("all labs in {:.1} s", started.elapsed().as_secs_f64());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
