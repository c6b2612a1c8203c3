//! A monitor that keeps files open stays within half its fd limit and still reads
//! every process. Alone in its binary: it lowers this process's own soft limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use rustix::process::{getrlimit, setrlimit, Resource};
use syslens_probe::table::{ScanOptions, Scanner};
use syslens_probe::Reader;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn kept_files_stay_within_half_the_soft_limit() {
    let (children, pids) = common::sleepers(40);
    let opts = ScanOptions {
        keep_open: true,
        ..ScanOptions::default()
    };
    let before = open_fds();
    // Plenty of room: every process's files stay open.
    let mut roomy = Scanner::new(Reader::host().unwrap());
    assert_eq!(roomy.scan_pids(&pids, opts).len(), pids.len());
    let held = open_fds() - before;
    drop(roomy);
    // 100 fds: at most 50 for kept files, i.e. 10 processes of 5.
    let mut lim = getrlimit(Resource::Nofile);
    lim.current = Some(100);
    setrlimit(Resource::Nofile, lim).unwrap();
    let before = open_fds();
    let mut tight = Scanner::new(Reader::host().unwrap());
    for _ in 0..3 {
        assert_eq!(tight.scan_pids(&pids, opts).len(), pids.len());
    }
    let held_tight = open_fds() - before;
    drop(children);
    assert!(
        held >= 4 * pids.len(),
        "{held} fds held for {} processes",
        pids.len()
    );
    assert!(
        held_tight <= 51,
        "{held_tight} fds held under a limit of 100"
    );
}
