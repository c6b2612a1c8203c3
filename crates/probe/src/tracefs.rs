//! Tracepoint formats from tracefs: each event's id and the layout of its raw record.
//!
//! A tracepoint's fields move between kernel versions (`oom:mark_victim` carried only
//! `pid` before 6.9), so nothing here hard-codes an offset: every field is looked up by
//! name in the running kernel's `events/<system>/<event>/format`, and a field that is
//! absent, or lies outside the record it is read from, reads as `None`.
//!
//! Where tracefs is not mounted (a VM's minimal boot), [`Tracefs::open`] makes a
//! *detached* mount of it (fsopen/fsmount, never attached to any path), so the host's
//! mount table is not touched and the mount goes away with the last fd.

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags};

/// Largest format file read; the largest on 6.18 is about 3 KiB.
const FORMAT_MAX: usize = 64 * 1024;

/// How a field's bytes are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// An integer of `size` bytes (1, 2, 4 or 8), native byte order.
    Integer,
    /// A fixed `char name[N]`, NUL-terminated when shorter.
    Chars,
    /// `__data_loc char[]`: a u32 holding the string's length (high 16 bits) and its
    /// offset from the record's start (low 16 bits).
    DataLoc,
    /// `__rel_loc char[]`: like `DataLoc`, but the offset counts from the field's end.
    RelLoc,
    /// Any other array (read as raw bytes only).
    Array,
}

/// One field of a tracepoint record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field's name (`pid`, `comm`, ...).
    pub name: String,
    /// The C type as the format file gives it (`pid_t`, `char[16]`, ...).
    pub c_type: String,
    /// Offset from the start of the raw record.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
    /// Whether an integer field is signed.
    pub signed: bool,
    /// How its bytes are laid out.
    pub kind: FieldKind,
}

impl Field {
    fn bytes<'a>(&self, raw: &'a [u8]) -> Option<&'a [u8]> {
        raw.get(self.offset..self.offset.checked_add(self.size)?)
    }

    /// The field as an unsigned integer (a signed one is sign-extended, then taken as
    /// its two's complement bits). `None` if it is not an integer or outside `raw`.
    pub fn unsigned(&self, raw: &[u8]) -> Option<u64> {
        self.signed(raw).map(|v| v as u64)
    }

    /// The field as a signed integer, sign-extended when the format says signed.
    pub fn signed(&self, raw: &[u8]) -> Option<i64> {
        if self.kind != FieldKind::Integer {
            return None;
        }
        let b = self.bytes(raw)?;
        Some(match (b.len(), self.signed) {
            (1, true) => i8::from_ne_bytes([b[0]]) as i64,
            (1, false) => b[0] as i64,
            (2, true) => i16::from_ne_bytes(b.try_into().ok()?) as i64,
            (2, false) => u16::from_ne_bytes(b.try_into().ok()?) as i64,
            (4, true) => i32::from_ne_bytes(b.try_into().ok()?) as i64,
            (4, false) => u32::from_ne_bytes(b.try_into().ok()?) as i64,
            (8, _) => i64::from_ne_bytes(b.try_into().ok()?),
            _ => return None,
        })
    }

    /// The field as text: a `char[N]` up to its first NUL, or a `__data_loc` /
    /// `__rel_loc` string. Bytes that are not UTF-8 are replaced; escaping for a
    /// terminal is the renderer's job.
    pub fn text(&self, raw: &[u8]) -> Option<String> {
        let bytes = match self.kind {
            FieldKind::Chars => self.bytes(raw)?,
            FieldKind::DataLoc | FieldKind::RelLoc => {
                let loc = u32::from_ne_bytes(self.bytes(raw)?.try_into().ok()?);
                let len = (loc >> 16) as usize;
                let mut start = (loc & 0xffff) as usize;
                if self.kind == FieldKind::RelLoc {
                    start = start.checked_add(self.offset + self.size)?;
                }
                raw.get(start..start.checked_add(len)?)?
            }
            FieldKind::Integer | FieldKind::Array => return None,
        };
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
    }
}

/// A tracepoint's id and record layout, parsed from its `format` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFormat {
    /// The event's name (`mark_victim`).
    pub name: String,
    /// The id perf_event_open takes as `config` for PERF_TYPE_TRACEPOINT.
    pub id: u64,
    /// Every field, the `common_*` ones included, in the file's order.
    pub fields: Vec<Field>,
}

