//! The views asked about the past: `system --at`, `system --processes --at`,
//! `inspect --at`, `doctor --since`, `events`. Each finds the recorded samples of a
//! store and hands them to the same model and registry as the live view.

use std::time::SystemTime;

use serde::Serialize;
use syslens_probe::table::ProcessRow;

use crate::commands::doctor::DoctorReport;
use crate::commands::system::SystemReport;
use crate::model::doctor::{OomKill, PastWindow, Scope};
use crate::model::ptable::{self, Row, TableQuery};
use crate::model::system::{StateCounts, SystemView};
use crate::record::codec::Table;
use crate::record::store::{boot_runs, unix_ns, BootRun, Recorded, SampleRef, Store, StoredEvent};
use crate::record::time::local;

/// Which recorded sample answered, and how far it is from the time asked.
#[derive(Debug, Clone, Serialize)]
pub struct SampleNote {
    /// When the sample was taken (RFC 3339, UTC).
    pub sample_time: String,
    /// The time asked for (RFC 3339, UTC); none for "the last sample".
    pub asked: Option<String>,
    /// Seconds between the sample and the time asked.
    pub seconds_before: Option<f64>,
    /// One line for people.
    pub line: String,
    /// What a reboot between this sample and the one before it took away.
    pub reboot: Option<String>,
}

impl SampleNote {
    fn new(sample: SystemTime, asked: Option<SystemTime>) -> SampleNote {
        let before = asked.and_then(|a| a.duration_since(sample).ok());
        let line = match before {
            Some(d) => format!(
                "recorded sample of {} ({} before the time asked)",
                local(sample),
                crate::model::units::duration(d.as_secs_f64())
            ),
            None => format!("recorded sample of {} (the last one)", local(sample)),
        };
        SampleNote {
            sample_time: crate::model::units::rfc3339(sample),
            asked: asked.map(crate::model::units::rfc3339),
            seconds_before: before.map(|d| d.as_secs_f64()),
            line,
            reboot: None,
        }
    }

    /// Notes a reboot just before the sample: `what` it costs the view.
    fn rebooted(&mut self, what: &str) {
        let why = format!("the sample before it is of another boot: {what}");
        self.line = format!("{}; {why}", self.line);
        self.reboot = Some(why);
    }
}

/// What a window spanning reboots says: which boots it holds, which one the process
/// figures come from.
pub fn reboot_note(runs: &[BootRun]) -> Option<String> {
    let last = runs.last()?;
    (runs.len() > 1).then(|| {
        format!(
            "the window spans {} boot(s) before the one recorded from {}; processes are \
             matched within one boot only",
            runs.len() - 1,
            local(last.first)
        )
    })
}

/// The sample at or before `at` (the last one without), loaded.
fn sample(store: &Store, at: Option<SystemTime>) -> Result<(Recorded, SampleNote), String> {
    let found = store
        .sample_at(at.map(unix_ns))
        .map_err(|e| e.to_string())?;
    let Some(SampleRef { id, time, .. }) = found else {
        return Err(match (at, store.span().ok().flatten()) {
            (Some(a), Some((first, _, _))) => format!(
                "nothing recorded at or before {}: the store begins at {}",
                local(a),
                local(first)
            ),
            _ => "the store holds no sample yet".into(),
        });
    };
    let rec = store.load(id).map_err(|e| e.to_string())?;
    Ok((rec, SampleNote::new(time, at)))
}

/// Processes and threads by state, counted from a recorded table.
fn states(table: &Table) -> StateCounts {
    let mut c = StateCounts::default();
    for r in &table.rows {
        c.count(r.state, r.threads);
    }
    c
}

/// `system --at`: the system view of the sample at or before `at`, its rates over the
/// interval before it.
pub fn system_at(
    store: &Store,
    at: Option<SystemTime>,
) -> Result<(SystemReport, SampleNote), String> {
    let (mut rec, mut note) = sample(store, at)?;
    let before = store.sample_before(rec.id).map_err(|e| e.to_string())?;
    // Counters restart with a boot: rates across one would be nonsense.
    let before = before.filter(|b| {
        let same = b.boot == rec.boot;
        if !same {
            note.rebooted("no rates");
        }
        same
    });
    let previous = before
        .map(|b| store.load(b.id))
        .transpose()
        .map_err(|e| e.to_string())?;
    // The view measures its window with Instants: place the two samples as far apart
    // as they were recorded.
    let now = std::time::Instant::now();
    let mut previous = previous.map(|p| {
        let gap = rec.time.duration_since(p.time).unwrap_or_default();
        (p, now.checked_sub(gap).unwrap_or(now))
    });
    let counts = states(&rec.table);
    let page_size = store
        .meta("page_size")
        .and_then(|p| p.parse().ok())
        .unwrap_or(4096);
    let view = SystemView::recorded(
        (&mut rec.files, now),
        previous.as_mut().map(|(p, at)| (&mut p.files, *at)),
        counts,
        page_size,
    );
    Ok((crate::commands::system::report(view), note))
}

