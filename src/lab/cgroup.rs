//! The cgroup guard: a cgroup of syslens's own, made beneath the tool's own cgroup,
//! removed on the way out. It never touches any cgroup it did not create.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use syslens_probe::cgroup::{parse_proc_cgroup, CgroupLayout, CgroupVersion, MemoryCgroup};
use syslens_probe::{Missing, Reader};

use super::cleanup::{self, Guard, Resource};
use super::owner;

static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// Why a lab cgroup could not be made.
#[derive(Debug)]
pub enum CgroupError {
    /// The controller is not mounted (or not enabled in v2) on this host.
    NoController {
        /// The controller asked for (memory, cpu, pids).
        controller: String,
    },
    /// The kernel refused: not root, or the tool's cgroup is not delegated.
    Refused {
        /// The directory or file the kernel refused.
        path: PathBuf,
        /// What it answered.
        err: io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// Reading the layout failed.
    Layout(Missing),
}

impl fmt::Display for CgroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CgroupError::NoController { controller } => {
                write!(f, "no {controller} cgroup controller is available here")
            }
            CgroupError::Refused { path, err, hint } => {
                write!(f, "{}: {err} ({hint})", path.display())
            }
            CgroupError::Layout(m) => write!(f, "cannot read the cgroup layout: {m}"),
        }
    }
}

impl std::error::Error for CgroupError {}

fn refused(path: &Path, err: io::Error) -> CgroupError {
    let hint = match err.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => "run as root, or in a delegated cgroup",
        Some(libc::EBUSY) => {
            "cgroup v2 forbids enabling a controller for children of a cgroup that holds processes: \
             run under `systemd-run --scope -p Delegate=yes`"
        }
        _ => "cgroup file system error",
    };
    CgroupError::Refused {
        path: path.to_owned(),
        err,
        hint,
    }
}

/// One directory of the lab cgroup (one per v1 hierarchy, one in v2).
#[derive(Debug)]
struct Dir {
    controllers: Vec<String>,
    path: PathBuf,
    version: CgroupVersion,
    /// Removes the directory on drop, and on SIGINT / SIGTERM.
    guard: Option<Guard>,
}

/// A cgroup made for one lab, removed (its processes killed first) when dropped.
#[derive(Debug)]
pub struct LabCgroup {
    name: String,
    dirs: Vec<Dir>,
}

/// The tool's own cgroup directory for `controller`, on the host below `reader`'s root.
fn own_dir(
    reader: &mut Reader,
    layout: &CgroupLayout,
    controller: &str,
) -> Result<(PathBuf, CgroupVersion), CgroupError> {
    let me = reader
        .read_proc("self/cgroup")
        .and_then(parse_proc_cgroup)
        .map_err(CgroupError::Layout)?;
    let dir = layout
        .locate(&me, controller)
        .ok_or_else(|| CgroupError::NoController {
            controller: controller.to_owned(),
        })?;
    Ok((reader.host_path(&dir.host_dir), dir.version))
}

impl LabCgroup {
    /// Creates `syslens-lab-PID-START-N` ([`owner::name`]) beneath the tool's own cgroup for each controller.
    /// Controllers that share a v1 hierarchy (cpu,cpuacct) or the v2 tree share a dir.
    pub fn create(reader: &mut Reader, controllers: &[&str]) -> Result<LabCgroup, CgroupError> {
        let layout = CgroupLayout::read(reader).map_err(CgroupError::Layout)?;
        let name = owner::name(SEQUENCE.fetch_add(1, Ordering::Relaxed));
        let mut cg = LabCgroup {
            name,
            dirs: Vec::new(),
        };
        for &controller in controllers {
            let (parent, version) = own_dir(reader, &layout, controller)?;
            let path = parent.join(&cg.name);
            // In v2 every controller must be enabled for the children, including one
            // that shares the directory made for an earlier controller.
            if version == CgroupVersion::V2 {
                enable_v2_controller(&parent, controller)?;
            }
            if let Some(d) = cg.dirs.iter_mut().find(|d| d.path == path) {
                d.controllers.push(controller.to_owned());
                continue;
            }
            fs::create_dir(&path).map_err(|e| refused(&path, e))?;
            let guard = Some(cleanup::register(Resource::Cgroup(path.clone())));
            cg.dirs.push(Dir {
                controllers: vec![controller.to_owned()],
                path,
                version,
                guard,
            });
        }
        Ok(cg)
    }

