//! Tracepoint samples through perf_event_open: one ring buffer per CPU per tracepoint.
//!
//! Each subscription is a tracepoint (its [`EventFormat`] from tracefs), an optional
//! in-kernel filter (PERF_EVENT_IOC_SET_FILTER: the kernel drops what does not match
//! before it costs a sample) and a [`Rate`]: every hit, or frequency sampling where an
//! event can fire millions of times a second (the kernel adjusts the period to about
//! N samples per second per CPU and reports each sample's period, so the sum of the
//! periods estimates the count). Lost samples (a full ring buffer) are counted per
//! subscription, never dropped silently.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use perf_event::data::Record as PerfRecord;
use perf_event::events::Tracepoint;
use perf_event::{Builder, Clock, SampleFlag, Sampler};

use crate::tracefs::EventFormat;

/// How often a subscription samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// Every hit that passes the filter: for events rare enough to take whole.
    Every,
    /// About this many samples per second per CPU, each weighted by its period.
    PerSecond(u64),
    /// One sample per this many hits on a CPU (each weighted by it): a fixed cost
    /// per hit, for events whose every occurrence would cost too much.
    OneIn(u64),
}

/// A tracepoint to subscribe to.
#[derive(Debug, Clone, Copy)]
pub struct Subscription<'a> {
    /// Its format (id and layout).
    pub format: &'a EventFormat,
    /// An ftrace filter expression (`ret == -24`), applied in the kernel.
    pub filter: Option<&'a str>,
    /// How often to sample.
    pub rate: Rate,
    /// Also record the kernel stack of each sample (its return addresses).
    pub kernel_stack: bool,
}

/// One tracepoint sample, borrowed from the ring buffer until the callback returns.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// The subscription's index, as given to [`Session::add`].
    pub sub: usize,
    /// The CPU it fired on.
    pub cpu: u32,
    /// The running task's process (thread group) id: for most tracepoints the task
    /// that caused the event.
    pub pid: u32,
    /// The running task's thread id.
    pub tid: u32,
    /// CLOCK_MONOTONIC nanoseconds when it fired.
    pub monotonic_ns: u64,
    /// How many hits this sample stands for (1 with [`Rate::Every`]).
    pub period: u64,
    /// The tracepoint's raw record, decoded with its [`EventFormat`].
    pub raw: &'a [u8],
    /// The kernel return addresses, innermost first, if the subscription asked for
    /// them (perf's context markers left out).
    pub kernel_stack: &'a [u64],
}

/// Why a subscription could not be opened.
#[derive(Debug)]
pub struct OpenError {
    /// The errno perf_event_open or the filter ioctl returned.
    pub error: io::Error,
    /// What it means here and what would allow it.
    pub why: String,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why)
    }
}

struct Ring {
    /// The subscription, or `None` for a ring of task records (names, forks, exits).
    sub: Option<usize>,
    cpu: u32,
    /// What each sample stands for when the kernel does not say (a fixed period).
    period: u64,
    sampler: Sampler,
}

/// What a drain hands over.
#[derive(Debug, Clone, Copy)]
pub enum Drained<'a> {
    /// A task record (the task rings are drained first).
    Task(TaskRecord<'a>),
    /// A tracepoint sample.
    Sample(Sample<'a>),
}

/// A task record: what perf reports of processes so a sample can be named after the
/// task is gone (as `perf report` does).
#[derive(Debug, Clone, Copy)]
pub enum TaskRecord<'a> {
    /// A task took a name: at exec, PR_SET_NAME or a write to /proc/PID/comm.
    Comm {
        /// Its process id.
        pid: u32,
        /// Its thread id.
        tid: u32,
        /// The new name.
        comm: &'a [u8],
    },
    /// A task was created (`pid == tid`: a new process, else a thread).
    Fork {
        /// Its process id.
        pid: u32,
        /// Its thread id.
        tid: u32,
        /// The process that created it.
        ppid: u32,
    },
    /// A task exited.
    Exit {
        /// Its process id.
        pid: u32,
        /// Its thread id.
        tid: u32,
    },
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("sub", &self.sub)
            .field("cpu", &self.cpu)
            .finish()
    }
}

/// Open tracepoint subscriptions on every CPU asked for, system-wide.
#[derive(Debug, Default)]
pub struct Session {
    rings: Vec<Ring>,
    lost: Vec<u64>,
    /// Records copied out of the rings and not handed over yet.
    pending: Reorder,
}

