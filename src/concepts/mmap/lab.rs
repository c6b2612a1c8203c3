//! Lab: memory mapping. Reading a cached file with read(2) copies it; mapping it reads
//! the page cache in place. A MAP_SHARED write is seen by every process mapping the
//! file; a MAP_PRIVATE write is copied and seen by nobody else. MAP_POPULATE faults
//! everything in at mmap time.

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::catalogue::ConceptId;
use crate::lab::mem::{page_size, self_rss, write_file, Region};
use crate::lab::meter::{trial, SystemMeter};
use crate::lab::params::{Max, ParamError, ParamSpec, ParamValues, Value};
use crate::lab::report::{mib, Axis, Check, LabReport};
use crate::lab::sandbox::{wait_forked, LabError, Link, Params};
use crate::lab::scratch::{Backing, ScratchDir};
use crate::lab::stats::{Adaptive, Stop};
use crate::lab::{LabContext, LabDef, WATCHDOG};

/// The mmap lab: its parameters, the parent side (`run`) and the child role.
pub static LAB: LabDef = LabDef {
    id: ConceptId::Mmap,
    summary: "read() vs mmap of a cached file; MAP_SHARED as IPC vs MAP_PRIVATE; MAP_POPULATE",
    headline: &[
        ("sequential read(2)", "read()"),
        ("sequential read through mmap", "mmap"),
    ],
    params: &PARAMS,
    check: |p| settings(p).map(drop),
    run,
    child,
};

static PARAMS: [ParamSpec; 4] = [
    ParamSpec::bytes(
        "size",
        "the cached file read with read(2) and through mmap",
        64 << 20,
        16 << 20,
    )
    .main_size(),
    ParamSpec::bytes(
        "read_buffer",
        "the buffer each read(2) fills (smaller: more system calls for the same bytes)",
        128 << 10,
        128 << 10,
    )
    .at_least(512)
    .at_most(Max::Fixed(Value::Int(64 << 20))),
    ParamSpec::trials("timed reads of each kind", 11, 5),
    ParamSpec::budget(1000, 300),
];

/// (size, read buffer, trials, budget of the adaptive trials in ms).
fn settings(p: &ParamValues) -> Result<(u64, u64, usize, u64), ParamError> {
    Ok((
        p.bytes("size")?,
        p.bytes("read_buffer")?,
        p.count("trials")? as usize,
        p.millis("budget_ms")?.as_millis() as u64,
    ))
}

/// Untimed rounds of each kind first (the first also brings the file into the cache).
const WARMUP: usize = 1;

/// The bytes the writer stores, distinct from the file's fill byte (0x5a).
const SHARED_MARK: u8 = 0x42;
const PRIVATE_MARK: u8 = 0x99;

/// The parameters of the child role "mmap": the file's size and directory.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MmapParams {
    size: u64,
    read_buffer: u64,
    trials: usize,
    /// Time budget of the adaptive trials (ms; 0: exactly `trials`).
    budget_ms: u64,
    dir: PathBuf,
}

/// Everything the mmap lab measured, as `analyze` judges it; the child sends it whole.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measured {
    /// Size of the file read and mapped (bytes).
    pub size: u64,
    /// MB/s per trial.
    pub read_mbps: Vec<f64>,
    /// MB/s summing the file through a mapping, per trial.
    pub mmap_mbps: Vec<f64>,
    /// What the other process saw after a MAP_SHARED write.
    pub shared_seen_by_other: u8,
    /// What the file holds after the MAP_SHARED write.
    pub shared_in_file: u8,
    /// What the other process and the file hold after a MAP_PRIVATE write.
    pub private_seen_by_other: u8,
    /// What the file holds after the MAP_PRIVATE write.
    pub private_in_file: u8,
    /// What the writer itself reads back after its MAP_PRIVATE write.
    pub private_seen_by_writer: u8,
    /// Rss growth (bytes) from mapping the file without MAP_POPULATE.
    pub rss_grow_plain: u64,
    /// Rss growth (bytes) from mapping it with MAP_POPULATE.
    pub rss_grow_populate: u64,
    /// How the adaptive trials ended (they watch the read(2) series; each trial times
    /// both kinds).
    #[serde(default)]
    pub stop: Option<Stop>,
}

