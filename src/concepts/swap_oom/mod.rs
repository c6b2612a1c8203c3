//! Swapping and the OOM killer.

pub mod events;
pub mod lab;
pub mod learn;
pub mod rules;

/// This concept's entry in the registry: its lenses, rules, lab and explanation.
pub const CONCEPT: ConceptDef = ConceptDef {
    id: ConceptId::SwapOom,
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

use syslens_probe::cgroup::CgroupVersion;

use crate::model::figure::{limit, Unit};
use crate::model::process::{ProcessView, Section};

use crate::model::system::SystemView;

use super::{ConceptDef, ConceptId};

/// The process's OOM score and swap, and its memory cgroup's limit, usage, OOM kills and pressure.
pub fn lens(v: &ProcessView) -> Section {
    let mut s = Section::new(ConceptId::SwapOom);
    s.figure(
        "oom_score (higher dies first)",
        v.detail.oom_score.clone(),
        Unit::None,
        v.src("oom_score"),
    );
    s.figure(
        "oom_score_adj",
        v.detail.oom_score_adj.clone(),
        Unit::None,
        v.src("oom_score_adj"),
    );
    s.figure(
        "swapped out (VmSwap)",
        v.status_field(|s| &s.vm_swap),
        Unit::Bytes,
        v.src("status"),
    );
    match &v.memory_cgroup {
        Ok(m) => {
            let d = &m.dir.host_dir;
            let (usage, limit_file, events) = match m.dir.version {
                CgroupVersion::V2 => ("memory.current", "memory.max", "memory.events"),
                CgroupVersion::V1 => (
                    "memory.usage_in_bytes",
                    "memory.limit_in_bytes",
                    "memory.oom_control",
                ),
            };
            s.figure(
                "cgroup",
                Ok(m.dir.path.as_str()),
                Unit::None,
                v.src("cgroup"),
            );
            // The leaf's own file often says "max" while a parent's (a pod's, a
            // container's) binds: the limit the OOM killer enforces is the lowest.
            s.figure(
                "cgroup's own memory limit",
                limit(&m.limit),
                Unit::Bytes,
                format!("{d}/{limit_file}"),
            );
            s.figure(
                "memory limit that binds (lowest up the chain)",
                limit(&v.limits.memory.clone().map(|b| b.map(|b| b.value))),
                Unit::Bytes,
                match &v.limits.memory {
                    Ok(Some(b)) => format!("{}/{}", b.set_by.host_dir, b.file),
                    _ => "the cgroup and its ancestors".to_owned(),
                },
            );
            s.figure(
                "cgroup memory usage",
                m.usage.clone(),
                Unit::Bytes,
                format!("{d}/{usage}"),
            );
            s.figure(
                "cgroup working set",
                m.working_set.clone(),
                Unit::Bytes,
                "usage - inactive_file (memory.stat)",
            );
            s.figure(
                "cgroup OOM kills",
                m.oom_kills.clone(),
                Unit::Count,
                format!("{d}/{events}"),
            );
            let hits = match m.dir.version {
                CgroupVersion::V2 => "memory.events max",
                CgroupVersion::V1 => "memory.failcnt",
            };
            s.figure(
                "cgroup times at the limit",
                m.limit_hits.clone(),
                Unit::Count,
                format!("{d}/{hits}"),
            );
            s.figure(
                "cgroup memory pressure (some, avg10)",
                m.pressure.clone().map(|p| p.some.avg10 / 100.0),
                Unit::Ratio,
                format!("{d}/memory.pressure"),
            );
        }
        Err(e) => s.figure::<u64>("memory cgroup", Err(e.clone()), Unit::None, v.src("cgroup")),
    }
    s
}

/// Available memory, swap and its traffic, OOM kills and memory pressure.
pub fn system(v: &SystemView) -> Section {
    let mut s = Section::new(ConceptId::SwapOom);
    s.figure(
        "available (MemAvailable)",
        v.mem_field(|m| &m.mem_available),
        Unit::Bytes,
        "/proc/meminfo",
    );
    s.figure(
        "swap total",
        v.mem_field(|m| &m.swap_total),
        Unit::Bytes,
        "/proc/meminfo",
    );
    s.figure(
        "swap used",
        v.mem_field(|m| &m.swap_total)
            .and_then(|t| Ok(t.saturating_sub(v.mem_field(|m| &m.swap_free)?))),
        Unit::Bytes,
        "SwapTotal - SwapFree",
    );
    s.figure(
        "swappiness",
        v.sysctl.swappiness.clone(),
        Unit::None,
        "/proc/sys/vm/swappiness",
    );
    s.figure(
        "pages swapped out rate",
        v.vm_rate(|x| &x.pswpout),
        Unit::PerSecond,
        "/proc/vmstat pswpout",
    );
    s.figure(
        "pages swapped in rate",
        v.vm_rate(|x| &x.pswpin),
        Unit::PerSecond,
        "/proc/vmstat pswpin",
    );
    s.figure(
        "OOM kills since boot",
        v.vm_total(|x| &x.oom_kill),
        Unit::Count,
        "/proc/vmstat oom_kill",
    );
    let psi = v.pressure[1].1.clone();
    s.figure(
        "memory pressure (some, avg10)",
        psi.clone().map(|p| p.some.avg10 / 100.0),
        Unit::Ratio,
        "/proc/pressure/memory",
    );
    s.figure(
        "memory pressure (full, avg10)",
        psi.and_then(|p| {
            p.full
                .ok_or(syslens_probe::Missing::not_in_kernel("full line"))
        })
        .map(|f| f.avg10 / 100.0),
        Unit::Ratio,
        "/proc/pressure/memory",
    );
    match &v.swaps {
        Ok(swaps) if !swaps.is_empty() => {
            let mut t = crate::model::figure::Table::new(
                "swap areas",
                &[
                    ("file", Unit::None),
                    ("type", Unit::None),
                    ("size", Unit::Bytes),
                    ("used", Unit::Bytes),
                    ("priority", Unit::None),
                ],
                "/proc/swaps",
            );
            for sw in swaps {
                t.push(vec![
                    Ok(sw.filename.as_str().into()),
                    Ok(sw.kind.as_str().into()),
                    Ok(sw.size_bytes.into()),
                    Ok(sw.used_bytes.into()),
                    Ok(sw.priority.into()),
                ]);
            }
            s.tables.push(t);
        }
        Ok(_) => s.note(
            "no swap configured: under pressure the kernel can only drop page cache, then kill",
        ),
        Err(e) => s.figure::<u64>("swap areas", Err(e.clone()), Unit::None, "/proc/swaps"),
    }
    if let Some(scope) = &v.scope {
        if let Ok(m) = &scope.memory {
            s.figure(
                "cgroup memory limit",
                limit(&m.limit),
                Unit::Bytes,
                &m.dir.host_dir,
            );
            s.figure(
                "cgroup OOM kills",
                m.oom_kills.clone(),
                Unit::Count,
                &m.dir.host_dir,
            );
            s.figure(
                "cgroup memory pressure (some, avg10)",
                m.pressure.clone().map(|p| p.some.avg10 / 100.0),
                Unit::Ratio,
                &m.dir.host_dir,
            );
        }
    }
    s
}
