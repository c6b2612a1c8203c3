//! Lab parameters. Each lab declares the figures a learner may vary ([`ParamSpec`]):
//! key, unit, help, the default and quick values, and the allowed range, whose upper
//! bound may depend on the host (a share of MemAvailable and of the tool's memory
//! cgroup limit, a multiple of the online CPUs). `--set KEY=VALUE` and the `--size` /
//! `--trials` aliases ([`Setting`]) are checked here, before anything runs, for the
//! command line and for any library caller alike ([`resolve`]).

use std::fmt;

use serde::Serialize;
use syslens_probe::system::Meminfo;
use syslens_probe::{Reader, Val};

use super::LabDef;
use crate::model::units;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// What a parameter measures, which fixes how it is written and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A size in bytes: plain MiB (`64`) or with a unit (`512K`, `64M`, `1.5G`, `100B`).
    Bytes,
    /// A whole number of something (`unit` says what: trials, threads, a nice value).
    Int {
        /// What is counted, for listings.
        unit: &'static str,
    },
    /// A duration in whole milliseconds: plain ms (`200`), `200ms` or `1.5s`.
    Millis,
    /// A share from 0 to 1: `0.25` or `25%`.
    Fraction,
    /// One of a fixed set of names.
    Choice(&'static [&'static str]),
}

impl Kind {
    /// The unit as listings name it.
    pub fn unit(self) -> &'static str {
        match self {
            Kind::Bytes => "bytes",
            Kind::Int { unit } => unit,
            Kind::Millis => "ms",
            Kind::Fraction => "fraction",
            Kind::Choice(_) => "choice",
        }
    }

    /// Reads a value as a person writes it.
    pub fn parse(self, text: &str) -> Result<Value, String> {
        let t = text.trim();
        match self {
            Kind::Bytes => parse_bytes(t).map(Value::Int),
            Kind::Int { unit } => parse_int(t)
                .map(Value::Int)
                .map_err(|why| format!("{why}: a whole number of {unit} is expected")),
            Kind::Millis => parse_millis(t).map(Value::Int),
            Kind::Fraction => parse_fraction(t).map(Value::Fraction),
            Kind::Choice(options) => options
                .iter()
                .find(|o| o.eq_ignore_ascii_case(t))
                .map(|o| Value::Choice(o))
                .ok_or_else(|| format!("not one of {}", options.join(", "))),
        }
    }

    /// `v` as listings show it (`64 MiB`, `200 ms`, `0.25`).
    pub fn show(self, v: Value) -> String {
        match (self, v) {
            (Kind::Bytes, Value::Int(b)) => show_bytes(b),
            (Kind::Millis, Value::Int(ms)) => format!("{ms} ms"),
            (_, v) => v.to_string(),
        }
    }

    /// `v` written so that [`Kind::parse`] reads it back exactly.
    pub fn arg(self, v: Value) -> String {
        match (self, v) {
            (Kind::Bytes, Value::Int(b)) => format!("{b}B"),
            (Kind::Millis, Value::Int(ms)) => format!("{ms}ms"),
            (_, v) => v.to_string(),
        }
    }
}

/// A parameter's value: sizes, counts, durations and nice values are whole numbers
/// (bytes, ms), fractions are fractions, choices are one of the declared names.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// Bytes, a count, milliseconds or a nice value.
    Int(i64),
    /// A share from 0 to 1.
    Fraction(f64),
    /// One of the declared names.
    Choice(&'static str),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Fraction(x) => write!(f, "{x}"),
            Value::Choice(c) => f.write_str(c),
        }
    }
}

impl Value {
    /// Orders two values of the same kind (a choice has no order).
    fn as_f64(self) -> Option<f64> {
        match self {
            Value::Int(n) => Some(n as f64),
            Value::Fraction(x) => Some(x),
            Value::Choice(_) => None,
        }
    }
}

/// The upper bound of a parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Max {
    /// The same on every host.
    Fixed(Value),
    /// At most this percentage of MemAvailable, and of the memory cgroup limit the
    /// tool runs under (the lab's own cgroups are made beneath it).
    MemoryShare(u8),
    /// At most this many times the online CPUs.
    CpusTimes(u32),
}

/// Which of the generic flags stands for a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Alias {
    /// `--size MIB`: the lab's main size.
    Size,
    /// `--trials N`: the lab's number of timed trials.
    Trials,
}

impl Alias {
    /// The flag.
    pub fn flag(self) -> &'static str {
        match self {
            Alias::Size => "--size",
            Alias::Trials => "--trials",
        }
    }
}

/// One declared parameter of a lab.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamSpec {
    /// The name `--set` takes (`write_fraction`).
    pub key: &'static str,
    /// What it measures.
    pub kind: Kind,
    /// One line: what it changes in the experiment.
    pub help: &'static str,
    /// The value of a full run.
    pub default: Value,
    /// The value of a `--quick` run.
    pub quick: Value,
    /// The lowest value allowed (unused for a choice).
    pub min: Value,
    /// The highest value allowed (unused for a choice).
    pub max: Max,
    /// The generic flag that sets it, if one does.
    pub alias: Option<Alias>,
}

/// The most timed trials a lab takes: at the slowest lab's few ms a trial, minutes.
pub const MAX_TRIALS: i64 = 10_000;

/// A lab may hold its size about twice (a parent and a child; the memory jail is twice
/// the need): a quarter of what the host can give keeps that within half of it.
pub const SIZE_SHARE_PERCENT: u8 = 25;

