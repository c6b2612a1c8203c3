//! Lab: ephemeral vs persistent storage. A file on tmpfs is RAM (it shows as Shmem)
//! and fsync there costs nothing; on a disk file system fsync waits for the device. An
//! in-place rewrite killed half way leaves a torn file; writing a temporary file,
//! fsync and rename leaves the old or the new content, never a mix. A tmpfs mounted in
//! a private mount namespace is gone with it.

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::catalogue::ConceptId;
use crate::lab::params::{Max, ParamError, ParamSpec, ParamValues, Value};
use crate::lab::report::{mib, pct, pct_text, Check, Cmp, LabReport};
use crate::lab::sandbox::{LabError, Link, Params};
use crate::lab::scratch::{is_memory, Backing, ScratchDir};
use crate::lab::stats::{Adaptive, Stop};
use crate::lab::{LabContext, LabDef, WATCHDOG};

/// The storage lab: its parameters, the parent side (`run`) and the child roles.
pub static LAB: LabDef = LabDef {
    id: ConceptId::Storage,
    summary: "tmpfs vs disk with and without fsync; Shmem; torn in-place rewrite vs temp+fsync+rename; private tmpfs",
    headline: &[("fsync after a 4 KiB append, tmpfs", "fsync tmpfs"), ("fsync after a 4 KiB append, disk", "fsync disk")],
    params: &PARAMS,
    check: |p| settings(p).map(drop),
    run,
    child,
};

static PARAMS: [ParamSpec; 4] = [
    ParamSpec::bytes(
        "size",
        "the file written to tmpfs and to disk, and rewritten in place and atomically",
        64 << 20,
        16 << 20,
    )
    .main_size(),
    ParamSpec::bytes("chunk", "the bytes of each write(2)", 64 << 10, 64 << 10)
        .at_least(512)
        .at_most(Max::Fixed(Value::Int(16 << 20))),
    ParamSpec::trials(
        "timed fsyncs after a 4 KiB append, on each file system",
        50,
        20,
    ),
    ParamSpec::budget(1000, 300),
];

/// (file bytes, bytes per write, fsync trials, budget of each file system's adaptive
/// fsync trials in ms).
fn settings(p: &ParamValues) -> Result<(u64, u64, usize, u64), ParamError> {
    Ok((
        p.bytes("size")?,
        p.bytes("chunk")?,
        p.count("trials")? as usize,
        p.millis("budget_ms")?.as_millis() as u64,
    ))
}

/// Untimed appends + fsyncs before each file system's timed ones.
const WARMUP: usize = 2;
const OLD: u8 = b'A';
const NEW: u8 = b'B';

/// The parameters of the child role "write": a tmpfs and a disk directory.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteParams {
    ram: PathBuf,
    disk: PathBuf,
    bytes: u64,
    chunk: u64,
    fsyncs: usize,
    /// Time budget of each file system's adaptive fsync trials (ms; 0: exactly `fsyncs`).
    budget_ms: u64,
}

/// "written": MB/s per (file system, fsync) and the fsync latencies.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    throughput: Vec<(String, f64)>,
    fsync_tmpfs_us: Vec<f64>,
    fsync_disk_us: Vec<f64>,
    #[serde(default)]
    tmpfs_stop: Option<Stop>,
    #[serde(default)]
    disk_stop: Option<Stop>,
}

/// How the child role "rewrite" replaces the file's content.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Rewrite {
    /// Over the old bytes, in place.
    InPlace,
    /// A temporary file, fsync, rename.
    Atomic,
}

/// The parameters of the child role "rewrite".
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RewriteParams {
    path: PathBuf,
    bytes: u64,
    chunk: u64,
    mode: Rewrite,
}

/// The parameters of the child role "private-mount": where it mounts its tmpfs.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrivateMountParams {
    target: PathBuf,
}

/// "mounted": whether the target is a tmpfs inside the private namespace.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Mounted {
    tmpfs: bool,
}

