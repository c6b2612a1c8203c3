//! The calibration every lab's figures are read against, measured once per tour (and
//! once per `syslens lab` run): the clock's resolution and cost, the empty loop, and
//! the host's noise over a second (steal and iowait from /proc/stat, the CPU time of
//! kdamond and khugepaged, the CPU frequency where the VM shows it). It goes into the
//! fingerprint of every report; a noisy host is said so, with the measured cause.

use std::time::{Duration, Instant};

use serde::Serialize;
use syslens_probe::stat::Stat;
use syslens_probe::system::ProcStat;
use syslens_probe::{Reader, USER_HZ};

use crate::lab::stats::percentile;

/// How long the host's noise is watched.
pub const WINDOW: Duration = Duration::from_secs(1);
/// Steal above this share of the CPU time makes the host noisy.
const STEAL_MAX: f64 = 0.01;
/// iowait above this share makes it noisy.
const IOWAIT_MAX: f64 = 0.05;
/// Other programs' CPU time (busy, not ours) above this share makes it noisy.
const BUSY_MAX: f64 = 0.10;
/// kdamond + khugepaged above this share of one CPU makes it noisy.
const KTHREAD_MAX: f64 = 0.01;

/// What the calibration measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// clock_getres(CLOCK_MONOTONIC), ns.
    pub clock_resolution_ns: u64,
    /// One reading of the monotonic clock (`Instant::now`, the vDSO), ns: the median of
    /// 21 batches of 1000.
    pub clock_cost_ns: f64,
    /// One empty loop iteration, ns: the median of 21 batches of 100000.
    pub empty_loop_ns: f64,
    /// The window the noise below was measured over, seconds (as measured).
    pub window_s: f64,
    /// Steal time over the window, share of all CPU time (/proc/stat); None unreadable.
    pub steal: Option<f64>,
    /// iowait over the window, share of all CPU time.
    pub iowait: Option<f64>,
    /// Busy CPU time over the window (user, system, irq...), share of all: other
    /// programs, since the calibration sleeps through it.
    pub busy: Option<f64>,
    /// CPU time of kdamond and khugepaged threads over the window, share of one CPU;
    /// 0 where none runs.
    pub kthreads: Option<f64>,
    /// The kernel threads counted in `kthreads`, by name.
    pub kthread_names: Vec<String>,
    /// The lowest and highest `cpu MHz` of /proc/cpuinfo, where it is shown.
    pub cpu_mhz: Option<(f64, f64)>,
    /// Why the host was too noisy for confident figures, when it was.
    pub noisy: Option<String>,
}