impl ParamSpec {
    /// A size in bytes, from 1 MiB to a quarter of what the host can give.
    pub const fn bytes(key: &'static str, help: &'static str, default: u64, quick: u64) -> Self {
        ParamSpec {
            key,
            kind: Kind::Bytes,
            help,
            default: Value::Int(default as i64),
            quick: Value::Int(quick as i64),
            min: Value::Int(MIB as i64),
            max: Max::MemoryShare(SIZE_SHARE_PERCENT),
            alias: None,
        }
    }

    /// A whole number of `unit` from `min` to `max`.
    pub const fn int(
        key: &'static str,
        unit: &'static str,
        help: &'static str,
        (default, quick): (i64, i64),
        (min, max): (i64, i64),
    ) -> Self {
        ParamSpec {
            key,
            kind: Kind::Int { unit },
            help,
            default: Value::Int(default),
            quick: Value::Int(quick),
            min: Value::Int(min),
            max: Max::Fixed(Value::Int(max)),
            alias: None,
        }
    }

    /// The number of timed trials (`--trials`), 1 to [`MAX_TRIALS`].
    pub const fn trials(help: &'static str, default: i64, quick: i64) -> Self {
        let mut p = Self::int("trials", "trials", help, (default, quick), (1, MAX_TRIALS));
        p.alias = Some(Alias::Trials);
        p
    }

    /// The time budget of a lab's adaptive trials (`budget_ms`): after `trials`, more
    /// until the headline median's 95% interval is within 5% or the budget is spent;
    /// 0 takes exactly `trials` (bench/labs.sh's single measurements).
    pub const fn budget(default: i64, quick: i64) -> Self {
        Self::millis(
            "budget_ms",
            "time budget of the adaptive trials: more until the headline median's 95% interval is within 5%; 0: exactly `trials`",
            (default, quick),
            (0, 60_000),
        )
    }

    /// A duration in milliseconds from `min` to `max`.
    pub const fn millis(
        key: &'static str,
        help: &'static str,
        (default, quick): (i64, i64),
        (min, max): (i64, i64),
    ) -> Self {
        let mut p = Self::int(key, "ms", help, (default, quick), (min, max));
        p.kind = Kind::Millis;
        p
    }

    /// A fraction from `min` to `max` (within 0..=1).
    pub const fn fraction(
        key: &'static str,
        help: &'static str,
        (default, quick): (f64, f64),
        (min, max): (f64, f64),
    ) -> Self {
        ParamSpec {
            key,
            kind: Kind::Fraction,
            help,
            default: Value::Fraction(default),
            quick: Value::Fraction(quick),
            min: Value::Fraction(min),
            max: Max::Fixed(Value::Fraction(max)),
            alias: None,
        }
    }

    /// One of `options`.
    pub const fn choice(
        key: &'static str,
        help: &'static str,
        options: &'static [&'static str],
        (default, quick): (&'static str, &'static str),
    ) -> Self {
        ParamSpec {
            key,
            kind: Kind::Choice(options),
            help,
            default: Value::Choice(default),
            quick: Value::Choice(quick),
            min: Value::Choice(default),
            max: Max::Fixed(Value::Choice(default)),
            alias: None,
        }
    }

    /// Marks the lab's main size (`--size`).
    pub const fn main_size(mut self) -> Self {
        self.alias = Some(Alias::Size);
        self
    }

    /// Another lowest value (a size below 1 MiB, say).
    pub const fn at_least(mut self, min: i64) -> Self {
        self.min = Value::Int(min);
        self
    }

    /// Another upper bound.
    pub const fn at_most(mut self, max: Max) -> Self {
        self.max = max;
        self
    }

    /// The name the lab report's params record it under: the key, with the base unit
    /// appended for sizes and durations (`size_bytes`, `hog_ms`).
    pub fn report_name(&self) -> String {
        match self.kind {
            Kind::Bytes => format!("{}_bytes", self.key),
            Kind::Millis => format!("{}_ms", self.key),
            _ => self.key.to_owned(),
        }
    }

    /// The value a run uses when nothing is set.
    pub fn default_for(&self, quick: bool) -> Value {
        if quick {
            self.quick
        } else {
            self.default
        }
    }

    /// The allowed range on the host `limits` describes.
    pub fn range(&self, limits: &HostLimits) -> Range {
        let max = match self.max {
            Max::Fixed(v) => Ok(Bound {
                value: v,
                why: None,
            }),
            Max::MemoryShare(pct) => limits.memory_share(pct).map(|(b, why)| Bound {
                value: Value::Int(b as i64),
                why: Some(why),
            }),
            Max::CpusTimes(k) => limits.cpus.clone().map_err(|e| e.to_string()).map(|n| {
                let v = n.max(1) * u64::from(k);
                Bound {
                    value: Value::Int(v as i64),
                    why: Some(format!("at most {k}x the {n} online CPUs")),
                }
            }),
        };
        Range {
            kind: self.kind,
            min: self.min,
            max,
        }
    }
}

/// The upper end of a range on this host, and how it was computed when the host set it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    /// The highest value allowed.
    pub value: Value,
    /// "at most 25% of MemAvailable (22.4 GiB)", when the host decides.
    pub why: Option<String>,
}

