//! /proc/PID/smaps_rollup, /proc/PID/smaps and /proc/PID/maps.
//!
//! smaps and smaps_rollup make the kernel walk the target's page tables under its mmap
//! lock, which stalls the target's own mmap/munmap (2.9 ms for a 1 GiB process on the
//! dev host): callers read them once, on request, never on every pass.

use serde::Serialize;

use crate::missing::{Missing, Val};
use crate::parse::{kb_as_bytes, key_value, lines, text, tokens, trim_start};
use crate::read::{PidDir, Reader};

/// Memory accounting lines of smaps / smaps_rollup, in bytes.
#[derive(Debug, Clone, Serialize)]
pub struct MemUsage {
    /// Rss: resident in RAM.
    pub rss: Val<u64>,
    /// Pss: resident, each shared page divided among the processes that map it.
    pub pss: Val<u64>,
    /// Pss_Anon: the Pss of anonymous pages (rollup only).
    pub pss_anon: Val<u64>,
    /// Pss_File: the Pss of file-backed pages (rollup only).
    pub pss_file: Val<u64>,
    /// Pss_Shmem: the Pss of shared memory (rollup only).
    pub pss_shmem: Val<u64>,
    /// Shared_Clean: resident, mapped by others too, unmodified.
    pub shared_clean: Val<u64>,
    /// Shared_Dirty: resident, mapped by others too, modified.
    pub shared_dirty: Val<u64>,
    /// Private_Clean: resident, mapped only here, unmodified.
    pub private_clean: Val<u64>,
    /// Private_Dirty: resident, mapped only here, modified.
    pub private_dirty: Val<u64>,
    /// Anonymous: resident pages not backed by a file.
    pub anonymous: Val<u64>,
    /// AnonHugePages: anonymous memory in transparent huge pages.
    pub anon_huge_pages: Val<u64>,
    /// Swap: anonymous memory swapped out.
    pub swap: Val<u64>,
    /// SwapPss: swapped out, each shared page divided among its sharers.
    pub swap_pss: Val<u64>,
    /// Locked: resident and locked (mlock).
    pub locked: Val<u64>,
}

impl Default for MemUsage {
    fn default() -> Self {
        let absent = |what: &'static str| Err(Missing::not_in_kernel(what));
        MemUsage {
            rss: absent("Rss"),
            pss: absent("Pss"),
            pss_anon: absent("Pss_Anon"),
            pss_file: absent("Pss_File"),
            pss_shmem: absent("Pss_Shmem"),
            shared_clean: absent("Shared_Clean"),
            shared_dirty: absent("Shared_Dirty"),
            private_clean: absent("Private_Clean"),
            private_dirty: absent("Private_Dirty"),
            anonymous: absent("Anonymous"),
            anon_huge_pages: absent("AnonHugePages"),
            swap: absent("Swap"),
            swap_pss: absent("SwapPss"),
            locked: absent("Locked"),
        }
    }
}

impl MemUsage {
    /// Takes one `Key: N kB` line; returns false when the key is not an accounting key.
    fn absorb(&mut self, key: &[u8], value: &[u8]) -> bool {
        let slot = match key {
            b"Rss" => &mut self.rss,
            b"Pss" => &mut self.pss,
            b"Pss_Anon" => &mut self.pss_anon,
            b"Pss_File" => &mut self.pss_file,
            b"Pss_Shmem" => &mut self.pss_shmem,
            b"Shared_Clean" => &mut self.shared_clean,
            b"Shared_Dirty" => &mut self.shared_dirty,
            b"Private_Clean" => &mut self.private_clean,
            b"Private_Dirty" => &mut self.private_dirty,
            b"Anonymous" => &mut self.anonymous,
            b"AnonHugePages" => &mut self.anon_huge_pages,
            b"Swap" => &mut self.swap,
            b"SwapPss" => &mut self.swap_pss,
            b"Locked" => &mut self.locked,
            _ => return false,
        };
        let v = kb_as_bytes(value).ok_or_else(|| Missing::malformed("smaps", "bad kB value"));
        // smaps sums over mappings; the rollup has each key once.
        *slot = match (&*slot, v) {
            (Ok(a), Ok(b)) => Ok(a.saturating_add(b)),
            (_, v) => v,
        };
        true
    }

