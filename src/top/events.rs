//! The recent-events lines under top's meters (issue 16): a thread of its own runs a
//! [`Watcher`] and sends the notable events (OOM kills, processes killed by a signal
//! with who sent it, exits with a big peak, EMFILE, reclaim stalls, lost records) over
//! a bounded channel; the screen keeps the last few. The frame rate and the keys never
//! wait for it: the loop takes what has arrived when it wakes anyway.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use syslens_probe::Reader;

use crate::model::event::{who, Event};
use crate::watch::fatal::FatalSignals;
use crate::watch::{WatchOptions, Watcher};

/// The kinds top can show, as `--events` names them.
pub const KINDS: [&str; 5] = ["oom-kill", "signal", "exit", "reclaim-stall", "emfile"];
/// The kinds shown by default: those whose sources cost the host nothing while
/// nothing happens (emfile's syscall tracepoints slow every syscall).
pub const DEFAULT_KINDS: &str = "oom-kill,signal,exit,reclaim-stall";
/// An exit is shown when its peak RSS reached this (or a signal killed it).
pub const BIG_PEAK: i64 = 100 << 20;
/// Events in flight to the screen: past this, the newest are counted as missed
/// rather than queued without bound.
const IN_FLIGHT: usize = 64;
/// Events the screen keeps (it shows fewer).
const KEPT: usize = 16;
/// The longest the thread waits for the sources: it notices `stop` within this.
const WAIT: Duration = Duration::from_millis(200);
/// The shortest pass, however often a ring says it is readable (as serve's).
const GAP: Duration = Duration::from_millis(10);

/// One event as the lines show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notable {
    /// When it happened.
    pub time: SystemTime,
    /// Its kind (`oom-kill`, `exit`, ...).
    pub kind: &'static str,
    /// What happened, to whom, by whom (raw: cleaned when drawn).
    pub line: String,
}

/// What the thread tells the screen.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// The sources are open: the kinds that come, and those that cannot.
    Watching {
        /// The kinds whose source opened.
        kinds: Vec<&'static str>,
        /// The kinds asked for whose source could not.
        unavailable: Vec<&'static str>,
    },
    /// No source could be opened: why (the first reason the watcher gave).
    Unavailable(String),
    /// An event; `missed` events before it found the channel full.
    Event {
        /// The event.
        event: Notable,
        /// Events lost before it, the channel being full.
        missed: u64,
    },
}

/// The state of the events lines.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// The thread is opening the sources.
    Starting,
    /// Left off by the command line (`--events none`, `--root`): why.
    Off(String),
    /// Refused by the host: why.
    Unavailable(String),
    /// Watching these kinds since then; the others asked for are unavailable.
    Watching {
        /// The kinds whose source opened.
        kinds: Vec<&'static str>,
        /// The kinds asked for whose source could not.
        unavailable: Vec<&'static str>,
        /// When the sources opened.
        since: SystemTime,
    },
    /// A recorded moment: the events recorded after the sample before (none for the
    /// first) up to the sample shown.
    Recorded {
        /// The sample before.
        since: Option<SystemTime>,
        /// The sample shown.
        until: SystemTime,
    },
}

/// What the events lines show.
#[derive(Debug, Clone, PartialEq)]
pub struct Events {
    /// Whether events come, and why not.
    pub status: Status,
    /// The latest events, newest first.
    pub recent: VecDeque<Notable>,
    /// Events the channel had no room for.
    pub missed: u64,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            status: Status::Starting,
            recent: VecDeque::new(),
            missed: 0,
        }
    }
}

impl Events {
    /// Takes a report from the thread.
    pub fn take(&mut self, r: Report) {
        match r {
            Report::Watching { kinds, unavailable } => {
                self.status = Status::Watching {
                    kinds,
                    unavailable,
                    since: SystemTime::now(),
                }
            }
            Report::Unavailable(why) => self.status = Status::Unavailable(why),
            Report::Event { event, missed } => {
                self.missed += missed;
                self.recent.push_front(event);
                self.recent.truncate(KEPT);
            }
        }
    }
}

/// What top shows of an event, if anything; `fatal` pairs signals with the exits they
/// caused, so a kill is shown once, by its exit, with its sender.
fn notable(e: &Event, fatal: &mut FatalSignals<String>) -> Option<String> {
    match e.kind {
        "signal" => {
            // An exit already shown without its sender stays as it is.
            fatal.feed(e, |e| {
                let sender = e.int_of("sender_pid").unwrap_or(0);
                who(e.text_of("sender_comm").as_deref(), sender)
            });
            None
        }
        "exit" => {
            let sender = fatal.feed(e, |_| String::new());
            let killed = e.get("signal").is_some();
            let big = e.int_of("peak_rss_bytes").is_some_and(|p| p >= BIG_PEAK);
            (killed || big).then(|| match sender {
                Some(s) => format!("{}, from {s}", e.line),
                None => e.line.clone(),
            })
        }
        "oom-kill" | "emfile" | "reclaim-stall" | "lost" => Some(e.line.clone()),
        _ => None,
    }
}

