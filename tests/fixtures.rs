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
        u64_of(figure(&r, "swap-oom", "cgroup's own memory limit")),
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
        u64_of(figure(&r, "swap-oom", "cgroup's own memory limit")),
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

const DOCKER_ID: &str = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4";
const POD_CONTAINER: &str = "9b8a7c6d5e4f30211f2e3d4c5b6a79880a1b2c3d4e5f60718293a4b5c6d7e8f9";
const POD_UID: &str = "8d1c2b7a-4f3e-4a5b-9c6d-0e1f2a3b4c5d";

/// The process table's one row of a container tree, as JSON.
fn table_row(tree: &str) -> Value {
    let out = run_ok(syslens().arg("--root").arg(fixture(tree)).args([
        "--json",
        "system",
        "--processes",
        "--window",
        "0",
    ]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v}");
    rows[0].clone()
}

#[test]
fn issue_15_v2_docker_host_container_and_its_own_limits() {
    let r = inspect_at("v2-docker", &["5151", "--window", "0"]);
    assert_eq!(r["container"]["runtime"], "docker", "{r}");
    assert_eq!(r["container"]["container_id"], DOCKER_ID, "{r}");
    assert_eq!(r["container"]["slice"], "system.slice", "{r}");
    let cgs = "cgroups-namespaces";
    assert_eq!(u64_of(figure(&r, cgs, "effective memory limit")), 200 << 20);
    assert_eq!(
        figure(&r, cgs, "memory against its limit"),
        "memory: 180.0 MiB of the container's 200.0 MiB (limit set by /system.slice/docker-3f2a9c1b7d4e....scope, memory.max)"
    );
    assert_eq!(
        figure(&r, cgs, "effective CPU quota (CPUs)").as_f64(),
        Some(1.5)
    );
    // Two CPUs allowed, a quota of 1.5: the quota is the fewer.
    assert_eq!(
        figure(&r, cgs, "CPUs it can use (quota and cpuset)").as_f64(),
        Some(1.5)
    );
    assert_eq!(
        figure(&r, cgs, "CPU against its quota"),
        "CPU: quota 1.5 CPUs of 4 (set by /system.slice/docker-3f2a9c1b7d4e....scope, cpu.max)"
    );
    assert_eq!(
        figure(&r, cgs, "pids against its limit"),
        "pids: 7 of the container's 512 tasks (limit set by /system.slice/docker-3f2a9c1b7d4e....scope, pids.max)"
    );
    let row = table_row("v2-docker");
    let scope = format!("/system.slice/docker-{DOCKER_ID}.scope");
    assert_eq!(row["limits"]["memory"]["value"], 200u64 << 20, "{row}");
    assert_eq!(row["limits"]["memory"]["used"], 180u64 << 20, "{row}");
    assert_eq!(
        row["limits"]["memory"]["set_by"]["path"],
        scope.as_str(),
        "{row}"
    );
    assert_eq!(row["limits"]["cpu"]["value"]["quota_us"], 150000, "{row}");
    assert_eq!(row["limits"]["cpu"]["value"]["period_us"], 100000, "{row}");
    assert_eq!(row["limits"]["pids"]["value"], 512, "{row}");
    assert_eq!(row["limits"]["host_cpus"], 4, "{row}");

    // 180 of 200 MiB, nothing inactive: the working set is at 90% of the limit.
    let out = run_ok(
        syslens()
            .arg("--root")
            .arg(fixture("v2-docker"))
            .args(["--json", "doctor", "--window", "0"]),
    );
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "cgroup-working-set-near-limit")
        .unwrap_or_else(|| panic!("{d}"));
    assert_eq!(
        f["subject"],
        format!("cgroup {scope}, container 3f2a9c1b7d4e (docker)"),
        "{f}"
    );
    assert_eq!(
        f["message"],
        format!("working set 180.0 MiB is 90% of the limit 200.0 MiB (set by {scope}, memory.max)"),
        "{f}"
    );
}

/// A kubelet node's pod (either driver): limits set on the pod, none on the container.
fn check_kubelet_pod(tree: &str, pid: &str, runtime: &str, pod: &str) {
    let r = inspect_at(tree, &[pid, "--window", "0"]);
    assert_eq!(r["container"]["runtime"], runtime, "{r}");
    assert_eq!(r["container"]["container_id"], POD_CONTAINER, "{r}");
    assert_eq!(r["container"]["pod_uid"], POD_UID, "{r}");
    assert_eq!(r["container"]["qos"], "burstable", "{r}");
    let cgs = "cgroups-namespaces";
    assert_eq!(u64_of(figure(&r, cgs, "effective memory limit")), 256 << 20);
    // The swap-oom lens: the container's own file says max, the pod's binds.
    assert_eq!(
        figure(&r, "swap-oom", "cgroup's own memory limit"),
        "unlimited"
    );
    assert_eq!(
        u64_of(figure(
            &r,
            "swap-oom",
            "memory limit that binds (lowest up the chain)"
        )),
        256 << 20
    );
    let memory = figure(&r, cgs, "memory against its limit")
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        memory,
        format!("memory: 128.0 MiB of the pod's 256.0 MiB (limit set by {pod}, memory.max)")
    );
    assert_eq!(
        figure(&r, cgs, "effective CPU quota (CPUs)").as_f64(),
        Some(1.0)
    );
    assert_eq!(
        figure(&r, cgs, "CPU against its quota"),
        format!("CPU: quota 1 CPU of 4 (set by {pod}, cpu.max)").as_str()
    );
    assert_eq!(u64_of(figure(&r, cgs, "effective pids limit")), 1024);
    let row = table_row(tree);
    for kind in ["memory", "cpu", "pids"] {
        assert_eq!(row["limits"][kind]["set_by"]["path"], pod, "{kind}: {row}");
    }
    assert_eq!(row["limits"]["memory"]["used"], 128u64 << 20, "{row}");
    assert_eq!(row["limits"]["pids"]["used"], 40, "{row}");
}

#[test]
fn issue_15_v2_kubelet_systemd_driver_pod_limits() {
    let under = POD_UID.replace('-', "_");
    check_kubelet_pod(
        "v2-kubelet-systemd",
        "6161",
        "containerd",
        &format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{under}.slice"),
    );
}

#[test]
fn issue_15_v2_kubelet_cgroupfs_driver_pod_limits() {
    check_kubelet_pod(
        "v2-kubelet-cgroupfs",
        "7171",
        "kubernetes",
        &format!("/kubepods/burstable/pod{POD_UID}"),
    );
}
