//! `syslens system` and `syslens system --processes`: recorded trees and the live host.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;
use syslens_probe::stat::Stat;
use syslens_probe::status::Status;
use syslens_probe::table::{ScanOptions, Scanner};
use syslens_probe::Reader;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn json_of(cmd: &mut Command) -> Value {
    serde_json::from_slice(&run_ok(cmd).stdout).unwrap()
}

fn system_at(tree: &str, args: &[&str]) -> Value {
    json_of(
        syslens()
            .arg("--root")
            .arg(fixture(tree))
            .args(["--json", "system"])
            .args(args),
    )
}

#[test]
fn hybrid_recording_system_view() {
    let r = system_at("hybrid", &[]);
    assert_eq!(r["sections"].as_array().unwrap().len(), 17);
    assert_eq!(r["host"]["cgroup"], "hybrid");
    let meminfo = std::fs::read_to_string(fixture("hybrid/proc/meminfo")).unwrap();
    let total_kb: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        u64_of(figure(&r, "lazy-init", "RAM (MemTotal)")),
        total_kb * 1024
    );
    // PSI is recorded on this host; the buddy table has a row pair per zone.
    assert!(figure(&r, "swap-oom", "memory pressure (some, avg10)")
        .as_f64()
        .is_some());
    let buddy = table(&r, "slab-buddy", "free blocks per order");
    let zones = std::fs::read_to_string(fixture("hybrid/proc/buddyinfo"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(buddy.len(), zones * 2);
    let slabs = table(&r, "slab-buddy", "top slab caches");
    assert!(!slabs.is_empty() && slabs.len() <= 10);
    let mem = |row: &Value| u64_of(&row[1]);
    assert!(
        slabs.windows(2).all(|w| mem(&w[0]) >= mem(&w[1])),
        "slabs sorted by memory"
    );
    assert!(u64_of(figure(&r, "slab-buddy", "negative dentries")) > 0);
    // A captured tree has one sample: rates say so, not zero.
    assert_eq!(
        missing_kind(figure(&r, "page-faults", "page faults rate")),
        Some("not_applicable")
    );
}

#[test]
fn v2_tree_without_psi_with_swap_and_cgroup_scope() {
    let r = system_at("v2", &["--cgroup", "/system.slice/nginx.service"]);
    assert_eq!(r["host"]["cgroup"], "v2");
    assert_eq!(r["host"]["cpus"], 4);
    assert_eq!(
        missing_kind(figure(&r, "swap-oom", "memory pressure (some, avg10)")),
        Some("not_in_kernel")
    );
    assert_eq!(
        missing_kind(&r["host"]["psi_memory"]),
        Some("not_in_kernel")
    );
    let swaps = table(&r, "swap-oom", "swap areas");
    assert_eq!(swaps[0][0], "/swap.img");
    // /proc/swaps gives KiB: the fixture's line is "file 2097148 524288 -2" (issue 23:
    // dropping the conversion of Used survived every test).
    assert_eq!(swaps[0][2], 2097148u64 * 1024);
    assert_eq!(swaps[0][3], 524288u64 * 1024);
    assert_eq!(swaps[0][4], -2);
    assert_eq!(
        u64_of(figure(&r, "swap-oom", "swap used")),
        (2097148 - 1572860) * 1024
    );
    assert_eq!(
        u64_of(figure(&r, "high-water-mark", "cgroup peak")),
        503316480
    );
    assert_eq!(
        figure(&r, "cgroups-namespaces", "cpu quota (CPUs)").as_f64(),
        Some(0.5)
    );
    // No slabinfo in this tree: missing with a reason, the rest still shown.
    assert!(missing_kind(figure(&r, "slab-buddy", "slab caches")).is_some());
}

#[test]
fn v2_process_table_filters_and_sorts() {
    let rows = json_of(syslens().arg("--root").arg(fixture("v2")).args([
        "--json",
        "system",
        "--processes",
        "--sort",
        "pid",
    ]));
    let pids: Vec<u64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| u64_of(&r["pid"]))
        .collect();
    assert_eq!(pids, vec![4242, 4343, 4444]);
    let scoped = json_of(syslens().arg("--root").arg(fixture("v2")).args([
        "--json",
        "system",
        "--processes",
        "--cgroup",
        "/system.slice",
    ]));
    let scoped: Vec<&Value> = scoped.as_array().unwrap().iter().collect();
    assert_eq!(scoped.len(), 1);
    assert_eq!(scoped[0]["cgroup"], "/system.slice/nginx.service");
    assert_eq!(scoped[0]["fd_soft_limit"], 1024);
    assert_eq!(scoped[0]["oom_score"], 712);
    let named = json_of(syslens().arg("--root").arg(fixture("v2")).args([
        "--json",
        "system",
        "--processes",
        "--name",
        "bash proc",
    ]));
    assert_eq!(named.as_array().unwrap().len(), 1);
    assert_eq!(named[0]["name"], "(((bash process))");
}

