//! The recorded process table, encoded against a keyframe. Written by hand rather than
//! with a serde format: a store of a week holds ~10^8 process-samples, and the target
//! is 20 bytes each. Each field is one column; a value is stored as the zigzag varint
//! of its difference from the same process in the keyframe (zero when unchanged), so
//! the sleeping majority of a host becomes runs of zero bytes that zstd folds away.
//! A sample decodes with its keyframe alone: no chain of deltas to replay.

use syslens_probe::limits::LimitValue;
use syslens_probe::parse::InlineStr;
use syslens_probe::table::ProcessRow;
use syslens_probe::{Missing, Val};

/// The format of an encoded table; a blob of another version is refused.
const VERSION: u64 = 1;

/// One recorded table: the processes of one sample and the cgroup paths they name.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// The processes, by ascending pid.
    pub rows: Vec<ProcessRow>,
    /// Cgroup paths; a row's `cgroup` is an index into this.
    pub cgroups: Vec<String>,
}

impl Table {
    /// The cgroup path of a row.
    pub fn cgroup(&self, row: &ProcessRow) -> Val<String> {
        row.cgroup.clone().map(|id| {
            self.cgroups
                .get(id as usize)
                .cloned()
                .unwrap_or_else(|| "?".into())
        })
    }

    /// The cgroup paths its rows are in (not every path it lists), each once, sorted.
    pub fn paths_in_use(&self) -> Vec<&str> {
        let mut used: Vec<&str> = self
            .rows
            .iter()
            .filter_map(|r| self.cgroups.get(*r.cgroup.as_ref().ok()? as usize))
            .map(String::as_str)
            .collect();
        used.sort_unstable();
        used.dedup();
        used
    }

    /// This table as it is stored against `base` (an empty table for a keyframe): its
    /// paths are `base`'s, then those of its rows that `base` lacks, and nothing else,
    /// so a keyframe lists only what its group names, however many cgroups came and
    /// went before it; the rows' ids follow.
    pub fn against(&self, base: &Table) -> Table {
        let mut ids: std::collections::HashMap<&str, u32> = base
            .cgroups
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_str(), i as u32))
            .collect();
        let mut cgroups = base.cgroups.clone();
        let mut rows = self.rows.clone();
        for r in &mut rows {
            if let Ok(id) = r.cgroup.as_mut() {
                let path = self.cgroups.get(*id as usize).map_or("?", String::as_str);
                *id = *ids.entry(path).or_insert_with(|| {
                    cgroups.push(path.to_owned());
                    (cgroups.len() - 1) as u32
                });
            }
        }
        Table { rows, cgroups }
    }

    /// The row of a pid.
    pub fn row(&self, pid: i32) -> Option<&ProcessRow> {
        self.rows
            .binary_search_by_key(&pid, |r| r.pid)
            .ok()
            .map(|i| &self.rows[i])
    }
}

/// How a missing value was missing when it was recorded: the reason's kind survives,
/// its text (the path, the errno) does not.
fn missing_code(m: &Missing) -> u8 {
    match m {
        Missing::Permission { .. } => 1,
        Missing::Exited => 2,
        Missing::NotInKernel { .. } => 3,
        Missing::NotApplicable { .. } => 4,
        Missing::Malformed { .. } => 5,
        Missing::Io { .. } => 6,
        Missing::Refused { .. } => 7,
    }
}

fn missing_of(code: u8) -> Missing {
    let path = || "(recorded)".to_string();
    match code {
        1 => Missing::Permission {
            path: path(),
            grant: "root, when it was recorded",
        },
        2 => Missing::Exited,
        3 => Missing::NotInKernel {
            what: "(recorded)".into(),
        },
        4 => Missing::NotApplicable {
            why: "not applicable when recorded",
        },
        5 => Missing::Malformed {
            path: path(),
            detail: "did not parse when recorded".into(),
        },
        7 => Missing::Refused {
            path: path(),
            why: "refused when recorded".into(),
        },
        _ => Missing::Io {
            path: path(),
            errno: 0,
        },
    }
}

/// The columns of a row: plain figures first, then the ones that can be missing.
const PLAIN: usize = 10;
const SLOTS: usize = PLAIN + 20;

/// A row as columns: the values, and per column 0 when present or the missing code.
struct Slots {
    value: [u64; SLOTS],
    missing: [u8; SLOTS],
}

