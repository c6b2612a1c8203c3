//! Lab: scheduling and context switches. A pipe ping-pong switches between two
//! processes on every message (on one CPU, or across two); two CPU hogs at nice 0 and
//! nice 5 pinned to one CPU share it by the scheduler's weights (1024 : 335); hogs are
//! preempted (involuntary switches), sleepers give the CPU up (voluntary ones).

use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::catalogue::ConceptId;
use crate::lab::mem::pin_to;
use crate::lab::meter::{trial, Meter, SystemMeter};
use crate::lab::params::{ParamError, ParamSpec, ParamValues};
use crate::lab::report::{pct, pct_text, Axis, Check, Cmp, LabReport};
use crate::lab::sandbox::{os_result, wait_forked, LabError, Link, Params};
use crate::lab::settings::{read_setting, SCHED_AUTOGROUP};
use crate::lab::stats::{Adaptive, Stop};
use crate::lab::{LabContext, LabDef, WATCHDOG};

/// The scheduling lab: its parameters, the parent side (`run`) and the child roles.
pub static LAB: LabDef = LabDef {
    id: ConceptId::Scheduling,
    summary: "pipe ping-pong on one CPU and across CPUs; nice 0 vs nice 5 hogs on one CPU; hogs vs sleepers",
    headline: &[("pipe round trip, same CPU", "pipe round trip"), ("pipe round trip, across", "across CPUs")],
    params: &PARAMS,
    check: |p| settings(p).map(drop),
    run,
    child,
};

static PARAMS: [ParamSpec; 5] = [
    ParamSpec::int(
        "rounds",
        "round trips",
        "pipe round trips timed per trial on one CPU (a tenth, at least 200, across CPUs)",
        (20_000, 5_000),
        (100, 1_000_000),
    ),
    ParamSpec::trials(
        "timed ping-pong trials, on one CPU and across (at least)",
        9,
        3,
    ),
    ParamSpec::budget(1000, 300),
    // Raising one's own nice value needs no privilege; lowering it below 0 does.
    ParamSpec::int(
        "nice",
        "nice",
        "the nice value of the second hog (the first runs at 0)",
        (5, 5),
        (0, 19),
    ),
    ParamSpec::millis(
        "hog",
        "how long the two hogs share CPU 0",
        (2000, 1000),
        (300, 60_000),
    ),
];

/// What a run is set by.
struct Settings {
    rounds: u64,
    trials: usize,
    budget_ms: u64,
    nice: i32,
    hog: Duration,
}

fn settings(p: &ParamValues) -> Result<Settings, ParamError> {
    Ok(Settings {
        rounds: p.count("rounds")?,
        trials: p.count("trials")? as usize,
        budget_ms: p.millis("budget_ms")?.as_millis() as u64,
        nice: p.int("nice")? as i32,
        hog: p.millis("hog")?,
    })
}

/// CFS load weights by nice value, -20 to 19 (kernel/sched/core.c, sched_prio_to_weight).
const WEIGHTS: [f64; 40] = [
    88761.0, 71755.0, 56483.0, 46273.0, 36291.0, 29154.0, 23254.0, 18705.0, 14949.0, 11916.0,
    9548.0, 7620.0, 6100.0, 4904.0, 3906.0, 3121.0, 2501.0, 1991.0, 1586.0, 1277.0, 1024.0, 820.0,
    655.0, 526.0, 423.0, 335.0, 272.0, 215.0, 172.0, 137.0, 110.0, 87.0, 70.0, 56.0, 45.0, 36.0,
    29.0, 23.0, 18.0, 15.0,
];

/// The load weight of nice value `nice` (clamped to -20..=19).
fn weight(nice: i32) -> f64 {
    WEIGHTS[(nice.clamp(-20, 19) + 20) as usize]
}
const WARMUP: usize = 2;
const SAMPLE: Duration = Duration::from_millis(100);

