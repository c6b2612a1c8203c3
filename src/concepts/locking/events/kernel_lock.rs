//! Kernel lock contention: how long tasks waited for a lock inside the kernel (a mutex,
//! an rw-semaphore such as a process's mmap_lock, a spinlock), from
//! `lock:contention_begin` to `lock:contention_end` on the same task, summarized per
//! process, lock kind and caller, as `perf lock contention` reports it.
//!
//! The tracepoints fire only on the slow path, when the lock was taken: an uncontended
//! lock costs nothing. A lock is named by the kind its flags give and by the kernel
//! function that asked for it, the first frame of the begin's kernel stack outside the
//! scheduler and the lock code. Data symbols (which static mutex it was) are in
//! /proc/kallsyms only with CONFIG_KALLSYMS_ALL, so no address is shown.

use std::collections::HashMap;

use syslens_probe::trace::{Rate, Sample};
use syslens_probe::tracefs::EventFormat;

use crate::model::event::{
    bound, int, who, Context, Cost, Decoder, Event, EventSource, Feed, Latencies, TracepointSpec,
    TALLIES_MAX,
};
use crate::model::units::duration;

use crate::concepts::ConceptId;

/// `kernel-lock` (a summary per process, lock kind and caller).
pub const SOURCE: EventSource = EventSource {
    kind: "kernel-lock",
    concepts: &[ConceptId::Locking],
    tracepoints: &[
        // Every hit: no wake-up per sample (each one queues a self-IPI), the ring read
        // when a sixteenth full or at the next drain.
        TracepointSpec {
            system: "lock",
            name: "contention_begin",
            filter: None,
            rate: Rate::OneIn(1),
            kernel_stack: true,
        },
        TracepointSpec {
            system: "lock",
            name: "contention_end",
            filter: None,
            rate: Rate::OneIn(1),
            kernel_stack: false,
        },
    ],
    feed: Feed::Tracepoints,
    cost: Cost::Light,
    decoder: || Box::new(KernelLocks::default()),
};

const BEGIN: usize = 0;

/// A process that waited this long for one kernel lock is a line of the text stream;
/// the others are counted in it.
const NOTABLE_WAIT_SECONDS: f64 = 0.001;

/// The `lock:contention_begin` flags (include/trace/events/lock.h).
mod flag {
    pub const SPIN: i64 = 1 << 0;
    pub const READ: i64 = 1 << 1;
    pub const WRITE: i64 = 1 << 2;
    pub const RT: i64 = 1 << 3;
    pub const PERCPU: i64 = 1 << 4;
    pub const MUTEX: i64 = 1 << 5;
}

/// The kind of lock its contention flags describe.
fn lock_kind(flags: i64) -> &'static str {
    use flag::*;
    let write = flags & WRITE != 0;
    if flags & PERCPU != 0 {
        if write {
            "percpu-rwsem (write)"
        } else {
            "percpu-rwsem (read)"
        }
    } else if flags & MUTEX != 0 {
        "mutex"
    } else if flags & RT != 0 {
        "rt-mutex"
    } else if flags & (READ | WRITE) != 0 {
        match (flags & SPIN != 0, write) {
            (true, true) => "rwlock (write)",
            (true, false) => "rwlock (read)",
            (false, true) => "rwsem (write)",
            (false, false) => "rwsem (read)",
        }
    } else if flags & SPIN != 0 {
        "spinlock"
    } else {
        "semaphore"
    }
}

#[derive(Default)]
struct KernelLocks {
    /// Waits begun and not ended, by thread and lock address.
    begun: HashMap<(u32, u64), Begun>,
    by_lock: HashMap<(i32, &'static str, Option<String>), Tally>,
}

struct Begun {
    since_ns: u64,
    kind: &'static str,
    caller: Option<String>,
}

#[derive(Default)]
struct Tally {
    /// Read at its first wait: a short-lived process is gone by the summary.
    comm: Option<String>,
    waits: Latencies,
}

impl Decoder for KernelLocks {
    fn sample(
        &mut self,
        ctx: &mut dyn Context,
        index: usize,
        f: &EventFormat,
        s: &Sample<'_>,
        _: &mut Vec<Event>,
    ) {
        let Some(addr) = int(f, s.raw, "lock_addr").map(|a| a as u64) else {
            return;
        };
        if index == BEGIN {
            // A mutex reports a begin when it starts to spin and another when it goes
            // to sleep, then one end: the wait runs from the first.
            if self.begun.contains_key(&(s.tid, addr)) {
                return;
            }
            bound(&mut self.begun);
            let kind = lock_kind(int(f, s.raw, "flags").unwrap_or(0));
            let caller = ctx.kernel_caller(s.kernel_stack);
            self.begun.insert(
                (s.tid, addr),
                Begun {
                    since_ns: s.monotonic_ns,
                    kind,
                    caller,
                },
            );
            return;
        }
        let Some(b) = self.begun.remove(&(s.tid, addr)) else {
            return;
        };
        let secs = s.monotonic_ns.saturating_sub(b.since_ns) as f64 / 1e9;
        let pid = s.pid as i32;
        let mut key = (pid, b.kind, b.caller);
        if self.by_lock.len() >= TALLIES_MAX && !self.by_lock.contains_key(&key) {
            key.2 = Some("other callers".into());
        }
        let t = self.by_lock.entry(key).or_insert_with(|| Tally {
            comm: ctx.comm(pid),
            ..Tally::default()
        });
        t.waits.add(secs);
    }

