//! The views asked about the past: `system --at`, `system --processes --at`,
//! `inspect --at`, `doctor --since`, `events`. Each finds the recorded samples of a
//! store and hands them to the same model and registry as the live view.

use std::time::SystemTime;

use serde::Serialize;
use syslens_probe::psi::parse_psi;
use syslens_probe::system::Vmstat;
use syslens_probe::table::ProcessRow;
use syslens_probe::{Files, Val};

use crate::lab::report::Series;

use crate::commands::doctor::DoctorReport;
use crate::commands::system::SystemReport;
use crate::model::doctor::{OomKill, PastWindow, Scope};
use crate::model::ptable::{self, Row, TableQuery};
use crate::model::system::{StateCounts, SysSample, SystemView};
use crate::record::codec::Table;
use crate::record::files::MAX_RECORDED_CGROUPS;
use crate::record::store::{boot_runs, unix_ns, BootRun, Recorded, SampleRef, Store, StoredEvent};
use crate::record::time::local;
use crate::render::safe::clean;

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
    cgroup: Option<&str>,
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
        cgroup,
    );
    if let Some(scope) = view.scope.as_ref().filter(|s| !s.exists) {
        return Err(format!(
            "cgroup {} is not in the sample of {} (a sample keeps the cgroups its processes \
             were in and their parents, at most {MAX_RECORDED_CGROUPS})",
            clean(&scope.path),
            note.sample_time
        ));
    }
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

/// At most this many samples of a window are decoded and plotted; a longer window is
/// plotted every Nth sample (and says so). HWM only grows, so its peak survives.
const PLOTTED_MAX: usize = 600;

/// One process of a window: its RSS and HWM over time.
#[derive(Debug, Serialize)]
pub struct WindowProcess {
    /// Its pid.
    pub pid: i32,
    /// Its command name, as last recorded.
    pub comm: String,
    /// The largest RSS of the plotted samples, in bytes.
    pub peak_rss_bytes: u64,
    /// The largest VmHWM recorded, in bytes.
    pub peak_hwm_bytes: u64,
    /// RSS, MiB, over seconds since the window's first sample.
    pub rss: Series,
    /// VmHWM, MiB.
    pub hwm: Series,
}

/// One event of a window.
#[derive(Debug, Serialize)]
pub struct WindowEvent {
    /// Seconds since the window's first sample.
    pub seconds: f64,
    /// When, in local time.
    pub time: String,
    /// Its kind (`oom-kill`, `exit`, ...).
    pub kind: String,
    /// What `watch` printed.
    pub line: String,
    /// Marked on the timeline: an OOM kill, or a death by a signal (a signal that
    /// was only delivered, and handled, is not).
    pub mark: Option<String>,
}

/// `report --since --until`: the window as series, events and the doctor's findings.
#[derive(Debug, Serialize)]
pub struct WindowReport {
    /// The window's first and last sample, local time.
    pub first: String,
    /// The last sample.
    pub last: String,
    /// Seconds between them.
    pub seconds: f64,
    /// What the window holds (samples, reboots).
    pub note: WindowNote,
    /// Every how many samples one is plotted.
    pub plotted_every: usize,
    /// Host memory: used, available, cached (MiB).
    pub memory: Vec<Series>,
    /// PSI some avg10 of memory, cpu, io (%).
    pub pressure: Vec<Series>,
    /// Page faults, major faults and context switches per second (host-wide).
    pub rates: Vec<Series>,
    /// The largest processes, by peak HWM.
    pub processes: Vec<WindowProcess>,
    /// The recorded events, oldest first.
    pub events: Vec<WindowEvent>,
    /// The doctor over the window.
    pub doctor: DoctorReport,
}

fn series(name: &str, x: &str, y: &str) -> Series {
    Series::line(name, x, y, Vec::new())
}

/// A store walked sample by sample, for `top --store`: the samples' index, loaded
/// once, and each sample decoded when it is shown.
#[derive(Debug)]
pub struct Replay {
    store: Store,
    samples: Vec<SampleRef>,
    /// The recording host's clock ticks per second (CPU times are in ticks).
    pub clock_ticks: f64,
    /// The recording host's page size (slabinfo counts pages).
    pub page_size: u64,
}

impl Replay {
    /// Every sample of `store`, oldest first; a store without one is refused.
    pub fn open(store: Store) -> Result<Replay, String> {
        let samples = store
            .samples_between(0, i64::MAX)
            .map_err(|e| e.to_string())?;
        if samples.is_empty() {
            return Err("the store holds no sample yet".into());
        }
        let clock_ticks = store
            .meta("clock_ticks")
            .and_then(|t| t.parse().ok())
            .unwrap_or(100.0);
        let page_size = store
            .meta("page_size")
            .and_then(|p| p.parse().ok())
            .unwrap_or(4096);
        Ok(Replay {
            store,
            samples,
            clock_ticks,
            page_size,
        })
    }