    /// Adds another usage into this one (totals over mappings).
    pub fn add(&mut self, other: &MemUsage) {
        let pairs = [
            (&mut self.rss, &other.rss),
            (&mut self.pss, &other.pss),
            (&mut self.pss_anon, &other.pss_anon),
            (&mut self.pss_file, &other.pss_file),
            (&mut self.pss_shmem, &other.pss_shmem),
            (&mut self.shared_clean, &other.shared_clean),
            (&mut self.shared_dirty, &other.shared_dirty),
            (&mut self.private_clean, &other.private_clean),
            (&mut self.private_dirty, &other.private_dirty),
            (&mut self.anonymous, &other.anonymous),
            (&mut self.anon_huge_pages, &other.anon_huge_pages),
            (&mut self.swap, &other.swap),
            (&mut self.swap_pss, &other.swap_pss),
            (&mut self.locked, &other.locked),
        ];
        for (mine, theirs) in pairs {
            *mine = match (&*mine, theirs) {
                (Ok(a), Ok(b)) => Ok(a.saturating_add(*b)),
                (_, Ok(b)) => Ok(*b),
                (m, Err(_)) => m.clone(),
            };
        }
    }

    /// Reads and parses a process's smaps_rollup (a page-table walk in the target:
    /// read it only when asked).
    pub fn read_rollup(reader: &mut Reader, dir: &PidDir) -> Val<MemUsage> {
        MemUsage::parse_rollup(reader.read_pid(dir, "smaps_rollup")?)
    }

    /// Parses smaps_rollup. An empty file (kernel thread, zombie) has no address space.
    pub fn parse_rollup(buf: &[u8]) -> Val<MemUsage> {
        let mut usage = MemUsage::default();
        let mut any = false;
        for line in lines(buf) {
            if let Some((key, value)) = key_value(line) {
                any |= usage.absorb(key, value);
            }
        }
        if !any {
            return Err(Missing::NotApplicable {
                why: "no user address space (kernel thread or zombie)",
            });
        }
        Ok(usage)
    }
}

/// What a mapping is, from its path column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum MapKind {
    /// `[heap]`: brk memory.
    Heap,
    /// `[stack]`: the main thread's stack.
    Stack,
    /// Private memory with no file: malloc arenas, thread stacks, `[anon:name]`.
    Anonymous,
    /// Shared memory: shared anonymous, /dev/shm, SysV, memfd.
    SharedMemory,
    /// A shared object file (`.so` in its name).
    Library,
    /// Any other file.
    File,
    /// vdso, vvar, vsyscall: pages the kernel maps into every process.
    Kernel,
    /// A bracketed name syslens does not know.
    Other,
}

impl MapKind {
    /// Every kind, in display order.
    pub const ALL: [MapKind; 8] = [
        MapKind::Heap,
        MapKind::Stack,
        MapKind::Anonymous,
        MapKind::SharedMemory,
        MapKind::Library,
        MapKind::File,
        MapKind::Kernel,
        MapKind::Other,
    ];

    /// The kind as shown to the user.
    pub fn name(self) -> &'static str {
        match self {
            MapKind::Heap => "heap",
            MapKind::Stack => "stack",
            MapKind::Anonymous => "anonymous",
            MapKind::SharedMemory => "shared memory",
            MapKind::Library => "library",
            MapKind::File => "file",
            MapKind::Kernel => "vdso/vvar",
            MapKind::Other => "other",
        }
    }

    fn classify(path: &str, shared: bool) -> MapKind {
        match path {
            "[heap]" => MapKind::Heap,
            "[vdso]" | "[vvar]" | "[vsyscall]" | "[vvar_vclock]" => MapKind::Kernel,
            "" if shared => MapKind::SharedMemory,
            "" => MapKind::Anonymous,
            p if p.starts_with("[stack") => MapKind::Stack,
            p if p.starts_with("[anon") => MapKind::Anonymous,
            p if p.starts_with("/dev/zero") => {
                if shared {
                    MapKind::SharedMemory
                } else {
                    MapKind::Anonymous
                }
            }
            p if p.starts_with("/SYSV")
                || p.starts_with("/dev/shm/")
                || p.starts_with("/memfd:") =>
            {
                MapKind::SharedMemory
            }
            p if p.starts_with('/') && is_library(p) => MapKind::Library,
            p if p.starts_with('/') => MapKind::File,
            _ => MapKind::Other,
        }
    }
}

/// `libc.so.6`, `ld-linux-x86-64.so.2`, `libfoo.so`: a shared object by its name.
fn is_library(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.match_indices(".so")
        .any(|(i, _)| matches!(file.as_bytes().get(i + 3), None | Some(b'.')))
}

/// One line of maps, with its smaps accounting when read from smaps.
#[derive(Debug, Clone, Serialize)]
pub struct Mapping {
    /// First address of the mapping.
    pub start: u64,
    /// Address just past the mapping.
    pub end: u64,
    /// `rwxp` / `r--s`: read, write, execute, private or shared.
    pub perms: String,
    /// Offset of the mapping in its file, in bytes.
    pub offset: u64,
    /// Inode of the file; 0 for anonymous memory.
    pub inode: u64,
    /// The path column (without ` (deleted)`); empty for anonymous memory.
    pub path: String,
    /// The file was deleted (or replaced) on disk after it was mapped.
    pub deleted: bool,
    /// What the mapping is, from its path.
    pub kind: MapKind,
    /// Its smaps accounting; None when read from maps.
    pub usage: Option<MemUsage>,
}

