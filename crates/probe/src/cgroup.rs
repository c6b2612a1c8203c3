//! Cgroup membership, the host's cgroup layout (v1, v2 or hybrid) and the readings of
//! one cgroup. v1 controllers are found from mountinfo, never from fixed paths: `cpu`
//! and `cpuacct` may be one mount or two, and a container may see a non-`/` root.

use serde::Serialize;

use crate::missing::{Missing, Val};
use crate::mountinfo::{parse_mountinfo, Mount};
use crate::parse::{lines, text, tokens, u64_dec};
use crate::psi::{parse_psi, Psi};
use crate::read::Files;

/// One line of /proc/PID/cgroup: `ID:controllers:path`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Membership {
    /// The hierarchy id; 0 for the v2 line.
    pub hierarchy: u32,
    /// Empty for the v2 (unified) line `0::/path`.
    pub controllers: Vec<String>,
    /// The cgroup's path below its hierarchy's root.
    pub path: String,
}

/// Parses /proc/PID/cgroup.
pub fn parse_proc_cgroup(buf: &[u8]) -> Val<Vec<Membership>> {
    let mut out = Vec::new();
    for line in lines(buf) {
        let line = text(line);
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Missing::malformed("cgroup", line));
        };
        let hierarchy = id
            .parse()
            .map_err(|_| Missing::malformed("cgroup", line.clone()))?;
        let controllers = ctrls
            .split(',')
            .filter(|c| !c.is_empty())
            .map(|c| c.trim_start_matches("name=").to_owned())
            .collect();
        out.push(Membership {
            hierarchy,
            controllers,
            path: path.to_owned(),
        });
    }
    Ok(out)
}

/// How the host mounts cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupMode {
    /// Only v1 hierarchies.
    V1,
    /// Only the unified v2 hierarchy.
    V2,
    /// v1 hierarchies hold the controllers; v2 is mounted beside them.
    Hybrid,
    /// No cgroup file system is mounted.
    None,
}

impl CgroupMode {
    /// The mode as shown to the user.
    pub fn name(self) -> &'static str {
        match self {
            CgroupMode::V1 => "v1",
            CgroupMode::V2 => "v2",
            CgroupMode::Hybrid => "hybrid",
            CgroupMode::None => "none",
        }
    }
}

/// The version of a cgroup hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupVersion {
    /// A v1 hierarchy: one or more controllers of its own.
    V1,
    /// The unified v2 hierarchy.
    V2,
}

/// The host's cgroup mounts, from the reader's own /proc/self/mountinfo.
#[derive(Debug, Clone, Serialize)]
pub struct CgroupLayout {
    /// v1, v2, hybrid or none.
    pub mode: CgroupMode,
    /// The v1 hierarchies (`cgroup` mounts).
    pub v1_mounts: Vec<Mount>,
    /// The first v2 (`cgroup2`) mount.
    pub v2_mount: Option<Mount>,
    /// Controllers available in the v2 hierarchy (its root `cgroup.controllers`).
    pub v2_controllers: Vec<String>,
}

/// A cgroup directory that holds a controller's files.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CgroupDir {
    /// Which hierarchy the directory belongs to.
    pub version: CgroupVersion,
    /// The cgroup's path as the process sees it (/proc/PID/cgroup).
    pub path: String,
    /// The directory on the host (below the reader's root).
    pub host_dir: String,
}

impl CgroupLayout {
    /// Reads the layout from the reader's mountinfo and the v2 root's controllers.
    pub fn read(files: &mut impl Files) -> Val<CgroupLayout> {
        let mounts = parse_mountinfo(files.proc_file("self/mountinfo")?)?;
        let mut layout = CgroupLayout::from_mounts(mounts);
        if let Some(m) = &layout.v2_mount {
            let file = format!("{}/cgroup.controllers", m.mount_point);
            if let Ok(buf) = files.host_file(&file) {
                layout.v2_controllers = tokens(buf).map(text).collect();
            }
        }
        Ok(layout)
    }

    /// The layout of these mounts; no v2 controllers are listed.
    pub fn from_mounts(mounts: Vec<Mount>) -> CgroupLayout {
        let mut v1_mounts = Vec::new();
        let mut v2_mount = None;
        for m in mounts {
            match m.fs_type.as_str() {
                "cgroup" => v1_mounts.push(m),
                "cgroup2" if v2_mount.is_none() => v2_mount = Some(m),
                _ => {}
            }
        }
        let v1_has_controllers = v1_mounts.iter().any(|m| {
            m.super_options
                .split(',')
                .any(|o| V1_CONTROLLERS.contains(&o))
        });
        let mode = match (v1_has_controllers, v2_mount.is_some()) {
            (true, true) => CgroupMode::Hybrid,
            (true, false) => CgroupMode::V1,
            (false, true) => CgroupMode::V2,
            (false, false) => CgroupMode::None,
        };
        CgroupLayout {
            mode,
            v1_mounts,
            v2_mount,
            v2_controllers: Vec::new(),
        }
    }

