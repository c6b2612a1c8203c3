//! `syslens system --processes`: one row per process with the cheap figure of each
//! concept, sortable and filterable.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde::Serialize;
use syslens_probe::cgroup::{parse_proc_cgroup, CgroupLayout};
use syslens_probe::container::{placement, Placement};
use syslens_probe::limits::LimitValue;
use syslens_probe::smaps::MemUsage;
use syslens_probe::table::{fd_ratio, ProcessRow, ScanOptions, Scanner};
use syslens_probe::{Missing, Reader, Val};

use crate::model::figure::ser_val;
use crate::model::limits::EffectiveLimits;

/// Columns to sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // each is the column of its name
pub enum SortKey {
    Pid,
    Name,
    Rss,
    Hwm,
    /// HWM - RSS: memory a process once held and gave back (or not).
    HwmGap,
    Pss,
    Swap,
    Minflt,
    Majflt,
    Fds,
    /// fds / soft limit.
    FdRatio,
    Vcsw,
    Nvcsw,
    /// Time spent waiting on a run queue.
    Runq,
    Oom,
    Cgroup,
}

impl SortKey {
    /// Every column, in the order `--sort` lists them.
    pub const ALL: [SortKey; 16] = [
        SortKey::Pid,
        SortKey::Name,
        SortKey::Rss,
        SortKey::Hwm,
        SortKey::HwmGap,
        SortKey::Pss,
        SortKey::Swap,
        SortKey::Minflt,
        SortKey::Majflt,
        SortKey::Fds,
        SortKey::FdRatio,
        SortKey::Vcsw,
        SortKey::Nvcsw,
        SortKey::Runq,
        SortKey::Oom,
        SortKey::Cgroup,
    ];

    /// The column as written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Pid => "pid",
            SortKey::Name => "name",
            SortKey::Rss => "rss",
            SortKey::Hwm => "hwm",
            SortKey::HwmGap => "hwm-gap",
            SortKey::Pss => "pss",
            SortKey::Swap => "swap",
            SortKey::Minflt => "minflt",
            SortKey::Majflt => "majflt",
            SortKey::Fds => "fds",
            SortKey::FdRatio => "fd-ratio",
            SortKey::Vcsw => "vcsw",
            SortKey::Nvcsw => "nvcsw",
            SortKey::Runq => "runq",
            SortKey::Oom => "oom",
            SortKey::Cgroup => "cgroup",
        }
    }
}

/// Which processes, in which order.
#[derive(Debug, Clone)]
pub struct TableQuery {
    /// The column to sort by.
    pub sort: SortKey,
    /// Reverse the order.
    pub reverse: bool,
    /// Only processes whose command name contains this.
    pub name: Option<String>,
    /// Only processes in this cgroup or below it.
    pub cgroup: Option<String>,
    /// Only processes of the container whose id starts with this.
    pub container: Option<String>,
    /// Read smaps_rollup for PSS and shared bytes (each target pays a page-table walk).
    pub pss: bool,
    /// At most this many rows, after sorting.
    pub limit: Option<usize>,
    /// Order the rows as a process tree (children under their parent, each level in
    /// the sort order).
    pub tree: bool,
}

