//! The system-wide files of a sample, kept as the kernel wrote them: replaying one
//! parses them with the same parsers as the live view, so the past and the present
//! cannot disagree about what a figure means. A sample is compressed with its
//! keyframe's files as the zstd dictionary: most of slabinfo, vmstat and meminfo
//! repeats from one interval to the next.

use std::collections::{BTreeMap, BTreeSet};

use syslens_probe::cgroup::CgroupLayout;
use syslens_probe::{Files, Missing, Reader, Val};

use crate::model::system::ScopedCgroup;

/// A sample keeps the files of at most this many cgroups (the first in path order):
/// enough for a host's services and containers, bounded on one with thousands.
pub const MAX_RECORDED_CGROUPS: usize = 256;

/// The /proc files every sample keeps (what the system view and the doctor read).
pub const PROC_FILES: &[&str] = &[
    "meminfo",
    "vmstat",
    "stat",
    "loadavg",
    "pressure/cpu",
    "pressure/memory",
    "pressure/io",
    "swaps",
    "buddyinfo",
    "slabinfo",
    "locks",
    "self/mountinfo",
    "sys/fs/dentry-state",
    "sys/fs/file-nr",
    "sys/fs/nr_open",
    "sys/vm/overcommit_memory",
    "sys/vm/overcommit_ratio",
    "sys/vm/swappiness",
    "sys/vm/max_map_count",
    "sys/kernel/pid_max",
    "sys/kernel/threads-max",
    "sys/kernel/osrelease",
];

/// The other host files every sample keeps.
pub const HOST_FILES: &[&str] = &[
    "/sys/devices/system/cpu/online",
    "/sys/devices/system/clocksource/clocksource0/current_clocksource",
    "/sys/kernel/mm/transparent_hugepage/enabled",
];

/// The files of one sample: each one's bytes, or why it could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleFiles {
    files: BTreeMap<String, Result<Vec<u8>, String>>,
}

impl SampleFiles {
    /// Reads every recorded file through `reader`.
    pub fn read(reader: &mut Reader) -> SampleFiles {
        let mut files = BTreeMap::new();
        for name in PROC_FILES {
            let got = reader.read_proc(name).map(<[u8]>::to_vec);
            files.insert((*name).to_owned(), got.map_err(|e| e.to_string()));
        }
        for path in HOST_FILES {
            let got = reader.read_host(path).map(<[u8]>::to_vec);
            files.insert((*path).to_owned(), got.map_err(|e| e.to_string()));
        }
        SampleFiles { files }
    }

    /// Adds the files `system --cgroup` reads (memory, CPU and pids controllers) of
    /// the cgroups at `paths` and of their ancestors, at most [`MAX_RECORDED_CGROUPS`]
    /// of them, read through `reader` by the live view's own code, so that a replay
    /// finds exactly what the live view would have read.
    pub fn read_cgroups<'p>(
        &mut self,
        reader: &mut Reader,
        paths: impl IntoIterator<Item = &'p str>,
    ) {
        let mut wanted = BTreeSet::new();
        for path in paths.into_iter().filter(|p| p.starts_with('/')) {
            let mut p = path;
            while let Some(cut) = p.rfind('/').filter(|&i| i > 0) {
                wanted.insert(p);
                p = &p[..cut];
            }
            wanted.insert(p);
            wanted.insert("/");
        }
        let mut capture = Capture {
            reader,
            files: &mut self.files,
        };
        let layout = CgroupLayout::read(&mut capture);
        for path in wanted.into_iter().take(MAX_RECORDED_CGROUPS) {
            ScopedCgroup::read(&mut capture, &layout, path);
        }
    }

    /// The files as one buffer: for each, its name, whether it was read, and its bytes
    /// or the reason.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, got) in &self.files {
            let (ok, body) = match got {
                Ok(b) => (1u8, b.as_slice()),
                Err(why) => (0u8, why.as_bytes()),
            };
            out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.push(ok);
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(body);
        }
        out
    }

    fn from_bytes(mut b: &[u8]) -> Result<SampleFiles, String> {
        fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
            if b.len() < n {
                return Err("recorded files end early".into());
            }
            let (head, rest) = b.split_at(n);
            *b = rest;
            Ok(head)
        }
        fn len(b: &mut &[u8]) -> Result<usize, String> {
            let raw = take(b, 4)?;
            Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize)
        }
        let mut files = BTreeMap::new();
        while !b.is_empty() {
            let n = len(&mut b)?;
            let name = String::from_utf8_lossy(take(&mut b, n)?).into_owned();
            let ok = take(&mut b, 1)?[0] == 1;
            let n = len(&mut b)?;
            let body = take(&mut b, n)?;
            let got = if ok {
                Ok(body.to_vec())
            } else {
                Err(String::from_utf8_lossy(body).into_owned())
            };
            files.insert(name, got);
        }
        Ok(SampleFiles { files })
    }

    /// Compresses the files, against `keyframe`'s when given.
    pub fn encode(&self, keyframe: Option<&SampleFiles>) -> std::io::Result<Vec<u8>> {
        let raw = self.to_bytes();
        match keyframe {
            None => zstd::bulk::compress(&raw, 3),
            Some(k) => zstd::bulk::Compressor::with_dictionary(3, &k.to_bytes())?.compress(&raw),
        }
    }

    /// Decompresses what [`SampleFiles::encode`] made with the same keyframe.
    pub fn decode(blob: &[u8], keyframe: Option<&SampleFiles>) -> Result<SampleFiles, String> {
        // /proc/slabinfo of a large host is ~100 KiB; nothing recorded comes near this.
        const LIMIT: usize = 64 << 20;
        let raw = match keyframe {
            None => zstd::bulk::decompress(blob, LIMIT),
            Some(k) => zstd::bulk::Decompressor::with_dictionary(&k.to_bytes())
                .and_then(|mut d| d.decompress(blob, LIMIT)),
        };
        SampleFiles::from_bytes(&raw.map_err(|e| format!("zstd: {e}"))?)
    }

    fn get(&self, name: &str) -> Val<&[u8]> {
        match self.files.get(name) {
            Some(Ok(b)) => Ok(b),
            Some(Err(why)) => Err(Missing::Refused {
                path: name.to_owned(),
                why: format!("when recorded: {why}"),
            }),
            None => Err(Missing::NotApplicable {
                why: "not recorded",
            }),
        }
    }
}