/// Everything the storage lab measured, as `analyze` judges it.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Size of the file written and rewritten (bytes).
    pub written: u64,
    /// Growth of Shmem in /proc/meminfo (bytes) after writing the file to tmpfs.
    pub shmem_growth: i64,
    /// MB/s per (fs, fsync) pair: tmpfs, tmpfs+fsync, disk, disk+fsync.
    pub throughput: Vec<(String, f64)>,
    /// us per fsync on tmpfs.
    pub fsync_tmpfs_us: Vec<f64>,
    /// us per fsync on disk.
    pub fsync_disk_us: Vec<f64>,
    /// How the adaptive trials of the tmpfs fsyncs ended.
    pub tmpfs_stop: Option<Stop>,
    /// How the adaptive trials of the disk fsyncs ended.
    pub disk_stop: Option<Stop>,
    /// (old bytes, new bytes) left in the file.
    pub inplace_killed: (u64, u64),
    /// (old bytes, new bytes) after an atomic rewrite (temporary file + rename) killed half way.
    pub atomic_killed: (u64, u64),
    /// (old bytes, new bytes) after an atomic rewrite left to finish.
    pub atomic_completed: (u64, u64),
    /// The private mount namespace: (tmpfs inside, seen outside during, seen outside after); None: not run.
    pub private: Option<Result<(bool, bool, bool), String>>,
}

/// Shmem of /proc/meminfo, in bytes; unreadable is an error, never a zero.
fn shmem(ctx: &mut LabContext) -> Result<i64, LabError> {
    ctx.reader
        .read_proc("meminfo")
        .map(syslens_probe::system::Meminfo::parse)
        .and_then(|m| m.shmem)
        .map(|b| b as i64)
        .map_err(LabError::read("Shmem of /proc/meminfo"))
}

fn counts(path: &Path) -> (u64, u64) {
    let b = std::fs::read(path).unwrap_or_default();
    (
        b.iter().filter(|c| **c == OLD).count() as u64,
        b.iter().filter(|c| **c == NEW).count() as u64,
    )
}

fn run(ctx: &mut LabContext, report: &mut LabReport) -> Result<(), LabError> {
    let (bytes, chunk, fsyncs, budget_ms) = settings(&ctx.params)?;
    let ram = ScratchDir::new(Backing::Memory).map_err(LabError::io("scratch directory"))?;
    let disk = ScratchDir::new(Backing::Persistent).map_err(LabError::io("scratch directory"))?;
    report.param("tmpfs_dir", ram.path().display().to_string());
    report.param("disk_dir", disk.path().display().to_string());
    let jail = ctx.memory_jail(bytes * 2, report)?;
    let mut m = Measured {
        written: bytes,
        ..Measured::default()
    };

    let before = shmem(ctx)?;
    let mut c = ctx.spawn_in(
        &jail,
        ConceptId::Storage,
        "write",
        &WriteParams {
            ram: ram.path().to_owned(),
            disk: disk.path().to_owned(),
            bytes,
            chunk,
            fsyncs,
            budget_ms,
        },
    )?;
    let budgets = std::time::Duration::from_millis(2 * budget_ms);
    let w: Written = c.expect("written", WATCHDOG * 2 + budgets)?;
    m.shmem_growth = shmem(ctx)? - before;
    c.go()?;
    c.wait(WATCHDOG)?;
    m.throughput = w.throughput;
    m.fsync_tmpfs_us = w.fsync_tmpfs_us;
    m.fsync_disk_us = w.fsync_disk_us;
    (m.tmpfs_stop, m.disk_stop) = (w.tmpfs_stop, w.disk_stop);
    report.evidence(
        "/proc/meminfo",
        "Shmem growth after writing to tmpfs",
        0.0,
        m.shmem_growth as f64,
        "bytes",
    );

    // Torn and atomic rewrites, the kill point chosen by handshake.
    let target = disk.path().join("state");
    let rewrite =
        |ctx: &mut LabContext, mode: Rewrite, kill: bool| -> Result<(u64, u64), LabError> {
            let old = LabError::io(format!("writing the old content of {}", target.display()));
            std::fs::File::create(&target)
                .and_then(|mut f| {
                    f.write_all(&vec![OLD; bytes as usize])?;
                    f.sync_all()
                })
                .map_err(old)?;
            let _ = std::fs::remove_file(target.with_extension("tmp"));
            let mut c = ctx.spawn(
                ConceptId::Storage,
                "rewrite",
                &RewriteParams {
                    path: target.clone(),
                    bytes,
                    chunk,
                    mode,
                },
            )?;
            c.expect::<()>("half", WATCHDOG)?;
            if kill {
                c.kill();
            } else {
                c.go()?;
                c.expect::<()>("done", WATCHDOG)?;
                c.go()?;
                c.wait(WATCHDOG)?;
            }
            Ok(counts(&target))
        };
    m.inplace_killed = rewrite(ctx, Rewrite::InPlace, true)?;
    m.atomic_killed = rewrite(ctx, Rewrite::Atomic, true)?;
    m.atomic_completed = rewrite(ctx, Rewrite::Atomic, false)?;

    m.private = Some(if !ctx.host.root {
        Err("a private mount namespace needs CAP_SYS_ADMIN: run as root".into())
    } else {
        let mnt = disk.path().join("private");
        std::fs::create_dir(&mnt).map_err(LabError::io(format!("creating {}", mnt.display())))?;
        let mut c = ctx.spawn(
            ConceptId::Storage,
            "private-mount",
            &PrivateMountParams {
                target: mnt.clone(),
            },
        )?;
        let inside = c.expect::<Mounted>("mounted", WATCHDOG)?.tmpfs;
        let outside_during = is_memory(&mnt) || mnt.join("note").exists();
        c.go()?;
        c.wait(WATCHDOG)?;
        let outside_after = is_memory(&mnt) || mnt.join("note").exists();
        Ok((inside, outside_during, outside_after))
    });
    analyze(&m, report);
    Ok(())
}