/// One row as shown and exported.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The process id.
    pub pid: i32,
    /// The parent's pid (stat's ppid; 0 for the init of a PID namespace as seen here).
    pub ppid: i64,
    /// The pid inside the process's own (innermost) PID namespace: status NSpid's last
    /// entry (1 for a container's init; the same as `pid` on the host's namespace).
    #[serde(serialize_with = "ser_val")]
    pub pid_in_namespace: Val<u64>,
    /// How many PID namespaces see the process: NSpid's entries (1 on the host's).
    #[serde(serialize_with = "ser_val")]
    pub pid_namespace_levels: Val<u64>,
    /// stat's command name.
    pub name: String,
    /// stat's state letter.
    pub state: String,
    /// status's real uid.
    #[serde(serialize_with = "ser_val")]
    pub uid: Val<u64>,
    /// status's VmRSS, in bytes.
    #[serde(serialize_with = "ser_val")]
    pub rss_bytes: Val<u64>,
    /// status's VmHWM (peak RSS), in bytes.
    #[serde(serialize_with = "ser_val")]
    pub hwm_bytes: Val<u64>,
    /// status's VmSwap, in bytes.
    #[serde(serialize_with = "ser_val")]
    pub swap_bytes: Val<u64>,
    /// stat's minor faults.
    pub minflt: u64,
    /// stat's major faults.
    pub majflt: u64,
    /// Open file descriptors.
    #[serde(serialize_with = "ser_val")]
    pub fds: Val<u64>,
    /// The soft RLIMIT_NOFILE; None when unlimited.
    #[serde(serialize_with = "ser_val")]
    pub fd_soft_limit: Val<Option<u64>>,
    /// fds / soft limit; None when either is missing or the limit is unlimited.
    pub fd_ratio: Option<f64>,
    /// Voluntary context switches (status, main thread).
    #[serde(serialize_with = "ser_val")]
    pub voluntary_switches: Val<u64>,
    /// Involuntary context switches (status, main thread).
    #[serde(serialize_with = "ser_val")]
    pub involuntary_switches: Val<u64>,
    /// Time the main thread waited on a run queue (schedstat), in ns.
    #[serde(serialize_with = "ser_val")]
    pub run_queue_wait_ns: Val<u64>,
    /// /proc/PID/oom_score.
    #[serde(serialize_with = "ser_val")]
    pub oom_score: Val<u64>,
    /// The memory controller's cgroup (v1), or the unified one (v2).
    #[serde(serialize_with = "ser_val")]
    pub cgroup: Val<String>,
    /// The container, pod and systemd unit the cgroup path names (none on the host).
    pub container: Option<Placement>,
    /// The lowest memory, CPU and pids limits up the process's cgroup chains, with the
    /// cgroup that sets each (missing for a recorded table: limits are not recorded).
    #[serde(serialize_with = "ser_val")]
    pub limits: Val<EffectiveLimits>,
    /// Depth in the process tree (`--tree`; 0 otherwise).
    #[serde(skip_serializing_if = "is_zero")]
    pub depth: usize,
    /// Only with --pss (smaps_rollup).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_val"
    )]
    pub pss_bytes: Option<Val<u64>>,
    /// Shared_Clean + Shared_Dirty of smaps_rollup, in bytes; only with --pss.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_val"
    )]
    pub shared_bytes: Option<Val<u64>>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn ser_opt_val<S: serde::Serializer>(v: &Option<Val<u64>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => ser_val(v, s),
        None => s.serialize_none(),
    }
}

/// The path of an interned cgroup id (`paths` is a scanner's or a recorded table's).
fn path_of(paths: &[String], id: u32) -> &str {
    paths.get(id as usize).map_or("?", String::as_str)
}

