//! Lab: swapping and the OOM killer. In a 64 MiB memory cgroup a child allocating past
//! the limit is killed; of two children over the limit, the one with the higher
//! oom_score_adj dies. Where swap exists, a cgroup over its limit swaps instead.

use serde::{Deserialize, Serialize};

use crate::catalogue::ConceptId;
use crate::lab::jail::Jail;
use crate::lab::mem::Region;
use crate::lab::meter::{trial, SystemMeter};
use crate::lab::params::{show_bytes, ParamError, ParamSpec, ParamValues};
use crate::lab::report::{mib, Check, LabReport};
use crate::lab::sandbox::{describe, LabError, Link, Params};
use crate::lab::scratch::{Backing, ScratchDir};
use crate::lab::settings::{read_setting, SWAPPINESS};
use crate::lab::swap::SwapFile;
use crate::lab::{LabContext, LabDef, WATCHDOG};

/// The swap-and-OOM lab: its parameters, the parent side (`run`) and the child role.
pub static LAB: LabDef = LabDef {
    id: ConceptId::SwapOom,
    summary: "OOM kill in a 64 MiB cgroup; oom_score_adj picks the victim; swap instead of death where swap exists",
    headline: &[],
    params: &PARAMS,
    check: |p| settings(p).map(drop),
    run,
    child,
};

static PARAMS: [ParamSpec; 6] = [
    ParamSpec::bytes(
        "limit",
        "the memory limit of the lab's cgroup",
        64 << 20,
        64 << 20,
    )
    .at_least(16 << 20),
    ParamSpec::bytes(
        "hog",
        "what the first child allocates in the cgroup (past the limit: it is killed)",
        128 << 20,
        128 << 20,
    )
    .main_size(),
    ParamSpec::bytes(
        "pair",
        "what each of the next two children allocates (together over the limit, alone under it)",
        40 << 20,
        40 << 20,
    ),
    ParamSpec::int(
        "raised_adj",
        "oom_score_adj",
        "the oom_score_adj of one of the two (the other keeps 0)",
        (500, 500),
        (1, 1000),
    ),
    ParamSpec::bytes(
        "swap_hog",
        "what the child of the swap part allocates under the same limit",
        150 << 20,
        128 << 20,
    ),
    ParamSpec::bytes(
        "swapfile",
        "the temporary swap file --allow-swapfile adds where the host has no swap",
        256 << 20,
        256 << 20,
    )
    .at_least(16 << 20),
];

/// What a run is set by.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    /// The memory limit of the lab's cgroup (bytes).
    pub limit: u64,
    /// What the first child allocates (bytes), past the limit.
    pub hog: u64,
    /// What each of the next two children allocates (bytes).
    pub pair: u64,
    /// The oom_score_adj of one of the two.
    pub raised_adj: i64,
    /// What the child of the swap part allocates (bytes).
    pub swap_hog: u64,
    /// Size of the temporary swap file --allow-swapfile adds (bytes).
    pub swapfile: u64,
}

fn settings(p: &ParamValues) -> Result<Settings, ParamError> {
    Ok(Settings {
        limit: p.bytes("limit")?,
        hog: p.bytes("hog")?,
        pair: p.bytes("pair")?,
        raised_adj: p.int("raised_adj")?,
        swap_hog: p.bytes("swap_hog")?,
        swapfile: p.bytes("swapfile")?,
    })
}

/// The parameters of the child role "alloc": write `bytes` at oom_score_adj `adj`;
/// with `retouch`, read them all again after the parent's go.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllocParams {
    bytes: u64,
    adj: i64,
    retouch: bool,
}

impl AllocParams {
    fn once(bytes: u64, adj: i64) -> AllocParams {
        AllocParams {
            bytes,
            adj,
            retouch: false,
        }
    }
}

/// "retouched": the major faults of reading every page again.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Retouched {
    majflt: u64,
}

