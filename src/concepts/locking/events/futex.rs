//! Futex waits: how long threads blocked in the futex calls that wait (FUTEX_WAIT,
//! _WAIT_BITSET, _LOCK_PI, _LOCK_PI2, _WAIT_REQUEUE_PI: what pthread mutexes, condition
//! variables, Rust's and Go's locks park on), per process and futex word, from
//! `syscalls:sys_enter_futex` to `sys_exit_futex` on the same thread.
//!
//! The kernel filter keeps only the waiting calls' entries; exits cannot be filtered
//! by operation (a wake's exit looks like a wait's), so every futex exit is a sample
//! and one without an entry is dropped. A thread still blocked at a summary (a
//! deadlock never exits its wait) is reported as waiting, with for how long; where the
//! words say who holds them (a PI futex holds its owner's TID, a glibc mutex keeps it
//! beside the word), threads of a process waiting in a cycle are named as a deadlock.
//! Only waits entered while watching are known.
//!
//! futex2's futex_wait and futex_waitv (Linux 6.7) are not followed: glibc, Rust's std
//! and Go park on futex(2).

use std::collections::HashMap;

use syslens_probe::trace::{Rate, Sample};
use syslens_probe::tracefs::EventFormat;

use crate::concepts::ConceptId;
use crate::model::event::{
    bound, int, who, Context, Cost, Decoder, Event, EventSource, Feed, Latencies, TracepointSpec,
    TALLIES_MAX,
};
use crate::model::units::duration;

/// The waiting operations, each with and without FUTEX_PRIVATE_FLAG (128) and
/// FUTEX_CLOCK_REALTIME (256): WAIT 0, LOCK_PI 6, WAIT_BITSET 9, WAIT_REQUEUE_PI 11,
/// LOCK_PI2 13. The filter language has no masking comparison, so each is spelled out.
const WAITING_OPS: &str = "op == 0 || op == 128 || op == 256 || op == 384 \
    || op == 6 || op == 134 || op == 262 || op == 390 \
    || op == 9 || op == 137 || op == 265 || op == 393 \
    || op == 11 || op == 139 || op == 267 || op == 395 \
    || op == 13 || op == 141 || op == 269 || op == 397";

/// `futex-wait` (a summary per process and futex word).
pub const SOURCE: EventSource = EventSource {
    kind: "futex-wait",
    concepts: &[ConceptId::Locking],
    tracepoints: &[
        TracepointSpec {
            system: "syscalls",
            name: "sys_enter_futex",
            filter: Some(WAITING_OPS),
            rate: Rate::OneIn(1),
            kernel_stack: false,
        },
        TracepointSpec {
            system: "syscalls",
            name: "sys_exit_futex",
            filter: None,
            rate: Rate::OneIn(1),
            kernel_stack: false,
        },
    ],
    feed: Feed::Tracepoints,
    cost: Cost::Heavy("a syscall entry tracepoint adds a hook to every syscall of every task (a getppid loop ran at 0.73x, bench/watch.sh 2026-12-07), and every futex call's exit is a sample"),
    decoder: || Box::new(FutexWaits::default()),
};

const ENTER: usize = 0;

/// -ETIMEDOUT: the wait's timeout ran out.
const ETIMEDOUT: i64 = -110;

/// A process that waited this long on one futex word, or has a thread blocked on it
/// this long, is a line of the text stream; the others are counted in it.
const NOTABLE_WAIT_SECONDS: f64 = 0.010;
/// How long both threads of a cycle must have been blocked for it to be named.
const DEADLOCK_MIN_SECONDS: f64 = 1.0;

/// Threads kept per tally to count them (a word of a big pool says "64 or more").
const THREADS_MAX: usize = 64;

/// The operation without FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME.
const CMD_MASK: i64 = 127;
const WAIT: i64 = 0;
const LOCK_PI: i64 = 6;
const WAIT_BITSET: i64 = 9;
const LOCK_PI2: i64 = 13;
/// The owner's TID in a PI futex word (FUTEX_TID_MASK).
const TID_MASK: u32 = 0x3fff_ffff;
/// Where glibc keeps a mutex's owner: `__owner`, the third int of
/// `struct __pthread_mutex_s`, after the lock word and the count.
const GLIBC_OWNER_OFFSET: u64 = 8;