#[test]
fn live_system_view_has_every_concept_and_rates() {
    let r = json_of(syslens().args(["--json", "system", "--window", "0.3"]));
    let concepts: Vec<&str> = r["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["concept"].as_str().unwrap())
        .collect();
    assert_eq!(concepts.len(), 17);
    assert_eq!(concepts[0], "lazy-init");
    assert_eq!(concepts[16], "storage");
    assert!(
        figure(&r, "page-faults", "page faults rate")
            .as_f64()
            .unwrap()
            >= 0.0
    );
    let shares: f64 = [
        "user",
        "system (kernel)",
        "interrupts (irq + softirq)",
        "waiting for I/O (iowait)",
        "stolen by the hypervisor (steal)",
        "idle",
    ]
    .iter()
    .map(|n| figure(&r, "kernel-user", n).as_f64().unwrap())
    .sum();
    assert!(
        (shares - 1.0).abs() < 1e-9,
        "CPU shares add up to 1, got {shares}"
    );
}

#[test]
fn live_process_table_shows_a_known_process() {
    let s = Specimen::start(&["--spike-mib", "32", "--open-fds", "20"]);
    let rows = json_of(syslens().args(["--json", "system", "--processes", "--sort", "fds"]));
    let rows = rows.as_array().unwrap();
    let me = rows
        .iter()
        .find(|r| r["pid"] == s.pid())
        .expect("specimen listed");
    assert!(u64_of(&me["hwm_bytes"]) >= 32 << 20);
    assert!(u64_of(&me["rss_bytes"]) < u64_of(&me["hwm_bytes"]));
    assert!(u64_of(&me["fds"]) >= 23);
    let fds: Vec<u64> = rows.iter().filter_map(|r| r["fds"].as_u64()).collect();
    assert!(
        fds.windows(2).all(|w| w[0] >= w[1]),
        "sorted by fds, largest first"
    );
    // Text output fits 100 columns.
    let text = String::from_utf8(run_ok(syslens().args(["system", "--processes"])).stdout).unwrap();
    assert!(text.lines().all(|l| l.chars().count() <= 100));
    let text =
        String::from_utf8(run_ok(syslens().args(["system", "--window", "0"])).stdout).unwrap();
    assert!(text.lines().all(|l| l.chars().count() <= 100));
}

#[test]
fn pss_reads_rollup_only_when_asked() {
    let s = Specimen::start(&[]);
    let plain = json_of(syslens().args(["--json", "system", "--processes", "--name", "syslens"]));
    assert!(plain
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r.get("pss_bytes").is_none()));
    let with = json_of(syslens().args([
        "--json",
        "system",
        "--processes",
        "--pss",
        "--name",
        "syslens",
    ]));
    let row = with
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["pid"].as_u64() == Some(u64::from(s.pid())))
        .unwrap();
    assert!(u64_of(&row["pss_bytes"]) > 0);
    assert!(u64_of(&row["pss_bytes"]) <= u64_of(&row["rss_bytes"]) + (1 << 20));
}

/// While short-lived processes are born and die every few milliseconds, scans never
/// fail, never panic, and never report a row that mixes two processes.
#[test]
fn churn_never_mixes_or_fails() {
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _ = Command::new("true").stdout(Stdio::null()).status();
                n += 1;
            }
            n
        })
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut scanner = Scanner::new(Reader::host().unwrap());
    let mut reader = Reader::host().unwrap();
    let mut pids = Vec::new();
    let mut passes = 0;
    while Instant::now() < deadline {
        let rows = scanner
            .scan(ScanOptions::default())
            .expect("a pass never fails");
        assert!(rows.iter().all(|r| r.pid > 0));
        // Both files through one directory fd: the same process or an error, never two.
        reader.pids(&mut pids).unwrap();
        for &pid in &pids {
            let Ok(dir) = reader.open_pid(pid) else {
                continue;
            };
            let Ok(stat) = reader.read_pid(&dir, "stat").and_then(Stat::parse) else {
                continue;
            };
            let Ok(status) = reader.read_pid(&dir, "status").map(Status::parse) else {
                continue;
            };
            assert_eq!(stat.pid, i64::from(pid));
            // A process released between the two reads says PPid 0 in status (the
            // kernel's task_state once !pid_alive) while its stat still has the parent:
            // the same process, gone.
            if let Ok(ppid @ 1..) = status.ppid {
                assert_eq!(
                    stat.ppid, ppid as i64,
                    "pid {pid}: stat and status from two processes"
                );
            }
        }
        passes += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let spawned = churn.join().unwrap();
    assert!(spawned > 20, "the churn made only {spawned} processes");
    assert!(passes > 5);
    // The CLI survives the same churn.
    let out = syslens()
        .args(["--json", "system", "--processes"])
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice::<Value>(&out.stdout).unwrap();
}