fn slots(r: &ProcessRow) -> Slots {
    let mut s = Slots {
        value: [0; SLOTS],
        missing: [0; SLOTS],
    };
    let plain = [
        r.ppid as u64,
        r.start_time_ticks,
        u64::from(r.state),
        u64::from(r.kernel_thread) | u64::from(r.namespace_init) << 1,
        r.minflt,
        r.majflt,
        r.utime_ticks,
        r.stime_ticks,
        r.threads,
        r.nice as u64,
    ];
    s.value[..PLAIN].copy_from_slice(&plain);
    let limit = r.fd_soft_limit.clone().map(|l| match l {
        LimitValue::Unlimited => u64::MAX,
        LimitValue::Value(v) => v,
    });
    let vals: [Val<u64>; SLOTS - PLAIN] = [
        r.uid.clone(),
        r.vm_size.clone(),
        r.rss.clone(),
        r.hwm.clone(),
        r.swap.clone(),
        r.rss_anon.clone(),
        r.rss_file.clone(),
        r.rss_shmem.clone(),
        r.locked.clone(),
        r.voluntary_switches.clone(),
        r.involuntary_switches.clone(),
        r.sig_ign.clone(),
        r.sig_blk.clone(),
        r.shd_pnd.clone(),
        r.sig_cgt.clone(),
        r.run_queue_wait_ns.clone(),
        r.fds.clone(),
        limit,
        r.oom_score.clone(),
        r.cgroup.clone().map(u64::from),
    ];
    for (i, v) in vals.into_iter().enumerate() {
        match v {
            Ok(v) => s.value[PLAIN + i] = v,
            Err(m) => s.missing[PLAIN + i] = missing_code(&m),
        }
    }
    s
}

/// NSpid is not recorded (a namespace init is: its flag).
const NSPID_NOT_RECORDED: Missing = Missing::NotApplicable {
    why: "the pid inside the PID namespace is not recorded",
};

