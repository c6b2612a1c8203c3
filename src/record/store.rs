//! The store: one directory holding an SQLite database (WAL) and a lock file. Samples
//! are rows whose blobs hold the process table ([`super::codec`]) and the system files
//! ([`super::files`]), each encoded against the keyframe that opens its group; events
//! are plain rows, so `sqlite3 STORE/syslens.db 'select * from events'` answers a
//! question without syslens. One transaction per interval: a SIGKILL loses at most the
//! interval being written.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::codec::{self, Table};
use super::files::SampleFiles;

/// The schema this syslens writes and reads: 2 added the boot id of each sample.
pub const SCHEMA_VERSION: i64 = 2;
/// The database's file name inside the store directory.
pub const DB_FILE: &str = "syslens.db";
/// The lock a recorder holds for as long as it runs.
const LOCK_FILE: &str = "lock";
/// A keyframe opens each group of this many samples; the others encode against it.
const KEYFRAME_EVERY: i64 = 60;

/// Nanoseconds since the Unix epoch (what the store keeps as time).
pub fn unix_ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The time of a stored nanosecond count.
pub fn from_unix_ns(ns: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

/// Why a store could not be opened or written.
#[derive(Debug)]
pub enum StoreError {
    /// Another recorder holds the store.
    Locked {
        /// The recorder's pid, from the lock file (None: unreadable).
        pid: Option<u32>,
    },
    /// The schema is one this syslens does not read.
    Schema {
        /// The schema version the store has.
        found: i64,
    },
    /// The directory holds no store.
    NoStore(PathBuf),
    /// The disk (or the file system's quota) is full.
    Full(String),
    /// Anything else SQLite or the file system said.
    Other(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Locked { pid: Some(pid) } => {
                write!(f, "the store is being recorded by pid {pid}")
            }
            StoreError::Locked { pid: None } => {
                write!(f, "the store is being recorded by another process")
            }
            StoreError::Schema { found: 0 } => write!(
                f,
                "the store has no readable schema version, older than this syslens reads \
                 ({SCHEMA_VERSION}); record into a new directory"
            ),
            StoreError::Schema { found } if *found < SCHEMA_VERSION => write!(
                f,
                "the store has schema version {found}, older than this syslens reads \
                 ({SCHEMA_VERSION}); `syslens record --store` on it migrates it (a \
                 reader never writes)"
            ),
            StoreError::Schema { found } => write!(
                f,
                "the store has schema version {found}, made by a newer syslens \
                 (this one reads {SCHEMA_VERSION})"
            ),
            StoreError::NoStore(dir) => {
                write!(
                    f,
                    "no store in {} (syslens record makes one)",
                    dir.display()
                )
            }
            StoreError::Full(e) => write!(f, "the disk is full ({e}); recording stopped"),
            StoreError::Other(e) => f.write_str(e),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full(e.to_string()),
            _ => StoreError::Other(e.to_string()),
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> StoreError {
        if e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT) {
            StoreError::Full(e.to_string())
        } else {
            StoreError::Other(e.to_string())
        }
    }
}

/// One recorded event, as stored.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// When it happened, ns since the epoch.
    pub time_ns: i64,
    /// The concept's id.
    pub concept: String,
    /// The kind (`oom-kill`, `signal`, ...).
    pub kind: String,
    /// The process it happened to.
    pub pid: Option<i32>,
    /// Another process it involves.
    pub related: Option<i32>,
    /// The text line `watch` prints.
    pub line: String,
    /// The NDJSON object `watch --json` prints.
    pub json: String,
}

/// One recorded sample, decoded.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Its row id.
    pub id: i64,
    /// When it was taken.
    pub time: SystemTime,
    /// The process table.
    pub table: Table,
    /// The system files.
    pub files: SampleFiles,
    /// The boot it was recorded in (a row of `boots`); `None`: not known (recorded by
    /// schema 1, or the boot id was unreadable).
    pub boot: Option<i64>,
}

