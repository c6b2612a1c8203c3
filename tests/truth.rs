//! What a debugging engineer must be told right (issue 15), against live specimens: a
//! namespaced init that drops SIGTERM, parents and children, and cgroups named like
//! docker's and the kubelet's made beneath the test's own.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;
use syslens::lab::cgroup::LabCgroup;
use syslens_probe::Reader;

/// A child killed and reaped when dropped, with the grandchildren it was seen to fork
/// (they would outlive it, holding the test's pipes).
struct Running(Child, Vec<u32>);

/// `unshare --pid --fork` of `program` (its arguments with it), killed on drop, and the
/// pid, seen from here, of its init; the error when unshare cannot be run.
fn namespace_init(program: &[&std::ffi::OsStr]) -> std::io::Result<(Running, u32)> {
    let unshare = Command::new("unshare")
        .args(["--pid", "--fork"])
        .args(program)
        .stdout(Stdio::null())
        .spawn()?;
    let mut unshare = Running(unshare, Vec::new());
    let init = first_child(unshare.0.id());
    unshare.1.push(init);
    Ok((unshare, init))
}

impl Drop for Running {
    fn drop(&mut self) {
        for &pid in &self.1 {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn inspect(pid: u32) -> Value {
    let out = syslens()
        .args(["--json", "inspect", &pid.to_string(), "--window", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sigterm_figure(r: &Value) -> String {
    figure(r, "signals", "SIGTERM").as_str().unwrap().to_owned()
}

/// The first child of `pid` (its /proc children file), waiting for it to appear.
fn first_child(pid: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let kids =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(k) = kids.split_whitespace().next() {
            return k.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "{pid} never forked");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn issue_15_pid_namespace_init_drops_sigterm_and_is_told_so() {
    skip_unless!(is_root(), "a new PID namespace needs root");
    let Ok((_unshare, init)) = namespace_init(&["sleep".as_ref(), "60".as_ref()]) else {
        require_tool!(false, "unshare (util-linux) is not installed");
        return;
    };
    let r = inspect(init);
    assert!(sigterm_figure(&r).starts_with("dropped"), "{r}");
    assert_eq!(r["pid_in_namespace"].as_u64(), Some(1), "{r}");
    assert_eq!(r["pid_namespace_levels"].as_u64(), Some(2), "{r}");
    // What syslens says is what the kernel does: SIGTERM leaves it running.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(init as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let state = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap();
    assert!(
        !state.contains(") Z "),
        "it died of SIGTERM after all: {state}"
    );
    let out = syslens()
        .args([
            "--json",
            "doctor",
            "--pid",
            &init.to_string(),
            "--window",
            "0",
        ])
        .output()
        .unwrap();
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    let finding = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "sigterm-ignored")
        .unwrap_or_else(|| panic!("doctor is silent: {d}"));
    assert!(finding["message"]
        .as_str()
        .unwrap()
        .contains("PID namespace"));
    assert!(finding["advice"].as_str().unwrap().contains("tini"));
    // A plain process is not an init: SIGTERM terminates it.
    let s = Specimen::start(&[]);
    assert_eq!(sigterm_figure(&inspect(s.pid())), "default (terminate)");
}

#[test]
fn issue_15_parents_and_children_are_named() {
    let mut sh = Running(
        Command::new("sh")
            .args(["-c", "sleep 60 & wait"])
            .spawn()
            .unwrap(),
        Vec::new(),
    );
    let child = first_child(sh.0.id());
    sh.1.push(child);
    let r = inspect(child);
    assert_eq!(r["ppid"].as_i64(), Some(i64::from(sh.0.id())), "{r}");
    assert_eq!(r["parent_name"].as_str(), Some("sh"), "{r}");
    let p = inspect(sh.0.id());
    let kids = p["children"].as_array().unwrap();
    assert!(
        kids.iter()
            .any(|k| k["pid"].as_u64() == Some(u64::from(child)) && k["name"] == "sleep"),
        "{p}"
    );
    // The process table has the PPID, and --tree puts the child under its parent.
    let out = syslens()
        .args(["--json", "system", "--processes", "--tree", "--window", "0"])
        .output()
        .unwrap();
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    let at = |pid: u32| {
        rows.iter()
            .position(|r| r["pid"].as_u64() == Some(u64::from(pid)))
    };
    let (ps, pc) = (at(sh.0.id()).unwrap(), at(child).unwrap());
    assert_eq!(rows[pc]["ppid"].as_u64(), Some(u64::from(sh.0.id())));
    assert!(pc > ps, "the child comes after its parent");
    assert_eq!(
        rows[pc]["depth"].as_u64().unwrap_or(0),
        rows[ps]["depth"].as_u64().unwrap_or(0) + 1
    );
}

#[test]
fn issue_15_process_table_json_has_the_pid_inside_the_namespace() {
    skip_unless!(is_root(), "a new PID namespace needs root");
    let program = ["--mount-proc".as_ref(), "sleep".as_ref(), "30".as_ref()];
    let Ok((unshare, init)) = namespace_init(&program) else {
        require_tool!(false, "unshare (util-linux) is not installed");
        return;
    };
    let out = syslens()
        .args(["--json", "system", "--processes", "--window", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = |pid: u32| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["pid"].as_u64() == Some(u64::from(pid)))
            .unwrap_or_else(|| panic!("{pid} is not in the table"))
            .clone()
    };
    let r = row(init);
    assert_eq!(r["pid_in_namespace"].as_u64(), Some(1), "{r}");
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let nspid: Vec<u64> = ours
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .unwrap()
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect();
    // One level deeper than the namespace this test runs in.
    assert_eq!(
        r["pid_namespace_levels"].as_u64(),
        Some(nspid.len() as u64 + 1),
        "{r}"
    );
    // unshare itself stays outside: its pid inside is the one this namespace gives it.
    let u = row(unshare.0.id());
    assert_eq!(
        u["pid_namespace_levels"].as_u64(),
        Some(nspid.len() as u64),
        "{u}"
    );
    assert_ne!(u["pid_in_namespace"].as_u64(), Some(1), "{u}");
}

/// Directories made below a lab cgroup, removed (children first) when dropped.
struct Nested {
    dirs: Vec<PathBuf>,
    cg: Option<LabCgroup>,
}

impl Drop for Nested {
    fn drop(&mut self) {
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
        if let Some(cg) = self.cg.take() {
            let _ = cg.remove();
        }
    }
}

const ID: &str = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4";

#[test]
fn issue_15_containers_are_named_from_their_cgroups() {
    skip_unless!(is_root(), "making cgroups needs root");
    let mut reader = Reader::host().unwrap();
    let cg = match LabCgroup::create(&mut reader, &["memory"]) {
        Ok(cg) => cg,
        Err(e) => {
            skip_unless!(false, format!("no memory cgroup can be made here: {e}"));
            return;
        }
    };
    let base = cg.dir("memory").unwrap().to_owned();
    let uid = "8d1c2b7a-4f3e-4a5b-9c6d-0e1f2a3b4c5d";
    let docker = base.join("docker").join(ID);
    let pod_container = "7e6d5c4b3a291807f6e5d4c3b2a19080";
    let pod = base
        .join("kubepods/burstable")
        .join(format!("pod{uid}"))
        .join(pod_container);
    let mut nested = Nested {
        dirs: Vec::new(),
        cg: Some(cg),
    };
    for leaf in [&docker, &pod] {
        let mut d = base.clone();
        for part in leaf.strip_prefix(&base).unwrap().components() {
            d.push(part);
            std::fs::create_dir(&d).unwrap();
            nested.dirs.push(d.clone());
        }
    }
    let in_docker = Specimen::start(&[]);
    std::fs::write(docker.join("cgroup.procs"), in_docker.pid().to_string()).unwrap();
    let in_pod = Specimen::start(&[]);
    std::fs::write(pod.join("cgroup.procs"), in_pod.pid().to_string()).unwrap();

    let r = inspect(in_docker.pid());
    assert_eq!(r["container"]["runtime"], "docker", "{r}");
    assert_eq!(r["container"]["container_id"], ID, "{r}");
    let r = inspect(in_pod.pid());
    assert_eq!(r["container"]["pod_uid"], uid, "{r}");
    assert_eq!(r["container"]["qos"], "burstable", "{r}");
    assert_eq!(r["container"]["runtime"], "kubernetes", "{r}");

    // The table filters by id prefix and shows runtime and short id.
    let out = syslens()
        .args([
            "system",
            "--processes",
            "--window",
            "0",
            "--container",
            &ID[..8],
        ])
        .env("COLUMNS", "140")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&in_docker.pid().to_string()), "{text}");
    assert!(text.contains("docker 3f2a9c1b7d4e"), "{text}");
    assert!(!text.contains(&format!(" {} ", in_pod.pid())), "{text}");
    // The exporter groups by container.
    let metrics = scrape(&["--group-by", "container"]);
    assert!(
        metrics.contains("syslens_group_processes{group=\"docker/3f2a9c1b7d4e\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("group=\"kubernetes/{}\"", &pod_container[..12])),
        "{metrics}"
    );
    drop(in_docker);
    drop(in_pod);
    // The specimens have exited; the guard removes the directories.
    std::thread::sleep(Duration::from_millis(100));
    drop(nested);
    assert!(!base.exists(), "{} left behind", base.display());
}

/// One scrape of `syslens serve ARGS`.
fn scrape(args: &[&str]) -> String {
    let serve = crate::serve::Serve::start(args);
    crate::serve::get(serve.port, "/metrics").1
}

/// A lab cgroup with `docker/<ID>` made below it in each of `controllers`'
/// directories, and a specimen moved into every child.
fn nested_docker(controllers: &[&str]) -> Option<(Nested, Specimen, String)> {
    let mut reader = Reader::host().unwrap();
    let cg = match LabCgroup::create(&mut reader, controllers) {
        Ok(cg) => cg,
        Err(e) => {
            eprintln!("SKIPPED: no {controllers:?} cgroups can be made here: {e}");
            return None;
        }
    };
    let name = cg.name().to_owned();
    let mut nested = Nested {
        dirs: Vec::new(),
        cg: None,
    };
    let specimen = Specimen::start(&[]);
    for dir in cg.dirs() {
        let docker = dir.join("docker");
        let leaf = docker.join(ID);
        for d in [&docker, &leaf] {
            std::fs::create_dir(d).unwrap();
            nested.dirs.push(d.clone());
        }
        std::fs::write(leaf.join("cgroup.procs"), specimen.pid().to_string()).unwrap();
    }
    nested.cg = Some(cg);
    Some((nested, specimen, name))
}

#[test]
fn issue_15_limits_set_on_a_parent_cgroup_bind_the_child() {
    skip_unless!(is_root(), "making cgroups needs root");
    let Some((nested, specimen, name)) = nested_docker(&["memory", "cpu", "pids"]) else {
        skip_unless!(false, "no memory, cpu and pids cgroups can be made here");
        return;
    };
    let cg = nested.cg.as_ref().unwrap();
    let v1 = cg.version("memory") == Some(syslens_probe::cgroup::CgroupVersion::V1);
    cg.write_versioned(
        "memory",
        ("memory.limit_in_bytes", "memory.max"),
        &(200u64 << 20).to_string(),
    )
    .unwrap();
    if v1 {
        cg.write("cpu", "cpu.cfs_period_us", "100000").unwrap();
        cg.write("cpu", "cpu.cfs_quota_us", "50000").unwrap();
    } else {
        cg.write("cpu", "cpu.max", "50000 100000").unwrap();
    }
    cg.write("pids", "pids.max", "50").unwrap();

    let r = inspect(specimen.pid());
    let cgs = "cgroups-namespaces";
    assert_eq!(
        figure(&r, cgs, "effective memory limit").as_u64(),
        Some(200 << 20),
        "{r}"
    );
    let memory = figure(&r, cgs, "memory against its limit")
        .as_str()
        .unwrap()
        .to_owned();
    assert!(memory.contains("of the cgroup's 200.0 MiB"), "{memory}");
    assert!(
        memory.contains(&format!("/{name}, ")),
        "the parent sets it: {memory}"
    );
    assert!(!memory.contains("/docker/"), "not the child: {memory}");
    assert_eq!(
        figure(&r, cgs, "effective CPU quota (CPUs)").as_f64(),
        Some(0.5),
        "{r}"
    );
    let cpu = figure(&r, cgs, "CPU against its quota")
        .as_str()
        .unwrap()
        .to_owned();
    assert!(cpu.starts_with("CPU: quota 0.5 CPUs of "), "{cpu}");
    assert_eq!(
        figure(&r, cgs, "effective pids limit").as_u64(),
        Some(50),
        "{r}"
    );
    let pids = figure(&r, cgs, "pids against its limit")
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        pids.starts_with("pids: 1 of the cgroup's 50 tasks"),
        "{pids}"
    );

    // A lower limit on the child wins over the parent's, and names the child.
    let leaf = cg.dir("memory").unwrap().join("docker").join(ID);
    let file = if v1 {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    };
    std::fs::write(leaf.join(file), (100u64 << 20).to_string()).unwrap();
    let r = inspect(specimen.pid());
    assert_eq!(
        figure(&r, cgs, "effective memory limit").as_u64(),
        Some(100 << 20),
        "{r}"
    );
    let memory = figure(&r, cgs, "memory against its limit")
        .as_str()
        .unwrap()
        .to_owned();
    assert!(memory.contains("of the container's 100.0 MiB"), "{memory}");
    assert!(memory.contains("/docker/3f2a9c1b7d4e..."), "{memory}");

    // The process table's JSON carries the same limits.
    let out = syslens()
        .args([
            "--json",
            "system",
            "--processes",
            "--window",
            "0",
            "--container",
            &ID[..12],
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["processes"]
        .as_array()
        .or_else(|| v.as_array())
        .expect("rows");
    let row = rows
        .iter()
        .find(|row| row["pid"].as_u64() == Some(u64::from(specimen.pid())))
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(
        row["limits"]["memory"]["value"].as_u64(),
        Some(100 << 20),
        "{row}"
    );
    assert_eq!(
        row["limits"]["cpu"]["value"]["cpus"].as_f64(),
        Some(0.5),
        "{row}"
    );
    assert_eq!(row["limits"]["pids"]["value"].as_u64(), Some(50), "{row}");
    assert!(
        row["limits"]["pids"]["set_by"]["path"]
            .as_str()
            .unwrap()
            .ends_with(&name),
        "{row}"
    );
    drop(specimen);
    std::thread::sleep(Duration::from_millis(100));
    drop(nested);
}

/// A file removed when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn issue_15_doctor_compares_the_working_set_with_the_parents_limit() {
    skip_unless!(is_root(), "making cgroups needs root");
    let Some((nested, specimen, name)) = nested_docker(&["memory"]) else {
        skip_unless!(false, "no memory cgroup can be made here");
        return;
    };
    let cg = nested.cg.as_ref().unwrap();
    let parent = cg.dir("memory").unwrap().to_owned();
    let leaf = parent.join("docker").join(ID);
    // 24 MiB of tmpfs pages charged to the child: shmem, which reclaim cannot drop
    // without swap, so the working set stays put while doctor looks.
    let shm = RemoveOnDrop(PathBuf::from(format!(
        "/dev/shm/syslens-test-{}",
        unique_tag()
    )));
    let dd = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {}/cgroup.procs && exec dd if=/dev/zero of={} bs=1M count=24 status=none",
            leaf.display(),
            shm.0.display()
        ))
        .status()
        .unwrap();
    assert!(dd.success());
    let v1 = cg.version("memory") == Some(syslens_probe::cgroup::CgroupVersion::V1);
    let (usage_file, limit_file) = if v1 {
        ("memory.usage_in_bytes", "memory.limit_in_bytes")
    } else {
        ("memory.current", "memory.max")
    };
    let usage: u64 = std::fs::read_to_string(parent.join(usage_file))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        usage >= 24 << 20,
        "the shmem is charged below the parent: {usage}"
    );
    let limit = (usage + (1 << 20)) & !4095;
    std::fs::write(parent.join(limit_file), limit.to_string()).unwrap();
    // Unscoped: a run scoped to processes keeps only their own findings.
    let r = doctor_json(&[]);
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["rule"] == "cgroup-working-set-near-limit"
                && f["subject"].as_str().is_some_and(|s| s.contains(&name))
        })
        .unwrap_or_else(|| panic!("no near-limit finding: {r}"));
    let subject = f["subject"].as_str().unwrap();
    let message = f["message"].as_str().unwrap();
    assert!(
        subject.ends_with(&format!("/{name}")),
        "the parent sets it: {f}"
    );
    assert!(message.contains(&format!("/{name}, {limit_file})")), "{f}");
    assert!(
        message.contains(&format!("/{name}/docker/{ID}")),
        "the child it binds: {f}"
    );
    // Scoped to the process in the child, the parent's finding stays: its limit binds
    // it (issue 15: `doctor --pid X` dropped every cgroup finding).
    let r = doctor_json(&["--pid", &specimen.pid().to_string()]);
    let scoped = r["findings"].as_array().unwrap();
    assert!(
        scoped
            .iter()
            .any(|f| f["rule"] == "cgroup-working-set-near-limit"
                && f["subject"]
                    .as_str()
                    .is_some_and(|s| s.ends_with(&format!("/{name}")))),
        "{r}"
    );
    assert!(
        scoped.iter().all(|f| f["subject"] != "system"),
        "system-wide findings belong to a full run: {r}"
    );
    drop(specimen);
    drop(shm);
    std::thread::sleep(Duration::from_millis(100));
    drop(nested);
}

