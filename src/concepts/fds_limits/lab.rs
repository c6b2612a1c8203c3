//! Lab: file descriptors and limits. RLIMIT_NOFILE caps fd *numbers*: open fails with
//! EMFILE when no number below the soft limit is free (an fd above it, inherited, does
//! not count). The soft limit can be raised up to the hard one. An fd opened without
//! O_CLOEXEC leaks into every program exec'd later.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use serde::{Deserialize, Serialize};

use crate::catalogue::ConceptId;
use crate::lab::params::{ParamError, ParamSpec, ParamValues};
use crate::lab::report::{Check, LabReport};
use crate::lab::sandbox::{present, LabError, Link, Params};
use crate::lab::scratch::{Backing, ScratchDir};
use crate::lab::{LabContext, LabDef, WATCHDOG};

/// The fds-and-limits lab: its parameters, the parent side (`run`) and the child role.
pub static LAB: LabDef = LabDef {
    id: ConceptId::FdsLimits,
    summary: "open until EMFILE under a lowered soft limit; raise it to the hard one; an fd leaks across exec",
    headline: &[],
    params: &PARAMS,
    check: |p| settings(p).map(drop),
    run,
    child,
};

static PARAMS: [ParamSpec; 2] = [
    ParamSpec::int(
        "soft_limit",
        "fds",
        "the soft RLIMIT_NOFILE the child lowers itself to before it opens until EMFILE",
        (64, 64),
        (8, 65_536),
    ),
    ParamSpec::int(
        "high_fd",
        "fd number",
        "an fd number the child holds open from before the limit was lowered",
        (100, 100),
        (3, 1_048_575),
    ),
];

/// (soft limit, high fd), checked against the tool's own hard limit: the child can
/// neither lower its soft limit to more than that nor dup to a number at or past it.
fn settings(p: &ParamValues) -> Result<(u64, i32), ParamError> {
    let (soft, high) = (p.count("soft_limit")?, p.count("high_fd")?);
    if high < soft {
        return Err(p.conflict(format!(
            "high_fd {high} must be at or above soft_limit {soft}: it stands for an fd opened above the limit"
        )));
    }
    if let Some(hard) = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum {
        if high >= hard {
            return Err(p.conflict(format!(
                "high_fd {high} must be below the hard RLIMIT_NOFILE {hard}"
            )));
        }
    }
    Ok((soft, high as i32))
}

/// The parameters of the child role "emfile": the soft limit it lowers itself to, the
/// fd above it it holds, and the files it opens without and with O_CLOEXEC before it
/// execs.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmfileParams {
    soft: u64,
    high_fd: i32,
    leaked: PathBuf,
    cloexec: PathBuf,
}

/// "emfile": the soft limit, the opens that succeeded under it, and the errno of the
/// one that failed.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Emfile {
    soft: u64,
    opened: u64,
    errno: i32,
}

/// "raised": whether open works again after raising the soft limit to the hard one
/// (None: unlimited).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raised {
    ok: bool,
    #[serde(deserialize_with = "present")]
    hard: Option<u64>,
}

/// "fds": what the exec'd program found open (the targets of its fds).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fds {
    targets: Vec<String>,
}

/// Everything the fds-and-limits lab measured, as `analyze` judges it.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// The soft RLIMIT_NOFILE the child lowered itself to.
    pub soft: u64,
    /// The fd held above the limit.
    pub high_fd: i32,
    /// Files the child opened before open failed.
    pub opened: u64,
    /// The errno of the open that failed (EMFILE expected).
    pub errno: i32,
    /// fd numbers open at EMFILE, read by the parent from /proc/CHILD/fd.
    pub fds_at_emfile: Vec<i32>,
    /// How many fds the parent counted in /proc/CHILD/fd at EMFILE.
    pub parent_saw: u64,
    /// The hard limit the child raised its soft one to (None: unlimited).
    pub hard: Option<u64>,
    /// Whether open worked again after raising the soft limit.
    pub open_after_raise: bool,
    /// What the exec'd program found open.
    pub exec_fds: Vec<String>,
    /// The file the child opened without O_CLOEXEC before it exec'd.
    pub leaked_path: String,
    /// The file the child opened with O_CLOEXEC before it exec'd.
    pub cloexec_path: String,
}

