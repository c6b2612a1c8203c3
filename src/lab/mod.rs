//! The shared experiment engine: options, the child sandbox, statistics, measurement
//! sources, the cgroup guard, scratch space, cleanup and the reaper of the labs'
//! descendants. The labs themselves live in their concepts' rooms; the registry lists
//! them.

use std::time::{Duration, Instant};

use serde::Serialize;
use syslens_probe::smaps::MemUsage;
use syslens_probe::status::Status as ProcStatus;
use syslens_probe::{Reader, Val};

use crate::catalogue::ConceptId;
use crate::model::host::Host;
use crate::model::units::metric_value;

pub mod calibrate;
pub mod cgroup;
pub mod cleanup;
pub mod jail;
pub mod mem;
pub mod meter;
pub mod owner;
pub mod params;
pub mod reaper;
pub mod report;
pub mod sandbox;
pub mod scratch;
pub mod settings;
pub mod stats;
pub mod swap;

use calibrate::Calibration;
use jail::Jail;
use params::{HostLimits, ParamError, ParamValues, Setting};
pub use reaper::Reaper;
use report::{Check, LabReport};
use sandbox::{LabChild, LabError, Link, Params};

/// How a lab run is sized.
#[derive(Debug, Clone, Default)]
pub struct LabOptions {
    /// Smaller sizes and fewer trials (tests, the quick tour).
    pub quick: bool,
    /// Parameters set by hand (`--set KEY=VALUE`, `--size`, `--trials`), checked
    /// against each lab's declared ranges by [`params::resolve`].
    pub sets: Vec<Setting>,
    /// Allow adding a temporary swap file (swap-oom; root).
    pub allow_swapfile: bool,
}

/// What a lab run has at hand.
#[derive(Debug)]
pub struct LabContext {
    /// How the labs were asked to run.
    pub opts: LabOptions,
    /// The environment fingerprint, read again at each lab's start (after the sweep).
    pub host: Host,
    /// The host's reader (the engine builds it: a lab provokes the live kernel).
    pub reader: Reader,
    /// The running lab's parameters, resolved before it started.
    pub params: ParamValues,
    /// The calibration, measured at the first lab's start and shared by the rest.
    pub calibration: Option<Calibration>,
}

/// How long the parent waits for a child's checkpoint before the watchdog kills it.
pub const WATCHDOG: Duration = Duration::from_secs(30);

impl LabContext {
    /// Reads the host and sets up the context of a run.
    pub fn new(opts: LabOptions) -> std::io::Result<LabContext> {
        let mut reader = Reader::host()?;
        let host = Host::read(&mut reader);
        Ok(LabContext {
            opts,
            host,
            reader,
            params: ParamValues::default(),
            calibration: None,
        })
    }

    /// What bounds the parameters on this host now.
    pub fn limits(&mut self) -> HostLimits {
        HostLimits::read(&mut self.reader, self.host.cpus.clone())
    }

    /// The parameters `def` would run with under these options, checked (a usage error
    /// otherwise), before anything is made.
    pub fn resolve(&mut self, def: &'static LabDef) -> Result<ParamValues, ParamError> {
        let limits = self.limits();
        params::resolve(def, self.opts.quick, &self.opts.sets, &limits)
    }

    /// Starts a child of this concept's lab in `role`, uncontained; `params` is the
    /// role's parameter struct (`&()` for none).
    pub fn spawn(
        &self,
        concept: ConceptId,
        role: &str,
        params: &impl Serialize,
    ) -> Result<LabChild, LabError> {
        self.spawn_in(&Jail::none(), concept, role, params)
    }

    /// Starts a child inside `jail` (it enters before exec, so before it allocates).
    pub fn spawn_in(
        &self,
        jail: &Jail,
        concept: ConceptId,
        role: &str,
        params: &impl Serialize,
    ) -> Result<LabChild, LabError> {
        if let Some(sig) = cleanup::interrupted() {
            return Err(LabError::Interrupted(sig));
        }
        LabChild::spawn(concept, role, params, jail)
    }

