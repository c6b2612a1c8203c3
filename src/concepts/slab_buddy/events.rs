//! Compaction as it happens: who waited for the kernel to defragment memory.

use syslens_probe::trace::Rate;

use crate::model::event::{Cost, EventSource, Feed, StallSpec, Stalls, TracepointSpec};

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
            kernel_stack: false,
        },
        TracepointSpec {
            system: "compaction",
            name: "mm_compaction_end",
            filter: None,
            rate: Rate::Every,
            kernel_stack: false,
        },
    ],
    feed: Feed::Tracepoints,
    cost: Cost::Light,
    decoder: || Box::new(Stalls::new(&COMPACTION)),
}];

static COMPACTION: StallSpec = StallSpec {
    concept: ConceptId::SlabBuddy,
    kind: "compaction-stall",
    doing: "compacting memory",
    outcome: ("status", "status"),
};
