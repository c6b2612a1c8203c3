//! `syslens record`: the history. Every interval it stores the process table (the
//! cheap tier every lens reads), the system-wide files the system view and the doctor
//! parse, and the notable events of `watch` (OOM kills with the victim's last recorded
//! sample, fatal signals, exits with big peaks, EMFILE, stalls), until SIGINT or
//! SIGTERM. The views ask it about the past through [`store::Store`].

pub mod codec;
pub mod files;
pub mod store;
pub mod time;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use syslens_probe::table::{ScanOptions, Scanner};
use syslens_probe::Reader;

use crate::model::event::Event;
use crate::render::safe::clean;
use crate::watch::{WatchOptions, Watcher};
use codec::Table;
use files::SampleFiles;
use store::{unix_ns, Limits, Store, StoreError, StoredEvent};

/// How a recorder runs.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// The store's directory.
    pub store: PathBuf,
    /// Time between two samples.
    pub interval: Duration,
    /// Size and age limits of the store.
    pub limits: Limits,
    /// Stop after this long; `None`: until SIGINT / SIGTERM.
    pub duration: Option<Duration>,
    /// The costly event sources recorded too (see [`costly_kinds`]).
    pub with: Vec<&'static str>,
}

/// The default store: /var/lib/syslens as root, $XDG_STATE_HOME/syslens (or
/// ~/.local/state/syslens) otherwise.
pub fn default_store() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/syslens");
    }
    match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("syslens"),
        None => std::env::var_os("HOME")
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
            .join(".local/state/syslens"),
    }
}

/// What a recording did, for its caller and tests.
#[derive(Debug, Default)]
pub struct Recording {
    /// Samples written.
    pub samples: u64,
    /// Events stored one by one.
    pub events: u64,
}

/// Records until `stop` is set or the duration passes. Errors that end the recording
/// (the lock held, a full disk) come back as [`StoreError`]; the store stays sound.
pub fn run(
    opts: &RecordOptions,
    reader: Reader,
    err: &mut dyn Write,
    stop: &Arc<AtomicBool>,
) -> Result<Recording, StoreError> {
    let mut reader = reader;
    let mut store = open_store(&opts.store, opts.limits, opts.interval, &mut reader, err)?;
    let events_reader = Reader::new(reader.root())?;
    let mut watcher = match Watcher::open(&event_options(&opts.with), events_reader) {
        Ok(w) => Some(w),
        Err(e) => {
            let _ = writeln!(
                err,
                "syslens record: no events ({e}); recording samples only"
            );
            None
        }
    };
    if let Some(w) = &watcher {
        for u in w.unavailable().iter().filter(|u| !u.off) {
            let _ = writeln!(
                err,
                "syslens record: events unavailable: {}: {}",
                u.what,
                clean(&u.why)
            );
        }
    }
    let _ = writeln!(
        err,
        "syslens record: recording into {} every {}; Ctrl-C or SIGTERM ends it",
        clean(&opts.store.display().to_string()),
        crate::model::units::duration(opts.interval.as_secs_f64())
    );
    let mut scanner = Scanner::new(reader);
    // Files kept open and re-read in place; a process that has not run since its last
    // read is re-read only every 12th pass (its figures cannot have moved, save what
    // another process changes: its nice, its parent), the slow tier (limits, oom_score,
    // cgroup) as often. Most of a host sleeps through most intervals.
    let scan = ScanOptions {
        keep_open: true,
        slow_every: 12,
        idle_every: 12,
        ..ScanOptions::default()
    };
    let mut recording = Recording::default();
    let mut last = Table::default();
    let mut notable: Vec<StoredEvent> = Vec::new();
    let mut routine: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut polled: Vec<Event> = Vec::new();
    let started = Instant::now();
    let mut next = Instant::now();
    loop {
        let done =
            stop.load(Ordering::Relaxed) || opts.duration.is_some_and(|d| started.elapsed() >= d);
        if done {
            if let Some(w) = watcher.as_mut() {
                w.finish(&mut polled);
            }
        }
        if let Some(w) = watcher.as_mut() {
            w.poll(&mut polled);
        }
        for e in polled.drain(..) {
            if e.notable {
                notable.push(stored(&e, &last));
            } else {
                *routine.entry(e.kind).or_default() += 1;
            }
        }
        if Instant::now() >= next || done {
            let now = SystemTime::now();
            let table = match scanner.scan(scan) {
                Ok(rows) => Table {
                    rows: rows.to_vec(),
                    cgroups: Vec::new(),
                },
                Err(e) => {
                    let _ = writeln!(err, "syslens record: cannot list processes: {e}");
                    Table::default()
                }
            };
            let table = Table {
                cgroups: scanner.cgroup_paths().to_vec(),
                ..table
            };
            let mut files = SampleFiles::read(scanner.reader());
            files.read_cgroups(scanner.reader(), table.paths_in_use());
            let counts: Vec<(&str, u64)> = routine.iter().map(|(k, n)| (*k, *n)).collect();
            store.write(now, &table, &files, &notable, &counts, opts.limits)?;
            recording.samples += 1;
            recording.events += notable.len() as u64;
            notable.clear();
            routine.clear();
            last = table;
            // A late sample does not make the next ones bunch up.
            next += opts.interval;
            if next < Instant::now() {
                next = Instant::now() + opts.interval;
            }
        }
        if done {
            return Ok(recording);
        }
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(250));
        match watcher.as_ref() {
            // A ring can report readable with nothing in it (signal_generate on 6.18):
            // at most 100 passes a second, whatever it says.
            Some(w) => w.wait_paced(wait, Duration::from_millis(10).min(wait)),
            None => std::thread::sleep(wait),
        }
    }
}