/// Records copied out of rings, handed over in time order up to a horizon: one drain's,
/// and those kept back from the last because they came after its horizon.
#[derive(Debug, Default)]
struct Reorder {
    pending: Vec<Pending>,
    /// The records' fields and names, which `Pending::raw` indexes.
    raw: Vec<u8>,
    /// Where the kept-back records' bytes are copied (reused between drains).
    kept_raw: Vec<u8>,
    /// The samples' kernel stacks, which `Pending::stack` indexes, and their copy.
    stacks: Vec<u64>,
    kept_stacks: Vec<u64>,
}

impl Reorder {
    fn push(&mut self, what: PendingKind, pid: u32, tid: u32, monotonic_ns: u64, raw: &[u8]) {
        self.push_with_stack(what, pid, tid, monotonic_ns, raw, &[]);
    }

    fn push_with_stack(
        &mut self,
        what: PendingKind,
        pid: u32,
        tid: u32,
        monotonic_ns: u64,
        raw: &[u8],
        stack: &[u64],
    ) {
        let at = self.raw.len();
        self.raw.extend_from_slice(raw);
        let frames = self.stacks.len();
        // Above PERF_CONTEXT_MAX an entry marks where kernel or user frames begin.
        self.stacks
            .extend(stack.iter().filter(|&&a| a < PERF_CONTEXT_MAX));
        self.pending.push(Pending {
            what,
            pid,
            tid,
            monotonic_ns,
            raw: at..self.raw.len(),
            stack: frames..self.stacks.len(),
        });
    }

    /// Hands the records up to `horizon` to `on` in time order and keeps the rest.
    fn release(&mut self, horizon: u64, mut on: impl FnMut(Drained<'_>)) {
        // Stable: at one instant a task record (read first) stays before a sample, and
        // a record kept from the last drain before one of this drain.
        self.pending.sort_by_key(|p| p.monotonic_ns);
        let ready = self.pending.partition_point(|p| p.monotonic_ns <= horizon);
        for p in &self.pending[..ready] {
            let raw = &self.raw[p.raw.clone()];
            let kernel_stack = &self.stacks[p.stack.clone()];
            let (pid, tid) = (p.pid, p.tid);
            on(match p.what {
                PendingKind::Sample { sub, cpu, period } => Drained::Sample(Sample {
                    sub,
                    cpu,
                    pid,
                    tid,
                    monotonic_ns: p.monotonic_ns,
                    period,
                    raw,
                    kernel_stack,
                }),
                PendingKind::Comm => Drained::Task(TaskRecord::Comm {
                    pid,
                    tid,
                    comm: raw,
                }),
                PendingKind::Fork { ppid } => Drained::Task(TaskRecord::Fork { pid, tid, ppid }),
                PendingKind::Exit => Drained::Task(TaskRecord::Exit { pid, tid }),
            });
        }
        self.kept_raw.clear();
        self.kept_stacks.clear();
        for p in &mut self.pending[ready..] {
            let at = self.kept_raw.len();
            self.kept_raw.extend_from_slice(&self.raw[p.raw.clone()]);
            p.raw = at..self.kept_raw.len();
            let at = self.kept_stacks.len();
            self.kept_stacks
                .extend_from_slice(&self.stacks[p.stack.clone()]);
            p.stack = at..self.kept_stacks.len();
        }
        self.pending.drain(..ready);
        std::mem::swap(&mut self.raw, &mut self.kept_raw);
        std::mem::swap(&mut self.stacks, &mut self.kept_stacks);
    }
}

/// A sample or task record of one drain, copied out of its ring to be handed over in
/// time order.
#[derive(Debug)]
struct Pending {
    what: PendingKind,
    pid: u32,
    tid: u32,
    monotonic_ns: u64,
    /// The sample's fields, or the new name of a Comm record.
    raw: std::ops::Range<usize>,
    /// The sample's kernel stack.
    stack: std::ops::Range<usize>,
}

#[derive(Debug)]
enum PendingKind {
    Sample { sub: usize, cpu: u32, period: u64 },
    Comm,
    Fork { ppid: u32 },
    Exit,
}

/// Ring buffer size per CPU for a rare event, and for a sampled frequent one.
const RING_RARE: usize = 64 * 1024;
const RING_FREQUENT: usize = 256 * 1024;
/// Records read from one ring per drain, so one flooded CPU cannot starve the others.
const RECORDS_PER_DRAIN: usize = 65536;
/// Deepest kernel stack recorded (perf_event_max_stack is 127 by default).
const MAX_STACK: u16 = 32;
/// Callchain entries from here up are context markers (PERF_CONTEXT_KERNEL, ...).
const PERF_CONTEXT_MAX: u64 = -4095i64 as u64;

impl Session {
    /// An empty session.
    pub fn new() -> Session {
        Session::default()
    }

