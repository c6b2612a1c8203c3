//! Cgroups and namespaces: which limits apply, which views are private.

pub mod events;
pub mod lab;
pub mod learn;
pub mod rules;

/// This concept's entry in the registry: its lenses, rules, lab and explanation.
pub const CONCEPT: ConceptDef = ConceptDef {
    id: ConceptId::CgroupsNamespaces,
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

use syslens_probe::ns::Baseline;
use syslens_probe::Val;

use crate::model::figure::{limit, Table, Unit, Value};
use crate::model::host::count_cpu_list;
use crate::model::limits::{Bound, EffectiveLimits};
use crate::model::process::{ProcessView, Section};

use crate::model::system::SystemView;

use super::{ConceptDef, ConceptId};

/// A CFS quota in CPUs (quota / period), or "unlimited".
fn quota_cpus(q: &Val<Option<(u64, u64)>>) -> Val<Value> {
    q.clone().map(|q| {
        q.map_or(Value::Text("unlimited".into()), |(quota, period)| {
            Value::Float(quota as f64 / period as f64)
        })
    })
}

/// The process's cgroups and what their controllers allow, and which of its namespaces
/// differ from the initial ones.
pub fn lens(v: &ProcessView) -> Section {
    let mut s = Section::new(ConceptId::CgroupsNamespaces);
    s.figure(
        "host cgroup mode",
        Ok(v.cgroup_mode.name()),
        Unit::None,
        "/proc/self/mountinfo",
    );
    match &v.detail.cgroups {
        Ok(members) => {
            let mut t = Table::new(
                "cgroup membership",
                &[
                    ("hierarchy", Unit::None),
                    ("controllers", Unit::None),
                    ("path", Unit::None),
                ],
                v.src("cgroup"),
            );
            for m in members {
                let ctrls = if m.controllers.is_empty() {
                    "(unified v2)".to_owned()
                } else {
                    m.controllers.join(",")
                };
                t.push(vec![
                    Ok(Value::Unsigned(u64::from(m.hierarchy))),
                    Ok(ctrls.into()),
                    Ok(m.path.as_str().into()),
                ]);
            }
            s.tables.push(t);
        }
        Err(e) => s.figure::<u64>(
            "cgroup membership",
            Err(e.clone()),
            Unit::None,
            v.src("cgroup"),
        ),
    }
    match &v.cpu_cgroup {
        Ok(c) => {
            let d = &c.dir.host_dir;
            s.figure(
                "cpu quota",
                quota_cpus(&c.quota),
                Unit::None,
                format!("{d} (CPUs per period)"),
            );
            s.figure(
                "throttled periods",
                c.throttled_periods.clone(),
                Unit::Count,
                format!("{d}/cpu.stat"),
            );
            s.figure(
                "throttled time",
                c.throttled_us.clone().map(|us| us as f64 / 1e6),
                Unit::Seconds,
                format!("{d}/cpu.stat"),
            );
        }
        Err(e) => s.figure::<u64>("cpu cgroup", Err(e.clone()), Unit::None, "cpu controller"),
    }
    match &v.pids_cgroup {
        Ok(p) => {
            let d = &p.dir.host_dir;
            s.figure(
                "tasks in the pids cgroup",
                p.current.clone(),
                Unit::Count,
                format!("{d}/pids.current"),
            );
            s.figure(
                "pids limit",
                limit(&p.max),
                Unit::None,
                format!("{d}/pids.max"),
            );
        }
        Err(e) => s.figure::<u64>("pids cgroup", Err(e.clone()), Unit::None, "pids controller"),
    }
    effective_limits(&mut s, &v.limits);
    // A cpuset (or sched_setaffinity) caps the CPUs as surely as a quota: the kernel
    // applies both, so what the process can use is the smaller (htop #1538).
    let allowed = v
        .status()
        .and_then(|st| st.cpus_allowed_list.clone())
        .and_then(|c| {
            count_cpu_list(c.as_str()).ok_or_else(|| {
                syslens_probe::Missing::malformed(v.src("status"), c.as_str().to_owned())
            })
        });
    s.figure(
        "CPUs it can use (quota and cpuset)",
        usable_cpus(&v.limits, allowed),
        Unit::None,
        format!(
            "min(effective CPU quota, Cpus_allowed_list of {})",
            v.src("status")
        ),
    );
    let mut t = Table::new(
        "namespaces (isolated = differs from the initial namespace)",
        &[
            ("kind", Unit::None),
            ("inode", Unit::None),
            ("initial", Unit::None),
            ("isolated", Unit::None),
            ("baseline", Unit::None),
        ],
        v.src("ns/*"),
    );
    let mut isolated = Vec::new();
    for ns in &v.detail.namespaces {
        let init = v.initial_ns.iter().find(|i| i.kind == ns.kind);
        let init_inode = init.map(|i| i.inode.clone());
        let verdict = match (&ns.inode, &init_inode) {
            (Ok(a), Some(Ok(b))) => {
                if a != b {
                    isolated.push(ns.kind.to_owned());
                }
                Ok(Value::Text(if a != b { "yes" } else { "no" }.into()))
            }
            (Err(e), _) | (_, Some(Err(e))) => Err(e.clone()),
            (_, None) => Err(syslens_probe::Missing::not_in_kernel(ns.kind)),
        };
        let baseline = init
            .map(|i| i.baseline.clone())
            .unwrap_or(Err(syslens_probe::Missing::not_in_kernel(ns.kind)));
        t.push(vec![
            Ok(ns.kind.into()),
            ns.inode.clone().map(Value::Unsigned),
            init_inode
                .unwrap_or(Err(syslens_probe::Missing::not_in_kernel(ns.kind)))
                .map(Value::Unsigned),
            verdict,
            baseline.map(|b| match b {
                Baseline::FixedInode => Value::Text("fixed inode".into()),
                Baseline::Pid1 => Value::Text("PID 1".into()),
            }),
        ]);
    }
    s.figure(
        "isolated namespaces",
        Ok(Value::List(isolated)),
        Unit::None,
        "ns inodes vs initial",
    );
    s.tables.push(t);
    s.note("initial namespaces: fixed inode numbers where the kernel has them, else PID 1's links (unreadable on some hosts even for root)");
    s
}

/// The fewer of the quota's CPUs and the CPUs the affinity (cpuset) allows; with no
/// quota, the allowed CPUs alone.
fn usable_cpus(l: &EffectiveLimits, allowed: Val<u64>) -> Val<f64> {
    let allowed = allowed? as f64;
    Ok(match l.cpu.clone()? {
        Some(b) => b.value.cpus.min(allowed),
        None => allowed,
    })
}

/// Where a bound comes from, as a figure's source.
fn set_by<T>(b: &Option<Bound<T>>, none: &str) -> String {
    match b {
        Some(b) => format!(
            "{}/{} (set by {})",
            b.set_by.host_dir, b.file, b.set_by.path
        ),
        None => none.to_owned(),
    }
}

/// The limits that bind the process: the lowest up each cgroup chain, with the cgroup
/// that sets it (a container's limit often sits above its own cgroup).
fn effective_limits(s: &mut Section, l: &EffectiveLimits) {
    let chain = "every cgroup from the process's up to the root";
    s.figure(
        "effective memory limit",
        l.memory.clone().map(|b| {
            b.map_or(Value::Text("unlimited".into()), |b| {
                Value::Unsigned(b.value)
            })
        }),
        Unit::Bytes,
        l.memory
            .as_ref()
            .map_or(chain.to_owned(), |b| set_by(b, chain)),
    );
    s.figure(
        "memory against its limit",
        l.memory_sentence(),
        Unit::None,
        chain,
    );
    s.figure(
        "effective CPU quota (CPUs)",
        l.cpu.clone().map(|b| {
            b.map_or(Value::Text("unlimited".into()), |b| {
                Value::Float(b.value.cpus)
            })
        }),
        Unit::None,
        l.cpu
            .as_ref()
            .map_or(chain.to_owned(), |b| set_by(b, chain)),
    );
    s.figure("CPU against its quota", l.cpu_sentence(), Unit::None, chain);
    s.figure(
        "effective pids limit",
        l.pids.clone().map(|b| {
            b.map_or(Value::Text("unlimited".into()), |b| {
                Value::Unsigned(b.value)
            })
        }),
        Unit::None,
        l.pids
            .as_ref()
            .map_or(chain.to_owned(), |b| set_by(b, chain)),
    );
    s.figure(
        "pids against its limit",
        l.pids_sentence(),
        Unit::None,
        chain,
    );
}

/// The host's cgroup layout, and the `--cgroup` cgroup's CPU and pids limits.
pub fn system(v: &SystemView) -> Section {
    let mut s = Section::new(ConceptId::CgroupsNamespaces);
    match &v.layout {
        Ok(l) => {
            s.figure(
                "cgroup mode",
                Ok(l.mode.name()),
                Unit::None,
                "/proc/self/mountinfo",
            );
            let mut t = Table::new(
                "cgroup hierarchies",
                &[
                    ("version", Unit::None),
                    ("mount", Unit::None),
                    ("controllers", Unit::None),
                ],
                "/proc/self/mountinfo",
            );
            for m in &l.v1_mounts {
                let ctrls: Vec<&str> = m
                    .super_options
                    .split(',')
                    .filter(|o| *o != "rw" && *o != "ro")
                    .collect();
                t.push(vec![
                    Ok("v1".into()),
                    Ok(m.mount_point.as_str().into()),
                    Ok(ctrls.join(",").into()),
                ]);
            }
            if let Some(m) = &l.v2_mount {
                let ctrls = if l.v2_controllers.is_empty() {
                    "(none)".to_owned()
                } else {
                    l.v2_controllers.join(",")
                };
                t.push(vec![
                    Ok("v2".into()),
                    Ok(m.mount_point.as_str().into()),
                    Ok(ctrls.into()),
                ]);
            }
            s.tables.push(t);
        }
        Err(e) => s.figure::<u64>(
            "cgroup mode",
            Err(e.clone()),
            Unit::None,
            "/proc/self/mountinfo",
        ),
    }
    if let Some(scope) = &v.scope {
        s.figure(
            "scoped to cgroup",
            Ok(scope.path.as_str()),
            Unit::None,
            "--cgroup",
        );
        match &scope.cpu {
            Ok(c) => {
                s.figure(
                    "cpu quota (CPUs)",
                    quota_cpus(&c.quota),
                    Unit::None,
                    &c.dir.host_dir,
                );
                s.figure(
                    "throttled periods",
                    c.throttled_periods.clone(),
                    Unit::Count,
                    &c.dir.host_dir,
                );
            }
            Err(e) => s.figure::<u64>("cpu cgroup", Err(e.clone()), Unit::None, "cpu controller"),
        }
        match &scope.pids {
            Ok(p) => {
                s.figure("tasks", p.current.clone(), Unit::Count, &p.dir.host_dir);
                s.figure("pids limit", limit(&p.max), Unit::None, &p.dir.host_dir);
            }
            Err(e) => s.figure::<u64>("pids cgroup", Err(e.clone()), Unit::None, "pids controller"),
        }
    }
    s
}
