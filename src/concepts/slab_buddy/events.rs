//! Fragmentation as it happens: who waited for the kernel to defragment memory, and
//! whose allocations took pages from a block of another migrate type.

use std::collections::HashMap;

use syslens_probe::trace::{Rate, Sample};
use syslens_probe::tracefs::EventFormat;

use crate::model::event::{
    bound, int, who, Context, Cost, Decoder, Event, EventSource, Feed, StallSpec, Stalls,
    TracepointSpec,
};

use super::ConceptId;

/// `compaction-stall` and `extfrag`.
pub static EVENTS: &[EventSource] = &[COMPACTION_STALL, EXTFRAG];

const COMPACTION_STALL: EventSource = EventSource {
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
};

static COMPACTION: StallSpec = StallSpec {
    concept: ConceptId::SlabBuddy,
    kind: "compaction-stall",
    doing: "compacting memory",
    outcome: ("status", "status"),
};

/// `extfrag` (a summary per process and pair of migrate types).
const EXTFRAG: EventSource = EventSource {
    kind: "extfrag",
    concepts: &[ConceptId::SlabBuddy],
    // A fallback happens when a migrate type's free lists are empty: rare on a calm host,
    // bursts of thousands a second under memory pressure, so no wake-up per sample.
    tracepoints: &[TracepointSpec {
        system: "kmem",
        name: "mm_page_alloc_extfrag",
        filter: None,
        rate: Rate::OneIn(1),
        kernel_stack: false,
    }],
    feed: Feed::Tracepoints,
    cost: Cost::Light,
    decoder: || Box::new(Fallbacks::default()),
};

/// The name of a migrate type number, as /proc/pagetypeinfo lists them
/// (include/linux/mmzone.h; the types past HighAtomic depend on the kernel's config).
fn migratetype(t: i64) -> String {
    match t {
        0 => "unmovable".into(),
        1 => "movable".into(),
        2 => "reclaimable".into(),
        3 => "highatomic".into(),
        t => format!("type {t}"),
    }
}

/// Fallbacks of one process from one migrate type to another, this span.
#[derive(Debug, Default)]
struct Tally {
    comm: Option<String>,
    fallbacks: u64,
    /// Those after which the block belongs to the allocation's type.
    claimed: u64,
    alloc_order_max: i64,
    fallback_order_max: i64,
}

#[derive(Default)]
struct Fallbacks {
    /// By (pid, alloc migrate type, fallback migrate type).
    by_key: HashMap<(i32, i64, i64), Tally>,
}

impl Decoder for Fallbacks {
    fn sample(
        &mut self,
        ctx: &mut dyn Context,
        _: usize,
        f: &EventFormat,
        s: &Sample<'_>,
        _: &mut Vec<Event>,
    ) {
        let field = |name| int(f, s.raw, name);
        let (Some(alloc), Some(fallback)) =
            (field("alloc_migratetype"), field("fallback_migratetype"))
        else {
            return;
        };
        let pid = s.pid as i32;
        let key = (pid, alloc, fallback);
        if !self.by_key.contains_key(&key) {
            bound(&mut self.by_key);
            let comm = ctx.comm(pid);
            self.by_key.insert(
                key,
                Tally {
                    comm,
                    ..Tally::default()
                },
            );
        }
        let Some(t) = self.by_key.get_mut(&key) else {
            return;
        };
        t.fallbacks += 1;
        t.claimed += u64::from(field("change_ownership") == Some(1));
        t.alloc_order_max = t.alloc_order_max.max(field("alloc_order").unwrap_or(0));
        t.fallback_order_max = t
            .fallback_order_max
            .max(field("fallback_order").unwrap_or(0));
    }

    fn summarize(&mut self, ctx: &mut dyn Context, out: &mut Vec<Event>) {
        for ((pid, alloc, fallback), t) in self.by_key.drain() {
            let (alloc, fallback) = (migratetype(alloc), migratetype(fallback));
            let mixed = t.fallbacks - t.claimed;
            let mut e = Event::new(ctx.now(), ConceptId::SlabBuddy, "extfrag", Some(pid));
            // A block left of its own type with pages of another in it is what later
            // keeps a huge page from being assembled there.
            e.notable = mixed > 0;
            e.line = format!(
                "{} took {alloc} pages from {fallback} blocks {} times ({} claimed the block, {mixed} left it mixed; orders up to {} from blocks of order up to {})",
                who(t.comm.as_deref(), pid.into()),
                t.fallbacks,
                t.claimed,
                t.alloc_order_max,
                t.fallback_order_max,
            );
            out.push(
                e.with("pid", Some(pid))
                    .with("comm", t.comm)
                    .with("alloc_migratetype", Some(alloc))
                    .with("fallback_migratetype", Some(fallback))
                    .with("fallbacks", Some(t.fallbacks))
                    .with("claimed", Some(t.claimed))
                    .with("mixed", Some(mixed))
                    .with("alloc_order_max", Some(t.alloc_order_max))
                    .with("fallback_order_max", Some(t.fallback_order_max)),
            );
        }
    }

    fn finish(&mut self, ctx: &mut dyn Context, out: &mut Vec<Event>) {
        self.summarize(ctx, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::testing::{format, record, sample_at, Names};

    #[test]
    fn issue_16_fallbacks_are_counted_per_process_and_pair_of_types() {
        let f = format("kmem", "mm_page_alloc_extfrag");
        let mut d = Fallbacks::default();
        let hit = |order: i64, from: i64, claimed: i64| {
            record(
                &f,
                &[
                    ("pfn", 0x1dd000),
                    ("alloc_order", order),
                    ("fallback_order", from),
                    ("alloc_migratetype", 0),
                    ("fallback_migratetype", 1),
                    ("change_ownership", claimed),
                ],
            )
        };
        for raw in [hit(0, 10, 1), hit(0, 10, 1), hit(2, 3, 0)] {
            d.sample(
                &mut Names,
                0,
                &f,
                &sample_at(0, 7, 7, 5, &raw),
                &mut Vec::new(),
            );
        }
        let mut out = Vec::new();
        d.finish(&mut Names, &mut out);
        assert_eq!(out.len(), 1);
        let e = &out[0];
        assert_eq!(e.text_of("alloc_migratetype").as_deref(), Some("unmovable"));
        assert_eq!(
            e.text_of("fallback_migratetype").as_deref(),
            Some("movable")
        );
        assert_eq!(
            [
                "fallbacks",
                "claimed",
                "mixed",
                "alloc_order_max",
                "fallback_order_max"
            ]
            .map(|k| e.int_of(k)),
            [Some(3), Some(2), Some(1), Some(2), Some(10)]
        );
        assert!(e.notable);
        assert_eq!(e.text_of("comm").as_deref(), Some("p7"));
    }
}
