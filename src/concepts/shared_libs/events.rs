//! Program starts: each exec, with the file the kernel loaded.

use syslens_probe::trace::{Rate, Sample};
use syslens_probe::tracefs::EventFormat;

use crate::model::event::{
    int, text, who, Context, Cost, Decoder, Event, EventSource, Feed, TracepointSpec,
};

use super::ConceptId;

/// `exec`.
pub static EVENTS: &[EventSource] = &[EventSource {
    kind: "exec",
    concepts: &[ConceptId::SharedLibs, ConceptId::KernelUser],
    tracepoints: &[TracepointSpec {
        system: "sched",
        name: "sched_process_exec",
        filter: None,
        rate: Rate::Every,
        kernel_stack: false,
    }],
    feed: Feed::Tracepoints,
    cost: Cost::Light,
    decoder: || Box::new(Exec),
}];

struct Exec;

impl Decoder for Exec {
    fn sample(
        &mut self,
        ctx: &mut dyn Context,
        _: usize,
        f: &EventFormat,
        s: &Sample<'_>,
        out: &mut Vec<Event>,
    ) {
        let pid = int(f, s.raw, "pid").unwrap_or(s.pid.into());
        let filename = text(f, s.raw, "filename");
        let comm = ctx.comm(pid as i32);
        let mut e = Event::new(
            ctx.wall(s.monotonic_ns),
            ConceptId::SharedLibs,
            "exec",
            Some(pid as i32),
        );
        e.notable = false;
        e.line = format!(
            "{} exec {}",
            who(comm.as_deref(), pid),
            filename.as_deref().unwrap_or("?")
        );
        out.push(
            e.with("pid", Some(pid))
                .with("comm", comm)
                .with("filename", filename),
        );
    }
}
