//! How long durability takes: every fsync, fdatasync and msync that reaches a file
//! system's sync, timed per process.
//!
//! The start is the file system's own tracepoint (ext4, xfs, btrfs), the end the
//! syscall's exit. A `syscalls:sys_enter_*` tracepoint would time the whole call, but
//! enabling any syscall entry tracepoint adds a hook to every syscall of every task (a
//! getppid loop ran at 0.85x with entries and exits, 0.92x with exits only, which
//! fds-limits needs anyway). sync_file_range starts writeback without the file
//! system's sync and is not timed; calls with no sync tracepoint before their exit
//! (tmpfs, whose fsync does nothing, or a file system without one) are counted apart.

use std::collections::HashMap;

use syslens_probe::trace::{Rate, Sample};
use syslens_probe::tracefs::EventFormat;

use crate::model::event::{
    bound, who, Context, Cost, Decoder, Event, EventSource, Feed, Latencies, Pairing,
    TracepointSpec,
};

use super::ConceptId;

const fn tp(system: &'static str, name: &'static str) -> TracepointSpec {
    TracepointSpec {
        system,
        name,
        filter: None,
        rate: Rate::Every,
        kernel_stack: false,
    }
}

/// The file systems' sync starts first, then the syscalls' exits.
const TRACEPOINTS: &[TracepointSpec] = &[
    tp("ext4", "ext4_sync_file_enter"),
    tp("xfs", "xfs_file_fsync"),
    tp("btrfs", "btrfs_sync_file"),
    tp("syscalls", "sys_exit_fsync"),
    tp("syscalls", "sys_exit_fdatasync"),
    tp("syscalls", "sys_exit_msync"),
];
const STARTS: usize = 3;

/// `fsync` (a summary per process).
pub static EVENTS: &[EventSource] = &[EventSource {
    kind: "fsync",
    concepts: &[ConceptId::Storage],
    tracepoints: TRACEPOINTS,
    feed: Feed::Tracepoints,
    cost: Cost::Host("syscall exit tracepoints send every syscall of every task through the slow path (a getppid loop ran at 0.79x with fsync's alone on 2026-12-07, 0.92x in earlier runs)"),
    decoder: || Box::new(Fsyncs::default()),
}];

#[derive(Default)]
struct Fsyncs {
    calls: Pairing,
    by_pid: HashMap<i32, PerProcess>,
}

#[derive(Default)]
struct PerProcess {
    /// Read at its first call: a short-lived process is gone by the summary.
    comm: Option<String>,
    timed: Latencies,
    /// Calls whose exit had no file system sync start before it.
    untimed: u64,
}

impl Decoder for Fsyncs {
    fn sample(
        &mut self,
        ctx: &mut dyn Context,
        index: usize,
        _: &EventFormat,
        s: &Sample<'_>,
        _: &mut Vec<Event>,
    ) {
        if index < STARTS {
            // A later start on the thread replaces an earlier one that had no syscall
            // exit (a sync the kernel made for itself, an io_uring request).
            self.calls.begin(s);
            return;
        }
        let secs = self.calls.end(s);
        bound(&mut self.by_pid);
        let pid = s.pid as i32;
        let p = self.by_pid.entry(pid).or_insert_with(|| PerProcess {
            comm: ctx.comm(pid),
            ..PerProcess::default()
        });
        match secs {
            Some(secs) => p.timed.add(secs),
            None => p.untimed += 1,
        }
    }

    fn summarize(&mut self, ctx: &mut dyn Context, out: &mut Vec<Event>) {
        for (pid, mut p) in self.by_pid.drain() {
            let comm = p.comm.take();
            let spread = p.timed.spread();
            let mut e = Event::new(ctx.now(), ConceptId::Storage, "fsync", Some(pid));
            let name = who(comm.as_deref(), pid.into());
            e.line = match spread {
                Some(s) => format!("{name} {} fsync calls, {s}", p.timed.count),
                None => format!("{name} no timed fsync calls"),
            };
            if p.untimed > 0 {
                e.line.push_str(&format!(
                    "; {} more on file systems without a sync tracepoint (tmpfs)",
                    p.untimed
                ));
            }
            out.push(
                e.with("pid", Some(pid))
                    .with("comm", comm)
                    .with("calls", Some(p.timed.count))
                    .with("untimed_calls", Some(p.untimed))
                    .with("p50_seconds", spread.map(|s| s.p50))
                    .with("p99_seconds", spread.map(|s| s.p99))
                    .with("max_seconds", spread.map(|s| s.max)),
            );
        }
    }

    fn finish(&mut self, ctx: &mut dyn Context, out: &mut Vec<Event>) {
        self.summarize(ctx, out);
    }
}
