//! Kernel vs user space: where the process spends its CPU, and what it may do.

pub mod lab;
pub mod learn;
pub mod rules;

/// This concept's entry in the registry: its lenses, rules, lab and explanation.
pub const CONCEPT: ConceptDef = ConceptDef {
    id: ConceptId::KernelUser,
    system,
    process: lens,
    rules: rules::RULES,
    events: &[],
    lab: &lab::LAB,
    lesson: &learn::LESSON,
    explain: include_str!("explain.md"),
    read_next: include_str!("read.md"),
    lab_source: include_str!("lab.rs"),
};

use syslens_probe::names::describe_caps;
use syslens_probe::USER_HZ;

use crate::model::figure::{rate, Unit};
use crate::model::process::{ratio, ProcessView, Section};

use crate::model::system::SystemView;

use super::{ConceptDef, ConceptId};

/// Time in user mode against time in the kernel, and the effective capabilities.
pub fn lens(v: &ProcessView) -> Section {
    let mut s = Section::new(ConceptId::KernelUser);
    let src = v.src("stat");
    let first = v.first();
    let ticks = |f: fn(&syslens_probe::stat::Stat) -> u64| first.stat_counter(f).map(|c| c.value);
    let secs = |t: syslens_probe::Val<u64>| t.map(|t| t as f64 / USER_HZ as f64);
    let utime = ticks(|s| s.utime_ticks);
    let stime = ticks(|s| s.stime_ticks);
    s.figure(
        "user time (utime)",
        secs(utime.clone()),
        Unit::Seconds,
        &src,
    );
    s.figure(
        "system time (stime)",
        secs(stime.clone()),
        Unit::Seconds,
        &src,
    );
    let total = crate::model::process::sum(&utime, &stime);
    s.figure(
        "share in the kernel",
        ratio(&stime, &total),
        Unit::Ratio,
        "stime / (utime + stime)",
    );
    let last = v.last();
    for (name, f) in [
        (
            "user CPU now",
            (|s: &syslens_probe::stat::Stat| s.utime_ticks) as fn(&_) -> u64,
        ),
        ("system CPU now", |s| s.stime_ticks),
    ] {
        let r = last
            .clone()
            .and_then(|l| rate(first.stat_counter(f), l.stat_counter(f)));
        s.figure(
            name,
            r.map(|ticks_per_s| ticks_per_s / USER_HZ as f64),
            Unit::Ratio,
            format!("{src}, two samples"),
        );
    }
    let caps = v.status_field(|s| &s.cap_eff);
    s.figure(
        "effective capabilities (CapEff)",
        caps.clone().map(describe_caps),
        Unit::None,
        v.src("status"),
    );
    s
}

/// Where the machine's CPU time went over the window.
pub fn system(v: &SystemView) -> Section {
    let mut s = Section::new(ConceptId::KernelUser);
    let src = "/proc/stat, two samples";
    s.figure("user", v.cpu_share(|c| c.user + c.nice), Unit::Ratio, src);
    s.figure(
        "system (kernel)",
        v.cpu_share(|c| c.system),
        Unit::Ratio,
        src,
    );
    s.figure(
        "interrupts (irq + softirq)",
        v.cpu_share(|c| c.irq + c.softirq),
        Unit::Ratio,
        src,
    );
    s.figure(
        "waiting for I/O (iowait)",
        v.cpu_share(|c| c.iowait),
        Unit::Ratio,
        src,
    );
    s.figure(
        "stolen by the hypervisor (steal)",
        v.cpu_share(|c| c.steal),
        Unit::Ratio,
        src,
    );
    s.figure("idle", v.cpu_share(|c| c.idle), Unit::Ratio, src);
    s
}
