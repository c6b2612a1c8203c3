//! `syslens lab`: which labs a name selects, and the child side of every lab (the
//! re-executed `syslens __lab-child CONCEPT ROLE PARAMS`).

use serde::Serialize;

use crate::catalogue::{ConceptId, UnknownConcept};
use crate::concepts::{def, REGISTRY};
use crate::lab::params::{HostLimits, Value};
use crate::lab::{self, LabDef};

/// The labs `name` selects: `all` for every lab in catalogue order, else one concept's
/// (case-insensitive, `_` for `-`).
pub fn select(name: &str) -> Result<Vec<&'static LabDef>, UnknownConcept> {
    if name.eq_ignore_ascii_case("all") {
        return Ok(REGISTRY.iter().map(|c| c.lab).collect());
    }
    ConceptId::lookup(name).map(|id| vec![def(id).lab])
}

/// One lab's parameters with their ranges on this host (`syslens lab ID --params`).
#[derive(Debug, Serialize)]
pub struct LabParams {
    /// The lab's id.
    pub lab: &'static str,
    /// Its parameters, in declaration order.
    pub params: Vec<ParamRow>,
}

/// One parameter of [`LabParams`].
#[derive(Debug, Serialize)]
pub struct ParamRow {
    /// The key `--set` takes.
    pub key: &'static str,
    /// Its unit (bytes, ms, fraction, choice, or what is counted).
    pub unit: &'static str,
    /// The generic flag that sets it too (`--size`, `--trials`).
    pub alias: Option<&'static str>,
    /// The value of a full run, in the unit (bytes, ms).
    pub default: Value,
    /// The value of a `--quick` run.
    pub quick: Value,
    /// The lowest value allowed (a choice: none).
    pub min: Option<Value>,
    /// The highest value allowed on this host; None for a choice, or when this host's
    /// bound cannot be read (`range` says why).
    pub max: Option<Value>,
    /// The choices, for a choice.
    pub options: Option<&'static [&'static str]>,
    /// The range as a person reads it, with how the host bound was computed.
    pub range: String,
    /// The name the lab report's params record it under (`size_bytes`).
    pub recorded_as: String,
    /// What it changes in the experiment.
    pub help: &'static str,
    /// The default and quick values as shown (`256 MiB`).
    pub shown: [String; 2],
}

/// The parameters of `defs` with their ranges under `limits`; runs nothing.
pub fn params_listing(defs: &[&'static LabDef], limits: &HostLimits) -> Vec<LabParams> {
    defs.iter()
        .map(|d| LabParams {
            lab: d.id.slug(),
            params: d
                .params
                .iter()
                .map(|p| {
                    let range = p.range(limits);
                    let choice = match p.kind {
                        lab::params::Kind::Choice(options) => Some(options),
                        _ => None,
                    };
                    ParamRow {
                        key: p.key,
                        unit: p.kind.unit(),
                        alias: p.alias.map(|a| a.flag()),
                        default: p.default,
                        quick: p.quick,
                        min: choice.is_none().then_some(range.min),
                        max: choice
                            .is_none()
                            .then(|| range.max.as_ref().ok().map(|b| b.value))
                            .flatten(),
                        options: choice,
                        range: range.describe(),
                        recorded_as: p.report_name(),
                        help: p.help,
                        shown: [p.kind.show(p.default), p.kind.show(p.quick)],
                    }
                })
                .collect(),
        })
        .collect()
}

/// Runs the child side of a lab in the re-executed child; its exit code.
pub fn child_main(concept: &str, role: &str, params: &str) -> i32 {
    let lab = ConceptId::from_slug(concept).map(|id| def(id).lab);
    lab::child_main(lab, role, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_selects_every_lab_in_order_and_a_name_one() {
        let all = select("all").unwrap_or_default();
        assert_eq!(all.len(), 17);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
        let one = select("Demand_Paging").unwrap_or_default();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].id, ConceptId::DemandPaging);
        assert!(select("nope").is_err());
    }

    #[test]
    fn issue_18_the_listing_names_each_range_and_its_host_bound() {
        let limits = HostLimits {
            mem_available: Ok(8 << 30),
            cgroup_limit: None,
            cpus: Ok(2),
        };
        let cow = params_listing(&select("cow").unwrap_or_default(), &limits);
        let size = &cow[0].params[0];
        assert_eq!(
            (size.key, size.unit, size.alias),
            ("size", "bytes", Some("--size"))
        );
        assert_eq!(size.max, Some(Value::Int(2 << 30)));
        assert_eq!(size.recorded_as, "size_bytes");
        assert!(
            size.range.contains("25% of MemAvailable (8.0 GiB)"),
            "{}",
            size.range
        );
        let locking = params_listing(&select("locking").unwrap_or_default(), &limits);
        let threads = locking[0].params.iter().find(|p| p.key == "threads");
        assert_eq!(threads.and_then(|t| t.max), Some(Value::Int(8)));
    }
}
