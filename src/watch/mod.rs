//! `syslens watch`: the kernel's own events, live. It opens what the selected concepts'
//! [`EventSource`]s need (tracepoints through perf, taskstats exit records, the kernel
//! log), says which sources are unavailable and why, and streams one line (or one JSON
//! object) per event, with per-process summaries every few seconds and at the end.

pub mod fatal;
mod host;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use syslens_probe::kmsg::OomWatch;
use syslens_probe::trace::{Drained, Session, Subscription};
use syslens_probe::tracefs::{EventFormat, Tracefs};
use syslens_probe::Reader;

use crate::catalogue::ConceptId;
use crate::concepts::REGISTRY;
use crate::model::event::{Context, Cost, Decoder, Event, EventSource, Feed};
use crate::render::safe::clean;

pub use host::HostContext;

/// What to watch and how to print it.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// The concepts to watch; empty for all.
    pub concepts: Vec<ConceptId>,
    /// Only events of this process and its descendants.
    pub pid: Option<i32>,
    /// Only events of processes in this cgroup (a path below a hierarchy's root) or below.
    pub cgroup: Option<String>,
    /// Stop after this long; `None`: until SIGINT / SIGTERM.
    pub duration: Option<Duration>,
    /// Only events of these kinds; empty for all.
    pub kinds: Vec<String>,
    /// NDJSON instead of text.
    pub json: bool,
    /// How often the per-process summaries are printed.
    pub summary_every: Duration,
}

/// One selected source, with its decoder and the tracepoints it got.
struct Active {
    source: &'static EventSource,
    decoder: Box<dyn Decoder>,
}

/// A subscription's place: which source, which of its tracepoints, and the layout.
struct Sub {
    source: usize,
    tracepoint: usize,
    format: EventFormat,
    lost_reported: u64,
}

/// Why a source (or part of one) is not watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// What is missing (`signal:signal_generate`, `taskstats`).
    pub what: String,
    /// Why, and what would grant it.
    pub why: String,
    /// Left off by choice (a costly source not asked for), not refused.
    pub off: bool,
}

/// What a watch saw, for its caller and tests.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Events emitted per kind.
    pub counts: BTreeMap<&'static str, u64>,
    /// Sources that could not be opened.
    pub unavailable: Vec<Unavailable>,
    /// Samples the kernel dropped (full ring buffers), all sources.
    pub lost: u64,
}

/// The sources of the selected concepts, in registry order, each once (every source
/// when `concepts` is empty).
pub fn sources(concepts: &[ConceptId]) -> Vec<&'static EventSource> {
    let mut out: Vec<&'static EventSource> = Vec::new();
    for def in REGISTRY.iter() {
        for source in def.events {
            let wanted =
                concepts.is_empty() || source.concepts.iter().any(|c| concepts.contains(c));
            if wanted && !out.iter().any(|s| std::ptr::eq(*s, source)) {
                out.push(source);
            }
        }
    }
    out
}

/// The sources `opts` selects, split into those that open and those held back by
/// their cost: the light ones always open; those that slow the host when a concept or
/// kind is named; the heaviest only when their kind is.
fn select(opts: &WatchOptions) -> (Vec<&'static EventSource>, Vec<&'static EventSource>) {
    let named = !(opts.concepts.is_empty() && opts.kinds.is_empty());
    sources(&opts.concepts)
        .into_iter()
        .filter(|s| opts.kinds.is_empty() || opts.kinds.iter().any(|k| k == s.kind))
        .partition(|s| match s.cost {
            Cost::Light => true,
            Cost::Host(_) => named,
            Cost::Heavy(_) => !opts.kinds.is_empty(),
        })
}

/// The open sources of a watch and their decoders: what `watch` prints, what `record`
/// stores and what `serve` counts all come from one of these.
pub struct Watcher {
    ctx: HostContext,
    active: Vec<Active>,
    subs: Vec<Sub>,
    session: Session,
    exits: Option<host::ExitFeed>,
    kmsg: Option<OomWatch>,
    unavailable: Vec<Unavailable>,
    pid: Option<i32>,
    cgroup: Option<String>,
    summary_every: Duration,
    last_tick: Instant,
    last_summary: Instant,
    exit_overruns: u64,
    lost: u64,
    batch: Vec<Event>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("kinds", &self.kinds())
            .field("tracepoints", &self.subs.len())
            .field("unavailable", &self.unavailable)
            .field("lost", &self.lost)
            .finish_non_exhaustive()
    }
}