fn run(ctx: &mut LabContext, report: &mut LabReport) -> Result<(), LabError> {
    let (size, read_buffer, trials, budget_ms) = settings(&ctx.params)?;
    let dir = ScratchDir::new(Backing::Persistent).map_err(LabError::io("scratch directory"))?;
    let jail = ctx.memory_jail(size * 2, report)?;
    let mut c = ctx.spawn_in(
        &jail,
        ConceptId::Mmap,
        "mmap",
        &MmapParams {
            size,
            read_buffer,
            trials,
            budget_ms,
            dir: dir.path().to_owned(),
        },
    )?;
    let m: Measured = c.expect("measured", WATCHDOG * 2)?;
    c.wait(WATCHDOG)?;
    analyze(&m, report);
    Ok(())
}

fn byte(b: u8) -> String {
    format!("{b:#04x}")
}

/// Turns the readings into the report's checks and figures (unit tests feed it made-up ones).
pub fn analyze(m: &Measured, report: &mut LabReport) {
    report.check(Check::holds(
        "a MAP_SHARED write is visible to another process mapping the file, and in the file",
        m.shared_seen_by_other == SHARED_MARK && m.shared_in_file == SHARED_MARK,
        format!(
            "other process read {}, file holds {}",
            byte(m.shared_seen_by_other),
            byte(m.shared_in_file)
        ),
        format!("{} in both", byte(SHARED_MARK)),
    ));
    report.check(Check::holds(
        "a MAP_PRIVATE write is invisible to the other process and to the file (the writer got a copy)",
        m.private_seen_by_writer == PRIVATE_MARK && m.private_seen_by_other != PRIVATE_MARK && m.private_in_file != PRIVATE_MARK,
        format!(
            "writer reads {}, other process {}, file {}",
            byte(m.private_seen_by_writer),
            byte(m.private_seen_by_other),
            byte(m.private_in_file)
        ),
        format!("writer {}, the others not", byte(PRIVATE_MARK)),
    ));
    let read = report.metric(
        "sequential read(2) of the cached file",
        "MB/s",
        &m.read_mbps,
    );
    let mapped = report.metric(
        "sequential read through mmap (incl. mmap, faults, munmap)",
        "MB/s",
        &m.mmap_mbps,
    );
    match (read, mapped) {
        (Some(r), Some(mm)) => report.check(Check::holds(
            "both throughputs are reported with their spread",
            r.n > 1 && mm.n > 1,
            format!(
                "read {:.0} MB/s (n={}, CV {:.1}%), mmap {:.0} MB/s (n={}, CV {:.1}%)",
                r.median,
                r.n,
                r.cv * 100.0,
                mm.median,
                mm.n,
                mm.cv * 100.0
            ),
            "n > 1 for each",
        )),
        _ => report.check(Check::failed(
            "both throughputs are reported with their spread",
            "no throughput samples",
        )),
    }
    report.evidence(
        "/proc/self/smaps_rollup (child)",
        "Rss growth, plain mmap",
        0.0,
        m.rss_grow_plain as f64,
        "bytes",
    );
    report.evidence(
        "/proc/self/smaps_rollup (child)",
        "Rss growth, MAP_POPULATE",
        0.0,
        m.rss_grow_populate as f64,
        "bytes",
    );
    report.series(
        "read(2) throughput per trial",
        "trial",
        "MB/s",
        Axis::Integer,
        m.read_mbps
            .iter()
            .enumerate()
            .map(|(i, v)| [i as f64, *v])
            .collect(),
    );
    report.series(
        "mmap throughput per trial",
        "trial",
        "MB/s",
        Axis::Integer,
        m.mmap_mbps
            .iter()
            .enumerate()
            .map(|(i, v)| [i as f64, *v])
            .collect(),
    );
    report.note(format!(
        "mmap of {} grew RSS by {} at once; with MAP_POPULATE by {}",
        mib(m.size as f64),
        mib(m.rss_grow_plain as f64),
        mib(m.rss_grow_populate as f64)
    ));
    if let Some(note) = m
        .stop
        .and_then(|s| s.note("sequential read(2) and mmap, per trial", m.read_mbps.len()))
    {
        report.note(note);
    }
}

