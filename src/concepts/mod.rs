//! The concept registry: one room per concept (this directory), each exporting one
//! [`ConceptDef`] that holds all its faces: the system and per-process lenses, the
//! doctor rules, the lab and the explanation. [`REGISTRY`] is the one list of concepts;
//! every command iterates it, so a new concept is a room and a line here.

pub use crate::catalogue::ConceptId;
use crate::lab::LabDef;
use crate::learn::Lesson;
use crate::model::doctor::Rule;
use crate::model::event::EventSource;
use crate::model::figure::Section;
use crate::model::process::ProcessView;
use crate::model::system::SystemView;

pub mod cgroups_namespaces;
pub mod cow;
pub mod demand_paging;
pub mod fds_limits;
pub mod high_water_mark;
pub mod kernel_user;
pub mod lazy_init;
pub mod leaks_fragmentation;
pub mod locking;
pub mod mmap;
pub mod page_faults;
pub mod scheduling;
pub mod shared_libs;
pub mod signals;
pub mod slab_buddy;
pub mod storage;
pub mod swap_oom;

/// Everything syslens knows how to do with one concept.
#[derive(Debug)]
pub struct ConceptDef {
    /// Which concept of the catalogue.
    pub id: ConceptId,
    /// Its section of `syslens system`.
    pub system: fn(&SystemView) -> Section,
    /// Its section of `syslens inspect PID`.
    pub process: fn(&ProcessView) -> Section,
    /// The kernel events it reports to `syslens watch` (none for some concepts).
    pub events: &'static [EventSource],
    /// Its doctor rules (none for some concepts).
    pub rules: &'static [Rule],
    /// Its lab.
    pub lab: &'static LabDef,
    /// Its lesson: questions asked before the lab runs, graded by it (`syslens learn`).
    pub lesson: &'static Lesson,
    /// The explanation's paragraphs (`explain.md`).
    pub explain: &'static str,
    /// Where to read next (`read.md`), comma-separated at the top level.
    pub read_next: &'static str,
    /// The lab's source, whose lines between `explain-begin` and `explain-end` are
    /// quoted as the code that provokes the concept.
    pub lab_source: &'static str,
}

/// The seventeen concepts in catalogue order: `REGISTRY[id as usize].id == id`.
pub static REGISTRY: [&ConceptDef; 17] = [
    &lazy_init::CONCEPT,
    &high_water_mark::CONCEPT,
    &cow::CONCEPT,
    &page_faults::CONCEPT,
    &demand_paging::CONCEPT,
    &mmap::CONCEPT,
    &kernel_user::CONCEPT,
    &signals::CONCEPT,
    &fds_limits::CONCEPT,
    &scheduling::CONCEPT,
    &swap_oom::CONCEPT,
    &leaks_fragmentation::CONCEPT,
    &shared_libs::CONCEPT,
    &cgroups_namespaces::CONCEPT,
    &locking::CONCEPT,
    &slab_buddy::CONCEPT,
    &storage::CONCEPT,
];

/// The registry entry of a concept.
pub fn def(id: ConceptId) -> &'static ConceptDef {
    REGISTRY[id as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::CONCEPTS;

    #[test]
    fn registry_follows_the_catalogue_and_each_lab_is_its_concepts() {
        for (c, d) in CONCEPTS.iter().zip(REGISTRY.iter()) {
            assert_eq!(c.id, d.id, "{} out of order", c.slug);
            assert_eq!(d.lab.id, d.id, "{}: lab of another concept", c.slug);
            assert_eq!(def(c.id).id, c.id);
        }
    }
}
