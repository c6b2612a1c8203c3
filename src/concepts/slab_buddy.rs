//! The kernel's slab and buddy allocators: system-wide, not per process.

use crate::lens::{ProcessView, Section};

use super::ConceptId;

pub fn lens(_v: &ProcessView) -> Section {
    let mut s = Section::new(ConceptId::SlabBuddy);
    s.note("the slab and buddy allocators serve the kernel, not one process: see /proc/buddyinfo and /proc/slabinfo");
    s
}
