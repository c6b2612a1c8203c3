//! System-wide files: meminfo, vmstat, /proc/stat, swaps, buddyinfo, slabinfo,
//! dentry-state, loadavg and the single-value sysctls.

use serde::Serialize;

use crate::missing::{Missing, Val};
use crate::parse::{kb_as_bytes, key_value, lines, text, tokens, u64_dec};
use crate::read::Files;

/// Picks `key: value` (or `key value`) lines into named slots.
macro_rules! keyed_struct {
    ($(#[$meta:meta])* $name:ident, $file:literal, $convert:path, { $($field:ident => $key:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Serialize)]
        pub struct $name {
            $(#[doc = concat!("`", $key, "` in ", $file, ".")]
            pub $field: Val<u64>,)*
        }

        impl $name {
            /// Parses the file; a key it lacks is missing as not in this kernel, a
            /// value that is no number as malformed.
            pub fn parse(buf: &[u8]) -> $name {
                let mut out = $name { $($field: Err(Missing::not_in_kernel($key)),)* };
                for line in lines(buf) {
                    let (k, v) = match key_value(line) {
                        Some(kv) => kv,
                        None => {
                            let mut t = tokens(line);
                            match (t.next(), t.next()) {
                                (Some(k), Some(v)) => (k, v),
                                _ => continue,
                            }
                        }
                    };
                    $(if k == $key.as_bytes() {
                        out.$field = $convert(v).ok_or_else(|| Missing::malformed($file, text(line)));
                        continue;
                    })*
                }
                out
            }
        }
    };
}

keyed_struct!(
    /// /proc/meminfo, in bytes.
    Meminfo, "/proc/meminfo", kb_as_bytes, {
    mem_total => "MemTotal",
    mem_free => "MemFree",
    mem_available => "MemAvailable",
    buffers => "Buffers",
    cached => "Cached",
    swap_cached => "SwapCached",
    active_file => "Active(file)",
    inactive_file => "Inactive(file)",
    anon_pages => "AnonPages",
    mapped => "Mapped",
    shmem => "Shmem",
    slab => "Slab",
    s_reclaimable => "SReclaimable",
    s_unreclaim => "SUnreclaim",
    kernel_stack => "KernelStack",
    page_tables => "PageTables",
    commit_limit => "CommitLimit",
    committed_as => "Committed_AS",
    swap_total => "SwapTotal",
    swap_free => "SwapFree",
    dirty => "Dirty",
    writeback => "Writeback",
    anon_huge_pages => "AnonHugePages",
});

fn plain(v: &[u8]) -> Option<u64> {
    u64_dec(v)
}

keyed_struct!(
    /// The counters of /proc/vmstat that the lenses use (events since boot).
    Vmstat, "/proc/vmstat", plain, {
    pgfault => "pgfault",
    pgmajfault => "pgmajfault",
    pswpin => "pswpin",
    pswpout => "pswpout",
    oom_kill => "oom_kill",
    pgscan_direct => "pgscan_direct",
    pgscan_kswapd => "pgscan_kswapd",
    compact_stall => "compact_stall",
    compact_fail => "compact_fail",
    thp_fault_alloc => "thp_fault_alloc",
    thp_fault_fallback => "thp_fault_fallback",
    workingset_refault_file => "workingset_refault_file",
});

/// /proc/stat: CPU time by state (ticks, all CPUs) and the scheduler's counters.
#[derive(Debug, Clone, Serialize)]
pub struct ProcStat {
    /// Ticks in user mode (first `cpu` line, all CPUs).
    pub user: u64,
    /// Ticks in user mode at a positive nice value.
    pub nice: u64,
    /// Ticks in kernel mode.
    pub system: u64,
    /// Ticks idle.
    pub idle: u64,
    /// Ticks idle with I/O outstanding.
    pub iowait: u64,
    /// Ticks serving hardware interrupts.
    pub irq: u64,
    /// Ticks serving softirqs.
    pub softirq: u64,
    /// Ticks a hypervisor ran another guest on our virtual CPUs.
    pub steal: u64,
    /// Context switches since boot.
    pub ctxt: Val<u64>,
    /// Processes and threads created since boot (forks and clones).
    pub processes: Val<u64>,
    /// Tasks runnable now.
    pub procs_running: Val<u64>,
    /// Tasks blocked now in uninterruptible I/O wait.
    pub procs_blocked: Val<u64>,
    /// Number of `cpuN` lines.
    pub cpus: u64,
}

impl ProcStat {
    /// Parses /proc/stat; malformed without the summary `cpu` line.
    pub fn parse(buf: &[u8]) -> Val<ProcStat> {
        let mut out = ProcStat {
            user: 0,
            nice: 0,
            system: 0,
            idle: 0,
            iowait: 0,
            irq: 0,
            softirq: 0,
            steal: 0,
            ctxt: Err(Missing::not_in_kernel("ctxt")),
            processes: Err(Missing::not_in_kernel("processes")),
            procs_running: Err(Missing::not_in_kernel("procs_running")),
            procs_blocked: Err(Missing::not_in_kernel("procs_blocked")),
            cpus: 0,
        };
        let mut saw_cpu = false;
        for line in lines(buf) {
            let mut t = tokens(line);
            let Some(key) = t.next() else { continue };
            match key {
                b"cpu" => {
                    let v =
                        cpu_ticks(t).ok_or_else(|| Missing::malformed("/proc/stat", text(line)))?;
                    [
                        out.user,
                        out.nice,
                        out.system,
                        out.idle,
                        out.iowait,
                        out.irq,
                        out.softirq,
                        out.steal,
                    ] = v;
                    saw_cpu = true;
                }
                k if k.starts_with(b"cpu") => out.cpus += 1,
                b"ctxt" => {
                    out.ctxt = t
                        .next()
                        .and_then(u64_dec)
                        .ok_or_else(|| Missing::malformed("/proc/stat", "ctxt"))
                }
                b"processes" => {
                    out.processes = t
                        .next()
                        .and_then(u64_dec)
                        .ok_or_else(|| Missing::malformed("/proc/stat", "processes"))
                }
                b"procs_running" => {
                    out.procs_running = t
                        .next()
                        .and_then(u64_dec)
                        .ok_or_else(|| Missing::malformed("/proc/stat", "procs_running"))
                }
                b"procs_blocked" => {
                    out.procs_blocked = t
                        .next()
                        .and_then(u64_dec)
                        .ok_or_else(|| Missing::malformed("/proc/stat", "procs_blocked"))
                }
                _ => {}
            }
        }
        if !saw_cpu {
            return Err(Missing::malformed("/proc/stat", "no cpu line"));
        }
        Ok(out)
    }

    /// Ticks not idle: user, nice, system, irq, softirq and steal.
    pub fn busy(&self) -> u64 {
        self.user + self.nice + self.system + self.irq + self.softirq + self.steal
    }

    /// All ticks: busy plus idle and iowait.
    pub fn total(&self) -> u64 {
        self.busy() + self.idle + self.iowait
    }
}

/// The first eight figures of a `cpu` line of /proc/stat: user, nice, system, idle,
/// iowait, irq, softirq, steal (ticks).
fn cpu_ticks<'a>(mut t: impl Iterator<Item = &'a [u8]>) -> Option<[u64; 8]> {
    let mut v = [0; 8];
    for slot in &mut v {
        *slot = u64_dec(t.next()?)?;
    }
    Some(v)
}

