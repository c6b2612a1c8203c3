//! `syslens inspect` against processes whose state the test controls.

use crate::common::*;
use syslens::lab::cgroup::LabCgroup;
use syslens_probe::Reader;

#[test]
fn memory_spike_leaves_rss_below_hwm() {
    let s = Specimen::start(&["--spike-mib", "64"]);
    let r = inspect_json(s.pid(), &["--window", "0"]);
    let rss = u64_of(figure(&r, "high-water-mark", "resident now (VmRSS)"));
    let hwm = u64_of(figure(&r, "high-water-mark", "resident peak (VmHWM)"));
    let gap = u64_of(figure(
        &r,
        "high-water-mark",
        "below the peak (VmHWM - VmRSS)",
    ));
    assert!(hwm >= 64 << 20, "HWM {hwm} below the 64 MiB spike");
    assert!(rss < hwm, "RSS {rss} not below HWM {hwm}");
    assert_eq!(gap, hwm - rss);
    assert!(
        gap >= 60 << 20,
        "the freed spike should show as the gap, got {gap}"
    );
}

#[test]
fn fds_and_deleted_but_open_file_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let s = Specimen::start(&[
        "--open-fds",
        "7",
        "--deleted-file-in",
        dir.path().to_str().unwrap(),
    ]);
    let r = inspect_json(s.pid(), &["--window", "0"]);
    let kinds = table(&r, "fds-limits", "fds by kind");
    let devices = kinds
        .iter()
        .find(|row| row[0] == "device")
        .map(|row| u64_of(&row[1]))
        .unwrap_or(0);
    // Seven /dev/null plus stdio that is not a pipe (stderr inherits the test's).
    assert!(
        devices >= 7,
        "expected at least 7 device fds, got {devices}: {kinds:?}"
    );
    let listed: u64 = kinds.iter().map(|row| u64_of(&row[1])).sum();
    assert_eq!(
        u64_of(figure(&r, "fds-limits", "open fds")),
        listed,
        "count by stat == count by listing"
    );
    assert_eq!(
        u64_of(figure(&r, "fds-limits", "deleted-but-open files")),
        1
    );
    let deleted = table(&r, "fds-limits", "deleted but still open");
    assert_eq!(deleted[0][1], s.report["deleted_file"]);
    assert_eq!(deleted[0][2], s.report["deleted_file_bytes"]);
}

#[test]
fn ignored_sigterm_and_per_thread_blocked_signal() {
    let s = Specimen::start(&["--ignore-term", "--block-usr1-thread"]);
    let tid = s.report["blocker_tid"].as_i64().unwrap();
    // A signal aimed at the blocking thread stays pending on that thread only.
    // SAFETY: tgkill with a live pid/tid pair and a signal number.
    let rc = unsafe { libc::syscall(libc::SYS_tgkill, s.pid() as i64, tid, libc::SIGUSR1 as i64) };
    assert_eq!(rc, 0);
    let r = inspect_json(s.pid(), &["--window", "0"]);
    assert_eq!(figure(&r, "signals", "SIGTERM"), "ignored");
    assert!(
        list_of(figure(&r, "signals", "ignored (SigIgn, per process)"))
            .contains(&"SIGTERM".to_owned())
    );
    let threads = table(&r, "signals", "per thread");
    assert_eq!(threads.len(), 2, "{threads:?}");
    for row in threads {
        let blocked = list_of(&row[3]);
        let pending = list_of(&row[2]);
        if row[0].as_i64() == Some(tid) {
            assert!(blocked.contains(&"SIGUSR1".to_owned()), "{row:?}");
            assert!(pending.contains(&"SIGUSR1".to_owned()), "{row:?}");
        } else {
            assert!(
                !blocked.contains(&"SIGUSR1".to_owned()),
                "main thread must not block USR1: {row:?}"
            );
            assert!(pending.is_empty(), "{row:?}");
        }
    }
    assert!(list_of(figure(&r, "signals", "pending for the process (ShdPnd)")).is_empty());
}

#[test]
fn new_uts_and_net_namespaces_show_as_isolated() {
    skip_unless!(is_root(), "unshare(CLONE_NEWUTS|CLONE_NEWNET) needs root");
    let s = Specimen::start(&["--unshare-uts-net"]);
    let r = inspect_json(s.pid(), &["--window", "0"]);
    let isolated = list_of(figure(&r, "cgroups-namespaces", "isolated namespaces"));
    assert!(
        isolated.contains(&"uts".to_owned()) && isolated.contains(&"net".to_owned()),
        "{isolated:?}"
    );
    assert!(!isolated.contains(&"pid".to_owned()), "{isolated:?}");
    let own = inspect_json(std::process::id(), &["--window", "0", "--no-smaps"]);
    let own_isolated = list_of(figure(&own, "cgroups-namespaces", "isolated namespaces"));
    assert!(
        !own_isolated.contains(&"uts".to_owned()),
        "the test itself is not isolated: {own_isolated:?}"
    );
}

