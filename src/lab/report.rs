//! The lab report, in the catalogue's JSON format (schema_version 1), and the claim
//! checks computed from measurements.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::calibrate::Calibration;
use super::stats::Summary;
use crate::catalogue::ConceptId;
use crate::model::host::Host;

/// The report format's version, written as `schema_version`.
pub const SCHEMA_VERSION: u32 = 1;

/// The outcome of one claim check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The measurement agreed with the claim.
    Passed,
    /// The measurement contradicted the claim, or could not be taken.
    Failed,
    /// The claim could not be checked on this host (see `reason`).
    Skipped,
}

/// A claim of the catalogue, checked against what was measured.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The catalogue's claim, as text.
    pub claim: String,
    /// Whether the claim held.
    pub status: Status,
    /// What was measured, formatted with its unit.
    pub observed: String,
    /// The condition the measurement had to meet (e.g. `>= 5.0 MiB`).
    pub expected: String,
    /// Why the claim was skipped or failed without a measurement.
    pub reason: Option<String>,
}

/// Direction of a comparison in a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// Observed strictly below the threshold.
    Less,
    /// Observed at or above the threshold.
    AtLeast,
    /// Observed at or below the threshold.
    AtMost,
    /// Observed strictly above the threshold.
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

    /// Skipped, with the reason it could not be checked on this host.
    pub fn skipped(claim: &str, reason: impl Into<String>) -> Check {
        Check {
            claim: claim.to_owned(),
            status: Status::Skipped,
            observed: String::new(),
            expected: String::new(),
            reason: Some(reason.into()),
        }
    }

    /// Failed without a measurement, with the reason.
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
    /// What was measured.
    pub name: String,
    /// Unit of the samples (e.g. `ns`, `bytes`).
    pub unit: &'static str,
    /// Statistics of the samples (flattened into the metric's JSON).
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
    /// Where the reading came from (e.g. `/proc/vmstat`).
    pub source: String,
    /// The field read in `source`.
    pub field: String,
    /// The reading before the event.
    pub before: f64,
    /// The reading after the event.
    pub after: f64,
    /// Unit of both readings.
    pub unit: &'static str,
}

/// What a series' x axis is, which decides how it is drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Axis {
    /// A measured quantity (seconds, bytes, a fraction): a line, ticks anywhere.
    Continuous,
    /// Whole numbers (a trial, an order, a count): a line, ticks on integers only.
    Integer,
    /// Named cases (tmpfs vs disk, 1 vs 2 threads, the steps of a lab): bars, one
    /// group per label; a point's x is the index of its label here.
    Categories(Vec<String>),
}

/// A series for a plot (read back from a report's JSON too: the report's plots are
/// tested on the series of a recorded tour).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Series {
    /// What the series shows.
    pub name: String,
    /// Label of the x axis.
    pub x: String,
    /// Label of the y axis.
    pub y: String,
    /// What the x axis is.
    pub axis: Axis,
    /// The `[x, y]` points, in the order measured.
    #[serde(deserialize_with = "points_read_back")]
    pub points: Vec<[f64; 2]>,
}

/// Points read back from JSON, where a NaN (a figure not measured) was written as null.
fn points_read_back<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<[f64; 2]>, D::Error> {
    let raw: Vec<[Option<f64>; 2]> = Deserialize::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|[x, y]| [x.unwrap_or(f64::NAN), y.unwrap_or(f64::NAN)])
        .collect())
}

impl Series {
    /// A series over a continuous x axis (drawn as a line).
    pub fn line(name: &str, x: &str, y: &str, points: Vec<[f64; 2]>) -> Series {
        Series {
            name: name.to_owned(),
            x: x.to_owned(),
            y: y.to_owned(),
            axis: Axis::Continuous,
            points,
        }
    }
}

