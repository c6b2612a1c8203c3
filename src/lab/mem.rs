//! Memory primitives the labs provoke the kernel with: mappings that are touched page
//! by page, file eviction checked with mincore(2), and glibc's allocator called
//! directly (so the heap under test is glibc's, not Rust's).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

/// The kernel's page size in bytes.
pub fn page_size() -> usize {
    rustix::param::page_size()
}

/// A mapping owned by the lab, unmapped on drop.
#[derive(Debug)]
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

fn check_map(p: *mut libc::c_void) -> io::Result<NonNull<u8>> {
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

impl Region {
    /// Private anonymous memory: reserved, not backed until touched.
    pub fn anon(len: usize) -> io::Result<Region> {
        Region::anonymous(len, false)
    }

    /// Anonymous memory, private or shared (shmem: a read fault allocates a page).
    pub fn anonymous(len: usize, shared: bool) -> io::Result<Region> {
        let sharing = if shared {
            libc::MAP_SHARED
        } else {
            libc::MAP_PRIVATE
        };
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                sharing | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        Ok(Region {
            ptr: check_map(p)?,
            len,
        })
    }

    /// A mapping of `file` (shared or private, optionally populated at once).
    pub fn file(file: &File, len: usize, shared: bool, populate: bool) -> io::Result<Region> {
        let mut flags = if shared {
            libc::MAP_SHARED
        } else {
            libc::MAP_PRIVATE
        };
        if populate {
            flags |= libc::MAP_POPULATE;
        }
        // SAFETY: maps a file the caller owns; the region is only reached through Region.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                file.as_raw_fd(),
                0,
            )
        };
        Ok(Region {
            ptr: check_map(p)?,
            len,
        })
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The mapping is zero bytes long.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pages the mapping spans (the last one partial if the length is not a multiple).
    pub fn pages(&self) -> usize {
        self.len.div_ceil(page_size())
    }

    /// Reads one byte of every `step`-th page (volatile, so the compiler keeps it).
    pub fn read_pages(&self, step: usize) -> u64 {
        let ps = page_size();
        let mut sum = 0u64;
        let mut off = 0;
        while off < self.len {
            // SAFETY: off < len, inside the mapping.
            sum = sum.wrapping_add(u64::from(unsafe {
                std::ptr::read_volatile(self.ptr.as_ptr().add(off))
            }));
            off += ps * step.max(1);
        }
        sum
    }

    /// Writes one byte of every `step`-th page among the first `pages` pages.
    pub fn write_pages(&self, step: usize, pages: usize, value: u8) {
        self.write_page_range(0..pages, step, value);
    }

    /// Writes one byte of every `step`-th page of the pages `range` (page indexes).
    pub fn write_page_range(&self, range: std::ops::Range<usize>, step: usize, value: u8) {
        let ps = page_size();
        let end = (range.end * ps).min(self.len);
        let mut off = range.start * ps;
        while off < end {
            // SAFETY: off < len, inside the mapping, which is writable.
            unsafe { std::ptr::write_volatile(self.ptr.as_ptr().add(off), value) };
            off += ps * step.max(1);
        }
    }

    /// Sums the mapping as native u64 words: reads every byte, as a reader would.
    pub fn sum_words(&self) -> u64 {
        let words = self.len / 8;
        let base = self.ptr.as_ptr().cast::<u64>();
        let mut sum = 0u64;
        for i in 0..words {
            // SAFETY: page-aligned base, i < len / 8: inside the mapping and aligned.
            sum = sum.wrapping_add(unsafe { std::ptr::read_volatile(base.add(i)) });
        }
        sum
    }

    /// Reads the byte at `offset`.
    pub fn byte(&self, offset: usize) -> u8 {
        assert!(offset < self.len);
        // SAFETY: bounds checked above.
        unsafe { std::ptr::read_volatile(self.ptr.as_ptr().add(offset)) }
    }

    /// Writes byte `v` at `offset` (volatile); panics past the end.
    pub fn set_byte(&self, offset: usize, v: u8) {
        assert!(offset < self.len);
        // SAFETY: bounds checked above; the mapping is writable.
        unsafe { std::ptr::write_volatile(self.ptr.as_ptr().add(offset), v) };
    }

    /// madvise(2) over the whole region (MADV_HUGEPAGE, MADV_RANDOM...).
    pub fn madvise(&self, advice: libc::c_int) -> io::Result<()> {
        // SAFETY: the whole region is ours.
        match unsafe { libc::madvise(self.ptr.as_ptr().cast(), self.len, advice) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// Pages of this mapping resident in memory, by mincore(2).
    pub fn resident_pages(&self) -> io::Result<usize> {
        let mut vec = vec![0u8; self.pages()];
        // SAFETY: vec has one byte per page of the region.
        match unsafe { libc::mincore(self.ptr.as_ptr().cast(), self.len, vec.as_mut_ptr()) } {
            0 => Ok(vec.iter().filter(|b| **b & 1 == 1).count()),
            _ => Err(io::Error::last_os_error()),
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what was mapped.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Writes `len` bytes (non-zero, so no page is sparse) to a new file and syncs it.
pub fn write_file(path: &std::path::Path, len: usize) -> io::Result<File> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)?;
    let chunk = vec![0x5au8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len());
        f.write_all(&chunk[..n])?;
        left -= n;
    }
    f.sync_all()?;
    Ok(f)
}

/// Drops a file's pages from the page cache and returns the share still resident.
/// Dirty or mapped pages are not dropped, so the file is synced first and must not be
/// mapped; the caller checks the returned share (the precondition of file-fault labs).
pub fn evict(file: &File, len: usize) -> io::Result<f64> {
    file.sync_data()?;
    // SAFETY: advice on a file descriptor we own.
    let rc = unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            0,
            len as libc::off_t,
            libc::POSIX_FADV_DONTNEED,
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    residency(file, len)
}

/// Share of a file's pages in the page cache: mapping a file does not fault pages in,
/// so mincore on a fresh mapping reads the cache state.
pub fn residency(file: &File, len: usize) -> io::Result<f64> {
    let r = Region::file(file, len, true, false)?;
    Ok(r.resident_pages()? as f64 / r.pages() as f64)
}

/// Whether the C library is glibc (the allocator labs call its malloc directly).
pub fn glibc_version() -> Option<String> {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: returns a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
        Some(v.to_string_lossy().into_owned())
    }
    #[cfg(not(target_env = "gnu"))]
    {
        None
    }
}

/// Allocations made with glibc's malloc, freed with its free.
#[cfg(target_env = "gnu")]
pub mod glibc {
    use std::ptr::NonNull;

    /// One malloc'ed block, written on every page (so it is resident), freed on drop.
    #[derive(Debug)]
    pub struct Chunk {
        ptr: NonNull<u8>,
        len: usize,
    }

    impl Chunk {
        /// malloc(len) and a write to every page; None when malloc fails.
        pub fn new(len: usize) -> Option<Chunk> {
            // SAFETY: plain allocation.
            let ptr = NonNull::new(unsafe { libc::malloc(len) }.cast::<u8>())?;
            let ps = super::page_size();
            let mut off = 0;
            while off < len {
                // SAFETY: inside the allocation of len bytes.
                unsafe { std::ptr::write_volatile(ptr.as_ptr().add(off), 1) };
                off += ps;
            }
            if len > 0 {
                // SAFETY: the last byte of the allocation.
                unsafe { std::ptr::write_volatile(ptr.as_ptr().add(len - 1), 1) };
            }
            Some(Chunk { ptr, len })
        }

        /// malloc_usable_size: what the allocator really reserved for the request.
        pub fn usable(&self) -> usize {
            // SAFETY: ptr came from malloc and is live.
            unsafe { libc::malloc_usable_size(self.ptr.as_ptr().cast()) }
        }

        /// Bytes asked of malloc.
        pub fn len(&self) -> usize {
            self.len
        }

        /// Zero bytes were asked.
        pub fn is_empty(&self) -> bool {
            self.len == 0
        }
    }

    impl Drop for Chunk {
        fn drop(&mut self) {
            // SAFETY: ptr came from malloc and is freed exactly once, here.
            unsafe { libc::free(self.ptr.as_ptr().cast()) }
        }
    }

    /// malloc_trim(0): give free heap memory back to the kernel.
    pub fn trim() -> bool {
        // SAFETY: no arguments beyond the pad.
        unsafe { libc::malloc_trim(0) == 1 }
    }

    /// Fixes the mmap threshold so glibc does not raise it after the first large free.
    pub fn fix_mmap_threshold(bytes: i32) -> bool {
        // SAFETY: a documented mallopt parameter.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, bytes) == 1 }
    }
}

/// Reads this process's own Rss from smaps_rollup (for children that report it).
pub fn self_rss() -> io::Result<u64> {
    let buf = std::fs::read("/proc/self/smaps_rollup")?;
    syslens_probe::smaps::MemUsage::parse_rollup(&buf)
        .and_then(|u| u.rss)
        .map_err(|e| io::Error::other(e.to_string()))
}

/// CLOCK_MONOTONIC in nanoseconds: comparable between the parent and its children
/// (an `Instant` is opaque across processes).
pub fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Pins the calling thread to one CPU.
pub fn pin_to(cpu: usize) -> io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_reads_map_the_zero_page_writes_do_not() {
        let r = Region::anon(64 * page_size()).unwrap();
        assert_eq!(r.read_pages(1), 0);
        r.write_pages(1, r.pages(), 3);
        assert_eq!(r.read_pages(1), 3 * 64);
        assert_eq!(r.resident_pages().unwrap(), 64);
    }

    /// issue 20: the copy-on-write lab times one half of the pages and counts the other.
    #[test]
    fn issue_20_a_page_range_writes_its_pages_only() {
        let ps = page_size();
        let r = Region::anon(8 * ps).unwrap();
        r.write_page_range(2..5, 1, 7);
        assert_eq!(r.resident_pages().unwrap(), 3);
        let written: Vec<usize> = (0..8).filter(|p| r.byte(p * ps) == 7).collect();
        assert_eq!(written, vec![2, 3, 4]);
        r.write_page_range(6..100, 1, 7);
        assert_eq!(r.byte(7 * ps), 7, "a range past the end stops at the end");
    }
}