#[test]
fn memory_cgroup_limit_is_reported() {
    skip_unless!(is_root(), "creating a memory cgroup needs root");
    let mut reader = Reader::host().unwrap();
    let cg = match LabCgroup::create(&mut reader, &["memory"]) {
        Ok(cg) => cg,
        Err(e) => {
            eprintln!("SKIPPED: no memory cgroup can be made here: {e}");
            return;
        }
    };
    let limit: u64 = 256 << 20;
    let file = match cg.version("memory") {
        Some(syslens_probe::cgroup::CgroupVersion::V1) => "memory.limit_in_bytes",
        _ => "memory.max",
    };
    cg.write("memory", file, &limit.to_string()).unwrap();
    let s = Specimen::start(&[]);
    cg.add(s.pid()).unwrap();
    let r = inspect_json(s.pid(), &["--window", "0"]);
    assert_eq!(
        u64_of(figure(&r, "swap-oom", "cgroup's own memory limit")),
        limit
    );
    let path = figure(&r, "swap-oom", "cgroup")
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        path.ends_with(cg.name()),
        "{path} is not the lab cgroup {}",
        cg.name()
    );
    drop(s);
    let dir = cg.dir("memory").unwrap().to_owned();
    cg.remove().unwrap();
    assert!(!dir.exists(), "lab cgroup left behind");
}

#[test]
fn inspect_by_name_finds_the_process() {
    let s = Specimen::start(&[]);
    let r: serde_json::Value = serde_json::from_slice(
        &run_ok(syslens().args([
            "inspect",
            "--json",
            "--window",
            "0",
            "--no-smaps",
            "--name",
            "syslens",
        ]))
        .stdout,
    )
    .unwrap();
    let pid = r["pid"].as_u64().unwrap() as u32;
    let others: Vec<u64> = r["other_matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert!(
        pid == s.pid() || others.contains(&u64::from(s.pid())),
        "specimen {} not matched",
        s.pid()
    );
}

#[test]
fn window_gives_rates_and_single_sample_says_why_not() {
    let s = Specimen::start(&[]);
    let r = inspect_json(s.pid(), &["--window", "0.3", "--no-smaps"]);
    assert!(r["window_seconds"].as_f64().unwrap() >= 0.25);
    assert!(figure(&r, "page-faults", "minor faults rate")
        .as_f64()
        .is_some());
    let one = inspect_json(s.pid(), &["--window", "0", "--no-smaps"]);
    assert_eq!(
        missing_kind(figure(&one, "page-faults", "minor faults rate")),
        Some("not_applicable")
    );
    assert_eq!(
        missing_kind(figure(&one, "cow", "resident (Rss)")),
        Some("not_applicable")
    );
}

#[test]
fn vanished_pid_exits_2() {
    let out = syslens().args(["inspect", "2147483647"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no process"));
}

#[test]
fn kernel_thread_and_zombie_do_not_fail() {
    // PID 2 is kthreadd on Linux: no address space, no cmdline.
    let r = inspect_json(2, &["--window", "0"]);
    assert_eq!(
        missing_kind(figure(&r, "high-water-mark", "resident now (VmRSS)")),
        Some("not_applicable")
    );
    // A zombie: a child that exited and was not reaped yet.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let z = inspect_json(child.id(), &["--window", "0"]);
    assert_eq!(z["state"].as_str().unwrap().chars().next(), Some('Z'));
    assert_eq!(
        missing_kind(figure(&z, "cow", "resident (Rss)")),
        Some("not_applicable")
    );
    let me = inspect_json(std::process::id(), &["--window", "0", "--no-smaps"]);
    let zombies = list_of(figure(
        &me,
        "signals",
        "zombie children (exited, not reaped)",
    ));
    assert!(zombies.contains(&child.id().to_string()), "{zombies:?}");
    child.wait().unwrap();
}

/// issue 15 item 8: the fault totals are the values at the end of the window, beside
/// the rates over it (they were the values at its start).
#[test]
fn issue_15_fault_totals_are_taken_at_the_end_of_the_window() {
    // 20 MiB/s of fresh pages: about 5000 minor faults a second.
    let s = Specimen::start(&["--leak-mib-per-s", "20"]);
    let minflt = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", s.pid())).unwrap();
        let after = stat.rsplit_once(") ").unwrap().1;
        after.split_whitespace().nth(7).unwrap().parse().unwrap()
    };
    let before = minflt();
    let r = inspect_json(s.pid(), &["--window", "1", "--no-smaps"]);
    let after = minflt();
    let total = figure(&r, "page-faults", "minor faults (total)")
        .as_f64()
        .unwrap() as u64;
    let rate = figure(&r, "page-faults", "minor faults rate")
        .as_f64()
        .unwrap();
    assert!(rate > 1000.0, "the specimen faulted at {rate}/s");
    // The window's faults happened before the total was taken: more than half of them.
    assert!(
        total >= before + (rate * 0.5) as u64 && total <= after,
        "total {total}, {before} before the window, {after} after it, {rate}/s"
    );
}
