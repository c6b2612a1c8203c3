//! The limits that really bind a process: a cgroup's memory, CPU or pids cap applies to
//! everything below it, so the one that binds is the lowest on the way from the
//! process's cgroup up to the top this host can see, wherever it is set (a container's
//! limit often sits on its pod's or its parent's cgroup, not on the leaf).

use serde::Serialize;
use syslens_probe::cgroup::{
    read_cap, read_counter, read_cpu_quota, CgroupDir, CgroupLayout, Membership,
};
use syslens_probe::container::placement;
use syslens_probe::{Missing, Reader, Val};

use crate::model::figure::ser_val;
use crate::model::host::count_cpu_list;

/// A chain deeper than this is not a real hierarchy (the kernel allows any depth; a
/// hostile tree might nest forever).
const MAX_DEPTH: usize = 256;

/// A limit and the cgroup that sets it.
#[derive(Debug, Clone, Serialize)]
pub struct Bound<T> {
    /// The limit (bytes, tasks, or the quota).
    pub value: T,
    /// The cgroup whose file sets it: the lowest of the chain.
    pub set_by: CgroupDir,
    /// The file that sets it (memory.max, memory.high, cpu.max...).
    pub file: &'static str,
    /// What the setting cgroup uses now against it (memory.current, pids.current),
    /// for the memory and pids limits.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt")]
    pub used: Option<Val<u64>>,
}

fn ser_opt<S: serde::Serializer>(v: &Option<Val<u64>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => ser_val(v, s),
        None => s.serialize_none(),
    }
}

impl<T> Bound<T> {
    /// "the container's" or "the pod's" when the setting cgroup is one, else "the
    /// cgroup's", as a sentence names whose limit it is.
    pub fn whose(&self) -> &'static str {
        let p = placement(&self.set_by.path);
        match (&p.container_id, &p.pod_uid) {
            (Some(_), _) => "the container's",
            (None, Some(_)) => "the pod's",
            (None, None) => "the cgroup's",
        }
    }

    /// How a finding names the cgroup that sets it: "cgroup PATH" with its container or
    /// unit (", container 3f2a9c1b7d4e (docker)"), and the others of `below` it binds
    /// ("; it binds the processes in /a, /b"; empty when it binds only its own).
    pub fn setter_subject(&self, below: &[String]) -> (String, String) {
        let path = &self.set_by.path;
        let placed = placement(path)
            .describe()
            .map_or_else(String::new, |d| format!(", {d}"));
        let others: Vec<&str> = below
            .iter()
            .map(String::as_str)
            .filter(|b| b != path)
            .collect();
        let binds = if others.is_empty() {
            String::new()
        } else {
            format!("; it binds the processes in {}", others.join(", "))
        };
        (format!("cgroup {path}{placed}"), binds)
    }
}

/// A CFS quota.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct CpuQuota {
    /// Microseconds of CPU time per period.
    pub quota_us: u64,
    /// The period, in microseconds.
    pub period_us: u64,
    /// quota / period: how many CPUs' worth of time the cgroup may use.
    pub cpus: f64,
}

/// The effective limits of one process; `Ok(None)` when nothing up the chain sets one.
#[derive(Debug, Clone, Serialize)]
pub struct EffectiveLimits {
    /// The lowest memory cap (v2 memory.max or memory.high, v1 memory.limit_in_bytes).
    #[serde(serialize_with = "ser_val")]
    pub memory: Val<Option<Bound<u64>>>,
    /// The lowest CFS quota (v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us).
    #[serde(serialize_with = "ser_val")]
    pub cpu: Val<Option<Bound<CpuQuota>>>,
    /// The lowest pids.max.
    #[serde(serialize_with = "ser_val")]
    pub pids: Val<Option<Bound<u64>>>,
    /// CPUs online on the host, what a quota is measured against.
    #[serde(serialize_with = "ser_val")]
    pub host_cpus: Val<u64>,
}

fn no_controller(why: &'static str) -> Missing {
    Missing::NotApplicable { why }
}

