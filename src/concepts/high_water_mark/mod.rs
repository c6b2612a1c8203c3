//! The high-water-mark effect: freed memory often stays with the process.

pub mod events;
pub mod lab;
pub mod learn;
pub mod rules;

/// This concept's entry in the registry: its lenses, rules, lab and explanation.
pub const CONCEPT: ConceptDef = ConceptDef {
    id: ConceptId::HighWaterMark,
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

use syslens_probe::Val;

use crate::model::figure::Unit;
use crate::model::process::{ProcessView, Section};

use crate::model::system::SystemView;

use super::{ConceptDef, ConceptId};

/// Current resident memory beside the peaks the kernel recorded.
pub fn lens(v: &ProcessView) -> Section {
    let mut s = Section::new(ConceptId::HighWaterMark);
    let src = v.src("status");
    let rss = v.status_field(|s| &s.vm_rss);
    let hwm = v.status_field(|s| &s.vm_hwm);
    s.figure("resident now (VmRSS)", rss.clone(), Unit::Bytes, &src);
    s.figure("resident peak (VmHWM)", hwm.clone(), Unit::Bytes, &src);
    s.figure(
        "virtual peak (VmPeak)",
        v.status_field(|s| &s.vm_peak),
        Unit::Bytes,
        &src,
    );
    let gap: Val<u64> = hwm.and_then(|h| Ok(h.saturating_sub(rss?)));
    s.figure(
        "below the peak (VmHWM - VmRSS)",
        gap,
        Unit::Bytes,
        "VmHWM - VmRSS",
    );
    match &v.memory_cgroup {
        Ok(m) => {
            let (usage_file, peak_file) = match m.dir.version {
                syslens_probe::cgroup::CgroupVersion::V2 => ("memory.current", "memory.peak"),
                syslens_probe::cgroup::CgroupVersion::V1 => {
                    ("memory.usage_in_bytes", "memory.max_usage_in_bytes")
                }
            };
            s.figure(
                "cgroup usage now",
                m.usage.clone(),
                Unit::Bytes,
                format!("{}/{usage_file}", m.dir.host_dir),
            );
            s.figure(
                "cgroup peak",
                m.peak.clone(),
                Unit::Bytes,
                format!("{}/{peak_file}", m.dir.host_dir),
            );
        }
        Err(e) => s.figure::<u64>("cgroup peak", Err(e.clone()), Unit::Bytes, "memory cgroup"),
    }
    s
}

/// The peak of the scoped cgroup (`--cgroup`), beside its usage now.
pub fn system(v: &SystemView) -> Section {
    let mut s = Section::new(ConceptId::HighWaterMark);
    match v.scope.as_ref().map(|c| &c.memory) {
        Some(Ok(m)) => {
            s.figure("cgroup usage now", m.usage.clone(), Unit::Bytes, &m.dir.host_dir);
            s.figure("cgroup peak", m.peak.clone(), Unit::Bytes, &m.dir.host_dir);
            s.figure("cgroup working set", m.working_set.clone(), Unit::Bytes, "usage - inactive_file");
        }
        Some(Err(e)) => s.figure::<u64>("cgroup peak", Err(e.clone()), Unit::Bytes, "memory controller"),
        None => s.note("peaks are per process (VmHWM: syslens inspect PID) and per cgroup (syslens system --cgroup PATH)"),
    }
    s
}
