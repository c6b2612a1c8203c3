//! User-space models of the kernel's two allocators, small enough to read: a binary
//! buddy allocator of pages and a slab cache of fixed-size objects. The lab replays a
//! workload on them to show internal fragmentation (rounding up inside a block) and
//! external fragmentation (free memory split into blocks too small to use).

use std::collections::{BTreeSet, HashMap};

use syslens_probe::system::BuddyZone;

/// A buddy allocator over 2^max_order pages. Blocks are named by their first page.
#[derive(Debug, Clone)]
pub struct Buddy {
    max_order: u32,
    free: Vec<BTreeSet<usize>>,
    allocated: HashMap<usize, u32>,
}

impl Buddy {
    /// One free block of 2^max_order pages, nothing allocated.
    pub fn new(max_order: u32) -> Buddy {
        let mut free = vec![BTreeSet::new(); max_order as usize + 1];
        free[max_order as usize].insert(0);
        Buddy {
            max_order,
            free,
            allocated: HashMap::new(),
        }
    }

    /// Allocates 2^order pages: the smallest free block that fits, split in halves
    /// down to the order asked for (the unused halves go to the free lists).
    pub fn alloc(&mut self, order: u32) -> Option<usize> {
        if order > self.max_order {
            return None;
        }
        let from = (order..=self.max_order).find(|o| !self.free[*o as usize].is_empty())?;
        let block = self.free[from as usize].pop_first()?;
        for o in (order..from).rev() {
            self.free[o as usize].insert(block + (1 << o));
        }
        self.allocated.insert(block, order);
        Some(block)
    }

    /// Frees a block and merges it with its buddy (the block at `start ^ 2^order`)
    /// for as long as the buddy is free too.
    pub fn free(&mut self, start: usize) -> bool {
        let Some(mut order) = self.allocated.remove(&start) else {
            return false;
        };
        let mut start = start;
        while order < self.max_order && self.free[order as usize].remove(&(start ^ (1 << order))) {
            start &= !(1 << order);
            order += 1;
        }
        self.free[order as usize].insert(start);
        true
    }

    /// Free blocks per order, as /proc/buddyinfo counts them.
    pub fn free_blocks(&self) -> Vec<u64> {
        self.free.iter().map(|s| s.len() as u64).collect()
    }

    /// The unusable free space index per order, computed as for the kernel's zones.
    pub fn unusable_index(&self) -> Vec<Option<f64>> {
        BuddyZone {
            node: 0,
            zone: "model".into(),
            free_blocks: self.free_blocks(),
        }
        .unusable_index()
    }

    /// Allocated blocks as (first page, pages).
    pub fn blocks(&self) -> Vec<(usize, usize)> {
        self.allocated
            .iter()
            .map(|(s, o)| (*s, 1usize << o))
            .collect()
    }

    /// Pages the allocator manages: 2^max_order.
    pub fn total_pages(&self) -> usize {
        1 << self.max_order
    }

    /// Pages in free blocks.
    pub fn free_pages(&self) -> usize {
        self.free
            .iter()
            .enumerate()
            .map(|(o, s)| s.len() << o)
            .sum()
    }
}

/// A slab cache: objects of one size in slabs of `slab_pages` pages; the tail of each
/// slab that no object fits in is lost.
#[derive(Debug, Clone)]
pub struct Slab {
    /// The size of one object, in bytes.
    pub object: usize,
    /// The size of one slab, in bytes.
    pub slab_bytes: usize,
    /// Live objects per slab.
    slabs: Vec<usize>,
}

impl Slab {
    /// An empty cache of `object`-byte objects in slabs of `slab_pages` pages of `page` bytes.
    pub fn new(object: usize, slab_pages: usize, page: usize) -> Slab {
        Slab {
            object: object.max(1),
            slab_bytes: slab_pages * page,
            slabs: Vec::new(),
        }
    }

    /// Objects per slab, as slabinfo's <objperslab> says.
    pub fn per_slab(&self) -> usize {
        self.slab_bytes / self.object
    }

