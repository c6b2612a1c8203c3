//! How long runnable threads wait for a CPU: from the moment a thread is queued (woken,
//! created, or preempted while it could still run) to the switch that puts it on a CPU,
//! summarized per process, as bcc's runqlat measures it.
//!
//! The wake-up fires on the waker's CPU and the switch on the wakee's, so the two are
//! paired across rings, which the session hands over in time order. A sample of
//! `sched_switch` names the task switched *out* (the sample's task is still the
//! previous one), so a wait measured at the switch in is kept by thread until that
//! thread's own switch out tells which process it belongs to.

use std::collections::HashMap;

use syslens_probe::trace::{Rate, Sample};
use syslens_probe::tracefs::EventFormat;

use crate::model::event::{
    bound, int, who, Context, Cost, Decoder, Event, EventSource, Feed, Latencies, TracepointSpec,
};
use crate::model::units::duration;

use super::ConceptId;

/// Every hit, read when a ring is a sixteenth full (or at the next drain): with
/// `Rate::Every`'s wake-up per sample, each sample queues an irq_work, a self-IPI (a VM
/// exit on the dev VM), and a pipe ping-pong ran at 0.037x.
const fn tp(name: &'static str) -> TracepointSpec {
    TracepointSpec {
        system: "sched",
        name,
        filter: None,
        rate: Rate::OneIn(1),
        kernel_stack: false,
    }
}

const WAKEUP: usize = 0;
const WAKEUP_NEW: usize = 1;

/// `runq` (a summary per process).
pub static EVENTS: &[EventSource] = &[EventSource {
    kind: "runq",
    concepts: &[ConceptId::Scheduling],
    tracepoints: &[tp("sched_wakeup"), tp("sched_wakeup_new"), tp("sched_switch")],
    feed: Feed::Tracepoints,
    cost: Cost::Host("a sample for every context switch and wake-up on the host (a pipe ping-pong ran at 0.57x-0.71x, its rings overflowing)"),
    decoder: || Box::new(RunQueue::default()),
}];

/// `prev_state` bits that mean the task stopped being runnable (TASK_REPORT: S, D, T,
/// t, X, Z, P, I). Zero, with or without the preempted flag above them, is runnable.
const NOT_RUNNABLE: i64 = 0xff;

/// A process that waited this long for a CPU at least once is a line of the text
/// stream; the others are counted in it.
const NOTABLE_WAIT_SECONDS: f64 = 0.010;

#[derive(Default)]
struct RunQueue {
    /// When each runnable, not running thread was queued, and whether by a preemption.
    queued: HashMap<u32, Queued>,
    /// The wait before each running thread's current run, until its switch out names
    /// its process (at most one per CPU at a time, plus threads that died unseen).
    waited: HashMap<u32, f64>,
    by_pid: HashMap<i32, PerProcess>,
}

#[derive(Clone, Copy)]
struct Queued {
    since_ns: u64,
    preempted: bool,
}

#[derive(Default)]
struct PerProcess {
    /// Read at its first switch: a short-lived process is gone by the summary.
    comm: Option<String>,
    waits: Latencies,
    /// Switches out of a CPU.
    switches: u64,
    /// Of those, the ones where it could still run (preempted, or it yielded).
    preempted: u64,
}

impl RunQueue {
    fn switch(&mut self, ctx: &mut dyn Context, f: &EventFormat, s: &Sample<'_>) {
        let field = |name| int(f, s.raw, name);
        let (Some(prev), Some(state), Some(next)) =
            (field("prev_pid"), field("prev_state"), field("next_pid"))
        else {
            return;
        };
        // pid 0 is a CPU's idle task: it never waits in a queue.
        if prev != 0 {
            let prev = prev as u32;
            let runnable = state & NOT_RUNNABLE == 0;
            let waited = self.waited.remove(&prev);
            // The sample's process is perf's view of the task switched out: -1 once its
            // pid is released (the last switch of an exiting task), 0 outside our pid
            // namespace. Those are nobody's to tally.
            if s.tid == prev && s.pid != 0 && s.pid != u32::MAX {
                bound(&mut self.by_pid);
                let pid = s.pid as i32;
                let p = self.by_pid.entry(pid).or_insert_with(|| PerProcess {
                    comm: ctx.comm(pid),
                    ..PerProcess::default()
                });
                p.switches += 1;
                p.preempted += u64::from(runnable);
                if let Some(secs) = waited {
                    p.waits.add(secs);
                }
            }
            if runnable {
                bound(&mut self.queued);
                let q = Queued {
                    since_ns: s.monotonic_ns,
                    preempted: true,
                };
                self.queued.insert(prev, q);
            } else {
                // A wake-up that came while it still ran (it had not slept yet) queued
                // nothing.
                self.queued.remove(&prev);
            }
        }
        if next != 0 {
            if let Some(q) = self.queued.remove(&(next as u32)) {
                bound(&mut self.waited);
                let secs = s.monotonic_ns.saturating_sub(q.since_ns) as f64 / 1e9;
                self.waited.insert(next as u32, secs);
            }
        }
    }
}

