//! Tracepoint samples from an eBPF raw-tracepoint program, for events too frequent for
//! a perf tracepoint: perf builds a full record on every hit before it can skip one,
//! while a raw tracepoint program is handed the tracepoint's arguments and can count
//! the hits it does not keep for the cost of an increment.
//!
//! The loader knows no program: it loads an object (compiled from C and committed by
//! its caller), sets the global `one_in`, attaches one program to one raw tracepoint
//! and reads records of one shape from the ring buffer map `samples`:
//! [`HEADER`] bytes (tgid u32, tid u32, CLOCK_MONOTONIC ns u64, cpu u32, padding u32,
//! period u64), then the raw fields the caller's format describes. Samples the full
//! ring dropped are counted by the program in slot 1 of the per-CPU array `counters`.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::RawTracePoint;
use aya::{Ebpf, EbpfLoader};

/// Bytes of the record header before the raw fields.
pub const HEADER: usize = 32;

/// A program to load and attach.
#[derive(Debug, Clone, Copy)]
pub struct BpfSpec<'a> {
    /// The compiled object (ELF with BTF).
    pub object: &'a [u8],
    /// The program's name in the object.
    pub program: &'a str,
    /// The raw tracepoint to attach it to (`page_fault_user`).
    pub tracepoint: &'a str,
    /// One sample per this many hits on a CPU (the object's global `one_in`).
    pub one_in: u64,
}

/// A sample's header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Process (thread group) id of the running task.
    pub tgid: u32,
    /// Its thread id.
    pub tid: u32,
    /// CLOCK_MONOTONIC nanoseconds.
    pub monotonic_ns: u64,
    /// The CPU it fired on.
    pub cpu: u32,
    /// How many hits it stands for.
    pub period: u64,
}

impl Header {
    /// Decodes the header of a record, `None` when it is shorter than [`HEADER`].
    pub fn parse(record: &[u8]) -> Option<Header> {
        let u32_at = |at: usize| Some(u32::from_ne_bytes(record.get(at..at + 4)?.try_into().ok()?));
        let u64_at = |at: usize| Some(u64::from_ne_bytes(record.get(at..at + 8)?.try_into().ok()?));
        Some(Header {
            tgid: u32_at(0)?,
            tid: u32_at(4)?,
            monotonic_ns: u64_at(8)?,
            cpu: u32_at(16)?,
            period: u64_at(24)?,
        })
    }
}

/// A loaded, attached program and its ring buffer. Dropping it detaches the program.
pub struct BpfRing {
    ring: RingBuf<MapData>,
    counters: PerCpuArray<MapData, u64>,
    // Owns the program and its link: kept for as long as the ring is read.
    _ebpf: Ebpf,
}

impl fmt::Debug for BpfRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BpfRing").finish_non_exhaustive()
    }
}

/// Why a program could not be loaded or attached, with what would allow it.
#[derive(Debug)]
pub struct BpfError(pub String);

impl fmt::Display for BpfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The error and its causes on one line (aya's errors wrap the errno several deep).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

impl BpfRing {
    /// Loads `spec`'s object, attaches its program and maps its ring buffer.
    pub fn open(spec: &BpfSpec<'_>) -> Result<BpfRing, BpfError> {
        let fail = |what: &str, e: &dyn std::error::Error| {
            let text = chain(e);
            let hint =
                if text.contains("Operation not permitted") || text.contains("Permission denied") {
                    " (eBPF needs root, or CAP_BPF with CAP_PERFMON)"
                } else {
                    ""
                };
            BpfError(format!("{what} {}: {text}{hint}", spec.program))
        };
        let mut ebpf = EbpfLoader::new()
            .override_global("one_in", &spec.one_in, true)
            .load(spec.object)
            .map_err(|e| fail("could not load the eBPF program", &e))?;
        let program: &mut RawTracePoint = ebpf
            .program_mut(spec.program)
            .ok_or_else(|| BpfError(format!("no program {} in the object", spec.program)))?
            .try_into()
            .map_err(|e| fail("not a raw tracepoint program:", &e))?;
        program
            .load()
            .map_err(|e| fail("the kernel's verifier refused", &e))?;
        program
            .attach(spec.tracepoint)
            .map_err(|e| fail(&format!("could not attach to {}:", spec.tracepoint), &e))?;
        let mut map = |name: &str| {
            ebpf.take_map(name)
                .ok_or_else(|| BpfError(format!("no map {name} in the object")))
        };
        let ring =
            RingBuf::try_from(map("samples")?).map_err(|e| fail("the ring buffer of", &e))?;
        let counters =
            PerCpuArray::try_from(map("counters")?).map_err(|e| fail("the counters of", &e))?;
        Ok(BpfRing {
            ring,
            counters,
            _ebpf: ebpf,
        })
    }

    /// Hands each waiting record to `on`, at most `max`, and returns how many.
    pub fn drain(&mut self, max: usize, mut on: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        while n < max {
            let Some(item) = self.ring.next() else { break };
            on(&item);
            n += 1;
        }
        n
    }

    /// Samples dropped so far because the ring was full, over every CPU.
    pub fn lost(&self) -> u64 {
        self.counters
            .get(&1, 0)
            .map(|per_cpu| per_cpu.iter().sum())
            .unwrap_or(0)
    }

    /// The ring's fd, readable when the program has woken the reader.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.ring.as_fd()
    }
}

/// For callers that keep a source's error beside the others' `io::Error`s.
impl From<BpfError> for io::Error {
    fn from(e: BpfError) -> io::Error {
        io::Error::other(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_decodes_fields_at_their_offsets() {
        let mut r = Vec::new();
        r.extend_from_slice(&7u32.to_ne_bytes());
        r.extend_from_slice(&8u32.to_ne_bytes());
        r.extend_from_slice(&9u64.to_ne_bytes());
        r.extend_from_slice(&1u32.to_ne_bytes());
        r.extend_from_slice(&0u32.to_ne_bytes());
        r.extend_from_slice(&16u64.to_ne_bytes());
        let h = Header::parse(&r).unwrap();
        assert_eq!(
            h,
            Header {
                tgid: 7,
                tid: 8,
                monotonic_ns: 9,
                cpu: 1,
                period: 16
            }
        );
        assert_eq!(Header::parse(&r[..HEADER - 1]), None);
    }
}
