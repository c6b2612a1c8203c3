//! `syslens explain`: each concept in a few paragraphs, the lines of its lab that
//! provoke it (quoted from the lab's own source, so they cannot drift), and where to
//! read next. The text lives beside the concept's code, in its room.

use serde::Serialize;

use crate::concepts::{self, ConceptId};

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub concept: ConceptId,
    pub title: &'static str,
    pub paragraphs: Vec<&'static str>,
    /// The lines of the lab between its explain-begin and explain-end markers.
    pub code: String,
    pub code_file: String,
    pub read_next: Vec<&'static str>,
}

fn texts(id: ConceptId) -> (&'static str, &'static str, &'static str) {
    use concepts::*;
    match id {
        ConceptId::LazyInit => (
            lazy_init::EXPLAIN,
            lazy_init::READ_NEXT,
            lazy_init::LAB_SOURCE,
        ),
        ConceptId::HighWaterMark => (
            high_water_mark::EXPLAIN,
            high_water_mark::READ_NEXT,
            high_water_mark::LAB_SOURCE,
        ),
        ConceptId::Cow => (cow::EXPLAIN, cow::READ_NEXT, cow::LAB_SOURCE),
        ConceptId::PageFaults => (
            page_faults::EXPLAIN,
            page_faults::READ_NEXT,
            page_faults::LAB_SOURCE,
        ),
        ConceptId::DemandPaging => (
            demand_paging::EXPLAIN,
            demand_paging::READ_NEXT,
            demand_paging::LAB_SOURCE,
        ),
        ConceptId::Mmap => (mmap::EXPLAIN, mmap::READ_NEXT, mmap::LAB_SOURCE),
        ConceptId::KernelUser => (
            kernel_user::EXPLAIN,
            kernel_user::READ_NEXT,
            kernel_user::LAB_SOURCE,
        ),
        ConceptId::Signals => (signals::EXPLAIN, signals::READ_NEXT, signals::LAB_SOURCE),
        ConceptId::FdsLimits => (
            fds_limits::EXPLAIN,
            fds_limits::READ_NEXT,
            fds_limits::LAB_SOURCE,
        ),
        ConceptId::Scheduling => (
            scheduling::EXPLAIN,
            scheduling::READ_NEXT,
            scheduling::LAB_SOURCE,
        ),
        ConceptId::SwapOom => (swap_oom::EXPLAIN, swap_oom::READ_NEXT, swap_oom::LAB_SOURCE),
        ConceptId::LeaksFragmentation => (
            leaks_fragmentation::EXPLAIN,
            leaks_fragmentation::READ_NEXT,
            leaks_fragmentation::LAB_SOURCE,
        ),
        ConceptId::SharedLibs => (
            shared_libs::EXPLAIN,
            shared_libs::READ_NEXT,
            shared_libs::LAB_SOURCE,
        ),
        ConceptId::CgroupsNamespaces => (
            cgroups_namespaces::EXPLAIN,
            cgroups_namespaces::READ_NEXT,
            cgroups_namespaces::LAB_SOURCE,
        ),
        ConceptId::Locking => (locking::EXPLAIN, locking::READ_NEXT, locking::LAB_SOURCE),
        ConceptId::SlabBuddy => (
            slab_buddy::EXPLAIN,
            slab_buddy::READ_NEXT,
            slab_buddy::LAB_SOURCE,
        ),
        ConceptId::Storage => (storage::EXPLAIN, storage::READ_NEXT, storage::LAB_SOURCE),
    }
}

/// The marked lines of a lab's source, with the common indentation removed.
pub fn marked_lines(source: &str) -> String {
    let lines: Vec<&str> = source
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("// explain-begin"))
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with("// explain-end"))
        .collect();
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

fn dir_name(id: ConceptId) -> String {
    id.slug().replace('-', "_")
}

pub fn explanation(id: ConceptId) -> Explanation {
    let (text, read, source) = texts(id);
    Explanation {
        concept: id,
        title: id.title(),
        paragraphs: text
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect(),
        code: marked_lines(source),
        code_file: format!("src/concepts/{}/lab.rs", dir_name(id)),
        read_next: read.trim().split(", ").collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::concepts::CONCEPTS;

    #[test]
    fn every_concept_has_text_code_and_reading() {
        for c in &CONCEPTS {
            let e = explanation(c.id);
            assert!(e.paragraphs.len() >= 2, "{}: too short", c.slug);
            assert!(
                e.paragraphs
                    .iter()
                    .any(|p| p.contains(&format!("syslens lab {}", c.slug))),
                "{}: must name its lab",
                c.slug
            );
            assert!(
                e.code.lines().count() >= 2,
                "{}: no marked lab code",
                c.slug
            );
            assert!(!e.code.contains("explain-"), "{}: markers leaked", c.slug);
            assert!(
                e.read_next
                    .iter()
                    .any(|r| r.contains('(') || r.contains("Documentation/")),
                "{}: {:?}",
                c.slug,
                e.read_next
            );
        }
    }

    #[test]
    fn marked_lines_are_dedented() {
        let src = "fn a() {\n    // explain-begin: x\n    let a = 1;\n        let b = 2;\n    // explain-end\n}\n";
        assert_eq!(marked_lines(src), "let a = 1;\n    let b = 2;");
        assert_eq!(marked_lines("no markers"), "");
    }
}
