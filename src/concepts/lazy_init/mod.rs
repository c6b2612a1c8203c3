//! Lazy initialization: memory is reserved at once, backed by pages only when touched.

pub mod lab;
pub mod learn;

/// This concept's entry in the registry: its lenses, rules, lab and explanation.
pub const CONCEPT: ConceptDef = ConceptDef {
    id: ConceptId::LazyInit,
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

use crate::model::figure::Unit;
use crate::model::process::{ratio, ProcessView, Section};

use crate::model::system::SystemView;

use super::{ConceptDef, ConceptId};

/// Virtual size against resident size: what was reserved but never touched.
pub fn lens(v: &ProcessView) -> Section {
    let mut s = Section::new(ConceptId::LazyInit);
    let src = v.src("status");
    let size = v.status_field(|s| &s.vm_size);
    let rss = v.status_field(|s| &s.vm_rss);
    s.figure("virtual size (VmSize)", size.clone(), Unit::Bytes, &src);
    s.figure("resident (VmRSS)", rss.clone(), Unit::Bytes, &src);
    s.figure(
        "reserved, never resident",
        size.clone()
            .and_then(|z| Ok(z.saturating_sub(rss.clone()?))),
        Unit::Bytes,
        "VmSize - VmRSS",
    );
    s.figure(
        "resident share of reserved",
        ratio(&rss, &size),
        Unit::Ratio,
        "VmRSS / VmSize",
    );
    s
}

/// Memory promised vs memory backed: the kernel commits more than it has because most
/// reservations are never touched.
pub fn system(v: &SystemView) -> Section {
    let mut s = Section::new(ConceptId::LazyInit);
    s.figure(
        "overcommit policy (vm.overcommit_memory)",
        v.sysctl.overcommit_memory.clone().map(|m| match m {
            0 => "0: heuristic",
            1 => "1: always grant",
            2 => "2: never beyond CommitLimit",
            _ => "unknown",
        }),
        Unit::None,
        "/proc/sys/vm/overcommit_memory",
    );
    let committed = v.mem_field(|m| &m.committed_as);
    let total = v.mem_field(|m| &m.mem_total);
    s.figure(
        "committed (Committed_AS)",
        committed.clone(),
        Unit::Bytes,
        "/proc/meminfo",
    );
    s.figure(
        "commit limit (CommitLimit)",
        v.mem_field(|m| &m.commit_limit),
        Unit::Bytes,
        "/proc/meminfo",
    );
    s.figure(
        "RAM (MemTotal)",
        total.clone(),
        Unit::Bytes,
        "/proc/meminfo",
    );
    s.figure(
        "committed share of RAM",
        ratio(&committed, &total),
        Unit::Ratio,
        "Committed_AS / MemTotal",
    );
    s.note("Committed_AS counts what processes reserved; most of it is never touched, so it is never backed by RAM");
    s
}
