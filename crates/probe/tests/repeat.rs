//! Repeated scans that keep files open and skip processes that did not run: the
//! figures must still follow what the process does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use syslens_probe::table::{ProcessRow, ScanOptions, Scanner};
use syslens_probe::Reader;

mod common;
use common::Reaped;

/// A shell that waits for a line, then grows its memory by ~40 MiB and waits again.
fn grower() -> Reaped {
    Reaped(
        Command::new("sh")
            .args([
                "-c",
                "read go; x=$(head -c 40000000 /dev/zero | tr '\\0' a); read stop",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn row(scanner: &mut Scanner, pid: i32, opts: ScanOptions) -> ProcessRow {
    scanner.scan_pids(&[pid], opts)[0].clone()
}

#[test]
fn a_kept_quiet_process_is_read_again_once_it_runs() {
    let mut child = grower();
    let pid = child.0.id() as i32;
    let mut scanner = Scanner::new(Reader::host().unwrap());
    // Never re-read on age alone: only a sign of running may refresh the figures.
    let opts = ScanOptions {
        keep_open: true,
        idle_every: u64::MAX,
        slow_every: u64::MAX,
        ..ScanOptions::default()
    };
    // Let the shell reach its first read.
    std::thread::sleep(Duration::from_millis(200));
    let before = row(&mut scanner, pid, opts);
    let hwm0 = before.hwm.clone().unwrap();
    let again = row(&mut scanner, pid, opts);
    assert_eq!(again.hwm.clone().unwrap(), hwm0);
    assert_eq!(again.minflt, before.minflt);
    child.0.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let grown = loop {
        let r = row(&mut scanner, pid, opts);
        if r.hwm.clone().unwrap() > hwm0 + (30 << 20) {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "HWM stayed at {} (from {hwm0}): the process's growth was not seen",
            r.hwm.clone().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // The same figures as a scan from scratch.
    std::thread::sleep(Duration::from_millis(200));
    let kept = row(&mut scanner, pid, opts);
    let fresh = row(
        &mut Scanner::new(Reader::host().unwrap()),
        pid,
        ScanOptions::default(),
    );
    assert!(grown.minflt > before.minflt);
    assert_eq!(kept.hwm.clone().unwrap(), fresh.hwm.clone().unwrap());
    assert_eq!(kept.rss.clone().unwrap(), fresh.rss.clone().unwrap());
    assert_eq!(kept.minflt, fresh.minflt);
    assert_eq!(kept.voluntary_switches, fresh.voluntary_switches);
    assert_eq!(kept.fds.clone().unwrap(), fresh.fds.clone().unwrap());
}

#[test]
fn a_kept_process_that_execs_shows_its_new_name() {
    let mut child = Reaped(
        Command::new("sh")
            .args(["-c", "read go; exec sleep 30"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id() as i32;
    let mut scanner = Scanner::new(Reader::host().unwrap());
    let opts = ScanOptions {
        keep_open: true,
        idle_every: u64::MAX,
        ..ScanOptions::default()
    };
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(row(&mut scanner, pid, opts).comm.as_str(), "sh");
    assert_eq!(row(&mut scanner, pid, opts).comm.as_str(), "sh");
    child.0.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while row(&mut scanner, pid, opts).comm.as_str() != "sleep" {
        assert!(
            Instant::now() < deadline,
            "still shown as sh after its exec"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