/// One CPU's time from its `cpuN` line of /proc/stat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CpuTicks {
    /// The CPU's number (N of `cpuN`; offline CPUs have no line).
    pub cpu: u32,
    /// Ticks not idle: user, nice, system, irq, softirq and steal.
    pub busy: u64,
    /// All ticks: busy plus idle and iowait.
    pub total: u64,
    /// Ticks serving hardware interrupts and softirqs (part of busy).
    pub interrupts: u64,
}

/// The `cpuN` lines of /proc/stat, one per online CPU; malformed on a line that has
/// fewer than eight figures.
pub fn parse_cpus(buf: &[u8]) -> Val<Vec<CpuTicks>> {
    let mut out = Vec::new();
    for line in lines(buf) {
        let mut t = tokens(line);
        let Some(cpu) = t
            .next()
            .and_then(|k| k.strip_prefix(b"cpu"))
            .filter(|n| !n.is_empty())
            .and_then(u64_dec)
        else {
            continue;
        };
        let [user, nice, system, idle, iowait, irq, softirq, steal] =
            cpu_ticks(t).ok_or_else(|| Missing::malformed("/proc/stat", text(line)))?;
        let busy = [user, nice, system, irq, softirq, steal]
            .iter()
            .fold(0u64, |a, b| a.saturating_add(*b));
        out.push(CpuTicks {
            cpu: u32::try_from(cpu).map_err(|_| Missing::malformed("/proc/stat", text(line)))?,
            busy,
            total: busy.saturating_add(idle).saturating_add(iowait),
            interrupts: irq.saturating_add(softirq),
        });
    }
    Ok(out)
}

