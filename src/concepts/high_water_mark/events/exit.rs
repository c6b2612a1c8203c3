//! Process exits with their high-water marks: the peak polling misses when a process
//! lives between two polls.

use syslens_probe::trace::{Rate, Sample};
use syslens_probe::tracefs::EventFormat;

use crate::model::event::{
    signal_name, text, who, Context, Cost, Decoder, Event, EventSource, Feed, ProcessExit,
    TracepointSpec,
};
use crate::model::units::{bytes, duration};

use crate::concepts::ConceptId;

/// `exit`: taskstats exit records; the exit tracepoint (last thread of a group only)
/// where taskstats cannot be had, without peaks and CPU times.
pub const SOURCE: EventSource = EventSource {
    kind: "exit",
    concepts: &[ConceptId::HighWaterMark, ConceptId::Signals],
    tracepoints: &[TracepointSpec {
        system: "sched",
        name: "sched_process_exit",
        filter: Some("group_dead == 1"),
        rate: Rate::Every,
        kernel_stack: false,
    }],
    feed: Feed::Exits,
    cost: Cost::Light,
    decoder: || Box::new(Exits),
};

struct Exits;

/// Exits the text stream shows: killed by a signal, a failure status, or a peak this
/// large (the rest are counted in the summary).
const NOTABLE_PEAK: u64 = 100 << 20;

/// The exit event of a process.
fn exit_event(ctx: &mut dyn Context, x: &ProcessExit) -> Event {
    let mut e = Event::new(ctx.now(), ConceptId::HighWaterMark, "exit", Some(x.pid));
    e.notable = x.signal.is_some()
        || x.exit_code.is_some_and(|c| c != 0)
        || x.peak_rss_bytes.is_some_and(|p| p >= NOTABLE_PEAK);
    let how = match (x.signal, x.exit_code) {
        (Some(sig), _) if x.core_dumped == Some(true) => {
            format!("killed by {} (core dumped)", signal_name(sig))
        }
        (Some(sig), _) => format!("killed by {}", signal_name(sig)),
        (None, Some(code)) => format!("exit {code}"),
        (None, None) => "exited".to_string(),
    };
    let mut line = format!("{} {how}", who(Some(&x.comm), x.pid.into()));
    if let Some(l) = x.lifetime {
        line += &format!(" after {}", duration(l.as_secs_f64()));
    }
    if let Some(p) = x.peak_rss_bytes {
        line += &format!(", peak RSS {}", bytes(p as f64));
    }
    e.line = line;
    e.with("pid", Some(x.pid))
        .with("ppid", x.ppid)
        .with("comm", Some(x.comm.clone()))
        .with("exit_code", x.exit_code)
        .with("signal", x.signal.map(signal_name))
        .with("core_dumped", x.core_dumped)
        .with("lifetime_seconds", x.lifetime.map(|d| d.as_secs_f64()))
        .with("cpu_seconds", x.cpu.map(|d| d.as_secs_f64()))
        .with("peak_rss_bytes", x.peak_rss_bytes)
        .with("minflt", x.minflt)
        .with("majflt", x.majflt)
        .with("read_bytes", x.read_bytes)
        .with("write_bytes", x.write_bytes)
}

impl Decoder for Exits {
    fn sample(
        &mut self,
        ctx: &mut dyn Context,
        _: usize,
        f: &EventFormat,
        s: &Sample<'_>,
        out: &mut Vec<Event>,
    ) {
        let exit = ProcessExit {
            pid: s.pid as i32,
            comm: text(f, s.raw, "comm").unwrap_or_default(),
            ..ProcessExit::default()
        };
        let mut e = exit_event(ctx, &exit);
        e.time = ctx.wall(s.monotonic_ns);
        out.push(e);
    }

    fn exit(&mut self, ctx: &mut dyn Context, exit: &ProcessExit, out: &mut Vec<Event>) {
        out.push(exit_event(ctx, exit));
    }
}
