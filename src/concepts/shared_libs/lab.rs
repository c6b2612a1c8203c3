//! Lab: shared libraries and dynamic linking. dlopen of a library not yet loaded,
//! lazily (RTLD_LAZY) and at once (RTLD_NOW); a real lazily bound program started with
//! and without LD_BIND_NOW, counted by the dynamic linker's own LD_DEBUG=statistics;
//! libc mapped by many processes, each paying its share (Pss < Rss).

use std::ffi::{CStr, CString};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use syslens_probe::elf;
use syslens_probe::smaps::{parse_maps, MapKind};

use crate::catalogue::ConceptId;
use crate::lab::meter::{trial, SystemMeter};
use crate::lab::params::{ParamError, ParamSpec, ParamValues};
use crate::lab::report::{Check, LabReport};
use crate::lab::sandbox::{present, LabError, Link, Params};
use crate::lab::stats::{Adaptive, Stop};
use crate::lab::{LabContext, LabDef, WATCHDOG};

/// The shared-libraries lab: its parameters, the parent side (`run`) and the child role.
pub static LAB: LabDef = LabDef {
    id: ConceptId::SharedLibs,
    summary:
        "dlopen lazy vs now; LD_BIND_NOW vs lazy binding by LD_DEBUG=statistics; libc's Pss vs Rss",
    headline: &[("dlopen", "dlopen")],
    params: &PARAMS,
    check: |p| settings(p).map(drop),
    run,
    child,
};

static PARAMS: [ParamSpec; 3] = [
    ParamSpec::trials("timed dlopen calls of each mode", 15, 5),
    ParamSpec::budget(1000, 300),
    ParamSpec::choice(
        "library",
        "the library dlopen loads (auto: the first of the others not yet loaded)",
        &LIBRARY_CHOICES,
        ("auto", "auto"),
    ),
];

/// `auto`, then every library of [`LIBRARIES`].
const LIBRARY_CHOICES: [&str; 7] = [
    "auto",
    LIBRARIES[0],
    LIBRARIES[1],
    LIBRARIES[2],
    LIBRARIES[3],
    LIBRARIES[4],
    LIBRARIES[5],
];

fn settings(p: &ParamValues) -> Result<DlopenParams, ParamError> {
    let library = p.choice("library")?;
    Ok(DlopenParams {
        trials: p.count("trials")? as usize,
        budget_ms: p.millis("budget_ms")?.as_millis() as u64,
        library: (library != "auto").then(|| library.to_owned()),
    })
}

/// Programs tried for the binding comparison, first that is dynamically linked and
/// lazily bound (many distributions link with -z now, where LD_BIND_NOW changes nothing).
const PROGRAMS: [&str; 5] = [
    "/bin/true",
    "/usr/bin/true",
    "/bin/echo",
    "/usr/bin/env",
    "/bin/ls",
];
/// Libraries tried for dlopen: small, present with glibc or zlib, rarely preloaded.
const LIBRARIES: [&str; 6] = [
    "libz.so.1",
    "libresolv.so.2",
    "libanl.so.1",
    "libutil.so.1",
    "libBrokenLocale.so.1",
    "libcrypt.so.1",
];

/// The parameters of the child role "dlopen".
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DlopenParams {
    trials: usize,
    /// Time budget of the adaptive trials (ms; 0: exactly `trials`).
    budget_ms: u64,
    /// Only this library; None: the first of [`LIBRARIES`] not yet loaded.
    #[serde(deserialize_with = "present")]
    library: Option<String>,
}

/// "dlopen" sends this, or null when no candidate library could be opened fresh.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dlopen {
    /// The library's name (one of the candidates).
    pub library: String,
    /// The file it was loaded from.
    pub path: String,
    /// us per dlopen(RTLD_LAZY) of the library, per trial (it is closed between them).
    pub lazy_us: Vec<f64>,
    /// us per dlopen(RTLD_NOW), per trial.
    pub now_us: Vec<f64>,
    /// The library was still mapped after dlclose (NODELETE): later trials were warm.
    pub stayed_loaded: bool,
    /// How the adaptive trials ended (they watch RTLD_LAZY; each trial times both modes).
    #[serde(default)]
    pub stop: Option<Stop>,
}

