//! Demand paging: a mapping is backed only where it is touched.

pub mod lab;
pub mod learn;

/// This concept's entry in the registry: its lenses, rules, lab and explanation.
pub const CONCEPT: ConceptDef = ConceptDef {
    id: ConceptId::DemandPaging,
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
use crate::model::process::{ProcessView, Section};

use crate::model::system::SystemView;

use super::{ConceptDef, ConceptId};

/// Reserved against resident, and what the resident pages are backed by.
pub fn lens(v: &ProcessView) -> Section {
    let mut s = Section::new(ConceptId::DemandPaging);
    let src = v.src("status");
    s.figure(
        "virtual size (VmSize)",
        v.status_field(|s| &s.vm_size),
        Unit::Bytes,
        &src,
    );
    s.figure(
        "resident (VmRSS)",
        v.status_field(|s| &s.vm_rss),
        Unit::Bytes,
        &src,
    );
    s.figure(
        "resident anonymous (RssAnon)",
        v.status_field(|s| &s.rss_anon),
        Unit::Bytes,
        &src,
    );
    s.figure(
        "resident file-backed (RssFile)",
        v.status_field(|s| &s.rss_file),
        Unit::Bytes,
        &src,
    );
    s.figure(
        "resident shared memory (RssShmem)",
        v.status_field(|s| &s.rss_shmem),
        Unit::Bytes,
        &src,
    );
    s.note("VmRSS is a per-CPU counter since 6.2 and can lag by a few pages; smaps is exact");
    s
}

/// What backs the machine's memory: page cache, file and anonymous pages, what is available.
pub fn system(v: &SystemView) -> Section {
    let mut s = Section::new(ConceptId::DemandPaging);
    let src = "/proc/meminfo";
    s.figure(
        "page cache (Cached)",
        v.mem_field(|m| &m.cached),
        Unit::Bytes,
        src,
    );
    s.figure(
        "file pages in use (Active(file))",
        v.mem_field(|m| &m.active_file),
        Unit::Bytes,
        src,
    );
    s.figure(
        "file pages to reclaim (Inactive(file))",
        v.mem_field(|m| &m.inactive_file),
        Unit::Bytes,
        src,
    );
    s.figure(
        "mapped file pages (Mapped)",
        v.mem_field(|m| &m.mapped),
        Unit::Bytes,
        src,
    );
    s.figure(
        "anonymous pages (AnonPages)",
        v.mem_field(|m| &m.anon_pages),
        Unit::Bytes,
        src,
    );
    s.figure(
        "available (MemAvailable)",
        v.mem_field(|m| &m.mem_available),
        Unit::Bytes,
        src,
    );
    s
}