impl Row {
    fn from(r: &ProcessRow, paths: &[String]) -> Row {
        let rollup = r.rollup.as_ref().map(|u| u.as_ref().map_err(Clone::clone));
        let cgroup = r.cgroup.clone().map(|id| path_of(paths, id).to_owned());
        let container = cgroup
            .as_deref()
            .ok()
            .map(placement)
            .filter(|p| p.container_id.is_some() || p.unit.is_some());
        Row {
            pid: r.pid,
            ppid: r.ppid,
            pid_in_namespace: r.ns_pid.clone(),
            pid_namespace_levels: r.ns_levels.clone(),
            name: r.comm.as_str().to_owned(),
            state: (r.state as char).to_string(),
            uid: r.uid.clone(),
            rss_bytes: r.rss.clone(),
            hwm_bytes: r.hwm.clone(),
            swap_bytes: r.swap.clone(),
            minflt: r.minflt,
            majflt: r.majflt,
            fds: r.fds.clone(),
            fd_soft_limit: r.fd_soft_limit.clone().map(|l| match l {
                LimitValue::Unlimited => None,
                LimitValue::Value(v) => Some(v),
            }),
            fd_ratio: fd_ratio(r),
            voluntary_switches: r.voluntary_switches.clone(),
            involuntary_switches: r.involuntary_switches.clone(),
            run_queue_wait_ns: r.run_queue_wait_ns.clone(),
            oom_score: r.oom_score.clone(),
            cgroup,
            container,
            limits: Err(Missing::NotApplicable {
                why: "cgroup limits are not recorded",
            }),
            depth: 0,
            pss_bytes: rollup.clone().map(|u| u.and_then(|u| u.pss.clone())),
            shared_bytes: rollup.map(|u| {
                u.and_then(|u| {
                    Ok(u.shared_clean
                        .clone()?
                        .saturating_add(u.shared_dirty.clone()?))
                })
            }),
        }
    }

    fn key(&self, k: SortKey) -> Option<f64> {
        let f = |v: &Val<u64>| v.as_ref().ok().map(|x| *x as f64);
        match k {
            SortKey::Pid => Some(f64::from(self.pid)),
            SortKey::Rss => f(&self.rss_bytes),
            SortKey::Hwm => f(&self.hwm_bytes),
            SortKey::HwmGap => Some(f(&self.hwm_bytes)? - f(&self.rss_bytes)?),
            SortKey::Pss => f(self.pss_bytes.as_ref()?),
            SortKey::Swap => f(&self.swap_bytes),
            SortKey::Minflt => Some(self.minflt as f64),
            SortKey::Majflt => Some(self.majflt as f64),
            SortKey::Fds => f(&self.fds),
            SortKey::FdRatio => self.fd_ratio,
            SortKey::Vcsw => f(&self.voluntary_switches),
            SortKey::Nvcsw => f(&self.involuntary_switches),
            SortKey::Runq => f(&self.run_queue_wait_ns),
            SortKey::Oom => f(&self.oom_score),
            SortKey::Name | SortKey::Cgroup => None,
        }
    }
}

/// Sorts rows: numbers largest first, pid and text ascending; missing values last.
pub fn sort(rows: &mut [Row], key: SortKey, reverse: bool) {
    rows.sort_by(|a, b| {
        let ord = match key {
            SortKey::Name => a.name.cmp(&b.name),
            SortKey::Cgroup => a
                .cgroup
                .as_deref()
                .unwrap_or("~")
                .cmp(b.cgroup.as_deref().unwrap_or("~")),
            SortKey::Pid => a.pid.cmp(&b.pid),
            k => match (a.key(k), b.key(k)) {
                (Some(x), Some(y)) => y.partial_cmp(&x).unwrap_or(Ordering::Equal),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
        };
        let ord = ord.then(a.pid.cmp(&b.pid));
        if reverse {
            ord.reverse()
        } else {
            ord
        }
    });
}

/// Orders sorted rows as a tree: each row followed by its children (in the order they
/// already have), depth-first; rows whose parent is not listed are roots.
pub fn as_tree(rows: Vec<Row>) -> Vec<Row> {
    let order = tree_order(rows.iter().map(|r| (i64::from(r.pid), r.ppid)));
    let mut slots: Vec<Option<Row>> = rows.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|(i, depth)| {
            let mut r = slots[i].take()?;
            r.depth = depth;
            Some(r)
        })
        .collect()
}

