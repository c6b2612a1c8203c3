//! Helpers shared by the integration tests: the real binary, specimens with known
//! state, and lookups in the JSON reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Output, Stdio};

use serde_json::Value;

pub fn syslens() -> Command {
    Command::new(env!("CARGO_BIN_EXE_syslens"))
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The binary run as nobody (through setpriv).
pub fn as_nobody() -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_syslens"));
    c
}

/// Whether nobody can run the binary here (the checkout may sit below a 0700 home).
pub fn nobody_can_run() -> Result<(), String> {
    if !is_root() {
        return Err("dropping to nobody needs root".into());
    }
    match as_nobody().arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "nobody cannot run the binary: {}",
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => Err(format!("setpriv unavailable: {e}")),
    }
}

/// Skips a test visibly: the reason goes to stderr, which the runner shows.
#[macro_export]
macro_rules! skip_unless {
    ($cond:expr, $why:expr) => {
        if !$cond {
            eprintln!("SKIPPED: {}", $why);
            return;
        }
    };
}

/// Whether tmux runs here (the TUI tests drive top in it).
pub fn has_tmux() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A tool the tests need (tmux, chromium, prometheus, util-linux's programs): where it
/// is missing the test is skipped visibly on a developer's machine, and fails in CI
/// (`CI=true`), whose `.ci/run` installs every one of them (issue 14).
#[macro_export]
macro_rules! require_tool {
    ($cond:expr, $why:expr) => {
        if !$cond {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI lacks a tool the tests need: {}",
                $why
            );
            eprintln!("SKIPPED: {}", $why);
            return;
        }
    };
}

/// A running `syslens __specimen`, killed and reaped when dropped.
pub struct Specimen {
    pub child: Child,
    stdin: Option<ChildStdin>,
    pub report: Value,
}

impl Specimen {
    pub fn start(args: &[&str]) -> Specimen {
        Specimen::start_with(syslens(), args)
    }