    /// Where `controller` of a process with these memberships lives. v1 wins where it
    /// holds the controller (a controller is bound to one hierarchy at a time).
    pub fn locate(&self, memberships: &[Membership], controller: &str) -> Option<CgroupDir> {
        for m in &self.v1_mounts {
            if !m.has_super_option(controller) {
                continue;
            }
            let member = memberships
                .iter()
                .find(|x| x.controllers.iter().any(|c| c == controller))?;
            return Some(CgroupDir {
                version: CgroupVersion::V1,
                path: member.path.clone(),
                host_dir: join_below_mount(m, &member.path),
            });
        }
        let v2 = self.v2_mount.as_ref()?;
        if !self.v2_controllers.iter().any(|c| c == controller) {
            return None;
        }
        let member = memberships.iter().find(|x| x.hierarchy == 0)?;
        Some(CgroupDir {
            version: CgroupVersion::V2,
            path: member.path.clone(),
            host_dir: join_below_mount(v2, &member.path),
        })
    }

    /// The v2 (unified) directory of a process, whatever controllers it has.
    pub fn unified_dir(&self, memberships: &[Membership]) -> Option<CgroupDir> {
        let v2 = self.v2_mount.as_ref()?;
        let member = memberships.iter().find(|x| x.hierarchy == 0)?;
        Some(CgroupDir {
            version: CgroupVersion::V2,
            path: member.path.clone(),
            host_dir: join_below_mount(v2, &member.path),
        })
    }

    /// The directory of the cgroup at `path` (as /proc/PID/cgroup writes it) for
    /// `controller`, without a process to start from (`system --cgroup PATH`).
    pub fn dir_at(&self, controller: &str, path: &str) -> Option<CgroupDir> {
        if let Some(m) = self.v1_mount(controller) {
            return Some(CgroupDir {
                version: CgroupVersion::V1,
                path: path.to_owned(),
                host_dir: join_below_mount(m, path),
            });
        }
        let v2 = self.v2_mount.as_ref()?;
        self.v2_controllers
            .iter()
            .any(|c| c == controller)
            .then(|| CgroupDir {
                version: CgroupVersion::V2,
                path: path.to_owned(),
                host_dir: join_below_mount(v2, path),
            })
    }

    /// The v1 mount that holds `controller`, if any.
    pub fn v1_mount(&self, controller: &str) -> Option<&Mount> {
        self.v1_mounts
            .iter()
            .find(|m| m.has_super_option(controller))
    }
}

const V1_CONTROLLERS: [&str; 12] = [
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "pids",
    "blkio",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "perf_event",
    "hugetlb",
];

/// The cgroup path is relative to the hierarchy's root; a mount whose root is not `/`
/// (inside a container) shows only the part below that root.
fn join_below_mount(m: &Mount, path: &str) -> String {
    let below = if m.root == "/" {
        path
    } else {
        path.strip_prefix(m.root.as_str()).unwrap_or(path)
    };
    let below = below.trim_start_matches('/');
    if below.is_empty() {
        m.mount_point.clone()
    } else {
        format!("{}/{}", m.mount_point.trim_end_matches('/'), below)
    }
}

/// Reads a cgroup file. A missing file inside an existing cgroup directory is not the
/// kernel's fault: root cgroups have no limit files, and a controller may be off here.
fn read_cg<'r>(reader: &'r mut impl Files, path: &str) -> Val<&'r [u8]> {
    reader.host_file(path).map_err(|e| match e {
        Missing::NotInKernel { .. } => Missing::NotApplicable {
            why: "no such file in this cgroup (root cgroups have no limit files; or the controller is off here)",
        },
        e => e,
    })
}

/// Reads one number (or `max`, as None) from a cgroup file.
fn read_limit(reader: &mut impl Files, path: &str) -> Val<Option<u64>> {
    let buf = read_cg(reader, path)?;
    let t = tokens(buf).next().unwrap_or(b"");
    if t == b"max" {
        return Ok(None);
    }
    if t == b"-1" {
        return Ok(None);
    }
    let v = u64_dec(t).ok_or_else(|| Missing::malformed(path.to_owned(), text(t)))?;
    // v1 prints PAGE_COUNTER_MAX rounded to pages for "no limit".
    Ok((v < 1 << 62).then_some(v))
}

