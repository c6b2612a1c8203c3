//! The lab report, in the catalogue's JSON format (schema_version 1), and the claim
//! checks computed from measurements.

use std::collections::BTreeMap;

use serde::Serialize;

use super::stats::Summary;
use crate::catalogue::ConceptId;
use crate::model::host::Host;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Skipped,
}

/// A claim of the catalogue, checked against what was measured.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub claim: String,
    pub status: Status,
    pub observed: String,
    pub expected: String,
    pub reason: Option<String>,
}

/// Direction of a comparison in a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Less,
    AtLeast,
    AtMost,
    Greater,
}

impl Cmp {
    fn holds(self, observed: f64, threshold: f64) -> bool {
        match self {
            Cmp::Less => observed < threshold,
            Cmp::AtLeast => observed >= threshold,
            Cmp::AtMost => observed <= threshold,
            Cmp::Greater => observed > threshold,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Cmp::Less => "<",
            Cmp::AtLeast => ">=",
            Cmp::AtMost => "<=",
            Cmp::Greater => ">",
        }
    }
}

impl Check {
    /// Passes when `observed cmp threshold`; both are shown as the caller formats them.
    pub fn compare(
        claim: &str,
        observed: f64,
        cmp: Cmp,
        threshold: f64,
        show: impl Fn(f64) -> String,
    ) -> Check {
        let ok = observed.is_finite() && cmp.holds(observed, threshold);
        Check {
            claim: claim.to_owned(),
            status: if ok { Status::Passed } else { Status::Failed },
            observed: show(observed),
            expected: format!("{} {}", cmp.symbol(), show(threshold)),
            reason: None,
        }
    }

    /// Replaces the observed text (to add context the unit formatter lacks).
    pub fn observed(mut self, text: impl Into<String>) -> Check {
        self.observed = text.into();
        self
    }

    /// Passes when `holds`, with free-form observed and expected text.
    pub fn holds(
        claim: &str,
        holds: bool,
        observed: impl Into<String>,
        expected: impl Into<String>,
    ) -> Check {
        Check {
            claim: claim.to_owned(),
            status: if holds {
                Status::Passed
            } else {
                Status::Failed
            },
            observed: observed.into(),
            expected: expected.into(),
            reason: None,
        }
    }

    pub fn skipped(claim: &str, reason: impl Into<String>) -> Check {
        Check {
            claim: claim.to_owned(),
            status: Status::Skipped,
            observed: String::new(),
            expected: String::new(),
            reason: Some(reason.into()),
        }
    }

    pub fn failed(claim: &str, reason: impl Into<String>) -> Check {
        Check {
            claim: claim.to_owned(),
            status: Status::Failed,
            observed: String::new(),
            expected: String::new(),
            reason: Some(reason.into()),
        }
    }
}

/// A measured metric with its spread.
#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    pub name: String,
    pub unit: &'static str,
    #[serde(flatten)]
    pub summary: Summary,
    /// Why the figure is noisy (CV over 5%, two modes), when it is.
    pub noisy: Option<String>,
    /// A subtracted baseline (loop overhead, second touch), same unit, when one applies.
    pub baseline: Option<f64>,
}

/// A kernel-side reading before and after the provoked event.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub source: String,
    pub field: String,
    pub before: f64,
    pub after: f64,
    pub unit: &'static str,
}

/// A series for a plot.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub name: String,
    pub x: String,
    pub y: String,
    pub points: Vec<[f64; 2]>,
}

/// One lab's report.
#[derive(Debug, Clone, Serialize)]
pub struct LabReport {
    pub concept: ConceptId,
    pub title: &'static str,
    pub host: Host,
    pub params: BTreeMap<String, serde_json::Value>,
    pub schema_version: u32,
    pub metrics: Vec<Metric>,
    pub checks: Vec<Check>,
    pub evidence: Vec<Evidence>,
    pub series: Vec<Series>,
    /// Things the reader should know: fallbacks taken, preconditions, noise.
    pub notes: Vec<String>,
    pub duration_seconds: f64,
}

impl LabReport {
    pub fn new(concept: ConceptId, host: Host) -> LabReport {
        LabReport {
            concept,
            title: concept.title(),
            host,
            params: BTreeMap::new(),
            schema_version: SCHEMA_VERSION,
            metrics: Vec::new(),
            checks: Vec::new(),
            evidence: Vec::new(),
            series: Vec::new(),
            notes: Vec::new(),
            duration_seconds: 0.0,
        }
    }

    pub fn param(&mut self, key: &str, value: impl Serialize) {
        self.params.insert(
            key.to_owned(),
            serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
        );
    }

    /// Records a metric from its samples; returns the summary for claims.
    pub fn metric(&mut self, name: &str, unit: &'static str, samples: &[f64]) -> Option<Summary> {
        self.metric_with_baseline(name, unit, samples, None)
    }

    pub fn metric_with_baseline(
        &mut self,
        name: &str,
        unit: &'static str,
        samples: &[f64],
        baseline: Option<f64>,
    ) -> Option<Summary> {
        let summary = Summary::of(samples)?;
        self.metrics.push(Metric {
            name: name.to_owned(),
            unit,
            noisy: summary.noise(),
            summary: summary.clone(),
            baseline,
        });
        Some(summary)
    }

    pub fn check(&mut self, c: Check) {
        self.checks.push(c);
    }

    pub fn evidence(
        &mut self,
        source: impl Into<String>,
        field: &str,
        before: f64,
        after: f64,
        unit: &'static str,
    ) {
        self.evidence.push(Evidence {
            source: source.into(),
            field: field.to_owned(),
            before,
            after,
            unit,
        });
    }

    pub fn series(&mut self, name: &str, x: &str, y: &str, points: Vec<[f64; 2]>) {
        self.series.push(Series {
            name: name.to_owned(),
            x: x.to_owned(),
            y: y.to_owned(),
            points,
        });
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// Failed when any claim failed; a lab whose claims were all skipped did not fail.
    pub fn failed(&self) -> bool {
        self.count(Status::Failed) > 0
    }
}

/// Formats bytes for observed/expected text.
pub fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

pub fn pct(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// The statuses of the claims a lab's `analyze` draws from `measured`: for each lab's
/// unit tests, which feed it agreeing and contradicting evidence.
#[cfg(test)]
pub fn claim_statuses<M>(
    concept: ConceptId,
    measured: &M,
    analyze: fn(&M, &mut LabReport),
) -> Vec<Status> {
    let mut report = LabReport::new(
        concept,
        Host::read(&mut syslens_probe::Reader::host().unwrap()),
    );
    analyze(measured, &mut report);
    report.checks.iter().map(|c| c.status).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_passes_and_fails_on_the_numbers() {
        let show = |x: f64| format!("{x:.0}");
        assert_eq!(
            Check::compare("c", 5.0, Cmp::AtLeast, 5.0, show).status,
            Status::Passed
        );
        assert_eq!(
            Check::compare("c", 4.9, Cmp::AtLeast, 5.0, show).status,
            Status::Failed
        );
        assert_eq!(
            Check::compare("c", 5.0, Cmp::Less, 5.0, show).status,
            Status::Failed
        );
        assert_eq!(
            Check::compare("c", f64::NAN, Cmp::AtMost, 5.0, show).status,
            Status::Failed
        );
        let c = Check::compare("c", 3.0, Cmp::Less, 5.0, show);
        assert_eq!((c.observed.as_str(), c.expected.as_str()), ("3", "< 5"));
    }
}
