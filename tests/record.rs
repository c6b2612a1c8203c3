//! `syslens record` and the views asked about the past (issue 17): a scripted story
//! recorded and asked back; SIGKILL mid-recording; the lock; the size limit under churn.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// A recorder running into `store`, stopped with SIGTERM on drop.
struct Recorder {
    child: Child,
}

impl Recorder {
    fn start(store: &Path, extra: &[&str]) -> Recorder {
        let child = syslens()
            .args(["record", "--store", store.to_str().unwrap()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let r = Recorder { child };
        wait_for_samples(store, 1);
        r
    }

    /// SIGTERM, then what it said; it must exit 0.
    fn stop(mut self) -> String {
        // SAFETY: kill takes no pointers; the pid is our own child's, not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let out = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap())
            .wait_with_output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "recorder: {:?}: {err}", out.status);
        err
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Samples in the store, counted by SQLite itself (the store is plain SQLite); 0 before
/// the recorder made it.
fn rusqlite_count(store: &Path) -> i64 {
    rusqlite::Connection::open_with_flags(
        store.join("syslens.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .and_then(|c| c.query_row("SELECT count(*) FROM samples", [], |r| r.get(0)))
    .unwrap_or(0)
}

fn wait_for_samples(store: &Path, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while rusqlite_count(store) < n {
        assert!(Instant::now() < deadline, "fewer than {n} samples in 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn json_of(args: &[&str]) -> Value {
    let out = syslens().arg("--json").args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn events_of(store: &str, kind: &str) -> Vec<Value> {
    let out = syslens()
        .args(["--json", "events", "--store", store, "--kind", kind])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn issue_17_a_recorded_story_is_answered_by_every_view() {
    skip_unless!(is_root(), "the events and a memory cgroup need root");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    let rec = Recorder::start(&store, &["--interval", "0.5"]);

    // A process that peaked at 300 MiB and freed it, and stays.
    let spiked = Specimen::start(&["--spike-mib", "300"]);
    // A 0.4 s process that peaks at 200 MiB: shorter than any interval would catch
    // alive, recorded by its exit.
    let mut short = Command::new("sh")
        .args([
            "-c",
            "dd if=/dev/zero of=/dev/null bs=200M count=1 2>/dev/null; sleep 0.4",
        ])
        .spawn()
        .unwrap();
    let shell = short.id() as i64;
    short.wait().unwrap();
    // An OOM kill in a memory cgroup this test makes beneath its own.
    let jail = MemJail::new(64 << 20);
    let victim = jail.as_ref().ok().map(|jail| i64::from(jail.oom_kill_dd()));
    let before = rusqlite_count(&store);
    wait_for_samples(&store, before + 3);
    let said = rec.stop();
    assert!(said.contains("samples and"), "{said}");

    // The last sample: the specimen's RSS is down, its peak is not.
    let pid = spiked.pid().to_string();
    let past = json_of(&["inspect", "--store", s, &pid]);
    let row = &past["row"];
    let hwm = row["hwm_bytes"].as_u64().unwrap();
    let rss = row["rss_bytes"].as_u64().unwrap();
    assert!(hwm >= 300 << 20, "{past:#}");
    assert!(rss + (200 << 20) < hwm, "{past:#}");
    assert!(past["sample"]["line"]
        .as_str()
        .unwrap()
        .starts_with("recorded sample of"));

    // The same process in the table of the moment, and the system view of it.
    let rows = json_of(&["system", "--processes", "--store", s, "--sort", "hwm"]);
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["pid"].as_u64() == Some(u64::from(spiked.pid()))),
        "{rows:#}"
    );
    let system = json_of(&["system", "--store", s, "--at", "-1s"]);
    assert!(
        system["window_seconds"].as_f64().unwrap() > 0.2,
        "rates over the interval"
    );

    // The short-lived process: its exit with its peak.
    let exits = events_of(s, "exit");
    let dd = exits
        .iter()
        .find(|e| e["comm"] == "dd" && e["ppid"].as_i64() == Some(shell))
        .unwrap_or_else(|| panic!("no exit of dd under {shell}: {exits:#?}"));
    assert!(dd["peak_rss_bytes"].as_i64().unwrap() >= 200 << 20, "{dd}");

    // The OOM kill, its event and the doctor's finding over the window.
    match (victim, jail) {
        (Some(victim), Ok(jail)) => {
            let kills = events_of(s, "oom-kill");
            assert!(
                kills
                    .iter()
                    .any(|e| e["victim_pid"].as_i64() == Some(victim)),
                "{kills:#?}"
            );
            let report = json_of(&["doctor", "--store", s, "--since", "-5m"]);
            let name = jail.dir.file_name().unwrap().to_str().unwrap().to_owned();
            let found = report["findings"].as_array().unwrap().iter().any(|f| {
                f["rule"] == "oom-killed"
                    && f["message"]
                        .as_str()
                        .unwrap_or("")
                        .contains(&format!("latest pid {victim} (dd)"))
            });
            assert!(found, "no oom-killed finding for {name}: {report:#}");
        }
        (_, Err(why)) => eprintln!("SKIPPED (the OOM part): {why}"),
        _ => unreachable!(),
    }
}

#[test]
fn issue_17_a_sigkilled_recorder_loses_at_most_an_interval_and_the_store_continues() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut rec = Recorder::start(&store, &["--interval", "0.2"]);
    wait_for_samples(&store, 5);
    rec.child.kill().unwrap();
    rec.child.wait().unwrap();
    let kept = rusqlite_count(&store);
    assert!(kept >= 5);
    let rows = json_of(&["system", "--processes", "--store", store.to_str().unwrap()]);
    assert!(!rows.as_array().unwrap().is_empty());
    // The lock died with it: a new recorder takes the store over and goes on.
    let again = Recorder::start(&store, &["--interval", "0.2"]);
    wait_for_samples(&store, kept + 3);
    again.stop();
}

#[test]
fn issue_17_a_second_recorder_is_refused_with_the_holders_pid() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let first = Recorder::start(&store, &[]);
    let out = syslens()
        .args(["record", "--store", store.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("being recorded by pid {}", first.child.id())),
        "{err}"
    );
    first.stop();
}

#[test]
fn issue_17_the_store_keeps_within_max_size_under_churn() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let max = 256u64 << 10;
    // Churn: 200 more processes to record, and new ones every moment.
    let mut churn: Vec<Child> = (0..200)
        .map(|_| Command::new("sleep").arg("120").spawn().unwrap())
        .collect();
    churn.push(
        Command::new("sh")
            .args(["-c", "while :; do true & true & wait; done"])
            .spawn()
            .unwrap(),
    );
    let rec = Recorder::start(&store, &["--interval", "0.1", "--max-size", "256K"]);
    let started = Instant::now();
    let mut largest = 0;
    let mut trimmed = false;
    while started.elapsed() < Duration::from_secs(40) {
        let size: u64 = ["syslens.db", "syslens.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(store.join(f)).ok())
            .map(|m| m.len())
            .sum();
        largest = largest.max(size);
        let conn = rusqlite::Connection::open_with_flags(
            store.join("syslens.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let first: i64 = conn
            .query_row("SELECT min(id) FROM samples", [], |r| r.get(0))
            .unwrap_or(1);
        if first > 1 {
            trimmed = true;
            if started.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for c in &mut churn {
        let _ = c.kill();
        let _ = c.wait();
    }
    rec.stop();
    eprintln!("largest store seen: {largest} bytes (limit {max})");
    assert!(
        trimmed,
        "the store never reached its limit in 40 s (largest {largest})"
    );
    assert!(
        largest <= max + max / 10,
        "the store reached {largest} bytes, over 256 KiB + 10%"
    );
}

#[test]
fn issue_17_report_draws_the_recorded_story_with_its_peaks_and_events() {
    skip_unless!(is_root(), "the exit events need root");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    let rec = Recorder::start(&store, &["--interval", "0.1"]);
    // One that peaks at 300 MiB, frees it and stays; one that peaks at 200 MiB and is
    // killed after 0.4 s.
    let spiked = Specimen::start(&["--spike-mib", "300"]);
    let short = Specimen::start(&["--spike-mib", "200"]);
    let short_pid = short.pid();
    std::thread::sleep(Duration::from_millis(400));
    // SAFETY: kill takes no pointers; the pid is our own child's, not yet reaped.
    unsafe { libc::kill(short_pid as i32, libc::SIGKILL) };
    drop(short);
    let before = rusqlite_count(&store);
    wait_for_samples(&store, before + 3);
    rec.stop();

    let page = dir.path().join("window.html");
    let out = syslens()
        .args([
            "report",
            "--store",
            s,
            "--since",
            "-5m",
            "--processes",
            "20",
        ])
        .args(["--html", page.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: no script, and the only URL is SVG's namespace.
    assert!(!html.contains("<script"));
    assert_eq!(
        html.matches("http").count(),
        html.matches("http://www.w3.org/2000/svg").count()
    );
    let report = json_of(&[
        "report",
        "--store",
        s,
        "--since",
        "-5m",
        "--processes",
        "20",
    ]);
    let procs = report["processes"].as_array().unwrap();
    for (pid, mib) in [(spiked.pid(), 300u64), (short_pid, 200)] {
        let p = procs
            .iter()
            .find(|p| p["pid"].as_u64() == Some(u64::from(pid)))
            .unwrap_or_else(|| panic!("pid {pid} not among the largest: {report:#}"));
        let hwm = p["peak_hwm_bytes"].as_u64().unwrap();
        assert!(hwm >= mib << 20 && hwm < (mib + 64) << 20, "{p:#}");
        // Its chart, with the measured peak named beside it.
        let section = format!("<section id=\"pid-{pid}\">");
        let at = html
            .find(&section)
            .unwrap_or_else(|| panic!("no {section}"));
        let body = &html[at..at + html[at..].find("</section>").unwrap()];
        assert!(body.contains("<polyline"), "{body}");
        let peak = format!("peak HWM {}", syslens::model::units::bytes(hwm as f64));
        assert!(body.contains(&peak), "{peak} not in {body}");
    }
    // The 300 MiB one freed its spike: its RSS series ends well below its HWM.
    let spiked_row = procs
        .iter()
        .find(|p| p["pid"].as_u64() == Some(u64::from(spiked.pid())))
        .unwrap();
    let rss = spiked_row["rss"]["points"].as_array().unwrap();
    let last_rss = rss.last().unwrap()[1].as_f64().unwrap();
    assert!(last_rss < 100.0, "RSS {last_rss} MiB after freeing");
    // The kill of the short one: an event, marked on the timeline.
    let events = report["events"].as_array().unwrap();
    let killed = events
        .iter()
        .find(|e| {
            e["kind"] == "exit"
                && e["line"]
                    .as_str()
                    .unwrap_or("")
                    .contains(&format!("[{short_pid}]"))
        })
        .unwrap_or_else(|| panic!("no exit of {short_pid}: {events:#?}"));
    assert_eq!(killed["mark"], "died of SIGKILL", "{killed}");
    let line = syslens::render::html::esc(killed["line"].as_str().unwrap());
    assert!(html.contains(&line), "{line} not on the page");
    assert!(
        html.contains("stroke=\"#dc2626\""),
        "no mark on the timeline"
    );
    // The doctor's findings over the window, and the host's series.
    assert!(html.contains("The doctor over the window"));
    for name in [
        "used",
        "available",
        "cached",
        "memory some avg10",
        "context switches/s",
    ] {
        assert!(
            html.contains(&format!(">{name}</tspan>")),
            "no series {name}"
        );
    }
}

/// A figure of `system --json` by its name, from whichever section shows it.
fn figure<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report["sections"]
        .as_array()?
        .iter()
        .filter_map(|s| s["figures"].as_array())
        .flatten()
        .find(|f| f["name"] == name)
        .map(|f| &f["value"])
}

/// issue 17: a sample keeps the cgroup files of its processes: `system --cgroup --at`
/// shows a memory cgroup's limit and usage as recorded, after the cgroup is gone; a
/// cgroup no process was in is refused with the reason.
#[test]
fn issue_17_system_cgroup_at_shows_a_recorded_cgroup_after_it_is_gone() {
    skip_unless!(is_root(), "a memory cgroup of the test's own needs root");
    let limit: u64 = 96 << 20;
    let jail = match MemJail::named(limit, &format!("syslens-test-rec-{}", std::process::id())) {
        Ok(j) => j,
        Err(why) => {
            eprintln!("SKIPPED: no memory cgroup to make: {why}");
            return;
        }
    };
    let procs = jail.dir.join("cgroup.procs");
    let mut sleeper = Command::new("sh")
        .args([
            "-c",
            "echo $$ > \"$0\" && exec sleep 60",
            procs.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&procs)
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the sleeper never joined its cgroup"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    let rec = Recorder::start(&store, &["--interval", "0.3"]);
    wait_for_samples(&store, 3);
    rec.stop();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let path = jail.path.clone();
    drop(jail);
    assert!(!Path::new(&format!("/sys/fs/cgroup/memory{path}")).exists());
    let past = json_of(&["system", "--store", s, "--cgroup", &path]);
    assert_eq!(past["cgroup"], path.as_str(), "{past}");
    assert_eq!(
        figure(&past, "cgroup memory limit").and_then(Value::as_u64),
        Some(limit),
        "{past}"
    );
    let usage = figure(&past, "cgroup usage now").and_then(Value::as_u64);
    assert!(
        usage.is_some_and(|u| u > 0 && u < limit),
        "{usage:?}: {past}"
    );
    // Its parent (the test's own cgroup) is kept too; a path nobody was in is not.
    let parent = &path[..path.rfind('/').unwrap()];
    if !parent.is_empty() {
        let up = json_of(&["system", "--store", s, "--cgroup", parent]);
        assert!(
            figure(&up, "cgroup usage now").is_some_and(Value::is_u64),
            "{up}"
        );
    }
    let out = syslens()
        .args([
            "system",
            "--store",
            s,
            "--cgroup",
            "/no-such-cgroup-\u{1b}[31m",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is not in the sample of"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "a raw escape on the terminal: {err:?}"
    );
}

/// issue 17: EMFILE is recorded when asked for (`--with emfile`: its syscall
/// tracepoints are off by default), and `events --pid`, `events --until` and
/// `inspect --at` answer from the store.
#[test]
fn issue_17_record_with_emfile_keeps_it_and_events_filter_by_pid_and_time() {
    skip_unless!(is_root(), "tracepoints need root or CAP_PERFMON");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    let rec = Recorder::start(&store, &["--interval", "0.5", "--with", "emfile"]);
    // Opens /dev/null 40 times under a soft limit of 32: EMFILE, and it lives on.
    let specimen = Specimen::start(&["--fd-limit", "32", "--open-fds", "40"]);
    assert_eq!(specimen.report["emfile"], true, "{}", specimen.report);
    let pid = specimen.pid().to_string();
    let before = rusqlite_count(&store);
    wait_for_samples(&store, before + 2);
    rec.stop();
    let events = |extra: &[&str]| -> Vec<Value> {
        let out = syslens()
            .args(["--json", "events", "--store", s, "--kind", "emfile"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let mine = events(&["--pid", &pid]);
    assert!(!mine.is_empty(), "no emfile of {pid} recorded");
    for e in &mine {
        assert_eq!(e["pid"].to_string(), pid, "{e}");
        assert_eq!(e["limit"], 32, "{e}");
    }
    // Init opened nothing past its limit; the store began under a minute ago.
    assert!(events(&["--pid", "1"]).is_empty());
    assert!(events(&["--until", "-1h"]).is_empty());
    assert_eq!(events(&["--since", "-1h", "--pid", &pid]).len(), mine.len());
    // The sample at or before a second ago holds the specimen with its fds.
    let past = json_of(&["inspect", "--store", s, "--at", "-1s", &pid]);
    assert_eq!(past["row"]["pid"].to_string(), pid, "{past:#}");
    assert!(past["sample"]["line"]
        .as_str()
        .unwrap()
        .starts_with("recorded sample of"));
}

#[test]
fn issue_17_record_with_refuses_what_is_not_a_costly_source() {
    for (with, said) in [
        ("exit", "recorded anyway"),
        ("nonsense", "no event kind nonsense"),
    ] {
        let out = syslens()
            .args(["record", "--store", "/nonexistent/store", "--with", with])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(said) && err.contains("emfile"), "{err}");
    }
}

/// issue 17: a full disk stops the recorder with the reason (exit 1) and corrupts
/// nothing: the store is read afterwards and, given room, a new recorder continues it.
#[test]
fn issue_17_a_full_disk_stops_the_recorder_and_the_store_continues() {
    skip_unless!(is_root(), "mounting a small tmpfs needs root");
    struct Mount(tempfile::TempDir);
    impl Drop for Mount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0.path()).status();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=400k", "tmpfs"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(mounted.success(), "mount a 400 KiB tmpfs");
    let mnt = Mount(dir);
    let store = mnt.0.path().join("store");
    let s = store.to_str().unwrap();
    let out = syslens()
        .args(["record", "--store", s, "--interval", "0.2", "--for", "120s"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the disk is full") && err.contains("recording stopped"),
        "{err}"
    );
    let kept = rusqlite_count(&store);
    assert!(kept > 0, "no sample kept before the disk filled: {err}");
    let past = json_of(&["system", "--store", s]);
    assert!(past.is_object(), "{past}");
    // Room again: a new recorder continues the same store.
    let grown = Command::new("mount")
        .args(["-o", "remount,size=8m"])
        .arg(mnt.0.path())
        .status()
        .unwrap();
    assert!(grown.success());
    let rec = Recorder::start(&store, &["--interval", "0.2"]);
    wait_for_samples(&store, kept + 2);
    rec.stop();
}
