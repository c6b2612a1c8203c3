//! RSS peaks between two summaries: the spike a poll of /proc on either side misses.
//!
//! `kmem:rss_stat` reports each change of an address space's resident counters (file,
//! anon, shmem): about one per page fault, and one per batch of pages unmapped. The
//! tracepoint sums the counter across CPUs for every change whether or not a sample is
//! kept, so it is heavy whatever the rate; one change in [`SAMPLE_ONE_IN`] per CPU is
//! kept. Each sample is the exact value of one counter at that instant; the peak is the
//! largest sum of the latest value of each, starting each span from /proc/PID/status.
//! The counter sampled is exact, the others are as of their last sample (or the span's
//! start): the one-in-N count is shared by every change on a CPU, of every process.

use std::collections::HashMap;

use syslens_probe::trace::{Rate, Sample};
use syslens_probe::tracefs::EventFormat;

use crate::concepts::ConceptId;
use crate::model::event::{
    bound, int, who, Context, Cost, Decoder, Event, EventSource, Feed, Resident, TracepointSpec,
};
use crate::model::units::{bytes, rfc3339};

/// One sample per this many counter changes on a CPU.
pub const SAMPLE_ONE_IN: u64 = 8;

/// `rss-peak` (a summary per process).
pub const SOURCE: EventSource = EventSource {
    kind: "rss-peak",
    concepts: &[ConceptId::HighWaterMark],
    tracepoints: &[TracepointSpec {
        system: "kmem",
        name: "rss_stat",
        filter: None,
        rate: Rate::OneIn(SAMPLE_ONE_IN),
        kernel_stack: false,
    }],
    feed: Feed::Tracepoints,
    cost: Cost::Heavy("the RSS tracepoint sums a per-CPU counter on every change of every process's resident set, about one per page fault, kept or not (a fault loop ran at 0.80x, bench/watch.sh 2026-12-07)"),
    decoder: || Box::new(RssPeaks::default()),
};

/// The counters of an mm_struct (MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS,
/// MM_SHMEMPAGES in include/linux/mm_types_task.h, in this order since 4.5); swap
/// entries are not resident.
const FILE: i64 = 0;
const ANON: i64 = 1;
const SHMEM: i64 = 3;

/// A peak this far above the resident set at the summary is a line of the text stream:
/// memory a poll at the summary would not have seen.
const NOTABLE_EXCURSION: u64 = 64 << 20;

/// The largest resident set of a span, when it was reached, and of what.
#[derive(Debug, Clone, Copy)]
struct Peak {
    at_ns: u64,
    parts: Resident,
}

/// One address space, known by the kernel's hash of its pointer.
#[derive(Debug)]
struct Space {
    pid: i32,
    /// The last other process seen running in it (a CLONE_VM child before its exec).
    guest: Option<i32>,
    comm: Option<String>,
    /// When it last changed.
    last_ns: u64,
    /// The latest value of each counter.
    now: Resident,
    /// The largest sum this span, when the span saw a change.
    peak: Option<Peak>,
}

#[derive(Default)]
struct RssPeaks {
    by_mm: HashMap<u32, Space>,
}