/// Shmem grows by at least this share of what was written to tmpfs.
const SHMEM_GROWTH_MIN: f64 = 0.90;
/// fsync on tmpfs costs at most this share of fsync on the disk.
const TMPFS_FSYNC_MAX: f64 = 0.10;

/// Turns the readings into the report's checks and figures (unit tests feed it made-up ones).
pub fn analyze(m: &Measured, report: &mut LabReport) {
    report.check(Check::compare(
        &format!(
            "data written to tmpfs shows up as Shmem in /proc/meminfo: it is RAM (>= {} of what was written)",
            pct_text(SHMEM_GROWTH_MIN)
        ),
        m.shmem_growth as f64 / m.written.max(1) as f64,
        Cmp::AtLeast,
        SHMEM_GROWTH_MIN,
        pct,
    )
    .observed(format!("Shmem grew {} for {} written", mib(m.shmem_growth as f64), mib(m.written as f64))));
    let torn = |c: (u64, u64)| c.0 > 0 && c.1 > 0;
    report.evidence(
        "the file rewritten in place, killed half way",
        "old bytes -> new bytes",
        m.inplace_killed.0 as f64,
        m.inplace_killed.1 as f64,
        "bytes",
    );
    report.check(Check::holds(
        "an in-place rewrite killed half way leaves a torn file (old and new bytes mixed)",
        torn(m.inplace_killed),
        format!(
            "{} old bytes, {} new bytes",
            m.inplace_killed.0, m.inplace_killed.1
        ),
        "both",
    ));
    report.check(Check::holds(
        "write temp + fsync + rename: killed half way leaves the old file, completed the new one, never torn",
        m.atomic_killed.1 == 0 && m.atomic_killed.0 == m.written && m.atomic_completed.0 == 0 && m.atomic_completed.1 == m.written,
        format!(
            "killed: {} old / {} new bytes; completed: {} old / {} new",
            m.atomic_killed.0, m.atomic_killed.1, m.atomic_completed.0, m.atomic_completed.1
        ),
        format!("killed: all {} old; completed: all new", m.written),
    ));
    let t = report
        .metric("fsync after a 4 KiB append, tmpfs", "us", &m.fsync_tmpfs_us)
        .map(|s| s.median);
    let d = report
        .metric(
            "fsync after a 4 KiB append, disk file system",
            "us",
            &m.fsync_disk_us,
        )
        .map(|s| s.median);
    for (what, samples, stop) in [
        (
            "fsync after a 4 KiB append, tmpfs",
            &m.fsync_tmpfs_us,
            m.tmpfs_stop,
        ),
        (
            "fsync after a 4 KiB append, disk",
            &m.fsync_disk_us,
            m.disk_stop,
        ),
    ] {
        if let Some(note) = stop.and_then(|s| s.note(what, samples.len())) {
            report.note(note);
        }
    }
    let near_free = "fsync on tmpfs is near free next to the disk";
    if let (Some(t), Some(d)) = (t, d) {
        report.bars(
            "fsync after a 4 KiB append, median of the trials",
            "file system",
            "fsync (us)",
            &[("tmpfs", t), ("disk", d)],
        );
    }
    match (t, d) {
        (Some(t), Some(d)) => report.check(
            Check::compare(
                &format!(
                    "{near_free} (<= {} of its median)",
                    pct_text(TMPFS_FSYNC_MAX)
                ),
                t / d.max(f64::MIN_POSITIVE),
                Cmp::AtMost,
                TMPFS_FSYNC_MAX,
                pct,
            )
            .observed(format!(
                "{t:.2} us on tmpfs, {d:.1} us on disk ({})",
                pct(t / d.max(f64::MIN_POSITIVE))
            )),
        ),
        _ => report.check(Check::failed(near_free, "no fsync timings")),
    }
    for (name, mbps) in &m.throughput {
        report.metric(&format!("write {name}"), "MB/s", &[*mbps]);
    }
    let throughput: Vec<(&str, f64)> = m.throughput.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    if !throughput.is_empty() {
        report.bars("write throughput", "written to", "MB/s", &throughput);
    }
    let claim_private =
        "a tmpfs in a private mount namespace is invisible outside and gone with the namespace";
    match &m.private {
        Some(Ok((inside, during, after))) => report.check(Check::holds(
            claim_private,
            *inside && !*during && !*after,
            format!(
                "inside: {}; outside while mounted: {}; after exit: {}",
                if *inside { "tmpfs" } else { "no tmpfs" },
                if *during { "visible" } else { "invisible" },
                if *after { "still there" } else { "gone" }
            ),
            "tmpfs inside, invisible outside, gone",
        )),
        Some(Err(why)) => report.check(Check::skipped(claim_private, why.clone())),
        None => report.check(Check::failed(claim_private, "not measured")),
    }
    report.note(
        "a SIGKILL cannot show what fsync is for: data already written survives a killed process in the page cache; \
         fsync protects it against power loss and kernel crashes, which a lab cannot safely cause",
    );
}