/// Everything the shared-libraries lab measured, as `analyze` judges it.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The dlopen timings (None: no candidate library could be opened fresh).
    pub dlopen: Option<Dlopen>,
    /// The lazily bound program used, or why none was.
    pub program: Result<String, String>,
    /// Relocations the dynamic linker processed starting the program lazily (LD_DEBUG=statistics).
    pub relocations_lazy: Option<u64>,
    /// The same with LD_BIND_NOW=1.
    pub relocations_now: Option<u64>,
    /// Processes on the host whose maps include libc.
    pub libc_mappers: u64,
    /// Rss of libc's mappings in the child (bytes).
    pub libc_rss: u64,
    /// Pss of libc's mappings in the child (bytes): its share of the shared pages.
    pub libc_pss: u64,
    /// Processes whose maps could not be read while counting.
    pub maps_unreadable: u64,
}

fn run(ctx: &mut LabContext, report: &mut LabReport) -> Result<(), LabError> {
    let params = settings(&ctx.params)?;
    let mut m = Measured {
        dlopen: None,
        program: pick_program(),
        relocations_lazy: None,
        relocations_now: None,
        libc_mappers: 0,
        libc_rss: 0,
        libc_pss: 0,
        maps_unreadable: 0,
    };
    let mut c = ctx.spawn(ConceptId::SharedLibs, "dlopen", &params)?;
    m.dlopen = c.expect("dlopen", WATCHDOG)?;
    // libc in this child: its Rss and Pss from smaps, while it is alive.
    let read_smaps = LabError::read(format!("/proc/{}/smaps", c.pid));
    let maps = ctx
        .reader
        .open_pid(c.pid)
        .and_then(|dir| ctx.reader.read_pid(&dir, "smaps").and_then(parse_maps))
        .map_err(read_smaps)?;
    for mapping in maps
        .iter()
        .filter(|x| x.kind == MapKind::Library && is_libc(&x.path))
    {
        if let Some(u) = &mapping.usage {
            m.libc_rss += u.rss.clone().unwrap_or(0);
            m.libc_pss += u.pss.clone().unwrap_or(0);
        }
    }
    c.go()?;
    c.wait(WATCHDOG)?;
    (m.libc_mappers, m.maps_unreadable) = count_libc_mappers(ctx);
    if let Ok(program) = &m.program {
        m.relocations_lazy = relocations(program, false);
        m.relocations_now = relocations(program, true);
        report.param("program", program);
    }
    analyze(&m, report);
    Ok(())
}

fn is_libc(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|f| f.starts_with("libc.so") || f.starts_with("libc-"))
}

fn pick_program() -> Result<String, String> {
    let mut seen = Vec::new();
    for p in PROGRAMS {
        let Ok(image) = std::fs::read(p) else {
            continue;
        };
        match elf::dynamic(&image) {
            Ok(d) if d.interpreted && !d.bind_now => return Ok(p.to_owned()),
            Ok(d) if d.bind_now => seen.push(format!("{p} is linked with BIND_NOW")),
            Ok(_) => seen.push(format!("{p} is static")),
            Err(e) => seen.push(format!("{p}: {e}")),
        }
    }
    Err(if seen.is_empty() {
        "none of the candidate programs exists".into()
    } else {
        seen.join("; ")
    })
}

/// Starts `program` with LD_DEBUG=statistics and returns the dynamic linker's count of
/// relocations processed at start.
fn relocations(program: &str, bind_now: bool) -> Option<u64> {
    // explain-begin: the lines that provoke the concept
    let mut cmd = Command::new(program);
    cmd.env("LD_DEBUG", "statistics")
        .env_remove("LD_BIND_NOW")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if bind_now {
        cmd.env("LD_BIND_NOW", "1");
        // explain-end
    }
    let out = cmd.output().ok()?;
    String::from_utf8_lossy(&out.stderr).lines().find_map(|l| {
        let l = l.trim();
        let (_, rest) = l.split_once("number of relocations:")?;
        if l.contains("final") {
            return None;
        }
        rest.trim().parse().ok()
    })
}

/// Processes whose maps include libc; and how many maps could not be read.
fn count_libc_mappers(ctx: &mut LabContext) -> (u64, u64) {
    let mut pids = Vec::new();
    if ctx.reader.pids(&mut pids).is_err() {
        return (0, 0);
    }
    let (mut mappers, mut unreadable) = (0, 0);
    for pid in pids {
        let Ok(dir) = ctx.reader.open_pid(pid) else {
            continue;
        };
        match ctx.reader.read_pid(&dir, "maps") {
            Ok(b) => {
                if String::from_utf8_lossy(b)
                    .lines()
                    .any(|l| l.rsplit(' ').next().is_some_and(is_libc))
                {
                    mappers += 1;
                }
            }
            Err(_) => unreadable += 1,
        }
    }
    (mappers, unreadable)
}

