//! The core measured-value types every face of syslens shares: a figure is a value
//! (or the reason it is missing) with its unit and the file it came from. Missing is
//! never shown as zero.

use std::time::Instant;

use serde::Serialize;
use syslens_probe::{Missing, Val};

use crate::catalogue::ConceptId;

/// A value as measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A count, a size, a counter.
    Unsigned(u64),
    /// A number that may be negative (nice, oom_score_adj).
    Signed(i64),
    /// A rate, a ratio, a mean.
    Float(f64),
    /// A name or a state.
    Text(String),
    /// Names (of libraries, zombies, controllers).
    List(Vec<String>),
}

/// A limit as a figure: its value, or "unlimited" when there is none.
pub fn limit(l: &Val<Option<u64>>) -> Val<Value> {
    l.clone()
        .map(|l| l.map_or(Value::Text("unlimited".into()), Value::Unsigned))
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Unsigned(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Signed(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<Vec<String>> for Value {
    fn from(v: Vec<String>) -> Self {
        Value::List(v)
    }
}

/// The unit of a value; renderers scale bytes and times for people, JSON keeps base units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Bytes; shown scaled (KiB, MiB, GiB).
    Bytes,
    /// Bytes per second.
    BytesPerSecond,
    /// How many.
    Count,
    /// Events per second.
    PerSecond,
    /// Seconds.
    Seconds,
    /// Nanoseconds.
    Nanoseconds,
    /// A share from 0 to 1.
    Ratio,
    /// Text or a list of names.
    None,
}

/// One figure of a lens: what, how much, in which unit, from where.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// What the figure is, as shown to the user.
    pub name: String,
    /// The value, or why it is missing.
    #[serde(serialize_with = "ser_val")]
    pub value: Val<Value>,
    /// The unit of the value.
    pub unit: Unit,
    /// The kernel file (or computation) the value comes from.
    pub source: String,
}

impl Figure {
    /// A figure of `value` in `unit`, read from `source`.
    pub fn new<T: Into<Value>>(
        name: impl Into<String>,
        value: Val<T>,
        unit: Unit,
        source: impl Into<String>,
    ) -> Figure {
        Figure {
            name: name.into(),
            value: value.map(Into::into),
            unit,
            source: source.into(),
        }
    }
}

/// What one concept shows of a process or of the system.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// The concept the section belongs to.
    pub concept: ConceptId,
    /// The concept's title, as the section's heading.
    pub title: &'static str,
    /// The figures, in the order shown.
    pub figures: Vec<Figure>,
    /// The tables, shown after the figures.
    pub tables: Vec<Table>,
    /// Remarks shown under the section: what a figure means here, why one is missing.
    pub notes: Vec<String>,
}

impl Section {
    /// An empty section of `concept`.
    pub fn new(concept: ConceptId) -> Section {
        Section {
            concept,
            title: concept.title(),
            figures: Vec::new(),
            tables: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a figure of `value` in `unit`, read from `source`.
    pub fn figure<T: Into<Value>>(
        &mut self,
        name: &str,
        value: Val<T>,
        unit: Unit,
        source: impl Into<String>,
    ) {
        self.figures.push(Figure::new(name, value, unit, source));
    }

    /// Adds a remark.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }
}

/// A table of a lens (threads, fds, limits, libraries).
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// What the table lists.
    pub title: String,
    /// The columns, in order.
    pub columns: Vec<Column>,
    /// One row per item; each cell a value or why it is missing.
    #[serde(serialize_with = "ser_rows")]
    pub rows: Vec<Vec<Val<Value>>>,
    /// The kernel file (or computation) the rows come from.
    pub source: String,
}

/// One column of a table: its heading and its unit.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    /// The heading.
    pub name: String,
    /// The unit of the column's values.
    pub unit: Unit,
}