    /// Subscribes `sub` (an index the caller chooses, reported in each [`Sample`]) on
    /// every CPU of `cpus`. Nothing is sampled before [`Session::enable`].
    pub fn add(
        &mut self,
        sub: usize,
        subscription: &Subscription<'_>,
        cpus: &[u32],
    ) -> Result<(), OpenError> {
        let mut opened = Vec::with_capacity(cpus.len());
        for &cpu in cpus {
            let mut builder = Builder::new(Tracepoint::with_id(subscription.format.id));
            builder
                .any_pid()
                .one_cpu(cpu as usize)
                // A tracepoint fires in the kernel: excluding the kernel would drop it.
                .include_kernel()
                .clockid(Clock::MONOTONIC)
                .sample(SampleFlag::TID | SampleFlag::TIME | SampleFlag::CPU | SampleFlag::RAW);
            if subscription.kernel_stack {
                builder
                    .sample(SampleFlag::CALLCHAIN)
                    .exclude_callchain_user(true)
                    .sample_max_stack(MAX_STACK);
            }
            // PERIOD only where it varies: on a software event (a tracepoint is one)
            // with a fixed period, asking for it makes the kernel write a sample of
            // period 1 on every hit (perf_swevent_event), so one in 16 became every
            // fault: the full cost, and a ring overflowing under a fault-heavy load.
            let (ring, period) = match subscription.rate {
                Rate::Every => {
                    builder.sample_period(1).wakeup_events(1);
                    (RING_RARE, 1)
                }
                Rate::PerSecond(hz) => {
                    builder
                        .sample_frequency(hz.max(1))
                        .sample(SampleFlag::PERIOD)
                        .wakeup_watermark(RING_FREQUENT / 4);
                    (RING_FREQUENT, 1)
                }
                Rate::OneIn(n) => {
                    // Woken sooner than for frequency sampling: the samples of a
                    // process are read while it is still there to be looked up.
                    builder
                        .sample_period(n.max(1))
                        .wakeup_watermark(RING_FREQUENT / 16);
                    (RING_FREQUENT, n.max(1))
                }
            };
            let counter = builder
                .build()
                .map_err(|e| open_error(subscription.format, e))?;
            if let Some(filter) = subscription.filter {
                set_filter(counter.as_raw_fd(), filter).map_err(|e| OpenError {
                    why: format!(
                        "the kernel refused the filter `{filter}` on {}: {e}",
                        subscription.format.name
                    ),
                    error: e,
                })?;
            }
            let sampler = counter
                .sampled(ring)
                .map_err(|e| open_error(subscription.format, e))?;
            opened.push(Ring {
                sub: Some(sub),
                cpu,
                period,
                sampler,
            });
        }
        if self.lost.len() <= sub {
            self.lost.resize(sub + 1, 0);
        }
        self.rings.extend(opened);
        Ok(())
    }

    /// Also reports task records (names, forks, exits) on every CPU of `cpus`, so that
    /// samples can be attributed to tasks that exit before they are read. They are handed
    /// over in time order with the samples.
    pub fn track_tasks(&mut self, cpus: &[u32]) -> io::Result<()> {
        let mut opened = Vec::with_capacity(cpus.len());
        for &cpu in cpus {
            let sampler = Builder::new(perf_event::events::Software::DUMMY)
                .any_pid()
                .one_cpu(cpu as usize)
                .include_kernel()
                .comm(true)
                .task(true)
                // Timestamped like the samples, so a name is applied in time order:
                // an exec chain (a shell script's shims) that moved between CPUs would
                // otherwise leave whichever name's ring was read last.
                .clockid(Clock::MONOTONIC)
                .sample(SampleFlag::TIME)
                .sample_id_all(true)
                .wakeup_watermark(RING_FREQUENT / 4)
                .build()?
                .sampled(RING_FREQUENT)?;
            opened.push(Ring {
                sub: None,
                cpu,
                period: 1,
                sampler,
            });
        }
        let at = self.rings.len();
        self.rings.extend(opened);
        // Task rings first: a name must be known before the samples that need it.
        let added = self.rings.len() - at;
        self.rings.rotate_right(added);
        Ok(())
    }

    /// Starts every subscription.
    pub fn enable(&mut self) -> io::Result<()> {
        for ring in &mut self.rings {
            ring.sampler.enable()?;
        }
        Ok(())
    }

    /// The ring buffers' fds, to poll for readability.
    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.rings.iter().map(|r| {
            // SAFETY: the fd belongs to a sampler owned by `self`, so it stays open
            // for the borrow's lifetime.
            unsafe { BorrowedFd::borrow_raw(r.sampler.as_raw_fd()) }
        })
    }

