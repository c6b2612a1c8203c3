//! Memory leaks and fragmentation: the RSS trend over a watch window.

pub mod lab;
pub mod learn;
pub mod rules;

/// This concept's entry in the registry: its lenses, rules, lab and explanation.
pub const CONCEPT: ConceptDef = ConceptDef {
    id: ConceptId::LeaksFragmentation,
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

use crate::model::figure::{slope, Unit};
use crate::model::process::{ProcessView, Section};

use crate::model::system::SystemView;

use super::{ConceptDef, ConceptId};

/// The trend of RSS over the window.
pub fn lens(v: &ProcessView) -> Section {
    let mut s = Section::new(ConceptId::LeaksFragmentation);
    let t0 = v.first().at;
    let points: Vec<(f64, f64)> = v
        .window
        .iter()
        .filter_map(|w| {
            let rss = w.status.as_ref().ok()?.vm_rss.clone().ok()?;
            Some((w.at.duration_since(t0).as_secs_f64(), rss as f64))
        })
        .collect();
    s.figure(
        "RSS samples in the window",
        Ok(points.len() as u64),
        Unit::Count,
        v.src("status"),
    );
    s.figure(
        "window length",
        v.window_secs()
            .ok_or(syslens_probe::Missing::NotApplicable {
                why: "one sample only (--window 0)",
            }),
        Unit::Seconds,
        "first to last sample",
    );
    s.figure(
        "RSS trend (least-squares slope)",
        slope(&points),
        Unit::BytesPerSecond,
        "VmRSS over the window",
    );
    s.note("a short window shows the trend now; a leak is growth that persists over minutes (doctor watches longer)");
    s
}

/// The trend of MemAvailable over the window, and unreclaimable slab.
pub fn system(v: &SystemView) -> Section {
    let mut s = Section::new(ConceptId::LeaksFragmentation);
    let t0 = v.first().at;
    let points: Vec<(f64, f64)> = v
        .samples
        .iter()
        .filter_map(|x| {
            let avail = x.meminfo.as_ref().ok()?.mem_available.clone().ok()?;
            Some((x.at.duration_since(t0).as_secs_f64(), avail as f64))
        })
        .collect();
    s.figure(
        "MemAvailable trend",
        slope(&points),
        Unit::BytesPerSecond,
        "/proc/meminfo over the window",
    );
    s.figure(
        "unreclaimable kernel slab (SUnreclaim)",
        v.mem_field(|m| &m.s_unreclaim),
        Unit::Bytes,
        "/proc/meminfo",
    );
    s.note("a leak shows per process as RSS that keeps growing: syslens inspect PID --window 60");
    s
}