    /// The cgroup's name (`syslens-lab-PID-START-N`), the same in every hierarchy.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory that holds `controller`'s files.
    pub fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == controller))
            .map(|d| d.path.as_path())
    }

    /// Every directory of this cgroup (one per v1 hierarchy, one in v2).
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(|d| d.path.as_path())
    }

    /// Writes the file that holds `controller`'s limit, by version: (v1 name, v2 name).
    pub fn write_versioned(
        &self,
        controller: &str,
        files: (&str, &str),
        value: &str,
    ) -> Result<(), CgroupError> {
        let file = match self.version(controller) {
            Some(CgroupVersion::V1) => files.0,
            _ => files.1,
        };
        self.write(controller, file, value)
    }

    /// Reads a counter file of `controller` (`key value` lines), by version.
    pub fn read_key(&self, controller: &str, files: (&str, &str), key: &str) -> Option<u64> {
        let dir = self.dir(controller)?;
        let file = match self.version(controller) {
            Some(CgroupVersion::V1) => files.0,
            _ => files.1,
        };
        let text = fs::read_to_string(dir.join(file)).ok()?;
        text.lines().find_map(|l| {
            let mut t = l.split_whitespace();
            (t.next() == Some(key))
                .then(|| t.next()?.parse().ok())
                .flatten()
        })
    }

    /// The cgroup version of the hierarchy that holds `controller` (None: not mounted).
    pub fn version(&self, controller: &str) -> Option<CgroupVersion> {
        self.dirs
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == controller))
            .map(|d| d.version)
    }

    /// Writes a control file (`memory.limit_in_bytes`, `pids.max`...).
    pub fn write(&self, controller: &str, file: &str, value: &str) -> Result<(), CgroupError> {
        let dir = self
            .dir(controller)
            .ok_or_else(|| CgroupError::NoController {
                controller: controller.to_owned(),
            })?;
        let path = dir.join(file);
        fs::write(&path, value).map_err(|e| refused(&path, e))
    }

    /// Moves a process into every directory of this cgroup.
    pub fn add(&self, pid: u32) -> Result<(), CgroupError> {
        for d in &self.dirs {
            let path = d.path.join("cgroup.procs");
            fs::write(&path, pid.to_string()).map_err(|e| refused(&path, e))?;
        }
        Ok(())
    }

    /// Kills what is left inside and removes the directories, reporting the first
    /// failure (dropping the cgroup does the same, silently).
    pub fn remove(mut self) -> io::Result<()> {
        let mut first = Ok(());
        for d in &mut self.dirs {
            let r = remove_dir(&d.path);
            if let Some(g) = d.guard.take() {
                g.disarm();
            }
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

/// In v2 a controller must be enabled in the parent's subtree_control before a child
/// gets its files; the parent must then hold no processes itself (EBUSY otherwise).
fn enable_v2_controller(parent: &Path, controller: &str) -> Result<(), CgroupError> {
    let control = parent.join("cgroup.subtree_control");
    let enabled = fs::read_to_string(&control).map_err(|e| refused(&control, e))?;
    if enabled.split_whitespace().any(|c| c == controller) {
        return Ok(());
    }
    fs::write(&control, format!("+{controller}")).map_err(|e| refused(&control, e))
}

fn pids_in(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Empties and removes one lab cgroup directory: SIGKILL what is inside, wait for the
/// kernel to let go, then rmdir. Survivors that will not die are moved to the parent.
pub(crate) fn remove_dir(dir: &Path) -> io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for _ in 0..200 {
        let pids = pids_in(dir);
        if pids.is_empty() {
            match fs::remove_dir(dir) {
                Ok(()) => return Ok(()),
                // The last task is still exiting.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        for pid in pids {
            super::cleanup::sigkill(pid);
        }
        thread::sleep(Duration::from_millis(10));
    }
    if let Some(parent) = dir.parent() {
        for pid in pids_in(dir) {
            let _ = fs::write(parent.join("cgroup.procs"), pid.to_string());
        }
    }
    fs::remove_dir(dir)
}

/// The lowest memory limit of the tool's own cgroup and its ancestors, with that
/// cgroup's path: the lab's memory cgroups are made beneath it and can never get more.
/// None when no limit is set or there is no memory controller.
pub fn tool_memory_limit(reader: &mut Reader) -> Option<(u64, String)> {
    let layout = CgroupLayout::read(reader).ok()?;
    let me = reader
        .read_proc("self/cgroup")
        .and_then(parse_proc_cgroup)
        .ok()?;
    let mut path = layout.locate(&me, "memory")?.path;
    let mut lowest: Option<(u64, String)> = None;
    loop {
        if let Some(dir) = layout.dir_at("memory", &path) {
            if let Ok(Some(limit)) = MemoryCgroup::read(reader, dir).limit {
                if lowest.as_ref().is_none_or(|(l, _)| limit < *l) {
                    lowest = Some((limit, path.clone()));
                }
            }
        }
        path = match path.rfind('/') {
            Some(0) if path.len() > 1 => "/".to_owned(),
            Some(i) if i > 0 => path[..i].to_owned(),
            _ => break,
        };
    }
    lowest
}

/// Removes `syslens-lab-*` cgroups beneath the tool's own cgroups whose run is gone
/// (left by a killed run; [`owner::made_by_dead_run`]). Returns what was removed.
pub fn sweep_stale(reader: &mut Reader, controllers: &[&str]) -> Vec<PathBuf> {
    let Ok(layout) = CgroupLayout::read(reader) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for controller in controllers {
        let Ok((parent, _)) = own_dir(reader, &layout, controller) else {
            continue;
        };
        let Ok(entries) = fs::read_dir(&parent) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if owner::made_by_dead_run(&name) == Some(true) && remove_dir(&e.path()).is_ok() {
                removed.push(e.path());
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory laid out like a v2 host: the tool in a session scope.
    fn v2_tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let w = |p: &str, s: &str| {
            let p = t.path().join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, s).unwrap();
        };
        w("proc/self/mountinfo", "21 1 253:1 / / rw - ext4 /dev/vda1 rw\n25 21 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
        w("proc/self/cgroup", "0::/user.slice/session-1.scope\n");
        w(
            "sys/fs/cgroup/cgroup.controllers",
            "cpuset cpu io memory pids\n",
        );
        w(
            "sys/fs/cgroup/user.slice/session-1.scope/cgroup.subtree_control",
            "",
        );
        t
    }

    #[test]
    fn regression_v2_second_controller_sharing_a_directory_is_enabled() {
        let t = v2_tree();
        let mut reader = Reader::new(t.path()).unwrap();
        let cg = LabCgroup::create(&mut reader, &["memory", "pids"]).unwrap();
        let scope = t.path().join("sys/fs/cgroup/user.slice/session-1.scope");
        let dir = cg.dir("memory").unwrap().to_owned();
        assert_eq!(dir.parent().unwrap(), scope);
        assert_eq!(
            cg.dir("pids"),
            Some(dir.as_path()),
            "v2 has one tree: one directory for both"
        );
        assert_eq!(cg.version("memory"), Some(CgroupVersion::V2));
        assert!(dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&format!("{}{}-", owner::PREFIX, std::process::id())));
        // Each controller was enabled for the children of the tool's cgroup.
        // (A real subtree_control accumulates; this plain file keeps the last write.)
        assert_eq!(
            fs::read_to_string(scope.join("cgroup.subtree_control")).unwrap(),
            "+pids"
        );
        cg.write("memory", "memory.max", "67108864").unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("memory.max")).unwrap(),
            "67108864"
        );
    }

    #[test]
    fn v2_sweep_removes_stale_lab_cgroups_only() {
        let t = v2_tree();
        let scope = t.path().join("sys/fs/cgroup/user.slice/session-1.scope");
        let stale = scope.join("syslens-lab-2147483646-3");
        let mine = scope.join(format!("syslens-lab-{}-9", std::process::id()));
        let foreign = scope.join("app.service");
        for d in [&stale, &mine, &foreign] {
            fs::create_dir(d).unwrap();
        }
        let mut reader = Reader::new(t.path()).unwrap();
        // The tree has no /proc/PID entries: every lab cgroup looks stale except ours,
        // which the live /proc still has.
        let removed = sweep_stale(&mut reader, &["memory"]);
        assert!(removed.contains(&stale));
        assert!(!stale.exists() && foreign.exists());
    }

    #[test]
    fn busy_subtree_control_explains_delegation() {
        let e = refused(
            Path::new("/sys/fs/cgroup/x/cgroup.subtree_control"),
            io::Error::from_raw_os_error(libc::EBUSY),
        );
        assert!(e.to_string().contains("Delegate=yes"), "{e}");
        let e = refused(Path::new("/x"), io::Error::from_raw_os_error(libc::EACCES));
        assert!(e.to_string().contains("root"), "{e}");
    }
}
