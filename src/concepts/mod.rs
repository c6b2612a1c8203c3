//! The concept registry: the seventeen concepts of the catalogue, in its order. Every
//! face (lens, lab, doctor, explain, report) hangs off this list; each concept has a
//! room of its own in this directory.

use serde::Serialize;

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

/// A concept of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    pub id: ConceptId,
    /// The catalogue id, as used on the command line and in JSON.
    pub slug: &'static str,
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
    pub fn concept(self) -> &'static Concept {
        &CONCEPTS[self as usize]
    }

    pub fn slug(self) -> &'static str {
        self.concept().slug
    }

    pub fn title(self) -> &'static str {
        self.concept().title
    }

    pub fn from_slug(slug: &str) -> Option<ConceptId> {
        CONCEPTS.iter().find(|c| c.slug == slug).map(|c| c.id)
    }
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