/// One line of /proc/swaps.
#[derive(Debug, Clone, Serialize)]
pub struct Swap {
    /// Path of the swap file or device (octal escapes undone).
    pub filename: String,
    /// `partition` or `file`.
    pub kind: String,
    /// Size, in bytes.
    pub size_bytes: u64,
    /// Bytes in use.
    pub used_bytes: u64,
    /// Priority: higher is used first.
    pub priority: i64,
}

/// Parses /proc/swaps (first line is the header).
pub fn parse_swaps(buf: &[u8]) -> Val<Vec<Swap>> {
    let mut out = Vec::new();
    for line in lines(buf).skip(1) {
        let t: Vec<&[u8]> = tokens(line).collect();
        let bad = || Missing::malformed("/proc/swaps", text(line));
        if t.len() < 5 {
            return Err(bad());
        }
        out.push(Swap {
            filename: crate::parse::unescape_octal(t[0]),
            kind: text(t[1]),
            size_bytes: kb_as_bytes(t[2]).ok_or_else(bad)?,
            used_bytes: kb_as_bytes(t[3]).ok_or_else(bad)?,
            priority: crate::parse::i64_dec(t[4]).ok_or_else(bad)?,
        });
    }
    Ok(out)
}

/// Free blocks per order in one zone (/proc/buddyinfo).
#[derive(Debug, Clone, Serialize)]
pub struct BuddyZone {
    /// NUMA node.
    pub node: u32,
    /// Zone name: DMA, DMA32, Normal, Movable.
    pub zone: String,
    /// free_blocks[order]: free blocks of 2^order pages.
    pub free_blocks: Vec<u64>,
}

impl BuddyZone {
    /// Free pages in this zone.
    pub fn free_pages(&self) -> u64 {
        self.free_blocks
            .iter()
            .enumerate()
            .map(|(o, n)| n << o)
            .sum()
    }

    /// The unusable free space index per order (Gorman & Whitcroft, "The What, The Why
    /// and the Where To of Anti-Fragmentation", OLS 2006): the share of free memory in
    /// blocks too small for an allocation of that order. 0 = all free memory usable,
    /// 1 = none. None when the zone has no free pages.
    pub fn unusable_index(&self) -> Vec<Option<f64>> {
        let total = self.free_pages();
        (0..self.free_blocks.len())
            .map(|order| {
                if total == 0 {
                    return None;
                }
                let usable: u64 = self
                    .free_blocks
                    .iter()
                    .enumerate()
                    .skip(order)
                    .map(|(o, n)| n << o)
                    .sum();
                Some((total - usable) as f64 / total as f64)
            })
            .collect()
    }
}

/// Parses /proc/buddyinfo.
pub fn parse_buddyinfo(buf: &[u8]) -> Val<Vec<BuddyZone>> {
    let mut out = Vec::new();
    for line in lines(buf) {
        let bad = || Missing::malformed("/proc/buddyinfo", text(line));
        let mut t = tokens(line);
        if t.next() != Some(b"Node") {
            return Err(bad());
        }
        let node = t
            .next()
            .and_then(|n| u64_dec(n.strip_suffix(b",").unwrap_or(n)))
            .ok_or_else(bad)? as u32;
        if t.next() != Some(b"zone") {
            return Err(bad());
        }
        let zone = text(t.next().ok_or_else(bad)?);
        let free_blocks = t
            .map(u64_dec)
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(bad)?;
        out.push(BuddyZone {
            node,
            zone,
            free_blocks,
        });
    }
    Ok(out)
}

