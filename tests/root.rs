//! `--root` is honoured by every command that reads processes or the system, and
//! refused by those that provoke the live kernel (issue 13).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

fn v2() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v2")
}

/// The PIDs recorded in the v2 tree.
fn recorded_pids() -> Vec<i64> {
    let mut pids: Vec<i64> = std::fs::read_dir(v2().join("proc"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.parse().ok())
        .collect();
    pids.sort();
    pids
}

#[test]
fn issue_13_doctor_reads_the_captured_tree_not_the_host() {
    let out = syslens()
        .arg("--root")
        .arg(v2())
        .args(["doctor", "--json", "--window", "1"])
        .output()
        .unwrap();
    assert!(out.status.code().is_some_and(|c| c <= 1), "{out:?}");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pids = recorded_pids();
    assert_eq!(r["processes"].as_u64(), Some(pids.len() as u64), "{r}");
    // A captured tree does not change: nothing is watched, and the kernel log is not
    // the host's.
    assert_eq!(r["window_seconds"].as_f64(), Some(0.0), "{r}");
    let unreadable = r["unreadable"].to_string();
    assert!(
        unreadable.contains("captured tree has no kernel log"),
        "{r}"
    );
    for f in r["findings"].as_array().unwrap() {
        let subject = f["subject"].as_str().unwrap();
        if let Some(pid) = subject
            .strip_prefix("pid ")
            .and_then(|s| s.split(' ').next())
        {
            let pid: i64 = pid.parse().unwrap();
            assert!(pids.contains(&pid), "finding about a host process: {f}");
        }
    }
}

#[test]
fn issue_13_an_empty_root_is_a_usage_error() {
    let empty = tempfile::tempdir().unwrap();
    for args in [
        &["doctor", "--window", "0"][..],
        &["system"],
        &["system", "--processes"],
        &["inspect", "1"],
        &["serve", "--listen", "127.0.0.1:0"],
    ] {
        let out = syslens()
            .arg("--root")
            .arg(empty.path())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot read"), "{args:?}: {err}");
    }
}

#[test]
fn issue_13_lab_and_tour_refuse_a_root() {
    for args in [
        &["lab", "lazy-init", "--quick"][..],
        &["tour", "--quick"],
        &[],
    ] {
        let started = Instant::now();
        let out = syslens()
            .arg("--root")
            .arg(v2())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("live kernel"), "{args:?}: {err}");
        // Refused before anything ran.
        assert!(started.elapsed() < Duration::from_secs(2), "{args:?}");
    }
}

#[test]
fn issue_13_flags_a_command_cannot_use_are_refused() {
    for (args, flag) in [
        (&["--json", "top"][..], "--json"),
        (&["--root", "/", "explain", "cow"], "--root"),
        (&["--json", "serve"], "--json"),
    ] {
        let out = syslens().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(flag),
            "{args:?}: {out:?}"
        );
    }
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_13_top_shows_the_captured_tree() {
    require_tool!(crate::common::has_tmux(), "tmux is not installed");
    let session = format!("syslens-root-top-{}", std::process::id());
    let bin = env!("CARGO_BIN_EXE_syslens");
    let started = Command::new("tmux")
        .args(["new-session", "-d", "-s", &session, "-x", "130", "-y", "40"])
        .arg(format!(
            "{bin} --root {} top --interval 0.3; sleep 5",
            v2().display()
        ))
        .status()
        .unwrap();
    assert!(started.success());
    let kill = || {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &session])
            .status();
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let screen = loop {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &session])
            .output()
            .unwrap();
        let screen = String::from_utf8_lossy(&out.stdout).into_owned();
        if screen.contains("4242") || Instant::now() > deadline {
            break screen;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    kill();
    assert!(screen.contains("4242"), "{screen}");
    // Only the recorded processes: the host's PID 1 and this test are not there.
    let me = std::process::id().to_string();
    let rows: Vec<&str> = screen
        .lines()
        // Table rows start with the PID; the tab bar ("1 memory") and the status line
        // ("3 processes") with a number too.
        .filter(|l| !l.contains(" memory ") && !l.contains(" processes "))
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.parse::<u32>().is_ok())
        })
        .collect();
    assert!(!rows.is_empty(), "{screen}");
    for row in rows {
        let pid: i64 = row.split_whitespace().next().unwrap().parse().unwrap();
        assert!(recorded_pids().contains(&pid), "host process shown: {row}");
        assert_ne!(pid.to_string(), me);
    }
}

#[test]
fn issue_13_top_without_a_terminal_says_so() {
    let out = syslens()
        .arg("top")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a terminal"));
}
