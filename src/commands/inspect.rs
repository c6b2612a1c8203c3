//! `syslens inspect`: every concept's lens for one process, in catalogue order.

use std::collections::BTreeSet;

use serde::Serialize;
use syslens_probe::container::{placement, Placement};
use syslens_probe::stat::{state_name, Stat};
use syslens_probe::{Missing, Reader, Val};

use crate::concepts::REGISTRY;
use crate::model::figure::ser_val;
use crate::model::figure::Section;
use crate::model::process::{ProcessView, ViewOptions};

/// The inspect report: the process, then one section per concept.
#[derive(Debug, Serialize)]
pub struct InspectReport {
    /// The process id.
    pub pid: i32,
    /// stat's command name.
    #[serde(serialize_with = "ser_val")]
    pub name: Val<String>,
    /// stat's state: the letter and its name, such as `S (sleeping)`.
    #[serde(serialize_with = "ser_val")]
    pub state: Val<String>,
    /// /proc/PID/cmdline, its NULs turned into spaces.
    #[serde(serialize_with = "ser_val")]
    pub cmdline: Val<String>,
    /// status's real uid.
    #[serde(serialize_with = "ser_val")]
    pub uid: Val<u64>,
    /// The parent's pid (stat's ppid; 0 for the host's init and for the init of a PID
    /// namespace seen from inside).
    #[serde(serialize_with = "ser_val")]
    pub ppid: Val<i64>,
    /// The parent's command name.
    #[serde(serialize_with = "ser_val")]
    pub parent_name: Val<String>,
    /// The children (every thread's /proc/PID/task/TID/children), with their names.
    #[serde(serialize_with = "ser_val")]
    pub children: Val<Vec<Relative>>,
    /// The pid inside the process's own PID namespace (NSpid's last entry) and how many
    /// namespaces see it.
    #[serde(serialize_with = "ser_val")]
    pub pid_in_namespace: Val<u64>,
    /// NSpid's entries: 1 on the host's PID namespace.
    #[serde(serialize_with = "ser_val")]
    pub pid_namespace_levels: Val<u64>,
    /// The container, pod and systemd unit its cgroup names.
    pub container: Option<Placement>,
    /// Other processes that matched `--name`, not shown.
    pub other_matches: Vec<i32>,
    /// Seconds between the first and last sample (rates come from these two).
    pub window_seconds: Option<f64>,
    /// Samples taken over the window (1 without one).
    pub samples: usize,
    /// Whether /proc/PID/smaps was read (once).
    pub smaps_read: bool,
    /// One section per concept, in catalogue order.
    pub sections: Vec<Section>,
    /// Every distinct reason a value is missing for lack of permission.
    pub unreadable: Vec<String>,
}

/// A parent or child: its pid and command name.
#[derive(Debug, Clone, Serialize)]
pub struct Relative {
    /// Its pid.
    pub pid: i32,
    /// Its command name (stat comm), or "?" when it left before it was read.
    pub name: String,
}

fn comm_of(reader: &mut Reader, pid: i32) -> Val<String> {
    let dir = reader.open_pid(pid)?;
    let stat = reader.read_pid(&dir, "stat").and_then(Stat::parse)?;
    Ok(stat.comm.as_str().to_owned())
}

/// Every thread's children (a child belongs to the thread that forked it).
fn children(reader: &mut Reader, view: &ProcessView) -> Val<Vec<Relative>> {
    let dir = reader.open_pid(view.pid)?;
    let tids: Vec<i32> = match &view.detail.threads {
        Ok(t) => t.iter().map(|t| t.tid).collect(),
        Err(_) => vec![view.pid],
    };
    let mut pids = Vec::new();
    for tid in tids {
        let Ok(task) = dir.task(tid) else { continue };
        let text = reader.read_pid(&task, "children")?;
        pids.extend(
            syslens_probe::parse::tokens(text)
                .filter_map(syslens_probe::parse::u64_dec)
                .filter_map(|p| i32::try_from(p).ok()),
        );
    }
    pids.sort_unstable();
    pids.dedup();
    Ok(pids
        .into_iter()
        .map(|pid| Relative {
            pid,
            name: comm_of(reader, pid).unwrap_or_else(|_| "?".into()),
        })
        .collect())
}