    /// The samples, oldest first (never empty).
    pub fn samples(&self) -> &[SampleRef] {
        &self.samples
    }

    /// The index of the sample at or before `t`; refused, saying where the store
    /// begins, when there is none.
    pub fn index_at(&self, t: SystemTime) -> Result<usize, String> {
        let after = self.samples.partition_point(|s| s.time <= t);
        after.checked_sub(1).ok_or_else(|| {
            format!(
                "nothing recorded at or before {}: the store begins at {}",
                local(t),
                local(self.samples[0].time)
            )
        })
    }

    /// Decodes sample `i`.
    pub fn load(&self, i: usize) -> Result<Recorded, String> {
        let s = self.samples.get(i).ok_or("no such sample")?;
        self.store.load(s.id).map_err(|e| e.to_string())
    }

    /// The events recorded after the sample before `i` and up to sample `i`: those
    /// of that moment (all those up to it for the first sample).
    pub fn events_of(&self, i: usize) -> Result<Vec<StoredEvent>, String> {
        let until = self.samples.get(i).ok_or("no such sample")?.time;
        let since = i
            .checked_sub(1)
            .map_or(0, |b| unix_ns(self.samples[b].time).saturating_add(1));
        self.store
            .events(since, unix_ns(until), None, None)
            .map_err(|e| e.to_string())
    }

    /// `inspect --at` of `pid` at sample `i`.
    pub fn inspect(&self, i: usize, pid: i32) -> Result<PastProcess, String> {
        let s = self.samples.get(i).ok_or("no such sample")?;
        inspect_at(&self.store, Some(s.time), pid)
    }
}

/// The uptime at a recorded moment, from /proc/stat's `btime` (the boot, in Unix
/// seconds): /proc/uptime itself is not recorded.
pub fn uptime_at(files: &mut impl Files, at: SystemTime) -> Val<std::time::Duration> {
    let stat = files.proc_file("stat")?;
    let btime = stat
        .split(|b| *b == b'\n')
        .find_map(|l| l.strip_prefix(b"btime "))
        .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok())
        .ok_or_else(|| syslens_probe::Missing::malformed("/proc/stat", "no btime line"))?;
    let boot = std::time::UNIX_EPOCH + std::time::Duration::from_secs(btime);
    at.duration_since(boot)
        .map_err(|_| syslens_probe::Missing::malformed("/proc/stat", "btime after the sample"))
}

/// What marks an event on the timeline, if anything.
fn mark_of(e: &StoredEvent) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(&e.json).ok()?;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    match e.kind.as_str() {
        "oom-kill" => Some("OOM kill".into()),
        "exit" => text("signal").map(|s| format!("died of {s}")),
        _ => None,
    }
}