    /// Hands the task records and samples read now to `on`, in time order, and returns
    /// how many samples were read; lost-sample records are counted (see
    /// [`Session::lost`]). Unless `everything`, records later than the drain's horizon
    /// wait for the next drain.
    pub fn drain(&mut self, everything: bool, on: impl FnMut(Drained<'_>)) -> usize {
        // Everything is copied out, the task rings read once more after the samples (a
        // name written just before a sample lands in the task ring before that sample
        // is read), then handed over in time order: each ring is read whole in turn, so
        // a begin/end pair on two tracepoints or two CPUs would otherwise reach a
        // decoder in ring order, every begin of a drain before any end (issue 16:
        // twenty fsyncs paired as one), and a name would be applied out of order.
        //
        // Rings are read one after another, so a record another CPU writes while an
        // earlier ring is being read is missing from this drain although later ones are
        // in it (a wake-up on CPU 0 after its ring was read, the switch to the woken
        // task on CPU 1 read after). Only what happened before the horizon, the time
        // reading began, is complete; the rest is kept for the next drain, as perf
        // report orders its input in rounds. A ring left unread past the per-call bound
        // moves the horizon back to the last record read from it.
        let mut horizon = if everything {
            u64::MAX
        } else {
            let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
            (now.tv_sec as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(now.tv_nsec as u64)
        };
        let pending = &mut self.pending;
        Self::drain_tasks(&mut self.rings, pending, &mut horizon);
        let mut samples = 0;
        for ring in self.rings.iter_mut() {
            let Some(sub) = ring.sub else { continue };
            // The ring left unread past the bound, and the time read up to.
            let (mut unread, mut last) = (true, 0);
            for _ in 0..RECORDS_PER_DRAIN {
                let Some(record) = ring.sampler.next_record() else {
                    unread = false;
                    break;
                };
                match record.parse_record() {
                    Ok(PerfRecord::Sample(sample)) => {
                        let Some(raw) = sample.raw() else { continue };
                        samples += 1;
                        last = sample.time().unwrap_or(0);
                        pending.push_with_stack(
                            PendingKind::Sample {
                                sub,
                                cpu: sample.cpu().unwrap_or(ring.cpu),
                                period: sample.period().unwrap_or(ring.period),
                            },
                            sample.pid().unwrap_or(0),
                            sample.tid().unwrap_or(0),
                            last,
                            raw,
                            sample.callchain().unwrap_or(&[]),
                        );
                    }
                    Ok(PerfRecord::Lost(lost)) => {
                        if let Some(count) = self.lost.get_mut(sub) {
                            *count += lost.lost;
                        }
                    }
                    _ => {}
                };
            }
            if unread {
                horizon = horizon.min(last);
            }
        }
        Self::drain_tasks(&mut self.rings, pending, &mut horizon);
        pending.release(horizon, on);
        samples
    }

    /// Copies the task rings' records out, each with its time (moving `horizon` back
    /// to the last one read from a ring left unread past the bound): the trailer
    /// `sample_id_all` appends, which with TIME as the only sample field is the
    /// record's last 8 bytes.
    fn drain_tasks(rings: &mut [Ring], pending: &mut Reorder, horizon: &mut u64) {
        for ring in rings.iter_mut().filter(|r| r.sub.is_none()) {
            let (mut unread, mut last) = (true, 0);
            for _ in 0..RECORDS_PER_DRAIN {
                let Some(record) = ring.sampler.next_record() else {
                    unread = false;
                    break;
                };
                let bytes = record.to_contiguous();
                let time = bytes
                    .len()
                    .checked_sub(8)
                    .and_then(|at| bytes.get(at..))
                    .and_then(|t| <[u8; 8]>::try_from(t).ok())
                    .map_or(0, u64::from_ne_bytes);
                match record.parse_record() {
                    Ok(PerfRecord::Comm(c)) => {
                        pending.push(PendingKind::Comm, c.pid, c.tid, time, &c.comm)
                    }
                    Ok(PerfRecord::Fork(f)) => {
                        pending.push(PendingKind::Fork { ppid: f.ppid }, f.pid, f.tid, time, &[])
                    }
                    Ok(PerfRecord::Exit(x)) => {
                        pending.push(PendingKind::Exit, x.pid, x.tid, time, &[])
                    }
                    _ => continue,
                };
                last = time;
            }
            if unread {
                *horizon = (*horizon).min(last);
            }
        }
    }

    /// Samples of subscription `sub` the kernel dropped because its ring was full.
    pub fn lost(&self, sub: usize) -> u64 {
        self.lost.get(sub).copied().unwrap_or(0)
    }

    /// How many ring buffers are open (subscriptions times CPUs).
    pub fn rings(&self) -> usize {
        self.rings.len()
    }
}

fn open_error(format: &EventFormat, error: io::Error) -> OpenError {
    let why = match error.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "perf_event_open refused {}: tracepoints need root or CAP_PERFMON (kernel.perf_event_paranoid is {})",
            format.name,
            std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unreadable".into())
        ),
        Some(libc::ENOENT) | Some(libc::EINVAL) => format!("this kernel cannot sample {} through perf: {error}", format.name),
        Some(libc::EMFILE) => format!("no fd left to open {}: raise RLIMIT_NOFILE", format.name),
        _ => format!("perf_event_open on {} failed: {error}", format.name),
    };
    OpenError { error, why }
}