    /// Starts the specimen from a prepared command (to run it as another user).
    pub fn start_with(mut cmd: Command, args: &[&str]) -> Specimen {
        cmd.arg("__specimen")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("start specimen");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let report: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("specimen said {line:?}: {e}"));
        let stdin = child.stdin.take();
        Specimen {
            child,
            stdin,
            report,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Specimen {
    fn drop(&mut self) {
        if let Some(mut s) = self.stdin.take() {
            let _ = s.flush();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run syslens");
    assert!(
        out.status.success(),
        "syslens failed: {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `doctor --json --window 0 ARGS`, parsed (stderr shown when it is not JSON).
pub fn doctor_json(args: &[&str]) -> Value {
    let out = syslens()
        .args(["doctor", "--json", "--window", "0"])
        .args(args)
        .output()
        .expect("run syslens");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

pub fn inspect_json(pid: u32, extra: &[&str]) -> Value {
    let out = run_ok(
        syslens()
            .args(["inspect", "--json", &pid.to_string()])
            .args(extra),
    );
    serde_json::from_slice(&out.stdout).expect("inspect --json is JSON")
}

pub fn section<'a>(report: &'a Value, concept: &str) -> &'a Value {
    report["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["concept"] == concept)
        .unwrap_or_else(|| panic!("no section {concept}"))
}

/// The value of a figure by its name.
pub fn figure<'a>(report: &'a Value, concept: &str, name: &str) -> &'a Value {
    let s = section(report, concept);
    let f = s["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no figure {name:?} in {concept}: {s}"));
    &f["value"]
}

/// Rows of a table by its title prefix, as JSON arrays.
pub fn table<'a>(report: &'a Value, concept: &str, title: &str) -> &'a Vec<Value> {
    let s = section(report, concept);
    let t = s["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["title"].as_str().unwrap().starts_with(title))
        .unwrap_or_else(|| panic!("no table {title:?} in {concept}"));
    t["rows"].as_array().unwrap()
}

pub fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

pub fn list_of(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

pub fn missing_kind(v: &Value) -> Option<&str> {
    v["missing"]["kind"].as_str()
}

/// A unique tag put in a syslens run's environment; its children inherit it, so they
/// can be found after the run even once reparented.
pub fn unique_tag() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("syslens-test-{}-{nanos}", std::process::id())
}

/// Processes whose environment holds `tag` (readable for root and for our own).
pub fn processes_tagged(tag: &str) -> Vec<u32> {
    let needle = format!("SYSLENS_TEST_TAG={tag}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// `syslens-lab-PID-*` directories and cgroups that a syslens process `pid` left.
pub fn lab_leftovers(pid: u32) -> Vec<String> {
    let prefix = format!("syslens-lab-{pid}-");
    let mut bases: Vec<std::path::PathBuf> = ["/var/tmp", "/tmp", "/dev/shm", "/run"]
        .iter()
        .map(Into::into)
        .collect();
    // The memory cgroup of this test process and its parent directory (v1 and v2).
    if let Ok(cg) = std::fs::read_to_string("/proc/self/cgroup") {
        for line in cg.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, ctrls, path) = (
                parts.next(),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            for ctrl in ["memory", "cpu", "pids"] {
                if ctrls.split(',').any(|c| c == ctrl) {
                    bases.push(format!("/sys/fs/cgroup/{ctrl}{path}").into());
                }
            }
            if ctrls.is_empty() {
                bases.push(format!("/sys/fs/cgroup{path}").into());
                bases.push(format!("/sys/fs/cgroup/unified{path}").into());
            }
        }
    }
    let mut found = Vec::new();
    for b in bases {
        let Ok(entries) = std::fs::read_dir(&b) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                found.push(e.path().display().to_string());
            }
        }
    }
    found
}

/// A memory cgroup beneath this test's own (v1 memory controller, or v2 with it
/// enabled), removed on drop.
pub struct MemJail {
    /// Its directory.
    pub dir: std::path::PathBuf,
    /// Its path below its hierarchy's root, as /proc/PID/cgroup and the kernel log name it.
    pub path: String,
}

impl MemJail {
    /// Makes it with this memory limit, or says why it cannot.
    pub fn new(limit: u64) -> Result<MemJail, String> {
        MemJail::named(limit, &format!("syslens-test-oom-{}", std::process::id()))
    }

    /// Makes it with this memory limit under this leaf name (a container runtime's
    /// naming, for the tests that identify containers), or says why it cannot.
    pub fn named(limit: u64, leaf: &str) -> Result<MemJail, String> {
        let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (
                parts.next(),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            let (base, limit_file) = if controllers.split(',').any(|c| c == "memory") {
                ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")
            } else if controllers.is_empty()
                && std::fs::read_to_string(format!("/sys/fs/cgroup{path}/cgroup.controllers"))
                    .is_ok_and(|c| c.contains("memory"))
            {
                ("/sys/fs/cgroup", "memory.max")
            } else {
                continue;
            };
            let path = format!("{}/{leaf}", path.trim_end_matches('/'));
            let dir = std::path::PathBuf::from(format!("{base}{path}"));
            std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let jail = MemJail { dir, path };
            std::fs::write(jail.dir.join(limit_file), limit.to_string())
                .map_err(|e| e.to_string())?;
            return Ok(jail);
        }
        Err("no memory controller for this test's cgroup".into())
    }

    /// Runs a process the OOM killer kills: a shell joins the jail, then becomes dd,
    /// whose 200 MiB buffer cannot fit in a smaller limit. Returns dd's pid once it
    /// was killed (SIGKILL, or the test fails).
    pub fn oom_kill_dd(&self) -> u32 {
        use std::os::unix::process::ExitStatusExt;
        let procs = self.dir.join("cgroup.procs");
        let mut hog = Command::new("sh")
            .args([
                "-c",
                "echo $$ > \"$1\" && exec dd if=/dev/zero of=/dev/null bs=200M count=1",
                "sh",
                procs.to_str().unwrap(),
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let status = hog.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "the hog was not OOM-killed: {status}"
        );
        hog.id()
    }
}

impl Drop for MemJail {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