impl Decoder for RssPeaks {
    fn sample(
        &mut self,
        ctx: &mut dyn Context,
        _: usize,
        f: &EventFormat,
        s: &Sample<'_>,
        _: &mut Vec<Event>,
    ) {
        let (Some(mm), Some(member), Some(size)) = (
            int(f, s.raw, "mm_id"),
            int(f, s.raw, "member"),
            int(f, s.raw, "size"),
        ) else {
            return;
        };
        let mm = mm as u32;
        // `curr`: the change is made by a task of that address space, so the sample's pid
        // owns it; otherwise (reclaim, another process's madvise) only a space already
        // known can be named.
        let own = int(f, s.raw, "curr") == Some(1);
        let pid = s.pid as i32;
        let known = match self.by_mm.get_mut(&mm) {
            None => false,
            Some(m) if !own || m.pid == pid || m.guest == Some(pid) => true,
            // A child cloned with CLONE_VM (vfork, posix_spawn) faults in its parent's
            // space until it execs: still the parent's.
            Some(m) if ctx.same_address_space(m.pid, pid) => {
                m.guest = Some(pid);
                true
            }
            Some(_) => false,
        };
        if !known {
            if !own {
                return;
            }
            // New, or its hash now names another process (a freed mm reused): the
            // other counters start from what status says.
            let Some(now) = ctx.resident(pid) else {
                return;
            };
            bound(&mut self.by_mm);
            let comm = ctx.comm(pid);
            self.by_mm.insert(
                mm,
                Space {
                    pid,
                    guest: None,
                    comm,
                    last_ns: s.monotonic_ns,
                    now,
                    peak: None,
                },
            );
        }
        let Some(space) = self.by_mm.get_mut(&mm) else {
            return;
        };
        space.last_ns = s.monotonic_ns;
        let size = size.max(0) as u64;
        match member {
            FILE => space.now.file = size,
            ANON => space.now.anon = size,
            SHMEM => space.now.shmem = size,
            _ => return,
        }
        if space
            .peak
            .is_none_or(|p| space.now.total() > p.parts.total())
        {
            space.peak = Some(Peak {
                at_ns: s.monotonic_ns,
                parts: space.now,
            });
        }
    }

    fn lost(&mut self) {
        // A lost decrease would leave a counter high, and every later sum above the
        // truth: start again from status.
        self.by_mm.clear();
    }

    fn summarize(&mut self, ctx: &mut dyn Context, out: &mut Vec<Event>) {
        // A process that exec'd has left its old space: only its newest is it now.
        let mut newest: HashMap<i32, u64> = HashMap::new();
        for space in self.by_mm.values() {
            let n = newest.entry(space.pid).or_default();
            *n = (*n).max(space.last_ns);
        }
        let mut gone = Vec::new();
        // In pid order, a process's spaces oldest first: the output does not follow
        // the hash map's order.
        let mut spaces: Vec<(&u32, &mut Space)> = self.by_mm.iter_mut().collect();
        spaces.sort_unstable_by_key(|(_, space)| (space.pid, space.last_ns));
        for (&mm, space) in spaces {
            let Some(peak) = space.peak.take() else {
                // Unchanged for a whole span: forgotten, read again when it changes.
                gone.push(mm);
                continue;
            };
            let resident = (newest.get(&space.pid) == Some(&space.last_ns))
                .then(|| ctx.resident(space.pid))
                .flatten();
            let top = peak.parts.total();
            let mut e = Event::new(
                ctx.now(),
                ConceptId::HighWaterMark,
                "rss-peak",
                Some(space.pid),
            );
            e.notable = top >= resident.map_or(0, |r| r.total()) + NOTABLE_EXCURSION;
            e.line = format!(
                "{} RSS peaked at {} at {} (anon {}, file {}, shmem {}), {}",
                who(space.comm.as_deref(), space.pid.into()),
                bytes(top as f64),
                rfc3339(ctx.wall(peak.at_ns)),
                bytes(peak.parts.anon as f64),
                bytes(peak.parts.file as f64),
                bytes(peak.parts.shmem as f64),
                match resident {
                    Some(r) => format!("{} now", bytes(r.total() as f64)),
                    None => "gone now".to_string(),
                }
            );
            out.push(
                e.with("pid", Some(space.pid))
                    .with("comm", space.comm.clone())
                    .with("peak_rss_bytes", Some(top))
                    .with("when", Some(rfc3339(ctx.wall(peak.at_ns))))
                    .with("peak_anon_bytes", Some(peak.parts.anon))
                    .with("peak_file_bytes", Some(peak.parts.file))
                    .with("peak_shmem_bytes", Some(peak.parts.shmem))
                    .with("rss_bytes", resident.map(|r| r.total()))
                    .with("sampled_one_in", Some(SAMPLE_ONE_IN)),
            );
            // The next span starts from exact values (a lagging counter is set right).
            match resident {
                Some(r) => space.now = r,
                None => gone.push(mm),
            }
        }
        for mm in gone {
            self.by_mm.remove(&mm);
        }
    }

