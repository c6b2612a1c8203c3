//! Ephemeral vs persistent storage: where the process's open files live.

pub mod events;
pub mod lab;
pub mod learn;
pub mod rules;

/// This concept's entry in the registry: its lenses, rules, lab and explanation.
pub const CONCEPT: ConceptDef = ConceptDef {
    id: ConceptId::Storage,
    system,
    process: lens,
    rules: rules::RULES,
    events: events::EVENTS,
    lab: &lab::LAB,
    lesson: &learn::LESSON,
    explain: include_str!("explain.md"),
    read_next: include_str!("read.md"),
    lab_source: include_str!("lab.rs"),
};

use std::collections::BTreeMap;

use syslens_probe::fds::FdKind;
use syslens_probe::mountinfo::{mount_of, Mount};

use crate::model::figure::{Table, Unit, Value};
use crate::model::process::{ProcessView, Section};

use crate::model::system::SystemView;

use super::{ConceptDef, ConceptId};

/// Ephemeral (RAM: gone at reboot), persistent (a disk file system) or pseudo (proc,
/// sysfs: no user data).
pub fn storage_class(m: &Mount) -> &'static str {
    if m.is_ephemeral() {
        "ephemeral"
    } else if m.is_pseudo() {
        "pseudo"
    } else {
        "persistent"
    }
}

/// The process's open files by the storage class of their mount.
pub fn lens(v: &ProcessView) -> Section {
    let mut s = Section::new(ConceptId::Storage);
    let (fds, mounts) = match (&v.detail.fds, &v.detail.mounts) {
        (Ok(f), Ok(m)) => (f, m),
        (Err(e), _) | (_, Err(e)) => {
            s.figure::<u64>(
                "open files",
                Err(e.clone()),
                Unit::Count,
                v.src("fd, mountinfo"),
            );
            return s;
        }
    };
    let mut t = Table::new(
        "open files by storage class",
        &[
            ("fd", Unit::None),
            ("path", Unit::None),
            ("fs", Unit::None),
            ("class", Unit::None),
            ("size", Unit::Bytes),
        ],
        v.src("fd/* + mountinfo"),
    );
    let mut classes: BTreeMap<&str, u64> = BTreeMap::new();
    for f in fds.iter().filter(|f| f.kind == FdKind::File) {
        let (fs, class) = match mount_of(mounts, &f.target) {
            Some(m) => (m.fs_type.as_str(), storage_class(m)),
            None => ("?", "unknown"),
        };
        *classes.entry(class).or_default() += 1;
        let path = if f.deleted {
            format!("{} (deleted)", f.target)
        } else {
            f.target.clone()
        };
        t.push(vec![
            Ok(Value::Unsigned(f.fd as u64)),
            Ok(path.into()),
            Ok(fs.into()),
            Ok(class.into()),
            f.size.clone().map(Value::Unsigned),
        ]);
    }
    for class in ["ephemeral", "persistent"] {
        s.figure(
            &format!("open files on {class} storage"),
            Ok(classes.get(class).copied().unwrap_or(0)),
            Unit::Count,
            v.src("fd/* + mountinfo"),
        );
    }
    if !t.rows.is_empty() {
        s.tables.push(t);
    }
    s.note("tmpfs content is RAM (Shmem in /proc/meminfo): it counts against memory and is gone at reboot");
    s
}

/// tmpfs and shared memory, dirty and writeback pages, and every mount's usage.
pub fn system(v: &SystemView) -> Section {
    let mut s = Section::new(ConceptId::Storage);
    s.figure(
        "tmpfs and shared memory in RAM (Shmem)",
        v.mem_field(|m| &m.shmem),
        Unit::Bytes,
        "/proc/meminfo",
    );
    s.figure(
        "dirty, not yet written (Dirty)",
        v.mem_field(|m| &m.dirty),
        Unit::Bytes,
        "/proc/meminfo",
    );
    s.figure(
        "being written (Writeback)",
        v.mem_field(|m| &m.writeback),
        Unit::Bytes,
        "/proc/meminfo",
    );
    match &v.mounts {
        Ok(mounts) => {
            let mut t = Table::new(
                "mounts",
                &[
                    ("mount", Unit::None),
                    ("fs", Unit::None),
                    ("class", Unit::None),
                    ("size", Unit::Bytes),
                    ("used", Unit::Bytes),
                ],
                "/proc/self/mountinfo + statvfs",
            );
            for m in mounts {
                t.push(vec![
                    Ok(m.mount.mount_point.as_str().into()),
                    Ok(m.mount.fs_type.as_str().into()),
                    Ok(storage_class(&m.mount).into()),
                    m.usage.clone().map(|u| Value::Unsigned(u.size)),
                    m.usage.clone().map(|u| Value::Unsigned(u.used)),
                ]);
            }
            s.tables.push(t);
        }
        Err(e) => s.figure::<u64>("mounts", Err(e.clone()), Unit::None, "/proc/self/mountinfo"),
    }
    s
}
