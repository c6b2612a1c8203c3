//! The catalogue: the seventeen concepts' ids, names and one-line summaries, in the
//! order of `CONCEPTS.md`. It imports nothing of syslens, so every layer can name a
//! concept; what a concept *does* hangs off the registry in `concepts`.

use serde::Serialize;

/// A concept of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)] // the variants are the catalogue's names, spelled out in CONCEPTS
pub enum ConceptId {
    LazyInit,
    HighWaterMark,
    Cow,
    PageFaults,
    DemandPaging,
    Mmap,
    KernelUser,
    Signals,
    FdsLimits,
    Scheduling,
    SwapOom,
    LeaksFragmentation,
    SharedLibs,
    CgroupsNamespaces,
    Locking,
    SlabBuddy,
    Storage,
}

/// The registry entry of a concept.
#[derive(Debug)]
pub struct Concept {
    /// The id, equal to the entry's index in [`CONCEPTS`].
    pub id: ConceptId,
    /// The catalogue id, as used on the command line and in JSON.
    pub slug: &'static str,
    /// The title, as headings show it.
    pub title: &'static str,
    /// One line: what the concept is about, for listings.
    pub summary: &'static str,
}

/// The seventeen concepts, in catalogue order.
pub const CONCEPTS: [Concept; 17] = [
    Concept {
        id: ConceptId::LazyInit,
        slug: "lazy-init",
        title: "Lazy initialization",
        summary: "memory is reserved at once but backed by pages only when first touched",
    },
    Concept {
        id: ConceptId::HighWaterMark,
        slug: "high-water-mark",
        title: "The high-water-mark effect",
        summary: "freed memory often stays with the process: RSS remembers the peak",
    },
    Concept {
        id: ConceptId::Cow,
        slug: "cow",
        title: "Copy-on-write",
        summary: "fork shares pages until one side writes; then each write copies a page",
    },
    Concept {
        id: ConceptId::PageFaults,
        slug: "page-faults",
        title: "Page faults",
        summary: "minor faults map a page already in memory; major faults wait for I/O",
    },
    Concept {
        id: ConceptId::DemandPaging,
        slug: "demand-paging",
        title: "Demand paging",
        summary: "a mapped file is read only when touched, with readahead around the touch",
    },
    Concept {
        id: ConceptId::Mmap,
        slug: "mmap",
        title: "Memory mapping",
        summary: "files and memory mapped into the address space, shared or private",
    },
    Concept {
        id: ConceptId::KernelUser,
        slug: "kernel-user",
        title: "Kernel vs user space",
        summary: "system calls cross into the kernel; the vDSO avoids the crossing",
    },
    Concept {
        id: ConceptId::Signals,
        slug: "signals",
        title: "Signals and interrupts",
        summary: "asynchronous notifications: pending, blocked, ignored, caught, per thread",
    },
    Concept {
        id: ConceptId::FdsLimits,
        slug: "fds-limits",
        title: "File descriptors and resource limits",
        summary: "fds are small numbers capped by RLIMIT_NOFILE; they leak across exec",
    },
    Concept {
        id: ConceptId::Scheduling,
        slug: "scheduling",
        title: "Process scheduling and context switching",
        summary: "who runs when: switches, run-queue delay, nice weights, affinity",
    },
    Concept {
        id: ConceptId::SwapOom,
        slug: "swap-oom",
        title: "Swapping and the OOM killer",
        summary: "when memory runs out: swap, reclaim, and the process the kernel kills",
    },
    Concept {
        id: ConceptId::LeaksFragmentation,
        slug: "leaks-fragmentation",
        title: "Memory leaks and fragmentation",
        summary: "memory that grows without bound, or that cannot be returned",
    },
    Concept {
        id: ConceptId::SharedLibs,
        slug: "shared-libs",
        title: "Shared libraries and dynamic linking",
        summary: "code mapped once and shared; symbols bound lazily or at start",
    },
    Concept {
        id: ConceptId::CgroupsNamespaces,
        slug: "cgroups-namespaces",
        title: "Cgroups and namespaces",
        summary: "limits on groups of processes, and private views of the system",
    },
    Concept {
        id: ConceptId::Locking,
        slug: "locking",
        title: "Locking, race conditions and deadlocks",
        summary: "threads waiting on futexes and file locks; lost updates without them",
    },
    Concept {
        id: ConceptId::SlabBuddy,
        slug: "slab-buddy",
        title: "Kernel slab allocator and buddy system",
        summary: "how the kernel allocates its own memory: page orders and object caches",
    },
    Concept {
        id: ConceptId::Storage,
        slug: "storage",
        title: "Ephemeral vs persistent storage",
        summary: "tmpfs lives in RAM; disk survives reboot only once fsync'd",
    },
];