    fn finish(&mut self, ctx: &mut dyn Context, out: &mut Vec<Event>) {
        self.summarize(ctx, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::testing::{
        format, record, sample_at, Names, CLONE_VM_CHILD, RESIDENT,
    };

    fn rss_stat(f: &EventFormat, mm: u32, curr: u32, member: i32, size: i64) -> Vec<u8> {
        record(
            f,
            &[
                ("mm_id", mm as i64),
                ("curr", curr as i64),
                ("member", member as i64),
                ("size", size),
            ],
        )
    }

    fn feed(d: &mut RssPeaks, f: &EventFormat, pid: u32, ms: u64, raw: &[u8]) {
        d.sample(
            &mut Names,
            0,
            f,
            &sample_at(0, pid, pid, ms, raw),
            &mut Vec::new(),
        );
    }

    fn summary(d: &mut RssPeaks) -> Vec<Event> {
        let mut out = Vec::new();
        d.summarize(&mut Names, &mut out);
        out
    }

    #[test]
    fn issue_16_a_spike_between_summaries_is_its_peak_with_its_time() {
        let f = format("kmem", "rss_stat");
        let mut d = RssPeaks::default();
        // Anon grows to 301 MiB at 20 ms, then falls back to 1 MiB; file stays as seeded.
        feed(&mut d, &f, 7, 10, &rss_stat(&f, 0xabc, 1, 1, 100 << 20));
        feed(&mut d, &f, 7, 20, &rss_stat(&f, 0xabc, 1, 1, 301 << 20));
        feed(&mut d, &f, 7, 30, &rss_stat(&f, 0xabc, 1, 1, 1 << 20));
        let out = summary(&mut d);
        assert_eq!(out.len(), 1);
        let e = &out[0];
        assert_eq!(e.int_of("pid"), Some(7));
        assert_eq!(
            e.int_of("peak_rss_bytes"),
            Some((301 << 20) + RESIDENT.file as i64)
        );
        assert_eq!(e.int_of("peak_anon_bytes"), Some(301 << 20));
        assert_eq!(
            e.text_of("when").as_deref(),
            Some("1970-01-01T00:00:00.020000Z")
        );
        assert_eq!(e.int_of("rss_bytes"), Some(RESIDENT.total() as i64));
        assert!(e.notable, "300 MiB above what a poll sees now");
    }

    #[test]
    fn issue_16_a_change_made_from_outside_counts_only_for_a_space_already_known() {
        let f = format("kmem", "rss_stat");
        let mut d = RssPeaks::default();
        // kswapd (pid 90, curr 0) reclaims from a space never seen: nobody's.
        feed(&mut d, &f, 90, 10, &rss_stat(&f, 0x1, 0, 0, 500 << 20));
        assert!(summary(&mut d).is_empty());
        // Known through its own fault, then a change from outside still counts for it.
        feed(&mut d, &f, 7, 20, &rss_stat(&f, 0x1, 1, 1, 4 << 20));
        feed(&mut d, &f, 90, 30, &rss_stat(&f, 0x1, 0, 1, 8 << 20));
        let out = summary(&mut d);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].int_of("pid"), Some(7));
        assert_eq!(out[0].int_of("peak_anon_bytes"), Some(8 << 20));
    }

