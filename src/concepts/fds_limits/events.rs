//! EMFILE as it happens: the call that found no free descriptor, and the limit.

use syslens_probe::trace::{Rate, Sample};
use syslens_probe::tracefs::EventFormat;

use crate::model::event::{who, Context, Cost, Decoder, Event, EventSource, Feed, TracepointSpec};

use super::ConceptId;

/// The kernel's filter: only calls that returned -EMFILE cost a sample.
const EMFILE: Option<&str> = Some("ret == -24");

const fn exit(name: &'static str) -> TracepointSpec {
    TracepointSpec {
        system: "syscalls",
        name,
        filter: EMFILE,
        rate: Rate::Every,
        kernel_stack: false,
    }
}

/// The calls that allocate a descriptor and can fail with EMFILE.
const CALLS: &[TracepointSpec] = &[
    exit("sys_exit_openat"),
    exit("sys_exit_openat2"),
    exit("sys_exit_open"),
    exit("sys_exit_socket"),
    exit("sys_exit_socketpair"),
    exit("sys_exit_accept"),
    exit("sys_exit_accept4"),
    exit("sys_exit_dup"),
    exit("sys_exit_dup2"),
    exit("sys_exit_dup3"),
    exit("sys_exit_fcntl"),
    exit("sys_exit_pipe"),
    exit("sys_exit_pipe2"),
    exit("sys_exit_epoll_create1"),
    exit("sys_exit_eventfd2"),
    exit("sys_exit_memfd_create"),
    exit("sys_exit_inotify_init1"),
    exit("sys_exit_timerfd_create"),
    exit("sys_exit_signalfd4"),
    exit("sys_exit_pidfd_open"),
];

/// `emfile`.
pub static EVENTS: &[EventSource] = &[EventSource {
    kind: "emfile",
    concepts: &[ConceptId::FdsLimits],
    tracepoints: CALLS,
    feed: Feed::Tracepoints,
    cost: Cost::Host("syscall tracepoints send every syscall of every task through the slow path (a getppid loop ran at 0.77x with EMFILE's alone on 2026-12-07, 0.92x in earlier runs)"),
    decoder: || Box::new(Emfile),
}];

struct Emfile;

impl Decoder for Emfile {
    fn sample(
        &mut self,
        ctx: &mut dyn Context,
        index: usize,
        _: &EventFormat,
        s: &Sample<'_>,
        out: &mut Vec<Event>,
    ) {
        let pid = s.pid as i32;
        let comm = ctx.comm(pid);
        let call = CALLS
            .get(index)
            .map(|c| c.name.trim_start_matches("sys_exit_"))
            .unwrap_or("?");
        let limit = ctx.nofile_limit(pid);
        let mut e = Event::new(
            ctx.wall(s.monotonic_ns),
            ConceptId::FdsLimits,
            "emfile",
            Some(pid),
        );
        e.line = format!(
            "{} hit EMFILE in {call}(){}",
            who(comm.as_deref(), pid.into()),
            limit
                .map(|l| format!(", soft limit {l}"))
                .unwrap_or_default()
        );
        out.push(
            e.with("pid", Some(pid))
                .with("comm", comm)
                .with("syscall", Some(call))
                .with("limit", limit),
        );
    }
}
