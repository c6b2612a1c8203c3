//! The OOM killer and reclaim as they happen: each kill with its victim, the task whose
//! allocation triggered it and the constraint; direct-reclaim stalls.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use syslens_probe::kmsg::OomKill;
use syslens_probe::trace::{Rate, Sample};
use syslens_probe::tracefs::EventFormat;

use crate::model::event::{
    bound, int, text, who, Context, Cost, Decoder, Event, EventSource, Feed, StallSpec, Stalls,
    TracepointSpec,
};

use super::ConceptId;

/// `oom-kill` and `reclaim-stall`.
pub static EVENTS: &[EventSource] = &[
    EventSource {
        kind: "oom-kill",
        concepts: &[ConceptId::SwapOom],
        tracepoints: &[TracepointSpec {
            system: "oom",
            name: "mark_victim",
            filter: None,
            rate: Rate::Every,
            kernel_stack: false,
        }],
        feed: Feed::KernelLog,
        cost: Cost::Light,
        decoder: || Box::new(OomKills::default()),
    },
    EventSource {
        kind: "reclaim-stall",
        concepts: &[ConceptId::SwapOom],
        tracepoints: &[
            TracepointSpec {
                system: "vmscan",
                name: "mm_vmscan_direct_reclaim_begin",
                filter: None,
                rate: Rate::Every,
                kernel_stack: false,
            },
            TracepointSpec {
                system: "vmscan",
                name: "mm_vmscan_direct_reclaim_end",
                filter: None,
                rate: Rate::Every,
                kernel_stack: false,
            },
        ],
        feed: Feed::Tracepoints,
        cost: Cost::Light,
        decoder: || Box::new(Stalls::new(&RECLAIM)),
    },
];

static RECLAIM: StallSpec = StallSpec {
    concept: ConceptId::SwapOom,
    kind: "reclaim-stall",
    doing: "in direct reclaim",
    outcome: ("nr_reclaimed", "reclaimed_pages"),
};

/// How long a victim seen by the tracepoint waits for the kernel log's report of the
/// same kill (the log line follows within microseconds; a rate-limited log never comes).
const LOG_WAIT: Duration = Duration::from_millis(500);

#[derive(Default)]
struct OomKills {
    /// Victims seen by the tracepoint, waiting for the log's constraint and cgroups.
    pending: Vec<(SystemTime, Event)>,
    /// Kills the log reported before (or without) the tracepoint: pid -> (when read, kill).
    logged: HashMap<i32, (SystemTime, OomKill)>,
}

fn kib(v: Option<i64>) -> Option<i64> {
    v.map(|k| k.saturating_mul(1024))
}

fn line(e: &Event) -> String {
    let victim = who(
        e.text_of("victim_comm").as_deref(),
        e.subject.unwrap_or(0).into(),
    );
    let mut line = format!("killed {victim}");
    if let Some(rss) = e.int_of("anon_rss_bytes") {
        line += &format!(" (anon {})", crate::model::units::bytes(rss as f64));
    }
    if let Some(t) = e.int_of("trigger_pid") {
        line += &format!(
            ", allocation by {}",
            who(e.text_of("trigger_comm").as_deref(), t)
        );
    }
    if let Some(c) = e.text_of("constraint") {
        line += &format!(", constraint {c}");
    }
    if let Some(c) = e.text_of("cgroup") {
        line += &format!(", cgroup {c}");
    }
    line
}

/// Adds what the log says of a kill: the constraint and the cgroups.
fn merge_log(mut e: Event, kill: &OomKill) -> Event {
    let constraint = kill.constraint.as_deref().map(|c| match c {
        "CONSTRAINT_MEMCG" => "cgroup".to_string(),
        "CONSTRAINT_NONE" => "global".to_string(),
        other => other.trim_start_matches("CONSTRAINT_").to_lowercase(),
    });
    if e.get("victim_comm").is_none() {
        e = e.with("victim_comm", Some(kill.comm.clone()));
    }
    if e.get("anon_rss_bytes").is_none() {
        e = e
            .with("anon_rss_bytes", kill.anon_rss_kb.map(|k| k * 1024))
            .with("file_rss_bytes", kill.file_rss_kb.map(|k| k * 1024))
            .with("shmem_rss_bytes", kill.shmem_rss_kb.map(|k| k * 1024))
            .with("oom_score_adj", kill.oom_score_adj);
    }
    if e.get("trigger_pid").is_none() {
        if let Some(t) = &kill.trigger {
            e = e
                .with("trigger_pid", t.pid)
                .with("trigger_comm", Some(t.comm.clone()));
        }
    }
    e = e
        .with("constraint", constraint)
        .with("cgroup", kill.task_memcg.clone())
        .with("oom_memcg", kill.oom_memcg.clone())
        .with("group_kill", Some(kill.group_kill));
    e.line = line(&e);
    e
}