/// Turns the readings into the report's checks and figures (unit tests feed it made-up ones).
pub fn analyze(m: &Measured, report: &mut LabReport) {
    let claim_bind =
        "LD_BIND_NOW makes the dynamic linker process strictly more relocations at start";
    match (&m.program, m.relocations_lazy, m.relocations_now) {
        (Err(why), _, _) => report.check(Check::skipped(
            claim_bind,
            format!("no lazily bound program here: {why}"),
        )),
        (Ok(p), Some(lazy), Some(now)) => report.check(Check::holds(
            claim_bind,
            now > lazy,
            format!("{p}: {lazy} relocations lazily, {now} with LD_BIND_NOW=1"),
            format!("more than {lazy}"),
        )),
        (Ok(p), _, _) => report.check(Check::failed(
            claim_bind,
            format!("LD_DEBUG=statistics printed no relocation count for {p}"),
        )),
    }
    let claim_pss = "libc's Pss < Rss when more than one process maps it (each pays its share)";
    if m.libc_mappers > 1 {
        report.check(Check::holds(
            claim_pss,
            m.libc_rss > 0 && m.libc_pss < m.libc_rss,
            format!(
                "Pss {} KiB, Rss {} KiB; {} processes map libc",
                m.libc_pss >> 10,
                m.libc_rss >> 10,
                m.libc_mappers
            ),
            "Pss < Rss",
        ));
    } else {
        report.check(Check::skipped(
            claim_pss,
            format!("only {} readable process maps libc here", m.libc_mappers),
        ));
    }
    if m.maps_unreadable > 0 {
        report.note(format!(
            "{} processes' maps were unreadable (permission): the libc count covers the rest",
            m.maps_unreadable
        ));
    }
    match &m.dlopen {
        Some(d) => {
            report.param("dlopen_library", &d.path);
            let lazy = report.metric(
                &format!("dlopen({}, RTLD_LAZY)", d.library),
                "us",
                &d.lazy_us,
            );
            let now = report.metric(&format!("dlopen({}, RTLD_NOW)", d.library), "us", &d.now_us);
            if let (Some(lazy), Some(now)) = (lazy, now) {
                report.bars(
                    &format!("dlopen({}), median of the trials", d.library),
                    "binding",
                    "dlopen (us)",
                    &[("RTLD_LAZY", lazy.median), ("RTLD_NOW", now.median)],
                );
            }
            if let Some(note) = d.stop.and_then(|s| {
                s.note(
                    &format!("dlopen({}), RTLD_LAZY and RTLD_NOW per trial", d.library),
                    d.lazy_us.len(),
                )
            }) {
                report.note(note);
            }
            if d.stayed_loaded {
                report.note(format!(
                    "{} stayed mapped after dlclose (NODELETE): trials after the first were warm",
                    d.library
                ));
            }
        }
        None => report.note("no candidate library could be dlopen'ed without being loaded already"),
    }
    report.evidence(
        "the lab child's smaps, libc mappings",
        "Rss -> Pss",
        m.libc_rss as f64,
        m.libc_pss as f64,
        "bytes",
    );
    report.bars(
        &format!(
            "libc in the lab child, shared by {} processes",
            m.libc_mappers
        ),
        "smaps field",
        "KiB",
        &[
            ("Rss", m.libc_rss as f64 / 1024.0),
            ("Pss", m.libc_pss as f64 / 1024.0),
        ],
    );
    // Without both counts the claim above says why; no evidence row of zeros.
    if let (Some(lazy), Some(now)) = (m.relocations_lazy, m.relocations_now) {
        report.evidence(
            "LD_DEBUG=statistics",
            "relocations at start (lazy -> LD_BIND_NOW)",
            lazy as f64,
            now as f64,
            "",
        );
        report.bars(
            "relocations the dynamic linker did at start",
            "binding",
            "relocations",
            &[("lazy", lazy as f64), ("LD_BIND_NOW", now as f64)],
        );
    }
}