impl ConceptId {
    /// The catalogue entry of this id.
    pub fn concept(self) -> &'static Concept {
        &CONCEPTS[self as usize]
    }

    /// The id as written on the command line and in JSON (`lazy-init`).
    pub fn slug(self) -> &'static str {
        self.concept().slug
    }

    /// The concept's title (`Lazy initialization`).
    pub fn title(self) -> &'static str {
        self.concept().title
    }

    /// The concept with exactly this slug.
    pub fn from_slug(slug: &str) -> Option<ConceptId> {
        CONCEPTS.iter().find(|c| c.slug == slug).map(|c| c.id)
    }

    /// The concept a person meant: case does not matter and `_` is `-` (`CoW`,
    /// `high_water_mark`). Otherwise the error names the nearest id, if one is close.
    pub fn lookup(name: &str) -> Result<ConceptId, UnknownConcept> {
        let wanted = name.trim().to_ascii_lowercase().replace('_', "-");
        if let Some(id) = ConceptId::from_slug(&wanted) {
            return Ok(id);
        }
        let nearest = CONCEPTS
            .iter()
            .map(|c| (edit_distance(&wanted, c.slug), c.slug))
            .min()
            .filter(|(d, slug)| *d <= 3.max(slug.len() / 4))
            .map(|(_, slug)| slug);
        Err(UnknownConcept {
            name: name.to_owned(),
            nearest,
        })
    }
}

/// A name that is no concept id, with the nearest id when one is close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownConcept {
    /// What was asked for.
    pub name: String,
    /// The closest id by edit distance, when close enough to be a typo.
    pub nearest: Option<&'static str>,
}

impl std::fmt::Display for UnknownConcept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no concept {:?}", self.name)?;
        match self.nearest {
            Some(n) => write!(f, "; did you mean {n}?"),
            None => write!(f, " (syslens concepts lists them)"),
        }
    }
}

/// Levenshtein distance over bytes (ids are ASCII).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

impl Serialize for ConceptId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.slug())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_in_catalogue_order_and_indexed_by_id() {
        for (i, c) in CONCEPTS.iter().enumerate() {
            assert_eq!(c.id as usize, i, "{} out of order", c.slug);
            assert_eq!(ConceptId::from_slug(c.slug), Some(c.id));
        }
        assert_eq!(CONCEPTS.len(), 17);
        assert_eq!(ConceptId::from_slug("nope"), None);
    }

    #[test]
    fn issue_19_ids_are_case_insensitive_and_underscores_are_dashes() {
        assert_eq!(ConceptId::lookup("CoW"), Ok(ConceptId::Cow));
        assert_eq!(
            ConceptId::lookup("high_water_mark"),
            Ok(ConceptId::HighWaterMark)
        );
        let typo = ConceptId::lookup("singals").unwrap_err();
        assert_eq!(typo.nearest, Some("signals"));
        assert!(typo.to_string().contains("did you mean signals?"));
        assert_eq!(ConceptId::lookup("zzzzzzzzzzzz").unwrap_err().nearest, None);
    }

    #[test]
    fn slugs_match_the_catalogue() {
        let catalogue = [
            "lazy-init",
            "high-water-mark",
            "cow",
            "page-faults",
            "demand-paging",
            "mmap",
            "kernel-user",
            "signals",
            "fds-limits",
            "scheduling",
            "swap-oom",
            "leaks-fragmentation",
            "shared-libs",
            "cgroups-namespaces",
            "locking",
            "slab-buddy",
            "storage",
        ];
        let slugs: Vec<&str> = CONCEPTS.iter().map(|c| c.slug).collect();
        assert_eq!(slugs, catalogue);
    }
}