/// One cache of /proc/slabinfo.
#[derive(Debug, Clone, Serialize)]
pub struct SlabCache {
    /// Cache name.
    pub name: String,
    /// Objects in use.
    pub active_objs: u64,
    /// Objects in the allocated slabs, in use or free.
    pub num_objs: u64,
    /// Size of one object, in bytes.
    pub obj_size: u64,
    /// Objects in one slab.
    pub objs_per_slab: u64,
    /// Pages in one slab.
    pub pages_per_slab: u64,
    /// Slabs allocated.
    pub num_slabs: u64,
}

impl SlabCache {
    /// Memory held by the cache's slabs.
    pub fn bytes(&self, page_size: u64) -> u64 {
        self.num_slabs * self.pages_per_slab * page_size
    }
}

/// Parses /proc/slabinfo (readable by root only).
pub fn parse_slabinfo(buf: &[u8]) -> Val<Vec<SlabCache>> {
    let mut out = Vec::new();
    for line in lines(buf) {
        if line.starts_with(b"slabinfo") || line.starts_with(b"#") {
            continue;
        }
        let t: Vec<&[u8]> = tokens(line).collect();
        let bad = || Missing::malformed("/proc/slabinfo", text(line));
        // name active num size perslab pagesperslab : tunables a b c : slabdata active num shared
        if t.len() < 16 {
            return Err(bad());
        }
        let n = |i: usize| u64_dec(t[i]).ok_or_else(bad);
        out.push(SlabCache {
            name: text(t[0]),
            active_objs: n(1)?,
            num_objs: n(2)?,
            obj_size: n(3)?,
            objs_per_slab: n(4)?,
            pages_per_slab: n(5)?,
            num_slabs: n(14)?,
        });
    }
    Ok(out)
}

/// /proc/sys/fs/dentry-state.
#[derive(Debug, Clone, Serialize)]
pub struct DentryState {
    /// Dentries allocated.
    pub nr_dentry: u64,
    /// Dentries unused (cached, on the LRU).
    pub nr_unused: u64,
    /// Negative dentries (cached "no such file"); since 5.8.
    pub nr_negative: Val<u64>,
}

/// Parses /proc/sys/fs/dentry-state.
pub fn parse_dentry_state(buf: &[u8]) -> Val<DentryState> {
    let v: Vec<Option<u64>> = tokens(buf).map(u64_dec).collect();
    let get = |i: usize| v.get(i).copied().flatten();
    match (get(0), get(1)) {
        (Some(nr_dentry), Some(nr_unused)) => Ok(DentryState {
            nr_dentry,
            nr_unused,
            nr_negative: get(4).ok_or_else(|| Missing::not_in_kernel("nr_negative (5.8+)")),
        }),
        _ => Err(Missing::malformed("/proc/sys/fs/dentry-state", text(buf))),
    }
}

/// /proc/loadavg: 1, 5 and 15 minute load averages.
pub fn parse_loadavg(buf: &[u8]) -> Val<[f64; 3]> {
    let mut t = tokens(buf).map(|x| {
        std::str::from_utf8(x)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
    });
    match (t.next().flatten(), t.next().flatten(), t.next().flatten()) {
        (Some(a), Some(b), Some(c)) => Ok([a, b, c]),
        _ => Err(Missing::malformed("/proc/loadavg", text(buf))),
    }
}

/// The bracketed choice of a sysfs setting: `always [madvise] never` -> `madvise`.
pub fn bracketed_choice(buf: &[u8]) -> Val<String> {
    tokens(buf)
        .find(|t| t.starts_with(b"[") && t.ends_with(b"]"))
        .map(|t| text(&t[1..t.len() - 1]))
        .ok_or_else(|| Missing::malformed("setting", text(buf)))
}

