//! Parsers over the recorded fixtures, truncated input and random bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use proptest::prelude::*;
use syslens_probe::cgroup::parse_proc_cgroup;
use syslens_probe::kmsg::{records, OomAssembler, OomKill, OomTrigger};
use syslens_probe::limits::{parse_limits, parse_nofile};
use syslens_probe::locks::parse_locks;
use syslens_probe::mountinfo::parse_mountinfo;
use syslens_probe::ns::{kernel_version, parse_ns_link};
use syslens_probe::psi::parse_psi;
use syslens_probe::sched::{parse_schedstat, parse_syscall};
use syslens_probe::smaps::{parse_maps, MemUsage};
use syslens_probe::stat::Stat;
use syslens_probe::status::Status;
use syslens_probe::system::{parse_buddyinfo, parse_swaps, Meminfo, ProcStat};

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
    let mut oom = OomAssembler::new();
    for rec in records(b) {
        let _ = oom.push(&rec);
    }
}

/// The kills in a recorded kernel log, through one assembler.
fn kills_in(rel: &str) -> Vec<OomKill> {
    let mut oom = OomAssembler::new();
    records(&read(rel)).filter_map(|r| oom.push(&r)).collect()
}

#[test]
fn issue_13_kmsg_recorded_memcg_v1_kills() {
    let recs: Vec<_> = records(&read("kmsg/memcg-v1-two-kills.kmsg")).collect();
    assert_eq!(
        recs.len(),
        161,
        "every record, without the dictionary lines"
    );
    assert_eq!(recs[0].seq, 335);
    assert!(recs[0].message.ends_with("(275 GB/256 GiB)"));
    let kills = kills_in("kmsg/memcg-v1-two-kills.kmsg");
    let trigger = OomTrigger {
        comm: "trigger".into(),
        pid: Some(25020),
        gfp_mask: Some("0xcc0(GFP_KERNEL)".into()),
        order: Some(0),
        oom_score_adj: Some(0),
    };
    let memcg = Some("/syslens-test-4569".to_owned());
    assert_eq!(
        kills[0],
        OomKill {
            seq: 6700,
            usec: 3799194427,
            pid: 24959,
            comm: "victim".into(),
            total_vm_kb: Some(24944),
            anon_rss_kb: Some(15104),
            file_rss_kb: Some(6680),
            shmem_rss_kb: Some(0),
            pgtables_kb: Some(88),
            uid: Some(0),
            oom_score_adj: Some(800),
            cgroup_limit: true,
            constraint: Some("CONSTRAINT_MEMCG".into()),
            oom_memcg: memcg.clone(),
            task_memcg: memcg.clone(),
            group_kill: false,
            trigger: Some(trigger.clone()),
        }
    );
    // The second OOM of the cgroup kills the task that kept allocating.
    assert_eq!(kills.len(), 2);
    assert_eq!((kills[1].pid, kills[1].comm.as_str()), (25020, "trigger"));
    assert_eq!(kills[1].trigger.as_ref(), Some(&trigger));
    assert_eq!(kills[1].anon_rss_kb, Some(24320));
    assert_eq!(kills[1].task_memcg, memcg);
}

#[test]
fn issue_13_kmsg_global_oom_of_an_older_kernel() {
    let kills = kills_in("kmsg/global-oom-5.15.kmsg");
    assert_eq!(kills.len(), 1);
    let k = &kills[0];
    assert_eq!((k.pid, k.comm.as_str(), k.uid), (5151, "java", Some(1000)));
    assert_eq!(
        (k.anon_rss_kb, k.oom_score_adj),
        (Some(7_600_000), Some(900))
    );
    assert!(!k.cgroup_limit);
    assert_eq!(k.constraint.as_deref(), Some("CONSTRAINT_NONE"));
    assert_eq!(
        k.oom_memcg, None,
        "a system-wide OOM hits no cgroup's limit"
    );
    assert_eq!(k.task_memcg.as_deref(), Some("/system.slice/app.service"));
    let t = k.trigger.as_ref().unwrap();
    assert_eq!((t.comm.as_str(), t.pid), ("postgres", Some(4242)));
    assert_eq!(
        t.gfp_mask.as_deref(),
        Some("0x100cca(GFP_HIGHUSER_MOVABLE)")
    );
    // Logged at 86400.12375 s since boot: a minute before an uptime of 86460.12375 s.
    let ago = k.seconds_ago(std::time::Duration::from_micros(86_460_123_750));
    assert!((ago - 60.0).abs() < 1e-6, "{ago}");
}