fn child(role: &str, params: &Params, link: &mut Link) -> Result<(), String> {
    if role != "mmap" {
        return Err(format!("unknown role {role}"));
    }
    let MmapParams {
        size,
        read_buffer,
        trials,
        budget_ms,
        dir,
    } = params.decode()?;
    let size = size as usize;
    let io = |e: std::io::Error| e.to_string();
    let path = dir.join("mmap.dat");
    let file = write_file(&path, size).map_err(io)?;
    // The clock alone: the timed reads need no perf counter, and an open one would
    // cost every fault of the mapped pass (see the README's accuracy paragraph).
    let mut meter = SystemMeter::without_perf();
    let plan = Adaptive::new(WARMUP, trials, Duration::from_millis(budget_ms));
    let (read_mbps, mmap_mbps, stop) =
        throughputs(&mut meter, &plan, &path, &file, size, read_buffer as usize).map_err(io)?;
    let mut m = Measured {
        size: size as u64,
        read_mbps,
        mmap_mbps,
        stop: Some(stop),
        ..Measured::default()
    };
    shared_vs_private(&file, &mut m).map_err(io)?;
    let before = self_rss().map_err(io)?;
    let plain = Region::file(&file, size, true, false).map_err(io)?;
    m.rss_grow_plain = self_rss().map_err(io)?.saturating_sub(before);
    drop(plain);
    let before = self_rss().map_err(io)?;
    let populated = Region::file(&file, size, true, true).map_err(io)?;
    m.rss_grow_populate = self_rss().map_err(io)?.saturating_sub(before);
    drop(populated);
    link.send("measured", &m).map_err(io)
}

/// MB/s of reading `path` (`size` bytes, also open as `file`) with read(2) into a
/// `read_buffer`, and of summing it through a fresh mapping, per trial, trials as `plan`
/// says: the read(2) series drives the rule, each trial times both kinds. The two
/// passes must see the same bytes.
fn throughputs(
    meter: &mut SystemMeter,
    plan: &Adaptive,
    path: &Path,
    file: &std::fs::File,
    size: usize,
    read_buffer: usize,
) -> std::io::Result<(Vec<f64>, Vec<f64>, Stop)> {
    let mut buf = vec![0u8; read_buffer];
    let mb = |ns: u64| size as f64 / 1e6 / (ns as f64 / 1e9);
    let mut mmap_mbps = Vec::new();
    let (read_mbps, stop) = plan.run(Adaptive::clock(), |kept| -> std::io::Result<f64> {
        let (rt, sum_read) = trial(meter, || -> std::io::Result<u64> {
            let mut f = std::fs::File::open(path)?;
            let mut sum = 0u64;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    return Ok(sum);
                }
                sum = buf[..n].chunks_exact(8).fold(sum, |s, w| {
                    s.wrapping_add(u64::from_ne_bytes(w.try_into().unwrap_or([0; 8])))
                });
            }
        });
        let (mt, sum_map) = trial(meter, || -> std::io::Result<u64> {
            let r = Region::file(file, size, true, false)?;
            Ok(r.sum_words())
        });
        if sum_read? != sum_map? {
            return Err(std::io::Error::other("read() and mmap saw different bytes"));
        }
        if kept {
            mmap_mbps.push(mb(mt.ns));
        }
        Ok(mb(rt.ns))
    })?;
    Ok((read_mbps, mmap_mbps, stop))
}