/// Opens the store for a recorder and notes what its samples need to be read back:
/// the interval, the clock tick and page size, and the boot they are of.
fn open_store(
    dir: &std::path::Path,
    limits: Limits,
    interval: Duration,
    reader: &mut Reader,
    err: &mut dyn Write,
) -> Result<Store, StoreError> {
    let mut store = Store::open_writer(dir, limits)?;
    store.set_meta("interval_ms", &interval.as_millis().to_string())?;
    store.set_meta(
        "clock_ticks",
        &rustix::param::clock_ticks_per_second().to_string(),
    )?;
    store.set_meta("page_size", &rustix::param::page_size().to_string())?;
    // A process is (pid, start time since boot): without the boot id, its samples are
    // never matched with another run's.
    match reader.read_proc("sys/kernel/random/boot_id") {
        Ok(id) => store.set_boot(String::from_utf8_lossy(id).trim())?,
        Err(e) => {
            let _ = writeln!(
                err,
                "syslens record: no boot id ({e}); these samples are not matched with another run's"
            );
        }
    }
    Ok(store)
}

/// The costly event sources `asked` names (each once), or why one cannot be asked for:
/// unknown, or recorded anyway.
pub fn costly_kinds(asked: &[String]) -> Result<Vec<&'static str>, String> {
    let all = crate::watch::sources(&[]);
    let costly: Vec<&'static str> = all
        .iter()
        .filter(|s| s.cost.why().is_some())
        .map(|s| s.kind)
        .collect();
    let mut out: Vec<&'static str> = Vec::new();
    for a in asked {
        match all.iter().find(|s| s.kind == a) {
            Some(s) if s.cost.why().is_some() => {
                if !out.contains(&s.kind) {
                    out.push(s.kind);
                }
            }
            Some(_) => {
                return Err(format!(
                    "{a} is recorded anyway; name {}",
                    costly.join(", ")
                ))
            }
            None => {
                return Err(format!(
                    "no event kind {a}; the costly ones are {}",
                    costly.join(", ")
                ))
            }
        }
    }
    Ok(out)
}