/// Whether a child that may be OOM-killed reached "allocated": its death is an
/// answer, any other failure (a hang, a broken message) an error.
fn allocated(c: &mut crate::lab::sandbox::LabChild) -> Result<bool, LabError> {
    match c.expect::<()>("allocated", WATCHDOG) {
        Ok(()) => Ok(true),
        Err(LabError::Died { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Everything the swap-and-OOM lab measured, as `analyze` judges it.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// What the run was set to.
    pub set: Settings,
    /// The lab cgroup's directory, or why none could be made; None: not tried.
    pub cgroup: Option<Result<String, String>>,
    /// How the hog ended, as wait reported it.
    pub hog_status: String,
    /// OOM kills the cgroup counted during the hog.
    pub oom_kills_hog: u64,
    /// How the child with the raised oom_score_adj ended.
    pub raised_status: String,
    /// The child at oom_score_adj 0 finished its allocation.
    pub plain_survived: bool,
    /// OOM kills the cgroup counted during the pair.
    pub oom_kills_pair: u64,
    /// syslens itself is not in the lab cgroup (its OOM killer cannot pick it).
    pub tool_outside: bool,
    /// The swap part, or why it was not run; None: not reached.
    pub swap: Option<Result<SwapRun, String>>,
}

/// The swap part: a child allocating past the limit with swap available.
#[derive(Debug, Clone, Default)]
pub struct SwapRun {
    /// What the child allocated (bytes).
    pub allocated: u64,
    /// Its VmSwap once allocated (bytes).
    pub vm_swap: u64,
    /// Pages swapped out meanwhile (pswpout in /proc/vmstat, host-wide).
    pub pswpout: u64,
    /// Pages swapped in while it read everything again (pswpin, host-wide).
    pub pswpin: u64,
    /// Major faults of that second read.
    pub majflt_retouch: u64,
    /// Where the swap came from: the host's or a temporary file.
    pub source: String,
}

/// A counter of /proc/vmstat; unreadable is an error, never a zero.
fn vmstat(
    key: fn(&syslens_probe::system::Vmstat) -> &syslens_probe::Val<u64>,
    name: &str,
) -> Result<u64, LabError> {
    let raw = std::fs::read("/proc/vmstat").map_err(LabError::io("/proc/vmstat"))?;
    key(&syslens_probe::system::Vmstat::parse(&raw))
        .clone()
        .map_err(LabError::read(format!("{name} of /proc/vmstat")))
}

/// The OOM kills counted in the jail's cgroup; unreadable is an error, never a zero.
fn oom_kills(jail: &Jail) -> Result<u64, LabError> {
    jail.lab_cgroup()
        .and_then(|cg| {
            cg.read_key(
                "memory",
                ("memory.oom_control", "memory.events"),
                "oom_kill",
            )
        })
        .ok_or_else(|| {
            LabError::Setup(
                "the lab cgroup's oom_kill count (memory.oom_control / memory.events) is unreadable"
                    .into(),
            )
        })
}

fn run(ctx: &mut LabContext, report: &mut LabReport) -> Result<(), LabError> {
    let set = settings(&ctx.params)?;
    record_swappiness(report);
    let mut m = Measured {
        set,
        ..Measured::default()
    };
    let jail = match Jail::memory_cgroup(set.limit) {
        Ok(j) => j,
        Err(why) => {
            m.cgroup = Some(Err(why));
            analyze(&m, report);
            return Ok(());
        }
    };
    let dir = jail
        .cgroup_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    m.cgroup = Some(Ok(dir.clone()));
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    m.tool_outside = !own
        .lines()
        .any(|l| l.ends_with(dir.rsplit('/').next().unwrap_or("?")));

    let before = oom_kills(&jail)?;
    let mut hog = ctx.spawn_in(
        &jail,
        ConceptId::SwapOom,
        "alloc",
        &AllocParams::once(set.hog, 0),
    )?;
    let survived = allocated(&mut hog)?;
    m.hog_status = describe(hog.wait(WATCHDOG)?);
    if survived {
        m.hog_status.push_str(" after allocating all of it");
    }
    m.oom_kills_hog = oom_kills(&jail)?.saturating_sub(before);

    let before = oom_kills(&jail)?;
    let mut raised = ctx.spawn_in(
        &jail,
        ConceptId::SwapOom,
        "alloc",
        &AllocParams::once(set.pair, set.raised_adj),
    )?;
    raised.expect::<()>("allocated", WATCHDOG)?;
    let mut plain = ctx.spawn_in(
        &jail,
        ConceptId::SwapOom,
        "alloc",
        &AllocParams::once(set.pair, 0),
    )?;
    m.plain_survived = allocated(&mut plain)?;
    m.raised_status = describe(raised.wait(WATCHDOG)?);
    m.oom_kills_pair = oom_kills(&jail)?.saturating_sub(before);
    plain.go()?;
    plain.wait(WATCHDOG)?;
    report.evidence(
        format!("{dir}/memory oom_kill"),
        "OOM kills in the lab cgroup (two children)",
        0.0,
        m.oom_kills_pair as f64,
        "",
    );

    m.swap = Some(swap_part(ctx, &set, report)?);
    analyze(&m, report);
    Ok(())
}

fn swap_part(
    ctx: &mut LabContext,
    set: &Settings,
    report: &mut LabReport,
) -> Result<Result<SwapRun, String>, LabError> {
    let has_swap = ctx.host.swap_bytes.clone().unwrap_or(0) > 0;
    let mut _scratch = None;
    let mut _file = None;
    let source = if has_swap {
        "the host's swap".to_owned()
    } else if !ctx.opts.allow_swapfile {
        return Ok(Err("no swap configured; pass --allow-swapfile (root) to add a temporary swap file for this lab".into()));
    } else if !ctx.host.root {
        return Ok(Err("--allow-swapfile needs root (swapon)".into()));
    } else {
        let dir =
            ScratchDir::new(Backing::Persistent).map_err(LabError::io("scratch directory"))?;
        if let Err(why) = crate::lab::swap::fits(dir.path(), set.swapfile) {
            return Ok(Err(why));
        }
        let path = dir.path().join("swapfile");
        let f = SwapFile::add(&path, set.swapfile as usize)
            .map_err(LabError::io("adding a swap file"))?;
        let desc = format!(
            "a temporary {} MiB swap file {}",
            set.swapfile >> 20,
            f.path().display()
        );
        report.note(format!(
            "added {desc}; removed (swapoff, delete) after the lab"
        ));
        _file = Some(f);
        _scratch = Some(dir);
        desc
    };
    let jail = Jail::memory_cgroup(set.limit).map_err(LabError::Setup)?;
    if let Some(why) = swap_disabled_in(jail.cgroup_dir()) {
        return Ok(Err(why));
    }
    let bytes = set.swap_hog;
    let (out0, in0) = (
        vmstat(|v| &v.pswpout, "pswpout")?,
        vmstat(|v| &v.pswpin, "pswpin")?,
    );
    let mut c = ctx.spawn_in(
        &jail,
        ConceptId::SwapOom,
        "alloc",
        &AllocParams {
            bytes,
            adj: 0,
            retouch: true,
        },
    )?;
    c.expect::<()>("allocated", WATCHDOG)?;
    let vm_swap = ctx.status(c.pid).and_then(|s| s.vm_swap).unwrap_or(0);
    let pswpout = vmstat(|v| &v.pswpout, "pswpout")?.saturating_sub(out0);
    c.go()?;
    let r: Retouched = c.expect("retouched", WATCHDOG)?;
    let pswpin = vmstat(|v| &v.pswpin, "pswpin")?.saturating_sub(in0);
    c.go()?;
    c.wait(WATCHDOG)?;
    Ok(Ok(SwapRun {
        allocated: bytes,
        vm_swap,
        pswpout,
        pswpin,
        majflt_retouch: r.majflt,
        source,
    }))
}

/// Turns the readings into the report's checks and figures (unit tests feed it made-up ones).
pub fn analyze(m: &Measured, report: &mut LabReport) {
    let (limit, adj) = (m.set.limit, m.set.raised_adj);
    let claim_hog = format!(
        "a child allocating {} in a cgroup limited to {} dies of SIGKILL",
        show_bytes(m.set.hog as i64),
        show_bytes(limit as i64)
    );
    let claims = [
        claim_hog.as_str(),
        "the cgroup's oom-kill counter rose by exactly one for one victim",
        "of two children over the limit, the one with the higher oom_score_adj dies",
        "the tool itself is outside the cgroup and survived",
    ];
    match &m.cgroup {
        Some(Err(_)) | None => {
            let why = m
                .cgroup
                .clone()
                .and_then(|c| c.err())
                .unwrap_or_else(|| "not measured".into());
            for c in claims {
                report.check(Check::skipped(
                    c,
                    format!("no memory cgroup can be made here: {why}"),
                ));
            }
        }
        _ => {
            let flag = |b: bool| if b { 1.0 } else { 0.0 };
            let sigkill = |status: &str| status.starts_with("killed by SIGKILL");
            report.bars(
                "OOM kills the lab cgroup counted (its oom_kill count)",
                "run",
                "OOM kills",
                &[
                    ("the hog", m.oom_kills_hog as f64),
                    ("the pair", m.oom_kills_pair as f64),
                ],
            );
            report.evidence(
                "the lab cgroup's oom_kill",
                "OOM kills for the hog",
                0.0,
                m.oom_kills_hog as f64,
                "",
            );
            for (field, killed) in [
                ("hog killed by SIGKILL (1 = yes)", sigkill(&m.hog_status)),
                (
                    "child with the raised oom_score_adj killed (1 = yes)",
                    sigkill(&m.raised_status),
                ),
                (
                    "child with oom_score_adj 0 killed (1 = yes)",
                    !m.plain_survived,
                ),
            ] {
                report.evidence("the lab's children", field, 0.0, flag(killed), "");
            }
            report.check(Check::holds(
                claims[0],
                m.hog_status.starts_with("killed by SIGKILL"),
                m.hog_status.clone(),
                "killed by SIGKILL",
            ));
            report.check(Check::holds(
                claims[1],
                m.oom_kills_hog == 1 && m.oom_kills_pair == 1,
                format!(
                    "+{} for the hog, +{} for the pair",
                    m.oom_kills_hog, m.oom_kills_pair
                ),
                "+1 each time",
            ));
            report.check(Check::holds(
                claims[2],
                m.raised_status.starts_with("killed by SIGKILL") && m.plain_survived,
                format!(
                    "adj {adj}: {}; adj 0: {}",
                    m.raised_status,
                    if m.plain_survived { "survived" } else { "died" }
                ),
                format!("adj {adj} killed, adj 0 survived"),
            ));
            report.check(Check::holds(
                claims[3],
                m.tool_outside,
                if m.tool_outside {
                    "outside, running"
                } else {
                    "inside the lab cgroup"
                },
                "outside",
            ));
        }
    }
    let swap_claims = [
        "where swap exists, a cgroup over its limit swaps instead of dying (VmSwap > 0, pswpout rose)",
        "touching swapped pages again swaps them in: major faults and pswpin rose",
    ];
    match &m.swap {
        Some(Ok(s)) => {
            report.check(Check::holds(
                swap_claims[0],
                s.vm_swap > 0 && s.pswpout > 0,
                format!(
                    "allocated {} under a {} limit; VmSwap {}, pswpout +{} pages ({})",
                    mib(s.allocated as f64),
                    mib(limit as f64),
                    mib(s.vm_swap as f64),
                    s.pswpout,
                    s.source
                ),
                "VmSwap > 0, pswpout > 0",
            ));
            report.check(Check::holds(
                swap_claims[1],
                s.majflt_retouch > 0 && s.pswpin > 0,
                format!(
                    "{} major faults, pswpin +{} pages",
                    s.majflt_retouch, s.pswpin
                ),
                "both > 0",
            ));
            report.bars(
                "a child over its cgroup's limit, with swap",
                "memory",
                "MiB",
                &[
                    ("memory.max", limit as f64 / 1048576.0),
                    ("allocated", s.allocated as f64 / 1048576.0),
                    ("VmSwap", s.vm_swap as f64 / 1048576.0),
                ],
            );
            report.evidence(
                "/proc/PID/status",
                "VmSwap of the child over its limit",
                0.0,
                s.vm_swap as f64,
                "bytes",
            );
        }
        Some(Err(why)) => {
            for c in swap_claims {
                report.check(Check::skipped(c, why.clone()));
            }
        }
        None => {
            for c in swap_claims {
                report.check(Check::skipped(c, "the OOM part could not run"));
            }
        }
    }
}

/// Records vm.swappiness, which decides whether the jail's reclaim swaps at all: a
/// cgroup's reclaim with swappiness 0 scans only page cache (mm/vmscan.c get_scan_count),
/// so the child is OOM-killed rather than swapped.
fn record_swappiness(report: &mut LabReport) {
    if report
        .setting(SWAPPINESS, read_setting(SWAPPINESS))
        .as_deref()
        == Ok("0")
    {
        report.note("swappiness 0: reclaim inside a memory cgroup swaps nothing, so the swap part can show no swap-out");
    }
}

/// Why the jail's reclaim cannot swap, when it cannot: its swappiness is 0 (v1 keeps one
/// per memory cgroup, `memory.swappiness`, inherited at creation; v2 has only the
/// global vm.swappiness), and reclaim in a cgroup with swappiness 0 scans page cache
/// only (mm/vmscan.c get_scan_count). The swap part is then skipped, not failed.
fn swap_disabled_in(jail_dir: Option<&std::path::Path>) -> Option<String> {
    let own = jail_dir
        .map(|d| d.join("memory.swappiness"))
        .filter(|f| f.exists());
    let (file, value) = match own {
        Some(f) => {
            let shown = f.display().to_string();
            let value = read_setting(&shown);
            (shown, value)
        }
        None => (SWAPPINESS.to_owned(), read_setting(SWAPPINESS)),
    };
    (value.ok()?.trim() == "0").then(|| {
        format!("{file} is 0: reclaim in the lab's memory cgroup swaps nothing (mm/vmscan.c get_scan_count), so nothing can be swapped out; set it above 0 to run this part")
    })
}

fn child(role: &str, params: &Params, link: &mut Link) -> Result<(), String> {
    if role != "alloc" {
        return Err(format!("unknown role {role}"));
    }
    let io = |e: std::io::Error| e.to_string();
    let AllocParams {
        bytes,
        adj,
        retouch,
    } = params.decode()?;
    // explain-begin: the lines that provoke the concept
    if adj != 0 {
        // Raising one's own adj needs no privilege; lowering it needs CAP_SYS_RESOURCE
        // only below oom_score_adj_min, the lowest value a privileged writer set.
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(io)?;
    }
    let r = Region::anon(bytes as usize).map_err(io)?;
    let _ = r.madvise(libc::MADV_NOHUGEPAGE);
    r.write_pages(1, r.pages(), 1);
    // explain-end
    link.sync("allocated", ()).map_err(io)?;
    if retouch {
        let mut meter = SystemMeter::new();
        let (t, _) = trial(&mut meter, || r.read_pages(1));
        link.sync(
            "retouched",
            Retouched {
                majflt: t.counts.majflt,
            },
        )
        .map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_21_a_jail_with_swappiness_0_skips_the_swap_part() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("memory.swappiness"), "0\n").unwrap();
        let why = swap_disabled_in(Some(dir.path())).unwrap();
        assert!(
            why.contains("memory.swappiness is 0") && why.contains("get_scan_count"),
            "{why}"
        );
        std::fs::write(dir.path().join("memory.swappiness"), "60\n").unwrap();
        assert_eq!(swap_disabled_in(Some(dir.path())), None);
    }
    use crate::lab::report::Status;

    fn good() -> Measured {
        Measured {
            set: Settings {
                limit: 64 << 20,
                hog: 128 << 20,
                raised_adj: 500,
                ..Settings::default()
            },
            cgroup: Some(Ok("/sys/fs/cgroup/memory/x/syslens-lab-1-0".into())),
            hog_status: "killed by SIGKILL".into(),
            oom_kills_hog: 1,
            raised_status: "killed by SIGKILL".into(),
            plain_survived: true,
            oom_kills_pair: 1,
            tool_outside: true,
            swap: Some(Ok(SwapRun {
                allocated: 150 << 20,
                vm_swap: 90 << 20,
                pswpout: 23000,
                pswpin: 20000,
                majflt_retouch: 2000,
                source: "t".into(),
            })),
        }
    }

    fn statuses(m: &Measured) -> Vec<Status> {
        crate::lab::report::claim_statuses(ConceptId::SwapOom, m, analyze)
    }

    #[test]
    fn passes_on_oom_and_swap() {
        assert_eq!(statuses(&good()), vec![Status::Passed; 6]);
    }

    #[test]
    fn each_claim_fails_on_contradicting_evidence() {
        let mut m = good();
        m.hog_status = "exit 0".into();
        assert_eq!(statuses(&m)[0], Status::Failed);
        let mut m = good();
        m.oom_kills_pair = 2;
        assert_eq!(statuses(&m)[1], Status::Failed, "two kills for one victim");
        let mut m = good();
        m.plain_survived = false;
        assert_eq!(statuses(&m)[2], Status::Failed);
        let mut m = good();
        m.tool_outside = false;
        assert_eq!(statuses(&m)[3], Status::Failed);
        let mut m = good();
        if let Some(Ok(s)) = &mut m.swap {
            s.vm_swap = 0;
        }
        assert_eq!(statuses(&m)[4], Status::Failed);
        let mut m = good();
        if let Some(Ok(s)) = &mut m.swap {
            s.pswpin = 0;
        }
        assert_eq!(statuses(&m)[5], Status::Failed);
    }

    /// The children's fates as evidence flags (issue 23: a deleted `!` survived).
    #[test]
    fn issue_23_the_childrens_fates_are_flagged() {
        let flags = |m: &Measured| {
            let r = crate::lab::report::analyzed(ConceptId::SwapOom, m, analyze);
            r.evidence
                .iter()
                .filter(|e| e.source == "the lab's children")
                .map(|e| e.after)
                .collect::<Vec<_>>()
        };
        assert_eq!(flags(&good()), [1.0, 1.0, 0.0]);
        let mut m = good();
        (m.plain_survived, m.raised_status) = (false, "exit 0".into());
        assert_eq!(flags(&m), [1.0, 0.0, 1.0]);
    }

    /// Each swap figure either side of zero, and the bars in MiB (issue 23: `pswpout >
    /// 0` as `>= 0` and `/` as `%` in the bars survived a mutation run).
    #[test]
    fn issue_23_swap_claims_at_zero_and_the_bars_in_mib() {
        let with = |f: &dyn Fn(&mut SwapRun)| {
            let mut m = good();
            if let Some(Ok(s)) = &mut m.swap {
                f(s);
            }
            statuses(&m)[4..].to_vec()
        };
        let (p, f) = (Status::Passed, Status::Failed);
        assert_eq!(with(&|s| s.vm_swap = 0), [f, p]);
        assert_eq!(with(&|s| s.vm_swap = 1), [p, p]);
        assert_eq!(with(&|s| s.pswpout = 0), [f, p]);
        assert_eq!(with(&|s| s.pswpout = 1), [p, p]);
        assert_eq!(with(&|s| s.majflt_retouch = 0), [p, f]);
        assert_eq!(with(&|s| (s.majflt_retouch, s.pswpin) = (1, 1)), [p, p]);
        let r = crate::lab::report::analyzed(ConceptId::SwapOom, &good(), analyze);
        let bars = crate::lab::report::bars_of(&r, "a child over its cgroup's limit, with swap");
        let want = [("memory.max", 64.0), ("allocated", 150.0), ("VmSwap", 90.0)];
        assert_eq!(bars, want.map(|(l, v)| (l.to_owned(), v)));
    }

    #[test]
    fn no_swap_and_no_cgroup_skip_with_reasons() {
        let mut m = good();
        m.swap = Some(Err("no swap configured; pass --allow-swapfile".into()));
        assert_eq!(&statuses(&m)[4..], &[Status::Skipped, Status::Skipped]);
        let m = Measured {
            cgroup: Some(Err("not root".into())),
            ..Measured::default()
        };
        assert!(statuses(&m).iter().all(|s| *s == Status::Skipped));
    }
}