/// A parameter's allowed values on one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    kind: Kind,
    /// The lowest value allowed.
    pub min: Value,
    /// The highest, or why this host's bound could not be read.
    pub max: Result<Bound, String>,
}

impl Range {
    /// Whether `v` lies inside the range (a choice: whether it is one of the options).
    pub fn contains(&self, v: Value) -> Result<bool, String> {
        if let (Kind::Choice(options), Value::Choice(c)) = (self.kind, v) {
            return Ok(options.contains(&c));
        }
        let max = self.max.clone()?;
        match (v.as_f64(), self.min.as_f64(), max.value.as_f64()) {
            (Some(v), Some(lo), Some(hi)) => Ok(lo <= v && v <= hi),
            _ => Ok(false),
        }
    }

    /// `1 MiB..=5734 MiB (at most 25% of MemAvailable (22.4 GiB))`, or the options of a
    /// choice.
    pub fn describe(&self) -> String {
        if let Kind::Choice(options) = self.kind {
            return format!("one of {}", options.join(", "));
        }
        let lo = self.kind.show(self.min);
        match &self.max {
            Ok(Bound { value, why: None }) => format!("{lo}..={}", self.kind.show(*value)),
            Ok(Bound {
                value,
                why: Some(why),
            }) => format!("{lo}..={} ({why})", self.kind.show(*value)),
            Err(why) => format!("{lo}.. (the upper bound is unknown here: {why})"),
        }
    }
}

/// What bounds the parameters on this host: MemAvailable, the memory cgroup limit the
/// tool runs under, the online CPUs.
#[derive(Debug, Clone)]
pub struct HostLimits {
    /// MemAvailable of /proc/meminfo, in bytes.
    pub mem_available: Val<u64>,
    /// The lowest memory limit of the tool's cgroup and its ancestors, with its
    /// directory; None when none is set (or there is no memory controller).
    pub cgroup_limit: Option<(u64, String)>,
    /// CPUs online.
    pub cpus: Val<u64>,
}

impl HostLimits {
    /// Reads the bounds of the live host below `reader`'s root.
    pub fn read(reader: &mut Reader, cpus: Val<u64>) -> HostLimits {
        HostLimits {
            mem_available: reader
                .read_proc("meminfo")
                .map(Meminfo::parse)
                .and_then(|m| m.mem_available),
            cgroup_limit: super::cgroup::tool_memory_limit(reader),
            cpus,
        }
    }

    /// `pct`% of MemAvailable and of the cgroup limit, whichever is lower, in whole
    /// MiB, with how it was computed.
    pub fn memory_share(&self, pct: u8) -> Result<(u64, String), String> {
        let available = self
            .mem_available
            .clone()
            .map_err(|e| format!("MemAvailable: {e}"))?;
        let share = |b: u64| (b as u128 * u128::from(pct) / 100) as u64 / MIB * MIB;
        let mut max = share(available);
        let mut why = format!(
            "at most {pct}% of MemAvailable ({})",
            units::bytes(available as f64)
        );
        if let Some((limit, dir)) = &self.cgroup_limit {
            why += &format!(
                " and of the memory cgroup limit of {dir} ({})",
                units::bytes(*limit as f64)
            );
            max = max.min(share(*limit));
        }
        Ok((max, why))
    }
}

/// One `--set KEY=VALUE`, or a generic flag standing for a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Which parameter.
    pub key: SetKey,
    /// The value as written (parsed by the parameter's kind).
    pub value: String,
}

/// How a setting names its parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetKey {
    /// By its key.
    Named(String),
    /// By the generic flag that stands for it.
    Alias(Alias),
}

impl fmt::Display for SetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetKey::Named(k) => f.write_str(k),
            SetKey::Alias(a) => f.write_str(a.flag()),
        }
    }
}

impl Setting {
    /// Reads `KEY=VALUE`.
    pub fn parse(arg: &str) -> Result<Setting, ParamError> {
        match arg.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok(Setting {
                key: SetKey::Named(k.trim().to_owned()),
                value: v.trim().to_owned(),
            }),
            _ => Err(ParamError::Malformed {
                arg: arg.to_owned(),
            }),
        }
    }

    /// `key` set to `value` (for a library caller that drew the value itself).
    pub fn value(spec: &ParamSpec, value: Value) -> Setting {
        Setting {
            key: SetKey::Named(spec.key.to_owned()),
            value: spec.kind.arg(value),
        }
    }

    /// Whether this setting names `spec` (by its key or its flag).
    pub fn names(&self, spec: &ParamSpec) -> bool {
        match &self.key {
            SetKey::Named(k) => k == spec.key,
            SetKey::Alias(a) => spec.alias == Some(*a),
        }
    }
}