/// Writes `bytes` of `byte` at the start of `f` in writes of `chunk` bytes; `half`
/// runs once half of them are written.
fn fill(
    f: &mut std::fs::File,
    (bytes, chunk): (usize, usize),
    byte: u8,
    half: &mut dyn FnMut() -> std::io::Result<()>,
) -> std::io::Result<()> {
    let step = chunk.max(1);
    let chunk = vec![byte; step];
    let mut written = 0;
    let mut signalled = false;
    while written < bytes {
        let n = (bytes - written).min(step);
        f.write_all_at(&chunk[..n], written as u64)?;
        written += n;
        if !signalled && written >= bytes / 2 {
            signalled = true;
            half()?;
        }
    }
    Ok(())
}

/// us per fsync (fdatasync) after a 4 KiB append to `dir`/log, per trial, trials as
/// `plan` says.
fn fsync_latency(dir: &Path, plan: &Adaptive) -> std::io::Result<(Vec<f64>, Stop)> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("log"))?;
    let block = [7u8; 4096];
    plan.run(Adaptive::clock(), |_| -> std::io::Result<f64> {
        f.write_all(&block)?;
        let t = Instant::now();
        f.sync_data()?;
        Ok(t.elapsed().as_secs_f64() * 1e6)
    })
}

fn child(role: &str, params: &Params, link: &mut Link) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    match role {
        "write" => {
            let WriteParams {
                ram,
                disk,
                bytes,
                chunk,
                fsyncs,
                budget_ms,
            } = params.decode()?;
            let bytes = bytes as usize;
            let sizes = (bytes, chunk as usize);
            let mut throughput = Vec::new();
            for (label, dir) in [("tmpfs", &ram), ("disk", &disk)] {
                for sync in [false, true] {
                    let path = dir.join(format!("data-{sync}"));
                    let t = Instant::now();
                    let mut f = std::fs::File::create(&path).map_err(io)?;
                    fill(&mut f, sizes, 1, &mut || Ok(())).map_err(io)?;
                    if sync {
                        f.sync_all().map_err(io)?;
                    }
                    let name = format!("{label}{}", if sync { " + fsync" } else { "" });
                    throughput.push((name, bytes as f64 / 1e6 / t.elapsed().as_secs_f64()));
                    // The tmpfs copy without fsync stays, for the Shmem reading.
                    if label == "disk" || sync {
                        std::fs::remove_file(&path).map_err(io)?;
                    }
                }
            }
            // Each file system's series has the budget to itself.
            let plan = Adaptive::new(WARMUP, fsyncs, std::time::Duration::from_millis(budget_ms));
            let (fsync_tmpfs_us, tmpfs_stop) = fsync_latency(&ram, &plan).map_err(io)?;
            let (fsync_disk_us, disk_stop) = fsync_latency(&disk, &plan).map_err(io)?;
            let written = Written {
                throughput,
                fsync_tmpfs_us,
                fsync_disk_us,
                tmpfs_stop: Some(tmpfs_stop),
                disk_stop: Some(disk_stop),
            };
            link.sync("written", written).map_err(io)
        }
        "rewrite" => {
            let RewriteParams {
                path,
                bytes,
                chunk,
                mode,
            } = params.decode()?;
            let (path, sizes) = (path.as_path(), (bytes as usize, chunk as usize));
            let mut half = || link.sync("half", ());
            if let Rewrite::InPlace = mode {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io)?;
                fill(&mut f, sizes, NEW, &mut half).map_err(io)?;
                f.sync_all().map_err(io)?;
            } else {
                // explain-begin: the lines that provoke the concept
                let tmp = path.with_extension("tmp");
                let mut f = std::fs::File::create(&tmp).map_err(io)?;
                fill(&mut f, sizes, NEW, &mut half).map_err(io)?;
                f.sync_all().map_err(io)?;
                std::fs::rename(&tmp, path).map_err(io)?;
                if let Some(dir) = path.parent() {
                    std::fs::File::open(dir)
                        .and_then(|d| d.sync_all())
                        .map_err(io)?;
                }
                // explain-end
            }
            link.sync("done", ()).map_err(io)
        }
        "private-mount" => {
            use std::os::unix::ffi::OsStrExt;
            let target = params.decode::<PrivateMountParams>()?.target;
            let c = |s: &[u8]| std::ffi::CString::new(s).map_err(|e| e.to_string());
            let (root, t, fs) = (c(b"/")?, c(target.as_os_str().as_bytes())?, c(b"tmpfs")?);
            // SAFETY: single-threaded child; unshare, then propagation flags, then a
            // fresh tmpfs on our own scratch directory.
            unsafe {
                if libc::unshare(libc::CLONE_NEWNS) != 0
                    || libc::mount(
                        std::ptr::null(),
                        root.as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    ) != 0
                    || libc::mount(fs.as_ptr(), t.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) != 0
                {
                    return Err(io(std::io::Error::last_os_error()));
                }
            }
            std::fs::write(target.join("note"), b"only in here").map_err(io)?;
            let tmpfs = is_memory(&target);
            link.sync("mounted", Mounted { tmpfs }).map_err(io)
        }
        other => Err(format!("unknown role {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::report::Status;

    fn good() -> Measured {
        Measured {
            written: 1000,
            shmem_growth: 1000,
            throughput: vec![("tmpfs".into(), 3000.0)],
            fsync_tmpfs_us: vec![0.2; 5],
            fsync_disk_us: vec![200.0; 5],
            tmpfs_stop: None,
            disk_stop: None,
            inplace_killed: (500, 500),
            atomic_killed: (1000, 0),
            atomic_completed: (0, 1000),
            private: Some(Ok((true, false, false))),
        }
    }

    fn statuses(m: &Measured) -> Vec<Status> {
        crate::lab::report::claim_statuses(ConceptId::Storage, m, analyze)
    }

    /// issue 20: each file system's fsyncs take adaptive trials, and one whose budget
    /// ran out is named in the notes with its interval.
    #[test]
    fn issue_20_an_fsync_series_whose_budget_ran_out_is_named_in_the_notes() {
        let mut m = good();
        m.tmpfs_stop = Some(Stop::Converged);
        m.disk_stop = Some(Stop::Budget {
            half_rel: Some(0.241),
        });
        let budget = crate::lab::report::budget_notes(ConceptId::Storage, &m, analyze);
        assert_eq!(budget.len(), 1, "{budget:?}");
        assert!(
            budget[0].starts_with(
                "fsync after a 4 KiB append, disk: the time budget ran out after 5 trials with the median's 95% interval at +/-24.1%"
            ),
            "{}",
            budget[0]
        );
    }

    /// issue 20: a budget of 0 takes exactly `trials` fsyncs.
    #[test]
    fn issue_20_fsync_latency_with_no_budget_takes_exactly_the_trials() {
        let dir = ScratchDir::new(Backing::Memory).unwrap();
        let plan = Adaptive::new(WARMUP, 4, std::time::Duration::ZERO);
        let (us, stop) = fsync_latency(dir.path(), &plan).unwrap();
        assert_eq!((us.len(), stop), (4, Stop::Fixed));
        let log = std::fs::metadata(dir.path().join("log")).unwrap().len();
        assert_eq!(log, (WARMUP as u64 + 4) * 4096);
    }

    #[test]
    fn passes_on_storage_semantics() {
        assert_eq!(statuses(&good()), vec![Status::Passed; 5]);
    }

    /// Evidence just either side of each claim's threshold, worked out by hand.
    #[test]
    fn issue_23_each_claim_at_its_threshold() {
        let texts: Vec<String> = crate::lab::report::claims(ConceptId::Storage, &good(), analyze)
            .into_iter()
            .map(|c| c.claim)
            .collect();
        assert!(
            texts[0].ends_with("(>= 90% of what was written)"),
            "{}",
            texts[0]
        );
        assert!(
            texts[3].ends_with("next to the disk (<= 10% of its median)"),
            "{}",
            texts[3]
        );
        // 1000 bytes written.
        let shmem = |grew: i64| {
            let mut m = good();
            m.shmem_growth = grew;
            statuses(&m)[0]
        };
        assert_eq!(shmem(900), Status::Passed);
        assert_eq!(shmem(899), Status::Failed);
        // A disk fsync of 200 us: tmpfs may take 20.
        let fsync = |tmpfs_us: f64| {
            let mut m = good();
            m.fsync_tmpfs_us = vec![tmpfs_us; 5];
            statuses(&m)[3]
        };
        assert_eq!(fsync(20.0), Status::Passed);
        assert_eq!(fsync(20.1), Status::Failed);
        // A torn file needs bytes of both.
        let torn = |old: u64, new: u64| {
            let mut m = good();
            m.inplace_killed = (old, new);
            statuses(&m)[1]
        };
        assert_eq!(torn(1, 1), Status::Passed);
        assert_eq!(torn(0, 1000), Status::Failed);
        assert_eq!(torn(1000, 0), Status::Failed);
    }

    #[test]
    fn each_claim_fails_on_contradicting_evidence() {
        let mut m = good();
        m.shmem_growth = 10;
        assert_eq!(statuses(&m)[0], Status::Failed);
        let mut m = good();
        m.inplace_killed = (1000, 0);
        assert_eq!(statuses(&m)[1], Status::Failed);
        let mut m = good();
        m.atomic_killed = (600, 400);
        assert_eq!(
            statuses(&m)[2],
            Status::Failed,
            "a torn result of the atomic pattern"
        );
        let mut m = good();
        m.fsync_tmpfs_us = vec![100.0; 5];
        assert_eq!(statuses(&m)[3], Status::Failed);
        let mut m = good();
        m.private = Some(Ok((true, true, false)));
        assert_eq!(statuses(&m)[4], Status::Failed, "a mount that leaked");
    }
}
