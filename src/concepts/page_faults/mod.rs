//! Page faults: minor ones map a page already in memory, major ones wait for I/O.

pub mod events;
pub mod lab;
pub mod learn;
pub mod rules;

/// This concept's entry in the registry: its lenses, rules, lab and explanation.
pub const CONCEPT: ConceptDef = ConceptDef {
    id: ConceptId::PageFaults,
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

use crate::model::figure::{rate, Unit};
use crate::model::process::{ProcessView, Section};

use crate::model::system::SystemView;

use super::{ConceptDef, ConceptId};

/// Minor and major faults since the process started, and their rates over the window.
pub fn lens(v: &ProcessView) -> Section {
    let mut s = Section::new(ConceptId::PageFaults);
    let src = v.src("stat");
    let first = v.first();
    let last = v.last();
    // Totals as of the end of the window (the rates below are over it).
    let newest = last.clone().unwrap_or(first);
    s.figure(
        "minor faults (total)",
        newest.stat_counter(|s| s.minflt).map(|c| c.value),
        Unit::Count,
        &src,
    );
    s.figure(
        "major faults (total)",
        newest.stat_counter(|s| s.majflt).map(|c| c.value),
        Unit::Count,
        &src,
    );
    for (name, f) in [
        (
            "minor faults rate",
            (|s: &syslens_probe::stat::Stat| s.minflt) as fn(&_) -> u64,
        ),
        ("major faults rate", |s| s.majflt),
    ] {
        let r = last
            .clone()
            .and_then(|l| rate(first.stat_counter(f), l.stat_counter(f)));
        s.figure(name, r, Unit::PerSecond, format!("{src}, two samples"));
    }
    s
}

/// Faults since boot, and their rates over the window.
pub fn system(v: &SystemView) -> Section {
    let mut s = Section::new(ConceptId::PageFaults);
    s.figure(
        "page faults since boot (pgfault)",
        v.vm_total(|x| &x.pgfault),
        Unit::Count,
        "/proc/vmstat",
    );
    s.figure(
        "major faults since boot (pgmajfault)",
        v.vm_total(|x| &x.pgmajfault),
        Unit::Count,
        "/proc/vmstat",
    );
    s.figure(
        "page faults rate",
        v.vm_rate(|x| &x.pgfault),
        Unit::PerSecond,
        "/proc/vmstat, two samples",
    );
    s.figure(
        "major faults rate",
        v.vm_rate(|x| &x.pgmajfault),
        Unit::PerSecond,
        "/proc/vmstat, two samples",
    );
    s
}
