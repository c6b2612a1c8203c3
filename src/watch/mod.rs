//! `syslens watch`: the kernel's own events, live. It opens what the selected concepts'
//! [`EventSource`]s need (tracepoints through perf, taskstats exit records, the kernel
//! log), says which sources are unavailable and why, and streams one line (or one JSON
//! object) per event, with per-process summaries every few seconds and at the end.

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
use crate::model::event::{Context, Decoder, Event, EventSource, Feed};
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
    /// Events emitted per kind, for the summaries.
    counted: u64,
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

/// Runs the watch until `stop` is set, the duration passes, or output is closed.
pub fn run(
    opts: &WatchOptions,
    reader: Reader,
    out: &mut dyn Write,
    err: &mut dyn Write,
    stop: &Arc<AtomicBool>,
) -> io::Result<Outcome> {
    let mut outcome = Outcome::default();
    // Without a concept or kind named, the sources that slow the whole host stay off.
    let by_default = opts.concepts.is_empty() && opts.kinds.is_empty();
    let (selected, held_back): (Vec<&'static EventSource>, Vec<&'static EventSource>) =
        sources(&opts.concepts)
            .into_iter()
            .filter(|s| opts.kinds.is_empty() || opts.kinds.iter().any(|k| k == s.kind))
            .partition(|s| !(by_default && s.costly.is_some()));
    for s in &held_back {
        outcome.unavailable.push(Unavailable {
            what: s.kind.into(),
            why: format!(
                "off by default, {} (ask for it: watch {} or --kind {})",
                s.costly.unwrap_or(""),
                s.concepts[0].slug(),
                s.kind
            ),
            off: true,
        });
    }
    let mut ctx = HostContext::new(reader);
    let cpus = ctx.online_cpus();

    let mut active: Vec<Active> = selected
        .iter()
        .map(|s| Active {
            source: s,
            decoder: (s.decoder)(),
            counted: 0,
        })
        .collect();

    // Exits come from taskstats when it opens; its tracepoint fallback otherwise.
    let mut exits = None;
    if active.iter().any(|a| a.source.feed == Feed::Exits) {
        match host::ExitFeed::open(&cpus) {
            Ok(feed) => exits = Some(feed),
            Err(why) => outcome.unavailable.push(Unavailable {
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
            Err(e) => outcome.unavailable.push(Unavailable {
                what: "/dev/kmsg".into(),
                why: e.to_string(),
                off: false,
            }),
        }
    }

    let mut session = Session::new();
    let mut subs: Vec<Sub> = Vec::new();
    match Tracefs::open(ctx.reader().root()) {
        Err(e) => outcome.unavailable.push(Unavailable {
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
                            outcome.unavailable.push(Unavailable {
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
                    };
                    if let Err(e) = session.add(subs.len(), &sub, &cpus) {
                        let denied = matches!(
                            e.error.raw_os_error(),
                            Some(libc::EACCES) | Some(libc::EPERM)
                        );
                        outcome.unavailable.push(Unavailable {
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
            outcome.unavailable.push(Unavailable {
                what: "task records".into(),
                why: format!("{e}: processes that exit before their events are read go unnamed"),
                off: false,
            });
        }
    }
    session.enable()?;

    let mut printer = Printer {
        out,
        json: opts.json,
        closed: false,
    };
    printer.header(
        opts,
        &active,
        &subs,
        exits.is_some(),
        kmsg.is_some(),
        &outcome.unavailable,
        err,
    )?;

    let started = Instant::now();
    let mut last_tick = Instant::now();
    let mut last_summary = Instant::now();
    let mut batch: Vec<Event> = Vec::new();
    let mut routine: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut exit_overruns = 0;
    loop {
        let done = stop.load(Ordering::Relaxed)
            || opts.duration.is_some_and(|d| started.elapsed() >= d)
            || printer.closed;
        if !done {
            host::wait_readable(
                &session,
                exits.as_ref(),
                kmsg.as_ref(),
                Duration::from_millis(100),
            );
        }
        ctx.refresh_clock();
        ctx.forget_exited();
        session.drain(|d| match d {
            Drained::Task(t) => ctx.task(&t),
            Drained::Sample(s) => {
                let sub = &subs[s.sub];
                active[sub.source].decoder.sample(
                    &mut ctx,
                    sub.tracepoint,
                    &sub.format,
                    &s,
                    &mut batch,
                );
            }
        });
        if let Some(feed) = exits.as_mut() {
            for exit in feed.drain() {
                for a in active.iter_mut().filter(|a| a.source.feed == Feed::Exits) {
                    a.decoder.exit(&mut ctx, &exit, &mut batch);
                }
            }
        }
        if let Some(w) = kmsg.as_mut() {
            for kill in w.new_kills() {
                for a in active
                    .iter_mut()
                    .filter(|a| a.source.feed == Feed::KernelLog)
                {
                    a.decoder.oom_logged(&mut ctx, &kill, &mut batch);
                }
            }
        }
        for (i, sub) in subs.iter_mut().enumerate() {
            let lost = session.lost(i);
            if lost > sub.lost_reported {
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
                outcome.lost += lost - sub.lost_reported;
                sub.lost_reported = lost;
            }
        }
        if let Some(feed) = exits.as_ref() {
            let overruns = feed.overruns();
            if overruns > exit_overruns {
                let mut e = Event::new(ctx.now(), ConceptId::HighWaterMark, "lost", None)
                    .with("count", Some(overruns - exit_overruns))
                    .with("source", Some("taskstats"));
                e.line = format!(
                    "taskstats buffer overflowed {} times: exits lost",
                    overruns - exit_overruns
                );
                batch.push(e);
                outcome.lost += overruns - exit_overruns;
                exit_overruns = overruns;
            }
        }
        if last_tick.elapsed() >= Duration::from_millis(100) || done {
            for a in active.iter_mut() {
                a.decoder.tick(&mut ctx, &mut batch);
            }
            last_tick = Instant::now();
        }
        let summary_due = last_summary.elapsed() >= opts.summary_every;
        let mut summaries = Vec::new();
        if summary_due || done {
            for a in active.iter_mut() {
                if done {
                    a.decoder.finish(&mut ctx, &mut batch);
                } else {
                    a.decoder.summarize(&mut ctx, &mut summaries);
                }
            }
            last_summary = Instant::now();
        }
        batch.sort_by_key(|e| e.time);
        for e in batch.drain(..).chain(summaries.drain(..)) {
            if !keep(&mut ctx, opts, &e) {
                continue;
            }
            *outcome.counts.entry(e.kind).or_default() += 1;
            if let Some(a) = active.iter_mut().find(|a| a.source.kind == e.kind) {
                a.counted += 1;
            }
            if !e.notable && !opts.json {
                *routine.entry(e.kind).or_default() += 1;
                continue;
            }
            printer.event(&e)?;
        }
        if summary_due && !done {
            printer.span(&std::mem::take(&mut routine), opts.summary_every)?;
        }
        if done {
            printer.end(&outcome, started.elapsed())?;
            return Ok(outcome);
        }
    }
}

/// Whether an event passes `--pid` and `--cgroup`.
fn keep(ctx: &mut HostContext, opts: &WatchOptions, e: &Event) -> bool {
    if e.kind == "lost" {
        return true;
    }
    if let Some(pid) = opts.pid {
        let mine =
            |p: Option<i32>, ctx: &mut HostContext| p.is_some_and(|p| ctx.descends_from(p, pid));
        if !mine(e.subject, ctx) && !mine(e.related, ctx) {
            return false;
        }
    }
    if let Some(cg) = &opts.cgroup {
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

    #[allow(clippy::too_many_arguments)]
    fn header(
        &mut self,
        opts: &WatchOptions,
        active: &[Active],
        subs: &[Sub],
        taskstats: bool,
        kmsg: bool,
        unavailable: &[Unavailable],
        err: &mut dyn Write,
    ) -> io::Result<()> {
        // The sources go to stderr in JSON mode, so stdout stays pure NDJSON.
        let mut text = String::new();
        let kinds: Vec<&str> = active.iter().map(|a| a.source.kind).collect();
        text += &format!("watching {} ({} tracepoints", kinds.join(", "), subs.len());
        if taskstats {
            text += ", taskstats exits";
        }
        if kmsg {
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
        let width = crate::render::table_width();
        text = crate::render::wrap(&text, width).join("\n    ") + "\n";
        for u in unavailable {
            let label = if u.off { "off" } else { "unavailable" };
            let line = format!("{label}: {}: {}", u.what, clean(&u.why));
            for (i, part) in crate::render::wrap(&line, width - 4)
                .into_iter()
                .enumerate()
            {
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
            format!(
                "{}  {:<18} {:<16} {}\n",
                crate::render::text::clock_time(e.time),
                e.concept.slug(),
                e.kind,
                clean(&e.line)
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