/// Reads a file below /proc that holds one number.
pub fn proc_u64(files: &mut impl Files, name: &str) -> Val<u64> {
    let buf = files.proc_file(name)?;
    u64_dec(buf).ok_or_else(|| Missing::malformed(format!("/proc/{name}"), text(buf)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_cpu_lines() {
        let stat = b"cpu  10 0 5 100 1 0 0 0 0 0\ncpu0 4 0 2 50 1 0 0 0 0 0\n\
                     cpu3 6 1 3 50 0 1 1 1 0 0\nintr 5\nctxt 9\n";
        assert_eq!(
            parse_cpus(stat).unwrap(),
            vec![
                CpuTicks {
                    cpu: 0,
                    busy: 6,
                    total: 57,
                    interrupts: 0,
                },
                CpuTicks {
                    cpu: 3,
                    busy: 13,
                    total: 63,
                    interrupts: 2,
                },
            ]
        );
        assert!(parse_cpus(b"cpu0 1 2 3\n").is_err());
        assert_eq!(parse_cpus(b"").unwrap(), vec![]);
    }

    #[test]
    fn meminfo_and_vmstat() {
        let m = Meminfo::parse(
            b"MemTotal:       24000000 kB\nMemAvailable:   23000000 kB\nActive(file):  10 kB\n",
        );
        assert_eq!(m.mem_total, Ok(24000000 * 1024));
        assert_eq!(m.active_file, Ok(10240));
        assert!(m.swap_total.is_err());
        let v = Vmstat::parse(b"pgfault 100\npgmajfault 7\noom_kill 1\n");
        assert_eq!(
            (v.pgfault, v.pgmajfault, v.oom_kill),
            (Ok(100), Ok(7), Ok(1))
        );
    }

    #[test]
    fn proc_stat() {
        let s = ProcStat::parse(b"cpu  10 0 4 158 2 0 2 0 0 0\ncpu0 5 0 2 79 1 0 1 0 0 0\ncpu1 5 0 2 79 1 0 1 0 0 0\nctxt 358888\nprocs_running 2\nprocs_blocked 0\n").unwrap();
        assert_eq!(s.cpus, 2);
        assert_eq!(s.busy(), 16);
        assert_eq!(s.ctxt, Ok(358888));
        assert!(ProcStat::parse(b"ctxt 1\n").is_err());
    }

    #[test]
    fn buddy_unusable_index() {
        let z = parse_buddyinfo(b"Node 0, zone   Normal      4      2      1\n").unwrap();
        assert_eq!(z[0].free_pages(), 4 + 4 + 4);
        let idx = z[0].unusable_index();
        assert_eq!(idx[0], Some(0.0));
        assert!((idx[1].unwrap() - 4.0 / 12.0).abs() < 1e-12);
        assert!((idx[2].unwrap() - 8.0 / 12.0).abs() < 1e-12);
        let empty = parse_buddyinfo(b"Node 0, zone      DMA      0      0\n").unwrap();
        assert_eq!(empty[0].unusable_index(), vec![None, None]);
        assert!(parse_buddyinfo(b"Node 0, zone Normal x\n").is_err());
    }

    #[test]
    fn slabinfo() {
        let s = parse_slabinfo(b"slabinfo - version: 2.1\n# name ...\ndentry  100 120 192 21 1 : tunables 0 0 0 : slabdata 6 6 0\n").unwrap();
        assert_eq!(s[0].name, "dentry");
        assert_eq!(s[0].bytes(4096), 6 * 4096);
        assert!(parse_slabinfo(b"dentry 1 2\n").is_err());
    }

    #[test]
    fn small_files() {
        let d = parse_dentry_state(b"29347\t28137\t45\t0\t12141\t0\n").unwrap();
        assert_eq!(d.nr_negative, Ok(12141));
        assert!(parse_dentry_state(b"1 2 3 4\n")
            .unwrap()
            .nr_negative
            .is_err());
        assert_eq!(
            parse_loadavg(b"0.50 0.25 0.10 1/200 1234\n").unwrap(),
            [0.5, 0.25, 0.1]
        );
        assert_eq!(
            bracketed_choice(b"always [madvise] never\n").unwrap(),
            "madvise"
        );
        let sw = parse_swaps(b"Filename Type Size Used Priority\n/swapfile file 1048572 512 -2\n")
            .unwrap();
        assert_eq!(sw[0].size_bytes, 1048572 * 1024);
        assert_eq!(sw[0].used_bytes, 512 * 1024);
        assert_eq!(sw[0].priority, -2);
        assert!(parse_swaps(b"Filename Type Size Used Priority\n")
            .unwrap()
            .is_empty());
    }
}
