//! The scan's hot path allocates nothing per process once warm: a counting allocator
//! watches a second pass over a fixed set of live processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use syslens_probe::table::{ScanOptions, Scanner};
use syslens_probe::Reader;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn warm_scan_allocates_nothing_per_process() {
    let (children, mut pids) = common::sleepers(30);
    pids.push(std::process::id() as i32);
    // One-shot passes, and a monitor's: files kept open, quiet processes skipped.
    let monitor = ScanOptions {
        keep_open: true,
        idle_every: 5,
        slow_every: 5,
        ..ScanOptions::default()
    };
    let mut allocations = Vec::new();
    for opts in [ScanOptions::default(), monitor] {
        let mut scanner = Scanner::new(Reader::host().unwrap());
        assert_eq!(scanner.scan_pids(&pids, opts).len(), pids.len());
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let rows = scanner.scan_pids(&pids, opts).len();
        let after = ALLOCATIONS.load(Ordering::Relaxed);
        assert_eq!(rows, pids.len());
        allocations.push(after - before);
    }
    drop(children);
    assert_eq!(
        allocations,
        [0, 0],
        "allocations in a warm pass over {} processes (one-shot, monitor)",
        pids.len()
    );
}
