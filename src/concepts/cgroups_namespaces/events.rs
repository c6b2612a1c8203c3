//! Cgroups made, removed and joined.

use syslens_probe::trace::{Rate, Sample};
use syslens_probe::tracefs::EventFormat;

use crate::model::event::{
    int, text, who, Context, Cost, Decoder, Event, EventSource, Feed, TracepointSpec,
};

use super::ConceptId;

const ACTIONS: [&str; 3] = ["mkdir", "rmdir", "attach"];

/// `cgroup`.
pub static EVENTS: &[EventSource] = &[EventSource {
    kind: "cgroup",
    concepts: &[ConceptId::CgroupsNamespaces],
    tracepoints: &[
        TracepointSpec {
            system: "cgroup",
            name: "cgroup_mkdir",
            filter: None,
            rate: Rate::Every,
            kernel_stack: false,
        },
        TracepointSpec {
            system: "cgroup",
            name: "cgroup_rmdir",
            filter: None,
            rate: Rate::Every,
            kernel_stack: false,
        },
        TracepointSpec {
            system: "cgroup",
            name: "cgroup_attach_task",
            filter: None,
            rate: Rate::Every,
            kernel_stack: false,
        },
    ],
    feed: Feed::Tracepoints,
    cost: Cost::Light,
    decoder: || Box::new(Cgroups),
}];

struct Cgroups;

impl Decoder for Cgroups {
    fn sample(
        &mut self,
        ctx: &mut dyn Context,
        index: usize,
        f: &EventFormat,
        s: &Sample<'_>,
        out: &mut Vec<Event>,
    ) {
        let action = ACTIONS.get(index).copied().unwrap_or("?");
        let (pid, path) = if action == "attach" {
            (
                int(f, s.raw, "pid").unwrap_or(s.pid.into()),
                text(f, s.raw, "dst_path"),
            )
        } else {
            (s.pid.into(), text(f, s.raw, "path"))
        };
        let hierarchy = int(
            f,
            s.raw,
            if action == "attach" {
                "dst_root"
            } else {
                "root"
            },
        );
        let comm = ctx.comm(pid as i32);
        let mut e = Event::new(
            ctx.wall(s.monotonic_ns),
            ConceptId::CgroupsNamespaces,
            "cgroup",
            Some(pid as i32),
        );
        e.notable = action != "attach";
        e.line = format!(
            "{} {action} {}",
            who(comm.as_deref(), pid),
            path.as_deref().unwrap_or("?")
        );
        out.push(
            e.with("pid", Some(pid))
                .with("comm", comm)
                .with("path", path)
                .with("action", Some(action))
                .with("hierarchy", hierarchy),
        );
    }
}