/// The parameters of the child role "pingpong": this side runs on `cpu_a`, the
/// forked partner on `cpu_b`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PingPongParams {
    rounds: u64,
    trials: usize,
    /// Time budget of the adaptive trials (ms; 0: exactly `trials`).
    budget_ms: u64,
    cpu_a: usize,
    cpu_b: usize,
}

/// The parameters of the child role "hog".
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HogParams {
    nice: i32,
    cpu: usize,
}

/// The parameters of the child role "sleeper".
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SleeperParams {
    cpu: usize,
}

/// The pipe ping-pong between two processes: round trips and the switches they cost.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingPong {
    /// us per round trip (two switches, four pipe system calls), per trial.
    pub round_trip_us: Vec<f64>,
    /// Context switches (voluntary + involuntary) of one side per round trip, per trial.
    pub switches_per_round: Vec<f64>,
    /// How the adaptive trials (watching the round trip) ended.
    pub stop: Option<Stop>,
}

/// Context switch counts of one process over the hog phase (from /proc/PID/status).
#[derive(Debug, Clone, Copy, Default)]
pub struct Switches {
    /// Voluntary switches: the process blocked or yielded.
    pub voluntary: u64,
    /// Involuntary switches: the scheduler preempted it.
    pub involuntary: u64,
}

/// Everything the scheduling lab measured, as `analyze` judges it.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// The second hog's nice value.
    pub nice: i32,
    /// Both sides pinned to one CPU.
    pub same_cpu: PingPong,
    /// The sides on two CPUs (None on a one-CPU host).
    pub cross_cpu: Option<PingPong>,
    /// CPU time (schedstat run ns) of each hog over the phase.
    pub run_nice0: u64,
    /// The same for the niced hog (ns).
    pub run_niced: u64,
    /// (seconds, share of the CPU) of each hog per sampling interval.
    pub share_nice0: Vec<[f64; 2]>,
    /// The same for the niced hog.
    pub share_niced: Vec<[f64; 2]>,
    /// The nice 0 hog's switches over the phase.
    pub hog: Switches,
    /// The sleeper's switches over the phase.
    pub sleeper: Switches,
}

fn switches(ctx: &mut LabContext, pid: i32) -> Result<Switches, LabError> {
    let s = ctx
        .status(pid)
        .map_err(LabError::read(format!("/proc/{pid}/status")))?;
    Ok(Switches {
        voluntary: s.voluntary_ctxt_switches.unwrap_or(0),
        involuntary: s.nonvoluntary_ctxt_switches.unwrap_or(0),
    })
}