/// The sources a recorder opens: every default one, and of the costly ones (off by
/// default) those in `with`.
fn event_options(with: &[&'static str]) -> WatchOptions {
    let kinds = if with.is_empty() {
        // No kind named: the watcher's own default, every source but the costly ones.
        Vec::new()
    } else {
        crate::watch::sources(&[])
            .iter()
            .filter(|s| s.cost.why().is_none() || with.contains(&s.kind))
            .map(|s| s.kind.to_owned())
            .collect()
    };
    WatchOptions {
        concepts: Vec::new(),
        pid: None,
        cgroup: None,
        duration: None,
        kinds,
        json: true,
        // The summary kinds (kernel-lock, extfrag, and those asked for) are stored a
        // minute at a time: notable rows kept, the rest counted.
        summary_every: Duration::from_secs(60),
    }
}

/// An event as stored: an OOM kill carries its victim's last recorded sample, so the
/// question "how large was it just before" is answered from the store alone.
fn stored(e: &Event, last: &Table) -> StoredEvent {
    let mut json = serde_json::to_value(e).unwrap_or(serde_json::Value::Null);
    if e.kind == "oom-kill" {
        let victim = e
            .fields
            .iter()
            .find(|(k, _)| *k == "victim_pid")
            .and_then(|(_, v)| serde_json::to_value(v).ok())
            .and_then(|v| v.as_i64())
            .and_then(|p| i32::try_from(p).ok());
        if let (Some(row), serde_json::Value::Object(map)) =
            (victim.and_then(|p| last.row(p)), &mut json)
        {
            let ok = |v: &syslens_probe::Val<u64>| v.as_ref().ok().copied();
            map.insert(
                "victim_last_sample".into(),
                serde_json::json!({
                    "comm": row.comm.as_str(),
                    "rss_bytes": ok(&row.rss),
                    "hwm_bytes": ok(&row.hwm),
                    "swap_bytes": ok(&row.swap),
                    "oom_score": ok(&row.oom_score),
                    "cgroup": last.cgroup(row).ok(),
                }),
            );
        }
    }
    StoredEvent {
        time_ns: unix_ns(e.time),
        concept: e.concept.slug().to_owned(),
        kind: e.kind.to_owned(),
        pid: e.subject,
        related: e.related,
        line: e.line.clone(),
        json: json.to_string(),
    }
}

/// Writes `samples` samples `interval` apart, ending now, into a new store: the live
/// process table and files read once, then aged sample by sample (CPU time, faults and
/// RSS moving as a busy host's do). For the benchmarks of a day-long store; the
/// hidden `__record-synth` command.
pub fn synthesize(
    store_dir: &std::path::Path,
    samples: u64,
    interval: Duration,
    reader: Reader,
) -> Result<(), StoreError> {
    let limits = Limits {
        max_size: u64::MAX,
        retain: Duration::from_secs(u64::MAX / 4),
    };
    let mut reader = reader;
    let mut store = open_store(
        store_dir,
        limits,
        interval,
        &mut reader,
        &mut std::io::sink(),
    )?;
    let mut scanner = Scanner::new(reader);
    let rows = scanner
        .scan(ScanOptions::default())
        .map_err(|e| StoreError::Other(e.to_string()))?
        .to_vec();
    let mut table = Table {
        rows,
        cgroups: scanner.cgroup_paths().to_vec(),
    };
    let mut files = SampleFiles::read(scanner.reader());
    files.read_cgroups(scanner.reader(), table.paths_in_use());
    let start = SystemTime::now() - interval * samples as u32;
    for i in 0..samples {
        // One process in eight runs each interval (a deterministic choice, so runs
        // of the bench compare).
        for (j, r) in table.rows.iter_mut().enumerate() {
            if (j as u64 + i) % 8 == 0 {
                r.utime_ticks += 3;
                r.stime_ticks += 1;
                r.minflt += 40;
                if let Ok(rss) = r.rss.as_mut() {
                    *rss = (*rss + 4096 * (i % 5)).saturating_sub(8192);
                }
                if let Ok(v) = r.voluntary_switches.as_mut() {
                    *v += 12;
                }
            }
        }
        store.write(
            start + interval * i as u32,
            &table,
            &files,
            &[],
            &[],
            limits,
        )?;
    }
    Ok(())
}

/// This host's process table and recorded files, read once: what the store tests write.
#[cfg(test)]
pub(crate) fn host_sample() -> (Table, SampleFiles) {
    let mut scanner = Scanner::new(syslens_probe::Reader::host().expect("the host's /proc"));
    let rows = scanner
        .scan(ScanOptions::default())
        .expect("list processes")
        .to_vec();
    let table = Table {
        rows,
        cgroups: scanner.cgroup_paths().to_vec(),
    };
    let files = SampleFiles::read(scanner.reader());
    (table, files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::ConceptId;

    /// issue 17: an OOM kill is stored with its victim's last recorded sample, so
    /// "how large was it just before" is answered from the store alone.
    #[test]
    fn issue_17_an_oom_kill_is_stored_with_the_victims_last_sample() {
        let (table, _) = host_sample();
        let me = std::process::id() as i32;
        let row = table.row(me).expect("this test in its own sample");
        let kill = |victim: i32| {
            let e = Event::new(
                SystemTime::now(),
                ConceptId::SwapOom,
                "oom-kill",
                Some(victim),
            )
            .with("victim_pid", Some(victim));
            let stored = stored(&e, &table);
            serde_json::from_str::<serde_json::Value>(&stored.json).unwrap()
        };
        let json = kill(me);
        let last = &json["victim_last_sample"];
        assert_eq!(last["comm"], row.comm.as_str(), "{json}");
        assert_eq!(last["rss_bytes"], *row.rss.as_ref().unwrap(), "{json}");
        assert!(last["cgroup"].is_string(), "{json}");
        // A victim the last sample did not hold: no made-up sample.
        let gone = kill(i32::MAX);
        assert!(gone.get("victim_last_sample").is_none(), "{gone}");
        assert_eq!(gone["victim_pid"], i32::MAX);
    }
}