    fn lost(&mut self) {
        // A lost end would pair its begin with a later one's end.
        self.begun.clear();
    }

    fn summarize(&mut self, ctx: &mut dyn Context, out: &mut Vec<Event>) {
        for ((pid, lock, caller), mut t) in self.by_lock.drain() {
            let Some(spread) = t.waits.spread() else {
                continue;
            };
            let comm = t.comm.take();
            let mut e = Event::new(ctx.now(), ConceptId::Locking, "kernel-lock", Some(pid));
            e.notable = spread.max >= NOTABLE_WAIT_SECONDS;
            e.line = format!(
                "{} waited for a kernel {lock} taken in {} {} times: {spread}, total {}",
                who(comm.as_deref(), pid.into()),
                caller.as_deref().unwrap_or("an unnamed caller"),
                t.waits.count,
                duration(t.waits.total)
            );
            out.push(
                e.with("pid", Some(pid))
                    .with("comm", comm)
                    .with("lock", Some(lock))
                    .with("caller", caller)
                    .with("waits", Some(t.waits.count))
                    .with("wait_seconds", Some(t.waits.total))
                    .with("p50_wait_seconds", Some(spread.p50))
                    .with("p99_wait_seconds", Some(spread.p99))
                    .with("max_wait_seconds", Some(spread.max)),
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

    /// A sample to feed: tracepoint, tid, ms, lock address, flags or ret, kernel stack.
    type Fed<'a> = (usize, u32, u64, i64, i64, &'a [u64]);

    fn feed(samples: &[Fed<'_>]) -> Vec<Event> {
        let formats = [
            format("lock", "contention_begin"),
            format("lock", "contention_end"),
        ];
        let mut d = KernelLocks::default();
        let mut out = Vec::new();
        for &(index, tid, ms, addr, extra, stack) in samples {
            let second = if index == BEGIN { "flags" } else { "ret" };
            let raw = record(&formats[index], &[("lock_addr", addr), (second, extra)]);
            let s = Sample {
                kernel_stack: stack,
                ..sample_at(index, 7, tid, ms, &raw)
            };
            d.sample(&mut Names, index, &formats[index], &s, &mut out);
        }
        d.finish(&mut Names, &mut out);
        out
    }

    #[test]
    fn issue_16_a_wait_runs_from_the_first_begin_to_the_end_on_the_same_thread() {
        let (spin_then_sleep, write) = (flag::MUTEX | flag::SPIN, flag::WRITE);
        let events = feed(&[
            // A mutex spun from 1 ms, slept from 2 ms, had it at 5 ms: one wait of 4 ms.
            (BEGIN, 8, 1, 0x100, spin_then_sleep, &[0xa]),
            (BEGIN, 8, 2, 0x100, flag::MUTEX, &[0xb]),
            // Another thread on an rwsem meanwhile, and an end with no begin seen.
            (BEGIN, 9, 3, 0x200, write, &[0xc]),
            (1, 9, 4, 0x200, 0, &[]),
            (1, 8, 5, 0x100, 0, &[]),
            (1, 8, 6, 0x300, 0, &[]),
        ]);
        assert_eq!(events.len(), 2, "{events:?}");
        let mutex = events
            .iter()
            .find(|e| e.text_of("lock").as_deref() == Some("mutex"))
            .unwrap();
        assert_eq!(mutex.text_of("caller").as_deref(), Some("fa"));
        assert_eq!(mutex.int_of("waits"), Some(1));
        assert_eq!(mutex.float_of("max_wait_seconds"), Some(0.004));
        assert!(mutex.notable);
        let rwsem = events
            .iter()
            .find(|e| e.text_of("lock").as_deref() == Some("rwsem (write)"))
            .unwrap();
        assert_eq!(rwsem.float_of("wait_seconds"), Some(0.001));
        assert_eq!(rwsem.text_of("caller").as_deref(), Some("fc"));
    }

    #[test]
    fn lock_kinds_follow_the_flags() {
        use flag::*;
        assert_eq!(lock_kind(SPIN), "spinlock");
        assert_eq!(lock_kind(SPIN | READ), "rwlock (read)");
        assert_eq!(lock_kind(READ), "rwsem (read)");
        assert_eq!(lock_kind(PERCPU | WRITE), "percpu-rwsem (write)");
        assert_eq!(lock_kind(RT), "rt-mutex");
        assert_eq!(lock_kind(0), "semaphore");
    }
}
