//! The same checks as an unprivileged user (nobody): nothing fails, and what cannot be
//! read says why.

use std::os::unix::fs::PermissionsExt;

use crate::common::*;

fn inspect_as_nobody(pid: u32) -> serde_json::Value {
    let out = run_ok(as_nobody().args(["inspect", "--json", "--window", "0.2", &pid.to_string()]));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn nobody_inspecting_a_root_process_gets_reasons_not_failures() {
    if let Err(why) = nobody_can_run() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let s = Specimen::start(&["--open-fds", "3"]);
    let r = inspect_as_nobody(s.pid());
    // status and stat are world-readable.
    assert!(figure(&r, "high-water-mark", "resident now (VmRSS)")
        .as_u64()
        .is_some());
    assert!(figure(&r, "page-faults", "minor faults rate")
        .as_f64()
        .is_some());
    // smaps, fds and namespaces need ptrace access.
    for (concept, name) in [
        ("cow", "resident (Rss)"),
        ("fds-limits", "fd listing"),
        ("shared-libs", "mapped libraries"),
    ] {
        assert_eq!(
            missing_kind(figure(&r, concept, name)),
            Some("permission"),
            "{concept}/{name}"
        );
    }
    // The count comes from stat(2) of /proc/PID/fd, which needs no ptrace access.
    assert!(u64_of(figure(&r, "fds-limits", "open fds")) >= 6);
    let unreadable: Vec<String> = r["unreadable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert!(
        unreadable
            .iter()
            .any(|u| u.contains("smaps") && u.contains("root")),
        "{unreadable:?}"
    );

    let text = run_ok(as_nobody().args(["inspect", "--window", "0", &s.pid().to_string()]));
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("Could not read"),
        "text output must say what it could not read"
    );
    assert!(
        text.lines().all(|l| l.chars().count() <= 100),
        "a line is wider than 100 columns"
    );
}

#[test]
fn nobody_inspecting_its_own_process_sees_everything_it_owns() {
    if let Err(why) = nobody_can_run() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let s = Specimen::start_with(
        as_nobody(),
        &[
            "--spike-mib",
            "32",
            "--open-fds",
            "5",
            "--ignore-term",
            "--deleted-file-in",
            dir.path().to_str().unwrap(),
        ],
    );
    let r = inspect_as_nobody(s.pid());
    assert_eq!(r["uid"], 65534);
    let rss = u64_of(figure(&r, "high-water-mark", "resident now (VmRSS)"));
    let hwm = u64_of(figure(&r, "high-water-mark", "resident peak (VmHWM)"));
    assert!(hwm >= 32 << 20 && rss < hwm);
    assert!(u64_of(figure(&r, "cow", "resident (Rss)")) > 0);
    assert_eq!(
        u64_of(figure(&r, "fds-limits", "deleted-but-open files")),
        1
    );
    assert_eq!(figure(&r, "signals", "SIGTERM"), "ignored");
}

#[test]
fn nobody_runs_system_and_the_process_table() {
    if let Err(why) = nobody_can_run() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let out = run_ok(as_nobody().args(["--json", "system", "--window", "0.2"]));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        missing_kind(figure(&r, "slab-buddy", "slab caches")),
        Some("permission")
    );
    assert!(figure(&r, "lazy-init", "RAM (MemTotal)").as_u64().is_some());
    let out = run_ok(as_nobody().args(["system", "--processes", "--pss"]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("PSS: no permission"),
        "the table says what it could not read:\n{text}"
    );
}