/// Why a format file did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl EventFormat {
    /// Parses a format file. Lines that are not a `name:`, `ID:` or `field:` line are
    /// skipped (the `print fmt:` line, blank lines); a field line that does not parse
    /// is an error, since decoding with a wrong layout would print wrong numbers.
    pub fn parse(text: &str) -> Result<EventFormat, FormatError> {
        let mut name = None;
        let mut id = None;
        let mut fields = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("name:") {
                name = Some(rest.trim().to_string());
            } else if let Some(rest) = line.strip_prefix("ID:") {
                id = Some(
                    rest.trim()
                        .parse::<u64>()
                        .map_err(|_| FormatError(format!("bad ID line: {line}")))?,
                );
            } else if line.starts_with("field:") {
                fields.push(
                    parse_field(line)
                        .ok_or_else(|| FormatError(format!("bad field line: {line}")))?,
                );
            }
        }
        Ok(EventFormat {
            name: name.ok_or_else(|| FormatError("no name: line".into()))?,
            id: id.ok_or_else(|| FormatError("no ID: line".into()))?,
            fields,
        })
    }

    /// The field called `name`, if this kernel's layout has it.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// `field:<type> <name>[N];\toffset:O;\tsize:S;\tsigned:G;`
fn parse_field(line: &str) -> Option<Field> {
    let mut parts = line.split(';').map(str::trim);
    let decl = parts.next()?.strip_prefix("field:")?.trim();
    let mut offset = None;
    let mut size = None;
    let mut signed = None;
    for part in parts {
        if let Some(v) = part.strip_prefix("offset:") {
            offset = v.parse::<usize>().ok();
        } else if let Some(v) = part.strip_prefix("size:") {
            size = v.parse::<usize>().ok();
        } else if let Some(v) = part.strip_prefix("signed:") {
            signed = Some(v == "1");
        }
    }
    // The name is the declaration's last word, without an array suffix.
    let split = decl.rfind(|c: char| c.is_whitespace())?;
    let (c_type, declarator) = (decl[..split].trim(), decl[split..].trim());
    let (name, is_array) = match declarator.find('[') {
        Some(i) => (&declarator[..i], true),
        None => (declarator, false),
    };
    let kind = if c_type.starts_with("__data_loc") {
        FieldKind::DataLoc
    } else if c_type.starts_with("__rel_loc") {
        FieldKind::RelLoc
    } else if is_array || c_type.ends_with(']') {
        if c_type.starts_with("char") || c_type.starts_with("unsigned char") {
            FieldKind::Chars
        } else {
            FieldKind::Array
        }
    } else {
        FieldKind::Integer
    };
    if name.is_empty() {
        return None;
    }
    Some(Field {
        name: name.to_string(),
        c_type: c_type.to_string(),
        offset: offset?,
        size: size?,
        signed: signed.unwrap_or(false),
        kind,
    })
}

/// Why tracepoints cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// What failed, and what would allow it.
    pub why: String,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why)
    }
}

/// An open tracefs: the mounted one, or a detached mount of its own.
#[derive(Debug)]
pub struct Tracefs {
    dir: OwnedFd,
    /// Where it was found (`/sys/kernel/tracing`), or `None` for a detached mount.
    pub mounted_at: Option<String>,
}

impl Tracefs {
    /// Opens tracefs under `root`: `sys/kernel/tracing`, then
    /// `sys/kernel/debug/tracing`; on the live host (`root` is `/`) without either, a
    /// detached mount (needs CAP_SYS_ADMIN).
    pub fn open(root: &Path) -> Result<Tracefs, Unavailable> {
        for rel in ["sys/kernel/tracing", "sys/kernel/debug/tracing"] {
            let path = root.join(rel);
            if let Ok(dir) = rustix::fs::open(
                &path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                if rustix::fs::statat(&dir, "events", rustix::fs::AtFlags::empty()).is_ok() {
                    return Ok(Tracefs {
                        dir,
                        mounted_at: Some(path.display().to_string()),
                    });
                }
            }
        }
        if root != Path::new("/") {
            return Err(Unavailable {
                why: format!("no tracefs under {}", root.display()),
            });
        }
        Self::detached().map_err(|e| Unavailable {
            why: match e {
                rustix::io::Errno::PERM | rustix::io::Errno::ACCESS => {
                    "tracefs is not mounted and mounting it needs CAP_SYS_ADMIN (run as root)"
                        .into()
                }
                rustix::io::Errno::NODEV => {
                    "this kernel has no tracefs (CONFIG_TRACING off)".into()
                }
                e => format!("tracefs is not mounted and a detached mount failed: {e}"),
            },
        })
    }

    fn detached() -> rustix::io::Result<Tracefs> {
        use rustix::mount::{
            fsconfig_create, fsmount, fsopen, FsMountFlags, FsOpenFlags, MountAttrFlags,
        };
        let fs = fsopen("tracefs", FsOpenFlags::FSOPEN_CLOEXEC)?;
        fsconfig_create(&fs)?;
        let dir = fsmount(
            &fs,
            FsMountFlags::FSMOUNT_CLOEXEC,
            MountAttrFlags::MOUNT_ATTR_RDONLY,
        )?;
        Ok(Tracefs {
            dir,
            mounted_at: None,
        })
    }