/// A parameter that cannot be used as given; every variant is a usage error.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamError {
    /// `--set` without `KEY=VALUE`.
    Malformed {
        /// What was given.
        arg: String,
    },
    /// No selected lab declares the key (or has the parameter the flag stands for).
    Unknown {
        /// The lab, when one was selected; None for several.
        lab: Option<&'static str>,
        /// The key or flag.
        key: String,
        /// The nearest declared key, when close enough to be a typo.
        nearest: Option<&'static str>,
        /// Every declared key of the selected labs.
        keys: Vec<&'static str>,
    },
    /// The same parameter set twice.
    Repeated {
        /// The key.
        key: &'static str,
    },
    /// A value that does not read as the parameter's kind.
    BadValue {
        /// The lab.
        lab: &'static str,
        /// The key.
        key: &'static str,
        /// What was given.
        value: String,
        /// Why it does not read.
        why: String,
        /// The allowed range.
        range: String,
    },
    /// A value outside the allowed range on this host.
    OutOfRange {
        /// The lab.
        lab: &'static str,
        /// The key.
        key: &'static str,
        /// The value, as shown.
        value: String,
        /// The allowed range.
        range: String,
    },
    /// Values that are each in range but do not fit together (the lab says why).
    Conflict {
        /// The lab.
        lab: &'static str,
        /// Why.
        why: String,
    },
    /// A lab asked for a key it did not declare, or as another kind (a bug in the lab).
    Undeclared {
        /// The key asked for.
        key: &'static str,
        /// What was asked: "bytes", "an integer", "a fraction", "a choice".
        wanted: &'static str,
    },
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamError::Malformed { arg } => {
                write!(
                    f,
                    "--set {arg:?}: expected KEY=VALUE (--params lists the keys)"
                )
            }
            ParamError::Unknown {
                lab,
                key,
                nearest,
                keys,
            } => {
                match lab {
                    Some(lab) => write!(f, "lab {lab} has no parameter {key}")?,
                    None => write!(f, "no selected lab has a parameter {key}")?,
                }
                if let Some(n) = nearest {
                    write!(f, "; did you mean {n}?")?;
                }
                match (lab, keys.is_empty()) {
                    (None, _) => write!(f, " (syslens lab ID --params lists a lab's)"),
                    (Some(_), true) => write!(f, " (it has no parameters)"),
                    (Some(_), false) => write!(f, " (its parameters: {})", keys.join(", ")),
                }
            }
            ParamError::Repeated { key } => write!(f, "{key} is set twice"),
            ParamError::BadValue {
                lab,
                key,
                value,
                why,
                range,
            } => write!(f, "{lab}: {key}={value}: {why}; allowed {range}"),
            ParamError::OutOfRange {
                lab,
                key,
                value,
                range,
            } => write!(f, "{lab}: {key}={value} is out of range; allowed {range}"),
            ParamError::Conflict { lab, why } => write!(f, "{lab}: {why}"),
            ParamError::Undeclared { key, wanted } => {
                write!(
                    f,
                    "the lab asked for {wanted} parameter {key} it does not declare"
                )
            }
        }
    }
}

impl std::error::Error for ParamError {}

/// One parameter as a run uses it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Its declaration.
    pub spec: &'static ParamSpec,
    /// The value the run uses.
    pub value: Value,
    /// Whether `--set` (or its flag) gave it.
    pub set: bool,
    /// Its range on this host.
    pub range: Range,
    /// Why the default was lowered, when this host could not give it.
    pub lowered: Option<String>,
}

/// The values of a lab's parameters for one run, by key.
#[derive(Debug, Clone, Default)]
pub struct ParamValues {
    lab: &'static str,
    values: Vec<Resolved>,
}

impl ParamValues {
    /// Every parameter with its value, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = &Resolved> {
        self.values.iter()
    }

    fn get(&self, key: &'static str, wanted: &'static str) -> Result<&Resolved, ParamError> {
        self.values
            .iter()
            .find(|r| r.spec.key == key)
            .ok_or(ParamError::Undeclared { key, wanted })
    }

    fn int_of(
        &self,
        key: &'static str,
        wanted: &'static str,
        ok: fn(Kind) -> bool,
    ) -> Result<i64, ParamError> {
        match self.get(key, wanted)? {
            Resolved {
                value: Value::Int(n),
                spec,
                ..
            } if ok(spec.kind) => Ok(*n),
            _ => Err(ParamError::Undeclared { key, wanted }),
        }
    }

    /// A size parameter, in bytes.
    pub fn bytes(&self, key: &'static str) -> Result<u64, ParamError> {
        self.int_of(key, "a size", |k| k == Kind::Bytes)
            .map(|n| n.max(0) as u64)
    }

    /// A whole-number parameter (a count, a nice value).
    pub fn int(&self, key: &'static str) -> Result<i64, ParamError> {
        self.int_of(key, "an integer", |k| matches!(k, Kind::Int { .. }))
    }

    /// A count (a whole-number parameter whose range starts at 0 or more).
    pub fn count(&self, key: &'static str) -> Result<u64, ParamError> {
        self.int(key).map(|n| n.max(0) as u64)
    }

    /// A duration parameter.
    pub fn millis(&self, key: &'static str) -> Result<std::time::Duration, ParamError> {
        self.int_of(key, "a duration", |k| k == Kind::Millis)
            .map(|ms| std::time::Duration::from_millis(ms.max(0) as u64))
    }

    /// A fraction parameter.
    pub fn fraction(&self, key: &'static str) -> Result<f64, ParamError> {
        match self.get(key, "a fraction")?.value {
            Value::Fraction(x) => Ok(x),
            _ => Err(ParamError::Undeclared {
                key,
                wanted: "a fraction",
            }),
        }
    }

    /// A choice parameter.
    pub fn choice(&self, key: &'static str) -> Result<&'static str, ParamError> {
        match self.get(key, "a choice")?.value {
            Value::Choice(c) => Ok(c),
            _ => Err(ParamError::Undeclared {
                key,
                wanted: "a choice",
            }),
        }
    }

    /// A constraint across parameters failed: the error names the lab.
    pub fn conflict(&self, why: impl Into<String>) -> ParamError {
        ParamError::Conflict {
            lab: self.lab,
            why: why.into(),
        }
    }

    /// The name ([`ParamSpec::report_name`]) and value of each parameter, for the report.
    pub fn report_entries(&self) -> impl Iterator<Item = (String, Value)> + '_ {
        self.values.iter().map(|r| (r.spec.report_name(), r.value))
    }
}

