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
//! Waits begun before the watch (or before samples were lost) are found by a scan of
//! every thread's /proc syscall file, timed from then; a thread blocked a second or more
//! is checked there at each summary, and forgotten once it is gone or out of its wait
//! (a process killed mid-wait never exits the call).
//!
//! futex2's futex_wait and futex_waitv (Linux 6.7) are not followed: glibc, Rust's std
//! and Go park on futex(2).

use std::collections::HashMap;

use syslens_probe::trace::{Rate, Sample};
use syslens_probe::tracefs::EventFormat;

use crate::concepts::locking::SYS_FUTEX;
use crate::concepts::ConceptId;
use crate::model::event::{
    bound, int, who, Context, Cost, Decoder, Event, EventSource, Feed, Latencies, MemoryRead,
    ThreadCall, TracepointSpec, TALLIES_MAX,
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

/// How often, at most, the threads blocked are looked for again after a loss.
const RESCAN_MIN_NS: u64 = 1_000_000_000;

/// Threads kept per tally to count them (a word of a big pool says "64 or more").
const THREADS_MAX: usize = 64;

/// The operation without FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME.
const CMD_MASK: i64 = 127;
const WAIT: i64 = 0;
const LOCK_PI: i64 = 6;
const WAIT_BITSET: i64 = 9;
const WAIT_REQUEUE_PI: i64 = 11;
const LOCK_PI2: i64 = 13;
/// The owner's TID in a PI futex word (FUTEX_TID_MASK).
const TID_MASK: u32 = 0x3fff_ffff;
/// Where glibc keeps a mutex's owner: `__owner`, the third int of
/// `struct __pthread_mutex_s`, after the lock word and the count.
const GLIBC_OWNER_OFFSET: u64 = 8;

/// Why a deadlock was not looked for among a process's blocked threads.
const MEMORY_REFUSED: &str = "its memory is refused (process_vm_readv needs ptrace access: \
    CAP_SYS_PTRACE, and Yama's ptrace_scope below 3)";

/// Whether a futex operation is one of the waits followed (see [`WAITING_OPS`]).
fn is_wait(op: i64) -> bool {
    matches!(
        op & CMD_MASK,
        WAIT | LOCK_PI | WAIT_BITSET | WAIT_REQUEUE_PI | LOCK_PI2
    )
}

/// The thread that holds the word `b` waits on, as the process's memory says, by its
/// TID in the process's own PID namespace; `Ok(None)` when the word names none.
fn holder(ctx: &mut dyn Context, b: &Begun) -> Result<Option<u32>, MemoryRead> {
    let owner = match b.op & CMD_MASK {
        LOCK_PI | LOCK_PI2 => ctx.read_u32(b.pid, b.uaddr)? & TID_MASK,
        WAIT | WAIT_BITSET => {
            let at = b.uaddr.checked_add(GLIBC_OWNER_OFFSET);
            ctx.read_u32(b.pid, at.ok_or(MemoryRead::Unreadable)?)?
        }
        _ => return Ok(None),
    };
    Ok((owner != 0).then_some(owner))
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
    /// Whether the threads blocked before the tracepoints saw them were looked for
    /// since the start or the last loss.
    scanned: bool,
    /// When they were last looked for (CLOCK_MONOTONIC).
    scanned_ns: Option<u64>,
}

#[derive(Clone, Copy)]
struct Begun {
    pid: i32,
    uaddr: u64,
    op: i64,
    since_ns: u64,
    /// With a timeout: it ends by itself, so it closes no deadlock.
    timed: bool,
    /// Found blocked by a scan of /proc: it began before `since_ns`.
    found: bool,
}

/// A word's threads blocked now.
#[derive(Default, Clone, Copy)]
struct Blocked {
    threads: u64,
    /// Of them, found by a scan: their time counts from the scan.
    found: u64,
    longest_seconds: f64,
    /// The longest of those whose wait was seen to begin.
    longest_seen_seconds: f64,
}

/// What [`FutexWaits::deadlocks`] says of the words of threads blocked long enough.
#[derive(Default)]
struct Deadlocks {
    /// The words of threads in a cycle, with the cycle told.
    named: HashMap<(i32, u64), String>,
    /// The words of threads whose holders could not be read, with why.
    unchecked: HashMap<(i32, u64), &'static str>,
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
    /// Adds the threads blocked in a futex wait now that no entry sample announced
    /// (begun before the watch, or before samples were lost), timed from now.
    fn scan(&mut self, ctx: &mut dyn Context) {
        let now_ns = ctx.monotonic_ns();
        for (pid, tid, args) in ctx.threads_in_syscall(SYS_FUTEX) {
            let op = args[1] as i64;
            if !is_wait(op) || self.begun.contains_key(&tid) {
                continue;
            }
            bound(&mut self.begun);
            self.begun.insert(
                tid,
                Begun {
                    pid,
                    uaddr: args[0],
                    op,
                    since_ns: now_ns,
                    timed: args[3] != 0,
                    found: true,
                },
            );
        }
    }

    /// Forgets the threads blocked a second or more that /proc says are gone or no
    /// longer in their wait: a process killed mid-wait never exits the call.
    fn confirm(&mut self, ctx: &mut dyn Context) {
        let old: Vec<(u32, Begun)> = self
            .begun
            .iter()
            .filter(|(_, b)| blocked_seconds(ctx, b) >= DEADLOCK_MIN_SECONDS)
            .map(|(&t, &b)| (t, b))
            .collect();
        for (tid, b) in old {
            let still = match ctx.thread_call(b.pid, tid) {
                ThreadCall::In { nr, args } => nr == SYS_FUTEX && args[0] == b.uaddr,
                ThreadCall::Elsewhere | ThreadCall::Gone => false,
                ThreadCall::Unknown => true,
            };
            if !still {
                self.begun.remove(&tid);
            }
        }
    }

    /// The threads blocked now that wait in a cycle for words the others hold, by the
    /// words they wait on: what each waits for and who holds it.
    fn deadlocks(&self, ctx: &mut dyn Context) -> Deadlocks {
        // Only waits that have lasted: a wait that ended after the ring was read, and a
        // lock handed on meanwhile, could show a cycle that never was; a deadlock
        // stays. A timed wait ends by itself.
        let old: HashMap<u32, Begun> = self
            .begun
            .iter()
            .filter(|(_, b)| !b.timed && blocked_seconds(ctx, b) >= DEADLOCK_MIN_SECONDS)
            .map(|(&t, &b)| (t, b))
            .collect();
        // A cycle needs two threads of one process: no other process's memory is read.
        let mut per_pid: HashMap<i32, usize> = HashMap::new();
        for b in old.values() {
            *per_pid.entry(b.pid).or_default() += 1;
        }
        // A word in a container's memory names its owner by the TID in the
        // container's PID namespace.
        let mut in_namespace: HashMap<i32, Option<HashMap<u32, u32>>> = HashMap::new();
        let mut out = Deadlocks::default();
        let mut waits_for = HashMap::new();
        for (&tid, b) in old.iter().filter(|(_, b)| per_pid[&b.pid] >= 2) {
            // Only another blocked thread of the same process: a word that is not a
            // lock's (a condition variable's) says nothing that could close a cycle. A
            // thread relocking its own mutex is its own deadlock, but no cycle of
            // others: it shows by `blocked_seconds`.
            let owner = match holder(ctx, b) {
                Ok(Some(owner)) => owner,
                Ok(None) | Err(MemoryRead::Unreadable) => continue,
                Err(MemoryRead::Refused) => {
                    out.unchecked.insert((b.pid, b.uaddr), MEMORY_REFUSED);
                    continue;
                }
            };
            let ids = in_namespace
                .entry(b.pid)
                .or_insert_with(|| ctx.namespace_tids(b.pid));
            let Some(h) = ids.as_ref().map_or(Some(owner), |m| m.get(&owner).copied()) else {
                continue;
            };
            if h != tid && old.get(&h).is_some_and(|hb| hb.pid == b.pid) {
                waits_for.insert(tid, h);
            }
        }
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
                out.named.insert((b.pid, b.uaddr), text.clone());
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
                    timed: int(f, s.raw, "utime").is_some_and(|t| t != 0),
                    found: false,
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
        // A lost exit would pair its entry with a later wait's exit; who is blocked
        // is found again by a scan.
        self.begun.clear();
        self.scanned = false;
    }

    fn tick(&mut self, ctx: &mut dyn Context, _: &mut Vec<Event>) {
        // After the ring was read: a wait that ends after the scan has its exit ahead.
        // A storm that loses samples at every read rescans the host once a second.
        let now_ns = ctx.monotonic_ns();
        let due = self
            .scanned_ns
            .is_none_or(|at| now_ns.saturating_sub(at) >= RESCAN_MIN_NS);
        if !self.scanned && due {
            self.scanned = true;
            self.scanned_ns = Some(now_ns);
            self.scan(ctx);
        }
    }

    fn summarize(&mut self, ctx: &mut dyn Context, out: &mut Vec<Event>) {
        self.confirm(ctx);
        // Threads blocked now, by word: how many, and the longest so far.
        let mut blocked: HashMap<(i32, u64), Blocked> = HashMap::new();
        let begun: Vec<(u32, Begun)> = self.begun.iter().map(|(&t, &b)| (t, b)).collect();
        let deadlocks = self.deadlocks(ctx);
        for (tid, b) in begun {
            let secs = blocked_seconds(ctx, &b);
            let entry = blocked.entry((b.pid, b.uaddr)).or_default();
            entry.threads += 1;
            entry.found += u64::from(b.found);
            entry.longest_seconds = entry.longest_seconds.max(secs);
            if !b.found {
                entry.longest_seen_seconds = entry.longest_seen_seconds.max(secs);
            }
            let kept = deadlocks.named.contains_key(&(b.pid, b.uaddr));
            self.tally(ctx, (b.pid, b.uaddr), tid, kept);
        }
        for ((pid, uaddr), mut t) in self.by_word.drain() {
            let comm = t.comm.take();
            let spread = t.waits.spread();
            let b = blocked.get(&(pid, uaddr)).copied().unwrap_or_default();
            let mut e = Event::new(ctx.now(), ConceptId::Locking, "futex-wait", Some(pid));
            // A thread parked since before the watch is the host's state, not news.
            e.notable = spread.is_some_and(|s| s.max >= NOTABLE_WAIT_SECONDS)
                || b.longest_seen_seconds >= NOTABLE_WAIT_SECONDS;
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
            if b.threads > 0 {
                e.line.push_str(&format!(
                    "; {} still blocked, the longest for {}",
                    b.threads,
                    duration(b.longest_seconds)
                ));
                if b.found > 0 {
                    e.line.push_str(&format!(
                        " ({} blocked before the watch saw them, timed from then)",
                        b.found
                    ));
                }
            }
            let deadlock = deadlocks.named.get(&(pid, uaddr)).cloned();
            if let Some(d) = &deadlock {
                e.notable = true;
                e.line.push_str(&format!("; DEADLOCK: {d}"));
            }
            let unchecked = deadlocks.unchecked.get(&(pid, uaddr)).copied();
            if let Some(why) = unchecked {
                e.line.push_str(&format!("; deadlock not checked: {why}"));
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
                    .with("blocked_now", Some(b.threads))
                    .with("blocked_before_watch", Some(b.found))
                    .with(
                        "blocked_seconds",
                        (b.threads > 0).then_some(b.longest_seconds),
                    )
                    .with("deadlock", deadlock)
                    .with("deadlock_unchecked", unchecked),
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

    /// [`Names`] with readable words, threads found in futex calls, PID namespaces and
    /// a clock at `now_ms`; it counts its reads and scans.
    #[derive(Default)]
    struct Memory {
        now_ms: u64,
        words: HashMap<(i32, u64), u32>,
        /// Every read is refused.
        refused: bool,
        reads: usize,
        /// What a scan finds in futex calls.
        in_futex: Vec<(i32, u32, [u64; 6])>,
        scans: usize,
        /// What each thread does (the others: unknown).
        calls: HashMap<u32, ThreadCall>,
        namespaces: HashMap<i32, HashMap<u32, u32>>,
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
        fn read_u32(&mut self, pid: i32, addr: u64) -> Result<u32, MemoryRead> {
            self.reads += 1;
            if self.refused {
                return Err(MemoryRead::Refused);
            }
            self.words
                .get(&(pid, addr))
                .copied()
                .ok_or(MemoryRead::Unreadable)
        }
        fn monotonic_ns(&self) -> u64 {
            self.now_ms * 1_000_000
        }
        fn threads_in_syscall(&mut self, nr: i64) -> Vec<(i32, u32, [u64; 6])> {
            assert_eq!(nr, SYS_FUTEX);
            self.scans += 1;
            self.in_futex.clone()
        }
        fn thread_call(&mut self, _: i32, tid: u32) -> ThreadCall {
            self.calls.get(&tid).copied().unwrap_or(ThreadCall::Unknown)
        }
        fn namespace_tids(&mut self, pid: i32) -> Option<HashMap<u32, u32>> {
            self.namespaces.get(&pid).cloned()
        }
    }

    /// A wait of process `pid` on `uaddr` begun at the clock's zero, untimed.
    fn begun(pid: i32, uaddr: u64, op: i64) -> Begun {
        Begun {
            pid,
            uaddr,
            op,
            since_ns: 0,
            timed: false,
            found: false,
        }
    }

    /// Threads 11 and 12 of process 5, each waiting for the glibc mutex the other
    /// holds, owners named by `owners` (their TIDs as the process sees them).
    fn crossed(owners: (u32, u32)) -> (FutexWaits, HashMap<(i32, u64), u32>) {
        let d = FutexWaits {
            begun: [(11, begun(5, 0x100, WAIT)), (12, begun(5, 0x200, WAIT))].into(),
            ..FutexWaits::default()
        };
        (d, [((5, 0x108), owners.1), ((5, 0x208), owners.0)].into())
    }

    #[test]
    fn issue_16_a_deadlock_is_named_once_its_threads_have_waited_a_second() {
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
            ..FutexWaits::default()
        };
        let words = [((5, 0x108), 12), ((5, 0x208), 11), ((6, 0x300), 22)].into();
        let mut young = Memory {
            now_ms: 500,
            words,
            ..Memory::default()
        };
        assert!(
            d.deadlocks(&mut young).named.is_empty(),
            "half a second is no deadlock"
        );
        assert_eq!(young.reads, 0, "no memory read for young waits");
        let mut old = Memory {
            now_ms: 2000,
            ..young
        };
        let found = d.deadlocks(&mut old).named;
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

    #[test]
    fn issue_16_a_deadlock_inside_a_pid_namespace_is_named_by_the_hosts_tids() {
        // In a container, the owners are its TIDs 2 and 3: threads 11 and 12 here.
        let (d, words) = crossed((2, 3));
        let mut host = Memory {
            now_ms: 2000,
            words: words.clone(),
            ..Memory::default()
        };
        assert!(
            d.deadlocks(&mut host).named.is_empty(),
            "2 and 3 are no threads of ours"
        );
        let mut container = Memory {
            now_ms: 2000,
            words,
            namespaces: [(5, [(2, 11), (3, 12)].into())].into(),
            ..Memory::default()
        };
        let named = d.deadlocks(&mut container).named;
        assert_eq!(
            named.get(&(5, 0x100)).map(String::as_str),
            Some("thread 11 waits for 0x100, held by 12; thread 12 waits for 0x200, held by 11")
        );
    }

    #[test]
    fn issue_16_timed_waits_in_a_cycle_are_no_deadlock() {
        let (mut d, words) = crossed((11, 12));
        d.begun.get_mut(&12).unwrap().timed = true;
        let mut ctx = Memory {
            now_ms: 2000,
            words,
            ..Memory::default()
        };
        assert!(d.deadlocks(&mut ctx).named.is_empty());
        d.begun.get_mut(&12).unwrap().timed = false;
        assert_eq!(d.deadlocks(&mut ctx).named.len(), 2);
    }

    #[test]
    fn issue_16_refused_memory_says_the_deadlock_was_not_checked() {
        let (mut d, words) = crossed((11, 12));
        let mut ctx = Memory {
            now_ms: 2000,
            words,
            refused: true,
            ..Memory::default()
        };
        let mut out = Vec::new();
        d.summarize(&mut ctx, &mut out);
        assert_eq!(out.len(), 2);
        for e in &out {
            assert_eq!(e.text_of("deadlock"), None);
            assert_eq!(
                e.text_of("deadlock_unchecked").as_deref(),
                Some(MEMORY_REFUSED)
            );
            assert!(e.line.contains("deadlock not checked"), "{}", e.line);
        }
    }

    #[test]
    fn issue_16_threads_blocked_before_the_watch_are_found_and_can_deadlock() {
        const PRIVATE: u64 = 128;
        let (mut d, words) = crossed((11, 12));
        d.begun.clear();
        let wait = |uaddr, timeout| [uaddr, WAIT as u64 | PRIVATE, 2, timeout, 0, 0];
        let mut ctx = Memory {
            now_ms: 500,
            words,
            in_futex: vec![
                (5, 11, wait(0x100, 0)),
                (5, 12, wait(0x200, 0)),
                // A wake is no wait; a wait with a timeout is one, but timed.
                (5, 14, [0x300, 1 | PRIVATE, 1, 0, 0, 0]),
                (5, 15, wait(0x400, 0x7ffd_0000)),
                // Thread 16's wait began while watching: its own entry stays.
                (5, 16, wait(0x500, 0)),
            ],
            ..Memory::default()
        };
        d.begun.insert(16, begun(5, 0x500, WAIT));
        d.tick(&mut ctx, &mut Vec::new());
        d.tick(&mut ctx, &mut Vec::new());
        assert_eq!(ctx.scans, 1, "one scan at the start");
        let mut tids: Vec<u32> = d.begun.keys().copied().collect();
        tids.sort_unstable();
        assert_eq!(tids, [11, 12, 15, 16]);
        assert!(d.begun[&15].timed && !d.begun[&11].timed);
        assert!(d.begun[&11].found && !d.begun[&16].found);
        assert_eq!(d.begun[&11].since_ns, 500_000_000, "timed from the scan");
        // A second after the scan, the two found threads are a deadlock.
        ctx.now_ms = 1600;
        let mut out = Vec::new();
        d.summarize(&mut ctx, &mut out);
        let first = out
            .iter()
            .find(|e| e.text_of("uaddr").as_deref() == Some("0x100"))
            .unwrap();
        assert!(first.text_of("deadlock").is_some(), "{}", first.line);
        assert_eq!(first.int_of("blocked_before_watch"), Some(1));
        assert!(
            first.line.contains("before the watch saw them"),
            "{}",
            first.line
        );
        // Thread 15, found parked with a timeout, is shown but is no news.
        let parked = out
            .iter()
            .find(|e| e.text_of("uaddr").as_deref() == Some("0x400"))
            .unwrap();
        assert!(!parked.notable, "{}", parked.line);
        // Samples lost: every wait is forgotten, then found again, at most once a second.
        d.lost();
        d.tick(&mut ctx, &mut Vec::new());
        assert_eq!(
            (ctx.scans, d.begun.len()),
            (2, 4),
            "1.1 s after the first scan"
        );
        d.lost();
        d.tick(&mut ctx, &mut Vec::new());
        assert_eq!(
            (ctx.scans, d.begun.len()),
            (2, 0),
            "no second scan in the same second"
        );
        ctx.now_ms = 2600;
        d.tick(&mut ctx, &mut Vec::new());
        assert_eq!(ctx.scans, 3);
    }

    #[test]
    fn issue_16_a_thread_gone_or_out_of_its_wait_is_no_longer_blocked() {
        let in_futex = |uaddr| ThreadCall::In {
            nr: SYS_FUTEX,
            args: [uaddr, 0, 0, 0, 0, 0],
        };
        let mut d = FutexWaits {
            begun: (1..=6).map(|t| (t, begun(5, 0x100, WAIT))).collect(),
            ..FutexWaits::default()
        };
        // Thread 6's wait began 0.5 s ago: not checked yet.
        d.begun.get_mut(&6).unwrap().since_ns = 1_500_000_000;
        let mut ctx = Memory {
            now_ms: 2000,
            calls: [
                (1, in_futex(0x100)),
                (2, in_futex(0x200)),
                (3, ThreadCall::Elsewhere),
                (4, ThreadCall::Gone),
                (6, ThreadCall::Gone),
            ]
            .into(),
            ..Memory::default()
        };
        d.confirm(&mut ctx);
        let mut tids: Vec<u32> = d.begun.keys().copied().collect();
        tids.sort_unstable();
        // 5's state is unknown: it stays.
        assert_eq!(tids, [1, 5, 6]);
    }
}