fn read_u64(reader: &mut impl Files, path: &str) -> Val<u64> {
    let buf = read_cg(reader, path)?;
    u64_dec(buf).ok_or_else(|| Missing::malformed(path.to_owned(), text(buf)))
}

/// Reads `key value` lines (memory.stat, memory.events, cpu.stat) and picks keys.
fn read_keyed<const N: usize>(
    reader: &mut impl Files,
    path: &str,
    keys: [&str; N],
) -> [Val<u64>; N] {
    let mut out: [Val<u64>; N] =
        std::array::from_fn(|i| Err(Missing::not_in_kernel(format!("{} in {path}", keys[i]))));
    match read_cg(reader, path) {
        Ok(buf) => {
            for line in lines(buf) {
                let mut t = tokens(line);
                let (Some(k), Some(v)) = (t.next(), t.next()) else {
                    continue;
                };
                if let Some(i) = keys.iter().position(|key| key.as_bytes() == k) {
                    out[i] =
                        u64_dec(v).ok_or_else(|| Missing::malformed(path.to_owned(), text(line)));
                }
            }
        }
        Err(e) => out.iter_mut().for_each(|o| *o = Err(e.clone())),
    }
    out
}

/// The memory controller's view of one cgroup, in bytes.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryCgroup {
    /// The cgroup read.
    pub dir: CgroupDir,
    /// Memory charged to the cgroup now (v2 memory.current, v1 memory.usage_in_bytes).
    pub usage: Val<u64>,
    /// Usage minus inactive file cache, what the kernel cannot reclaim cheaply.
    pub working_set: Val<u64>,
    /// The highest usage recorded (v2 memory.peak, v1 memory.max_usage_in_bytes).
    pub peak: Val<u64>,
    /// None when unlimited.
    pub limit: Val<Option<u64>>,
    /// Times usage hit the limit (v2 events `max`, v1 failcnt).
    pub limit_hits: Val<u64>,
    /// Processes killed by the OOM killer in this cgroup.
    pub oom_kills: Val<u64>,
    /// Memory pressure of this cgroup (v2 only).
    pub pressure: Val<Psi>,
}

impl MemoryCgroup {
    /// Reads the memory files of `dir`; each figure is missing on its own.
    pub fn read(reader: &mut impl Files, dir: CgroupDir) -> MemoryCgroup {
        let d = dir.host_dir.clone();
        match dir.version {
            CgroupVersion::V2 => {
                let usage = read_u64(reader, &format!("{d}/memory.current"));
                let [inactive] = read_keyed(reader, &format!("{d}/memory.stat"), ["inactive_file"]);
                let [max, oom_kill] =
                    read_keyed(reader, &format!("{d}/memory.events"), ["max", "oom_kill"]);
                MemoryCgroup {
                    working_set: working_set(&usage, &inactive),
                    usage,
                    peak: read_u64(reader, &format!("{d}/memory.peak")),
                    limit: read_limit(reader, &format!("{d}/memory.max")),
                    limit_hits: max,
                    oom_kills: oom_kill,
                    pressure: reader
                        .host_file(&format!("{d}/memory.pressure"))
                        .and_then(parse_psi),
                    dir,
                }
            }
            CgroupVersion::V1 => {
                let usage = read_u64(reader, &format!("{d}/memory.usage_in_bytes"));
                let [total_inactive, inactive] = read_keyed(
                    reader,
                    &format!("{d}/memory.stat"),
                    ["total_inactive_file", "inactive_file"],
                );
                let [oom_kill] =
                    read_keyed(reader, &format!("{d}/memory.oom_control"), ["oom_kill"]);
                MemoryCgroup {
                    working_set: working_set(&usage, &total_inactive.or(inactive)),
                    usage,
                    peak: read_u64(reader, &format!("{d}/memory.max_usage_in_bytes")),
                    limit: read_limit(reader, &format!("{d}/memory.limit_in_bytes")),
                    limit_hits: read_u64(reader, &format!("{d}/memory.failcnt")),
                    oom_kills: oom_kill,
                    pressure: Err(Missing::NotApplicable {
                        why: "cgroup v1 has no per-cgroup pressure files",
                    }),
                    dir,
                }
            }
        }
    }
}

fn working_set(usage: &Val<u64>, inactive: &Val<u64>) -> Val<u64> {
    Ok(usage.clone()?.saturating_sub(inactive.clone()?))
}