/// `system --processes --at`: the recorded table, filtered and sorted as live.
pub fn processes_at(
    store: &Store,
    at: Option<SystemTime>,
    q: &TableQuery,
) -> Result<(Vec<Row>, SampleNote), String> {
    let (rec, note) = sample(store, at)?;
    let rows =
        ptable::select(rec.table.rows, &rec.table.cgroups, q, None).map_err(|e| e.to_string())?;
    Ok((rows, note))
}

/// One process as recorded, for `inspect --at`.
#[derive(Debug, Serialize)]
pub struct PastProcess {
    /// Which sample.
    pub sample: SampleNote,
    /// The row `system --processes` shows.
    pub row: Row,
    /// User and system CPU time since it started, in seconds.
    pub cpu_user_seconds: f64,
    /// System CPU time, in seconds.
    pub cpu_system_seconds: f64,
    /// Threads.
    pub threads: u64,
    /// Nice value.
    pub nice: i64,
    /// RssAnon, RssFile, RssShmem in bytes (absent when status was not readable).
    pub rss_anon_bytes: Option<u64>,
    /// RssFile.
    pub rss_file_bytes: Option<u64>,
    /// RssShmem.
    pub rss_shmem_bytes: Option<u64>,
    /// Samples of this process in the store up to this one, and since when.
    pub first_recorded: Option<String>,
    /// Its recorded events up to the sample (OOM kill, fatal signals, EMFILE, exit).
    pub events: Vec<serde_json::Value>,
}

/// `inspect --at PID`.
pub fn inspect_at(store: &Store, at: Option<SystemTime>, pid: i32) -> Result<PastProcess, String> {
    let (rec, note) = sample(store, at)?;
    let Some(r) = rec.table.row(pid).cloned() else {
        return Err(format!(
            "no process {pid} in the {}",
            note.line.trim_start_matches("recorded ")
        ));
    };
    let hz = store
        .meta("clock_ticks")
        .and_then(|t| t.parse::<f64>().ok())
        .unwrap_or(100.0);
    let q = TableQuery {
        sort: ptable::SortKey::Pid,
        reverse: false,
        name: None,
        cgroup: None,
        container: None,
        pss: false,
        limit: None,
        tree: false,
    };
    let row = ptable::select(vec![r.clone()], &rec.table.cgroups, &q, None)
        .map_err(|e| e.to_string())?
        .pop()
        .ok_or("the row did not survive selection")?;
    let first_recorded = first_seen(store, &r, &rec);
    let since = first_recorded.map_or(0, unix_ns);
    // Its exit, OOM kill or fatal signal comes after the last sample that holds it:
    // the events run to the time asked (all of them for the last sample).
    let events = store
        .events(since, at.map_or(i64::MAX, unix_ns), None, Some(pid))
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter_map(|e| serde_json::from_str(&e.json).ok())
        .collect();
    Ok(PastProcess {
        sample: note,
        row,
        cpu_user_seconds: r.utime_ticks as f64 / hz,
        cpu_system_seconds: r.stime_ticks as f64 / hz,
        threads: r.threads,
        nice: r.nice,
        rss_anon_bytes: r.rss_anon.clone().ok(),
        rss_file_bytes: r.rss_file.clone().ok(),
        rss_shmem_bytes: r.rss_shmem.clone().ok(),
        first_recorded: first_recorded.map(local),
        events,
    })
}

