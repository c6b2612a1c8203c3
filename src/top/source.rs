//! Where top's samples come from, behind one trait: the live host (a collector thread
//! sampling /proc) or a recorded store (`top --store`, decoded by `commands::past`).
//! The loop and the drawing see only [`App`]; a source fills it and answers the
//! requests that only it can: stepping through the samples, inspecting a process.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use syslens_probe::table::ProcessRow;

use super::collect::{container_label, slabs_and_zone, Figures, Sample, Wants};
use super::events::{Events, Notable, Status, KINDS};
use super::{App, Col, HISTORY};
use crate::commands::past::{uptime_at, Replay};
use crate::record::store::{from_unix_ns, StoredEvent};
use crate::record::time::local;

/// A step through recorded samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `[`: the sample before.
    Back,
    /// `]`: the sample after.
    Forward,
    /// `{`: the sample a minute before (at or before that time), else the first.
    MinuteBack,
    /// `}`: the sample a minute after (at or after that time), else the last.
    MinuteForward,
}

/// What a key asks of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Step through the samples.
    Step(Step),
    /// Go to the sample at or before a TIME (the `--at` syntax).
    GoTo(String),
    /// Inspect a process of the sample shown.
    Inspect(i32),
}

/// Where the samples come from.
pub trait Source {
    /// Gives `app` what arrived since the last call; whether the screen changed.
    fn feed(&mut self, app: &mut App) -> bool;
    /// Tells the source what the screen shows now (the live collector reads the
    /// costly parts only while they are shown).
    fn publish(&self, app: &App);
    /// Carries out a request; the outcome goes to the app's status line or views.
    fn request(&mut self, app: &mut App, request: Request);
    /// How long the loop may wait for input before feeding again.
    fn wait(&self) -> Duration;
}

/// What the live view says to the replay keys.
const LIVE_NO_STEPS: &str =
    "a live view: [ ] { } g step through a recording (syslens top --store DIR)";

/// The live host: the collector thread's samples, the events thread's reports.
#[derive(Debug)]
pub struct Live {
    /// Samples from the collector.
    pub rx: mpsc::Receiver<Box<Sample>>,
    /// Row buffers back to the collector.
    pub spent: mpsc::Sender<Vec<ProcessRow>>,
    /// What the screen shows, for the collector.
    pub wants: Arc<Wants>,
    /// The refresh interval.
    pub interval: Duration,
    /// When the last sample arrived.
    pub last: Instant,
}

impl Source for Live {
    fn feed(&mut self, app: &mut App) -> bool {
        let mut dirty = false;
        while let Ok(s) = self.rx.try_recv() {
            self.last = Instant::now();
            if let Some(done) = app.apply(*s) {
                // The collector may have stopped; the buffer is then just dropped.
                let _ = self.spent.send(done.rows);
            }
            dirty = true;
        }
        dirty | app.take_reports()
    }

    fn publish(&self, app: &App) {
        app.publish(&self.wants);
    }

    fn request(&mut self, app: &mut App, request: Request) {
        match request {
            Request::Inspect(pid) => app.inspect_live(pid),
            Request::Step(_) | Request::GoTo(_) => app.say(LIVE_NO_STEPS.into()),
        }
    }

    fn wait(&self) -> Duration {
        // Wake when the next sample is due (the collector keeps a fixed period) or
        // on input, rather than on a fixed tick: every wake-up costs CPU.
        let next = self.last + self.interval + Duration::from_millis(5);
        next.saturating_duration_since(Instant::now()).clamp(
            Duration::from_millis(20),
            self.interval.max(Duration::from_millis(20)),
        )
    }
}

/// Why the keys that act on a live process are refused in a replay.
pub const RECORDED: &str = "a recorded sample: nothing to signal";

/// The columns a recording does not hold (their cells show `-`).
pub const UNRECORDED: &[Col] = &[
    Col::Pss,
    Col::Deleted,
    Col::Ns,
    Col::MemLimit,
    Col::LimitPct,
    Col::Cpus,
    Col::CpusPct,
    Col::PidLimit,
    Col::PidsPct,
];

/// The sample `step` lands on from sample `at` of samples taken at `times` (oldest
/// first): never before the first nor past the last.
pub fn stepped(times: &[SystemTime], at: usize, step: Step) -> usize {
    let last = times.len().saturating_sub(1);
    let at = at.min(last);
    let minute = Duration::from_secs(60);
    match step {
        Step::Back => at.saturating_sub(1),
        Step::Forward => (at + 1).min(last),
        Step::MinuteBack => match times.get(at).and_then(|t| t.checked_sub(minute)) {
            Some(t) => times.partition_point(|x| *x <= t).saturating_sub(1),
            None => 0,
        },
        Step::MinuteForward => match times.get(at).and_then(|t| t.checked_add(minute)) {
            Some(t) => times.partition_point(|x| *x < t).min(last),
            None => last,
        },
    }
}