fn run(ctx: &mut LabContext, report: &mut LabReport) -> Result<(), LabError> {
    let Settings {
        rounds,
        trials,
        budget_ms,
        nice,
        hog: hog_time,
    } = settings(&ctx.params)?;
    let cpus = ctx.host.cpus.clone().unwrap_or(1);
    let autogroup = report.setting(SCHED_AUTOGROUP, read_setting(SCHED_AUTOGROUP));
    report.note(format!(
        "autogroup {}: both hogs are the lab's children, in one session and one cgroup, so nice alone sets their weights; \
         with autogroup 1, tasks of different sessions share by group and nice barely matters between them",
        autogroup.unwrap_or_else(|why| why)
    ));
    let mut m = Measured {
        nice,
        ..Measured::default()
    };
    let pingpong = |ctx: &mut LabContext, b: usize, rounds: u64| -> Result<PingPong, LabError> {
        let mut c = ctx.spawn(
            ConceptId::Scheduling,
            "pingpong",
            &PingPongParams {
                rounds,
                trials,
                budget_ms,
                cpu_a: 0,
                cpu_b: b,
            },
        )?;
        let p = c.expect("pingpong", WATCHDOG)?;
        c.wait(WATCHDOG)?;
        Ok(p)
    };
    m.same_cpu = pingpong(ctx, 0, rounds)?;
    if cpus > 1 {
        // A cross-vCPU wake-up costs tens of us on a VM: fewer rounds.
        m.cross_cpu = Some(pingpong(ctx, 1, (rounds / 10).max(200))?);
    }

    let sleeper_cpu = if cpus > 1 { 1 } else { 0 };
    let hog = |nice| HogParams { nice, cpu: 0 };
    let mut a = ctx.spawn(ConceptId::Scheduling, "hog", &hog(0))?;
    let mut b = ctx.spawn(ConceptId::Scheduling, "hog", &hog(nice))?;
    let mut s = ctx.spawn(
        ConceptId::Scheduling,
        "sleeper",
        &SleeperParams { cpu: sleeper_cpu },
    )?;
    for c in [&mut a, &mut b, &mut s] {
        c.expect::<()>("ready", WATCHDOG)?;
    }
    let (hog0, sleep0) = (switches(ctx, a.pid)?, switches(ctx, s.pid)?);
    let start = Instant::now();
    let (mut ra, mut rb) = (ctx.run_ns(a.pid)?, ctx.run_ns(b.pid)?);
    let (first_a, first_b) = (ra, rb);
    for c in [&mut a, &mut b, &mut s] {
        c.go()?;
    }
    while start.elapsed() < hog_time {
        std::thread::sleep(SAMPLE);
        let (na, nb) = (ctx.run_ns(a.pid)?, ctx.run_ns(b.pid)?);
        // Run time only grows; saturating all the same (a counter read is no promise).
        let (da, db) = (na.saturating_sub(ra) as f64, nb.saturating_sub(rb) as f64);
        let t = start.elapsed().as_secs_f64();
        if da + db > 0.0 {
            m.share_nice0.push([t, da / (da + db)]);
            m.share_niced.push([t, db / (da + db)]);
        }
        (ra, rb) = (na, nb);
    }
    m.run_nice0 = ra - first_a;
    m.run_niced = rb - first_b;
    let (hog1, sleep1) = (switches(ctx, a.pid)?, switches(ctx, s.pid)?);
    m.hog = Switches {
        voluntary: hog1.voluntary - hog0.voluntary,
        involuntary: hog1.involuntary - hog0.involuntary,
    };
    m.sleeper = Switches {
        voluntary: sleep1.voluntary - sleep0.voluntary,
        involuntary: sleep1.involuntary - sleep0.involuntary,
    };
    for c in [&mut a, &mut b, &mut s] {
        c.kill();
    }
    report.evidence(
        format!("/proc/{}/schedstat", a.pid),
        "CPU time, nice 0 hog",
        0.0,
        m.run_nice0 as f64,
        "ns",
    );
    report.evidence(
        format!("/proc/{}/schedstat", b.pid),
        &format!("CPU time, nice {nice} hog"),
        0.0,
        m.run_niced as f64,
        "ns",
    );
    report.evidence(
        format!("/proc/{}/status", a.pid),
        "hog: voluntary -> involuntary",
        m.hog.voluntary as f64,
        m.hog.involuntary as f64,
        "",
    );
    report.evidence(
        format!("/proc/{}/status", s.pid),
        "sleeper: voluntary -> involuntary",
        m.sleeper.voluntary as f64,
        m.sleeper.involuntary as f64,
        "",
    );
    analyze(&m, report);
    Ok(())
}

/// The CPU time ratio of the two hogs may be off the weights' ratio by this share.
const WEIGHT_RATIO_OFF_MAX: f64 = 0.20;

/// The round-trip metrics, as the report names them.
const SAME_CPU: &str = "pipe round trip, same CPU (2 switches, 4 syscalls)";
const ACROSS_CPUS: &str = "pipe round trip, across CPUs (each wake-up crosses vCPUs)";