impl Decoder for OomKills {
    fn sample(
        &mut self,
        ctx: &mut dyn Context,
        _: usize,
        f: &EventFormat,
        s: &Sample<'_>,
        out: &mut Vec<Event>,
    ) {
        let Some(victim) = int(f, s.raw, "pid") else {
            return;
        };
        let victim_comm = text(f, s.raw, "comm").or_else(|| ctx.comm(victim as i32));
        let trigger = s.pid as i32;
        let mut e = Event::new(
            ctx.wall(s.monotonic_ns),
            ConceptId::SwapOom,
            "oom-kill",
            Some(victim as i32),
        )
        .with("victim_pid", Some(victim))
        .with("victim_comm", victim_comm)
        .with("trigger_pid", Some(trigger))
        .with("trigger_comm", ctx.comm(trigger))
        // mark_victim's sizes are in KiB (its print fmt says "kB").
        .with("anon_rss_bytes", kib(int(f, s.raw, "anon_rss")))
        .with("file_rss_bytes", kib(int(f, s.raw, "file_rss")))
        .with("shmem_rss_bytes", kib(int(f, s.raw, "shmem_rss")))
        .with("oom_score_adj", int(f, s.raw, "oom_score_adj"));
        e.related = Some(trigger);
        if let Some((_, kill)) = self.logged.remove(&(victim as i32)) {
            out.push(merge_log(e, &kill));
        } else {
            e.line = line(&e);
            self.pending.push((ctx.now(), e));
        }
    }

    fn oom_logged(&mut self, ctx: &mut dyn Context, kill: &OomKill, out: &mut Vec<Event>) {
        if let Some(i) = self
            .pending
            .iter()
            .position(|(_, e)| e.subject == Some(kill.pid))
        {
            let (_, e) = self.pending.remove(i);
            out.push(merge_log(e, kill));
        } else {
            bound(&mut self.logged);
            self.logged.insert(kill.pid, (ctx.now(), kill.clone()));
        }
    }

    fn tick(&mut self, ctx: &mut dyn Context, out: &mut Vec<Event>) {
        let now = ctx.now();
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(seen, _)| now.duration_since(*seen).unwrap_or_default() >= LOG_WAIT);
        self.pending = waiting;
        out.extend(ready.into_iter().map(|(_, e)| e));
        // Logged kills the tracepoint never reported (no permission for perf, or a
        // kernel without it): the log alone, after the same wait.
        let stale: Vec<i32> = self
            .logged
            .iter()
            .filter(|(_, (seen, _))| now.duration_since(*seen).unwrap_or_default() >= LOG_WAIT)
            .map(|(pid, _)| *pid)
            .collect();
        for pid in stale {
            if let Some((_, kill)) = self.logged.remove(&pid) {
                let e = Event::new(now, ConceptId::SwapOom, "oom-kill", Some(pid))
                    .with("victim_pid", Some(pid));
                out.push(merge_log(e, &kill));
            }
        }
    }

    fn finish(&mut self, _: &mut dyn Context, out: &mut Vec<Event>) {
        out.extend(self.pending.drain(..).map(|(_, e)| e));
        let logged: Vec<_> = self.logged.drain().collect();
        for (pid, (seen, kill)) in logged {
            let e = Event::new(seen, ConceptId::SwapOom, "oom-kill", Some(pid))
                .with("victim_pid", Some(pid));
            out.push(merge_log(e, &kill));
        }
    }
}