/// A recorded sample, not decoded: which it is, when, and in which boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRef {
    /// Its row id.
    pub id: i64,
    /// When it was taken.
    pub time: SystemTime,
    /// Its boot (see [`Recorded::boot`]).
    pub boot: Option<i64>,
}

impl SampleRef {
    /// Whether a process identity (pid, start time) of this sample is the same
    /// process in `other`: only within one boot, since start times count from the
    /// boot and pids restart with it. Samples recorded without a boot id (schema 1)
    /// are one boot among themselves, as schema 1 read them, and never a known one.
    pub fn same_boot(&self, other: &SampleRef) -> bool {
        self.boot == other.boot
    }
}

/// The run of samples of one boot inside a window.
#[derive(Debug, Clone, Copy)]
pub struct BootRun {
    /// The boot (`None`: not known).
    pub boot: Option<i64>,
    /// Its first and last sample in the window.
    pub first: SystemTime,
    /// Its last sample in the window.
    pub last: SystemTime,
}

/// How large and how old a store may grow.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes on disk (database and its write-ahead log).
    pub max_size: u64,
    /// Samples and events older than this are dropped.
    pub retain: Duration,
}

/// The keyframe the writer encodes against.
#[derive(Debug)]
struct Keyframe {
    id: i64,
    table: Table,
    files: SampleFiles,
    samples: i64,
}

/// An open store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    dir: PathBuf,
    /// Held by a recorder; released when the store is dropped.
    lock: Option<File>,
    keyframe: Option<Keyframe>,
    /// The writer's boot (a row of `boots`), set by [`Store::set_boot`].
    boot: Option<i64>,
    /// The last keyframe a reader decoded, reused by the samples of its group.
    cached: std::cell::RefCell<Option<(i64, Table, SampleFiles)>>,
    /// The most one interval's write has added on disk (the log holds a whole
    /// keyframe until it is checkpointed): trimming leaves that much room below the
    /// limit, so the store stays under it between a write and the trim after it.
    largest_write: u64,
}

/// A [`SampleRef`] from a row of (id, time_ns, boot).
fn sample_ref(r: &rusqlite::Row<'_>) -> rusqlite::Result<SampleRef> {
    Ok(SampleRef {
        id: r.get(0)?,
        time: from_unix_ns(r.get(1)?),
        boot: r.get(2)?,
    })
}

/// The runs of one boot each in `samples` (oldest first): more than one when the
/// window spans a reboot, or samples recorded without a boot id.
pub fn boot_runs(samples: &[SampleRef]) -> Vec<BootRun> {
    let mut runs: Vec<BootRun> = Vec::new();
    for s in samples {
        match runs.last_mut() {
            Some(run) if run.boot == s.boot => run.last = s.time,
            _ => runs.push(BootRun {
                boot: s.boot,
                first: s.time,
                last: s.time,
            }),
        }
    }
    runs
}

/// The first schema; a new store is made with it and then every migration.
const SCHEMA_V1: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE samples (
    id INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    keyframe INTEGER,            -- NULL: a keyframe; else the id it is encoded against
    processes INTEGER NOT NULL,
    procs BLOB NOT NULL,
    files BLOB NOT NULL
);
CREATE INDEX samples_by_time ON samples (time_ns);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    concept TEXT NOT NULL,
    kind TEXT NOT NULL,
    pid INTEGER,
    related INTEGER,
    line TEXT NOT NULL,
    json TEXT NOT NULL
);
CREATE INDEX events_by_time ON events (time_ns);
CREATE INDEX events_by_kind ON events (kind, time_ns);
-- Routine events (every exit, every exec) are counted per sample, not kept one by one.
CREATE TABLE event_counts (
    sample INTEGER NOT NULL,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (sample, kind)
);
";