/// `report`: the recorded window [since, until] as plots, events and findings, with
/// the `largest` processes by peak HWM (or RSS, where HWM was unreadable).
pub fn report_window(
    store: &Store,
    since: SystemTime,
    until: SystemTime,
    largest: usize,
) -> Result<WindowReport, String> {
    let (ids, note) = window(store, since, until)?;
    let (first, last) = (ids[0], ids[ids.len() - 1]);
    let x = format!("seconds since {}", local(first.time));
    let secs = |t: SystemTime| {
        t.duration_since(first.time)
            .unwrap_or_default()
            .as_secs_f64()
    };
    let mib = |v: u64| v as f64 / (1u64 << 20) as f64;
    let every = ids.len().div_ceil(PLOTTED_MAX);
    let mut memory = [
        series("used", &x, "MiB"),
        series("available", &x, "MiB"),
        series("cached", &x, "MiB"),
    ];
    let mut pressure = [
        series("memory some avg10", &x, "% of time stalled"),
        series("cpu some avg10", &x, "% of time stalled"),
        series("io some avg10", &x, "% of time stalled"),
    ];
    let mut rates = [
        series("page faults/s", &x, "per second"),
        series("major faults/s", &x, "per second"),
        series("context switches/s", &x, "per second"),
    ];
    // Processes by identity: boot, pid, start time.
    let mut procs: std::collections::HashMap<(Option<i64>, i32, u64), WindowProcess> =
        std::collections::HashMap::new();
    let mut before: Option<(SampleRef, SysSample)> = None;
    let at = std::time::Instant::now();
    // Every `every`th sample, and the last one always.
    let tail = ((ids.len() - 1) % every != 0).then_some(&last);
    for s in ids.iter().step_by(every).chain(tail) {
        let mut rec = store.load(s.id).map_err(|e| e.to_string())?;
        let t = secs(s.time);
        let now = SysSample::read(&mut rec.files, at);
        if let Ok(m) = &now.meminfo {
            let figures = [
                m.mem_total
                    .as_ref()
                    .ok()
                    .zip(m.mem_available.as_ref().ok())
                    .map(|(t, a)| t.saturating_sub(*a)),
                m.mem_available.as_ref().ok().copied(),
                m.cached.as_ref().ok().copied(),
            ];
            for (series, v) in memory.iter_mut().zip(figures) {
                if let Some(v) = v {
                    series.points.push([t, mib(v)]);
                }
            }
        }
        for (series, file) in
            pressure
                .iter_mut()
                .zip(["pressure/memory", "pressure/cpu", "pressure/io"])
        {
            if let Ok(p) = rec.files.proc_file(file).and_then(parse_psi) {
                series.points.push([t, p.some.avg10]);
            }
        }
        if let Some((b, then)) = before.as_ref().filter(|(b, _)| b.same_boot(s)) {
            let dt = s
                .time
                .duration_since(b.time)
                .unwrap_or_default()
                .as_secs_f64();
            let rate = |a: Option<u64>, z: Option<u64>| {
                a.zip(z)
                    .filter(|_| dt > 0.0)
                    .map(|(a, z)| z.saturating_sub(a) as f64 / dt)
            };
            let vm = |v: &SysSample, f: fn(&Vmstat) -> &Val<u64>| {
                v.vmstat
                    .as_ref()
                    .ok()
                    .and_then(|m| f(m).as_ref().ok().copied())
            };
            let ctxt = |v: &SysSample| v.stat.as_ref().ok().and_then(|s| s.ctxt.clone().ok());
            let figures = [
                rate(vm(then, |m| &m.pgfault), vm(&now, |m| &m.pgfault)),
                rate(vm(then, |m| &m.pgmajfault), vm(&now, |m| &m.pgmajfault)),
                rate(ctxt(then), ctxt(&now)),
            ];
            for (series, v) in rates.iter_mut().zip(figures) {
                if let Some(v) = v {
                    series.points.push([t, v]);
                }
            }
        }
        before = Some((*s, now));
        for r in &rec.table.rows {
            let (Ok(rss), hwm) = (r.rss.as_ref(), r.hwm.as_ref()) else {
                continue;
            };
            let p = procs
                .entry((s.boot, r.pid, r.start_time_ticks))
                .or_insert_with(|| WindowProcess {
                    pid: r.pid,
                    comm: String::new(),
                    peak_rss_bytes: 0,
                    peak_hwm_bytes: 0,
                    rss: series("RSS", &x, "MiB"),
                    hwm: series("HWM", &x, "MiB"),
                });
            p.comm = r.comm.as_str().to_owned();
            p.peak_rss_bytes = p.peak_rss_bytes.max(*rss);
            p.rss.points.push([t, mib(*rss)]);
            if let Ok(hwm) = hwm {
                p.peak_hwm_bytes = p.peak_hwm_bytes.max(*hwm);
                p.hwm.points.push([t, mib(*hwm)]);
            }
        }
    }
    let mut processes: Vec<WindowProcess> = procs.into_values().collect();
    processes.sort_by_key(|p| std::cmp::Reverse(p.peak_hwm_bytes.max(p.peak_rss_bytes)));
    processes.truncate(largest);
    let events = store
        .events(unix_ns(since), unix_ns(until), None, None)
        .map_err(|e| e.to_string())?
        .iter()
        .map(|e| {
            let when = crate::record::store::from_unix_ns(e.time_ns);
            WindowEvent {
                seconds: when
                    .duration_since(first.time)
                    .map_or_else(|e| -e.duration().as_secs_f64(), |d| d.as_secs_f64()),
                time: local(when),
                kind: e.kind.clone(),
                line: e.line.clone(),
                mark: mark_of(e),
            }
        })
        .collect();
    let (doctor, _) = doctor_window(store, since, until, Scope::default())?;
    Ok(WindowReport {
        first: local(first.time),
        last: local(last.time),
        seconds: secs(last.time),
        note,
        plotted_every: every,
        memory: memory.into(),
        pressure: pressure.into(),
        rates: rates.into(),
        processes,
        events,
        doctor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::store::Limits;
    use std::time::Duration;

    #[test]
    fn issue_17_a_process_identity_is_not_matched_across_a_reboot() {
        let limits = Limits {
            max_size: 1 << 30,
            retain: Duration::from_secs(86400),
        };
        let dir = tempfile::tempdir().unwrap();
        let (table, files) = crate::record::host_sample();
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
        let (_, note) = system_at(&store, Some(t0 + Duration::from_secs(3)), None).unwrap();
        assert!(note.line.contains("another boot"), "{}", note.line);
        let (_, note) = system_at(&store, None, None).unwrap();
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
