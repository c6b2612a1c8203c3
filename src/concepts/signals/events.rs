//! Signals as the kernel generates them: who sent which signal to whom, and what
//! became of it.

use syslens_probe::trace::{Rate, Sample};
use syslens_probe::tracefs::EventFormat;

use crate::model::event::{
    int, signal_name, text, who, Context, Cost, Decoder, Event, EventSource, Feed, TracepointSpec,
};

use super::ConceptId;

/// `signal`: every signal generated (`signal:signal_generate`).
pub static EVENTS: &[EventSource] = &[EventSource {
    kind: "signal",
    concepts: &[ConceptId::Signals],
    tracepoints: &[TracepointSpec {
        system: "signal",
        name: "signal_generate",
        filter: None,
        rate: Rate::Every,
        kernel_stack: false,
    }],
    feed: Feed::Tracepoints,
    cost: Cost::Light,
    decoder: || Box::new(Signals),
}];

struct Signals;

/// `result` of signal_generate (enum trace_signal_deliver in include/trace/events/signal.h).
fn result_name(result: i64) -> &'static str {
    match result {
        0 => "delivered",
        1 => "ignored",
        2 => "already pending",
        3 => "queue overflow",
        4 => "delivered without info",
        _ => "unknown",
    }
}

/// `code` (si_code) of signal_generate: who or what generated the signal.
fn code_name(code: i64) -> String {
    match code {
        0 => "user".into(),      // SI_USER: kill(2)
        0x80 => "kernel".into(), // SI_KERNEL
        -1 => "queue".into(),    // SI_QUEUE: sigqueue(3)
        -2 => "timer".into(),    // SI_TIMER
        -3 => "mesgq".into(),
        -4 => "asyncio".into(),
        -5 => "sigio".into(),
        -6 => "tkill".into(),                  // SI_TKILL: tgkill(2), raise(3)
        c if c > 0 => format!("kernel ({c})"), // a fault or child code: SEGV_MAPERR, CLD_EXITED, ...
        c => format!("{c}"),
    }
}

/// Signals the text stream leaves out unless sent by a user: routine job control and
/// timers (SIGCHLD on every exit, SIGALRM, SIGWINCH, SIGURG, SIGIO, SIGPROF, SIGVTALRM).
fn routine(sig: i64) -> bool {
    matches!(sig, 14 | 17 | 23 | 26 | 27 | 28 | 29)
}

impl Decoder for Signals {
    fn sample(
        &mut self,
        ctx: &mut dyn Context,
        _: usize,
        f: &EventFormat,
        s: &Sample<'_>,
        out: &mut Vec<Event>,
    ) {
        let Some(sig) = int(f, s.raw, "sig") else {
            return;
        };
        let target = int(f, s.raw, "pid").unwrap_or(0);
        let target_comm = text(f, s.raw, "comm");
        let sender = s.pid as i32;
        let sender_comm = ctx.comm(sender);
        let result = int(f, s.raw, "result").map(result_name);
        let code = int(f, s.raw, "code");
        let name = signal_name(sig as i32);
        let mut e = Event::new(
            ctx.wall(s.monotonic_ns),
            ConceptId::Signals,
            "signal",
            Some(target as i32),
        );
        e.related = Some(sender);
        e.notable = !routine(sig) || code == Some(0);
        e.line = format!(
            "{name} to {} from {}{}",
            who(target_comm.as_deref(), target),
            who(sender_comm.as_deref(), sender.into()),
            result.map(|r| format!(" ({r})")).unwrap_or_default()
        );
        out.push(
            e.with("signal", Some(name))
                .with("sender_pid", Some(sender))
                .with("sender_comm", sender_comm)
                .with("target_pid", Some(target))
                .with("target_comm", target_comm)
                .with("result", result)
                .with("code", code.map(code_name))
                .with("errno", int(f, s.raw, "errno").filter(|&e| e != 0)),
        );
    }
}
