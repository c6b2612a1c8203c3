//! Parsers over the recorded fixtures, truncated input and random bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use proptest::prelude::*;
use syslens_probe::cgroup::parse_proc_cgroup;
use syslens_probe::limits::{parse_limits, parse_nofile};
use syslens_probe::locks::parse_locks;
use syslens_probe::mountinfo::parse_mountinfo;
use syslens_probe::ns::{kernel_version, parse_ns_link};
use syslens_probe::psi::parse_psi;
use syslens_probe::sched::{parse_schedstat, parse_syscall};
use syslens_probe::smaps::{parse_maps, MemUsage};
use syslens_probe::stat::Stat;
use syslens_probe::status::Status;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn hybrid_pid() -> String {
    std::fs::read_dir(fixtures().join("hybrid/proc"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .find(|n| n.parse::<u32>().is_ok())
        .unwrap()
}

/// Every parser, on any input: it may refuse, it must not panic.
fn parse_everything(b: &[u8]) {
    let _ = Stat::parse(b);
    let _ = Status::parse(b);
    let _ = MemUsage::parse_rollup(b);
    let _ = parse_maps(b);
    let _ = parse_limits(b);
    let _ = parse_nofile(b);
    let _ = parse_mountinfo(b);
    let _ = parse_proc_cgroup(b);
    let _ = parse_locks(b);
    let _ = parse_psi(b);
    let _ = parse_schedstat(b);
    let _ = parse_syscall(b);
    let _ = parse_ns_link(b);
    let _ = kernel_version(b);
}

#[test]
fn recorded_hybrid_process_parses() {
    let pid = hybrid_pid();
    let stat = Stat::parse(&read(&format!("hybrid/proc/{pid}/stat"))).unwrap();
    assert_eq!(stat.pid.to_string(), pid);
    assert_eq!(stat.comm.as_str(), "syslens");
    let status = Status::parse(&read(&format!("hybrid/proc/{pid}/status")));
    assert!(status.vm_hwm.clone().unwrap() > status.vm_rss.clone().unwrap());
    assert_eq!(status.threads, Ok(2));
    let maps = parse_maps(&read(&format!("hybrid/proc/{pid}/smaps"))).unwrap();
    assert!(
        maps.iter().all(|m| m.usage.is_some()),
        "every smaps mapping has accounting"
    );
    let plain = parse_maps(&read(&format!("hybrid/proc/{pid}/maps"))).unwrap();
    assert_eq!(
        plain.len(),
        maps.len(),
        "maps and smaps list the same mappings"
    );
    let rollup = MemUsage::parse_rollup(&read(&format!("hybrid/proc/{pid}/smaps_rollup"))).unwrap();
    assert!(rollup.pss.clone().unwrap() <= rollup.rss.clone().unwrap());
    let limits = parse_limits(&read(&format!("hybrid/proc/{pid}/limits"))).unwrap();
    assert_eq!(limits.len(), 16);
    let cg = parse_proc_cgroup(&read(&format!("hybrid/proc/{pid}/cgroup"))).unwrap();
    assert!(cg
        .iter()
        .any(|m| m.controllers == ["memory"] && m.path.ends_with("syslens-fixture")));
    let mounts = parse_mountinfo(&read("hybrid/proc/self/mountinfo")).unwrap();
    assert!(mounts.iter().any(|m| m.fs_type == "cgroup2"));
    parse_locks(&read("hybrid/proc/locks")).unwrap();
    parse_schedstat(&read(&format!("hybrid/proc/{pid}/schedstat"))).unwrap();
}

#[test]
fn v2_files_parse() {
    let rollup = MemUsage::parse_rollup(&read("v2/proc/4242/smaps_rollup")).unwrap();
    assert_eq!(rollup.pss_anon, Ok(120048 * 1024));
    let psi = parse_psi(&read(
        "v2/sys/fs/cgroup/system.slice/nginx.service/memory.pressure",
    ))
    .unwrap();
    assert_eq!(psi.full.unwrap().total_us, 65432);
    let stat = Stat::parse(&read("v2/proc/4343/stat")).unwrap();
    assert_eq!(stat.comm.as_str(), "(((bash process))");
    assert_eq!(stat.ppid, 4242);
    let locks = parse_locks(&read("v2/proc/locks")).unwrap();
    assert_eq!(locks.iter().filter(|l| l.waiting).count(), 1);
}

#[test]
fn every_prefix_of_every_fixture_is_safe() {
    let pid = hybrid_pid();
    let files = [
        format!("hybrid/proc/{pid}/stat"),
        format!("hybrid/proc/{pid}/status"),
        format!("hybrid/proc/{pid}/smaps"),
        format!("hybrid/proc/{pid}/limits"),
        format!("hybrid/proc/{pid}/mountinfo"),
        "v2/proc/4242/smaps_rollup".to_owned(),
        "v2/proc/4343/stat".to_owned(),
        "v2/proc/locks".to_owned(),
    ];
    for f in files {
        let b = read(&f);
        for cut in (0..b.len()).step_by(7) {
            parse_everything(&b[..cut]);
        }
    }
}

#[test]
fn truncated_stat_is_an_error_not_a_zero() {
    let b = read("v2/proc/4242/stat");
    assert!(Stat::parse(&b[..40]).is_err());
}

proptest! {
    #[test]
    fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..2048)) {
        parse_everything(&b);
    }

    #[test]
    fn random_text_lines_never_panic(lines in proptest::collection::vec("[ -~\t]{0,120}", 0..40)) {
        parse_everything(lines.join("\n").as_bytes());
    }
}
