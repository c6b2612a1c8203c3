//! Signals: dispositions per process, pending and blocked sets per thread.

pub mod events;
pub mod lab;
pub mod learn;
pub mod rules;

/// This concept's entry in the registry: its lenses, rules, lab and explanation.
pub const CONCEPT: ConceptDef = ConceptDef {
    id: ConceptId::Signals,
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

use syslens_probe::names::signals_in;
use syslens_probe::Val;

use crate::model::figure::{Table, Unit, Value};
use crate::model::process::{ProcessView, Section};

use crate::model::system::SystemView;

use super::{ConceptDef, ConceptId};

const SIGTERM_BIT: u64 = 1 << (15 - 1);

fn names(mask: &Val<u64>) -> Val<Value> {
    mask.clone().map(|m| Value::List(signals_in(m)))
}

/// What SIGTERM will do to this process: the first thing `kill PID` sends. The init of
/// a PID namespace (pid 1 inside it: `docker run` without `--init`, `unshare --pid`)
/// is SIGNAL_UNKILLABLE: the kernel drops a default-terminate signal sent to it from
/// inside its namespace or an ancestor, so without a handler SIGTERM does nothing.
pub fn sigterm_disposition(ignored: u64, caught: u64, namespace_init: bool) -> &'static str {
    if ignored & SIGTERM_BIT != 0 {
        "ignored"
    } else if caught & SIGTERM_BIT != 0 {
        "caught by a handler"
    } else if namespace_init {
        "dropped: PID-namespace init without a handler"
    } else {
        "default (terminate)"
    }
}

/// Whether the process is pid 1 of its own PID namespace (NSpid's last entry).
pub fn is_namespace_init(status: &syslens_probe::status::Status) -> bool {
    matches!(status.ns_pid, Ok(1))
}

/// Ignored, caught and pending signals, SIGTERM's disposition, per-thread sets and zombie children.
pub fn lens(v: &ProcessView) -> Section {
    let mut s = Section::new(ConceptId::Signals);
    let src = v.src("status");
    let ign = v.status_field(|s| &s.sig_ign);
    let cgt = v.status_field(|s| &s.sig_cgt);
    s.figure(
        "ignored (SigIgn, per process)",
        names(&ign),
        Unit::None,
        &src,
    );
    s.figure(
        "caught (SigCgt, per process)",
        names(&cgt),
        Unit::None,
        &src,
    );
    s.figure(
        "pending for the process (ShdPnd)",
        names(&v.status_field(|s| &s.shd_pnd)),
        Unit::None,
        &src,
    );
    s.figure(
        "SIGTERM",
        ign.and_then(|i| {
            let init = v.status().is_ok_and(is_namespace_init);
            Ok(sigterm_disposition(i, cgt?, init))
        }),
        Unit::None,
        "SigIgn, SigCgt, NSpid",
    );
    match &v.detail.threads {
        Ok(threads) => {
            let mut t = Table::new(
                "per thread (pending and blocked sets are per thread)",
                &[
                    ("tid", Unit::None),
                    ("name", Unit::None),
                    ("pending (SigPnd)", Unit::None),
                    ("blocked (SigBlk)", Unit::None),
                ],
                v.src("task/TID/status"),
            );
            for th in threads {
                t.push(vec![
                    Ok(Value::Unsigned(th.tid as u64)),
                    th.name.clone().map(|n| n.as_str().into()),
                    names(&th.sig_pnd),
                    names(&th.sig_blk),
                ]);
            }
            s.tables.push(t);
        }
        Err(e) => s.figure::<u64>("threads", Err(e.clone()), Unit::Count, v.src("task")),
    }
    s.figure(
        "zombie children (exited, not reaped)",
        Ok(Value::List(
            v.detail
                .zombie_children
                .iter()
                .map(|p| p.to_string())
                .collect(),
        )),
        Unit::None,
        "/proc/*/stat state Z, ppid",
    );
    s
}

/// Zombies and stopped processes on the machine.
pub fn system(v: &SystemView) -> Section {
    let mut s = Section::new(ConceptId::Signals);
    let st = v.states.as_ref().map_err(Clone::clone);
    s.figure(
        "zombies (exited, not reaped)",
        st.clone().map(|c| c.zombie),
        Unit::Count,
        "/proc/*/stat",
    );
    s.figure(
        "stopped (SIGSTOP, traced)",
        st.map(|c| c.stopped),
        Unit::Count,
        "/proc/*/stat",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigterm_disposition_reads_the_right_bit() {
        assert_eq!(sigterm_disposition(1 << 14, 0, false), "ignored");
        assert_eq!(
            sigterm_disposition(0, 1 << 14, false),
            "caught by a handler"
        );
        assert_eq!(sigterm_disposition(0, 1 << 14, true), "caught by a handler");
        assert_eq!(
            sigterm_disposition(1 << 13, 1 << 15, false),
            "default (terminate)"
        );
        assert!(sigterm_disposition(0, 0, true).starts_with("dropped"));
    }
}