/// Turns the readings into the report's checks and figures (unit tests feed it made-up ones).
pub fn analyze(m: &Measured, report: &mut LabReport) {
    let same = report.metric(SAME_CPU, "us", &m.same_cpu.round_trip_us);
    if let Some(s) = same {
        report.note(format!(
            "one context switch on one CPU: about {:.2} us (half a round trip, syscalls included)",
            s.median / 2.0
        ));
    }
    report.metric(
        "context switches per round trip (one side, getrusage)",
        "",
        &m.same_cpu.switches_per_round,
    );
    match &m.cross_cpu {
        Some(c) => {
            report.metric(ACROSS_CPUS, "us", &c.round_trip_us);
        }
        None => report.note("one CPU: no cross-CPU ping-pong"),
    }
    for (what, p) in [
        (SAME_CPU, Some(&m.same_cpu)),
        (ACROSS_CPUS, m.cross_cpu.as_ref()),
    ] {
        if let Some(note) = p.and_then(|p| p.stop?.note(what, p.round_trip_us.len())) {
            report.note(note);
        }
    }
    let expected = weight(0) / weight(m.nice);
    let observed = m.run_nice0 as f64 / m.run_niced.max(1) as f64;
    report.check(
        Check::compare(
            &format!(
                "two hogs on one CPU at nice 0 and nice {} share it by the weights {}:{} (ratio within {})",
                m.nice,
                weight(0),
                weight(m.nice),
                pct_text(WEIGHT_RATIO_OFF_MAX)
            ),
            (observed / expected - 1.0).abs(),
            Cmp::AtMost,
            WEIGHT_RATIO_OFF_MAX,
            pct,
        )
        .observed(format!("CPU time ratio {observed:.2} (weights say {expected:.2}): {} off", pct((observed / expected - 1.0).abs()))),
    );
    report.check(Check::holds(
        "a CPU hog shows involuntary switches (preempted), more than voluntary ones",
        m.hog.involuntary > 0 && m.hog.involuntary > m.hog.voluntary,
        format!(
            "{} involuntary, {} voluntary",
            m.hog.involuntary, m.hog.voluntary
        ),
        "involuntary > voluntary",
    ));
    report.check(Check::holds(
        "a sleeper shows voluntary switches (it gives the CPU up), more than involuntary ones",
        m.sleeper.voluntary > 0 && m.sleeper.voluntary > m.sleeper.involuntary,
        format!(
            "{} voluntary, {} involuntary",
            m.sleeper.voluntary, m.sleeper.involuntary
        ),
        "voluntary > involuntary",
    ));
    report.series(
        "CPU share of the nice 0 hog",
        "seconds",
        "share of CPU 0",
        Axis::Continuous,
        m.share_nice0.clone(),
    );
    report.series(
        &format!("CPU share of the nice {} hog", m.nice),
        "seconds",
        "share of CPU 0",
        Axis::Continuous,
        m.share_niced.clone(),
    );
    report.bars(
        "CPU time of each hog over the phase (schedstat)",
        "nice level",
        "CPU time (ms)",
        &[
            ("nice 0", m.run_nice0 as f64 / 1e6),
            (&format!("nice {}", m.nice), m.run_niced as f64 / 1e6),
        ],
    );
}

/// One pipe round trip per round: a byte out on `to`, one back on `from`. A failed
/// write or read, or a partner that closed its end, fails the trial instead of being
/// timed as a (fast) round trip.
fn round_trips(to: impl AsFd, from: impl AsFd, rounds: u64) -> io::Result<()> {
    let mut b = [0u8; 1];
    for _ in 0..rounds {
        let sent = rustix::io::write(&to, b"x")?;
        let got = rustix::io::read(&from, &mut b)?;
        if sent != 1 || got != 1 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the ping-pong partner closed its pipe",
            ));
        }
    }
    Ok(())
}

