//! Containment for lab children: a cgroup beneath the tool's own, which the child
//! enters between fork and exec (before it allocates anything). Memory hogs get a
//! memory cgroup with a limit; where none can be made (not root, no delegation) they
//! get an RLIMIT_AS cap instead, and the report says so.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use syslens_probe::Reader;

use super::cgroup::LabCgroup;

/// Where a lab's children run.
#[derive(Debug)]
pub struct Jail {
    /// Held for its lifetime: dropping it kills what is left inside and removes it.
    cgroup: Option<LabCgroup>,
    /// `cgroup.procs` of each directory of the cgroup, which the child writes "0" to.
    procs: Vec<CString>,
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
            procs: Vec::new(),
            rlimit_as: None,
            description: "none".into(),
        }
    }

    /// A memory cgroup limited to `limit` bytes, or an RLIMIT_AS of `limit` plus room
    /// for the binary's own mappings.
    pub fn memory(limit: u64) -> Jail {
        match Self::memory_cgroup(limit) {
            Ok(j) => j,
            Err(why) => {
                let cap = limit + (512 << 20);
                Jail {
                    cgroup: None,
                    procs: Vec::new(),
                    rlimit_as: Some(cap),
                    description: format!("RLIMIT_AS {} MiB (no memory cgroup: {why})", cap >> 20),
                }
            }
        }
    }

    /// A memory cgroup limited to exactly `limit` bytes, or why there can be none.
    pub fn memory_cgroup(limit: u64) -> Result<Jail, String> {
        let mut reader = Reader::host().map_err(|e| e.to_string())?;
        let cg = LabCgroup::create(&mut reader, &["memory"]).map_err(|e| e.to_string())?;
        cg.write_versioned(
            "memory",
            ("memory.limit_in_bytes", "memory.max"),
            &limit.to_string(),
        )
        .map_err(|e| e.to_string())?;
        let dir = cg
            .dir("memory")
            .ok_or("no memory directory")?
            .display()
            .to_string();
        Jail::around(
            cg,
            format!("memory cgroup {dir} limited to {} MiB", limit >> 20),
        )
    }

    /// A jail around a cgroup the lab configured: the child enters every directory.
    pub fn around(cg: LabCgroup, description: String) -> Result<Jail, String> {
        let procs = cg
            .dirs()
            .map(|d| {
                CString::new(d.join("cgroup.procs").as_os_str().as_bytes())
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Jail {
            cgroup: Some(cg),
            procs,
            rlimit_as: None,
            description,
        })
    }

    /// The cgroup, for reading its counters.
    pub fn lab_cgroup(&self) -> Option<&LabCgroup> {
        self.cgroup.as_ref()
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

    /// The directory of the jail's cgroup (the first, on v1), when it has one.
    pub fn cgroup_dir(&self) -> Option<&std::path::Path> {
        self.cgroup.as_ref().and_then(|c| c.dirs().next())
    }

    /// Runs in the child between fork and exec: only async-signal-safe system calls,
    /// no allocation (the paths were prepared beforehand).
    pub fn enter(&self) -> std::io::Result<()> {
        for path in &self.procs {
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
            // Lowers this (child) process's own limit: one system call, no allocation.
            let lim = rustix::process::Rlimit {
                current: Some(cap),
                maximum: Some(cap),
            };
            rustix::process::setrlimit(rustix::process::Resource::As, lim)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::sandbox::{os_result, wait_forked};
    use rustix::process::{getrlimit, Resource, Rlimit};

    #[test]
    fn the_rlimit_fallback_caps_the_childs_address_space() {
        let cap = 8u64 << 30;
        let jail = Jail {
            cgroup: None,
            procs: Vec::new(),
            rlimit_as: Some(cap),
            description: String::new(),
        };
        // SAFETY: the forked copy of the test process makes system calls only (the
        // jail has no paths to write) and leaves with _exit.
        let pid = os_result(unsafe { libc::fork() }).unwrap();
        if pid == 0 {
            let capped = jail.enter().is_ok()
                && getrlimit(Resource::As)
                    == Rlimit {
                        current: Some(cap),
                        maximum: Some(cap),
                    };
            // SAFETY: leave at once, running nothing of the harness.
            unsafe { libc::_exit(i32::from(!capped)) };
        }
        assert_eq!(
            wait_forked(pid).unwrap(),
            0,
            "the child's RLIMIT_AS was not the cap"
        );
    }
}