    /// The format of `system:event`, or why it cannot be had (not in this kernel,
    /// no permission).
    pub fn event(&self, system: &str, event: &str) -> Result<EventFormat, Unavailable> {
        let rel = format!("events/{system}/{event}/format");
        let text = self.read(&rel).map_err(|e| Unavailable {
            why: match e {
                rustix::io::Errno::NOENT => {
                    format!("this kernel has no tracepoint {system}:{event}")
                }
                rustix::io::Errno::ACCESS | rustix::io::Errno::PERM => {
                    format!("tracefs refuses {rel}: needs root")
                }
                e => format!("{rel}: {e}"),
            },
        })?;
        EventFormat::parse(&text).map_err(|e| Unavailable {
            why: format!("{rel}: {e}"),
        })
    }

    fn read(&self, rel: &str) -> rustix::io::Result<String> {
        let fd = rustix::fs::openat(
            self.dir.as_fd(),
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut buf = vec![0u8; FORMAT_MAX];
        let mut len = 0;
        while len < buf.len() {
            match rustix::io::read(&fd, &mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(len);
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/tracefs/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn mark_victim_6_18_has_every_field_at_its_offset() {
        let f = EventFormat::parse(&fixture("6.18/oom/mark_victim/format")).unwrap();
        assert_eq!(f.name, "mark_victim");
        assert_eq!(f.id, 609);
        let pid = f.field("pid").unwrap();
        assert_eq!(
            (pid.offset, pid.size, pid.signed, pid.kind),
            (8, 4, true, FieldKind::Integer)
        );
        let comm = f.field("comm").unwrap();
        assert_eq!((comm.offset, comm.kind), (12, FieldKind::DataLoc));
        let adj = f.field("oom_score_adj").unwrap();
        assert_eq!((adj.offset, adj.size, adj.signed), (64, 2, true));
    }

    #[test]
    fn mark_victim_before_6_9_has_only_the_pid() {
        let f = EventFormat::parse(&fixture("5.15/oom/mark_victim/format")).unwrap();
        assert!(f.field("pid").is_some());
        assert!(f.field("anon_rss").is_none());
        assert!(f.field("comm").is_none());
    }

    #[test]
    fn signal_generate_decodes_a_record_of_both_versions() {
        for version in ["5.15", "6.18"] {
            let f = EventFormat::parse(&fixture(&format!(
                "{version}/signal/signal_generate/format"
            )))
            .unwrap();
            let mut raw = vec![0u8; 48];
            let put = |raw: &mut Vec<u8>, name: &str, v: i32| {
                let fl = f.field(name).unwrap();
                raw[fl.offset..fl.offset + 4].copy_from_slice(&v.to_ne_bytes());
            };
            put(&mut raw, "sig", 9);
            put(&mut raw, "pid", 4242);
            put(&mut raw, "result", 0);
            put(&mut raw, "code", -1);
            let comm = f.field("comm").unwrap();
            raw[comm.offset..comm.offset + 5].copy_from_slice(b"sleep");
            assert_eq!(f.field("sig").unwrap().signed(&raw), Some(9), "{version}");
            assert_eq!(
                f.field("pid").unwrap().signed(&raw),
                Some(4242),
                "{version}"
            );
            assert_eq!(f.field("code").unwrap().signed(&raw), Some(-1), "{version}");
            assert_eq!(comm.text(&raw).as_deref(), Some("sleep"), "{version}");
        }
    }

    #[test]
    fn data_loc_strings_are_read_and_lying_locations_are_none() {
        let f = EventFormat::parse(&fixture("6.18/sched/sched_process_exec/format")).unwrap();
        let filename = f.field("filename").unwrap();
        assert_eq!(filename.kind, FieldKind::DataLoc);
        let mut raw = vec![0u8; 64];
        let text = b"/bin/true\0";
        let at = 40usize;
        raw[at..at + text.len()].copy_from_slice(text);
        let loc = ((text.len() as u32) << 16) | at as u32;
        raw[filename.offset..filename.offset + 4].copy_from_slice(&loc.to_ne_bytes());
        assert_eq!(filename.text(&raw).as_deref(), Some("/bin/true"));
        // A location past the record's end reads as None, never as other bytes.
        let lie = (200u32 << 16) | 60;
        raw[filename.offset..filename.offset + 4].copy_from_slice(&lie.to_ne_bytes());
        assert_eq!(filename.text(&raw), None);
        // A record shorter than the field reads as None.
        assert_eq!(f.field("pid").unwrap().signed(&raw[..4]), None);
    }

    #[test]
    fn a_field_line_that_does_not_parse_is_an_error() {
        let text = "name: x\nID: 1\nformat:\n\tfield:int pid;\toffset:eight;\tsize:4;\tsigned:1;\n";
        assert!(EventFormat::parse(text).is_err());
        assert!(EventFormat::parse("ID: 3\n").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_text_and_record_never_panic(text in ".{0,400}", raw in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            if let Ok(f) = EventFormat::parse(&text) {
                for field in &f.fields {
                    let _ = field.signed(&raw);
                    let _ = field.text(&raw);
                }
            }
        }
    }
}
