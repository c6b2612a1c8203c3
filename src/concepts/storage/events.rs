//! How long durability takes: every fsync-family call, timed per process.

use std::collections::HashMap;

use syslens_probe::trace::{Rate, Sample};
use syslens_probe::tracefs::EventFormat;

use crate::model::event::{
    bound, who, Context, Decoder, Event, EventSource, Feed, Latencies, Pairing, TracepointSpec,
};
use crate::model::units::duration;

use super::ConceptId;

const fn tp(name: &'static str) -> TracepointSpec {
    TracepointSpec {
        system: "syscalls",
        name,
        filter: None,
        rate: Rate::Every,
    }
}

/// Entries first, exits after, in the same order: index `i` and `i + CALLS`.
const TRACEPOINTS: &[TracepointSpec] = &[
    tp("sys_enter_fsync"),
    tp("sys_enter_fdatasync"),
    tp("sys_enter_sync_file_range"),
    tp("sys_enter_msync"),
    tp("sys_exit_fsync"),
    tp("sys_exit_fdatasync"),
    tp("sys_exit_sync_file_range"),
    tp("sys_exit_msync"),
];
const CALLS: usize = 4;

/// `fsync` (a summary per process).
pub static EVENTS: &[EventSource] = &[EventSource {
    kind: "fsync",
    concepts: &[ConceptId::Storage],
    tracepoints: TRACEPOINTS,
    feed: Feed::Tracepoints,
    costly: Some("syscall tracepoints send every syscall of every task through the slow path (a getppid loop ran at 0.69x)"),
    decoder: || Box::new(Fsyncs::default()),
}];

#[derive(Default)]
struct Fsyncs {
    calls: Pairing,
    by_pid: HashMap<i32, Latencies>,
}

impl Decoder for Fsyncs {
    fn sample(
        &mut self,
        _: &mut dyn Context,
        index: usize,
        _: &EventFormat,
        s: &Sample<'_>,
        _: &mut Vec<Event>,
    ) {
        if index < CALLS {
            self.calls.begin(s);
        } else if let Some(secs) = self.calls.end(s) {
            bound(&mut self.by_pid);
            self.by_pid.entry(s.pid as i32).or_default().add(secs);
        }
    }

    fn summarize(&mut self, ctx: &mut dyn Context, out: &mut Vec<Event>) {
        for (pid, mut l) in self.by_pid.drain() {
            let comm = ctx.comm(pid);
            let (p50, p99) = (l.quantile(0.5), l.quantile(0.99));
            let mut e = Event::new(ctx.now(), ConceptId::Storage, "fsync", Some(pid));
            e.line = format!(
                "{} {} fsync calls, p50 {}, p99 {}, max {}",
                who(comm.as_deref(), pid.into()),
                l.count,
                p50.map(duration).unwrap_or_default(),
                p99.map(duration).unwrap_or_default(),
                duration(l.max)
            );
            out.push(
                e.with("pid", Some(pid))
                    .with("comm", comm)
                    .with("calls", Some(l.count))
                    .with("p50_seconds", p50)
                    .with("p99_seconds", p99)
                    .with("max_seconds", Some(l.max)),
            );
        }
    }

    fn finish(&mut self, ctx: &mut dyn Context, out: &mut Vec<Event>) {
        self.summarize(ctx, out);
    }
}