/// Collects the process view of `pid` and runs every concept's lens over it, in
/// catalogue order.
pub fn inspect(
    reader: &mut Reader,
    pid: i32,
    other_matches: Vec<i32>,
    opts: ViewOptions,
) -> Val<InspectReport> {
    let view = ProcessView::collect(reader, pid, opts)?;
    let sections: Vec<Section> = REGISTRY.iter().map(|c| (c.process)(&view)).collect();
    let stat = view.stat();
    let ppid = stat.clone().map(|s| s.ppid);
    let parent_name = match &ppid {
        Ok(p) if *p > 0 => comm_of(reader, *p as i32),
        Ok(_) => Err(Missing::NotApplicable {
            why: "no parent in this PID namespace (an init)",
        }),
        Err(e) => Err(e.clone()),
    };
    let children = children(reader, &view);
    let status = view.status();
    let container = view.detail.cgroups.as_ref().ok().and_then(|m| {
        m.iter()
            .map(|m| placement(&m.path))
            .find(|p| p.container_id.is_some())
            .or_else(|| {
                m.iter()
                    .map(|m| placement(&m.path))
                    .find(|p| p.unit.is_some())
            })
    });
    Ok(InspectReport {
        pid,
        ppid,
        parent_name,
        children,
        pid_in_namespace: status.clone().and_then(|s| s.ns_pid.clone()),
        pid_namespace_levels: status.and_then(|s| s.ns_levels.clone()),
        container,
        name: stat.clone().map(|s| s.comm.as_str().to_owned()),
        state: stat.map(|s| format!("{} ({})", s.state as char, state_name(s.state))),
        cmdline: view.detail.cmdline.clone(),
        uid: view.status().and_then(|s| s.uid_real.clone()),
        other_matches,
        window_seconds: view.window_secs(),
        samples: view.window.len(),
        smaps_read: view.smaps_read,
        unreadable: permission_reasons(&sections),
        sections,
    })
}

fn permission_reasons(sections: &[Section]) -> Vec<String> {
    let mut out = BTreeSet::new();
    let mut take = |m: &Missing| {
        if let Missing::Permission { path, grant } = m {
            // One line for all threads: /proc/1/task/59/syscall -> /proc/1/task/TID/syscall.
            let path = match path.split_once("/task/") {
                Some((head, tail)) => match tail.split_once('/') {
                    Some((_, file)) => format!("{head}/task/TID/{file}"),
                    None => path.clone(),
                },
                None => match path.split_once("/ns/") {
                    Some((head, _)) => format!("{head}/ns/*"),
                    None => path.clone(),
                },
            };
            out.insert(Missing::Permission { path, grant }.to_string());
        }
    };
    for s in sections {
        for f in &s.figures {
            if let Err(m) = &f.value {
                take(m);
            }
        }
        for t in &s.tables {
            for cell in t.rows.iter().flatten() {
                if let Err(m) = cell {
                    take(m);
                }
            }
        }
    }
    out.into_iter().collect()
}

/// PIDs whose command name (stat comm) or first argument's file name is `name`,
/// lowest first.
pub fn pids_named(reader: &mut Reader, name: &str) -> Val<Vec<i32>> {
    let mut pids = Vec::new();
    reader.pids(&mut pids)?;
    let me = std::process::id() as i32;
    Ok(pids
        .into_iter()
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            let Ok(dir) = reader.open_pid(pid) else { return false };
            if matches!(reader.read_pid(&dir, "stat").and_then(Stat::parse), Ok(s) if s.comm.as_str() == name) {
                return true;
            }
            matches!(reader.read_pid(&dir, "cmdline"), Ok(c) if argv0_name(c) == name.as_bytes())
        })
        .collect())
}

fn argv0_name(cmdline: &[u8]) -> &[u8] {
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or(b"");
    argv0.rsplit(|&b| b == b'/').next().unwrap_or(argv0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv0_is_the_file_name() {
        assert_eq!(argv0_name(b"/usr/sbin/nginx\0-g\0daemon off;\0"), b"nginx");
        assert_eq!(argv0_name(b""), b"");
    }
}