/// The migrations, each taking the store from the version before it to its own.
/// Older samples keep a NULL boot: not known, never matched with another boot.
const MIGRATIONS: &[(i64, &str)] = &[(
    2,
    "CREATE TABLE boots (id INTEGER PRIMARY KEY, boot_id TEXT NOT NULL UNIQUE);
     ALTER TABLE samples ADD COLUMN boot INTEGER REFERENCES boots (id);",
)];

impl Store {
    /// Opens (or creates) the store in `dir` for a recorder: takes the lock, or says
    /// which pid holds it.
    pub fn open_writer(dir: &Path, limits: Limits) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)?;
        let mut lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))?;
        if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut text = String::new();
            let _ = lock.read_to_string(&mut text);
            return Err(StoreError::Locked {
                pid: text.trim().parse().ok(),
            });
        }
        lock.set_len(0)?;
        lock.rewind()?;
        write!(lock, "{}", std::process::id())?;
        let conn = Connection::open(dir.join(DB_FILE))?;
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        let ours: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'meta'",
            [],
            |r| r.get(0),
        )?;
        if tables > 0 && ours == 0 {
            return Err(StoreError::Other(format!(
                "{} is a database syslens did not make; it is left alone",
                dir.join(DB_FILE).display()
            )));
        }
        // auto_vacuum must be set before the first table: it lets a trimmed store
        // give its pages back to the file system.
        conn.execute_batch(
            "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL; \
             PRAGMA synchronous = NORMAL;",
        )?;
        // The log is checkpointed and cut well before it could matter to max-size: a
        // fortieth of it, at least 4 pages (16 pages, 64 KiB, was a quarter of a 256 KiB
        // store: the log and the checkpoint's copy of it overshot the limit).
        let log_pages = (limits.max_size / 4096 / 40).clamp(4, 1000);
        conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = {log_pages}; PRAGMA journal_size_limit = {};",
            log_pages * 4096
        ))?;
        if ours == 0 {
            conn.execute_batch(SCHEMA_V1)?;
            conn.execute(
                "INSERT INTO meta VALUES ('schema_version', '1'), ('created_ns', ?1)",
                [unix_ns(SystemTime::now()).to_string()],
            )?;
        }
        let mut store = Store {
            conn,
            dir: dir.to_owned(),
            lock: Some(lock),
            keyframe: None,
            largest_write: 0,
            boot: None,
            cached: Default::default(),
        };
        store.migrate()?;
        store.check_schema()?;
        Ok(store)
    }

    /// Brings an older store to this schema, one transaction per step; a newer one is
    /// left as it is (and refused by [`Store::check_schema`]).
    fn migrate(&mut self) -> Result<(), StoreError> {
        let found = self.schema_version()?;
        // Without a readable version nothing says which steps it lacks.
        let due = MIGRATIONS.iter().filter(|(v, _)| found >= 1 && *v > found);
        for (version, sql) in due {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                [version.to_string()],
            )?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Records that this writer's samples are of the boot `boot_id`
    /// (/proc/sys/kernel/random/boot_id); unreadable: they go without one.
    pub fn set_boot(&mut self, boot_id: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO boots (boot_id) VALUES (?1)",
            [boot_id],
        )?;
        self.boot = Some(self.conn.query_row(
            "SELECT id FROM boots WHERE boot_id = ?1",
            [boot_id],
            |r| r.get(0),
        )?);
        Ok(())
    }

    /// Opens an existing store to read it; a recorder may be writing it meanwhile.
    pub fn open_reader(dir: &Path) -> Result<Store, StoreError> {
        let db = dir.join(DB_FILE);
        if !db.is_file() {
            return Err(StoreError::NoStore(dir.to_owned()));
        }
        let conn = Connection::open_with_flags(
            &db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(2))?;
        let store = Store {
            conn,
            dir: dir.to_owned(),
            lock: None,
            keyframe: None,
            largest_write: 0,
            boot: None,
            cached: Default::default(),
        };
        store.check_schema()?;
        Ok(store)
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let found = self.schema_version()?;
        if found != SCHEMA_VERSION {
            return Err(StoreError::Schema { found });
        }
        Ok(())
    }

    fn schema_version(&self) -> Result<i64, StoreError> {
        let found: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| StoreError::Other(format!("not a syslens store: {e}")))?;
        found
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or(StoreError::Schema { found: 0 })
    }

    /// A metadata value the recorder set.
    pub fn meta(&self, key: &str) -> Option<String> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .ok()
            .flatten()
    }

    /// Sets a metadata value.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO meta VALUES (?1, ?2)",
            params![key, value],
        )?;
        Ok(())
    }

    /// Writes one interval: its sample, its notable events, the counts of the routine
    /// ones; then trims the store to its limits.
    pub fn write(
        &mut self,
        time: SystemTime,
        table: &Table,
        files: &SampleFiles,
        events: &[StoredEvent],
        counts: &[(&str, u64)],
        limits: Limits,
    ) -> Result<(), StoreError> {
        let before = self.size_on_disk();
        let due = self
            .keyframe
            .as_ref()
            .is_none_or(|k| k.samples >= KEYFRAME_EVERY);
        let (table, procs, blob, keyframe) = match (&self.keyframe, due) {
            (Some(k), false) => {
                let table = table.against(&k.table);
                let procs = codec::encode(&table, &k.table)?;
                (table, procs, files.encode(Some(&k.files))?, Some(k.id))
            }
            _ => {
                let table = table.against(&Table::default());
                let procs = codec::encode(&table, &Table::default())?;
                (table, procs, files.encode(None)?, None)
            }
        };
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO samples (time_ns, keyframe, processes, procs, files, boot) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                unix_ns(time),
                keyframe,
                table.rows.len() as i64,
                procs,
                blob,
                self.boot
            ],
        )?;
        let id = tx.last_insert_rowid();
        for e in events {
            tx.execute(
                "INSERT INTO events (time_ns, concept, kind, pid, related, line, json) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![e.time_ns, e.concept, e.kind, e.pid, e.related, e.line, e.json],
            )?;
        }
        for (kind, n) in counts {
            tx.execute(
                "INSERT INTO event_counts VALUES (?1, ?2, ?3)",
                params![id, kind, *n as i64],
            )?;
        }
        tx.commit()?;
        match (&mut self.keyframe, keyframe) {
            (Some(k), Some(_)) => k.samples += 1,
            _ => {
                self.keyframe = Some(Keyframe {
                    id,
                    table,
                    files: files.clone(),
                    samples: 1,
                })
            }
        }
        self.largest_write = self
            .largest_write
            .max(self.size_on_disk().saturating_sub(before));
        self.trim(limits)
    }

    /// Bytes the store takes on disk: the database and its log.
    pub fn size_on_disk(&self) -> u64 {
        [DB_FILE, "syslens.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(self.dir.join(f)).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Drops what is older than the retention, then whole keyframe groups, oldest
    /// first, while the store is above 90% of its size limit less the largest write
    /// seen: checked after every interval, so it never waits for a file to rotate.
    fn trim(&mut self, limits: Limits) -> Result<(), StoreError> {
        let cutoff = unix_ns(SystemTime::now())
            - i64::try_from(limits.retain.as_nanos()).unwrap_or(i64::MAX);
        // The keyframe of the group the retention's edge falls in: everything before
        // it goes. A group goes whole once its last sample is past the edge, so nothing
        // inside the retention is dropped.
        let keep_from: Option<i64> = self.conn.query_row(
            "SELECT max(id) FROM samples WHERE keyframe IS NULL AND time_ns <= ?1",
            [cutoff],
            |r| r.get(0),
        )?;
        let mut dropped = match keep_from {
            Some(id) => self.drop_before(id)?,
            None => false,
        };
        self.conn
            .execute("DELETE FROM events WHERE time_ns < ?1", [cutoff])?;
        // What the limit counts is the files on disk: the database with its free pages
        // and the log. A round frees what the last dropped, then measures.
        let target = (limits.max_size / 10 * 9)
            .saturating_sub(self.largest_write)
            .max(limits.max_size / 2);
        let mut rounds = 0;
        loop {
            // A log over the limit is cut before anything is dropped for it.
            let cut_first = rounds == 0 && self.size_on_disk() > target;
            if (dropped || cut_first) && !self.release()? {
                // A reader holds the log: it cannot be cut now, and dropping more
                // would not shrink it. The next interval tries again.
                break;
            }
            if self.size_on_disk() <= target || rounds >= 1000 {
                break;
            }
            rounds += 1;
            // The second keyframe: the oldest group ends just before it.
            let next: Option<i64> = self
                .conn
                .query_row(
                    "SELECT id FROM samples WHERE keyframe IS NULL ORDER BY id LIMIT 1 OFFSET 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(next) = next else {
                break;
            };
            dropped = self.drop_before(next)?;
            let oldest: Option<i64> =
                self.conn
                    .query_row("SELECT min(time_ns) FROM samples", [], |r| r.get(0))?;
            if let Some(t) = oldest {
                self.conn
                    .execute("DELETE FROM events WHERE time_ns < ?1", [t])?;
            }
        }
        Ok(())
    }

    /// Bytes the live pages take: what the file shrinks to after a vacuum, plus the log.
    /// Gives the pages freed back to the file system and cuts the log; false when a
    /// reader kept the log from being cut.
    fn release(&mut self) -> Result<bool, StoreError> {
        // Each step of the pragma frees one page: run it to the end.
        let mut vacuum = self.conn.prepare("PRAGMA incremental_vacuum")?;
        let mut steps = vacuum.query([])?;
        while steps.next()?.is_some() {}
        drop(steps);
        drop(vacuum);
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        Ok(busy == 0)
    }

    fn drop_before(&mut self, id: i64) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute("DELETE FROM samples WHERE id < ?1", [id])?;
        self.conn
            .execute("DELETE FROM event_counts WHERE sample < ?1", [id])?;
        Ok(n > 0)
    }

    /// The sample at or before `ns` (the last one with None).
    pub fn sample_at(&self, ns: Option<i64>) -> Result<Option<SampleRef>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, time_ns, boot FROM samples WHERE time_ns <= ?1 \
                 ORDER BY time_ns DESC LIMIT 1",
                [ns.unwrap_or(i64::MAX)],
                sample_ref,
            )
            .optional()?)
    }

    /// The sample just before sample `id`.
    pub fn sample_before(&self, id: i64) -> Result<Option<SampleRef>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, time_ns, boot FROM samples WHERE id < ?1 ORDER BY id DESC LIMIT 1",
                [id],
                sample_ref,
            )
            .optional()?)
    }

    /// The samples in [since, until], oldest first.
    pub fn samples_between(&self, since: i64, until: i64) -> Result<Vec<SampleRef>, StoreError> {
        let mut q = self.conn.prepare(
            "SELECT id, time_ns, boot FROM samples WHERE time_ns BETWEEN ?1 AND ?2 ORDER BY id",
        )?;
        let rows = q
            .query_map([since, until], sample_ref)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The first and last sample's times, and how many there are.
    pub fn span(&self) -> Result<Option<(SystemTime, SystemTime, i64)>, StoreError> {
        let (a, b, n): (Option<i64>, Option<i64>, i64) = self.conn.query_row(
            "SELECT min(time_ns), max(time_ns), count(*) FROM samples",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(a.zip(b).map(|(a, b)| (from_unix_ns(a), from_unix_ns(b), n)))
    }

    /// Loads and decodes sample `id`.
    pub fn load(&self, id: i64) -> Result<Recorded, StoreError> {
        self.load_as(id, false)
    }

    /// Loads sample `id`; `keyframe`: it must be one (a delta naming a delta, or
    /// itself, is a damaged store, not a recursion).
    fn load_as(&self, id: i64, keyframe_only: bool) -> Result<Recorded, StoreError> {
        type Row = (i64, Option<i64>, Vec<u8>, Vec<u8>, Option<i64>);
        let (time, keyframe, procs, files, boot): Row = self.conn.query_row(
            "SELECT time_ns, keyframe, procs, files, boot FROM samples WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        let bad = |e: String| StoreError::Other(format!("sample {id}: {e}"));
        if keyframe_only && keyframe.is_some() {
            return Err(bad(
                "named as a keyframe, but it is encoded against another".into(),
            ));
        }
        let (table, files) = match keyframe {
            None => (
                codec::decode(&procs, &Table::default()).map_err(bad)?,
                SampleFiles::decode(&files, None).map_err(bad)?,
            ),
            Some(k) => {
                let cached = self.cached.borrow().as_ref().is_some_and(|c| c.0 == k);
                if !cached {
                    let key = self.load_as(k, true)?;
                    *self.cached.borrow_mut() = Some((k, key.table, key.files));
                }
                let cache = self.cached.borrow();
                let Some((_, ktable, kfiles)) = cache.as_ref() else {
                    return Err(bad("keyframe not loaded".into()));
                };
                (
                    codec::decode(&procs, ktable).map_err(bad)?,
                    SampleFiles::decode(&files, Some(kfiles)).map_err(bad)?,
                )
            }
        };
        Ok(Recorded {
            id,
            time: from_unix_ns(time),
            table,
            files,
            boot,
        })
    }

    /// The recorded events in [since, until], oldest first, of one kind and one pid
    /// (as subject or related) when given.
    pub fn events(
        &self,
        since: i64,
        until: i64,
        kind: Option<&str>,
        pid: Option<i32>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut q = self.conn.prepare(
            "SELECT time_ns, concept, kind, pid, related, line, json FROM events \
             WHERE time_ns BETWEEN ?1 AND ?2 AND (?3 IS NULL OR kind = ?3) \
             AND (?4 IS NULL OR pid = ?4 OR related = ?4) ORDER BY time_ns, id",
        )?;
        let rows = q
            .query_map(params![since, until, kind, pid], |r| {
                Ok(StoredEvent {
                    time_ns: r.get(0)?,
                    concept: r.get(1)?,
                    kind: r.get(2)?,
                    pid: r.get(3)?,
                    related: r.get(4)?,
                    line: r.get(5)?,
                    json: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Whether this handle holds the recorder's lock.
    pub fn is_writer(&self) -> bool {
        self.lock.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_size: 1 << 30,
        retain: Duration::from_secs(86400),
    };

    #[test]
    fn an_older_or_newer_schema_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open_writer(dir.path(), LIMITS).unwrap());
        for (version, says) in [
            ("0", "older than this syslens reads"),
            ("9", "newer syslens"),
        ] {
            let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
            conn.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                [version],
            )
            .unwrap();
            drop(conn);
            let e = Store::open_reader(dir.path()).unwrap_err().to_string();
            assert!(e.contains(says), "{version}: {e}");
            let e = Store::open_writer(dir.path(), LIMITS)
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{version}: {e}");
        }
        let empty = tempfile::tempdir().unwrap();
        let e = Store::open_reader(empty.path()).unwrap_err().to_string();
        assert!(e.contains("no store"), "{e}");
    }

    #[test]
    fn issue_17_a_schema_1_store_is_refused_by_a_reader_and_migrated_by_a_recorder() {
        let dir = tempfile::tempdir().unwrap();
        // A store as schema 1 made it, with one sample.
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute_batch("INSERT INTO meta VALUES ('schema_version', '1');")
            .unwrap();
        let blob = codec::encode(&Table::default(), &Table::default()).unwrap();
        let files = SampleFiles::default().encode(None).unwrap();
        conn.execute(
            "INSERT INTO samples (time_ns, keyframe, processes, procs, files) \
             VALUES (?1, NULL, 0, ?2, ?3)",
            params![unix_ns(SystemTime::now()) - 10_000_000_000, blob, files],
        )
        .unwrap();
        drop(conn);
        let e = Store::open_reader(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("schema version 1") && e.contains("migrates it"),
            "{e}"
        );
        let mut store = Store::open_writer(dir.path(), LIMITS).unwrap();
        store.set_boot("boot-a").unwrap();
        store
            .write(
                SystemTime::now(),
                &Table::default(),
                &SampleFiles::default(),
                &[],
                &[],
                LIMITS,
            )
            .unwrap();
        drop(store);
        let store = Store::open_reader(dir.path()).unwrap();
        assert_eq!(store.meta("schema_version").as_deref(), Some("2"));
        let all = store.samples_between(0, i64::MAX).unwrap();
        assert_eq!(all.len(), 2);
        // The old sample reads back, without a boot: never the same boot as a new one.
        assert_eq!(store.load(all[0].id).unwrap().boot, None);
        assert!(all[1].boot.is_some());
        assert!(!all[0].same_boot(&all[1]));
        assert_eq!(boot_runs(&all).len(), 2);
    }

    #[test]
    fn issue_17_a_keyframe_lists_only_the_cgroups_its_group_names_under_churn() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open_writer(dir.path(), LIMITS).unwrap();
        let mut scanner =
            syslens_probe::table::Scanner::new(syslens_probe::Reader::host().unwrap());
        let me = std::process::id() as i32;
        let scanned = scanner
            .scan(syslens_probe::table::ScanOptions::default())
            .unwrap();
        let mut row = scanned.iter().find(|r| r.pid == me).unwrap().clone();
        // A container per sample, as a scanner interns them: its list only grows.
        let mut seen: Vec<String> = Vec::new();
        let t0 = SystemTime::now() - Duration::from_secs(600);
        let n = 3 * KEYFRAME_EVERY + 7;
        for i in 0..n {
            seen.push(format!("/machine.slice/container-{i}.scope"));
            row.cgroup = Ok(i as u32);
            let table = Table {
                rows: vec![row.clone()],
                cgroups: seen.clone(),
            };
            let at = t0 + Duration::from_secs(i as u64);
            store
                .write(at, &table, &SampleFiles::default(), &[], &[], LIMITS)
                .unwrap();
        }
        let all = store.samples_between(0, i64::MAX).unwrap();
        let mut longest = 0;
        for (i, s) in all.iter().enumerate() {
            let rec = store.load(s.id).unwrap();
            longest = longest.max(rec.table.cgroups.len());
            assert_eq!(
                rec.table.cgroup(&rec.table.rows[0]).unwrap(),
                format!("/machine.slice/container-{i}.scope")
            );
        }
        // A keyframe names its one path; a delta adds its own to it.
        assert!(longest <= 2, "{longest} paths in a sample of one process");
        let bytes: i64 = store
            .conn
            .query_row(
                "SELECT max(length(procs)) FROM samples WHERE keyframe IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(bytes < 600, "a keyframe of one process takes {bytes} bytes");
    }

    #[test]
    fn issue_17_a_damaged_or_foreign_store_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open_writer(dir.path(), LIMITS).unwrap();
        let files = SampleFiles::default();
        for _ in 0..2 {
            store
                .write(
                    SystemTime::now(),
                    &Table::default(),
                    &files,
                    &[],
                    &[],
                    LIMITS,
                )
                .unwrap();
        }
        drop(store);
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        // A delta naming itself as its keyframe, another naming a delta.
        conn.execute("UPDATE samples SET keyframe = id", [])
            .unwrap();
        drop(conn);
        let store = Store::open_reader(dir.path()).unwrap();
        for id in [1, 2] {
            assert!(store.load(id).is_err(), "sample {id}");
        }
        let foreign = tempfile::tempdir().unwrap();
        let conn = Connection::open(foreign.path().join(DB_FILE)).unwrap();
        conn.execute_batch("CREATE TABLE mine (x INTEGER);")
            .unwrap();
        drop(conn);
        let e = Store::open_writer(foreign.path(), LIMITS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("did not make"), "{e}");
        let conn = Connection::open(foreign.path().join(DB_FILE)).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            mode, "delete",
            "the foreign database was not switched to WAL"
        );
    }

    /// The `i`th event of a test: pid `i`, line "event i", of `kind`, at `time_ns`.
    fn event_of(i: i64, time_ns: i64, kind: &str) -> StoredEvent {
        StoredEvent {
            time_ns,
            concept: "signals".into(),
            kind: kind.into(),
            pid: Some(i as i32),
            related: None,
            line: format!("event {i}"),
            json: "{}".into(),
        }
    }

    #[test]
    fn samples_come_back_from_their_keyframe_group_and_events_by_kind_and_pid() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open_writer(dir.path(), LIMITS).unwrap();
        let mut reader = syslens_probe::Reader::host().unwrap();
        let files = SampleFiles::read(&mut reader);
        let t0 = SystemTime::now() - Duration::from_secs(100);
        for i in 0..(KEYFRAME_EVERY + 5) {
            let ev = event_of(
                i,
                unix_ns(t0) + i,
                if i % 2 == 0 { "signal" } else { "exit" },
            );
            let at = t0 + Duration::from_secs(i as u64);
            store
                .write(at, &Table::default(), &files, &[ev], &[("exec", 3)], LIMITS)
                .unwrap();
        }
        let at = store
            .sample_at(Some(unix_ns(t0) + 3_500_000_000))
            .unwrap()
            .unwrap();
        assert_eq!(at.time, t0 + Duration::from_secs(3));
        let rec = store.load(at.id).unwrap();
        assert_eq!(rec.files, files);
        // Past the first group: a second keyframe.
        let last = store.sample_at(None).unwrap().unwrap();
        assert!(store.load(last.id).is_ok());
        assert!(store.sample_at(Some(unix_ns(t0) - 1)).unwrap().is_none());
        let signals = store.events(0, i64::MAX, Some("signal"), None).unwrap();
        assert_eq!(signals.len() as i64, (KEYFRAME_EVERY + 5 + 1) / 2);
        let one = store.events(0, i64::MAX, None, Some(7)).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].line, "event 7");
    }

    /// issue 17: retention by age. What is older than `retain` goes, a keyframe group at
    /// a time: the group the edge falls in is kept whole (at most KEYFRAME_EVERY
    /// samples older than the retention), nothing newer goes; events by their own time.
    #[test]
    fn issue_17_samples_and_events_older_than_the_retention_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_size: 1 << 30,
            retain: Duration::from_secs(200),
        };
        let mut store = Store::open_writer(dir.path(), limits).unwrap();
        let files = SampleFiles::default();
        // A sample a second from 300 s ago to 113 s ago: keyframes at 300, 240, 180
        // and 120 s ago; the retention's edge at 200 s ago.
        let t0 = SystemTime::now() - Duration::from_secs(300);
        let n = 3 * KEYFRAME_EVERY + 7;
        for i in 0..n {
            let ev = event_of(i, unix_ns(t0 + Duration::from_secs(i as u64)), "signal");
            let at = t0 + Duration::from_secs(i as u64);
            store
                .write(at, &Table::default(), &files, &[ev], &[], limits)
                .unwrap();
        }
        let kept = store.samples_between(0, i64::MAX).unwrap();
        let first = kept.first().unwrap().time;
        assert_eq!(
            first,
            t0 + Duration::from_secs(KEYFRAME_EVERY as u64),
            "the group from 300 s ago goes; the one from 240 s ago holds the edge, kept"
        );
        assert_eq!(kept.len() as i64, n - KEYFRAME_EVERY);
        let events = store.events(0, i64::MAX, None, None).unwrap();
        // Events from 200 s ago on: the 100th on (a second or so of slack for the clock).
        let oldest = events.iter().filter_map(|e| e.pid).min().unwrap();
        assert!((99..=101).contains(&oldest), "oldest event kept: {oldest}");
    }
}
