//! Containment for memory hogs: a memory cgroup beneath the tool's own, with a limit,
//! which the child enters between fork and exec (before it allocates anything). Where
//! no memory cgroup can be made (not root, no delegation), the child gets an
//! RLIMIT_AS cap instead, and the report says so.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use syslens_probe::cgroup::CgroupVersion;
use syslens_probe::Reader;

use super::cgroup::LabCgroup;

/// Where a lab's children run.
#[derive(Debug)]
pub struct Jail {
    /// Held for its lifetime: dropping it kills what is left inside and removes it.
    cgroup: Option<LabCgroup>,
    /// `cgroup.procs` of the memory cgroup, which the child writes "0" to.
    procs: Option<CString>,
    /// The fallback cap on the child's address space.
    rlimit_as: Option<u64>,
    /// One line for the report.
    pub description: String,
}

impl Jail {
    /// No containment (labs that allocate little).
    pub fn none() -> Jail {
        Jail {
            cgroup: None,
            procs: None,
            rlimit_as: None,
            description: "none".into(),
        }
    }

    /// A memory cgroup limited to `limit` bytes, or an RLIMIT_AS of `limit` plus room
    /// for the binary's own mappings.
    pub fn memory(limit: u64) -> Jail {
        match Self::cgroup(limit) {
            Ok(j) => j,
            Err(why) => {
                let cap = limit + (512 << 20);
                Jail {
                    cgroup: None,
                    procs: None,
                    rlimit_as: Some(cap),
                    description: format!("RLIMIT_AS {} MiB (no memory cgroup: {why})", cap >> 20),
                }
            }
        }
    }

    fn cgroup(limit: u64) -> Result<Jail, String> {
        let mut reader = Reader::host().map_err(|e| e.to_string())?;
        let cg = LabCgroup::create(&mut reader, &["memory"]).map_err(|e| e.to_string())?;
        let file = match cg.version("memory") {
            Some(CgroupVersion::V1) => "memory.limit_in_bytes",
            _ => "memory.max",
        };
        cg.write("memory", file, &limit.to_string())
            .map_err(|e| e.to_string())?;
        let dir = cg.dir("memory").ok_or("no memory directory")?.to_owned();
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
            .map_err(|e| e.to_string())?;
        Ok(Jail {
            description: format!(
                "memory cgroup {} limited to {} MiB",
                dir.display(),
                limit >> 20
            ),
            cgroup: Some(cg),
            procs: Some(procs),
            rlimit_as: None,
        })
    }

    /// What the forked child needs to enter the jail (not the cgroup's ownership).
    pub fn clone_for_child(&self) -> Jail {
        Jail {
            cgroup: None,
            procs: self.procs.clone(),
            rlimit_as: self.rlimit_as,
            description: String::new(),
        }
    }

    pub fn cgroup_dir(&self) -> Option<&std::path::Path> {
        self.cgroup.as_ref().and_then(|c| c.dir("memory"))
    }

    /// Runs in the child between fork and exec: only async-signal-safe system calls,
    /// no allocation (the path was prepared beforehand).
    pub fn enter(&self) -> std::io::Result<()> {
        if let Some(path) = &self.procs {
            // SAFETY: open/write/close with a prepared NUL-terminated path and a
            // static buffer. "0" moves the writing process itself.
            let ok = unsafe {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                let written = fd >= 0 && libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                if fd >= 0 {
                    libc::close(fd);
                }
                written
            };
            if !ok {
                return Err(std::io::Error::last_os_error());
            }
        }
        if let Some(cap) = self.rlimit_as {
            let lim = libc::rlimit {
                rlim_cur: cap,
                rlim_max: cap,
            };
            // SAFETY: lowers this (child) process's own limit.
            if unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}
