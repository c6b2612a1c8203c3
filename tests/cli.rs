//! The edges of the command line (issue 14, part 6): closed pipes, PIDs, cgroups that
//! do not exist, a report path that cannot be written, ids people type.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::common::*;

/// Runs `syslens ARGS | head -c N` and returns syslens's exit code and stderr.
fn into_closed_pipe(args: &[&str], keep: usize) -> (Option<i32>, String) {
    let mut child = syslens()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = vec![0u8; keep];
    stdout.read_exact(&mut buf).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn issue_14_json_into_a_closed_pipe_ends_quietly() {
    for args in [
        &["--json", "system", "--processes"][..],
        &["--json", "inspect", "1", "--window", "0"],
        &["system", "--processes"],
    ] {
        // The reader leaves after one byte, mid-document: five times, because the
        // failure showed in 3 of 5 runs.
        for _ in 0..5 {
            let (code, err) = into_closed_pipe(args, 1);
            assert_eq!(code, Some(0), "{args:?}: {err}");
            assert!(err.is_empty(), "{args:?}: {err}");
        }
    }
}

#[test]
fn issue_14_pids_are_positive() {
    for pid in ["-5", "0", "4294967295"] {
        let out = syslens()
            .args(["inspect", "--window", "0", "--", pid])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{pid}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("/proc/-"), "{pid}: {err}");
        assert!(!err.contains("-2147483648"), "{pid}: {err}");
        assert!(err.contains("1.."), "{pid}: the range is named: {err}");
    }
}

#[test]
fn issue_14_an_unknown_cgroup_is_a_usage_error_naming_it() {
    let out = syslens()
        .args(["system", "--window", "0", "--cgroup", "/no/such/cgroup"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/cgroup"));
    // The cgroup this test runs in does exist.
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let path = own
        .lines()
        .find_map(|l| l.strip_prefix("0::").or_else(|| l.split(":memory:").nth(1)))
        .unwrap_or("/")
        .to_owned();
    let out = syslens()
        .args(["system", "--window", "0", "--cgroup", &path])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{path}: {out:?}");
}

#[test]
fn issue_14_an_unwritable_report_path_fails_before_the_first_lab() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("no/such/dir/report.html");
    let started = std::time::Instant::now();
    let out = syslens()
        .args(["tour", "--quick", "--html"])
        .arg(&html)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&html.display().to_string()), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "it ran labs first"
    );
}

#[test]
fn issue_19_concept_ids_are_forgiving_and_typos_get_a_suggestion() {
    for id in ["CoW", "high_water_mark", "Page-Faults"] {
        let out = syslens().args(["explain", id]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{id}: {out:?}");
    }
    let out = syslens().args(["explain", "singals"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean signals?"));
    let out = syslens().args(["lab", "sawp-oom"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean swap-oom?"));
    // `syslens concepts` still lists every id.
    let out = Command::new(env!("CARGO_BIN_EXE_syslens"))
        .arg("concepts")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 18);
}

#[test]
fn issue_14_lab_parameters_are_bounded_before_anything_runs() {
    for (args, names) in [
        (
            &["lab", "lazy-init", "--size", "200000"][..],
            "MemAvailable",
        ),
        (
            &["lab", "high-water-mark", "--size", "100000"],
            "MemAvailable",
        ),
        (&["lab", "lazy-init", "--size", "0"], "1..="),
        (&["lab", "lazy-init", "--trials", "0"], "1..="),
        (&["lab", "lazy-init", "--trials", "1000000000"], "1..=10000"),
    ] {
        let started = std::time::Instant::now();
        let out = syslens().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(names),
            "{args:?}: the allowed range is named: {err}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
}
