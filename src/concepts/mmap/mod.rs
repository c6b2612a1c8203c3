//! Memory mapping: the address space by kind of mapping.

pub mod lab;
pub mod learn;

/// This concept's entry in the registry: its lenses, rules, lab and explanation.
pub const CONCEPT: ConceptDef = ConceptDef {
    id: ConceptId::Mmap,
    system,
    process: lens,
    rules: &[],
    events: &[],
    lab: &lab::LAB,
    lesson: &learn::LESSON,
    explain: include_str!("explain.md"),
    read_next: include_str!("read.md"),
    lab_source: include_str!("lab.rs"),
};

use syslens_probe::smaps::MapKind;
use syslens_probe::Val;

use crate::model::figure::{Table, Unit, Value};
use crate::model::process::{ProcessView, Section};

use crate::model::system::SystemView;

use super::{ConceptDef, ConceptId};

/// A summary of the maps by kind, with virtual and resident sizes from smaps.
pub fn lens(v: &ProcessView) -> Section {
    let mut s = Section::new(ConceptId::Mmap);
    let maps = match &v.detail.maps {
        Ok(m) => m,
        Err(e) => {
            s.figure::<u64>("mappings", Err(e.clone()), Unit::Count, v.src("smaps"));
            return s;
        }
    };
    s.figure(
        "mappings",
        Ok(maps.len() as u64),
        Unit::Count,
        v.src("smaps"),
    );
    let mut t = Table::new(
        "mappings by kind",
        &[
            ("kind", Unit::None),
            ("count", Unit::Count),
            ("virtual", Unit::Bytes),
            ("rss", Unit::Bytes),
            ("pss", Unit::Bytes),
        ],
        v.src("smaps"),
    );
    for kind in MapKind::ALL {
        let of_kind: Vec<_> = maps.iter().filter(|m| m.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let total = |f: fn(&syslens_probe::smaps::MemUsage) -> &Val<u64>| -> Val<Value> {
            let mut sum = 0u64;
            for m in &of_kind {
                match m.usage.as_ref().map(f) {
                    Some(Ok(x)) => sum += x,
                    Some(Err(e)) => return Err(e.clone()),
                    None => {}
                }
            }
            Ok(Value::Unsigned(sum))
        };
        t.push(vec![
            Ok(kind.name().into()),
            Ok((of_kind.len() as u64).into()),
            Ok(of_kind.iter().map(|m| m.size()).sum::<u64>().into()),
            total(|u| &u.rss),
            total(|u| &u.pss),
        ]);
    }
    s.tables.push(t);
    s
}

/// Mapped file pages, shared memory, page tables and the per-process mapping limit.
pub fn system(v: &SystemView) -> Section {
    let mut s = Section::new(ConceptId::Mmap);
    s.figure(
        "mapped file pages (Mapped)",
        v.mem_field(|m| &m.mapped),
        Unit::Bytes,
        "/proc/meminfo",
    );
    s.figure(
        "shared memory and tmpfs (Shmem)",
        v.mem_field(|m| &m.shmem),
        Unit::Bytes,
        "/proc/meminfo",
    );
    s.figure(
        "page tables (PageTables)",
        v.mem_field(|m| &m.page_tables),
        Unit::Bytes,
        "/proc/meminfo",
    );
    s.figure(
        "mappings allowed per process",
        v.sysctl.max_map_count.clone(),
        Unit::Count,
        "/proc/sys/vm/max_map_count",
    );
    s
}
