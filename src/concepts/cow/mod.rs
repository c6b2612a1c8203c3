//! Copy-on-write: pages shared after fork until one side writes.

pub mod lab;
pub mod learn;
pub mod rules;

/// This concept's entry in the registry: its lenses, rules, lab and explanation.
pub const CONCEPT: ConceptDef = ConceptDef {
    id: ConceptId::Cow,
    system,
    process: lens,
    rules: rules::RULES,
    events: &[],
    lab: &lab::LAB,
    lesson: &learn::LESSON,
    explain: include_str!("explain.md"),
    read_next: include_str!("read.md"),
    lab_source: include_str!("lab.rs"),
};

use syslens_probe::smaps::MemUsage;
use syslens_probe::{Missing, Val};

use crate::model::figure::Unit;
use crate::model::process::{ratio, sum, ProcessView, Section};

use crate::model::system::SystemView;

use super::{ConceptDef, ConceptId};

/// Totals of smaps over every mapping (one read of smaps serves this and the map lenses).
pub fn smaps_totals(v: &ProcessView) -> Val<MemUsage> {
    let maps = v.detail.maps.as_ref().map_err(Clone::clone)?;
    let mut total = MemUsage::default();
    for m in maps {
        if let Some(u) = &m.usage {
            total.add(u);
        }
    }
    if total.rss.is_err() {
        return Err(Missing::not_in_kernel("Rss lines in smaps"));
    }
    Ok(total)
}

/// How much of the process is shared with others, and how much is its own.
pub fn lens(v: &ProcessView) -> Section {
    let mut s = Section::new(ConceptId::Cow);
    let src = v.src("smaps");
    let totals = smaps_totals(v);
    let field = |f: fn(&MemUsage) -> &Val<u64>| {
        totals
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|t| f(t).clone())
    };
    let rss = field(|t| &t.rss);
    let shared = sum(&field(|t| &t.shared_clean), &field(|t| &t.shared_dirty));
    s.figure("resident (Rss)", rss.clone(), Unit::Bytes, &src);
    s.figure(
        "proportional share (Pss)",
        field(|t| &t.pss),
        Unit::Bytes,
        &src,
    );
    s.figure(
        "shared clean",
        field(|t| &t.shared_clean),
        Unit::Bytes,
        &src,
    );
    s.figure(
        "shared dirty",
        field(|t| &t.shared_dirty),
        Unit::Bytes,
        &src,
    );
    s.figure(
        "private clean",
        field(|t| &t.private_clean),
        Unit::Bytes,
        &src,
    );
    s.figure(
        "private dirty",
        field(|t| &t.private_dirty),
        Unit::Bytes,
        &src,
    );
    s.figure(
        "shared with other processes",
        ratio(&shared, &rss),
        Unit::Ratio,
        "(Shared_Clean + Shared_Dirty) / Rss",
    );
    if v.smaps_read {
        s.note("smaps was read once: the kernel walks the target's page tables under its mmap lock to build it");
    }
    s
}

/// A pointer to where copy-on-write shows: it is per process.
pub fn system(_v: &SystemView) -> Section {
    let mut s = Section::new(ConceptId::Cow);
    s.note("copy-on-write sharing is per process: Shared_* vs Private_* in syslens inspect PID, or PSS in system --processes --pss");
    s
}