    /// A memory jail for a lab that allocates about `need` bytes; recorded in the report.
    /// Refused (before anything is made) when `need` is more than the jail may take on
    /// this host ([`jail_limit`]).
    pub fn memory_jail(&mut self, need: u64, report: &mut LabReport) -> Result<Jail, LabError> {
        let (limit, capped) = jail_limit(need, &self.limits()).map_err(LabError::Setup)?;
        let jail = Jail::memory(limit);
        report.param("containment", &jail.description);
        if let Some(why) = capped {
            report.note(format!(
                "the memory jail is limited to {} MiB, not twice the need: {why}",
                limit >> 20
            ));
        }
        if jail.cgroup_dir().is_none() {
            report.note(format!("children ran under {}", jail.description));
        }
        Ok(jail)
    }

    /// The exact memory accounting of a process (smaps_rollup).
    pub fn rollup(&mut self, pid: i32) -> Val<MemUsage> {
        let dir = self.reader.open_pid(pid)?;
        MemUsage::read_rollup(&mut self.reader, &dir)
    }

    /// /proc/PID/status of a process (VmHWM, VmSwap, context switches).
    pub fn status(&mut self, pid: i32) -> Val<ProcStatus> {
        let dir = self.reader.open_pid(pid)?;
        self.reader.read_pid(&dir, "status").map(ProcStatus::parse)
    }

    /// Rss of a process from smaps_rollup, in bytes.
    pub fn rss(&mut self, pid: i32) -> Result<u64, LabError> {
        self.rollup(pid)
            .and_then(|u| u.rss)
            .map_err(LabError::read(format!("/proc/{pid}/smaps_rollup")))
    }

    /// CPU time a process has run, in ns, from /proc/PID/schedstat.
    pub fn run_ns(&mut self, pid: i32) -> Result<u64, LabError> {
        let dir = self.reader.open_pid(pid);
        dir.and_then(|d| self.reader.read_pid(&d, "schedstat"))
            .and_then(syslens_probe::sched::parse_schedstat)
            .map(|s| s.run_ns)
            .map_err(LabError::read(format!("/proc/{pid}/schedstat")))
    }
}

/// The share of what the host can give (MemAvailable, and the memory limit the tool
/// runs under) that a memory jail may be limited to. Each size parameter is bounded by
/// [`params::SIZE_SHARE_PERCENT`] alone; a lab that adds several (cow: its size twice
/// and its largest fork) could otherwise be let past what the host has.
pub const JAIL_SHARE_PERCENT: u8 = 50;

/// The limit of a memory jail for a lab that needs about `need` bytes: twice the need
/// plus 256 MiB (a safety net for the host, not a lab condition), never above
/// [`JAIL_SHARE_PERCENT`] of what the host can give; with the reason when that cap
/// applied. An error, naming the bound, when `need` itself is above it. Where
/// MemAvailable cannot be read no cap is claimed (the sizes were not bounded by it
/// either, and the report's containment line says what the jail was).
pub fn jail_limit(need: u64, limits: &params::HostLimits) -> Result<(u64, Option<String>), String> {
    let wanted = need.saturating_mul(2).saturating_add(256 << 20);
    let Ok((cap, why)) = limits.memory_share(JAIL_SHARE_PERCENT) else {
        return Ok((wanted, None));
    };
    if need > cap {
        return Err(format!(
            "this run needs about {} MiB, more than its memory jail may take ({why}): \
             choose smaller sizes (`syslens lab ID --params` lists them)",
            need >> 20
        ));
    }
    Ok(if wanted > cap {
        (cap, Some(why))
    } else {
        (wanted, None)
    })
}

/// A lab of the registry.
#[derive(Debug)]
pub struct LabDef {
    /// The concept whose lab this is.
    pub id: ConceptId,
    /// The figures a learner may vary, with their ranges (`syslens lab ID --params`).
    pub params: &'static [params::ParamSpec],
    /// Reads every parameter the run reads, as the run reads it, and checks how they
    /// fit together: a usage error before anything runs, and the registry's test that
    /// no lab reads a key it did not declare.
    pub check: fn(&ParamValues) -> Result<(), ParamError>,
    /// One line for `syslens lab --list`.
    pub summary: &'static str,
    /// The metrics (name prefix, label) the tour's summary shows for this lab; the last
    /// metric matching a prefix is used; `#N` shows claim N's observation. Empty: the
    /// first claim's observation.
    pub headline: &'static [(&'static str, &'static str)],
    /// Runs the parent side, adding claims, metrics and evidence to the report.
    pub run: fn(&mut LabContext, &mut LabReport) -> Result<(), LabError>,
    /// Runs one role of the child side; it decodes `params` into the role's struct.
    pub child: fn(role: &str, params: &Params, link: &mut Link) -> Result<(), String>,
}

