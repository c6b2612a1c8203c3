//! User page faults, classified: reads, writes to absent pages, writes to present
//! pages (copy-on-write on a private mapping), by the kind of memory faulted on.
//!
//! `exceptions:page_fault_user` fires on every user fault, millions a second under a
//! fault-heavy load; a sample of each would slow such a load by a third. It is sampled
//! one hit in [`SAMPLE_ONE_IN`] per CPU, and each sample counts for that many faults:
//! per-process figures are estimates within about that many faults per CPU.

use std::collections::HashMap;

use syslens_probe::trace::{Rate, Sample};
use syslens_probe::tracefs::EventFormat;

use crate::model::event::{
    bound, int, who, Context, Cost, Decoder, Event, EventSource, Feed, MappingKind, TracepointSpec,
};

use super::ConceptId;

/// One sample per this many user faults on a CPU: one in 16 cost a fault loop 0.876x
/// where counting alone cost 0.92x, one in 64 0.903x (an AMD EPYC VM, 2026-12-07).
pub const SAMPLE_ONE_IN: u64 = 64;

/// `faults`.
pub static EVENTS: &[EventSource] = &[EventSource {
    kind: "faults",
    concepts: &[
        ConceptId::PageFaults,
        ConceptId::Cow,
        ConceptId::DemandPaging,
        ConceptId::LazyInit,
        ConceptId::Mmap,
    ],
    tracepoints: &[TracepointSpec {
        system: "exceptions",
        name: "page_fault_user",
        filter: None,
        rate: Rate::OneIn(SAMPLE_ONE_IN),
        kernel_stack: false,
    }],
    feed: Feed::Tracepoints,
    cost: Cost::Host("the page-fault tracepoint builds a record on every fault before one in 64 is kept (a fault loop ran at 0.90x with it alone, 0.88x keeping one in 16)"),
    decoder: || Box::new(Faults::default()),
}];

#[derive(Default, Clone)]
struct Tally {
    /// Read when the process first faulted: a short-lived one is gone by the summary.
    comm: Option<String>,
    read: u64,
    write: u64,
    cow: u64,
    anon: u64,
    file: u64,
    shared: u64,
    unknown: u64,
}

#[derive(Default)]
struct Faults {
    by_pid: HashMap<i32, Tally>,
}

/// x86 page-fault error code bits (arch/x86/include/asm/trap_pf.h).
const PF_PRESENT: i64 = 1;
const PF_WRITE: i64 = 2;

/// Processes reported per summary (the most faulting first).
const TOP: usize = 10;

impl Decoder for Faults {
    fn sample(
        &mut self,
        ctx: &mut dyn Context,
        _: usize,
        f: &EventFormat,
        s: &Sample<'_>,
        _: &mut Vec<Event>,
    ) {
        let Some(code) = int(f, s.raw, "error_code") else {
            return;
        };
        let addr = int(f, s.raw, "address").unwrap_or(0) as u64;
        let pid = s.pid as i32;
        let kind = ctx.mapping(pid, addr);
        bound(&mut self.by_pid);
        let t = self.by_pid.entry(pid).or_insert_with(|| Tally {
            comm: ctx.comm(pid),
            ..Tally::default()
        });
        let weight = s.period.max(1);
        let write = code & PF_WRITE != 0;
        let present = code & PF_PRESENT != 0;
        match (write, present, kind) {
            (false, _, _) => t.read += weight,
            // A write to a present page of a private mapping: copy-on-write (after
            // fork, or of a private file page). On a shared mapping it is the dirty
            // tracking of a clean page, not a copy.
            (true, true, Some(MappingKind::Anon | MappingKind::File)) => t.cow += weight,
            (true, _, _) => t.write += weight,
        }
        match kind {
            Some(MappingKind::Anon) => t.anon += weight,
            Some(MappingKind::File) => t.file += weight,
            Some(MappingKind::Shared) => t.shared += weight,
            None => t.unknown += weight,
        }
    }

    fn summarize(&mut self, ctx: &mut dyn Context, out: &mut Vec<Event>) {
        let mut tallies: Vec<_> = self.by_pid.drain().collect();
        tallies.sort_by_key(|(_, t)| std::cmp::Reverse(t.read + t.write + t.cow));
        for (pid, t) in tallies.into_iter().take(TOP) {
            let comm = t.comm.clone();
            let mut e = Event::new(ctx.now(), ConceptId::PageFaults, "faults", Some(pid));
            e.line = format!(
                "{} ~{} faults: {} read, {} write, {} copy-on-write (anon {}, file {}, shared {})",
                who(comm.as_deref(), pid.into()),
                t.read + t.write + t.cow,
                t.read,
                t.write,
                t.cow,
                t.anon,
                t.file,
                t.shared
            );
            out.push(
                e.with("pid", Some(pid))
                    .with("comm", comm)
                    .with("read_faults", Some(t.read))
                    .with("write_faults", Some(t.write))
                    .with("cow_faults", Some(t.cow))
                    .with("anon", Some(t.anon))
                    .with("file", Some(t.file))
                    .with("shmem", Some(t.shared))
                    .with("unmapped", Some(t.unknown).filter(|&u| u > 0))
                    .with("sampled_one_in", Some(SAMPLE_ONE_IN)),
            );
        }
    }

    fn finish(&mut self, ctx: &mut dyn Context, out: &mut Vec<Event>) {
        self.summarize(ctx, out);
    }
}