#[test]
fn issue_13_kmsg_group_kill_then_a_rate_limited_storm() {
    let kills = kills_in("kmsg/group-and-storm-6.x.kmsg");
    let pids: Vec<i32> = kills.iter().map(|k| k.pid).collect();
    assert_eq!(pids, [701, 700, 800, 801, 802]);
    // The chosen victim, then the member of its memory.oom.group under the same dump.
    assert!(!kills[0].group_kill);
    assert_eq!(
        kills[0].task_memcg.as_deref(),
        Some("/app.slice/batch.service")
    );
    assert!(kills[1].group_kill);
    assert_eq!(
        kills[1].oom_memcg.as_deref(),
        Some("/app.slice/batch.service")
    );
    assert_eq!(
        kills[1].task_memcg, None,
        "the summary line named the victim only"
    );
    assert_eq!(kills[1].trigger.as_ref().unwrap().pid, Some(701));
    // Rate-limited kills 2 s later have only their own line: nothing is borrowed.
    for k in &kills[2..] {
        assert!(k.cgroup_limit && !k.group_kill, "{k:?}");
        assert_eq!(
            (&k.trigger, &k.constraint, &k.oom_memcg),
            (&None, &None, &None)
        );
    }
    // The name stays escaped as the kernel wrote it: no raw ESC reaches a terminal.
    assert_eq!(kills[3].comm, "a\\x1b[31mb");
    assert_eq!(
        (kills[3].shmem_rss_kb, kills[3].uid),
        (Some(50), Some(1001))
    );
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
        "kmsg/memcg-v1-two-kills.kmsg".to_owned(),
        "kmsg/group-and-storm-6.x.kmsg".to_owned(),
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

/// The meminfo keys the value test writes, with the field each fills.
type MeminfoField = fn(&Meminfo) -> &syslens_probe::Val<u64>;
const MEMINFO_KEYS: [(&str, MeminfoField); 8] = [
    ("MemTotal", |m| &m.mem_total),
    ("MemAvailable", |m| &m.mem_available),
    ("Shmem", |m| &m.shmem),
    ("SReclaimable", |m| &m.s_reclaimable),
    ("Active(file)", |m| &m.active_file),
    ("Inactive(file)", |m| &m.inactive_file),
    ("SwapTotal", |m| &m.swap_total),
    ("SwapFree", |m| &m.swap_free),
];

/// The smaps_rollup keys the value test writes, with the field each fills.
type UsageField = fn(&MemUsage) -> &syslens_probe::Val<u64>;
const ROLLUP_KEYS: [(&str, UsageField); 14] = [
    ("Rss", |u| &u.rss),
    ("Pss", |u| &u.pss),
    ("Pss_Anon", |u| &u.pss_anon),
    ("Pss_File", |u| &u.pss_file),
    ("Pss_Shmem", |u| &u.pss_shmem),
    ("Shared_Clean", |u| &u.shared_clean),
    ("Shared_Dirty", |u| &u.shared_dirty),
    ("Private_Clean", |u| &u.private_clean),
    ("Private_Dirty", |u| &u.private_dirty),
    ("Anonymous", |u| &u.anonymous),
    ("AnonHugePages", |u| &u.anon_huge_pages),
    ("Swap", |u| &u.swap),
    ("SwapPss", |u| &u.swap_pss),
    ("Locked", |u| &u.locked),
];

const ZONES: [&str; 4] = ["DMA", "DMA32", "Normal", "Movable"];

// Value checks (issue 23): text written in the kernel's format from random values,
// parsed, and every value read back equal to the one written.
proptest! {
    #[test]
    fn issue_23_meminfo_reads_back_every_value_in_bytes(
        values in proptest::collection::vec(proptest::option::of(0u64..(1 << 44)), 8),
        pad in 1usize..12,
    ) {
        let mut text = String::from("Unrelated:        5 kB\n");
        for ((key, _), v) in MEMINFO_KEYS.iter().zip(&values) {
            if let Some(kb) = v {
                text += &format!("{key}:{:pad$}{kb} kB\n", "");
            }
        }
        let m = Meminfo::parse(text.as_bytes());
        for ((key, field), v) in MEMINFO_KEYS.iter().zip(&values) {
            match v {
                Some(kb) => prop_assert_eq!(field(&m).as_ref().ok(), Some(&(kb * 1024)), "{}", key),
                None => prop_assert!(field(&m).is_err(), "{} was not written", key),
            }
        }
    }

    #[test]
    fn issue_23_buddyinfo_reads_back_every_zone_and_order(
        zones in proptest::collection::vec(
            (0u32..4, 0usize..4, proptest::collection::vec(0u64..1_000_000_000, 11)), 1..6),
    ) {
        let text: String = zones
            .iter()
            .map(|(node, z, free)| {
                let counts: String = free.iter().map(|n| format!(" {n:6}")).collect();
                format!("Node {node}, zone {:>8}{counts}\n", ZONES[*z])
            })
            .collect();
        let got = parse_buddyinfo(text.as_bytes()).unwrap();
        prop_assert_eq!(got.len(), zones.len());
        for (g, (node, z, free)) in got.iter().zip(&zones) {
            prop_assert_eq!(g.node, *node);
            prop_assert_eq!(g.zone.as_str(), ZONES[*z]);
            prop_assert_eq!(&g.free_blocks, free);
        }
    }

    #[test]
    fn issue_23_swaps_read_back_in_bytes_with_names_unescaped(
        swaps in proptest::collection::vec(
            ("[a-z]{1,8}( [a-z]{1,8})?", any::<bool>(), 0u64..(1 << 40), 0u64..(1 << 40), -5i64..100),
            0..5),
    ) {
        let mut text = String::from("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
        for (name, partition, size, used, prio) in &swaps {
            // The kernel escapes a space in a path as \040.
            let path = format!("/var/{}", name.replace(' ', "\\040"));
            let kind = if *partition { "partition" } else { "file" };
            text += &format!("{path:<40}{kind}\t\t{size}\t{used}\t{prio}\n");
        }
        let got = parse_swaps(text.as_bytes()).unwrap();
        prop_assert_eq!(got.len(), swaps.len());
        for (g, (name, partition, size, used, prio)) in got.iter().zip(&swaps) {
            prop_assert_eq!(&g.filename, &format!("/var/{name}"));
            prop_assert_eq!(g.kind.as_str(), if *partition { "partition" } else { "file" });
            prop_assert_eq!(g.size_bytes, size * 1024);
            prop_assert_eq!(g.used_bytes, used * 1024);
            prop_assert_eq!(g.priority, *prio);
        }
    }

    #[test]
    fn issue_23_psi_reads_back_every_average_and_total(
        some in (0u32..=10_000, 0u32..=10_000, 0u32..=10_000, any::<u64>()),
        full in proptest::option::of((0u32..=10_000, 0u32..=10_000, 0u32..=10_000, any::<u64>())),
    ) {
        // Averages in hundredths of a percent, as the kernel prints them (%.2f).
        let line = |kind: &str, (a, b, c, t): (u32, u32, u32, u64)| {
            format!(
                "{kind} avg10={}.{:02} avg60={}.{:02} avg300={}.{:02} total={t}\n",
                a / 100, a % 100, b / 100, b % 100, c / 100, c % 100
            )
        };
        let mut text = line("some", some);
        if let Some(f) = full {
            text += &line("full", f);
        }
        let psi = parse_psi(text.as_bytes()).unwrap();
        let same = |got: &syslens_probe::psi::PsiLine, (a, b, c, t): (u32, u32, u32, u64)| {
            (got.avg10 - f64::from(a) / 100.0).abs() < 1e-9
                && (got.avg60 - f64::from(b) / 100.0).abs() < 1e-9
                && (got.avg300 - f64::from(c) / 100.0).abs() < 1e-9
                && got.total_us == t
        };
        prop_assert!(same(&psi.some, some), "{:?} from {}", psi.some, text);
        match (psi.full, full) {
            (Some(g), Some(f)) => prop_assert!(same(&g, f), "{:?} from {}", g, text),
            (None, None) => {}
            (g, f) => prop_assert!(false, "full {:?}, written {:?}", g, f),
        }
    }
    #[test]
    fn issue_23_proc_stat_reads_back_the_cpu_ticks_and_every_counter(
        ticks in proptest::array::uniform10(0u64..(1 << 50)),
        cpus in 1u64..64,
        counters in proptest::collection::vec(proptest::option::of(any::<u64>()), 4),
    ) {
        // The all-CPU line, one line per CPU, then the counters the kernel prints
        // (the intr and softirq lines between them are not read).
        let join = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(" ");
        let mut text = format!("cpu  {}\n", join(&ticks));
        for n in 0..cpus {
            text += &format!("cpu{n} {}\n", join(&[1; 10]));
        }
        text += "intr 12 0 3 0\n";
        let keys = ["ctxt", "processes", "procs_running", "procs_blocked"];
        for (key, v) in keys.iter().zip(&counters) {
            if let Some(v) = v {
                text += &format!("{key} {v}\n");
            }
        }
        text += "softirq 5 0 1\n";
        let s = ProcStat::parse(text.as_bytes()).unwrap();
        let got = [s.user, s.nice, s.system, s.idle, s.iowait, s.irq, s.softirq, s.steal];
        prop_assert_eq!(&got[..], &ticks[..8]);
        prop_assert_eq!(s.cpus, cpus);
        // Busy: all but idle and iowait; guest time (the last two) is in user already.
        let busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7];
        prop_assert_eq!(s.busy(), busy);
        prop_assert_eq!(s.total(), busy + ticks[3] + ticks[4]);
        let read = [&s.ctxt, &s.processes, &s.procs_running, &s.procs_blocked];
        for ((key, field), v) in keys.iter().zip(read).zip(&counters) {
            match v {
                Some(v) => prop_assert_eq!(field.as_ref().ok(), Some(v), "{}", key),
                None => prop_assert!(field.is_err(), "{} was not written", key),
            }
        }
    }
    #[test]
    fn issue_23_smaps_rollup_reads_back_every_key_in_bytes(
        values in proptest::collection::vec(proptest::option::of(0u64..(1 << 44)), 14),
    ) {
        // The rollup's header line, then `Key: N kB` in the kernel's column layout.
        let mut text = String::from("55d0c0a00000-7ffd1a3ff000 ---p 00000000 00:00 0    [rollup]\n");
        for ((key, _), v) in ROLLUP_KEYS.iter().zip(&values) {
            if let Some(kb) = v {
                text += &format!("{:<16}{kb:>8} kB\n", format!("{key}:"));
            }
        }
        match MemUsage::parse_rollup(text.as_bytes()) {
            Ok(u) => {
                for ((key, field), v) in ROLLUP_KEYS.iter().zip(&values) {
                    match v {
                        Some(kb) => prop_assert_eq!(field(&u).as_ref().ok(), Some(&(kb * 1024)), "{}", key),
                        None => prop_assert!(field(&u).is_err(), "{} was not written", key),
                    }
                }
            }
            // No key at all: a kernel thread's empty rollup.
            Err(_) => prop_assert!(values.iter().all(Option::is_none), "{}", text),
        }
    }
}
