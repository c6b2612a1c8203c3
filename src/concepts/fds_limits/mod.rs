//! File descriptors and resource limits.

pub mod events;
pub mod lab;
pub mod learn;
pub mod rules;

/// This concept's entry in the registry: its lenses, rules, lab and explanation.
pub const CONCEPT: ConceptDef = ConceptDef {
    id: ConceptId::FdsLimits,
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

use syslens_probe::limits::{find, LimitValue};
use syslens_probe::{Missing, Val};

use crate::model::figure::{limit, Table, Unit, Value};
use crate::model::process::{ratio, ProcessView, Section};

use crate::model::system::SystemView;

use super::{ConceptDef, ConceptId};

fn limit_value(v: LimitValue) -> Value {
    match v {
        LimitValue::Unlimited => Value::Text("unlimited".into()),
        LimitValue::Value(n) => Value::Unsigned(n),
    }
}

/// The soft "Max open files" limit as a number (None when unlimited).
pub fn nofile_soft(v: &ProcessView) -> Val<Option<u64>> {
    let limits = v.detail.limits.as_ref().map_err(Clone::clone)?;
    let l =
        find(limits, "Max open files").ok_or_else(|| Missing::not_in_kernel("Max open files"))?;
    Ok(match l.soft {
        LimitValue::Unlimited => None,
        LimitValue::Value(n) => Some(n),
    })
}

/// Open fds against the soft limit, fds by kind, deleted-but-open files, every limit.
pub fn lens(v: &ProcessView) -> Section {
    let mut s = Section::new(ConceptId::FdsLimits);
    let count = v.detail.fd_count.clone();
    s.figure("open fds", count.clone(), Unit::Count, v.src("fd"));
    let soft = nofile_soft(v);
    s.figure(
        "fd soft limit (RLIMIT_NOFILE)",
        limit(&soft),
        Unit::None,
        v.src("limits"),
    );
    let soft_n = soft.and_then(|l| l.ok_or(Missing::NotApplicable { why: "no limit" }));
    s.figure(
        "fds used of the soft limit",
        ratio(&count, &soft_n),
        Unit::Ratio,
        "open fds / soft limit",
    );
    match &v.detail.fds {
        Ok(fds) => {
            let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
            for f in fds {
                *kinds.entry(f.kind.name()).or_default() += 1;
            }
            let mut t = Table::new(
                "fds by kind",
                &[("kind", Unit::None), ("count", Unit::Count)],
                v.src("fd/*"),
            );
            for (k, n) in kinds {
                t.push(vec![Ok(k.into()), Ok(n.into())]);
            }
            s.tables.push(t);
            let mut d = Table::new(
                "deleted but still open (space not freed until closed)",
                &[
                    ("fd", Unit::None),
                    ("path", Unit::None),
                    ("size", Unit::Bytes),
                ],
                v.src("fd/*"),
            );
            for f in fds.iter().filter(|f| f.deleted) {
                d.push(vec![
                    Ok(Value::Unsigned(f.fd as u64)),
                    Ok(f.target.as_str().into()),
                    f.size.clone().map(Value::Unsigned),
                ]);
            }
            s.figure(
                "deleted-but-open files",
                Ok(d.rows.len() as u64),
                Unit::Count,
                v.src("fd/*"),
            );
            if !d.rows.is_empty() {
                s.tables.push(d);
            }
        }
        Err(e) => s.figure::<u64>("fd listing", Err(e.clone()), Unit::Count, v.src("fd")),
    }
    match &v.detail.limits {
        Ok(limits) => {
            let mut t = Table::new(
                "resource limits",
                &[
                    ("limit", Unit::None),
                    ("soft", Unit::None),
                    ("hard", Unit::None),
                    ("unit", Unit::None),
                ],
                v.src("limits"),
            );
            for l in limits {
                t.push(vec![
                    Ok(l.name.as_str().into()),
                    Ok(limit_value(l.soft)),
                    Ok(limit_value(l.hard)),
                    Ok(l.unit.as_str().into()),
                ]);
            }
            s.tables.push(t);
        }
        Err(e) => s.figure::<u64>(
            "resource limits",
            Err(e.clone()),
            Unit::None,
            v.src("limits"),
        ),
    }
    s
}

/// File handles against fs.file-max, fs.nr_open, and processes and threads beside
/// pid_max and threads-max.
pub fn system(v: &SystemView) -> Section {
    let mut s = Section::new(ConceptId::FdsLimits);
    let nr = v.sysctl.file_nr.clone();
    s.figure(
        "open file handles",
        nr.clone().map(|n| n[0]),
        Unit::Count,
        "/proc/sys/fs/file-nr",
    );
    s.figure(
        "file handle limit (fs.file-max)",
        nr.clone().map(|n| n[2]),
        Unit::Count,
        "/proc/sys/fs/file-nr",
    );
    s.figure(
        "used of the limit",
        nr.and_then(|n| ratio(&Ok(n[0]), &Ok(n[2]))),
        Unit::Ratio,
        "allocated / max",
    );
    s.figure(
        "max RLIMIT_NOFILE (fs.nr_open)",
        v.sysctl.nr_open.clone(),
        Unit::Count,
        "/proc/sys/fs/nr_open",
    );
    let st = v.states.as_ref().map_err(Clone::clone);
    s.figure(
        "processes",
        st.clone().map(|c| c.processes),
        Unit::Count,
        "/proc/*/stat",
    );
    s.figure(
        "threads",
        st.map(|c| c.threads),
        Unit::Count,
        "/proc/*/stat",
    );
    s.figure(
        "pid_max",
        v.sysctl.pid_max.clone(),
        Unit::Count,
        "/proc/sys/kernel/pid_max",
    );
    s.figure(
        "threads-max",
        v.sysctl.threads_max.clone(),
        Unit::Count,
        "/proc/sys/kernel/threads-max",
    );
    s
}
