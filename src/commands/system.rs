//! `syslens system`: the whole machine, one section per concept in catalogue order.

use serde::Serialize;
use syslens_probe::{Missing, Val};

use crate::concepts::REGISTRY;
use crate::model::figure::{ser_val, Section};
use crate::model::host::Host;
use crate::model::system::SystemView;

/// The system report: the host, then one section per concept.
#[derive(Debug, Serialize)]
pub struct SystemReport {
    /// The environment fingerprint.
    pub host: Host,
    /// Seconds between the first and last sample (rates come from these two).
    pub window_seconds: Option<f64>,
    /// The cgroup the view is scoped to (`--cgroup`), or why there is none.
    #[serde(serialize_with = "ser_val")]
    pub cgroup: Val<String>,
    /// One section per concept.
    pub sections: Vec<Section>,
}

/// Every concept's system lens over `v`.
pub fn report(v: SystemView) -> SystemReport {
    let sections = REGISTRY.iter().map(|c| (c.system)(&v)).collect();
    SystemReport {
        window_seconds: v.window_secs(),
        cgroup: v
            .scope
            .as_ref()
            .map(|s| s.path.clone())
            .ok_or(Missing::NotApplicable { why: "whole host" }),
        host: v.host,
        sections,
    }
}