/// Item 9: a flock taken by a process that is gone, held on through the open file
/// description a background child inherited. /proc/locks names the dead taker by
/// dev:inode only; inspect and doctor name the file and who carries the lock now.
#[test]
fn issue_15_a_lock_is_named_by_its_path_and_the_fds_that_carry_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("held.lock");
    // flock(1) takes the lock on the shell's fd 9 and exits; sleep inherits fd 9.
    let out = Command::new("sh")
        .arg("-c")
        .arg("exec 9>\"$0\"; flock -x 9; sleep 60 >/dev/null 2>&1 & echo $!")
        .arg(&path)
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let carrier: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let _carrier = Running(Command::new("true").spawn().unwrap(), vec![carrier]);
    let path_s = path.to_str().unwrap();

    let r = inspect(carrier);
    let rows = crate::common::table(&r, "locking", "file locks of this process");
    let row = rows
        .iter()
        .find(|row| row[4].as_str().is_some_and(|f| f.starts_with(path_s)))
        .unwrap_or_else(|| panic!("no lock on {path_s}: {rows:?}"));
    assert_eq!(row[1], "holds (inherited fd)", "{row:?}");
    assert_eq!(row[2], "FLOCK", "{row:?}");
    assert_ne!(
        row[5].as_i64(),
        Some(i64::from(carrier)),
        "taken by flock(1), not sleep"
    );
    assert!(
        row[6]
            .as_str()
            .unwrap()
            .contains(&format!("{carrier} (sleep):9")),
        "{row:?}"
    );

    // A waiter: doctor says the taker no longer holds it, and who does.
    let _waiter = Running(
        Command::new("flock")
            .arg("-x")
            .arg(&path)
            .arg("true")
            .spawn()
            .unwrap(),
        Vec::new(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let d = doctor_json(&[]);
    let wait = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "file-lock-wait" && f["message"].as_str().unwrap().contains(path_s))
        .unwrap_or_else(|| panic!("no wait on {path_s}: {d}"));
    let m = wait["message"].as_str().unwrap();
    assert!(
        m.contains("which no longer holds it")
            && m.contains(&format!("pid {carrier} (sleep) fd 9")),
        "{m}"
    );
    // Scoped to the carrier, the wait behind it is still found.
    let d = doctor_json(&["--pid", &carrier.to_string()]);
    assert!(
        d["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "file-lock-wait"),
        "{d}"
    );
}

/// Item 5's cpusets: affinity caps the CPUs as a quota does; with no quota the count
/// is the allowed CPUs.
#[test]
fn issue_15_a_cpuset_caps_the_cpus_a_process_can_use() {
    let sleeper = Running(
        Command::new("taskset")
            .args(["-c", "0", "sleep", "30"])
            .spawn()
            .unwrap(),
        Vec::new(),
    );
    std::thread::sleep(Duration::from_millis(100));
    let r = inspect(sleeper.0.id());
    let quota = figure(&r, "cgroups-namespaces", "effective CPU quota (CPUs)");
    let usable = figure(
        &r,
        "cgroups-namespaces",
        "CPUs it can use (quota and cpuset)",
    );
    match quota.as_f64() {
        Some(q) => assert_eq!(usable.as_f64(), Some(q.min(1.0)), "{r}"),
        None => assert_eq!(usable.as_f64(), Some(1.0), "one CPU allowed: {r}"),
    }
}

/// A copy of `sleep` under `name` in `dir`, so a process started from it has a command
/// name (and so an exporter group) of its own.
fn sleep_named(dir: &std::path::Path, name: &str) -> Option<PathBuf> {
    let sleep = std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join("sleep"))
        .find(|p| p.is_file())?;
    let path = dir.join(name);
    std::fs::copy(sleep, &path).ok()?;
    Some(path)
}