/// The thread that holds the word `b` waits on, as the process's memory says.
fn holder(ctx: &mut dyn Context, b: &Begun) -> Option<u32> {
    let owner = match b.op & CMD_MASK {
        LOCK_PI | LOCK_PI2 => ctx.read_u32(b.pid, b.uaddr)? & TID_MASK,
        WAIT | WAIT_BITSET => ctx.read_u32(b.pid, b.uaddr.checked_add(GLIBC_OWNER_OFFSET)?)?,
        _ => return None,
    };
    (owner != 0).then_some(owner)
}

/// How long the thread of `b` has been blocked, by the context's clock.
fn blocked_seconds(ctx: &dyn Context, b: &Begun) -> f64 {
    ctx.now()
        .duration_since(ctx.wall(b.since_ns))
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The cycles of a waits-for graph (a thread waits for at most one other), each once,
/// from its lowest thread. Each thread is walked once: a walk stops at a thread an
/// earlier walk reached, so a graph of any shape costs time linear in its size.
fn cycles(waits_for: &HashMap<u32, u32>) -> Vec<Vec<u32>> {
    let mut walked: HashMap<u32, usize> = HashMap::with_capacity(waits_for.len());
    let mut out = Vec::new();
    for (walk, &start) in waits_for.keys().enumerate() {
        let mut path = Vec::new();
        let mut at = start;
        loop {
            match walked.get(&at) {
                // Back on this walk's own path: from there on it is a cycle.
                Some(&w) if w == walk => {
                    if let Some(from) = path.iter().position(|&t| t == at) {
                        let mut cycle: Vec<u32> = path.split_off(from);
                        let lowest = (0..cycle.len()).min_by_key(|&k| cycle[k]).unwrap_or(0);
                        cycle.rotate_left(lowest);
                        out.push(cycle);
                    }
                    break;
                }
                // An earlier walk went on from here: its cycle, if any, is found.
                Some(_) => break,
                None => {}
            }
            walked.insert(at, walk);
            path.push(at);
            match waits_for.get(&at) {
                Some(&next) => at = next,
                None => break,
            }
        }
    }
    out.sort_unstable();
    out
}

#[derive(Default)]
struct FutexWaits {
    /// Waits entered and not exited, by thread.
    begun: HashMap<u32, Begun>,
    by_word: HashMap<(i32, u64), Tally>,
}

#[derive(Clone, Copy)]
struct Begun {
    pid: i32,
    uaddr: u64,
    op: i64,
    since_ns: u64,
}

#[derive(Default)]
struct Tally {
    /// Read at its first wait: a short-lived process is gone by the summary.
    comm: Option<String>,
    waits: Latencies,
    timeouts: u64,
    threads: Vec<u32>,
}

impl FutexWaits {
    /// The threads blocked now that wait in a cycle for words the others hold, by the
    /// words they wait on: what each waits for and who holds it.
    fn deadlocks(&self, ctx: &mut dyn Context) -> HashMap<(i32, u64), String> {
        // Only waits that have lasted: a wait that ended after the ring was read, and a
        // lock handed on meanwhile, could show a cycle that never was; a deadlock stays.
        let old: HashMap<u32, Begun> = self
            .begun
            .iter()
            .filter(|(_, b)| blocked_seconds(ctx, b) >= DEADLOCK_MIN_SECONDS)
            .map(|(&t, &b)| (t, b))
            .collect();
        // A cycle needs two threads of one process: no other process's memory is read.
        let mut per_pid: HashMap<i32, usize> = HashMap::new();
        for b in old.values() {
            *per_pid.entry(b.pid).or_default() += 1;
        }
        let mut waits_for = HashMap::new();
        for (&tid, b) in old.iter().filter(|(_, b)| per_pid[&b.pid] >= 2) {
            // Only another blocked thread of the same process: a word that is not a
            // lock's (a condition variable's) says nothing that could close a cycle. A
            // thread relocking its own mutex is its own deadlock, but no cycle of
            // others: it shows by `blocked_seconds`.
            if let Some(h) = holder(ctx, b).filter(|&h| h != tid) {
                if old.get(&h).is_some_and(|hb| hb.pid == b.pid) {
                    waits_for.insert(tid, h);
                }
            }
        }
        let mut out = HashMap::new();
        for cycle in cycles(&waits_for) {
            let text = cycle
                .iter()
                .map(|t| {
                    let b = &self.begun[t];
                    format!(
                        "thread {t} waits for {:#x}, held by {}",
                        b.uaddr, waits_for[t]
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            for t in &cycle {
                let b = &self.begun[t];
                out.insert((b.pid, b.uaddr), text.clone());
            }
        }
        out
    }

    /// The tally of a word; past the bound, a new word of a process folds into its word
    /// 0, unless it is `kept` (a deadlock's, which must be named by its own word).
    fn tally(
        &mut self,
        ctx: &mut dyn Context,
        (pid, uaddr): (i32, u64),
        tid: u32,
        kept: bool,
    ) -> &mut Tally {
        let key = if !kept
            && self.by_word.len() >= TALLIES_MAX
            && !self.by_word.contains_key(&(pid, uaddr))
        {
            (pid, 0)
        } else {
            (pid, uaddr)
        };
        let t = self.by_word.entry(key).or_insert_with(|| Tally {
            comm: ctx.comm(pid),
            ..Tally::default()
        });
        if t.threads.len() < THREADS_MAX && !t.threads.contains(&tid) {
            t.threads.push(tid);
        }
        t
    }
}

impl Decoder for FutexWaits {
    fn sample(
        &mut self,
        ctx: &mut dyn Context,
        index: usize,
        f: &EventFormat,
        s: &Sample<'_>,
        _: &mut Vec<Event>,
    ) {
        if index == ENTER {
            let Some(uaddr) = int(f, s.raw, "uaddr") else {
                return;
            };
            bound(&mut self.begun);
            self.begun.insert(
                s.tid,
                Begun {
                    pid: s.pid as i32,
                    uaddr: uaddr as u64,
                    op: int(f, s.raw, "op").unwrap_or(-1),
                    since_ns: s.monotonic_ns,
                },
            );
            return;
        }
        // A wake's exit, or a wait entered before watch began.
        let Some(b) = self.begun.remove(&s.tid) else {
            return;
        };
        let secs = s.monotonic_ns.saturating_sub(b.since_ns) as f64 / 1e9;
        let timed_out = int(f, s.raw, "ret") == Some(ETIMEDOUT);
        let t = self.tally(ctx, (b.pid, b.uaddr), s.tid, false);
        t.waits.add(secs);
        t.timeouts += u64::from(timed_out);
    }

    fn lost(&mut self) {
        // A lost exit would pair its entry with a later wait's exit.
        self.begun.clear();
    }

    fn summarize(&mut self, ctx: &mut dyn Context, out: &mut Vec<Event>) {
        // Threads blocked now, by word: how many, and the longest so far.
        let mut blocked: HashMap<(i32, u64), (u64, f64)> = HashMap::new();
        let begun: Vec<(u32, Begun)> = self.begun.iter().map(|(&t, &b)| (t, b)).collect();
        let deadlocks = self.deadlocks(ctx);
        for (tid, b) in begun {
            let secs = blocked_seconds(ctx, &b);
            let entry = blocked.entry((b.pid, b.uaddr)).or_default();
            entry.0 += 1;
            entry.1 = entry.1.max(secs);
            let kept = deadlocks.contains_key(&(b.pid, b.uaddr));
            self.tally(ctx, (b.pid, b.uaddr), tid, kept);
        }
        for ((pid, uaddr), mut t) in self.by_word.drain() {
            let comm = t.comm.take();
            let spread = t.waits.spread();
            let (blocked_now, blocked_for) =
                blocked.get(&(pid, uaddr)).copied().unwrap_or_default();
            let mut e = Event::new(ctx.now(), ConceptId::Locking, "futex-wait", Some(pid));
            e.notable = spread.is_some_and(|s| s.max >= NOTABLE_WAIT_SECONDS)
                || blocked_for >= NOTABLE_WAIT_SECONDS;
            let threads = if t.threads.len() >= THREADS_MAX {
                format!("{THREADS_MAX} or more threads")
            } else {
                format!("{} threads", t.threads.len())
            };
            e.line = format!("{} futex {uaddr:#x}: ", who(comm.as_deref(), pid.into()));
            match spread {
                Some(s) => e.line.push_str(&format!(
                    "{} waits by {threads}, {s}, total {}",
                    t.waits.count,
                    duration(t.waits.total)
                )),
                None => e.line.push_str("no wait ended"),
            }
            if blocked_now > 0 {
                e.line.push_str(&format!(
                    "; {blocked_now} still blocked, the longest for {}",
                    duration(blocked_for)
                ));
            }
            let deadlock = deadlocks.get(&(pid, uaddr)).cloned();
            if let Some(d) = &deadlock {
                e.notable = true;
                e.line.push_str(&format!("; DEADLOCK: {d}"));
            }
            out.push(
                e.with("pid", Some(pid))
                    .with("comm", comm)
                    .with("uaddr", Some(format!("{uaddr:#x}")))
                    .with("threads", Some(t.threads.len() as u64))
                    .with("waits", Some(t.waits.count))
                    .with("timeouts", Some(t.timeouts))
                    .with("wait_seconds", Some(t.waits.total))
                    .with("p50_wait_seconds", spread.map(|s| s.p50))
                    .with("p99_wait_seconds", spread.map(|s| s.p99))
                    .with("max_wait_seconds", spread.map(|s| s.max))
                    .with("blocked_now", Some(blocked_now))
                    .with("blocked_seconds", (blocked_now > 0).then_some(blocked_for))
                    .with("deadlock", deadlock),
            );
        }
    }

    fn finish(&mut self, ctx: &mut dyn Context, out: &mut Vec<Event>) {
        self.summarize(ctx, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::testing::{format, record, sample_at, Names};

    /// A sample to feed: tracepoint, pid, tid, ms, uaddr or ret.
    type Fed = (usize, u32, u32, u64, i64);

    fn feed(d: &mut FutexWaits, samples: &[Fed]) -> Vec<Event> {
        let formats = [
            format("syscalls", "sys_enter_futex"),
            format("syscalls", "sys_exit_futex"),
        ];
        let mut out = Vec::new();
        for &(index, pid, tid, ms, value) in samples {
            let field = if index == ENTER { "uaddr" } else { "ret" };
            let raw = record(&formats[index], &[(field, value)]);
            let s = sample_at(index, pid, tid, ms, &raw);
            d.sample(&mut Names, index, &formats[index], &s, &mut out);
        }
        d.summarize(&mut Names, &mut out);
        out
    }

    const EXIT: usize = 1;

    #[test]
    fn issue_16_waits_are_timed_per_process_and_word_and_a_blocked_thread_is_shown() {
        let mut d = FutexWaits::default();
        let events = feed(
            &mut d,
            &[
                // Two threads wait on 0x1000: 10 ms, then 30 ms ending in a timeout.
                (ENTER, 5, 6, 0, 0x1000),
                (EXIT, 5, 6, 10, 0),
                (ENTER, 5, 7, 20, 0x1000),
                (EXIT, 5, 7, 50, ETIMEDOUT),
                // A wake's exit (no entry) is no wait; thread 8 blocks from 40 ms on.
                (EXIT, 5, 9, 55, 1),
                (ENTER, 5, 8, 40, 0x2000),
            ],
        );
        assert_eq!(events.len(), 2, "{events:?}");
        let word = |a: &str| {
            events
                .iter()
                .find(|e| e.text_of("uaddr").as_deref() == Some(a))
                .unwrap()
        };
        let w = word("0x1000");
        assert_eq!(w.int_of("waits"), Some(2));
        assert_eq!(w.int_of("threads"), Some(2));
        assert_eq!(w.int_of("timeouts"), Some(1));
        assert!((w.float_of("wait_seconds").unwrap() - 0.040).abs() < 1e-9);
        assert_eq!(w.float_of("max_wait_seconds"), Some(0.030));
        assert_eq!(w.int_of("blocked_now"), Some(0));
        let b = word("0x2000");
        assert_eq!(b.int_of("waits"), Some(0));
        assert_eq!(b.int_of("blocked_now"), Some(1));
        // Blocked from 40 ms to now, 100 ms.
        assert_eq!(b.float_of("blocked_seconds"), Some(0.060));
        assert!(b.notable && b.line.contains("still blocked"), "{}", b.line);
        // Still blocked at the next summary, with no new wait.
        let again = feed(&mut d, &[]);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].int_of("blocked_now"), Some(1));
    }

    #[test]
    fn issue_16_a_cycle_of_waiting_threads_is_found_once_and_a_chain_is_none() {
        // 1 -> 2 -> 1 is a deadlock; 3 waits for 1 (stuck behind it, not in it);
        // 5 -> 6 ends at a thread that runs; 7 -> 8 -> 9 -> 7 is one cycle.
        let waits_for: HashMap<u32, u32> =
            [(1, 2), (2, 1), (3, 1), (5, 6), (7, 8), (8, 9), (9, 7)].into();
        assert_eq!(cycles(&waits_for), [vec![1, 2], vec![7, 8, 9]]);
        assert!(cycles(&HashMap::new()).is_empty());
    }

    /// [`Names`] with readable words and a clock at `now_ms`; it counts its reads.
    struct Memory {
        now_ms: u64,
        words: HashMap<(i32, u64), u32>,
        reads: usize,
    }

    impl Context for Memory {
        fn wall(&self, monotonic_ns: u64) -> std::time::SystemTime {
            Names.wall(monotonic_ns)
        }
        fn comm(&mut self, pid: i32) -> Option<String> {
            Names.comm(pid)
        }
        fn nofile_limit(&mut self, pid: i32) -> Option<u64> {
            Names.nofile_limit(pid)
        }
        fn mapping(&mut self, pid: i32, addr: u64) -> Option<crate::model::event::MappingKind> {
            Names.mapping(pid, addr)
        }
        fn now(&self) -> std::time::SystemTime {
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(self.now_ms)
        }
        fn kernel_caller(&mut self, stack: &[u64]) -> Option<String> {
            Names.kernel_caller(stack)
        }
        fn resident(&mut self, pid: i32) -> Option<crate::model::event::Resident> {
            Names.resident(pid)
        }
        fn same_address_space(&mut self, a: i32, b: i32) -> bool {
            Names.same_address_space(a, b)
        }
        fn read_u32(&mut self, pid: i32, addr: u64) -> Option<u32> {
            self.reads += 1;
            self.words.get(&(pid, addr)).copied()
        }
    }

    #[test]
    fn issue_16_a_deadlock_is_named_once_its_threads_have_waited_a_second() {
        let begun = |pid, uaddr, op| Begun {
            pid,
            uaddr,
            op,
            since_ns: 0,
        };
        let mut d = FutexWaits {
            // Threads 11 and 12 of process 5 each wait for the glibc mutex the other
            // holds (its owner at the word + 8); thread 21 of process 6 waits alone on
            // a PI futex; thread 13 waits behind 11.
            begun: [
                (11, begun(5, 0x100, WAIT)),
                (12, begun(5, 0x200, WAIT)),
                (13, begun(5, 0x100, WAIT)),
                (21, begun(6, 0x300, LOCK_PI)),
            ]
            .into(),
            by_word: HashMap::new(),
        };
        let words = [((5, 0x108), 12), ((5, 0x208), 11), ((6, 0x300), 22)].into();
        let mut young = Memory {
            now_ms: 500,
            words,
            reads: 0,
        };
        assert!(
            d.deadlocks(&mut young).is_empty(),
            "half a second is no deadlock"
        );
        assert_eq!(young.reads, 0, "no memory read for young waits");
        let mut old = Memory {
            now_ms: 2000,
            ..young
        };
        let found = d.deadlocks(&mut old);
        let text = "thread 11 waits for 0x100, held by 12; thread 12 waits for 0x200, held by 11";
        assert_eq!(found.get(&(5, 0x100)).map(String::as_str), Some(text));
        assert_eq!(found.get(&(5, 0x200)).map(String::as_str), Some(text));
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(old.reads, 3, "process 6 has one blocked thread: not read");
        // With the tallies full, the deadlock's words are still named by themselves.
        d.by_word = (0..TALLIES_MAX as u64)
            .map(|w| ((7, 0x1000 + w), Tally::default()))
            .collect();
        let mut out = Vec::new();
        d.summarize(&mut old, &mut out);
        for word in ["0x100", "0x200"] {
            let e = out
                .iter()
                .find(|e| e.text_of("uaddr").as_deref() == Some(word))
                .unwrap_or_else(|| panic!("{word} folded into word 0"));
            assert_eq!(e.text_of("deadlock").as_deref(), Some(text));
        }
    }

    #[test]
    fn issue_16_a_long_chain_into_a_cycle_gives_the_cycle_alone() {
        // 100 000 threads queue behind a two-thread deadlock (a walk per thread that
        // followed the whole chain would take hours); the cycle is named once.
        let mut waits_for: HashMap<u32, u32> = (10..100_010).map(|t| (t + 1, t)).collect();
        waits_for.insert(10, 3);
        waits_for.insert(3, 10);
        assert_eq!(cycles(&waits_for), [vec![3, 10]]);
    }
}