/// A recorded store, one sample shown at a time. Showing sample N replays into the
/// app the samples of its boot in the minute before it (at most HISTORY), so the
/// rates are over the interval to the previous sample, and GROWTH, PEAK SEEN, the
/// pressure lines and the exits are those of that minute, whichever way one came.
#[derive(Debug)]
pub struct Recorded {
    replay: Replay,
    times: Vec<SystemTime>,
    /// The sample shown.
    at: usize,
    /// The sample the app holds (None: none yet, or it must be shown again).
    shown: Option<usize>,
    /// The Instant a sample's time maps to: `base` plus its time since the first.
    base: Instant,
}

impl Recorded {
    /// A replay of `replay` starting at sample `at`.
    pub fn new(replay: Replay, at: usize) -> Recorded {
        let times: Vec<SystemTime> = replay.samples().iter().map(|s| s.time).collect();
        Recorded {
            replay,
            at: at.min(times.len().saturating_sub(1)),
            times,
            shown: None,
            base: Instant::now(),
        }
    }

    /// The sample shown, counted from 0.
    pub fn at(&self) -> usize {
        self.at
    }

    /// The samples replayed into the app to show sample `i`, oldest first.
    fn window(&self, i: usize) -> Vec<usize> {
        let samples = self.replay.samples();
        let from = self.times[i]
            .checked_sub(Duration::from_secs(60))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut out: Vec<usize> = (0..=i)
            .rev()
            .take(HISTORY)
            .take_while(|&j| samples[j].same_boot(&samples[i]) && self.times[j] >= from)
            .collect();
        // The sample before (same boot) even when more than a minute back: rates.
        if out.len() == 1 && i > 0 && samples[i - 1].same_boot(&samples[i]) {
            out.push(i - 1);
        }
        out.reverse();
        out
    }

    /// Sample `j` as top's sample.
    fn sample(&self, j: usize) -> Result<Sample, String> {
        let rec = self.replay.load(j)?;
        let ooms = self
            .replay
            .events_of(j)?
            .iter()
            .filter(|e| e.kind == "oom-kill")
            .filter_map(|e| u64::try_from(e.pid?).ok())
            .collect();
        let mut files = rec.files;
        let figures = Figures::read(&mut files);
        let (slabs, zone) = slabs_and_zone(&mut files, self.replay.page_size);
        let at = self.base + rec.time.duration_since(self.times[0]).unwrap_or_default();
        Ok(Sample {
            at,
            containers: rec
                .table
                .cgroups
                .iter()
                .map(|p| container_label(p))
                .collect(),
            cgroup_paths: rec.table.cgroups.into(),
            rows: rec.table.rows,
            mem_limits: Default::default(),
            cpu_pids: Default::default(),
            meminfo: figures.meminfo,
            psi: figures.psi,
            cpus: figures.cpus,
            loadavg: figures.loadavg,
            uptime: uptime_at(&mut files, rec.time),
            // The recording host's etc/passwd is not recorded: USER shows the uid.
            users: Default::default(),
            zone,
            slabs,
            locks: figures.locks,
            deleted_open: Default::default(),
            isolated: Default::default(),
            oom_killed: ooms,
            pass_cpu_ns: 0,
        })
    }

    /// Replays the window of sample `at` into the app, with its events and header.
    fn show(&mut self, app: &mut App) {
        let cpu0 = super::collect::thread_cpu_ns();
        let i = self.at;
        app.restart();
        for j in self.window(i) {
            match self.sample(j) {
                Ok(mut s) => {
                    if j == i {
                        s.pass_cpu_ns = super::collect::thread_cpu_ns().saturating_sub(cpu0);
                    }
                    app.apply(s);
                }
                Err(e) => app.say(format!("sample {} of {}: {e}", j + 1, self.times.len())),
            }
        }
        let since = i.checked_sub(1).map(|b| self.times[b]);
        app.events = match self.replay.events_of(i) {
            Ok(events) => recorded_events(&events, since, self.times[i]),
            Err(e) => Events {
                status: Status::Unavailable(e),
                ..Events::default()
            },
        };
        app.source_line = Some(self.line(i));
    }