/// The tree order of rows given as (pid, ppid) in their sorted order: the index of each
/// row and its depth, each row followed by its children (in the order they already
/// have), depth-first; rows whose parent is not listed are roots. Every row appears
/// once, those in a parent cycle too.
pub fn tree_order(links: impl Iterator<Item = (i64, i64)>) -> Vec<(usize, usize)> {
    use std::collections::HashMap;
    let links: Vec<(i64, i64)> = links.collect();
    let listed: std::collections::HashSet<i64> = links.iter().map(|l| l.0).collect();
    let mut children: HashMap<i64, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, &(pid, ppid)) in links.iter().enumerate() {
        if ppid != pid && listed.contains(&ppid) {
            children.entry(ppid).or_default().push(i);
        } else {
            roots.push(i);
        }
    }
    let mut order = Vec::with_capacity(links.len());
    // An explicit stack: a deep chain of forks must not overflow ours.
    let mut seen = vec![false; links.len()];
    // Rows in a parent cycle (PIDs reused between two reads) have no root: they start
    // trees of their own after the rest, so no row is lost.
    let starts: Vec<usize> = roots.into_iter().chain(0..links.len()).collect();
    for start in starts {
        let mut stack = vec![(start, 0)];
        while let Some((i, depth)) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            order.push((i, depth));
            if let Some(kids) = children.get(&links[i].0) {
                stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
            }
        }
    }
    order
}

/// Whether a cgroup path is `scope` or below it.
pub fn in_cgroup(path: &str, scope: &str) -> bool {
    let scope = scope.trim_end_matches('/');
    scope.is_empty()
        || path == scope
        || (path.starts_with(scope) && path.as_bytes().get(scope.len()) == Some(&b'/'))
}

/// Reads each row's effective limits; processes in the same cgroups share one walk.
fn add_limits(reader: &mut Reader, rows: &mut [Row]) {
    let layout = CgroupLayout::read(reader);
    let mut walked: HashMap<Vec<u8>, EffectiveLimits> = HashMap::new();
    for row in rows {
        row.limits = (|| {
            let layout = layout.as_ref().map_err(Clone::clone)?;
            let dir = reader.open_pid(row.pid)?;
            let raw = reader.read_pid(&dir, "cgroup")?.to_vec();
            if let Some(l) = walked.get(&raw) {
                return Ok(l.clone());
            }
            let members = parse_proc_cgroup(&raw)?;
            let l = EffectiveLimits::collect(reader, layout, &members);
            walked.insert(raw, l.clone());
            Ok(l)
        })();
    }
}

/// One pass, filtered, sorted and cut.
pub fn collect(scanner: &mut Scanner, q: &TableQuery) -> Val<Vec<Row>> {
    let rows = scanner.scan(ScanOptions::default())?.to_vec();
    let paths = scanner.cgroup_paths().to_vec();
    select(rows, &paths, q, Some(scanner.reader()))
}

