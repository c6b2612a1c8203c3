//! Compaction as it happens: who waited for the kernel to defragment memory.

use std::collections::HashMap;

use syslens_probe::trace::{Rate, Sample};
use syslens_probe::tracefs::EventFormat;

use crate::model::event::{
    bound, int, who, Context, Decoder, Event, EventSource, Feed, TracepointSpec,
};
use crate::model::units::duration;

use super::ConceptId;

/// `compaction-stall`.
pub static EVENTS: &[EventSource] = &[EventSource {
    kind: "compaction-stall",
    concepts: &[ConceptId::SlabBuddy],
    tracepoints: &[
        TracepointSpec {
            system: "compaction",
            name: "mm_compaction_begin",
            filter: None,
            rate: Rate::Every,
        },
        TracepointSpec {
            system: "compaction",
            name: "mm_compaction_end",
            filter: None,
            rate: Rate::Every,
        },
    ],
    feed: Feed::Tracepoints,
    costly: None,
    decoder: || Box::new(Compaction::default()),
}];

#[derive(Default)]
struct Compaction {
    begun: HashMap<u32, u64>,
}

/// Compaction runs shorter than this are not events of their own.
const STALL_MIN_NS: u64 = 1_000_000;

impl Decoder for Compaction {
    fn sample(
        &mut self,
        ctx: &mut dyn Context,
        index: usize,
        f: &EventFormat,
        s: &Sample<'_>,
        out: &mut Vec<Event>,
    ) {
        if index == 0 {
            bound(&mut self.begun);
            self.begun.insert(s.tid, s.monotonic_ns);
            return;
        }
        let Some(start) = self.begun.remove(&s.tid) else {
            return;
        };
        let stall = s.monotonic_ns.saturating_sub(start);
        if stall < STALL_MIN_NS {
            return;
        }
        let pid = s.pid as i32;
        let comm = ctx.comm(pid);
        let secs = stall as f64 / 1e9;
        let status = int(f, s.raw, "status");
        let mut e = Event::new(
            ctx.wall(s.monotonic_ns),
            ConceptId::SlabBuddy,
            "compaction-stall",
            Some(pid),
        );
        e.line = format!(
            "{} compacted memory for {}",
            who(comm.as_deref(), pid.into()),
            duration(secs)
        );
        out.push(
            e.with("pid", Some(pid))
                .with("comm", comm)
                .with("stall_seconds", Some(secs))
                .with("status", status),
        );
    }
}