    #[test]
    fn issue_16_each_span_starts_again_from_status_and_a_quiet_space_is_forgotten() {
        let f = format("kmem", "rss_stat");
        let mut d = RssPeaks::default();
        feed(&mut d, &f, 7, 10, &rss_stat(&f, 0x1, 1, 1, 900 << 20));
        assert_eq!(summary(&mut d).len(), 1);
        // The next span: the stale 900 MiB is gone (status said 1 MiB anon), so a file
        // change peaks at status's anon plus it.
        feed(&mut d, &f, 7, 1010, &rss_stat(&f, 0x1, 1, 0, 3 << 20));
        let out = summary(&mut d);
        assert_eq!(
            out[0].int_of("peak_rss_bytes"),
            Some((3 << 20) + RESIDENT.anon as i64)
        );
        assert!(!out[0].notable);
        // No change in a span: no summary, and the space is dropped.
        assert!(summary(&mut d).is_empty());
        assert!(d.by_mm.is_empty());
    }

    #[test]
    fn issue_16_a_reused_hash_is_a_new_process() {
        let f = format("kmem", "rss_stat");
        let mut d = RssPeaks::default();
        feed(&mut d, &f, 7, 10, &rss_stat(&f, 0x1, 1, 1, 900 << 20));
        // Process 7 exited; its mm's hash now belongs to process 8.
        feed(&mut d, &f, 8, 20, &rss_stat(&f, 0x1, 1, 1, 2 << 20));
        let out = summary(&mut d);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].int_of("pid"), Some(8));
        assert_eq!(out[0].int_of("peak_anon_bytes"), Some(2 << 20));
    }

    #[test]
    fn issue_16_a_clone_vm_child_s_faults_stay_its_parent_s() {
        let f = format("kmem", "rss_stat");
        let mut d = RssPeaks::default();
        let child = 7 + CLONE_VM_CHILD as u32;
        feed(&mut d, &f, 7, 10, &rss_stat(&f, 0x1, 1, 1, 400 << 20));
        // posix_spawn's child touches its stack in the parent's space, then execs.
        feed(
            &mut d,
            &f,
            child,
            20,
            &rss_stat(&f, 0x1, 1, 1, (400 << 20) + 8192),
        );
        feed(&mut d, &f, 7, 30, &rss_stat(&f, 0x1, 1, 1, 100 << 20));
        let out = summary(&mut d);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].int_of("pid"), Some(7));
        assert_eq!(out[0].int_of("peak_anon_bytes"), Some((400 << 20) + 8192));
    }

    #[test]
    fn issue_16_the_space_a_process_left_by_exec_is_gone_and_not_notable_when_small() {
        let f = format("kmem", "rss_stat");
        let mut d = RssPeaks::default();
        // Process 7 grows 10 MiB in one space, execs, and changes in its new one.
        feed(&mut d, &f, 7, 10, &rss_stat(&f, 0x1, 1, 1, 10 << 20));
        feed(&mut d, &f, 7, 20, &rss_stat(&f, 0x2, 1, 1, 2 << 20));
        let out = summary(&mut d);
        assert_eq!(out.len(), 2);
        let old = out
            .iter()
            .find(|e| e.int_of("peak_anon_bytes") == Some(10 << 20))
            .unwrap();
        assert_eq!(old.int_of("rss_bytes"), None, "the old image is gone");
        assert!(
            !old.notable,
            "a 12 MiB peak of an image now gone is no news"
        );
        let new = out
            .iter()
            .find(|e| e.int_of("peak_anon_bytes") == Some(2 << 20))
            .unwrap();
        assert_eq!(new.int_of("rss_bytes"), Some(RESIDENT.total() as i64));
    }

    #[test]
    fn issue_16_a_loss_starts_every_space_again_from_status() {
        let f = format("kmem", "rss_stat");
        let mut d = RssPeaks::default();
        feed(&mut d, &f, 7, 10, &rss_stat(&f, 0x1, 1, 1, 900 << 20));
        // The decrease back to 1 MiB was in a lost sample; then a file change comes.
        d.lost();
        feed(&mut d, &f, 7, 30, &rss_stat(&f, 0x1, 1, 0, 3 << 20));
        let out = summary(&mut d);
        assert_eq!(
            out[0].int_of("peak_rss_bytes"),
            Some((3 << 20) + RESIDENT.anon as i64)
        );
    }
}
