//! `syslens doctor`: each rule against a process that really is in the situation, and a
//! healthy process (an idle thread pool included) that raises nothing above info.

use crate::common::*;
use serde_json::Value;

fn doctor(args: &[&str]) -> (Value, i32) {
    let out = syslens()
        .args(["doctor", "--json", "--window", "1.5"])
        .args(args)
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (v, code)
}

fn findings_for(r: &Value, pid: u32) -> Vec<&Value> {
    let subject = format!("pid {pid} ");
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["subject"].as_str().unwrap().starts_with(&subject)
                || f["message"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("pid {pid} "))
        })
        .collect()
}

fn rules(fs: &[&Value]) -> Vec<String> {
    fs.iter()
        .map(|f| f["rule"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn leak_fd_pressure_sigterm_and_deleted_library_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let s = Specimen::start(&[
        "--leak-mib-per-s",
        "8",
        "--fd-limit",
        "64",
        "--open-fds",
        "57",
        "--ignore-term",
        "--deleted-lib-in",
        dir.path().to_str().unwrap(),
        "--deleted-file-in",
        dir.path().to_str().unwrap(),
    ]);
    let (r, code) = doctor(&["--pid", &s.pid().to_string()]);
    let fs = findings_for(&r, s.pid());
    let found = rules(&fs);
    for rule in [
        "steady-rss-growth",
        "fds-near-limit",
        "sigterm-ignored",
        "deleted-library-mapped",
        "deleted-file-held-open",
    ] {
        assert!(
            found.iter().any(|r| r == rule),
            "{rule} missing from {found:?}"
        );
    }
    let fd = fs.iter().find(|f| f["rule"] == "fds-near-limit").unwrap();
    assert_eq!(fd["concept"], "fds-limits");
    assert!(fd["message"].as_str().unwrap().contains("/64"), "{fd}");
    assert!(!fd["advice"].as_str().unwrap().is_empty());
    // 3 + 57 + the deleted file = 61 of 64, over 95%: an error, and --fail-on error
    // (the default) exits 1.
    assert_eq!(fd["severity"], "error");
    assert_eq!(code, 1);
}

#[test]
fn zombies_and_a_file_lock_wait_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("lock");
    let holder = Specimen::start(&["--flock-hold", lock.to_str().unwrap()]);
    let waiter = Specimen::start(&["--flock-wait", lock.to_str().unwrap(), "--zombies", "6"]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (r, _) = doctor(&[]);
    let fs = findings_for(&r, waiter.pid());
    let found = rules(&fs);
    assert!(found.iter().any(|r| r == "zombies-piling-up"), "{found:?}");
    let wait = fs
        .iter()
        .find(|f| f["rule"] == "file-lock-wait")
        .unwrap_or_else(|| panic!("no lock wait in {found:?}"));
    assert!(
        wait["message"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {}", holder.pid())),
        "{wait}"
    );
}

#[test]
fn a_healthy_process_and_an_idle_pool_raise_nothing_above_info() {
    let s = Specimen::start(&["--idle-pool", "4", "--open-fds", "3"]);
    let (r, code) = doctor(&["--pid", &s.pid().to_string(), "--fail-on", "warning"]);
    let fs = findings_for(&r, s.pid());
    assert!(fs.iter().all(|f| f["severity"] == "info"), "{fs:#?}");
    assert_eq!(code, 0);
    // Never the word deadlock: an idle pool looks exactly like one.
    assert!(!serde_json::to_string(&r)
        .unwrap()
        .to_lowercase()
        .contains("deadlock"));
}

#[test]
fn doctor_text_and_exit_codes() {
    let out = syslens()
        .args(["doctor", "--window", "0.5", "--pid", "2147483647"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown pid is a usage error"
    );
    let out = run_ok(syslens().args([
        "doctor",
        "--window",
        "0.5",
        "--pid",
        &std::process::id().to_string(),
    ]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("syslens doctor:"));
    assert!(text
        .lines()
        .all(|l| l.chars().count() <= 100 || l.contains("cgroup")));
}

#[test]
fn a_freed_spike_shows_rss_far_below_the_peak() {
    let s = Specimen::start(&["--spike-mib", "300"]);
    let (r, _) = doctor(&["--pid", &s.pid().to_string()]);
    assert!(
        rules(&findings_for(&r, s.pid()))
            .iter()
            .any(|r| r == "rss-far-below-peak"),
        "{r:#}"
    );
}

#[test]
fn an_oom_kill_by_the_swap_oom_lab_is_reported_from_the_kernel_log() {
    skip_unless!(is_root(), "the OOM lab's cgroup and /dev/kmsg need root");
    run_ok(syslens().args(["lab", "swap-oom", "--quick"]));
    let (r, _) = doctor(&[]);
    let kills: Vec<&Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "oom-killed")
        .collect();
    assert!(!kills.is_empty(), "no oom-killed finding: {r:#}");
    assert!(kills.iter().any(
        |k| k["message"].as_str().unwrap().contains("by a syslens lab") && k["severity"] == "info"
    ));
}

/// Two busy loops that end when dropped.
struct Load(Vec<std::process::Child>);

impl Load {
    fn start(n: usize) -> Load {
        Load(
            (0..n)
                .map(|_| {
                    std::process::Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .spawn()
                        .unwrap()
                })
                .collect(),
        )
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every percentage in a text, as a number.
fn percentages(text: &str) -> Vec<f64> {
    text.split(|c: char| c.is_whitespace() || c == '(' || c == ',')
        .filter_map(|w| w.strip_suffix('%')?.parse().ok())
        .collect()
}

#[test]
fn issue_13_doctor_window_0_under_load_prints_no_impossible_figure() {
    let _load = Load::start(2);
    std::thread::sleep(std::time::Duration::from_millis(300));
    for window in ["0", "0.2"] {
        let out = syslens()
            .args(["doctor", "--window", window])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.code().is_some_and(|c| c <= 1), "{out:?}");
        // A share of a window is at most 100% per thread; 300-digit figures came from
        // dividing by f64::MIN_POSITIVE.
        for p in percentages(&text) {
            assert!(
                p.is_finite() && p <= 10_000.0,
                "--window {window}: {p}% in {text}"
            );
        }
        // Paths (a test's cgroup named with a long tag) are names, not figures.
        assert!(
            !text
                .split_whitespace()
                .filter(|w| !w.contains('/'))
                .flat_map(|w| w.split(|c: char| !c.is_ascii_digit()))
                .any(|digits| digits.len() > 15),
            "--window {window}: {text}"
        );
        if window == "0" {
            assert!(text.contains("one sample"), "{text}");
            assert!(
                text.contains("not run:") && text.contains("long-run-queue-delay"),
                "the rate rules must say they did not run: {text}"
            );
        } else {
            assert!(!text.contains("not run:"), "{text}");
        }
    }
}

#[test]
fn issue_15_a_leak_and_a_mapped_file_reader_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mapped");
    // A sparse file: reading its pages through the mapping fills the page cache.
    std::fs::File::create(&file)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let leaker = Specimen::start(&["--leak-mib-per-s", "8"]);
    let reader = Specimen::start(&[
        "--map-read",
        file.to_str().unwrap(),
        "--map-read-mib-per-s",
        "16",
    ]);
    let (r, _) = syslens()
        .args(["doctor", "--json", "--window", "2.5"])
        .output()
        .map(|o| (serde_json::from_slice::<Value>(&o.stdout).unwrap(), ()))
        .unwrap();
    let leak = rules(&findings_for(&r, leaker.pid()));
    let mapped = rules(&findings_for(&r, reader.pid()));
    assert!(
        leak.contains(&"steady-rss-growth".to_owned()),
        "{leak:?}: {r}"
    );
    assert!(!leak.contains(&"mapped-file-growth".to_owned()), "{leak:?}");
    assert!(
        mapped.contains(&"mapped-file-growth".to_owned()),
        "{mapped:?}: {r}"
    );
    assert!(
        !mapped.contains(&"steady-rss-growth".to_owned()),
        "page cache called a leak: {mapped:?}"
    );
}

#[test]
fn issue_15_a_growing_tmpfs_mapping_is_a_shmem_leak_suspect() {
    // A sparse file on tmpfs, read page by page through its mapping: each page the
    // reader touches is a shmem page (RssShmem), which no pressure drops.
    let shm = std::path::Path::new("/dev/shm");
    skip_unless!(shm.is_dir(), "no /dev/shm (tmpfs) here");
    let dir = tempfile::tempdir_in(shm).unwrap();
    let file = dir.path().join("mapped");
    std::fs::File::create(&file)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let reader = Specimen::start(&[
        "--map-read",
        file.to_str().unwrap(),
        "--map-read-mib-per-s",
        "16",
    ]);
    let out = syslens()
        .args(["doctor", "--json", "--window", "2.5", "--pid"])
        .arg(reader.pid().to_string())
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found = findings_for(&r, reader.pid());
    let leak = found
        .iter()
        .find(|f| f["rule"] == "steady-rss-growth")
        .unwrap_or_else(|| panic!("no shmem growth found: {r}"));
    let message = leak["message"].as_str().unwrap();
    assert!(
        message.contains("(RssShmem) grew steadily by "),
        "{message}"
    );
    assert!(!message.contains("RssAnon"), "{message}");
    assert!(
        !rules(&found).contains(&"mapped-file-growth".to_owned()),
        "tmpfs pages called page cache: {r}"
    );
}

#[test]
fn issue_15_the_first_oom_victim_is_chosen_over_every_process() {
    skip_unless!(
        is_root(),
        "raising oom_score_adj of another process needs root"
    );
    let low = Specimen::start(&[]);
    let high = Specimen::start(&[]);
    std::fs::write(format!("/proc/{}/oom_score_adj", high.pid()), "1000").unwrap();
    let first = |pid: u32| {
        let out = syslens()
            .args([
                "doctor",
                "--json",
                "--window",
                "0",
                "--pid",
                &pid.to_string(),
            ])
            .output()
            .unwrap();
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        rules(&findings_for(&r, pid)).contains(&"oom-first-victim".to_owned())
    };
    assert!(
        !first(low.pid()),
        "scoped to one process, it was called the first victim though another scores higher"
    );
    assert!(first(high.pid()));
}

/// A pids cgroup beneath the test's own with pids.max 10 holding 8 sleeping
/// processes: 80%, a warning naming the cgroup that sets the limit; 10 of 10 an error.
#[test]
fn issue_15_cgroup_pids_near_limit_counts_the_tasks_of_a_live_pids_cgroup() {
    skip_unless!(is_root(), "making a pids cgroup needs root");
    let mut reader = syslens_probe::Reader::host().unwrap();
    let cg = match syslens::lab::cgroup::LabCgroup::create(&mut reader, &["pids"]) {
        Ok(cg) => cg,
        Err(e) => {
            eprintln!("SKIPPED: no pids cgroup can be made here: {e}");
            return;
        }
    };
    cg.write("pids", "pids.max", "10").unwrap();
    struct Sleepers(Vec<std::process::Child>);
    impl Drop for Sleepers {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let mut sleepers = Sleepers(Vec::new());
    // Dropped before the cgroup (declared after it): the sleepers go first.
    let add = |n: usize, s: &mut Sleepers| {
        for _ in 0..n {
            let c = std::process::Command::new("sleep")
                .arg("1000")
                .spawn()
                .unwrap();
            cg.add(c.id()).unwrap();
            s.0.push(c);
        }
    };
    add(8, &mut sleepers);
    let first = sleepers.0[0].id().to_string();
    let finding = |r: &Value| -> Option<Value> {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| {
                f["rule"] == "cgroup-pids-near-limit"
                    && f["subject"].as_str().unwrap().ends_with(cg.name())
            })
            .cloned()
    };
    let r = doctor_json(&["--pid", &first]);
    let f = finding(&r).unwrap_or_else(|| panic!("no cgroup-pids-near-limit: {r:#}"));
    assert_eq!(f["severity"], "warning", "{f:#}");
    let message = f["message"].as_str().unwrap();
    assert!(message.contains("holds 80% of "), "{message}");
    assert!(message.contains("(8/10 tasks, set by "), "{message}");
    assert!(
        message.contains(&format!("{}, pids.max;", cg.name())),
        "{message}"
    );
    add(2, &mut sleepers);
    let r = doctor_json(&["--pid", &first]);
    let f = finding(&r).unwrap_or_else(|| panic!("no cgroup-pids-near-limit: {r:#}"));
    assert_eq!(f["severity"], "error", "{f:#}");
}