/// Starts the thread watching `kinds` through `reader`; the screen reads its reports
/// from the channel returned. It ends when `stop` is set or the screen is gone.
pub fn spawn(reader: Reader, kinds: Vec<&'static str>, stop: Arc<AtomicBool>) -> Receiver<Report> {
    let (tx, rx) = mpsc::sync_channel(IN_FLIGHT);
    let spawned = std::thread::Builder::new()
        .name("syslens-top-events".into())
        .spawn(move || watch(reader, kinds, &tx, &stop));
    if let Err(e) = spawned {
        let (tx, rx) = mpsc::sync_channel(1);
        let _ = tx.send(Report::Unavailable(format!(
            "no thread for the events: {e}"
        )));
        return rx;
    }
    rx
}

fn watch(reader: Reader, kinds: Vec<&'static str>, tx: &SyncSender<Report>, stop: &AtomicBool) {
    let opts = WatchOptions {
        concepts: Vec::new(),
        pid: None,
        cgroup: None,
        duration: None,
        kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
        json: false,
        // The kinds shown have no summaries.
        summary_every: Duration::from_secs(3600),
    };
    let mut watcher = match Watcher::open(&opts, reader) {
        Ok(w) => w,
        Err(e) => {
            let _ = tx.send(Report::Unavailable(e.to_string()));
            return;
        }
    };
    let (open, closed): (Vec<&'static str>, Vec<&'static str>) =
        kinds.iter().partition(|k| watcher.is_open(k));
    if open.is_empty() {
        let why = watcher
            .unavailable()
            .iter()
            .find(|u| !u.off)
            .map_or("no source opened".into(), |u| {
                format!("{}: {}", u.what, u.why)
            });
        let _ = tx.send(Report::Unavailable(why));
        return;
    }
    let watching = Report::Watching {
        kinds: open,
        unavailable: closed,
    };
    if tx.send(watching).is_err() {
        return;
    }
    let mut fatal = FatalSignals::default();
    let mut events = Vec::new();
    let mut missed = 0;
    while !stop.load(Ordering::Relaxed) {
        watcher.wait_paced(WAIT, GAP);
        watcher.poll(&mut events);
        for e in events.drain(..) {
            let Some(line) = notable(&e, &mut fatal) else {
                continue;
            };
            let event = Notable {
                time: e.time,
                kind: e.kind,
                line,
            };
            match tx.try_send(Report::Event { event, missed }) {
                Ok(()) => missed = 0,
                Err(TrySendError::Full(_)) => missed += 1,
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::ConceptId;

    fn exit(pid: i32, signal: Option<&str>, peak: i64) -> Event {
        let mut e = Event::new(
            SystemTime::now(),
            ConceptId::HighWaterMark,
            "exit",
            Some(pid),
        )
        .with("pid", Some(pid))
        .with("signal", signal)
        .with("peak_rss_bytes", Some(peak));
        e.line = format!("sleep[{pid}] exited");
        e
    }

    #[test]
    fn a_kill_is_shown_by_its_exit_with_the_sender() {
        let mut fatal = FatalSignals::default();
        let signal = Event::new(SystemTime::now(), ConceptId::Signals, "signal", Some(7))
            .with("signal", Some("SIGKILL"))
            .with("target_pid", Some(7))
            .with("sender_pid", Some(6))
            .with("sender_comm", Some("sh"))
            .with("result", Some("delivered"));
        assert_eq!(notable(&signal, &mut fatal), None);
        assert_eq!(
            notable(&exit(7, Some("SIGKILL"), 1 << 20), &mut fatal).as_deref(),
            Some("sleep[7] exited, from sh[6]")
        );
        // Routine exits are left out; a big peak is shown.
        assert_eq!(notable(&exit(8, None, 1 << 20), &mut fatal), None);
        assert!(notable(&exit(9, None, BIG_PEAK), &mut fatal).is_some());
    }

    #[test]
    fn reports_keep_the_newest_few_and_count_the_missed() {
        let mut ev = Events::default();
        for i in 0..KEPT + 5 {
            ev.take(Report::Event {
                event: Notable {
                    time: SystemTime::now(),
                    kind: "exit",
                    line: format!("{i}"),
                },
                missed: 1,
            });
        }
        assert_eq!(ev.recent.len(), KEPT);
        assert_eq!(ev.recent[0].line, format!("{}", KEPT + 4), "newest first");
        assert_eq!(ev.missed, KEPT as u64 + 5);
    }
}