impl Decoder for RunQueue {
    fn sample(
        &mut self,
        ctx: &mut dyn Context,
        index: usize,
        f: &EventFormat,
        s: &Sample<'_>,
        _: &mut Vec<Event>,
    ) {
        if index == WAKEUP || index == WAKEUP_NEW {
            // The wakee is the record's pid (the sample's task is the waker). A thread
            // queued by a preemption, then woken, has waited since the preemption. Any
            // other entry is stale and replaced: a new thread may reuse a dead one's
            // tid, and a lost switch in leaves a wake-up unpaired.
            if let Some(tid) = int(f, s.raw, "pid").filter(|&t| t > 0) {
                bound(&mut self.queued);
                let q = Queued {
                    since_ns: s.monotonic_ns,
                    preempted: false,
                };
                let e = self.queued.entry(tid as u32).or_insert(q);
                if index == WAKEUP_NEW || !e.preempted {
                    *e = q;
                }
            }
            return;
        }
        self.switch(ctx, f, s);
    }

    fn lost(&mut self) {
        // A lost switch in would pair its queueing with a later run (a wait counted far
        // too long): start over from what comes next.
        self.queued.clear();
        self.waited.clear();
    }

    fn summarize(&mut self, ctx: &mut dyn Context, out: &mut Vec<Event>) {
        for (pid, mut p) in self.by_pid.drain() {
            let comm = p.comm.take();
            let spread = p.waits.spread();
            let mut e = Event::new(ctx.now(), ConceptId::Scheduling, "runq", Some(pid));
            e.notable = spread.is_some_and(|s| s.max >= NOTABLE_WAIT_SECONDS);
            e.line = format!(
                "{} {} switches ({} preempted)",
                who(comm.as_deref(), pid.into()),
                p.switches,
                p.preempted
            );
            if let Some(s) = spread {
                e.line.push_str(&format!(
                    ", waited for a CPU {} times: {s}, total {}",
                    p.waits.count,
                    duration(p.waits.total)
                ));
            }
            out.push(
                e.with("pid", Some(pid))
                    .with("comm", comm)
                    .with("switches", Some(p.switches))
                    .with("preempted", Some(p.preempted))
                    .with("waits", Some(p.waits.count))
                    .with("runq_seconds", Some(p.waits.total))
                    .with("runq_p50_seconds", spread.map(|s| s.p50))
                    .with("runq_p99_seconds", spread.map(|s| s.p99))
                    .with("runq_max_seconds", spread.map(|s| s.max)),
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
    use crate::model::event::testing::{self, record, sample_at, Names};

    fn format(name: &str) -> EventFormat {
        testing::format("sched", name)
    }

    /// A sample to feed: tracepoint index, the running task's pid and tid, ms, fields.
    type Fed<'a> = (usize, u32, u32, u64, &'a [(&'a str, i64)]);

    /// Thread 11 of process 10 switched out asleep, and the idle task switching to it.
    const ELEVEN_SLEEPS: &[(&str, i64)] =
        &[("prev_pid", 11), ("prev_state", SLEEPING), ("next_pid", 0)];
    const IDLE_TO_ELEVEN: &[(&str, i64)] = &[("prev_pid", 0), ("next_pid", 11)];

    fn feed(samples: &[Fed<'_>]) -> Vec<Event> {
        let formats = [
            format("sched_wakeup"),
            format("sched_wakeup_new"),
            format("sched_switch"),
        ];
        let mut q = RunQueue::default();
        let mut out = Vec::new();
        for &(index, pid, tid, ms, fields) in samples {
            let raw = record(&formats[index], fields);
            let s = sample_at(index, pid, tid, ms, &raw);
            q.sample(&mut Names, index, &formats[index], &s, &mut out);
        }
        q.finish(&mut Names, &mut out);
        out
    }

    #[test]
    fn a_loss_forgets_the_waits_in_flight() {
        let formats = [
            format("sched_wakeup"),
            format("sched_wakeup_new"),
            format("sched_switch"),
        ];
        let mut q = RunQueue::default();
        let mut out = Vec::new();
        let mut at = |q: &mut RunQueue, index: usize, pid: u32, ms: u64, fields: &[(&str, i64)]| {
            let raw = record(&formats[index], fields);
            let s = sample_at(index, pid, pid, ms, &raw);
            q.sample(&mut Names, index, &formats[index], &s, &mut out);
        };
        // Woken at 1 ms; its switch in was lost; it runs again at 900 ms.
        at(&mut q, WAKEUP, 20, 1, &[("pid", 11)]);
        q.lost();
        at(&mut q, SWITCH, 0, 900, IDLE_TO_ELEVEN);
        at(&mut q, SWITCH, 11, 901, ELEVEN_SLEEPS);
        q.finish(&mut Names, &mut out);
        assert_eq!(of(&out, 11).int_of("waits"), Some(0), "{out:?}");
    }

    const SWITCH: usize = 2;
    const SLEEPING: i64 = 1;
    /// TASK_REPORT_MAX: preempted while running (shown "R+").
    const PREEMPTED: i64 = 0x100;

    fn of(events: &[Event], pid: i32) -> &Event {
        events.iter().find(|e| e.subject == Some(pid)).unwrap()
    }

    #[test]
    fn a_wait_runs_from_the_wakeup_on_one_cpu_to_the_switch_on_another() {
        let events = feed(&[
            // Thread 11 of process 10 is woken by 20 at 5 ms, runs at 8 ms (3 ms wait),
            // and its switch out at 9 ms names its process.
            (WAKEUP, 20, 20, 5, &[("pid", 11)]),
            (SWITCH, 0, 0, 8, IDLE_TO_ELEVEN),
            (
                SWITCH,
                10,
                11,
                9,
                &[("prev_pid", 11), ("prev_state", PREEMPTED), ("next_pid", 0)],
            ),
            // Preempted at 9 ms, back at 10 ms: 1 ms.
            (SWITCH, 0, 0, 10, IDLE_TO_ELEVEN),
            (SWITCH, 10, 11, 12, ELEVEN_SLEEPS),
        ]);
        let e = of(&events, 10);
        assert_eq!(e.int_of("switches"), Some(2));
        assert_eq!(e.int_of("preempted"), Some(1));
        assert_eq!(e.int_of("waits"), Some(2));
        let secs = |k| match e.get(k) {
            Some(crate::model::event::Value::Float(v)) => *v,
            v => panic!("{k}: {v:?}"),
        };
        assert!((secs("runq_seconds") - 0.004).abs() < 1e-9, "{e:?}");
        assert!((secs("runq_max_seconds") - 0.003).abs() < 1e-9, "{e:?}");
        assert!((secs("runq_p50_seconds") - 0.001).abs() < 1e-9, "{e:?}");
    }

    /// Process 10 waited once, for 1 ms.
    fn one_wait_of_one_ms(events: &[Event]) {
        let e = of(events, 10);
        assert_eq!(e.int_of("waits"), Some(1));
        assert!(
            e.float_of("runq_max_seconds")
                .is_some_and(|v| (v - 0.001).abs() < 1e-9),
            "{e:?}"
        );
    }

    #[test]
    fn a_stale_wake_up_does_not_turn_sleep_into_waiting() {
        let events = feed(&[
            // Woken at 4 ms, its switches in and out lost; woken again at 50 ms, it
            // runs at 51 ms: one wait of 1 ms, not 47 ms.
            (WAKEUP, 20, 20, 4, &[("pid", 11)]),
            (WAKEUP, 20, 20, 50, &[("pid", 11)]),
            (SWITCH, 0, 0, 51, IDLE_TO_ELEVEN),
            (SWITCH, 10, 11, 52, ELEVEN_SLEEPS),
        ]);
        one_wait_of_one_ms(&events);
    }

    #[test]
    fn an_exiting_task_s_released_pid_is_nobody_s() {
        // perf gives -1 for the process of a task whose pid is released.
        let events = feed(&[
            (WAKEUP, 20, 20, 1, &[("pid", 11)]),
            (SWITCH, 0, 0, 2, IDLE_TO_ELEVEN),
            (
                SWITCH,
                u32::MAX,
                11,
                3,
                &[("prev_pid", 11), ("prev_state", 0x80), ("next_pid", 0)],
            ),
        ]);
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn a_wakeup_while_still_running_queues_nothing() {
        let events = feed(&[
            // Woken at 1 ms before it slept (it was still on its CPU), it then sleeps
            // at 2 ms; woken for real at 50 ms, it runs at 51 ms: one wait of 1 ms.
            (WAKEUP, 20, 20, 1, &[("pid", 11)]),
            (SWITCH, 10, 11, 2, ELEVEN_SLEEPS),
            (WAKEUP, 20, 20, 50, &[("pid", 11)]),
            (SWITCH, 0, 0, 51, IDLE_TO_ELEVEN),
            (SWITCH, 10, 11, 52, ELEVEN_SLEEPS),
        ]);
        one_wait_of_one_ms(&events);
        // The idle task is nobody's process.
        assert!(events.iter().all(|e| e.subject != Some(0)));
    }
}
