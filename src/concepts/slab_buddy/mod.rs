//! The kernel's slab and buddy allocators: system-wide, not per process.

pub mod events;
pub mod lab;
pub mod learn;
pub mod model;
pub mod rules;

/// This concept's entry in the registry: its lenses, rules, lab and explanation.
pub const CONCEPT: ConceptDef = ConceptDef {
    id: ConceptId::SlabBuddy,
    system,
    process: lens,
    rules: rules::RULES,
    events: events::EVENTS,
    lab: &lab::LAB,
    lesson: &learn::LESSON,
    explain: include_str!("explain.md"),
    read_next: include_str!("read.md"),
    lab_source: include_str!("lab.rs"),
};

use crate::model::figure::{Table, Unit, Value};
use crate::model::process::{ProcessView, Section};

use crate::model::system::SystemView;

use super::{ConceptDef, ConceptId};

/// A pointer to the system view: the allocators serve the kernel, not one process.
pub fn lens(_v: &ProcessView) -> Section {
    let mut s = Section::new(ConceptId::SlabBuddy);
    s.note("the slab and buddy allocators serve the kernel, not one process: see /proc/buddyinfo and /proc/slabinfo");
    s
}

/// How many caches `system` lists, by memory.
const TOP_SLABS: usize = 10;

/// Free blocks per order with the unusable index, slab totals, dentries and the largest caches.
pub fn system(v: &SystemView) -> Section {
    let mut s = Section::new(ConceptId::SlabBuddy);
    match &v.buddy {
        Ok(zones) => {
            let orders = zones.iter().map(|z| z.free_blocks.len()).max().unwrap_or(0);
            let mut cols: Vec<(String, Unit)> =
                vec![("zone".into(), Unit::None), ("".into(), Unit::None)];
            cols.extend((0..orders).map(|o| (format!("{o}"), Unit::None)));
            let names: Vec<(&str, Unit)> = cols.iter().map(|(n, u)| (n.as_str(), *u)).collect();
            let mut t = Table::new(
                "free blocks per order, and the unusable free space index (0 = all usable)",
                &names,
                "/proc/buddyinfo",
            );
            for z in zones {
                let mut row: Vec<syslens_probe::Val<Value>> = vec![
                    Ok(format!("{}/{}", z.node, z.zone).into()),
                    Ok("blocks".into()),
                ];
                row.extend(z.free_blocks.iter().map(|b| Ok(Value::Unsigned(*b))));
                t.push(row);
                let mut idx: Vec<syslens_probe::Val<Value>> =
                    vec![Ok("".into()), Ok("unusable".into())];
                idx.extend(z.unusable_index().into_iter().map(|u| {
                    u.map(|x| Value::Text(format!("{x:.2}"))).ok_or(
                        syslens_probe::Missing::NotApplicable {
                            why: "no free pages",
                        },
                    )
                }));
                t.push(idx);
            }
            s.tables.push(t);
        }
        Err(e) => s.figure::<u64>(
            "buddy allocator",
            Err(e.clone()),
            Unit::None,
            "/proc/buddyinfo",
        ),
    }
    s.figure(
        "slab, reclaimable (SReclaimable)",
        v.mem_field(|m| &m.s_reclaimable),
        Unit::Bytes,
        "/proc/meminfo",
    );
    s.figure(
        "slab, unreclaimable (SUnreclaim)",
        v.mem_field(|m| &m.s_unreclaim),
        Unit::Bytes,
        "/proc/meminfo",
    );
    match &v.dentry {
        Ok(d) => {
            s.figure(
                "dentries",
                Ok(d.nr_dentry),
                Unit::Count,
                "/proc/sys/fs/dentry-state",
            );
            s.figure(
                "negative dentries",
                d.nr_negative.clone(),
                Unit::Count,
                "/proc/sys/fs/dentry-state",
            );
        }
        Err(e) => s.figure::<u64>(
            "dentries",
            Err(e.clone()),
            Unit::Count,
            "/proc/sys/fs/dentry-state",
        ),
    }
    match &v.slabs {
        Ok(caches) => {
            let mut sorted: Vec<_> = caches.iter().collect();
            sorted.sort_by_key(|c| std::cmp::Reverse(c.bytes(v.page_size)));
            let mut t = Table::new(
                "top slab caches by memory",
                &[
                    ("cache", Unit::None),
                    ("memory", Unit::Bytes),
                    ("objects", Unit::Count),
                    ("active", Unit::Count),
                    ("object size", Unit::Bytes),
                ],
                "/proc/slabinfo",
            );
            for c in sorted.into_iter().take(TOP_SLABS) {
                t.push(vec![
                    Ok(c.name.as_str().into()),
                    Ok(c.bytes(v.page_size).into()),
                    Ok(c.num_objs.into()),
                    Ok(c.active_objs.into()),
                    Ok(c.obj_size.into()),
                ]);
            }
            s.tables.push(t);
        }
        Err(e) => s.figure::<u64>("slab caches", Err(e.clone()), Unit::None, "/proc/slabinfo"),
    }
    s
}
