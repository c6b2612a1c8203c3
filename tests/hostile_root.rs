//! `syslens --root` over a hostile captured tree (issue 14 part 4): the recorded hybrid
//! tree with files replaced by a FIFO, a directory, links to /dev/zero, sparse files of
//! 100 MiB, a device node and a bad mountinfo line. Each command must end in seconds
//! with a bounded peak RSS, show the rest of the tree and say why the bad files are
//! missing.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

/// The one PID recorded in the hybrid tree.
const PID: &str = "8537";

/// Before the fix these runs grew to 7-16 GB or never ended; here each peaks at 5-8
/// MiB and ends in 30 ms (doctor: 3 s, its sampling window), measured.
const RSS_BOUND_KIB: i64 = 100 * 1024;
const DEADLINE: Duration = Duration::from_secs(10);
/// The child's address space limit, so that a regression fails the test (allocation
/// refused) instead of taking the host's memory before the deadline.
const ADDRESS_SPACE_LIMIT: u64 = 2 << 30;

/// The hybrid fixture copied to a temp dir, then made hostile.
fn hostile_tree() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hybrid");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(fixture.join("proc"))
        .arg(fixture.join("sys"))
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(copied.success());
    let at = |rel: &str| -> PathBuf {
        let p = tmp.path().join(rel);
        let _ = std::fs::remove_file(&p);
        p
    };
    let fifo = |rel: &str| {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            at(rel),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
            0,
        )
        .unwrap();
    };
    let zero = |rel: &str| std::os::unix::fs::symlink("/dev/zero", at(rel)).unwrap();
    let sparse = |rel: &str| {
        std::fs::File::create(at(rel))
            .unwrap()
            .set_len(100 << 20)
            .unwrap()
    };
    let p = |name: &str| format!("proc/{PID}/{name}");
    fifo(&p("status"));
    fifo("proc/meminfo");
    fifo("proc/vmstat");
    zero(&p("smaps"));
    zero("proc/loadavg");
    sparse(&p("smaps_rollup"));
    sparse(&p("maps"));
    sparse("proc/swaps");
    std::fs::create_dir(at(&p("stat"))).unwrap();
    std::fs::create_dir(at("proc/stat")).unwrap();
    let memcg = "sys/fs/cgroup/memory/process_api/58a86aa240fca01f0d693837a097508a/syslens-fixture";
    zero(&format!("{memcg}/memory.stat"));
    fifo(&format!("{memcg}/memory.usage_in_bytes"));
    if is_root() {
        // /dev/zero's numbers, made inside the tree as an unpacked tar can.
        rustix::fs::mknodat(
            rustix::fs::CWD,
            at("proc/buddyinfo"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::RUSR,
            rustix::fs::makedev(1, 5),
        )
        .unwrap();
    }
    // One bad line among the good ones: only that line is lost.
    for mountinfo in ["proc/self/mountinfo", &p("mountinfo")] {
        let path = tmp.path().join(mountinfo);
        let good = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("this line is not mountinfo\n{good}")).unwrap();
    }
    tmp
}

/// How a bounded run ended.
#[derive(Debug)]
struct Ended {
    code: Option<i32>,
    peak_rss_kib: i64,
    took: Duration,
    stdout: Vec<u8>,
}

/// Runs `syslens --root TREE ARGS` to its end, killing it at the deadline; the peak
/// RSS is the child's own (wait4's rusage), not that of other tests' children.
fn run_bounded(tree: &Path, args: &[&str]) -> Ended {
    let out_path = tree.join(format!("out-{}", args.join("-").replace('/', "_")));
    let out = std::fs::File::create(&out_path).unwrap();
    let start = Instant::now();
    let mut cmd = syslens();
    cmd.arg("--root")
        .arg(tree)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE_LIMIT,
                rlim_max: ADDRESS_SPACE_LIMIT,
            };
            match libc::setrlimit(libc::RLIMIT_AS, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        })
    };
    // Reaped by wait4 below, which also gives its rusage.
    #[allow(clippy::zombie_processes)]
    let child = cmd.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own unreaped child; status and usage outlive the call.
        let got = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(got >= 0, "wait4: {}", std::io::Error::last_os_error());
        if got == pid {
            break;
        }
        if start.elapsed() > DEADLINE {
            // SAFETY: kill and a blocking wait4 of our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::wait4(pid, &mut status, 0, &mut usage);
            }
            panic!("syslens --root {args:?} did not end in {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Ended {
        code,
        peak_rss_kib: usage.ru_maxrss,
        took: start.elapsed(),
        stdout: std::fs::read(&out_path).unwrap(),
    }
}