/// The rows of `q` among `rows`, whose cgroup ids index `paths`: filtered, sorted and
/// cut. `reader` reads smaps_rollup for `--pss`; without one (a recorded table) PSS
/// cannot be asked for.
pub fn select(
    rows: Vec<ProcessRow>,
    paths: &[String],
    q: &TableQuery,
    reader: Option<&mut Reader>,
) -> Val<Vec<Row>> {
    let keep = |r: &ProcessRow| -> bool {
        let name_ok = q
            .name
            .as_deref()
            .is_none_or(|n| r.comm.as_str().contains(n));
        let cg_ok = q.cgroup.as_deref().is_none_or(
            |scope| matches!(&r.cgroup, Ok(id) if in_cgroup(path_of(paths, *id), scope)),
        );
        let container_ok = q.container.as_deref().is_none_or(|want| {
            matches!(&r.cgroup, Ok(id) if placement(path_of(paths, *id))
                .container_id
                .is_some_and(|c| !want.is_empty() && c.starts_with(want)))
        });
        name_ok && cg_ok && container_ok
    };
    let mut kept: Vec<ProcessRow> = rows.into_iter().filter(|r| keep(r)).collect();
    let mut reader = reader;
    if q.pss {
        let reader = reader.as_deref_mut().ok_or(Missing::NotApplicable {
            why: "PSS is not recorded (smaps_rollup costs every target a page-table walk)",
        })?;
        // smaps_rollup costs each target a page-table walk: read it only for the rows
        // kept, and nothing else again.
        for r in &mut kept {
            r.rollup = Some(
                reader
                    .open_pid(r.pid)
                    .and_then(|dir| MemUsage::read_rollup(reader, &dir)),
            );
        }
    }
    let mut out: Vec<Row> = kept.iter().map(|r| Row::from(r, paths)).collect();
    if let Some(reader) = reader {
        add_limits(reader, &mut out);
    }
    if q.sort == SortKey::Pss && !q.pss {
        return Err(Missing::NotApplicable {
            why: "sorting by PSS needs --pss",
        });
    }
    sort(&mut out, q.sort, q.reverse);
    if q.tree {
        out = as_tree(out);
    }
    if let Some(n) = q.limit {
        out.truncate(n);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pid: i32, rss: Val<u64>) -> Row {
        Row {
            pid,
            ppid: 1,
            pid_in_namespace: Ok(pid as u64),
            pid_namespace_levels: Ok(1),
            name: format!("p{pid}"),
            state: "S".into(),
            uid: Ok(0),
            rss_bytes: rss,
            hwm_bytes: Ok(10),
            swap_bytes: Ok(0),
            minflt: 0,
            majflt: 0,
            fds: Ok(1),
            fd_soft_limit: Ok(Some(10)),
            fd_ratio: Some(0.1),
            voluntary_switches: Ok(0),
            involuntary_switches: Ok(0),
            run_queue_wait_ns: Ok(0),
            oom_score: Ok(0),
            cgroup: Ok("/".into()),
            container: None,
            limits: Err(Missing::Exited),
            depth: 0,
            pss_bytes: None,
            shared_bytes: None,
        }
    }

    #[test]
    fn issue_15_tree_puts_children_under_their_parent_in_sort_order() {
        let mut rows: Vec<Row> = [
            (1, 0, 5),
            (10, 1, 50),
            (11, 1, 70),
            (20, 10, 1),
            (30, 99, 9),
        ]
        .into_iter()
        .map(|(pid, ppid, rss)| Row {
            ppid,
            ..row(pid, Ok(rss))
        })
        .collect();
        sort(&mut rows, SortKey::Rss, false);
        let tree = as_tree(rows);
        let shape: Vec<(i32, usize)> = tree.iter().map(|r| (r.pid, r.depth)).collect();
        // 30's parent is not listed: a root, ordered among roots by RSS.
        assert_eq!(shape, [(30, 0), (1, 0), (11, 1), (10, 1), (20, 2)]);
        // A cycle (a PID reused as its own ancestor's parent) cannot loop.
        let cyc = vec![
            Row {
                ppid: 2,
                ..row(1, Ok(1))
            },
            Row {
                ppid: 1,
                ..row(2, Ok(1))
            },
        ];
        assert_eq!(as_tree(cyc).len(), 2);
    }

    #[test]
    fn numbers_descend_and_missing_sorts_last() {
        let mut rows = vec![row(1, Ok(5)), row(2, Err(Missing::Exited)), row(3, Ok(9))];
        sort(&mut rows, SortKey::Rss, false);
        assert_eq!(
            rows.iter().map(|r| r.pid).collect::<Vec<_>>(),
            vec![3, 1, 2]
        );
        sort(&mut rows, SortKey::Pid, false);
        assert_eq!(
            rows.iter().map(|r| r.pid).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        sort(&mut rows, SortKey::Pid, true);
        assert_eq!(rows[0].pid, 3);
    }

    #[test]
    fn cgroup_scope_is_a_path_prefix() {
        assert!(in_cgroup("/system.slice/a.service", "/system.slice"));
        assert!(in_cgroup("/system.slice", "/system.slice/"));
        assert!(!in_cgroup("/system.slicer", "/system.slice"));
        assert!(in_cgroup("/anything", "/"));
    }
}