impl EffectiveLimits {
    /// Walks the memory, cpu and pids hierarchies of a process with these memberships.
    pub fn collect(
        reader: &mut Reader,
        layout: &CgroupLayout,
        members: &[Membership],
    ) -> EffectiveLimits {
        let memory = layout
            .locate(members, "memory")
            .ok_or_else(|| no_controller("no memory controller mounted"))
            .and_then(|d| lowest_memory(reader, layout, d));
        let cpu = layout
            .locate(members, "cpu")
            .ok_or_else(|| no_controller("no cpu controller mounted"))
            .and_then(|d| lowest_cpu(reader, layout, d));
        let pids = layout
            .locate(members, "pids")
            .ok_or_else(|| no_controller("no pids controller mounted"))
            .and_then(|d| lowest_pids(reader, layout, d));
        EffectiveLimits {
            memory,
            cpu,
            pids,
            host_cpus: host_cpus(reader),
        }
    }

    /// The limits of a process that could not be placed, each missing for `why`.
    pub fn missing(why: Missing) -> EffectiveLimits {
        EffectiveLimits {
            memory: Err(why.clone()),
            cpu: Err(why.clone()),
            pids: Err(why.clone()),
            host_cpus: Err(why),
        }
    }
}

/// CPUs online on the host (/sys/devices/system/cpu/online).
fn host_cpus(reader: &mut Reader) -> Val<u64> {
    let path = "/sys/devices/system/cpu/online";
    let list = String::from_utf8_lossy(reader.read_host(path)?).into_owned();
    count_cpu_list(&list).ok_or_else(|| Missing::malformed(path, list))
}

/// `dir` and its ancestors, leaf first, up to the top this host can see.
fn chain(layout: &CgroupLayout, dir: CgroupDir) -> Vec<CgroupDir> {
    let mut out = vec![dir];
    while out.len() < MAX_DEPTH {
        let Some(up) = out.last().and_then(|d| layout.parent(d)) else {
            break;
        };
        out.push(up);
    }
    out
}

/// The lowest of `read`'s values over the chain; a level without the file (the root,
/// or a controller not enabled there) sets nothing. Ties go to the cgroup nearest the
/// process.
fn lowest<T: Copy>(
    reader: &mut Reader,
    layout: &CgroupLayout,
    dir: CgroupDir,
    files: impl Fn(&CgroupDir) -> &'static [&'static str],
    mut read: impl FnMut(&mut Reader, &CgroupDir, &'static str) -> Val<Option<T>>,
    key: impl Fn(&T) -> f64,
) -> Val<Option<Bound<T>>> {
    let mut best: Option<Bound<T>> = None;
    for d in chain(layout, dir) {
        for file in files(&d) {
            let v = match read(reader, &d, file) {
                Ok(Some(v)) => v,
                Ok(None) | Err(Missing::NotApplicable { .. }) => continue,
                Err(e) => return Err(e),
            };
            if best.as_ref().is_none_or(|b| key(&v) < key(&b.value)) {
                best = Some(Bound {
                    value: v,
                    set_by: d.clone(),
                    file,
                    used: None,
                });
            }
        }
    }
    Ok(best)
}

/// The memory cap that binds a process in the memory cgroup `dir`, with the usage of
/// the cgroup that sets it.
pub fn lowest_memory(
    reader: &mut Reader,
    layout: &CgroupLayout,
    dir: CgroupDir,
) -> Val<Option<Bound<u64>>> {
    let mut b = lowest(
        reader,
        layout,
        dir,
        |d| d.version.memory_cap_files(),
        read_cap,
        |v| *v as f64,
    )?;
    if let Some(b) = &mut b {
        let file = b.set_by.version.memory_usage_file();
        b.used = Some(read_counter(reader, &b.set_by, file));
    }
    Ok(b)
}