impl Mapping {
    /// Length of the mapping, in bytes.
    pub fn size(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    fn parse_header(line: &[u8]) -> Option<Mapping> {
        let mut rest = line;
        let mut fields: [&[u8]; 5] = [b""; 5];
        for slot in &mut fields {
            rest = trim_start(rest);
            let end = rest
                .iter()
                .position(|b| b.is_ascii_whitespace())
                .unwrap_or(rest.len());
            *slot = &rest[..end];
            rest = &rest[end..];
        }
        let [range, perms, offset, _dev, inode] = fields;
        let dash = range.iter().position(|&b| b == b'-')?;
        let hex = |s: &[u8]| u64::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok();
        let start = hex(&range[..dash])?;
        let end = hex(&range[dash + 1..])?;
        if perms.len() != 4 {
            return None;
        }
        let mut path = text(trim_start(rest));
        let deleted = path.ends_with(" (deleted)");
        if deleted {
            path.truncate(path.len() - " (deleted)".len());
        }
        let shared = perms.get(3) == Some(&b's');
        Some(Mapping {
            start,
            end,
            perms: text(perms),
            offset: hex(offset)?,
            inode: crate::parse::u64_dec(inode)?,
            kind: MapKind::classify(&path, shared),
            path,
            deleted,
            usage: None,
        })
    }
}

/// Parses /proc/PID/maps (no accounting) or /proc/PID/smaps (with it).
pub fn parse_maps(buf: &[u8]) -> Val<Vec<Mapping>> {
    let mut maps: Vec<Mapping> = Vec::new();
    for line in lines(buf) {
        let first = tokens(line).next().unwrap_or(b"");
        if first.ends_with(b":") {
            if let (Some(m), Some((key, value))) = (maps.last_mut(), key_value(line)) {
                m.usage
                    .get_or_insert_with(MemUsage::default)
                    .absorb(key, value);
            }
            continue;
        }
        match Mapping::parse_header(line) {
            Some(m) => maps.push(m),
            None => {
                return Err(Missing::malformed(
                    "maps",
                    format!("bad line: {}", text(line)),
                ))
            }
        }
    }
    Ok(maps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_23_a_path_is_a_file_a_library_by_its_name_anything_else_other() {
        let kinds = [
            ("/usr/bin/cat", MapKind::File),
            ("/var/lib/db/data (deleted)", MapKind::File),
            ("/usr/lib/x86_64-linux-gnu/libc.so.6", MapKind::Library),
            ("/opt/libfoo.so", MapKind::Library),
            ("/opt/foo.sock", MapKind::File),
            ("[uprobes]", MapKind::Other),
            ("libc.so.6", MapKind::Other),
        ];
        for (path, kind) in kinds {
            assert_eq!(MapKind::classify(path, false), kind, "{path}");
        }
    }

    #[test]
    fn library_names() {
        assert!(is_library("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(is_library("/lib64/ld-linux-x86-64.so.2"));
        assert!(is_library("/opt/x/libfoo.so"));
        assert!(!is_library("/usr/bin/sonic"));
        assert!(!is_library("/data/file.socket"));
    }

    #[test]
    fn smaps_accumulates_per_mapping() {
        let text =
            b"55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]\n\
Size:                132 kB\nRss:                  12 kB\nPss:                  12 kB\n\
Private_Dirty:        12 kB\nVmFlags: rd wr mr mw me ac\n\
7f0000000000-7f0000200000 r-xp 00000000 fd:00 4242 /usr/lib/libc.so.6 (deleted)\n\
Rss:                 100 kB\nPss:                  10 kB\nShared_Clean:        100 kB\n";
        let maps = parse_maps(text).unwrap();
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[0].kind, MapKind::Heap);
        assert_eq!(maps[0].usage.as_ref().unwrap().rss, Ok(12 * 1024));
        assert_eq!(maps[1].kind, MapKind::Library);
        assert!(maps[1].deleted);
        assert_eq!(maps[1].path, "/usr/lib/libc.so.6");
        assert_eq!(maps[1].usage.as_ref().unwrap().pss, Ok(10 * 1024));
    }

    #[test]
    fn rollup_of_zombie_is_not_applicable() {
        assert_eq!(
            MemUsage::parse_rollup(b"").unwrap_err().kind(),
            "not_applicable"
        );
    }

    #[test]
    fn shared_anonymous_is_shared_memory() {
        let maps = parse_maps(b"7f00-7f10 rw-s 00000000 00:01 7 /dev/zero (deleted)\n").unwrap();
        assert_eq!(maps[0].kind, MapKind::SharedMemory);
    }
}