/// The CPU controller's view: quota and throttling.
#[derive(Debug, Clone, Serialize)]
pub struct CpuCgroup {
    /// The cgroup read.
    pub dir: CgroupDir,
    /// (quota, period) in microseconds; None when unlimited.
    pub quota: Val<Option<(u64, u64)>>,
    /// Enforcement periods elapsed (cpu.stat nr_periods).
    pub periods: Val<u64>,
    /// Periods in which the cgroup was throttled (nr_throttled).
    pub throttled_periods: Val<u64>,
    /// Time throttled, in microseconds (v2 throttled_usec, v1 throttled_time / 1000).
    pub throttled_us: Val<u64>,
}

impl CpuCgroup {
    /// Reads the CPU files of `dir`; each figure is missing on its own.
    pub fn read(reader: &mut impl Files, dir: CgroupDir) -> CpuCgroup {
        let d = dir.host_dir.clone();
        match dir.version {
            CgroupVersion::V2 => {
                let quota = read_cpu_quota(reader, &dir);
                let [periods, throttled, usec] = read_keyed(
                    reader,
                    &format!("{d}/cpu.stat"),
                    ["nr_periods", "nr_throttled", "throttled_usec"],
                );
                CpuCgroup {
                    dir,
                    quota,
                    periods,
                    throttled_periods: throttled,
                    throttled_us: usec,
                }
            }
            CgroupVersion::V1 => {
                let quota = read_cpu_quota(reader, &dir);
                let [periods, throttled, ns] = read_keyed(
                    reader,
                    &format!("{d}/cpu.stat"),
                    ["nr_periods", "nr_throttled", "throttled_time"],
                );
                CpuCgroup {
                    dir,
                    quota,
                    periods,
                    throttled_periods: throttled,
                    throttled_us: ns.map(|ns| ns / 1000),
                }
            }
        }
    }
}

/// The CFS quota of one cgroup as (quota, period) in microseconds; None when unlimited
/// (v2 cpu.max `max`, v1 cpu.cfs_quota_us -1). A period of zero is malformed.
pub fn read_cpu_quota(reader: &mut impl Files, dir: &CgroupDir) -> Val<Option<(u64, u64)>> {
    let d = &dir.host_dir;
    let quota = match dir.version {
        CgroupVersion::V2 => {
            let path = format!("{d}/cpu.max");
            let buf = read_cg(reader, &path)?;
            let mut t = tokens(buf);
            match (t.next(), t.next().and_then(u64_dec)) {
                (Some(b"max"), Some(_)) => None,
                (Some(q), Some(p)) => Some((
                    u64_dec(q).ok_or_else(|| Missing::malformed(path.clone(), text(buf)))?,
                    p,
                )),
                _ => return Err(Missing::malformed(path, text(buf))),
            }
        }
        CgroupVersion::V1 => match read_limit(reader, &format!("{d}/cpu.cfs_quota_us"))? {
            None => None,
            Some(q) => Some((q, read_u64(reader, &format!("{d}/cpu.cfs_period_us"))?)),
        },
    };
    match quota {
        Some((_, 0)) => Err(Missing::malformed(format!("{d} cpu period"), "0")),
        q => Ok(q),
    }
}

impl CgroupVersion {
    /// The files of a cgroup that cap its memory: v2 memory.max (the OOM line) and
    /// memory.high (the throttle line), v1 memory.limit_in_bytes.
    pub fn memory_cap_files(self) -> &'static [&'static str] {
        match self {
            CgroupVersion::V2 => &["memory.max", "memory.high"],
            CgroupVersion::V1 => &["memory.limit_in_bytes"],
        }
    }

    /// The file that holds the memory charged to a cgroup now.
    pub fn memory_usage_file(self) -> &'static str {
        match self {
            CgroupVersion::V2 => "memory.current",
            CgroupVersion::V1 => "memory.usage_in_bytes",
        }
    }
}

/// Reads one cap file of `dir` (memory.max, pids.max...): None for `max` (unlimited).
/// Root cgroups have no such files: that reads as NotApplicable.
pub fn read_cap(reader: &mut impl Files, dir: &CgroupDir, file: &str) -> Val<Option<u64>> {
    read_limit(reader, &format!("{}/{file}", dir.host_dir))
}

/// Reads one counter file of `dir` (memory.current, pids.current).
pub fn read_counter(reader: &mut impl Files, dir: &CgroupDir, file: &str) -> Val<u64> {
    read_u64(reader, &format!("{}/{file}", dir.host_dir))
}