fn row_of(pid: i32, comm: &str, s: &Slots) -> ProcessRow {
    let v = |i: usize| -> Val<u64> {
        match s.missing[i] {
            0 => Ok(s.value[i]),
            code => Err(missing_of(code)),
        }
    };
    ProcessRow {
        pid,
        comm: InlineStr::new(comm.as_bytes()),
        state: s.value[2] as u8,
        ppid: s.value[0] as i64,
        kernel_thread: s.value[3] & 1 != 0,
        uid: v(PLAIN),
        start_time_ticks: s.value[1],
        vm_size: v(PLAIN + 1),
        rss: v(PLAIN + 2),
        hwm: v(PLAIN + 3),
        swap: v(PLAIN + 4),
        rss_anon: v(PLAIN + 5),
        rss_file: v(PLAIN + 6),
        rss_shmem: v(PLAIN + 7),
        locked: v(PLAIN + 8),
        minflt: s.value[4],
        majflt: s.value[5],
        utime_ticks: s.value[6],
        stime_ticks: s.value[7],
        threads: s.value[8],
        nice: s.value[9] as i64,
        voluntary_switches: v(PLAIN + 9),
        involuntary_switches: v(PLAIN + 10),
        sig_ign: v(PLAIN + 11),
        sig_blk: v(PLAIN + 12),
        shd_pnd: v(PLAIN + 13),
        sig_cgt: v(PLAIN + 14),
        namespace_init: s.value[3] & 2 != 0,
        ns_pid: Err(NSPID_NOT_RECORDED),
        ns_levels: Err(NSPID_NOT_RECORDED),
        run_queue_wait_ns: v(PLAIN + 15),
        fds: v(PLAIN + 16),
        fd_soft_limit: v(PLAIN + 17).map(|l| match l {
            u64::MAX => LimitValue::Unlimited,
            l => LimitValue::Value(l),
        }),
        oom_score: v(PLAIN + 18),
        cgroup: v(PLAIN + 19).map(|id| id as u32),
        rollup: None,
    }
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(d: i64) -> u64 {
    ((d << 1) ^ (d >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    (z >> 1) as i64 ^ -((z & 1) as i64)
}

/// A cursor over an encoded table; every read is bounds-checked.
struct Input<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.buf.get(self.at).ok_or("table ends early")?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 64 bits".into())
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or("a string runs past the table")?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    /// A count that cannot exceed what is left of the input (each item takes a byte).
    fn count(&mut self) -> Result<usize, String> {
        let n = self.varint()?;
        if n > (self.buf.len() - self.at) as u64 {
            return Err(format!("a count of {n} exceeds the table"));
        }
        Ok(n as usize)
    }
}

/// For each row of `rows`, the index of the same process (pid and start time) in
/// `base`, found by walking both in pid order.
fn matches(rows: &[ProcessRow], base: &Table) -> Vec<Option<usize>> {
    let mut j = 0;
    rows.iter()
        .map(|r| {
            while j < base.rows.len() && base.rows[j].pid < r.pid {
                j += 1;
            }
            base.rows
                .get(j)
                .filter(|b| b.pid == r.pid && b.start_time_ticks == r.start_time_ticks)
                .map(|_| j)
        })
        .collect()
}

/// Encodes `table` against `base` (an empty table for a keyframe) and compresses it.
/// The rows must be in ascending pid order and `table`'s cgroup paths must start with
/// `base`'s (see [`Table::against`]).
pub fn encode(table: &Table, base: &Table) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(table.rows.len() * 8);
    put(&mut out, VERSION);
    put(&mut out, table.rows.len() as u64);
    let new_paths = &table.cgroups[base.cgroups.len().min(table.cgroups.len())..];
    put(&mut out, new_paths.len() as u64);
    for p in new_paths {
        put(&mut out, p.len() as u64);
        out.extend_from_slice(p.as_bytes());
    }
    let found = matches(&table.rows, base);
    let mut prev = 0i64;
    for r in &table.rows {
        put(&mut out, zigzag(i64::from(r.pid) - prev));
        prev = i64::from(r.pid);
    }
    for (r, m) in table.rows.iter().zip(&found) {
        let same = m.is_some_and(|j| base.rows[j].comm == r.comm);
        out.push(u8::from(m.is_some()) | u8::from(same) << 1);
        if !same {
            let comm = r.comm.as_str().as_bytes();
            put(&mut out, comm.len() as u64);
            out.extend_from_slice(comm);
        }
    }
    let mine: Vec<Slots> = table.rows.iter().map(slots).collect();
    let theirs: Vec<Option<Slots>> = found
        .iter()
        .map(|m| m.map(|j| slots(&base.rows[j])))
        .collect();
    for col in 0..SLOTS {
        for (s, b) in mine.iter().zip(&theirs) {
            let was = b.as_ref().map_or(0, |b| b.value[col]);
            put(&mut out, zigzag(s.value[col].wrapping_sub(was) as i64));
        }
    }
    for col in 0..SLOTS {
        for (s, b) in mine.iter().zip(&theirs) {
            out.push(s.missing[col] ^ b.as_ref().map_or(0, |b| b.missing[col]));
        }
    }
    zstd::bulk::compress(&out, 3)
}

/// Decodes a table [`encode`] made against the same `base`.
pub fn decode(blob: &[u8], base: &Table) -> Result<Table, String> {
    // A table of a million processes stays well under this; a hostile blob cannot
    // make the decoder allocate more.
    const LIMIT: usize = 256 << 20;
    let raw = zstd::bulk::decompress(blob, LIMIT).map_err(|e| format!("zstd: {e}"))?;
    let mut inp = Input { buf: &raw, at: 0 };
    let version = inp.varint()?;
    if version != VERSION {
        return Err(format!(
            "table format {version}; this syslens reads {VERSION}"
        ));
    }
    let n = inp.count()?;
    // Every row takes at least a byte per column and two more: a count beyond what
    // is left is a damaged blob, not a reason to allocate.
    if n.saturating_mul(2 + 2 * SLOTS) > raw.len() - inp.at {
        return Err(format!("{n} rows cannot fit in the table"));
    }
    let mut cgroups = base.cgroups.clone();
    for _ in 0..inp.count()? {
        let len = inp.count()?;
        cgroups.push(String::from_utf8_lossy(inp.bytes(len)?).into_owned());
    }
    let mut pids = Vec::with_capacity(n);
    let mut prev = 0i64;
    for _ in 0..n {
        prev = prev.wrapping_add(unzigzag(inp.varint()?));
        pids.push(i32::try_from(prev).map_err(|_| format!("pid {prev} out of range"))?);
    }
    let mut names = Vec::with_capacity(n);
    let mut bases = Vec::with_capacity(n);
    let mut j = 0;
    for &pid in &pids {
        let flags = inp.byte()?;
        let b = if flags & 1 != 0 {
            while j < base.rows.len() && base.rows[j].pid < pid {
                j += 1;
            }
            let b = base.rows.get(j).filter(|b| b.pid == pid);
            Some(b.ok_or(format!("pid {pid} refers to a keyframe row it lacks"))?)
        } else {
            None
        };
        let name = if flags & 2 != 0 {
            b.map(|b| b.comm.as_str().to_owned()).unwrap_or_default()
        } else {
            let len = inp.count()?;
            String::from_utf8_lossy(inp.bytes(len)?).into_owned()
        };
        names.push(name);
        bases.push(b.map(slots));
    }
    let mut cols: Vec<Slots> = (0..n)
        .map(|_| Slots {
            value: [0; SLOTS],
            missing: [0; SLOTS],
        })
        .collect();
    for col in 0..SLOTS {
        for (s, b) in cols.iter_mut().zip(&bases) {
            let was = b.as_ref().map_or(0, |b| b.value[col]);
            s.value[col] = was.wrapping_add(unzigzag(inp.varint()?) as u64);
        }
    }
    for col in 0..SLOTS {
        for (s, b) in cols.iter_mut().zip(&bases) {
            s.missing[col] = inp.byte()? ^ b.as_ref().map_or(0, |b| b.missing[col]);
        }
    }
    let rows = pids
        .iter()
        .zip(&names)
        .zip(&cols)
        .map(|((&pid, name), s)| row_of(pid, name, s))
        .collect();
    Ok(Table { rows, cgroups })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pid: i32, comm: &str, rss: Val<u64>) -> ProcessRow {
        let mut s = Slots {
            value: [0; SLOTS],
            missing: [0; SLOTS],
        };
        s.value[1] = 100 + pid as u64;
        s.value[2] = u64::from(b'S');
        s.value[9] = (-5i64) as u64;
        let mut r = row_of(pid, comm, &s);
        r.rss = rss;
        r.fd_soft_limit = Ok(LimitValue::Unlimited);
        r
    }

    fn same(a: &ProcessRow, b: &ProcessRow) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    #[test]
    fn a_keyframe_and_a_delta_decode_to_what_was_encoded() {
        let key = Table {
            rows: vec![
                row(1, "init", Ok(4096)),
                row(7, "kthreadd", Err(missing_of(4))),
                row(300, "sh", Ok(1 << 20)),
            ],
            cgroups: vec!["/".into()],
        };
        let empty = Table::default();
        let blob = encode(&key, &empty).unwrap();
        let back = decode(&blob, &empty).unwrap();
        assert!(key.rows.iter().zip(&back.rows).all(|(a, b)| same(a, b)));
        assert_eq!(back.rows[0].nice, -5);
        assert_eq!(back.rows[0].fd_soft_limit, Ok(LimitValue::Unlimited));

        // pid 300 restarted (another start time), 7 left, 9000 is new, 1 grew.
        let mut next = Table {
            rows: vec![row(1, "init", Ok(8192)), row(9000, "new", Ok(1))],
            cgroups: vec!["/".into(), "/app".into()],
        };
        let mut again = row(300, "sh2", Ok(5));
        again.start_time_ticks += 1;
        again.cgroup = Ok(1);
        next.rows.insert(1, again);
        let blob = encode(&next, &key).unwrap();
        let back = decode(&blob, &key).unwrap();
        assert_eq!(back.rows.len(), 3);
        assert!(next.rows.iter().zip(&back.rows).all(|(a, b)| same(a, b)));
        assert_eq!(back.cgroup(&back.rows[1]).unwrap(), "/app");
        assert!(!back.rows.iter().any(|r| r.pid == 7));
    }

    #[test]
    fn an_unchanged_table_costs_almost_nothing() {
        let rows: Vec<ProcessRow> = (1..=400)
            .map(|p| row(p * 3, "worker", Ok(u64::from(p as u32) << 16)))
            .collect();
        let t = Table {
            rows,
            cgroups: vec!["/".into()],
        };
        let key = encode(&t, &Table::default()).unwrap();
        let delta = encode(&t, &t).unwrap();
        assert!(
            delta.len() < 400 / 2,
            "an unchanged table of 400 takes {} bytes",
            delta.len()
        );
        assert!(key.len() > delta.len());
    }

    #[test]
    fn hostile_blobs_are_refused_not_trusted() {
        let t = Table {
            rows: vec![row(1, "init", Ok(1))],
            cgroups: vec![],
        };
        let blob = encode(&t, &Table::default()).unwrap();
        let raw = zstd::bulk::decompress(&blob, 1 << 20).unwrap();
        for cut in 0..raw.len() {
            let short = zstd::bulk::compress(&raw[..cut], 1).unwrap();
            assert!(decode(&short, &Table::default()).is_err(), "cut at {cut}");
        }
        // A count of 2^60 rows in a few bytes.
        let mut huge = Vec::new();
        put(&mut huge, VERSION);
        put(&mut huge, 1 << 60);
        let huge = zstd::bulk::compress(&huge, 1).unwrap();
        assert!(decode(&huge, &Table::default()).is_err());
        assert!(decode(b"not zstd", &Table::default()).is_err());
        // A delta against a keyframe it was not made from.
        let delta = encode(&t, &t).unwrap();
        assert!(decode(&delta, &Table::default()).is_err());
    }
}