/// The value of `family{group="group"}` in an exposition.
fn group_sample(metrics: &str, family: &str, group: &str) -> Option<f64> {
    let key = format!("{family}{{group=\"{group}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&key)?.parse().ok())
}

#[test]
fn issue_15_the_exporter_counts_a_namespace_init_as_sigterm_ignored() {
    skip_unless!(is_root(), "a new PID namespace needs root");
    let dir = tempfile::tempdir().unwrap();
    let (Some(init_bin), Some(plain_bin)) = (
        sleep_named(dir.path(), "slnsinit15"),
        sleep_named(dir.path(), "slplain15"),
    ) else {
        require_tool!(false, "sleep is not on PATH");
        return;
    };
    let Ok((_unshare, init)) = namespace_init(&[init_bin.as_ref(), "30".as_ref()]) else {
        require_tool!(false, "unshare (util-linux) is not installed");
        return;
    };
    // The same program outside a new namespace: SIGTERM terminates it.
    let plain = Running(
        Command::new(&plain_bin).arg("30").spawn().unwrap(),
        Vec::new(),
    );
    // Both have exec'd (their comm is the copy's name) before the scrape.
    let deadline = Instant::now() + Duration::from_secs(5);
    for (pid, name) in [(init, "slnsinit15"), (plain.0.id(), "slplain15")] {
        while std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim()
            != name
        {
            assert!(Instant::now() < deadline, "{pid} never became {name}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let metrics = scrape(&["--max-groups", "10000"]);
    let family = "syslens_group_sigterm_ignored_processes";
    assert_eq!(
        group_sample(&metrics, "syslens_group_processes", "slnsinit15"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        group_sample(&metrics, family, "slnsinit15"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        group_sample(&metrics, family, "slplain15"),
        Some(0.0),
        "{metrics}"
    );
    drop(plain);
}

#[test]
fn issue_15_serve_groups_by_systemd_unit() {
    skip_unless!(is_root(), "making cgroups needs root");
    let mut reader = Reader::host().unwrap();
    let cg = match LabCgroup::create(&mut reader, &["memory"]) {
        Ok(cg) => cg,
        Err(e) => {
            skip_unless!(false, format!("no memory cgroup can be made here: {e}"));
            return;
        }
    };
    let unit = cg.dir("memory").unwrap().join("slunit15.service");
    std::fs::create_dir(&unit).unwrap();
    let nested = Nested {
        dirs: vec![unit.clone()],
        cg: Some(cg),
    };
    let specimen = Specimen::start(&[]);
    let other = Specimen::start(&[]);
    std::fs::write(unit.join("cgroup.procs"), specimen.pid().to_string()).unwrap();
    let metrics = scrape(&["--group-by", "unit", "--max-groups", "10000"]);
    assert_eq!(
        group_sample(&metrics, "syslens_group_processes", "slunit15.service"),
        Some(1.0),
        "{metrics}"
    );
    // The other specimen sits in no unit of its own here: it is not counted there.
    let own = std::fs::read_to_string(format!("/proc/{}/cgroup", other.pid())).unwrap();
    if !own.contains(".service") && !own.contains(".scope") {
        assert!(
            group_sample(&metrics, "syslens_group_processes", "(no unit)")
                .is_some_and(|n| n >= 1.0),
            "{metrics}"
        );
    }
    drop(specimen);
    drop(other);
    // The specimens have exited; the guard removes the directories.
    std::thread::sleep(Duration::from_millis(100));
    drop(nested);
}