/// The values `def` runs with: each declared parameter's default (quick or full, lowered
/// to this host's bound when the host cannot give it), or what `sets` gives, checked
/// against its range, then the lab's own check of how they fit together. A setting
/// whose key `def` does not declare is an error unless `shared` is set (several labs
/// were selected; [`resolve_all`] checks that one of them declares it).
pub fn resolve(
    def: &'static LabDef,
    quick: bool,
    sets: &[Setting],
    limits: &HostLimits,
) -> Result<ParamValues, ParamError> {
    if let Some(s) = sets.iter().find(|s| !def.params.iter().any(|p| s.names(p))) {
        return Err(unknown(Some(def), s, def.params));
    }
    resolve_declared(def, quick, sets, limits)
}

/// [`resolve`] for every lab of `defs` (`syslens lab all`): each setting applies to the
/// labs that declare it, and one no lab declares is an error.
pub fn resolve_all(
    defs: &[&'static LabDef],
    quick: bool,
    sets: &[Setting],
    limits: &HostLimits,
) -> Result<Vec<ParamValues>, ParamError> {
    if let [one] = defs {
        return resolve(one, quick, sets, limits).map(|v| vec![v]);
    }
    let declared = || defs.iter().flat_map(|d| d.params.iter());
    if let Some(s) = sets.iter().find(|s| !declared().any(|p| s.names(p))) {
        let all: Vec<ParamSpec> = declared().copied().collect();
        return Err(unknown(None, s, &all));
    }
    defs.iter()
        .map(|d| resolve_declared(d, quick, sets, limits))
        .collect()
}

fn unknown(def: Option<&LabDef>, s: &Setting, params: &[ParamSpec]) -> ParamError {
    let mut keys: Vec<&'static str> = params.iter().map(|p| p.key).collect();
    keys.sort_unstable();
    keys.dedup();
    let key = s.key.to_string();
    let nearest = keys
        .iter()
        .map(|k| (crate::catalogue::edit_distance(&key, k), *k))
        .min()
        .filter(|(d, k)| *d <= 1.max(k.len() / 3))
        .map(|(_, k)| k);
    ParamError::Unknown {
        lab: def.map(|d| d.id.slug()),
        key,
        nearest: if matches!(s.key, SetKey::Named(_)) {
            nearest
        } else {
            None
        },
        keys,
    }
}

fn resolve_declared(
    def: &'static LabDef,
    quick: bool,
    sets: &[Setting],
    limits: &HostLimits,
) -> Result<ParamValues, ParamError> {
    let lab = def.id.slug();
    let mut values = Vec::with_capacity(def.params.len());
    for spec in def.params {
        let range = spec.range(limits);
        let mine: Vec<&Setting> = sets.iter().filter(|s| s.names(spec)).collect();
        if mine.len() > 1 {
            return Err(ParamError::Repeated { key: spec.key });
        }
        let resolved = match mine.first() {
            Some(s) => {
                let value = spec
                    .kind
                    .parse(&s.value)
                    .map_err(|why| ParamError::BadValue {
                        lab,
                        key: spec.key,
                        value: s.value.clone(),
                        why,
                        range: range.describe(),
                    })?;
                let out_of_range = || ParamError::OutOfRange {
                    lab,
                    key: spec.key,
                    value: spec.kind.show(value),
                    range: range.describe(),
                };
                if !range.contains(value).map_err(|_| out_of_range())? {
                    return Err(out_of_range());
                }
                Resolved {
                    spec,
                    value,
                    set: true,
                    range,
                    lowered: None,
                }
            }
            None => default_within(spec, quick, range),
        };
        values.push(resolved);
    }
    let values = ParamValues { lab, values };
    (def.check)(&values)?;
    Ok(values)
}

/// The default, lowered to the host's bound when the host cannot give it (a small VM);
/// kept as declared when the bound is unknown (the report notes why).
fn default_within(spec: &'static ParamSpec, quick: bool, range: Range) -> Resolved {
    let default = spec.default_for(quick);
    let (value, lowered) = match &range.max {
        Ok(Bound {
            value: max,
            why: Some(why),
        }) if default.as_f64() > max.as_f64() => (
            *max,
            Some(format!(
                "{} lowered from {} to {}: {why}",
                spec.key,
                spec.kind.show(default),
                spec.kind.show(*max)
            )),
        ),
        Err(why) => (
            default,
            Some(format!(
                "{} kept at its default {}; its bound is unknown here: {why}",
                spec.key,
                spec.kind.show(default)
            )),
        ),
        _ => (default, None),
    };
    Resolved {
        spec,
        value,
        set: false,
        range,
        lowered,
    }
}

/// A size as listings show it: exact in the largest unit that divides it.
pub fn show_bytes(b: i64) -> String {
    let u = b.unsigned_abs();
    for (size, name) in [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
        if u >= size && u % size == 0 {
            return format!("{} {name}", b / size as i64);
        }
    }
    if u >= MIB {
        return format!("{} ({:.1} MiB)", b, b as f64 / MIB as f64);
    }
    format!("{b} B")
}

/// A number as a person writes it, without exponents, signs or `inf`: digits with at
/// most one point.
fn plain_number(t: &str) -> Result<f64, String> {
    let digits = t.replace('_', "");
    let points = digits.matches('.').count();
    if digits.is_empty()
        || points > 1
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        || digits == "."
    {
        return Err(if t.starts_with('-') {
            "negative".into()
        } else {
            "not a number".into()
        });
    }
    digits.parse::<f64>().map_err(|_| "not a number".into())
}

/// Splits `64MiB` into `64` and `mib`.
fn split_unit(t: &str) -> (&str, String) {
    let at = t
        .find(|c: char| c.is_ascii_alphabetic() || c == '%')
        .unwrap_or(t.len());
    (t[..at].trim(), t[at..].trim().to_ascii_lowercase())
}

fn parse_bytes(t: &str) -> Result<i64, String> {
    let (num, unit) = split_unit(t);
    let num = plain_number(num)?;
    let mult = match unit.as_str() {
        "" | "m" | "mb" | "mi" | "mib" => MIB,
        "b" => 1,
        "k" | "kb" | "ki" | "kib" => KIB,
        "g" | "gb" | "gi" | "gib" => GIB,
        "t" | "tb" | "ti" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown unit {other:?}: a size is plain MiB or ends in B, K, M, G or T"
            ))
        }
    };
    let bytes = num * mult as f64;
    if bytes >= (1u64 << 62) as f64 {
        return Err("too large".into());
    }
    if bytes.fract() != 0.0 {
        return Err("not a whole number of bytes".into());
    }
    Ok(bytes as i64)
}