/// The CFS quota that binds a process in the cpu cgroup `dir` (fewest CPUs).
pub fn lowest_cpu(
    reader: &mut Reader,
    layout: &CgroupLayout,
    dir: CgroupDir,
) -> Val<Option<Bound<CpuQuota>>> {
    lowest(
        reader,
        layout,
        dir,
        |d| match d.version {
            syslens_probe::cgroup::CgroupVersion::V2 => &["cpu.max"],
            syslens_probe::cgroup::CgroupVersion::V1 => &["cpu.cfs_quota_us"],
        },
        |r, d, _| {
            Ok(read_cpu_quota(r, d)?.map(|(q, p)| CpuQuota {
                quota_us: q,
                period_us: p,
                cpus: q as f64 / p as f64,
            }))
        },
        |q| q.cpus,
    )
}

/// The pids.max that binds a process in the pids cgroup `dir`, with the setter's tasks.
pub fn lowest_pids(
    reader: &mut Reader,
    layout: &CgroupLayout,
    dir: CgroupDir,
) -> Val<Option<Bound<u64>>> {
    let mut b = lowest(
        reader,
        layout,
        dir,
        |_| &["pids.max"],
        read_cap,
        |v| *v as f64,
    )?;
    if let Some(b) = &mut b {
        b.used = Some(read_counter(reader, &b.set_by, "pids.current"));
    }
    Ok(b)
}

/// A path shortened for a sentence: each run of 32 or more hex digits (a container id,
/// alone or inside `docker-<id>.scope`) cut to its first 12 and "...".
fn short_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 32 {
            out.push_str(&run[..12]);
            out.push_str("...");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in path.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

impl EffectiveLimits {
    /// "memory: 180.0 MiB of the container's 200.0 MiB (limit set by /docker/3f2a9c1b7d4e...,
    /// memory.max)", or that nothing up the chain caps it.
    pub fn memory_sentence(&self) -> Val<String> {
        Ok(match self.memory.clone()? {
            None => {
                "memory: no cgroup up the chain sets a limit (the host's memory applies)".to_owned()
            }
            Some(b) => {
                let used = match b.used.clone() {
                    Some(Ok(u)) => format!("{} of ", crate::model::units::bytes(u as f64)),
                    _ => String::new(),
                };
                format!(
                    "memory: {used}{} {} (limit set by {}, {})",
                    b.whose(),
                    crate::model::units::bytes(b.value as f64),
                    short_path(&b.set_by.path),
                    b.file
                )
            }
        })
    }

    /// "CPU: quota 1.5 CPUs of 2 (set by /x, cpu.max)", or unlimited.
    pub fn cpu_sentence(&self) -> Val<String> {
        let of = self
            .host_cpus
            .as_ref()
            .map_or(String::new(), |n| format!(" of {n}"));
        Ok(match self.cpu.clone()? {
            None => format!("CPU: no quota up the chain (all{of} CPUs)"),
            Some(b) => format!(
                "CPU: quota {} {}{of} (set by {}, {})",
                trim_float(b.value.cpus),
                if b.value.cpus == 1.0 { "CPU" } else { "CPUs" },
                short_path(&b.set_by.path),
                b.file
            ),
        })
    }

    /// "pids: 12 of the cgroup's 100 tasks (limit set by /x, pids.max)", or unlimited.
    pub fn pids_sentence(&self) -> Val<String> {
        Ok(match self.pids.clone()? {
            None => "pids: no cgroup up the chain sets a limit (kernel.pid_max applies)".to_owned(),
            Some(b) => {
                let used = match b.used.clone() {
                    Some(Ok(u)) => format!("{u} of "),
                    _ => String::new(),
                };
                format!(
                    "pids: {used}{} {} tasks (limit set by {}, {})",
                    b.whose(),
                    b.value,
                    short_path(&b.set_by.path),
                    b.file
                )
            }
        })
    }
}

/// 0.5, 1.5, 2 (not 2.00): a CPU count as people write it.
fn trim_float(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_shorten_ids_and_trim_cpus() {
        assert_eq!(
            short_path("/docker/3f2a9c1b7d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4"),
            "/docker/3f2a9c1b7d4e..."
        );
        assert_eq!(
            short_path("/system.slice/x.service"),
            "/system.slice/x.service"
        );
        assert_eq!(trim_float(0.5), "0.5");
        assert_eq!(trim_float(2.0), "2");
        assert_eq!(trim_float(1.5), "1.5");
    }
}
