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
use crate::record::store::{unix_ns, Recorded, Store, StoredEvent};
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
        }
    }
}

/// The sample at or before `at` (the last one without), loaded.
fn sample(store: &Store, at: Option<SystemTime>) -> Result<(Recorded, SampleNote), String> {
    let found = store
        .sample_at(at.map(unix_ns))
        .map_err(|e| e.to_string())?;
    let Some((id, time)) = found else {
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
    let (mut rec, note) = sample(store, at)?;
    let previous = store
        .sample_before(rec.id)
        .map_err(|e| e.to_string())?
        .map(|id| store.load(id))
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
    let first_recorded = first_seen(store, &r, rec.time);
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

/// When the store first saw this process (same pid, same start time): a binary search
/// over the keyframes, each of which lists every process of its moment.
fn first_seen(store: &Store, r: &ProcessRow, until: SystemTime) -> Option<SystemTime> {
    let ids = store.samples_between(0, unix_ns(until)).ok()?;
    let has = |i: usize| -> bool {
        store.load(ids[i].0).is_ok_and(|s| {
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
    Some(ids[lo].1)
}

/// `doctor --since --until`: the rules over the recorded window.
pub fn doctor_window(
    store: &Store,
    since: SystemTime,
    until: SystemTime,
    scope: Scope,
) -> Result<(DoctorReport, usize), String> {
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
    let mut window = PastWindow::new(scope);
    let mut last = None;
    for (id, _) in &ids {
        let rec = store.load(*id).map_err(|e| e.to_string())?;
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
    Ok((crate::commands::doctor::report(&view), ids.len()))
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