impl Table {
    /// An empty table with these `(name, unit)` columns.
    pub fn new(
        title: impl Into<String>,
        columns: &[(&str, Unit)],
        source: impl Into<String>,
    ) -> Table {
        Table {
            title: title.into(),
            columns: columns
                .iter()
                .map(|(n, u)| Column {
                    name: (*n).to_owned(),
                    unit: *u,
                })
                .collect(),
            rows: Vec::new(),
            source: source.into(),
        }
    }

    /// Adds a row, one cell per column.
    pub fn push(&mut self, row: Vec<Val<Value>>) {
        self.rows.push(row);
    }
}

/// Serializes a Val as the bare value, or `{"missing": {"kind", "reason"}}`.
pub fn ser_val<S: serde::Serializer, T: Serialize>(v: &Val<T>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct MissingWrap<'a> {
        missing: &'a Missing,
    }
    match v {
        Ok(v) => v.serialize(s),
        Err(m) => MissingWrap { missing: m }.serialize(s),
    }
}

fn ser_rows<S: serde::Serializer>(rows: &[Vec<Val<Value>>], s: S) -> Result<S::Ok, S::Error> {
    struct Cell<'a>(&'a Val<Value>);
    impl Serialize for Cell<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            ser_val(self.0, s)
        }
    }
    s.collect_seq(rows.iter().map(|r| r.iter().map(Cell).collect::<Vec<_>>()))
}

/// A counter read at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// The counter's value.
    pub value: u64,
    /// When it was read.
    pub at: Instant,
}

/// The rate of a counter between two samples. A single sample has no rate; a counter
/// that went backwards (a reused PID, a reset) has none either.
pub fn rate(before: Val<Sample>, after: Val<Sample>) -> Val<f64> {
    let (a, b) = (before?, after?);
    let secs = b.at.saturating_duration_since(a.at).as_secs_f64();
    if secs <= 0.0 {
        return Err(Missing::NotApplicable {
            why: "two samples at the same instant",
        });
    }
    if b.value < a.value {
        return Err(Missing::NotApplicable {
            why: "counter went backwards between samples",
        });
    }
    Ok((b.value - a.value) as f64 / secs)
}

/// Least-squares slope of (seconds, value) points: the trend of a gauge such as RSS.
pub fn slope(points: &[(f64, f64)]) -> Val<f64> {
    if points.len() < 3 {
        return Err(Missing::NotApplicable {
            why: "fewer than three samples in the window",
        });
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx == 0.0 {
        return Err(Missing::NotApplicable {
            why: "samples without time spread",
        });
    }
    Ok(sxy / sxx)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rate_needs_two_ordered_samples() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(500);
        let r = rate(
            Ok(Sample { value: 100, at: t0 }),
            Ok(Sample { value: 150, at: t1 }),
        )
        .unwrap();
        assert!((r - 100.0).abs() < 1e-9);
        assert!(rate(
            Ok(Sample { value: 5, at: t0 }),
            Ok(Sample { value: 1, at: t1 })
        )
        .is_err());
        assert!(rate(
            Ok(Sample { value: 5, at: t0 }),
            Ok(Sample { value: 9, at: t0 })
        )
        .is_err());
        assert_eq!(
            rate(Err(Missing::Exited), Ok(Sample { value: 1, at: t1 })).unwrap_err(),
            Missing::Exited
        );
    }

    #[test]
    fn slope_of_a_line() {
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 * i as f64 + 7.0)).collect();
        assert!((slope(&pts).unwrap() - 3.0).abs() < 1e-9);
        assert!(slope(&pts[..2]).is_err());
    }

    #[test]
    fn missing_serializes_with_reason_never_zero() {
        let f = Figure::new(
            "VmRSS",
            Err::<u64, _>(Missing::Exited),
            Unit::Bytes,
            "/proc/1/status",
        );
        let j = serde_json::to_value(&f).unwrap();
        assert_eq!(j["value"]["missing"]["kind"], "exited");
        assert!(j["value"]["missing"]["reason"]
            .as_str()
            .unwrap()
            .contains("exited"));
    }
}