fn run(ctx: &mut LabContext, report: &mut LabReport) -> Result<(), LabError> {
    let dir = ScratchDir::new(Backing::Memory)
        .or_else(|_| ScratchDir::new(Backing::Persistent))
        .map_err(LabError::io("scratch directory"))?;
    let leaked = dir.path().join("leaked-without-cloexec");
    let cloexec = dir.path().join("opened-with-cloexec");
    for p in [&leaked, &cloexec] {
        std::fs::write(p, b"x").map_err(LabError::io(format!("writing {}", p.display())))?;
    }
    let (soft, high_fd) = settings(&ctx.params)?;
    let mut c = ctx.spawn(
        ConceptId::FdsLimits,
        "emfile",
        &EmfileParams {
            soft,
            high_fd,
            leaked: leaked.clone(),
            cloexec: cloexec.clone(),
        },
    )?;
    let e: Emfile = c.expect("emfile", WATCHDOG)?;
    let mut m = Measured {
        soft: e.soft,
        high_fd,
        opened: e.opened,
        errno: e.errno,
        ..Measured::default()
    };
    let mut numbers = Vec::new();
    let read_fds = LabError::read(format!("/proc/{}/fd", c.pid));
    // The child cannot list its own fds at EMFILE (opening the directory needs an fd):
    // the parent reads them.
    ctx.reader
        .open_pid(c.pid)
        .and_then(|dir| ctx.reader.list_pid_numbers(&dir, "fd", &mut numbers))
        .map_err(read_fds)?;
    numbers.sort_unstable();
    m.parent_saw = numbers.len() as u64;
    m.fds_at_emfile = numbers;
    c.go()?;
    let raised: Raised = c.expect("raised", WATCHDOG)?;
    m.hard = raised.hard;
    m.open_after_raise = raised.ok;
    c.go()?;
    m.exec_fds = c.expect::<Fds>("fds", WATCHDOG)?.targets;
    c.expect::<()>("done", WATCHDOG)?;
    let pid = c.pid;
    c.wait(WATCHDOG)?;
    m.leaked_path = leaked.display().to_string();
    m.cloexec_path = cloexec.display().to_string();
    report.evidence(
        format!("/proc/{pid}/fd"),
        "open fds at EMFILE",
        0.0,
        m.parent_saw as f64,
        "",
    );
    analyze(&m, report);
    Ok(())
}

/// Turns the readings into the report's checks and figures (unit tests feed it made-up ones).
pub fn analyze(m: &Measured, report: &mut LabReport) {
    let below: Vec<i32> = (0..m.soft as i32).collect();
    let all_below_used = below.iter().all(|n| m.fds_at_emfile.contains(n));
    let above = m
        .fds_at_emfile
        .iter()
        .filter(|n| **n as u64 >= m.soft)
        .count();
    report.check(Check::holds(
        "open fails with EMFILE exactly when every fd number below the soft limit is in use",
        m.errno == libc::EMFILE && all_below_used && m.soft > 0,
        format!(
            "errno {} after {} opens; numbers 0..{} {}; {} open above the limit (fd {})",
            m.errno,
            m.opened,
            m.soft,
            if all_below_used {
                "all in use"
            } else {
                "not all in use"
            },
            above,
            m.high_fd
        ),
        format!("EMFILE ({}) with 0..{} all in use", libc::EMFILE, m.soft),
    ));
    report.check(Check::holds(
        "the soft limit can be raised up to the hard limit, and open works again",
        m.open_after_raise,
        format!(
            "open after raising soft to hard ({}): {}",
            m.hard.map_or("unlimited".into(), |h| h.to_string()),
            if m.open_after_raise { "ok" } else { "failed" }
        ),
        "ok",
    ));
    report.bars(
        "the fd table when open(2) failed",
        "in the child",
        "file descriptors",
        &[
            ("soft limit (RLIMIT_NOFILE)", m.soft as f64),
            ("fds open at EMFILE", m.fds_at_emfile.len() as f64),
            ("highest fd opened", f64::from(m.high_fd)),
        ],
    );
    let sees = |p: &str| m.exec_fds.iter().any(|t| t == p);
    report.evidence(
        "open(2) in the child",
        "opens until it failed (opens -> errno)",
        m.opened as f64,
        f64::from(m.errno),
        "",
    );
    for (what, path) in [("without", &m.leaked_path), ("with", &m.cloexec_path)] {
        report.evidence(
            "/proc/self/fd of the exec'd program",
            &format!("fd opened {what} O_CLOEXEC open after exec (1 = yes)"),
            1.0,
            if sees(path) { 1.0 } else { 0.0 },
            "",
        );
    }
    report.check(Check::holds(
        "an fd opened without O_CLOEXEC is open in the exec'd program",
        sees(&m.leaked_path),
        format!("{} fds open in the exec'd program", m.exec_fds.len()),
        format!("{} among them", m.leaked_path),
    ));
    report.check(Check::holds(
        "an fd opened with O_CLOEXEC is not",
        !m.cloexec_path.is_empty() && !sees(&m.cloexec_path),
        if sees(&m.cloexec_path) {
            "it is open".to_owned()
        } else {
            "it is not open".to_owned()
        },
        format!("{} absent", m.cloexec_path),
    ));
    report.note(format!(
        "the exec'd program found: {}",
        if m.exec_fds.is_empty() {
            "nothing".to_owned()
        } else {
            m.exec_fds.join(", ")
        }
    ));
}