/// What one [`Watcher::poll`] produced besides its events.
#[derive(Debug, Default, Clone, Copy)]
pub struct Polled {
    /// The per-process summaries of the span just ended are among the events.
    pub summarized: bool,
}

impl Watcher {
    /// Opens every source `opts` selects that this host grants; what it cannot open is
    /// in [`Watcher::unavailable`], with why. Only an error enabling what did open fails.
    pub fn open(opts: &WatchOptions, reader: Reader) -> io::Result<Watcher> {
        let mut unavailable = Vec::new();
        let (selected, held_back) = select(opts);
        for s in &held_back {
            let ask = match s.cost {
                Cost::Heavy(_) => format!("--kind {}", s.kind),
                _ => format!("watch {} or --kind {}", s.concepts[0].slug(), s.kind),
            };
            unavailable.push(Unavailable {
                what: s.kind.into(),
                why: format!(
                    "off by default, {} (ask for it: {ask})",
                    s.cost.why().unwrap_or("")
                ),
                off: true,
            });
        }
        let mut ctx = HostContext::new(reader);
        let cpus = ctx.online_cpus();

        let active: Vec<Active> = selected
            .iter()
            .map(|s| Active {
                source: s,
                decoder: (s.decoder)(),
            })
            .collect();

        // Exits come from taskstats when it opens; its tracepoint fallback otherwise.
        let mut exits = None;
        if active.iter().any(|a| a.source.feed == Feed::Exits) {
            match host::ExitFeed::open(&cpus) {
                Ok(feed) => exits = Some(feed),
                Err(why) => unavailable.push(Unavailable {
                    what: "taskstats".into(),
                    why,
                    off: false,
                }),
            }
        }
        let mut kmsg = None;
        if active.iter().any(|a| a.source.feed == Feed::KernelLog) {
            match OomWatch::open(ctx.reader()) {
                Ok(w) => kmsg = Some(w),
                Err(e) => unavailable.push(Unavailable {
                    what: "/dev/kmsg".into(),
                    why: e.to_string(),
                    off: false,
                }),
            }
        }

        let mut session = Session::new();
        let mut subs: Vec<Sub> = Vec::new();
        match Tracefs::open(ctx.reader().root()) {
            Err(e) => unavailable.push(Unavailable {
                what: "tracepoints".into(),
                why: e.why,
                off: false,
            }),
            Ok(tracefs) => {
                'sources: for (si, a) in active.iter().enumerate() {
                    if a.source.feed == Feed::Exits && exits.is_some() {
                        continue;
                    }
                    for (ti, tp) in a.source.tracepoints.iter().enumerate() {
                        let name = format!("{}:{}", tp.system, tp.name);
                        let format = match tracefs.event(tp.system, tp.name) {
                            Ok(f) => f,
                            Err(e) => {
                                unavailable.push(Unavailable {
                                    what: name,
                                    why: e.why,
                                    off: false,
                                });
                                continue;
                            }
                        };
                        let sub = Subscription {
                            format: &format,
                            filter: tp.filter,
                            rate: tp.rate,
                            kernel_stack: tp.kernel_stack,
                        };
                        if let Err(e) = session.add(subs.len(), &sub, &cpus) {
                            let denied = matches!(
                                e.error.raw_os_error(),
                                Some(libc::EACCES) | Some(libc::EPERM)
                            );
                            unavailable.push(Unavailable {
                                what: name,
                                why: e.why,
                                off: false,
                            });
                            if denied {
                                // Every other tracepoint would be refused the same way.
                                break 'sources;
                            }
                            continue;
                        }
                        subs.push(Sub {
                            source: si,
                            tracepoint: ti,
                            format,
                            lost_reported: 0,
                        });
                    }
                }
            }
        }
        if !subs.is_empty() {
            ctx.scan_names();
            if let Err(e) = session.track_tasks(&cpus) {
                unavailable.push(Unavailable {
                    what: "task records".into(),
                    why: format!(
                        "{e}: processes that exit before their events are read go unnamed"
                    ),
                    off: false,
                });
            }
        }
        session.enable()?;
        Ok(Watcher {
            ctx,
            active,
            subs,
            session,
            exits,
            kmsg,
            unavailable,
            pid: opts.pid,
            cgroup: opts.cgroup.clone(),
            summary_every: opts.summary_every,
            last_tick: Instant::now(),
            last_summary: Instant::now(),
            exit_overruns: 0,
            lost: 0,
            batch: Vec::new(),
        })
    }

    /// The sources (or parts) that could not be opened or were left off, with why.
    pub fn unavailable(&self) -> &[Unavailable] {
        &self.unavailable
    }

    /// The event kinds being watched, in registry order.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.active.iter().map(|a| a.source.kind).collect()
    }

    /// Whether any feed of the source of `kind` is open (a tracepoint, the exit records
    /// or the kernel log): its events can come. False for a kind not watched.
    pub fn is_open(&self, kind: &str) -> bool {
        self.active.iter().enumerate().any(|(i, a)| {
            a.source.kind == kind
                && (self.subs.iter().any(|s| s.source == i)
                    || (a.source.feed == Feed::Exits && self.exits.is_some())
                    || (a.source.feed == Feed::KernelLog && self.kmsg.is_some()))
        })
    }

    /// Samples the kernel dropped so far (full ring buffers, taskstats overruns).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// What the watch knows of the host's processes (names, parents, cgroups).
    pub fn context(&mut self) -> &mut HostContext {
        &mut self.ctx
    }

    /// Blocks until a source is readable or `timeout` passes.
    pub fn wait(&self, timeout: Duration) {
        host::wait_readable(
            &self.session,
            self.exits.as_ref(),
            self.kmsg.as_ref(),
            timeout,
        );
    }

    /// As [`Watcher::wait`], but taking at least `gap` in all: a ring buffer can poll
    /// readable with nothing in it (signal:signal_generate on this 6.18 kernel: ~11 000
    /// wake-ups a second with one signal in two seconds), which must not spin a caller
    /// that runs for the life of an exporter.
    pub fn wait_paced(&self, timeout: Duration, gap: Duration) {
        let began = Instant::now();
        self.wait(timeout);
        if let Some(left) = gap.checked_sub(began.elapsed()) {
            std::thread::sleep(left);
        }
    }

    /// Reads what every source has, decodes it and appends the events that pass the
    /// filters to `out`, in time order; the span's summaries follow when one is due.
    pub fn poll(&mut self, out: &mut Vec<Event>) -> Polled {
        self.collect(false, out)
    }

    /// Reads what is left and appends it with every decoder's final events.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        self.collect(true, out);
    }

    fn collect(&mut self, done: bool, out: &mut Vec<Event>) -> Polled {
        let Watcher {
            ctx,
            active,
            subs,
            session,
            batch,
            ..
        } = self;
        ctx.refresh_clock();
        ctx.forget_exited();
        session.drain(done, |d| match d {
            Drained::Task(t) => ctx.task(&t),
            Drained::Sample(s) => {
                let sub = &subs[s.sub];
                active[sub.source]
                    .decoder
                    .sample(ctx, sub.tracepoint, &sub.format, &s, batch);
            }
        });
        if let Some(feed) = self.exits.as_mut() {
            for exit in feed.drain() {
                for a in active.iter_mut().filter(|a| a.source.feed == Feed::Exits) {
                    a.decoder.exit(ctx, &exit, batch);
                }
            }
        }
        if let Some(w) = self.kmsg.as_mut() {
            for kill in w.new_kills() {
                for a in active
                    .iter_mut()
                    .filter(|a| a.source.feed == Feed::KernelLog)
                {
                    a.decoder.oom_logged(ctx, &kill, batch);
                }
            }
        }
        for (i, sub) in subs.iter_mut().enumerate() {
            let lost = session.lost(i);
            if lost > sub.lost_reported {
                active[sub.source].decoder.lost();
                let source = active[sub.source].source;
                let mut e = Event::new(ctx.now(), source.concepts[0], "lost", None)
                    .with("count", Some(lost - sub.lost_reported))
                    .with(
                        "source",
                        Some(format!(
                            "{}:{}",
                            source.tracepoints[sub.tracepoint].system, sub.format.name
                        )),
                    );
                e.line = format!(
                    "{} samples of {} lost (ring buffer full)",
                    lost - sub.lost_reported,
                    sub.format.name
                );
                batch.push(e);
                self.lost += lost - sub.lost_reported;
                sub.lost_reported = lost;
            }
        }
        if let Some(feed) = self.exits.as_ref() {
            let overruns = feed.overruns();
            if overruns > self.exit_overruns {
                let n = overruns - self.exit_overruns;
                let mut e = Event::new(ctx.now(), ConceptId::HighWaterMark, "lost", None)
                    .with("count", Some(n))
                    .with("source", Some("taskstats"));
                e.line = format!("taskstats buffer overflowed {n} times: exits lost");
                batch.push(e);
                self.lost += n;
                self.exit_overruns = overruns;
            }
        }
        if self.last_tick.elapsed() >= Duration::from_millis(100) || done {
            for a in active.iter_mut() {
                a.decoder.tick(ctx, batch);
            }
            self.last_tick = Instant::now();
        }
        let summarized = self.last_summary.elapsed() >= self.summary_every || done;
        let mut summaries = Vec::new();
        if summarized {
            for a in active.iter_mut() {
                if done {
                    a.decoder.finish(ctx, batch);
                } else {
                    a.decoder.summarize(ctx, &mut summaries);
                }
            }
            self.last_summary = Instant::now();
        }
        batch.sort_by_key(|e| e.time);
        for e in batch.drain(..).chain(summaries) {
            if !keep(ctx, self.pid, self.cgroup.as_deref(), &e) {
                continue;
            }
            out.push(e);
        }
        Polled {
            summarized: summarized && !done,
        }
    }
}

