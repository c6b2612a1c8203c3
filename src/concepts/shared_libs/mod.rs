//! Shared libraries: what is mapped, how much is shared, what was replaced on disk.

pub mod events;
pub mod lab;
pub mod learn;
pub mod rules;

/// This concept's entry in the registry: its lenses, rules, lab and explanation.
pub const CONCEPT: ConceptDef = ConceptDef {
    id: ConceptId::SharedLibs,
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

use syslens_probe::{Missing, Val};

use crate::model::figure::{Table, Unit, Value};
use crate::model::process::{ProcessView, Section};

use crate::model::system::SystemView;

use super::{ConceptDef, ConceptId};

#[derive(Default)]
struct Lib {
    rss: u64,
    pss: u64,
    deleted: bool,
    accounted: bool,
}

/// The libraries mapped, with their RSS and PSS, and those deleted on disk.
pub fn lens(v: &ProcessView) -> Section {
    let mut s = Section::new(ConceptId::SharedLibs);
    let maps = match &v.detail.maps {
        Ok(m) => m,
        Err(e) => {
            s.figure::<u64>(
                "mapped libraries",
                Err(e.clone()),
                Unit::Count,
                v.src("smaps"),
            );
            return s;
        }
    };
    let mut libs: BTreeMap<&str, Lib> = BTreeMap::new();
    for m in maps
        .iter()
        .filter(|m| m.kind == syslens_probe::smaps::MapKind::Library)
    {
        let lib = libs.entry(m.path.as_str()).or_default();
        lib.deleted |= m.deleted;
        if let Some(u) = &m.usage {
            lib.accounted = true;
            lib.rss += u.rss.clone().unwrap_or(0);
            lib.pss += u.pss.clone().unwrap_or(0);
        }
    }
    s.figure(
        "mapped libraries",
        Ok(libs.len() as u64),
        Unit::Count,
        v.src("smaps"),
    );
    let deleted = libs.values().filter(|l| l.deleted).count() as u64;
    s.figure(
        "deleted on disk (need a restart)",
        Ok(deleted),
        Unit::Count,
        v.src("smaps"),
    );
    let mut t = Table::new(
        "libraries",
        &[
            ("library", Unit::None),
            ("rss", Unit::Bytes),
            ("pss", Unit::Bytes),
            ("deleted", Unit::None),
        ],
        v.src("smaps"),
    );
    let no_acct = || Missing::NotApplicable {
        why: "no accounting lines",
    };
    for (path, l) in &libs {
        let acc = |x: u64| -> Val<Value> {
            if l.accounted {
                Ok(Value::Unsigned(x))
            } else {
                Err(no_acct())
            }
        };
        t.push(vec![
            Ok((*path).into()),
            acc(l.rss),
            acc(l.pss),
            Ok(if l.deleted { "yes" } else { "no" }.into()),
        ]);
    }
    s.tables.push(t);
    s.note("Pss < Rss for a library means other processes map the same pages: each pays its share");
    s
}

/// A pointer to where libraries show: they are per process.
pub fn system(_v: &SystemView) -> Section {
    let mut s = Section::new(ConceptId::SharedLibs);
    s.note("libraries are per process (their maps): syslens inspect PID; processes still running deleted libraries are a doctor finding");
    s
}
