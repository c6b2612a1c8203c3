//! The kernel's text symbols (/proc/kallsyms), to name the functions in a kernel stack.
//!
//! Without privilege every address reads as zero (kptr_restrict); such a table names
//! nothing. Only text symbols are kept: data symbols are listed only with
//! CONFIG_KALLSYMS_ALL (35 of them on the dev VM).

use crate::{Missing, Reader, Val};

/// Kernel functions by address.
#[derive(Debug, Default)]
pub struct Kallsyms {
    /// Start addresses, ascending, with where each name ends in `names`.
    starts: Vec<(u64, u32)>,
    /// Every name, one after another.
    names: String,
    /// The scheduler's and the lock primitives' own code (`__sched_text_start` ..,
    /// `__lock_text_start` ..): the frames a lock's caller is found beneath.
    sched_and_lock_text: [(u64, u64); 2],
}

impl Kallsyms {
    /// Reads /proc/kallsyms through `reader`.
    pub fn read(reader: &mut Reader) -> Val<Kallsyms> {
        let bytes = reader.read_proc("kallsyms")?;
        let table = Kallsyms::parse(bytes);
        if table.starts.is_empty() {
            return Err(Missing::refused(
                "/proc/kallsyms",
                "every address reads as zero (kernel.kptr_restrict hides them without CAP_SYSLOG)",
            ));
        }
        Ok(table)
    }

    /// Parses kallsyms lines (`ffffffff81000000 T _stext`, a module's with
    /// `\t[module]` after the name); odd lines are skipped.
    pub fn parse(bytes: &[u8]) -> Kallsyms {
        let mut marks = [0u64; 4];
        let mut functions: Vec<(u64, &str)> = Vec::new();
        for line in bytes.split(|&b| b == b'\n') {
            let mut fields = line
                .split(|&b| b == b' ' || b == b'\t')
                .filter(|f| !f.is_empty());
            let (Some(addr), Some(kind), Some(name)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let addr = std::str::from_utf8(addr)
                .ok()
                .and_then(|a| u64::from_str_radix(a, 16).ok());
            let (Some(addr), Ok(name)) = (addr, std::str::from_utf8(name)) else {
                continue;
            };
            if addr == 0 || !matches!(kind, b"t" | b"T") {
                continue;
            }
            let mark = [
                "__sched_text_start",
                "__sched_text_end",
                "__lock_text_start",
                "__lock_text_end",
            ]
            .iter()
            .position(|m| *m == name);
            if let Some(i) = mark {
                marks[i] = addr;
            }
            functions.push((addr, name));
        }
        // Modules' functions come after the kernel's, at higher addresses or lower.
        functions.sort_by_key(|&(addr, _)| addr);
        let mut table = Kallsyms {
            starts: Vec::with_capacity(functions.len()),
            names: String::new(),
            sched_and_lock_text: [(marks[0], marks[1]), (marks[2], marks[3])],
        };
        for (addr, name) in functions {
            table.names.push_str(name);
            let end = u32::try_from(table.names.len()).unwrap_or(u32::MAX);
            table.starts.push((addr, end));
        }
        table
    }

    /// The function `addr` is in, and the offset into it.
    pub fn name(&self, addr: u64) -> Option<(&str, u64)> {
        let i = self
            .starts
            .partition_point(|&(a, _)| a <= addr)
            .checked_sub(1)?;
        let (start, end) = self.starts[i];
        let begin = i.checked_sub(1).map_or(0, |p| self.starts[p].1);
        let name = self.names.get(begin as usize..end as usize)?;
        Some((name, addr - start))
    }

    /// The first function of `stack` (innermost first) outside the scheduler and the
    /// lock primitives: who took the lock, as `perf lock contention` names it.
    pub fn caller(&self, stack: &[u64]) -> Option<&str> {
        let inside = |addr: u64| {
            self.sched_and_lock_text
                .iter()
                .any(|&(from, to)| from <= addr && addr < to)
        };
        let addr = stack.iter().copied().find(|&a| !inside(a))?;
        self.name(addr).map(|(name, _)| name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[u8] = b"ffffffff81000000 T _stext
ffffffff82249180 T __sched_text_start
ffffffff82249200 T __mutex_lock.constprop.0
ffffffff82251ea2 T __sched_text_end
ffffffff81300000 t vm_mmap_pgoff
ffffffff82251eb0 T __lock_text_start
ffffffff82251f00 T _raw_spin_lock
ffffffff82253931 T __lock_text_end
ffffffff83000000 D some_data
ffffffffc0001000 t ext4_sync_file\t[ext4]
0000000000000000 T hidden
garbage line
";

    #[test]
    fn names_an_address_by_the_function_it_is_in() {
        let k = Kallsyms::parse(TABLE);
        assert_eq!(k.name(0xffffffff81300010), Some(("vm_mmap_pgoff", 0x10)));
        assert_eq!(
            k.name(0xffffffff82249200),
            Some(("__mutex_lock.constprop.0", 0))
        );
        assert_eq!(k.name(0xffffffffc0001004), Some(("ext4_sync_file", 4)));
        // Before the first function is nothing (data symbols are not kept).
        assert_eq!(k.name(0x1000), None);
        assert_eq!(k.starts.len(), 9);
    }

    #[test]
    fn issue_16_the_caller_is_the_first_frame_outside_lock_code() {
        let k = Kallsyms::parse(TABLE);
        let stack = [0xffffffff82251f10, 0xffffffff82249210, 0xffffffff81300040];
        assert_eq!(k.caller(&stack), Some("vm_mmap_pgoff"));
        assert_eq!(k.caller(&stack[..2]), None);
    }

    #[test]
    fn a_table_with_hidden_addresses_names_nothing() {
        let k = Kallsyms::parse(b"0000000000000000 T _stext\n0000000000000000 t f\n");
        assert_eq!(k.name(0xffffffff81000000), None);
    }
}