/// Sets an ftrace filter on a perf tracepoint event.
fn set_filter(fd: RawFd, filter: &str) -> io::Result<()> {
    let filter =
        std::ffi::CString::new(filter).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `fd` is an open perf event fd owned by the caller for the duration of the
    // call; the kernel only reads the NUL-terminated string, which outlives the call.
    let ret = unsafe {
        perf_event_open_sys::ioctls::SET_FILTER(fd, filter.as_ptr() as *mut libc::c_char)
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::tracefs::Tracefs;

    /// The names and times `release` hands over, in order.
    fn released(r: &mut Reorder, horizon: u64) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        r.release(horizon, |d| {
            if let Drained::Task(TaskRecord::Comm { comm, pid, .. }) = d {
                out.push((String::from_utf8_lossy(comm).into_owned(), u64::from(pid)));
            }
        });
        out
    }

    #[test]
    fn issue_16_a_record_read_a_drain_late_is_still_handed_over_in_time_order() {
        let mut r = Reorder::default();
        // Times double as pids, to check each name stays with its record.
        r.push(PendingKind::Comm, 20, 20, 20, b"twenty");
        r.push(PendingKind::Comm, 5, 5, 5, b"five");
        assert_eq!(released(&mut r, 10), [("five".into(), 5)]);
        // A record from before the last horizon cannot be; one from after it, read
        // late, comes out before the kept one.
        r.push(PendingKind::Comm, 30, 30, 30, b"thirty");
        r.push(PendingKind::Comm, 12, 12, 12, b"twelve");
        assert_eq!(
            released(&mut r, 25),
            [("twelve".into(), 12), ("twenty".into(), 20)]
        );
        assert_eq!(released(&mut r, u64::MAX), [("thirty".into(), 30)]);
        assert!(released(&mut r, u64::MAX).is_empty());
    }

    #[test]
    fn live_issue_16_one_in_n_hands_over_one_sample_per_n_faults() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIPPED: tracepoints need root or CAP_PERFMON");
            return;
        }
        let tracefs = Tracefs::open(Path::new("/")).expect("tracefs");
        let format = tracefs
            .event("exceptions", "page_fault_user")
            .expect("the page-fault tracepoint");
        let cpus: Vec<u32> =
            (0..std::thread::available_parallelism().unwrap().get() as u32).collect();
        let mut session = Session::new();
        let subscription = Subscription {
            format: &format,
            filter: None,
            rate: Rate::OneIn(16),
            kernel_stack: false,
        };
        session.add(0, &subscription, &cpus).unwrap();
        session.enable().unwrap();
        // 16384 first writes to fresh anonymous pages: as many faults in this process.
        const PAGES: usize = 16384;
        let mut memory = vec![0u8; PAGES * 4096];
        for page in memory.chunks_mut(4096) {
            page[0] = 1;
        }
        std::hint::black_box(&memory);
        let me = std::process::id();
        let (mut samples, mut faults) = (0u64, 0u64);
        session.drain(true, |d| {
            if let Drained::Sample(s) = d {
                if s.pid == me {
                    samples += 1;
                    faults += s.period;
                }
            }
        });
        // Asking the kernel for each sample's period made it write one per fault, of
        // period 1: 16 times the records, and a ring that overflowed.
        assert!(
            samples <= (PAGES / 8) as u64,
            "{samples} samples for {PAGES} faults"
        );
        assert_eq!(session.lost(0), 0);
        let pages = PAGES as u64;
        assert!(
            faults >= pages * 9 / 10 && faults <= pages * 12 / 10,
            "{faults} faults estimated from {samples} samples for {PAGES}"
        );
    }
}