/// Two processes map the same file: the forked observer maps it MAP_SHARED; this
/// process writes through MAP_SHARED, then through MAP_PRIVATE. They take turns over
/// a pipe pair.
fn shared_vs_private(file: &std::fs::File, m: &mut Measured) -> std::io::Result<()> {
    let len = page_size();
    file.write_all_at(&[0x5a], 0)?;
    let (to_child_r, to_child_w) = rustix::pipe::pipe()?;
    let (to_parent_r, to_parent_w) = rustix::pipe::pipe()?;
    let observer = Region::file(file, len, true, false)?;
    // SAFETY: this lab child is single-threaded; the forked copy runs plain code.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => {
            let _ = crate::lab::sandbox::die_with_parent();
            let mut b = [0u8; 1];
            // Two rounds: wait for the writer, report what the shared mapping shows.
            for _ in 0..2 {
                if rustix::io::read(&to_child_r, &mut b).unwrap_or(0) != 1 {
                    break;
                }
                let _ = rustix::io::write(&to_parent_w, &[observer.byte(0)]);
            }
            // SAFETY: leave without running destructors twice.
            unsafe { libc::_exit(0) }
        }
        pid => {
            let mut seen = [0u8; 1];
            // explain-begin: the lines that provoke the concept
            let writer = Region::file(file, len, true, false)?;
            writer.set_byte(0, SHARED_MARK);
            rustix::io::write(&to_child_w, b"s")?;
            rustix::io::read(&to_parent_r, &mut seen)?;
            m.shared_seen_by_other = seen[0];
            let mut f = [0u8; 1];
            file.read_exact_at(&mut f, 0)?;
            m.shared_in_file = f[0];
            drop(writer);
            let private = Region::file(file, len, false, false)?;
            private.set_byte(0, PRIVATE_MARK);
            // explain-end
            m.private_seen_by_writer = private.byte(0);
            rustix::io::write(&to_child_w, b"p")?;
            rustix::io::read(&to_parent_r, &mut seen)?;
            m.private_seen_by_other = seen[0];
            file.read_exact_at(&mut f, 0)?;
            m.private_in_file = f[0];
            let _ = wait_forked(pid);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::report::Status;

    fn good() -> Measured {
        Measured {
            size: 64 << 20,
            read_mbps: vec![5000.0, 5100.0, 4900.0],
            mmap_mbps: vec![3000.0, 3100.0, 2900.0],
            shared_seen_by_other: SHARED_MARK,
            shared_in_file: SHARED_MARK,
            private_seen_by_other: SHARED_MARK,
            private_in_file: SHARED_MARK,
            private_seen_by_writer: PRIVATE_MARK,
            rss_grow_plain: 0,
            rss_grow_populate: 64 << 20,
            stop: None,
        }
    }

    fn statuses(m: &Measured) -> Vec<Status> {
        crate::lab::report::claim_statuses(ConceptId::Mmap, m, analyze)
    }

    /// issue 20: the timed reads take adaptive trials, and a budget that ran out is
    /// named in the notes with its interval.
    #[test]
    fn issue_20_an_mmap_series_whose_budget_ran_out_is_named_in_the_notes() {
        let budget = |stop: Option<Stop>| -> Vec<String> {
            let m = Measured { stop, ..good() };
            crate::lab::report::budget_notes(ConceptId::Mmap, &m, analyze)
        };
        let notes = budget(Some(Stop::Budget {
            half_rel: Some(0.123),
        }));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with(
                "sequential read(2) and mmap, per trial: the time budget ran out after 3 trials with the median's 95% interval at +/-12.3%"
            ),
            "{}",
            notes[0]
        );
        for quiet in [None, Some(Stop::Converged), Some(Stop::Fixed)] {
            assert!(budget(quiet).is_empty(), "{quiet:?}");
        }
    }

    /// issue 20: a budget of 0 takes exactly `trials` of each kind.
    #[test]
    fn issue_20_mmap_throughputs_with_no_budget_take_exactly_the_trials() {
        let dir = ScratchDir::new(Backing::Memory).unwrap();
        let path = dir.path().join("mmap.dat");
        let size = 256 << 10;
        let file = write_file(&path, size).unwrap();
        let plan = Adaptive::new(WARMUP, 3, Duration::ZERO);
        let mut meter = SystemMeter::without_perf();
        let (read, mapped, stop) =
            throughputs(&mut meter, &plan, &path, &file, size, 64 << 10).unwrap();
        assert_eq!((read.len(), mapped.len(), stop), (3, 3, Stop::Fixed));
        assert!(
            read.iter().chain(&mapped).all(|x| *x > 0.0),
            "{read:?} {mapped:?}"
        );
    }

    #[test]
    fn passes_on_mapping_semantics() {
        assert_eq!(statuses(&good()), vec![Status::Passed; 3]);
    }

    #[test]
    fn each_claim_fails_on_contradicting_evidence() {
        let mut m = good();
        m.shared_seen_by_other = 0x5a;
        assert_eq!(statuses(&m)[0], Status::Failed);
        let mut m = good();
        m.private_in_file = PRIVATE_MARK;
        assert_eq!(statuses(&m)[1], Status::Failed);
        let mut m = good();
        m.private_seen_by_other = PRIVATE_MARK;
        assert_eq!(statuses(&m)[1], Status::Failed);
        let mut m = good();
        m.read_mbps = vec![5000.0];
        assert_eq!(statuses(&m)[2], Status::Failed);
    }
}