fn open_raw(path: &Path, cloexec: bool) -> std::io::Result<i32> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let flags = libc::O_RDONLY | if cloexec { libc::O_CLOEXEC } else { 0 };
    // SAFETY: a valid C string.
    match unsafe { libc::open(c.as_ptr(), flags) } {
        -1 => Err(std::io::Error::last_os_error()),
        fd => Ok(fd),
    }
}

fn own_fds() -> Vec<i32> {
    let mut v: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

fn child(role: &str, params: &Params, link: &mut Link) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    match role {
        "emfile" => {
            let files: EmfileParams = params.decode()?;
            // Close what was inherited (keep stdin, stdout, stderr: the protocol).
            // SAFETY: closes fds of this process only.
            unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
            // An fd above the limit-to-be, like one inherited from a parent.
            // SAFETY: duplicates stderr to a fixed number.
            if unsafe { libc::dup2(2, files.high_fd) } != files.high_fd {
                return Err(io(std::io::Error::last_os_error()));
            }
            // None: unlimited.
            let hard = getrlimit(Resource::Nofile).maximum;
            // explain-begin: the lines that provoke the concept
            let lowered = Rlimit {
                current: Some(files.soft),
                maximum: hard,
            };
            setrlimit(Resource::Nofile, lowered).map_err(|e| io(e.into()))?;
            let mut opened = 0u64;
            let errno = loop {
                match open_raw(Path::new("/dev/null"), true) {
                    Ok(_) => opened += 1,
                    Err(e) => break e.raw_os_error().unwrap_or(0),
                    // explain-end
                }
                if opened > files.soft * 2 {
                    break 0;
                }
            };
            link.sync(
                "emfile",
                Emfile {
                    soft: files.soft,
                    opened,
                    errno,
                },
            )
            .map_err(io)?;
            // Raising the soft limit up to the hard one is always allowed.
            let raised = Rlimit {
                current: hard,
                maximum: hard,
            };
            let ok = setrlimit(Resource::Nofile, raised).is_ok()
                && open_raw(Path::new("/dev/null"), true).is_ok();
            link.sync("raised", Raised { ok, hard }).map_err(io)?;
            // Kept open across the exec below (the fds are what it is about).
            open_raw(&files.leaked, false).map_err(io)?;
            open_raw(&files.cloexec, true).map_err(io)?;
            // exec the binary itself: it lists what it finds open and reports on our stdout.
            let status = std::process::Command::new("/proc/self/exe")
                .args(["__lab-child", "fds-limits", "list-fds", "null"])
                .status()
                .map_err(io)?;
            if !status.success() {
                return Err(format!(
                    "the exec'd program listing fds ended with {status}"
                ));
            }
            link.send("done", ()).map_err(io)
        }
        "list-fds" => {
            let targets: Vec<String> = own_fds()
                .into_iter()
                .filter_map(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).ok())
                .map(|p| p.display().to_string())
                .collect();
            link.send("fds", Fds { targets }).map_err(io)
        }
        other => Err(format!("unknown role {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::report::Status;

    fn good() -> Measured {
        let mut fds: Vec<i32> = (0..64).collect();
        fds.push(100);
        Measured {
            soft: 64,
            high_fd: 100,
            opened: 61,
            errno: libc::EMFILE,
            fds_at_emfile: fds,
            parent_saw: 66,
            hard: Some(20000),
            open_after_raise: true,
            exec_fds: vec!["/dev/null".into(), "/tmp/x/leaked".into()],
            leaked_path: "/tmp/x/leaked".into(),
            cloexec_path: "/tmp/x/cloexec".into(),
        }
    }

    fn statuses(m: &Measured) -> Vec<Status> {
        crate::lab::report::claim_statuses(ConceptId::FdsLimits, m, analyze)
    }

    #[test]
    fn passes_on_fd_semantics() {
        assert_eq!(statuses(&good()), vec![Status::Passed; 4]);
    }

    #[test]
    fn each_claim_fails_on_contradicting_evidence() {
        let mut m = good();
        m.fds_at_emfile.retain(|f| *f != 40);
        assert_eq!(
            statuses(&m)[0],
            Status::Failed,
            "a free number below the limit contradicts EMFILE"
        );
        let mut m = good();
        m.errno = libc::ENFILE;
        assert_eq!(statuses(&m)[0], Status::Failed);
        let mut m = good();
        m.open_after_raise = false;
        assert_eq!(statuses(&m)[1], Status::Failed);
        let mut m = good();
        m.exec_fds.pop();
        assert_eq!(statuses(&m)[2], Status::Failed);
        let mut m = good();
        m.exec_fds.push("/tmp/x/cloexec".into());
        assert_eq!(statuses(&m)[3], Status::Failed);
    }
}