    /// Allocates one object: in the first slab with room, else a new slab. Returns
    /// the slab's index.
    pub fn alloc(&mut self) -> usize {
        let per = self.per_slab();
        match self.slabs.iter().position(|n| *n < per) {
            Some(i) => {
                self.slabs[i] += 1;
                i
            }
            None => {
                self.slabs.push(1);
                self.slabs.len() - 1
            }
        }
    }

    /// Frees one object of slab `i`; an empty slab goes back (to the buddy allocator).
    pub fn free(&mut self, i: usize) -> bool {
        match self.slabs.get_mut(i) {
            Some(n) if *n > 0 => {
                *n -= 1;
                while self.slabs.last() == Some(&0) {
                    self.slabs.pop();
                }
                true
            }
            _ => false,
        }
    }

    /// Live objects.
    pub fn live(&self) -> usize {
        self.slabs.iter().sum()
    }

    /// Slabs allocated.
    pub fn slabs(&self) -> usize {
        self.slabs.len()
    }

    /// Bytes held by the cache that hold no object (free slots and slab tails).
    pub fn wasted_bytes(&self) -> usize {
        self.slabs() * self.slab_bytes - self.live() * self.object
    }
}

/// A deterministic pseudo-random sequence (xorshift64*), so a replay is repeatable.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A sequence from `seed` (0 is taken as 1: xorshift stays at 0).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (below 1 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// kmalloc's size classes: requests round up to the next power of two, from 8 bytes.
pub fn size_class(bytes: usize) -> usize {
    bytes.max(8).next_power_of_two()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn splits_and_coalesces() {
        let mut b = Buddy::new(4);
        let a = b.alloc(0).unwrap();
        assert_eq!(b.free_blocks(), vec![1, 1, 1, 1, 0]);
        assert!(b.free(a));
        assert_eq!(b.free_blocks(), vec![0, 0, 0, 0, 1]);
        assert!(!b.free(a), "double free is refused");
        assert_eq!(b.alloc(5), None);
    }

    #[test]
    fn slab_arithmetic() {
        let s = Slab::new(192, 1, 4096);
        assert_eq!(s.per_slab(), 21, "4096 / 192, as slabinfo says for dentry");
        let mut s = Slab::new(1000, 1, 4096);
        for _ in 0..5 {
            s.alloc();
        }
        assert_eq!(s.slabs(), 2);
        assert_eq!(s.wasted_bytes(), 2 * 4096 - 5 * 1000);
    }

    proptest! {
        #[test]
        fn buddy_blocks_never_overlap_and_all_frees_coalesce(ops in proptest::collection::vec((0u32..5, any::<bool>(), any::<u16>()), 1..200)) {
            let mut b = Buddy::new(8);
            let mut live: Vec<usize> = Vec::new();
            for (order, free, pick) in ops {
                if free && !live.is_empty() {
                    let s = live.swap_remove(pick as usize % live.len());
                    prop_assert!(b.free(s));
                } else if let Some(s) = b.alloc(order) {
                    live.push(s);
                }
                let mut blocks = b.blocks();
                blocks.sort_unstable();
                for w in blocks.windows(2) {
                    prop_assert!(w[0].0 + w[0].1 <= w[1].0, "overlap {:?}", w);
                }
                let used: usize = blocks.iter().map(|x| x.1).sum();
                prop_assert_eq!(used + b.free_pages(), b.total_pages());
            }
            for s in live {
                prop_assert!(b.free(s));
            }
            let mut one = vec![0u64; 9];
            one[8] = 1;
            prop_assert_eq!(b.free_blocks(), one);
        }

        #[test]
        fn slab_counts_add_up(size in 8usize..4096, ops in proptest::collection::vec(any::<bool>(), 1..300)) {
            let mut s = Slab::new(size, 2, 4096);
            let mut held: Vec<usize> = Vec::new();
            for alloc in ops {
                if alloc || held.is_empty() {
                    held.push(s.alloc());
                } else {
                    let i = held.pop().unwrap();
                    prop_assert!(s.free(i));
                }
                prop_assert_eq!(s.live(), held.len());
                prop_assert!(s.slabs() * s.per_slab() >= s.live());
                prop_assert_eq!(s.per_slab(), 8192 / size);
            }
        }
    }
}