/// One lab's report.
#[derive(Debug, Clone, Serialize)]
pub struct LabReport {
    /// The concept the lab demonstrates.
    pub concept: ConceptId,
    /// The concept's title, from the catalogue.
    pub title: &'static str,
    /// The host the lab ran on.
    pub host: Host,
    /// The lab's parameters, by name.
    pub params: BTreeMap<String, serde_json::Value>,
    /// The host settings the lab's outcome depends on, by the file they are read from:
    /// the value, or why it could not be read (part of the environment fingerprint).
    pub settings: BTreeMap<String, Result<String, String>>,
    /// The report format's version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// Figures measured, with their spread.
    pub metrics: Vec<Metric>,
    /// The catalogue's claims, checked.
    pub checks: Vec<Check>,
    /// Kernel-side readings before and after the event.
    pub evidence: Vec<Evidence>,
    /// Series for plots.
    pub series: Vec<Series>,
    /// Things the reader should know: fallbacks taken, preconditions, noise.
    pub notes: Vec<String>,
    /// Wall time the lab took, in seconds.
    pub duration_seconds: f64,
    /// The calibration of the run (shared by every lab of a tour): part of the
    /// fingerprint.
    pub calibration: Option<Calibration>,
}

impl LabReport {
    /// An empty report for `concept` on `host`.
    pub fn new(concept: ConceptId, host: Host) -> LabReport {
        LabReport {
            concept,
            title: concept.title(),
            host,
            params: BTreeMap::new(),
            settings: BTreeMap::new(),
            schema_version: SCHEMA_VERSION,
            metrics: Vec::new(),
            checks: Vec::new(),
            evidence: Vec::new(),
            series: Vec::new(),
            notes: Vec::new(),
            duration_seconds: 0.0,
            calibration: None,
        }
    }

    /// Records a parameter; a value that does not serialise is recorded as null.
    pub fn param(&mut self, key: &str, value: impl Serialize) {
        self.params.insert(
            key.to_owned(),
            serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
        );
    }

    /// Records a host setting the outcome depends on (`path` is where it was read) and
    /// names it in a note, so the text report shows it too; returns the value.
    pub fn setting(&mut self, path: &str, value: Result<String, String>) -> Result<String, String> {
        self.note(match &value {
            Ok(v) => format!("host setting {path}: {v}"),
            Err(why) => format!("host setting unknown: {why}"),
        });
        self.settings.insert(path.to_owned(), value.clone());
        value
    }

    /// Records a metric from its samples; returns the summary for claims.
    pub fn metric(&mut self, name: &str, unit: &'static str, samples: &[f64]) -> Option<Summary> {
        self.metric_with_baseline(name, unit, samples, None)
    }

    /// Records a metric like [`LabReport::metric`], with the baseline that was subtracted from it.
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

    /// Adds a checked claim.
    pub fn check(&mut self, c: Check) {
        self.checks.push(c);
    }

    /// Records a kernel-side reading before and after the event.
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

    /// Adds a series for a plot, over an x axis of kind `axis`.
    pub fn series(&mut self, name: &str, x: &str, y: &str, axis: Axis, points: Vec<[f64; 2]>) {
        self.series.push(Series {
            axis,
            ..Series::line(name, x, y, points)
        });
    }

    /// Adds a bar series: one measured value per named case, in order.
    pub fn bars(&mut self, name: &str, x: &str, y: &str, bars: &[(&str, f64)]) {
        self.series(
            name,
            x,
            y,
            Axis::Categories(bars.iter().map(|(l, _)| (*l).to_owned()).collect()),
            bars.iter()
                .enumerate()
                .map(|(i, (_, v))| [i as f64, *v])
                .collect(),
        );
    }