/// Median ns per iteration of `f` over 21 batches of `batch` iterations.
fn per_iteration(batch: u32, mut f: impl FnMut(u32)) -> f64 {
    let mut v: Vec<f64> = (0..21)
        .map(|_| {
            let t = Instant::now();
            for i in 0..batch {
                f(i);
            }
            t.elapsed().as_nanos() as f64 / f64::from(batch)
        })
        .collect();
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

/// CPU ticks (user + system) of the kdamond and khugepaged threads, by name.
fn kthread_ticks(reader: &mut Reader) -> Vec<(String, u64)> {
    let mut pids = Vec::new();
    if reader.pids(&mut pids).is_err() {
        return Vec::new();
    }
    pids.into_iter()
        .filter_map(|pid| {
            let dir = reader.open_pid(pid).ok()?;
            let st = reader
                .read_pid(&dir, "stat")
                .ok()
                .and_then(|b| Stat::parse(b).ok())?;
            let name = st.comm.as_str();
            (st.is_kernel_thread() && (name.starts_with("kdamond") || name == "khugepaged"))
                .then(|| (format!("{name} ({pid})"), st.utime_ticks + st.stime_ticks))
        })
        .collect()
}

/// The lowest and highest `cpu MHz` line of /proc/cpuinfo.
fn cpu_mhz(reader: &mut Reader) -> Option<(f64, f64)> {
    let text = String::from_utf8_lossy(reader.read_proc("cpuinfo").ok()?).into_owned();
    let mhz: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("cpu MHz"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse().ok())
        .collect();
    let lo = mhz.iter().copied().reduce(f64::min)?;
    Some((lo, mhz.iter().copied().fold(lo, f64::max)))
}

impl Calibration {
    /// Measures the clock and the empty loop, then watches the host for [`WINDOW`].
    pub fn measure(reader: &mut Reader) -> Calibration {
        let clock_resolution_ns = {
            let r = rustix::time::clock_getres(rustix::time::ClockId::Monotonic);
            r.tv_sec.max(0) as u64 * 1_000_000_000 + r.tv_nsec.max(0) as u64
        };
        let clock_cost_ns = per_iteration(1000, |_| {
            std::hint::black_box(Instant::now());
        });
        let empty_loop_ns = per_iteration(100_000, |i| {
            std::hint::black_box(i);
        });
        let stat = |r: &mut Reader| {
            r.read_proc("stat")
                .ok()
                .and_then(|b| ProcStat::parse(b).ok())
        };
        let k0 = kthread_ticks(reader);
        let s0 = stat(reader);
        let t0 = Instant::now();
        std::thread::sleep(WINDOW);
        let s1 = stat(reader);
        let window_s = t0.elapsed().as_secs_f64();
        let k1 = kthread_ticks(reader);
        let share = |f: fn(&ProcStat) -> u64| -> Option<f64> {
            let (a, b) = (s0.as_ref()?, s1.as_ref()?);
            let total = b.total().saturating_sub(a.total());
            (total > 0).then(|| f(b).saturating_sub(f(a)) as f64 / total as f64)
        };
        let kticks: u64 = k1
            .iter()
            .filter_map(|(n, t)| Some(t.saturating_sub(k0.iter().find(|(m, _)| m == n)?.1)))
            .sum();
        let mut c = Calibration {
            clock_resolution_ns,
            clock_cost_ns,
            empty_loop_ns,
            window_s,
            steal: share(|s| s.steal),
            iowait: share(|s| s.iowait),
            busy: share(ProcStat::busy),
            kthreads: Some(kticks as f64 / USER_HZ as f64 / window_s),
            kthread_names: k1.into_iter().map(|(n, _)| n).collect(),
            cpu_mhz: cpu_mhz(reader),
            noisy: None,
        };
        c.noisy = c.verdict();
        c
    }

    /// The measured causes of noise over their limits: (what, share, limit).
    fn causes(&self) -> Vec<(&'static str, f64, f64)> {
        [
            (self.steal, STEAL_MAX, "steal"),
            (self.iowait, IOWAIT_MAX, "iowait"),
            (self.busy, BUSY_MAX, "other programs' CPU time"),
            (self.kthreads, KTHREAD_MAX, "kdamond/khugepaged"),
        ]
        .into_iter()
        .filter_map(|(v, max, what)| v.filter(|x| *x > max).map(|x| (what, x, max)))
        .collect()
    }

    /// The measured causes of noise over their limits, joined; None on a quiet host.
    pub fn verdict(&self) -> Option<String> {
        let causes: Vec<String> = self
            .causes()
            .iter()
            .map(|(what, x, max)| format!("{what} {:.1}% (over {:.0}%)", x * 100.0, max * 100.0))
            .collect();
        (!causes.is_empty()).then(|| format!("a noisy host: {}", causes.join(", ")))
    }

    /// The causes short, for a headline ("host: other programs' CPU time 100%").
    pub fn cause(&self) -> Option<String> {
        let causes: Vec<String> = self
            .causes()
            .iter()
            .map(|(what, x, _)| format!("{what} {:.0}%", x * 100.0))
            .collect();
        (!causes.is_empty()).then(|| format!("host: {}", causes.join(", ")))
    }

    /// One line for the fingerprint.
    pub fn summary(&self) -> String {
        let pct = |v: Option<f64>| v.map_or("?".to_owned(), |x| format!("{:.1}%", x * 100.0));
        let mhz = self.cpu_mhz.map_or(String::new(), |(lo, hi)| {
            if (hi - lo).abs() < 0.5 {
                format!(", CPU {lo:.0} MHz")
            } else {
                format!(", CPU {lo:.0}-{hi:.0} MHz")
            }
        });
        format!(
            "calibration: clock resolution {} ns, a reading {:.1} ns, empty loop {:.2} ns; over {:.1} s steal {}, iowait {}, busy {}, kdamond/khugepaged {} of a CPU{mhz}{}",
            self.clock_resolution_ns,
            self.clock_cost_ns,
            self.empty_loop_ns,
            self.window_s,
            pct(self.steal),
            pct(self.iowait),
            pct(self.busy),
            pct(self.kthreads),
            self.noisy.as_ref().map_or(String::new(), |n| format!(": {n}"))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> Calibration {
        Calibration {
            clock_resolution_ns: 1,
            clock_cost_ns: 20.0,
            empty_loop_ns: 0.3,
            window_s: 1.0,
            steal: Some(0.0),
            iowait: Some(0.0),
            busy: Some(0.02),
            kthreads: Some(0.0),
            kthread_names: vec!["khugepaged (40)".into()],
            cpu_mhz: Some((2400.0, 2400.0)),
            noisy: None,
        }
    }

    #[test]
    fn issue_20_calibration_names_each_measured_cause_of_noise() {
        assert_eq!(quiet().verdict(), None);
        let busy = Calibration {
            steal: Some(0.035),
            busy: Some(0.5),
            ..quiet()
        };
        assert_eq!(
            busy.verdict().as_deref(),
            Some("a noisy host: steal 3.5% (over 1%), other programs' CPU time 50.0% (over 10%)")
        );
        let s = quiet().summary();
        assert!(
            s.contains("a reading 20.0 ns") && s.contains("CPU 2400 MHz"),
            "{s}"
        );
    }

    /// The headline of a noisy metric says by how much, and the host's measured cause
    /// when the calibration found one; a tight metric is printed plainly.
    #[test]
    fn issue_20_the_headline_says_noisy_by_how_much_and_the_hosts_cause() {
        use crate::catalogue::ConceptId;
        use crate::lab::report::LabReport;
        use crate::model::host::Host;
        let host = Host::read(&mut Reader::host().unwrap());
        let headline = |samples: &[f64], cal: Calibration| {
            let mut r = LabReport::new(ConceptId::LazyInit, host.clone());
            r.metric("first touch, per page", "ns", samples);
            r.calibration = Some(cal);
            crate::concepts::lazy_init::lab::LAB.headline_of(&r)
        };
        let wide: Vec<f64> = (1..=20).map(f64::from).collect();
        let busy = Calibration {
            busy: Some(0.5),
            ..quiet()
        };
        assert_eq!(
            headline(&wide, busy.clone()),
            "first touch 10 ns (noisy: +/-43%; host: other programs' CPU time 50%)"
        );
        assert_eq!(
            headline(&wide, quiet()),
            "first touch 10 ns (noisy: +/-43%)"
        );
        assert_eq!(headline(&[100.0; 8], busy), "first touch 100 ns");
    }

    #[test]
    fn calibration_of_this_host_is_measured() {
        let mut r = Reader::host().unwrap();
        let c = Calibration::measure(&mut r);
        assert!(c.clock_cost_ns > 0.0 && c.empty_loop_ns > 0.0, "{c:?}");
        assert!(c.window_s >= WINDOW.as_secs_f64(), "{c:?}");
        assert!(c.steal.is_some() && c.busy.is_some(), "{c:?}");
    }
}