fn mapped(name: &str) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.rsplit('/').next().is_some_and(|f| f == name))
        .map(str::to_owned)
}

/// Untimed rounds first: the first reads the file into the page cache.
const WARMUP: usize = 1;

/// us per dlopen of `lib` (`name`) with RTLD_LAZY and with RTLD_NOW, closed after each,
/// per trial, trials as `plan` says (the RTLD_LAZY series drives the rule, each trial
/// times both); None when a dlopen fails.
fn dlopen_times(
    meter: &mut SystemMeter,
    plan: &Adaptive,
    lib: &str,
    name: &CStr,
) -> Option<Dlopen> {
    let mut d = Dlopen {
        library: lib.to_owned(),
        ..Dlopen::default()
    };
    let mut now_us = Vec::new();
    let (lazy_us, stop) = plan
        .run(Adaptive::clock(), |kept| -> Result<f64, ()> {
            let mut us = [0.0; 2];
            for (mode, out) in [libc::RTLD_LAZY, libc::RTLD_NOW].into_iter().zip(&mut us) {
                // SAFETY: dlopen of a system library by name; closed right after.
                let (t, handle) = trial(meter, || unsafe { libc::dlopen(name.as_ptr(), mode) });
                if handle.is_null() {
                    return Err(());
                }
                if d.path.is_empty() {
                    d.path = mapped(lib).unwrap_or_else(|| lib.to_owned());
                }
                *out = t.ns as f64 / 1000.0;
                // SAFETY: closes the handle just opened.
                unsafe { libc::dlclose(handle) };
                d.stayed_loaded |= mapped(lib).is_some();
            }
            if kept {
                now_us.push(us[1]);
            }
            Ok(us[0])
        })
        .ok()?;
    d.lazy_us = lazy_us;
    d.now_us = now_us;
    d.stop = Some(stop);
    Some(d)
}