/// Runs the watch until `stop` is set, the duration passes, or output is closed.
pub fn run(
    opts: &WatchOptions,
    reader: Reader,
    out: &mut dyn Write,
    err: &mut dyn Write,
    stop: &Arc<AtomicBool>,
) -> io::Result<Outcome> {
    let mut watcher = Watcher::open(opts, reader)?;
    let mut printer = Printer {
        out,
        json: opts.json,
        closed: false,
    };
    printer.header(opts, &watcher, err)?;

    let started = Instant::now();
    let mut outcome = Outcome {
        unavailable: watcher.unavailable().to_vec(),
        ..Outcome::default()
    };
    let mut events: Vec<Event> = Vec::new();
    let mut routine: BTreeMap<&'static str, u64> = BTreeMap::new();
    loop {
        let done = stop.load(Ordering::Relaxed)
            || opts.duration.is_some_and(|d| started.elapsed() >= d)
            || printer.closed;
        let polled = if done {
            watcher.finish(&mut events);
            Polled::default()
        } else {
            // A ring can report readable with nothing in it (signal_generate on 6.18):
            // at most 100 passes a second, whatever it says.
            watcher.wait_paced(Duration::from_millis(100), Duration::from_millis(10));
            watcher.poll(&mut events)
        };
        for e in events.drain(..) {
            *outcome.counts.entry(e.kind).or_default() += 1;
            if !e.notable && !opts.json {
                *routine.entry(e.kind).or_default() += 1;
                continue;
            }
            printer.event(&e)?;
        }
        if polled.summarized {
            printer.span(&std::mem::take(&mut routine), opts.summary_every)?;
        }
        if done {
            outcome.lost = watcher.lost();
            printer.end(&outcome, started.elapsed())?;
            return Ok(outcome);
        }
    }
}

