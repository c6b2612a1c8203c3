//! `syslens --root` over recorded trees: a real process of the hybrid dev host
//! (tests/fixtures/hybrid, recorded by tests/fixtures/capture.sh from a specimen in a
//! memory cgroup with new UTS and net namespaces) and a cgroup v2 host written to the
//! kernel's documented formats (tests/fixtures/v2).

use std::path::PathBuf;

use crate::common::*;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn inspect_at(tree: &str, args: &[&str]) -> Value {
    let out = run_ok(
        syslens()
            .arg("--root")
            .arg(fixture(tree))
            .args(["inspect", "--json"])
            .args(args),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The one PID recorded in the hybrid tree.
fn hybrid_pid() -> String {
    std::fs::read_dir(fixture("hybrid/proc"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .find(|n| n.parse::<u32>().is_ok())
        .unwrap()
}

#[test]
fn hybrid_recording_matches_what_the_specimen_did() {
    let pid = hybrid_pid();
    let r = inspect_at("hybrid", &[&pid]);
    // --spike-mib 16: the freed spike shows as HWM above RSS.
    let gap = u64_of(figure(
        &r,
        "high-water-mark",
        "below the peak (VmHWM - VmRSS)",
    ));
    assert!(gap >= 12 << 20, "{gap}");
    assert_eq!(figure(&r, "signals", "SIGTERM"), "ignored");
    let isolated = list_of(figure(&r, "cgroups-namespaces", "isolated namespaces"));
    assert_eq!(isolated, vec!["net", "uts"]);
    assert_eq!(
        figure(&r, "cgroups-namespaces", "host cgroup mode"),
        "hybrid"
    );
    assert_eq!(
        u64_of(figure(&r, "swap-oom", "cgroup memory limit")),
        256 << 20
    );
    assert!(figure(&r, "swap-oom", "cgroup")
        .as_str()
        .unwrap()
        .ends_with("/syslens-fixture"));
    assert_eq!(
        u64_of(figure(&r, "fds-limits", "deleted-but-open files")),
        1
    );
    let threads = table(&r, "signals", "per thread");
    assert_eq!(threads.len(), 2);
    assert!(threads
        .iter()
        .any(|t| list_of(&t[3]).contains(&"SIGUSR1".to_owned())));
    // A captured tree has no second sample: rates say why they are missing.
    assert_eq!(
        missing_kind(figure(&r, "page-faults", "minor faults rate")),
        Some("not_applicable")
    );
}

#[test]
fn v2_cgroup_files_are_read_from_the_unified_hierarchy() {
    let r = inspect_at("v2", &["4242"]);
    assert_eq!(figure(&r, "cgroups-namespaces", "host cgroup mode"), "v2");
    assert_eq!(
        u64_of(figure(&r, "swap-oom", "cgroup memory limit")),
        536870912
    );
    assert_eq!(
        u64_of(figure(&r, "swap-oom", "cgroup memory usage")),
        314572800
    );
    // Working set = usage - inactive_file.
    assert_eq!(
        u64_of(figure(&r, "swap-oom", "cgroup working set")),
        314572800 - 83886080
    );
    assert_eq!(u64_of(figure(&r, "swap-oom", "cgroup OOM kills")), 1);
    assert_eq!(
        u64_of(figure(&r, "swap-oom", "cgroup times at the limit")),
        12
    );
    assert_eq!(
        figure(&r, "swap-oom", "cgroup memory pressure (some, avg10)").as_f64(),
        Some(0.025)
    );
    assert_eq!(
        u64_of(figure(&r, "high-water-mark", "cgroup peak")),
        503316480
    );
    assert_eq!(
        figure(&r, "cgroups-namespaces", "cpu quota").as_f64(),
        Some(0.5)
    );
    assert_eq!(
        u64_of(figure(&r, "cgroups-namespaces", "throttled periods")),
        30
    );
    assert_eq!(figure(&r, "cgroups-namespaces", "pids limit"), "unlimited");
}

#[test]
fn v2_process_lenses() {
    let r = inspect_at("v2", &["4242"]);
    assert_eq!(
        u64_of(figure(
            &r,
            "shared-libs",
            "deleted on disk (need a restart)"
        )),
        1
    );
    assert_eq!(u64_of(figure(&r, "locking", "threads waiting in futex")), 1);
    assert_eq!(u64_of(figure(&r, "locking", "file locks held")), 1);
    assert_eq!(
        list_of(figure(
            &r,
            "signals",
            "zombie children (exited, not reaped)"
        )),
        vec!["4444"]
    );
    assert_eq!(
        u64_of(figure(&r, "storage", "open files on ephemeral storage")),
        1
    );
    assert_eq!(
        u64_of(figure(&r, "storage", "open files on persistent storage")),
        2
    );
    assert_eq!(u64_of(figure(&r, "fds-limits", "open fds")), 9);
    // Kernel 6.1: net and mnt have no fixed initial inode and the tree has no PID 1.
    let ns = table(&r, "cgroups-namespaces", "namespaces");
    let net = ns.iter().find(|row| row[0] == "net").unwrap();
    assert_eq!(missing_kind(&net[3]), Some("not_applicable"));
    let uts = ns.iter().find(|row| row[0] == "uts").unwrap();
    assert_eq!(uts[3], "no");
}

#[test]
fn parenthesised_name_and_lock_waiter() {
    let r = inspect_at("v2", &["--name", "(((bash process))"]);
    assert_eq!(r["pid"], 4343);
    assert_eq!(r["name"], "(((bash process))");
    assert_eq!(u64_of(figure(&r, "locking", "file locks awaited")), 1);
    // A process with an empty smaps (kernel thread-like) has no map lenses, with a reason.
    assert_eq!(
        missing_kind(figure(&r, "mmap", "mappings")),
        Some("not_applicable")
    );
}

#[test]
fn zombie_in_a_tree_is_shown_not_failed() {
    let r = inspect_at("v2", &["4444"]);
    assert_eq!(r["state"], "Z (zombie)");
    assert_eq!(missing_kind(&r["cmdline"]), Some("not_applicable"));
    assert_eq!(
        missing_kind(figure(&r, "lazy-init", "resident (VmRSS)")),
        Some("not_applicable")
    );
}