    /// `recorded 14:03:27, sample 6 of 6`, with the date when it is not today's.
    fn line(&self, i: usize) -> String {
        let full = local(self.times[i]);
        let today = local(SystemTime::now());
        // `2026-12-02 04:31:05 UTC`: the date, the clock, the zone.
        let mut parts = full.split(' ');
        let (date, clock) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let when = if today.split(' ').next() == Some(date) {
            clock.to_owned()
        } else {
            format!("{date} {clock}")
        };
        format!(
            "recorded {when}, sample {} of {}  ([ ] a sample, {{ }} a minute, g a time)",
            i + 1,
            self.times.len()
        )
    }
}

/// The events lines of a recorded moment: those after `since` up to `until`.
fn recorded_events(events: &[StoredEvent], since: Option<SystemTime>, until: SystemTime) -> Events {
    let recent: VecDeque<Notable> = events
        .iter()
        .rev()
        .map(|e| Notable {
            time: from_unix_ns(e.time_ns),
            kind: KINDS
                .iter()
                .find(|k| **k == e.kind)
                .copied()
                .unwrap_or("event"),
            line: e.line.clone(),
        })
        .collect();
    Events {
        status: Status::Recorded { since, until },
        recent,
        missed: 0,
    }
}

impl Source for Recorded {
    fn feed(&mut self, app: &mut App) -> bool {
        if self.shown == Some(self.at) {
            return false;
        }
        self.show(app);
        self.shown = Some(self.at);
        true
    }

    fn publish(&self, _app: &App) {}

    fn request(&mut self, app: &mut App, request: Request) {
        match request {
            Request::Step(step) => self.at = stepped(&self.times, self.at, step),
            Request::GoTo(text) => {
                let found = crate::record::time::parse(&text, SystemTime::now())
                    .and_then(|t| self.replay.index_at(t));
                match found {
                    Ok(i) => self.at = i,
                    Err(e) => app.say(format!("go to: {e}")),
                }
            }
            Request::Inspect(pid) => {
                let text = match self.replay.inspect(self.at, pid) {
                    Ok(p) => {
                        let mut buf = Vec::new();
                        let _ = crate::render::text::recorded_process(
                            &mut buf,
                            &p,
                            &crate::render::Style { color: false },
                        );
                        crate::render::safe::clean_lines(&String::from_utf8_lossy(&buf))
                            .into_owned()
                    }
                    Err(e) => format!("pid {pid}: {e}"),
                };
                app.inspect = Some((pid, text, 0));
            }
        }
    }