/// Times `rounds` round trips a trial (`round_trip` runs them), trials as `plan` says
/// (its budget read from `now_ns`): us per round trip and switches per round trip, and
/// how the series ended. A trial that failed fails the series.
fn ping_pong_trials<M: Meter>(
    meter: &mut M,
    plan: &Adaptive,
    now_ns: impl FnMut() -> u64,
    rounds: u64,
    mut round_trip: impl FnMut() -> io::Result<()>,
) -> Result<PingPong, String> {
    let mut out = PingPong::default();
    let (_, stop) = plan.run(now_ns, |kept| {
        let (tr, done) = trial(meter, &mut round_trip);
        done.map_err(|e| format!("pipe ping-pong: {e}"))?;
        let us = tr.ns as f64 / 1000.0 / rounds as f64;
        if kept {
            out.round_trip_us.push(us);
            out.switches_per_round.push(
                (tr.counts.voluntary_switches + tr.counts.involuntary_switches) as f64
                    / rounds as f64,
            );
        }
        Ok::<f64, String>(us)
    })?;
    out.stop = Some(stop);
    Ok(out)
}

fn child(role: &str, params: &Params, link: &mut Link) -> Result<(), String> {
    let io = |e: io::Error| e.to_string();
    match role {
        "pingpong" => {
            let PingPongParams {
                rounds,
                trials,
                budget_ms,
                cpu_a,
                cpu_b,
            } = params.decode()?;
            pin_to(cpu_a).map_err(io)?;
            let (to_b_r, to_b_w) = rustix::pipe::pipe().map_err(|e| e.to_string())?;
            let (to_a_r, to_a_w) = rustix::pipe::pipe().map_err(|e| e.to_string())?;
            // SAFETY: single-threaded lab child.
            let partner = os_result(unsafe { libc::fork() }).map_err(io)?;
            if partner == 0 {
                let _ = crate::lab::sandbox::die_with_parent();
                let _ = pin_to(cpu_b);
                // Keep only this side's ends, so closing the other side ends the loop.
                drop(to_b_w);
                drop(to_a_r);
                let mut b = [0u8; 1];
                while rustix::io::read(&to_b_r, &mut b).unwrap_or(0) == 1 {
                    if rustix::io::write(&to_a_w, &b).is_err() {
                        break;
                    }
                }
                // SAFETY: leave without running destructors twice.
                unsafe { libc::_exit(0) };
            }
            drop(to_b_r);
            drop(to_a_w);
            // getrusage only: active perf counters hook every context switch and would
            // slow the very thing measured.
            let mut meter = SystemMeter::without_perf();
            let plan = Adaptive::new(WARMUP, trials, Duration::from_millis(budget_ms));
            let out = ping_pong_trials(&mut meter, &plan, Adaptive::clock(), rounds, || {
                round_trips(&to_b_w, &to_a_r, rounds)
            })?;
            drop(to_b_w);
            // Reaps our own partner (it exits when its pipe closes).
            let _ = wait_forked(partner);
            link.send("pingpong", out).map_err(io)
        }
        "hog" => {
            let HogParams { nice, cpu } = params.decode()?;
            pin_to(cpu).map_err(io)?;
            // explain-begin: the lines that provoke the concept
            // This process's own nice value (raising it needs no privilege).
            if let Err(e) = rustix::process::setpriority_process(None, nice) {
                // explain-end
                return Err(io(e.into()));
            }
            link.sync("ready", ()).map_err(io)?;
            let mut x = 1u64;
            loop {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        "sleeper" => {
            pin_to(params.decode::<SleeperParams>()?.cpu).map_err(io)?;
            link.sync("ready", ()).map_err(io)?;
            loop {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        other => Err(format!("unknown role {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::meter::{Counters, MockMeter};
    use crate::lab::report::Status;

    fn good() -> Measured {
        Measured {
            nice: 5,
            same_cpu: PingPong {
                round_trip_us: vec![2.0; 5],
                switches_per_round: vec![1.0; 5],
                stop: None,
            },
            cross_cpu: Some(PingPong {
                round_trip_us: vec![56.0; 5],
                switches_per_round: vec![1.0; 5],
                stop: None,
            }),
            run_nice0: 1_500_000_000,
            run_niced: 500_000_000,
            share_nice0: vec![[0.1, 0.75]],
            share_niced: vec![[0.1, 0.25]],
            hog: Switches {
                voluntary: 0,
                involuntary: 200,
            },
            sleeper: Switches {
                voluntary: 1800,
                involuntary: 3,
            },
        }
    }

    fn statuses(m: &Measured) -> Vec<Status> {
        crate::lab::report::claim_statuses(ConceptId::Scheduling, m, analyze)
    }

    #[test]
    fn issue_18_the_weights_follow_the_nice_value() {
        assert_eq!(
            (weight(-20), weight(0), weight(5), weight(19)),
            (88761.0, 1024.0, 335.0, 15.0)
        );
        let mut m = good();
        m.nice = 10;
        // 1024:110 is far from the 3:1 split good() measured.
        assert_eq!(statuses(&m)[0], Status::Failed);
    }

    #[test]
    fn issue_13_a_partner_gone_fails_the_timed_ping_pong() {
        // An echo in this process stands for the partner: what is written comes back.
        let (r, w) = rustix::pipe::pipe().unwrap();
        assert!(round_trips(&w, &r, 3).is_ok());
        // The partner closed its end: the read sees end of file.
        let (to_partner_r, to_partner_w) = rustix::pipe::pipe().unwrap();
        let (from_partner_r, from_partner_w) = rustix::pipe::pipe().unwrap();
        drop(from_partner_w);
        let e = round_trips(&to_partner_w, &from_partner_r, 3).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        // Nobody reads any more: the write fails with EPIPE (Rust ignores SIGPIPE).
        drop(to_partner_r);
        let e = round_trips(&to_partner_w, &from_partner_r, 3).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPIPE));
    }

    /// A mock meter whose trials of 1000 round trips take `ns` in turn, one voluntary
    /// switch a round trip, for `n` trials; and a budget clock that advances 1 ms a
    /// reading.
    fn scripted(ns: &[u64], n: usize) -> (MockMeter, impl FnMut() -> u64) {
        let mut m = MockMeter::default();
        for t in ns.iter().cycle().take(n) {
            m.clock.extend([0, *t]);
            m.counters.extend([
                Counters::default(),
                Counters {
                    voluntary_switches: 1000,
                    ..Counters::default()
                },
            ]);
        }
        (m, Adaptive::ms_per_reading())
    }

    #[test]
    fn issue_20_ping_pong_trials_go_on_until_the_median_is_tight_or_the_budget_is_spent() {
        let plan = Adaptive {
            warmup: WARMUP,
            min: 6,
            max: 2000,
            budget_ns: 20_000_000,
        };
        let mut calls = 0;
        // Within 1%: converged at the first check, after the minimum.
        let (mut m, clock) = scripted(&[2_000_000, 2_010_000, 1_990_000], 100);
        let p = ping_pong_trials(&mut m, &plan, clock, 1000, || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!((p.round_trip_us.len(), p.stop), (6, Some(Stop::Converged)));
        assert_eq!(calls, WARMUP + 6);
        assert_eq!(
            p.round_trip_us[..3],
            [1.99, 2.0, 2.01],
            "the warm-ups are dropped"
        );
        assert_eq!(p.switches_per_round, vec![1.0; 6]);
        // 2 / 6 us in turn: never within 5%; the 20 ms budget (one clock reading per check
        // after the start) ends it after 20 checks.
        let (mut m, clock) = scripted(&[2_000_000, 6_000_000], 100);
        let p = ping_pong_trials(&mut m, &plan, clock, 1000, || Ok(())).unwrap();
        assert_eq!(p.round_trip_us.len(), 6 + 19);
        let Some(Stop::Budget { half_rel: Some(h) }) = p.stop else {
            panic!("{:?}", p.stop)
        };
        // Median 2 (13 of 25), interval x(8)..x(18) = 2..6: +/-100%.
        assert!((h - 1.0).abs() < 1e-12, "{h}");
        // A budget of 0 takes exactly `trials`.
        let (mut m, clock) = scripted(&[2_000_000, 6_000_000], 100);
        let fixed = Adaptive::new(WARMUP, 3, Duration::ZERO);
        let p = ping_pong_trials(&mut m, &fixed, clock, 1000, || Ok(())).unwrap();
        assert_eq!(
            (p.round_trip_us, p.stop),
            (vec![2.0, 6.0, 2.0], Some(Stop::Fixed))
        );
        // A failed trial fails the series, warm-up or not.
        let (mut m, clock) = scripted(&[2_000_000], 100);
        let e = ping_pong_trials(&mut m, &plan, clock, 1000, || {
            Err(io::Error::from_raw_os_error(libc::EPIPE))
        })
        .unwrap_err();
        assert!(
            e.starts_with("pipe ping-pong: ") && e.contains("os error 32"),
            "{e}"
        );
    }

    #[test]
    fn issue_20_a_round_trip_whose_budget_ran_out_is_named_in_the_notes() {
        let mut m = good();
        m.same_cpu.stop = Some(Stop::Converged);
        m.cross_cpu.as_mut().unwrap().stop = Some(Stop::Budget {
            half_rel: Some(0.08),
        });
        let notes = crate::lab::report::budget_notes(ConceptId::Scheduling, &m, analyze);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with("pipe round trip, across CPUs (each wake-up crosses vCPUs): the time budget ran out after 5 trials")
                && notes[0].contains("+/-8.0%, 3.0 points over the 5% target"),
            "{}",
            notes[0]
        );
    }

    #[test]
    fn passes_on_cfs_weights() {
        assert_eq!(statuses(&good()), vec![Status::Passed; 3]);
    }

    /// Evidence just either side of each claim's threshold, worked out by hand from the
    /// kernel's weights (sched_prio_to_weight: nice 0 1024, nice 5 335).
    #[test]
    fn issue_23_each_claim_at_its_threshold() {
        let texts: Vec<String> =
            crate::lab::report::claims(ConceptId::Scheduling, &good(), analyze)
                .into_iter()
                .map(|c| c.claim)
                .collect();
        assert!(
            texts[0].ends_with("by the weights 1024:335 (ratio within 20%)"),
            "{}",
            texts[0]
        );
        let share = |off: f64| {
            let mut m = good();
            m.run_niced = 1_000_000_000;
            m.run_nice0 = (1024.0 / 335.0 * off * 1e9) as u64;
            statuses(&m)[0]
        };
        assert_eq!(share(1.19), Status::Passed);
        assert_eq!(share(0.81), Status::Passed);
        assert_eq!(share(1.21), Status::Failed);
        assert_eq!(share(0.79), Status::Failed);
        let switches = |hog: (u64, u64), sleeper: (u64, u64)| {
            let mut m = good();
            (m.hog.voluntary, m.hog.involuntary) = hog;
            (m.sleeper.voluntary, m.sleeper.involuntary) = sleeper;
            statuses(&m)[1..].to_vec()
        };
        assert_eq!(switches((5, 6), (6, 5)), [Status::Passed; 2]);
        assert_eq!(switches((5, 5), (5, 5)), [Status::Failed; 2]);
        assert_eq!(switches((0, 0), (0, 0)), [Status::Failed; 2]);
    }

    #[test]
    fn each_claim_fails_on_contradicting_evidence() {
        let mut m = good();
        m.run_niced = m.run_nice0;
        assert_eq!(
            statuses(&m)[0],
            Status::Failed,
            "equal shares contradict the weights"
        );
        let mut m = good();
        m.hog = Switches {
            voluntary: 300,
            involuntary: 10,
        };
        assert_eq!(statuses(&m)[1], Status::Failed);
        let mut m = good();
        m.sleeper = Switches {
            voluntary: 0,
            involuntary: 5,
        };
        assert_eq!(statuses(&m)[2], Status::Failed);
    }
}
