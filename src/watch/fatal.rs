//! Fatal signals, measured rather than guessed: a signal is fatal when its target dies
//! of it. The `signal` event says who sent what to whom, the `exit` event what the
//! target died of; [`FatalSignals`] pairs the two for `serve` (which counts them) and
//! `top` (which names the sender of a kill). They come from different feeds (perf ring
//! buffers, taskstats), so either can be read first; both halves wait a bounded time
//! in bounded maps.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::model::event::{Event, PENDING_MAX};

/// How long a delivered signal waits for its target's exit (a signal blocked for
/// longer, then fatal, is not paired), and an exit for its signal's record.
const SIGNAL_WAIT: Duration = Duration::from_secs(10);
const EXIT_WAIT: Duration = Duration::from_secs(2);

/// Signals whose default action neither terminates nor dumps core (signal(7)): a
/// process never dies of them, so they are not kept waiting.
const HARMLESS: [&str; 8] = [
    "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGWINCH",
];

/// Pairs delivered signals with the exits they caused; `T` is what the caller keeps
/// of the signal (its target's group, its sender).
#[derive(Debug)]
pub struct FatalSignals<T> {
    /// Delivered signals by target pid: the signal, when it was seen, the payload.
    sent: HashMap<i32, Vec<(String, Instant, T)>>,
    /// Exits by a signal not (yet) seen delivered: pid -> signal, when.
    died: HashMap<i32, (String, Instant)>,
    pruned: Instant,
}

impl<T> Default for FatalSignals<T> {
    fn default() -> Self {
        FatalSignals {
            sent: HashMap::new(),
            died: HashMap::new(),
            pruned: Instant::now(),
        }
    }
}

impl<T> FatalSignals<T> {
    /// Takes a `signal` or `exit` event (others are ignored). Returns the payload of a
    /// signal this event shows fatal: for a signal whose target's exit by it was seen
    /// already, `payload(e)` made now; for an exit by a signal seen delivered to it,
    /// the payload made when the signal was seen (the target was alive then).
    pub fn feed(&mut self, e: &Event, payload: impl FnOnce(&Event) -> T) -> Option<T> {
        self.prune();
        match e.kind {
            "signal" => {
                let target = i32::try_from(e.int_of("target_pid")?).ok()?;
                let signal = e.text_of("signal")?;
                if e.text_of("result").as_deref() != Some("delivered")
                    || HARMLESS.contains(&signal.as_str())
                {
                    return None;
                }
                if self.died.get(&target).is_some_and(|(s, _)| *s == signal) {
                    self.died.remove(&target);
                    return Some(payload(e));
                }
                if self.sent.len() >= PENDING_MAX / 16 {
                    self.sent.clear();
                }
                let waiting = self.sent.entry(target).or_default();
                // The newest of each signal: an earlier one of the same was not fatal.
                waiting.retain(|(s, _, _)| *s != signal);
                waiting.push((signal, Instant::now(), payload(e)));
                None
            }
            "exit" => {
                let pid = i32::try_from(e.int_of("pid")?).ok()?;
                // Whatever else was sent to it did not kill it.
                let sent = self.sent.remove(&pid);
                let signal = e.text_of("signal")?;
                if let Some(p) = sent
                    .into_iter()
                    .flatten()
                    .find_map(|(s, _, p)| (s == signal).then_some(p))
                {
                    return Some(p);
                }
                if self.died.len() >= PENDING_MAX / 16 {
                    self.died.clear();
                }
                self.died.insert(pid, (signal, Instant::now()));
                None
            }
            _ => None,
        }
    }

    /// Forgets what waited too long, at most once a second.
    fn prune(&mut self) {
        if self.pruned.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.pruned = Instant::now();
        self.sent.retain(|_, waiting| {
            waiting.retain(|(_, at, _)| at.elapsed() < SIGNAL_WAIT);
            !waiting.is_empty()
        });
        self.died.retain(|_, (_, at)| at.elapsed() < EXIT_WAIT);
    }

    /// Signals and exits waiting for their other half.
    pub fn waiting(&self) -> usize {
        self.sent.values().map(Vec::len).sum::<usize>() + self.died.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::catalogue::ConceptId;

    fn signal(target: i32, name: &str, result: &str) -> Event {
        Event::new(
            SystemTime::now(),
            ConceptId::Signals,
            "signal",
            Some(target),
        )
        .with("signal", Some(name))
        .with("target_pid", Some(target))
        .with("sender_pid", Some(1))
        .with("result", Some(result))
    }

    fn exit(pid: i32, signal: Option<&str>) -> Event {
        Event::new(
            SystemTime::now(),
            ConceptId::HighWaterMark,
            "exit",
            Some(pid),
        )
        .with("pid", Some(pid))
        .with("signal", signal)
        .with("exit_code", signal.is_none().then_some(0))
    }

    fn sender(e: &Event) -> i64 {
        e.int_of("sender_pid").unwrap_or(0)
    }

    #[test]
    fn a_signal_then_the_exit_by_it_is_fatal() {
        let mut f = FatalSignals::default();
        assert_eq!(f.feed(&signal(7, "SIGKILL", "delivered"), sender), None);
        assert_eq!(f.feed(&exit(7, Some("SIGKILL")), sender), Some(1));
        assert_eq!(f.waiting(), 0, "both halves are forgotten once paired");
    }

    #[test]
    fn the_exit_read_before_its_signal_pairs_too() {
        let mut f = FatalSignals::default();
        assert_eq!(f.feed(&exit(7, Some("SIGTERM")), sender), None);
        assert_eq!(f.feed(&signal(7, "SIGTERM", "delivered"), sender), Some(1));
        assert_eq!(f.waiting(), 0);
    }

    #[test]
    fn a_caught_signal_is_not_fatal() {
        let mut f = FatalSignals::default();
        // SIGTERM handled; the process later exits normally, or by another signal.
        f.feed(&signal(7, "SIGTERM", "delivered"), sender);
        assert_eq!(f.feed(&exit(7, None), sender), None);
        f.feed(&signal(8, "SIGTERM", "delivered"), sender);
        assert_eq!(f.feed(&exit(8, Some("SIGKILL")), sender), None);
        assert_eq!(
            f.waiting(),
            1,
            "only 8's exit by SIGKILL waits for its signal"
        );
    }

    #[test]
    fn ignored_and_harmless_signals_never_wait() {
        let mut f = FatalSignals::default();
        f.feed(&signal(7, "SIGKILL", "ignored"), sender);
        f.feed(&signal(7, "SIGCHLD", "delivered"), sender);
        assert_eq!(f.waiting(), 0);
        assert_eq!(f.feed(&exit(7, Some("SIGKILL")), sender), None);
    }

    #[test]
    fn the_maps_stay_bounded() {
        let mut f = FatalSignals::default();
        for pid in 0..PENDING_MAX as i32 {
            f.feed(&signal(pid, "SIGUSR1", "delivered"), sender);
            f.feed(&exit(-pid - 1, Some("SIGKILL")), sender);
        }
        assert!(f.waiting() <= 2 * PENDING_MAX / 16, "{}", f.waiting());
    }
}