fn assert_bounded(ended: &Ended, what: &str) {
    assert!(
        matches!(ended.code, Some(0) | Some(2)),
        "{what}: {ended:?} {}",
        String::from_utf8_lossy(&ended.stdout)
    );
    assert!(
        ended.peak_rss_kib < RSS_BOUND_KIB,
        "{what} peaked at {} KiB",
        ended.peak_rss_kib
    );
    eprintln!(
        "{what}: exit {:?} in {:?}, peak RSS {} KiB",
        ended.code, ended.took, ended.peak_rss_kib
    );
}

/// Every `"kind": "refused"` reason in a JSON report.
fn refusals(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if map.get("kind").and_then(Value::as_str) == Some("refused") {
                if let Some(r) = map.get("reason").and_then(Value::as_str) {
                    out.push(r.to_owned());
                }
            }
            map.values().for_each(|v| refusals(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refusals(v, out)),
        _ => {}
    }
}

fn refusals_of(stdout: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(stdout)));
    let mut out = Vec::new();
    refusals(&v, &mut out);
    out
}

#[test]
fn issue_14_hostile_root_inspect_ends_bounded() {
    let tree = hostile_tree();
    let ended = run_bounded(tree.path(), &["--json", "inspect", PID, "--window", "0"]);
    assert_bounded(&ended, "inspect");
    let refused = refusals_of(&ended.stdout);
    for (file, why) in [
        ("status", "not a regular file (a FIFO)"),
        ("stat", "not a regular file (a directory)"),
        ("smaps", "a link that leads out of the captured tree"),
    ] {
        let want = format!("/proc/{PID}/{file} refused: {why}");
        assert!(refused.contains(&want), "{want} not in {refused:#?}");
    }
    // The rest of the tree still reads: the namespaces come from ns/ links.
    let v: Value = serde_json::from_slice(&ended.stdout).unwrap();
    let isolated = list_of(figure(&v, "cgroups-namespaces", "isolated namespaces"));
    assert_eq!(isolated, vec!["net", "uts"]);
}

#[test]
fn issue_14_hostile_root_system_ends_bounded() {
    let tree = hostile_tree();
    let ended = run_bounded(tree.path(), &["--json", "system"]);
    assert_bounded(&ended, "system");
    let refused = refusals_of(&ended.stdout);
    for want in [
        "/proc/meminfo refused: not a regular file (a FIFO)",
        "/proc/stat refused: not a regular file (a directory)",
        "/proc/swaps refused: 104857600 bytes, larger than 4 MiB",
    ] {
        assert!(
            refused.iter().any(|r| r == want),
            "{want} not in {refused:#?}"
        );
    }
    // The bad mountinfo line cost that line, not the mounts: the cgroup v1 memory
    // mount (found through mountinfo) is still known.
    let text = String::from_utf8_lossy(&ended.stdout);
    assert!(text.contains("/sys/fs/cgroup/memory"), "{text}");
}

#[test]
fn issue_14_hostile_root_processes_and_doctor_end_bounded() {
    let tree = hostile_tree();
    for args in [
        &["system", "--processes"][..],
        &["--json", "system", "--processes"],
        &["inspect", PID, "--window", "0"],
        &["doctor"],
    ] {
        let ended = run_bounded(tree.path(), args);
        assert_bounded(&ended, &args.join(" "));
    }
}