fn parse_int(t: &str) -> Result<i64, String> {
    let digits = t.replace('_', "");
    digits.parse::<i64>().map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
            "too large".to_owned()
        }
        _ => "not a whole number".to_owned(),
    })
}

fn parse_millis(t: &str) -> Result<i64, String> {
    let (num, unit) = split_unit(t);
    let num = plain_number(num)?;
    let mult = match unit.as_str() {
        "" | "ms" => 1.0,
        "s" => 1000.0,
        other => {
            return Err(format!(
                "unknown unit {other:?}: a duration is ms or ends in ms or s"
            ))
        }
    };
    let ms = num * mult;
    if ms >= 1e15 {
        return Err("too large".into());
    }
    if ms.fract() != 0.0 {
        return Err("not a whole number of ms".into());
    }
    Ok(ms as i64)
}

fn parse_fraction(t: &str) -> Result<f64, String> {
    let (num, unit) = split_unit(t);
    let x = plain_number(num)?;
    match unit.as_str() {
        "" => Ok(x),
        "%" => Ok(x / 100.0),
        other => Err(format!("unknown unit {other:?}: a fraction is 0.25 or 25%")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::concepts::REGISTRY;

    fn host(available: u64, cgroup: Option<u64>, cpus: u64) -> HostLimits {
        HostLimits {
            mem_available: Ok(available),
            cgroup_limit: cgroup.map(|l| (l, "/test.slice".to_owned())),
            cpus: Ok(cpus),
        }
    }

    #[test]
    fn issue_14_the_memory_jail_never_takes_more_than_half_of_what_the_host_can_give() {
        use crate::lab::jail_limit;
        const M: u64 = 1 << 20;
        let roomy = host(8 << 30, None, 2);
        // Twice the need plus 256 MiB while that fits under half of MemAvailable.
        assert_eq!(jail_limit(100 * M, &roomy), Ok((456 * M, None)));
        // Above it the jail is capped at half, and says why.
        let (limit, why) = jail_limit(3 << 30, &roomy).unwrap();
        assert_eq!(limit, 4 << 30);
        assert!(why.unwrap().contains("50% of MemAvailable (8.0 GiB)"));
        // The need itself at the bound is allowed, one MiB more is refused, naming it.
        assert_eq!(jail_limit(4 << 30, &roomy).map(|l| l.0), Ok(4 << 30));
        let e = jail_limit((4 << 30) + M, &roomy).unwrap_err();
        assert!(
            e.contains("4097 MiB") && e.contains("50% of MemAvailable"),
            "{e}"
        );
        // The tool's own memory limit bounds it too.
        let limited = host(8 << 30, Some(1 << 30), 2);
        assert_eq!(jail_limit(300 * M, &limited).map(|l| l.0), Ok(512 * M));
        assert!(jail_limit(600 * M, &limited)
            .unwrap_err()
            .contains("/test.slice"));
        // MemAvailable unknown: nothing to cap by.
        let mut blind = roomy.clone();
        blind.mem_available = Err(syslens_probe::Missing::NotApplicable { why: "test" });
        assert_eq!(
            jail_limit(100 << 30, &blind),
            Ok((200 * (1 << 30) + 256 * M, None))
        );
    }

    #[test]
    fn issue_14_sizes_read_plain_mib_and_units() {
        let b = Kind::Bytes;
        assert_eq!(b.parse("64"), Ok(Value::Int(64 << 20)));
        assert_eq!(b.parse("64M"), Ok(Value::Int(64 << 20)));
        assert_eq!(b.parse("64MiB"), Ok(Value::Int(64 << 20)));
        assert_eq!(b.parse("1G"), Ok(Value::Int(1 << 30)));
        assert_eq!(b.parse("1.5g"), Ok(Value::Int(3 << 29)));
        assert_eq!(b.parse("512K"), Ok(Value::Int(512 << 10)));
        assert_eq!(b.parse("100B"), Ok(Value::Int(100)));
        assert_eq!(b.parse("0"), Ok(Value::Int(0)));
        for bad in ["-5", "-5M", "lots", "1e3", "inf", "", ".", "5Q", "0.5B"] {
            assert!(b.parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(b.parse("-5").unwrap_err(), "negative");
        assert_eq!(b.parse("99999999999999999999").unwrap_err(), "too large");
        assert_eq!(b.parse("9999999999T").unwrap_err(), "too large");
    }

    #[test]
    fn issue_14_counts_durations_fractions_and_choices_read() {
        let n = Kind::Int { unit: "trials" };
        assert_eq!(n.parse("10_000"), Ok(Value::Int(10_000)));
        assert_eq!(n.parse("-5"), Ok(Value::Int(-5)));
        assert!(n
            .parse("9223372036854775808")
            .unwrap_err()
            .starts_with("too large"));
        assert!(n.parse("2.5").is_err());
        assert_eq!(Kind::Millis.parse("1.5s"), Ok(Value::Int(1500)));
        assert_eq!(Kind::Millis.parse("200ms"), Ok(Value::Int(200)));
        assert_eq!(Kind::Millis.parse("200"), Ok(Value::Int(200)));
        assert_eq!(Kind::Fraction.parse("25%"), Ok(Value::Fraction(0.25)));
        assert_eq!(Kind::Fraction.parse("0.125"), Ok(Value::Fraction(0.125)));
        assert!(Kind::Fraction.parse("-0.5").is_err());
        let c = Kind::Choice(&["lazy", "now"]);
        assert_eq!(c.parse("NOW"), Ok(Value::Choice("now")));
        assert!(c.parse("later").unwrap_err().contains("lazy, now"));
    }

    #[test]
    fn issue_14_a_value_written_back_reads_the_same() {
        for (kind, v) in [
            (Kind::Bytes, Value::Int(12345)),
            (Kind::Bytes, Value::Int(64 << 20)),
            (Kind::Millis, Value::Int(1500)),
            (Kind::Int { unit: "nice" }, Value::Int(-3)),
            (Kind::Fraction, Value::Fraction(0.3)),
            (Kind::Choice(&["a", "b"]), Value::Choice("b")),
        ] {
            assert_eq!(kind.parse(&kind.arg(v)), Ok(v), "{kind:?}");
        }
    }

    #[test]
    fn issue_14_ranges_hold_their_boundaries() {
        let h = host(8 << 30, None, 2);
        let size = ParamSpec::bytes("size", "", 256 << 20, 64 << 20);
        let r = size.range(&h);
        let max = 2i64 << 30;
        assert_eq!(r.max.clone().unwrap().value, Value::Int(max));
        let within = |v| r.contains(Value::Int(v)).unwrap();
        assert!(within(1 << 20), "min");
        assert!(within(max), "max");
        assert!(!within(max + 1), "max + 1");
        assert!(!within(0), "0");
        assert!(!within(-1), "negative");
        assert!(!within(i64::MAX), "huge");
        let d = r.describe();
        assert!(
            d.contains("1 MiB..=2 GiB") && d.contains("25% of MemAvailable (8.0 GiB)"),
            "{d}"
        );
        // The cgroup's limit bounds it too, and is named.
        let r = size.range(&host(8 << 30, Some(1 << 30), 2));
        assert_eq!(r.max.clone().unwrap().value, Value::Int(256 << 20));
        assert!(r.describe().contains("/test.slice"), "{}", r.describe());
        // Threads by CPUs.
        let threads =
            ParamSpec::int("threads", "threads", "", (2, 2), (2, 0)).at_most(Max::CpusTimes(4));
        let r = threads.range(&h);
        assert_eq!(r.max.clone().unwrap().value, Value::Int(8));
        assert_eq!(r.describe(), "2..=8 (at most 4x the 2 online CPUs)");
        // Unknown MemAvailable: no upper bound can be claimed.
        let mut blind = h.clone();
        blind.mem_available = Err(syslens_probe::Missing::NotApplicable { why: "test" });
        assert!(size.range(&blind).contains(Value::Int(1 << 20)).is_err());
    }

    /// A lab with a size, a fraction and trials, whose check refuses a size under 2 MiB.
    static TEST_PARAMS: [ParamSpec; 3] = [
        ParamSpec::bytes("size", "the size", 256 << 20, 64 << 20).main_size(),
        ParamSpec::fraction("write_fraction", "the share", (0.25, 0.5), (0.01, 1.0)),
        ParamSpec::trials("timed trials", 11, 5),
    ];
    static TEST_LAB: LabDef = LabDef {
        id: crate::catalogue::ConceptId::Cow,
        summary: "",
        headline: &[],
        params: &TEST_PARAMS,
        check: |p| {
            if p.bytes("size")? < 2 << 20 {
                return Err(p.conflict("size must be at least 2 MiB here"));
            }
            Ok(())
        },
        run: |_, _| Ok(()),
        child: |_, _, _| Ok(()),
    };

    fn set(s: &str) -> Setting {
        Setting::parse(s).unwrap()
    }

    #[test]
    fn issue_18_settings_resolve_and_are_checked() {
        let h = host(8 << 30, None, 2);
        let v = resolve(&TEST_LAB, true, &[], &h).unwrap();
        assert_eq!(v.bytes("size"), Ok(64 << 20));
        assert_eq!(v.fraction("write_fraction"), Ok(0.5));
        assert_eq!(v.count("trials"), Ok(5));
        let v = resolve(
            &TEST_LAB,
            false,
            &[
                Setting::value(&TEST_PARAMS[1], Value::Fraction(0.75)),
                Setting {
                    key: SetKey::Alias(Alias::Size),
                    value: "128".into(),
                },
            ],
            &h,
        )
        .unwrap();
        assert_eq!(v.bytes("size"), Ok(128 << 20));
        assert_eq!(v.fraction("write_fraction"), Ok(0.75));
        let names: Vec<String> = v.report_entries().map(|(n, _)| n).collect();
        assert_eq!(names, ["size_bytes", "write_fraction", "trials"]);
        // Asking for an undeclared key, or a declared one as another kind, is caught.
        assert!(matches!(
            v.bytes("sise"),
            Err(ParamError::Undeclared { .. })
        ));
        assert!(matches!(
            v.fraction("size"),
            Err(ParamError::Undeclared { .. })
        ));

        let err = |sets: &[Setting]| resolve(&TEST_LAB, false, sets, &h).unwrap_err().to_string();
        let e = err(&[set("write_fraction=1.5")]);
        assert!(e.contains("out of range") && e.contains("0.01..=1"), "{e}");
        let e = err(&[set("write_fraction=0")]);
        assert!(e.contains("0.01..=1"), "{e}");
        let e = err(&[set("size=100000")]);
        assert!(e.contains("MemAvailable") && e.contains("2 GiB"), "{e}");
        let e = err(&[set("size=1.5M")]);
        assert!(e.contains("at least 2 MiB"), "the lab's own check: {e}");
        let e = err(&[set("size=lots")]);
        assert!(e.contains("not a number") && e.contains("1 MiB..="), "{e}");
        let e = err(&[set("write_fractoin=0.5")]);
        assert!(e.contains("did you mean write_fraction?"), "{e}");
        let e = err(&[set("trials=3"), set("trials=4")]);
        assert!(e.contains("set twice"), "{e}");
        let e = err(&[set("trials=10001")]);
        assert!(e.contains("1..=10000"), "{e}");
        assert!(Setting::parse("trials").is_err() && Setting::parse("=3").is_err());
    }

    #[test]
    fn issue_14_a_default_the_host_cannot_give_is_lowered_and_said() {
        // 512 MiB available: a quarter is 128 MiB, below the full default of 256 MiB.
        let v = resolve(&TEST_LAB, false, &[], &host(512 << 20, None, 1)).unwrap();
        assert_eq!(v.bytes("size"), Ok(128 << 20));
        let r = v.iter().next().unwrap();
        assert!(r
            .lowered
            .as_deref()
            .unwrap_or("")
            .contains("lowered from 256 MiB to 128 MiB"));
    }

    #[test]
    fn issue_18_a_setting_for_several_labs_needs_one_that_declares_it() {
        let h = host(8 << 30, None, 2);
        let labs: Vec<&'static LabDef> = REGISTRY.iter().map(|c| c.lab).collect();
        let all = resolve_all(&labs, true, &[set("write_fraction=0.5")], &h).unwrap();
        assert_eq!(all.len(), 17);
        let e = resolve_all(&labs, true, &[set("no_such_key=1")], &h).unwrap_err();
        assert!(matches!(e, ParamError::Unknown { lab: None, .. }), "{e}");
    }

    /// Over the registry: keys unique and well-formed, defaults within their ranges on a
    /// roomy host, and every key each lab reads declared with the kind it reads (its
    /// check reads them all, as its run does, and fails on an undeclared one).
    #[test]
    fn issue_14_every_lab_declares_what_it_reads_with_defaults_in_range() {
        let roomy = host(64 << 30, None, 2);
        for c in REGISTRY {
            let lab = c.lab;
            let slug = lab.id.slug();
            assert!(!lab.params.is_empty(), "{slug} declares no parameter");
            let mut keys: Vec<&str> = lab.params.iter().map(|p| p.key).collect();
            keys.sort_unstable();
            let n = keys.len();
            keys.dedup();
            assert_eq!(keys.len(), n, "{slug}: a key is declared twice");
            for alias in [Alias::Size, Alias::Trials] {
                let k = lab.params.iter().filter(|p| p.alias == Some(alias)).count();
                assert!(k <= 1, "{slug}: two parameters stand for {}", alias.flag());
            }
            for p in lab.params {
                assert!(
                    !p.key.is_empty() && p.key.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                    "{slug}: key {:?}",
                    p.key
                );
                assert!(!p.help.is_empty(), "{slug}.{}: no help", p.key);
                let r = p.range(&roomy);
                for (which, v) in [("default", p.default), ("quick", p.quick)] {
                    assert_eq!(
                        r.contains(v),
                        Ok(true),
                        "{slug}.{}: {which} {} outside {}",
                        p.key,
                        p.kind.show(v),
                        r.describe()
                    );
                }
            }
            for quick in [false, true] {
                if let Err(e) = resolve(lab, quick, &[], &roomy) {
                    panic!("{slug} (quick {quick}): {e}");
                }
            }
        }
    }
}