impl LabDef {
    /// The one-line headline of a lab's report, from its definition's metrics: the last
    /// metric matching each prefix, or `#N` for claim N's observation; without any, the
    /// first claim's observation.
    pub fn headline_of(&self, r: &LabReport) -> String {
        let parts: Vec<String> = self
            .headline
            .iter()
            .filter_map(|(prefix, label)| {
                if let Some(i) = prefix
                    .strip_prefix('#')
                    .and_then(|i| i.parse::<usize>().ok())
                {
                    return r.checks.get(i).map(|c| c.observed.clone());
                }
                let m = r
                    .metrics
                    .iter()
                    .rev()
                    .find(|m| m.name.starts_with(prefix))?;
                // The host's measured cause, when the calibration found one.
                let host = r
                    .calibration
                    .as_ref()
                    .and_then(Calibration::cause)
                    .map_or(String::new(), |n| format!("; {n}"));
                let noisy = match (&m.noisy, m.summary.ci_half_rel()) {
                    (Some(_), Some(h)) => format!(" (noisy: +/-{:.0}%{host})", h * 100.0),
                    (Some(_), None) => format!(" (noisy{host})"),
                    (None, _) => String::new(),
                };
                Some(format!(
                    "{label} {}{noisy}",
                    metric_value(m.summary.median, m.unit)
                ))
            })
            .collect();
        if !parts.is_empty() {
            return parts.join(", ");
        }
        r.checks
            .iter()
            .find(|c| !c.observed.is_empty())
            .map(|c| c.observed.clone())
            .unwrap_or_default()
    }
}

/// Runs one lab to its report with the parameters `ctx.opts` sets; parameters this
/// host does not allow fail the report (a caller that wants a usage error instead
/// resolves them first, [`LabContext::resolve`], and calls [`run_with`]).
pub fn run(def: &'static LabDef, ctx: &mut LabContext) -> LabReport {
    let params = ctx.resolve(def);
    run_inner(def, ctx, params)
}

/// Runs one lab to its report with `params` (from [`LabContext::resolve`]). A lab that
/// cannot finish keeps what it measured and fails the claim that it ran to completion,
/// with the reason.
pub fn run_with(def: &'static LabDef, ctx: &mut LabContext, params: ParamValues) -> LabReport {
    run_inner(def, ctx, Ok(params))
}

fn run_inner(
    def: &'static LabDef,
    ctx: &mut LabContext,
    params: Result<ParamValues, ParamError>,
) -> LabReport {
    cleanup::install_signal_handler();
    // What dead runs left goes first; the fingerprint is of the host after it.
    let swept = cleanup::sweep_dead_runs(&mut ctx.reader);
    ctx.host = Host::read(&mut ctx.reader);
    let calibration = ctx
        .calibration
        .get_or_insert_with(|| Calibration::measure(&mut ctx.reader))
        .clone();
    let started = Instant::now();
    let mut report = LabReport::new(def.id, ctx.host.clone());
    report.calibration = Some(calibration);
    for line in swept {
        report.note(format!("removed what a dead syslens run left: {line}"));
    }
    report.param("quick", ctx.opts.quick);
    let outcome = params.map_err(LabError::Params).and_then(|p| {
        for (name, value) in p.report_entries() {
            report.param(&name, value);
        }
        for why in p.iter().filter_map(|r| r.lowered.clone()) {
            report.note(why);
        }
        ctx.params = p;
        (def.run)(ctx, &mut report)
    });
    if let Err(e) = outcome {
        report.check(Check::failed(
            "the experiment ran to completion",
            e.to_string(),
        ));
    }
    // Every child handle of the lab is gone: what remains are orphans its children left.
    for line in reaper::sweep() {
        report.note(line);
    }
    report.duration_seconds = started.elapsed().as_secs_f64();
    report
}

/// The child side of `def` in `role` (`syslens __lab-child CONCEPT ROLE PARAMS`, in
/// the re-executed child): 0 on success, 1 after telling the parent what failed.
pub fn child_main(def: Option<&LabDef>, role: &str, params: &str) -> i32 {
    let mut link = Link::new();
    let outcome = (|| {
        let def = def.ok_or("no lab for that concept")?;
        (def.child)(role, &Params::new(role, params), &mut link)
    })();
    match outcome {
        Ok(()) => 0,
        Err(e) => {
            let _ = link.send("error", e);
            1
        }
    }
}