/// Whether an event passes `--pid` and `--cgroup`.
fn keep(ctx: &mut HostContext, pid: Option<i32>, cgroup: Option<&str>, e: &Event) -> bool {
    if e.kind == "lost" {
        return true;
    }
    if let Some(pid) = pid {
        let mine =
            |p: Option<i32>, ctx: &mut HostContext| p.is_some_and(|p| ctx.descends_from(p, pid));
        if !mine(e.subject, ctx) && !mine(e.related, ctx) {
            return false;
        }
    }
    if let Some(cg) = cgroup {
        if !e.subject.is_some_and(|p| ctx.in_cgroup(p, cg)) {
            return false;
        }
    }
    true
}

struct Printer<'a> {
    out: &'a mut dyn Write,
    json: bool,
    /// Output was closed (`| head`): stop quietly.
    closed: bool,
}

impl Printer<'_> {
    fn write(&mut self, text: &str) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        match self
            .out
            .write_all(text.as_bytes())
            .and_then(|_| self.out.flush())
        {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            r => r,
        }
    }

    fn header(
        &mut self,
        opts: &WatchOptions,
        watcher: &Watcher,
        err: &mut dyn Write,
    ) -> io::Result<()> {
        // The sources go to stderr in JSON mode, so stdout stays pure NDJSON.
        let mut text = String::new();
        text += &format!(
            "watching {} ({} tracepoints",
            watcher.kinds().join(", "),
            watcher.subs.len()
        );
        if watcher.exits.is_some() {
            text += ", taskstats exits";
        }
        if watcher.kmsg.is_some() {
            text += ", kernel log";
        }
        text += ")";
        if let Some(pid) = opts.pid {
            text += &format!(", pid {pid} and its descendants");
        }
        if let Some(cg) = &opts.cgroup {
            text += &format!(", cgroup {}", clean(cg));
        }
        text += match opts.duration {
            Some(d) => format!(
                " for {}; Ctrl-C ends it early",
                crate::model::units::duration(d.as_secs_f64())
            ),
            None => "; Ctrl-C ends it".to_string(),
        }
        .as_str();
        // Wrapped to the terminal, never cut: the reasons are the point.
        // Continuation lines are indented: the wrap leaves them the room for it.
        let width = crate::render::width();
        text = crate::render::wrap_hanging(&text, width, width.saturating_sub(4)).join("\n    ")
            + "\n";
        for u in watcher.unavailable() {
            let label = if u.off { "off" } else { "unavailable" };
            let line = format!("{label}: {}: {}", u.what, clean(&u.why));
            let parts = crate::render::wrap_hanging(
                &line,
                width.saturating_sub(2),
                width.saturating_sub(6),
            );
            for (i, part) in parts.into_iter().enumerate() {
                text += &format!("{}{part}\n", if i == 0 { "  " } else { "      " });
            }
        }
        if self.json {
            err.write_all(text.as_bytes())
        } else {
            self.write(&text)
        }
    }

    fn event(&mut self, e: &Event) -> io::Result<()> {
        let line = if self.json {
            let mut s = serde_json::to_string(e).map_err(io::Error::other)?;
            s.push('\n');
            s
        } else {
            crate::render::text::event_line(
                &crate::render::text::clock_time(e.time),
                e.concept.slug(),
                e.kind,
                &e.line,
                crate::render::width(),
            )
        };
        self.write(&line)
    }

    fn span(&mut self, routine: &BTreeMap<&'static str, u64>, every: Duration) -> io::Result<()> {
        if self.json || routine.is_empty() {
            return Ok(());
        }
        let counts: Vec<String> = routine.iter().map(|(k, n)| format!("{n} {k}")).collect();
        self.write(&format!(
            "-- last {}: also {} (not shown)\n",
            crate::model::units::duration(every.as_secs_f64()),
            counts.join(", ")
        ))
    }

    fn end(&mut self, outcome: &Outcome, took: Duration) -> io::Result<()> {
        if self.json {
            return Ok(());
        }
        let counts: Vec<String> = outcome
            .counts
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        let mut text = format!(
            "-- watched {}: {}",
            crate::model::units::duration(took.as_secs_f64()),
            if counts.is_empty() {
                "no events".to_string()
            } else {
                counts.join(", ")
            }
        );
        text += &format!("; {} samples lost\n", outcome.lost);
        self.write(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kinds, sorted.
    fn kinds(of: &[&'static EventSource]) -> Vec<&'static str> {
        let mut k: Vec<_> = of.iter().map(|s| s.kind).collect();
        k.sort_unstable();
        k
    }

    fn options(concepts: Vec<ConceptId>, kinds: &[&str]) -> WatchOptions {
        WatchOptions {
            concepts,
            pid: None,
            cgroup: None,
            duration: None,
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
            json: false,
            summary_every: Duration::from_secs(5),
        }
    }

    #[test]
    fn issue_16_a_source_opens_as_its_cost_allows() {
        // Nothing named: only the light sources.
        let (open, held) = select(&options(Vec::new(), &[]));
        assert!(
            open.iter().all(|s| s.cost == Cost::Light),
            "{:?}",
            kinds(&open)
        );
        assert!(kinds(&held).contains(&"faults") && kinds(&held).contains(&"rss-peak"));
        // A concept named: its host-wide sources too, not its heavy ones.
        let (open, held) = select(&options(
            vec![ConceptId::HighWaterMark, ConceptId::PageFaults],
            &[],
        ));
        assert_eq!(kinds(&open), ["exit", "faults"]);
        assert_eq!(kinds(&held), ["rss-peak"]);
        let (open, held) = select(&options(vec![ConceptId::Locking], &[]));
        assert_eq!(
            (kinds(&open), kinds(&held)),
            (vec!["kernel-lock"], vec!["futex-wait"])
        );
        // A heavy kind named opens.
        let (open, held) = select(&options(Vec::new(), &["rss-peak", "futex-wait"]));
        assert_eq!(kinds(&open), ["futex-wait", "rss-peak"]);
        assert!(held.is_empty());
    }
}