/// When the store first saw this process (same pid, same start time, same boot): a
/// binary search over the samples of `rec`'s boot up to it.
fn first_seen(store: &Store, r: &ProcessRow, rec: &Recorded) -> Option<SystemTime> {
    let ids: Vec<SampleRef> = store
        .samples_between(0, unix_ns(rec.time))
        .ok()?
        .into_iter()
        .filter(|s| s.boot == rec.boot)
        .collect();
    let has = |i: usize| -> bool {
        store.load(ids[i].id).is_ok_and(|s| {
            s.table
                .row(r.pid)
                .is_some_and(|x| x.start_time_ticks == r.start_time_ticks)
        })
    };
    // Present from some sample on, through `until`: the first index where it is.
    let (mut lo, mut hi) = (0, ids.len().checked_sub(1)?);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if has(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(ids[lo].time)
}

/// What a window of the store held.
#[derive(Debug, Clone, Serialize)]
pub struct WindowNote {
    /// Samples in the window.
    pub samples: usize,
    /// Samples the process figures come from: those of the last boot in the window.
    pub samples_of_last_boot: usize,
    /// Said when the window spans a reboot.
    pub reboot: Option<String>,
}

/// The samples in [since, until], refused with the reason when there are none, and
/// what the window holds.
pub fn window(
    store: &Store,
    since: SystemTime,
    until: SystemTime,
) -> Result<(Vec<SampleRef>, WindowNote), String> {
    let ids = store
        .samples_between(unix_ns(since), unix_ns(until))
        .map_err(|e| e.to_string())?;
    if ids.is_empty() {
        return Err(format!(
            "nothing recorded between {} and {}",
            local(since),
            local(until)
        ));
    }
    let runs = boot_runs(&ids);
    let last_boot = ids
        .iter()
        .filter(|s| s.same_boot(&ids[ids.len() - 1]))
        .count();
    let note = WindowNote {
        samples: ids.len(),
        samples_of_last_boot: last_boot,
        reboot: reboot_note(&runs),
    };
    Ok((ids, note))
}

/// `doctor --since --until`: the rules over the recorded window. Across a reboot,
/// the process trends come from the last boot's samples (a pid and start time of an
/// earlier boot is another process); the OOM kills from the whole window.
pub fn doctor_window(
    store: &Store,
    since: SystemTime,
    until: SystemTime,
    scope: Scope,
) -> Result<(DoctorReport, WindowNote), String> {
    let (ids, note) = window(store, since, until)?;
    let mut window = PastWindow::new(scope);
    let mut last = None;
    for s in &ids[ids.len() - note.samples_of_last_boot..] {
        let rec = store.load(s.id).map_err(|e| e.to_string())?;
        window.add(rec.time, &rec.table.rows, &rec.table.cgroups);
        last = Some(rec);
    }
    let mut last = last.ok_or("no sample")?;
    let ooms = store
        .events(unix_ns(since), unix_ns(until), Some("oom-kill"), None)
        .map_err(|e| e.to_string())?
        .iter()
        .filter_map(oom_kill)
        .collect();
    let view = window
        .finish(&mut last.files, ooms)
        .map_err(|e| e.to_string())?;
    Ok((crate::commands::doctor::report(&view), note))
}

/// The doctor's OOM kill from a recorded `oom-kill` event.
fn oom_kill(e: &StoredEvent) -> Option<OomKill> {
    let v: serde_json::Value = serde_json::from_str(&e.json).ok()?;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let int = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
    let when = crate::record::store::from_unix_ns(e.time_ns);
    Some(OomKill {
        pid: int("victim_pid")?,
        comm: text("victim_comm").unwrap_or_default(),
        anon_rss_kb: int("anon_rss_bytes").map(|b| b / 1024),
        memcg: text("cgroup"),
        // How long ago from now; a kill older than the rule's day of recency is inside
        // the window asked for, so it goes without an age rather than unreported.
        seconds_ago: SystemTime::now()
            .duration_since(when)
            .ok()
            .map(|d| d.as_secs_f64())
            .filter(|&s| s <= 86400.0),
        trigger: text("trigger_comm")
            .map(|c| (c, int("trigger_pid").and_then(|p| i32::try_from(p).ok()))),
        // Stored as watch names it; the rules read the kernel's names.
        constraint: text("constraint").map(|c| match c.as_str() {
            "cgroup" => "CONSTRAINT_MEMCG".into(),
            "global" => "CONSTRAINT_NONE".into(),
            other => format!("CONSTRAINT_{}", other.to_uppercase()),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::files::SampleFiles;
    use crate::record::store::Limits;
    use std::time::Duration;
    use syslens_probe::table::{ScanOptions, Scanner};

    #[test]
    fn issue_17_a_process_identity_is_not_matched_across_a_reboot() {
        let limits = Limits {
            max_size: 1 << 30,
            retain: Duration::from_secs(86400),
        };
        let dir = tempfile::tempdir().unwrap();
        let mut scanner = Scanner::new(syslens_probe::Reader::host().unwrap());
        let rows = scanner.scan(ScanOptions::default()).unwrap().to_vec();
        let table = Table {
            rows,
            cgroups: scanner.cgroup_paths().to_vec(),
        };
        let files = SampleFiles::read(scanner.reader());
        let me = std::process::id() as i32;
        let t0 = SystemTime::now() - Duration::from_secs(60);
        // The same (pid, start time) in two boots: in the second it is another process.
        let mut store = Store::open_writer(dir.path(), limits).unwrap();
        for (boot, from) in [("boot-a", 0), ("boot-b", 3)] {
            store.set_boot(boot).unwrap();
            for i in from..from + 3 {
                let at = t0 + Duration::from_secs(i);
                store.write(at, &table, &files, &[], &[], limits).unwrap();
            }
        }
        drop(store);
        let store = Store::open_reader(dir.path()).unwrap();
        let past = inspect_at(&store, None, me).unwrap();
        assert_eq!(
            past.first_recorded.as_deref(),
            Some(local(t0 + Duration::from_secs(3)).as_str()),
            "first seen in the second boot, not the first"
        );
        // The first sample of the second boot: no rates across the reboot.
        let (_, note) = system_at(&store, Some(t0 + Duration::from_secs(3))).unwrap();
        assert!(note.line.contains("another boot"), "{}", note.line);
        let (_, note) = system_at(&store, None).unwrap();
        assert!(note.reboot.is_none(), "{}", note.line);
        let (_, note) = doctor_window(&store, t0, SystemTime::now(), Scope::default()).unwrap();
        assert_eq!((note.samples, note.samples_of_last_boot), (6, 3));
        assert!(
            note.reboot
                .as_deref()
                .unwrap_or("")
                .contains("spans 1 boot"),
            "{note:?}"
        );
    }
}
