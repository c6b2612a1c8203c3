//! `syslens inspect`: every concept's lens for one process, in catalogue order.

use std::collections::BTreeSet;

use serde::Serialize;
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
    Ok(InspectReport {
        pid,
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