    fn wait(&self) -> Duration {
        // Nothing arrives: wake only to notice a signal to stop.
        Duration::from_millis(250)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::store::{Limits, Store};
    use ratatui::crossterm::event::KeyCode;

    fn times(secs: &[u64]) -> Vec<SystemTime> {
        secs.iter()
            .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + s))
            .collect()
    }

    #[test]
    fn issue_17_stepping_stays_within_the_samples() {
        let t = times(&[0, 5, 10, 70, 75, 200]);
        assert_eq!(stepped(&t, 0, Step::Back), 0, "[ at the first stays");
        assert_eq!(stepped(&t, 5, Step::Forward), 5, "] at the last stays");
        assert_eq!(stepped(&t, 2, Step::Back), 1);
        assert_eq!(stepped(&t, 2, Step::Forward), 3);
        // A minute back from 75 s: the sample at or before 15 s.
        assert_eq!(stepped(&t, 4, Step::MinuteBack), 2);
        assert_eq!(
            stepped(&t, 1, Step::MinuteBack),
            0,
            "{{ before the first: the first"
        );
        // A minute on from 10 s: the first at or after 70 s.
        assert_eq!(stepped(&t, 2, Step::MinuteForward), 3);
        assert_eq!(stepped(&t, 4, Step::MinuteForward), 5);
        assert_eq!(
            stepped(&t, 5, Step::MinuteForward),
            5,
            "}} past the end stops at the last"
        );
        assert_eq!(
            stepped(&t, 99, Step::Back),
            4,
            "an index past the end is the last"
        );
    }

    /// A store of `n` samples a second apart, ending a minute ago, of this host's table.
    fn store(n: u64) -> (tempfile::TempDir, SystemTime) {
        let limits = Limits {
            max_size: 1 << 30,
            retain: Duration::from_secs(86400),
        };
        let dir = tempfile::tempdir().unwrap();
        let (table, files) = crate::record::host_sample();
        // Whole seconds, so that `@SECONDS` names a sample exactly.
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(now - 60 - n);
        let mut w = Store::open_writer(dir.path(), limits).unwrap();
        w.set_boot("boot-a").unwrap();
        for i in 0..n {
            w.write(
                t0 + Duration::from_secs(i),
                &table,
                &files,
                &[],
                &[],
                limits,
            )
            .unwrap();
        }
        (dir, t0)
    }

    fn header(app: &App) -> String {
        app.source_line.clone().unwrap_or_default()
    }

    /// issue 17: the events line of a recorded moment holds the events since the sample
    /// before it, and only those.
    #[test]
    fn issue_17_a_recorded_moment_shows_its_events_on_the_events_line() {
        let limits = Limits {
            max_size: 1 << 30,
            retain: Duration::from_secs(86400),
        };
        let dir = tempfile::tempdir().unwrap();
        let (table, files) = crate::record::host_sample();
        let t0 = SystemTime::now() - Duration::from_secs(60);
        let kill = crate::record::store::StoredEvent {
            time_ns: crate::record::store::unix_ns(t0 + Duration::from_millis(500)),
            concept: "high-water-mark".into(),
            kind: "exit".into(),
            pid: Some(4242),
            related: None,
            line: "sh[4242] killed by SIGKILL after 1.0 ms".into(),
            json: "{}".into(),
        };
        let mut w = Store::open_writer(dir.path(), limits).unwrap();
        for (i, events) in [vec![], vec![kill], vec![]].into_iter().enumerate() {
            let at = t0 + Duration::from_secs(i as u64);
            w.write(at, &table, &files, &events, &[], limits).unwrap();
        }
        drop(w);
        let lines = |at: usize| {
            let mut app = App {
                frozen: Some(RECORDED),
                ..App::default()
            };
            let mut src = Recorded::new(
                Replay::open(Store::open_reader(dir.path()).unwrap()).unwrap(),
                at,
            );
            src.feed(&mut app);
            app.events
                .recent
                .iter()
                .map(|n| n.line.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            lines(1),
            vec!["sh[4242] killed by SIGKILL after 1.0 ms".to_owned()]
        );
        assert!(lines(0).is_empty() && lines(2).is_empty());
    }

    #[test]
    fn issue_17_a_recorded_source_steps_goes_to_a_time_and_refuses_a_kill() {
        let (dir, t0) = store(3);
        let replay = Replay::open(Store::open_reader(dir.path()).unwrap()).unwrap();
        let mut src = Recorded::new(replay, 2);
        let mut app = App {
            frozen: Some(RECORDED),
            ..App::default()
        };
        assert!(src.feed(&mut app));
        assert!(!src.feed(&mut app), "nothing new until a step");
        assert!(header(&app).contains("sample 3 of 3"), "{}", header(&app));
        assert!(app.previous().is_some(), "rates against the sample before");
        let me = std::process::id() as i32;
        assert!(
            app.table().iter().any(|r| r.pid == me),
            "the recorded table"
        );
        for (key, want) in [
            ('[', "sample 2 of 3"),
            ('[', "sample 1 of 3"),
            ('[', "sample 1 of 3"),
            ('}', "sample 3 of 3"),
            (']', "sample 3 of 3"),
            ('{', "sample 1 of 3"),
        ] {
            app.key(KeyCode::Char(key));
            let r = app.request.take().expect("a step request");
            src.request(&mut app, r);
            src.feed(&mut app);
            assert!(header(&app).contains(want), "{key}: {}", header(&app));
        }
        assert!(
            app.previous().is_none(),
            "the first sample has none before it"
        );
        app.key(KeyCode::Char('g'));
        for c in "yesterday".chars() {
            app.key(KeyCode::Char(c));
        }
        app.key(KeyCode::Enter);
        let r = app.request.take().expect("a go-to request");
        src.request(&mut app, r);
        src.feed(&mut app);
        let said = app
            .message
            .as_ref()
            .map(|m| m.0.clone())
            .unwrap_or_default();
        assert!(said.contains("cannot read the time"), "{said}");
        assert!(
            header(&app).contains("sample 1 of 3"),
            "a bad time stays put"
        );
        let secs = (t0 + Duration::from_secs(1))
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        src.request(&mut app, Request::GoTo(format!("@{secs}")));
        src.feed(&mut app);
        assert_eq!(src.at(), 1, "the sample at or before the time");
        app.key(KeyCode::Char('k'));
        assert!(app.menu.is_none(), "no signal menu");
        let said = app
            .message
            .as_ref()
            .map(|m| m.0.clone())
            .unwrap_or_default();
        assert_eq!(said, RECORDED);
    }
}