fn child(role: &str, params: &Params, link: &mut Link) -> Result<(), String> {
    if role != "dlopen" {
        return Err(format!("unknown role {role}"));
    }
    let DlopenParams {
        trials,
        budget_ms,
        library,
    } = params.decode()?;
    // The clock alone: the timed calls read no counter.
    let mut meter = SystemMeter::without_perf();
    // Each candidate's series has the budget to itself, counted from its warm-up.
    let plan = Adaptive::new(WARMUP, trials, Duration::from_millis(budget_ms));
    let mut result: Option<Dlopen> = None;
    let chosen = [library.as_deref().unwrap_or_default()];
    let candidates: &[&str] = if library.is_some() {
        &chosen
    } else {
        &LIBRARIES
    };
    for &lib in candidates {
        if mapped(lib).is_some() {
            continue;
        }
        let name = CString::new(lib).map_err(|e| e.to_string())?;
        result = dlopen_times(&mut meter, &plan, lib, &name);
        if result.is_some() {
            break;
        }
    }
    link.sync("dlopen", result).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::report::Status;

    fn good() -> Measured {
        Measured {
            dlopen: None,
            program: Ok("/bin/true".into()),
            relocations_lazy: Some(87),
            relocations_now: Some(141),
            libc_mappers: 30,
            libc_rss: 1600 << 10,
            libc_pss: 400 << 10,
            maps_unreadable: 0,
        }
    }

    fn statuses(m: &Measured) -> Vec<Status> {
        crate::lab::report::claim_statuses(ConceptId::SharedLibs, m, analyze)
    }

    /// issue 20: the dlopen timings take adaptive trials, and a budget that ran out is
    /// named in the notes with its interval.
    #[test]
    fn issue_20_a_dlopen_series_whose_budget_ran_out_is_named_in_the_notes() {
        let budget = |stop: Option<Stop>| -> Vec<String> {
            let m = Measured {
                dlopen: Some(Dlopen {
                    library: "libz.so.1".into(),
                    path: "/usr/lib/x86_64-linux-gnu/libz.so.1".into(),
                    lazy_us: vec![40.0, 60.0, 30.0, 90.0, 45.0, 50.0, 41.0],
                    now_us: vec![50.0, 70.0, 40.0, 99.0, 55.0, 60.0, 51.0],
                    stayed_loaded: false,
                    stop,
                }),
                ..good()
            };
            crate::lab::report::budget_notes(ConceptId::SharedLibs, &m, analyze)
        };
        let notes = budget(Some(Stop::Budget {
            half_rel: Some(0.25),
        }));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with(
                "dlopen(libz.so.1), RTLD_LAZY and RTLD_NOW per trial: the time budget ran out after 7 trials with the median's 95% interval at +/-25.0%"
            ),
            "{}",
            notes[0]
        );
        for quiet in [None, Some(Stop::Converged), Some(Stop::Fixed)] {
            assert!(budget(quiet).is_empty(), "{quiet:?}");
        }
    }

    /// issue 20: a budget of 0 takes exactly `trials` of each mode; a library that
    /// cannot be opened gives none.
    #[test]
    fn issue_20_dlopen_times_with_no_budget_take_exactly_the_trials() {
        let mut meter = SystemMeter::without_perf();
        let plan = Adaptive::new(WARMUP, 3, Duration::ZERO);
        // libc is loaded already: each dlopen only counts a reference, cheaply.
        let d = dlopen_times(&mut meter, &plan, "libc.so.6", c"libc.so.6").unwrap();
        assert_eq!(
            (d.lazy_us.len(), d.now_us.len(), d.stop),
            (3, 3, Some(Stop::Fixed))
        );
        assert!(d.stayed_loaded);
        let none = c"libsyslens-no-such-library.so.0";
        assert!(dlopen_times(&mut meter, &plan, "libsyslens-no-such-library.so.0", none).is_none());
    }

    #[test]
    fn passes_on_lazy_binding_and_sharing() {
        assert_eq!(statuses(&good()), vec![Status::Passed; 2]);
    }

    #[test]
    fn each_claim_fails_on_contradicting_evidence() {
        let mut m = good();
        m.relocations_now = Some(87);
        assert_eq!(statuses(&m)[0], Status::Failed);
        let mut m = good();
        m.libc_pss = m.libc_rss;
        assert_eq!(statuses(&m)[1], Status::Failed);
    }

    /// Unreadable maps are noted only when there were some (issue 23: `> 0` as `>=`,
    /// `==` and `<` survived a full run over this analysis).
    #[test]
    fn issue_23_unreadable_maps_are_noted_only_when_there_were_some() {
        let notes = |unreadable: u64| {
            let mut m = good();
            m.maps_unreadable = unreadable;
            crate::lab::report::analyzed(ConceptId::SharedLibs, &m, analyze)
                .notes
                .into_iter()
                .filter(|n| n.contains("unreadable"))
                .collect::<Vec<_>>()
        };
        assert!(notes(0).is_empty());
        assert_eq!(
            notes(3),
            ["3 processes' maps were unreadable (permission): the libc count covers the rest"]
        );
    }

    /// libc's Rss and Pss bars are in KiB (issue 23: `/` as `%` survived).
    #[test]
    fn issue_23_the_libc_bars_are_in_kib() {
        let mut m = good();
        (m.libc_rss, m.libc_pss) = (2 << 20, 3 << 19);
        let r = crate::lab::report::analyzed(ConceptId::SharedLibs, &m, analyze);
        let libc = r
            .series
            .iter()
            .find(|s| s.x == "smaps field")
            .expect("the libc bars");
        assert_eq!(libc.points, [[0.0, 2048.0], [1.0, 1536.0]]);
    }

    #[test]
    fn skips_with_reasons_when_untestable() {
        let mut m = good();
        m.program = Err("/bin/true is linked with BIND_NOW".into());
        m.libc_mappers = 1;
        assert_eq!(statuses(&m), vec![Status::Skipped, Status::Skipped]);
    }

    /// Missing data is shown as missing: without the linker's counts there is no
    /// "relocations 0 -> 0" evidence row, and the claim says why.
    #[test]
    fn issue_15_missing_relocation_counts_are_no_evidence_of_zero() {
        let mut m = good();
        m.relocations_now = None;
        let r = crate::lab::report::analyzed(ConceptId::SharedLibs, &m, analyze);
        assert!(
            r.evidence.iter().all(|e| !e.field.contains("relocations")),
            "{:?}",
            r.evidence
        );
        let why = format!("{:?}", r.checks[0]);
        assert!(why.contains("printed no relocation count"), "{why}");
        let r = crate::lab::report::analyzed(ConceptId::SharedLibs, &good(), analyze);
        assert!(r.evidence.iter().any(|e| e.field.contains("relocations")));
    }
}
