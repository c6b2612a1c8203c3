//! The README's promises end to end (issue 23): each runs the real binary and checks
//! what the README says it does, where no other test did.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::serve::{get, Serve};

/// Sends `sig` to our own child `pid`.
fn signal(pid: u32, sig: i32) {
    // SAFETY: kill has no memory arguments; the pid is a child of this test.
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
}

/// Waits up to `limit` for `what` to give a value.
fn within<T>(limit: Duration, mut what: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    loop {
        if let Some(v) = what() {
            return Some(v);
        }
        if started.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The direct children of `pid` whose command line holds `word`.
fn children_running(pid: u32, word: &str) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) else {
        return Vec::new();
    };
    tasks
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|c: &u32| {
            std::fs::read(format!("/proc/{c}/cmdline"))
                .is_ok_and(|l| l.split(|b| *b == 0).any(|a| a == word.as_bytes()))
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    // Gone, or a zombie nobody reaped yet: either way no longer running.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        == Some(false)
}

#[test]
fn issue_23_syslens_with_no_arguments_runs_the_tour() {
    let cwd = tempfile::tempdir().unwrap();
    let tag = unique_tag();
    let child = syslens()
        .current_dir(cwd.path())
        .env("SYSLENS_TEST_TAG", &tag)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Its stdout is a pipe, written in blocks: the tour is seen running by its lab
    // children (they inherit the tag; the run itself is one of the tagged).
    let in_a_lab = within(Duration::from_secs(30), || {
        (processes_tagged(&tag).len() >= 2).then_some(())
    });
    signal(pid, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(in_a_lab.is_some(), "no lab child within 30 s: {text}");
    assert_eq!(
        text.lines().next(),
        Some("syslens tour: every lab on this kernel, then an HTML report")
    );
    assert!(
        text.lines().any(|l| l == "[ 1/17] lazy-init"),
        "the tour's first lab did not start: {text}"
    );
    assert_eq!(out.status.code(), Some(130), "{text}");
    // The tour's default report, in the directory it ran in.
    let page = std::fs::read_to_string(cwd.path().join("syslens-report.html"))
        .expect("the tour's report syslens-report.html is written");
    assert!(
        page.contains("interrupted"),
        "the report says it was stopped"
    );
    assert!(processes_tagged(&tag).is_empty(), "children survived");
    assert!(lab_leftovers(pid).is_empty(), "{:?}", lab_leftovers(pid));
}

/// `lab high-water-mark` with small chunks of 1 MiB: above glibc's mmap threshold each
/// is a mapping of its own, returned at once on free, so the claim that the small
/// variant's heap top keeps RSS pinned fails, as the parameter's description warns.
#[test]
fn issue_23_a_failed_claim_exits_1() {
    let out = syslens()
        .args(["lab", "high-water-mark", "--quick", "--json"])
        .args(["--set", "small_chunk=1M"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let failed: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "failed")
        .map(|c| c["claim"].as_str().unwrap())
        .collect();
    assert!(
        failed
            .iter()
            .any(|c| c.starts_with("after freeing all but the last small chunk")),
        "the pinned-heap claim did not fail: {report:#}"
    );
    assert_eq!(out.status.code(), Some(1), "a failed claim exits 1");
}

/// Runs `syslens ARGS` under script(1), stdout a terminal, with `env`.
fn in_a_terminal(args: &str, env: &[(&str, &str)]) -> String {
    let out = Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!("{} {args}", env!("CARGO_BIN_EXE_syslens")))
        .arg("/dev/null")
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn issue_23_color_always_never_and_auto_with_no_color() {
    let piped = |args: &[&str], env: &[(&str, &str)]| {
        let out = syslens()
            .args(args)
            .env_remove("NO_COLOR")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let sgr = |s: &str| s.contains("\x1b[");
    let cmd = ["explain", "cow"];
    assert!(sgr(&piped(
        &[&["--color", "always"][..], &cmd].concat(),
        &[]
    )));
    assert!(sgr(&piped(
        &[&["--color", "always"][..], &cmd].concat(),
        &[("NO_COLOR", "1")]
    )));
    assert!(!sgr(&piped(
        &[&["--color", "never"][..], &cmd].concat(),
        &[]
    )));
    assert!(!sgr(&piped(&cmd, &[])), "auto colours only a terminal");
    require_tool!(
        Command::new("script").arg("-V").output().is_ok(),
        "script(1) (util-linux) is not installed"
    );
    assert!(
        sgr(&in_a_terminal("explain cow", &[])),
        "auto on a terminal"
    );
    assert!(
        !sgr(&in_a_terminal("explain cow", &[("NO_COLOR", "1")])),
        "NO_COLOR=1 on a terminal"
    );
    assert!(
        sgr(&in_a_terminal("explain cow", &[("NO_COLOR", "")])),
        "an empty NO_COLOR is not set (no-color.org)"
    );
    assert!(!sgr(&in_a_terminal("--color never explain cow", &[])));
}

/// A lab run with its first child, and that child's pid.
fn lab_with_a_child(lab: &str) -> (Child, u32) {
    let run = syslens()
        .args(["lab", lab, "--quick", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = run.id();
    let child = within(Duration::from_secs(20), || {
        children_running(pid, "__lab-child").first().copied()
    })
    .expect("the lab never started a child");
    (run, child)
}

#[test]
fn issue_23_a_hung_lab_child_is_killed_by_the_watchdog_and_the_lab_fails_saying_so() {
    let (run, child) = lab_with_a_child("high-water-mark");
    // Stopped, it never reaches its next checkpoint: hung, as far as the parent knows.
    signal(child, libc::SIGSTOP);
    let started = Instant::now();
    let out = run.wait_with_output().unwrap();
    let waited = started.elapsed();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("watchdog: no '")
            && text.contains("from the child after 30.0 s; it was killed"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        (Duration::from_secs(29)..Duration::from_secs(60)).contains(&waited),
        "the watchdog waited {waited:?}"
    );
    assert!(!alive(child), "the hung child {child} was not killed");
}

#[test]
fn issue_23_a_sigkilled_runs_child_dies_with_it_and_the_next_run_sweeps_its_cgroup() {
    let (mut run, child) = lab_with_a_child("high-water-mark");
    let pid = run.id();
    // Stopped, so that only a SIGKILL ends it (PR_SET_PDEATHSIG's signal is SIGKILL).
    signal(child, libc::SIGSTOP);
    run.kill().unwrap();
    run.wait().unwrap();
    assert!(
        within(Duration::from_secs(2), || (!alive(child)).then_some(())).is_some(),
        "the lab child {child} outlived its killed parent"
    );
    let left = lab_leftovers(pid);
    if is_root() {
        assert!(
            left.iter().any(|l| l.starts_with("/sys/fs/cgroup")),
            "a run killed mid-lab leaves its memory cgroup: {left:?}"
        );
    }
    let out = run_ok(syslens().args(["lab", "fds-limits", "--quick", "--json"]));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(lab_leftovers(pid), Vec::<String>::new(), "not swept");
    if !left.is_empty() {
        let notes = r["notes"].to_string();
        assert!(
            left.iter()
                .all(|l| notes.contains(l.rsplit('/').next().unwrap())),
            "the report does not name what it swept ({left:?}): {notes}"
        );
    }
}

#[test]
fn issue_23_without_a_memory_cgroup_the_child_gets_an_rlimit_as_cap() {
    if let Err(why) = nobody_can_run() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        scratch.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let out = as_nobody()
        .args(["lab", "high-water-mark", "--quick", "--json"])
        .env("SYSLENS_TMPDIR", scratch.path())
        .env("HOME", scratch.path())
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let text = r.to_string();
    assert!(
        text.contains("RLIMIT_AS") && text.contains("(no memory cgroup: "),
        "nobody's lab does not say it ran under an RLIMIT_AS cap: {r:#}"
    );
}

/// A unique command name (15 bytes at most, the kernel's comm).
fn unique_comm(prefix: &str) -> String {
    format!("{prefix}{}", std::process::id() % 100_000)
}

#[test]
fn issue_23_doctor_name_keeps_that_process_and_fail_on_info_exits_1() {
    let comm = unique_comm("spiky");
    let s = Specimen::start(&["--spike-mib", "300", "--comm", &comm]);
    let _other = Specimen::start(&["--spike-mib", "300"]);
    let run = |fail_on: &str| {
        let out = syslens()
            .args(["doctor", "--json", "--window", "0", "--name", &comm])
            .args(["--fail-on", fail_on])
            .output()
            .unwrap();
        let r: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (r, out.status.code())
    };
    let (r, code) = run("info");
    let findings = r["findings"].as_array().unwrap();
    let subject = format!("pid {} ({comm})", s.pid());
    assert!(
        findings
            .iter()
            .any(|f| f["rule"] == "rss-far-below-peak" && f["subject"] == subject.as_str()),
        "{r:#}"
    );
    // Only it and its cgroups: not the other specimen, nothing system-wide.
    for f in findings {
        let subj = f["subject"].as_str().unwrap();
        assert!(subj == subject || subj.starts_with("cgroup "), "{f}");
    }
    assert_eq!(code, Some(1), "an info finding reached --fail-on info");
    let worse = |r: &Value| {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["severity"] != "info")
    };
    let (r, code) = run("warning");
    assert_eq!(code, Some(i32::from(worse(&r))), "--fail-on warning: {r:#}");
}

#[test]
fn issue_23_inspect_name_chooses_the_lowest_matching_pid() {
    let comm = unique_comm("twin");
    let a = Specimen::start(&["--comm", &comm]);
    let b = Specimen::start(&["--comm", &comm]);
    let (low, high) = (a.pid().min(b.pid()), a.pid().max(b.pid()));
    let out = run_ok(syslens().args([
        "inspect",
        "--json",
        "--window",
        "0",
        "--no-smaps",
        "--name",
        &comm,
    ]));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["pid"], low);
    assert_eq!(r["other_matches"], serde_json::json!([high]));
}

/// The group label of every sample of `family` in an exposition, with its value.
fn groups_of(text: &str, family: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|l| l.strip_prefix(family)?.strip_prefix("{group=\""))
        .filter_map(|l| {
            let (group, value) = l.split_once("\"} ")?;
            Some((group.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[test]
fn issue_23_serve_groups_by_pid_and_by_cgroup() {
    let comm = unique_comm("grouped");
    let s = Specimen::start(&["--comm", &comm]);
    let serve = Serve::start(&["--group-by", "pid", "--max-groups", "10000"]);
    let (code, text) = get(serve.port, "/metrics");
    assert_eq!(code, 200);
    let groups = groups_of(&text, "syslens_group_processes");
    assert!(
        groups.contains(&(format!("{comm}/{}", s.pid()), 1.0)),
        "no group {comm}/{}",
        s.pid()
    );
    drop(serve);
    let serve = Serve::start(&["--group-by", "cgroup", "--max-groups", "10000"]);
    let (code, text) = get(serve.port, "/metrics");
    assert_eq!(code, 200);
    let own = std::fs::read_to_string(format!("/proc/{}/cgroup", s.pid())).unwrap();
    let paths: Vec<&str> = own
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .collect();
    let groups = groups_of(&text, "syslens_group_processes");
    assert!(
        groups
            .iter()
            .any(|(g, n)| paths.contains(&g.as_str()) && *n >= 1.0),
        "no group named by the specimen's cgroup ({paths:?}): {groups:?}"
    );
    assert!(
        !groups.iter().any(|(g, _)| g.contains(&comm)),
        "grouped by cgroup, yet a group is named by a command"
    );
}

/// The collector durations of an exposition: equal in two scrapes only when they
/// came from one collection.
fn durations(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("syslens_scrape_collector_duration_seconds{"))
        .collect()
}

#[test]
fn issue_23_scrapes_within_the_cache_share_one_collection() {
    let serve = Serve::start(&["--cache", "30"]);
    let (_, a) = get(serve.port, "/metrics");
    let (_, b) = get(serve.port, "/metrics");
    assert!(!durations(&a).is_empty(), "no collector durations");
    assert_eq!(
        durations(&a),
        durations(&b),
        "a second collection within --cache"
    );
    drop(serve);
    let serve = Serve::start(&["--cache", "0"]);
    let (_, a) = get(serve.port, "/metrics");
    let (_, b) = get(serve.port, "/metrics");
    assert_ne!(
        durations(&a),
        durations(&b),
        "--cache 0 shared a collection"
    );
}

/// An HTTP exchange begun: the request sent, the answer not yet read.
fn send(port: u16, request: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    s
}

/// Whether the server has begun to answer on `s` (bytes wait to be read).
fn answered_yet(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let got = s.peek(&mut [0u8; 1]).is_ok_and(|n| n > 0);
    s.set_nonblocking(false).unwrap();
    got
}

/// The rest of a connection: its status and whether the body has the length its
/// Content-Length says.
fn answer(mut s: TcpStream) -> (u16, bool) {
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return (0, false);
    };
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let length: Option<usize> = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("content-length:")
            .and_then(|v| v.trim().parse().ok())
    });
    (status, length == Some(body.len()))
}

#[test]
fn issue_23_serve_finishes_requests_in_flight_on_sigterm_and_sigint_and_exits_0() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // PSS from every smaps_rollup: a collection slow enough to be caught in flight.
        let mut serve = Serve::start(&["--cache", "0", "--pss-rss-guard", "64G"]);
        // One scrape first: the server is past its start (event sources opened).
        assert_eq!(get(serve.port, "/metrics").0, 200);
        let idle = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
        idle.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        // Taken by the server while it had sent nothing; its request comes just before
        // the signal, unread when the signal comes (issue 23: such a scrape was cut).
        let mut late = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
        late.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // Scrapes in flight: sent, waiting for a collection when the signal comes (at
        // least one not answered yet: checked). A loaded machine can answer a batch
        // before the test looks: another batch then, up to 20.
        let mut busy: Vec<TcpStream> = Vec::new();
        for _ in 0..20 {
            busy.extend((0..4).map(|_| send(serve.port, "GET /metrics HTTP/1.0\r\n\r\n")));
            std::thread::sleep(Duration::from_millis(2));
            if busy.iter().any(|s| !answered_yet(s)) {
                break;
            }
        }
        let unanswered = busy.iter().filter(|s| !answered_yet(s)).count();
        // Stopped, the server cannot read the late request before the signal: it
        // finds both when it goes on, the signal first.
        let pid = serve.child.id();
        signal(pid, libc::SIGSTOP);
        let stopped = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('T')))
                .then_some(())
        };
        within(Duration::from_secs(5), stopped).expect("the server stopped");
        late.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        signal(pid, sig);
        signal(pid, libc::SIGCONT);
        assert!(
            unanswered > 0,
            "every scrape was answered before the signal: none in flight"
        );
        for s in busy {
            assert_eq!(
                answer(s),
                (200, true),
                "signal {sig}: a scrape in flight was cut"
            );
        }
        assert_eq!(
            answer(late),
            (200, true),
            "signal {sig}: a scrape sent on a connection taken before it was cut"
        );
        let mut idle = idle;
        let mut rest = Vec::new();
        let _ = idle.read_to_end(&mut rest);
        assert!(
            rest.is_empty(),
            "signal {sig}: the idle connection got {rest:?}"
        );
        assert_eq!(serve.child.wait().unwrap().code(), Some(0), "signal {sig}");
    }
}

/// The README: top restores the terminal after a panic. Nothing outside top can make it
/// panic (it has no fault hook, and src/top is not this suite's to change): counted as
/// skipped, with the reason, until it can be.
#[test]
#[ignore = "top has no way to be made to panic from outside (no fault hook in src/top); the panic hook restoring the terminal is untested end to end"]
fn issue_23_top_restores_the_terminal_after_a_panic() {}
