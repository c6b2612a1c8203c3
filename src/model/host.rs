//! The environment fingerprint recorded with every report: kernel, CPUs, memory,
//! cgroup mode, privileges, clocksource, THP, swap, load and pressure at start.

use serde::Serialize;
use syslens_probe::cgroup::CgroupLayout;
use syslens_probe::names::describe_caps;
use syslens_probe::psi::{parse_psi, Psi};
use syslens_probe::status::Status;
use syslens_probe::system::{bracketed_choice, parse_loadavg, Meminfo, ProcStat};
use syslens_probe::{Files, Missing, Val};

use crate::model::figure::ser_val;

/// The machine a report was taken on, read once at its start.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    /// The kernel release (/proc/sys/kernel/osrelease).
    #[serde(serialize_with = "ser_val")]
    pub kernel: Val<String>,
    /// CPUs online (/sys/devices/system/cpu/online, else the cpuN lines of /proc/stat).
    #[serde(serialize_with = "ser_val")]
    pub cpus: Val<u64>,
    /// MemTotal of /proc/meminfo, in bytes.
    #[serde(serialize_with = "ser_val")]
    pub memory_bytes: Val<u64>,
    /// SwapTotal of /proc/meminfo, in bytes.
    #[serde(serialize_with = "ser_val")]
    pub swap_bytes: Val<u64>,
    /// v1, v2, hybrid or none.
    pub cgroup: &'static str,
    /// Whether syslens runs as root (euid 0).
    pub root: bool,
    /// The tool's own effective capabilities ("all" when it holds every known one).
    #[serde(serialize_with = "ser_val")]
    pub capabilities: Val<Vec<String>>,
    /// The current clocksource (tsc, kvm-clock, hpet...).
    #[serde(serialize_with = "ser_val")]
    pub clocksource: Val<String>,
    /// Transparent huge pages: always, madvise or never.
    #[serde(serialize_with = "ser_val")]
    pub thp: Val<String>,
    /// /proc/loadavg: the 1, 5 and 15 minute load averages.
    #[serde(serialize_with = "ser_val")]
    pub loadavg: Val<[f64; 3]>,
    /// /proc/pressure/cpu.
    #[serde(serialize_with = "ser_val")]
    pub psi_cpu: Val<Psi>,
    /// /proc/pressure/memory.
    #[serde(serialize_with = "ser_val")]
    pub psi_memory: Val<Psi>,
    /// /proc/pressure/io.
    #[serde(serialize_with = "ser_val")]
    pub psi_io: Val<Psi>,
}

/// Counts CPUs in a list such as `0-3,8,10-11`.
/// The CPUs a kernel CPU list (`0-3,8`) names, in order; `None` when it does not parse.
pub fn cpu_list(list: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let a = part.parse::<u32>().ok()?;
                (a, a)
            }
        };
        // Linux's NR_CPUS tops out at 8192; a longer list is not a CPU list.
        if b < a || b >= 8192 || cpus.len() + (b - a) as usize >= 8192 {
            return None;
        }
        cpus.extend(a..=b);
    }
    Some(cpus)
}

/// How many CPUs a kernel CPU list (`0-3,8`) names.
pub fn count_cpu_list(list: &str) -> Option<u64> {
    let mut n = 0;
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
                n += b.checked_sub(a)? + 1;
            }
            None => {
                part.parse::<u64>().ok()?;
                n += 1;
            }
        }
    }
    Some(n)
}

fn text_of(files: &mut impl Files, host_path: &str) -> Val<String> {
    files
        .host_file(host_path)
        .map(|b| String::from_utf8_lossy(b).trim().to_owned())
}

impl Host {
    /// Reads the fingerprint from `files` (a reader of the host or a tree, or a recorded
    /// sample); each figure is missing on its own.
    pub fn read(files: &mut impl Files) -> Host {
        let kernel = files
            .proc_file("sys/kernel/osrelease")
            .map(|b| String::from_utf8_lossy(b).trim().to_owned());
        let cpus = text_of(files, "/sys/devices/system/cpu/online")
            .and_then(|l| count_cpu_list(&l).ok_or_else(|| Missing::malformed("cpu/online", l)))
            .or_else(|_| {
                files
                    .proc_file("stat")
                    .and_then(ProcStat::parse)
                    .map(|s| s.cpus)
            });
        let mem = files.proc_file("meminfo").map(Meminfo::parse);
        let memory_bytes = mem
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|m| m.mem_total.clone());
        let swap_bytes = mem
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|m| m.swap_total.clone());
        let cgroup = CgroupLayout::read(files).map_or("unknown", |l| l.mode.name());
        let capabilities = files
            .proc_file("self/status")
            .map(Status::parse)
            .and_then(|s| s.cap_eff)
            .map(describe_caps);
        Host {
            kernel,
            cpus,
            memory_bytes,
            swap_bytes,
            cgroup,
            root: rustix::process::geteuid().is_root(),
            capabilities,
            clocksource: text_of(
                files,
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            ),
            thp: files
                .host_file("/sys/kernel/mm/transparent_hugepage/enabled")
                .and_then(bracketed_choice),
            loadavg: files.proc_file("loadavg").and_then(parse_loadavg),
            psi_cpu: files.proc_file("pressure/cpu").and_then(parse_psi),
            psi_memory: files.proc_file("pressure/memory").and_then(parse_psi),
            psi_io: files.proc_file("pressure/io").and_then(parse_psi),
        }
    }

    /// One line for report headers.
    pub fn summary(&self) -> String {
        let or_q = |v: &Val<String>| v.clone().unwrap_or_else(|_| "?".into());
        let cpus = self.cpus.as_ref().map_or("?".to_owned(), u64::to_string);
        let mem = self
            .memory_bytes
            .as_ref()
            .map_or("?".to_owned(), |m| crate::model::units::bytes(*m as f64));
        let swap = match &self.swap_bytes {
            Ok(0) => "no swap".to_owned(),
            Ok(s) => format!("swap {}", crate::model::units::bytes(*s as f64)),
            Err(_) => "swap ?".to_owned(),
        };
        format!(
            "kernel {}  {} CPUs  {}  {}  cgroup {}  THP {}  {}",
            or_q(&self.kernel),
            cpus,
            mem,
            swap,
            self.cgroup,
            or_q(&self.thp),
            if self.root { "root" } else { "not root" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(count_cpu_list("0-1\n"), Some(2));
        assert_eq!(count_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("x"), None);
    }
}
