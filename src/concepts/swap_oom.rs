//! Swapping and the OOM killer.

use syslens_probe::cgroup::CgroupVersion;
use syslens_probe::Val;

use crate::figure::{Unit, Value};
use crate::lens::{ProcessView, Section};

use super::ConceptId;

fn limit(l: &Val<Option<u64>>) -> Val<Value> {
    l.clone()
        .map(|l| l.map_or(Value::Text("unlimited".into()), Value::Unsigned))
}

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
            s.figure(
                "cgroup memory limit",
                limit(&m.limit),
                Unit::Bytes,
                format!("{d}/{limit_file}"),
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