impl Files for SampleFiles {
    fn proc_file(&mut self, name: &str) -> Val<&[u8]> {
        self.get(name)
    }

    fn host_file(&mut self, abs: &str) -> Val<&[u8]> {
        self.get(abs)
    }

    /// A directory was there when one of its files was read.
    fn is_dir(&mut self, abs: &str) -> bool {
        let prefix = format!("{}/", abs.trim_end_matches('/'));
        self.files
            .range(prefix.clone()..)
            .take_while(|(name, _)| name.starts_with(&prefix))
            .any(|(_, got)| got.is_ok())
    }
}

/// Reads through a [`Reader`] and keeps what it read (the bytes, or why not) under each
/// file's host path.
struct Capture<'a> {
    reader: &'a mut Reader,
    files: &'a mut BTreeMap<String, Result<Vec<u8>, String>>,
}

impl Files for Capture<'_> {
    fn proc_file(&mut self, name: &str) -> Val<&[u8]> {
        self.reader.read_proc(name)
    }

    fn host_file(&mut self, abs: &str) -> Val<&[u8]> {
        let got = self.reader.read_host(abs);
        let kept = got.as_ref().map(|b| b.to_vec()).map_err(|e| e.to_string());
        self.files.insert(abs.to_owned(), kept);
        got
    }

    fn is_dir(&mut self, abs: &str) -> bool {
        self.reader.is_dir(abs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_against_a_keyframe_and_say_what_was_missing() {
        let mut key = SampleFiles::default();
        key.files
            .insert("meminfo".into(), Ok(b"MemTotal: 1 kB\n".to_vec()));
        key.files
            .insert("slabinfo".into(), Err("permission denied".into()));
        let mut now = key.clone();
        now.files
            .insert("meminfo".into(), Ok(b"MemTotal: 2 kB\n".to_vec()));
        let blob = now.encode(Some(&key)).unwrap();
        let mut back = SampleFiles::decode(&blob, Some(&key)).unwrap();
        assert_eq!(back, now);
        assert_eq!(back.proc_file("meminfo").unwrap(), b"MemTotal: 2 kB\n");
        let why = back.proc_file("slabinfo").unwrap_err().to_string();
        assert!(why.contains("permission denied"), "{why}");
        assert!(back.proc_file("vmstat").is_err());
        assert!(
            SampleFiles::decode(&blob, None).is_err()
                || SampleFiles::decode(&blob, None).unwrap() != now
        );
        assert!(SampleFiles::from_bytes(&[9, 0, 0, 0, b'a']).is_err());
    }

    #[test]
    fn issue_17_a_recorded_system_view_takes_its_figures_from_the_sample_asked() {
        let mut before = SampleFiles::default();
        before
            .files
            .insert("meminfo".into(), Ok(b"MemTotal: 1000 kB\n".to_vec()));
        before
            .files
            .insert("vmstat".into(), Ok(b"pgfault 100\n".to_vec()));
        let mut then = SampleFiles::default();
        then.files
            .insert("meminfo".into(), Ok(b"MemTotal: 2000 kB\n".to_vec()));
        then.files
            .insert("vmstat".into(), Ok(b"pgfault 600\n".to_vec()));
        let now = std::time::Instant::now();
        let earlier = now - std::time::Duration::from_secs(5);
        let view = crate::model::system::SystemView::recorded(
            (&mut then, now),
            Some((&mut before, earlier)),
            Default::default(),
            4096,
            None,
        );
        assert_eq!(view.mem_field(|m| &m.mem_total).unwrap(), 2000 * 1024);
        assert_eq!(view.vm_total(|v| &v.pgfault).unwrap(), 600);
        let rate = view.vm_rate(|v| &v.pgfault).unwrap();
        assert!((rate - 100.0).abs() < 1e-6, "{rate}");
    }

    #[test]
    fn the_live_host_records_its_meminfo() {
        let mut reader = Reader::host().unwrap();
        let mut files = SampleFiles::read(&mut reader);
        let m = syslens_probe::system::Meminfo::parse(files.proc_file("meminfo").unwrap());
        assert!(m.mem_total.unwrap() > 0);
    }
}