    /// Adds a note for the reader.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// How many claims have `status`.
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

/// Formats a ratio as a percentage for observed/expected text.
pub fn pct(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// A claim's threshold ratio as a percentage in the claim's text, as short as it is
/// exact (`0.02` -> `2%`, `0.025` -> `2.5%`): the text and the check share one constant.
pub fn pct_text(ratio: f64) -> String {
    format!("{}%", (ratio * 1e4).round() / 1e2)
}

/// A claim's threshold factor in the claim's text (`2.0` -> `2x`, `1.5` -> `1.5x`).
pub fn times_text(factor: f64) -> String {
    format!("{factor}x")
}

/// The statuses of the claims a lab's `analyze` draws from `measured`: for each lab's
/// unit tests, which feed it agreeing and contradicting evidence.
#[cfg(test)]
pub fn claim_statuses<M>(
    concept: ConceptId,
    measured: &M,
    analyze: fn(&M, &mut LabReport),
) -> Vec<Status> {
    claims(concept, measured, analyze)
        .iter()
        .map(|c| c.status)
        .collect()
}

/// The claims a lab's `analyze` draws from `measured`, with their texts.
#[cfg(test)]
pub fn claims<M>(concept: ConceptId, measured: &M, analyze: fn(&M, &mut LabReport)) -> Vec<Check> {
    analyzed(concept, measured, analyze).checks
}

/// The report a lab's `analyze` makes of `measured` on this host.
#[cfg(test)]
pub fn analyzed<M>(concept: ConceptId, measured: &M, analyze: fn(&M, &mut LabReport)) -> LabReport {
    let mut report = LabReport::new(
        concept,
        Host::read(&mut syslens_probe::Reader::host().unwrap()),
    );
    analyze(measured, &mut report);
    report
}

/// The notes of `analyze`'s report on `measured` that name a spent time budget (test
/// helper: the labs' adaptive trials).
#[cfg(test)]
pub fn budget_notes<M>(
    concept: ConceptId,
    measured: &M,
    analyze: fn(&M, &mut LabReport),
) -> Vec<String> {
    analyzed(concept, measured, analyze)
        .notes
        .into_iter()
        .filter(|n| n.contains("time budget"))
        .collect()
}

/// The bars of the series named `name` (test helper): each category with its value.
#[cfg(test)]
pub fn bars_of(r: &LabReport, name: &str) -> Vec<(String, f64)> {
    let s = r
        .series
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no series {name:?}"));
    let Axis::Categories(labels) = &s.axis else {
        panic!("{name:?} is not bars");
    };
    labels
        .iter()
        .cloned()
        .zip(s.points.iter().map(|p| p[1]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A series read back from a report's JSON: a NaN point was written as null.
    #[test]
    fn issue_19_a_series_reads_back_with_its_unmeasured_points() {
        let mut r = LabReport::new(
            ConceptId::SlabBuddy,
            Host::read(&mut syslens_probe::Reader::host().unwrap()),
        );
        r.bars("b", "zone", "MiB", &[("DMA", f64::NAN), ("Normal", 2.5)]);
        let json = serde_json::to_string(&r.series[0]).unwrap();
        assert!(json.contains("[0.0,null]"), "{json}");
        let back: Series = serde_json::from_str(&json).unwrap();
        assert!(back.points[0][1].is_nan());
        assert_eq!(
            (back.points[1], back.axis),
            ([1.0, 2.5], r.series[0].axis.clone())
        );
    }

    #[test]
    fn issue_21_a_host_setting_is_recorded_and_named_in_a_note() {
        let host = Host::read(&mut syslens_probe::Reader::host().unwrap());
        let mut r = LabReport::new(ConceptId::LazyInit, host);
        assert_eq!(
            r.setting("/proc/sys/vm/x", Ok("2".into())).as_deref(),
            Ok("2")
        );
        let _ = r.setting("/proc/sys/vm/y", Err("/proc/sys/vm/y: gone".into()));
        assert_eq!(r.settings["/proc/sys/vm/x"], Ok("2".to_owned()));
        assert!(r.settings["/proc/sys/vm/y"].is_err());
        assert_eq!(
            r.notes,
            [
                "host setting /proc/sys/vm/x: 2",
                "host setting unknown: /proc/sys/vm/y: gone"
            ]
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["settings"]["/proc/sys/vm/x"]["Ok"], "2");
    }

    #[test]
    fn issue_23_thresholds_read_in_claim_texts_as_written() {
        assert_eq!(pct_text(0.02), "2%");
        assert_eq!(pct_text(0.9), "90%");
        assert_eq!(pct_text(0.025), "2.5%");
        assert_eq!(pct_text(0.07), "7%");
        assert_eq!(times_text(2.0), "2x");
        assert_eq!(times_text(1.5), "1.5x");
    }

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
