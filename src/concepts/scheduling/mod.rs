//! Scheduling and context switches.

pub mod events;
pub mod lab;
pub mod learn;
pub mod rules;

/// This concept's entry in the registry: its lenses, rules, lab and explanation.
pub const CONCEPT: ConceptDef = ConceptDef {
    id: ConceptId::Scheduling,
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

use syslens_probe::stat::policy_name;
use syslens_probe::status::Status;
use syslens_probe::Val;

use crate::model::figure::{rate, Sample, Unit};
use crate::model::process::{ProcessView, Section};

use crate::model::system::SystemView;

use super::{ConceptDef, ConceptId};

fn vol(st: &Status) -> &Val<u64> {
    &st.voluntary_ctxt_switches
}

fn invol(st: &Status) -> &Val<u64> {
    &st.nonvoluntary_ctxt_switches
}

/// Context switches, time on a CPU against time on a run queue, policy, nice and affinity.
pub fn lens(v: &ProcessView) -> Section {
    let mut s = Section::new(ConceptId::Scheduling);
    let status_src = v.src("status");
    let first = v.first();
    let last = v.last();
    s.figure(
        "voluntary switches (blocked, slept)",
        first.status_counter(vol).map(|c| c.value),
        Unit::Count,
        &status_src,
    );
    s.figure(
        "involuntary switches (preempted)",
        first.status_counter(invol).map(|c| c.value),
        Unit::Count,
        &status_src,
    );
    s.figure(
        "voluntary switches rate",
        last.clone()
            .and_then(|l| rate(first.status_counter(vol), l.status_counter(vol))),
        Unit::PerSecond,
        format!("{status_src}, two samples"),
    );
    s.figure(
        "involuntary switches rate",
        last.clone()
            .and_then(|l| rate(first.status_counter(invol), l.status_counter(invol))),
        Unit::PerSecond,
        format!("{status_src}, two samples"),
    );
    let sched = v.detail.schedstat.clone();
    s.figure(
        "time on CPU",
        sched.clone().map(|x| x.run_ns as f64 / 1e9),
        Unit::Seconds,
        v.src("schedstat"),
    );
    s.figure(
        "time waiting on a run queue",
        sched.clone().map(|x| x.wait_ns as f64 / 1e9),
        Unit::Seconds,
        v.src("schedstat"),
    );
    s.figure(
        "mean run-queue wait per time slice",
        sched.and_then(|x| {
            if x.slices == 0 {
                Err(syslens_probe::Missing::NotApplicable { why: "never ran" })
            } else {
                Ok(x.wait_ns as f64 / x.slices as f64)
            }
        }),
        Unit::Nanoseconds,
        "schedstat wait / slices",
    );
    let wait = |w: &crate::model::process::WindowSample| {
        w.schedstat.clone().map(|x| Sample {
            value: x.wait_ns,
            at: w.at,
        })
    };
    s.figure(
        "run-queue delay now (share of wall time)",
        last.and_then(|l| rate(wait(first), wait(l)))
            .map(|ns_per_s| ns_per_s / 1e9),
        Unit::Ratio,
        format!("{}, two samples", v.src("schedstat")),
    );
    let stat = v.stat();
    s.figure(
        "policy",
        stat.clone().and_then(|s| s.policy.clone()).map(policy_name),
        Unit::None,
        v.src("stat"),
    );
    s.figure(
        "nice",
        stat.clone().map(|s| s.nice),
        Unit::None,
        v.src("stat"),
    );
    s.figure(
        "last CPU",
        stat.and_then(|s| s.processor.clone()),
        Unit::None,
        v.src("stat"),
    );
    s.figure(
        "allowed CPUs (affinity)",
        v.status()
            .and_then(|s| s.cpus_allowed_list.clone())
            .map(|c| c.as_str().to_owned()),
        Unit::None,
        &status_src,
    );
    s
}

/// CPUs, load, runnable and D-state processes, context switches and CPU pressure.
pub fn system(v: &SystemView) -> Section {
    let mut s = Section::new(ConceptId::Scheduling);
    s.figure(
        "CPUs online",
        v.host.cpus.clone(),
        Unit::Count,
        "/sys/devices/system/cpu/online",
    );
    s.figure(
        "load average (1, 5, 15 min)",
        v.host
            .loadavg
            .clone()
            .map(|l| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])),
        Unit::None,
        "/proc/loadavg",
    );
    let st = v.states.as_ref().map_err(Clone::clone);
    s.figure(
        "runnable processes",
        st.clone().map(|c| c.running),
        Unit::Count,
        "/proc/*/stat",
    );
    s.figure(
        "in uninterruptible sleep (D)",
        st.map(|c| c.disk_sleep),
        Unit::Count,
        "/proc/*/stat",
    );
    s.figure(
        "context switches rate",
        v.stat_rate(|p| &p.ctxt),
        Unit::PerSecond,
        "/proc/stat ctxt, two samples",
    );
    s.figure(
        "CPU pressure (some, avg10)",
        v.pressure[0].1.clone().map(|p| p.some.avg10 / 100.0),
        Unit::Ratio,
        "/proc/pressure/cpu",
    );
    s
}