impl CgroupLayout {
    /// The cgroup above `dir` in its hierarchy, or None at the top this host can see
    /// (the hierarchy's root, or the mount's root inside a container).
    pub fn parent(&self, dir: &CgroupDir) -> Option<CgroupDir> {
        let below = |m: &&Mount| {
            dir.host_dir == m.mount_point
                || dir
                    .host_dir
                    .starts_with(&format!("{}/", m.mount_point.trim_end_matches('/')))
        };
        let mount = match dir.version {
            CgroupVersion::V1 => self.v1_mounts.iter().find(below)?,
            CgroupVersion::V2 => self.v2_mount.as_ref().filter(below)?,
        };
        if dir.host_dir == mount.mount_point || dir.path == "/" || dir.path == mount.root {
            return None;
        }
        let path = match dir.path.trim_end_matches('/').rsplit_once('/') {
            Some(("", _)) | None => "/".to_owned(),
            Some((up, _)) => up.to_owned(),
        };
        Some(CgroupDir {
            version: dir.version,
            host_dir: join_below_mount(mount, &path),
            path,
        })
    }
}

/// The pids controller: tasks and their cap.
#[derive(Debug, Clone, Serialize)]
pub struct PidsCgroup {
    /// The cgroup read.
    pub dir: CgroupDir,
    /// Tasks in the cgroup now (pids.current).
    pub current: Val<u64>,
    /// The cap (pids.max); None when unlimited.
    pub max: Val<Option<u64>>,
}

impl PidsCgroup {
    /// Reads the pids files of `dir`.
    pub fn read(reader: &mut impl Files, dir: CgroupDir) -> PidsCgroup {
        let d = dir.host_dir.clone();
        PidsCgroup {
            current: read_u64(reader, &format!("{d}/pids.current")),
            max: read_limit(reader, &format!("{d}/pids.max")),
            dir,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hybrid_membership() {
        let m = parse_proc_cgroup(b"9:name=systemd:/\n4:memory:/app/x\n2:cpu,cpuacct:/\n0::/\n")
            .unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].controllers, vec!["systemd"]);
        assert_eq!(m[1].path, "/app/x");
        assert_eq!(m[2].controllers, vec!["cpu", "cpuacct"]);
        assert!(m[3].controllers.is_empty());
        assert!(parse_proc_cgroup(b"garbage\n").is_err());
    }

    /// The v1 memory hierarchy as a container sees it: mounted at its own cgroup.
    fn container_memory_mount() -> Mount {
        Mount {
            id: 1,
            parent: 0,
            root: "/docker/abc".into(),
            mount_point: "/sys/fs/cgroup/memory".into(),
            options: String::new(),
            fs_type: "cgroup".into(),
            source: "cgroup".into(),
            super_options: "rw,memory".into(),
        }
    }

    #[test]
    fn mount_root_is_stripped() {
        let m = container_memory_mount();
        assert_eq!(
            join_below_mount(&m, "/docker/abc/sub"),
            "/sys/fs/cgroup/memory/sub"
        );
        assert_eq!(join_below_mount(&m, "/docker/abc"), "/sys/fs/cgroup/memory");
    }

    #[test]
    fn parent_stops_at_the_top_this_host_sees() {
        let m = container_memory_mount();
        let cpu = Mount {
            root: "/".into(),
            mount_point: "/sys/fs/cgroup/memory,x".into(),
            super_options: "rw,cpu".into(),
            ..m.clone()
        };
        let layout = CgroupLayout::from_mounts(vec![cpu, m]);
        let leaf = CgroupDir {
            version: CgroupVersion::V1,
            path: "/docker/abc/a/b".into(),
            host_dir: "/sys/fs/cgroup/memory/a/b".into(),
        };
        let up = layout.parent(&leaf).unwrap();
        assert_eq!(
            (up.path.as_str(), up.host_dir.as_str()),
            ("/docker/abc/a", "/sys/fs/cgroup/memory/a")
        );
        let top = layout.parent(&up).unwrap();
        assert_eq!(
            (top.path.as_str(), top.host_dir.as_str()),
            ("/docker/abc", "/sys/fs/cgroup/memory")
        );
        assert_eq!(
            layout.parent(&top),
            None,
            "nothing above the container's root"
        );
        let v1_root = CgroupDir {
            version: CgroupVersion::V1,
            path: "/x".into(),
            host_dir: "/sys/fs/cgroup/memory,x/x".into(),
        };
        let root = layout.parent(&v1_root).unwrap();
        assert_eq!(
            (root.path.as_str(), root.host_dir.as_str()),
            ("/", "/sys/fs/cgroup/memory,x")
        );
        assert_eq!(layout.parent(&root), None);
    }
}
